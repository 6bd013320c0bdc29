// GET /api/admin/redis/metrics: 401 without credentials, 403 with a wrong token,
// JSON by default, the Prometheus text format with ?format=prometheus.
import { createRedisMetricsHandler } from '@yesgoddess/redis'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

export const GET = createRedisMetricsHandler({
  authorize: (request) => {
    const token = process.env.METRICS_TOKEN
    return Boolean(token) && request.headers.get('authorization') === `Bearer ${token}`
  },
})
