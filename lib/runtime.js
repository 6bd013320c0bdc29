'use strict'
// The JS end of the boundary. Every request made in one turn of the event loop
// is written into one flat array and crosses into Rust with a single
// synchronous `Channel.submit()` (on setImmediate: after all of the turn's I/O
// callbacks, so that e.g. the requests of many HTTP requests handled in one
// turn share one write, as Node's own TLS socket coalesces ioredis's writes;
// a slice of replies handed out flushes its follow-ups before the next slice);
// replies come back in batches through
// `Channel.drain()` when Rust wakes us through one weak threadsafe function.
// A timer that is ref'd only while requests are pending keeps the process
// alive exactly as long as it has work in flight.

const net = require('node:net')
// The real one: fake timers (vitest, @sinonjs/fake-timers) replace the global
// setImmediate, and every command would wait for the test to advance them.
const { setImmediate } = require('node:timers')
const { isMainThread } = require('node:worker_threads')
const native = require('./native.js')

/** Request kinds understood by `Channel.submit`, from the binding (src/core/request.rs). */
const Op = Object.freeze({
  CALL: native.OP_CALL,
  CALL_BUFFER: native.OP_CALL_BUFFER,
  SCAN: native.OP_SCAN,
  CLOSE: native.OP_CLOSE,
  MASTERS: native.OP_MASTERS,
})
/**
 * Flags or-ed into an op: `DEGRADED` fails at once while a lost connection is
 * re-made (the caller has a degraded answer: a miss, a failure policy);
 * `SCRIPT_PROBE` marks the package's own EVALSHA, whose NOSCRIPT is handled;
 * `NODE`: the first argument names the cluster node (`host:port`) the request
 * goes to (the fan-out over the masters; one server ignores it).
 */
const Flag = Object.freeze({
  DEGRADED: native.REQUEST_DEGRADED,
  SCRIPT_PROBE: native.REQUEST_SCRIPT_PROBE,
  NODE: native.REQUEST_NODE,
})

/** A `TypeError` with `code: 'EINVALID'`: bad input, refused before anything is sent. */
function invalid(message) {
  const error = new TypeError(message)
  error.code = 'EINVALID'
  return error
}

/**
 * Refuses a key or id that is not a non-empty, well-formed string (a lone
 * surrogate would reach Redis as U+FFFD and collide with other ids).
 */
function checkName(value, what) {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${what} must be a non-empty string`)
  if (!value.isWellFormed()) throw invalid(`${what} is not well-formed UTF-16 (it holds a lone surrogate)`)
}

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

// Failure kinds and drained value types, from the binding (src/binding/channel.rs).
const {
  FAILURE_REPLY, FAILURE_TIMEOUT, FAILURE_CONNECTION, FAILURE_AUTH, FAILURE_CLOSED, FAILURE_USAGE,
  VALUE_TEXT, VALUE_NUMBER, VALUE_NULL, VALUE_BYTES, VALUE_OK,
} = native

function failure(kind, message) {
  switch (kind) {
    case FAILURE_REPLY:
      return new ReplyError(message)
    case FAILURE_TIMEOUT:
      return new RedisTimeoutError(message)
    case FAILURE_CONNECTION:
      return new RedisConnectionError(message)
    case FAILURE_AUTH:
      return new RedisAuthError(message)
    case FAILURE_CLOSED:
      return new RedisClosedError(message)
    case FAILURE_USAGE:
      return new RedisError(message, 'EUSAGE')
    default:
      return invalid(message)
  }
}

/** Runs a synchronous native call, turning its `InvalidArg` errors into `TypeError`s. */
function nativeCall(fn) {
  try {
    return fn()
  } catch (error) {
    if (error && error.code === 'InvalidArg') throw invalid(error.message)
    if (error instanceof TypeError && error.code === undefined) error.code = 'EINVALID'
    throw error
  }
}

/** Describes an argument that is not a string, number or Uint8Array, or returns null. */
function badArgument(value) {
  if (value === undefined) return 'undefined'
  if (value === null) return 'null'
  const type = typeof value
  if (type === 'object') return 'an object'
  return `a ${type}`
}

function createRuntime() {
  // Pending requests live in parallel arrays indexed by id; freed ids are reused.
  const resolvers = []
  const rejecters = []
  const freeIds = []
  let pending = 0

  // The outgoing batch (see src/binding/channel.rs): metadata, the concatenated
  // string arguments, and Buffer arguments.
  let outMeta = new Int32Array(4096)
  let outLength = 0
  let outText = ''
  let outBuffers = []
  let flushScheduled = false
  // A batch whose text passes this many UTF-16 units goes out at once, before
  // the turn ends: one flat string of at most about this size per submit stays
  // in V8's young generation, where a 1 MiB one (1,024 values of 1 KB) would be
  // allocated, page-faulted in and unmapped again as a large object every flush.
  const FLUSH_TEXT_UNITS = 64 * 1024

  // Where drained replies land: metadata, string bytes, and everything else.
  const inMeta = new Float64Array(2 + 3 * 4096)
  const inData = Buffer.allocUnsafeSlow(1 << 20)
  const inExtras = []

  const listeners = new Set()
  // Only the main thread reads the socket itself: a worker thread's event loop
  // may be busy for long stretches (that is what workers are for), and every
  // thread's replies would wait on it. Elsewhere the Rust thread reads.
  // YG_REDIS_JS_READER=0: only the Rust thread reads. =any: worker threads may
  // read too (for tests of the hand-back; a worker terminated while it reads
  // costs the others their commands in flight).
  const readerSetting = process.env.YG_REDIS_JS_READER
  const useJsReader = process.platform !== 'win32' && readerSetting !== '0' && (isMainThread || readerSetting === 'any')
  const keepAlive = setInterval(() => {}, 1 << 30)
  keepAlive.unref()

  // The channel's wake function (a threadsafe function) exists only while the
  // client is in use: attached on the first flush, released after a close with
  // nothing pending, so a closed client leaves no handle behind.
  const channel = new native.Channel()
  let attached = false

  function settle(id, kind, value) {
    const resolve = resolvers[id]
    const reject = rejecters[id]
    resolvers[id] = undefined
    rejecters[id] = undefined
    freeIds.push(id)
    pending--
    if (kind === 0) resolve(value)
    else reject(failure(kind, value))
  }

  // Replies are handed out in slices: after each slice the JS thread lets the
  // requests its callers made in reaction go out (microtasks, then
  // continuePump flushes them) before it hands out the next slice (setImmediate, same
  // loop turn). The server then works on new requests while this thread is
  // still busy with older replies, instead of the two taking turns; that is
  // what keeps a server-bound load (Lua scripts) at the server's pace.
  /** The drained batch being handed out: { count, index, m, position, more }, or null. */
  let cursor = null
  let continuation = null
  /** Rust woke us while a continuation was due: drain once more before stopping. */
  let wokenMeanwhile = false

  function wake() {
    if (continuation === null) pump()
    else wokenMeanwhile = true
  }

  function continuePump() {
    continuation = null
    // The requests made in reaction to the last slice go out before the next slice.
    if (flushScheduled) flush()
    pump()
  }

  function pump() {
    try {
      let budget = -1
      for (;;) {
        if (cursor === null) {
          wokenMeanwhile = false
          inExtras.length = 0
          channel.drain(inMeta, inData, inExtras)
          cursor = { count: inMeta[0], index: 0, m: 2, position: 0, more: inMeta[1] }
        }
        const c = cursor
        // A slice is half the batch (at least 8 replies): measured against a quarter
        // and against no slicing, it was best or near best on every load tried.
        // But when the server already has at least twice as many of our
        // requests as are left to hand out, it has work: the rest goes out
        // whole. Slicing there only cut the next writes smaller and smaller
        // (withLock over TLS at 128 in flight: ~8 requests per write, and
        // +17–20 % ops/s at 0.7–0.8× the client CPU without that; other loads
        // within noise, 2026-12-06).
        if (budget < 0) {
          const left = c.count - c.index
          budget = pending - left >= 2 * left ? left : Math.max(8, Math.ceil(c.count / 2))
        }
        let { index, m, position } = c
        const end = Math.min(c.count, index + budget)
        budget -= end - index
        for (; index < end; index++, m += 3) {
          const tag = inMeta[m]
          const type = inMeta[m + 1]
          const num = inMeta[m + 2]
          let value
          if (type === VALUE_TEXT) {
            value = inData.utf8Slice(position, position + num)
            position += num
          } else if (type === VALUE_NUMBER) value = num
          else if (type === VALUE_NULL) value = null
          else if (type === VALUE_BYTES) {
            value = Buffer.from(inData.subarray(position, position + num))
            position += num
          } else if (type === VALUE_OK) value = 'OK'
          else value = inExtras[num]
          if (tag < 0) {
            dispatchEvent(value)
          } else {
            const kind = tag % 8
            settle((tag - kind) / 8, kind, value)
          }
        }
        c.index = index
        c.m = m
        c.position = position
        if (index === c.count) {
          cursor = null
          if (c.more !== 1 && !wokenMeanwhile) break
        }
        if (budget <= 0) {
          continuation = setImmediate(continuePump)
          return
        }
      }
    } catch (error) {
      cursor = null
      process.emitWarning(`@yesgoddess/redis: draining replies failed: ${error && error.message}`)
    }
    if (pending === 0) keepAlive.unref()
  }

  // Who reads the sockets. On Unix the JS thread takes each ready connection
  // over (one server's, or every cluster node's; through libuv, on a duplicate
  // of the socket's descriptor): a reply wakes the JS thread directly, as it
  // would for ioredis, and Rust parses the bytes synchronously. Until then (and
  // on Windows) a Rust thread reads and wakes JS once per batch. The handover
  // is exclusive: Rust stops reading, under the lock it reads under, before
  // libuv starts (see FastConn::adopt_reader).
  const readBuffer = Buffer.allocUnsafeSlow(64 * 1024)
  /** The sockets this instance reads: { reader, socket, handBack } each. */
  const jsReaders = new Set()
  // Adopting waits for this instance's next flush, so that of several module
  // instances in one process (jest files, worker threads) one that sends takes it.
  let adoptable = useJsReader
  /** How many sockets this instance took over (for tests and diagnostics). */
  const readerStats = { adopted: 0 }

  function adoptReaders() {
    let readers
    try {
      readers = channel.adoptReaders()
    } catch {
      return
    }
    if (readers.length === 0) return
    forgetDeadReaders() // replaced connections' sockets, if any
    for (const reader of readers) adoptReader(reader)
  }

  function adoptReader(reader) {
    const state = { reader, socket: null, handBack: null }
    const socket = new net.Socket({
      fd: reader.fd,
      readable: true,
      writable: false,
      onread: {
        buffer: readBuffer,
        callback(length) {
          if (state.socket === null) return
          try {
            reader.feed(readBuffer, length)
          } catch (error) {
            // Never throw into libuv: treat it as a lost connection.
            lost(error)
            return
          }
          wake()
        },
      },
    })
    state.socket = socket
    socket.unref() // pending requests keep the process alive, not the socket
    readerStats.adopted++
    const lost = (error) => {
      if (state.socket === null) return
      state.socket = null
      reader.closed(error && error.message ? `reading from Redis failed: ${error.message}` : 'Redis closed the connection')
      wake()
      socket.destroy()
      process.removeListener('exit', state.handBack)
      jsReaders.delete(state)
    }
    socket.on('end', () => lost(null))
    socket.on('error', lost)
    socket.on('close', () => lost(null))
    // Before this thread goes (its process or worker exits), reading goes back to
    // Rust: nothing is lost, as every byte read so far was parsed. A terminated
    // worker never gets here: Rust's cleanup hook then drops the connection.
    state.handBack = () => {
      if (state.socket === null) return
      const s = state.socket
      state.socket = null
      s.destroy()
      reader.release()
    }
    process.once('exit', state.handBack)
    jsReaders.add(state)
  }

  /** Drops the JS end of one reader (its connection is gone or replaced). */
  function forget(state) {
    jsReaders.delete(state)
    process.removeListener('exit', state.handBack)
    if (state.socket !== null) {
      const socket = state.socket
      state.socket = null // its 'close' must not report on a connection that is already gone
      socket.destroy()
    }
  }

  /** Drops the readers of connections that are gone. */
  function forgetDeadReaders() {
    for (const state of jsReaders) if (state.reader.dead) forget(state)
  }

  /** Drops every reader (the client was closed). */
  function forgetReaders() {
    for (const state of jsReaders) forget(state)
  }

  function dispatchEvent(event) {
    // A new connection can be adopted; the instance that sends next takes it.
    if (event.type === 'ready') adoptable = useJsReader
    else if (event.type === 'end') forgetDeadReaders()
    for (const listener of listeners) {
      try {
        listener(event)
      } catch (error) {
        process.emitWarning(`@yesgoddess/redis: an onRedisEvent listener threw: ${error && error.message}`)
      }
    }
  }

  /** The scheduled flush, unless a continuation of the pump flushed first. */
  function flushIfScheduled() {
    if (flushScheduled) flush()
  }

  /**
   * A service's requests held back to be batched (the rate limiter's decisions
   * of this turn): `send` enqueues them. They go out at the next flush, or
   * before any other request is enqueued, so the order on the wire is always
   * the order the callers asked in.
   */
  let held = null
  function hold(send) {
    if (held === null) held = [send]
    else held.push(send) // another module instance's (jest, a dev reload)
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flushIfScheduled)
    }
  }

  function sendHeld() {
    const sends = held
    held = null
    for (const send of sends) send()
  }

  function flush() {
    if (held !== null) sendHeld()
    flushScheduled = false
    const meta = outMeta
    const count = outLength
    const text = outText
    const buffers = outBuffers
    outLength = 0
    outText = ''
    outBuffers = []
    if (!attached) {
      channel.attach(wake)
      attached = true
    }
    if (adoptable) {
      adoptable = false
      adoptReaders()
    }
    try {
      channel.submit(meta, count, text, buffers)
    } catch (error) {
      // Only a failure of the boundary itself lands here: fail every request of the batch.
      for (let i = 0; i < count; i += 3 + meta[i + 2]) {
        settle(meta[i], FAILURE_CONNECTION, `submitting to Redis failed: ${error && error.message}`)
      }
      if (pending === 0) keepAlive.unref()
    }
  }

  function reserve(slots) {
    if (outLength + slots > outMeta.length) {
      const bigger = new Int32Array(Math.max(outMeta.length * 2, outLength + slots))
      bigger.set(outMeta.subarray(0, outLength))
      outMeta = bigger
    }
  }

  /** Writes one argument; returns a description of it when it cannot be sent. */
  function writeArgument(value) {
    if (typeof value === 'string') {
      outMeta[outLength++] = value.length
      outText += value
    } else if (typeof value === 'number') {
      const text = String(value)
      outMeta[outLength++] = text.length
      outText += text
    } else if (value instanceof Uint8Array) {
      outMeta[outLength++] = -1 - outBuffers.length
      outBuffers.push(value)
    } else {
      return badArgument(value)
    }
    return null
  }

  /** A command was made since the last close: the configuration is in use. */
  let started = false

  function enqueue(op, first, rest, resolve, reject) {
    if (held !== null) sendHeld()
    if (op !== Op.CLOSE) started = true
    const argc = (first === undefined ? 0 : 1) + rest.length
    reserve(3 + argc)
    const start = outLength
    const textBefore = outText
    const buffersBefore = outBuffers.length
    outLength += 3
    let bad = first === undefined ? null : writeArgument(first)
    for (let i = 0; bad === null && i < rest.length; i++) {
      bad = writeArgument(rest[i])
      if (bad !== null) bad = `argument ${i + 1} is ${bad}`
    }
    if (bad !== null) {
      // Nothing of this request is sent.
      outLength = start
      outText = textBefore
      outBuffers.length = buffersBefore
      const name = typeof first === 'string' ? `${first.toUpperCase()}: ` : ''
      reject(invalid(`${name}${bad}; pass a string, a number or a Buffer`))
      return
    }
    const id = freeIds.length > 0 ? freeIds.pop() : resolvers.length
    resolvers[id] = resolve
    rejecters[id] = reject
    if (pending++ === 0) keepAlive.ref()
    outMeta[start] = id
    outMeta[start + 1] = op
    outMeta[start + 2] = argc
    if (outText.length > FLUSH_TEXT_UNITS) flush()
    else if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flushIfScheduled)
    }
  }

  /** Sends one request; `first` (optional) and `rest` are its arguments; `op` may carry `Flag`s. */
  function request(op, first, rest) {
    return new Promise((resolve, reject) => enqueue(op, first, rest, resolve, reject))
  }

  /** After a close: releases the wake function when nothing is pending or about to be sent. */
  function release() {
    if (pending === 0 && !flushScheduled) started = false
    if (attached && pending === 0 && !flushScheduled) {
      forgetReaders()
      channel.detach()
      attached = false
    }
  }

  /**
   * Per-process state of the services (cache stats, single-flight loads, the
   * limiter's local windows, lock leases): kept here, with the runtime on
   * globalThis, so that a module evaluated again (Next.js dev hot reload,
   * jest.isolateModules) shares it instead of starting a second copy.
   */
  const states = new Map()
  function shared(name, create) {
    let state = states.get(name)
    if (state === undefined) {
      state = create()
      states.set(name, state)
    }
    return state
  }

  return { request, hold, flushNow: flushIfScheduled, release, isStarted: () => started, shared, listeners, native, readerStats }
}

// One runtime per process, kept on globalThis so that a module evaluated again
// (Next.js dev hot reload, jest.isolateModules) reuses it and its channel. The
// Rust client behind it is process-wide in any case.
const RUNTIME_KEY = Symbol.for('@yesgoddess/redis/runtime/v1')
const runtime = globalThis[RUNTIME_KEY] || (globalThis[RUNTIME_KEY] = createRuntime())

module.exports = {
  Op,
  Flag,
  runtime,
  native,
  nativeCall,
  invalid,
  checkName,
  RedisError,
  ReplyError,
  RedisTimeoutError,
  RedisConnectionError,
  RedisAuthError,
  RedisClosedError,
}
