'use strict'
// One measurement of the seed's other prefixes as services, in its own process:
// `node services-worker.js <client> <op> <concurrency> <seconds> <url>`
// client: addon | ioredis | ioredis-auto; op, each against the obvious ioredis code for the same job:
//   isEnabled         featureFlags.isEnabled (served from its per-process cache, 1 s)
//                     vs a GET of the flag key per check
//   increment         counters.increment (INCRBY) vs INCRBY
//   idempotentReplay  withIdempotency on a completed key (the stored result replayed)
//                     vs GET + JSON.parse of the same record
const { runWorker } = require('./lib.js')

const FLAG = 'bench'
const COUNTER = 'bench-ops'
const IDEMPOTENCY_KEY = 'bench-replay'
/** A payment receipt, as an idempotent operation would return it (~250 bytes of JSON). */
const receipt = {
  chargeId: 'ch_3Nf8a2LkdIwHu7ix0bCdE1Fg',
  amountCents: 129900,
  currency: 'usd',
  status: 'succeeded',
  customerId: 'cus_9s6XKzkNRiz8i3',
  createdAt: '2026-11-25T12:00:00.000Z',
  lines: [
    { sku: 'license-standard', quantity: 1, cents: 99900 },
    { sku: 'stems-pack', quantity: 1, cents: 30000 },
  ],
}

runWorker(async ({ clientName, opName, url }) => {
  let ops
  let close
  if (clientName === 'addon') {
    const redis = require('..')
    redis.configureRedis({ url })
    const { featureFlags, counters, withIdempotency } = redis
    await featureFlags.setFlag(FLAG, true)
    await withIdempotency(IDEMPOTENCY_KEY, async () => receipt)
    const neverRuns = async () => {
      throw new Error('a completed key must be replayed, not run')
    }
    ops = {
      isEnabled: () => featureFlags.isEnabled(FLAG),
      increment: () => counters.increment(COUNTER),
      idempotentReplay: () => withIdempotency(IDEMPOTENCY_KEY, neverRuns),
    }
    close = () => redis.closeRedisConnection()
  } else {
    const Redis = require('ioredis')
    const client = new Redis(url, { enableAutoPipelining: clientName === 'ioredis-auto' })
    // The same keys the package uses (RedisKeys.flag.feature, counter.metric, idempotency.key).
    const flagKey = `flag:feature:${FLAG}`
    const counterKey = `counter:${COUNTER}`
    const recordKey = `idempotency:${IDEMPOTENCY_KEY}`
    await client.set(flagKey, 'true')
    const record = { state: 'completed', fingerprint: null, createdAt: Date.now(), completedAt: Date.now(), result: receipt }
    await client.set(recordKey, JSON.stringify(record), 'EX', 3600)
    ops = {
      isEnabled: async () => (await client.get(flagKey)) === 'true',
      increment: () => client.incrby(counterKey, 1),
      idempotentReplay: async () => {
        const text = await client.get(recordKey)
        if (text === null) throw new Error('the record is missing')
        return JSON.parse(text).result
      },
    }
    close = () => client.quit()
  }
  const op = ops[opName]
  if (!op) throw new Error(`unknown op ${opName}`)
  return { op, close }
})
