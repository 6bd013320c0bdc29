'use strict'
// getBullMQOptions() with a real BullMQ (Queue, Worker, QueueEvents) against a
// private redis-server of this file, inspected with an independent ioredis
// connection.
const Redis = require('ioredis')
const { Queue, Worker, QueueEvents } = require('bullmq')
const { RedisServer, harnessTls } = require('./support/redis-server.js')

/** What getBullMQConnection adds for a TLS server (the harness's TLS switch). */
const TLS = harnessTls() ? { tls: { rejectUnauthorized: true } } : {}
const { redis, useRedis, runNode } = require('./support/client.js')

const { getBullMQOptions, getBullMQConnection, getRedisClient, RedisKeys } = redis

let server
let inspector
/** Everything BullMQ opened (queues, workers, queue events), closed by closeAll(). */
let opened = []

function open(thing) {
  opened.push(thing)
  return thing
}

/** Closes workers first, then queue events and queues, so that nothing is left blocking. */
async function closeAll() {
  const things = opened
  opened = []
  await Promise.all(things.filter((t) => t instanceof Worker).map((t) => t.close()))
  await Promise.all(things.filter((t) => !(t instanceof Worker)).map((t) => t.close()))
}

/** Every key on the server (a private one: KEYS is fine here). */
const allKeys = async () => (await inspector.keys('*')).sort()

/** Adds `count` jobs `{ n }` to `queue` and has a worker double them; resolves `{ n → returnvalue }`. */
async function runJobs(options, queueName, count, { first = 0 } = {}) {
  const queue = open(new Queue(queueName, options))
  queue.setMaxListeners(count + 10) // each job.waitUntilFinished() listens for the queue's 'closing'
  const events = open(new QueueEvents(queueName, options))
  await events.waitUntilReady()
  const processedBy = []
  const worker = open(
    new Worker(
      queueName,
      async (job) => {
        processedBy.push(job.data.n)
        return { doubled: job.data.n * 2 }
      },
      { ...options, concurrency: 20 },
    ),
  )
  const jobs = await queue.addBulk(
    Array.from({ length: count }, (_, i) => ({ name: 'double', data: { n: first + i } })),
  )
  const results = await Promise.all(jobs.map((job) => job.waitUntilFinished(events, 20000)))
  await worker.close()
  return { queue, jobs, results, processedBy }
}

beforeAll(async () => {
  server = await new RedisServer().start()
  inspector = new Redis(server.url, { lazyConnect: true })
})

beforeEach(() => inspector.flushall())

afterEach(() => closeAll())

afterAll(async () => {
  await closeAll()
  inspector.disconnect()
  await redis.closeRedisConnection()
  await server.stop()
  await useRedis() // the next file in this jest worker finds the client as useRedis leaves it
})

test('getBullMQOptions(): getBullMQConnection() and the prefix `jobs` without a key prefix', async () => {
  await useRedis({ url: server.url })
  const options = getBullMQOptions()
  expect(options).toEqual({ connection: getBullMQConnection(), prefix: 'jobs' })
  expect(options.connection).toEqual({ host: '127.0.0.1', port: server.port, db: 0, maxRetriesPerRequest: null, ...TLS })
  // A fresh object every call: BullMQ (or the caller) may change it.
  options.connection.port = 1
  expect(getBullMQOptions().connection.port).toBe(server.port)
})

test('a Queue, a Worker and QueueEvents with getBullMQOptions() process 200 jobs, under jobs:<queue>:', async () => {
  await useRedis({ url: server.url })
  const { queue, jobs, results, processedBy } = await runJobs(getBullMQOptions(), 'emails', 200)
  expect(jobs).toHaveLength(200)
  expect(results).toEqual(jobs.map((job) => ({ doubled: job.data.n * 2 })))
  expect(processedBy.sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i))
  expect(await queue.getJobCounts('completed', 'failed', 'waiting', 'active')).toEqual({
    completed: 200,
    failed: 0,
    waiting: 0,
    active: 0,
  })
  const keys = await allKeys()
  expect(keys.length).toBeGreaterThan(0)
  // RedisKeys.jobs.queue(name) is where the queue's keys start.
  expect(keys.filter((k) => !k.startsWith(`${RedisKeys.jobs.queue('emails')}:`))).toEqual([])
  expect(keys.filter((k) => k.startsWith('bull:'))).toEqual([])
})

test("with keyPrefix 'app1:' BullMQ's keys live under app1:jobs: and nothing under plain jobs:", async () => {
  await useRedis({ url: server.url, keyPrefix: 'app1:' })
  const options = getBullMQOptions()
  expect(options.prefix).toBe('app1:jobs')
  const { results, jobs } = await runJobs(options, 'emails', 200)
  expect(results).toEqual(jobs.map((job) => ({ doubled: job.data.n * 2 })))

  const keys = await allKeys()
  expect(keys.length).toBeGreaterThan(0)
  expect(keys.filter((k) => !k.startsWith('app1:jobs:emails:'))).toEqual([])
  expect(keys.filter((k) => k.startsWith('jobs:') || k.startsWith('bull:'))).toEqual([])

  // The package's own view (keyPrefix stripped) finds them where RedisKeys says.
  const seen = []
  for await (const batch of getRedisClient().scan({ match: `${RedisKeys.jobs.queue('emails')}:*` })) seen.push(...batch)
  expect(seen.sort()).toEqual(keys.map((k) => k.slice('app1:'.length)))
})

test('two apps with different key prefixes on one server keep same-named queues apart', async () => {
  await useRedis({ url: server.url, keyPrefix: 'app1:' })
  const app1 = getBullMQOptions()
  await useRedis({ url: server.url, keyPrefix: 'app2:' })
  const app2 = getBullMQOptions()
  expect([app1.prefix, app2.prefix]).toEqual(['app1:jobs', 'app2:jobs'])

  // app2 queues 15 jobs that nobody works on yet.
  const app2Queue = open(new Queue('emails', app2))
  await app2Queue.addBulk(Array.from({ length: 15 }, (_, i) => ({ name: 'double', data: { n: 1000 + i } })))

  // app1's worker on its own 'emails' queue sees only app1's 10 jobs.
  const first = await runJobs(app1, 'emails', 10)
  expect(first.processedBy.sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i))
  expect(await first.queue.getJobCounts('completed', 'waiting')).toEqual({ completed: 10, waiting: 0 })
  expect(await app2Queue.getJobCounts('completed', 'waiting')).toEqual({ completed: 0, waiting: 15 })

  // Then app2's worker takes its 15, and app1's queue is untouched.
  const processed = []
  const worker = open(new Worker('emails', async (job) => job.data.n * 2, { ...app2, concurrency: 5 }))
  await new Promise((resolve) => {
    worker.on('completed', (job, result) => {
      expect(result).toBe(job.data.n * 2)
      if (processed.push(job.data.n) === 15) resolve()
    })
  })
  expect(processed.sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => 1000 + i))
  expect(await app2Queue.getJobCounts('completed', 'waiting')).toEqual({ completed: 15, waiting: 0 })
  expect(await first.queue.getJobCounts('completed', 'waiting')).toEqual({ completed: 10, waiting: 0 })

  const keys = await allKeys()
  expect(keys.filter((k) => !k.startsWith('app1:jobs:emails:') && !k.startsWith('app2:jobs:emails:'))).toEqual([])
  expect(keys.some((k) => k.startsWith('app1:jobs:emails:'))).toBe(true)
  expect(keys.some((k) => k.startsWith('app2:jobs:emails:'))).toBe(true)
})

test('REDIS_KEY_PREFIX sets the BullMQ prefix too', async () => {
  const { code, stdout, stderr } = await runNode(
    `console.log(JSON.stringify(require('.').getBullMQOptions()))`,
    { env: { REDIS_KEY_PREFIX: 'from-env:', REDIS_URL: server.url } },
  )
  expect(stderr).toBe('')
  expect(code).toBe(0)
  expect(JSON.parse(stdout)).toEqual({
    connection: { host: '127.0.0.1', port: server.port, db: 0, maxRetriesPerRequest: null, ...TLS },
    prefix: 'from-env:jobs',
  })
})
