// GET /api/lock/[id]: a short critical section under withLock (a job that must
// not run twice at once across app servers): take the lock on the id, do a
// little work with the fencing token, release it. 409 when another holder
// keeps it past the wait.
import { NextResponse } from 'next/server'
import { withLock, LockNotAcquiredError, RedisKeys } from '@/lib/redis'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

/** The work done under the lock: a tiny, synchronous step (a checksum of the id and the token). */
function checksum(text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0
  return hash
}

export async function GET(_request: Request, context: { params: Promise<{ id: string }> }) {
  const { id } = await context.params
  try {
    const result = await withLock(
      RedisKeys.lock.resource(`job:${id}`),
      async ({ fencingToken }) => ({ id, fencingToken, checksum: checksum(`${id}:${fencingToken}`) }),
      10,
      { waitMs: 2000 },
    )
    return NextResponse.json(result)
  } catch (error) {
    if (error instanceof LockNotAcquiredError) {
      return NextResponse.json({ error: 'Busy: the job is running elsewhere' }, { status: 409, headers: { 'Retry-After': '1' } })
    }
    throw error
  }
}
