'use strict'
// counters: the seed's `counter:` prefix ("metrics and analytics"; "use Redis
// counters for real-time metrics") as a service. A total is one INCRBY (atomic
// on the server, so increments from any number of processes are never lost);
// per-minute buckets live in one hash per counter, written and read by
// scripts on the Redis server's clock (TIME), kept 25 hours.

const { runtime, native, nativeCall, Op, RedisError, invalid } = require('./runtime.js')
const { RedisKeys } = require('./keys.js')
const { runScript } = require('./scripts.js')

const { request } = runtime

/** How long a per-minute bucket is kept: 25 hours, in minutes. */
const KEEP_MINUTES = 25 * 60
/** How far ahead of the server's clock `record`'s `at` may be (clock skew), in minutes. */
const AHEAD_MINUTES = 5

function metricKey(name, id) {
  return RedisKeys.counter.metric(name, id)
}

function seriesKey(name, id) {
  const key = metricKey(name, id)
  return nativeCall(() => native.counterSeriesKey(key))
}

function checkBy(by, method) {
  if (!Number.isSafeInteger(by)) {
    throw invalid(`counters.${method}: by must be a safe integer, got ${typeof by === 'number' ? by : typeof by}`)
  }
  return by
}

/** A stored total as a number: 0 when missing; a value that is not an integer rejects. */
function toCount(text, key) {
  if (text === null) return 0
  if (/^-?\d+$/.test(text)) {
    const n = Number(text)
    if (Number.isSafeInteger(n)) return n
  }
  throw new RedisError(`counters: ${key} does not hold a safe integer`, 'ENOTINTEGER')
}

/** `(name, options)` is accepted for `(name, undefined, options)`: an id is never an object. */
function splitArgs(id, options) {
  if (options === undefined && id !== null && typeof id === 'object') return [undefined, id]
  return [id, options]
}

function checkOptions(options, method) {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object') throw invalid(`counters.${method}: options must be an object`)
  return options
}

const counters = {
  /** Adds `by` (a safe integer, default 1) to the counter; resolves its new value. Persists (no TTL). */
  increment(name, id, by = 1) {
    // Not an async function: it hands back the request's own promise (an async
    // function returning a promise would wait three more microtask turns).
    try {
      const key = metricKey(name, id)
      checkBy(by, 'increment')
      return request(Op.CALL, 'INCRBY', [key, by])
    } catch (error) {
      return Promise.reject(error)
    }
  },

  /** The counter's value (0 when missing). */
  async get(name, id) {
    const key = metricKey(name, id)
    return toCount(await request(Op.CALL, 'GET', [key]), key)
  },

  /** The values of several counters (`[[name, id?], …]`), in one round trip (MGET). */
  async getMany(list) {
    if (!Array.isArray(list)) throw invalid('counters.getMany: pass an array of [name, id?] pairs')
    const keys = list.map((entry) => {
      if (!Array.isArray(entry) || entry.length < 1 || entry.length > 2) {
        throw invalid('counters.getMany: each entry must be [name] or [name, id]')
      }
      return metricKey(entry[0], entry[1])
    })
    if (keys.length === 0) return []
    const texts = await request(Op.CALL, 'MGET', keys)
    return texts.map((text, i) => toCount(text, keys[i]))
  },

  /** Deletes the counter (GETDEL); resolves the value it had (0 when missing). */
  async reset(name, id) {
    const key = metricKey(name, id)
    return toCount(await request(Op.CALL, 'GETDEL', [key]), key)
  },

  /**
   * Adds `by` (default 1) to the per-minute bucket of `at` (default: now on
   * the Redis server's clock); resolves the bucket's new count. Buckets are
   * kept 25 hours.
   */
  async record(name, idOrOptions, maybeOptions) {
    const [id, rawOptions] = splitArgs(idOrOptions, maybeOptions)
    const key = seriesKey(name, id)
    const options = checkOptions(rawOptions, 'record')
    const by = options.by === undefined ? 1 : checkBy(options.by, 'record')
    let at = ''
    if (options.at !== undefined && options.at !== null) {
      if (!(options.at instanceof Date) || Number.isNaN(options.at.getTime())) {
        throw invalid('counters.record: at must be a valid Date')
      }
      at = options.at.getTime()
    }
    const count = await runScript('counterRecord', [key], [by, at, KEEP_MINUTES, AHEAD_MINUTES])
    if (count === null) {
      throw new RedisError(
        `counters.record: at (${new Date(at).toISOString()}) is outside the buckets kept: the last 25 hours on the Redis server's clock, up to ${AHEAD_MINUTES} minutes ahead`,
        'ERANGE',
      )
    }
    return count
  },

  /**
   * The last `minutes` (default 60, at most 1500) per-minute buckets on the
   * Redis server's clock, oldest first and the current minute last, zeros
   * included, in one round trip: `[{ at, count }]`.
   */
  async series(name, idOrOptions, maybeOptions) {
    const [id, rawOptions] = splitArgs(idOrOptions, maybeOptions)
    const key = seriesKey(name, id)
    const options = checkOptions(rawOptions, 'series')
    const minutes = options.minutes === undefined ? 60 : options.minutes
    if (!Number.isSafeInteger(minutes) || minutes < 1 || minutes > KEEP_MINUTES) {
      throw invalid(`counters.series: minutes must be a whole number from 1 to ${KEEP_MINUTES} (25 hours), got ${String(minutes)}`)
    }
    const reply = await runScript('counterSeries', [key], [minutes])
    const first = reply[0]
    const out = new Array(minutes)
    for (let i = 0; i < minutes; i++) out[i] = { at: new Date((first + i) * 60000), count: reply[i + 1] }
    return out
  },
}

module.exports = { counters }
