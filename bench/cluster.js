'use strict'
// The cluster benchmark (issue 13): the addon with `cluster: true` side by side
// with ioredis's `Cluster` on one private Redis Cluster (3 masters + 3 replicas,
// __test__/support/cluster.js), in one run.
//   npm run bench -- --cluster [--tls] [--seconds 3] [--repeat 3] [--concurrency 1,16,128,1024]
//                    [--ops get,set,cacheGet,invalidatePattern] [--clients addon,ioredis,ioredis-auto]
//                    [--invalidate-clients addon,ioredis,ioredis-stream] [--keys 100000]
//   (or node bench/cluster.js with the same flags)
// --tls: every node serves TLS only (tls-cluster, tls-replication; a CA made with
//   openssl for the run); the addon gets `tls: { caFile }` and NODE_EXTRA_CA_CERTS,
//   ioredis `redisOptions: { tls: { ca } }`.
// --seconds: measured time of each closed-loop run (after 0.5 s of warm-up).
// --repeat: interleaved runs per cell, each in a fresh process; every figure is the median.
// --concurrency: calls in flight for get/set/cacheGet.
// --ops: get, set (raw, 64 B values, through getRedisClient() / Cluster#get/set),
//   cacheGet (cacheService.get of a ~1 KB profile vs GET + JSON.parse on ioredis),
//   each over 256 keys spread over every master, round robin; invalidatePattern
//   (below).
// --clients: for the closed-loop ops: addon | ioredis | ioredis-auto (enableAutoPipelining).
// --invalidate-clients: addon (cacheService.invalidatePattern) | ioredis (a loop over
//   nodes('master'), masters in parallel: SCAN MATCH … COUNT 1000, each batch's keys
//   grouped by slot and UNLINKed in one pipeline, since a cluster node refuses a
//   cross-slot UNLINK; the next SCAN does not wait for the pipeline) | ioredis-stream
//   (the same with scanStream, paused while each batch's pipeline runs).
// --keys: how many keys invalidatePattern removes (default 100,000, spread over the 3
//   masters by their slots); 1,000 other keys that do not match stay. Before each run
//   every master is flushed and seeded (pipelined SETs on a connection per master, then
//   WAIT for the replicas), outside the measured process; after it, every master must
//   hold exactly the 1,000 other keys and the client must report --keys removed, else
//   the cell is reported FAILED.
// Prints Markdown tables (the closed-loop ops as bench/run.js, invalidatePattern, and
// the issue's targets) and writes bench/results/cluster[-tls].{json,md}.
const fs = require('node:fs')
const path = require('node:path')
const Redis = require('ioredis')
const calculateSlot = require('cluster-key-slot')
const { RedisCluster } = require('../__test__/support/cluster.js')
const { makeTlsFiles } = require('../__test__/support/redis-server.js')
const { runChild } = require('./lib.js')

const WORKER = 'cluster-worker.js'
const PATTERN = 'cache:bench:inv:*'
const KEEP = 1000

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : fallback
}

const middle = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)]

/** The median of each figure of the successful runs of one cell; `failed` when any run failed. */
function median(runs) {
  const ok = runs.filter((r) => !r.failed)
  const failed = runs.filter((r) => r.failed).map((r) => r.failed)
  const out = { ...(ok[0] || runs[0]), runs: runs.length, failed: failed.length ? failed.join('; ') : null }
  for (const key of ['opsPerSec', 'p50Us', 'p99Us', 'cpuUsPerOp', 'ms', 'cpuMs', 'keysPerSec', 'removed']) {
    if (ok.length && ok[0][key] !== undefined) out[key] = middle(ok.map((r) => r[key]))
  }
  return out
}

/** The masters (port, slots) and, per slot, the index of its master. */
function topology(cluster) {
  const masters = cluster.masters()
  const owner = new Int8Array(16384).fill(-1)
  masters.forEach((m, index) => {
    for (const [a, b] of m.slots) owner.fill(index, a, b + 1)
  })
  return { masters, owner }
}

/** One key per master (so that a client reading them has a connection to each). */
function warmKeys(owner, count) {
  const keys = new Array(count).fill(null)
  for (let i = 0; keys.includes(null); i++) {
    const key = `bench:warm:${i}`
    const index = owner[calculateSlot(key)]
    if (keys[index] === null) keys[index] = key
  }
  return keys
}

/** Flushes every master, writes `total` matching keys and KEEP others, waits for the replicas; resolves the others' count per master. */
async function seed(links, owner, total) {
  await Promise.all(links.map((l) => l.flushall()))
  const perMaster = links.map(() => ({ inv: [], keep: [] }))
  for (let i = 0; i < total; i++) {
    const key = `cache:bench:inv:${i}`
    perMaster[owner[calculateSlot(key)]].inv.push(key)
  }
  for (let i = 0; i < KEEP; i++) {
    const key = `cache:bench:keep:${i}`
    perMaster[owner[calculateSlot(key)]].keep.push(key)
  }
  const value = JSON.stringify({ v: 'x'.repeat(80) })
  await Promise.all(
    links.map(async (link, index) => {
      const keys = [...perMaster[index].inv, ...perMaster[index].keep]
      for (let at = 0; at < keys.length; at += 10000) {
        const pipeline = link.pipeline()
        for (const key of keys.slice(at, at + 10000)) pipeline.set(key, value, 'EX', 3600)
        for (const [error] of await pipeline.exec()) if (error) throw error
      }
      await link.call('WAIT', 1, 10000)
    }),
  )
  return perMaster
}

/** Null when every master holds exactly its KEEP keys and nothing else, else what is wrong. */
async function verify(links, perMaster) {
  const problems = []
  await Promise.all(
    links.map(async (link, index) => {
      const { inv, keep } = perMaster[index]
      const size = await link.dbsize()
      // One EXISTS per key: a cluster node refuses a multi-key command across slots.
      const pipeline = link.pipeline()
      for (const key of keep) pipeline.exists(key)
      let kept = 0
      for (const [error, n] of await pipeline.exec()) {
        if (error) throw error
        kept += n
      }
      if (kept !== keep.length || size !== keep.length) {
        problems.push(`master ${index} (${link.options.port}): ${size - kept} of ${inv.length} matching keys left, ${kept}/${keep.length} others kept`)
      }
    }),
  )
  return problems.length ? problems.join(', ') : null
}

async function main() {
  const seconds = Number(option('seconds', '3'))
  const levels = option('concurrency', '1,16,128,1024').split(',').map(Number)
  const ops = option('ops', 'get,set,cacheGet,invalidatePattern').split(',')
  const repeat = Number(option('repeat', '3'))
  const clients = option('clients', 'addon,ioredis,ioredis-auto').split(',')
  const invalidateClients = option('invalidate-clients', 'addon,ioredis,ioredis-stream').split(',')
  const total = Number(option('keys', '100000'))
  const useTls = process.argv.includes('--tls')
  const tls = useTls ? makeTlsFiles() : null
  // A long node timeout: a node starved of CPU on a small machine must not be failed over mid-run.
  const cluster = await new RedisCluster({ tls: tls || false, nodeTimeoutMs: 15000 }).start()
  const { masters, owner } = topology(cluster)
  const childEnv = {
    YG_BENCH_WARM_KEYS: JSON.stringify(warmKeys(owner, masters.length)),
    ...(tls ? { YG_BENCH_CA: tls.ca, NODE_EXTRA_CA_CERTS: tls.ca } : {}),
  }
  const tlsOption = tls ? { tls: { ca: fs.readFileSync(tls.ca) } } : {}
  const links = masters.map((m) => new Redis({ host: '127.0.0.1', port: m.port, ...tlsOption }))
  process.stderr.write(`cluster ${cluster.url}: masters ${masters.map((m) => m.port).join(', ')}${useTls ? ' (TLS)' : ''}\n`)
  const rows = []
  const invalidations = []
  try {
    for (const op of ops.filter((o) => o !== 'invalidatePattern')) {
      for (const c of levels) {
        // Interleaved and repeated, the median kept: a shared 2-core VM is noisy.
        const samples = new Map(clients.map((client) => [client, []]))
        for (let i = 0; i < repeat; i++) {
          for (const client of clients) {
            let r
            try {
              r = await runChild(WORKER, [client, op, c, seconds, cluster.url], childEnv)
              process.stderr.write(`${op} C=${c} ${client} #${i + 1}: ${Math.round(r.opsPerSec)} ops/s p50 ${r.p50Us.toFixed(0)} µs\n`)
            } catch (error) {
              r = { client, op, concurrency: c, failed: error.message }
              process.stderr.write(`${op} C=${c} ${client} #${i + 1}: FAILED ${error.message}\n`)
            }
            samples.get(client).push(r)
          }
        }
        for (const client of clients) rows.push(median(samples.get(client)))
      }
    }
    if (ops.includes('invalidatePattern')) {
      const samples = new Map(invalidateClients.map((client) => [client, []]))
      for (let i = 0; i < repeat; i++) {
        for (const client of invalidateClients) {
          const perMaster = await seed(links, owner, total)
          let r
          try {
            r = await runChild(WORKER, [client, 'invalidatePattern', 0, 0, cluster.url, PATTERN], childEnv)
            const wrong = await verify(links, perMaster)
            if (wrong) r.failed = wrong
            else if (r.removed !== total) r.failed = `reported ${r.removed} removed of ${total}`
          } catch (error) {
            r = { client, op: 'invalidatePattern', failed: error.message }
          }
          r.keys = total
          r.perMaster = perMaster.map((m) => m.inv.length)
          if (!r.failed) r.keysPerSec = total / (r.ms / 1000)
          samples.get(client).push(r)
          process.stderr.write(
            `invalidatePattern ${client} #${i + 1}: ${r.failed ? `FAILED ${r.failed}` : `${total} keys in ${r.ms.toFixed(0)} ms, client CPU ${r.cpuMs.toFixed(0)} ms`}\n`,
          )
        }
      }
      for (const client of invalidateClients) invalidations.push(median(samples.get(client)))
    }
  } finally {
    for (const link of links) link.disconnect()
    await cluster.stop()
    if (tls) fs.rmSync(tls.dir, { recursive: true, force: true })
  }

  const f = (n, d = 0) => n.toFixed(d)
  const find = (client, op, c) => rows.find((r) => r.client === client && r.op === op && r.concurrency === c && !r.failed)
  const ratio = (a, b) => (b ? `${f(a / b, 2)}×` : '')
  const lines = [`Redis Cluster, 3 masters + 3 replicas${useTls ? ', TLS' : ''}; ${seconds} s per run, median of ${repeat} interleaved runs.`]
  if (rows.length) {
    lines.push(
      '',
      '| op | in flight | client | ops/s | p50 µs | p99 µs | CPU µs/op | ops/s vs ioredis | ops/s vs ioredis auto | CPU vs ioredis | CPU vs ioredis auto |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
    )
  }
  for (const r of rows) {
    if (r.failed) {
      lines.push(`| ${r.op} | ${r.concurrency} | ${r.client} | FAILED: ${r.failed} | | | | | | | |`)
      continue
    }
    const plain = find('ioredis', r.op, r.concurrency)
    const auto = find('ioredis-auto', r.op, r.concurrency)
    lines.push(
      `| ${r.op} | ${r.concurrency} | ${r.client} | ${f(r.opsPerSec)} | ${f(r.p50Us)} | ${f(r.p99Us)} | ${f(r.cpuUsPerOp, 2)} | ` +
        (r.client === 'addon'
          ? `${plain ? ratio(r.opsPerSec, plain.opsPerSec) : ''} | ${auto ? ratio(r.opsPerSec, auto.opsPerSec) : ''} | ` +
            `${plain ? ratio(r.cpuUsPerOp, plain.cpuUsPerOp) : ''} | ${auto ? ratio(r.cpuUsPerOp, auto.cpuUsPerOp) : ''} |`
          : ' | | | |'),
    )
  }
  const targets = []
  if (invalidations.length) {
    const addon = invalidations.find((r) => r.client === 'addon' && !r.failed)
    lines.push(
      '',
      `invalidatePattern('${PATTERN}'): ${total} matching keys over ${masters.length} masters (${invalidations[0].perMaster.join(' / ')}), ${KEEP} others kept.`,
      '',
      '| client | ms | keys/s | client CPU ms | addon faster by | status |',
      '|---|---|---|---|---|---|',
    )
    for (const r of invalidations) {
      if (r.failed) {
        lines.push(`| ${r.client} | | | | | FAILED: ${r.failed} |`)
        continue
      }
      lines.push(
        `| ${r.client} | ${f(r.ms)} | ${f(r.keysPerSec)} | ${f(r.cpuMs)} | ${addon && r.client !== 'addon' ? ratio(r.ms, addon.ms) : ''} | ok (${r.runs} runs) |`,
      )
    }
    const others = invalidations.filter((r) => r.client !== 'addon' && !r.failed)
    if (others.length) {
      const best = others.reduce((a, b) => (a.ms <= b.ms ? a : b))
      targets.push({ what: 'invalidatePattern', against: best.client, ratio: addon ? best.ms / addon.ms : null, target: 1 })
    }
  }
  // The issue's targets (at 128 and more in flight), against the faster ioredis variant of each cell.
  for (const r of rows) {
    if (r.client !== 'addon') continue
    if (r.concurrency < 128) continue
    const goal = r.op === 'cacheGet' ? 2 : 3
    const others = rows.filter((o) => o.client !== 'addon' && o.op === r.op && o.concurrency === r.concurrency && !o.failed)
    if (!others.length) continue
    const best = others.reduce((a, b) => (a.opsPerSec >= b.opsPerSec ? a : b))
    targets.push({ what: `${r.op} C=${r.concurrency}`, against: best.client, ratio: r.failed ? null : r.opsPerSec / best.opsPerSec, target: goal })
  }
  if (targets.length) {
    lines.push('', '| target (issue 13) | against | addon / ioredis | needed | met |', '|---|---|---|---|---|')
    for (const t of targets) {
      lines.push(`| ${t.what} | ${t.against} | ${t.ratio === null ? 'FAILED' : `${f(t.ratio, 2)}×`} | ≥ ${t.target}× | ${t.ratio !== null && t.ratio >= t.target ? 'yes' : 'no'} |`)
    }
  }
  const table = lines.join('\n')
  console.log(table)
  const dir = path.join(__dirname, 'results')
  fs.mkdirSync(dir, { recursive: true })
  const name = `cluster${useTls ? '-tls' : ''}`
  fs.writeFileSync(
    path.join(dir, `${name}.json`),
    JSON.stringify({ date: new Date().toISOString(), tls: useTls, seconds, repeat, keys: total, rows, invalidations, targets }, null, 2),
  )
  fs.writeFileSync(path.join(dir, `${name}.md`), table + '\n')
  return { rows, invalidations, targets }
}

module.exports = { main }

if (require.main === module) {
  main().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
