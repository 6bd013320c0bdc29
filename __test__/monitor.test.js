'use strict'
// Monitoring, health and the two handlers, each against its own private redis-server
// (so that the keyspace and the server's counters are known).
const net = require('node:net')
const Redis = require('ioredis')
const { RedisServer } = require('./support/redis-server.js')
const { redis, useRedis } = require('./support/client.js')

const {
  checkRedisHealth,
  getRedisMetrics,
  redisHealthHandler,
  createRedisMetricsHandler,
  cacheService,
  RedisKeys,
  RedisTTL,
} = redis
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Parses the Prometheus text format back: { name: [{ labels, value }] }, checking every line's syntax. */
function parsePrometheus(text) {
  const out = {}
  const types = {}
  for (const line of text.trim().split('\n')) {
    if (line.startsWith('# HELP ')) continue
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter|summary|histogram|untyped)$/.exec(line)
    if (type) {
      types[type[1]] = type[2]
      continue
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line)
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels = {}
    for (const pair of (m[2] || '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) || []) {
      const at = pair.indexOf('=')
      labels[pair.slice(0, at)] = pair.slice(at + 2, -1)
    }
    if (!types[m[1]]) throw new Error(`sample without a TYPE line: ${m[1]}`)
    ;(out[m[1]] ||= []).push({ labels, value: Number(m[3]) })
  }
  return out
}

describe('a server with known content', () => {
  let server
  let inspector
  beforeAll(async () => {
    server = await new RedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] }).start()
    await useRedis({ url: server.url })
    inspector = new Redis(server.url)
  })
  afterAll(async () => {
    inspector.disconnect()
    await server.stop()
    await useRedis()
  })

  test('metrics: every group, and keyDistribution counts 3 cache keys and 2 sessions', async () => {
    cacheService.resetStats()
    await cacheService.set(RedisKeys.cache.user('1'), { id: '1' }, RedisTTL.cache.user)
    await cacheService.set(RedisKeys.cache.creator('2'), { id: '2' })
    await cacheService.set(RedisKeys.cache.asset('3'), { id: '3' })
    await cacheService.set(RedisKeys.session.upload('s1'), { s: 1 })
    await cacheService.set(RedisKeys.session.auth('s2'), { s: 2 })
    await cacheService.get(RedisKeys.cache.user('1'))
    const m = await getRedisMetrics()
    expect(m.keyDistribution).toMatchObject({ cache: 3, session: 2, lock: 0, other: 0, total: 5, scanned: 5, exact: true })
    expect(m.totalKeys).toBe(5)
    expect(m.keyspace.db0).toMatchObject({ keys: 5, expires: 5 })
    expect(m.memory.maxmemoryBytes).toBe(64 * 1024 * 1024)
    expect(m.memory.evictionPolicy).toBe('allkeys-lru')
    expect(m.memory.usageOf).toBe('maxmemory')
    expect(m.memory.usagePercent).toBeCloseTo((m.memory.usedBytes / (64 * 1024 * 1024)) * 100, 5)
    expect(m.memory.usedBytes).toBeGreaterThan(0)
    expect(m.memory.peakBytes).toBeGreaterThanOrEqual(m.memory.usedBytes)
    expect(m.memory.fragmentationRatio).toBeGreaterThan(0)
    expect(m.server.version).toMatch(/^\d+\.\d+\.\d+/)
    expect(m.server.mode).toBe('standalone')
    expect(m.server.uptimeSeconds).toBeGreaterThanOrEqual(0)
    expect(m.stats.keyspaceHits).toBeGreaterThanOrEqual(1)
    expect(m.stats.hitRate).toBeGreaterThan(0)
    expect(m.clients.connected).toBeGreaterThanOrEqual(2) // us and the inspector
    expect(m.cache).toMatchObject({ hits: 1, misses: 0, sets: 5, hitRate: 1 })
    expect(m.client.commands).toBeGreaterThan(5)
    expect(m.client.latencyP50Ms).toBeGreaterThan(0)
    expect(m.client.latencyP99Ms).toBeGreaterThanOrEqual(m.client.latencyP50Ms)
    expect(m.client.errorRate).toBeGreaterThanOrEqual(0)
    expect(m.client.state).toBe('ready')
    expect(Array.isArray(m.alerts)).toBe(true)
  })

  test('a capped scan of a large keyspace estimates and says so', async () => {
    // 120,000 keys (more than the 100,000 the scan looks at): 1/4 cache, 3/4 counters.
    const pipeline = inspector.pipeline()
    for (let i = 0; i < 120000; i++) pipeline.set(i % 4 === 0 ? `cache:big:${i}` : `counter:big:${i}`, '1')
    await pipeline.exec()
    const m = await getRedisMetrics()
    expect(m.keyDistribution.exact).toBe(false)
    expect(m.keyDistribution.scanned).toBeLessThan(m.totalKeys)
    expect(m.keyDistribution.total).toBe(m.totalKeys)
    const cacheShare = m.keyDistribution.cache / m.keyDistribution.total
    expect(cacheShare).toBeGreaterThan(0.22)
    expect(cacheShare).toBeLessThan(0.28)
    await inspector.flushdb()
  }, 60000)

  test('alerts: a low hit rate and high memory fire at their thresholds', async () => {
    await inspector.config('RESETSTAT')
    cacheService.resetStats()
    let m = await getRedisMetrics()
    expect(m.alerts.map((a) => a.name)).not.toContain('lowCacheHitRate')
    // 50 hits, 150 misses: a 25 % hit rate, in the cache and on the server.
    await cacheService.set('cache:alert:hit', 1)
    await Promise.all(Array.from({ length: 50 }, () => cacheService.get('cache:alert:hit')))
    await Promise.all(Array.from({ length: 150 }, (_, i) => cacheService.get(`cache:alert:miss:${i}`)))
    m = await getRedisMetrics()
    const names = m.alerts.map((a) => a.name)
    expect(names).toContain('lowCacheHitRate')
    expect(names).toContain('lowServerHitRate')
    expect(m.alerts.find((a) => a.name === 'lowCacheHitRate')).toMatchObject({ value: 0.25, threshold: 0.7 })
    expect(names).not.toContain('highMemory')
    // Memory: lower maxmemory until used memory is above 85 % of it.
    const used = m.memory.usedBytes
    await inspector.config('SET', 'maxmemory', String(Math.floor(used / 0.9)))
    m = await getRedisMetrics()
    await inspector.config('SET', 'maxmemory', String(64 * 1024 * 1024))
    expect(m.memory.usagePercent).toBeGreaterThan(85)
    expect(m.alerts.map((a) => a.name)).toContain('highMemory')
  })

  test('alerts: connected clients that keep growing look like a leak', async () => {
    const extra = []
    try {
      let m
      for (let round = 0; round < 3; round++) {
        m = await getRedisMetrics()
        for (let i = 0; i < 12; i++) extra.push(new Redis(server.url))
        await Promise.all(extra.map((c) => c.ping()))
      }
      m = await getRedisMetrics()
      expect(m.clients.growing).toBe(true)
      expect(m.alerts.map((a) => a.name)).toContain('connectedClientsGrowing')
    } finally {
      extra.forEach((c) => c.disconnect())
    }
    // Once the clients go, the alert stops.
    await sleep(100)
    const m = await getRedisMetrics()
    expect(m.alerts.map((a) => a.name)).not.toContain('connectedClientsGrowing')
  })

  test('health: healthy with a latency, and the health handler answers 200', async () => {
    const health = await checkRedisHealth()
    expect(health).toMatchObject({ healthy: true, status: 'ready' })
    expect(health.latencyMs).toBeGreaterThanOrEqual(0)
    expect(health.latencyMs).toBeLessThan(1000)
    const response = await redisHealthHandler(new Request('http://localhost/api/health/redis'))
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/application\/json/)
    expect(await response.json()).toMatchObject({ healthy: true })
  })

  test('the metrics handler: 401 without credentials, 403 when refused, JSON and Prometheus when allowed', async () => {
    const GET = createRedisMetricsHandler({
      authorize: async (request) => request.headers.get('authorization') === 'Bearer admin-token',
    })
    const url = 'http://localhost/api/admin/redis/metrics'
    const none = await GET(new Request(url))
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('Bearer')
    const wrong = await GET(new Request(url, { headers: { authorization: 'Bearer nope' } }))
    expect(wrong.status).toBe(403)
    const ok = await GET(new Request(url, { headers: { authorization: 'Bearer admin-token' } }))
    expect(ok.status).toBe(200)
    const body = await ok.json()
    expect(body.memory.maxmemoryBytes).toBe(64 * 1024 * 1024)
    expect(body.keyDistribution).toHaveProperty('cache')
    const prom = await GET(new Request(`${url}?format=prometheus`, { headers: { authorization: 'Bearer admin-token' } }))
    expect(prom.status).toBe(200)
    expect(prom.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const parsed = parsePrometheus(await prom.text())
    expect(parsed.redis_memory_max_bytes[0].value).toBe(64 * 1024 * 1024)
    expect(parsed.redis_connected_clients[0].value).toBeGreaterThanOrEqual(1)
    expect(parsed.redis_keys_by_prefix.find((s) => s.labels.prefix === 'cache')).toBeDefined()
    expect(parsed.redis_info[0].labels.mode).toBe('standalone')
    expect(parsed.redis_client_latency_seconds.map((s) => s.labels.quantile)).toEqual(['0.5', '0.99'])
    for (const name of Object.keys(parsed)) {
      expect(name).toMatch(/^redis_[a-z0-9_]+$/) // snake_case, one namespace
      if (name.endsWith('_total')) expect(parsed[name].every((s) => s.value >= 0)).toBe(true)
    }
    expect(() => createRedisMetricsHandler({})).toThrow(TypeError)
  })
})

describe('with the server gone', () => {
  test('health is unhealthy, fast, never throws; the handler answers 503; errors and latency alerts fire', async () => {
    const server = await new RedisServer().start()
    try {
      await useRedis({ url: server.url, commandTimeoutMs: 300, connectTimeoutMs: 300 })
      expect((await checkRedisHealth()).healthy).toBe(true)
      await server.stop()
      const started = Date.now()
      const health = await checkRedisHealth()
      expect(Date.now() - started).toBeLessThan(1500)
      expect(health.healthy).toBe(false)
      expect(typeof health.error).toBe('string')
      const response = await redisHealthHandler(new Request('http://localhost/api/health/redis'))
      expect(response.status).toBe(503)
      expect((await response.json()).healthy).toBe(false)
      const GET = createRedisMetricsHandler({ authorize: () => true })
      const metrics = await GET(new Request('http://localhost/m', { headers: { authorization: 'Bearer x' } }))
      expect(metrics.status).toBe(503)
    } finally {
      await server.stop()
    }
  })

  test('a server that accepts but never answers: health still answers within its timeout', async () => {
    const silent = net.createServer((socket) => socket.on('data', () => {}))
    await new Promise((r) => silent.listen(0, '127.0.0.1', r))
    try {
      await useRedis({ url: `redis://127.0.0.1:${silent.address().port}`, connectTimeoutMs: 2000, commandTimeoutMs: 2000 })
      const started = Date.now()
      const health = await checkRedisHealth({ timeoutMs: 300 })
      expect(health.healthy).toBe(false)
      expect(Date.now() - started).toBeLessThan(1000)
    } finally {
      await redis.closeRedisConnection().catch(() => {})
      silent.close()
      await useRedis()
    }
  })

  test('error rate and p99 alerts: commands that time out count as errors with their wait', async () => {
    const server = await new RedisServer().start()
    const inspector = new Redis(server.url)
    try {
      await useRedis({ url: server.url, commandTimeoutMs: 150 })
      redis.resetCommandMetrics()
      await redis.getRedisClient().call('SET', 'k', '1')
      // Pause the server: every command of this burst times out (150 ms > 100 ms p99 threshold).
      await inspector.call('CLIENT', 'PAUSE', '400', 'ALL')
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => redis.getRedisClient().call('GET', 'k')))
      expect(results.every((r) => r.status === 'rejected')).toBe(true)
      await sleep(450)
      const m = await getRedisMetrics()
      expect(m.client.errors).toBeGreaterThanOrEqual(20)
      expect(m.client.errorRate).toBeGreaterThan(0.01)
      expect(m.client.latencyP99Ms).toBeGreaterThan(100)
      const names = m.alerts.map((a) => a.name)
      expect(names).toContain('highErrorRate')
      expect(names).toContain('highLatency')
    } finally {
      inspector.disconnect()
      await server.stop()
      await useRedis()
    }
  })
})
