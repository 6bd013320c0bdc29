// ES module entry: the same exports as index.js (one shared instance).
import redis from './index.js'

export const {
  configureRedis,
  getRedisClient,
  getConnectionStatus,
  onRedisEvent,
  closeRedisConnection,
  getBullMQConnection,
  RedisKeys,
  RedisTTL,
  cacheService,
  RedisError,
  ReplyError,
  RedisTimeoutError,
  RedisConnectionError,
  RedisAuthError,
  RedisClosedError,
} = redis
export default redis
