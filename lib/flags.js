'use strict'
// featureFlags: the seed's `flag:` prefix ("feature flags and system state")
// as a service. A flag checked on every request is read through a per-process
// cache: one Redis read per flag per `cacheMs` (default 1000) however many
// callers ask, concurrent misses sharing that read; the read is DEGRADED (it
// fails at once while a lost connection is re-made), and while Redis is away
// the answer is the last known value, else the default — never a rejection.

const { runtime, native, Op, Flag, invalid, checkName } = require('./runtime.js')
const { RedisKeys } = require('./keys.js')
const { getRedisClient } = require('./client.js')

const { request } = runtime

// Per-process state (survives the module being evaluated again: Next.js hot
// reload, jest.isolateModules). `entries`: one per flag key read or written here.
const state = runtime.shared('featureFlags', () => ({ cacheMs: 1000, entries: new Map(), byName: new Map() }))

/** How long maintenance mode asks clients to wait (the `Retry-After` of maintenanceRoute), in seconds. */
const MAINTENANCE_RETRY_AFTER_SECONDS = 60
const FEATURE_PREFIX = RedisKeys.flag.feature('x').slice(0, -1) // 'flag:feature:'

/**
 * A flag's value as stored: `true`/`1`/`on`/`yes` and `false`/`0`/`off`/`no`
 * (any case; JSON strings of those too); null when missing or not one of those.
 */
function parseFeature(text) {
  if (text === null) return null
  let value = text.trim()
  if (value.startsWith('"')) {
    try {
      value = String(JSON.parse(value)).trim()
    } catch {
      return null
    }
  }
  switch (value.toLowerCase()) {
    case 'true':
    case '1':
    case 'on':
    case 'yes':
      return true
    case 'false':
    case '0':
    case 'off':
    case 'no':
      return false
    default:
      return null
  }
}

const MAINTENANCE_OFF = Object.freeze({ on: false, message: null, since: null })

/** The maintenance switch as stored: JSON `{ on, message, since }`, or a plain boolean word. */
function parseMaintenance(text) {
  if (text === null) return MAINTENANCE_OFF
  const trimmed = text.trim()
  if (trimmed.startsWith('{')) {
    try {
      const value = JSON.parse(trimmed)
      if (value !== null && typeof value === 'object' && value.on === true) {
        const since = typeof value.since === 'string' || typeof value.since === 'number' ? new Date(value.since) : null
        return {
          on: true,
          message: typeof value.message === 'string' ? value.message : null,
          since: since !== null && !Number.isNaN(since.getTime()) ? since : null,
        }
      }
    } catch {
      // not JSON: off
    }
    return MAINTENANCE_OFF
  }
  return parseFeature(trimmed) === true ? { on: true, message: null, since: null } : MAINTENANCE_OFF
}

function entryFor(key, parse) {
  let entry = state.entries.get(key)
  if (entry === undefined) {
    // value: the parsed value last known (undefined: never known); readAt: when it was
    // last read or tried (a failed read waits for the next period too).
    entry = { key, parse, value: undefined, readAt: -Infinity, version: 0, reading: null }
    state.entries.set(key, entry)
  }
  return entry
}

/** The entry of a feature flag by name (the builder validates the name once per name). */
function featureEntry(name) {
  let entry = state.byName.get(name)
  if (entry === undefined) {
    entry = entryFor(RedisKeys.flag.feature(name), parseFeature)
    state.byName.set(name, entry)
  }
  return entry
}

/** One read of an entry at a time; its callers share it. Never rejects. */
function refresh(entry) {
  if (entry.reading !== null) return entry.reading
  const version = entry.version
  entry.reading = request(Op.CALL | Flag.DEGRADED, 'GET', [entry.key])
    .then(
      (text) => {
        if (entry.version === version) entry.value = entry.parse(text)
      },
      () => {
        // Redis away: keep the last known value; try again next period.
      },
    )
    .finally(() => {
      if (entry.version === version) entry.readAt = Date.now()
      entry.reading = null
    })
  return entry.reading
}

/** The entry's value through the cache (undefined when never known). */
async function cached(entry) {
  if (Date.now() - entry.readAt >= state.cacheMs) await refresh(entry)
  return entry.value
}

/** A write in this process: seen by this process at once. */
function written(entry, value) {
  entry.version++
  entry.value = value
  entry.readAt = Date.now()
}

function checkBoolean(value, what) {
  if (typeof value !== 'boolean') throw invalid(`${what} must be a boolean, got ${value === null ? 'null' : typeof value}`)
}

/** Decodes a key segment written by the key scheme (ids escape characters as %XX of their UTF-8 bytes). */
function decodeSegment(segment) {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

const featureFlags = {
  /**
   * Whether the flag `name` is on; `options.default` (false) when it is not
   * set. Served from the per-process cache; never rejects for a Redis failure.
   */
  async isEnabled(name, options) {
    let fallback = false
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') throw invalid('featureFlags.isEnabled: options must be an object')
      if (options.default !== undefined) {
        checkBoolean(options.default, 'featureFlags.isEnabled: default')
        fallback = options.default
      }
    }
    const entry = featureEntry(name)
    const value = Date.now() - entry.readAt < state.cacheMs ? entry.value : await cached(entry)
    return value ?? fallback
  },

  /** Turns the flag on or off (persisting, no TTL); this process sees it at once. */
  async setFlag(name, enabled) {
    const entry = featureEntry(name)
    checkBoolean(enabled, 'featureFlags.setFlag: enabled')
    await request(Op.CALL, 'SET', [entry.key, enabled ? 'true' : 'false'])
    written(entry, enabled)
  },

  /** Every flag (`{ [name]: boolean }`), listed by SCAN (never KEYS). */
  async getFlags() {
    const flags = {}
    const match = `${native.globEscape(FEATURE_PREFIX)}*`
    for await (const keys of getRedisClient().scan({ match, count: 1000 })) {
      const values = await request(Op.CALL, 'MGET', keys)
      for (let i = 0; i < keys.length; i++) {
        const value = parseFeature(values[i])
        if (value === null) continue
        flags[decodeSegment(keys[i].slice(FEATURE_PREFIX.length))] = value
        const entry = state.entries.get(keys[i])
        if (entry !== undefined && entry.reading === null) written(entry, value)
      }
    }
    return flags
  },

  /** Whether maintenance mode is on (through the same cache). */
  async isMaintenanceMode() {
    return (await featureFlags.getMaintenance()).on
  },

  /** `{ on, message, since }` of the maintenance switch (through the same cache). */
  async getMaintenance() {
    const value = await cached(entryFor(RedisKeys.flag.maintenance(), parseMaintenance))
    const m = value ?? MAINTENANCE_OFF
    return { on: m.on, message: m.message, since: m.since === null ? null : new Date(m.since.getTime()) }
  },

  /** Switches maintenance mode (persisting), with an optional message; this process sees it at once. */
  async setMaintenanceMode(on, options) {
    checkBoolean(on, 'featureFlags.setMaintenanceMode: on')
    let message = null
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') throw invalid('featureFlags.setMaintenanceMode: options must be an object')
      if (options.message !== undefined && options.message !== null) {
        checkName(options.message, 'featureFlags.setMaintenanceMode: message')
        message = options.message
      }
    }
    const entry = entryFor(RedisKeys.flag.maintenance(), parseMaintenance)
    const since = on ? new Date() : null
    const value = on ? { on: true, message, since } : MAINTENANCE_OFF
    await request(Op.CALL, 'SET', [entry.key, JSON.stringify({ on, message: on ? message : null, since })])
    written(entry, value)
  },
}

/** Sets the cache period: `cacheMs` (default 1000) milliseconds, 0 for no cache; drops what the cache holds. */
function configureFeatureFlags(options) {
  if (options === null || typeof options !== 'object') throw invalid('configureFeatureFlags(options): options must be an object')
  if (options.cacheMs !== undefined) {
    if (!Number.isSafeInteger(options.cacheMs) || options.cacheMs < 0) {
      throw invalid(`configureFeatureFlags: cacheMs must be a whole number of milliseconds, 0 or more, got ${String(options.cacheMs)}`)
    }
    state.cacheMs = options.cacheMs
  }
  // A new period starts from Redis: what the cache holds is dropped.
  state.entries.clear()
  state.byName.clear()
}

/**
 * Wraps a route handler: while maintenance mode is on it answers 503 with
 * `Retry-After` and the message as JSON; else it calls the handler.
 */
function maintenanceRoute(handler) {
  if (typeof handler !== 'function') throw invalid('maintenanceRoute(handler): handler must be a function')
  return async function maintenanceHandler(request, context) {
    const m = await featureFlags.getMaintenance()
    if (!m.on) return handler(request, context)
    return new Response(
      JSON.stringify({ error: 'Service unavailable: maintenance', maintenance: true, message: m.message, since: m.since }),
      {
        status: 503,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'cache-control': 'no-store',
          'retry-after': String(MAINTENANCE_RETRY_AFTER_SECONDS),
        },
      },
    )
  }
}

featureFlags.maintenanceRoute = maintenanceRoute

module.exports = { featureFlags, configureFeatureFlags, maintenanceRoute }
