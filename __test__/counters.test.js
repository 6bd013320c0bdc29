'use strict'
// counters against private redis-servers.
const { RedisServer } = require('./support/redis-server.js')
const { redis, useRedis, runNode, commandsSentDuring, useRedisWithInspector, sleep } = require('./support/client.js')

const { counters, RedisKeys, RedisError } = redis
const inspector = useRedisWithInspector()
let unique = 0
const metric = (name) => `test-${name}-${process.pid}-${++unique}`
const seriesKey = (name, id) => `${RedisKeys.counter.metric(name, id)}::minutes`

/** The Redis server's current minute since the epoch (TIME). */
async function serverMinute() {
  const [secondsText] = await inspector.time()
  return Math.floor(Number(secondsText) / 60)
}

/** Commands per name that reached a private server while `fn` ran (INFO commandstats). */
async function commandStatsDuring(fn) {
  const server = await new RedisServer().start()
  try {
    await useRedis({ url: server.url })
    await redis.getRedisClient().ping()
    await fn(() => server.cli('CONFIG', 'RESETSTAT'))
    const stats = {}
    for (const m of server.cli('INFO', 'commandstats').matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) stats[m[1]] = Number(m[2])
    delete stats.info
    delete stats['config|resetstat']
    return stats
  } finally {
    await redis.closeRedisConnection()
    await server.stop()
    await useRedis()
  }
}

test('increment: the new value of RedisKeys.counter.metric(name, id) by INCRBY; persists', async () => {
  const name = metric('views')
  expect(await counters.increment(name)).toBe(1)
  expect(await counters.increment(name)).toBe(2)
  expect(await counters.increment(name, 42)).toBe(1)
  expect(await counters.increment(name, 42, 10)).toBe(11)
  expect(await counters.increment(name, '42', -3)).toBe(8) // 42 and '42' are one id
  expect(await counters.increment(name, null, 0)).toBe(2)
  expect(await inspector.get(RedisKeys.counter.metric(name))).toBe('2')
  expect(await inspector.get(RedisKeys.counter.metric(name, 42))).toBe('8')
  expect(await inspector.ttl(RedisKeys.counter.metric(name, 42))).toBe(-1)
})

test('get, getMany (one MGET) and reset (the value it had); 0 when missing', async () => {
  const stats = await commandStatsDuring(async (resetStats) => {
    const name = metric('many')
    await counters.increment(name, 'a', 5)
    await counters.increment(name, 'b', 7)
    await counters.increment(name, null, 1)
    resetStats()
    expect(await counters.get(name, 'a')).toBe(5)
    expect(await counters.get(name, 'missing')).toBe(0)
    expect(await counters.getMany([[name, 'a'], [name, 'missing'], [name], [name, 'b']])).toEqual([5, 0, 1, 7])
    expect(await counters.getMany([])).toEqual([])
    expect(await counters.reset(name, 'a')).toBe(5)
    expect(await counters.reset(name, 'a')).toBe(0)
    expect(await counters.get(name, 'a')).toBe(0)
  })
  expect(stats).toEqual({ get: 3, mget: 1, getdel: 2 })
})

test('a key that does not hold an integer rejects clearly', async () => {
  const name = metric('text')
  await inspector.set(RedisKeys.counter.metric(name), 'hello')
  const error = await counters.get(name).catch((e) => e)
  expect(error).toBeInstanceOf(RedisError)
  expect(error.message).toMatch(/does not hold a safe integer/)
  await expect(counters.increment(name)).rejects.toBeInstanceOf(redis.ReplyError)
})

test('1,000 concurrent increments in one process and 3 processes × 500 lose nothing', async () => {
  const name = metric('concurrent')
  const values = await Promise.all(Array.from({ length: 1000 }, () => counters.increment(name, 'x')))
  expect(new Set(values).size).toBe(1000)
  expect(Math.max(...values)).toBe(1000)
  const child = `
    const r = require('.')
    Promise.all(Array.from({ length: 500 }, (_, i) => r.counters.increment(${JSON.stringify(name)}, 'x', i % 2 ? 1 : 2)))
      .then(() => process.exit.call(process, 0))`
  const outputs = await Promise.all([runNode(child), runNode(child), runNode(child)])
  for (const o of outputs) expect(o.code).toBe(0)
  expect(await counters.get(name, 'x')).toBe(1000 + 3 * 750)
})

test('ids holding *, : or { are data: each its own key', async () => {
  const name = metric('data')
  await counters.increment(name, 'a1', 1)
  await counters.increment(name, 'a*', 10)
  await counters.increment(name, 'a:1', 100)
  await counters.increment(name, '{a}', 1000)
  expect(await counters.getMany([[name, 'a1'], [name, 'a*'], [name, 'a:1'], [name, '{a}']])).toEqual([1, 10, 100, 1000])
  expect(await inspector.get(`counter:${name}:a%2A`)).toBe('10')
  expect(await inspector.get(`counter:${name}:a%3A1`)).toBe('100')
  expect(await counters.reset(name, 'a*')).toBe(10)
  expect(await counters.get(name, 'a1')).toBe(1)
})

describe('per-minute buckets', () => {
  test('record counts into the Redis server’s current minute; series gives the last N minutes, oldest first, zeros included', async () => {
    const name = metric('series')
    let minute
    let rows
    do {
      minute = await serverMinute()
      expect(await counters.record(name, 'x')).toBe(1)
      expect(await counters.record(name, 'x', { by: 4 })).toBe(5)
      rows = await counters.series(name, 'x', { minutes: 5 })
    } while ((await serverMinute()) !== minute) // crossed a minute boundary: try again in the next
    expect(rows).toHaveLength(5)
    expect(rows.map((r) => r.at.getTime())).toEqual([4, 3, 2, 1, 0].map((ago) => (minute - ago) * 60000))
    expect(rows.at(-1).count).toBeGreaterThanOrEqual(5)
    expect(rows.slice(0, 4).every((r) => r.count === 0)).toBe(true)
    expect(await counters.series(name, 'x')).toHaveLength(60) // default 60 minutes
    expect(await counters.series(metric('empty'))).toEqual(expect.arrayContaining([{ at: expect.any(Date), count: 0 }]))
  })

  test('record with `at` counts into that minute; series is one script call (one round trip)', async () => {
    const stats = await commandStatsDuring(async (resetStats) => {
      const name = metric('at')
      const now = Date.now()
      await counters.record(name, { at: new Date(now - 5 * 60000), by: 2 })
      await counters.record(name, null, { at: new Date(now - 3 * 60000) })
      await counters.record(name, null, { at: new Date(now - 3 * 60000), by: 6 })
      await counters.series(name, { minutes: 10 }) // loads the script
      resetStats()
      const rows = await counters.series(name, { minutes: 10 })
      const byMinute = new Map(rows.map((r) => [r.at.getTime(), r.count]))
      const minuteOf = (t) => Math.floor(t / 60000) * 60000
      expect(byMinute.get(minuteOf(now - 5 * 60000))).toBe(2)
      expect(byMinute.get(minuteOf(now - 3 * 60000))).toBe(7)
      expect(rows.reduce((sum, r) => sum + r.count, 0)).toBe(9)
      for (let i = 1; i < rows.length; i++) expect(rows[i].at.getTime() - rows[i - 1].at.getTime()).toBe(60000)
    })
    expect(stats).toEqual({ evalsha: 1, time: 1, hmget: 1 }) // one EVALSHA; TIME and HMGET ran inside it
  })

  test('each bucket is kept 25 hours: the hash expires 25 h after its newest bucket, older buckets are removed, older `at`s refused', async () => {
    const name = metric('expiry')
    await counters.record(name)
    const ttl = await inspector.ttl(seriesKey(name))
    expect(ttl).toBeGreaterThan(25 * 3600)
    expect(ttl).toBeLessThanOrEqual(25 * 3600 + 60)
    // 24 h 55 min ago is still kept; 25 h 5 min ago is not.
    expect(await counters.record(name, { at: new Date(Date.now() - (24 * 60 + 55) * 60000) })).toBe(1)
    const error = await counters.record(name, { at: new Date(Date.now() - (25 * 60 + 5) * 60000) }).catch((e) => e)
    expect(error).toBeInstanceOf(RedisError)
    expect(error.code).toBe('ERANGE')
    // A bucket from 26 h ago (written by hand) goes at the next record.
    const now = await serverMinute()
    await inspector.hset(seriesKey(name), String(now - 26 * 60), '9', 'from', String(now - 26 * 60))
    await counters.record(name)
    expect(await inspector.hexists(seriesKey(name), String(now - 26 * 60))).toBe(0)
    const fields = await inspector.hkeys(seriesKey(name))
    for (const field of fields.filter((f) => f !== 'from')) expect(Number(field)).toBeGreaterThanOrEqual(now - 25 * 60)
  })

  test('1,000 concurrent records lose nothing', async () => {
    const name = metric('record-concurrent')
    await Promise.all(Array.from({ length: 1000 }, () => counters.record(name)))
    const rows = await counters.series(name, { minutes: 2 })
    expect(rows.reduce((sum, r) => sum + r.count, 0)).toBe(1000)
  })

  test('the series of a counter is apart from its total', async () => {
    const name = metric('apart')
    await counters.increment(name, 'k', 3)
    await counters.record(name, 'k')
    expect(await counters.get(name, 'k')).toBe(3)
    expect(await inspector.type(seriesKey(name, 'k'))).toBe('hash')
    expect(await counters.reset(name, 'k')).toBe(3)
    expect((await counters.series(name, 'k', { minutes: 1 }))[0].count).toBe(1)
  })
})

test('bad input is a TypeError (EINVALID) and nothing is sent', async () => {
  const sent = await commandsSentDuring(async () => {
    for (const call of [
      () => counters.increment(''),
      () => counters.increment({}),
      () => counters.increment('x\uD800'),
      () => counters.increment('x', null, 1.5),
      () => counters.increment('x', null, '2'),
      () => counters.increment('x', null, NaN),
      () => counters.increment('x', null, 2 ** 53),
      () => counters.increment('x', null, null),
      () => counters.increment('x', []),
      () => counters.get(undefined),
      () => counters.getMany('x'),
      () => counters.getMany([['x'], 'y']),
      () => counters.getMany([['x'], []]),
      () => counters.getMany([['x', 'a', 'b']]),
      () => counters.reset(''),
      () => counters.record('x', null, { by: 0.5 }),
      () => counters.record('x', null, { at: 'yesterday' }),
      () => counters.record('x', null, { at: new Date(NaN) }),
      () => counters.record('x', null, 'options'),
      () => counters.series('x', null, { minutes: 0 }),
      () => counters.series('x', null, { minutes: 1501 }),
      () => counters.series('x', null, { minutes: 2.5 }),
      () => counters.series('', null),
    ]) {
      const error = await call().catch((e) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('EINVALID')
    }
  })
  expect(sent).toBe(0)
})

test('with Redis stopped every method rejects clearly within the command timeout', async () => {
  const server = await new RedisServer().start()
  try {
    await useRedis({ url: server.url, commandTimeoutMs: 500, connectTimeoutMs: 500, retryMaxDelayMs: 200 })
    await counters.increment('down')
    await server.stop()
    await sleep(50)
    for (const call of [
      () => counters.increment('down'),
      () => counters.get('down'),
      () => counters.getMany([['down']]),
      () => counters.record('down'),
      () => counters.series('down'),
    ]) {
      const started = Date.now()
      const error = await call().catch((e) => e)
      expect(error).toBeInstanceOf(RedisError)
      expect(['ECONNECTION', 'ETIMEDOUT', 'ECLOSED']).toContain(error.code)
      expect(Date.now() - started).toBeLessThan(1200)
    }
  } finally {
    await redis.closeRedisConnection()
    await server.stop()
    await useRedis()
  }
})
