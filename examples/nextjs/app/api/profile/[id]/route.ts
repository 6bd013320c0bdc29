// GET /api/profile/[id]: the seed's examples together. Rate-limited per caller
// (429 with the RateLimit headers past the limit; `?expand=assets` is a weighted
// request that takes 3 of the caller's slots), cache-aside (the second call
// is a cache hit), and a miss loads under a lock so that concurrent misses
// across app servers hit the database once. It imports `@/lib/redis` (the
// package, re-exported by lib/redis-addon.ts), as the application's routes do.
import { NextResponse } from 'next/server'
import { cacheService, rateLimiter, rateLimitHeaders, withLock, RedisKeys, RedisTTL } from '@/lib/redis'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

const LIMIT = Number(process.env.PROFILE_RATE_LIMIT || 5)
const WINDOW_SECONDS = 60
/** An expanded profile (the creator's assets too) costs this many requests of the limit. */
const EXPAND_COST = 3

type Profile = { id: string; name: string; loadedAt: string }

/** Stands in for the application's database. */
async function loadProfileFromDatabase(id: string): Promise<Profile> {
  await new Promise((resolve) => setTimeout(resolve, 20))
  return { id, name: `Creator ${id}`, loadedAt: new Date().toISOString() }
}

export async function GET(request: Request, context: { params: Promise<{ id: string }> }) {
  const { id } = await context.params
  const caller = request.headers.get('x-caller-id') ?? 'anonymous'
  const expand = new URL(request.url).searchParams.get('expand') === 'assets'

  // A weighted request: allowed only when `cost` slots are free, and then takes them all.
  const cost = expand ? EXPAND_COST : 1
  const limit = await rateLimiter.checkLimit(caller, 'profile', { limit: LIMIT, windowSeconds: WINDOW_SECONDS, cost })
  const headers = rateLimitHeaders(limit)
  if (!limit.allowed) {
    // Retry-After says when `cost` slots are free, which is later for the expanded request.
    return NextResponse.json({ error: 'Rate limit exceeded', resetAt: limit.resetAt, cost }, { status: 429, headers })
  }

  const key = RedisKeys.cache.creator(id)
  const cached = await cacheService.get<Profile>(key)
  if (cached) {
    return NextResponse.json({ profile: cached, source: 'cache', cost }, { headers: { ...headers, 'x-cache': 'HIT' } })
  }
  const profile = await withLock(
    RedisKeys.lock.resource(`profile:${id}`),
    async () => {
      const again = await cacheService.get<Profile>(key) // filled while we waited?
      if (again) return again
      const loaded = await loadProfileFromDatabase(id)
      await cacheService.set(key, loaded, RedisTTL.cache.creator)
      return loaded
    },
    10,
    { waitMs: 5000 },
  )
  return NextResponse.json({ profile, source: 'database', cost }, { headers: { ...headers, 'x-cache': 'MISS' } })
}
