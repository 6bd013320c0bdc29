'use strict'
// The dashboard handler and the metrics history (API.md "A dashboard to look
// at"), each against a private redis-server: authorization as the metrics
// handler's, a page that names no other host, the ?format=json shape, the
// history's bounds and step, and no Redis work while nobody asks.
const fs = require('node:fs')
const Redis = require('ioredis')
const { RedisServer } = require('./support/redis-server.js')
const { redis, useRedis, sleep, waitFor, commandsSentDuring } = require('./support/client.js')
const monitor = require('../lib/monitor.js')

const { createRedisDashboardHandler, createRedisMetricsHandler, getRedisMetricsHistory, ALERT_THRESHOLDS, cacheService } = redis

const BASE = 'http://localhost/api/admin/redis/dashboard'
const TOKEN = 'dash-token'
/** Allows a Bearer token or a ?token= query, throws on ?boom=1 (as an authorizer may). */
async function authorize(request) {
  const url = new URL(request.url)
  if (url.searchParams.get('boom')) throw new Error('authorizer broke')
  return request.headers.get('authorization') === `Bearer ${TOKEN}` || url.searchParams.get('token') === TOKEN
}
const asAdmin = { headers: { authorization: `Bearer ${TOKEN}` } }

/** INFO commandstats as { command: calls }. */
async function commandCalls(inspector) {
  const text = await inspector.info('commandstats')
  return Object.fromEntries([...text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1], Number(m[2])]))
}

/** Every leaf of a sample: [path, value]. */
function leaves(value, prefix = '') {
  return Object.entries(value).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' && !(v instanceof Date) ? leaves(v, `${prefix}${k}.`) : [[`${prefix}${k}`, v]])
}

let server
let inspector
beforeAll(async () => {
  server = await new RedisServer({ args: ['--maxmemory', '64mb'] }).start()
  await useRedis({ url: server.url })
  inspector = new Redis(server.url)
})
afterEach(() => monitor.resetHistory())
afterAll(async () => {
  monitor.resetHistory()
  inspector.disconnect()
  await redis.closeRedisConnection()
  await server.stop()
  await useRedis()
})

describe('createRedisDashboardHandler', () => {
  test('bad options are a TypeError with EINVALID, and nothing reaches Redis', async () => {
    const sent = await commandsSentDuring(async () => {
      for (const bad of [undefined, null, 'x', {}, { authorize: 'yes' }, { authorize, refreshMs: 0 }, { authorize, refreshMs: 100 },
        { authorize, refreshMs: 1.5 }, { authorize, refreshMs: '5000' }, { authorize, refreshMs: 3600001 }, { authorize, refreshMs: NaN }]) {
        let error = null
        try {
          createRedisDashboardHandler(bad)
        } catch (e) {
          error = e
        }
        expect(error).toBeInstanceOf(TypeError)
        expect(error.code).toBe('EINVALID')
      }
      expect(typeof createRedisDashboardHandler({ authorize, refreshMs: 250 })).toBe('function')
    })
    expect(sent).toBe(0)
    await useRedis({ url: server.url }) // back to this file's server
  })

  test('authorization: 401 with WWW-Authenticate, 403, a throw is 403, 200 — for the page, its JSON and its assets', async () => {
    const seen = []
    const GET = createRedisDashboardHandler({ authorize: (request) => (seen.push(request.url), authorize(request)) })
    for (const query of ['', '?format=json', '?asset=uplot.js']) {
      const none = await GET(new Request(`${BASE}${query}`))
      expect(none.status).toBe(401)
      expect(none.headers.get('www-authenticate')).toBe('Bearer')
      expect((await GET(new Request(`${BASE}${query}`, { headers: { authorization: 'Bearer nope' } }))).status).toBe(403)
      expect((await GET(new Request(`${BASE}${query}`, { headers: { cookie: 'session=x' } }))).status).toBe(403)
      expect((await GET(new Request(`${BASE}${query}${query ? '&' : '?'}boom=1`))).status).toBe(403)
      expect((await GET(new Request(`${BASE}${query}${query ? '&' : '?'}boom=1`, asAdmin))).status).toBe(403)
      const ok = await GET(new Request(`${BASE}${query}`, asAdmin))
      expect(ok.status).toBe(200)
      await ok.arrayBuffer()
      const byQuery = await GET(new Request(`${BASE}${query}${query ? '&' : '?'}token=${TOKEN}`))
      expect(byQuery.status).toBe(200)
      await byQuery.arrayBuffer()
    }
    expect(seen).toHaveLength(3 * 7) // authorize decided every request, credential-less ones included
  })

  test('a refusal is the metrics handler’s, byte for byte (one authorization rule)', async () => {
    const dashboard = createRedisDashboardHandler({ authorize })
    const metrics = createRedisMetricsHandler({ authorize })
    for (const init of [{}, { headers: { authorization: 'Bearer nope' } }, { headers: { cookie: 'a=b' } }]) {
      for (const query of ['', '?boom=1']) {
        const a = await dashboard(new Request(`${BASE}${query}`, init))
        const b = await metrics(new Request(`http://localhost/api/admin/redis/metrics${query}`, init))
        expect(a.status).toBe(b.status)
        expect([...a.headers]).toEqual([...b.headers])
        expect(await a.text()).toBe(await b.text())
      }
    }
  })

  test('the page: one HTML document that names no other host, with a CSP that allows none', async () => {
    const GET = createRedisDashboardHandler({ authorize, refreshMs: 1500 })
    const response = await GET(new Request(BASE, asAdmin))
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
    const csp = response.headers.get('content-security-policy')
    expect(csp).toMatch(/default-src 'none'/)
    expect(csp).toMatch(/connect-src 'self'(;|$)/)
    expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]+'(;|$)/)
    const html = await response.text()
    expect(html).toMatch(/^<!doctype html>/)
    // No absolute URL at all: nothing in src, href, fetch(), url() or @import can point elsewhere.
    expect(html).not.toMatch(/https?:\/\//i)
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*["']?\s*\/\//i) // protocol-relative
    expect(html).not.toMatch(/@import|\burl\(/) // CSS url(); the script's `new URL(` is not one
    for (const [, target] of html.matchAll(/\b(?:src|href)\s*=\s*["']([^"']*)["']/gi)) expect(target).toMatch(/^(?:data:|\?|\/(?!\/))/)
    // The only fetch and the asset loads go to this page's own path (ownUrl keeps the query, e.g. a token).
    expect([...html.matchAll(/\bfetch\(([^,]*),/g)].map((m) => m[1].trim())).toEqual(["ownUrl({ format: 'json' })"])
    expect(html).toContain('return url.pathname + url.search') // a path on this origin, never a host
    expect(html).toContain("ownUrl({ asset: 'uplot.js' })")
    expect(html).toContain("ownUrl({ asset: 'uplot.css' })")
    // The inline script and style carry the response's nonce; the config has the refresh and the thresholds.
    const nonce = /'nonce-([^']+)'/.exec(csp)[1]
    expect(html).toContain(`<script nonce="${nonce}">`)
    expect(html).toContain(`<style nonce="${nonce}">`)
    const config = JSON.parse(/<script type="application\/json" id="dashboard-config">(.*?)<\/script>/s.exec(html)[1])
    expect(config).toMatchObject({ refreshMs: 1500, stepMs: 10000, historySize: 360, thresholds: { ...ALERT_THRESHOLDS } })
    expect(config.prefixes).toEqual(expect.arrayContaining(['cache', 'session', 'ratelimit', 'lock', 'other']))
    // A second page has another nonce.
    const again = await GET(new Request(BASE, asAdmin))
    expect(/'nonce-([^']+)'/.exec(again.headers.get('content-security-policy'))[1]).not.toBe(nonce)
  })

  test('the assets: uPlot and its stylesheet from the installed package, nothing fetched from elsewhere', async () => {
    const GET = createRedisDashboardHandler({ authorize })
    const js = await GET(new Request(`${BASE}?asset=uplot.js`, asAdmin))
    expect(js.status).toBe(200)
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    const code = await js.text()
    expect(code).toBe(fs.readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'))
    // Its one URL is the banner comment naming its home; it loads nothing.
    const body = code.replace(/^\/\*![^*]*\*\//, '')
    expect(body).not.toMatch(/https?:\/\//i)
    expect(body).not.toMatch(/\bfetch\(|XMLHttpRequest|importScripts|\bimport\(/)
    const css = await GET(new Request(`${BASE}?asset=uplot.css`, asAdmin))
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8')
    expect(await css.text()).not.toMatch(/https?:|@import|url\(/i)
    const missing = await GET(new Request(`${BASE}?asset=../../package.json`, asAdmin))
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ error: 'No such asset', assets: ['uplot.js', 'uplot.css'] })
    expect((await GET(new Request(`${BASE}?asset=constructor`, asAdmin))).status).toBe(404)
    expect((await GET(new Request(`${BASE}?format=xml`, asAdmin))).status).toBe(400)
  })

  test('?format=json: refreshMs, the thresholds, the metrics with their alerts, their sample, the history', async () => {
    const GET = createRedisDashboardHandler({ authorize, refreshMs: 2000 })
    await cacheService.set('cache:user:dash-1', { a: 1 })
    await cacheService.get('cache:user:dash-1')
    // An alert raised on the server: used memory above 85 % of maxmemory.
    const used = Number(/used_memory:(\d+)/.exec(await inspector.info('memory'))[1])
    await inspector.config('SET', 'maxmemory', String(Math.floor(used / 0.9)))
    let body
    try {
      const response = await GET(new Request(`${BASE}?format=json`, asAdmin))
      expect(response.status).toBe(200)
      expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8')
      expect(response.headers.get('cache-control')).toBe('no-store')
      body = await response.json()
    } finally {
      await inspector.config('SET', 'maxmemory', String(64 * 1024 * 1024))
    }
    expect(Object.keys(body).sort()).toEqual(['history', 'metrics', 'refreshMs', 'sample', 'sampling', 'stepMs', 'thresholds'])
    expect(body).toMatchObject({ refreshMs: 2000, stepMs: 10000, sampling: true, thresholds: { ...ALERT_THRESHOLDS } })
    expect(body.metrics.alerts.map((a) => a.name)).toContain('highMemory')
    expect(body.metrics.keyDistribution.cache).toBeGreaterThanOrEqual(1)
    // The sample is the metrics' numeric fields, under the same names, at the metrics' time.
    expect(body.sample.at).toBe(body.metrics.timestamp)
    for (const [path, value] of leaves(body.sample)) {
      if (path === 'at') continue
      expect([path, typeof value]).toEqual([path, 'number'])
      expect(path.split('.').reduce((o, k) => o[k], body.metrics)).toBe(value)
    }
    expect(body.sample.memory.usagePercent).toBeGreaterThan(85)
    expect(Array.isArray(body.history)).toBe(true)
    for (const sample of body.history) expect(Object.keys(sample).sort()).toEqual(Object.keys(body.sample).sort())
  })

  test('?format=json answers 503 with the kept history when Redis is gone; the page still loads', async () => {
    const gone = await new RedisServer().start()
    try {
      await useRedis({ url: gone.url, commandTimeoutMs: 300, connectTimeoutMs: 300 })
      const GET = createRedisDashboardHandler({ authorize })
      expect((await GET(new Request(`${BASE}?format=json`, asAdmin))).status).toBe(200)
      await gone.stop()
      const response = await GET(new Request(`${BASE}?format=json`, asAdmin))
      expect(response.status).toBe(503)
      const body = await response.json()
      expect(body.error).toBe('Redis metrics unavailable')
      expect(Array.isArray(body.history)).toBe(true)
      expect((await GET(new Request(BASE, asAdmin))).status).toBe(200)
    } finally {
      monitor.resetHistory()
      await redis.closeRedisConnection()
      await gone.stop()
      await useRedis({ url: server.url })
    }
  })
})

describe('getRedisMetricsHistory', () => {
  test('one hour at 10 s steps by default: 360 samples, the first now, the next 10 s later', async () => {
    expect([monitor.HISTORY_STEP_MS, monitor.HISTORY_SIZE]).toEqual([10000, 360])
    expect(monitor.historySettings()).toMatchObject({ stepMs: 10000, size: 360 })
    expect(monitor.historySampling()).toBe(false)
    const first = getRedisMetricsHistory() // starts the sampler: nothing kept yet
    expect(first).toEqual([])
    expect(monitor.historySampling()).toBe(true)
    await waitFor(() => getRedisMetricsHistory().length === 1, 5000)
    const [one, two] = await waitFor(() => {
      const samples = getRedisMetricsHistory()
      return samples.length === 2 && samples
    }, 15000, 100)
    const step = two.at - one.at
    expect(step).toBeGreaterThan(9000)
    expect(step).toBeLessThan(11000)
  }, 30000)

  test('a bounded ring: never more than its size, oldest first, the step between samples, frozen', async () => {
    monitor.resetHistory({ stepMs: 100, size: 5 })
    getRedisMetricsHistory()
    const early = await waitFor(() => {
      const samples = getRedisMetricsHistory()
      return samples.length >= 2 && samples
    }, 5000)
    // Long enough to wrap the ring more than once.
    await sleep(1500)
    const samples = getRedisMetricsHistory()
    expect(samples).toHaveLength(5)
    expect(samples).not.toContain(early[0]) // the oldest were dropped
    for (const s of samples) {
      expect(s.at).toBeInstanceOf(Date)
      expect(Object.isFrozen(s) && Object.isFrozen(s.memory) && Object.isFrozen(s.client)).toBe(true)
      expect(typeof s.client.latencyP99Ms).toBe('number')
      expect(typeof s.keyDistribution.cache).toBe('number')
    }
    const gaps = samples.slice(1).map((s, i) => s.at - samples[i].at)
    for (const gap of gaps) {
      expect(gap).toBeGreaterThan(50)
      expect(gap).toBeLessThan(400)
    }
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length
    expect(mean).toBeGreaterThan(80)
    expect(mean).toBeLessThan(200)
    // The caller's copy is its own: changing it changes nothing kept.
    samples.length = 0
    expect(getRedisMetricsHistory()).toHaveLength(5)
  })

  test('no sampling while idle: INFO commandstats stays the same over seconds with nobody asking', async () => {
    monitor.resetHistory({ stepMs: 100, idleMs: 400 })
    // A sample the last test left in flight finishes first (its commands are not this test's).
    await monitor.historySettled()
    // Nobody has asked: the sampler is not running, and nothing reaches the server.
    let before = await commandCalls(inspector)
    await sleep(1500)
    let after = await commandCalls(inspector)
    expect(monitor.historySampling()).toBe(false)
    expect(after).toEqual({ ...before, info: (before.info ?? 0) + 1 }) // only the inspector's own INFO
    // Asked once: it samples (INFO, DBSIZE, SCAN every step) ...
    getRedisMetricsHistory()
    await waitFor(() => getRedisMetricsHistory().length >= 3, 5000)
    expect((await commandCalls(inspector)).scan).toBeGreaterThan(after.scan ?? 0)
    // ... and stops once nobody asked for idleMs, after which the server sees nothing from it.
    await waitFor(() => !monitor.historySampling(), 3000, 50)
    await sleep(150) // a sample in flight at the stop has finished
    const kept = monitor.keptSamples().length
    before = await commandCalls(inspector)
    await sleep(3000)
    after = await commandCalls(inspector)
    expect(after).toEqual({ ...before, info: (before.info ?? 0) + 1 })
    expect(monitor.historySampling()).toBe(false)
    expect(monitor.keptSamples()).toHaveLength(kept)
  })

  test('a client closed by the application is not opened again by the sampler', async () => {
    monitor.resetHistory({ stepMs: 100, idleMs: 60000 })
    getRedisMetricsHistory()
    await waitFor(() => monitor.keptSamples().length >= 2, 5000) // looking without asking again
    await redis.closeRedisConnection()
    await sleep(500)
    expect(redis.getConnectionStatus().state).toBe('closed')
    expect(monitor.historySampling()).toBe(false)
    await useRedis({ url: server.url })
  })

  test('per-process state: a module evaluated again finds the same samples and the same sampler', async () => {
    monitor.resetHistory({ stepMs: 100, size: 50 })
    getRedisMetricsHistory()
    await waitFor(() => getRedisMetricsHistory().length >= 2, 5000)
    let again
    jest.isolateModules(() => {
      again = require('../lib/monitor.js')
    })
    expect(again).not.toBe(monitor)
    expect(again.historySampling()).toBe(true)
    const mine = getRedisMetricsHistory()
    const theirs = again.getRedisMetricsHistory()
    expect(theirs[0]).toBe(mine[0]) // the very same frozen sample objects
    expect(again.historySettings()).toEqual(monitor.historySettings())
  })
})
