'use strict'
// rateLimiter's local deny cache and blockUntilReady, against a private
// redis-server of this file: what reaches the server is counted with INFO
// commandstats (EVAL + EVALSHA calls).
const { RedisServer } = require('./support/redis-server.js')
const { redis, useRedis, ROOT, sleep } = require('./support/client.js')
const { DENY_CACHE_MAX_ENTRIES } = require('../lib/rate-limit.js')

const { rateLimiter, configureRateLimiter, RedisKeys } = redis
let server
let unique = 0
const id = (name) => `${name}-${process.pid}-${++unique}`

/** EVAL + EVALSHA calls the server has run (the limiter's script). */
function scriptCalls() {
  const info = server.cli('INFO', 'commandstats')
  let calls = 0
  for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) calls += Number(m[1])
  return calls
}

/** Runs `fn` and resolves how many scripts reached the server meanwhile. */
async function scriptsDuring(fn) {
  const before = scriptCalls()
  await fn()
  return scriptCalls() - before
}

beforeAll(async () => {
  server = await new RedisServer().start()
  await useRedis({ url: server.url })
  await rateLimiter.checkLimit(id('warm-up'), 'api') // the script is loaded
})
afterAll(async () => {
  configureRateLimiter({ denyCache: true })
  await redis.closeRedisConnection()
  await server.stop()
})

test('a denied identifier is answered in process until its retry time: no EVAL/EVALSHA reaches the server', async () => {
  const who = id('flood')
  const options = { limit: 3, windowSeconds: 1, cost: 1 }
  for (let i = 0; i < 3; i++) expect((await rateLimiter.checkLimit(who, 'api', options)).allowed).toBe(true)
  const first = await rateLimiter.checkLimit(who, 'api', options)
  expect(first).toMatchObject({ allowed: false, cached: false, degraded: false })
  let flood
  const sent = await scriptsDuring(async () => {
    flood = await Promise.all(Array.from({ length: 500 }, () => rateLimiter.checkLimit(who, 'api', options)))
    // The same or a higher cost, and getStatus, are answered from the cache too.
    flood.push(await rateLimiter.checkLimit(who, 'api', { ...options, cost: 3 }))
    flood.push(await rateLimiter.getStatus(who, 'api', options))
  })
  expect(sent).toBe(0)
  expect(flood.every((r) => !r.allowed && r.cached && r.remaining === 0 && !r.degraded)).toBe(true)
  expect(flood.every((r) => r.resetAt.getTime() === first.resetAt.getTime())).toBe(true)
  expect(flood.every((r) => r.retryAfterMs >= 1 && r.retryAfterMs <= first.retryAfterMs)).toBe(true)
  // Another identifier, another action, another limit or window: asked of Redis.
  expect(await scriptsDuring(() => rateLimiter.checkLimit(id('other'), 'api', options))).toBe(1)
  expect(await scriptsDuring(() => rateLimiter.checkLimit(who, 'message', options))).toBe(1)
  expect(await scriptsDuring(() => rateLimiter.getStatus(who, 'api', { ...options, limit: 4 }))).toBe(1)
  // Once the retry time has passed, Redis is asked again (and the slot is free).
  await sleep(first.retryAfterMs + 5)
  let again
  expect(await scriptsDuring(async () => (again = await rateLimiter.checkLimit(who, 'api', options)))).toBe(1)
  expect(again).toMatchObject({ allowed: true, cached: false })
})

test('a lower cost than the cached denial asks Redis; a denial of cost c is cached until c slots are free', async () => {
  const who = id('costs')
  const options = (cost) => ({ limit: 10, windowSeconds: 60, cost })
  await rateLimiter.checkLimit(who, 'api', options(8))
  const denied = await rateLimiter.checkLimit(who, 'api', options(3))
  expect(denied).toMatchObject({ allowed: false, cached: false, remaining: 2 })
  expect(denied.retryAfterMs).toBeGreaterThan(59000)
  let lower
  expect(await scriptsDuring(async () => (lower = await rateLimiter.checkLimit(who, 'api', options(2))))).toBe(1)
  expect(lower).toMatchObject({ allowed: true, remaining: 0, cached: false })
  // Now even cost 1 is denied by Redis, and from then on cached for every cost.
  expect(await rateLimiter.checkLimit(who, 'api', options(1))).toMatchObject({ allowed: false, cached: false })
  expect(await scriptsDuring(async () => {
    for (const cost of [1, 2, 5, 11]) expect((await rateLimiter.checkLimit(who, 'api', options(cost))).cached).toBe(true)
  })).toBe(0)
})

test('reset() clears the cached denial at once', async () => {
  const who = id('reset')
  await rateLimiter.checkLimit(who, 'login', { cost: 5 })
  expect(await rateLimiter.checkLimit(who, 'login')).toMatchObject({ allowed: false, cached: false })
  expect((await rateLimiter.checkLimit(who, 'login')).cached).toBe(true)
  expect(await rateLimiter.reset(who, 'login')).toBe(true)
  let after
  expect(await scriptsDuring(async () => (after = await rateLimiter.checkLimit(who, 'login')))).toBe(1)
  expect(after).toMatchObject({ allowed: true, cached: false, remaining: 4 })
})

test('configureRateLimiter({ denyCache: false }) sends every call to Redis; bad settings are refused', async () => {
  const who = id('off')
  await rateLimiter.checkLimit(who, 'export', { cost: 5 })
  expect((await rateLimiter.checkLimit(who, 'export')).allowed).toBe(false)
  configureRateLimiter({ denyCache: false })
  try {
    let results
    // One after another (calls of one tick share a script call): each is a script.
    expect(await scriptsDuring(async () => {
      results = []
      for (let i = 0; i < 20; i++) results.push(await rateLimiter.checkLimit(who, 'export'))
    })).toBe(20)
    expect(results.every((r) => !r.allowed && !r.cached)).toBe(true)
  } finally {
    configureRateLimiter({ denyCache: true })
  }
  await rateLimiter.checkLimit(who, 'export')
  expect(await scriptsDuring(() => rateLimiter.checkLimit(who, 'export'))).toBe(0)
  for (const bad of [null, undefined, 'off', [], { denyCache: 'no' }, { denyCache: false, size: 3 }]) {
    expect(() => configureRateLimiter(bad)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'EINVALID' }))
  }
})

test('the cache survives the module being evaluated again (Next.js dev reload)', async () => {
  const who = id('reload')
  await rateLimiter.checkLimit(who, 'export', { cost: 5 })
  await rateLimiter.checkLimit(who, 'export')
  let again
  jest.isolateModules(() => {
    again = require(ROOT)
  })
  expect(again.rateLimiter).not.toBe(rateLimiter)
  let result
  expect(await scriptsDuring(async () => (result = await again.rateLimiter.checkLimit(who, 'export')))).toBe(0)
  expect(result.cached).toBe(true)
  await again.rateLimiter.reset(who, 'export')
  expect(await scriptsDuring(() => rateLimiter.checkLimit(who, 'export'))).toBe(1)
})

test('bounded under 100,000 distinct denied identifiers: the most recent are kept, the oldest forgotten', async () => {
  const { runtime } = require('../lib/runtime.js')
  const entries = runtime.shared('rateLimiterDenyCache', () => null).entries
  const options = { limit: 1, windowSeconds: 60, cost: 2 } // never fits: one call, one denial
  for (let batch = 0; batch < 100; batch++) {
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => rateLimiter.checkLimit(`bound-${batch * 1000 + i}`, 'api', options)),
    )
    expect(results.every((r) => !r.allowed && !r.degraded)).toBe(true)
    expect(entries.size).toBeLessThanOrEqual(DENY_CACHE_MAX_ENTRIES)
  }
  expect(entries.size).toBe(DENY_CACHE_MAX_ENTRIES)
  // The newest denial is answered in process; the first one was forgotten and asks Redis.
  expect(await scriptsDuring(() => rateLimiter.checkLimit('bound-99999', 'api', options))).toBe(0)
  expect(await scriptsDuring(() => rateLimiter.checkLimit('bound-0', 'api', options))).toBe(1)
  expect(await server.cli('EXISTS', RedisKeys.ratelimit.key('api', 'bound-0'))).toBe('0') // denials took nothing
}, 120000)

describe('blockUntilReady', () => {
  test('against a 1 s window: sleeps until the retry time Redis gave, then resolves the allowed (counted) result', async () => {
    const who = id('block')
    const options = { limit: 2, windowSeconds: 1 }
    const started = performance.now()
    await rateLimiter.checkLimit(who, 'api', options)
    await rateLimiter.checkLimit(who, 'api', options)
    let result
    const sent = await scriptsDuring(async () => {
      result = await rateLimiter.blockUntilReady(who, 'api', 5000, options)
    })
    const waited = performance.now() - started
    expect(result).toMatchObject({ allowed: true, degraded: false, cached: false })
    expect(result.remaining).toBeLessThanOrEqual(1) // the second request may have left too
    expect(waited).toBeGreaterThanOrEqual(950)
    expect(waited).toBeLessThan(2000)
    expect(sent).toBe(2) // one denial, then one allowed call after the sleep: no polling
    // It was counted: the window holds the slots in it at that moment, the new one included.
    expect(Number(server.cli('STRLEN', RedisKeys.ratelimit.key('api', who))) / 8).toBe(2 - result.remaining)
  })

  test('a weighted request waits until its cost fits', async () => {
    const who = id('blockcost')
    await rateLimiter.checkLimit(who, 'api', { limit: 3, windowSeconds: 1, cost: 1 })
    await sleep(300)
    await rateLimiter.checkLimit(who, 'api', { limit: 3, windowSeconds: 1, cost: 2 })
    const started = performance.now()
    // 2 slots are free when the second request leaves, ~1 s after it (not ~0.7 s, when the first does).
    const result = await rateLimiter.blockUntilReady(who, 'api', 5000, { limit: 3, windowSeconds: 1, cost: 2 })
    const waited = performance.now() - started
    expect(result).toMatchObject({ allowed: true, remaining: 1 }) // the first has left too
    expect(waited).toBeGreaterThanOrEqual(850)
    expect(waited).toBeLessThan(1800)
  })

  test('resolves allowed: false at the timeout when the retry time is later, without asking again', async () => {
    const who = id('timeout')
    const options = { limit: 1, windowSeconds: 1 }
    await rateLimiter.checkLimit(who, 'api', options)
    const started = performance.now()
    let result
    const sent = await scriptsDuring(async () => {
      result = await rateLimiter.blockUntilReady(who, 'api', 300, options)
    })
    const waited = performance.now() - started
    expect(result).toMatchObject({ allowed: false, degraded: false })
    expect(result.retryAfterMs).toBeGreaterThan(0)
    expect(result.retryAfterMs).toBeLessThanOrEqual(750)
    expect(waited).toBeGreaterThanOrEqual(295)
    expect(waited).toBeLessThan(900)
    expect(sent).toBe(1)
  })

  test('resolves at once when allowed, when the timeout is 0, and for a cost that can never fit', async () => {
    const who = id('once')
    expect(await rateLimiter.blockUntilReady(who, 'api', 1000, { limit: 1, windowSeconds: 60 })).toMatchObject({ allowed: true })
    let started = performance.now()
    expect(await rateLimiter.blockUntilReady(who, 'api', 0, { limit: 1, windowSeconds: 60 })).toMatchObject({ allowed: false })
    expect(performance.now() - started).toBeLessThan(500)
    started = performance.now()
    expect(await rateLimiter.blockUntilReady(id('never'), 'api', 5000, { limit: 1, windowSeconds: 60, cost: 2 })).toMatchObject({ allowed: false })
    expect(performance.now() - started).toBeLessThan(500)
    // The positional defaults: RateLimitConfig.login (5 in 15 minutes).
    expect(await rateLimiter.blockUntilReady(id('login'), 'login', 100)).toMatchObject({ allowed: true, remaining: 4 })
  })
})

describe('one tick\'s decisions go in one script call', () => {
  test('150 concurrent calls on distinct identifiers: 3 script calls (64 + 64 + 22), each decided as alone', async () => {
    const options = { limit: 2, windowSeconds: 60 }
    const whos = Array.from({ length: 150 }, (_, i) => id(`batch-${i}`))
    let results
    expect(await scriptsDuring(async () => {
      results = await Promise.all(whos.map((who, i) => rateLimiter.checkLimit(who, 'api', { ...options, cost: 1 + (i % 2) })))
    })).toBe(3)
    results.forEach((result, i) => {
      expect(result).toMatchObject({ allowed: true, remaining: 1 - (i % 2), cached: false, degraded: false })
      expect(Number(server.cli('STRLEN', RedisKeys.ratelimit.key('api', whos[i]))) / 8).toBe(1 + (i % 2))
    })
  })

  test('one identifier several times in one call: decided in the order asked, exactly', async () => {
    const who = id('batch-same')
    const results = await Promise.all([
      rateLimiter.checkLimit(who, 'api', { limit: 3, windowSeconds: 60, cost: 2 }),
      rateLimiter.getStatus(who, 'api', { limit: 3, windowSeconds: 60 }),
      rateLimiter.checkLimit(who, 'api', { limit: 3, windowSeconds: 60, cost: 2 }),
      rateLimiter.checkLimit(who, 'api', { limit: 3, windowSeconds: 60 }),
      rateLimiter.checkLimit(who, 'api', { limit: 3, windowSeconds: 60 }),
    ])
    expect(results.map((r) => [r.allowed, r.remaining])).toEqual([
      [true, 1],
      [true, 1],
      [false, 1],
      [true, 0],
      [false, 0],
    ])
  })

  test('a key of another type fails its own decision (its failure policy answers), not the others', async () => {
    const taken = id('batch-taken')
    server.cli('HSET', RedisKeys.ratelimit.key('api', taken), 'not', 'ours')
    rateLimiter.setFailurePolicy('api', 'closed')
    try {
      const [mine, other] = await Promise.all([
        rateLimiter.checkLimit(taken, 'api', { limit: 5, windowSeconds: 60 }),
        rateLimiter.checkLimit(id('batch-fine'), 'api', { limit: 5, windowSeconds: 60 }),
      ])
      expect(mine).toMatchObject({ allowed: false, degraded: true })
      expect(other).toMatchObject({ allowed: true, remaining: 4, degraded: false })
      expect(server.cli('HGET', RedisKeys.ratelimit.key('api', taken), 'not')).toBe('ours')
    } finally {
      rateLimiter.setFailurePolicy('api', 'open')
    }
  })
})

describe('order and failures of a shared script call', () => {
  test('a reset() or a close right after checkLimit in the same tick runs after it', async () => {
    const who = id('order')
    const options = { limit: 5, windowSeconds: 60 }
    const [checked, wasThere] = await Promise.all([rateLimiter.checkLimit(who, 'api', options), rateLimiter.reset(who, 'api')])
    expect(checked).toMatchObject({ allowed: true, remaining: 4, degraded: false })
    expect(wasThere).toBe(true) // the check's window existed when reset ran
    expect(server.cli('EXISTS', RedisKeys.ratelimit.key('api', who))).toBe('0')
    const [, closed] = await Promise.all([rateLimiter.checkLimit(who, 'api', options), redis.closeRedisConnection()])
    expect(closed).toBeUndefined()
    expect(Number(server.cli('STRLEN', RedisKeys.ratelimit.key('api', who))) / 8).toBe(1)
    expect((await rateLimiter.getStatus(who, 'api', options)).remaining).toBe(4)
  })

  test('a write Redis refuses (out of memory) fails its own decision only: a denial in the same call still answers', async () => {
    const full = id('oom-full')
    const fresh = id('oom-fresh')
    const options = { limit: 2, windowSeconds: 60 }
    await rateLimiter.checkLimit(full, 'upload', options)
    await rateLimiter.checkLimit(full, 'upload', options)
    configureRateLimiter({ denyCache: false })
    server.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
    server.cli('CONFIG', 'SET', 'maxmemory', '1')
    rateLimiter.setFailurePolicy('upload', 'closed')
    try {
      const [denied, refused] = await Promise.all([
        rateLimiter.checkLimit(full, 'upload', options),
        rateLimiter.checkLimit(fresh, 'upload', options),
      ])
      expect(denied).toMatchObject({ allowed: false, remaining: 0, degraded: false })
      expect(refused).toMatchObject({ allowed: false, degraded: true }) // 'closed': the policy answered
      expect(server.cli('EXISTS', RedisKeys.ratelimit.key('upload', fresh))).toBe('0')
    } finally {
      server.cli('CONFIG', 'SET', 'maxmemory', '0')
      rateLimiter.setFailurePolicy('upload', 'open')
      configureRateLimiter({ denyCache: true })
    }
  })
})
