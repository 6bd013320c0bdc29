'use strict'
// rateLimiter: an exact sliding window decided by one Lua script on the Redis
// server's clock (src/scripts/sliding_window.lua), weighted requests (cost), a
// local cache of denials (no round trip until their retry time), and a
// failure policy per action for when Redis is away.

const { setImmediate } = require('node:timers')
const { RedisKeys } = require('./keys.js')
const { script, evalScript } = require('./scripts.js')
const { runtime, native, Op, Flag, invalid, RedisError } = require('./runtime.js')

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
  /** key → ascending timestamps (ms) of the requests counted locally (one per slot). */
  localWindows: new Map(),
  localCalls: 0,
}))
const { failurePolicies, localWindows } = limiterState
/**
 * The local deny cache: key → the last denial Redis gave for it, answered in
 * this process without a round trip until its retry time. Kept with the
 * runtime so that a module evaluated again (Next.js dev reload) shares it.
 * A Map in insertion order is the LRU: a hit moves its entry to the end, and
 * past DENY_CACHE_MAX_ENTRIES the oldest goes.
 */
const denyState = runtime.shared('rateLimiterDenyCache', () => ({ enabled: true, entries: new Map() }))
const denials = denyState.entries
/** At most this many denied (action, identifier) pairs are remembered (a few MB at most). */
const DENY_CACHE_MAX_ENTRIES = 10000
const DEFAULT_POLICY = 'open'
/**
 * Milliseconds from the decision to resetAt, on the clock that decided (the
 * Redis server's), so that headers do not depend on this machine's clock.
 */
const RESET_IN_MS = Symbol('resetInMs')
/** How long a `'closed'` denial asks the caller to wait while Redis is away. */
const CLOSED_RETRY_MS = 1000
/** The longest single sleep of blockUntilReady (setTimeout's bound). */
const MAX_SLEEP_MS = 0x7fffffff

function checkPositiveInteger(value, name) {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw invalid(`rateLimiter: ${name} must be a positive integer, got ${describe(value)}`)
  }
}

function describe(value) {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}

function checkAction(action) {
  if (typeof action !== 'string' || action === '') throw invalid('rateLimiter: action must be a non-empty string')
}

/** Refuses an identifier that is not a non-empty string or a safe integer, and an empty action. */
function checkIdentity(identifier, action) {
  if (typeof identifier === 'number' ? !Number.isSafeInteger(identifier) : typeof identifier !== 'string' || identifier === '') {
    throw invalid('rateLimiter: identifier must be a non-empty string or a safe integer')
  }
  checkAction(action)
}

/**
 * The limit, window and cost of a call: from the positional form
 * (`limit, windowSeconds`) or the options form (`{ limit, windowSeconds, cost }`),
 * else RateLimitConfig's. Every check happens here, before anything is sent.
 */
function resolve(identifier, action, third, fourth) {
  checkIdentity(identifier, action)
  let limit = third
  let windowSeconds = fourth
  let cost = 1
  if (third !== null && typeof third === 'object') {
    if (Array.isArray(third)) throw invalid('rateLimiter: pass the options as { limit?, windowSeconds?, cost? }')
    if (fourth !== undefined) throw invalid('rateLimiter: with an options object, pass windowSeconds inside it')
    for (const name in third) {
      if (name !== 'limit' && name !== 'windowSeconds' && name !== 'cost') throw invalid(`rateLimiter: unknown option "${name}"`)
    }
    limit = third.limit
    windowSeconds = third.windowSeconds
    const given = third.cost
    if (given !== undefined && given !== null) {
      checkPositiveInteger(given, 'cost')
      cost = given
    }
  }
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
  // The Redis key is built only when Redis is asked: an answer from the deny
  // cache needs none. `slot` (the window's name in this process) is built only
  // when the deny cache or the local window is asked.
  return { key: undefined, slot: undefined, identifier, action, limit, windowSeconds, windowMs: windowSeconds * 1000, cost }
}

/**
 * The name of an (action, identifier) window in this process's maps: the action's
 * length first, so that no two pairs share one; an identifier of 42 and '42' share
 * one, as they share one Redis key.
 */
function slotName(action, identifier) {
  return `${action.length}:${action}:${identifier}`
}

/** The call's slot, named when first asked for. */
function slotOf(call) {
  if (call.slot === undefined) call.slot = slotName(call.action, call.identifier)
  return call.slot
}

/** The call's Redis key (the builder refuses ids it cannot hold and escapes the rest). */
function keyOf(call) {
  if (call.key === undefined) call.key = RedisKeys.ratelimit.key(call.action, call.identifier)
  return call.key
}

// ── the in-process window for the 'local' policy ─────────────────────────────

function localDecision(call, consume) {
  const { limit, windowMs, cost } = call
  const key = slotOf(call)
  const now = Date.now()
  let times = localWindows.get(key)
  if (times === undefined) {
    times = []
    localWindows.set(key, times)
  }
  let expired = 0
  while (expired < times.length && times[expired] <= now - windowMs) expired++
  if (expired > 0) times.splice(0, expired)
  const allowed = times.length + cost <= limit
  if (allowed && consume) for (let i = 0; i < cost; i++) times.push(now)
  if (++limiterState.localCalls % 1000 === 0) sweepLocal(now)
  const count = times.length
  let resetMs
  if (allowed) {
    // When the oldest counted request leaves.
    resetMs = count > 0 ? times[Math.max(0, count - limit)] + windowMs : now + windowMs
  } else {
    // When `cost` slots are free: the (count − (limit − cost))-th oldest has left
    // (a cost above the limit never fits: a window from now, as Redis answers).
    resetMs = cost > limit ? now + windowMs : times[count - limit + cost - 1] + windowMs
  }
  return {
    allowed,
    limit,
    remaining: Math.max(0, limit - count),
    resetAt: new Date(resetMs),
    retryAfterMs: allowed ? 0 : Math.max(1, resetMs - now),
    degraded: true,
    cached: false,
  }
}

/** Forgets local windows with nothing left in them, so idle identifiers cost nothing. */
function sweepLocal(now) {
  for (const [key, times] of localWindows) {
    if (times.length === 0 || times[times.length - 1] <= now - 24 * 3600 * 1000) localWindows.delete(key)
  }
}

function degraded(call, consume) {
  const policy = failurePolicies.get(call.action) || DEFAULT_POLICY
  if (policy === 'local') return localDecision(call, consume)
  const { limit, windowMs } = call
  const now = Date.now()
  if (policy === 'closed') {
    return {
      allowed: false,
      limit,
      remaining: 0,
      resetAt: new Date(now + CLOSED_RETRY_MS),
      retryAfterMs: CLOSED_RETRY_MS,
      degraded: true,
      cached: false,
    }
  }
  return { allowed: true, limit, remaining: limit, resetAt: new Date(now + windowMs), retryAfterMs: 0, degraded: true, cached: false }
}

/** Bytes of one decision in the script's reply: five big-endian doubles. */
const DECISION_BYTES = 40

/**
 * Decision `i` of the script's reply for `call`; throws (so that its failure
 * policy answers) when that decision failed or the reply is not the script's.
 */
function decision(reply, i, call) {
  const offset = i * DECISION_BYTES
  if (!Buffer.isBuffer(reply) || reply.length < offset + DECISION_BYTES) {
    throw new RedisError('rateLimiter: the sliding-window script answered something it does not send', 'EREPLY')
  }
  const flag = reply.readDoubleBE(offset)
  if (flag === -1) throw new RedisError('rateLimiter: the window key holds a value of another type', 'WRONGTYPE')
  if (flag < 0) {
    throw new RedisError('rateLimiter: Redis refused to write the window (out of memory, read-only or a failed save)', 'EWRITE')
  }
  return decode(reply, offset, call.limit, call.windowMs)
}

/**
 * Turns one decision of the script's reply (at `offset`: allowed, remaining,
 * resetUs, nowUs, retryUs) into a result. resetAt: when the oldest counted
 * request leaves (allowed), or when the request's cost would fit (denied, =
 * now + retryAfterMs).
 */
function decode(reply, offset, limit, windowMs) {
  const allowed = reply.readDoubleBE(offset) === 1
  const nowUs = reply.readDoubleBE(offset + 24)
  let resetInMs
  if (allowed) {
    const resetUs = reply.readDoubleBE(offset + 16)
    resetInMs = resetUs > 0 ? (resetUs - nowUs) / 1000 : windowMs
  } else {
    resetInMs = (reply.readDoubleBE(offset + 32) - nowUs) / 1000
  }
  return {
    allowed,
    limit,
    remaining: reply.readDoubleBE(offset + 8),
    resetAt: new Date(Math.ceil(nowUs / 1000 + resetInMs)),
    retryAfterMs: allowed ? 0 : Math.max(1, Math.ceil(resetInMs)),
    degraded: false,
    cached: false,
    [RESET_IN_MS]: resetInMs,
  }
}

// ── the local deny cache ─────────────────────────────────────────────────────

/**
 * Remembers a denial of `call` (its cost, limit and window) until its retry
 * time, on this process's monotonic clock.
 */
function rememberDenial(call, result) {
  const until = performance.now() + Math.max(1, result[RESET_IN_MS])
  const slot = slotOf(call)
  if (denials.has(slot)) denials.delete(slot)
  else if (denials.size >= DENY_CACHE_MAX_ENTRIES) denials.delete(denials.keys().next().value)
  denials.set(slot, {
    limit: call.limit,
    windowMs: call.windowMs,
    cost: call.cost,
    until,
    remaining: result.remaining,
    resetAt: result.resetAt.getTime(),
  })
}

/**
 * The cached denial that answers `call`, or undefined: one of the same limit
 * and window, of a cost at most `call.cost`, whose retry time has not come.
 */
function cachedDenial(call) {
  if (denials.size === 0) return undefined
  const slot = slotOf(call)
  const entry = denials.get(slot)
  if (entry === undefined) return undefined
  const now = performance.now()
  if (now >= entry.until) {
    denials.delete(slot)
    return undefined
  }
  if (call.cost < entry.cost || call.limit !== entry.limit || call.windowMs !== entry.windowMs) return undefined
  // Least recently used goes first: a hit moves to the end.
  denials.delete(slot)
  denials.set(slot, entry)
  const leftMs = entry.until - now
  return {
    allowed: false,
    limit: entry.limit,
    remaining: entry.remaining,
    resetAt: new Date(entry.resetAt),
    retryAfterMs: Math.max(1, Math.ceil(leftMs)),
    degraded: false,
    cached: true,
    [RESET_IN_MS]: leftMs,
  }
}

const slidingWindow = script('slidingWindow')
/**
 * The most decisions one script call carries: about 64 × 3.5 µs of the
 * server's time, short enough not to hold other clients up.
 */
const MAX_BATCH = 64

// The decisions asked for in this turn of the event loop, sent together (at the
// runtime's flush, or before any other request so that order holds) as
// one script call per MAX_BATCH (per hash slot on a cluster): one EVALSHA and
// one TIME for all of them, which is most of what one decision costs the
// server. Each decision is still made atomically, in the order asked.
let batchCalls = []
let batchConsumes = []
let batchResolvers = []
let batchRejecters = []
/** Script calls of this module sent and not answered yet. */
let scriptsInFlight = 0

/** Runs the sliding-window decision of `call`: resolves its result (decoded from its part of the script's reply). */
function runWindow(call, consume) {
  return new Promise((resolve, reject) => {
    batchCalls.push(call)
    batchConsumes.push(consume)
    batchResolvers.push(resolve)
    batchRejecters.push(reject)
    if (batchCalls.length === 1) runtime.hold(sendBatch)
  })
}

function sendBatch() {
  const calls = batchCalls
  const consumes = batchConsumes
  const resolvers = batchResolvers
  const rejecters = batchRejecters
  batchCalls = []
  batchConsumes = []
  batchResolvers = []
  batchRejecters = []
  const count = calls.length
  let slots = null
  if (count > 1) {
    try {
      if (native.clusterMode()) slots = native.clusterKeySlots(calls.map((call) => call.key))
    } catch (error) {
      for (let i = 0; i < count; i++) rejecters[i](error)
      return
    }
  }
  if (slots === null) {
    for (let start = 0; start < count; start += MAX_BATCH) {
      const end = Math.min(count, start + MAX_BATCH)
      const group = []
      for (let i = start; i < end; i++) group.push(i)
      sendGroup(group, calls, consumes, resolvers, rejecters)
    }
    return
  }
  // A cluster: one script call per hash slot (its keys live on one node).
  const groups = new Map()
  for (let i = 0; i < count; i++) {
    let group = groups.get(slots[i])
    if (group === undefined || group.length === MAX_BATCH) {
      if (group !== undefined) sendGroup(group, calls, consumes, resolvers, rejecters)
      group = []
      groups.set(slots[i], group)
    }
    group.push(i)
  }
  for (const group of groups.values()) sendGroup(group, calls, consumes, resolvers, rejecters)
}

/** One script call for the decisions at `indexes`; each caller gets its own part of the reply. */
function sendGroup(indexes, calls, consumes, resolvers, rejecters) {
  const n = indexes.length
  const rest = [slidingWindow.sha, n]
  for (let i = 0; i < n; i++) rest.push(calls[indexes[i]].key)
  for (let i = 0; i < n; i++) {
    const call = calls[indexes[i]]
    rest.push(call.limit, call.windowMs, consumes[indexes[i]] ? 1 : 0, call.cost)
  }
  // DEGRADED: while the connection is re-made the failure policy answers at once.
  scriptsInFlight++
  evalScript(slidingWindow, rest, Flag.DEGRADED, Op.CALL_BUFFER).then(
    (reply) => {
      scriptsInFlight--
      const hand = (from, to) => {
        for (let i = from; i < to; i++) {
          const index = indexes[i]
          let result
          try {
            result = decision(reply, i, calls[index])
          } catch (error) {
            rejecters[index](error)
            continue
          }
          resolvers[index](result)
        }
      }
      // Handed out in two halves when the server would otherwise wait for this
      // thread: the first half's callers send their next decisions (one script
      // call) before the second half is handed out, so the server works while
      // this thread does. Only while at most one other script call is out (a
      // small batch only while none is): splitting every reply split the
      // batches again and again, down to ~3 decisions per script call and per
      // write, each paying the server's per-call cost and a syscall.
      // Measured over TLS at 16 / 128 / 1024 in flight (2026-12-06): 1.09× /
      // 1.69× / 1.50× the decisions/s of always splitting, at 0.36–0.69× the
      // client CPU per decision.
      if (n >= 4 && (scriptsInFlight === 0 || (scriptsInFlight === 1 && n >= 32))) {
        const half = Math.ceil(n / 2)
        hand(0, half)
        setImmediate(() => {
          runtime.flushNow() // the first half's follow-ups go out first
          hand(half, n)
        })
      } else hand(0, n)
    },
    (error) => {
      scriptsInFlight--
      for (let i = 0; i < n; i++) rejecters[indexes[i]](error)
    },
  )
}

/** Names the result for rateLimitHeaders: the policy's name and window. */
function named(result, call) {
  result.action = call.action
  result.windowSeconds = call.windowSeconds
  return result
}

/** Asks Redis (the identifier's checks happen in keyOf, before anything is sent). */
async function ask(call, consume) {
  keyOf(call)
  let result
  try {
    result = await runWindow(call, consume)
    if (!result.allowed && denyState.enabled) rememberDenial(call, result)
  } catch {
    // A Redis error or timeout never rejects: the action's failure policy decides.
    result = degraded(call, consume)
  }
  return named(result, call)
}

/** A decision: from the deny cache when it holds one (no round trip, no await), else from Redis. */
function decideCall(call, consume) {
  if (denyState.enabled) {
    const hit = cachedDenial(call)
    if (hit !== undefined) return Promise.resolve(named(hit, call))
  }
  return ask(call, consume)
}

function decide(identifier, action, third, fourth, consume) {
  let call
  try {
    call = resolve(identifier, action, third, fourth)
  } catch (error) {
    return Promise.reject(error)
  }
  return decideCall(call, consume)
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, Math.min(MAX_SLEEP_MS, Math.max(0, Math.ceil(ms)))))
}

const rateLimiter = {
  /**
   * Counts a request of `identifier` for `action` when the window has room:
   * `checkLimit(id, action, limit?, windowSeconds?)` or
   * `checkLimit(id, action, { limit?, windowSeconds?, cost = 1 })` (a request
   * of cost c needs c free slots and takes them all; a denied one takes none).
   * `limit`/`windowSeconds` default to `RateLimitConfig[action]`. Never rejects
   * for a Redis failure: the action's failure policy answers (`degraded: true`).
   */
  checkLimit(identifier, action, limitOrOptions, windowSeconds) {
    return decide(identifier, action, limitOrOptions, windowSeconds, true)
  },

  /** The same answer as checkLimit would give (for the same cost), without counting a request. */
  getStatus(identifier, action, limitOrOptions, windowSeconds) {
    return decide(identifier, action, limitOrOptions, windowSeconds, false)
  },

  /**
   * Waits until a request is allowed, then counts it: resolves the first
   * allowed checkLimit result, or the last denial (`allowed: false`) once
   * `timeoutMs` has passed. Between tries it sleeps for the `retryAfterMs`
   * Redis gave (never polls faster). A cost above the limit never fits: its
   * denial resolves at once.
   */
  async blockUntilReady(identifier, action, timeoutMs, options) {
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || timeoutMs === Infinity) {
      throw invalid(`rateLimiter.blockUntilReady: timeoutMs must be a non-negative finite number, got ${describe(timeoutMs)}`)
    }
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw invalid('rateLimiter.blockUntilReady: options must be { limit?, windowSeconds?, cost? }')
    }
    const call = resolve(identifier, action, options === undefined ? {} : options, undefined)
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const result = await decideCall(call, true)
      if (result.allowed || call.cost > call.limit) return result
      const decided = performance.now()
      const left = deadline - decided
      if (left <= 0) return result
      if (result.retryAfterMs >= left) {
        // It cannot be allowed before the deadline: wait for the deadline, as asked.
        await sleep(left)
        const waited = performance.now() - decided
        result.retryAfterMs = Math.max(1, Math.ceil(result.retryAfterMs - waited))
        if (result[RESET_IN_MS] !== undefined) result[RESET_IN_MS] -= waited
        return result
      }
      await sleep(result.retryAfterMs)
    }
  },

  /** Clears the window of `identifier` for `action` (in Redis, the local fallback and the deny cache). */
  async reset(identifier, action) {
    checkIdentity(identifier, action)
    const key = RedisKeys.ratelimit.key(action, identifier)
    const slot = slotName(action, identifier)
    localWindows.delete(slot)
    denials.delete(slot)
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
 * Settings of the limiter in this process: `{ denyCache }` (default true):
 * whether denials are remembered and answered without a round trip until
 * their retry time. Turning it off forgets what it held.
 */
function configureRateLimiter(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid('configureRateLimiter(options): options must be an object { denyCache? }')
  }
  for (const name of Object.keys(options)) {
    if (name !== 'denyCache') throw invalid(`configureRateLimiter: unknown option "${name}"`)
  }
  if (options.denyCache !== undefined) {
    if (typeof options.denyCache !== 'boolean') throw invalid('configureRateLimiter: denyCache must be a boolean')
    denyState.enabled = options.denyCache
    if (!options.denyCache) denials.clear()
  }
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

module.exports = { rateLimiter, RateLimitConfig, rateLimitHeaders, configureRateLimiter, DENY_CACHE_MAX_ENTRIES }
