'use strict'
// One cache measurement in its own process:
// `node cache-worker.js <client> <op> <concurrency> <seconds> <url>`
// client: addon (cacheService) | ioredis | ioredis-auto (the same cache written on
// ioredis: JSON.stringify + SET EX, GET + JSON.parse); op: get | set | getOrSet (warm key)
// | getSpread (GET of 4,096 keys in turn, each with its own profile: more keys
// than the addon's memo of decoded hot keys holds, so every read is parsed)
// | getList (the same over 4,096 pages of 8 to 12 records each: lists of varying length)
// | getSparse (the same pages, whose records leave fields out: undefined where getList's are null).
const { runWorker, profile } = require('./lib.js')

/**
 * Page `i` of a feed: 8 to 12 records, some fields null in some records (or,
 * `sparse`, undefined: left out of the text, as TypeScript's optional fields are).
 */
function page(i, sparse) {
  const none = sparse ? undefined : null
  const record = (j) => ({
    id: `post-${i}-${j}`,
    title: j % 5 === 0 ? none : `Post ${j} of page ${i}`,
    likes: (i * 31 + j * 7) % 1000,
    published: j % 3 !== 0,
    tags: ['music', 'art', 'film'].slice(0, j % 4),
    author: { id: `user-${j}`, name: `Creator ${j}`, avatarUrl: j % 4 === 0 ? none : `https://cdn.example.com/a/${j}.png` },
    createdAt: new Date(Date.UTC(2025, 9, 1 + (j % 28))).toISOString(),
    // Sparse records have one more field, set in one record of six.
    ...(sparse && j % 6 === 1 ? { editedAt: new Date(Date.UTC(2025, 10, 1 + (j % 28))).toISOString() } : {}),
  })
  return { page: i, items: Array.from({ length: 8 + (i % 5) }, (_, j) => record(j)), total: 1000 }
}

runWorker(async ({ clientName, opName, url }) => {
  const key = 'cache:user:bench'
  const loader = async () => profile
  const SPREAD = 4096
  const lists = opName === 'getList' || opName === 'getSparse'
  const spreadKeys = Array.from({ length: SPREAD }, (_, i) => (lists ? `cache:page:bench-${i}` : `cache:user:bench-${i}`))
  const spreadValues = spreadKeys.map((_, i) => (lists ? page(i, opName === 'getSparse') : { ...profile, id: `user-${i}` }))
  let next = 0
  const spreadKey = () => spreadKeys[next++ & (SPREAD - 1)]
  let ops
  let close
  if (clientName === 'addon') {
    const redis = require('..')
    redis.configureRedis({ url })
    const { cacheService } = redis
    await cacheService.set(key, profile, 3600)
    if (opName === 'getSpread' || lists) await cacheService.mset(spreadKeys.map((k, i) => [k, spreadValues[i]]), 3600)
    ops = {
      get: () => cacheService.get(key),
      getSpread: () => cacheService.get(spreadKey()),
      getList: () => cacheService.get(spreadKey()),
      getSparse: () => cacheService.get(spreadKey()),
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
    if (opName === 'getSpread' || lists) await Promise.all(spreadKeys.map((k, i) => client.set(k, JSON.stringify(spreadValues[i]), 'EX', 3600)))
    ops = {
      get: () => get(key),
      getSpread: () => get(spreadKey()),
      getList: () => get(spreadKey()),
      getSparse: () => get(spreadKey()),
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
