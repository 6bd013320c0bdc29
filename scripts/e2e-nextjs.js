#!/usr/bin/env node
// End to end, as a Next.js user runs it: installs examples/nextjs, runs
// `next build` and `next start` on a free port against a private redis-server,
// and checks the routes over HTTP; then runs `next dev`, edits a route file
// while it runs (hot reload) and checks the process still holds one Redis
// connection (CLIENT LIST). It also checks the idempotent POST route (/api/orders) and the
// maintenance switch (/api/admin/maintenance). Exits non-zero on the first failed check.
//   npm run e2e:nextjs
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const Redis = require('ioredis')
const { RedisServer } = require('../__test__/support/redis-server.js')
const { APP, sleep, createChecks, installAndBuild, startNext, stopNext } = require('./next-app.js')

const TOKEN = 'e2e-metrics-token'
const started = Date.now()
const checks = createChecks()
const check = checks.check

/** The connections our client opened on this server (it names them with CLIENT SETNAME). */
async function ourConnections(admin) {
  const list = await admin.client('LIST')
  return list.split('\n').filter((line) => / name=yesgoddess-redis /.test(line)).length
}

async function main() {
  installAndBuild('e2e:nextjs')

  const server = await new RedisServer().start()
  const admin = new Redis(server.url)
  const env = { REDIS_URL: server.url, METRICS_TOKEN: TOKEN, PROFILE_RATE_LIMIT: '5' }
  let next
  try {
    console.log('e2e:nextjs — next start')
    next = await startNext('start', env)
    const get = (p, headers = {}) => fetch(`${next.base}${p}`, { headers })

    let r = await get('/api/health/redis')
    const health = await r.json()
    check(r.status === 200 && health.healthy === true, 'GET /api/health/redis → 200 healthy', `${r.status} ${JSON.stringify(health)}`)

    r = await get('/api/admin/redis/metrics')
    check(r.status === 401, 'metrics without credentials → 401', String(r.status))
    r = await get('/api/admin/redis/metrics', { authorization: 'Bearer wrong' })
    check(r.status === 403, 'metrics with a wrong token → 403', String(r.status))
    r = await get('/api/admin/redis/metrics', { authorization: `Bearer ${TOKEN}` })
    const metrics = await r.json()
    check(r.status === 200 && typeof metrics.memory?.usedBytes === 'number' && 'keyDistribution' in metrics,
      'metrics with the token → 200 JSON', `${r.status}, redis ${metrics.server?.version}`)
    r = await get('/api/admin/redis/metrics?format=prometheus', { authorization: `Bearer ${TOKEN}` })
    const text = await r.text()
    check(r.status === 200 && /^text\/plain; version=0\.0\.4/.test(r.headers.get('content-type') || '') &&
      /^redis_memory_used_bytes \d+$/m.test(text), 'metrics ?format=prometheus → 200 text format', `${text.split('\n').length} lines`)

    // The dashboard route (the browser drives it in e2e:dashboard): the same
    // authorization, the page, its JSON and its chart library, all from this origin.
    const dash = '/api/admin/redis/dashboard'
    r = await get(dash)
    check(r.status === 401 && r.headers.get('www-authenticate') === 'Bearer', 'dashboard without credentials → 401 with WWW-Authenticate', String(r.status))
    r = await get(dash, { authorization: 'Bearer wrong' })
    check(r.status === 403, 'dashboard with a wrong token → 403', String(r.status))
    r = await get(`${dash}?token=${TOKEN}`)
    const html = await r.text()
    check(r.status === 200 && /^text\/html/.test(r.headers.get('content-type') || '') && html.includes('id="dashboard-config"') &&
      !/https?:\/\//i.test(html), 'dashboard with the token → 200, one HTML page naming no other host', `${r.status}, ${html.length} bytes`)
    r = await get(`${dash}?format=json`, { authorization: `Bearer ${TOKEN}` })
    const board = await r.json()
    check(r.status === 200 && typeof board.metrics?.memory?.usedBytes === 'number' && Array.isArray(board.history) &&
      typeof board.sample?.at === 'string', 'dashboard ?format=json → 200 { metrics, sample, history }', `${r.status}, ${board.history?.length} history samples`)
    r = await get(`${dash}?token=${TOKEN}&asset=uplot.js`)
    const lib = await r.text()
    check(r.status === 200 && /javascript/.test(r.headers.get('content-type') || '') && /var uPlot=/.test(lib),
      'dashboard ?asset=uplot.js → the chart library from the same route', `${r.status}, ${lib.length} bytes`)

    // The rate-limited, cached route: exactly 5 allowed, then 429 with Retry-After.
    const statuses = []
    const sources = []
    let denied
    for (let i = 0; i < 7; i++) {
      r = await get('/api/profile/42', { 'x-caller-id': 'e2e-caller' })
      statuses.push(r.status)
      if (r.status === 200) sources.push((await r.json()).source)
      else denied = r
    }
    check(statuses.filter((s) => s === 200).length === 5 && statuses.slice(5).every((s) => s === 429),
      'the profile route allows exactly its limit (5), then 429', statuses.join(' '))
    check(denied && Number(denied.headers.get('retry-after')) > 0 && /^"profile";r=0;t=\d+$/.test(denied.headers.get('ratelimit') || ''),
      '429 carries Retry-After and the RateLimit fields', denied ? `Retry-After ${denied.headers.get('retry-after')}, RateLimit ${denied.headers.get('ratelimit')}, RateLimit-Policy ${denied.headers.get('ratelimit-policy')}` : '')
    check(sources[0] === 'database' && sources.slice(1).every((s) => s === 'cache'),
      'the first call loads from the database under the lock, the next ones hit the cache', sources.join(' '))
    check((await admin.exists('cache:creator:42')) === 1 && (await admin.ttl('cache:creator:42')) > 3500,
      'the profile is cached in Redis with its prefix TTL')

    // The lock route: withLock around a tiny step, the lock gone afterwards, fencing tokens growing.
    const tokens = []
    for (let i = 0; i < 2; i++) {
      r = await get('/api/lock/7')
      tokens.push(r.status === 200 ? (await r.json()).fencingToken : r.status)
    }
    check(tokens.every((t) => typeof t === 'number') && tokens[1] > tokens[0] &&
      (await admin.exists('lock:resource:job%3A7')) === 0,
    'the lock route runs under withLock (fencing tokens grow, the lock is released)', tokens.join(' '))

    // The idempotent POST route: the key is required, a retry is replayed, another body is 422.
    const order = (body, headers = {}) =>
      fetch(`${next.base}/api/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-caller-id': 'e2e-buyer', ...headers },
        body: JSON.stringify(body),
      })
    const item = { sku: 'license-standard', amountCents: 9900 }
    r = await order(item)
    check(r.status === 400 && /application\/problem\+json/.test(r.headers.get('content-type') || ''),
      'POST /api/orders without Idempotency-Key → 400 problem+json', String(r.status))
    r = await order(item, { 'idempotency-key': 'e2e-order-1' })
    const created = await r.json()
    check(r.status === 201 && typeof created.orderId === 'string' && created.caller === 'e2e-buyer' && !r.headers.get('idempotent-replayed'),
      'the first POST creates the order (201; headers() works inside the wrapped handler)', `${r.status} ${JSON.stringify(created)}`)
    r = await order(item, { 'idempotency-key': 'e2e-order-1' })
    const replayed = await r.json()
    check(r.status === 201 && r.headers.get('idempotent-replayed') === 'true' && replayed.orderId === created.orderId &&
      r.headers.get('location') === '/api/orders/new',
    'a retry with the same key is replayed (same order, Idempotent-Replayed: true)', `${r.status} ${replayed.orderId}`)
    check((await admin.get('counter:orders-created')) === '1', 'the handler ran once for the two requests')
    r = await order({ ...item, amountCents: 1 }, { 'idempotency-key': 'e2e-order-1' })
    check(r.status === 422, 'the same key with another body → 422', String(r.status))
    const stored = JSON.parse((await admin.get('idempotency:POST /api/orders e2e-buyer e2e-order-1')) || 'null')
    check(stored?.state === 'completed' && stored.result.status === 201 && (await admin.ttl('idempotency:POST /api/orders e2e-buyer e2e-order-1')) > 86000,
      'the response is stored under idempotency: for 24 h, scoped by caller, method and path')

    // The maintenance switch: on → the wrapped route answers 503 with Retry-After; off → it works again.
    const maintenance = (body, token = TOKEN) =>
      fetch(`${next.base}/api/admin/maintenance`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      })
    r = await maintenance({ on: true }, 'wrong')
    check(r.status === 403, 'switching maintenance without the token → 403', String(r.status))
    r = await maintenance({ on: true, message: 'e2e maintenance' })
    const switched = await r.json()
    check(r.status === 200 && switched.on === true && switched.message === 'e2e maintenance' && typeof switched.since === 'string',
      'maintenance switched on (on, message, since)', JSON.stringify(switched))
    // Another worker of the app may hold the flag in its cache for up to cacheMs (1 s).
    let inMaintenance = null
    for (let i = 0; i < 20 && inMaintenance?.status !== 503; i++) {
      if (i > 0) await sleep(100)
      inMaintenance = await order(item, { 'idempotency-key': `e2e-order-m${i}` })
    }
    const maintenanceBody = inMaintenance ? await inMaintenance.json() : null
    check(inMaintenance?.status === 503 && Number(inMaintenance.headers.get('retry-after')) > 0 && maintenanceBody?.message === 'e2e maintenance',
      'in maintenance POST /api/orders → 503 with Retry-After and the message', `${inMaintenance?.status} ${JSON.stringify(maintenanceBody)}`)
    r = await maintenance({ on: false })
    let afterMaintenance = null
    for (let i = 0; i < 20 && afterMaintenance?.status !== 201; i++) {
      if (i > 0) await sleep(100)
      afterMaintenance = await order(item, { 'idempotency-key': `e2e-order-after${i}` })
    }
    check(afterMaintenance?.status === 201, 'maintenance off: the route creates orders again', String(afterMaintenance?.status))

    // Redis goes away: health answers 503, quickly.
    await server.stop()
    const t = Date.now()
    r = await get('/api/health/redis')
    const down = await r.json()
    check(r.status === 503 && down.healthy === false && Date.now() - t < 3000,
      'with Redis stopped, /api/health/redis → 503 within its timeout', `${r.status} in ${Date.now() - t} ms: ${down.error}`)
    stopNext(next)
    next = null

    // next dev with a hot reload: the process keeps one Redis connection.
    await server.start()
    console.log('e2e:nextjs — next dev with a hot reload')
    const routeFile = path.join(APP, 'app', 'api', 'health', 'redis', 'route.ts')
    const original = fs.readFileSync(routeFile, 'utf8')
    next = await startNext('dev', env)
    try {
      r = await fetch(`${next.base}/api/health/redis`)
      check(r.status === 200, 'next dev: /api/health/redis → 200', String(r.status))
      const before = await ourConnections(admin)
      check(before === 1, 'next dev holds one Redis connection', String(before))
      // Edit the route: it now answers through a wrapper that adds a header.
      fs.writeFileSync(routeFile, original.replace(
        "export { redisHealthHandler as GET } from '@yesgoddess/redis'",
        "import { redisHealthHandler } from '@yesgoddess/redis'\nexport async function GET(request: Request) {\n  const response = await redisHealthHandler(request)\n  response.headers.set('x-reloaded', 'yes')\n  return response\n}",
      ))
      let reloaded = false
      const until = Date.now() + 60000
      while (!reloaded && Date.now() < until) {
        await sleep(500)
        r = await fetch(`${next.base}/api/health/redis`).catch(() => null)
        reloaded = r !== null && r.status === 200 && r.headers.get('x-reloaded') === 'yes'
      }
      check(reloaded, 'next dev picked up the edited route (hot reload)')
      for (let i = 0; i < 5; i++) await fetch(`${next.base}/api/profile/7`, { headers: { 'x-caller-id': `dev-${i}` } })
      const after = await ourConnections(admin)
      check(after === 1, 'after the hot reload the process still holds one Redis connection', String(after))
    } finally {
      fs.writeFileSync(routeFile, original)
    }
  } finally {
    stopNext(next)
    admin.disconnect()
    await server.stop()
  }
  console.log(`e2e:nextjs — ${checks.failures === 0 ? 'passed' : `${checks.failures} check(s) failed`} in ${((Date.now() - started) / 1000).toFixed(0)} s`)
  process.exit(checks.failures === 0 ? 0 : 1)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
