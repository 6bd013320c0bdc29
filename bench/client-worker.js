'use strict'
// One measurement in its own process: `node client-worker.js <client> <op> <concurrency> <seconds> <url>`.
// client: addon | ioredis | ioredis-auto; op: get | set.
const { runWorker } = require('./lib.js')

runWorker(async ({ clientName, opName, url }) => {
  const key = 'bench:raw:key'
  const value = 'x'.repeat(64)
  let op
  let close
  if (clientName === 'addon') {
    const redis = require('..')
    redis.configureRedis({ url })
    const client = redis.getRedisClient()
    await client.set(key, value)
    op = opName === 'get' ? () => client.get(key) : () => client.set(key, value)
    close = () => redis.closeRedisConnection()
    // Which thread read the replies: the JS thread (libuv) once it adopted the
    // socket, else the Rust thread (a cross-thread wake-up per batch).
    const { readerStats } = require('../lib/runtime.js').runtime
    return { op, close, extra: () => ({ jsReaderAdopted: readerStats.adopted }) }
  } else {
    const Redis = require('ioredis')
    const client = new Redis(url, { enableAutoPipelining: clientName === 'ioredis-auto' })
    await client.set(key, value)
    op = opName === 'get' ? () => client.get(key) : () => client.set(key, value)
    close = () => client.quit()
  }
  return { op, close }
})
