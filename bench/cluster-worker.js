'use strict'
// One cluster measurement in its own process (bench/cluster.js runs it):
//   node cluster-worker.js <client> <op> <concurrency> <seconds> <seed url>
// client: addon (configureRedis({ url, cluster: true })) | ioredis | ioredis-auto
// (ioredis `Cluster`, plain and with enableAutoPipelining);
// op: get | set (64 B values) | cacheGet (cacheService.get of a ~1 KB profile, against
// GET + JSON.parse on ioredis), each over 256 keys spread over every master, round robin.
//
//   node cluster-worker.js <client> invalidatePattern 0 0 <seed url> <pattern>
// client: addon (cacheService.invalidatePattern) | ioredis (per master of
// nodes('master'), in parallel: a SCAN loop with MATCH and COUNT 1000, each batch
// grouped by slot and UNLINKed in one pipeline — cross-slot UNLINK is refused by a
// cluster node — sent without waiting, so the next SCAN overlaps it) | ioredis-stream
// (the same with scanStream, paused while each batch's pipeline runs: the pattern
// ioredis's README shows). Prints { removed, ms, cpuMs } once.
//
// Environment: YG_BENCH_CA (TLS: the CA file; the addon gets tls.caFile, ioredis
// redisOptions.tls.ca), YG_BENCH_WARM_KEYS (JSON: one key per master, read once
// before measuring so that every client has its connection to every master).
const fs = require('node:fs')
const { runWorker, profile } = require('./lib.js')

const caFile = process.env.YG_BENCH_CA || null
const warmKeys = JSON.parse(process.env.YG_BENCH_WARM_KEYS || '[]')

/** The addon on the cluster, connected to every master. */
async function addon(url) {
  const redis = require('..')
  redis.configureRedis({ url, cluster: true, ...(caFile ? { tls: { caFile } } : {}) })
  const client = redis.getRedisClient()
  for (const key of warmKeys) await client.get(key)
  return { redis, client, close: () => redis.closeRedisConnection() }
}

/** ioredis Cluster on the same seed, connected to every master. */
async function ioredisCluster(url, autoPipelining) {
  const Redis = require('ioredis')
  const { hostname, port } = new URL(url)
  const cluster = new Redis.Cluster([{ host: hostname, port: Number(port) }], {
    enableAutoPipelining: autoPipelining,
    redisOptions: caFile ? { tls: { ca: fs.readFileSync(caFile) } } : {},
  })
  for (const key of warmKeys) await cluster.get(key)
  return { cluster, close: () => cluster.quit() }
}

/** ioredis: SCAN loop per master (COUNT 1000), per-slot UNLINKs of a batch in one pipeline, not awaited before the next SCAN. */
async function unlinkLoop(node, pattern, calculateSlot) {
  const pending = []
  let cursor = '0'
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    if (keys.length) pending.push(unlinkBySlot(node, keys, calculateSlot))
  } while (cursor !== '0')
  const counts = await Promise.all(pending)
  return counts.reduce((a, b) => a + b, 0)
}

/** ioredis: scanStream per master (COUNT 1000), paused while each batch's per-slot UNLINK pipeline runs. */
function unlinkStream(node, pattern, calculateSlot) {
  return new Promise((resolve, reject) => {
    const pending = []
    const stream = node.scanStream({ match: pattern, count: 1000 })
    stream.on('data', (keys) => {
      if (!keys.length) return
      stream.pause()
      const batch = unlinkBySlot(node, keys, calculateSlot)
      pending.push(batch)
      batch.then(() => stream.resume(), reject)
    })
    stream.on('error', reject)
    // 'end' can come while the last batch's pipeline still runs (the stream had
    // already seen its last SCAN when it was paused): wait for every batch.
    stream.on('end', () => Promise.all(pending).then((counts) => resolve(counts.reduce((a, b) => a + b, 0)), reject))
  })
}

async function unlinkBySlot(node, keys, calculateSlot) {
  const bySlot = new Map()
  for (const key of keys) {
    const slot = calculateSlot(key)
    const group = bySlot.get(slot)
    if (group) group.push(key)
    else bySlot.set(slot, [key])
  }
  const pipeline = node.pipeline()
  for (const group of bySlot.values()) pipeline.unlink(...group)
  let removed = 0
  for (const [error, n] of await pipeline.exec()) {
    if (error) throw error
    removed += n
  }
  return removed
}

async function invalidate(clientName, url, pattern) {
  let run
  let close
  if (clientName === 'addon') {
    const a = await addon(url)
    run = () => a.redis.cacheService.invalidatePattern(pattern)
    close = a.close
  } else if (clientName === 'ioredis' || clientName === 'ioredis-stream') {
    const calculateSlot = require('cluster-key-slot')
    const c = await ioredisCluster(url, false)
    const each = clientName === 'ioredis' ? unlinkLoop : unlinkStream
    run = async () => {
      const counts = await Promise.all(c.cluster.nodes('master').map((node) => each(node, pattern, calculateSlot)))
      return counts.reduce((a, b) => a + b, 0)
    }
    close = c.close
  } else {
    throw new Error(`unknown client ${clientName}`)
  }
  const cpuStart = process.cpuUsage()
  const started = performance.now()
  const removed = await run()
  const ms = performance.now() - started
  const cpu = process.cpuUsage(cpuStart)
  await close()
  console.log(JSON.stringify({ client: clientName, op: 'invalidatePattern', concurrency: 0, removed, ms, cpuMs: (cpu.user + cpu.system) / 1000 }))
}

if (process.argv[3] === 'invalidatePattern') {
  const [clientName, , , , url, pattern] = process.argv.slice(2)
  invalidate(clientName, url, pattern).catch((error) => {
    console.error(error)
    process.exit(1)
  })
} else {
  runWorker(async ({ clientName, opName, url }) => {
    if (!['get', 'set', 'cacheGet'].includes(opName)) throw new Error(`unknown op ${opName}`)
    const cache = opName === 'cacheGet'
    const keys = Array.from({ length: 256 }, (_, i) => (cache ? `cache:user:bench-${i}` : `bench:raw:${i}`))
    const value = 'x'.repeat(64)
    const text = JSON.stringify(profile)
    let i = 0
    const next = () => keys[i++ & 255]
    let op
    let close
    if (clientName === 'addon') {
      const a = await addon(url)
      close = a.close
      if (cache) {
        const { cacheService } = a.redis
        await Promise.all(keys.map((key) => cacheService.set(key, profile, 3600)))
        op = () => cacheService.get(next())
      } else {
        await Promise.all(keys.map((key) => a.client.set(key, value)))
        op = opName === 'get' ? () => a.client.get(next()) : () => a.client.set(next(), value)
      }
    } else if (clientName === 'ioredis' || clientName === 'ioredis-auto') {
      const { cluster, close: quit } = await ioredisCluster(url, clientName === 'ioredis-auto')
      close = quit
      if (cache) {
        await Promise.all(keys.map((key) => cluster.set(key, text, 'EX', 3600)))
        op = async () => {
          const got = await cluster.get(next())
          return got === null ? null : JSON.parse(got)
        }
      } else {
        await Promise.all(keys.map((key) => cluster.set(key, value)))
        op = opName === 'get' ? () => cluster.get(next()) : () => cluster.set(next(), value)
      }
    } else {
      throw new Error(`unknown client ${clientName}`)
    }
    return { op, close }
  })
}
