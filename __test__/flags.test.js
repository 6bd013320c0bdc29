'use strict'
// featureFlags, configureFeatureFlags and maintenanceRoute against private redis-servers.
const { AsyncLocalStorage } = require('node:async_hooks')
const { RedisServer } = require('./support/redis-server.js')
const { redis, useRedis, runNode, commandsSentDuring, useRedisWithInspector, sleep } = require('./support/client.js')

const { featureFlags, configureFeatureFlags, maintenanceRoute, RedisKeys } = redis
const inspector = useRedisWithInspector()
let unique = 0
const flag = (name) => `test-${name}-${process.pid}-${++unique}`

beforeEach(() => configureFeatureFlags({ cacheMs: 1000 }))
afterAll(() => configureFeatureFlags({ cacheMs: 1000 }))

/** Calls of a command on a private server (INFO commandstats). */
function calls(server, name) {
  const m = new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(server.cli('INFO', 'commandstats'))
  return m ? Number(m[1]) : 0
}

async function withPrivateServer(fn, options = {}) {
  const server = await new RedisServer().start()
  try {
    await useRedis({ url: server.url, ...options })
    return await fn(server)
  } finally {
    await redis.closeRedisConnection()
    await server.stop()
    await useRedis()
  }
}

test('isEnabled: false (or the default) when unset; setFlag persists under RedisKeys.flag.feature and is seen at once', async () => {
  const name = flag('basic')
  expect(await featureFlags.isEnabled(name)).toBe(false)
  expect(await featureFlags.isEnabled(name, { default: true })).toBe(true)
  // Cached as unset for a whole period — yet a write here is seen here at once.
  configureFeatureFlags({ cacheMs: 60000 })
  expect(await featureFlags.isEnabled(name)).toBe(false)
  await featureFlags.setFlag(name, true)
  expect(await featureFlags.isEnabled(name)).toBe(true)
  expect(await inspector.get(RedisKeys.flag.feature(name))).toBe('true')
  expect(await inspector.ttl(RedisKeys.flag.feature(name))).toBe(-1) // persists
  await featureFlags.setFlag(name, false)
  expect(await featureFlags.isEnabled(name, { default: true })).toBe(false) // off, not unset
  expect(await inspector.get(RedisKeys.flag.feature(name))).toBe('false')
})

test('values written by other tools: true/1/on/yes and false/0/off/no; anything else reads as unset', async () => {
  configureFeatureFlags({ cacheMs: 0 })
  const cases = { true: true, 1: true, ON: true, yes: true, '"true"': true, false: false, 0: false, off: false, NO: false }
  for (const [stored, expected] of Object.entries(cases)) {
    const name = flag('value')
    await inspector.set(RedisKeys.flag.feature(name), stored)
    expect(await featureFlags.isEnabled(name, { default: !expected })).toBe(expected)
  }
  const name = flag('garbage')
  await inspector.set(RedisKeys.flag.feature(name), 'maybe')
  expect(await featureFlags.isEnabled(name)).toBe(false)
  expect(await featureFlags.isEnabled(name, { default: true })).toBe(true)
})

test('1,000 concurrent isEnabled calls cost one Redis read per flag per period (INFO commandstats)', async () => {
  await withPrivateServer(async (server) => {
    configureFeatureFlags({ cacheMs: 1000 })
    const a = flag('hot-a')
    const b = flag('hot-b')
    server.cli('SET', RedisKeys.flag.feature(a), 'true')
    server.cli('CONFIG', 'RESETSTAT')
    const periodStart = Date.now()
    const first = await Promise.all(Array.from({ length: 1000 }, (_, i) => featureFlags.isEnabled(i % 2 ? a : b)))
    expect(first.filter(Boolean)).toHaveLength(500)
    expect(calls(server, 'get')).toBe(2) // concurrent misses shared one read per flag
    // The rest of the period: served from the cache.
    while (Date.now() - periodStart < 700) {
      await Promise.all(Array.from({ length: 1000 }, () => featureFlags.isEnabled(a)))
      await sleep(50)
    }
    expect(calls(server, 'get')).toBe(2)
    await sleep(1000 - (Date.now() - periodStart) + 100)
    await Promise.all(Array.from({ length: 1000 }, () => featureFlags.isEnabled(a)))
    expect(calls(server, 'get')).toBe(3) // the next period: one more read of a
  })
})

test('a flag changed by another process is seen here within cacheMs (+ a margin)', async () => {
  configureFeatureFlags({ cacheMs: 500 })
  const name = flag('remote')
  expect(await featureFlags.isEnabled(name)).toBe(false) // cached
  // Keep asking (every 10 ms) while another process turns the flag on.
  let seenAt = null
  let polling = true
  const poller = (async () => {
    while (polling && seenAt === null) {
      if (await featureFlags.isEnabled(name)) seenAt = Date.now()
      else await sleep(10)
    }
  })()
  const child = await runNode(`
    const r = require('.')
    r.featureFlags.setFlag(${JSON.stringify(name)}, true).then(() => { console.log(Date.now()); process.exit.call(process, 0) })`)
  expect(child.code).toBe(0)
  const setAt = Number(child.stdout.trim())
  const deadline = Date.now() + 3000
  while (seenAt === null && Date.now() < deadline) await sleep(10)
  polling = false
  await poller
  expect(seenAt).not.toBeNull()
  expect(seenAt - setAt).toBeLessThanOrEqual(500 + 150)
})

test('cacheMs 0: every call reads, and concurrent calls still share one read', async () => {
  await withPrivateServer(async (server) => {
    configureFeatureFlags({ cacheMs: 0 })
    const name = flag('nocache')
    server.cli('CONFIG', 'RESETSTAT')
    await Promise.all(Array.from({ length: 100 }, () => featureFlags.isEnabled(name)))
    expect(calls(server, 'get')).toBe(1)
    await featureFlags.isEnabled(name)
    await featureFlags.isEnabled(name)
    expect(calls(server, 'get')).toBe(3)
  })
})

test('Redis away: the last known value, else the default — at once and never a rejection', async () => {
  await withPrivateServer(
    async (server) => {
      configureFeatureFlags({ cacheMs: 100 })
      const on = flag('known-on')
      await featureFlags.setFlag(on, true)
      await featureFlags.setMaintenanceMode(true, { message: 'down for tea' })
      expect(await featureFlags.isEnabled(on)).toBe(true)
      await server.stop()
      await sleep(150) // the cached values are stale now
      const unknown = flag('never-read')
      for (let round = 0; round < 3; round++) {
        const started = Date.now()
        const results = await Promise.all([
          ...Array.from({ length: 500 }, () => featureFlags.isEnabled(on)),
          ...Array.from({ length: 500 }, () => featureFlags.isEnabled(unknown, { default: true })),
          featureFlags.isEnabled(unknown),
          featureFlags.isMaintenanceMode(),
        ])
        expect(Date.now() - started).toBeLessThan(300)
        expect(results.slice(0, 1000).every((v) => v === true)).toBe(true)
        expect(results[1000]).toBe(false)
        expect(results[1001]).toBe(true) // last known maintenance state
        await sleep(120)
      }
      // Writes do reject: they cannot be answered from a cache.
      await expect(featureFlags.setFlag(on, false)).rejects.toBeInstanceOf(redis.RedisError)
    },
    { commandTimeoutMs: 300, connectTimeoutMs: 300, retryMaxDelayMs: 100 },
  )
})

test('getFlags lists every flag by SCAN (never KEYS), names with *, : and { as data', async () => {
  await withPrivateServer(async (server) => {
    const names = ['alpha', 'beta:2', 'gamma*', '{delta}', 'ünïcode']
    for (const [i, name] of names.entries()) await featureFlags.setFlag(name, i % 2 === 0)
    server.cli('SET', RedisKeys.flag.feature('by-hand'), '1')
    server.cli('SET', RedisKeys.flag.feature('junk'), 'maybe')
    server.cli('SET', 'flag:featureless', 'true') // not a feature key
    server.cli('SET', RedisKeys.flag.maintenance(), '{"on":true}')
    server.cli('CONFIG', 'RESETSTAT')
    expect(await featureFlags.getFlags()).toEqual({
      alpha: true,
      'beta:2': false,
      'gamma*': true,
      '{delta}': false,
      ünïcode: true,
      'by-hand': true,
    })
    expect(calls(server, 'scan')).toBeGreaterThanOrEqual(1)
    expect(calls(server, 'keys')).toBe(0)
    expect(server.cli('EXISTS', 'flag:feature:beta%3A2')).toBe('1')
  })
})

test('keyPrefix: flags and getFlags stay under the prefix', async () => {
  await useRedis({ keyPrefix: 'tenant7:' })
  try {
    configureFeatureFlags({ cacheMs: 0 })
    const name = flag('prefixed')
    await featureFlags.setFlag(name, true)
    expect(await inspector.get(`tenant7:${RedisKeys.flag.feature(name)}`)).toBe('true')
    expect(await inspector.exists(RedisKeys.flag.feature(name))).toBe(0)
    expect(await featureFlags.isEnabled(name)).toBe(true)
    const flags = await featureFlags.getFlags()
    expect(flags[name]).toBe(true)
    await inspector.set(RedisKeys.flag.feature(`${name}-unprefixed`), 'true')
    expect(await featureFlags.getFlags()).not.toHaveProperty(`${name}-unprefixed`)
  } finally {
    await useRedis()
  }
})

test('maintenance mode: off by default; on with a message and since; off again; persisted under flag.maintenance()', async () => {
  await withPrivateServer(async (server) => {
    configureFeatureFlags({ cacheMs: 60000 })
    expect(await featureFlags.isMaintenanceMode()).toBe(false)
    expect(await featureFlags.getMaintenance()).toEqual({ on: false, message: null, since: null })
    const before = Date.now()
    await featureFlags.setMaintenanceMode(true, { message: 'Upgrading the database' })
    expect(await featureFlags.isMaintenanceMode()).toBe(true) // at once, despite the 60 s cache
    const m = await featureFlags.getMaintenance()
    expect(m).toEqual({ on: true, message: 'Upgrading the database', since: expect.any(Date) })
    expect(m.since.getTime()).toBeGreaterThanOrEqual(before)
    expect(m.since.getTime()).toBeLessThanOrEqual(Date.now())
    expect(JSON.parse(server.cli('GET', RedisKeys.flag.maintenance()))).toEqual({
      on: true,
      message: 'Upgrading the database',
      since: m.since.toISOString(),
    })
    expect(server.cli('TTL', RedisKeys.flag.maintenance())).toBe('-1')
    await featureFlags.setMaintenanceMode(false)
    expect(await featureFlags.getMaintenance()).toEqual({ on: false, message: null, since: null })
    // Another process switches it on: seen after the cache period.
    configureFeatureFlags({ cacheMs: 200 })
    expect(await featureFlags.isMaintenanceMode()).toBe(false)
    const child = await runNode(
      `require('.').featureFlags.setMaintenanceMode(true).then(() => process.exit.call(process, 0))`,
      { env: { REDIS_URL: server.url } },
    )
    expect(child.code).toBe(0)
    await sleep(250)
    expect(await featureFlags.getMaintenance()).toMatchObject({ on: true, message: null })
  })
})

test('maintenanceRoute: 503 with Retry-After and the message as JSON while on, else the handler', async () => {
  const als = new AsyncLocalStorage()
  let seen = null
  const route = maintenanceRoute(async (request, context) => {
    seen = { store: als.getStore(), url: request.url, params: await context.params }
    return Response.json({ ok: true })
  })
  const call = () => als.run({ request: 'm-1' }, () => route(new Request('http://localhost/api/x'), { params: Promise.resolve({ id: '3' }) }))
  try {
    await featureFlags.setMaintenanceMode(false)
    let response = await call()
    expect(response.status).toBe(200)
    expect(seen).toEqual({ store: { request: 'm-1' }, url: 'http://localhost/api/x', params: { id: '3' } })
    seen = null
    await featureFlags.setMaintenanceMode(true, { message: 'Back at 10:00 UTC' })
    response = await call()
    expect(response.status).toBe(503)
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    const body = await response.json()
    expect(body).toMatchObject({ maintenance: true, message: 'Back at 10:00 UTC' })
    expect(new Date(body.since).getTime()).toBeLessThanOrEqual(Date.now())
    expect(seen).toBeNull() // the handler did not run
  } finally {
    await featureFlags.setMaintenanceMode(false)
  }
  expect((await call()).status).toBe(200)
})

test('bad input is a TypeError (EINVALID) and nothing is sent', async () => {
  const sent = await commandsSentDuring(async () => {
    for (const call of [
      () => featureFlags.isEnabled(''),
      () => featureFlags.isEnabled({}),
      () => featureFlags.isEnabled('x\uD800'),
      () => featureFlags.isEnabled('x', { default: 'yes' }),
      () => featureFlags.isEnabled('x', 'options'),
      () => featureFlags.setFlag('x', 'true'),
      () => featureFlags.setFlag('x', 1),
      () => featureFlags.setFlag(null, true),
      () => featureFlags.setMaintenanceMode('on'),
      () => featureFlags.setMaintenanceMode(true, { message: 42 }),
      () => featureFlags.setMaintenanceMode(true, 'message'),
    ]) {
      const error = await call().catch((e) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('EINVALID')
    }
    for (const call of [
      () => configureFeatureFlags({ cacheMs: -1 }),
      () => configureFeatureFlags({ cacheMs: 1.5 }),
      () => configureFeatureFlags(null),
      () => maintenanceRoute('handler'),
    ]) {
      let error = null
      try {
        call()
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('EINVALID')
    }
  })
  expect(sent).toBe(0)
})
