'use strict'
// @yesgoddess/redis: the Redis layer of the YesGoddess backend, in Rust.
// Importing this module never connects and never throws for a missing server:
// the first command connects.

// The Edge runtime has no native addons and no TCP sockets: say so, and how to
// fix it, before anything else is loaded (edge.js throws the error).
if (typeof globalThis.EdgeRuntime === 'string') require('./edge.js')

const client = require('./lib/client.js')
const keys = require('./lib/keys.js')
const runtime = require('./lib/runtime.js')
const { cacheService } = require('./lib/cache.js')
const limiter = require('./lib/rate-limit.js')
const locks = require('./lib/lock.js')
const monitor = require('./lib/monitor.js')
const idempotency = require('./lib/idempotency.js')
const { sessionStore } = require('./lib/sessions.js')
const flags = require('./lib/flags.js')
const { counters } = require('./lib/counters.js')
const dashboard = require('./lib/dashboard.js')

module.exports = {
  configureRedis: client.configureRedis,
  getRedisClient: client.getRedisClient,
  getConnectionStatus: client.getConnectionStatus,
  onRedisEvent: client.onRedisEvent,
  closeRedisConnection: client.closeRedisConnection,
  getBullMQConnection: client.getBullMQConnection,
  getBullMQOptions: client.getBullMQOptions,
  RedisKeys: keys.RedisKeys,
  keySlot: keys.keySlot,
  RedisTTL: keys.RedisTTL,
  cacheService,
  rateLimiter: limiter.rateLimiter,
  RateLimitConfig: limiter.RateLimitConfig,
  rateLimitHeaders: limiter.rateLimitHeaders,
  configureRateLimiter: limiter.configureRateLimiter,
  acquireLock: locks.acquireLock,
  releaseLock: locks.releaseLock,
  extendLock: locks.extendLock,
  withLock: locks.withLock,
  LockNotAcquiredError: locks.LockNotAcquiredError,
  LockLostError: locks.LockLostError,
  withIdempotency: idempotency.withIdempotency,
  getIdempotencyRecord: idempotency.getIdempotencyRecord,
  idempotentRoute: idempotency.idempotentRoute,
  IdempotencyInProgressError: idempotency.IdempotencyInProgressError,
  IdempotencyMismatchError: idempotency.IdempotencyMismatchError,
  sessionStore,
  featureFlags: flags.featureFlags,
  configureFeatureFlags: flags.configureFeatureFlags,
  maintenanceRoute: flags.maintenanceRoute,
  counters,
  checkRedisHealth: monitor.checkRedisHealth,
  getRedisMetrics: monitor.getRedisMetrics,
  redisHealthHandler: monitor.redisHealthHandler,
  createRedisMetricsHandler: monitor.createRedisMetricsHandler,
  getRedisMetricsHistory: monitor.getRedisMetricsHistory,
  createRedisDashboardHandler: dashboard.createRedisDashboardHandler,
  metricsToPrometheus: monitor.toPrometheus,
  ALERT_THRESHOLDS: monitor.ALERT_THRESHOLDS,
  resetCommandMetrics: monitor.resetCommandMetrics,
  RedisError: runtime.RedisError,
  ReplyError: runtime.ReplyError,
  RedisTimeoutError: runtime.RedisTimeoutError,
  RedisConnectionError: runtime.RedisConnectionError,
  RedisAuthError: runtime.RedisAuthError,
  RedisClosedError: runtime.RedisClosedError,
}
