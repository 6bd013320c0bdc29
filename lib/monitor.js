'use strict'
// Monitoring: health from a PING, metrics from INFO plus a bounded SCAN, this
// process's command figures from the histogram kept in Rust, alerts from the
// seed's thresholds, the two Next.js App Router handlers, and the history
// (a ring buffer sampled only while something asks) behind the dashboard.

const { runtime, native, Op, Flag, invalid } = require('./runtime.js')
const { getRedisClient, getConnectionStatus, clusterMasters } = require('./client.js')
const { cacheService } = require('./cache.js')

const { request } = runtime

/** The seed's thresholds ("Monitoring and Alerts"). */
const ALERT_THRESHOLDS = Object.freeze({
  /** Cache hit rate below this (a fraction) is inefficient caching. */
  minHitRate: 0.7,
  /** Memory use above this percentage risks evictions. */
  maxMemoryPercent: 85,
  /** Command latency p99 above this many milliseconds. */
  maxP99Ms: 100,
  /** Command errors above this fraction of commands. */
  maxErrorRate: 0.01,
})
/** Every alert getRedisMetrics can raise (each is a `redis_alert{name}` series, 0 or 1). */
const ALERT_NAMES = ['lowCacheHitRate', 'lowServerHitRate', 'highMemory', 'highLatency', 'highErrorRate', 'connectedClientsGrowing']
/** Lookups needed before a hit rate is judged (a handful of misses after a deploy is not an alert). */
const MIN_LOOKUPS = 100

/** The key prefixes of the seed's conventions, counted by keyDistribution. */
const PREFIXES = native.prefixTtls().map(([prefix]) => prefix.replace(/:$/, ''))
/** keyDistribution looks at most this many keys (or this long), then estimates. */
const SCAN_KEY_CAP = 100000
const SCAN_TIME_CAP_MS = 250
const SCAN_COUNT = 1000

const HEALTH_TIMEOUT_MS = 1000

/** Rejects after `ms` with a timeout error; the wrapped promise's own rejection is handled. */
function within(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms)
  })
  promise.catch(() => {}) // it may still fail after the timeout: never unhandled
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** One request to one cluster node (`host:port`), failing at once while its connection is re-made. */
function toNode(node, command, args = []) {
  return request(Op.CALL | Flag.DEGRADED | Flag.NODE, node, [command, ...args])
}

/**
 * A cluster's health: a PING to every master and `CLUSTER INFO` from one of
 * them, all at once; healthy only when every master answers and
 * `cluster_state` is `ok`. `cluster: { state, masters: [{ address, healthy, error? }] }`.
 */
async function clusterHealth(masters, started, timeoutMs) {
  const pings = masters.map((node) => within(toNode(node, 'PING'), timeoutMs, `Redis PING to ${node}`))
  const info = within(toNode(masters[0], 'CLUSTER', ['INFO']), timeoutMs, `CLUSTER INFO from ${masters[0]}`)
  const [answers, infoOutcome] = await Promise.all([Promise.allSettled(pings), Promise.allSettled([info])])
  const latencyMs = Math.round((performance.now() - started) * 100) / 100
  const nodes = masters.map((address, i) => {
    const outcome = answers[i]
    if (outcome.status === 'fulfilled' && outcome.value === 'PONG') return { address, healthy: true }
    const reason = outcome.status === 'rejected' ? outcome.reason : new Error(`unexpected PING reply ${String(outcome.value)}`)
    return { address, healthy: false, error: (reason && reason.message) || String(reason) }
  })
  const clusterInfo = infoOutcome[0].status === 'fulfilled' ? parseInfo(infoOutcome[0].value) : {}
  const state = String(clusterInfo.cluster_state ?? 'unknown')
  const cluster = { state, masters: nodes }
  const status = getConnectionStatus().state
  const down = nodes.filter((n) => !n.healthy)
  if (down.length === 0 && state === 'ok') return { healthy: true, latencyMs, status, cluster }
  const error =
    down.length > 0
      ? `${down.length} of ${nodes.length} masters did not answer: ${down.map((n) => `${n.address} (${n.error})`).join('; ')}`
      : infoOutcome[0].status === 'rejected'
        ? `CLUSTER INFO failed: ${infoOutcome[0].reason && infoOutcome[0].reason.message}`
        : `cluster_state is ${state}`
  return { healthy: false, latencyMs, status, error, code: down.length > 0 ? 'ENODE' : 'ECLUSTERSTATE', cluster }
}

/**
 * PINGs Redis: `{ healthy, latencyMs, status, error? }`; on a cluster every
 * master, plus `cluster_state` (and a `cluster` section). Never throws, and
 * answers within `timeoutMs` (default 1000) whatever the server does.
 */
async function checkRedisHealth(options = {}) {
  const timeoutMs = options.timeoutMs ?? HEALTH_TIMEOUT_MS
  const started = performance.now()
  try {
    const masters = await within(clusterMasters(), timeoutMs, 'the cluster slot map')
    if (masters !== null) return await clusterHealth(masters, started, timeoutMs)
    // DEGRADED: while the connection is re-made the probe answers at once.
    const reply = await within(request(Op.CALL | Flag.DEGRADED, 'PING', []), timeoutMs, 'Redis PING')
    const latencyMs = Math.round((performance.now() - started) * 100) / 100
    if (reply !== 'PONG') throw new Error(`unexpected PING reply ${String(reply)}`)
    return { healthy: true, latencyMs, status: getConnectionStatus().state }
  } catch (error) {
    return {
      healthy: false,
      latencyMs: Math.round((performance.now() - started) * 100) / 100,
      status: getConnectionStatus().state,
      error: (error && error.message) || String(error),
      code: (error && error.code) || 'ERROR',
    }
  }
}

/** INFO text → { section: { field: value } } with numbers as numbers. */
function parseInfo(text) {
  const out = {}
  let section = out
  for (const line of text.split('\r\n')) {
    if (line.startsWith('# ')) {
      section = out[line.slice(2).trim().toLowerCase()] = {}
    } else if (line.includes(':')) {
      const at = line.indexOf(':')
      const value = line.slice(at + 1)
      section[line.slice(0, at)] = value !== '' && !Number.isNaN(Number(value)) ? Number(value) : value
    }
  }
  return out
}

/** `keys=3,expires=2,avg_ttl=0` → { keys, expires, avgTtlMs }. */
function parseKeyspace(section) {
  const out = {}
  for (const [db, value] of Object.entries(section || {})) {
    const fields = Object.fromEntries(String(value).split(',').map((kv) => kv.split('=')))
    out[db] = { keys: Number(fields.keys || 0), expires: Number(fields.expires || 0), avgTtlMs: Number(fields.avg_ttl || 0) }
  }
  return out
}

/**
 * Counts keys per prefix with SCAN (never KEYS), COUNT 1000 per call so no
 * call blocks the server for long. It looks at no more than 100,000 keys or
 * 250 ms; beyond that the figures are estimated from what was seen (SCAN visits
 * keys in hash order, a fair sample) and `exact` is false.
 */
async function keyDistribution(totalKeys) {
  const counts = Object.fromEntries([...PREFIXES, 'other'].map((p) => [p, 0]))
  let scanned = 0
  let complete = true
  const started = Date.now()
  const iterator = getRedisClient().scan({ match: '*', count: SCAN_COUNT })
  for await (const keys of iterator) {
    for (const key of keys) {
      const at = key.indexOf(':')
      const prefix = at > 0 ? key.slice(0, at) : ''
      if (Object.prototype.hasOwnProperty.call(counts, prefix) && prefix !== 'other') counts[prefix]++
      else counts.other++
    }
    scanned += keys.length
    if (scanned >= SCAN_KEY_CAP || Date.now() - started >= SCAN_TIME_CAP_MS) {
      complete = false
      break
    }
  }
  if (!complete && scanned > 0 && totalKeys > scanned) {
    const scale = totalKeys / scanned
    for (const name of Object.keys(counts)) counts[name] = Math.round(counts[name] * scale)
  }
  const total = complete ? scanned : Math.max(totalKeys, scanned)
  return { ...counts, total, scanned, exact: complete }
}

/** connected_clients seen by this process's recent getRedisMetrics calls. */
const clientSamples = runtime.shared('monitor', () => ({ clientSamples: [] })).clientSamples
const CLIENT_SAMPLES = 10

/** True when connected clients only grew over the recent samples, by at least 10 and 50 %. */
function clientsGrowing(connected) {
  clientSamples.push(connected)
  if (clientSamples.length > CLIENT_SAMPLES) clientSamples.shift()
  if (clientSamples.length < 3) return false
  for (let i = 1; i < clientSamples.length; i++) if (clientSamples[i] < clientSamples[i - 1]) return false
  const first = clientSamples[0]
  return connected - first >= 10 && connected >= first * 1.5
}

function alertsFor(metrics) {
  const alerts = []
  const add = (name, message, value, threshold) => alerts.push({ name, severity: 'warning', message, value, threshold })
  const { cache, stats, memory, client, clients } = metrics
  const cacheLookups = cache.hits + cache.misses
  const serverLookups = stats.keyspaceHits + stats.keyspaceMisses
  if (cacheLookups >= MIN_LOOKUPS && cache.hitRate < ALERT_THRESHOLDS.minHitRate) {
    add('lowCacheHitRate', `cache hit rate ${(cache.hitRate * 100).toFixed(1)} % is below 70 %`, cache.hitRate, ALERT_THRESHOLDS.minHitRate)
  }
  if (serverLookups >= MIN_LOOKUPS && stats.hitRate < ALERT_THRESHOLDS.minHitRate) {
    add('lowServerHitRate', `server keyspace hit rate ${(stats.hitRate * 100).toFixed(1)} % is below 70 %`, stats.hitRate, ALERT_THRESHOLDS.minHitRate)
  }
  if (memory.usagePercent !== null && memory.usagePercent > ALERT_THRESHOLDS.maxMemoryPercent) {
    add('highMemory', `memory use ${memory.usagePercent.toFixed(1)} % is above 85 %`, memory.usagePercent, ALERT_THRESHOLDS.maxMemoryPercent)
  }
  if (client.latencyP99Ms > ALERT_THRESHOLDS.maxP99Ms) {
    add('highLatency', `command latency p99 ${client.latencyP99Ms} ms is above 100 ms`, client.latencyP99Ms, ALERT_THRESHOLDS.maxP99Ms)
  }
  if (client.commands > 0 && client.errorRate > ALERT_THRESHOLDS.maxErrorRate) {
    add('highErrorRate', `command error rate ${(client.errorRate * 100).toFixed(2)} % is above 1 %`, client.errorRate, ALERT_THRESHOLDS.maxErrorRate)
  }
  if (clients.growing) {
    add('connectedClientsGrowing', `connected clients keep growing (${clientSamples.join(' → ')}): a connection leak?`, clients.connected, null)
  }
  return alerts
}

/**
 * Server and process metrics with alerts from the seed's thresholds. Rejects
 * when Redis cannot be reached (use checkRedisHealth for a probe that never does).
 */
async function getRedisMetrics() {
  const masters = await clusterMasters()
  let info
  let db
  let clusterSection = null
  if (masters === null) {
    // Both in the same tick: one batch, one round trip.
    const [infoText, size] = await Promise.all([request(Op.CALL, 'INFO', ['everything']), request(Op.CALL, 'DBSIZE', [])])
    info = parseInfo(infoText)
    db = size
  } else {
    // Every master at once; CLUSTER INFO from the first.
    const each = (command, args) => Promise.all(masters.map((node) => request(Op.CALL | Flag.NODE, node, [command, ...args])))
    const [infos, sizes, clusterInfoText] = await Promise.all([
      each('INFO', ['everything']),
      each('DBSIZE', []),
      request(Op.CALL | Flag.NODE, masters[0], ['CLUSTER', 'INFO']),
    ])
    info = sumInfos(infos.map(parseInfo))
    db = sizes.reduce((a, b) => a + b, 0)
    clusterSection = clusterFigures(parseInfo(clusterInfoText))
  }
  const server = info.server || {}
  const mem = info.memory || {}
  const st = info.stats || {}
  const cl = info.clients || {}
  const keyspace = parseKeyspace(info.keyspace)
  const totalKeys = Object.values(keyspace).reduce((sum, db) => sum + db.keys, 0)
  const distribution = await keyDistribution(db)

  const maxmemory = Number(mem.maxmemory || 0)
  const systemMemory = Number(mem.total_system_memory || 0)
  const used = Number(mem.used_memory || 0)
  const basis = maxmemory > 0 ? maxmemory : systemMemory
  const hits = Number(st.keyspace_hits || 0)
  const misses = Number(st.keyspace_misses || 0)
  const commandFigures = native.commandMetrics()
  const status = getConnectionStatus()
  const connected = Number(cl.connected_clients || 0)

  const metrics = {
    timestamp: new Date().toISOString(),
    memory: {
      usedBytes: used,
      usedHuman: String(mem.used_memory_human || ''),
      peakBytes: Number(mem.used_memory_peak || 0),
      fragmentationRatio: Number(mem.mem_fragmentation_ratio || 0),
      maxmemoryBytes: maxmemory,
      /** Of maxmemory, or of the machine's memory when maxmemory is 0 (no limit); null when neither is known. */
      usagePercent: basis > 0 ? (used / basis) * 100 : null,
      usageOf: maxmemory > 0 ? 'maxmemory' : systemMemory > 0 ? 'system' : null,
      evictionPolicy: String(mem.maxmemory_policy || ''),
    },
    stats: {
      opsPerSec: Number(st.instantaneous_ops_per_sec || 0),
      hitRate: hits + misses === 0 ? 0 : hits / (hits + misses),
      keyspaceHits: hits,
      keyspaceMisses: misses,
      evictedKeys: Number(st.evicted_keys || 0),
      expiredKeys: Number(st.expired_keys || 0),
      totalCommandsProcessed: Number(st.total_commands_processed || 0),
      totalConnectionsReceived: Number(st.total_connections_received || 0),
    },
    clients: {
      connected,
      blocked: Number(cl.blocked_clients || 0),
      growing: clientsGrowing(connected),
    },
    server: {
      version: String(server.redis_version || ''),
      uptimeSeconds: Number(server.uptime_in_seconds || 0),
      mode: masters === null ? String(server.redis_mode || '') : 'cluster',
    },
    keyspace,
    totalKeys,
    keyDistribution: distribution,
    cache: cacheService.getStats(),
    client: {
      commands: commandFigures.commands,
      errors: commandFigures.errors,
      errorRate: commandFigures.commands === 0 ? 0 : commandFigures.errors / commandFigures.commands,
      latencyP50Ms: commandFigures.p50Ms,
      latencyP99Ms: commandFigures.p99Ms,
      reconnects: status.reconnects,
      state: status.state,
    },
  }
  if (clusterSection !== null) metrics.cluster = clusterSection
  metrics.alerts = alertsFor(metrics)
  return metrics
}

/**
 * The INFO of several masters as one: counters and sizes summed (keyspace per
 * db, stats, clients, memory), ratios and the rest from the worst or the first.
 */
function sumInfos(infos) {
  const out = {}
  const worst = new Set(['mem_fragmentation_ratio'])
  const first = new Set(['maxmemory_policy', 'used_memory_human', 'total_system_memory'])
  for (const info of infos) {
    for (const [name, section] of Object.entries(info)) {
      if (section === null || typeof section !== 'object') continue
      const into = (out[name] ??= {})
      for (const [field, value] of Object.entries(section)) {
        if (name === 'keyspace') {
          const fields = Object.fromEntries(String(value).split(',').map((kv) => kv.split('=')))
          const had = into[field] ? Object.fromEntries(String(into[field]).split(',').map((kv) => kv.split('='))) : {}
          const keys = Number(had.keys || 0) + Number(fields.keys || 0)
          const expires = Number(had.expires || 0) + Number(fields.expires || 0)
          into[field] = `keys=${keys},expires=${expires},avg_ttl=${Math.max(Number(had.avg_ttl || 0), Number(fields.avg_ttl || 0))}`
        } else if (!(field in into) || first.has(field)) {
          if (!(field in into)) into[field] = value
        } else if (worst.has(field)) {
          into[field] = Math.max(Number(into[field]) || 0, Number(value) || 0)
        } else if (typeof value === 'number' && typeof into[field] === 'number') {
          into[field] = field === 'uptime_in_seconds' ? Math.min(into[field], value) : into[field] + value
        }
      }
    }
  }
  if (out.memory && typeof out.memory.used_memory === 'number') out.memory.used_memory_human = humanBytes(out.memory.used_memory)
  return out
}

function humanBytes(n) {
  const units = ['B', 'K', 'M', 'G', 'T']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${i === 0 ? v : v.toFixed(2)}${units[i]}`
}

/** The `cluster` section of getRedisMetrics(): CLUSTER INFO plus the client's view of the nodes. */
function clusterFigures(clusterInfo) {
  const nodes = (native.clusterNodes() || []).map((n) => ({
    address: n.address,
    role: n.role,
    slots: n.slots,
    connected: n.state === 'ready',
  }))
  return {
    state: String(clusterInfo.cluster_state ?? 'unknown'),
    slotsOk: Number(clusterInfo.cluster_slots_ok ?? 0),
    masters: nodes.filter((n) => n.role === 'master').length,
    replicas: nodes.filter((n) => n.role !== 'master').length,
    nodes,
  }
}

// ── History: the samples behind the dashboard's charts ───────────────────────

/** One sample every 10 s, one hour of them. */
const HISTORY_STEP_MS = 10000
const HISTORY_SIZE = 360
/** The sampler stops when nobody has asked for the history for this long. */
const HISTORY_IDLE_MS = 120000

/**
 * Per-process history state (runtime.shared: a module evaluated again — Next.js
 * dev hot reload — finds the same buffer and the same timer, never a second one).
 * `ring` holds up to `size` samples; `head` is the slot the next one goes in.
 */
const history = runtime.shared('monitor.history', () => ({
  stepMs: HISTORY_STEP_MS,
  size: HISTORY_SIZE,
  idleMs: HISTORY_IDLE_MS,
  ring: [],
  head: 0,
  timer: null,
  inFlight: false,
  /** The promise of the last sample started (settles when it is done), or null. */
  current: null,
  /** The sampler stops at its first tick after this time (ms since the epoch). */
  wantedUntil: 0,
  /** Bumped by resetHistory, so that a sample in flight across a reset is dropped. */
  generation: 0,
  /** True from an ask until the next tick: an ask may (re)connect; the timer alone may not. */
  asked: false,
}))

/** The numeric fields of a getRedisMetrics() result, grouped as there, with `at`. */
function toSample(m) {
  const d = m.keyDistribution
  const distribution = {}
  for (const prefix of [...PREFIXES, 'other', 'total', 'scanned']) distribution[prefix] = Number(d[prefix] || 0)
  return {
    at: new Date(m.timestamp),
    memory: {
      usedBytes: m.memory.usedBytes,
      peakBytes: m.memory.peakBytes,
      fragmentationRatio: m.memory.fragmentationRatio,
      maxmemoryBytes: m.memory.maxmemoryBytes,
      usagePercent: m.memory.usagePercent,
    },
    stats: {
      opsPerSec: m.stats.opsPerSec,
      hitRate: m.stats.hitRate,
      keyspaceHits: m.stats.keyspaceHits,
      keyspaceMisses: m.stats.keyspaceMisses,
      evictedKeys: m.stats.evictedKeys,
      expiredKeys: m.stats.expiredKeys,
      totalCommandsProcessed: m.stats.totalCommandsProcessed,
      totalConnectionsReceived: m.stats.totalConnectionsReceived,
    },
    clients: { connected: m.clients.connected, blocked: m.clients.blocked },
    server: { uptimeSeconds: m.server.uptimeSeconds },
    totalKeys: m.totalKeys,
    keyDistribution: distribution,
    cache: {
      hits: m.cache.hits,
      misses: m.cache.misses,
      hitRate: m.cache.hitRate,
      sets: m.cache.sets,
      deletes: m.cache.deletes,
      errors: m.cache.errors,
    },
    client: {
      commands: m.client.commands,
      errors: m.client.errors,
      errorRate: m.client.errorRate,
      latencyP50Ms: m.client.latencyP50Ms,
      latencyP99Ms: m.client.latencyP99Ms,
      reconnects: m.client.reconnects,
    },
  }
}

function deepFreeze(value) {
  for (const inner of Object.values(value)) if (inner && typeof inner === 'object' && !(inner instanceof Date)) deepFreeze(inner)
  return Object.freeze(value)
}

function stopSampler() {
  if (history.timer !== null) clearInterval(history.timer)
  history.timer = null
}

/** One tick: stop when nobody asked for a while, else take a sample (never two at once, never throws). */
async function sampleTick() {
  if (Date.now() > history.wantedUntil) {
    stopSampler()
    return
  }
  // A client the application closed since the last ask is not opened again
  // for the history (a new ask is a new request, and may connect).
  const asked = history.asked
  history.asked = false
  if (!asked && getConnectionStatus().state === 'closed') {
    stopSampler()
    return
  }
  if (history.inFlight) return
  history.inFlight = true
  const generation = history.generation
  let settled
  history.current = new Promise((resolve) => (settled = resolve))
  try {
    const sample = deepFreeze(toSample(await getRedisMetrics()))
    if (generation !== history.generation) return
    history.ring[history.head] = sample
    history.head = (history.head + 1) % history.size
  } catch {
    // Redis could not be read: that step is missing from the history; the next tick tries again.
  } finally {
    // A sample that outlived a reset does not clear the flag of the sampler started since.
    if (generation === history.generation) history.inFlight = false
    settled()
  }
}

/**
 * Marks the history as wanted (for at least `keepAliveMs`, or the idle time)
 * and starts the sampler when it is not running: a sample now, then one every
 * step, by an unref'd timer that stops once nobody has asked for a while.
 */
function wantHistory(keepAliveMs = 0) {
  history.wantedUntil = Math.max(history.wantedUntil, Date.now() + Math.max(history.idleMs, keepAliveMs))
  history.asked = true
  if (history.timer !== null) return
  history.timer = setInterval(sampleTick, history.stepMs)
  history.timer.unref()
  sampleTick()
}

/** The kept samples, oldest first. */
function keptSamples() {
  const { ring, head, size } = history
  return ring.length < size ? ring.slice() : ring.slice(head).concat(ring.slice(0, head))
}

/**
 * The last hour of this process's metrics at 10 s steps, oldest first:
 * `[{ at: Date, ...the numeric fields of getRedisMetrics() }]` (frozen). Asking
 * keeps the sampler running (it starts on the first call, which therefore
 * returns what was kept before, possibly nothing); with nobody asking it stops,
 * so an idle process does no Redis work for it.
 */
function getRedisMetricsHistory() {
  wantHistory()
  return keptSamples()
}

/**
 * Test and tuning hook (not exported by the package): `stepMs`, `size`, `idleMs`
 * of the sampler; stops it and empties the buffer. `resetHistory()` restores the defaults.
 */
function resetHistory(options = {}) {
  stopSampler()
  history.stepMs = options.stepMs ?? HISTORY_STEP_MS
  history.size = options.size ?? HISTORY_SIZE
  history.idleMs = options.idleMs ?? HISTORY_IDLE_MS
  history.ring = []
  history.head = 0
  history.wantedUntil = 0
  history.asked = false
  history.inFlight = false
  history.generation++
}

/** Whether the sampler's timer is running (for tests and the dashboard's JSON). */
const historySampling = () => history.timer !== null
/** Test hook: resolves once the last sample started (even one from before a reset) has finished. */
const historySettled = () => history.current ?? Promise.resolve()
/** The sampler's step and buffer size in force. */
const historySettings = () => ({ stepMs: history.stepMs, size: history.size, idleMs: history.idleMs })

// ── Prometheus text exposition ───────────────────────────────────────────────

function escapeLabel(value) {
  return String(value).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

/** Metrics in the Prometheus text format (version 0.0.4). */
function toPrometheus(m) {
  const lines = []
  const metric = (name, type, help, samples) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, value] of samples) {
      if (value === null || value === undefined || Number.isNaN(value)) continue
      const labelText = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')
      lines.push(`${name}${labelText ? `{${labelText}}` : ''} ${Number(value)}`)
    }
  }
  const one = (value) => [[{}, value]]
  metric('redis_memory_used_bytes', 'gauge', 'Memory used by the Redis server.', one(m.memory.usedBytes))
  metric('redis_memory_peak_bytes', 'gauge', 'Peak memory used by the Redis server.', one(m.memory.peakBytes))
  metric('redis_memory_max_bytes', 'gauge', 'maxmemory (0 means no limit).', one(m.memory.maxmemoryBytes))
  metric('redis_memory_fragmentation_ratio', 'gauge', 'RSS over used memory.', one(m.memory.fragmentationRatio))
  metric('redis_memory_usage_ratio', 'gauge', 'Used memory as a fraction of maxmemory (or of system memory).',
    one(m.memory.usagePercent === null ? null : m.memory.usagePercent / 100))
  metric('redis_info', 'gauge', 'Server version, mode and eviction policy (always 1).',
    [[{ version: m.server.version, mode: m.server.mode, eviction_policy: m.memory.evictionPolicy }, 1]])
  metric('redis_uptime_seconds', 'gauge', 'Server uptime.', one(m.server.uptimeSeconds))
  metric('redis_instantaneous_ops_per_second', 'gauge', 'Commands per second the server reports.', one(m.stats.opsPerSec))
  metric('redis_keyspace_hits_total', 'counter', 'Successful key lookups on the server.', one(m.stats.keyspaceHits))
  metric('redis_keyspace_misses_total', 'counter', 'Failed key lookups on the server.', one(m.stats.keyspaceMisses))
  metric('redis_keyspace_hit_ratio', 'gauge', 'Server keyspace hits over lookups.', one(m.stats.hitRate))
  metric('redis_evicted_keys_total', 'counter', 'Keys evicted for maxmemory.', one(m.stats.evictedKeys))
  metric('redis_expired_keys_total', 'counter', 'Keys that expired.', one(m.stats.expiredKeys))
  metric('redis_connected_clients', 'gauge', 'Client connections.', one(m.clients.connected))
  metric('redis_blocked_clients', 'gauge', 'Clients blocked in a blocking command.', one(m.clients.blocked))
  metric('redis_db_keys', 'gauge', 'Keys per database.', Object.entries(m.keyspace).map(([db, v]) => [{ db }, v.keys]))
  metric('redis_keys_by_prefix', 'gauge', 'Keys per key prefix of the conventions (estimated when redis_keys_by_prefix_exact is 0).',
    [...PREFIXES, 'other'].map((p) => [{ prefix: p }, m.keyDistribution[p]]))
  metric('redis_keys_by_prefix_exact', 'gauge', '1 when the per-prefix counts come from a complete scan.', one(m.keyDistribution.exact ? 1 : 0))
  metric('redis_cache_hits_total', 'counter', 'cacheService hits in this process.', one(m.cache.hits))
  metric('redis_cache_misses_total', 'counter', 'cacheService misses in this process.', one(m.cache.misses))
  metric('redis_cache_sets_total', 'counter', 'cacheService writes in this process.', one(m.cache.sets))
  metric('redis_cache_deletes_total', 'counter', 'Keys cacheService removed in this process.', one(m.cache.deletes))
  metric('redis_cache_errors_total', 'counter', 'cacheService errors in this process.', one(m.cache.errors))
  metric('redis_cache_hit_ratio', 'gauge', 'cacheService hits over lookups in this process.', one(m.cache.hitRate))
  metric('redis_client_commands_total', 'counter', 'Commands this process finished.', one(m.client.commands))
  metric('redis_client_errors_total', 'counter', 'Commands of this process that failed.', one(m.client.errors))
  metric('redis_client_latency_seconds', 'gauge', 'Command latency quantiles in this process.', [
    [{ quantile: '0.5' }, m.client.latencyP50Ms / 1000],
    [{ quantile: '0.99' }, m.client.latencyP99Ms / 1000],
  ])
  metric('redis_client_reconnects_total', 'counter', 'Reconnections of this process.', one(m.client.reconnects))
  metric('redis_alert', 'gauge', 'Alerts from the thresholds (1 firing, 0 not).',
    ALERT_NAMES.map((name) => [{ name }, m.alerts.some((a) => a.name === name) ? 1 : 0]))
  return lines.join('\n') + '\n'
}

// ── Next.js App Router handlers ──────────────────────────────────────────────

function json(body, status) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  })
}

/** What the public health endpoint says of a failure: never a host, port or user. */
const PUBLIC_REASONS = {
  ETIMEDOUT: 'Redis did not answer in time',
  EAUTH: 'Redis refused the credentials',
  ECONNECTION: 'Redis is unreachable',
  ECLOSED: 'the Redis client is closed',
}

/**
 * `GET /api/health/redis`: 200 `{ healthy: true, status, latencyMs }`, or 503
 * with `healthy: false` and a generic reason. The endpoint is public, so its
 * body never names the Redis host, port or user: the details are in
 * `getRedisMetrics()` / `getConnectionStatus().lastError`, behind `authorize`.
 */
async function redisHealthHandler() {
  const health = await checkRedisHealth()
  if (health.healthy) return json({ healthy: true, status: health.status, latencyMs: health.latencyMs }, 200)
  return json(
    {
      healthy: false,
      status: 'unhealthy',
      latencyMs: health.latencyMs,
      error: PUBLIC_REASONS[health.code] || 'Redis is not healthy',
    },
    503,
  )
}

/**
 * `authorize(request)` alone decides (it may be async, and may look at any
 * header, a query token or the client's address): truthy → null (go on);
 * falsy → 401 with `WWW-Authenticate` when the request carried no
 * credentials (no `Authorization` or `Cookie` header), else 403; a throw → 403.
 */
async function authorizationRefusal(authorize, request) {
  let allowed
  try {
    allowed = Boolean(await authorize(request))
  } catch {
    return json({ error: 'Forbidden' }, 403)
  }
  if (allowed) return null
  const headers = request.headers
  if (!headers.get('authorization') && !headers.get('cookie')) {
    return new Response(JSON.stringify({ error: 'Authentication required' }), {
      status: 401,
      headers: { 'content-type': 'application/json; charset=utf-8', 'www-authenticate': 'Bearer', 'cache-control': 'no-store' },
    })
  }
  return json({ error: 'Forbidden' }, 403)
}

/**
 * A `GET` handler for `/api/admin/redis/metrics`, guarded by `authorize(request)`
 * (see authorizationRefusal). JSON by default; `?format=prometheus` gives the
 * Prometheus text format. 503 when Redis cannot be reached.
 */
function createRedisMetricsHandler(options = {}) {
  const { authorize } = options
  if (typeof authorize !== 'function') {
    throw invalid('createRedisMetricsHandler({ authorize }): authorize(request) must be a function')
  }
  return async function GET(request) {
    const refusal = await authorizationRefusal(authorize, request)
    if (refusal !== null) return refusal
    let metrics
    try {
      metrics = await getRedisMetrics()
    } catch (error) {
      return json({ error: 'Redis metrics unavailable', detail: (error && error.message) || String(error) }, 503)
    }
    const format = new URL(request.url, 'http://localhost').searchParams.get('format')
    if (format === 'prometheus') {
      return new Response(toPrometheus(metrics), {
        status: 200,
        headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' },
      })
    }
    return json(metrics, 200)
  }
}

module.exports = {
  checkRedisHealth,
  getRedisMetrics,
  getRedisMetricsHistory,
  wantHistory,
  keptSamples,
  toSample,
  resetHistory,
  historySampling,
  historySettled,
  historySettings,
  authorizationRefusal,
  HISTORY_STEP_MS,
  HISTORY_SIZE,
  HISTORY_IDLE_MS,
  ALERT_NAMES,
  PREFIXES,
  redisHealthHandler,
  createRedisMetricsHandler,
  toPrometheus,
  ALERT_THRESHOLDS,
  resetCommandMetrics: () => native.resetCommandMetrics(),
}
