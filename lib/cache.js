'use strict'
// cacheService: the seed's JSON cache. JSON is encoded and decoded by V8 (it
// beats building objects through N-API: ~5 µs for a 1 KB profile either way,
// against ~4 N-API calls per property), and the JSON text crosses the batched
// boundary as one argument; the TTL rules and the key scheme are Rust's.

const { runtime, native, Op, Flag, invalid, checkName } = require('./runtime.js')
const { RedisKeys } = require('./keys.js')
const { randomBytes } = require('node:crypto')
const { getRedisClient } = require('./client.js')
const { runScript } = require('./scripts.js')
const { parseFor } = require('./decoded.js')
const { stringifyFor } = require('./encoded.js')

const { request } = runtime

const { stats, inFlightLoads } = runtime.shared('cache', () => ({
  stats: { hits: 0, misses: 0, sets: 0, deletes: 0, errors: 0 },
  /** getOrSet loads under way in this process, by key. */
  inFlightLoads: new Map(),
}))
/** How long a getOrSet load may hold its lock in Redis, and how long others wait for it. */
const LOAD_LOCK_MS = 10000
const LOAD_WAIT_MS = 3000
const LOAD_POLL_MS = 20

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Loads a missing key once across processes: whoever takes a short lock in
 * Redis runs the loader; the others poll the cache for its value within a
 * bounded wait, and when the wait runs out (or Redis fails) they call the
 * loader themselves rather than fail.
 */
async function loadOnce(key, loader, ttlSeconds) {
  const lockKey = `lock:get-or-set:${key}`
  const token = randomBytes(16).toString('hex')
  const deadline = Date.now() + LOAD_WAIT_MS
  for (;;) {
    let locked = false
    try {
      locked = (await request(Op.CALL, 'SET', [lockKey, token, 'NX', 'PX', LOAD_LOCK_MS])) === 'OK'
    } catch {
      stats.errors++
      break // Redis is unwell: load without the lock
    }
    if (locked) {
      try {
        // Another process may have filled the key between our miss and our lock.
        const cached = await cacheService.get(key)
        if (cached !== null) return cached
        return await loadAndStore(key, loader, ttlSeconds)
      } finally {
        await runScript('releaseLock', [lockKey], [token]).catch(() => {
          stats.errors++
        })
      }
    }
    // Someone else loads: wait for the value (or for the lock to go).
    while (Date.now() < deadline) {
      await sleep(LOAD_POLL_MS)
      // Both in the same tick: one batch, one round trip.
      const [text, held] = await Promise.all([
        request(Op.CALL, 'GET', [key]).catch(() => null),
        request(Op.CALL, 'EXISTS', [lockKey]).catch(() => 0),
      ])
      if (text !== null) {
        try {
          return JSON.parse(text) // not counted: the caller's miss is already
        } catch {
          // not JSON: fall through to loading
        }
      }
      if (held === 0) break // the holder failed or finished without a value: try the lock again
    }
    if (Date.now() >= deadline) break
  }
  return loadAndStore(key, loader, ttlSeconds)
}

async function loadAndStore(key, loader, ttlSeconds) {
  const value = await loader()
  if (value !== undefined && value !== null) await cacheService.set(key, value, ttlSeconds)
  return value
}

/** The longest explicit TTL: a larger one is almost surely milliseconds passed as seconds. */
const MAX_TTL_SECONDS = 365 * 24 * 3600

function checkKey(key, what = 'key') {
  checkName(key, `cacheService: ${what}`)
}

/** JSON text of `value`, or a TypeError for what JSON cannot represent. */
function encode(key, value) {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
    throw invalid(`cacheService.set(${key}): ${typeof value} cannot be stored as JSON`)
  }
  let text
  try {
    text = stringifyFor(key, value)
  } catch (error) {
    throw invalid(`cacheService.set(${key}): the value cannot be stored as JSON (${error.message})`)
  }
  if (text === undefined) throw invalid(`cacheService.set(${key}): the value cannot be stored as JSON`)
  return text
}

/** The TTL for a write: the explicit one, or the default of the key's prefix (0 = no expiry). */
function ttlFor(key, ttlSeconds) {
  if (ttlSeconds === undefined || ttlSeconds === null) return native.defaultTtl(key)
  if (typeof ttlSeconds === 'number' && ttlSeconds > MAX_TTL_SECONDS) {
    throw invalid(
      `cacheService: ttlSeconds is in seconds; ${ttlSeconds} s is more than one year (${MAX_TTL_SECONDS} s), the longest cache TTL allowed`,
    )
  }
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0) {
    throw invalid(`cacheService: ttlSeconds must be a whole number of seconds, 0 (no expiry) or more, got ${String(ttlSeconds)}`)
  }
  return ttlSeconds
}

function setArgs(key, text, ttl) {
  return ttl > 0 ? [key, text, 'EX', ttl] : [key, text]
}

/** Decodes a stored value; a value that is not JSON reads as a miss and counts an error. */
function decode(text, key) {
  if (text === null) {
    stats.misses++
    return null
  }
  try {
    const value = parseFor(key, text)
    stats.hits++
    return value
  } catch {
    stats.misses++
    stats.errors++
    return null
  }
}

/** A failed read reads as a miss (and counts an error); bad input is still a TypeError. */
function readFailed(error) {
  if (error instanceof TypeError) throw error
  stats.misses++
  stats.errors++
  return null
}

function setDone() {
  stats.sets++
  return true
}

function setFailed(error) {
  stats.errors++
  throw error
}

/** A miss of getOrSet: one load per key in this process at a time (single flight). */
function loadShared(key, loader, ttlSeconds) {
  let flight = inFlightLoads.get(key)
  if (flight === undefined) {
    flight = (async () => {
      try {
        return await loadOnce(key, loader, ttlSeconds)
      } finally {
        inFlightLoads.delete(key)
      }
    })()
    inFlightLoads.set(key, flight)
  }
  return flight
}

const cacheService = {
  /** The cached value of `key`, JSON-decoded, or null. Redis errors and non-JSON values read as a miss (and count an error). */
  get(key) {
    // Not an async function: one promise per read instead of two (the hot path).
    try {
      checkKey(key)
    } catch (error) {
      return Promise.reject(error)
    }
    // DEGRADED: while the connection is re-made this answers at once (a miss).
    return request(Op.CALL | Flag.DEGRADED, 'GET', [key]).then((text) => decode(text, key), readFailed)
  },

  /** Stores `value` as JSON with `ttlSeconds`, or the default TTL of the key's prefix; 0 stores it without expiry. */
  set(key, value, ttlSeconds) {
    let args
    try {
      checkKey(key)
      const text = encode(key, value)
      args = setArgs(key, text, ttlFor(key, ttlSeconds))
    } catch (error) {
      return Promise.reject(error)
    }
    return request(Op.CALL, 'SET', args).then(setDone, setFailed)
  },

  /** Removes one key or several (UNLINK); resolves how many existed. */
  async delete(keyOrKeys) {
    const keys = Array.isArray(keyOrKeys) ? keyOrKeys : [keyOrKeys]
    if (keys.length === 0) return 0
    keys.forEach((k) => checkKey(k))
    try {
      const removed = await request(Op.CALL, 'UNLINK', keys)
      stats.deletes += removed
      return removed
    } catch (error) {
      stats.errors++
      throw error
    }
  },

  /** Whether `key` exists. */
  async exists(key) {
    checkKey(key)
    return (await request(Op.CALL, 'EXISTS', [key])) === 1
  },

  /** Seconds until `key` expires: -1 without expiry, -2 when it does not exist. */
  async ttl(key) {
    checkKey(key)
    return request(Op.CALL, 'TTL', [key])
  },

  /** The values of `keys` in order (null for misses), in one round trip. */
  async mget(keys) {
    if (!Array.isArray(keys)) throw invalid('cacheService.mget(keys): keys must be an array')
    if (keys.length === 0) return []
    keys.forEach((k) => checkKey(k))
    let texts
    try {
      texts = await request(Op.CALL | Flag.DEGRADED, 'MGET', keys)
    } catch {
      stats.misses += keys.length
      stats.errors++
      return keys.map(() => null)
    }
    return texts.map((text, i) => decode(text, keys[i]))
  },

  /**
   * Stores several values in one round trip: `entries` is an array of
   * `[key, value]` pairs or a plain object. Each key gets `ttlSeconds`, or
   * its prefix's default.
   */
  async mset(entries, ttlSeconds) {
    const pairs = Array.isArray(entries) ? entries : entries && typeof entries === 'object' ? Object.entries(entries) : null
    if (pairs === null) throw invalid('cacheService.mset(entries): entries must be [key, value] pairs or an object')
    // Encode everything first: nothing is sent when one value is bad.
    const commands = pairs.map((pair) => {
      if (!Array.isArray(pair) || pair.length !== 2) throw invalid('cacheService.mset: each entry must be [key, value]')
      const [key, value] = pair
      checkKey(key)
      return setArgs(key, encode(key, value), ttlFor(key, ttlSeconds))
    })
    const results = await Promise.allSettled(commands.map((args) => request(Op.CALL, 'SET', args)))
    const failed = results.find((r) => r.status === 'rejected')
    stats.sets += results.length - results.filter((r) => r.status === 'rejected').length
    if (failed) {
      stats.errors++
      throw failed.reason
    }
    return true
  },

  /** Removes every key matching the glob `pattern` with SCAN + UNLINK in batches (never KEYS); resolves how many went. */
  async invalidatePattern(pattern) {
    checkKey(pattern, 'pattern')
    const client = getRedisClient()
    let removed = 0
    // UNLINKs overlap the SCANs (at most 8 batches in flight); on a cluster
    // the scan covers every master and each UNLINK is split per slot.
    const inFlight = new Set()
    let failed = null
    try {
      for await (const keys of client.scan({ match: pattern, count: 1000 })) {
        const unlink = request(Op.CALL, 'UNLINK', keys).then(
          (n) => {
            removed += n
          },
          (error) => {
            failed ??= error
          },
        )
        inFlight.add(unlink)
        unlink.finally(() => inFlight.delete(unlink))
        if (inFlight.size >= 8) await Promise.race(inFlight)
        if (failed) break
      }
      await Promise.all(inFlight)
      if (failed) throw failed
    } catch (error) {
      await Promise.all(inFlight)
      stats.errors++
      throw error
    }
    stats.deletes += removed
    return removed
  },

  /** The keys of a user: `cache:user:<id>` and every `cache:user:<id>:…`. */
  async invalidateUser(id) {
    return invalidateEntity(RedisKeys.cache.user(id), [])
  },

  /** A creator: `cache:creator:<id>`, `cache:creator:<id>:…`, and `cache:creator-assets:<id>`. */
  async invalidateCreator(id) {
    return invalidateEntity(RedisKeys.cache.creator(id), [RedisKeys.cache.creatorAssets(id)])
  },

  /** A brand: `cache:brand:<id>`, `cache:brand:<id>:…`, and `cache:brand-licenses:<id>`. */
  async invalidateBrand(id) {
    return invalidateEntity(RedisKeys.cache.brand(id), [RedisKeys.cache.brandLicenses(id)])
  },

  /** A project: `cache:project:<id>`, `cache:project:<id>:…`, and `cache:project-assets:<id>`. */
  async invalidateProject(id) {
    return invalidateEntity(RedisKeys.cache.project(id), [RedisKeys.cache.projectAssets(id)])
  },

  /** An asset: `cache:asset:<id>`, `cache:asset:<id>:…`, and `cache:asset-licenses:<id>`. */
  async invalidateAsset(id) {
    return invalidateEntity(RedisKeys.cache.asset(id), [RedisKeys.cache.assetLicenses(id)])
  },

  /**
   * Cache-aside with single flight: the cached value of `key`, or else the
   * value of `loader()` (called from JS, so AsyncLocalStorage context is kept),
   * cached with `ttlSeconds` or the prefix's default. Concurrent callers for one
   * missing key in this process share one load, and processes share one load
   * through a short lock in Redis (waiting at most 3 s, then loading
   * themselves); when the loader throws, its waiters get the error and nothing
   * is cached. A loader result of null or undefined is returned but not cached.
   */
  getOrSet(key, loader, ttlSeconds) {
    try {
      checkKey(key)
      if (typeof loader !== 'function') throw invalid('cacheService.getOrSet(key, loader): loader must be a function')
      if (ttlSeconds !== undefined) ttlFor(key, ttlSeconds) // validate before anything is sent
    } catch (error) {
      return Promise.reject(error)
    }
    return cacheService.get(key).then((cached) => (cached !== null ? cached : loadShared(key, loader, ttlSeconds)))
  },

  /** This process's counts; `hitRate` is a fraction from 0 to 1. */
  getStats() {
    const lookups = stats.hits + stats.misses
    return { ...stats, hitRate: lookups === 0 ? 0 : stats.hits / lookups }
  },

  /** Sets every count back to 0. */
  resetStats() {
    for (const name of Object.keys(stats)) stats[name] = 0
  },
}

/** Removes an entity's key, its `key:…` sub-keys and its related lists. */
async function invalidateEntity(key, related) {
  const [direct, nested] = await Promise.all([
    cacheService.delete([key, ...related]),
    cacheService.invalidatePattern(`${native.globEscape(key)}:*`),
  ])
  return direct + nested
}

module.exports = { cacheService }
