'use strict'
// The monitoring dashboard: one HTML page (its styles and script inline, uPlot
// served by the same handler as `?asset=uplot.js` / `?asset=uplot.css`), and
// the JSON its script refreshes from (`?format=json`). Every answer, the
// assets included, is behind `authorize`, decided exactly as for the metrics
// handler (monitor.js authorizationRefusal). Nothing on the page names another
// host, and its Content-Security-Policy forbids loading from one.

const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { invalid } = require('./runtime.js')
const monitor = require('./monitor.js')

const DEFAULT_REFRESH_MS = 5000
const MIN_REFRESH_MS = 250
const MAX_REFRESH_MS = 3600000

/**
 * The files the handler serves besides the page: uPlot, a runtime dependency
 * of the package (resolved where npm put it, so it is never copied by hand).
 */
const ASSETS = {
  'uplot.js': { file: () => require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uplot.css': { file: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
}

/** File contents, read once per process on first use. */
const files = new Map()
function read(file) {
  let text = files.get(file)
  if (text === undefined) {
    text = fs.readFileSync(file, 'utf8')
    files.set(file, text)
  }
  return text
}

const own = (name) => path.join(__dirname, 'dashboard', name)

function json(body, status) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  })
}

/** JSON that can sit inside a <script> element: no `<`, so no `</script>`. */
function scriptJson(value) {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')
}

/** The page: everything inline under a per-response nonce, uPlot from this same handler. */
function page(refreshMs) {
  const nonce = crypto.randomBytes(16).toString('base64')
  const config = {
    refreshMs,
    stepMs: monitor.historySettings().stepMs,
    historySize: monitor.historySettings().size,
    thresholds: monitor.ALERT_THRESHOLDS,
    prefixes: [...monitor.PREFIXES, 'other'],
  }
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Redis dashboard</title>
<style nonce="${nonce}">
${read(own('style.css'))}
</style>
</head>
<body data-state="loading" data-refreshes="0">
<header>
<h1>Redis</h1>
<dl id="summary"></dl>
</header>
<section id="alerts" aria-live="polite" aria-label="Active alerts"><p class="none">Loading…</p></section>
<p id="status" role="status" hidden></p>
<main id="charts"></main>
<footer id="footer"></footer>
<script type="application/json" id="dashboard-config">${scriptJson(config)}</script>
<script nonce="${nonce}">
${read(own('browser.js'))}
</script>
</body>
</html>
`
  return new Response(html, {
    status: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      // Only this origin, and only this response's inline script and style.
      'content-security-policy': [
        "default-src 'none'",
        `script-src 'self' 'nonce-${nonce}'`,
        `style-src 'self' 'nonce-${nonce}'`,
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ].join('; '),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    },
  })
}

function asset(name) {
  const entry = Object.prototype.hasOwnProperty.call(ASSETS, name) ? ASSETS[name] : null
  if (entry === null) return json({ error: 'No such asset', assets: Object.keys(ASSETS) }, 404)
  return new Response(read(entry.file()), {
    status: 200,
    headers: {
      'content-type': entry.type,
      // Behind authorize: a browser may keep it, a shared cache may not.
      'cache-control': 'private, max-age=3600',
      'x-content-type-options': 'nosniff',
    },
  })
}

/** `?format=json`: the current metrics, their sample, and the kept history. */
async function data(refreshMs) {
  // A dashboard open in a browser keeps the sampler going between its refreshes.
  monitor.wantHistory(3 * refreshMs)
  let metrics
  try {
    metrics = await monitor.getRedisMetrics()
  } catch (error) {
    return json({
      error: 'Redis metrics unavailable',
      detail: (error && error.message) || String(error),
      history: monitor.keptSamples(),
    }, 503)
  }
  return json({
    refreshMs,
    stepMs: monitor.historySettings().stepMs,
    sampling: monitor.historySampling(),
    thresholds: monitor.ALERT_THRESHOLDS,
    metrics,
    sample: monitor.toSample(metrics),
    history: monitor.keptSamples(),
  }, 200)
}

/**
 * A `GET` handler for the dashboard (e.g. `app/api/admin/redis/dashboard/route.ts`),
 * guarded by `authorize(request)` exactly as createRedisMetricsHandler is. It
 * answers the HTML page, `?format=json` (what the page refreshes from every
 * `refreshMs`), and `?asset=uplot.js` / `?asset=uplot.css`.
 */
function createRedisDashboardHandler(options) {
  if (options === null || typeof options !== 'object') {
    throw invalid('createRedisDashboardHandler({ authorize, refreshMs }): options must be an object')
  }
  const { authorize, refreshMs = DEFAULT_REFRESH_MS } = options
  if (typeof authorize !== 'function') {
    throw invalid('createRedisDashboardHandler({ authorize }): authorize(request) must be a function')
  }
  if (!Number.isSafeInteger(refreshMs) || refreshMs < MIN_REFRESH_MS || refreshMs > MAX_REFRESH_MS) {
    throw invalid(`createRedisDashboardHandler({ refreshMs }): refreshMs must be an integer number of milliseconds from ${MIN_REFRESH_MS} to ${MAX_REFRESH_MS}`)
  }
  return async function GET(request) {
    const refusal = await monitor.authorizationRefusal(authorize, request)
    if (refusal !== null) return refusal
    const params = new URL(request.url, 'http://localhost').searchParams
    const name = params.get('asset')
    if (name !== null) return asset(name)
    const format = params.get('format')
    if (format === 'json') return data(refreshMs)
    if (format !== null && format !== 'html') return json({ error: 'Unknown format', formats: ['html', 'json'] }, 400)
    monitor.wantHistory(3 * refreshMs)
    return page(refreshMs)
  }
}

module.exports = { createRedisDashboardHandler, DEFAULT_REFRESH_MS, MIN_REFRESH_MS, MAX_REFRESH_MS }
