'use strict'
// One cache measurement in its own process:
// `node cache-worker.js <client> <op> <concurrency> <seconds> <url>`
// client: addon (cacheService) | ioredis | ioredis-auto (the same cache written on
// ioredis: JSON.stringify + SET EX, GET + JSON.parse); op: get | set | getOrSet (warm key).
const { runWorker, profile } = require('./lib.js')


runWorker(async ({ clientName, opName, url }) => {
  const key = 'cache:user:bench'
  const loader = async () => profile
  let ops
  let close
  if (clientName === 'addon') {
    const redis = require('..')
    redis.configureRedis({ url })
    const { cacheService } = redis
    await cacheService.set(key, profile, 3600)
    ops = {
      get: () => cacheService.get(key),
      set: () => cacheService.set(key, profile, 3600),
      getOrSet: () => cacheService.getOrSet(key, loader, 3600),
    }
    close = () => redis.closeRedisConnection()
  } else {
    const Redis = require('ioredis')
    const client = new Redis(url, { enableAutoPipelining: clientName === 'ioredis-auto' })
    const get = async () => {
      const text = await client.get(key)
      return text === null ? null : JSON.parse(text)
    }
    const set = () => client.set(key, JSON.stringify(profile), 'EX', 3600)
    await set()
    ops = {
      get,
      set,
      getOrSet: async () => {
        const cached = await get()
        if (cached !== null) return cached
        const value = await loader()
        await client.set(key, JSON.stringify(value), 'EX', 3600)
        return value
      },
    }
    close = () => client.quit()
  }
  return { op: ops[opName], close }
})
