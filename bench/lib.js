'use strict'
// Shared by the benchmarks: a closed-loop load that keeps C requests in
// flight for a fixed time and reports ops/s, latency percentiles and the
// client's CPU per op (user + system of the whole process, so the Rust
// threads count as well as the JS thread).

const { spawn } = require('node:child_process')
const path = require('node:path')

/**
 * Keeps `concurrency` calls of `op` in flight for `seconds` (after `warmupSeconds`).
 * @returns {Promise<{ops:number, opsPerSec:number, p50Us:number, p99Us:number, cpuUsPerOp:number}>}
 */
async function closedLoop(op, { concurrency, seconds, warmupSeconds = 0.5 }) {
  let measuring = false
  let stopping = false
  let ops = 0
  const samples = new Float64Array(1 << 21)
  let sampleCount = 0
  const worker = async () => {
    while (!stopping) {
      const started = performance.now()
      await op()
      if (measuring) {
        samples[sampleCount++ & (samples.length - 1)] = performance.now() - started
        ops++
      }
    }
  }
  const workers = Array.from({ length: concurrency }, worker)
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000))
  measuring = true
  const cpuStart = process.cpuUsage()
  const wallStart = performance.now()
  await new Promise((r) => setTimeout(r, seconds * 1000))
  measuring = false
  const wall = (performance.now() - wallStart) / 1000
  const cpu = process.cpuUsage(cpuStart)
  stopping = true
  await Promise.all(workers)
  const n = Math.min(sampleCount, samples.length)
  const sorted = samples.subarray(0, n).sort()
  const pct = (p) => sorted[Math.min(n - 1, Math.floor(n * p))] * 1000
  return {
    ops,
    opsPerSec: ops / wall,
    p50Us: pct(0.5),
    p99Us: pct(0.99),
    cpuUsPerOp: (cpu.user + cpu.system) / ops,
  }
}

/** Runs `bench/<script>` in a fresh node process and returns the JSON it prints last. */
function runChild(script, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', path.join(__dirname, script), ...args.map(String)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${script} ${args.join(' ')} exited with ${code}`))
      const lines = out.trim().split('\n')
      resolve(JSON.parse(lines[lines.length - 1]))
    })
  })
}

/**
 * The body of every worker: `node <worker> <client> <op> <concurrency> <seconds> <url>`.
 * `setup({ clientName, opName, concurrency, url })` resolves `{ op, close, extra? }`; the
 * closed loop's figures (and `extra()`'s) are printed as one JSON line for run.js.
 */
function runWorker(setup) {
  const [clientName, opName, concurrency, seconds, url] = process.argv.slice(2)
  const main = async () => {
    const { op, close, extra } = await setup({ clientName, opName, concurrency: Number(concurrency), url })
    const result = await closedLoop(op, { concurrency: Number(concurrency), seconds: Number(seconds) })
    await close()
    // `extra()` (optional): the worker's own figures, e.g. how many calls it made in all.
    const more = typeof extra === 'function' ? extra() : {}
    console.log(JSON.stringify({ client: clientName, op: opName, concurrency: Number(concurrency), ...result, ...more }))
  }
  main().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}

/** A realistic ~1 KB user profile: the cached value of the cache benchmarks. */
const profile = {
  id: 'clx9a8b7c6d5e4f3g2h1',
  email: 'creator@example.com',
  name: 'Test Creator',
  role: 'CREATOR',
  emailVerified: true,
  createdAt: '2025-10-10T12:00:00.000Z',
  updatedAt: '2025-10-11T08:30:00.000Z',
  profile: {
    bio: 'x'.repeat(400),
    avatarUrl: `https://cdn.example.com/a/${'y'.repeat(40)}`,
    socials: { instagram: '@creator', tiktok: '@creator', youtube: '@creator-channel' },
    tags: ['music', 'art', 'film', 'photo'],
  },
  stats: { assets: 42, projects: 7, earningsCents: 1234567 },
  preferences: { emails: true, theme: 'dark', locale: 'en-US' },
}

module.exports = { closedLoop, runChild, runWorker, profile }
