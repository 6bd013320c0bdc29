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
  withIdempotency,
  getIdempotencyRecord,
  idempotentRoute,
  IdempotencyInProgressError,
  IdempotencyMismatchError,
  sessionStore,
  featureFlags,
  configureFeatureFlags,
  maintenanceRoute,
  counters,
  type IdempotencyRecord,
  type MaintenanceState,
  type CounterPoint,
  type SessionKind,
  getRedisMetricsHistory,
  createRedisDashboardHandler,
  type RedisMetricsSample,
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
export const dashboardGET = createRedisDashboardHandler({
  authorize: (request) => new URL(request.url).searchParams.get('token') === 't',
  refreshMs: 2000,
})
export function lastHour(): Array<[number, number | null]> {
  const samples: RedisMetricsSample[] = getRedisMetricsHistory()
  return samples.map((s) => [s.at.getTime(), s.memory.usagePercent])
}
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

// The services of the seed's other prefixes.
interface Receipt {
  chargeId: string
  amount: number
}
export async function services(userId: string, request: Request): Promise<Response> {
  const receipt: Receipt = await withIdempotency(
    `payout:${userId}`,
    async ({ signal }) => {
      signal.throwIfAborted()
      return { chargeId: 'ch_1', amount: 100 }
    },
    { ttlSeconds: 3600, leaseSeconds: 30, fingerprint: 'sha', waitMs: 2000 },
  )
  const record: IdempotencyRecord<Receipt> | null = await getIdempotencyRecord<Receipt>(`payout:${userId}`)
  if (record && record.state === 'completed' && record.result) void [record.result.chargeId, record.completedAt?.getTime()]
  try {
    await withIdempotency(42, () => 1)
  } catch (error) {
    if (error instanceof IdempotencyInProgressError || error instanceof IdempotencyMismatchError) console.log(error.key, error.code)
  }

  const kind: SessionKind = 'upload'
  const { id, expiresAt } = await sessionStore.create(kind, { userId, fileName: 'a.wav' }, { ttlSeconds: 600 })
  const upload = await sessionStore.get<{ userId: string }>('upload', id)
  const touched = await sessionStore.touch('auth', id, 3600)
  const verified = await sessionStore.consume<{ email: string }>('verification', id)
  const existed: boolean = await sessionStore.destroy('upload', id)
  void [expiresAt.getTime(), upload?.userId, touched, verified?.email, existed]

  configureFeatureFlags({ cacheMs: 500 })
  const beta: boolean = await featureFlags.isEnabled('new-checkout', { default: false })
  await featureFlags.setFlag('new-checkout', !beta)
  const flags: Record<string, boolean> = await featureFlags.getFlags()
  await featureFlags.setMaintenanceMode(true, { message: 'Back soon' })
  const maintenance: MaintenanceState = await featureFlags.getMaintenance()
  const on: boolean = await featureFlags.isMaintenanceMode()
  void [flags, maintenance.since?.toISOString(), maintenance.message, on]

  const views: number = await counters.increment('views', userId)
  await counters.increment('views', null, 5)
  const [a, b]: number[] = await counters.getMany([['views', userId], ['views']])
  const before: number = await counters.reset('views', userId)
  await counters.record('signups', null, { by: 2, at: new Date() })
  await counters.record('signups', { by: 1 })
  const points: CounterPoint[] = await counters.series('signups', { minutes: 30 })
  const last: number | undefined = (await counters.series('signups', userId)).at(-1)?.count
  void [views, a, b, before, points[0]?.at.getTime(), last, await counters.get('views')]
  return Response.json({ receipt }, { status: 201 })
}

// Route handlers as Next.js App Router files export them.
type Params = { params: Promise<{ id: string }> }
export const POST = maintenanceRoute(
  idempotentRoute(
    async (request: Request, context: Params) => {
      const { id } = await context.params
      return Response.json({ id, body: await request.json() }, { status: 201 })
    },
    { required: true, scope: (request) => request.headers.get('x-user-id'), waitMs: 0 },
  ),
)
export const PUT = featureFlags.maintenanceRoute(async () => new Response(null, { status: 204 }))

// @ts-expect-error: a session kind is one of three
sessionStore.get('admin', 'id')
// @ts-expect-error: setFlag takes a boolean
featureFlags.setFlag('x', 'on')
// @ts-expect-error: fingerprint is a string
withIdempotency('k', () => 1, { fingerprint: 42 })

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
// @ts-expect-error: refreshMs is a number of milliseconds
createRedisDashboardHandler({ authorize: () => true, refreshMs: '5s' })
// @ts-expect-error: history samples are read-only
getRedisMetricsHistory()[0].client.errors = 0
