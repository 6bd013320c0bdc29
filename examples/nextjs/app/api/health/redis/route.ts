// GET /api/health/redis: 200 when Redis answers a PING, 503 when not.
export { redisHealthHandler as GET } from '@yesgoddess/redis'

// A native addon needs the Node.js runtime (never Edge), and health is never cached.
export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'
