// /api/admin/maintenance: the maintenance switch. GET reads it (through the flag
// cache); POST { on, message? } sets it, for callers with `Authorization: Bearer
// $METRICS_TOKEN`. Routes wrapped in maintenanceRoute answer 503 while it is on.
import { NextResponse } from 'next/server'
import { featureFlags } from '@/lib/redis'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

function authorized(request: Request): boolean {
  const token = process.env.METRICS_TOKEN
  return Boolean(token) && request.headers.get('authorization') === `Bearer ${token}`
}

export async function GET() {
  return NextResponse.json(await featureFlags.getMaintenance(), { headers: { 'cache-control': 'no-store' } })
}

export async function POST(request: Request) {
  if (!authorized(request)) return NextResponse.json({ error: 'Forbidden' }, { status: 403 })
  const body = (await request.json().catch(() => null)) as { on?: unknown; message?: unknown } | null
  if (!body || typeof body.on !== 'boolean' || (body.message !== undefined && typeof body.message !== 'string')) {
    return NextResponse.json({ error: 'Send { "on": boolean, "message"?: string }' }, { status: 400 })
  }
  await featureFlags.setMaintenanceMode(body.on, { message: body.message })
  return NextResponse.json(await featureFlags.getMaintenance())
}
