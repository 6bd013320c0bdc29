'use strict'
// The client API of "Configuration and the client" (API.md): configuration,
// the raw escape hatch, status, events and shutdown. All of it talks to the
// one process-wide Rust client through the batched boundary in runtime.js.

const { Op, Flag, runtime, native, nativeCall, invalid } = require('./runtime.js')

const { request } = runtime
const NO_ARGS = []

const OPTION_NAMES = new Set([
  'url',
  'keyPrefix',
  'connectTimeoutMs',
  'commandTimeoutMs',
  'maxRetries',
  'retryBaseDelayMs',
  'retryMaxDelayMs',
  'cluster',
  'natMap',
  'tls',
])
const MS_OPTIONS = ['connectTimeoutMs', 'commandTimeoutMs', 'retryBaseDelayMs', 'retryMaxDelayMs']

/**
 * Configures the process-wide client. Optional; call it before the first
 * command. Once a command has started the client it throws (whatever the
 * options), until `closeRedisConnection()`; then it may be called again.
 */
function configureRedis(options = {}) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid('configureRedis(options): options must be an object')
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw invalid(`configureRedis: unknown option "${name}"`)
  }
  for (const name of MS_OPTIONS) {
    const v = options[name]
    if (v !== undefined && !(Number.isInteger(v) && v > 0 && v <= 0x7fffffff)) {
      throw invalid(`configureRedis: ${name} must be a positive integer number of milliseconds`)
    }
  }
  if (options.maxRetries !== undefined && !(Number.isInteger(options.maxRetries) && options.maxRetries >= 0)) {
    throw invalid('configureRedis: maxRetries must be a non-negative integer')
  }
  for (const name of ['url', 'keyPrefix']) {
    if (options[name] !== undefined && typeof options[name] !== 'string') {
      throw invalid(`configureRedis: ${name} must be a string`)
    }
  }
  if (options.cluster !== undefined && typeof options.cluster !== 'boolean') {
    throw invalid('configureRedis: cluster must be a boolean')
  }
  if (options.natMap !== undefined) {
    const map = options.natMap
    if (map === null || typeof map !== 'object' || Array.isArray(map)) {
      throw invalid("configureRedis: natMap must be an object { 'host:port': { host, port } }")
    }
    for (const [from, to] of Object.entries(map)) {
      if (!/^.+:\d+$/.test(from)) throw invalid(`configureRedis: natMap key "${from}" must be "host:port"`)
      if (to === null || typeof to !== 'object' || typeof to.host !== 'string' || to.host.length === 0) {
        throw invalid(`configureRedis: natMap["${from}"] must be { host, port }`)
      }
      if (!(Number.isInteger(to.port) && to.port > 0 && to.port < 65536)) {
        throw invalid(`configureRedis: natMap["${from}"].port must be a port number`)
      }
    }
  }
  if (options.tls !== undefined && (options.tls === null || typeof options.tls !== 'object')) {
    throw invalid('configureRedis: tls must be an object { caFile?, rejectUnauthorized?, servername? }')
  }
  if (options.tls !== undefined) {
    const types = { caFile: 'string', rejectUnauthorized: 'boolean', servername: 'string' }
    for (const [name, value] of Object.entries(options.tls)) {
      if (!(name in types)) throw invalid(`configureRedis: unknown tls option "${name}"`)
      if (value !== undefined && typeof value !== types[name]) throw invalid(`configureRedis: tls.${name} must be a ${types[name]}`)
    }
  }
  // Resolves (and so validates) the options first: bad input is a TypeError in any state.
  const differs = nativeCall(() => native.configDiffers(options))
  const fresh = !configuredHere
  configuredHere = true
  const { state } = native.connectionStatus()
  if (runtime.isStarted() || (state !== 'idle' && state !== 'closed')) {
    // A module evaluated again (Next.js dev hot reload, jest.isolateModules)
    // that configures what is already in force changes nothing: allowed.
    if (fresh && !differs) return
    throw usageError('configureRedis() must be called before the first command, or after closeRedisConnection()')
  }
  nativeCall(() => native.configure(options))
}

/** Whether this evaluation of the module has called configureRedis already. */
let configuredHere = false

function usageError(message) {
  const error = new Error(message)
  error.code = 'ECONFIGURED'
  return error
}

/** `{ state, reconnects, lastError }` of the process-wide client. */
function getConnectionStatus() {
  const status = native.connectionStatus()
  const out = { state: status.state, reconnects: status.reconnects, lastError: status.lastError ?? null }
  if (status.nodes) out.nodes = status.nodes
  return out
}

/**
 * The addresses of a cluster's masters (once the slot map is loaded, within
 * the command timeout), or `null` on a single server: the fan-out set.
 */
function clusterMasters() {
  return request(Op.MASTERS, undefined, NO_ARGS)
}

/**
 * Subscribes to connection events (`connect`, `ready`, `error`, `reconnecting`,
 * `end`). Returns a function that unsubscribes. A listener never keeps the
 * process alive.
 */
function onRedisEvent(listener) {
  if (typeof listener !== 'function') throw invalid('onRedisEvent(listener): listener must be a function')
  runtime.listeners.add(listener)
  return function unsubscribe() {
    runtime.listeners.delete(listener)
  }
}

/** Waits for the commands in flight, then closes the connection. Idempotent; the next command connects again. */
function closeRedisConnection() {
  return request(Op.CLOSE, undefined, NO_ARGS).then(() => {
    runtime.release()
  })
}

/** Connection options for BullMQ, from the configured URL; `getBullMQOptions()` adds the queue prefix. */
function getBullMQConnection() {
  const c = nativeCall(() => native.bullmqConnection())
  const connection = { host: c.host, port: c.port, db: c.db, maxRetriesPerRequest: null }
  if (c.username != null) connection.username = c.username
  if (c.password != null) connection.password = c.password
  if (c.tls != null) {
    connection.tls = { rejectUnauthorized: c.tls.rejectUnauthorized }
    if (c.tls.ca != null) connection.tls.ca = c.tls.ca
    if (c.tls.servername != null) connection.tls.servername = c.tls.servername
  }
  return connection
}

/**
 * Options for BullMQ's `Queue`, `Worker` and `QueueEvents`:
 * `new Queue('emails', getBullMQOptions())`. `connection` is
 * `getBullMQConnection()`; `prefix` is the key prefix in force (`keyPrefix` /
 * `REDIS_KEY_PREFIX`) followed by `jobs`, so BullMQ's keys live under
 * `<keyPrefix>jobs:` beside this package's keys, and two apps that share one
 * Redis with different key prefixes never share a queue.
 */
function getBullMQOptions() {
  const connection = getBullMQConnection()
  return { connection, prefix: `${nativeCall(() => native.keyPrefix())}jobs` }
}

function checkCommand(command) {
  if (typeof command !== 'string' || command.length === 0) {
    throw invalid('a Redis command name must be a non-empty string')
  }
}

/** Queued commands sent together; `exec()` resolves `[error, reply]` per command, in order. */
class Pipeline {
  constructor() {
    this._commands = []
  }

  /** Queues `command` with its arguments. Returns the pipeline for chaining. */
  call(command, ...args) {
    checkCommand(command)
    this._commands.push({ op: Op.CALL, command, args })
    return this
  }

  /** Like `call`, with bulk replies as Buffers. */
  callBuffer(command, ...args) {
    checkCommand(command)
    this._commands.push({ op: Op.CALL_BUFFER, command, args })
    return this
  }

  /** How many commands are queued. */
  get length() {
    return this._commands.length
  }

  /** Sends every queued command in one round trip; resolves `[[error | null, reply], …]` in order. */
  exec() {
    const commands = this._commands
    this._commands = []
    return Promise.all(
      commands.map(({ op, command, args }) =>
        request(op, command, args).then(
          (reply) => [null, reply],
          (error) => [error, null],
        ),
      ),
    )
  }
}

/** The raw escape hatch onto the process-wide client. */
class RedisClient {
  /** Runs any command: `call('HSET', key, field, value)`. Bulk replies are strings. */
  call(command, ...args) {
    if (typeof command !== 'string' || command.length === 0) {
      return Promise.reject(invalid('a Redis command name must be a non-empty string'))
    }
    return request(Op.CALL, command, args)
  }

  /** Like `call`, with bulk replies as Buffers (binary-safe). */
  callBuffer(command, ...args) {
    if (typeof command !== 'string' || command.length === 0) {
      return Promise.reject(invalid('a Redis command name must be a non-empty string'))
    }
    return request(Op.CALL_BUFFER, command, args)
  }

  /** A pipeline: queue commands, then `exec()`. */
  pipeline() {
    return new Pipeline()
  }

  /** `PING` → `'PONG'`. */
  ping() {
    return request(Op.CALL, 'PING', NO_ARGS)
  }

  /**
   * Iterates the keyspace with SCAN (never KEYS), yielding batches of keys:
   * `for await (const keys of client.scan({ match: 'cache:*', count: 500 }))`.
   * `match` is written without `keyPrefix`, and the keys come back without it.
   */
  scan({ match = '*', count = 100, type } = {}) {
    if (typeof match !== 'string' || match.length === 0) throw invalid('scan: match must be a non-empty string')
    if (!(Number.isInteger(count) && count > 0)) throw invalid('scan: count must be a positive integer')
    if (type !== undefined && typeof type !== 'string') throw invalid('scan: type must be a string')
    const rest = [match, String(count), type ?? '']
    return {
      async *[Symbol.asyncIterator]() {
        const masters = await clusterMasters()
        if (masters === null) {
          let cursor = '0'
          do {
            const [next, keys] = await request(Op.SCAN, cursor, rest)
            cursor = next
            if (keys.length > 0) yield keys
          } while (cursor !== '0')
          return
        }
        // A cluster: every master is scanned, all of them at once; batches
        // come out in the order they arrive. (Replicas hold copies: skipped.)
        const step = (node, cursor) =>
          request(Op.SCAN | Flag.NODE, node, [cursor, ...rest]).then(([next, keys]) => ({ node, next, keys }))
        const running = new Map(masters.map((node) => [node, step(node, '0')]))
        try {
          while (running.size > 0) {
            const { node, next, keys } = await Promise.race(running.values())
            if (next === '0') running.delete(node)
            else running.set(node, step(node, next))
            if (keys.length > 0) yield keys
          }
        } finally {
          // Abandoned early (break, or one node failed): the other steps in
          // flight settle unobserved, never as unhandled rejections.
          for (const promise of running.values()) promise.catch(() => {})
        }
      },
    }
  }
}

// Command sugar (`client.get(key)`, `pipeline.set(key, value)`), named after the
// commands whose keys Rust knows how to prefix.
for (const name of native.knownCommands()) {
  const method = name.toLowerCase()
  if (!(method in RedisClient.prototype)) {
    RedisClient.prototype[method] = function (...args) {
      return request(Op.CALL, name, args)
    }
  }
  if (!(method in Pipeline.prototype)) {
    Pipeline.prototype[method] = function (...args) {
      this._commands.push({ op: Op.CALL, command: name, args })
      return this
    }
  }
}

const CLIENT_KEY = Symbol.for('@yesgoddess/redis/client/v1')
/** The raw client: `call`, `callBuffer`, `pipeline`, `scan`, `ping` and one method per known command. */
function getRedisClient() {
  return globalThis[CLIENT_KEY] || (globalThis[CLIENT_KEY] = new RedisClient())
}

module.exports = {
  configureRedis,
  getConnectionStatus,
  onRedisEvent,
  closeRedisConnection,
  getBullMQConnection,
  getBullMQOptions,
  getRedisClient,
  clusterMasters,
  RedisClient,
  Pipeline,
}
