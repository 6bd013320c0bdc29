// `@/lib/redis` on ioredis (tsconfig.json `paths`), for the route benchmark
// (bench/route.js): what the routes of examples/nextjs use of the seed's module
// — cacheService.get/set, rateLimiter.checkLimit, rateLimitHeaders, withLock,
// LockNotAcquiredError, RedisKeys, RedisTTL — written as the seed's TypeScript
// module on ioredis would be (src/lib/redis/client.ts, keys.ts,
// cache.service.ts, rate-limiter.ts, distributed-lock.ts in one file): one
// client per process kept on globalThis, exponential back-off, JSON with
// GET / SET EX, and the package's own Lua scripts (src/scripts/*.lua, copied
// into lib/scripts/ when the benchmark lays the app out) through defineCommand,
// i.e. EVALSHA. Results and header fields are those of the package, so the
// routes answer the same either way.
import Redis from 'ioredis'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'

// ── client.ts ────────────────────────────────────────────────────────────────

interface ScriptCommands {
  /** sliding_window.lua: five big-endian doubles, allowed remaining resetUs nowUs retryUs (ARGV: limit, window ms, consume, cost). */
  slidingWindowBuffer(key: string, limit: number, windowMs: number, consume: number, cost: number): Promise<Buffer>
  /** acquire_lock.lua: the fencing token, or 0 when the lock is held. */
  acquireLock(key: string, fenceKey: string, token: string, ttlMs: number): Promise<number>
  /** release_lock.lua: 1 when the lock was ours. */
  releaseLock(key: string, token: string): Promise<number>
}
type RedisClient = Redis & ScriptCommands

const globalForRedis = globalThis as unknown as { redis?: RedisClient }

function luaScript(name: string): string {
  return readFileSync(path.join(process.cwd(), 'lib', 'scripts', `${name}.lua`), 'utf8')
}

function createRedisClient(): RedisClient {
  const url = process.env.REDIS_URL
  if (!url) throw new Error('REDIS_URL is not set')
  // rediss:// turns TLS on; the CA comes from NODE_EXTRA_CA_CERTS.
  const client = new Redis(url, {
    maxRetriesPerRequest: 3,
    enableReadyCheck: true,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(times * 50, 2000),
  }) as RedisClient
  client.defineCommand('slidingWindow', { numberOfKeys: 1, lua: luaScript('sliding_window') })
  client.defineCommand('acquireLock', { numberOfKeys: 2, lua: luaScript('acquire_lock') })
  client.defineCommand('releaseLock', { numberOfKeys: 1, lua: luaScript('release_lock') })
  client.on('error', (error) => console.error('[redis]', error.message))
  return client
}

/** The process's client (kept on globalThis, so that `next dev` reloads reuse it). */
export function getRedisClient(): RedisClient {
  if (!globalForRedis.redis) globalForRedis.redis = createRedisClient()
  return globalForRedis.redis
}

// ── keys.ts ──────────────────────────────────────────────────────────────────

/** An id as one key segment: separators, glob and hash-tag characters written as %XX (as the package does). */
function escapeId(id: string | number): string {
  const text = String(id)
  if (text === '') throw new TypeError('RedisKeys: the id must not be empty')
  return text.replace(/[%:*?[\]\\{}^\u0000-\u001f\u007f-\u009f]/g, (c) =>
    Array.from(Buffer.from(c, 'utf8'), (b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  )
}

export const RedisKeys = {
  cache: {
    creator: (id: string | number) => `cache:creator:${escapeId(id)}`,
  },
  lock: {
    resource: (name: string | number) => `lock:resource:${escapeId(name)}`,
  },
  ratelimit: {
    key: (action: string, identifier: string | number) => `ratelimit:${escapeId(action)}:${escapeId(identifier)}`,
  },
} as const

export const RedisTTL = {
  cache: { creator: 3600 },
} as const

// ── cache.service.ts ─────────────────────────────────────────────────────────

const stats = { hits: 0, misses: 0, sets: 0, errors: 0 }

export const cacheService = {
  /** The cached value, JSON-decoded, or null (a Redis error reads as a miss). */
  async get<T>(key: string): Promise<T | null> {
    try {
      const text = await getRedisClient().get(key)
      if (text === null) {
        stats.misses++
        return null
      }
      stats.hits++
      return JSON.parse(text) as T
    } catch {
      stats.misses++
      stats.errors++
      return null
    }
  },

  /** Stores `value` as JSON, with `ttlSeconds` when given. */
  async set(key: string, value: unknown, ttlSeconds?: number): Promise<boolean> {
    const text = JSON.stringify(value)
    try {
      if (ttlSeconds && ttlSeconds > 0) await getRedisClient().set(key, text, 'EX', ttlSeconds)
      else await getRedisClient().set(key, text)
    } catch (error) {
      stats.errors++
      throw error
    }
    stats.sets++
    return true
  },

  getStats() {
    const lookups = stats.hits + stats.misses
    return { ...stats, hitRate: lookups > 0 ? stats.hits / lookups : 0 }
  },
}

// ── rate-limiter.ts ──────────────────────────────────────────────────────────

export interface RateLimitResult {
  allowed: boolean
  limit: number
  remaining: number
  resetAt: Date
  retryAfterMs: number
  degraded: boolean
  action?: string
  windowSeconds?: number
  /** Milliseconds from the decision to resetAt, on the Redis server's clock. */
  resetInMs?: number
}

/** The options form of checkLimit (the package's: a request of `cost` slots). */
export interface RateLimitOptions {
  limit: number
  windowSeconds: number
  cost?: number
}

export const rateLimiter = {
  /**
   * Counts a request of `identifier` for `action` (of `cost` slots in the options form)
   * when the window has room; fail-open when Redis fails.
   */
  async checkLimit(identifier: string, action: string, limitOrOptions: number | RateLimitOptions, windowSecondsArg?: number): Promise<RateLimitResult> {
    const options = typeof limitOrOptions === 'number' ? { limit: limitOrOptions, windowSeconds: windowSecondsArg as number, cost: 1 } : limitOrOptions
    const { limit, windowSeconds } = options
    const cost = options.cost ?? 1
    const windowMs = windowSeconds * 1000
    try {
      const reply = await getRedisClient().slidingWindowBuffer(RedisKeys.ratelimit.key(action, identifier), limit, windowMs, 1, cost)
      const allowed = reply.readDoubleBE(0) === 1
      const resetUs = reply.readDoubleBE(allowed ? 16 : 32)
      const nowUs = reply.readDoubleBE(24)
      const resetInMs = resetUs > 0 ? (resetUs - nowUs) / 1000 : windowMs
      return {
        allowed,
        limit,
        remaining: reply.readDoubleBE(8),
        resetAt: new Date(Math.ceil(nowUs / 1000 + resetInMs)),
        retryAfterMs: allowed ? 0 : Math.max(1, Math.ceil(resetInMs)),
        degraded: false,
        action,
        windowSeconds,
        resetInMs,
      }
    } catch {
      return { allowed: true, limit, remaining: limit, resetAt: new Date(Date.now() + windowMs), retryAfterMs: 0, degraded: true, action, windowSeconds }
    }
  },
}

/** The IETF RateLimit header fields for a result (the same fields as the package's). */
export function rateLimitHeaders(result: RateLimitResult): Record<string, string> {
  const name = `"${String(result.action || 'default').replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '\\$&')}"`
  const resetInMs = result.resetInMs !== undefined ? result.resetInMs : result.resetAt.getTime() - Date.now()
  const resetSeconds = Math.max(0, Math.ceil(resetInMs / 1000))
  const headers: Record<string, string> = {
    'RateLimit-Policy': result.windowSeconds ? `${name};q=${result.limit};w=${result.windowSeconds}` : `${name};q=${result.limit}`,
    RateLimit: `${name};r=${result.remaining};t=${resetSeconds}`,
  }
  if (!result.allowed) headers['Retry-After'] = String(Math.max(1, Math.ceil(result.retryAfterMs / 1000)))
  return headers
}

// ── distributed-lock.ts ──────────────────────────────────────────────────────

export class LockNotAcquiredError extends Error {
  readonly code = 'ELOCKED'
  constructor(readonly key: string, waitMs: number) {
    super(`the lock ${key} is held by someone else${waitMs > 0 ? ` (waited ${waitMs} ms)` : ''}`)
    this.name = 'LockNotAcquiredError'
  }
}

export interface WithLockOptions {
  /** How long to wait for the lock (default 0: one attempt). */
  waitMs?: number
  /** About this long between attempts, with jitter (default 50). */
  retryDelayMs?: number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Runs `fn({ fencingToken })` holding the lock `key` for `ttlSeconds`, and
 * releases it (compare-and-delete) whether `fn` resolves or throws.
 */
export async function withLock<T>(
  key: string,
  fn: (context: { fencingToken: number }) => T | Promise<T>,
  ttlSeconds = 300,
  options: WithLockOptions = {},
): Promise<T> {
  const client = getRedisClient()
  const ttlMs = ttlSeconds * 1000
  const waitMs = options.waitMs ?? 0
  const retryDelayMs = options.retryDelayMs ?? 50
  const token = randomBytes(16).toString('hex')
  // The fencing counter shares the lock's hash slot (the lock keys here carry no hash tag).
  const fenceKey = `{${key}}:fence`
  const deadline = Date.now() + waitMs
  let fencingToken = await client.acquireLock(key, fenceKey, token, ttlMs)
  while (fencingToken === 0) {
    const left = deadline - Date.now()
    if (left <= 0) throw new LockNotAcquiredError(key, waitMs)
    await sleep(Math.min(left, Math.max(1, Math.round(retryDelayMs * (0.5 + Math.random())))))
    fencingToken = await client.acquireLock(key, fenceKey, token, ttlMs)
  }
  try {
    return await fn({ fencingToken })
  } finally {
    await client.releaseLock(key, token)
  }
}
