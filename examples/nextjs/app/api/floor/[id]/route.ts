// GET /api/floor/[id]: the same JSON answer as /api/profile without any Redis
// work. `npm run bench:route -- --routes floor,…` measures it to show what
// Next.js itself costs per request (its latency is the floor under every route).
import { NextResponse } from 'next/server'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

export async function GET(request: Request, context: { params: Promise<{ id: string }> }) {
  const { id } = await context.params
  const caller = request.headers.get('x-caller-id') ?? 'anonymous'
  return NextResponse.json({ profile: { id, name: `Creator ${id}`, caller }, source: 'none' })
}
