'use strict'
// Raw GET and SET through getRedisClient() side by side with ioredis (plain
// and auto-pipelined), on one private redis-server, in one run.
//   node bench/run.js [--suite raw|cache|limit|lock|services] [--tls] [--seconds 3] [--repeat 3] [--concurrency 1,16,128,1024] [--ops …] [--clients …]
//   node bench/run.js --cluster [--tls] …: on a private Redis Cluster against ioredis Cluster (bench/cluster.js).
// --tls: the server is TLS-only (a CA made with openssl for the run), and every
// client — the addon and ioredis alike — trusts it through NODE_EXTRA_CA_CERTS.
// raw: GET/SET through getRedisClient(); cache: cacheService get/getSpread/set/getOrSet of a ~1 KB
// profile against the same cache written on ioredis (and, with --ops getList, reads of pages of
// 8 to 12 records: lists of varying length; getSparse, the same pages with fields left out).
// limit: checkLimit when every call is allowed, and a flood from one identifier
// over its limit, against the seed's sorted-set script on ioredis; per decision,
// the server's time (INFO commandstats) and redis-server's CPU (/proc), and the
// memory of a full window (MEMORY USAGE at limit 100) of each structure.
// services: featureFlags.isEnabled (cached), counters.increment and a replayed
// withIdempotency against the obvious ioredis code for the same job (a GET per
// check; INCRBY; GET + JSON.parse).
// Every cell is the median of --repeat interleaved runs, each in a fresh process.
// Prints a Markdown table and writes bench/results/raw.json.
const fs = require('node:fs')
const path = require('node:path')
const { startRedisServer, makeTlsFiles } = require('../__test__/support/redis-server.js')
const { execFileSync } = require('node:child_process')
const Redis = require('ioredis')
const { runChild } = require('./lib.js')

/** Each suite: its worker and default ops. */
const SUITES = {
  raw: { worker: 'client-worker.js', ops: 'get,set' },
  cache: { worker: 'cache-worker.js', ops: 'get,getSpread,set,getOrSet' },
  limit: { worker: 'limit-worker.js', ops: 'checkLimit,flood' },
  lock: { worker: 'lock-worker.js', ops: 'withLock' },
  services: { worker: 'services-worker.js', ops: 'isEnabled,increment,idempotentReplay' },
}

/** Script calls and their server time (µs) since the last CONFIG RESETSTAT, from INFO commandstats. */
async function scriptStats(admin) {
  const info = await admin.info('commandstats')
  let calls = 0
  let usec = 0
  for (const m of info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+),usec=(\d+)/g)) {
    calls += Number(m[2])
    usec += Number(m[3])
  }
  return { calls, usec }
}

/** CPU time (µs) redis-server has used, all its threads (/proc/<pid>/task/<tid>/schedstat, ns). */
function serverCpuUs(pid) {
  let ns = 0
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ns / 1000
}

/** MEMORY USAGE of a full window (limit 100, one minute) written by `lua`. */
async function fullWindowBytes(admin, lua, key) {
  for (let i = 0; i < 100; i++) await admin.eval(lua, 1, key, 100, 60000, 1)
  return admin.call('MEMORY', 'USAGE', key)
}

/**
 * The server's own ceiling for the sliding-window script: redis-benchmark with
 * a deep pipeline over 10,000 identifiers (no Node client in the way).
 */
function serverCeiling(url, seconds, file, tag) {
  const { port } = new URL(url)
  const lua = fs.readFileSync(file, 'utf8')
  const sha = execFileSync('redis-cli', ['-p', port, 'SCRIPT', 'LOAD', lua], { encoding: 'utf8' }).trim()
  const requests = String(Math.round(200000 * seconds))
  const out = execFileSync(
    'redis-benchmark',
    ['-p', port, '-q', '-n', requests, '-c', '16', '-P', '64', '-r', '10000',
     'EVALSHA', sha, '1', `ratelimit:api:ceiling-${tag}:__rand_int__`, '100', '60000', '1'],
    { encoding: 'utf8' },
  )
  const m = /([\d.]+) requests per second/.exec(out)
  return m ? Number(m[1]) : 0
}

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : fallback
}

/** The median of each numeric figure of several runs of one cell. */
function median(runs) {
  const out = { ...runs[0], runs: runs.length }
  for (const key of ['opsPerSec', 'p50Us', 'p99Us', 'cpuUsPerOp', 'serverUsPerOp', 'serverUsPerDecision', 'serverCpuUsPerDecision', 'scriptsPerDecision', 'deniedFraction']) {
    if (runs[0][key] === undefined) continue
    const sorted = runs.map((r) => r[key]).sort((a, b) => a - b)
    out[key] = sorted[Math.floor(sorted.length / 2)]
  }
  return out
}

async function main() {
  const seconds = Number(option('seconds', '3'))
  const levels = option('concurrency', '1,16,128,1024').split(',').map(Number)
  const suite = option('suite', 'raw')
  if (!SUITES[suite]) throw new Error(`unknown suite ${suite}: ${Object.keys(SUITES).join(', ')}`)
  const { worker } = SUITES[suite]
  const ops = option('ops', SUITES[suite].ops).split(',')
  const repeat = Number(option('repeat', '3'))
  const clients = option('clients', 'addon,ioredis,ioredis-auto').split(',')
  const useTls = process.argv.includes('--tls')
  const tls = useTls ? makeTlsFiles() : null
  const server = await startRedisServer(tls ? { tls } : {})
  const childEnv = tls ? { NODE_EXTRA_CA_CERTS: tls.ca } : {}
  const rows = []
  const admin = new Redis(server.url, tls ? { tls: { ca: fs.readFileSync(tls.ca) } } : {})
  let ceiling = 0
  let seedCeiling = 0
  const memory = {}
  const seedScript = path.join(__dirname, 'seed-sliding-window.lua')
  const newScript = path.join(__dirname, '..', 'src', 'scripts', 'sliding_window.lua')
  try {
    if (suite === 'limit' && !useTls) {
      ceiling = serverCeiling(server.url, seconds, newScript, 'packed')
      seedCeiling = serverCeiling(server.url, seconds, seedScript, 'sorted-set')
      process.stderr.write(`server ceiling (redis-benchmark, -P 64): ${Math.round(ceiling)} scripts/s (the seed's script: ${Math.round(seedCeiling)})\n`)
    }
    if (suite === 'limit') {
      memory.packed = await fullWindowBytes(admin, fs.readFileSync(newScript, 'utf8'), 'ratelimit:api:memory-packed')
      memory.sortedSet = await fullWindowBytes(admin, fs.readFileSync(seedScript, 'utf8'), 'ratelimit:api:memory-sorted-set')
    }
    for (const op of ops) {
      for (const c of levels) {
        // Interleave the clients and repeat, then keep the median of each figure:
        // a shared 2-core VM is noisy, and ratios from one sample each mislead.
        const samples = new Map(clients.map((client) => [client, []]))
        for (let i = 0; i < repeat; i++) {
          for (const client of clients) {
            await admin.config('RESETSTAT')
            const cpuBefore = serverCpuUs(server.child.pid)
            const r = await runChild(worker, [client, op, c, seconds, server.url], childEnv)
            const cpu = serverCpuUs(server.child.pid) - cpuBefore
            const stats = await scriptStats(admin)
            r.serverUsPerOp = stats.calls > 0 ? stats.usec / stats.calls : 0
            if (r.decisions > 0) {
              // Per decision of the client (the deny cache answers some without a script).
              r.serverUsPerDecision = stats.usec / r.decisions
              r.serverCpuUsPerDecision = cpu / r.decisions
              r.scriptsPerDecision = stats.calls / r.decisions
              r.deniedFraction = r.denied / r.decisions
            }
            samples.get(client).push(r)
            const reader = r.jsReaderAdopted === undefined ? '' : r.jsReaderAdopted > 0 ? ' (JS-thread reader)' : ' (Rust-thread reader)'
            process.stderr.write(`${op} C=${c} ${client} #${i + 1}: ${Math.round(r.opsPerSec)} ops/s p50 ${r.p50Us.toFixed(0)} µs${reader}\n`)
          }
        }
        for (const client of clients) rows.push(median(samples.get(client)))
      }
    }
  } finally {
    admin.disconnect()
    await server.stop()
    if (tls) fs.rmSync(tls.dir, { recursive: true, force: true })
  }
  const find = (client, op, c) => rows.find((r) => r.client === client && r.op === op && r.concurrency === c)
  const f = (n, d = 0) => n.toFixed(d)
  const lines = [
    `| op | in flight | client | ops/s | p50 µs | p99 µs | CPU µs/op | ops/s vs ioredis | ops/s vs ioredis auto | CPU vs ioredis | CPU vs ioredis auto |`,
    `|---|---|---|---|---|---|---|---|---|---|---|`,
  ]
  for (const r of rows) {
    const plain = find('ioredis', r.op, r.concurrency)
    const auto = find('ioredis-auto', r.op, r.concurrency)
    const ratio = (a, b) => (b ? `${f(a, 2)}×` : '')
    lines.push(
      `| ${r.op} | ${r.concurrency} | ${r.client} | ${f(r.opsPerSec)} | ${f(r.p50Us)} | ${f(r.p99Us)} | ${f(r.cpuUsPerOp, 2)} | ` +
        (r.client === 'addon' && plain && auto
          ? `${ratio(r.opsPerSec / plain.opsPerSec, plain)} | ${ratio(r.opsPerSec / auto.opsPerSec, auto)} | ` +
            `${ratio(r.cpuUsPerOp / plain.cpuUsPerOp, plain)} | ${ratio(r.cpuUsPerOp / auto.cpuUsPerOp, auto)} |`
          : ' | | | |'),
    )
  }
  if (suite === 'lock') {
    // The server's own ceiling: 1 s over its time per script call (INFO commandstats,
    // same run), i.e. what it could do running nothing else. (The limit suite's
    // figures are per decision, below: the addon puts several in one script call.)
    const perOp = 2
    lines.push(
      '',
      '| op | in flight | client | server µs per script | scripts/s the server could run | ops/s | of that ceiling |',
      '|---|---|---|---|---|---|---|',
    )
    for (const r of rows) {
      const own = r.serverUsPerOp > 0 ? 1e6 / r.serverUsPerOp / perOp : 0
      lines.push(
        `| ${r.op} | ${r.concurrency} | ${r.client} | ${f(r.serverUsPerOp, 2)} | ${f(own)} | ${f(r.opsPerSec)} | ${own ? `${f((100 * r.opsPerSec) / own, 1)} %` : ''} |`,
      )
    }
  }
  if (suite === 'limit') {
    // Per decision: what the server spent (its own figures), and what the deny cache saved.
    lines.push(
      '',
      '| op | in flight | client | ops/s | denied | scripts per decision | server µs per decision (commandstats) | redis-server CPU µs per decision | ops/s vs ioredis | server µs vs ioredis | server CPU vs ioredis |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
    )
    for (const r of rows) {
      const plain = find('ioredis', r.op, r.concurrency)
      const vs = (a, b) => (plain && b > 0 && r.client !== 'ioredis' ? `${f(a / b, 2)}×` : '')
      lines.push(
        `| ${r.op} | ${r.concurrency} | ${r.client} | ${f(r.opsPerSec)} | ${f(100 * (r.deniedFraction || 0), 1)} % | ${f(r.scriptsPerDecision || 0, 3)} | ` +
          `${f(r.serverUsPerDecision || 0, 2)} | ${f(r.serverCpuUsPerDecision || 0, 2)} | ${vs(r.opsPerSec, plain && plain.opsPerSec)} | ` +
          `${vs(r.serverUsPerDecision, plain && plain.serverUsPerDecision)} | ${vs(r.serverCpuUsPerDecision, plain && plain.serverCpuUsPerDecision)} |`,
      )
    }
    lines.push(
      '',
      '| structure | MEMORY USAGE of a full window (limit 100) | server ceiling (redis-benchmark, -P 64, one decision per script call, scripts/s) |',
      '|---|---|---|',
      `| packed string (src/scripts/sliding_window.lua) | ${memory.packed} B | ${ceiling ? f(ceiling) : 'n/a (TLS)'} |`,
      `| sorted set (the seed's script) | ${memory.sortedSet} B | ${seedCeiling ? f(seedCeiling) : 'n/a (TLS)'} |`,
    )
  }
  const table = lines.join('\n')
  console.log(table)
  const dir = path.join(__dirname, 'results')
  fs.mkdirSync(dir, { recursive: true })
  const name = `${suite}${useTls ? '-tls' : ''}`
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ date: new Date().toISOString(), tls: useTls, seconds, rows, memory }, null, 2))
  fs.writeFileSync(path.join(dir, `${name}.md`), table + '\n')
}

// --cluster: the Redis Cluster benchmark, bench/cluster.js (its header lists its flags).
const run = process.argv.includes('--cluster') ? require('./cluster.js').main : main
run().catch((error) => {
  console.error(error)
  process.exit(1)
})
