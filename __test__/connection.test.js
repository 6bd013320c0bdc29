'use strict'
// The connection's life: lazy start, timeouts, reconnects, auth, shutdown and
// the process lifetime. Each fault test runs against a redis-server of its own.
const net = require('node:net')
const Redis = require('ioredis')
const { RedisServer, freePort } = require('./support/redis-server.js')
const { redis, useRedis, waitFor, runNode, inspectorConnection, SINGLE_SERVER_ENV } = require('./support/client.js')

const { RedisTimeoutError, RedisConnectionError, RedisAuthError } = redis

afterAll(() => redis.closeRedisConnection())

/** A TCP listener that only counts the connections made to it. */
async function connectionCounter() {
  const sockets = []
  const server = net.createServer((socket) => sockets.push(socket))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `redis://127.0.0.1:${server.address().port}`,
    count: () => sockets.length,
    close: () => {
      sockets.forEach((s) => s.destroy())
      return new Promise((resolve) => server.close(resolve))
    },
  }
}

describe('lazy start', () => {
  test('importing and building keys opens no socket and never throws, even with no server', async () => {
    const counter = await connectionCounter()
    try {
      const quiet = await runNode(
        `const r = require('.');
         const s = r.getConnectionStatus();
         r.RedisKeys.cache.user(1); r.getRedisClient(); r.getBullMQConnection();
         setTimeout(() => console.log(JSON.stringify(s)), 300)`,
        { env: { REDIS_URL: counter.url } },
      )
      expect(quiet.code).toBe(0)
      expect(JSON.parse(quiet.stdout)).toEqual({ state: 'idle', reconnects: 0, lastError: null })
      expect(counter.count()).toBe(0)
      // the control: the first command does connect
      await runNode(
        `const r = require('.');
         r.configureRedis({ commandTimeoutMs: 200, connectTimeoutMs: 200 });
         r.getRedisClient().ping().catch(() => {})`,
        { env: { REDIS_URL: counter.url } },
      )
      expect(counter.count()).toBeGreaterThanOrEqual(1)
      const dead = await runNode(`require('.'); console.log('imported')`, {
        env: { REDIS_URL: 'redis://127.0.0.1:1' },
      })
      expect(dead.stdout.trim()).toBe('imported')
    } finally {
      await counter.close()
    }
  })
})

describe('failing fast', () => {
  test('against a dead port a command waits for a connection within its timeout, never longer; degraded answers come at once', async () => {
    const port = await freePort()
    const client = await useRedis({ url: `redis://127.0.0.1:${port}`, retryBaseDelayMs: 100, commandTimeoutMs: 600 })
    const events = []
    const unsubscribe = redis.onRedisEvent((e) => events.push(e))
    const started = Date.now()
    const error = await client.ping().catch((e) => e)
    const waited = Date.now() - started
    unsubscribe()
    expect(waited).toBeGreaterThanOrEqual(550)
    expect(waited).toBeLessThan(600 * 1.25)
    expect(error).toBeInstanceOf(RedisConnectionError)
    expect(error.message).toMatch(/PING was not sent: no connection within 600 ms .*refused/i)
    expect(redis.getConnectionStatus().lastError).toMatch(/refused/i)
    // while it waited, attempts came at most 4 base delays (400 ms) apart: several of them
    expect(events.filter((e) => e.type === 'error').length).toBeGreaterThanOrEqual(3)
    expect(Math.max(...events.filter((e) => e.type === 'reconnecting').map((e) => e.delayMs))).toBeLessThanOrEqual(400)
    // a request with a degraded answer (a cache read, a health probe) does not wait
    const again = Date.now()
    expect(await redis.cacheService.get('k')).toBeNull()
    expect((await redis.checkRedisHealth()).healthy).toBe(false)
    expect(Date.now() - again).toBeLessThan(200)
  })

  test('a command against a paused server times out with a clear error, and the connection stays in step', async () => {
    const server = await new RedisServer().start()
    const inspector = new Redis(server.url)
    try {
      const client = await useRedis({ url: server.url, commandTimeoutMs: 300 })
      await client.set('k1', 'one')
      await client.set('k2', 'two')
      await inspector.call('CLIENT', 'PAUSE', '1500', 'ALL')
      const started = Date.now()
      const error = await client.incr('counter').catch((e) => e)
      const elapsed = Date.now() - started
      expect(error).toBeInstanceOf(RedisTimeoutError)
      expect(error.code).toBe('ETIMEDOUT')
      expect(error.message).toBe('Redis command INCR timed out after 300 ms')
      expect(elapsed).toBeGreaterThanOrEqual(280)
      expect(elapsed).toBeLessThan(1000)
      await new Promise((r) => setTimeout(r, 1500))
      // the late reply to the timed-out INCR is dropped; later replies match their requests
      expect(await client.get('k1')).toBe('one')
      expect(await client.get('k2')).toBe('two')
      // the INCR was sent once and ran once; it was never sent again
      expect(await inspector.get('counter')).toBe('1')
      expect(redis.getConnectionStatus().state).toBe('ready')
    } finally {
      inspector.disconnect()
      await server.stop()
    }
  })
})

describe('reconnecting', () => {
  test('after the server restarts: status, events, backoff, and no replay', async () => {
    const server = await new RedisServer().start()
    try {
      const client = await useRedis({ url: server.url, retryBaseDelayMs: 50, retryMaxDelayMs: 200 })
      const events = []
      const unsubscribe = redis.onRedisEvent((e) => events.push(e))
      await client.set('before', '1')
      expect(redis.getConnectionStatus()).toEqual({ state: 'ready', reconnects: 0, lastError: null })
      expect(events.map((e) => e.type)).toEqual(['connect', 'ready'])

      await server.stop()
      // The loss is noticed without a command (the reader sees the socket end);
      // only then is the next command surely one that was never written.
      await waitFor(() => events.some((e) => e.type === 'end'))
      // not written before the loss: it waits for a connection within its timeout, then fails unsent
      const error = await client.incr('replayed').catch((e) => e)
      expect(error).toBeInstanceOf(RedisConnectionError)
      expect(error.message).toMatch(/INCR was not sent/)
      await waitFor(() => events.some((e) => e.type === 'reconnecting'))
      const status = redis.getConnectionStatus()
      expect(status.state).toBe('reconnecting')
      expect(status.lastError).toBeTruthy()
      const types = events.map((e) => e.type)
      expect(types).toEqual(expect.arrayContaining(['error', 'end', 'reconnecting']))
      const retry = events.find((e) => e.type === 'reconnecting')
      expect(retry.attempt).toBeGreaterThanOrEqual(1)
      expect(retry.delayMs).toBeGreaterThanOrEqual(50)
      expect(retry.delayMs).toBeLessThanOrEqual(200)

      await server.start()
      await waitFor(() => redis.getConnectionStatus().state === 'ready', 10000)
      // The status is read from Rust at once; the events come through the next
      // drain: wait for the one that says so before counting them.
      await waitFor(() => events.length > 0 && events[events.length - 1].type === 'ready', 10000)
      // reconnects counts every attempt after the loss, the failed ones too
      const failedAttempts = events.filter((e) => e.type === 'reconnecting').length
      expect(failedAttempts).toBeGreaterThanOrEqual(1)
      expect(redis.getConnectionStatus().reconnects).toBe(failedAttempts + 1)
      expect(events.slice(-2).map((e) => e.type)).toEqual(['connect', 'ready'])
      expect(await client.get('before')).toBeNull() // a fresh server: it keeps nothing
      expect(await client.get('replayed')).toBeNull() // the failed INCR was never run later
      unsubscribe()
      const count = events.length
      await client.ping()
      await server.stop()
      await client.ping().catch(() => {})
      await new Promise((r) => setTimeout(r, 100))
      expect(events.length).toBe(count)
    } finally {
      await server.stop()
    }
  })

  test('maxRetries stops the background attempts; the next command tries again', async () => {
    const port = await freePort()
    const later = new RedisServer({ port }) // not started yet
    const client = await useRedis({ url: later.url, maxRetries: 2, retryBaseDelayMs: 20, retryMaxDelayMs: 40 })
    const events = []
    const unsubscribe = redis.onRedisEvent((e) => events.push(e))
    await expect(client.ping()).rejects.toBeInstanceOf(RedisConnectionError)
    await waitFor(() => redis.getConnectionStatus().state === 'idle', 3000)
    expect(events.filter((e) => e.type === 'error')).toHaveLength(3)
    const server = await later.start()
    try {
      expect(await client.ping()).toBe('PONG')
    } finally {
      unsubscribe()
      await redis.closeRedisConnection()
      await server.stop()
    }
  })
})

describe('authentication', () => {
  test('a wrong password gives an auth error that never shows the password', async () => {
    const server = await new RedisServer({ args: ['--requirepass', 'the-right-one'] }).start()
    try {
      const secret = 'hunter2-Wrong-Secret'
      const events = []
      const unsubscribe = redis.onRedisEvent((e) => events.push(e))
      const client = await useRedis({ url: server.urlWith({ user: 'default', password: secret, db: 0 }) })
      const error = await client.ping().catch((e) => e)
      unsubscribe()
      expect(error).toBeInstanceOf(RedisAuthError)
      expect(error.code).toBe('EAUTH')
      expect(error.message).toMatch(/WRONGPASS|auth/i)
      const status = redis.getConnectionStatus()
      const everything = JSON.stringify({ message: error.message, stack: error.stack, status, events })
      expect(everything).not.toContain(secret)
      expect(status.lastError).toMatch(/auth/i)

      await redis.closeRedisConnection()
      const good = await useRedis({ url: server.urlWith({ password: 'the-right-one', db: 2 }) })
      expect(await good.ping()).toBe('PONG')
      await good.set('in-db-2', 'yes')
      expect(server.cli('-a', 'the-right-one', '--no-auth-warning', '-n', '2', 'GET', 'in-db-2')).toBe('yes')
      expect(redis.getBullMQConnection()).toMatchObject({
        host: '127.0.0.1',
        port: server.port,
        password: 'the-right-one',
        db: 2,
        maxRetriesPerRequest: null,
      })
    } finally {
      await redis.closeRedisConnection()
      await server.stop()
    }
  })

  test('a password never shows in a configuration error either', () => {
    expect(() => redis.configureRedis({ url: 'http://user:pa55word-xyz@host:1' })).toThrow(TypeError)
    try {
      redis.configureRedis({ url: 'http://user:pa55word-xyz@host:1' })
    } catch (e) {
      expect(e.message).not.toContain('pa55word-xyz')
    }
  })
})

describe('closing and reuse', () => {
  test('close waits for commands in flight, is idempotent, and the client can be used again', async () => {
    const client = await useRedis()
    const inFlight = Array.from({ length: 200 }, (_, i) => client.set(`close:${i}`, String(i)))
    const closed = redis.closeRedisConnection()
    const results = await Promise.allSettled(inFlight)
    await closed
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true)
    expect(redis.getConnectionStatus().state).toBe('closed')
    await redis.closeRedisConnection()
    await redis.closeRedisConnection()
    // reuse: the next command connects again with the same configuration
    expect(await client.get('close:199')).toBe('199')
    expect(redis.getConnectionStatus().state).toBe('ready')
  })

  test('configureRedis: validated, refused after the first command (whatever the options), allowed after close', async () => {
    const client = await useRedis()
    const first = client.ping() // made, not flushed yet: the configuration is already in use
    expect(() => redis.configureRedis({ url: process.env.REDIS_URL, commandTimeoutMs: 999 })).toThrow(
      /before the first command/,
    )
    await first
    expect(() => redis.configureRedis({ url: process.env.REDIS_URL })).toThrow(/before the first command/)
    expect(() => redis.configureRedis({ url: process.env.REDIS_URL, commandTimeoutMs: 999 })).toThrow(
      /before the first command/,
    )
    expect(() => redis.configureRedis({ commandTimeoutMs: -1 })).toThrow(TypeError)
    expect(() => redis.configureRedis({ comandTimeoutMs: 100 })).toThrow(/unknown option "comandTimeoutMs"/)
    expect(() => redis.configureRedis({ url: 'mysql://x' })).toThrow(TypeError)
    expect(() => redis.configureRedis({ retryBaseDelayMs: 500, retryMaxDelayMs: 100 })).toThrow(TypeError)
    expect(() => redis.configureRedis('redis://x')).toThrow(TypeError)
    await redis.closeRedisConnection()
    expect(redis.getConnectionStatus().state).toBe('closed')
    expect(() => redis.configureRedis({ url: process.env.REDIS_URL, commandTimeoutMs: 999 })).not.toThrow()
    expect(redis.getConnectionStatus().state).toBe('closed')
    expect(await client.ping()).toBe('PONG') // the next command starts a new connection
    expect(redis.getConnectionStatus().state).toBe('ready')
  })

  test('cluster mode against a single server fails at once with a clear error rather than a timeout', async () => {
    const server = await new RedisServer().start() // one server, whatever the run's test server is
    try {
      const client = await useRedis({ url: server.url, cluster: true, commandTimeoutMs: 5000 })
      const started = Date.now()
      const error = await client.ping().catch((e) => e)
      expect(error.message).toMatch(/Cluster mode is on .* is not a cluster node .*cluster support disabled/)
      expect(error.code).toBe('EUSAGE')
      expect(Date.now() - started).toBeLessThan(2000)
    } finally {
      await server.stop()
      await useRedis()
    }
  })
})

describe('process lifetime', () => {
  test('a process that did one command and no close exits by itself', async () => {
    const result = await runNode(
      `const r = require('.');
       r.getRedisClient().set('child:exit', 'done').then((reply) => console.log(reply))`,
      { timeoutMs: 10000 },
    )
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe('OK')
    expect(result.ms).toBeLessThan(5000)
  })

  test('a pending command keeps the process alive until it settles', async () => {
    const result = await runNode(
      `const r = require('.');
       r.configureRedis({ commandTimeoutMs: 5000 });
       const started = Date.now();
       r.getRedisClient().call('BLPOP', 'child:nothing-here', '1')
         .then((reply) => console.log(JSON.stringify({ reply, waited: Date.now() - started })))`,
      { timeoutMs: 10000 },
    )
    expect(result.code).toBe(0)
    const { reply, waited } = JSON.parse(result.stdout)
    expect(reply).toBeNull()
    expect(waited).toBeGreaterThanOrEqual(900)
  })

  test('an event listener does not keep the process alive', async () => {
    const result = await runNode(
      `const r = require('.');
       r.onRedisEvent(() => {});
       r.getRedisClient().ping().then((p) => console.log(p))`,
      { timeoutMs: 10000 },
    )
    expect(result.stdout.trim()).toBe('PONG')
    expect(result.ms).toBeLessThan(5000)
  })
})

describe('hot reload', () => {
  test('re-evaluating the module (Next.js dev) keeps one connection per process', async () => {
    const server = await new RedisServer().start()
    try {
      const modules = []
      for (let i = 0; i < 3; i++) {
        jest.isolateModules(() => modules.push(require('..')))
      }
      expect(new Set(modules).size).toBe(3) // three evaluations of the JS module
      await modules[0].closeRedisConnection()
      for (const m of modules) {
        // a re-evaluated module configuring what is in force changes nothing: allowed
        m.configureRedis({ url: server.url, cluster: false })
        expect(await m.getRedisClient().ping()).toBe('PONG')
      }
      await Promise.all(modules.map((m) => m.getRedisClient().set('hot', 'reload')))
      const clients = server.cli('CLIENT', 'LIST').split('\n').filter((line) => !line.includes('cmd=client'))
      expect(clients).toHaveLength(1)
      // but not other options, nor the same module twice
      expect(() => modules[1].configureRedis({ url: server.url, cluster: false, commandTimeoutMs: 999 })).toThrow(/before the first command/)
      expect(() => modules[0].configureRedis({ url: server.url, cluster: false })).toThrow(/before the first command/)
    } finally {
      await redis.closeRedisConnection()
      await server.stop()
    }
  })
})

describe('entry points and environment', () => {
  test('import (ESM) and require give the same single instance with every export', async () => {
    const result = await runNode(
      `import('@yesgoddess/redis').then(async (esm) => {
         const cjs = require('@yesgoddess/redis');
         const names = Object.keys(cjs).sort();
         const same = names.every((n) => esm[n] === cjs[n]) && esm.default === cjs;
         const reply = await esm.getRedisClient().ping();
         console.log(JSON.stringify({ same, names, reply }));
       })`,
    )
    const { same, names, reply } = JSON.parse(result.stdout)
    expect(same).toBe(true)
    expect(reply).toBe('PONG')
    expect(names).toEqual(
      expect.arrayContaining([
        'configureRedis', 'getRedisClient', 'getConnectionStatus', 'onRedisEvent', 'closeRedisConnection',
        'getBullMQConnection', 'getBullMQOptions', 'RedisKeys', 'RedisTTL', 'RedisError', 'ReplyError', 'RedisTimeoutError',
      ]),
    )
  })

  test('REDIS_KEY_PREFIX prefixes every key, REDIS_CLUSTER=true against one server is refused clearly', async () => {
    const inspector = inspectorConnection()
    const server = await new RedisServer().start() // one server, whatever the run's test server is
    try {
      const prefixed = await runNode(
        `const r = require('.'); r.getRedisClient().set('env:key', 'v').then(() => console.log('ok'))`,
        { env: { REDIS_KEY_PREFIX: 'from-env:' } },
      )
      expect(prefixed.stdout.trim()).toBe('ok')
      expect(await inspector.get('from-env:env:key')).toBe('v')
      const cluster = await runNode(
        `const r = require('.'); r.getRedisClient().ping().catch((e) => console.log(e.message))`,
        { env: { ...SINGLE_SERVER_ENV, REDIS_URL: server.url, REDIS_CLUSTER: 'true' } },
      )
      expect(cluster.stdout).toMatch(/Cluster mode is on .* is not a cluster node/)
    } finally {
      inspector.disconnect()
      await server.stop()
    }
  })
})
