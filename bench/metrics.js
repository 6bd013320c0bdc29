'use strict'
// getRedisMetrics() on a keyspace of 1,000,000 keys: how long it takes, how
// much server time it costs, and the longest any one of its commands held the
// server (every command logged by SLOWLOG with a threshold of 0).
//   node bench/metrics.js [--keys 1000000] [--runs 10]
const Redis = require('ioredis')
const { RedisServer } = require('../__test__/support/redis-server.js')

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : fallback
}

async function main() {
  const totalKeys = Number(option('keys', '1000000'))
  const runs = Number(option('runs', '10'))
  const server = await new RedisServer({ args: ['--enable-debug-command', 'yes'] }).start()
  const admin = new Redis(server.url)
  const redis = require('..')
  try {
    // 40 % cache, 30 % session, 20 % ratelimit, 10 % other keys.
    const mix = [['cache:user', 0.4], ['session:upload', 0.3], ['ratelimit:api', 0.2], ['misc', 0.1]]
    for (const [prefix, share] of mix) await admin.call('DEBUG', 'POPULATE', String(Math.round(totalKeys * share)), prefix)
    const dbsize = await admin.dbsize()
    redis.configureRedis({ url: server.url })
    await redis.getRedisMetrics() // connect and warm up

    await admin.config('SET', 'slowlog-log-slower-than', '0')
    await admin.config('SET', 'slowlog-max-len', '100000')
    await admin.slowlog('RESET')
    await admin.config('RESETSTAT')
    const latencies = []
    let last
    for (let i = 0; i < runs; i++) {
      const started = performance.now()
      last = await redis.getRedisMetrics()
      latencies.push(performance.now() - started)
    }
    const entries = await admin.slowlog('GET', '100000')
    await admin.config('SET', 'slowlog-log-slower-than', '10000')
    // Our connection's commands only (the admin connection's CONFIG/SLOWLOG are left out).
    const ours = entries.filter((e) => ['SCAN', 'INFO', 'DBSIZE'].includes(String(e[3][0]).toUpperCase()))
    const byCommand = {}
    for (const e of ours) {
      const name = String(e[3][0]).toUpperCase()
      const c = (byCommand[name] ||= { calls: 0, totalUs: 0, maxUs: 0 })
      c.calls++
      c.totalUs += e[2]
      c.maxUs = Math.max(c.maxUs, e[2])
    }
    const serverUs = Object.values(byCommand).reduce((s, c) => s + c.totalUs, 0)
    latencies.sort((a, b) => a - b)
    const d = last.keyDistribution
    const result = {
      keys: dbsize,
      runs,
      latencyMs: { median: latencies[Math.floor(runs / 2)], max: latencies[runs - 1] },
      serverMsPerCall: serverUs / runs / 1000,
      longestCommandUs: Math.max(...Object.values(byCommand).map((c) => c.maxUs)),
      byCommand,
      keyDistribution: d,
      truth: { cache: 0.4 * dbsize, session: 0.3 * dbsize, ratelimit: 0.2 * dbsize, other: 0.1 * dbsize },
    }
    console.log(JSON.stringify(result, null, 2))
    console.log(
      `\n| keys | getRedisMetrics median / max | server time per call | longest single command | keyDistribution (cache / session / ratelimit / other; exact?) |\n|---|---|---|---|---|\n` +
        `| ${dbsize} | ${result.latencyMs.median.toFixed(1)} / ${result.latencyMs.max.toFixed(1)} ms | ${result.serverMsPerCall.toFixed(1)} ms ` +
        `(${Object.entries(byCommand).map(([n, c]) => `${n} ×${c.calls / runs}`).join(', ')}) | ${result.longestCommandUs} µs | ` +
        `${d.cache} / ${d.session} / ${d.ratelimit} / ${d.other} of ${d.total} (scanned ${d.scanned}; exact: ${d.exact}) |`,
    )
  } finally {
    await redis.closeRedisConnection()
    admin.disconnect()
    await server.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
