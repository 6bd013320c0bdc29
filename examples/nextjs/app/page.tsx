export default function Home() {
  return (
    <main>
      <h1>@yesgoddess/redis example</h1>
      <ul>
        <li>GET /api/health/redis</li>
        <li>GET /api/admin/redis/metrics (Authorization: Bearer $METRICS_TOKEN; ?format=prometheus)</li>
        <li>GET /api/admin/redis/dashboard?token=$METRICS_TOKEN (the monitoring dashboard)</li>
        <li>GET /api/profile/[id] (rate-limited, cached, loaded under a lock)</li>
        <li>GET /api/lock/[id] (a short critical section under withLock)</li>
        <li>POST /api/orders (Idempotency-Key required; replayed, 409 while running, 422 for another body; 503 in maintenance)</li>
        <li>GET, POST /api/admin/maintenance (the maintenance switch; POST needs Authorization: Bearer $METRICS_TOKEN)</li>
      </ul>
    </main>
  )
}
