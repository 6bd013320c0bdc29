'use strict'
// The seed's "Testing" section, step by step, printing its lines with real values.
const { redis } = require('../support/client.js')

const say = (line = '') => process.stdout.write(`${line}\n`)
const prefix = `redis-test:${process.pid}:`
let cacheKey = null
const client = redis.getRedisClient()

beforeAll(() => {
  say('\n🧪 Testing Redis Connection and Functionality\n')
  say('✅ Redis client initialized\n')
})

afterAll(async () => {
  await redis.closeRedisConnection()
})

test('1️⃣  basic connection', async () => {
  say('1️⃣  Testing basic connection...')
  const reply = await client.ping()
  say(`   PING response: ${reply}\n`)
  expect(reply).toBe('PONG')
  expect(redis.getConnectionStatus().state).toBe('ready')
})

test('2️⃣  SET/GET operations', async () => {
  say('2️⃣  Testing SET/GET operations...')
  await client.set(`${prefix}hello`, 'Hello Redis!', 'EX', 60)
  const value = await client.get(`${prefix}hello`)
  say(`   Retrieved value: ${value}\n`)
  expect(value).toBe('Hello Redis!')
  const ttl = await client.ttl(`${prefix}hello`)
  expect(ttl).toBeGreaterThan(0)
  expect(ttl).toBeLessThanOrEqual(60)
})

test('3️⃣  cache service', async () => {
  say('3️⃣  Testing Cache Service...')
  // A key of the cache convention (so monitoring counts it as one), unique to this run.
  const key = redis.RedisKeys.cache.user(`redis-test-${process.pid}-123`)
  cacheKey = key
  const user = { id: '123', name: 'Test User', email: 'test@example.com' }
  await redis.cacheService.set(key, user, redis.RedisTTL.cache.user)
  const cached = await redis.cacheService.get(key)
  say(`   Cached data: ${JSON.stringify(cached)}\n`)
  expect(cached).toEqual(user)
  expect(await client.ttl(key)).toBeGreaterThan(3590)
})

const limiterId = `${prefix}user`
const lockKey = `${prefix}lock`

test('4️⃣  rate limiter', async () => {
  say('4️⃣  Testing Rate Limiter...')
  const first = await redis.rateLimiter.checkLimit(limiterId, 'api', 10, 60)
  say(`   First request: allowed=${first.allowed}, remaining=${first.remaining}`)
  const second = await redis.rateLimiter.checkLimit(limiterId, 'api', 10, 60)
  say(`   Second request: allowed=${second.allowed}, remaining=${second.remaining}\n`)
  expect(first).toMatchObject({ allowed: true, remaining: 9, degraded: false })
  expect(second).toMatchObject({ allowed: true, remaining: 8, degraded: false })
})

test('5️⃣  distributed lock', async () => {
  say('5️⃣  Testing Distributed Lock...')
  const lock = await redis.acquireLock(lockKey, 10)
  say(`   Lock acquired: ${lock !== null}`)
  expect(lock).not.toBeNull()
  say('   Simulating work...')
  expect(await redis.acquireLock(lockKey, 10)).toBeNull() // exclusive while held
  await new Promise((r) => setTimeout(r, 100))
  const released = await redis.releaseLock(lock)
  expect(released).toBe(true)
  say('   Lock released\n')
})

test('6️⃣  monitoring', async () => {
  say('6️⃣  Testing Monitoring...')
  const health = await redis.checkRedisHealth()
  say(`   Health: ${health.healthy ? '✅ Healthy' : `❌ Unhealthy (${health.error})`}`)
  say(`   Latency: ${health.latencyMs}ms`)
  const metrics = await redis.getRedisMetrics()
  say(`   Hit rate: ${(metrics.cache.hitRate * 100).toFixed(2)}%`)
  say(`   Total keys: ${metrics.keyDistribution.total}`)
  say(`   Cache keys: ${metrics.keyDistribution.cache}\n`)
  expect(health.healthy).toBe(true)
  expect(metrics.cache.hits).toBeGreaterThanOrEqual(1) // step 3's read
  expect(metrics.keyDistribution.total).toBeGreaterThanOrEqual(3)
  expect(metrics.keyDistribution.other).toBeGreaterThanOrEqual(1) // step 2's key
  expect(metrics.keyDistribution.cache).toBeGreaterThanOrEqual(1) // step 3's key
  expect(metrics.keyDistribution.ratelimit).toBeGreaterThanOrEqual(1) // step 4's window
})

test('7️⃣  clean-up', async () => {
  say('7️⃣  Cleaning up test data...')
  let removed = 0
  for await (const keys of client.scan({ match: `${prefix}*`, count: 100 })) removed += await client.del(...keys)
  removed += await redis.cacheService.delete(cacheKey)
  expect(await redis.rateLimiter.reset(limiterId, 'api')).toBe(true)
  // The fencing counter of the lock (in its hash slot: the wire key, keyPrefix included, as the tag).
  removed += 1 + (await client.del(`{${process.env.REDIS_KEY_PREFIX ?? ''}${lockKey}}:fence`))
  say(`   Cleanup complete (${removed} keys)\n`)
  expect(removed).toBe(4)
  say('✅ All tests passed! Redis is working correctly.\n')
})
