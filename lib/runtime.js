'use strict'
// The JS end of the boundary. Every request made in one tick is written into
// one flat array and crosses into Rust with a single synchronous
// `Channel.submit()` (on process.nextTick); replies come back in batches through
// `Channel.drain()` when Rust wakes us through one weak threadsafe function.
// A timer that is ref'd only while requests are pending keeps the process
// alive exactly as long as it has work in flight.

const native = require('../binding.js')

/** Request kinds understood by `Channel.submit` (see src/boundary.rs). */
const Op = Object.freeze({ CALL: 1, CALL_BUFFER: 2, SCAN: 3, CLOSE: 4 })

/** Base class of every error this package rejects with. */
class RedisError extends Error {
  constructor(message, code) {
    super(message)
    this.name = 'RedisError'
    this.code = code
  }
}
/** The server answered with an error reply; `code` is its first word (e.g. `WRONGTYPE`). */
class ReplyError extends RedisError {
  constructor(message) {
    super(message, (/^[A-Z]+/.exec(message) || ['ERR'])[0])
    this.name = 'ReplyError'
  }
}
/** No reply within `commandTimeoutMs`. The command may or may not have run. */
class RedisTimeoutError extends RedisError {
  constructor(message) {
    super(message, 'ETIMEDOUT')
    this.name = 'RedisTimeoutError'
  }
}
/** The connection could not be made, or was lost while the command was in flight. */
class RedisConnectionError extends RedisError {
  constructor(message, code = 'ECONNECTION') {
    super(message, code)
    this.name = 'RedisConnectionError'
  }
}
/** The server refused the credentials. The message never holds the password. */
class RedisAuthError extends RedisConnectionError {
  constructor(message) {
    super(message, 'EAUTH')
    this.name = 'RedisAuthError'
  }
}
/** The client was closed while the command waited. */
class RedisClosedError extends RedisError {
  constructor(message) {
    super(message, 'ECLOSED')
    this.name = 'RedisClosedError'
  }
}

function failure(kind, message) {
  switch (kind) {
    case 1:
      return new ReplyError(message)
    case 2:
      return new RedisTimeoutError(message)
    case 3:
      return new RedisConnectionError(message)
    case 4:
      return new RedisAuthError(message)
    case 5:
      return new RedisClosedError(message)
    default: {
      const error = new TypeError(message)
      error.code = 'EINVALID'
      return error
    }
  }
}

/** Runs a synchronous native call, turning its `InvalidArg` errors into `TypeError`s. */
function nativeCall(fn) {
  try {
    return fn()
  } catch (error) {
    if (error && error.code === 'InvalidArg') {
      const typeError = new TypeError(error.message)
      typeError.code = 'EINVALID'
      throw typeError
    }
    throw error
  }
}

function createRuntime() {
  // Pending requests live in parallel arrays indexed by id; freed ids are reused.
  const resolvers = []
  const rejecters = []
  const freeIds = []
  let pending = 0

  // The outgoing batch: `id, op, argc, arg…` written at `batchLength`.
  const batch = []
  let batchLength = 0
  let flushScheduled = false

  const listeners = new Set()
  const keepAlive = setInterval(() => {}, 1 << 30)
  keepAlive.unref()

  const channel = new native.Channel(wake)

  function wake() {
    let entries
    try {
      entries = channel.drain()
    } catch (error) {
      process.emitWarning(`@yesgoddess/redis: draining replies failed: ${error && error.message}`)
      return
    }
    for (let i = 0; i < entries.length; i += 2) {
      const tag = entries[i]
      const value = entries[i + 1]
      if (tag < 0) {
        dispatchEvent(value)
        continue
      }
      const kind = tag % 8
      const id = (tag - kind) / 8
      const resolve = resolvers[id]
      const reject = rejecters[id]
      resolvers[id] = undefined
      rejecters[id] = undefined
      freeIds.push(id)
      pending--
      if (kind === 0) resolve(value)
      else reject(failure(kind, value))
    }
    if (pending === 0) keepAlive.unref()
  }

  function dispatchEvent(event) {
    for (const listener of listeners) {
      try {
        listener(event)
      } catch (error) {
        process.emitWarning(`@yesgoddess/redis: an onRedisEvent listener threw: ${error && error.message}`)
      }
    }
  }

  function flush() {
    flushScheduled = false
    const count = batchLength
    batchLength = 0
    try {
      channel.submit(batch, count)
    } catch (error) {
      // Only a failure of the boundary itself lands here: fail every request of the batch.
      for (let i = 0; i < count; ) {
        const id = batch[i]
        const argc = batch[i + 2]
        i += 3 + argc
        const reject = rejecters[id]
        resolvers[id] = undefined
        rejecters[id] = undefined
        freeIds.push(id)
        pending--
        reject(new RedisError(`submitting to Redis failed: ${error && error.message}`, 'EINTERNAL'))
      }
      if (pending === 0) keepAlive.unref()
    }
    if (count > 4096) batch.length = 0 // don't hold on to a burst's arguments
  }

  function enqueue(op, first, rest, resolve, reject) {
    const id = freeIds.length > 0 ? freeIds.pop() : resolvers.length
    resolvers[id] = resolve
    rejecters[id] = reject
    if (pending++ === 0) keepAlive.ref()
    const argc = (first === undefined ? 0 : 1) + rest.length
    batch[batchLength++] = id
    batch[batchLength++] = op
    batch[batchLength++] = argc
    if (first !== undefined) batch[batchLength++] = first
    for (let i = 0; i < rest.length; i++) batch[batchLength++] = rest[i]
    if (!flushScheduled) {
      flushScheduled = true
      process.nextTick(flush)
    }
  }

  /** Sends one request; `first` (optional) and `rest` are its arguments. */
  function request(op, first, rest) {
    return new Promise((resolve, reject) => enqueue(op, first, rest, resolve, reject))
  }

  return { request, listeners, native }
}

// One runtime per process, kept on globalThis so that a module evaluated again
// (Next.js dev hot reload, jest.isolateModules) reuses it and its channel. The
// Rust client behind it is process-wide in any case.
const RUNTIME_KEY = Symbol.for('@yesgoddess/redis/runtime/v1')
const runtime = globalThis[RUNTIME_KEY] || (globalThis[RUNTIME_KEY] = createRuntime())

module.exports = {
  Op,
  runtime,
  native,
  nativeCall,
  RedisError,
  ReplyError,
  RedisTimeoutError,
  RedisConnectionError,
  RedisAuthError,
  RedisClosedError,
}
