'use strict'
// One cache measurement in its own process:
// `node cache-worker.js <client> <op> <concurrency> <seconds> <url>`
// client: addon (cacheService) | ioredis | ioredis-auto (the same cache written on
// ioredis: JSON.stringify + SET EX, GET + JSON.parse); op: get | set | getOrSet (warm key).
const { runWorker } = require('./lib.js')

/** A realistic ~1 KB user profile. */
const profile = {
  id: 'clx9a8b7c6d5e4f3g2h1',
  email: 'creator@example.com',
  name: 'Test Creator',
  role: 'CREATOR',
  emailVerified: true,
  createdAt: '2025-10-10T12:00:00.000Z',
  updatedAt: '2025-10-11T08:30:00.000Z',
  profile: {
    bio: 'x'.repeat(400),
    avatarUrl: `https://cdn.example.com/a/${'y'.repeat(40)}`,
    socials: { instagram: '@creator', tiktok: '@creator', youtube: '@creator-channel' },
    tags: ['music', 'art', 'film', 'photo'],
  },
  stats: { assets: 42, projects: 7, earningsCents: 1234567 },
  preferences: { emails: true, theme: 'dark', locale: 'en-US' },
}

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
