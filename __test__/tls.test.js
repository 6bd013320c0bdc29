'use strict'
// rediss:// against a TLS-only redis-server whose CA is made here with openssl.
const fs = require('node:fs')
const { RedisServer, makeTlsFiles } = require('./support/redis-server.js')
const { redis, useRedis } = require('./support/client.js')

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
