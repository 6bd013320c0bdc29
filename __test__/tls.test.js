'use strict'
// rediss:// against a TLS-only redis-server whose CA is made here with openssl.
const fs = require('node:fs')
const { RedisServer, makeTlsFiles } = require('./support/redis-server.js')
const { redis, useRedis, SINGLE_SERVER_ENV } = require('./support/client.js')

let tls
let server

beforeAll(async () => {
  tls = makeTlsFiles()
  server = await new RedisServer({ tls }).start()
})
afterAll(async () => {
  await redis.closeRedisConnection()
  await server.stop()
  fs.rmSync(tls.dir, { recursive: true, force: true })
})

test('rediss:// with the CA file verifies the server and round-trips', async () => {
  const client = await useRedis({ url: server.url, tls: { caFile: tls.ca } })
  expect(server.url.startsWith('rediss://')).toBe(true)
  expect(await client.ping()).toBe('PONG')
  await client.set('tls:key', 'secret value')
  expect(await client.get('tls:key')).toBe('secret value')
  expect(server.cli('GET', 'tls:key')).toBe('secret value')
  expect(redis.getBullMQConnection().tls).toEqual({ rejectUnauthorized: true, ca: fs.readFileSync(tls.ca, 'utf8') })
})

test('without the CA the server certificate is refused', async () => {
  const client = await useRedis({ url: server.url, connectTimeoutMs: 2000 })
  const error = await client.ping().catch((e) => e)
  expect(error).toBeInstanceOf(redis.RedisConnectionError)
  expect(error.message).toMatch(/certificate|UnknownIssuer|invalid peer/i)
})

test('rejectUnauthorized: false accepts it (for tests only)', async () => {
  const client = await useRedis({ url: server.url, tls: { rejectUnauthorized: false } })
  expect(await client.ping()).toBe('PONG')
})

test('plain redis:// against the TLS port does not hang: it fails within the timeouts', async () => {
  const client = await useRedis({
    url: server.url.replace('rediss://', 'redis://'),
    connectTimeoutMs: 500,
    commandTimeoutMs: 1000,
  })
  const started = Date.now()
  await expect(client.ping()).rejects.toBeInstanceOf(redis.RedisError)
  expect(Date.now() - started).toBeLessThan(1500)
})

describe('TLS on the fast path', () => {
  const { waitFor, runNode } = require('./support/client.js')
  const Redis = require('ioredis')

  test('replies of every size and 2,000 concurrent commands come back in order over TLS, with either reader', async () => {
    const client = await useRedis({ url: server.url, tls: { caFile: tls.ca } })
    const big = 'x'.repeat(3 * 1024 * 1024) // spans many TLS records
    await client.set('tls:big', big)
    expect(await client.get('tls:big')).toBe(big)
    const replies = await Promise.all(Array.from({ length: 2000 }, (_, i) => client.set(`tls:n:${i}`, String(i)).then(() => client.get(`tls:n:${i}`))))
    expect(replies).toEqual(Array.from({ length: 2000 }, (_, i) => String(i)))
    const rust = await runNode(
      `const r = require('.'); r.configureRedis({ url: process.env.URL, tls: { caFile: process.env.CA } });
       const c = r.getRedisClient();
       Promise.all(Array.from({ length: 500 }, (_, i) => c.set('tls:r:' + i, 'v' + i).then(() => c.get('tls:r:' + i))))
         .then((v) => console.log(JSON.stringify(v.every((x, i) => x === 'v' + i))))`,
      { env: { ...SINGLE_SERVER_ENV, URL: server.url, CA: tls.ca, YG_REDIS_JS_READER: '0' } },
    )
    expect(rust.stdout.trim()).toBe('true')
  })

  test('a connection dropped by the server is noticed when it drops, without a new command', async () => {
    const client = await useRedis({ url: server.url, tls: { caFile: tls.ca }, retryBaseDelayMs: 20 })
    expect(await client.ping()).toBe('PONG')
    const events = []
    const unsubscribe = redis.onRedisEvent((e) => events.push(e.type))
    server.cli('CLIENT', 'KILL', 'TYPE', 'normal')
    await waitFor(() => events.includes('end') && events.includes('ready'), 5000)
    unsubscribe()
    expect(events.slice(0, 2)).toEqual(['error', 'end'])
    expect(await client.ping()).toBe('PONG')
  })

  test('a paused server: the command times out at its deadline, and later replies stay in step', async () => {
    const client = await useRedis({ url: server.url, tls: { caFile: tls.ca }, commandTimeoutMs: 300 })
    await client.set('tls:k1', 'one')
    server.cli('CLIENT', 'PAUSE', '1200', 'ALL')
    const started = Date.now()
    const error = await client.incr('tls:paused').catch((e) => e)
    expect(error).toBeInstanceOf(redis.RedisTimeoutError)
    expect(Date.now() - started).toBeLessThan(300 * 1.25)
    await new Promise((r) => setTimeout(r, 1300))
    expect(await client.get('tls:k1')).toBe('one')
    expect(await client.get('tls:paused')).toBe('1') // it ran once, never twice
  })

  test('a restart under load: commands not yet written wait for the reconnect, none is lost', async () => {
    const own = await new RedisServer({ tls }).start()
    try {
      const client = await useRedis({ url: own.url, tls: { caFile: tls.ca }, commandTimeoutMs: 2000, retryBaseDelayMs: 50, retryMaxDelayMs: 200 })
      await client.ping()
      let lostAt = 0
      const unsubscribe = redis.onRedisEvent((e) => {
        if (e.type === 'end' && lostAt === 0) lostAt = Date.now()
      })
      let running = true
      const results = []
      const writer = async (w) => {
        for (let i = 0; running; i++) {
          const started = Date.now()
          const ok = await client.set(`tls:restart:${w}:${i}`, 'v').then(() => true, () => false)
          results.push({ started, ok, ms: Date.now() - started })
        }
      }
      const writers = Array.from({ length: 64 }, (_, w) => writer(w))
      await new Promise((r) => setTimeout(r, 300))
      await own.stop()
      await new Promise((r) => setTimeout(r, 700))
      await own.start()
      await new Promise((r) => setTimeout(r, 700))
      running = false
      await Promise.all(writers)
      unsubscribe()
      expect(lostAt).toBeGreaterThan(0)
      const afterLoss = results.filter((r) => r.started >= lostAt)
      expect(afterLoss.length).toBeGreaterThan(64)
      expect(afterLoss.filter((r) => !r.ok)).toHaveLength(0)
      expect(results.reduce((max, r) => Math.max(max, r.ms), 0)).toBeLessThan(2500)
    } finally {
      await own.stop()
    }
  })

  test('a wrong CA and a certificate for another host are refused at once with a clear error; servername fixes the name', async () => {
    const other = makeTlsFiles() // another CA
    const elsewhere = makeTlsFiles({ subjectAltName: 'DNS:redis.internal.example' })
    const named = await new RedisServer({ tls: elsewhere }).start()
    try {
      let client = await useRedis({ url: server.url, tls: { caFile: other.ca }, commandTimeoutMs: 3000 })
      let started = Date.now()
      let error = await client.ping().catch((e) => e)
      expect(error).toBeInstanceOf(redis.RedisConnectionError)
      expect(error.message).toMatch(/certificate/i)
      // (the other CA has the same name as the right one: its signature does not verify)
      expect(error.message).toMatch(/BadSignature|UnknownIssuer/)
      expect(Date.now() - started).toBeLessThan(1000) // fatal: not retried until the deadline

      client = await useRedis({ url: named.url, tls: { caFile: elsewhere.ca }, commandTimeoutMs: 3000 })
      started = Date.now()
      error = await client.ping().catch((e) => e)
      expect(error).toBeInstanceOf(redis.RedisConnectionError)
      expect(error.message).toMatch(/NotValidForName|not valid for/i)
      expect(Date.now() - started).toBeLessThan(1000)

      client = await useRedis({ url: named.url, tls: { caFile: elsewhere.ca, servername: 'redis.internal.example' } })
      expect(await client.ping()).toBe('PONG')
    } finally {
      await named.stop()
      fs.rmSync(other.dir, { recursive: true, force: true })
      fs.rmSync(elsewhere.dir, { recursive: true, force: true })
      await useRedis({ url: server.url, tls: { caFile: tls.ca } })
    }
  })

  test('without tls.caFile, the public roots plus NODE_EXTRA_CA_CERTS are trusted, as in Node', async () => {
    const script = `const r = require('.'); r.configureRedis({ url: process.env.URL, commandTimeoutMs: 1500 });
      r.getRedisClient().ping().then((p) => console.log(p), (e) => console.log('refused: ' + e.message))`
    const trusted = await runNode(script, { env: { ...SINGLE_SERVER_ENV, URL: server.url, NODE_EXTRA_CA_CERTS: tls.ca } })
    expect(trusted.stdout.trim()).toBe('PONG')
    const untrusted = await runNode(script, { env: { ...SINGLE_SERVER_ENV, URL: server.url, NODE_EXTRA_CA_CERTS: '' } })
    expect(untrusted.stdout).toMatch(/refused: .*UnknownIssuer/i)
    // ioredis (Node's TLS) agrees on the same server
    const inspector = new Redis(server.url, { tls: { ca: fs.readFileSync(tls.ca) }, lazyConnect: true })
    try {
      expect(await inspector.ping()).toBe('PONG')
    } finally {
      inspector.disconnect()
    }
  })
})
