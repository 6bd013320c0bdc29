'use strict'
// The Grafana board and alert rules in docs/grafana/ against the real
// Prometheus output of the metrics handler (a private redis-server): every
// metric the JSON queries exists there, with the labels it matches on, and the
// rules' thresholds are the package's ALERT_THRESHOLDS.
const fs = require('node:fs')
const path = require('node:path')
const { RedisServer } = require('./support/redis-server.js')
const { ROOT, redis, useRedis } = require('./support/client.js')

const { createRedisMetricsHandler, cacheService, ALERT_THRESHOLDS } = redis

const board = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs', 'grafana', 'redis-dashboard.json'), 'utf8'))
const rules = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs', 'grafana', 'redis-alert-rules.json'), 'utf8'))

/** Grafana's placeholders (not JS templates): the import input, and the provisioning environment variable. */
const DS_INPUT = '$' + '{DS_PROMETHEUS}'
const DS_ENV = '$' + '{PROMETHEUS_DATASOURCE_UID}'
/** Labels Prometheus adds at scrape time, not the exporter. */
const SCRAPE_LABELS = new Set(['instance', 'job'])
const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset'])

/** Metric names a PromQL expression selects (not functions, keywords, labels, durations or $variables). */
function metricNames(expr) {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
  const names = []
  for (const m of e.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    if (e[m.index - 1] === '$' || KEYWORDS.has(m[0])) continue
    if (/^\s*\(/.test(e.slice(m.index + m[0].length))) continue // a function
    names.push(m[0])
  }
  return names
}

/** `metric{label op "value", …}` selectors: [{ metric, label, op, value }]. */
function matchers(expr) {
  const out = []
  for (const [, metric, body] of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)) {
    for (const [, label, op, value] of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      out.push({ metric, label, op, value })
    }
  }
  return out
}

/** The Prometheus text format → { metric: [{ labels, value }] }. */
function parsePrometheus(text) {
  const out = {}
  for (const line of text.trim().split('\n')) {
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels = Object.fromEntries([...(m[2] || '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]))
    ;(out[m[1]] ||= []).push({ labels, value: Number(m[3]) })
  }
  return out
}

const panelExprs = board.panels.flatMap((p) => p.targets.map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })))
const ruleList = rules.groups.flatMap((g) => g.rules)
const ruleExprs = ruleList.flatMap((r) =>
  r.data.filter((d) => d.datasourceUid !== '__expr__').map((d) => ({ where: `rule "${r.title}"`, expr: d.model.expr })))

let exposed
beforeAll(async () => {
  const server = await new RedisServer().start()
  try {
    await useRedis({ url: server.url })
    await cacheService.set('cache:user:grafana', { a: 1 })
    await cacheService.get('cache:user:grafana')
    await cacheService.get('cache:user:missing')
    const GET = createRedisMetricsHandler({ authorize: () => true })
    const response = await GET(new Request('http://localhost/api/admin/redis/metrics?format=prometheus'))
    expect(response.status).toBe(200)
    exposed = parsePrometheus(await response.text())
  } finally {
    await redis.closeRedisConnection()
    await server.stop()
    await useRedis()
  }
})
afterAll(() => redis.closeRedisConnection())

test('the tokenizer finds metric names and nothing else', () => {
  expect(metricNames('max without (instance) (rate(redis_a_total{instance=~"$instance"}[$__rate_interval]) / rate(redis_b[5m])) and (redis_c >= 100)'))
    .toEqual(['redis_a_total', 'redis_b', 'redis_c'])
  expect(matchers('redis_x{quantile="0.99",instance=~"$instance"}')).toEqual([
    { metric: 'redis_x', label: 'quantile', op: '=', value: '0.99' },
    { metric: 'redis_x', label: 'instance', op: '=~', value: '$instance' },
  ])
})

test('every metric the dashboard and the alert rules query is in the real Prometheus output', () => {
  const all = [...panelExprs, ...ruleExprs]
  expect(panelExprs.length).toBeGreaterThanOrEqual(10)
  expect(ruleExprs).toHaveLength(5)
  const queried = new Set()
  for (const { where, expr } of all) {
    const names = metricNames(expr)
    expect([where, names.length > 0]).toEqual([where, true])
    for (const name of names) {
      queried.add(name)
      expect([where, name, name in exposed]).toEqual([where, name, true])
    }
    for (const { metric, label, op, value } of matchers(expr)) {
      if (SCRAPE_LABELS.has(label)) continue
      const samples = exposed[metric] || []
      expect([where, metric, label, samples.some((s) => label in s.labels)]).toEqual([where, metric, label, true])
      if (op === '=') expect([where, metric, label, value, samples.some((s) => s.labels[label] === value)]).toEqual([where, metric, label, value, true])
    }
  }
  // The variable's query, too.
  const variable = board.templating.list.find((v) => v.name === 'instance')
  const [, metric] = /^label_values\(([a-zA-Z_:][\w:]*), instance\)$/.exec(variable.query.query)
  expect(metric in exposed).toBe(true)
  // The panels of the built-in page: ops/s, hit rates, memory, latency, errors, clients, keys per prefix, alerts.
  for (const name of ['redis_instantaneous_ops_per_second', 'redis_cache_hits_total', 'redis_keyspace_hits_total', 'redis_memory_usage_ratio',
    'redis_client_latency_seconds', 'redis_client_errors_total', 'redis_connected_clients', 'redis_keys_by_prefix', 'redis_alert']) {
    expect([name, queried.has(name)]).toEqual([name, true])
  }
})

test('an importable dashboard: a data-source input, unique panel ids, a 24-column grid', () => {
  expect(board.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })])
  expect(board.uid).toBe('yesgoddess-redis')
  const ids = board.panels.map((p) => p.id)
  expect(new Set(ids).size).toBe(ids.length)
  for (const p of board.panels) {
    expect(p.datasource).toEqual({ type: 'prometheus', uid: DS_INPUT })
    for (const t of p.targets) expect(t.datasource).toEqual(p.datasource)
    expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24)
  }
  expect(board.panels.map((p) => p.title)).toEqual(['Active alerts', 'Operations per second', 'Cache hit rate', 'Memory used against maxmemory',
    'Command latency p50 / p99', 'Error rate', 'Connected clients', 'Keys per prefix'])
})

test("the alert rules and the panels' dashed lines are the package's thresholds", () => {
  const t = ALERT_THRESHOLDS
  const byUid = Object.fromEntries(ruleList.map((r) => {
    const condition = r.data.find((d) => d.refId === r.condition).model
    return [r.uid, condition.conditions[0].evaluator]
  }))
  expect(byUid).toEqual({
    'yg-redis-cache-hit-rate': { type: 'lt', params: [t.minHitRate] },
    'yg-redis-server-hit-rate': { type: 'lt', params: [t.minHitRate] },
    'yg-redis-memory': { type: 'gt', params: [t.maxMemoryPercent / 100] },
    'yg-redis-latency-p99': { type: 'gt', params: [t.maxP99Ms / 1000] },
    'yg-redis-error-rate': { type: 'gt', params: [t.maxErrorRate] },
  })
  for (const r of ruleList) {
    expect(r.for).toBe('5m')
    expect(r.dashboardUid).toBe(board.uid)
    expect(board.panels.some((p) => p.id === r.panelId)).toBe(true)
    expect(r.data[0].datasourceUid).toBe(DS_ENV)
  }
  const dashed = (title) => {
    const d = board.panels.find((p) => p.title === title).fieldConfig.defaults
    expect(d.custom.thresholdsStyle.mode).toBe('dashed')
    return d.thresholds.steps.map((s) => s.value).filter((v) => v !== null)
  }
  expect(dashed('Cache hit rate')).toEqual([t.minHitRate])
  expect(dashed('Memory used against maxmemory')).toEqual([t.maxMemoryPercent / 100])
  expect(dashed('Command latency p50 / p99')).toEqual([t.maxP99Ms / 1000])
  expect(dashed('Error rate')).toEqual([t.maxErrorRate])
})
