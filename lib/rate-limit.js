'use strict'
// rateLimiter: an exact sliding window decided by one Lua script on the Redis
// server's clock (src/scripts/sliding_window.lua), with a failure policy per
// action for when Redis is away.

const { RedisKeys } = require('./keys.js')
const { script, evalScript } = require('./scripts.js')
const { runtime, Op, Flag, invalid } = require('./runtime.js')

const { request } = runtime

/**
 * The limits of the seed's actions. Plain data: an application may change a
 * limit or a window at start-up (`RateLimitConfig.api.limit = 300`).
 */
const RateLimitConfig = {
  api: { limit: 100, windowSeconds: 60 },
  upload: { limit: 20, windowSeconds: 3600 },
  message: { limit: 30, windowSeconds: 60 },
  login: { limit: 5, windowSeconds: 900 },
  export: { limit: 5, windowSeconds: 3600 },
}

const POLICIES = new Set(['open', 'closed', 'local'])
/**
 * What each action does while Redis cannot answer: fail-open for every action
 * unless set (the seed's behaviour); `setFailurePolicy('login', 'local')` is
 * recommended where brute force matters more than availability.
 */
const limiterState = runtime.shared('rateLimiter', () => ({
  failurePolicies: new Map(),
  /** key → ascending timestamps (ms) of the requests counted locally. */
  localWindows: new Map(),
  localCalls: 0,
}))
const { failurePolicies, localWindows } = limiterState
const DEFAULT_POLICY = 'open'
/**
 * Milliseconds from the decision to resetAt, on the clock that decided (the
 * Redis server's), so that headers do not depend on this machine's clock.
 */
const RESET_IN_MS = Symbol('resetInMs')
/** How long a `'closed'` denial asks the caller to wait while Redis is away. */
const CLOSED_RETRY_MS = 1000

function checkPositiveInteger(value, name) {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw invalid(`rateLimiter: ${name} must be a positive integer, got ${String(value)}`)
  }
}

function checkAction(action) {
  if (typeof action !== 'string' || action === '') throw invalid('rateLimiter: action must be a non-empty string')
}

/** Refuses an empty or non-string identifier or action. */
function checkIdentity(identifier, action) {
  if ((typeof identifier !== 'string' && typeof identifier !== 'number') || identifier === '') {
    throw invalid('rateLimiter: identifier must be a non-empty string or a number')
  }
  checkAction(action)
}

/** The limit and window for a call: explicit ones, else RateLimitConfig's. */
function resolve(identifier, action, limit, windowSeconds) {
  checkIdentity(identifier, action)
  const config = Object.prototype.hasOwnProperty.call(RateLimitConfig, action) ? RateLimitConfig[action] : undefined
  if (limit === undefined || limit === null) {
    if (config === undefined) {
      throw invalid(`rateLimiter: unknown action '${action}': pass a limit and a window, or add it to RateLimitConfig`)
    }
    limit = config.limit
  }
  if (windowSeconds === undefined || windowSeconds === null) {
    if (config === undefined) throw invalid(`rateLimiter: unknown action '${action}': pass windowSeconds too`)
    windowSeconds = config.windowSeconds
  }
  checkPositiveInteger(limit, 'limit')
  checkPositiveInteger(windowSeconds, 'windowSeconds')
  // The builder refuses ids it cannot hold and escapes the rest.
  const key = RedisKeys.ratelimit.key(action, identifier)
  return { key, action, limit, windowSeconds, windowMs: windowSeconds * 1000 }
}

// ── the in-process window for the 'local' policy ─────────────────────────────

function localDecision(key, limit, windowMs, consume) {
  const now = Date.now()
  let times = localWindows.get(key)
  if (times === undefined) {
    times = []
    localWindows.set(key, times)
  }
  let expired = 0
  while (expired < times.length && times[expired] <= now - windowMs) expired++
  if (expired > 0) times.splice(0, expired)
  const allowed = times.length < limit
  if (allowed && consume) times.push(now)
  if (++limiterState.localCalls % 1000 === 0) sweepLocal(now)
  const index = Math.max(0, times.length - limit)
  const resetMs = times.length > 0 ? times[index] + windowMs : now + windowMs
  return {
    allowed,
    limit,
    remaining: Math.max(0, limit - times.length),
    resetAt: new Date(resetMs),
    retryAfterMs: allowed ? 0 : Math.max(1, resetMs - now),
    degraded: true,
  }
}

/** Forgets local windows with nothing left in them, so idle identifiers cost nothing. */
function sweepLocal(now) {
  for (const [key, times] of localWindows) {
    if (times.length === 0 || times[times.length - 1] <= now - 24 * 3600 * 1000) localWindows.delete(key)
  }
}

function degraded(action, key, limit, windowMs, consume) {
  const policy = failurePolicies.get(action) || DEFAULT_POLICY
  if (policy === 'local') return localDecision(key, limit, windowMs, consume)
  const now = Date.now()
  if (policy === 'closed') {
    return {
      allowed: false,
      limit,
      remaining: 0,
      resetAt: new Date(now + CLOSED_RETRY_MS),
      retryAfterMs: CLOSED_RETRY_MS,
      degraded: true,
    }
  }
  return { allowed: true, limit, remaining: limit, resetAt: new Date(now + windowMs), retryAfterMs: 0, degraded: true }
}

/** Turns the script's reply ("allowed remaining resetUs nowUs") into a result. */
function decode(reply, limit, windowMs) {
  const parts = reply.split(' ')
  const allowed = parts[0] === '1'
  const resetUs = Number(parts[2])
  const nowUs = Number(parts[3])
  const resetInMs = resetUs > 0 ? (resetUs - nowUs) / 1000 : windowMs
  return {
    allowed,
    limit,
    remaining: Number(parts[1]),
    resetAt: new Date(Math.ceil(nowUs / 1000 + resetInMs)),
    retryAfterMs: allowed ? 0 : Math.max(1, Math.ceil(resetInMs)),
    degraded: false,
    [RESET_IN_MS]: resetInMs,
  }
}

const slidingWindow = script('slidingWindow')

/** Runs the sliding-window script (its arguments built in place: this is the hot path). */
function runWindow(call, consume) {
  // DEGRADED: while the connection is re-made the failure policy answers at once.
  return evalScript(slidingWindow, [slidingWindow.sha, 1, call.key, call.limit, call.windowMs, consume ? 1 : 0], Flag.DEGRADED)
}

async function decide(identifier, action, limit, windowSeconds, consume) {
  const call = resolve(identifier, action, limit, windowSeconds)
  let result
  try {
    result = decode(await runWindow(call, consume), call.limit, call.windowMs)
  } catch {
    // A Redis error or timeout never rejects: the action's failure policy decides.
    result = degraded(action, call.key, call.limit, call.windowMs, consume)
  }
  // Named for rateLimitHeaders: the policy's name and window.
  result.action = action
  result.windowSeconds = call.windowSeconds
  return result
}

const rateLimiter = {
  /**
   * Counts one request of `identifier` for `action` when the window has room.
   * `limit`/`windowSeconds` default to `RateLimitConfig[action]`. Never rejects
   * for a Redis failure: the action's failure policy answers (`degraded: true`).
   */
  checkLimit(identifier, action, limit, windowSeconds) {
    return decide(identifier, action, limit, windowSeconds, true)
  },

  /** The same answer as checkLimit would give, without counting a request. */
  getStatus(identifier, action, limit, windowSeconds) {
    return decide(identifier, action, limit, windowSeconds, false)
  },

  /** Clears the window of `identifier` for `action` (in Redis and in the local fallback). */
  async reset(identifier, action) {
    checkIdentity(identifier, action)
    const key = RedisKeys.ratelimit.key(action, identifier)
    localWindows.delete(key)
    return (await request(Op.CALL, 'UNLINK', [key])) > 0
  },

  /** Sets what `action` does while Redis cannot answer: `'open'`, `'closed'` or `'local'`. */
  setFailurePolicy(action, policy) {
    checkAction(action)
    if (!POLICIES.has(policy)) throw invalid(`rateLimiter: the failure policy must be 'open', 'closed' or 'local', got ${String(policy)}`)
    failurePolicies.set(action, policy)
  },

  /** The failure policy of `action` (`'open'` unless set). */
  getFailurePolicy(action) {
    return failurePolicies.get(action) || DEFAULT_POLICY
  },
}

/**
 * The IETF RateLimit header fields for a result (draft-ietf-httpapi-ratelimit-headers):
 * `RateLimit-Policy` (quota and window), `RateLimit` (remaining and seconds to reset),
 * and `Retry-After` in seconds on a denial.
 */
function rateLimitHeaders(result) {
  if (!result || typeof result !== 'object' || typeof result.limit !== 'number' || !(result.resetAt instanceof Date)) {
    throw invalid('rateLimitHeaders(result): pass the result of checkLimit or getStatus')
  }
  // A policy name is a structured-field string: printable ASCII, quotes and backslashes escaped.
  const name = `"${String(result.action || 'default').replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '\\$&')}"`
  const resetInMs = result[RESET_IN_MS] !== undefined ? result[RESET_IN_MS] : result.resetAt.getTime() - Date.now()
  const resetSeconds = Math.max(0, Math.ceil(resetInMs / 1000))
  const policy = result.windowSeconds ? `${name};q=${result.limit};w=${result.windowSeconds}` : `${name};q=${result.limit}`
  const headers = {
    'RateLimit-Policy': policy,
    RateLimit: `${name};r=${result.remaining};t=${resetSeconds}`,
  }
  if (!result.allowed) headers['Retry-After'] = String(Math.max(1, Math.ceil(result.retryAfterMs / 1000)))
  return headers
}

module.exports = { rateLimiter, RateLimitConfig, rateLimitHeaders }
