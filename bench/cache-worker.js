'use strict'
// One cache measurement in its own process:
// `node cache-worker.js <client> <op> <concurrency> <seconds> <url>`
// client: addon (cacheService) | ioredis | ioredis-auto (the same cache written on
// ioredis: JSON.stringify + SET EX, GET + JSON.parse); op: get | set | getOrSet (warm key)
// | getSpread (GET of 4,096 keys in turn, each with its own profile: more keys
// than the addon's memo of decoded hot keys holds, so every read is parsed).
const { runWorker, profile } = require('./lib.js')


runWorker(async ({ clientName, opName, url }) => {
  const key = 'cache:user:bench'
  const loader = async () => profile
  const SPREAD = 4096
  const spreadKeys = Array.from({ length: SPREAD }, (_, i) => `cache:user:bench-${i}`)
  const spreadValues = spreadKeys.map((_, i) => ({ ...profile, id: `user-${i}` }))
  let next = 0
  const spreadKey = () => spreadKeys[next++ & (SPREAD - 1)]
  let ops
  let close
  if (clientName === 'addon') {
    const redis = require('..')
    redis.configureRedis({ url })
    const { cacheService } = redis
    await cacheService.set(key, profile, 3600)
    if (opName === 'getSpread') await cacheService.mset(spreadKeys.map((k, i) => [k, spreadValues[i]]), 3600)
    ops = {
      get: () => cacheService.get(key),
      getSpread: () => cacheService.get(spreadKey()),
      set: () => cacheService.set(key, profile, 3600),
      getOrSet: () => cacheService.getOrSet(key, loader, 3600),
    }
    close = () => redis.closeRedisConnection()
  } else {
    const Redis = require('ioredis')
    const client = new Redis(url, { enableAutoPipelining: clientName === 'ioredis-auto' })
    const get = async (k) => {
      const text = await client.get(k)
      return text === null ? null : JSON.parse(text)
    }
    const set = () => client.set(key, JSON.stringify(profile), 'EX', 3600)
    await set()
    if (opName === 'getSpread') await Promise.all(spreadKeys.map((k, i) => client.set(k, JSON.stringify(spreadValues[i]), 'EX', 3600)))
    ops = {
      get: () => get(key),
      getSpread: () => get(spreadKey()),
      set,
      getOrSet: async () => {
        const cached = await get(key)
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
