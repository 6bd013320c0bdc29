'use strict'
// Contract fixes of the second release (API.md "Clarifications"): authorize
// alone decides, the package's own NOSCRIPT is not an error, TTL and input
// checks (EINVALID on every TypeError), the public health body, and no handle
// left behind by a closed client. Each fault runs against a private redis-server.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { RedisServer, freePort } = require('./support/redis-server.js')
const { ROOT, redis, useRedis, commandsSentDuring, inspectorConnection } = require('./support/client.js')

const {
  cacheService,
  rateLimiter,
  rateLimitHeaders,
  RedisKeys,
  acquireLock,
  extendLock,
  releaseLock,
  withLock,
  getRedisMetrics,
  getRedisClient,
  redisHealthHandler,
  createRedisMetricsHandler,
} = redis

afterAll(() => redis.closeRedisConnection())

/** The error a call throws or rejects with (null when it succeeds). */
async function failureOf(fn) {
  try {
    await fn()
    return null
  } catch (error) {
    return error
  }
}

describe('createRedisMetricsHandler: authorize alone decides', () => {
  beforeAll(() => useRedis())

  test('a query token, a header of its own, credentials refused, a throw', async () => {
    const seen = []
    const GET = createRedisMetricsHandler({
      authorize: async (request) => {
        seen.push(request.url)
        const url = new URL(request.url)
        if (url.searchParams.get('boom')) throw new Error('authorizer broke')
        return url.searchParams.get('token') === 's3cret' || request.headers.get('x-admin-key') === 'k-1'
      },
    })
    const base = 'http://localhost/api/admin/redis/metrics'
    // No Authorization or Cookie header, yet authorize says yes: 200.
    const byQuery = await GET(new Request(`${base}?token=s3cret`))
    expect(byQuery.status).toBe(200)
    expect((await byQuery.json()).memory).toHaveProperty('usedBytes')
    const byHeader = await GET(new Request(`${base}?format=prometheus`, { headers: { 'x-admin-key': 'k-1' } }))
    expect(byHeader.status).toBe(200)
    expect(await byHeader.text()).toMatch(/^# HELP redis_/)
    // No: 401 with WWW-Authenticate when nothing was presented, 403 when credentials were.
    const none = await GET(new Request(base))
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('Bearer')
    const wrongBearer = await GET(new Request(base, { headers: { authorization: 'Bearer nope' } }))
    expect(wrongBearer.status).toBe(403)
    const cookie = await GET(new Request(base, { headers: { cookie: 'session=x' } }))
    expect(cookie.status).toBe(403)
    // A throw is a refusal, with or without credentials.
    expect((await GET(new Request(`${base}?boom=1`))).status).toBe(403)
    expect((await GET(new Request(`${base}?boom=1&token=s3cret`))).status).toBe(403)
    // authorize was asked every time, the credential-less requests included.
    expect(seen).toHaveLength(7)
  })
})

describe("the package's own NOSCRIPT is not a command error", () => {
  test('first EVALSHA of each script on a fresh server: no error, no highErrorRate alert', async () => {
    const server = await new RedisServer().start()
    try {
      await useRedis({ url: server.url })
      redis.resetCommandMetrics()
      expect((await rateLimiter.checkLimit('noscript', 'api')).allowed).toBe(true)
      expect(await withLock('lock:noscript', async () => 'done', 10)).toBe('done')
      server.cli('SCRIPT', 'FLUSH') // a flushed server: NOSCRIPT again
      expect((await rateLimiter.checkLimit('noscript', 'api')).remaining).toBe(98)
      let m = await getRedisMetrics()
      expect(m.client.commands).toBeGreaterThan(0)
      expect(m.client.errors).toBe(0)
      expect(m.alerts.map((a) => a.name)).not.toContain('highErrorRate')
      // The control: an application's own EVALSHA of an unknown script is its error.
      await expect(getRedisClient().call('EVALSHA', 'ffffffffffffffffffffffffffffffffffffffff', 0)).rejects.toMatchObject({ code: 'NOSCRIPT' })
      m = await getRedisMetrics()
      expect(m.client.errors).toBe(1)
    } finally {
      await server.stop()
      await useRedis()
    }
  })
})

describe('TTLs are whole seconds within bounds, checked before anything is sent', () => {
  test('lock leases above 24 h and cache TTLs above a year are refused, saying the unit is seconds', async () => {
    let ran = false
    const errors = []
    const sent = await commandsSentDuring(async () => {
      const attempts = [
        () => acquireLock('lock:ttl', 2 ** 53),
        () => acquireLock('lock:ttl', 86401),
        () => acquireLock('lock:ttl', 1.5),
        () => acquireLock('lock:ttl', -1),
        () => withLock('lock:ttl', async () => { ran = true }, 300000),
        () => extendLock({ key: 'lock:ttl', token: 't' }, 1e9),
        () => cacheService.set('cache:ttl', 1, 1e308),
        () => cacheService.set('cache:ttl', 1, 365 * 24 * 3600 + 1),
        () => cacheService.set('cache:ttl', 1, -1),
        () => cacheService.set('cache:ttl', 1, 2.5),
        () => cacheService.set('cache:ttl', 1, Number.NaN),
        () => cacheService.mset([['cache:ttl', 1]], 1e308),
        () => cacheService.getOrSet('cache:ttl', async () => 1, 1e12),
      ]
      for (const attempt of attempts) errors.push(await failureOf(attempt))
    })
    expect(sent).toBe(0)
    expect(ran).toBe(false)
    for (const error of errors) {
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('EINVALID')
    }
    expect(errors[0].message).toMatch(/in seconds.*24 hours/)
    expect(errors[4].message).toMatch(/in seconds.*24 hours/)
    expect(errors[6].message).toMatch(/in seconds.*one year/)
    expect(errors[7].message).toMatch(/in seconds.*one year/)
  })

  test('the bounds themselves are accepted and reach Redis as given', async () => {
    const inspector = inspectorConnection()
    try {
      await useRedis()
      const lock = await acquireLock('lock:ttl-bound', 86400)
      expect(lock.expiresAt.getTime()).toBeGreaterThan(Date.now() + 86399000)
      expect(await inspector.pttl('lock:ttl-bound')).toBeGreaterThan(86399000)
      await releaseLock(lock)
      await cacheService.set('cache:ttl-bound', { a: 1 }, 365 * 24 * 3600)
      expect(await inspector.ttl('cache:ttl-bound')).toBeGreaterThan(365 * 24 * 3600 - 5)
      await cacheService.set('cache:ttl-zero', { a: 1 }, 0)
      expect(await inspector.ttl('cache:ttl-zero')).toBe(-1)
    } finally {
      inspector.disconnect()
    }
  })
})

describe('keys and ids must be well-formed UTF-16', () => {
  test('lone surrogates are refused everywhere before anything is sent; astral characters are fine', async () => {
    const errors = []
    const sent = await commandsSentDuring(async () => {
      for (const bad of ['\uD800', '\uDBFF', 'user-\uDC00', 'x\uD83D']) {
        errors.push(await failureOf(() => RedisKeys.cache.user(bad)))
        errors.push(await failureOf(() => RedisKeys.ratelimit.key('api', bad)))
        errors.push(await failureOf(() => cacheService.get(`cache:${bad}`)))
        errors.push(await failureOf(() => cacheService.set(`cache:${bad}`, 1)))
        errors.push(await failureOf(() => cacheService.delete([`cache:${bad}`])))
        errors.push(await failureOf(() => rateLimiter.checkLimit(bad, 'api')))
        errors.push(await failureOf(() => acquireLock(`lock:${bad}`, 10)))
        errors.push(await failureOf(() => withLock(`lock:${bad}`, async () => 1, 10)))
        errors.push(await failureOf(() => getRedisClient().set(`raw:${bad}`, 'v')))
      }
    })
    expect(sent).toBe(0)
    expect(errors).toHaveLength(36)
    for (const error of errors) {
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('EINVALID')
      expect(error.message).toMatch(/well-formed UTF-16|lone surrogate/)
    }
    // '\uD800' and '\uDBFF' would both have become U+FFFD: now neither is a key.
    await useRedis()
    expect(RedisKeys.cache.user('😀')).toBe('cache:user:😀')
    await cacheService.set(RedisKeys.cache.user('😀'), { ok: true })
    expect(await cacheService.get(RedisKeys.cache.user('😀'))).toEqual({ ok: true })
  })

  test('every TypeError the package throws carries code EINVALID', async () => {
    await useRedis()
    const attempts = [
      () => redis.configureRedis({ nope: 1 }),
      () => redis.configureRedis({ commandTimeoutMs: 0 }),
      () => redis.configureRedis({ url: 'mysql://x' }),
      () => RedisKeys.cache.user(''),
      () => RedisKeys.cache.user({}),
      () => cacheService.set('k', () => 1),
      () => cacheService.set('k', 10n),
      () => cacheService.mget('not an array'),
      () => cacheService.mset(42),
      () => cacheService.getOrSet('k', 'not a function'),
      () => rateLimiter.checkLimit('', 'api'),
      () => rateLimiter.checkLimit('a', 'api', 0),
      () => rateLimiter.checkLimit('a', 'no-such-action'),
      () => rateLimiter.setFailurePolicy('api', 'sometimes'),
      () => rateLimitHeaders({}),
      () => createRedisMetricsHandler({}),
      () => withLock('lock:k', 'not a function'),
      () => releaseLock({}),
      () => getRedisClient().call(''),
      () => getRedisClient().call('SET', 'k', {}),
      () => getRedisClient().scan({ count: 0 }),
      () => redis.onRedisEvent(1),
    ]
    for (const attempt of attempts) {
      const error = await failureOf(attempt)
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('EINVALID')
    }
  })
})

describe('the public health endpoint names no host, port or user', () => {
  test('503 with a generic reason; the details stay behind authorize', async () => {
    const port = await freePort()
    await useRedis({ url: `redis://app-user:pw-xyz@127.0.0.1:${port}`, commandTimeoutMs: 300, connectTimeoutMs: 300 })
    const response = await redisHealthHandler(new Request('http://localhost/api/health/redis'))
    expect(response.status).toBe(503)
    const text = await response.text()
    const body = JSON.parse(text)
    expect(body).toMatchObject({ healthy: false, status: 'unhealthy', error: 'Redis is unreachable' })
    for (const secret of ['127.0.0.1', String(port), 'app-user', 'pw-xyz', 'refused']) expect(text).not.toContain(secret)
    // Where the detail is: the connection status and the (authorized) metrics.
    expect(redis.getConnectionStatus().lastError).toContain(String(port))
    const GET = createRedisMetricsHandler({ authorize: () => true })
    const metrics = await GET(new Request('http://localhost/m'))
    expect(metrics.status).toBe(503)
    expect((await metrics.json()).detail).toMatch(/refused/i)
    await useRedis()
  })
})

describe('a closed client leaves no handle', () => {
  /** Runs jest --detectOpenHandles on one test file that uses the package; resolves its output. */
  function detectOpenHandles(close) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yg-open-handles-'))
    fs.writeFileSync(path.join(dir, 'package.json'), '{}')
    fs.writeFileSync(
      path.join(dir, 'uses.test.js'),
      `const redis = require(${JSON.stringify(ROOT)})
       test('uses the client', async () => {
         redis.configureRedis({ url: process.env.REDIS_URL })
         await redis.getRedisClient().set('open-handles:k', 'v')
         expect(await redis.getRedisClient().get('open-handles:k')).toBe('v')
         ${close ? 'await redis.closeRedisConnection()' : ''}
       })`,
    )
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'), '--detectOpenHandles', '--rootDir', dir], {
        cwd: dir,
        env: process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let output = ''
      child.stdout.on('data', (d) => (output += d))
      child.stderr.on('data', (d) => (output += d))
      const timer = setTimeout(() => child.kill('SIGKILL'), 60000)
      child.on('exit', (code) => {
        clearTimeout(timer)
        fs.rmSync(dir, { recursive: true, force: true })
        resolve({ code, output })
      })
    })
  }

  test('jest --detectOpenHandles lists nothing after closeRedisConnection() (and the threadsafe function without it)', async () => {
    const closed = await detectOpenHandles(true)
    expect(closed.output).toMatch(/Tests:\s+1 passed/)
    expect(closed.output).not.toMatch(/open handle/i)
    expect(closed.output).not.toContain('napi_rs_threadsafe_function')
    const open = await detectOpenHandles(false)
    expect(open.output).toMatch(/Tests:\s+1 passed/)
    expect(open.output).toContain('napi_rs_threadsafe_function')
  }, 90000)

  test('the client is created again after a close, and its events arrive again', async () => {
    await useRedis()
    await getRedisClient().ping()
    await redis.closeRedisConnection()
    const events = []
    const unsubscribe = redis.onRedisEvent((e) => events.push(e.type))
    expect(await getRedisClient().ping()).toBe('PONG')
    unsubscribe()
    expect(events).toEqual(['connect', 'ready'])
  })
})

describe('per-process state lives with the process-wide runtime', () => {
  test('every evaluation of the module (hot reload, jest.isolateModules) shares stats, policies and single-flight loads', async () => {
    let a
    let b
    jest.isolateModules(() => {
      a = require('..')
    })
    jest.isolateModules(() => {
      b = require('..')
    })
    expect(a).not.toBe(b)
    expect(a.cacheService).not.toBe(b.cacheService)
    await useRedis()
    a.cacheService.resetStats()
    expect(await a.cacheService.get('cache:shared:miss')).toBeNull()
    expect(b.cacheService.getStats().misses).toBe(1)
    a.rateLimiter.setFailurePolicy('shared-action', 'closed')
    expect(b.rateLimiter.getFailurePolicy('shared-action')).toBe('closed')
    let loads = 0
    const loader = async () => {
      loads++
      await new Promise((r) => setTimeout(r, 50))
      return { v: 1 }
    }
    await getRedisClient().del('cache:shared:sf')
    const [x, y] = await Promise.all([
      a.cacheService.getOrSet('cache:shared:sf', loader),
      b.cacheService.getOrSet('cache:shared:sf', loader),
    ])
    expect([x, y]).toEqual([{ v: 1 }, { v: 1 }])
    expect(loads).toBe(1)
  })
})
