'use strict'
// Locks against a private redis-server.
const { AsyncLocalStorage } = require('node:async_hooks')
// The CRC16 hash-slot function ioredis's cluster client uses (a dependency of ioredis).
const clusterKeySlot = require(require.resolve('cluster-key-slot', { paths: [require.resolve('ioredis')] }))
const { RedisServer } = require('./support/redis-server.js')
const { redis, useRedis, runNode, ROOT, commandsSentDuring, useRedisWithInspector, sleep } = require('./support/client.js')

const { acquireLock, releaseLock, extendLock, withLock, LockNotAcquiredError, LockLostError, RedisKeys } = redis
const inspector = useRedisWithInspector()
let unique = 0
const key = (name) => `lock:test:${name}-${process.pid}-${++unique}`


test("the seed's example 3 runs as written", async () => {
  const runId = `run-${process.pid}`
  const ran = []
  const calculateRoyalties = async (id) => {
    // Inside the critical section the lock is held, with a 5-minute lease.
    const ttl = await inspector.pttl(RedisKeys.lock.royaltyRun(id))
    ran.push(ttl)
  }
  // Execute royalty calculation with lock
  await withLock(
    RedisKeys.lock.royaltyRun(runId),
    async () => {
      // Critical section - only one process can execute this
      await calculateRoyalties(runId)
    },
    300, // 5 minute lock TTL
  )
  expect(ran).toHaveLength(1)
  expect(ran[0]).toBeGreaterThan(299000)
  expect(await inspector.exists(RedisKeys.lock.royaltyRun(runId))).toBe(0) // released
})

test('acquireLock: a Lock with a 128-bit token, a fencing token and expiresAt from the acquisition', async () => {
  const k = key('shape')
  const before = Date.now()
  const lock = await acquireLock(k, 10)
  expect(lock).not.toBeNull()
  expect(lock.key).toBe(k)
  expect(lock.token).toMatch(/^[0-9a-f]{32}$/)
  expect(Number.isSafeInteger(lock.fencingToken) && lock.fencingToken > 0).toBe(true)
  expect(lock.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 10000)
  expect(lock.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 10000)
  expect(await inspector.get(k)).toBe(lock.token)
  const pttl = await inspector.pttl(k)
  expect(pttl).toBeGreaterThan(9000)
  expect(await acquireLock(k, 10)).toBeNull() // held
  expect(await releaseLock(lock)).toBe(true)
  expect(await releaseLock(lock)).toBe(false) // already gone
})

test('retries with jitter; expiresAt counts from the attempt that succeeded', async () => {
  const k = key('retry')
  const first = await acquireLock(k, 1)
  const started = Date.now()
  const second = await acquireLock(k, 1, { retries: 40, retryDelayMs: 50 })
  const returned = Date.now()
  expect(second).not.toBeNull()
  expect(returned - started).toBeGreaterThan(800) // it had to wait for the first lease to end
  // Not counted from the first attempt: the lease is a full second from when it was taken.
  expect(second.expiresAt.getTime()).toBeGreaterThan(returned + 1000 - 50)
  expect(second.expiresAt.getTime()).toBeLessThanOrEqual(returned + 1000)
  expect(second.fencingToken).toBeGreaterThan(first.fencingToken)
  expect(await acquireLock(k, 1, { retries: 2, retryDelayMs: 10 })).toBeNull()
  await releaseLock(second)
})

test('mutual exclusion: of 50 concurrent acquirers exactly one wins', async () => {
  const k = key('fifty')
  const locks = await Promise.all(Array.from({ length: 50 }, () => acquireLock(k, 10)))
  const winners = locks.filter((l) => l !== null)
  expect(winners).toHaveLength(1)
  expect(await inspector.get(k)).toBe(winners[0].token)
  await releaseLock(winners[0])
})

test('20 concurrent withLock calls with waiting never overlap, and all run', async () => {
  const k = key('twenty')
  let inside = 0
  let maxInside = 0
  let done = 0
  const fences = []
  await Promise.all(
    Array.from({ length: 20 }, () =>
      withLock(
        k,
        async ({ fencingToken }) => {
          inside++
          maxInside = Math.max(maxInside, inside)
          fences.push(fencingToken)
          await sleep(5)
          inside--
          done++
        },
        5,
        { waitMs: 10000, retryDelayMs: 5 },
      ),
    ),
  )
  expect(maxInside).toBe(1)
  expect(done).toBe(20)
  // Fencing tokens strictly increase in the order the lock was taken.
  for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1])
})

test('mutual exclusion and fencing across two node processes', async () => {
  const k = key('procs')
  const counter = `${k}:counter`
  const script = `
    const { inspectorConnection } = require(${JSON.stringify(require.resolve('./support/client.js'))})
    const redis = require(${JSON.stringify(ROOT)})
    redis.configureRedis({ url: ${JSON.stringify(process.env.REDIS_URL)} })
    const plain = inspectorConnection() // ioredis, a Cluster under YG_TEST_CLUSTER
    const fences = []
    ;(async () => {
      for (let i = 0; i < 30; i++) {
        await redis.withLock(${JSON.stringify(k)}, async ({ fencingToken }) => {
          fences.push(fencingToken)
          // A non-atomic read-modify-write that only a lock makes safe.
          const n = Number(await plain.get(${JSON.stringify(counter)}) || 0)
          await new Promise((r) => setTimeout(r, 1))
          await plain.set(${JSON.stringify(counter)}, n + 1)
        }, 5, { waitMs: 20000, retryDelayMs: 2 })
      }
      plain.disconnect()
      console.log(JSON.stringify(fences))
    })()`
  const [a, b] = await Promise.all([runNode(script, { timeoutMs: 60000 }), runNode(script, { timeoutMs: 60000 })])
  expect(a.stderr).toBe('')
  expect(a.code).toBe(0)
  expect(b.code).toBe(0)
  expect(await inspector.get(counter)).toBe('60') // no lost update
  const all = [...JSON.parse(a.stdout), ...JSON.parse(b.stdout)]
  expect(new Set(all).size).toBe(60) // every acquisition got its own token
  for (const fences of [JSON.parse(a.stdout), JSON.parse(b.stdout)]) {
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1])
  }
}, 70000)

test('fencing tokens keep growing after the counter has gone (server clock floor)', async () => {
  const k = key('fence')
  const a = await acquireLock(k, 5)
  await releaseLock(a)
  await inspector.del(`{${k}}:fence`)
  const b = await acquireLock(k, 5)
  expect(b.fencingToken).toBeGreaterThan(a.fencingToken)
  await releaseLock(b)
})

test('nobody releases or extends a lock they do not hold: an expired lock re-taken by someone else', async () => {
  const k = key('expired')
  const mine = await acquireLock(k, 1)
  await sleep(1100)
  const theirs = await acquireLock(k, 10)
  expect(theirs).not.toBeNull()
  expect(await extendLock(mine, 10)).toBe(false)
  expect(await releaseLock(mine)).toBe(false)
  expect(await inspector.get(k)).toBe(theirs.token) // still theirs
  expect(await extendLock(theirs, 20)).toBe(true)
  expect(await inspector.pttl(k)).toBeGreaterThan(19000)
  expect(await releaseLock(theirs)).toBe(true)
})

test('expiry: an unreleased lock goes by itself after its TTL', async () => {
  const k = key('expiry')
  await acquireLock(k, 1)
  expect(await acquireLock(k, 1)).toBeNull()
  await sleep(1100)
  const again = await acquireLock(k, 1)
  expect(again).not.toBeNull()
  await releaseLock(again)
})

test('withLock returns what fn returns, releases on throw and propagates the error', async () => {
  const k = key('throw')
  expect(await withLock(k, async () => 42)).toBe(42)
  expect(await inspector.exists(k)).toBe(0)
  const boom = new Error('boom')
  await expect(withLock(k, async () => Promise.reject(boom))).rejects.toBe(boom)
  expect(await inspector.exists(k)).toBe(0)
  await expect(withLock(k, () => {
    throw boom
  })).rejects.toBe(boom)
  expect(await inspector.exists(k)).toBe(0)
})

test('withLock rejects with LockNotAcquiredError when the lock cannot be had within waitMs', async () => {
  const k = key('busy')
  const held = await acquireLock(k, 10)
  let ran = false
  const started = Date.now()
  const error = await withLock(k, async () => (ran = true), 10, { waitMs: 200 }).catch((e) => e)
  expect(error).toBeInstanceOf(LockNotAcquiredError)
  expect(error).not.toBeInstanceOf(LockLostError)
  expect(Date.now() - started).toBeGreaterThanOrEqual(190)
  expect(Date.now() - started).toBeLessThan(1000)
  expect(ran).toBe(false)
  await expect(withLock(k, async () => 1)).rejects.toBeInstanceOf(LockNotAcquiredError) // default: one attempt
  await releaseLock(held)
})

test('auto-extension: a 1 s lock held by a 3 s fn stays ours, and others fail throughout', async () => {
  const k = key('extend')
  let othersGot = 0
  let aborted = false
  const value = await withLock(
    k,
    async ({ signal }) => {
      const until = Date.now() + 3000
      while (Date.now() < until) {
        if (await acquireLock(k, 1)) othersGot++
        await sleep(100)
      }
      aborted = signal.aborted
      return 'done'
    },
    1,
  )
  expect(value).toBe('done')
  expect(othersGot).toBe(0)
  expect(aborted).toBe(false)
  expect(await inspector.exists(k)).toBe(0)
})

test('leases that come and go in any order are each renewed while their fn runs, and the keeper stops after the last', async () => {
  // The process-wide lease keeper (lib/lock.js), read here to check its bookkeeping.
  const keeper = globalThis[Symbol.for('@yesgoddess/redis/runtime/v1')].shared('locks/v2', () => null)
  const k = (i) => key(`churn-${i}`)
  const hold = (i, ms) =>
    withLock(
      k(i),
      async ({ signal, fencingToken }) => {
        await sleep(ms)
        return { i, aborted: signal.aborted, fencingToken }
      },
      1, // renewed every ~333 ms: a fn of 1.6 s needs several renewals
    )
  // Short ones end early and free their slots while long ones still run; a
  // second wave then takes the freed slots and must be renewed as well.
  const first = [...Array(12).keys()].map((i) => hold(i, i % 2 === 0 ? 100 : 1600))
  await sleep(300)
  expect(keeper.held).toBe(6)
  const second = [...Array(6).keys()].map((i) => hold(100 + i, 1600))
  await sleep(50)
  expect(keeper.held).toBe(12)
  expect(keeper.slots.length).toBe(12) // the second wave reused the first wave's slots
  const results = await Promise.all([...first, ...second])
  expect(results.map((r) => r.i)).toEqual([...Array(12).keys(), ...[...Array(6).keys()].map((i) => 100 + i)])
  for (const r of results) {
    expect(r.aborted).toBe(false)
    expect(typeof r.fencingToken).toBe('number')
  }
  for (const r of results) expect(await inspector.exists(k(r.i))).toBe(0)
  expect(keeper.held).toBe(0)
  expect(keeper.slots.every((lease) => lease === undefined)).toBe(true)
  expect(keeper.timer).toBe(null)
})

test('the context withLock hands fn: one signal however often it is read, and the fencing token', async () => {
  const lock = await withLock(key('context'), async (context) => {
    const { signal, fencingToken } = context
    return { same: context.signal === signal, isSignal: signal instanceof AbortSignal, aborted: signal.aborted, fencingToken }
  })
  expect(lock).toEqual({ same: true, isSignal: true, aborted: false, fencingToken: expect.any(Number) })
})

test('a lost lease aborts the signal with LockLostError and withLock rejects with it', async () => {
  const k = key('lost')
  let reason = null
  const error = await withLock(
    k,
    async ({ signal }) => {
      await inspector.del(k) // behind the holder's back
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
      reason = signal.reason
      return 'finished anyway'
    },
    1,
  ).catch((e) => e)
  expect(reason).toBeInstanceOf(LockLostError)
  expect(error).toBeInstanceOf(LockLostError)
  expect(error).not.toBeInstanceOf(LockNotAcquiredError)
  expect(error.result).toBe('finished anyway')
})

test("fn runs in the caller's AsyncLocalStorage context", async () => {
  const als = new AsyncLocalStorage()
  const seen = await als.run({ request: 'r-7' }, () => withLock(key('als'), async () => als.getStore()))
  expect(seen).toEqual({ request: 'r-7' })
})

test('await using releases the lock at the end of the block', async () => {
  const k = key('dispose')
  const lock = await acquireLock(k, 10)
  const dispose = lock[Symbol.asyncDispose || Symbol.for('nodejs.asyncDispose')]
  expect(typeof dispose).toBe('function')
  expect(await dispose.call(lock)).toBe(true)
  expect(await inspector.exists(k)).toBe(0)
})

test('bad input is a TypeError and nothing is sent', async () => {
  const sent = await commandsSentDuring(async () => {
    await expect(acquireLock('')).rejects.toBeInstanceOf(TypeError)
    await expect(acquireLock('lock:x', 0)).rejects.toBeInstanceOf(TypeError)
    await expect(acquireLock('lock:x', -1)).rejects.toBeInstanceOf(TypeError)
    await expect(acquireLock('lock:x', 10, { retries: -1 })).rejects.toBeInstanceOf(TypeError)
    await expect(withLock('lock:x', 'not a function')).rejects.toBeInstanceOf(TypeError)
    await expect(withLock('', async () => 1)).rejects.toBeInstanceOf(TypeError)
    await expect(withLock('lock:x', async () => 1, 0)).rejects.toBeInstanceOf(TypeError)
    await expect(releaseLock({})).rejects.toBeInstanceOf(TypeError)
    await expect(extendLock(null, 1)).rejects.toBeInstanceOf(TypeError)
  })
  expect(sent).toBe(0)
})

test('keyPrefix: the lock and its fencing counter live under the prefix, in one hash slot', async () => {
  await useRedis({ keyPrefix: 'app1:' })
  try {
    const k = key('prefixed')
    const lock = await acquireLock(k, 10)
    expect(await inspector.get(`app1:${k}`)).toBe(lock.token)
    const fence = `app1:{app1:${k}}:fence`
    expect(Number(await inspector.get(fence))).toBe(lock.fencingToken)
    expect(clusterKeySlot(fence)).toBe(clusterKeySlot(`app1:${k}`))
    expect(await releaseLock(lock)).toBe(true)
  } finally {
    await useRedis()
  }
})

describe('the server stopping mid-fn', () => {
  test('the caller gets a clear error and there is no unhandled rejection', async () => {
    const server = await new RedisServer().start()
    const unhandled = []
    const onUnhandled = (reason) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      await useRedis({ url: server.url, commandTimeoutMs: 300, connectTimeoutMs: 300, retryMaxDelayMs: 200 })
      let signalReason = null
      const started = Date.now()
      const error = await withLock(
        'lock:test:down',
        async ({ signal }) => {
          await server.stop()
          await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
          signalReason = signal.reason
        },
        1,
      ).catch((e) => e)
      expect(Date.now() - started).toBeLessThan(5000)
      expect(signalReason).toBeInstanceOf(LockLostError)
      expect(error).toBeInstanceOf(LockLostError)
      expect(error.message).toMatch(/lock:test:down was lost/)
      await sleep(100)
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
      await server.stop()
      await useRedis()
    }
  })
})
