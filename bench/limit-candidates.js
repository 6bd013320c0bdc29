'use strict'
// The structures considered for the sliding window (issue 15), measured by the
// server's own figures on a private redis-server: INFO commandstats usec per
// EVALSHA and the redis-server process's CPU (user + system from /proc) per
// call, and MEMORY USAGE of a full window at limit 100. Each candidate is one
// script with the same ARGV (limit, window ms, consume, cost) and the same
// decisions; the pipelined load comes from ioredis (the client's own cost is
// not in these figures).
//   node bench/limit-candidates.js [--repeat 3]
// Scenarios (window 60 s, limit 100, one key per identifier, round robin):
//   bench  1,000 identifiers × 20 calls: small windows, all allowed (like the limit suite)
//   fill   200 identifiers from empty to full (100 calls each), all allowed
//   full   the same again on the full windows: all denied
//   cost4  200 identifiers × 50 calls of cost 4: 25 allowed each, then 25 denied
const fs = require('node:fs')
const path = require('node:path')
const Redis = require('ioredis')
const { RedisServer } = require('../__test__/support/redis-server.js')

const ROOT = path.resolve(__dirname, '..')
const LIMIT = 100
const WINDOW_MS = 60000

/** A list of timestamps (µs) newest first, capped at the slots in the window. */
const LIST_HEAD = `
local limit = tonumber(ARGV[1])
local window_us = tonumber(ARGV[2]) * 1000
local cost = tonumber(ARGV[4]) or 1
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local key = KEYS[1]
local cutoff = now - window_us
local probe = limit - cost
`
const LIST_TAIL = `
local allowed, retry = 0, 0
if count + cost <= limit then
  allowed = 1
  if ARGV[3] == '1' then
    local stamps = {}
    for i = 1, cost do stamps[i] = string.format('%.0f', now) end
    redis.call('LPUSH', key, unpack(stamps))
    redis.call('LTRIM', key, 0, count + cost - 1)
    redis.call('PEXPIRE', key, ARGV[2])
    pushed(stamps)
    count = count + cost
  end
elseif count > 0 then
  if probe < 0 then probe = 0 end
  retry = at(probe) + window_us
else
  retry = now
end
local reset = 0
if count > 0 then
  local oldest = count
  if oldest > limit then oldest = limit end
  reset = at(oldest - 1) + window_us
end
local remaining = limit - count
if remaining < 0 then remaining = 0 end
return string.format('%d %d %.0f %.0f %.0f', allowed, remaining, reset, now, retry)
`
const CANDIDATES = {
  'sorted set (the seed\'s script)': fs.readFileSync(path.join(__dirname, 'seed-sliding-window.lua'), 'utf8'),
  // Decides from LINDEX limit−cost; counts by a binary search of LINDEX calls.
  'list, LINDEX + binary search': `${LIST_HEAD}
local function at(i) return tonumber(redis.call('LINDEX', key, i)) end
local function pushed() end
local count
local t = probe >= 0 and at(probe)
if t and t > cutoff and cost == 1 then
  count = limit
else
  local lo, hi = 0, redis.call('LLEN', key)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if at(mid) > cutoff then lo = mid + 1 else hi = mid end
  end
  count = lo
end
${LIST_TAIL}`,
  // Reads the whole list once (LRANGE) and searches it in Lua.
  'list, LRANGE + search in Lua': `${LIST_HEAD}
local list = redis.call('LRANGE', key, 0, -1)
local function at(i) return tonumber(list[i + 1]) end
local function pushed(stamps)
  for i = 1, #stamps do table.insert(list, 1, stamps[i]) end
end
local lo, hi = 0, #list
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  if at(mid) > cutoff then lo = mid + 1 else hi = mid end
end
local count = lo
${LIST_TAIL}`,
  // The one chosen: src/scripts/sliding_window.lua.
  'packed string, 8-byte slots (chosen)': fs.readFileSync(path.join(ROOT, 'src', 'scripts', 'sliding_window.lua'), 'utf8'),
}

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}

/** CPU time (µs) redis-server has used, all its threads (/proc/<pid>/task/<tid>/schedstat, ns). */
function cpuUs(pid) {
  let ns = 0
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ns / 1000
}

async function commandStats(admin) {
  const info = await admin.info('commandstats')
  let calls = 0
  let usec = 0
  for (const m of info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+),usec=(\d+)/g)) {
    calls += Number(m[2])
    usec += Number(m[3])
  }
  return { calls, usec }
}

/** Runs `calls` (arrays of EVALSHA args) pipelined in batches; returns the server's figures per call. */
async function measure(client, admin, pid, sha, calls) {
  await admin.config('RESETSTAT')
  const cpu0 = cpuUs(pid)
  const BATCH = 200
  for (let i = 0; i < calls.length; i += BATCH) {
    const p = client.pipeline()
    for (const args of calls.slice(i, i + BATCH)) p.evalsha(sha, 1, ...args)
    const replies = await p.exec()
    for (const [error] of replies) if (error) throw error
  }
  const cpu = cpuUs(pid) - cpu0
  const { calls: n, usec } = await commandStats(admin)
  return { us: usec / n, cpu: cpu / n }
}

/** Round robin over `ids` identifiers, `rounds` calls each, of cost `cost`. */
function plan(prefix, ids, rounds, cost) {
  const calls = []
  for (let r = 0; r < rounds; r++) for (let i = 0; i < ids; i++) calls.push([`${prefix}:${i}`, LIMIT, WINDOW_MS, 1, cost])
  return calls
}

const SCENARIOS = ['bench', 'fill', 'full', 'cost4']
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

async function main() {
  const repeat = option('repeat', 3)
  const server = await new RedisServer({ tls: false }).start()
  const pid = server.child.pid
  const client = new Redis(server.url)
  const admin = new Redis(server.url)
  const figures = new Map(Object.keys(CANDIDATES).map((name) => [name, { memory: 0, type: '' }]))
  try {
    // Interleaved repeats, the median of each figure: the machine is shared.
    for (let rep = 0; rep < repeat; rep++) {
      for (const [name, lua] of Object.entries(CANDIDATES)) {
        await admin.flushall()
        const sha = await admin.script('LOAD', lua)
        const row = figures.get(name)
        const add = (scenario, r) => {
          ;(row[scenario] ||= { us: [], cpu: [] }).us.push(r.us)
          row[scenario].cpu.push(r.cpu)
        }
        // bench: like the limit suite (many identifiers, a few requests each: small windows, all allowed)
        add('bench', await measure(client, admin, pid, sha, plan('b', 1000, 20, 1)))
        // fill: 200 windows from empty to full (limit 100), all allowed; full: the same again, all denied
        add('fill', await measure(client, admin, pid, sha, plan('a', 200, LIMIT, 1)))
        add('full', await measure(client, admin, pid, sha, plan('a', 200, LIMIT, 1)))
        // cost4: 200 windows, cost 4: 25 allowed each, then as many denied
        add('cost4', await measure(client, admin, pid, sha, plan('c', 200, 50, 4)))
        // The decisions agree: a full window answers "denied, 0 remaining" in every candidate.
        // (the chosen script answers five big-endian doubles; the others, text)
        const check = await client.evalshaBuffer(sha, 1, 'a:0', LIMIT, WINDOW_MS, 0, 1)
        const full = check.length === 40 ? check.readDoubleBE(0) === 0 && check.readDoubleBE(8) === 0 : check.toString().startsWith('0 0 ')
        if (!full) throw new Error(`${name}: a full window answered ${check.toString('hex')}`)
        row.memory = await admin.call('MEMORY', 'USAGE', 'a:0')
        row.type = await admin.type('a:0')
      }
      process.stderr.write(`round ${rep + 1} of ${repeat} done\n`)
    }
  } finally {
    client.disconnect()
    admin.disconnect()
    await server.stop()
  }
  const f = (n) => n.toFixed(2)
  const lines = [
    '| structure | key type | ' + SCENARIOS.map((s) => `${s}: µs/call | ${s}: CPU µs/call`).join(' | ') + ' | MEMORY USAGE, full window at limit 100 |',
    '|---|---|' + SCENARIOS.map(() => '---|---|').join('') + '---|',
  ]
  for (const [name, row] of figures) {
    lines.push(`| ${name} | ${row.type} | ` + SCENARIOS.map((s) => `${f(median(row[s].us))} | ${f(median(row[s].cpu))}`).join(' | ') + ` | ${row.memory} B |`)
  }
  const { execFileSync } = require('node:child_process')
  console.log(lines.join('\n'))
  console.log(`\nmedian of ${repeat} interleaved rounds; ${execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim()}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
