'use strict'
// @yesgoddess/redis: the Redis layer of the YesGoddess backend, in Rust.
// Importing this module never connects and never throws for a missing server:
// the first command connects.

const client = require('./lib/client.js')
const keys = require('./lib/keys.js')
const runtime = require('./lib/runtime.js')
const { cacheService } = require('./lib/cache.js')

module.exports = {
  configureRedis: client.configureRedis,
  getRedisClient: client.getRedisClient,
  getConnectionStatus: client.getConnectionStatus,
  onRedisEvent: client.onRedisEvent,
  closeRedisConnection: client.closeRedisConnection,
  getBullMQConnection: client.getBullMQConnection,
  RedisKeys: keys.RedisKeys,
  RedisTTL: keys.RedisTTL,
  cacheService,
  RedisError: runtime.RedisError,
  ReplyError: runtime.ReplyError,
  RedisTimeoutError: runtime.RedisTimeoutError,
  RedisConnectionError: runtime.RedisConnectionError,
  RedisAuthError: runtime.RedisAuthError,
  RedisClosedError: runtime.RedisClosedError,
}
