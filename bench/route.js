#!/usr/bin/env node
'use strict'
// Where users feel it: HTTP load (autocannon) on the Next.js example app under
// `next start`, once with the package and once with the same route code on
// ioredis, against one private redis-server.
//   npm run bench:route -- [--seconds 10] [--warmup 3] [--loads 10,50,200] [--routes profile,lock,floor] [--repeat 2] [--tls]
// Two apps are laid out under .tmp/bench-route/ from the same route files of
// examples/nextjs (they import `@/lib/redis` only): `addon` with lib/redis-addon.ts
// (the package, installed from its packed tarballs as in e2e:nextjs) and
// `ioredis` with examples/nextjs-ioredis/lib/redis-ioredis.ts (tsconfig `paths`
// decides which module `@/lib/redis` is). Both are built with `next build` and
// served by `next start` side by side for the whole run. Routes:
//   profile  GET /api/profile/<id>: checkLimit for the caller (x-caller-id from a
//            pool of --callers, a limit no one reaches), a cache read, and on a miss
//            a load under withLock and a cache set; ids from a pool of --profiles,
//            all loaded once before each run, so the measured requests hit the cache
//   lock     GET /api/lock/<id>: withLock on a key from a pool of --lock-ids around a
//            tiny synchronous step (a pool that large keeps the locks uncontended)
//   floor    GET /api/floor/<id>: the profile route's JSON answer with no Redis work at
//            all (the same code in both apps): what Next.js alone costs, the floor
//            under the other routes' latency
// For each route and load (connections) the apps run alternately A B B A
// (--repeat 2: addon, ioredis, ioredis, addon; --repeat 4: A B B A A B B A); each run starts from an empty
// database (FLUSHALL), primes, warms up for --warmup s at the same load, then
// measures for --seconds. Latency is each 2xx response's time as autocannon saw
// it (kept here at µs resolution; autocannon's own histogram keeps whole ms).
// CPU per request: user + system time of the `next start` process tree and of
// redis-server (/proc/<pid>/stat) over the measured window, over the requests
// answered in it. Each cell is the median of the runs (the mean of the two
// middle ones for an even count). Writes bench/results/route.md and .json
// (route-tls.* with --tls).
// Both servers preload bench/route-timing.js, which splits each latency into
// the wait before Next.js reads the request (`arrival`, from autocannon's write)
// and the time inside the server; a second table reports that split.
// --tls: the redis-server is TLS-only with a CA made by makeTlsFiles(); both apps
// get REDIS_URL=rediss://… and trust the CA through NODE_EXTRA_CA_CERTS.
// --from <route.json>: print the report of an earlier run again, measuring nothing.
// --binary <file> (or YG_REDIS_PACK_BINARY): pack that addon binary instead of
// building the release one (scripts/pack.js). --no-install: keep what an earlier
// run installed in both apps (no packing, no npm install; `next build` still runs).

const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const autocannon = require('autocannon')
const Redis = require('ioredis')
const { RedisServer, freePort, makeTlsFiles } = require('../__test__/support/redis-server.js')
const { packTarballs, run } = require('../scripts/pack.js')

const ROOT = path.resolve(__dirname, '..')
const EXAMPLE = path.join(ROOT, 'examples', 'nextjs')
const IOREDIS_OVERLAY = path.join(ROOT, 'examples', 'nextjs-ioredis')
const WORK = path.join(ROOT, '.tmp', 'bench-route')
const APPS = ['addon', 'ioredis']
/** The files both apps take from examples/nextjs, unchanged. */
const SHARED = ['next.config.mjs', 'app/layout.tsx', 'app/page.tsx', 'app/api/profile', 'app/api/lock', 'app/api/floor']
/** What each app adds: from examples/nextjs for the addon, from examples/nextjs-ioredis for ioredis. */
const OWN = {
  addon: { from: EXAMPLE, files: ['package.json', 'tsconfig.json', 'lib/redis-addon.ts'] },
  ioredis: { from: IOREDIS_OVERLAY, files: ['package.json', 'tsconfig.json', 'lib/redis-ioredis.ts'] },
}
const LUA = ['sliding_window', 'acquire_lock', 'release_lock']
/** A limit no caller reaches in a run: every request does the rate-limit work and is allowed. */
const RATE_LIMIT = 1000000

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : fallback
}
const flag = (name) => process.argv.includes(`--${name}`)
const log = (message) => process.stderr.write(`[bench:route] ${message}\n`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const nextBin = (dir) => path.join(dir, 'node_modules', 'next', 'dist', 'bin', 'next')

// ── the two apps ─────────────────────────────────────────────────────────────

/** Lays out `.tmp/bench-route/<app>` from the shared route files and the app's own module (node_modules kept). */
function layOut(app) {
  const dir = path.join(WORK, app)
  fs.mkdirSync(dir, { recursive: true })
  for (const entry of fs.readdirSync(dir)) {
    if (entry !== 'node_modules') fs.rmSync(path.join(dir, entry), { recursive: true, force: true })
  }
  const copy = (from, file) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true })
    fs.cpSync(path.join(from, file), path.join(dir, file), { recursive: true })
  }
  for (const file of SHARED) copy(EXAMPLE, file)
  for (const file of OWN[app].files) copy(OWN[app].from, file)
  if (app === 'ioredis') {
    // The package's own scripts, read by lib/redis-ioredis.ts at start-up.
    fs.mkdirSync(path.join(dir, 'lib', 'scripts'), { recursive: true })
    for (const name of LUA) {
      fs.copyFileSync(path.join(ROOT, 'src', 'scripts', `${name}.lua`), path.join(dir, 'lib', 'scripts', `${name}.lua`))
    }
  }
  // The routes reach Redis through @/lib/redis only: that import is the one difference.
  for (const file of SHARED.filter((f) => f.startsWith('app/api/'))) {
    for (const route of fs.readdirSync(path.join(dir, file), { recursive: true })) {
      if (!route.endsWith('.ts')) continue
      const text = fs.readFileSync(path.join(dir, file, route), 'utf8')
      if (/from '@yesgoddess\/redis'|from 'ioredis'/.test(text)) throw new Error(`${file}/${route} must import @/lib/redis, not the client`)
    }
  }
  return dir
}

/** Installs and builds both apps (the addon from its packed tarballs, as npm delivers it). */
function prepare(install, binary) {
  const dirs = Object.fromEntries(APPS.map((app) => [app, layOut(app)]))
  const step = (app, what, command, args, env = {}) => {
    const t = Date.now()
    log(`${app}: ${what}`)
    run(command, args, { cwd: dirs[app], stdio: ['ignore', 2, 2], env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', ...env } })
    log(`${app}: ${what} took ${((Date.now() - t) / 1000).toFixed(1)} s`)
  }
  if (install) {
    const { rootTgz, platformTgz } = packTarballs(path.join(ROOT, '.tmp', 'pack'), { binary })
    const npm = ['install', '--no-audit', '--no-fund', '--loglevel=error', '--no-package-lock']
    step('addon', 'npm install (the packed tarballs)', 'npm', [...npm, '--no-save', platformTgz, rootTgz])
    step('ioredis', 'npm install', 'npm', npm)
  }
  for (const app of APPS) {
    if (!fs.existsSync(nextBin(dirs[app]))) throw new Error(`${dirs[app]} has no next installed (run without --no-install)`)
    step(app, 'next build', process.execPath, [nextBin(dirs[app]), 'build'])
  }
  return dirs
}

/** `next start` on a free port; resolves once it answers. */
async function startNext(app, dir, env) {
  const port = await freePort()
  const child = spawn(process.execPath, [nextBin(dir), 'start', '-p', String(port), '-H', '127.0.0.1'], {
    cwd: dir,
    env: {
      ...process.env,
      NEXT_TELEMETRY_DISABLED: '1',
      ...env,
      // The same timing hooks in both apps (bench/route-timing.js).
      NODE_OPTIONS: [process.env.NODE_OPTIONS, `--require ${JSON.stringify(path.join(__dirname, 'route-timing.js'))}`].filter(Boolean).join(' '),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so that stopping it stops its workers too
  })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 120000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${app}: next start exited:\n${output}`)
    try {
      await fetch(`${base}/`)
      break
    } catch {
      if (Date.now() > deadline) throw new Error(`${app}: next start did not answer in 120 s:\n${output}`)
      await sleep(250)
    }
  }
  return { app, child, base, output: () => output }
}

function stopNext(next) {
  if (next && next.child.exitCode === null) {
    try {
      process.kill(-next.child.pid, 'SIGTERM')
    } catch {
      next.child.kill('SIGTERM')
    }
  }
}

// ── CPU from /proc ───────────────────────────────────────────────────────────

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** /proc/<pid>/stat: { ppid, comm, ticks: utime + stime }, or null once the process is gone. */
function procStat(pid) {
  let text
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  const close = text.lastIndexOf(')')
  const comm = text.slice(text.indexOf('(') + 1, close)
  const fields = text.slice(close + 2).split(' ') // fields[0] is field 3 (state)
  return { ppid: Number(fields[1]), comm, ticks: Number(fields[11]) + Number(fields[12]) }
}

/** The pid and its descendants, with their names. */
function processTree(root) {
  const children = new Map()
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = procStat(entry)
    if (stat === null) continue
    if (!children.has(stat.ppid)) children.set(stat.ppid, [])
    children.get(stat.ppid).push(Number(entry))
  }
  const tree = []
  const visit = (pid) => {
    tree.push(pid)
    for (const child of children.get(pid) || []) visit(child)
  }
  visit(root)
  return tree
}

/** CPU seconds (user + system) used so far by the processes of `pids`. */
function cpuSeconds(pids) {
  let ticks = 0
  for (const pid of pids) ticks += procStat(pid)?.ticks ?? 0
  return ticks / CLK_TCK
}

// ── load ─────────────────────────────────────────────────────────────────────

/** A small fast PRNG (xorshift32), so that the request mix costs the load generator little. */
function rng(seed) {
  let x = seed >>> 0 || 1
  return (n) => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x % n
  }
}

/** The autocannon request mix of a route: a path and headers per request. */
function requestsFor(route, opts, seed) {
  const pick = rng(seed)
  if (route === 'profile' || route === 'floor') {
    return [{
      setupRequest: (req) => {
        req.path = `/api/${route}/${pick(opts.profiles)}`
        req.headers = { ...req.headers, 'x-caller-id': `caller-${pick(opts.callers)}`, 'x-sent': sentStamp() }
        return req
      },
    }]
  }
  return [{
    setupRequest: (req) => {
      req.path = `/api/lock/${pick(opts.lockIds)}`
      req.headers = { ...req.headers, 'x-sent': sentStamp() }
      return req
    },
  }]
}

/**
 * The epoch time in ms (µs resolution) for the \`x-sent\` header: autocannon
 * calls setupRequest just before it writes the request (bench/route-timing.js).
 */
const sentStamp = () => (performance.timeOrigin + performance.now()).toFixed(3)

/** The server's split of the latency since the last call (bench/route-timing.js), and a fresh start. */
async function serverTiming(base) {
  const r = await fetch(`${base}/__bench/timing`)
  if (r.status !== 200) throw new Error(`${base}/__bench/timing: ${r.status} (is bench/route-timing.js preloaded?)`)
  return r.json()
}

/** Runs autocannon; with `measure`, keeps each 2xx response's latency (ms, fractional). */
function load(base, route, connections, seconds, opts, seed, measure) {
  const latencies = []
  return new Promise((resolve, reject) => {
    const instance = autocannon({
      url: base,
      connections,
      duration: seconds,
      requests: requestsFor(route, opts, seed),
    }, (error, result) => (error ? reject(error) : resolve({ result, latencies })))
    if (measure) {
      instance.on('response', (_client, statusCode, _bytes, responseTime) => {
        if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime)
      })
    }
  })
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : 0
}

/** Loads every profile of the pool once (each a miss: a load under withLock and a cache set). */
async function primeProfiles(base, profiles) {
  let next = 0
  const worker = async () => {
    while (next < profiles) {
      const id = next++
      const r = await fetch(`${base}/api/profile/${id}`, { headers: { 'x-caller-id': 'primer' } })
      await r.arrayBuffer()
      if (r.status !== 200) throw new Error(`priming /api/profile/${id}: ${r.status}`)
    }
  }
  await Promise.all(Array.from({ length: 32 }, worker))
}

/** One measured run of one app: FLUSHALL, prime, warm up, measure. */
async function oneRun(next, route, connections, opts, admin, redisPid, seed) {
  await admin.flushall()
  if (route === 'profile') await primeProfiles(next.base, opts.profiles)
  if (opts.warmup > 0) await load(next.base, route, connections, opts.warmup, opts, seed ^ 0x5bd1e995, false)
  const pids = processTree(next.child.pid)
  const nextBefore = cpuSeconds(pids)
  const redisBefore = cpuSeconds([redisPid])
  const selfBefore = process.cpuUsage()
  await serverTiming(next.base) // starts over: the warm-up's requests are not counted
  const { result, latencies } = await load(next.base, route, connections, opts.seconds, opts, seed, true)
  const nextCpu = cpuSeconds(pids) - nextBefore
  const redisCpu = cpuSeconds([redisPid]) - redisBefore
  const self = process.cpuUsage(selfBefore)
  const split = await serverTiming(next.base)
  const sorted = Float64Array.from(latencies).sort()
  const requests = result.requests.total
  return {
    app: next.app,
    route,
    connections,
    requests,
    reqPerSec: requests / result.duration,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    nextCpuUsPerReq: requests ? (nextCpu * 1e6) / requests : 0,
    redisCpuUsPerReq: requests ? (redisCpu * 1e6) / requests : 0,
    loaderCpuUsPerReq: requests ? (self.user + self.system) / requests : 0,
    loaderBusy: (self.user + self.system) / 1e6 / result.duration,
    arrivalP50Ms: split.arrival.p50Ms,
    arrivalP99Ms: split.arrival.p99Ms,
    inServerP50Ms: split.inServer.p50Ms,
    inServerP99Ms: split.inServer.p99Ms,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSeconds: result.duration,
    autocannon: { p50Ms: result.latency.p50, p99Ms: result.latency.p99, reqPerSecAverage: result.requests.average },
    nextProcesses: pids.map((pid) => `${pid} ${procStat(pid)?.comm ?? '?'}`),
  }
}

// ── checks before measuring ──────────────────────────────────────────────────

/** Both apps answer the routes alike (same status, source, header fields). */
async function checkApps(nexts, admin) {
  const seen = {}
  for (const next of nexts) {
    await admin.flushall()
    const get = async (p, headers = {}) => {
      const r = await fetch(`${next.base}${p}`, { headers })
      return { status: r.status, headers: r.headers, body: await r.json() }
    }
    const first = await get('/api/profile/check', { 'x-caller-id': 'checker' })
    const second = await get('/api/profile/check', { 'x-caller-id': 'checker' })
    const lock = await get('/api/lock/check')
    const keys = (await admin.keys('*')).sort()
    seen[next.app] = {
      profile: [first.status, first.body.source, second.status, second.body.source, first.headers.get('x-cache'), second.headers.get('x-cache')].join(' '),
      policy: second.headers.get('ratelimit-policy'),
      remaining: second.headers.get('ratelimit'),
      lock: `${lock.status} ${typeof lock.body.fencingToken}`,
      keys: keys.join(' '),
    }
    log(`${next.app}: ${JSON.stringify(seen[next.app])}`)
  }
  const [a, b] = APPS.map((app) => seen[app])
  const same = JSON.stringify(a) === JSON.stringify(b)
  const expected = a.profile === '200 database 200 cache MISS HIT' && a.lock === '200 number'
  if (!same || !expected) throw new Error(`the two apps do not answer alike:\n${JSON.stringify(seen, null, 2)}`)
  log('both apps answer the routes alike (status, cache source, RateLimit fields, keys written)')
}

// ── report ───────────────────────────────────────────────────────────────────

const FIGURES = [
  'reqPerSec', 'p50Ms', 'p99Ms', 'nextCpuUsPerReq', 'redisCpuUsPerReq', 'loaderCpuUsPerReq', 'loaderBusy',
  'arrivalP50Ms', 'arrivalP99Ms', 'inServerP50Ms', 'inServerP99Ms', 'non2xx', 'errors', 'timeouts',
]

/** The median of each figure over the runs of one cell (the mean of the middle two for an even count). */
function median(runs) {
  const out = { app: runs[0].app, route: runs[0].route, connections: runs[0].connections, runs: runs.length }
  for (const key of FIGURES) {
    const sorted = runs.map((r) => r[key]).sort((x, y) => x - y)
    const mid = Math.floor(sorted.length / 2)
    out[key] = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  }
  return out
}

/** The cell of one route, load and app, if the run has it. */
function cellOf(cells, route, connections, app) {
  return cells.find((c) => c.route === route && c.connections === connections && c.app === app)
}

/** A Markdown table: its header names, then one array of cell texts per row. */
function markdown(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n')
}

/** `c[key]` over the ioredis app's in the same cell, for an addon row (else ''). */
function ratioToIoredis(cells, c, key) {
  const other = cellOf(cells, c.route, c.connections, 'ioredis')
  return c.app === 'addon' && other && other[key] ? `${(c[key] / other[key]).toFixed(2)}×` : ''
}

function table(cells) {
  const f = (n, d = 0) => n.toFixed(d)
  const header = [
    'route', 'connections', 'app', 'req/s', 'p50 ms', 'p99 ms', 'next CPU µs/req', 'redis CPU µs/req', 'non-2xx + errors',
    'req/s addon/ioredis', 'p50 addon/ioredis', 'p99 addon/ioredis', 'next CPU addon/ioredis',
  ]
  return markdown(header, cells.map((c) => [
    c.route, c.connections, c.app, f(c.reqPerSec), f(c.p50Ms, 2), f(c.p99Ms, 2), f(c.nextCpuUsPerReq), f(c.redisCpuUsPerReq),
    f(c.non2xx + c.errors + c.timeouts),
    ...['reqPerSec', 'p50Ms', 'p99Ms', 'nextCpuUsPerReq'].map((key) => ratioToIoredis(cells, c, key)),
  ]))
}

/** Where each cell's latency is made: before the server reads the request, and inside it. */
function splitTable(cells) {
  const f = (n, d = 2) => n.toFixed(d)
  const header = [
    'route', 'connections', 'app', 'p50 ms', 'p99 ms', 'arrival p50 ms', 'arrival p99 ms', 'in server p50 ms', 'in server p99 ms',
    'in server p99 addon/ioredis', 'load generator busy',
  ]
  return markdown(header, cells.map((c) => [
    c.route, c.connections, c.app, f(c.p50Ms), f(c.p99Ms), f(c.arrivalP50Ms), f(c.arrivalP99Ms), f(c.inServerP50Ms), f(c.inServerP99Ms),
    ratioToIoredis(cells, c, 'inServerP99Ms'), `${f(c.loaderBusy * 100, 0)} %`,
  ]))
}

/**
 * What halving the ioredis app's p99 would take, where the run has the floor
 * route. Under a closed loop of C connections the mean latency is C / (req/s)
 * (Little's law), and p99 >= mean; so a p99 of half the ioredis app's needs
 * req/s >= 2 * mean / p99 of the ioredis app's even with a flat latency
 * distribution (p99 = mean), and 2 * (floor's p99/mean) / (ioredis p99/mean)
 * with the floor's own shape. Next.js runs on one core, so req/s is at most
 * 1 / (its CPU per request): no client can take it past the floor's CPU per
 * request (the same code with no Redis work), i.e. past ioredis's CPU per
 * request / the floor's.
 */
function boundTable(cells) {
  const f = (n) => `${n.toFixed(2)}×`
  const rows = []
  for (const io of cells.filter((c) => c.app === 'ioredis' && c.route !== 'floor')) {
    const addon = cellOf(cells, io.route, io.connections, 'addon')
    const floors = APPS.map((app) => cellOf(cells, 'floor', io.connections, app)).filter(Boolean)
    if (!addon || floors.length === 0 || !io.reqPerSec) continue
    const shape = (c) => c.p99Ms / ((c.connections / c.reqPerSec) * 1000)
    const floorShape = Math.min(...floors.map(shape))
    const floorCpu = Math.min(...floors.map((c) => c.nextCpuUsPerReq))
    rows.push([
      io.route, io.connections, shape(io).toFixed(2), f(2 / shape(io)), f((2 * floorShape) / shape(io)),
      f(io.nextCpuUsPerReq / floorCpu), f(addon.reqPerSec / io.reqPerSec),
    ])
  }
  const header = [
    'route', 'connections', 'ioredis p99 / mean', 'req/s needed, flat latency', 'req/s needed, the floor\'s shape',
    'most req/s the floor allows', 'addon req/s',
  ]
  return rows.length ? markdown(header, rows) : null
}

/** The report of a run: the main table, the split of the latency, and (with the floor route) the bound. */
function report(cells) {
  const bound = boundTable(cells)
  return (
    `${table(cells)}\n\nWhere the latency is made (bench/route-timing.js):\n\n${splitTable(cells)}` +
    (bound ? `\n\nWhat a p99 of half the ioredis app's would take (Little's law; see boundTable in bench/route.js):\n\n${bound}` : '')
  )
}

// ── main ─────────────────────────────────────────────────────────────────────

async function main() {
  const from = option('from', undefined)
  if (from) {
    // Only the report, again, from a run's JSON (e.g. after the report grew a table).
    console.log(report(JSON.parse(fs.readFileSync(from, 'utf8')).cells))
    return
  }
  const opts = {
    seconds: Number(option('seconds', '10')),
    warmup: Number(option('warmup', '3')),
    repeat: Number(option('repeat', '2')),
    profiles: Number(option('profiles', '1000')),
    callers: Number(option('callers', '10000')),
    lockIds: Number(option('lock-ids', '100000')),
  }
  const loads = option('loads', '10,50,200').split(',').map(Number)
  const routes = option('routes', 'profile,lock').split(',')
  for (const route of routes) if (!['profile', 'lock', 'floor'].includes(route)) throw new Error(`unknown route ${route}: profile, lock, floor`)
  const useTls = flag('tls')
  const started = Date.now()

  const dirs = prepare(!flag('no-install'), option('binary', undefined))
  const tls = useTls ? makeTlsFiles() : null
  const server = await new RedisServer(tls ? { tls } : { tls: false }).start()
  const admin = new Redis(server.url, tls ? { tls: { ca: fs.readFileSync(tls.ca) } } : {})
  const env = { REDIS_URL: server.url, PROFILE_RATE_LIMIT: String(RATE_LIMIT), ...(tls ? { NODE_EXTRA_CA_CERTS: tls.ca } : {}) }
  const nexts = []
  const runs = []
  try {
    for (const app of APPS) nexts.push(await startNext(app, dirs[app], env))
    log(`redis-server ${server.url}${tls ? ' (TLS only)' : ''}; ${nexts.map((n) => `${n.app} ${n.base}`).join(', ')}`)
    await checkApps(nexts, admin)
    const measured = Date.now()
    let seed = 1
    for (const route of routes) {
      for (const connections of loads) {
        for (let i = 0; i < opts.repeat; i++) {
          // A B, then B A: a drift of the host over a cell weighs on both apps alike.
          for (const next of i % 2 === 0 ? nexts : [...nexts].reverse()) {
            // The same request sequence for both apps within a round.
            const r = await oneRun(next, route, connections, opts, admin, server.child.pid, 0x9e3779b9 + seed + i)
            runs.push(r)
            log(`${route} c=${connections} ${next.app} #${i + 1}: ${Math.round(r.reqPerSec)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, ` +
              `p99 ${r.p99Ms.toFixed(2)} ms, next ${r.nextCpuUsPerReq.toFixed(0)} µs/req, redis ${r.redisCpuUsPerReq.toFixed(0)} µs/req` +
              (r.non2xx + r.errors + r.timeouts ? `, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts` : ''))
          }
        }
        seed++
      }
    }
    log(`measuring took ${((Date.now() - measured) / 1000).toFixed(0)} s; all in ${((Date.now() - started) / 1000).toFixed(0)} s`)
  } finally {
    nexts.forEach(stopNext)
    admin.disconnect()
    await server.stop()
    if (tls) fs.rmSync(tls.dir, { recursive: true, force: true })
  }

  const cells = []
  for (const route of routes) {
    for (const connections of loads) {
      for (const app of APPS) cells.push(median(runs.filter((r) => r.route === route && r.connections === connections && r.app === app)))
    }
  }
  const text = report(cells)
  console.log(text)
  const dir = path.join(__dirname, 'results')
  fs.mkdirSync(dir, { recursive: true })
  const name = `route${useTls ? '-tls' : ''}`
  const meta = {
    date: new Date().toISOString(),
    tls: useTls,
    node: process.version,
    ...opts,
    loads,
    routes,
    rateLimit: RATE_LIMIT,
    note: 'each cell: the median of the runs (mean of the middle two for an even count); CPU µs/req: user + system of the next start process tree / redis-server over the measured window',
  }
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ ...meta, cells, runs }, null, 2))
  fs.writeFileSync(path.join(dir, `${name}.md`), `${text}\n`)
  log(`wrote bench/results/${name}.md and .json`)
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
