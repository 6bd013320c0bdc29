// POST /api/orders: an idempotent create (draft-ietf-httpapi-idempotency-key-header).
// The client sends an Idempotency-Key (required here: 400 without one); the first
// request creates the order and its 201 is stored; a retry with the same key and
// body gets that 201 replayed (`Idempotent-Replayed: true`) without a second order,
// a retry while the first runs gets 409, and the same key with another body 422.
// Keys are scoped per caller (x-caller-id). While maintenance mode is on
// (/api/admin/maintenance) the route answers 503 with Retry-After instead.
import { randomUUID } from 'node:crypto'
import { headers } from 'next/headers'
import { NextResponse } from 'next/server'
import { counters, idempotentRoute, maintenanceRoute } from '@/lib/redis'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

type Order = { sku: string; amountCents: number }

async function createOrder(request: Request) {
  const order = (await request.json()) as Order
  if (typeof order.sku !== 'string' || !Number.isSafeInteger(order.amountCents)) {
    return NextResponse.json({ error: 'sku and amountCents are required' }, { status: 400 })
  }
  // Next.js request context (AsyncLocalStorage) is intact inside the wrapped handler.
  const caller = (await headers()).get('x-caller-id') ?? 'anonymous'
  const created = await counters.increment('orders-created')
  return NextResponse.json(
    { orderId: randomUUID(), ...order, caller, created },
    { status: 201, headers: { location: '/api/orders/new' } },
  )
}

export const POST = maintenanceRoute(
  idempotentRoute(createOrder, {
    required: true,
    scope: (request) => request.headers.get('x-caller-id'),
  }),
)
