// GET /api/admin/redis/dashboard: the monitoring page, its ?format=json and
// its ?asset=uplot.js / ?asset=uplot.css, behind the same token as the metrics
// route. A browser cannot send an Authorization header from the address bar,
// so the token may also come as ?token=… (the page keeps it on every request
// it makes); behind your own login, authorize by the session cookie instead.
import { createRedisDashboardHandler } from '@yesgoddess/redis'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

export const GET = createRedisDashboardHandler({
  authorize: (request) => {
    const token = process.env.METRICS_TOKEN
    if (!token) return false
    return request.headers.get('authorization') === `Bearer ${token}` ||
      new URL(request.url).searchParams.get('token') === token
  },
  refreshMs: Number(process.env.DASHBOARD_REFRESH_MS) || 5000,
})
