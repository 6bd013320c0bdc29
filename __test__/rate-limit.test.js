'use strict'
// rateLimiter against a private redis-server.
const { RedisServer } = require('./support/redis-server.js')
const { redis, useRedis, runNode, ROOT, commandsSentDuring, useRedisWithInspector, sleep } = require('./support/client.js')

const { rateLimiter, RateLimitConfig, rateLimitHeaders, RedisKeys } = redis
const inspector = useRedisWithInspector()
let unique = 0
/** A fresh identifier per test, so windows never carry over. */
const id = (name) => `${name}-${process.pid}-${++unique}`
/**
 * The slot times (µs, server clock) of a window, newest first: the key is a string of
 * 8-byte big-endian doubles, one per counted slot (src/scripts/sliding_window.lua).
 */
async function slots(key) {
  const buffer = await inspector.getBuffer(key)
  const times = []
  if (buffer) for (let i = 0; i + 8 <= buffer.length; i += 8) times.push(buffer.readDoubleBE(i))
  return times
}


test("the seed's example 2 runs as written (and denies past the limit)", async () => {
  const NextResponse = { json: (body, init) => ({ body, status: init.status }) }
  const userId = id('seed')
  const route = async () => {
    // Check rate limit in API route
    const result = await rateLimiter.checkLimit(userId, 'api', RateLimitConfig.api.limit)
    if (!result.allowed) {
      return NextResponse.json({ error: 'Rate limit exceeded', resetAt: result.resetAt }, { status: 429 })
    }
    return { status: 200 }
  }
  const statuses = []
  for (let i = 0; i < RateLimitConfig.api.limit + 2; i++) statuses.push((await route()).status)
  expect(statuses.filter((s) => s === 200)).toHaveLength(RateLimitConfig.api.limit)
  expect(statuses.slice(-2)).toEqual([429, 429])
  const denied = await route()
  expect(denied.body.resetAt).toBeInstanceOf(Date)
})

test('RateLimitConfig has the five actions with positive integer limits and windows of at most an hour', () => {
  expect(Object.keys(RateLimitConfig).sort()).toEqual(['api', 'export', 'login', 'message', 'upload'])
  for (const rule of Object.values(RateLimitConfig)) {
    expect(Number.isInteger(rule.limit) && rule.limit > 0).toBe(true)
    expect(Number.isInteger(rule.windowSeconds) && rule.windowSeconds > 0 && rule.windowSeconds <= 3600).toBe(true)
  }
})

test('one by one: remaining counts down, denied calls do not consume, the key lives one window', async () => {
  const who = id('seq')
  const results = []
  for (let i = 0; i < 7; i++) results.push(await rateLimiter.checkLimit(who, 'api', 5, 30))
  expect(results.map((r) => r.allowed)).toEqual([true, true, true, true, true, false, false])
  expect(results.map((r) => r.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0])
  expect(results[0]).toMatchObject({ limit: 5, retryAfterMs: 0, degraded: false })
  const key = RedisKeys.ratelimit.key('api', who)
  expect(await slots(key)).toHaveLength(5) // the two denials were not counted
  const pttl = await inspector.pttl(key)
  expect(pttl).toBeGreaterThan(29000)
  expect(pttl).toBeLessThanOrEqual(30000)
  // The denial's resetAt is when the first request leaves the window, by the server's clock.
  const times = await slots(key)
  expect([...times].sort((a, b) => b - a)).toEqual(times) // newest first
  const expectedReset = Math.ceil((times[times.length - 1] + 30e6) / 1000)
  expect(results[6].resetAt.getTime()).toBe(expectedReset)
  expect(results[6].retryAfterMs).toBeGreaterThan(29000)
  expect(results[6].retryAfterMs).toBeLessThanOrEqual(30000)
  // getStatus looks without counting.
  const status = await rateLimiter.getStatus(who, 'api', 5, 30)
  expect(status).toMatchObject({ allowed: false, remaining: 0 })
  expect(await slots(key)).toHaveLength(5)
})

test('exact under concurrency: of 1,000 concurrent calls against a limit of 100, exactly 100 are allowed', async () => {
  const who = id('burst')
  const results = await Promise.all(Array.from({ length: 1000 }, () => rateLimiter.checkLimit(who, 'api', 100, 60)))
  expect(results.filter((r) => r.allowed)).toHaveLength(100)
  expect(results.every((r) => r.degraded === false)).toBe(true)
  expect(await slots(RedisKeys.ratelimit.key('api', who))).toHaveLength(100)
  // Every allowed call saw a distinct remaining count.
  expect(new Set(results.filter((r) => r.allowed).map((r) => r.remaining)).size).toBe(100)
})

test('exact across two node processes: 2 × 500 calls against a limit of 100 allow exactly 100', async () => {
  const who = id('procs')
  const script = `
    const redis = require(${JSON.stringify(ROOT)})
    redis.configureRedis({ url: ${JSON.stringify(process.env.REDIS_URL)} })
    Promise.all(Array.from({ length: 500 }, () => redis.rateLimiter.checkLimit(${JSON.stringify(who)}, 'api', 100, 60)))
      .then((rs) => { console.log(rs.filter((r) => r.allowed && !r.degraded).length) })`
  const [a, b] = await Promise.all([runNode(script), runNode(script)])
  expect(a.code).toBe(0)
  expect(b.code).toBe(0)
  expect(Number(a.stdout) + Number(b.stdout)).toBe(100)
})

test('a sliding window, not a fixed one: requests age out one by one', async () => {
  const who = id('slide')
  const check = () => rateLimiter.checkLimit(who, 'custom', 3, 2)
  const first = await check()
  await sleep(500)
  await check()
  await check()
  expect((await check()).allowed).toBe(false) // full
  await sleep(1000) // 1.5 s after the first: all three still in the window
  const stillDenied = await check()
  expect(stillDenied.allowed).toBe(false)
  // The denial says when the first request leaves: about 0.5 s from now.
  expect(stillDenied.retryAfterMs).toBeGreaterThan(100)
  expect(stillDenied.retryAfterMs).toBeLessThanOrEqual(600)
  expect(stillDenied.resetAt.getTime()).toBe(first.resetAt.getTime())
  await sleep(stillDenied.retryAfterMs + 20) // the first has left; the other two have not
  expect((await check()).allowed).toBe(true)
  expect((await check()).allowed).toBe(false)
})

test('reset clears the window; windows are per action and per identifier', async () => {
  const who = id('reset')
  await rateLimiter.checkLimit(who, 'login')
  for (let i = 0; i < RateLimitConfig.login.limit; i++) await rateLimiter.checkLimit(who, 'export')
  expect((await rateLimiter.checkLimit(who, 'export')).allowed).toBe(false)
  expect((await rateLimiter.checkLimit(`${who}-other`, 'export')).allowed).toBe(true)
  expect((await rateLimiter.getStatus(who, 'login')).remaining).toBe(RateLimitConfig.login.limit - 1)
  expect(await rateLimiter.reset(who, 'export')).toBe(true)
  expect((await rateLimiter.checkLimit(who, 'export')).remaining).toBe(RateLimitConfig.export.limit - 1)
  expect(await inspector.exists(RedisKeys.ratelimit.key('login', who))).toBe(1)
})

test('memory of a window: after 10,000 calls the key holds at most the limit and lives one window', async () => {
  const who = id('memory')
  for (let round = 0; round < 10; round++) {
    await Promise.all(Array.from({ length: 1000 }, () => rateLimiter.checkLimit(who, 'api', 50, 10)))
  }
  const key = RedisKeys.ratelimit.key('api', who)
  expect(await slots(key)).toHaveLength(50)
  expect(await inspector.pttl(key)).toBeLessThanOrEqual(10000)
  const bytes = await inspector.call('MEMORY', 'USAGE', key)
  expect(bytes).toBeLessThan(8 * 1024)
})

test('bad input is a TypeError and nothing is sent', async () => {
  const sent = await commandsSentDuring(async () => {
    await expect(rateLimiter.checkLimit('', 'api')).rejects.toBeInstanceOf(TypeError)
    await expect(rateLimiter.checkLimit('u', 'nonsense')).rejects.toThrow(/unknown action/)
    await expect(rateLimiter.checkLimit('u', 'nonsense', 10)).rejects.toThrow(/windowSeconds/)
    await expect(rateLimiter.checkLimit('u', 'api', 0)).rejects.toBeInstanceOf(TypeError)
    await expect(rateLimiter.checkLimit('u', 'api', 1.5)).rejects.toBeInstanceOf(TypeError)
    await expect(rateLimiter.checkLimit('u', 'api', 10, -1)).rejects.toBeInstanceOf(TypeError)
    await expect(rateLimiter.checkLimit('u', 'api', 10, 0.5)).rejects.toBeInstanceOf(TypeError)
    await expect(rateLimiter.getStatus(null, 'api')).rejects.toBeInstanceOf(TypeError)
    await expect(rateLimiter.reset('u', '')).rejects.toBeInstanceOf(TypeError)
    expect(() => rateLimiter.setFailurePolicy('api', 'sometimes')).toThrow(TypeError)
  })
  expect(sent).toBe(0)
})

test('an identifier is data: a pattern-like id gets its own window', async () => {
  const a = await rateLimiter.checkLimit('*', 'api', 1, 60)
  const b = await rateLimiter.checkLimit('user:[1]?', 'api', 1, 60)
  expect(a.allowed && b.allowed).toBe(true)
  expect((await rateLimiter.checkLimit('*', 'api', 1, 60)).allowed).toBe(false)
  await rateLimiter.reset('*', 'api')
  await rateLimiter.reset('user:[1]?', 'api')
})

test('rateLimitHeaders: the IETF RateLimit and RateLimit-Policy fields, Retry-After on a denial', async () => {
  const who = id('headers')
  const allowed = await rateLimiter.checkLimit(who, 'message', 2, 60)
  const headers = rateLimitHeaders(allowed)
  expect(headers['RateLimit-Policy']).toBe('"message";q=2;w=60')
  expect(headers.RateLimit).toMatch(/^"message";r=1;t=(59|60)$/)
  expect(headers['Retry-After']).toBeUndefined()
  await rateLimiter.checkLimit(who, 'message', 2, 60)
  const denied = await rateLimiter.checkLimit(who, 'message', 2, 60)
  const deniedHeaders = rateLimitHeaders(denied)
  expect(deniedHeaders.RateLimit).toMatch(/^"message";r=0;t=(59|60)$/)
  expect(Number(deniedHeaders['Retry-After'])).toBe(Math.ceil(denied.retryAfterMs / 1000))
  expect(() => rateLimitHeaders({})).toThrow(TypeError)
})

describe('with Redis away', () => {
  let server
  beforeAll(async () => {
    server = await new RedisServer().start()
    await useRedis({ url: server.url, commandTimeoutMs: 300, connectTimeoutMs: 300, retryMaxDelayMs: 200 })
  })
  afterAll(async () => {
    await server.stop()
    rateLimiter.setFailurePolicy('upload', 'open')
    rateLimiter.setFailurePolicy('message', 'open')
    rateLimiter.setFailurePolicy('login', 'open')
    await useRedis()
  })

  test("'open' (every action's default, login's too) allows, 'closed' denies, 'local' holds the line, and none rejects", async () => {
    for (const action of Object.keys(RateLimitConfig)) expect(rateLimiter.getFailurePolicy(action)).toBe('open')
    const who = id('away')
    await server.stop()
    // fail-open by default for login too, as the seed has it: 20 concurrent logins are all allowed
    const logins = await Promise.all(Array.from({ length: 20 }, () => rateLimiter.checkLimit(who, 'login')))
    expect(logins.every((r) => r.allowed && r.degraded)).toBe(true)
    await server.start()
    rateLimiter.setFailurePolicy('login', 'local') // what the docs recommend
    rateLimiter.setFailurePolicy('upload', 'closed')
    rateLimiter.setFailurePolicy('message', 'local')
    const up = async () => {
      for (let i = 0; i < 100; i++) {
        const r = await rateLimiter.checkLimit(id('up'), 'api')
        if (!r.degraded) return r
        await sleep(50)
      }
      return null
    }
    expect(await up()).not.toBeNull() // Redis is up again
    expect((await rateLimiter.checkLimit(who, 'login')).degraded).toBe(false)
    await server.stop()

    const open = await rateLimiter.checkLimit(who, 'api')
    expect(open).toMatchObject({ allowed: true, degraded: true })
    const closed = await rateLimiter.checkLimit(who, 'upload')
    expect(closed).toMatchObject({ allowed: false, degraded: true })
    expect(rateLimitHeaders(closed)['Retry-After']).toBe('1')

    // login: 5 attempts per 15 minutes, enforced in process while Redis is away.
    const started = Date.now()
    const attempts = []
    for (let i = 0; i < 20; i++) attempts.push(await rateLimiter.checkLimit(who, 'login'))
    expect(attempts.filter((r) => r.allowed)).toHaveLength(RateLimitConfig.login.limit)
    expect(attempts.every((r) => r.degraded)).toBe(true)
    expect(attempts[19].retryAfterMs).toBeGreaterThan(890000)
    // A local sliding window of another action, concurrently.
    const burst = await Promise.all(Array.from({ length: 100 }, () => rateLimiter.checkLimit(who, 'message', 10, 60)))
    expect(burst.filter((r) => r.allowed)).toHaveLength(10)
    expect(Date.now() - started).toBeLessThan(15000) // every call ended within its timeout

    // Back again: Redis decides once more.
    await server.start()
    const back = await (async () => {
      for (let i = 0; i < 100; i++) {
        const r = await rateLimiter.checkLimit(id('back'), 'api')
        if (!r.degraded) return r
        await sleep(50)
      }
      return null
    })()
    expect(back).toMatchObject({ allowed: true, degraded: false, remaining: RateLimitConfig.api.limit - 1 })
  })
})
