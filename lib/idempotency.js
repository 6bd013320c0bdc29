'use strict'
// Idempotency keys: the seed's `idempotency:` prefix as a service. A call
// claims its key with ONE command (`SET key claim NX PX lease GET`: it either
// makes the in-progress claim or hands back the record that is there), runs
// `fn` from JavaScript (AsyncLocalStorage intact) while the lock code's lease
// keeper renews the claim, and replaces the claim with the completed record by
// a compare-and-set script; a thrown `fn` releases the claim by a
// compare-and-delete script, so a claim someone else made is never touched.
// `idempotentRoute` puts it in front of a Next.js route handler, as
// draft-ietf-httpapi-idempotency-key-header describes.

const { createHash } = require('node:crypto')
const { runtime, Op, RedisError, invalid, checkName } = require('./runtime.js')
const { RedisKeys, RedisTTL } = require('./keys.js')
const { runScript } = require('./scripts.js')
const { Lease, LeaseContext, randomToken, jittered } = require('./lock.js')
const { parseFor } = require('./decoded.js')

const { request } = runtime

/** Another call holds the key and has not finished (within `waitMs`). */
class IdempotencyInProgressError extends RedisError {
  constructor(key, waitMs = 0) {
    super(
      `idempotency: ${key} is in progress in another call${waitMs > 0 ? ` (waited ${waitMs} ms for its result)` : ''}`,
      'IDEMPOTENCY_IN_PROGRESS',
    )
    this.name = 'IdempotencyInProgressError'
    this.key = key
  }
}

/** The key was used before with another fingerprint (another request body). */
class IdempotencyMismatchError extends RedisError {
  constructor(key) {
    super(`idempotency: ${key} was used before with another fingerprint`, 'IDEMPOTENCY_MISMATCH')
    this.name = 'IdempotencyMismatchError'
    this.key = key
  }
}

/** What `signal` aborts with when the claim is lost while `fn` runs. */
function claimLost(key, reason, cause) {
  const error = new RedisError(`idempotency: the claim on ${key} was lost: ${reason}`, 'IDEMPOTENCY_CLAIM_LOST')
  error.name = 'IdempotencyClaimLostError'
  error.key = key
  if (cause !== undefined) error.cause = cause
  return error
}

/**
 * `flights`: runs in this process, by record key (a promise that settles when
 * that run ends). `completed`: record keys this process saw completed lately.
 * A completed record stays as it is until it expires, so for those a call
 * first only reads it (a GET: no claim token, no claim sent); a key that is
 * gone or not completed any more takes the claim path, as any other.
 */
const { flights, completed } = runtime.shared('idempotency', () => ({ flights: new Map(), completed: new Set() }))
/** At most this many completed keys are remembered (then the set starts again). */
const COMPLETED_HINTS = 4096

function rememberCompleted(recordKey) {
  if (completed.size >= COMPLETED_HINTS) completed.clear()
  completed.add(recordKey)
}

const MAX_LEASE_SECONDS = 24 * 3600
const MAX_TTL_SECONDS = 365 * 24 * 3600
/** A waiting call asks again after about this long (± 50 %), growing by half each time up to the cap. */
const POLL_FIRST_MS = 50
const POLL_MAX_MS = 500

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits for `promise` or `ms`, whichever is first, leaving no timer behind. */
function within(promise, ms) {
  let timer
  return Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() =>
    clearTimeout(timer),
  )
}

function seconds(value, name, fallback, max, unit) {
  if (value === undefined || value === null) return fallback
  if (typeof value === 'number' && value > max) {
    throw invalid(`idempotency: ${name} is in seconds; ${value} s is more than ${unit} (${max} s), the longest allowed`)
  }
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw invalid(`idempotency: ${name} must be a whole number of seconds, 1 or more, got ${String(value)}`)
  }
  return value
}

function checkOptions(options) {
  if (options === undefined || options === null) options = {}
  else if (typeof options !== 'object') throw invalid('idempotency: options must be an object')
  const ttlSeconds = seconds(options.ttlSeconds, 'ttlSeconds', RedisTTL.idempotency.default, MAX_TTL_SECONDS, 'one year')
  const leaseSeconds = seconds(options.leaseSeconds, 'leaseSeconds', 60, MAX_LEASE_SECONDS, '24 hours')
  let waitMs = 0
  if (options.waitMs !== undefined && options.waitMs !== null) {
    if (!Number.isSafeInteger(options.waitMs) || options.waitMs < 0) {
      throw invalid(`idempotency: waitMs must be a whole number of milliseconds, 0 or more, got ${String(options.waitMs)}`)
    }
    waitMs = options.waitMs
  }
  let fingerprint = null
  if (options.fingerprint !== undefined && options.fingerprint !== null) {
    checkName(options.fingerprint, 'idempotency: fingerprint')
    fingerprint = options.fingerprint
  }
  return { ttlSeconds, leaseMs: leaseSeconds * 1000, waitMs, fingerprint }
}

/** The JSON text of fn's result; `undefined` is stored as null. */
function encodeResult(key, value) {
  if (value === undefined) return 'null'
  let text
  try {
    text = JSON.stringify(value)
  } catch (error) {
    throw invalid(`withIdempotency(${key}): fn's result cannot be stored as JSON (${error.message})`)
  }
  if (text === undefined) throw invalid(`withIdempotency(${key}): fn's result (${typeof value}) cannot be stored as JSON`)
  return text
}

/** A stored record, decoded; a value that is not one is an error (the key is used for something else). */
function decodeRecord(key, recordKey, text) {
  let record
  try {
    // A record replayed again and again is not parsed again (lib/decoded.js): each caller still gets its own copy.
    record = parseFor(recordKey, text)
  } catch {
    record = null
  }
  if (record === null || typeof record !== 'object' || (record.state !== 'in-progress' && record.state !== 'completed')) {
    throw new RedisError(`idempotency: ${key} holds a value that is not an idempotency record`, 'EIDEMPOTENCYRECORD')
  }
  return record
}

async function release(recordKey, token) {
  try {
    await runScript('idempotencyRelease', [recordKey], [token])
  } catch {
    // Redis away: the claim's lease ends by itself within leaseSeconds.
  }
}

/** Runs fn under our fresh claim, then stores its result (or releases the claim). */
async function runClaimed(key, recordKey, fn, o, token, createdAt, fingerprintJson) {
  let settle
  const flight = new Promise((resolve) => (settle = resolve))
  flights.set(recordKey, flight)
  const lease = new Lease({
    ttlMs: o.leaseMs,
    expiresAt: createdAt + o.leaseMs,
    renew: async () => (await runScript('idempotencyRenew', [recordKey], [token, o.leaseMs])) === 1,
    lostError: (reason, cause) => claimLost(key, reason, cause),
  })
  const context = new LeaseContext(lease)
  try {
    let value
    try {
      // Called here, from JavaScript: the caller's AsyncLocalStorage context is intact.
      value = await fn(context)
    } catch (error) {
      await lease.stop()
      await release(recordKey, token)
      throw error
    }
    await lease.stop() // null, or the renewal under way
    let text
    try {
      text = encodeResult(key, value)
    } catch (error) {
      await release(recordKey, token)
      throw error
    }
    const record =
      `{"state":"completed","fingerprint":${fingerprintJson},"createdAt":${createdAt},` +
      `"completedAt":${Date.now()},"result":${text}}`
    let stored
    try {
      stored = await runScript('idempotencyComplete', [recordKey], [token, record, o.ttlSeconds])
    } catch (error) {
      process.emitWarning(
        `@yesgoddess/redis: withIdempotency(${key}): fn finished but its result could not be stored ` +
          `(${error && error.message}); the claim ends by itself within leaseSeconds, after which a call may run fn again`,
        { code: 'IDEMPOTENCY_NOT_STORED' },
      )
      return value
    }
    if (stored !== 0) rememberCompleted(recordKey)
    else {
      process.emitWarning(
        `@yesgoddess/redis: withIdempotency(${key}): the claim was lost while fn ran and another call holds the key now; ` +
          'this result was not stored',
        { code: 'IDEMPOTENCY_CLAIM_LOST' },
      )
    }
    return value
  } finally {
    if (flights.get(recordKey) === flight) flights.delete(recordKey)
    settle()
  }
}

/**
 * Runs `fn()` at most once per `key` within `ttlSeconds` and resolves its JSON
 * result to every later call with the key. See docs/idempotency.md.
 */
function withIdempotency(key, fn, options) {
  // Not an async function: a replay is one GET and one promise hop, as a hand-written one is.
  let o
  let recordKey
  try {
    o = checkOptions(options)
    if (typeof fn !== 'function') throw invalid('withIdempotency(key, fn): fn must be a function')
    recordKey = RedisKeys.idempotency.key(key)
  } catch (error) {
    return Promise.reject(error)
  }
  const deadline = Date.now() + o.waitMs
  if (!completed.has(recordKey)) return claimOrWait(key, recordKey, fn, o, deadline)
  // Seen completed here: read it (a replay is then one GET).
  return request(Op.CALL, 'GET', [recordKey]).then((text) => {
    const record = text === null ? null : decodeRecord(key, recordKey, text)
    if (record !== null && record.state === 'completed') {
      if ((record.fingerprint ?? null) !== o.fingerprint) throw new IdempotencyMismatchError(key)
      return record.result
    }
    completed.delete(recordKey) // expired, deleted or claimed anew: claim as usual
    return claimOrWait(key, recordKey, fn, o, deadline)
  })
}

/** Claims `recordKey` and runs fn, or replays the completed record, or waits for the run in progress. */
async function claimOrWait(key, recordKey, fn, o, deadline) {
  const fingerprintJson = o.fingerprint === null ? 'null' : JSON.stringify(o.fingerprint)
  let delay = POLL_FIRST_MS
  for (;;) {
    const token = randomToken()
    const createdAt = Date.now()
    const claim = `{"state":"in-progress","token":"${token}","fingerprint":${fingerprintJson},"createdAt":${createdAt}}`
    // One atomic command: make the claim, or get the record that is there.
    const existing = await request(Op.CALL, 'SET', [recordKey, claim, 'NX', 'PX', o.leaseMs, 'GET'])
    if (existing === null) return runClaimed(key, recordKey, fn, o, token, createdAt, fingerprintJson)
    const record = decodeRecord(key, recordKey, existing)
    if ((record.fingerprint ?? null) !== o.fingerprint) throw new IdempotencyMismatchError(key)
    if (record.state === 'completed') {
      rememberCompleted(recordKey)
      return record.result
    }
    const remaining = deadline - Date.now()
    if (remaining <= 0) throw new IdempotencyInProgressError(key, o.waitMs)
    // In progress: wait for this process's own run to end, else ask again later.
    const local = flights.get(recordKey)
    if (local !== undefined) await within(local, remaining)
    else {
      await sleep(Math.min(remaining, jittered(delay)))
      delay = Math.min(POLL_MAX_MS, Math.round(delay * 1.5))
    }
  }
}

/** The record of `key`: null, or `{ state, fingerprint, createdAt, completedAt, result }`. */
async function getIdempotencyRecord(key) {
  const recordKey = RedisKeys.idempotency.key(key)
  const text = await request(Op.CALL, 'GET', [recordKey])
  if (text === null) return null
  const record = decodeRecord(key, recordKey, text)
  const completed = record.state === 'completed'
  return {
    state: record.state,
    fingerprint: record.fingerprint ?? null,
    createdAt: new Date(record.createdAt),
    completedAt: completed ? new Date(record.completedAt) : null,
    result: completed ? record.result : null,
  }
}

// ── idempotentRoute ──────────────────────────────────────────────────────────

/** Response headers that are not stored for a replay. */
const UNSTORED_HEADERS = new Set(['set-cookie', 'content-length', 'transfer-encoding', 'connection', 'keep-alive'])
/** Statuses whose responses have no body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304])
const MAX_KEY_LENGTH = 255

/** The handler's response was not one to store (1xx, 3xx, 5xx): the claim is released. */
class NotStored extends Error {}

/**
 * The key from the header: an RFC 8941 sf-string (`"…"`, as the draft writes it)
 * or a bare token; null when malformed (two keys joined by a comma, empty, too long).
 */
function parseKeyHeader(raw) {
  const value = raw.trim()
  let key
  if (value.startsWith('"')) {
    const m = /^"((?:[\x20\x21\x23-\x5B\x5D-\x7E]|\\["\\])*)"$/.exec(value)
    if (m === null) return null
    key = m[1].replace(/\\(["\\])/g, '$1')
  } else {
    if (!/^[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?$/.test(value) || value.includes(',')) return null
    key = value
  }
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) return null
  return key
}

/** An RFC 9457 problem response. */
function problem(status, title, detail, headers = {}) {
  return new Response(JSON.stringify({ type: 'about:blank', title, status, detail }), {
    status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...headers },
  })
}

/** What is stored of a response: status, headers (minus Set-Cookie and framing), body. */
function snapshot(response, bytes) {
  const headers = []
  response.headers.forEach((value, name) => {
    if (!UNSTORED_HEADERS.has(name)) headers.push([name, value])
  })
  const stored = { status: response.status, statusText: response.statusText || '', headers }
  try {
    stored.body = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    stored.bodyBase64 = Buffer.from(bytes).toString('base64')
  }
  return stored
}

function isStoredResponse(value) {
  return value !== null && typeof value === 'object' && Number.isInteger(value.status) && Array.isArray(value.headers)
}

/** The replay of a stored response, marked `Idempotent-Replayed: true`. */
function replay(stored) {
  const headers = new Headers(stored.headers)
  headers.set('idempotent-replayed', 'true')
  let body = null
  if (!NULL_BODY.has(stored.status)) {
    body = typeof stored.bodyBase64 === 'string' ? Buffer.from(stored.bodyBase64, 'base64') : (stored.body ?? '')
  }
  return new Response(body, { status: stored.status, statusText: stored.statusText || '', headers })
}

function checkRouteOptions(options) {
  if (options === undefined || options === null) options = {}
  else if (typeof options !== 'object') throw invalid('idempotentRoute: options must be an object')
  const header = options.header ?? 'Idempotency-Key'
  checkName(header, 'idempotentRoute: header')
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header)) throw invalid(`idempotentRoute: ${header} is not a header name`)
  if (options.scope !== undefined && options.scope !== null && typeof options.scope !== 'function') {
    throw invalid('idempotentRoute: scope must be a function (request) => string')
  }
  if (options.required !== undefined && typeof options.required !== 'boolean') {
    throw invalid('idempotentRoute: required must be a boolean')
  }
  const o = checkOptions({ ttlSeconds: options.ttlSeconds, leaseSeconds: options.leaseSeconds, waitMs: options.waitMs })
  return {
    header,
    scope: options.scope ?? null,
    required: options.required === true,
    ttlSeconds: o.ttlSeconds,
    leaseSeconds: o.leaseMs / 1000,
    waitMs: o.waitMs,
  }
}

/**
 * Wraps a Next.js App Router handler `(request, context) => Response` with the
 * `Idempotency-Key` header. See docs/idempotency.md.
 */
function idempotentRoute(handler, options) {
  if (typeof handler !== 'function') throw invalid('idempotentRoute(handler): handler must be a function')
  const o = checkRouteOptions(options)
  return async function idempotentHandler(request, context) {
    const raw = request.headers.get(o.header)
    if (raw === null) {
      if (o.required) {
        return problem(400, `${o.header} is missing`, `This operation is idempotent and requires an ${o.header} header.`)
      }
      return handler(request, context)
    }
    const key = parseKeyHeader(raw)
    if (key === null) {
      return problem(
        400,
        `${o.header} is malformed`,
        `${o.header} must be one string (RFC 8941 sf-string or a bare token) of 1 to ${MAX_KEY_LENGTH} characters.`,
      )
    }
    const url = new URL(request.url)
    const method = request.method.toUpperCase()
    let scope = ''
    if (o.scope !== null) {
      const value = await o.scope(request)
      if (value !== undefined && value !== null && value !== '') {
        if (typeof value !== 'string' && typeof value !== 'number') {
          throw invalid('idempotentRoute: scope(request) must return a string, a number, null or undefined')
        }
        scope = String(value)
      }
    }
    const body = request.body === null ? new Uint8Array(0) : new Uint8Array(await request.clone().arrayBuffer())
    const fingerprint = createHash('sha256').update(`${method}\n${url.pathname}${url.search}\n`).update(body).digest('hex')
    // Method and path have no spaces (the path is percent-encoded), nor has the encoded scope.
    const id = `${method} ${url.pathname} ${encodeURIComponent(scope)} ${key}`
    let ran = null
    let handlerStarted = false
    try {
      const stored = await withIdempotency(
        id,
        async () => {
          handlerStarted = true
          const response = await handler(request, context)
          if (!(response instanceof Response)) throw new TypeError('idempotentRoute: the handler must return a Response')
          const bytes = new Uint8Array(await response.clone().arrayBuffer())
          ran = response
          const status = response.status
          if ((status >= 200 && status < 300) || (status >= 400 && status < 500)) return snapshot(response, bytes)
          throw new NotStored()
        },
        { fingerprint, ttlSeconds: o.ttlSeconds, leaseSeconds: o.leaseSeconds, waitMs: o.waitMs },
      )
      if (ran !== null) return ran // this request ran the handler: its own response, Set-Cookie and all
      if (!isStoredResponse(stored)) throw new RedisError(`idempotentRoute: ${id} holds no stored response`, 'EIDEMPOTENCYRECORD')
      return replay(stored)
    } catch (error) {
      if (error instanceof NotStored) return ran
      if (error instanceof IdempotencyInProgressError) {
        return problem(
          409,
          'A request is outstanding for this Idempotency-Key',
          `A request with the same ${o.header} is still being processed; retry later.`,
          { 'retry-after': '1' },
        )
      }
      if (error instanceof IdempotencyMismatchError) {
        return problem(
          422,
          'Idempotency-Key is already used',
          `This ${o.header} was used with another request payload; use a new key for a new request.`,
        )
      }
      if (!handlerStarted && error instanceof RedisError) {
        return problem(503, 'Idempotency store unavailable', 'The request was not processed; retry later.', {
          'retry-after': '1',
        })
      }
      throw error
    }
  }
}

module.exports = {
  withIdempotency,
  getIdempotencyRecord,
  idempotentRoute,
  IdempotencyInProgressError,
  IdempotencyMismatchError,
}
