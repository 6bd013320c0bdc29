// Type-checked (never run) by __test__/types.test.js with `tsc --noEmit --strict`:
// the public API as an application uses it.
import {
  configureRedis,
  getRedisClient,
  getConnectionStatus,
  onRedisEvent,
  closeRedisConnection,
  getBullMQConnection,
  getBullMQOptions,
  RedisKeys,
  RedisTTL,
  cacheService,
  RedisTimeoutError,
  ReplyError,
  rateLimiter,
  RateLimitConfig,
  rateLimitHeaders,
  configureRateLimiter,
  withLock,
  acquireLock,
  releaseLock,
  extendLock,
  LockNotAcquiredError,
  LockLostError,
  checkRedisHealth,
  getRedisMetrics,
  redisHealthHandler,
  createRedisMetricsHandler,
  metricsToPrometheus,
  type ConnectionStatus,
  type RedisEvent,
  type RateLimitResult,
  type RateLimitOptions,
  type Lock,
} from '@yesgoddess/redis'
import { Queue, Worker } from 'bullmq'

// The seed's example 2, in a route handler.
export async function rateLimitedRoute(userId: string): Promise<Response> {
  const result: RateLimitResult = await rateLimiter.checkLimit(userId, 'api', RateLimitConfig.api.limit)
  if (!result.allowed) {
    return Response.json({ error: 'Rate limit exceeded', resetAt: result.resetAt }, { status: 429, headers: rateLimitHeaders(result) })
  }
  rateLimiter.setFailurePolicy('export', 'closed')
  return Response.json({ remaining: result.remaining, retryAfterMs: result.retryAfterMs })
}

// Weighted requests, the deny cache and blockUntilReady.
export async function weightedRoute(userId: string): Promise<boolean> {
  const options: RateLimitOptions = { cost: 5, windowSeconds: 60 }
  const weighted: RateLimitResult = await rateLimiter.checkLimit(userId, 'export', options)
  const cached: boolean = weighted.cached
  const status = await rateLimiter.getStatus(userId, 'api', { cost: 2 })
  const ready = await rateLimiter.blockUntilReady(userId, 'api', 5000, { cost: 2 })
  const plain = await rateLimiter.blockUntilReady(userId, 'login', 1000)
  configureRateLimiter({ denyCache: false })
  return cached && status.allowed && ready.allowed && plain.allowed
}

// The seed's example 3, and the lower-level lock calls.
export async function lockedWork(runId: string): Promise<number> {
  await withLock(
    RedisKeys.lock.royaltyRun(runId),
    async () => {
      // Critical section
    },
    300,
  )
  const fence: number = await withLock(RedisKeys.lock.payout(runId), async ({ signal, fencingToken }) => {
    signal.throwIfAborted()
    return fencingToken
  }, 30, { waitMs: 1000 })
  const lock: Lock | null = await acquireLock(RedisKeys.lock.resource('x'), 10, { retries: 3, retryDelayMs: 50 })
  if (lock) {
    const extended: boolean = await extendLock(lock, 20)
    const released: boolean = await releaseLock(lock)
    void [extended, released, lock.expiresAt.getTime(), lock.token]
  }
  try {
    await withLock('lock:x', () => 1)
  } catch (error) {
    if (error instanceof LockNotAcquiredError || error instanceof LockLostError) console.log(error.code, error.key)
  }
  return fence
}

// The two route files and the metrics.
export const GET = redisHealthHandler
export const metricsGET = createRedisMetricsHandler({ authorize: (request) => request.headers.get('authorization') === 'Bearer t' })
export async function dashboard(): Promise<string> {
  const health = await checkRedisHealth()
  const metrics = await getRedisMetrics()
  const p99: number = metrics.client.latencyP99Ms
  const cacheKeys: number = metrics.keyDistribution.cache
  void [health.healthy, health.latencyMs, p99, cacheKeys, metrics.alerts.map((a) => a.name)]
  return metricsToPrometheus(metrics)
}

export async function example(userId: string): Promise<void> {
  configureRedis({ url: process.env.REDIS_URL, commandTimeoutMs: 500, tls: { caFile: '/etc/ca.pem' } })
  const redis = getRedisClient()
  const key: string = RedisKeys.cache.user(userId)
  const ttl: number = RedisTTL.cache.user
  await redis.set(key, JSON.stringify({ id: userId }), 'EX', ttl)
  const cached: string | null = await redis.get(key)
  const count = await redis.call<number>('INCR', RedisKeys.counter.metric('views', 7))
  const raw = await redis.callBuffer('GET', key)
  const pipeline = redis.pipeline()
  pipeline.set('key1', 'value1')
  pipeline.set('key2', 'value2')
  pipeline.get('key3')
  const results: Array<[Error | null, unknown]> = await pipeline.exec()
  for await (const keys of redis.scan({ match: 'cache:*', count: 500 })) {
    const first: string | undefined = keys[0]
    void first
  }
  const status: ConnectionStatus = getConnectionStatus()
  const off = onRedisEvent((event: RedisEvent) => console.log(event.type, event.error ?? ''))
  off()
  const bull = getBullMQConnection()
  const port: number = bull.port
  const jobs = new Queue<{ to: string }>('emails', getBullMQOptions())
  await jobs.add('welcome', { to: 'someone@example.com' })
  const worker = new Worker<{ to: string }>('emails', async (job) => job.data.to, { ...getBullMQOptions(), concurrency: 4 })
  const queuePrefix: string = getBullMQOptions().prefix
  try {
    await redis.ping()
  } catch (error) {
    if (error instanceof RedisTimeoutError || error instanceof ReplyError) console.log(error.code)
  }
  interface User {
    id: string
    name: string
  }
  await cacheService.set(RedisKeys.cache.user(userId), { id: userId, name: 'Ada' }, RedisTTL.cache.user)
  const cachedUser: User | null = await cacheService.get<User>(RedisKeys.cache.user(userId))
  const loaded: User = await cacheService.getOrSet<User>(RedisKeys.cache.user(userId), async () => ({ id: userId, name: 'Ada' }))
  const removed: number = await cacheService.invalidateUser(userId)
  const hitRate: number = cacheService.getStats().hitRate
  await cacheService.mset({ a: 1 }, 60)
  void [cachedUser, loaded, removed, hitRate]
  await closeRedisConnection()
  void [cached, count, raw, results, status, port, worker, queuePrefix, RedisKeys.flag.maintenance(), RedisKeys.ratelimit.key('api', 1)]
}

// @ts-expect-error: ids are strings or numbers
RedisKeys.cache.user({ id: 1 })
// @ts-expect-error: unknown option
configureRedis({ urll: 'redis://x' })
// @ts-expect-error: cost is a number
rateLimiter.checkLimit('u', 'api', { cost: '2' })
// @ts-expect-error: unknown limiter setting
configureRateLimiter({ denyCashe: false })
// @ts-expect-error: a failure policy is one of three
rateLimiter.setFailurePolicy('api', 'sometimes')
// @ts-expect-error: the handler needs authorize
createRedisMetricsHandler({})
