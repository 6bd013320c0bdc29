'use strict'
// Preloaded into both apps' `next start` by bench/route.js (NODE_OPTIONS
// --require), the same file in both: it splits each request's latency into
// the part before Next.js sees the request and the part inside the server.
//   arrival:  from the load generator's write (its `x-sent` header: epoch ms,
//             stamped just before autocannon writes the request) to the HTTP
//             server's 'request' event. The request waits in the socket until
//             the server's event loop reads it; no route code runs yet.
//   inServer: from the 'request' event to the response's 'finish' (the
//             route's own work, its Redis calls included, and Next.js's).
// `GET /__bench/timing` (answered here, never reaching Next.js) returns the
// figures of the requests since the previous call and starts over.

const http = require('node:http')

const PATH = '/__bench/timing'
let arrival = []
let inServer = []

const now = () => performance.timeOrigin + performance.now()

function summary(values) {
  const sorted = Float64Array.from(values).sort()
  const at = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : 0)
  return { n: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted.length ? sorted[sorted.length - 1] : 0 }
}

const emit = http.Server.prototype.emit
http.Server.prototype.emit = function (event, req, res) {
  if (event === 'request') {
    if (req.url === PATH) {
      const body = JSON.stringify({ arrival: summary(arrival), inServer: summary(inServer) })
      arrival = []
      inServer = []
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(body)
      return true
    }
    const sent = Number(req.headers['x-sent'])
    if (sent > 0) {
      const seen = now()
      arrival.push(seen - sent)
      res.once('finish', () => inServer.push(now() - seen))
    }
  }
  return emit.apply(this, arguments)
}
