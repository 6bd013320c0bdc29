'use strict'
// One lock measurement in its own process:
// `node lock-worker.js <client> withLock <concurrency> <seconds> <url>`
// Uncontended withLock with an empty fn: every call in flight holds its own key
// (from a pool, reused). client: addon (withLock) | ioredis | ioredis-auto (the
// same acquire and release scripts through ioredis's defineCommand).
const fs = require('node:fs')
const path = require('node:path')
const { randomBytes } = require('node:crypto')
const { runWorker } = require('./lib.js')

runWorker(async ({ clientName, concurrency, url }) => {
  const free = Array.from({ length: concurrency }, (_, i) => `lock:bench:${process.pid}:${i}`)
  const fn = async () => {}
  let withKey
  let close
  if (clientName === 'addon') {
    const redis = require('..')
    redis.configureRedis({ url })
    withKey = (key) => redis.withLock(key, fn, 30)
    close = () => redis.closeRedisConnection()
  } else {
    const Redis = require('ioredis')
    const client = new Redis(url, { enableAutoPipelining: clientName === 'ioredis-auto' })
    const script = (name) => fs.readFileSync(path.join(__dirname, '..', 'src', 'scripts', `${name}.lua`), 'utf8')
    client.defineCommand('acquireLock', { numberOfKeys: 2, lua: script('acquire_lock') })
    client.defineCommand('releaseLock', { numberOfKeys: 1, lua: script('release_lock') })
    withKey = async (key) => {
      const token = randomBytes(16).toString('hex')
      const fencingToken = await client.acquireLock(key, `{${key}}:fence`, token, 30000)
      if (fencingToken === 0) throw new Error('not acquired')
      try {
        return await fn({ fencingToken })
      } finally {
        await client.releaseLock(key, token)
      }
    }
    close = () => client.quit()
  }
  const op = async () => {
    const key = free.pop()
    try {
      return await withKey(key)
    } finally {
      free.push(key)
    }
  }
  return { op, close }
})
