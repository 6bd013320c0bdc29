'use strict'
// Distributed locks: SET NX PX plus a fencing token in one script, release and
// extension as compare-and-delete / compare-and-expire scripts. `withLock`
// calls `fn` from JavaScript itself (never from Rust), so Next.js request
// context (AsyncLocalStorage) is still there inside it.

const { randomFillSync } = require('node:crypto')
const { native, nativeCall, RedisError, invalid, checkName, runtime } = require('./runtime.js')
const { runScript } = require('./scripts.js')

const asyncDispose = Symbol.asyncDispose || Symbol.for('nodejs.asyncDispose')

/** The lock could not be had (within `waitMs` for withLock). */
class LockNotAcquiredError extends RedisError {
  constructor(key, waitMs) {
    super(`the lock ${key} is held by someone else${waitMs > 0 ? ` (waited ${waitMs} ms)` : ''}`, 'ELOCKED')
    this.name = 'LockNotAcquiredError'
    this.key = key
  }
}

/** A lock that was ours is not any more (it expired, or was deleted or taken behind our back). */
class LockLostError extends RedisError {
  constructor(key, reason, cause) {
    super(`the lock ${key} was lost: ${reason}`, 'ELOCKLOST')
    this.name = 'LockLostError'
    this.key = key
    if (cause !== undefined) this.cause = cause
  }
}

/** A held lock: `{ key, token, fencingToken, expiresAt }`; `await using` releases it. */
class Lock {
  constructor(key, token, fencingToken, expiresAt) {
    /** The lock's key (without keyPrefix). */
    this.key = key
    /** 128 random bits, hex: proves that the lock is ours. */
    this.token = token
    /** Grows with every acquisition of this key: pass it to stores that refuse stale writers. */
    this.fencingToken = fencingToken
    /** When the lease ends unless extended (counted from the moment the acquiring request was sent). */
    this.expiresAt = expiresAt
  }

  /** Releases the lock (for `await using`). */
  [asyncDispose]() {
    return releaseLock(this)
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Random tokens and ids come from the OS's CSPRNG, drawn 4 KiB at a time: one
// getrandom() per 256 tokens instead of one per token (it was a quarter of
// withLock's CPU). Every token uses fresh bytes; none is ever reused. Shared
// with the other services (idempotency claims, session ids) through randomToken.
const TOKEN_BYTES = 16
const tokenPool = Buffer.alloc(4096)
let tokenOffset = tokenPool.length

/**
 * `bytes` fresh random bytes (at most 4096) from the pool, written as `encoding`
 * (`'hex'`, or `'base64url'` for URL-safe ids).
 */
function randomToken(bytes = TOKEN_BYTES, encoding = 'hex') {
  if (tokenOffset + bytes > tokenPool.length) {
    randomFillSync(tokenPool)
    tokenOffset = 0
  }
  const token = tokenPool.toString(encoding, tokenOffset, tokenOffset + bytes)
  tokenOffset += bytes
  return token
}

function newToken() {
  return randomToken(TOKEN_BYTES, 'hex')
}

function checkKey(key) {
  checkName(key, 'lock: key')
}

/** The longest lease: a larger one is almost surely milliseconds passed as seconds. */
const MAX_LEASE_SECONDS = 24 * 3600

/** A lease in whole seconds (1 s to 24 h), as milliseconds. */
function checkTtl(ttlSeconds) {
  if (typeof ttlSeconds === 'number' && ttlSeconds > MAX_LEASE_SECONDS) {
    throw invalid(
      `lock: ttlSeconds is in seconds; ${ttlSeconds} s is more than 24 hours (${MAX_LEASE_SECONDS} s), the longest lease allowed`,
    )
  }
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw invalid(`lock: ttlSeconds must be a whole number of seconds, 1 or more, got ${String(ttlSeconds)}`)
  }
  return ttlSeconds * 1000
}

function checkCount(value, name, fallback) {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 0) throw invalid(`lock: ${name} must be a non-negative integer`)
  return value
}

function checkLock(lock) {
  if (!lock || typeof lock.key !== 'string' || typeof lock.token !== 'string') {
    throw invalid('lock: pass a Lock returned by acquireLock')
  }
}

/**
 * One attempt: resolves the Lock, or null when someone else holds the key.
 * (A plain function handing back the script's promise: one promise hop less
 * than an async function, on every withLock.)
 */
function tryAcquire(key, ttlMs) {
  const token = newToken()
  const fenceKey = nativeCall(() => native.fencingKey(key))
  const sentAt = Date.now()
  return runScript('acquireLock', [key, fenceKey], [token, ttlMs]).then((fence) =>
    fence === 0 ? null : new Lock(key, token, fence, new Date(sentAt + ttlMs)),
  )
}

/** A delay of about `ms` with ±50 % jitter, so that waiting acquirers spread out. */
function jittered(ms) {
  return Math.max(1, Math.round(ms * (0.5 + Math.random())))
}

/**
 * Takes the lock `key` for `ttlSeconds` (default 300): the Lock, or null when
 * it is held by someone else after `retries` more attempts `retryDelayMs`
 * apart (with jitter). Redis errors reject.
 */
async function acquireLock(key, ttlSeconds = 300, options = {}) {
  checkKey(key)
  const ttlMs = checkTtl(ttlSeconds)
  const retries = checkCount(options.retries, 'retries', 0)
  const retryDelayMs = checkCount(options.retryDelayMs, 'retryDelayMs', 100)
  return acquireUntil(key, ttlMs, retryDelayMs, (attempt) => (attempt < retries ? retryDelayMs : 0))
}

/**
 * Tries to take `key` until it is ours or `nextWait(attempts so far)` says to
 * stop (0): the Lock, or null. Waits are about `retryDelayMs` with jitter,
 * never longer than `nextWait` allows.
 */
async function acquireUntil(key, ttlMs, retryDelayMs, nextWait) {
  for (let attempt = 0; ; attempt++) {
    const lock = await tryAcquire(key, ttlMs)
    if (lock !== null) return lock
    const allowed = nextWait(attempt)
    if (allowed <= 0) return null
    await sleep(Math.min(allowed, jittered(retryDelayMs)))
  }
}

/** The release script for `lock`: resolves 1 when it was still ours (and is now released), else 0. */
function runRelease(lock) {
  return runScript('releaseLock', [lock.key], [lock.token])
}

/** Releases `lock` if it is still ours: true when it was, false when it had expired or been taken. */
async function releaseLock(lock) {
  checkLock(lock)
  return (await runRelease(lock)) === 1
}

/**
 * Renews the lease of `lock` to `ttlSeconds` from now if it is still ours: true
 * when it was (and `lock.expiresAt` moves), false when it is not ours any more.
 */
async function extendLock(lock, ttlSeconds) {
  checkLock(lock)
  const ttlMs = checkTtl(ttlSeconds)
  const sentAt = Date.now()
  const extended = (await runScript('extendLock', [lock.key], [lock.token, ttlMs])) === 1
  if (extended) lock.expiresAt = new Date(sentAt + ttlMs)
  return extended
}

/**
 * Acquires `key` within `waitMs`, or rejects with LockNotAcquiredError. With
 * no wait (withLock's default) it is one attempt, without the retry loop. Only
 * for async callers: a bad key throws here, before anything is sent.
 */
function acquireWithin(key, ttlMs, waitMs, retryDelayMs) {
  let attempt
  if (waitMs === 0) attempt = tryAcquire(key, ttlMs)
  else {
    const deadline = Date.now() + waitMs
    attempt = acquireUntil(key, ttlMs, retryDelayMs, () => deadline - Date.now())
  }
  return attempt.then((lock) => {
    if (lock === null) throw new LockNotAcquiredError(key, waitMs)
    return lock
  })
}

// ── The lease keeper (withLock's, and the idempotency claims') ──────────────
// One timer for every lease held in this process (not one per call): each tick
// renews the leases that are a third of the way through and declares lost
// those that ran out without a renewal (Redis away). Leases shorter than the
// tick get a timer of their own.

const TICK_MS = 250
// The leases held, in numbered slots that a stopped lease empties for the next
// one. Not a Set: V8 re-makes a Set's table as entries come and go, and the old
// tables, once promoted, keep the young leases they list (with their locks and
// closures) alive until a full collection. Measured under withLock at 128 in
// flight: 0.9 MB promoted per scavenge with a Set, none with slots.
const keeper = runtime.shared('locks/v2', () => ({ slots: [], free: [], held: 0, timer: null }))

function tickLease(lease) {
  if (lease.lost !== null) return
  const now = Date.now()
  if (now >= lease.expiresAt) {
    lease.lose('it expired before it could be renewed')
    return
  }
  if (lease.renewing !== null || now - lease.renewedAt < lease.renewEvery) return
  const sentAt = now
  lease.renewing = lease
    .renew()
    .then(
      (ours) => {
        if (ours) {
          lease.renewedAt = Date.now()
          lease.expiresAt = sentAt + lease.ttlMs
        } else lease.lose('it expired or was taken by someone else')
      },
      () => {}, // Redis away: the next tick tries again, or declares the lease lost at expiry
    )
    .finally(() => {
      lease.renewing = null
    })
}

function tickAll() {
  for (const lease of keeper.slots) if (lease !== undefined) tickLease(lease)
}

/**
 * A lease kept alive while a callback runs: `renew()` (resolving whether the
 * lease was still ours and is now `ttlMs` long again) is called every third of
 * `ttlMs`; `lostError(reason)` makes the error `signal` aborts with when a
 * renewal finds the lease gone or it runs out unrenewed. `expiresAt` (ms) is
 * when the lease ends unless renewed.
 */
class Lease {
  constructor({ ttlMs, expiresAt, renew, lostError }) {
    this.ttlMs = ttlMs
    this.expiresAt = expiresAt
    this.renew = renew
    this.lostError = lostError
    this.renewEvery = Math.max(1, Math.floor(ttlMs / 3))
    this.renewedAt = Date.now()
    this.renewing = null
    /** The error once the lease is lost, else null. */
    this.lost = null
    this.controller = null
    this.ownTimer = null
    /** The lease's slot in the keeper while it is kept there, else -1. */
    this.slot = -1
    if (this.renewEvery < TICK_MS) {
      this.ownTimer = setInterval(() => tickLease(this), this.renewEvery)
      this.ownTimer.unref()
    } else {
      this.slot = keeper.free.length > 0 ? keeper.free.pop() : keeper.slots.length
      keeper.slots[this.slot] = this
      keeper.held++
      if (keeper.timer === null) {
        keeper.timer = setInterval(tickAll, TICK_MS)
        keeper.timer.unref()
      }
    }
  }

  /** The AbortSignal handed to the callback, made on first use (most never look at it). */
  get signal() {
    if (this.controller === null) {
      this.controller = new AbortController()
      if (this.lost !== null) this.controller.abort(this.lost)
    }
    return this.controller.signal
  }

  lose(reason, cause) {
    if (this.lost !== null) return
    this.lost = this.lostError(reason, cause)
    if (this.controller !== null) this.controller.abort(this.lost)
  }

  /** Stops renewing: null, or the renewal still under way (await it before releasing). */
  stop() {
    if (this.ownTimer !== null) clearInterval(this.ownTimer)
    else if (this.slot >= 0) {
      keeper.slots[this.slot] = undefined
      keeper.free.push(this.slot)
      this.slot = -1
      if (--keeper.held === 0 && keeper.timer !== null) {
        clearInterval(keeper.timer)
        keeper.timer = null
      }
    }
    return this.renewing
  }
}

/** The lease of a held lock: renewed with extendLock, lost as a LockLostError. */
function lockLease(lock, ttlMs) {
  return new Lease({
    ttlMs,
    expiresAt: lock.expiresAt.getTime(),
    renew: () => extendLock(lock, ttlMs / 1000),
    lostError: (reason, cause) => new LockLostError(lock.key, reason, cause),
  })
}

/**
 * What withIdempotency hands `fn`: `{ signal }`; withLock's adds `fencingToken`.
 * `signal` is a getter of the class, made on first read. (An object literal
 * with its own `get signal()` is a dictionary-mode object with a getter closure
 * per call; measured under withLock at 128 in flight, it was about a quarter of
 * what outlived each scavenge.)
 */
class LeaseContext {
  #lease
  constructor(lease) {
    this.#lease = lease
  }

  /** Aborts (with the lease's error) if the lease is lost while `fn` runs. */
  get signal() {
    return this.#lease.signal
  }
}

class LockContext extends LeaseContext {
  constructor(lease, fencingToken) {
    super(lease)
    /** Grows with every acquisition of the key: pass it to stores that refuse stale writers. */
    this.fencingToken = fencingToken
  }
}

/**
 * Runs `fn({ signal, fencingToken })` holding the lock `key`, and releases it
 * whether `fn` resolves or throws. Waits up to `options.waitMs` (default 0)
 * for the lock, else rejects with LockNotAcquiredError. While `fn` runs, the
 * lease is renewed every third of `ttlSeconds`; if the lock is lost anyway,
 * `signal` aborts with a LockLostError and withLock rejects with it even when
 * `fn` resolves (the section may not have been exclusive). Returns what `fn`
 * returns; a failed release rejects (the lease then ends by itself).
 */
async function withLock(key, fn, ttlSeconds = 300, options = {}) {
  checkKey(key)
  if (typeof fn !== 'function') throw invalid('withLock(key, fn): fn must be a function')
  const ttlMs = checkTtl(ttlSeconds)
  const waitMs = checkCount(options.waitMs, 'waitMs', 0)
  const retryDelayMs = checkCount(options.retryDelayMs, 'retryDelayMs', 50)
  const lock = await acquireWithin(key, ttlMs, waitMs, retryDelayMs)
  const lease = lockLease(lock, ttlMs)
  const context = new LockContext(lease, lock.fencingToken)

  let value
  let failed = false
  let error
  try {
    // Called here, from JavaScript: the caller's AsyncLocalStorage context is intact.
    value = await fn(context)
  } catch (thrown) {
    failed = true
    error = thrown
  } finally {
    const renewing = lease.stop() // null, or the renewal under way
    if (renewing !== null) await renewing
  }
  let releaseError = null
  if (lease.lost === null) {
    try {
      // The lock is one that acquireWithin made: releaseLock's check is not needed.
      if ((await runRelease(lock)) !== 1) {
        lease.lose('it expired or was taken by someone else before release')
      }
    } catch (thrown) {
      releaseError = thrown
    }
  }
  if (failed) throw error
  if (lease.lost !== null) {
    lease.lost.result = value
    throw lease.lost
  }
  if (releaseError !== null) {
    releaseError.result = value
    throw releaseError
  }
  return value
}

module.exports = {
  acquireLock,
  releaseLock,
  extendLock,
  withLock,
  Lock,
  LockNotAcquiredError,
  LockLostError,
  // For the other services (not exported from the package root):
  Lease,
  LeaseContext,
  randomToken,
  jittered,
}
