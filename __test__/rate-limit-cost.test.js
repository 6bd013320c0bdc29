'use strict'
// rateLimiter: weighted requests (cost), exactness with costs across processes,
// windows left by the previous release (sorted sets), and the window's memory.
const fs = require('node:fs')
const path = require('node:path')
const { RedisServer } = require('./support/redis-server.js')
const { redis, useRedis, runNode, ROOT, commandsSentDuring, useRedisWithInspector, sleep } = require('./support/client.js')

const { rateLimiter, rateLimitHeaders, RedisKeys } = redis
const inspector = useRedisWithInspector()
/** The previous release's script (a sorted set per window), to write old-type keys. */
const SEED_SCRIPT = fs.readFileSync(path.join(ROOT, 'bench', 'seed-sliding-window.lua'), 'utf8')
let unique = 0
const id = (name) => `${name}-${process.pid}-${++unique}`
const keyOf = (action, who) => RedisKeys.ratelimit.key(action, who)

/** The slot times of a window (newest first): 8-byte big-endian doubles. */
async function slots(key) {
  const buffer = await inspector.getBuffer(key)
  const times = []
  if (buffer) for (let i = 0; i + 8 <= buffer.length; i += 8) times.push(buffer.readDoubleBE(i))
  return times
}

/** Counts requests in a window as the previous release did (ZADD into a sorted set). */
async function oldRelease(key, limit, windowMs, times) {
  const replies = []
  for (let i = 0; i < times; i++) replies.push(await inspector.eval(SEED_SCRIPT, 1, key, limit, windowMs, 1))
  return replies
}

test('cost semantics: limit 10, cost 4 and 4 allowed, then 4 denied (taking nothing), then 2 allowed', async () => {
  const who = id('cost')
  const key = keyOf('report', who)
  const options = (cost) => ({ limit: 10, windowSeconds: 60, cost })
  const first = await rateLimiter.checkLimit(who, 'report', options(4))
  const second = await rateLimiter.checkLimit(who, 'report', options(4))
  expect(first).toMatchObject({ allowed: true, remaining: 6, retryAfterMs: 0, degraded: false, cached: false })
  expect(second).toMatchObject({ allowed: true, remaining: 2 })
  expect(await slots(key)).toHaveLength(8)
  const denied = await rateLimiter.checkLimit(who, 'report', options(4))
  expect(denied).toMatchObject({ allowed: false, remaining: 2, degraded: false })
  // 4 slots are free when the first request's 4 slots leave: one window after it.
  expect(denied.retryAfterMs).toBeGreaterThan(58000)
  expect(denied.retryAfterMs).toBeLessThanOrEqual(60000)
  const times = await slots(key)
  expect(times).toHaveLength(8) // the denial took nothing
  expect(denied.resetAt.getTime()).toBe(Math.ceil((times[7] + 60e6) / 1000))
  const last = await rateLimiter.checkLimit(who, 'report', options(2))
  expect(last).toMatchObject({ allowed: true, remaining: 0 })
  expect(await slots(key)).toHaveLength(10)
  expect((await rateLimiter.checkLimit(who, 'report', options(1))).allowed).toBe(false)
  // The positional form is unchanged and means cost 1.
  const other = id('positional')
  expect(await rateLimiter.checkLimit(other, 'report', 2, 60)).toMatchObject({ allowed: true, remaining: 1 })
  expect(await rateLimiter.checkLimit(other, 'report', { limit: 2, windowSeconds: 60 })).toMatchObject({ allowed: true, remaining: 0 })
})

test('a denial of cost c says when c slots are free; a cost above the limit is a denial, never an error, and takes nothing', async () => {
  const who = id('retry')
  const key = keyOf('report', who)
  await rateLimiter.checkLimit(who, 'report', { limit: 3, windowSeconds: 2, cost: 1 })
  await sleep(400)
  await rateLimiter.checkLimit(who, 'report', { limit: 3, windowSeconds: 2, cost: 2 })
  // Full. 1 slot frees when the first request leaves (~1.6 s); 2 when the second does (~2 s).
  // (The higher cost first: a cached denial of cost 1 would answer cost 3 too, see the deny cache's tests.)
  const two = await rateLimiter.getStatus(who, 'report', { limit: 3, windowSeconds: 2, cost: 3 })
  const one = await rateLimiter.getStatus(who, 'report', { limit: 3, windowSeconds: 2, cost: 1 })
  expect(one.cached || two.cached).toBe(false)
  expect(one.allowed || two.allowed).toBe(false)
  expect(two.retryAfterMs - one.retryAfterMs).toBeGreaterThan(300)
  expect(two.retryAfterMs).toBeLessThanOrEqual(2000)
  const times = await slots(key)
  expect(one.resetAt.getTime()).toBe(Math.ceil((times[2] + 2e6) / 1000))
  expect(two.resetAt.getTime()).toBe(Math.ceil((times[0] + 2e6) / 1000))

  const big = id('big')
  const tooBig = await rateLimiter.checkLimit(big, 'report', { limit: 5, windowSeconds: 60, cost: 6 })
  expect(tooBig).toMatchObject({ allowed: false, remaining: 5, degraded: false })
  expect(await inspector.exists(keyOf('report', big))).toBe(0)
  expect(rateLimitHeaders(tooBig)['Retry-After']).toBeDefined()
  expect((await rateLimiter.getStatus(big, 'report', { limit: 5, windowSeconds: 60, cost: 6 })).allowed).toBe(false)
  expect(await rateLimiter.checkLimit(big, 'report', { limit: 5, windowSeconds: 60, cost: 5 })).toMatchObject({ allowed: true, remaining: 0 })
})

test('getStatus with a cost says whether that cost would be allowed, without counting it', async () => {
  const who = id('status')
  const key = keyOf('report', who)
  await rateLimiter.checkLimit(who, 'report', { limit: 10, windowSeconds: 60, cost: 7 })
  expect(await rateLimiter.getStatus(who, 'report', { limit: 10, windowSeconds: 60, cost: 3 })).toMatchObject({ allowed: true, remaining: 3 })
  expect(await rateLimiter.getStatus(who, 'report', { limit: 10, windowSeconds: 60, cost: 4 })).toMatchObject({ allowed: false, remaining: 3 })
  expect(await slots(key)).toHaveLength(7)
  expect(await rateLimiter.getStatus(who, 'report', 10, 60)).toMatchObject({ allowed: true, remaining: 3 })
})

test('bad costs and options are a TypeError (EINVALID) and nothing is sent', async () => {
  const bad = [0, -1, 1.5, NaN, '2', Infinity, 2 ** 53, true, {}]
  const sent = await commandsSentDuring(async () => {
    for (const cost of bad) {
      for (const call of [
        () => rateLimiter.checkLimit('u', 'api', { cost }),
        () => rateLimiter.getStatus('u', 'api', { limit: 5, windowSeconds: 10, cost }),
        () => rateLimiter.blockUntilReady('u', 'api', 1000, { cost }),
      ]) {
        await expect(call()).rejects.toMatchObject({ name: 'TypeError', code: 'EINVALID' })
      }
    }
    await expect(rateLimiter.checkLimit('u', 'api', { cost: 1, limt: 5 })).rejects.toThrow(/unknown option "limt"/)
    await expect(rateLimiter.checkLimit('u', 'api', { limit: 5 }, 60)).rejects.toMatchObject({ code: 'EINVALID' })
    await expect(rateLimiter.checkLimit('u', 'api', [5, 60])).rejects.toMatchObject({ code: 'EINVALID' })
    await expect(rateLimiter.checkLimit('u', 'custom', { cost: 1 })).rejects.toThrow(/unknown action/)
    await expect(rateLimiter.checkLimit('u', 'api', { limit: 0 })).rejects.toMatchObject({ code: 'EINVALID' })
    for (const timeoutMs of [-1, NaN, Infinity, '100', undefined]) {
      await expect(rateLimiter.blockUntilReady('u', 'api', timeoutMs)).rejects.toMatchObject({ code: 'EINVALID' })
    }
    await expect(rateLimiter.blockUntilReady('u', 'api', 100, null)).rejects.toMatchObject({ code: 'EINVALID' })
  })
  expect(sent).toBe(0)
})

test('exact under 200 concurrent calls with costs: the slots taken are the costs allowed, never above the limit', async () => {
  const who = id('burst')
  const key = keyOf('report', who)
  const costs = Array.from({ length: 200 }, (_, i) => 1 + (i % 4))
  const results = await Promise.all(costs.map((cost) => rateLimiter.checkLimit(who, 'report', { limit: 50, windowSeconds: 60, cost })))
  expect(results.every((r) => r.degraded === false)).toBe(true)
  const taken = results.reduce((sum, r, i) => sum + (r.allowed ? costs[i] : 0), 0)
  expect(taken).toBeLessThanOrEqual(50)
  expect(taken).toBeGreaterThan(50 - 4) // a denial means fewer slots than its cost were free
  expect(await slots(key)).toHaveLength(taken)
  // Every allowed call saw its own remaining count (they ran one after another).
  const allowed = results.filter((r) => r.allowed)
  expect(new Set(allowed.map((r) => r.remaining)).size).toBe(allowed.length)
  // Cost-1 calls fill the rest exactly.
  const fill = await Promise.all(Array.from({ length: 200 }, () => rateLimiter.checkLimit(who, 'report', { limit: 50, windowSeconds: 60 })))
  expect(fill.filter((r) => r.allowed)).toHaveLength(50 - taken)
  expect(await slots(key)).toHaveLength(50)
})

test('exact across 4 node processes with costs 1 to 4: the slots taken are the costs allowed, never above the limit', async () => {
  const who = id('procs')
  const key = keyOf('report', who)
  const child = (cost) => `
    const redis = require(${JSON.stringify(ROOT)})
    redis.configureRedis({ url: ${JSON.stringify(process.env.REDIS_URL)} })
    Promise.all(Array.from({ length: 150 }, () => redis.rateLimiter.checkLimit(${JSON.stringify(who)}, 'report', { limit: 100, windowSeconds: 60, cost: ${cost} })))
      .then((rs) => { console.log(JSON.stringify({ taken: rs.filter((r) => r.allowed && !r.degraded).length * ${cost}, degraded: rs.filter((r) => r.degraded).length })) })`
  const runs = await Promise.all([1, 2, 3, 4].map((cost) => runNode(child(cost))))
  let taken = 0
  for (const run of runs) {
    expect(run.code).toBe(0)
    const out = JSON.parse(run.stdout)
    expect(out.degraded).toBe(0)
    taken += out.taken
  }
  expect(taken).toBeLessThanOrEqual(100)
  expect(taken).toBeGreaterThan(100 - 4)
  expect(await slots(key)).toHaveLength(taken)
  const rest = await rateLimiter.getStatus(who, 'report', 100, 60)
  expect(rest.remaining).toBe(100 - taken)
})

describe('windows written by the previous release (sorted sets)', () => {
  test('an old window is read and carried over, never a WRONGTYPE error', async () => {
    const who = id('old')
    const key = keyOf('report', who)
    await oldRelease(key, 5, 60000, 3)
    expect(await inspector.type(key)).toBe('zset')
    const scores = (await inspector.zrange(key, 0, -1, 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number)
    const result = await rateLimiter.checkLimit(who, 'report', 5, 60)
    expect(result).toMatchObject({ allowed: true, remaining: 1, degraded: false })
    expect(await inspector.type(key)).toBe('string')
    const times = await slots(key)
    expect(times).toHaveLength(4)
    expect(times.slice(1)).toEqual([...scores].reverse()) // the old requests, newest first, after the new one
    expect(result.resetAt.getTime()).toBe(Math.ceil((scores[0] + 60e6) / 1000))
    const pttl = await inspector.pttl(key)
    expect(pttl).toBeGreaterThan(59000)
    expect(await rateLimiter.checkLimit(who, 'report', 5, 60)).toMatchObject({ allowed: true, remaining: 0 })
    expect(await rateLimiter.checkLimit(who, 'report', 5, 60)).toMatchObject({ allowed: false, degraded: false })
  })

  test('a full old window denies; getStatus reads an old window without counting; expired old requests are dropped', async () => {
    const full = id('oldfull')
    await oldRelease(keyOf('report', full), 5, 60000, 5)
    const denied = await rateLimiter.checkLimit(full, 'report', { limit: 5, windowSeconds: 60, cost: 1 })
    expect(denied).toMatchObject({ allowed: false, remaining: 0, degraded: false })
    expect(denied.retryAfterMs).toBeGreaterThan(58000)
    expect(await slots(keyOf('report', full))).toHaveLength(5)

    const looked = id('oldstatus')
    await oldRelease(keyOf('report', looked), 10, 60000, 4)
    expect(await rateLimiter.getStatus(looked, 'report', { limit: 10, windowSeconds: 60, cost: 6 })).toMatchObject({ allowed: true, remaining: 6, degraded: false })
    expect(await rateLimiter.getStatus(looked, 'report', { limit: 10, windowSeconds: 60, cost: 7 })).toMatchObject({ allowed: false, remaining: 6, degraded: false })
    expect(await slots(keyOf('report', looked))).toHaveLength(4)

    const stale = id('oldstale')
    await oldRelease(keyOf('report', stale), 3, 1000, 3)
    await sleep(1100)
    // The old key may have expired by now, or not yet: either way the window is empty.
    expect(await rateLimiter.checkLimit(stale, 'report', 3, 1)).toMatchObject({ allowed: true, remaining: 2, degraded: false })
    expect(await slots(keyOf('report', stale))).toHaveLength(1)
  })

  test('concurrent calls on an old window stay exact', async () => {
    const who = id('oldburst')
    await oldRelease(keyOf('report', who), 10, 60000, 2)
    const results = await Promise.all(Array.from({ length: 50 }, () => rateLimiter.checkLimit(who, 'report', 10, 60)))
    expect(results.filter((r) => r.allowed)).toHaveLength(8)
    expect(results.every((r) => !r.degraded)).toBe(true)
    expect(await slots(keyOf('report', who))).toHaveLength(10)
  })
})

test('the memory of a full window at limit 100 is at most half the sorted set of the previous release', async () => {
  const who = id('mem')
  for (let i = 0; i < 100; i++) await rateLimiter.checkLimit(who, 'report', 100, 60)
  const old = `${id('memold')}`
  await oldRelease(keyOf('report', old), 100, 60000, 100)
  expect(await inspector.zcard(keyOf('report', old))).toBe(100)
  expect(await slots(keyOf('report', who))).toHaveLength(100)
  const now = await inspector.call('MEMORY', 'USAGE', keyOf('report', who))
  const before = await inspector.call('MEMORY', 'USAGE', keyOf('report', old))
  expect(now * 2).toBeLessThanOrEqual(before)
  expect(now).toBeLessThan(1100)
})

test('rateLimitHeaders of a weighted request: remaining after its cost, Retry-After when its cost does not fit', async () => {
  const who = id('headers')
  const allowed = await rateLimiter.checkLimit(who, 'export', { cost: 3, limit: 5, windowSeconds: 3600 })
  expect(rateLimitHeaders(allowed)).toEqual({ 'RateLimit-Policy': '"export";q=5;w=3600', RateLimit: expect.stringMatching(/^"export";r=2;t=(3599|3600)$/) })
  const denied = await rateLimiter.checkLimit(who, 'export', { cost: 3, limit: 5, windowSeconds: 3600 })
  const headers = rateLimitHeaders(denied)
  expect(headers.RateLimit).toMatch(/^"export";r=2;t=(3599|3600)$/)
  expect(Number(headers['Retry-After'])).toBe(Math.ceil(denied.retryAfterMs / 1000))
})

describe("the 'local' failure policy honours cost", () => {
  let server
  beforeAll(async () => {
    server = await new RedisServer().start()
    await useRedis({ url: server.url, commandTimeoutMs: 300, connectTimeoutMs: 300, retryMaxDelayMs: 200 })
  })
  afterAll(async () => {
    await server.stop()
    rateLimiter.setFailurePolicy('weighted', 'open')
    rateLimiter.setFailurePolicy('weighted-closed', 'open')
    await useRedis()
  })

  test('limit 10 with Redis away: cost 4 and 4 allowed, 4 denied, 2 allowed; closed denies; open allows', async () => {
    rateLimiter.setFailurePolicy('weighted', 'local')
    rateLimiter.setFailurePolicy('weighted-closed', 'closed')
    await server.stop()
    const who = id('local')
    const call = (cost) => rateLimiter.checkLimit(who, 'weighted', { limit: 10, windowSeconds: 60, cost })
    const results = [await call(4), await call(4), await call(4), await call(2), await call(1)]
    expect(results.map((r) => r.allowed)).toEqual([true, true, false, true, false])
    expect(results.map((r) => r.remaining)).toEqual([6, 2, 2, 0, 0])
    expect(results.every((r) => r.degraded)).toBe(true)
    expect(results[2].retryAfterMs).toBeGreaterThan(59000)
    const tooBig = await rateLimiter.checkLimit(id('local-big'), 'weighted', { limit: 10, windowSeconds: 60, cost: 11 })
    expect(tooBig).toMatchObject({ allowed: false, degraded: true })
    expect(await rateLimiter.checkLimit(who, 'weighted-closed', { limit: 10, windowSeconds: 60, cost: 2 })).toMatchObject({ allowed: false, degraded: true })
    expect(await rateLimiter.checkLimit(who, 'weighted-open', { limit: 10, windowSeconds: 60, cost: 20 })).toMatchObject({ allowed: true, degraded: true })
  })
})
