'use strict'
// sessionStore against private redis-servers.
const { RedisServer } = require('./support/redis-server.js')
const { redis, useRedis, runNode, commandsSentDuring, useRedisWithInspector, sleep } = require('./support/client.js')

const { sessionStore, RedisKeys, RedisTTL, RedisError } = redis
const inspector = useRedisWithInspector()

/** Commands per name that reached a private server while `fn` ran (INFO commandstats). */
async function commandStatsDuring(fn) {
  const server = await new RedisServer().start()
  try {
    await useRedis({ url: server.url })
    await redis.getRedisClient().ping()
    server.cli('CONFIG', 'RESETSTAT')
    await fn(server)
    const stats = {}
    for (const m of server.cli('INFO', 'commandstats').matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) stats[m[1]] = Number(m[2])
    delete stats.info
    delete stats['config|resetstat']
    return stats
  } finally {
    await redis.closeRedisConnection()
    await server.stop()
    await useRedis()
  }
}

test("the seed's example 4 (upload session) with sessionStore", async () => {
  const userId = 'user-1'
  const fileName = 'mix.wav'
  const storageKey = 'uploads/user-1/mix.wav'
  // Store upload session
  const sessionData = {
    userId,
    fileName,
    storageKey,
    expiresAt: new Date(Date.now() + 15 * 60 * 1000),
  }
  const { id: sessionId, expiresAt } = await sessionStore.create('upload', sessionData)
  // Retrieve and validate session
  const session = await sessionStore.get('upload', sessionId)
  if (!session) {
    throw new Error('Session expired')
  }
  expect(session).toEqual({ ...sessionData, expiresAt: sessionData.expiresAt.toISOString() })
  // Under RedisKeys.session.upload(id), with RedisTTL.session.upload (15 minutes).
  expect(JSON.parse(await inspector.get(RedisKeys.session.upload(sessionId)))).toEqual(session)
  expect(RedisTTL.session.upload).toBe(900)
  const ttl = await inspector.ttl(RedisKeys.session.upload(sessionId))
  expect(ttl).toBeGreaterThan(895)
  expect(ttl).toBeLessThanOrEqual(900)
  expect(Math.abs(expiresAt.getTime() - (Date.now() + 900 * 1000))).toBeLessThan(5000)
})

test('create: fresh URL-safe ids of at least 128 random bits, the kind’s TTL by default or ttlSeconds', async () => {
  const ids = new Set()
  for (let i = 0; i < 1000; i++) {
    const { id } = await sessionStore.create('verification', { i }, { ttlSeconds: 30 })
    expect(id).toMatch(/^[A-Za-z0-9_-]{22,}$/) // 22 base64url characters = 132 bits of room, 128 random
    expect(Buffer.from(id, 'base64url').length).toBeGreaterThanOrEqual(16)
    ids.add(id)
  }
  expect(ids.size).toBe(1000)
  for (const kind of ['upload', 'auth', 'verification']) {
    const before = Date.now()
    const { id, expiresAt } = await sessionStore.create(kind, { kind })
    const ttl = await inspector.ttl(RedisKeys.session[kind](id))
    expect(ttl).toBeGreaterThan(RedisTTL.session[kind] - 5)
    expect(ttl).toBeLessThanOrEqual(RedisTTL.session[kind])
    expect(expiresAt.getTime()).toBeGreaterThanOrEqual(before + RedisTTL.session[kind] * 1000)
    expect(expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + RedisTTL.session[kind] * 1000)
  }
  const { id, expiresAt } = await sessionStore.create('auth', { short: true }, { ttlSeconds: 42 })
  expect(await inspector.ttl(RedisKeys.session.auth(id))).toBe(42)
  expect(expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 42000)
})

test('get: the data, or null when missing or expired', async () => {
  const { id } = await sessionStore.create('auth', { userId: 'u' }, { ttlSeconds: 1 })
  expect(await sessionStore.get('auth', id)).toEqual({ userId: 'u' })
  expect(await sessionStore.get('upload', id)).toBeNull() // another kind is another key
  expect(await sessionStore.get('auth', 'no-such-session')).toBeNull()
  await sleep(1100)
  expect(await sessionStore.get('auth', id)).toBeNull()
})

test('sessions of one shape are read by the reader compiled for it, as JSON.parse reads them; other texts by JSON.parse, and non-JSON as null', async () => {
  const native = require('../lib/native.js')
  const matches = jest.spyOn(native, 'jsonMatch')
  try {
    const session = (i) => ({ userId: `u${i}`, roles: ['a', 'b'].slice(0, i % 3), org: i % 2 ? null : { id: i, name: `o${i} 😀` }, recent: Array.from({ length: i % 4 }, (_, j) => ({ path: `/p/${j}`, at: j })), n: -0 })
    for (let i = 0; i < 12; i++) {
      // Whatever earlier tests left under the prefix, four reads make a reader for this shape.
      if (i === 4) matches.mockClear()
      const { id } = await sessionStore.create('auth', session(i))
      const how = ['get', 'touch', 'consume'][i % 3]
      const value = how === 'touch' ? await sessionStore.touch('auth', id, 60) : await sessionStore[how]('auth', id)
      expect(value).toStrictEqual(JSON.parse(JSON.stringify(session(i))))
    }
    // The reader built the last eight: the org object or null, and lists of any length.
    expect(matches.mock.results.filter((r) => r.value === native.JSON_MATCH_YES)).toHaveLength(8)
    // Whatever else a session key holds: JSON.parse's value, or null for what it refuses.
    const key = (id) => RedisKeys.session.auth(id)
    await inspector.set(key('other'), '{"userId":"u","roles":[1],"extra":true}')
    expect(await sessionStore.get('auth', 'other')).toStrictEqual({ userId: 'u', roles: [1], extra: true })
    await inspector.set(key('broken'), '{"userId":"u","roles":[],"org":null,"recent":[],"n":0')
    expect(await sessionStore.get('auth', 'broken')).toBeNull()
  } finally {
    matches.mockRestore()
  }
})

test('touch: resolves the data and renews the TTL in one GETEX; null when missing', async () => {
  const stats = await commandStatsDuring(async () => {
    const { id } = await sessionStore.create('upload', { step: 1 }, { ttlSeconds: 5 })
    const key = RedisKeys.session.upload(id)
    expect(await sessionStore.touch('upload', id, 120)).toEqual({ step: 1 })
    expect(Number(await redis.getRedisClient().ttl(key))).toBe(120)
    expect(await sessionStore.touch('upload', id)).toEqual({ step: 1 }) // back to the kind's TTL
    expect(Number(await redis.getRedisClient().ttl(key))).toBe(RedisTTL.session.upload)
    expect(await sessionStore.touch('upload', 'missing')).toBeNull()
  })
  expect(stats).toEqual({ set: 1, getex: 3, ttl: 2 })
})

test('consume: the data and its deletion in one GETDEL; it works exactly once', async () => {
  const stats = await commandStatsDuring(async () => {
    const { id } = await sessionStore.create('verification', { email: 'a@example.com' })
    expect(await sessionStore.consume('verification', id)).toEqual({ email: 'a@example.com' })
    expect(await sessionStore.consume('verification', id)).toBeNull()
    expect(await sessionStore.get('verification', id)).toBeNull()
  })
  expect(stats).toEqual({ set: 1, getdel: 2, get: 1 })
})

test('100 concurrent consumers of one token: exactly one gets it', async () => {
  const { id } = await sessionStore.create('verification', { token: 'once' })
  const results = await Promise.all(Array.from({ length: 100 }, () => sessionStore.consume('verification', id)))
  expect(results.filter((r) => r !== null)).toEqual([{ token: 'once' }])
})

test('3 node processes × 30 consumers of one token: exactly one of the 90 gets it', async () => {
  const { id } = await sessionStore.create('verification', { token: 'cross-process' })
  const go = `sessions-test:go:${id}`
  const child = `
    const r = require('.')
    const c = r.getRedisClient()
    ;(async () => {
      while ((await c.get(${JSON.stringify(go)})) === null) await new Promise((res) => setTimeout(res, 2))
      const got = await Promise.all(Array.from({ length: 30 }, () => r.sessionStore.consume('verification', ${JSON.stringify(id)})))
      console.log(JSON.stringify(got.filter((x) => x !== null)))
      process.exit.call(process, 0)
    })()`
  const all = [runNode(child), runNode(child), runNode(child)]
  await sleep(500)
  await inspector.set(go, '1')
  const outputs = await Promise.all(all)
  for (const o of outputs) expect(o.code).toBe(0)
  const winners = outputs.flatMap((o) => JSON.parse(o.stdout))
  expect(winners).toEqual([{ token: 'cross-process' }])
}, 30000)

test('destroy: resolves whether it existed', async () => {
  const { id } = await sessionStore.create('auth', { userId: 'd' })
  expect(await sessionStore.destroy('auth', id)).toBe(true)
  expect(await sessionStore.destroy('auth', id)).toBe(false)
  expect(await inspector.exists(RedisKeys.session.auth(id))).toBe(0)
})

test('ids holding *, : or { are data: each reads, consumes and deletes only its own key', async () => {
  await inspector.set(RedisKeys.session.auth('abc'), '{"who":"abc"}', 'EX', 60)
  await inspector.set(RedisKeys.session.auth('a:b'), '{"who":"a:b"}', 'EX', 60)
  for (const id of ['a*', '*', 'a?c', 'a[b]c', '{abc}', 'a:']) {
    expect(await sessionStore.get('auth', id)).toBeNull()
    expect(await sessionStore.consume('auth', id)).toBeNull()
    expect(await sessionStore.destroy('auth', id)).toBe(false)
  }
  expect(await sessionStore.get('auth', 'a:b')).toEqual({ who: 'a:b' })
  expect(await inspector.get('session:auth:a%3Ab')).toBe('{"who":"a:b"}')
  expect(await sessionStore.get('auth', 'abc')).toEqual({ who: 'abc' })
})

test('bad kinds, ids, data and TTLs are TypeErrors (EINVALID) and nothing is sent', async () => {
  const sent = await commandsSentDuring(async () => {
    const cycle = {}
    cycle.self = cycle
    const bad = [
      () => sessionStore.create('admin', {}),
      () => sessionStore.create(undefined, {}),
      () => sessionStore.create('Upload', {}),
      () => sessionStore.create('toString', {}),
      () => sessionStore.create('upload', undefined),
      () => sessionStore.create('upload', cycle),
      () => sessionStore.create('upload', 10n),
      () => sessionStore.create('upload', () => 1),
      () => sessionStore.create('upload', {}, { ttlSeconds: 0 }),
      () => sessionStore.create('upload', {}, { ttlSeconds: 1.5 }),
      () => sessionStore.create('upload', {}, { ttlSeconds: 2 * 365 * 24 * 3600 }),
      () => sessionStore.create('upload', {}, 'options'),
      () => sessionStore.get('upload', ''),
      () => sessionStore.get('upload', 42),
      () => sessionStore.get('upload', null),
      () => sessionStore.get('upload', 'id\uDC00'),
      () => sessionStore.get('session', 'id'),
      () => sessionStore.touch('upload', 'id', -1),
      () => sessionStore.touch('nope', 'id'),
      () => sessionStore.consume('upload', undefined),
      () => sessionStore.consume('__proto__', 'id'),
      () => sessionStore.destroy('auth', {}),
    ]
    for (const call of bad) {
      const error = await call().catch((e) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('EINVALID')
    }
  })
  expect(sent).toBe(0)
})

test('with Redis stopped every method rejects clearly within the command timeout', async () => {
  const server = await new RedisServer().start()
  try {
    await useRedis({ url: server.url, commandTimeoutMs: 500, connectTimeoutMs: 500, retryMaxDelayMs: 200 })
    const { id } = await sessionStore.create('auth', { u: 1 })
    await server.stop()
    const started = Date.now()
    for (const call of [() => sessionStore.get('auth', id), () => sessionStore.consume('auth', id), () => sessionStore.create('auth', {})]) {
      await expect(call()).rejects.toBeInstanceOf(RedisError)
    }
    expect(Date.now() - started).toBeLessThan(3000)
  } finally {
    await redis.closeRedisConnection()
    await server.stop()
    await useRedis()
  }
})
