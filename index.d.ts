// Types of @yesgoddess/redis: the Redis layer of the YesGoddess backend as a
// Rust native addon. Importing never connects; the first command does.

/// <reference types="node" />

// ── Configuration and the client ─────────────────────────────────────────────

/** TLS settings, used with `rediss://` URLs. */
export interface RedisTlsOptions {
  /**
   * A PEM file with the certificate authority (or authorities) to trust instead of the
   * default: the public roots plus the CAs of the file named by `NODE_EXTRA_CA_CERTS`.
   */
  caFile?: string
  /** `false` accepts any server certificate (tests only). Default `true`. */
  rejectUnauthorized?: boolean
  /** The name the server's certificate must carry, sent as SNI. Default: the URL's host. */
  servername?: string
}

/** Options for {@link configureRedis}. Every field is optional. */
export interface RedisOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS. Default `REDIS_URL` or `redis://127.0.0.1:6379`. */
  url?: string
  /** Prepended literally to every key the package sends (as ioredis's `keyPrefix`). Default `REDIS_KEY_PREFIX`. */
  keyPrefix?: string
  /** How long one connection attempt may take, in ms. Default 2000. */
  connectTimeoutMs?: number
  /** Every command settles (reply or error) within this many ms. Default 2000. */
  commandTimeoutMs?: number
  /** Consecutive reconnect attempts before the client waits for the next command to try again. Default: no limit. */
  maxRetries?: number
  /** The first reconnect delay in ms (exponential backoff with jitter from here). Default 50. */
  retryBaseDelayMs?: number
  /** The largest reconnect delay in ms. Default 2000. */
  retryMaxDelayMs?: number
  /**
   * Connect to a Redis Cluster (`REDIS_CLUSTER=true`): `url` names any one node
   * (or `REDIS_CLUSTER_NODES=host:port,…` lists seeds); commands are routed by
   * hash slot, `MOVED`/`ASK` followed within `commandTimeoutMs`. Against a
   * server without cluster support, commands fail at once (`code: 'EUSAGE'`).
   */
  cluster?: boolean
  /**
   * For a cluster behind NAT or Docker: the address a node announces
   * (`'host:port'`) → the address to connect to. Unmapped addresses are used as announced.
   */
  natMap?: Record<string, { host: string; port: number }>
  /** TLS settings for `rediss://`. */
  tls?: RedisTlsOptions
}

/**
 * Configures the process-wide client. Optional; call it before the first
 * command. Once a command has been made it throws (`code: 'ECONFIGURED'`),
 * whatever the options, until {@link closeRedisConnection}; then it may be
 * called again. (A re-evaluated module's first call with the options already
 * in force is a no-op, so Next.js dev hot reload is fine.)
 * @throws TypeError (`code: 'EINVALID'`) for an unknown option or a bad value.
 */
export function configureRedis(options?: RedisOptions): void

/** Where the connection is. */
export type ConnectionState = 'idle' | 'connecting' | 'ready' | 'reconnecting' | 'closed'

/** The client's connection status. */
export interface ConnectionStatus {
  /** `idle` before the first command, `closed` after a close until the next command. */
  state: ConnectionState
  /** Connection attempts after the first one, failed attempts included. */
  reconnects: number
  /** The last connection error, with any password removed; null when none. */
  lastError: string | null
  /** On a cluster: every node of the slot map and this client's connection to it. */
  nodes?: ClusterNodeStatus[]
}

/** A cluster node as {@link getConnectionStatus} reports it. */
export interface ClusterNodeStatus {
  /** `host:port` (after `natMap`). */
  address: string
  /** `master` (serving slots), `replica`, or `master (no slots)`. */
  role: string
  /** This client's connection to it (`idle` when it has none: replicas, until needed). */
  state: ConnectionState
  /** The slot ranges it serves, `[first, last]` inclusive. */
  slots: number[][]
  /** Whether the cluster flags it as failed. */
  failed: boolean
}

/** The process-wide client's connection status. Never connects. */
export function getConnectionStatus(): ConnectionStatus

/** A connection event. */
export interface RedisEvent {
  /** `moved`: a cluster node answered MOVED and the slot map was updated (`node`: the slot's new owner). */
  type: 'connect' | 'ready' | 'error' | 'reconnecting' | 'end' | 'moved'
  /** On a cluster: the node (`host:port`) the event is about. */
  node?: string
  /** With `error`: the message, with any password removed. */
  error?: string
  /** With `reconnecting`: the number of the attempt that failed. */
  attempt?: number
  /** With `reconnecting`: how long until the next attempt. */
  delayMs?: number
}

/**
 * Subscribes to connection events. Returns a function that unsubscribes.
 * A listener never keeps the process alive.
 */
export function onRedisEvent(listener: (event: RedisEvent) => void): () => void

/** Waits for the commands in flight (up to `commandTimeoutMs`), then closes the connection. Idempotent; the next command connects again. */
export function closeRedisConnection(): Promise<void>

/** Connection options in the shape BullMQ (ioredis) takes. */
export interface BullMQConnectionOptions {
  host: string
  port: number
  username?: string
  password?: string
  db: number
  tls?: { ca?: string; rejectUnauthorized: boolean; servername?: string }
  /** BullMQ workers require `null`. */
  maxRetriesPerRequest: null
}

/** The parsed connection options for BullMQ (from the configured URL). `getBullMQOptions()` adds the queue prefix. */
export function getBullMQConnection(): BullMQConnectionOptions

/** What `getBullMQOptions()` returns: the part of BullMQ's `QueueOptions` / `WorkerOptions` that says where the queues live. */
export interface BullMQOptions {
  /** `getBullMQConnection()`. */
  connection: BullMQConnectionOptions
  /** The key prefix in force (`keyPrefix` / `REDIS_KEY_PREFIX`) followed by `jobs`: `'jobs'`, or e.g. `'app1:jobs'`. */
  prefix: string
}

/**
 * Options for BullMQ's `Queue`, `Worker` and `QueueEvents`:
 * `new Queue('emails', getBullMQOptions())`, `new Worker('emails', processor, { ...getBullMQOptions(), concurrency: 10 })`.
 * BullMQ's keys then live under `<keyPrefix>jobs:`, so apps that share one Redis with different key prefixes never share a queue.
 * BullMQ needs `ioredis` installed beside it.
 */
export function getBullMQOptions(): BullMQOptions

// ── The raw client ───────────────────────────────────────────────────────────

/** An argument of a command: strings and numbers are sent as text, Buffers as bytes. */
export type RedisArgument = string | number | Buffer | Uint8Array

/** A reply as ioredis gives it: bulk strings as strings (or Buffers with `callBuffer`), integers as numbers. */
export type RedisReply = string | number | null | Buffer | RedisReply[]

/** Commands whose keys the package knows (and so can prefix with `keyPrefix`), as methods. */
export type RedisCommandName =
  | 'ping'
  | 'echo'
  | 'info'
  | 'time'
  | 'dbsize'
  | 'client'
  | 'config'
  | 'script'
  | 'function'
  | 'flushdb'
  | 'flushall'
  | 'command'
  | 'slowlog'
  | 'latency'
  | 'publish'
  | 'scan'
  | 'randomkey'
  | 'lastsave'
  | 'role'
  | 'lolwut'
  | 'wait'
  | 'acl'
  | 'module'
  | 'save'
  | 'bgsave'
  | 'bgrewriteaof'
  | 'debug'
  | 'cluster'
  | 'readonly'
  | 'readwrite'
  | 'pubsub'
  | 'del'
  | 'unlink'
  | 'exists'
  | 'mget'
  | 'touch'
  | 'pfcount'
  | 'pfmerge'
  | 'sinter'
  | 'sunion'
  | 'sdiff'
  | 'sinterstore'
  | 'sunionstore'
  | 'sdiffstore'
  | 'bitop'
  | 'blpop'
  | 'brpop'
  | 'bzpopmin'
  | 'bzpopmax'
  | 'mset'
  | 'msetnx'
  | 'rename'
  | 'renamenx'
  | 'rpoplpush'
  | 'brpoplpush'
  | 'smove'
  | 'lmove'
  | 'blmove'
  | 'copy'
  | 'geosearchstore'
  | 'zrangestore'
  | 'eval'
  | 'evalsha'
  | 'eval_ro'
  | 'evalsha_ro'
  | 'fcall'
  | 'fcall_ro'
  | 'zunion'
  | 'zinter'
  | 'zdiff'
  | 'zintercard'
  | 'sintercard'
  | 'lmpop'
  | 'zmpop'
  | 'blmpop'
  | 'bzmpop'
  | 'zunionstore'
  | 'zinterstore'
  | 'zdiffstore'
  | 'xread'
  | 'xreadgroup'
  | 'object'
  | 'memory'
  | 'xgroup'
  | 'xinfo'
  | 'get'
  | 'set'
  | 'setnx'
  | 'setex'
  | 'psetex'
  | 'append'
  | 'strlen'
  | 'incr'
  | 'decr'
  | 'incrby'
  | 'decrby'
  | 'incrbyfloat'
  | 'getset'
  | 'getdel'
  | 'getex'
  | 'getrange'
  | 'setrange'
  | 'getbit'
  | 'setbit'
  | 'bitcount'
  | 'bitpos'
  | 'bitfield'
  | 'bitfield_ro'
  | 'expire'
  | 'pexpire'
  | 'expireat'
  | 'pexpireat'
  | 'expiretime'
  | 'pexpiretime'
  | 'ttl'
  | 'pttl'
  | 'persist'
  | 'type'
  | 'dump'
  | 'restore'
  | 'hset'
  | 'hsetnx'
  | 'hget'
  | 'hmset'
  | 'hmget'
  | 'hdel'
  | 'hlen'
  | 'hkeys'
  | 'hvals'
  | 'hgetall'
  | 'hexists'
  | 'hincrby'
  | 'hincrbyfloat'
  | 'hstrlen'
  | 'hscan'
  | 'hrandfield'
  | 'lpush'
  | 'rpush'
  | 'lpushx'
  | 'rpushx'
  | 'lpop'
  | 'rpop'
  | 'llen'
  | 'lrange'
  | 'lindex'
  | 'lset'
  | 'lrem'
  | 'ltrim'
  | 'linsert'
  | 'lpos'
  | 'sadd'
  | 'srem'
  | 'smembers'
  | 'sismember'
  | 'smismember'
  | 'scard'
  | 'spop'
  | 'srandmember'
  | 'sscan'
  | 'zadd'
  | 'zrem'
  | 'zscore'
  | 'zmscore'
  | 'zincrby'
  | 'zcard'
  | 'zcount'
  | 'zrange'
  | 'zrangebyscore'
  | 'zrevrange'
  | 'zrevrangebyscore'
  | 'zrank'
  | 'zrevrank'
  | 'zremrangebyrank'
  | 'zremrangebyscore'
  | 'zremrangebylex'
  | 'zrangebylex'
  | 'zrevrangebylex'
  | 'zlexcount'
  | 'zpopmin'
  | 'zpopmax'
  | 'zrandmember'
  | 'zscan'
  | 'pfadd'
  | 'xadd'
  | 'xlen'
  | 'xrange'
  | 'xrevrange'
  | 'xdel'
  | 'xtrim'
  | 'xack'
  | 'xclaim'
  | 'xautoclaim'
  | 'xpending'
  | 'xsetid'
  | 'geoadd'
  | 'geodist'
  | 'geohash'
  | 'geopos'
  | 'geosearch'
  | 'georadius'
  | 'georadiusbymember'
  | 'georadius_ro'
  | 'georadiusbymember_ro'
  | 'sort'
  | 'sort_ro'
  | 'lcs'

/** One method per known command: `client.get(key)`, `client.hset(key, field, value)`, … */
export type RedisCommandMethods<R> = {
  [C in RedisCommandName]: (...args: RedisArgument[]) => R
}

/** Queued commands sent together in one round trip (not a transaction). */
export interface RedisPipeline extends RedisCommandMethods<RedisPipeline> {
  /** Queues `command` with its arguments. */
  call(command: string, ...args: RedisArgument[]): RedisPipeline
  /** Queues `command`; its bulk replies come back as Buffers. */
  callBuffer(command: string, ...args: RedisArgument[]): RedisPipeline
  /** How many commands are queued. */
  readonly length: number
  /** Sends every queued command; resolves `[error | null, reply]` per command, in order. */
  exec(): Promise<Array<[Error | null, RedisReply]>>
}

/** Options of {@link RedisClient.scan}. */
export interface ScanOptions {
  /** A glob pattern, written without `keyPrefix`. Default `*`. */
  match?: string
  /** How many keys to look at per SCAN call. Default 100. */
  count?: number
  /** Only keys of this type (`string`, `hash`, …). */
  type?: string
}

/** The raw escape hatch onto the process-wide client. */
export interface RedisClient extends Omit<RedisCommandMethods<Promise<any>>, 'scan' | 'ping'> {
  /** Runs any command: `call('HSET', key, field, value)`. Bulk replies are strings. */
  call<T = RedisReply>(command: string, ...args: RedisArgument[]): Promise<T>
  /** Like `call`, with bulk replies as Buffers (binary-safe). */
  callBuffer<T = RedisReply>(command: string, ...args: RedisArgument[]): Promise<T>
  /** A pipeline: queue commands, then `exec()`. */
  pipeline(): RedisPipeline
  /** `PING` → `'PONG'`. */
  ping(): Promise<string>
  /** `GET key`. */
  get(key: RedisArgument): Promise<string | null>
  /** `SET key value [EX seconds | …]`. */
  set(key: RedisArgument, value: RedisArgument, ...options: RedisArgument[]): Promise<'OK' | string | null>
  /** `DEL key…`: how many keys were removed. */
  del(...keys: RedisArgument[]): Promise<number>
  /**
   * Iterates the keyspace with SCAN (never KEYS), yielding batches of keys:
   * `for await (const keys of client.scan({ match: 'cache:*' }))`. Keys come back without `keyPrefix`.
   */
  scan(options?: ScanOptions): AsyncIterable<string[]>
}

/** The raw client of the process-wide connection. */
export function getRedisClient(): RedisClient

// ── Key conventions ──────────────────────────────────────────────────────────

/**
 * The Redis Cluster hash slot (0–16383) of `key` as sent (with `keyPrefix`; a
 * `{hash tag}` decides). Keys in one slot can share a multi-key command or script.
 */
export declare function keySlot(key: string): number

/** An id in a key: a non-empty string or a safe integer (`42` and `'42'` give the same key). Anything else is a `TypeError`. */
export type KeyId = string | number

/**
 * Key builders for the eight prefixes of the key scheme. An id is data, never a
 * pattern: `%`, `:`, `*`, `?`, `[`, `]`, `\`, `{`, `}` and `^` in it are written as `%XX`.
 * Keys are written without `keyPrefix`; the package adds it when sending.
 */
export declare const RedisKeys: {
  /** `cache:*` — cached entities; default TTL 1 hour. */
  readonly cache: {
    /** `cache:user:<id>` */ user(id: KeyId): string
    /** `cache:creator:<id>` */ creator(id: KeyId): string
    /** `cache:brand:<id>` */ brand(id: KeyId): string
    /** `cache:project:<id>` */ project(id: KeyId): string
    /** `cache:asset:<id>` */ asset(id: KeyId): string
    /** `cache:license:<id>` */ license(id: KeyId): string
    /** `cache:creator-assets:<creatorId>` — a creator's asset list. */ creatorAssets(id: KeyId): string
    /** `cache:project-assets:<projectId>` — a project's asset list. */ projectAssets(id: KeyId): string
    /** `cache:brand-licenses:<brandId>` — a brand's license list. */ brandLicenses(id: KeyId): string
    /** `cache:asset-licenses:<assetId>` — an asset's license list. */ assetLicenses(id: KeyId): string
  }
  /** `session:*` — temporary session data; 15 minutes to 24 hours. */
  readonly session: {
    /** `session:upload:<id>` (15 min) */ upload(id: KeyId): string
    /** `session:auth:<id>` (24 h) */ auth(id: KeyId): string
    /** `session:verification:<token>` (24 h) */ verification(token: KeyId): string
  }
  /** `jobs:*` — BullMQ queues (`getBullMQOptions()` puts BullMQ there). */
  readonly jobs: {
    /** `jobs:<name>` */ queue(name: KeyId): string
  }
  /** `ratelimit:*` — rate-limit windows; 1 hour. */
  readonly ratelimit: {
    /** `ratelimit:<action>:<identifier>` */ key(action: KeyId, identifier: KeyId): string
  }
  /** `idempotency:*` — duplicate-operation guards; 24 hours. */
  readonly idempotency: {
    /** `idempotency:<operation>` */ key(operation: KeyId): string
  }
  /** `lock:*` — distributed locks; 5 minutes. */
  readonly lock: {
    /** `lock:royalty-run:<runId>` */ royaltyRun(runId: KeyId): string
    /** `lock:payout:<id>` */ payout(id: KeyId): string
    /** `lock:resource:<name>` */ resource(name: KeyId): string
  }
  /** `counter:*` — metrics and analytics; no TTL. */
  readonly counter: {
    /** `counter:<name>` or `counter:<name>:<id>` */ metric(name: KeyId, id?: KeyId | null): string
  }
  /** `flag:*` — feature flags and system state; no TTL. */
  readonly flag: {
    /** `flag:feature:<name>` */ feature(name: KeyId): string
    /** `flag:maintenance` */ maintenance(): string
  }
}

/** TTLs in seconds, per builder and per prefix (`default`). `jobs`, `counter` and `flag` keys have none. */
export declare const RedisTTL: {
  readonly cache: {
    readonly user: number
    readonly creator: number
    readonly brand: number
    readonly project: number
    readonly asset: number
    readonly license: number
    readonly creatorAssets: number
    readonly projectAssets: number
    readonly brandLicenses: number
    readonly assetLicenses: number
    /** 3600 */ readonly default: number
  }
  readonly session: {
    /** 900 */ readonly upload: number
    /** 86400 */ readonly auth: number
    /** 86400 */ readonly verification: number
    /** 900 (the shortest) */ readonly default: number
  }
  readonly ratelimit: { readonly key: number; /** 3600 */ readonly default: number }
  readonly idempotency: { readonly key: number; /** 86400 */ readonly default: number }
  readonly lock: {
    readonly royaltyRun: number
    readonly payout: number
    readonly resource: number
    /** 300 */ readonly default: number
  }
}

// ── cacheService ─────────────────────────────────────────────────────────────

/** This process's cache counts. */
export interface CacheStats {
  hits: number
  misses: number
  /** hits / (hits + misses), a fraction from 0 to 1 (0 before any lookup). */
  hitRate: number
  sets: number
  deletes: number
  errors: number
}

/**
 * The JSON cache. A write without `ttlSeconds` takes the default TTL of its key's
 * prefix (`RedisTTL.<prefix>.default`; `counter:`, `flag:` and `jobs:` keys
 * persist; keys of no known prefix get the `cache:` default); `0` means no expiry.
 */
export interface CacheService {
  /**
   * The cached value, JSON-decoded, or null. Redis errors and non-JSON values read as a
   * miss (counted as an error); while a lost connection is re-made it answers a miss at once.
   * Every call reads Redis and returns a new object; a hot key's unchanged text is not
   * parsed again but copied from a kept decoded value (docs/cache.md).
   */
  get<T = unknown>(key: string): Promise<T | null>
  /**
   * Stores `value` as JSON. A cycle, a BigInt, a function or `undefined` is a `TypeError`
   * before anything is sent; so is a `ttlSeconds` that is not whole seconds from 0 to one
   * year (31,536,000).
   */
  set(key: string, value: unknown, ttlSeconds?: number): Promise<true>
  /** Removes one key or several (UNLINK); resolves how many existed. */
  delete(keyOrKeys: string | string[]): Promise<number>
  /** Whether the key exists. */
  exists(key: string): Promise<boolean>
  /** Seconds to expiry: -1 without expiry, -2 when missing. */
  ttl(key: string): Promise<number>
  /** The values in order (null for misses), in one round trip. */
  mget<T = unknown>(keys: string[]): Promise<Array<T | null>>
  /** Stores several values in one round trip. */
  mset(entries: Array<[string, unknown]> | Record<string, unknown>, ttlSeconds?: number): Promise<true>
  /** Cache-aside with single flight in this process; `loader` runs at most once per missing key at a time. */
  getOrSet<T>(key: string, loader: () => T | Promise<T>, ttlSeconds?: number): Promise<T>
  /** SCAN + UNLINK in batches (never KEYS); resolves how many keys went. */
  invalidatePattern(pattern: string): Promise<number>
  /** `cache:user:<id>` and `cache:user:<id>:…`. */
  invalidateUser(id: KeyId): Promise<number>
  /** `cache:creator:<id>`, `cache:creator:<id>:…` and `cache:creator-assets:<id>`. */
  invalidateCreator(id: KeyId): Promise<number>
  /** `cache:brand:<id>`, `cache:brand:<id>:…` and `cache:brand-licenses:<id>`. */
  invalidateBrand(id: KeyId): Promise<number>
  /** `cache:project:<id>`, `cache:project:<id>:…` and `cache:project-assets:<id>`. */
  invalidateProject(id: KeyId): Promise<number>
  /** `cache:asset:<id>`, `cache:asset:<id>:…` and `cache:asset-licenses:<id>`. */
  invalidateAsset(id: KeyId): Promise<number>
  /** This process's counts. */
  getStats(): CacheStats
  /** Sets every count back to 0. */
  resetStats(): void
}

/** The JSON cache of the seed's `cache.service.ts`. */
export declare const cacheService: CacheService

// ── rateLimiter ──────────────────────────────────────────────────────────────

/** A limit: at most `limit` requests in any `windowSeconds`. */
export interface RateLimitRule {
  limit: number
  windowSeconds: number
}

/** The seed's actions and their limits (mutable at start-up). */
export declare const RateLimitConfig: {
  /** 100 requests a minute. */
  api: RateLimitRule
  /** 20 uploads an hour. */
  upload: RateLimitRule
  /** 30 messages a minute. */
  message: RateLimitRule
  /** 5 attempts in 15 minutes; fails over to an in-process window (`'local'`). */
  login: RateLimitRule
  /** 5 exports an hour. */
  export: RateLimitRule
}

/** The answer of the limiter. */
export interface RateLimitResult {
  allowed: boolean
  limit: number
  /** Slots left in the window after this request (a request of cost c takes c). */
  remaining: number
  /**
   * On the Redis server's clock: when allowed, when the oldest counted request
   * leaves the window; when denied, when the request's cost would fit (now + retryAfterMs).
   */
  resetAt: Date
  /** 0 when allowed; else milliseconds until `cost` slots are free (a request of that cost would be allowed). */
  retryAfterMs: number
  /** True when Redis could not answer and the action's failure policy did. */
  degraded: boolean
  /** True when this process's deny cache answered (a denial remembered until its retry time; no round trip). */
  cached: boolean
  /** The action (the policy name in the RateLimit headers). */
  action: string
  /** The window the decision used. */
  windowSeconds: number
}

/** The options form of checkLimit, getStatus and blockUntilReady. */
export interface RateLimitOptions {
  /** Requests (slots) per window; default `RateLimitConfig[action].limit`. */
  limit?: number
  /** The window in seconds; default `RateLimitConfig[action].windowSeconds`. */
  windowSeconds?: number
  /**
   * How many slots the request needs and takes (a positive safe integer, default 1):
   * allowed only when `cost` slots are free; a denied request takes none; a cost
   * above the limit is always denied.
   */
  cost?: number
}

/** What an action does while Redis cannot answer. */
export type RateLimitFailurePolicy = 'open' | 'closed' | 'local'

/** An exact sliding window on the Redis server's clock: each decision atomic in one Lua script (one tick's decisions share a script call). */
export interface RateLimiter {
  /**
   * Counts one request of `identifier` for `action` when the window has room.
   * `limit`/`windowSeconds` default to `RateLimitConfig[action]` (required for other actions).
   * Never rejects for a Redis failure: the failure policy answers, with `degraded: true`.
   */
  checkLimit(identifier: string | number, action: string, limit?: number, windowSeconds?: number): Promise<RateLimitResult>
  /**
   * The options form: a request of `cost` slots, allowed only when that many are free
   * (then it takes all of them; a denied request takes none). A denial is remembered in
   * this process until its retry time (`cached: true` answers, no round trip).
   */
  checkLimit(identifier: string | number, action: string, options: RateLimitOptions): Promise<RateLimitResult>
  /** What checkLimit would answer, without counting a request. */
  getStatus(identifier: string | number, action: string, limit?: number, windowSeconds?: number): Promise<RateLimitResult>
  /** What checkLimit would answer for a request of `options.cost`, without counting it. */
  getStatus(identifier: string | number, action: string, options: RateLimitOptions): Promise<RateLimitResult>
  /**
   * Waits until a request is allowed, then counts it; resolves that result, or the last
   * denial (`allowed: false`) when `timeoutMs` runs out first. It sleeps for the
   * `retryAfterMs` Redis gave between tries (never polls faster). A cost above the
   * limit can never fit: its denial resolves at once.
   */
  blockUntilReady(identifier: string | number, action: string, timeoutMs: number, options?: RateLimitOptions): Promise<RateLimitResult>
  /** Clears the window (and this process's cached denial of it); resolves whether there was one in Redis. */
  reset(identifier: string | number, action: string): Promise<boolean>
  /**
   * `'open'` (every action's default: allow), `'closed'` (deny) or `'local'` (an
   * in-process window; recommended for `login`).
   */
  setFailurePolicy(action: string, policy: RateLimitFailurePolicy): void
  /** The failure policy in force for `action`. */
  getFailurePolicy(action: string): RateLimitFailurePolicy
}

/** The sliding-window rate limiter of the seed's `rate-limiter.ts`. */
export declare const rateLimiter: RateLimiter

/** Settings of the rate limiter in this process. */
export interface RateLimiterSettings {
  /**
   * Remember denials and answer them without a round trip until their retry time
   * (for the same or a higher cost). Default true; false also forgets what it held.
   */
  denyCache?: boolean
}

/** Configures the rate limiter of this process (`{ denyCache: false }` turns the local deny cache off). */
export declare function configureRateLimiter(options: RateLimiterSettings): void

/** The IETF `RateLimit-Policy` and `RateLimit` fields for a result, and `Retry-After` (seconds) on a denial. */
export declare function rateLimitHeaders(result: RateLimitResult): Record<string, string>

// ── Locks ────────────────────────────────────────────────────────────────────

/** A held lock. With `await using`, it is released at the end of the block. */
export declare class Lock {
  /** The lock's key (without keyPrefix). */
  readonly key: string
  /** 128 random bits (hex) that prove the lock is ours. */
  readonly token: string
  /** Grows with every acquisition of this key, across processes: pass it to stores that must refuse stale holders. */
  readonly fencingToken: number
  /** When the lease ends unless extended. */
  expiresAt: Date
  [Symbol.asyncDispose](): Promise<boolean>
}

export interface AcquireLockOptions {
  /** More attempts after the first (default 0). */
  retries?: number
  /** About this long between attempts, with ±50 % jitter (default 100). */
  retryDelayMs?: number
}

export interface WithLockOptions {
  /** How long to wait for the lock before rejecting with LockNotAcquiredError (default 0: one attempt). */
  waitMs?: number
  /** About this long between attempts while waiting, with jitter (default 50). */
  retryDelayMs?: number
}

/** What `withLock` hands to `fn`. */
export interface LockContext {
  /** Aborts (with a LockLostError) if the lock is lost while `fn` runs. A getter of the context's class (made on first read): destructure or read it. */
  readonly signal: AbortSignal
  /** The acquisition's fencing token. */
  fencingToken: number
}

/**
 * Takes the lock for `ttlSeconds` (whole seconds, 1 to 86,400; default 300); null when it
 * is held by someone else.
 */
export declare function acquireLock(key: string, ttlSeconds?: number, options?: AcquireLockOptions): Promise<Lock | null>
/** Releases the lock if it is still ours (compare-and-delete); false when it was not. */
export declare function releaseLock(lock: Lock): Promise<boolean>
/** Renews the lease to `ttlSeconds` from now if it is still ours (compare-and-expire); false when it was not. */
export declare function extendLock(lock: Lock, ttlSeconds: number): Promise<boolean>
/**
 * Runs `fn` holding the lock and releases it whether `fn` resolves or throws.
 * The lease is renewed while `fn` runs; if it is lost anyway, `signal` aborts and
 * withLock rejects with a LockLostError. Rejects with LockNotAcquiredError when the
 * lock cannot be had within `options.waitMs`.
 */
export declare function withLock<T>(
  key: string,
  fn: (context: LockContext) => T | Promise<T>,
  ttlSeconds?: number,
  options?: WithLockOptions,
): Promise<T>

/** The lock is held by someone else (code `ELOCKED`). */
export declare class LockNotAcquiredError extends RedisError {
  readonly key: string
}
/** A lock that was ours was lost while held (code `ELOCKLOST`). `result` holds what `fn` returned, if it did. */
export declare class LockLostError extends RedisError {
  readonly key: string
  result?: unknown
}

// ── Idempotency: the seed's `idempotency:` prefix ────────────────────────────

/** Options of {@link withIdempotency}. */
export interface IdempotencyOptions {
  /** How long the completed result is kept and replayed, in seconds (default `RedisTTL.idempotency.default`, 24 h; at most one year). */
  ttlSeconds?: number
  /**
   * How long an unfinished claim holds, in seconds (default 60, at most 24 h). Renewed every
   * third of it while `fn` runs, so a crashed process frees the key after at most this long.
   */
  leaseSeconds?: number
  /**
   * What the call is about (e.g. a hash of the request body): a later call with the same key and
   * another fingerprint (or none where there was one) rejects with {@link IdempotencyMismatchError}.
   */
  fingerprint?: string
  /**
   * How long a call that finds the key in progress waits for the first call's result, in ms
   * (default 0: it rejects at once with {@link IdempotencyInProgressError}).
   */
  waitMs?: number
}

/** What {@link withIdempotency} hands to `fn`. */
export interface IdempotencyContext {
  /** Aborts if the claim is lost while `fn` runs (its lease ran out while Redis was away, or the key was taken). A getter of the context's class (made on first read). */
  readonly signal: AbortSignal
}

/**
 * Runs `fn()` at most once per `key` (stored as `RedisKeys.idempotency.key(key)`) within
 * `ttlSeconds`, and resolves its result to every later call with the key without running it
 * again. The first call resolves what `fn` resolved; later calls resolve its JSON form (a
 * `Date` comes back as its ISO string; `undefined` as `null`). One atomic command claims the
 * key (`SET … NX PX … GET`, Redis ≥ 7.0). When `fn` throws, nothing is stored, the claim is
 * released and the error propagates. A result JSON cannot represent is a `TypeError`.
 */
export declare function withIdempotency<T>(
  key: KeyId,
  fn: (context: IdempotencyContext) => T | Promise<T>,
  options?: IdempotencyOptions,
): Promise<T>

/** What {@link getIdempotencyRecord} resolves. */
export interface IdempotencyRecord<T = unknown> {
  state: 'in-progress' | 'completed'
  fingerprint: string | null
  /** When the claim was made (the claiming process's clock). */
  createdAt: Date
  /** When `fn` finished; null while in progress. */
  completedAt: Date | null
  /** The stored result (JSON); null while in progress. */
  result: T | null
}

/** The record of `key`, or null when there is none (never claimed, expired, or released after a throw). */
export declare function getIdempotencyRecord<T = unknown>(key: KeyId): Promise<IdempotencyRecord<T> | null>

/** Options of {@link idempotentRoute}. */
export interface IdempotentRouteOptions<R extends Request = Request> {
  /** The request header holding the key (default `Idempotency-Key`). */
  header?: string
  /** Scopes the key, e.g. by user id (default: none). Method and path always scope it. */
  scope?: (request: R) => string | number | null | undefined | Promise<string | number | null | undefined>
  /** Answer 400 to a request without the header (default false: the handler runs as usual). */
  required?: boolean
  /** How long a stored response is replayed, in seconds (default 24 h). */
  ttlSeconds?: number
  /** The claim's lease while the handler runs, in seconds (default 60). */
  leaseSeconds?: number
  /** How long a repeat waits for the first request before its 409, in ms (default 0). */
  waitMs?: number
}

/**
 * Wraps a Next.js App Router handler with the `Idempotency-Key` header
 * (draft-ietf-httpapi-idempotency-key-header): the first request runs the handler and its
 * 2xx or 4xx response (status, body, headers minus `Set-Cookie`) is stored; a repeat gets it
 * replayed with `Idempotent-Replayed: true`; a repeat while the first runs gets 409 with
 * `Retry-After: 1`; the same key with another body gets 422; no header runs the handler as
 * usual unless `required` (400). A 5xx or a thrown error releases the key. The fingerprint is
 * a SHA-256 of method, path (with the query) and body.
 */
export declare function idempotentRoute<R extends Request = Request, C = any>(
  handler: (request: R, context: C) => Response | Promise<Response>,
  options?: IdempotentRouteOptions<R>,
): (request: R, context: C) => Promise<Response>

/** Another call holds the key and has not finished (within `waitMs`). */
export declare class IdempotencyInProgressError extends RedisError {
  readonly key: string
  readonly code: 'IDEMPOTENCY_IN_PROGRESS'
}
/** The key was used before with another fingerprint. */
export declare class IdempotencyMismatchError extends RedisError {
  readonly key: string
  readonly code: 'IDEMPOTENCY_MISMATCH'
}

// ── Sessions: the seed's `session:` prefix ───────────────────────────────────

/** The seed's session kinds, each with its key builder and TTL (`RedisTTL.session[kind]`). */
export type SessionKind = 'upload' | 'auth' | 'verification'

/** Session storage: one command per operation. */
export interface SessionStore {
  /**
   * Stores `data` (JSON) under `RedisKeys.session[kind](id)` with a fresh id of 128 random bits
   * (22 URL-safe characters) and `RedisTTL.session[kind]` unless `ttlSeconds` is given.
   */
  create<T>(kind: SessionKind, data: T, options?: { ttlSeconds?: number }): Promise<{ id: string; expiresAt: Date }>
  /** The data, or null when missing or expired. */
  get<T = unknown>(kind: SessionKind, id: string): Promise<T | null>
  /** Sliding expiry: the data with its TTL renewed to `ttlSeconds` (default: the kind's) in one `GETEX`, or null. */
  touch<T = unknown>(kind: SessionKind, id: string, ttlSeconds?: number): Promise<T | null>
  /** The data, deleted in the same atomic command (`GETDEL`), or null: it works exactly once. */
  consume<T = unknown>(kind: SessionKind, id: string): Promise<T | null>
  /** Deletes the session; resolves whether it existed. */
  destroy(kind: SessionKind, id: string): Promise<boolean>
}

/** The seed's "session storage" (upload, auth and verification sessions). */
export declare const sessionStore: SessionStore

// ── Feature flags and maintenance mode: the seed's `flag:` prefix ────────────

/** The maintenance switch. */
export interface MaintenanceState {
  on: boolean
  /** The message given when it was switched on, or null. */
  message: string | null
  /** When it was switched on; null when off. */
  since: Date | null
}

/**
 * A route handler wrapper: while maintenance mode is on it answers 503 with `Retry-After` (60 s)
 * and `{ error, maintenance: true, message, since }` as JSON; else it calls the handler.
 */
export declare function maintenanceRoute<R extends Request = Request, C = any>(
  handler: (request: R, context: C) => Response | Promise<Response>,
): (request: R, context: C) => Promise<Response>

/** Feature flags read through a per-process cache. */
export interface FeatureFlags {
  /**
   * Whether `RedisKeys.flag.feature(name)` is on; `options.default` (false) when it is not set.
   * One Redis read per flag per `cacheMs` however many callers ask (concurrent misses share it).
   * While Redis is away: the last known value, else the default; never rejects for a Redis failure.
   */
  isEnabled(name: KeyId, options?: { default?: boolean }): Promise<boolean>
  /** Turns the flag on or off (persisting, no TTL); this process sees the change at once. */
  setFlag(name: KeyId, enabled: boolean): Promise<void>
  /** Every flag that is set, `{ [name]: boolean }`, listed by SCAN (never KEYS). */
  getFlags(): Promise<Record<string, boolean>>
  /** Whether maintenance mode is on (through the same cache). */
  isMaintenanceMode(): Promise<boolean>
  /** Switches maintenance mode (persisting), with an optional message; this process sees it at once. */
  setMaintenanceMode(on: boolean, options?: { message?: string }): Promise<void>
  /** The maintenance switch, `{ on, message, since }` (through the same cache). */
  getMaintenance(): Promise<MaintenanceState>
  /** The same function as the root export {@link maintenanceRoute}. */
  maintenanceRoute: typeof maintenanceRoute
}

/** Feature flags and maintenance mode. */
export declare const featureFlags: FeatureFlags

/** Sets the flag cache's period: `cacheMs` (default 1000) ms; 0 reads on every call. Drops what the cache holds. */
export declare function configureFeatureFlags(options: { cacheMs?: number }): void

// ── Counters: the seed's `counter:` prefix ───────────────────────────────────

/** One per-minute bucket. */
export interface CounterPoint {
  /** The start of the minute (on the Redis server's clock). */
  at: Date
  count: number
}

/** Options of {@link Counters.record}. */
export interface CounterRecordOptions {
  /** The minute to count in (default: now on the Redis server's clock); within the last 25 h. */
  at?: Date
  /** How much to add, a safe integer (default 1). */
  by?: number
}

/** Counters for metrics and analytics. */
export interface Counters {
  /** Adds `by` (a safe integer, default 1) to `RedisKeys.counter.metric(name, id)` (INCRBY; persists); resolves the new value. */
  increment(name: KeyId, id?: KeyId | null, by?: number): Promise<number>
  /** The value (0 when missing). */
  get(name: KeyId, id?: KeyId | null): Promise<number>
  /** The values of several counters in one round trip (MGET), 0 for a missing one. */
  getMany(list: ReadonlyArray<readonly [name: KeyId, id?: KeyId | null]>): Promise<number[]>
  /** Deletes the counter (GETDEL); resolves the value it had (0 when missing). */
  reset(name: KeyId, id?: KeyId | null): Promise<number>
  /** Adds to the per-minute bucket (kept 25 h) of `at` or of the server's current minute; resolves the bucket's count. */
  record(name: KeyId, id?: KeyId | null, options?: CounterRecordOptions): Promise<number>
  record(name: KeyId, options: CounterRecordOptions): Promise<number>
  /**
   * The last `minutes` (default 60, 1 to 1500) per-minute buckets on the Redis server's clock,
   * oldest first and the current minute last, zeros included, in one round trip.
   */
  series(name: KeyId, id?: KeyId | null, options?: { minutes?: number }): Promise<CounterPoint[]>
  series(name: KeyId, options: { minutes?: number }): Promise<CounterPoint[]>
}

/** The seed's counters ("use Redis counters for real-time metrics"). */
export declare const counters: Counters

// ── Monitoring ───────────────────────────────────────────────────────────────

/** The answer of a health probe. */
export interface RedisHealth {
  healthy: boolean
  /** Round trip of the PING in milliseconds. */
  latencyMs: number
  /** The connection state (`getConnectionStatus().state`). */
  status: ConnectionState
  /** Why it is unhealthy (no password in it). */
  error?: string
  /** On a cluster: `cluster_state` and every master's answer. */
  cluster?: { state: string; masters: Array<{ address: string; healthy: boolean; error?: string }> }
}

/** An alert computed from the seed's thresholds. */
export interface RedisAlert {
  name: 'lowCacheHitRate' | 'lowServerHitRate' | 'highMemory' | 'highLatency' | 'highErrorRate' | 'connectedClientsGrowing'
  severity: 'warning'
  message: string
  value: number
  threshold: number | null
}

/** Keys per prefix of the conventions, from SCAN. */
export interface KeyDistribution {
  cache: number
  session: number
  jobs: number
  ratelimit: number
  idempotency: number
  lock: number
  counter: number
  flag: number
  /** Keys of no known prefix. */
  other: number
  /** All keys (the database size when the scan was capped). */
  total: number
  /** Keys the scan looked at. */
  scanned: number
  /** True when every key was looked at; false when the counts are scaled up from a capped scan. */
  exact: boolean
}

/** What getRedisMetrics resolves. Rates are fractions from 0 to 1; percentages are named …Percent. */
export interface RedisMetrics {
  timestamp: string
  memory: {
    usedBytes: number
    usedHuman: string
    peakBytes: number
    fragmentationRatio: number
    /** 0 means no limit. */
    maxmemoryBytes: number
    /** Of maxmemory, or of the machine's memory when there is no maxmemory. */
    usagePercent: number | null
    usageOf: 'maxmemory' | 'system' | null
    evictionPolicy: string
  }
  stats: {
    opsPerSec: number
    /** Server keyspace hits / (hits + misses). */
    hitRate: number
    keyspaceHits: number
    keyspaceMisses: number
    evictedKeys: number
    expiredKeys: number
    totalCommandsProcessed: number
    totalConnectionsReceived: number
  }
  clients: { connected: number; blocked: number; growing: boolean }
  /** `mode` is `'cluster'` on a cluster (figures summed over the masters). */
  server: { version: string; uptimeSeconds: number; mode: string }
  /** On a cluster only. */
  cluster?: {
    state: string
    slotsOk: number
    masters: number
    replicas: number
    nodes: Array<{ address: string; role: string; slots: number[][]; connected: boolean }>
  }
  keyspace: Record<string, { keys: number; expires: number; avgTtlMs: number }>
  totalKeys: number
  keyDistribution: KeyDistribution
  /** cacheService.getStats() of this process. */
  cache: CacheStats
  /** This process's commands, from the histogram kept in Rust. */
  client: {
    commands: number
    errors: number
    errorRate: number
    latencyP50Ms: number
    latencyP99Ms: number
    reconnects: number
    state: ConnectionState
  }
  alerts: RedisAlert[]
}

/** PINGs Redis. Never throws; answers within `timeoutMs` (default 1000). */
export declare function checkRedisHealth(options?: { timeoutMs?: number }): Promise<RedisHealth>
/** Server and process metrics with alerts. Rejects when Redis cannot be reached. */
export declare function getRedisMetrics(): Promise<RedisMetrics>
/** The metrics in the Prometheus text exposition format. */
export declare function metricsToPrometheus(metrics: RedisMetrics): string
/** Sets this process's command figures (commands, errors, latency histogram) back to zero. */
export declare function resetCommandMetrics(): void
/** The seed's alert thresholds. */
export declare const ALERT_THRESHOLDS: {
  readonly minHitRate: number
  readonly maxMemoryPercent: number
  readonly maxP99Ms: number
  readonly maxErrorRate: number
}
/** `GET /api/health/redis`: 200 when healthy, 503 when not (JSON body). Use as `export const GET = redisHealthHandler`. */
export declare function redisHealthHandler(request?: Request): Promise<Response>
/**
 * A `GET` handler for `/api/admin/redis/metrics`: 401 without credentials (no
 * Authorization or Cookie header), 403 when `authorize` says no, JSON by default,
 * `?format=prometheus` for the Prometheus text format.
 */
export declare function createRedisMetricsHandler(options: {
  authorize: (request: Request) => boolean | Promise<boolean>
}): (request: Request) => Promise<Response>

/**
 * One sample of getRedisMetricsHistory(): when it was taken, and the numeric
 * fields of getRedisMetrics(), grouped and named as there.
 */
export interface RedisMetricsSample {
  /** When the metrics were read. */
  readonly at: Date
  readonly memory: {
    readonly usedBytes: number
    readonly peakBytes: number
    readonly fragmentationRatio: number
    /** 0 means no limit. */
    readonly maxmemoryBytes: number
    /** Of maxmemory, or of the machine's memory when there is no maxmemory; null when neither is known. */
    readonly usagePercent: number | null
  }
  readonly stats: {
    readonly opsPerSec: number
    /** Server keyspace hits / (hits + misses), since the server started (or CONFIG RESETSTAT). */
    readonly hitRate: number
    readonly keyspaceHits: number
    readonly keyspaceMisses: number
    readonly evictedKeys: number
    readonly expiredKeys: number
    readonly totalCommandsProcessed: number
    readonly totalConnectionsReceived: number
  }
  readonly clients: { readonly connected: number; readonly blocked: number }
  readonly server: { readonly uptimeSeconds: number }
  readonly totalKeys: number
  /** Keys per prefix (estimated when the scan was capped), with `total` and `scanned`. */
  readonly keyDistribution: { readonly [K in Exclude<keyof KeyDistribution, 'exact'>]: number }
  /** cacheService.getStats() of this process. */
  readonly cache: Readonly<CacheStats>
  readonly client: {
    readonly commands: number
    readonly errors: number
    readonly errorRate: number
    readonly latencyP50Ms: number
    readonly latencyP99Ms: number
    readonly reconnects: number
  }
}

/**
 * The last hour of this process's metrics at 10 s steps (at most 360 samples,
 * oldest first; frozen). The first call starts an unref'd sampler (one
 * getRedisMetrics() now, then every 10 s) and returns what was kept so far,
 * possibly nothing; the sampler stops once nobody has asked for two minutes,
 * so an idle process does no Redis work for it. A step whose metrics could
 * not be read is missing; a client closed by closeRedisConnection() is not
 * opened again by the sampler.
 */
export declare function getRedisMetricsHistory(): RedisMetricsSample[]

/**
 * A `GET` handler for a monitoring dashboard (e.g.
 * `app/api/admin/redis/dashboard/route.ts`), guarded by `authorize(request)`
 * exactly as createRedisMetricsHandler is: truthy → 200; falsy → 401 (with
 * `WWW-Authenticate`) when the request carried no `Authorization` or `Cookie`
 * header, else 403; a throw → 403. It answers one self-contained HTML page
 * (nothing from another host; uPlot is served by the same handler as
 * `?asset=uplot.js` and `?asset=uplot.css`) charting ops/s, hit rates, memory
 * against maxmemory, latency p50/p99, error rate, connected clients and keys
 * per prefix with the alert thresholds drawn and the active alerts on top; the
 * page refreshes every `refreshMs` from the same handler's `?format=json`
 * (`{ refreshMs, stepMs, sampling, thresholds, metrics, sample, history }`).
 */
export declare function createRedisDashboardHandler(options: {
  authorize: (request: Request) => boolean | Promise<boolean>
  /** How often the page refreshes, in milliseconds (an integer from 250 to 3,600,000; default 5000). */
  refreshMs?: number
}): (request: Request) => Promise<Response>

// ── Errors ───────────────────────────────────────────────────────────────────

/** Base class of every error a command rejects with (bad input rejects with `TypeError`). */
export declare class RedisError extends Error {
  /** `ETIMEDOUT`, `ECONNECTION`, `EAUTH`, `ECLOSED`, or a reply's first word (`ERR`, `WRONGTYPE`, …). */
  readonly code: string
}
/** The server answered with an error reply; `code` is its first word. */
export declare class ReplyError extends RedisError {}
/** No reply within `commandTimeoutMs`. The command was sent at most once and is never sent again. */
export declare class RedisTimeoutError extends RedisError {}
/** The connection could not be made, or was lost while the command was in flight. */
export declare class RedisConnectionError extends RedisError {}
/** The server refused the credentials. The message never holds the password. */
export declare class RedisAuthError extends RedisConnectionError {}
/** The client was closed while the command waited. */
export declare class RedisClosedError extends RedisError {}
