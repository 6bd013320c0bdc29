'use strict'
// Test helpers around the package under test.
const { spawn } = require('node:child_process')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..', '..')
const redis = require(ROOT)

/**
 * Whether this run's shared test server is a private Redis Cluster (jest under
 * YG_TEST_CLUSTER=1: global-setup.js set REDIS_URL to one of its nodes,
 * REDIS_CLUSTER=true and REDIS_CLUSTER_NODES).
 */
const CLUSTER = process.env.YG_TEST_CLUSTER === '1' && process.env.REDIS_CLUSTER === 'true'

/**
 * A test's own redis-server (any URL but the run's REDIS_URL) is one server,
 * never a cluster, whatever the run's switch: under YG_TEST_CLUSTER the
 * client is configured with `cluster: false` for it (unless the test says).
 */
function ownServer(url) {
  return CLUSTER && url !== undefined && url !== process.env.REDIS_URL
}

/**
 * The environment of a child process (runNode's `env`) that talks to a test's
 * own server: no cluster mode and no cluster seeds inherited from the run.
 */
const SINGLE_SERVER_ENV = { REDIS_CLUSTER: undefined, REDIS_CLUSTER_NODES: undefined }

/** Closes whatever client an earlier test file left, then configures a fresh one. */
async function useRedis(options = {}) {
  await redis.closeRedisConnection()
  const single = ownServer(options.url) && options.cluster === undefined ? { cluster: false } : {}
  redis.configureRedis({ url: process.env.REDIS_URL, ...single, ...options })
  return redis.getRedisClient()
}

/** The run's cluster nodes as ioredis `Cluster` start-up nodes. */
function clusterNodes() {
  return process.env.REDIS_CLUSTER_NODES.split(',').map((address) => {
    const colon = address.lastIndexOf(':')
    return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) }
  })
}

/**
 * An independent ioredis connection to the run's test server (`options` are
 * ioredis options): `new Redis(REDIS_URL)`, or under YG_TEST_CLUSTER an ioredis
 * `Cluster` over REDIS_CLUSTER_NODES (TLS when REDIS_URL is rediss://, with the
 * run's CA), so that a key is read on whichever master owns it.
 */
function inspectorConnection(options = {}) {
  const Redis = require('ioredis')
  // The run's CA is given explicitly as well: NODE_EXTRA_CA_CERTS, set by the
  // global set-up, is read only by processes started after it (jest's workers,
  // not the jest process that runs a lone test file in band).
  const files = JSON.parse(process.env.YG_TEST_TLS_FILES || 'null')
  const tls = process.env.REDIS_URL.startsWith('rediss://') ? { tls: files ? { ca: require('node:fs').readFileSync(files.ca) } : {} } : {}
  if (!CLUSTER) return new Redis(process.env.REDIS_URL, { ...tls, ...options })
  const { lazyConnect, ...redisOptions } = options
  Object.assign(redisOptions, tls)
  const cluster = new Redis.Cluster(clusterNodes(), { lazyConnect: Boolean(lazyConnect), redisOptions })
  // What a test asks of "the server" holds for the whole cluster: multi-key
  // commands one key at a time (the keys are in many slots), and the keyspace
  // commands over every master.
  const perKey = (name, one, combine) => {
    cluster[name] = async (...keys) => combine(await Promise.all(keys.flat().map((key) => one(key))))
  }
  const sum = (counts) => counts.reduce((a, b) => a + b, 0)
  for (const name of ['exists', 'del', 'unlink']) perKey(name, cluster[name].bind(cluster), sum)
  perKey('mget', cluster.get.bind(cluster), (values) => values)
  const set = cluster.set.bind(cluster)
  cluster.mset = async (...args) => {
    const pairs = args.length === 1 && typeof args[0] === 'object' ? Object.entries(args[0]).flat() : args.flat()
    for (let i = 0; i < pairs.length; i += 2) await set(pairs[i], pairs[i + 1])
    return 'OK'
  }
  const overMasters = async (fn) => {
    if (cluster.status === 'wait') await cluster.connect()
    return Promise.all(cluster.nodes('master').map(fn))
  }
  cluster.dbsize = async () => sum(await overMasters((node) => node.dbsize()))
  cluster.keys = async (pattern) => (await overMasters((node) => node.keys(pattern))).flat()
  cluster.flushdb = async () => (await overMasters((node) => node.flushdb()), 'OK')
  cluster.flushall = async () => (await overMasters((node) => node.flushall()), 'OK')
  return cluster
}

/**
 * The nodes that hold keys: `[inspector]` on one server, else a connection to
 * each master of the inspector's cluster (to count, list or flush keys per node).
 */
async function dataNodes(inspector) {
  if (!CLUSTER) return [inspector]
  if (inspector.status === 'wait') await inspector.connect()
  return inspector.nodes('master')
}

/**
 * For a test file: points the client at the test server before its tests and
 * closes it after; returns an independent ioredis connection to inspect the
 * server with (it connects on first use, and is closed after the file; an
 * ioredis `Cluster` under YG_TEST_CLUSTER, see inspectorConnection).
 */
function useRedisWithInspector() {
  const inspector = inspectorConnection({ lazyConnect: true })
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
  // A child pointed at a test's own server is not in cluster mode, nor seeded
  // with the run's cluster nodes (see ownServer), unless the test says.
  if (ownServer(env.REDIS_URL)) env = { ...SINGLE_SERVER_ENV, ...env }
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

module.exports = {
  ROOT,
  CLUSTER,
  SINGLE_SERVER_ENV,
  redis,
  useRedis,
  useRedisWithInspector,
  inspectorConnection,
  clusterNodes,
  dataNodes,
  sleep,
  waitFor,
  runNode,
  commandsSentDuring,
}
