'use strict'
// One rate-limiter measurement in its own process:
// `node limit-worker.js <client> <op> <concurrency> <seconds> <url>`
// client: addon (rateLimiter.checkLimit) | ioredis | ioredis-auto (the seed's
// sorted-set script, bench/seed-sliding-window.lua, through ioredis's
// defineCommand, i.e. EVALSHA; -auto with auto-pipelining) | ioredis-new (this
// package's script, src/scripts/sliding_window.lua, through auto-pipelined
// ioredis: the new structure without the addon).
// op: checkLimit — each call picks one of 10,000 identifiers, limit 100 a
//     minute: in a run of a few seconds every call is allowed (the worker
//     reports how many were denied);
//     flood — every call from one identifier that is over its limit (100 a
//     minute): after the first 100, all denied (the addon's deny cache answers
//     those in process).
const fs = require('node:fs')
const path = require('node:path')
const { runWorker } = require('./lib.js')

const IDENTIFIERS = 10000
const LIMIT = 100
const WINDOW_SECONDS = 60
const SCRIPTS = {
  seed: path.join(__dirname, 'seed-sliding-window.lua'),
  new: path.join(__dirname, '..', 'src', 'scripts', 'sliding_window.lua'),
}

runWorker(async ({ clientName, opName, url }) => {
  if (opName !== 'checkLimit' && opName !== 'flood') throw new Error(`unknown op ${opName}: checkLimit, flood`)
  const run = `${process.pid}`
  let n = 0
  const nextId = opName === 'flood' ? () => `flood-${run}` : () => `bench-${run}-${(n++ * 7919) % IDENTIFIERS}`
  let decisions = 0
  let denied = 0
  let decide
  let close
  if (clientName === 'addon') {
    const redis = require('..')
    redis.configureRedis({ url })
    decide = () => redis.rateLimiter.checkLimit(nextId(), 'api', LIMIT, WINDOW_SECONDS)
    close = () => redis.closeRedisConnection()
  } else {
    const Redis = require('ioredis')
    const client = new Redis(url, { enableAutoPipelining: clientName !== 'ioredis' })
    const lua = fs.readFileSync(clientName === 'ioredis-new' ? SCRIPTS.new : SCRIPTS.seed, 'utf8')
    client.defineCommand('slidingWindow', { numberOfKeys: 1, lua })
    // The same result object as the addon builds. The seed's script answers
    // "allowed remaining resetUs nowUs" as text; the package's answers five
    // big-endian doubles per decision (allowed remaining resetUs nowUs retryUs).
    const fields =
      clientName === 'ioredis-new'
        ? async (key) => {
            const reply = await client.slidingWindowBuffer(key, LIMIT, WINDOW_SECONDS * 1000, 1, 1)
            return [0, 8, 16, 24].map((offset) => reply.readDoubleBE(offset))
          }
        : async (key) => (await client.slidingWindow(key, LIMIT, WINDOW_SECONDS * 1000, 1)).split(' ').map(Number)
    decide = async () => {
      const parts = await fields(`ratelimit:api:${nextId()}`)
      const resetInMs = (parts[2] - parts[3]) / 1000
      const allowed = parts[0] === 1
      return {
        allowed,
        limit: LIMIT,
        remaining: parts[1],
        resetAt: new Date(Math.ceil(parts[3] / 1000 + resetInMs)),
        retryAfterMs: allowed ? 0 : Math.ceil(resetInMs),
      }
    }
    close = () => client.quit()
  }
  const op = async () => {
    const result = await decide()
    decisions++
    if (!result.allowed) denied++
    // An answer from the deny cache settles without I/O: a closed loop of them would
    // never give the event loop (and closedLoop's timers) a turn. Every 1,024th call
    // yields once, whatever the client.
    if ((decisions & 1023) === 0) await new Promise(setImmediate)
  }
  // Every decision of the process, warm-up included: what the server's counters saw.
  return { op, close, extra: () => ({ decisions, denied }) }
})
