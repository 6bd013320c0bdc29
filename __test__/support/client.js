'use strict'
// Test helpers around the package under test.
const { spawn } = require('node:child_process')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..', '..')
const redis = require(ROOT)

/** Closes whatever client an earlier test file left, then configures a fresh one. */
async function useRedis(options = {}) {
  await redis.closeRedisConnection()
  redis.configureRedis({ url: process.env.REDIS_URL, ...options })
  return redis.getRedisClient()
}

/**
 * For a test file: points the client at the test server before its tests and
 * closes it after; returns an independent ioredis connection to inspect the
 * server with (it connects on first use, and is closed after the file).
 */
function useRedisWithInspector() {
  const Redis = require('ioredis')
  const inspector = new Redis(process.env.REDIS_URL, { lazyConnect: true })
  beforeAll(() => useRedis())
  afterAll(async () => {
    inspector.disconnect()
    await redis.closeRedisConnection()
  })
  return inspector
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` until it returns truthy or `timeoutMs` passes. */
async function waitFor(check, timeoutMs = 10000, intervalMs = 20) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/**
 * Runs a CommonJS script in a child node process (in `cwd`, with `nodeArgs` before
 * the script; an `env` value of `undefined` removes that variable); resolves
 * `{ code, stdout, stderr, ms }`.
 */
function runNode(source, { env = {}, timeoutMs = 20000, cwd = ROOT, nodeArgs = [] } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, [...nodeArgs, '-e', source], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`child did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - started })
    })
  })
}

/**
 * Runs `fn` with the client pointed at a private redis-server of its own and
 * resolves how many commands reached that server while it ran (so that "nothing
 * was sent" can be checked while other test files use the shared test server).
 */
async function commandsSentDuring(fn) {
  const { RedisServer } = require('./redis-server.js')
  const server = await new RedisServer().start()
  const processed = () => Number(/total_commands_processed:(\d+)/.exec(server.cli('INFO', 'stats'))[1])
  try {
    await useRedis({ url: server.url })
    await redis.getRedisClient().ping() // connected, so that only fn's commands are counted
    const before = processed()
    await fn()
    return processed() - before - 1 // the INFO of `before` counts itself
  } finally {
    await redis.closeRedisConnection()
    await server.stop()
    await useRedis()
  }
}

module.exports = { ROOT, redis, useRedis, useRedisWithInspector, sleep, waitFor, runNode, commandsSentDuring }
