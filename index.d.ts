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
  /** Connect to a Redis Cluster (`REDIS_CLUSTER=true`). Not available in this version yet: commands fail with a clear error. */
  cluster?: boolean
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
}

/** The process-wide client's connection status. Never connects. */
export function getConnectionStatus(): ConnectionStatus

/** A connection event. */
export interface RedisEvent {
  type: 'connect' | 'ready' | 'error' | 'reconnecting' | 'end'
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

/** An exact sliding window on the Redis server's clock, one atomic script per decision. */
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
  /** Aborts (with a LockLostError) if the lock is lost while `fn` runs. */
  signal: AbortSignal
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
  server: { version: string; uptimeSeconds: number; mode: string }
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
