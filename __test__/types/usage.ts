// Type-checked (never run) by __test__/types.test.js with `tsc --noEmit --strict`:
// the public API as an application uses it.
import {
  configureRedis,
  getRedisClient,
  getConnectionStatus,
  onRedisEvent,
  closeRedisConnection,
  getBullMQConnection,
  RedisKeys,
  RedisTTL,
  cacheService,
  RedisTimeoutError,
  ReplyError,
  type ConnectionStatus,
  type RedisEvent,
} from '@yesgoddess/redis'

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
  void [cached, count, raw, results, status, port, RedisKeys.flag.maintenance(), RedisKeys.ratelimit.key('api', 1)]
}

// @ts-expect-error: ids are strings or numbers
RedisKeys.cache.user({ id: 1 })
// @ts-expect-error: unknown option
configureRedis({ urll: 'redis://x' })
