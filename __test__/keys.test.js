'use strict'
// RedisKeys / RedisTTL (owned by Rust) and keyPrefix on every key sent.
const { redis, useRedis, inspectorConnection, CLUSTER } = require('./support/client.js')

const { RedisKeys, RedisTTL } = redis

describe('RedisKeys', () => {
  test('builders for every prefix of the seed', () => {
    expect(RedisKeys.cache.user('u1')).toBe('cache:user:u1')
    expect(RedisKeys.cache.creator('c1')).toBe('cache:creator:c1')
    expect(RedisKeys.cache.brand('b1')).toBe('cache:brand:b1')
    expect(RedisKeys.cache.project('p1')).toBe('cache:project:p1')
    expect(RedisKeys.cache.asset('a1')).toBe('cache:asset:a1')
    expect(RedisKeys.cache.license('l1')).toBe('cache:license:l1')
    expect(RedisKeys.cache.creatorAssets('c1')).toBe('cache:creator-assets:c1')
    expect(RedisKeys.cache.projectAssets('p1')).toBe('cache:project-assets:p1')
    expect(RedisKeys.session.upload('s1')).toBe('session:upload:s1')
    expect(RedisKeys.session.auth('s2')).toBe('session:auth:s2')
    expect(RedisKeys.session.verification('tok')).toBe('session:verification:tok')
    expect(RedisKeys.jobs.queue('emails')).toBe('jobs:emails')
    expect(RedisKeys.ratelimit.key('api', 'user-1')).toBe('ratelimit:api:user-1')
    expect(RedisKeys.idempotency.key('payout-77')).toBe('idempotency:payout-77')
    expect(RedisKeys.lock.royaltyRun('run-9')).toBe('lock:royalty-run:run-9')
    expect(RedisKeys.lock.payout('p'),).toBe('lock:payout:p')
    expect(RedisKeys.lock.resource('r')).toBe('lock:resource:r')
    expect(RedisKeys.counter.metric('views')).toBe('counter:views')
    expect(RedisKeys.counter.metric('views', 'asset-1')).toBe('counter:views:asset-1')
    expect(RedisKeys.flag.feature('new-ui')).toBe('flag:feature:new-ui')
    expect(RedisKeys.flag.maintenance()).toBe('flag:maintenance')
  })

  test('a safe integer equals its string', () => {
    expect(RedisKeys.cache.user(42)).toBe(RedisKeys.cache.user('42'))
    expect(RedisKeys.cache.user(-7)).toBe('cache:user:-7')
    expect(RedisKeys.cache.user(Number.MAX_SAFE_INTEGER)).toBe(`cache:user:${Number.MAX_SAFE_INTEGER}`)
  })

  test('anything else is a TypeError', () => {
    const bad = ['', 1.5, NaN, Infinity, 2 ** 53, null, undefined, true, {}, [], Symbol('x'), 1n, () => 1]
    for (const id of bad) expect(() => RedisKeys.cache.user(id)).toThrow(TypeError)
    expect(() => RedisKeys.cache.user()).toThrow(/RedisKeys.cache.user/)
    expect(() => RedisKeys.ratelimit.key('api')).toThrow(TypeError)
    expect(() => RedisKeys.counter.metric('views', 1.25)).toThrow(TypeError)
  })

  test('an id is data: separators and glob characters are escaped', () => {
    expect(RedisKeys.cache.user('*')).toBe('cache:user:%2A')
    expect(RedisKeys.cache.user('a:b')).toBe('cache:user:a%3Ab')
    expect(RedisKeys.cache.user('[x]?\\')).toBe('cache:user:%5Bx%5D%3F%5C')
    expect(RedisKeys.cache.user('{tag}')).toBe('cache:user:%7Btag%7D')
    expect(RedisKeys.cache.user('100%')).toBe('cache:user:100%25')
    // escaping is one-to-one
    expect(RedisKeys.cache.user('a%3Ab')).not.toBe(RedisKeys.cache.user('a:b'))
    // ordinary ids (uuids, cuids, emails) are unchanged
    expect(RedisKeys.cache.user('5f0c-11ef_x.y@z')).toBe('cache:user:5f0c-11ef_x.y@z')
  })

  test('keys of plain ids (composed in JS from Rust\'s parts) are Rust\'s keys, and bad ids are still refused', () => {
    for (let round = 0; round < 2; round++) {
      expect(RedisKeys.counter.metric('views', 7)).toBe('counter:views:7')
      expect(RedisKeys.counter.metric('views', '7')).toBe('counter:views:7')
      expect(RedisKeys.counter.metric('views')).toBe('counter:views')
      expect(RedisKeys.counter.metric('views', -0)).toBe('counter:views:0')
      expect(RedisKeys.ratelimit.key('api', 'u:1')).toBe('ratelimit:api:u%3A1')
      expect(() => RedisKeys.ratelimit.key('api')).toThrow(TypeError)
      expect(() => RedisKeys.ratelimit.key('', 'u1')).toThrow(TypeError)
      expect(() => RedisKeys.counter.metric('views', 7.5)).toThrow(TypeError)
      expect(() => RedisKeys.counter.metric('views', '\ud800')).toThrow(/well-formed/)
      expect(() => RedisKeys.cache.user('a\udc00b')).toThrow(/well-formed/)
      expect(() => RedisKeys.cache.user(2 ** 53)).toThrow(TypeError)
      expect(RedisKeys.counter.metric('views', null)).toBe('counter:views') // null is no id
      expect(() => RedisKeys.counter.metric(7.5, 'x')).toThrow(TypeError)
    }
    for (let i = 0; i < 10000; i++) {
      expect(RedisKeys.counter.metric(`m${i % 3}`, i)).toBe(`counter:m${i % 3}:${i}`)
      expect(RedisKeys.cache.user(i)).toBe(`cache:user:${i}`)
    }
  })

  test('for every character and every builder, the JS builder gives the key Rust builds', () => {
    const native = require('../binding.js')
    const scheme = native.keyScheme()
    const rust = (index, a, b) => {
      try {
        return native.buildKey(index, a, b)
      } catch (error) {
        return `refused: ${error.message}`
      }
    }
    const js = (builder, a, b) => {
      try {
        return builder(a, b)
      } catch (error) {
        return `refused: ${error.message}`
      }
    }
    const userIndex = scheme.findIndex((b) => b.family === 'cache' && b.name === 'user')
    const rateIndex = scheme.findIndex((b) => b.family === 'ratelimit' && b.name === 'key')
    let plain = 0
    let escaped = 0
    const differ = []
    const compare = (label, got, expected) => {
      if (got !== expected) differ.push([label, got, expected])
    }
    // Every code point of the BMP but the surrogates, and every 97th beyond it, alone and inside an id.
    for (let cp = 0; cp <= 0x10ffff; cp += cp < 0x10000 ? 1 : 97) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue
      const c = String.fromCodePoint(cp)
      for (const id of [c, `a${c}b`]) {
        const expected = rust(userIndex, id)
        compare(id, js(RedisKeys.cache.user, id), expected)
        if (expected === `cache:user:${id}`) plain++
        else escaped++
      }
      compare(`api ${c}1`, js(RedisKeys.ratelimit.key, 'api', `${c}1`), rust(rateIndex, 'api', `${c}1`))
    }
    expect(differ).toEqual([])
    // Both paths were taken: most characters are written unchanged, the escaped set is not.
    expect(plain).toBeGreaterThan(100000)
    expect(escaped).toBe(2 * (10 + 32 + 33))
    // Every builder, with ids of each kind (plain, escaped, numbers, missing, null, bad;
    // a lone surrogate is refused in JS before Rust, above).
    const ids = ['u1', 'a:b', '%', 'é€😀', '', ' ', 0, -0, 42, -7, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53, 1.5, NaN, Infinity, undefined, null, true, {}, []]
    scheme.forEach((info, index) => {
      const builder = RedisKeys[info.family][info.name]
      for (const a of ids) {
        for (const b of info.maxArgs > 1 ? ids : [undefined]) {
          expect([info.name, a, b, js(builder, a, b)]).toEqual([info.name, a, b, rust(index, a, b)])
        }
      }
    })
  })

  test('RedisKeys and RedisTTL are frozen', () => {
    expect(Object.isFrozen(RedisKeys)).toBe(true)
    expect(Object.isFrozen(RedisKeys.cache)).toBe(true)
    expect(Object.isFrozen(RedisTTL.cache)).toBe(true)
  })
})

describe('RedisTTL', () => {
  test('the seed\'s TTLs', () => {
    expect(RedisTTL.cache.user).toBe(3600)
    expect(RedisTTL.cache.default).toBe(3600)
    expect(RedisTTL.session.upload).toBe(15 * 60)
    expect(RedisTTL.session.auth).toBe(24 * 3600)
    expect(RedisTTL.ratelimit.default).toBe(3600)
    expect(RedisTTL.idempotency.default).toBe(24 * 3600)
    expect(RedisTTL.lock.royaltyRun).toBe(300)
    expect(RedisTTL.lock.default).toBe(300)
    expect(RedisTTL.counter).toBeUndefined()
    expect(RedisTTL.flag).toBeUndefined()
    for (const group of Object.values(RedisTTL)) {
      for (const seconds of Object.values(group)) {
        expect(seconds).toBeGreaterThanOrEqual(300)
        expect(seconds).toBeLessThanOrEqual(24 * 3600)
      }
    }
  })
})

describe('keyPrefix', () => {
  let client
  let inspector
  const prefix = 'tenant[1]:'

  beforeAll(async () => {
    client = await useRedis({ keyPrefix: prefix })
    inspector = inspectorConnection({ lazyConnect: true })
  })
  afterAll(async () => {
    await redis.closeRedisConnection()
    inspector.disconnect()
  })

  test('is prepended literally to every key sent, and to nothing else', async () => {
    const k = RedisKeys.cache.user('prefixed')
    await client.set(k, 'v')
    expect(await inspector.get(prefix + k)).toBe('v')
    expect(await inspector.get(k)).toBeNull()
    await client.call('MSET', 'kp:a', '1', 'kp:b', '2')
    expect(await inspector.mget(`${prefix}kp:a`, `${prefix}kp:b`)).toEqual(['1', '2'])
    expect(await client.mget('kp:a', 'kp:b')).toEqual(['1', '2'])
    expect(await client.call('EVAL', 'return redis.call("GET", KEYS[1])', 1, 'kp:a')).toBe('1')
    // RENAME's two keys share a hash tag, so that it also runs on a cluster
    await client.call('SET', 'kp:{r}a', '1')
    await client.call('RENAME', 'kp:{r}a', 'kp:{r}c')
    expect(await inspector.exists(`${prefix}kp:{r}c`)).toBe(1)
    expect(await inspector.exists(`${prefix}kp:{r}a`)).toBe(0)
    expect(await client.del('kp:b', 'kp:{r}c', 'kp:a')).toBe(3)
    // values and non-key arguments are untouched
    await client.call('HSET', 'kp:h', 'kp:field', 'kp:value')
    expect(await inspector.hgetall(`${prefix}kp:h`)).toEqual({ 'kp:field': 'kp:value' })
  })

  test('scan() matches under the prefix (glob characters in it escaped) and returns keys without it', async () => {
    await inspector.set('tenant1:cache:user:other', 'x') // would match if "[1]" were a glob class
    await client.set('cache:user:s1', 'x')
    const seen = []
    for await (const keys of client.scan({ match: 'cache:user:*' })) seen.push(...keys)
    expect(seen.sort()).toEqual(['cache:user:prefixed', 'cache:user:s1'])
  })

  test('a command whose keys the table does not know is refused, not sent unprefixed', async () => {
    // (on a cluster it is refused earlier still: nowhere to route it)
    const refusal = CLUSTER ? /keys are not known, so it cannot be routed on a cluster/ : /keyPrefix cannot be applied/
    await expect(client.call('SOMEMODULE.SET', 'k', 'v')).rejects.toThrow(refusal)
    await expect(client.call('EVAL', 'return 1', 'x')).rejects.toBeInstanceOf(TypeError)
  })
})
