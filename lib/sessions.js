'use strict'
// sessionStore: the seed's session storage (`session:` upload, auth and
// verification keys) as a service. Ids are 128 random bits (URL-safe) from the
// lock tokens' pooled CSPRNG; each operation is ONE command: SET NX EX to
// create, GET, GETEX to slide the expiry, GETDEL to consume (so a one-time
// token works exactly once however many requests race for it), DEL.

const { runtime, Op, invalid, checkName } = require('./runtime.js')
const { RedisKeys, RedisTTL } = require('./keys.js')
const { randomToken } = require('./lock.js')
const { parseByShape } = require('./decoded.js')

const { request } = runtime

/** The session kinds and their key builders. */
const KINDS = Object.freeze(['upload', 'auth', 'verification'])
/** 16 random bytes: 128 bits, 22 base64url characters. */
const ID_BYTES = 16
const MAX_TTL_SECONDS = 365 * 24 * 3600

/** The key of a session; bad kinds and ids are TypeErrors (nothing sent). */
function keyOf(kind, id, method) {
  checkKind(kind, method)
  checkName(id, `sessionStore.${method}: id`)
  return RedisKeys.session[kind](id)
}

function checkKind(kind, method) {
  if (typeof kind !== 'string' || !KINDS.includes(kind)) {
    throw invalid(`sessionStore.${method}: kind must be one of ${KINDS.map((k) => `'${k}'`).join(', ')}, got ${describe(kind)}`)
  }
}

function describe(value) {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null) return 'null'
  return typeof value
}

function ttlOf(kind, ttlSeconds, method) {
  if (ttlSeconds === undefined || ttlSeconds === null) return RedisTTL.session[kind]
  if (typeof ttlSeconds === 'number' && ttlSeconds > MAX_TTL_SECONDS) {
    throw invalid(
      `sessionStore.${method}: ttlSeconds is in seconds; ${ttlSeconds} s is more than one year (${MAX_TTL_SECONDS} s), the longest allowed`,
    )
  }
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw invalid(`sessionStore.${method}: ttlSeconds must be a whole number of seconds, 1 or more, got ${String(ttlSeconds)}`)
  }
  return ttlSeconds
}

function encode(data) {
  if (data === undefined || typeof data === 'function' || typeof data === 'symbol') {
    throw invalid(`sessionStore.create: ${typeof data} cannot be stored as JSON`)
  }
  let text
  try {
    text = JSON.stringify(data)
  } catch (error) {
    throw invalid(`sessionStore.create: the data cannot be stored as JSON (${error.message})`)
  }
  if (text === undefined) throw invalid('sessionStore.create: the data cannot be stored as JSON')
  return text
}

/**
 * The stored JSON of `key`, decoded (by the reader compiled for its kind's
 * shape once it has one: lib/decoded.js); a value that is not JSON reads as
 * null (no usable session).
 */
function decode(key, text) {
  if (text === null) return null
  try {
    return parseByShape(key, text)
  } catch {
    return null
  }
}

const sessionStore = {
  /**
   * Stores `data` (JSON) under a fresh id of 128 random bits (URL-safe) with
   * the kind's TTL (`RedisTTL.session[kind]`) unless `ttlSeconds` is given;
   * resolves `{ id, expiresAt }`.
   */
  async create(kind, data, options) {
    checkKind(kind, 'create')
    if (options !== undefined && options !== null && typeof options !== 'object') {
      throw invalid('sessionStore.create: options must be an object')
    }
    const ttl = ttlOf(kind, options ? options.ttlSeconds : undefined, 'create')
    const text = encode(data)
    for (;;) {
      const id = randomToken(ID_BYTES, 'base64url')
      const sentAt = Date.now()
      // NX: an id is never written over (a collision of 128 random bits only draws another).
      const reply = await request(Op.CALL, 'SET', [RedisKeys.session[kind](id), text, 'EX', ttl, 'NX'])
      if (reply === 'OK') return { id, expiresAt: new Date(sentAt + ttl * 1000) }
    }
  },

  /** The data, or null when missing or expired. */
  async get(kind, id) {
    const key = keyOf(kind, id, 'get')
    return decode(key, await request(Op.CALL, 'GET', [key]))
  },

  /** Sliding expiry: the data with its TTL renewed (one GETEX), or null. */
  async touch(kind, id, ttlSeconds) {
    const key = keyOf(kind, id, 'touch')
    const ttl = ttlOf(kind, ttlSeconds, 'touch')
    return decode(key, await request(Op.CALL, 'GETEX', [key, 'EX', ttl]))
  },

  /** The data, deleted in the same atomic command (GETDEL), or null: it works exactly once. */
  async consume(kind, id) {
    const key = keyOf(kind, id, 'consume')
    return decode(key, await request(Op.CALL, 'GETDEL', [key]))
  },

  /** Deletes the session; resolves whether it existed. */
  async destroy(kind, id) {
    return (await request(Op.CALL, 'DEL', [keyOf(kind, id, 'destroy')])) === 1
  },
}

module.exports = { sessionStore }
