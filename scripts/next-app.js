'use strict'
// The Next.js example (examples/nextjs) as the end-to-end scripts use it: the
// package installed from its packed tarballs, `next build`, `next start` /
// `next dev` on a free port, and a check() that counts failures. Shared by
// scripts/e2e-nextjs.js and scripts/e2e-dashboard.js.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { freePort } = require('../__test__/support/redis-server.js')
const { packTarballs, run } = require('./pack.js')

const ROOT = path.resolve(__dirname, '..')
const APP = path.join(ROOT, 'examples', 'nextjs')
const NEXT = path.join(APP, 'node_modules', 'next', 'dist', 'bin', 'next')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Prints each check and counts the failed ones (`checks.failures`). */
function createChecks() {
  const checks = {
    failures: 0,
    check(condition, what, detail = '') {
      console.log(`${condition ? '  ok  ' : '  FAIL'} ${what}${detail ? ` — ${detail}` : ''}`)
      if (!condition) checks.failures++
      return condition
    },
  }
  return checks
}

/** Runs a build step in the app with its output shown, and says how long it took. */
function step(command, args, options = {}) {
  const t = Date.now()
  run(command, args, { cwd: APP, stdio: 'inherit', ...options })
  console.log(`  (${path.basename(args[0] || command)} ${args[1] || ''}: ${((Date.now() - t) / 1000).toFixed(1)} s)`)
}

/**
 * Packs the package, installs the tarballs into the example (a copy in
 * node_modules, as from npm, not a link to this tree: Next.js leaves only
 * packages that live in node_modules to Node's require), and runs a fresh
 * `next build` (an earlier run's `next dev` output would be type-checked with it).
 */
function installAndBuild(label) {
  console.log(`${label} — pack and install`)
  const { rootTgz, platformTgz } = packTarballs(path.join(ROOT, '.tmp', 'pack'))
  step('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--no-save', platformTgz, rootTgz])
  console.log(`${label} — next build`)
  fs.rmSync(path.join(APP, '.next'), { recursive: true, force: true })
  step(process.execPath, [NEXT, 'build'], { env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' } })
}

/** Starts `next <mode>` on a free port; resolves { child, base, output() } once it answers. */
async function startNext(mode, env) {
  const port = await freePort()
  const child = spawn(process.execPath, [NEXT, mode, '-p', String(port), '-H', '127.0.0.1'], {
    cwd: APP,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so that stopping it stops its workers too
  })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 120000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`next ${mode} exited:\n${output}`)
    try {
      await fetch(`${base}/`)
      break
    } catch {
      if (Date.now() > deadline) throw new Error(`next ${mode} did not answer in 120 s:\n${output}`)
      await sleep(250)
    }
  }
  return { child, base, output: () => output }
}

function stopNext(next) {
  if (next && next.child.exitCode === null) {
    try {
      process.kill(-next.child.pid, 'SIGTERM')
    } catch {
      next.child.kill('SIGTERM')
    }
  }
}

module.exports = { ROOT, APP, NEXT, sleep, createChecks, step, installAndBuild, startNext, stopNext }
