'use strict'
// One rate-limiter measurement in its own process:
// `node limit-worker.js <client> checkLimit <concurrency> <seconds> <url>`
// client: addon (rateLimiter.checkLimit) | ioredis | ioredis-auto (the same
// sliding-window script through ioredis's defineCommand, i.e. EVALSHA).
// Each call picks one of 10,000 identifiers, limit 100 a minute.
const fs = require('node:fs')
const path = require('node:path')
const { runWorker } = require('./lib.js')

const IDENTIFIERS = 10000
const LIMIT = 100
const WINDOW_SECONDS = 60

runWorker(async ({ clientName, url }) => {
  const run = `${process.pid}`
  let n = 0
  const nextId = () => `bench-${run}-${(n++ * 7919) % IDENTIFIERS}`
  let op
  let close
  if (clientName === 'addon') {
    const redis = require('..')
    redis.configureRedis({ url })
    op = () => redis.rateLimiter.checkLimit(nextId(), 'api', LIMIT, WINDOW_SECONDS)
    close = () => redis.closeRedisConnection()
  } else {
    const Redis = require('ioredis')
    const client = new Redis(url, { enableAutoPipelining: clientName === 'ioredis-auto' })
    const lua = fs.readFileSync(path.join(__dirname, '..', 'src', 'scripts', 'sliding_window.lua'), 'utf8')
    client.defineCommand('slidingWindow', { numberOfKeys: 1, lua })
    // The same result object as the addon builds.
    op = async () => {
      const reply = await client.slidingWindow(`ratelimit:api:${nextId()}`, LIMIT, WINDOW_SECONDS * 1000, 1)
      const parts = reply.split(' ')
      const resetInMs = (Number(parts[2]) - Number(parts[3])) / 1000
      const allowed = parts[0] === '1'
      return {
        allowed,
        limit: LIMIT,
        remaining: Number(parts[1]),
        resetAt: new Date(Math.ceil(Number(parts[3]) / 1000 + resetInMs)),
        retryAfterMs: allowed ? 0 : Math.ceil(resetInMs),
      }
    }
    close = () => client.quit()
  }
  return { op, close }
})
