#!/usr/bin/env node
// The dashboard in a real browser: the Next.js example (packed tarballs,
// `next build`, `next start`) against a private redis-server under a small
// load, opened by headless Chromium (Debian's `chromium`, driven by
// playwright-core; never a downloaded browser). Checks that the page loads with
// no console error and no request to another host, that every chart has drawn
// data points after two refreshes (without reloading the page), that an alert
// raised on the server (maxmemory lowered under 85 % of used memory) appears on
// the page, that dark mode is dark and the phone layout does not scroll
// sideways; saves screenshots under .ci/artifacts/. Exits non-zero on a failed check.
//   npm run e2e:dashboard
'use strict'
/* global document, window, getComputedStyle -- in the functions page.evaluate runs in the browser */

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const Redis = require('ioredis')
const { RedisServer } = require('../__test__/support/redis-server.js')
const { ROOT, sleep, createChecks, installAndBuild, startNext, stopNext } = require('./next-app.js')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const ARTIFACTS = path.join(ROOT, '.ci', 'artifacts')
const TOKEN = 'e2e-dashboard-token'
const REFRESH_MS = 1000
const CHARTS = ['ops', 'hit-rate', 'memory', 'latency', 'errors', 'clients', 'keys']
const started = Date.now()
const checks = createChecks()
const check = checks.check

/** A fresh Chromium with a profile of its own, as the brief for CI asks (no network services of its own). */
async function openBrowser(contextOptions) {
  const { chromium } = require('playwright-core')
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'yg-dashboard-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ...contextOptions,
  })
  return {
    context,
    async close() {
      await context.close()
      fs.rmSync(profile, { recursive: true, force: true })
    },
  }
}

/** A page that records console errors, page errors and every request it makes. */
async function watchedPage(context) {
  const page = context.pages()[0] || (await context.newPage())
  const seen = { errors: [], requests: [] }
  page.on('console', (message) => {
    if (message.type() === 'error') seen.errors.push(`console: ${message.text()}`)
  })
  page.on('pageerror', (error) => seen.errors.push(`page error: ${error.message}`))
  page.on('requestfailed', (request) => seen.errors.push(`request failed: ${request.url()} ${request.failure()?.errorText}`))
  page.on('request', (request) => seen.requests.push(request.url()))
  return { page, seen }
}

/** The page's own counters: refreshes done, and the points each chart drew. */
const readState = (page) =>
  page.evaluate(() => ({
    refreshes: Number(document.body.dataset.refreshes),
    state: document.body.dataset.state,
    charts: Object.fromEntries([...document.querySelectorAll('figure.chart')].map((f) => [f.id.replace(/^chart-/, ''), Number(f.dataset.points || 0)])),
    alerts: [...document.querySelectorAll('#alerts [data-alert]')].map((li) => li.dataset.alert),
    marker: window.__e2eMarker || null,
    navigations: performance.getEntriesByType('navigation').length,
  }))

/** A small steady load: the example's cached route (this process's cache) and plain commands (the server's). */
function startLoad(base, admin) {
  let running = true
  const done = (async () => {
    for (let i = 0; running; i++) {
      try {
        await Promise.all([
          fetch(`${base}/api/profile/${i % 20}`, { headers: { 'x-caller-id': `load-${i % 50}` } }).then((r) => r.arrayBuffer()),
          admin.set(`session:load:${i % 40}`, String(i), 'EX', 600),
          admin.get(`cache:load:${i % 60}`),
          admin.incr(`counter:load:${i % 10}`),
        ])
      } catch {
        // a write refused while maxmemory is lowered (OOM) is part of the test
      }
      await sleep(25)
    }
  })()
  return async () => {
    running = false
    await done
  }
}

async function main() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install -y chromium), as .ci/run does`)
  }
  installAndBuild('e2e:dashboard')
  fs.mkdirSync(ARTIFACTS, { recursive: true })

  const server = await new RedisServer({ args: ['--maxmemory', '256mb'] }).start()
  const admin = new Redis(server.url)
  const env = { REDIS_URL: server.url, METRICS_TOKEN: TOKEN, DASHBOARD_REFRESH_MS: String(REFRESH_MS), PROFILE_RATE_LIMIT: '100000' }
  let next
  let stopLoad = async () => {}
  const browsers = []
  try {
    console.log('e2e:dashboard — next start, a small load')
    next = await startNext('start', env)
    const origin = new URL(next.base).origin
    const url = `${next.base}/api/admin/redis/dashboard?token=${TOKEN}`
    stopLoad = startLoad(next.base, admin)

    // Desktop, light: loads clean, draws every chart, refreshes without a reload.
    console.log('e2e:dashboard — Chromium, desktop')
    const desktop = await openBrowser({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' })
    browsers.push(desktop)
    const { page, seen } = await watchedPage(desktop.context)
    const response = await page.goto(url, { waitUntil: 'load' })
    check(response.status() === 200, 'the dashboard route answers 200 with the token', String(response.status()))
    await page.evaluate(() => (window.__e2eMarker = 'same page'))
    await page.waitForFunction(() => Number(document.body.dataset.refreshes) >= 3, null, { timeout: 30000 }).catch(() => {})
    let state = await readState(page)
    check(state.refreshes >= 3 && state.state === 'ok', 'the page loaded and refreshed twice from ?format=json', `${state.refreshes} refreshes, state ${state.state}`)
    check(state.marker === 'same page' && state.navigations === 1, 'refreshes do not reload the page', `marker ${state.marker}, ${state.navigations} navigation(s)`)
    check(CHARTS.every((id) => state.charts[id] >= 2), 'every chart has drawn data points after two refreshes',
      CHARTS.map((id) => `${id} ${state.charts[id] ?? 'missing'}`).join(', '))

    // An alert raised on the server: maxmemory just above used memory (used ≈ 90 % of it).
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))[1])
    await admin.config('SET', 'maxmemory', String(Math.floor(used / 0.9)))
    const alertShown = await page.waitForSelector('#alerts [data-alert="highMemory"]', { timeout: 15000 }).then(() => true, () => false)
    const alertText = alertShown ? await page.textContent('#alerts [data-alert="highMemory"]') : ''
    check(alertShown && /above 85\s%/.test(alertText), 'an alert raised on the server (maxmemory lowered) appears on the page', alertText.trim())
    await sleep(2 * REFRESH_MS + 500) // the memory chart shows the jump
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-desktop.png'), fullPage: true })

    check(seen.errors.length === 0, 'no console error, page error or failed request', seen.errors.join(' | '))
    const foreign = seen.requests.filter((u) => new URL(u).origin !== origin)
    check(seen.requests.length > 0 && foreign.length === 0, 'no request to another host', `${seen.requests.length} requests, ${foreign.length} elsewhere ${foreign.join(' ')}`)
    const assets = seen.requests.filter((u) => /[?&]asset=/.test(u)).map((u) => new URL(u).searchParams.get('asset')).sort()
    check(assets.join(',') === 'uplot.css,uplot.js', 'uPlot comes from the same route (?asset=)', assets.join(', '))

    // Dark mode, the alert still up.
    console.log('e2e:dashboard — Chromium, desktop, dark')
    const dark = await openBrowser({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' })
    browsers.push(dark)
    const darkPage = await watchedPage(dark.context)
    await darkPage.page.goto(url, { waitUntil: 'load' })
    await darkPage.page.waitForFunction(() => Number(document.body.dataset.refreshes) >= 3, null, { timeout: 30000 }).catch(() => {})
    const luminance = await darkPage.page.evaluate(() => {
      const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number)
      return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
    })
    state = await readState(darkPage.page)
    check(luminance < 0.2 && CHARTS.every((id) => state.charts[id] >= 2), 'dark mode: a dark page with every chart drawn',
      `background luminance ${luminance.toFixed(2)}`)
    check(darkPage.seen.errors.length === 0, 'dark mode: no console error', darkPage.seen.errors.join(' | '))
    await darkPage.page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-desktop-dark.png'), fullPage: true })

    // A phone.
    console.log('e2e:dashboard — Chromium, phone')
    const phone = await openBrowser({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'light' })
    browsers.push(phone)
    const phonePage = await watchedPage(phone.context)
    await phonePage.page.goto(url, { waitUntil: 'load' })
    await phonePage.page.waitForFunction(() => Number(document.body.dataset.refreshes) >= 3, null, { timeout: 30000 }).catch(() => {})
    const overflow = await phonePage.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    state = await readState(phonePage.page)
    check(overflow <= 0 && CHARTS.every((id) => state.charts[id] >= 2), 'phone: every chart drawn, nothing wider than the screen', `overflow ${overflow} px`)
    check(phonePage.seen.errors.length === 0, 'phone: no console error', phonePage.seen.errors.join(' | '))
    await phonePage.page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true })
    await phonePage.page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-phone-screen.png') }) // what the phone shows first, at its size
    console.log(`  screenshots: ${['dashboard-desktop.png', 'dashboard-desktop-dark.png', 'dashboard-phone.png', 'dashboard-phone-screen.png'].map((f) => path.relative(ROOT, path.join(ARTIFACTS, f))).join(', ')}`)
  } finally {
    await stopLoad()
    for (const browser of browsers) await browser.close().catch(() => {})
    stopNext(next)
    admin.disconnect()
    await server.stop()
  }
  console.log(`e2e:dashboard — ${checks.failures === 0 ? 'passed' : `${checks.failures} check(s) failed`} in ${((Date.now() - started) / 1000).toFixed(0)} s`)
  process.exit(checks.failures === 0 ? 0 : 1)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
