'use strict'
// withIdempotency, getIdempotencyRecord and idempotentRoute against private redis-servers.
const { AsyncLocalStorage } = require('node:async_hooks')
const { spawn } = require('node:child_process')
const { createHash } = require('node:crypto')
const { RedisServer } = require('./support/redis-server.js')
const { redis, useRedis, runNode, ROOT, commandsSentDuring, useRedisWithInspector, sleep, waitFor } = require('./support/client.js')

const {
  withIdempotency,
  getIdempotencyRecord,
  idempotentRoute,
  IdempotencyInProgressError,
  IdempotencyMismatchError,
  RedisKeys,
  RedisTTL,
  RedisError,
} = redis
const inspector = useRedisWithInspector()
let unique = 0
const key = (name) => `test-${name}-${process.pid}-${++unique}`
const recordKey = (k) => RedisKeys.idempotency.key(k)
const deferred = () => {
  let resolve
  const promise = new Promise((r) => (resolve = r))
  return { promise, resolve }
}

/** Calls made per command on a private server, from INFO commandstats. */
function commandCalls(server, name) {
  const m = new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(server.cli('INFO', 'commandstats'))
  return m ? Number(m[1]) : 0
}

/** Runs `fn` with the client on a private server of its own (stopped afterwards). */
async function withPrivateServer(fn, options = {}) {
  const server = await new RedisServer().start()
  try {
    await useRedis({ url: server.url, ...options })
    return await fn(server)
  } finally {
    await redis.closeRedisConnection()
    await server.stop()
    await useRedis()
  }
}

describe('withIdempotency', () => {
  test('runs fn once per key and resolves its JSON result to later calls without running it again', async () => {
    const k = key('once')
    let runs = 0
    const at = new Date('2026-01-02T03:04:05.000Z')
    const value = { charged: 100, at, nested: [1, 'two', null] }
    const first = await withIdempotency(k, async () => {
      runs++
      return value
    })
    expect(first).toBe(value) // resolves what fn resolved
    const again = await withIdempotency(k, async () => {
      runs++
      return 'never'
    })
    expect(runs).toBe(1)
    expect(again).toEqual({ charged: 100, at: '2026-01-02T03:04:05.000Z', nested: [1, 'two', null] }) // its JSON form
    // Stored as RedisKeys.idempotency.key(key), kept RedisTTL.idempotency.default (24 h).
    const stored = JSON.parse(await inspector.get(recordKey(k)))
    expect(stored).toMatchObject({ state: 'completed', result: again })
    expect(RedisTTL.idempotency.default).toBe(86400)
    const ttl = await inspector.ttl(recordKey(k))
    expect(ttl).toBeGreaterThan(86390)
    expect(ttl).toBeLessThanOrEqual(86400)
  })

  test('a result replayed many times (kept decoded after the second read): each caller gets its own copy, and a record changed in Redis is read as changed', async () => {
    const k = key('replayed')
    const receipt = { __proto__: null, id: 'ch_1', lines: [{ sku: 'a', cents: 100 }], meta: { tags: ['x'] } }
    await withIdempotency(k, async () => receipt)
    const never = async () => {
      throw new Error('a completed key must be replayed')
    }
    const replays = []
    for (let i = 0; i < 5; i++) replays.push(await withIdempotency(k, never))
    const expected = { id: 'ch_1', lines: [{ sku: 'a', cents: 100 }], meta: { tags: ['x'] } }
    for (const r of replays) expect(r).toEqual(expected)
    for (let i = 1; i < replays.length; i++) {
      expect(replays[i]).not.toBe(replays[0])
      expect(replays[i].lines).not.toBe(replays[0].lines)
      expect(replays[i].lines[0]).not.toBe(replays[0].lines[0])
      expect(replays[i].meta.tags).not.toBe(replays[0].meta.tags)
    }
    // A caller's change stays its own.
    replays[4].lines[0].cents = 1
    replays[4].meta.tags.push('mutated')
    expect(await withIdempotency(k, never)).toEqual(expected)
    // The stored result changed behind the package's back, deep inside: read as changed.
    const stored = JSON.parse(await inspector.get(recordKey(k)))
    stored.result.lines[0].cents = 999
    await inspector.set(recordKey(k), JSON.stringify(stored), 'EX', 60)
    expect((await withIdempotency(k, never)).lines[0].cents).toBe(999)
    expect((await getIdempotencyRecord(k)).result.lines[0].cents).toBe(999)
  })

  test('ttlSeconds sets how long the completed result is kept; after it, fn runs again', async () => {
    const k = key('ttl')
    let runs = 0
    await withIdempotency(k, async () => ++runs, { ttlSeconds: 1 })
    expect(await inspector.ttl(recordKey(k))).toBe(1)
    expect(await withIdempotency(k, async () => ++runs, { ttlSeconds: 1 })).toBe(1)
    await sleep(1100)
    expect(await withIdempotency(k, async () => ++runs, { ttlSeconds: 1 })).toBe(2)
  })

  test('a replay of a key seen completed here is one GET (no claim sent); a record gone, claimed anew or of another fingerprint is handled as without it', async () => {
    await withPrivateServer(async (server) => {
      const k = key('hint')
      let runs = 0
      const fn = async () => ++runs
      expect(await withIdempotency(k, fn)).toBe(1)
      const sets = commandCalls(server, 'set')
      const gets = commandCalls(server, 'get')
      for (let i = 0; i < 5; i++) expect(await withIdempotency(k, fn)).toBe(1)
      expect(commandCalls(server, 'set')).toBe(sets) // no claim
      expect(commandCalls(server, 'get')).toBe(gets + 5)
      // Another fingerprint: a mismatch, as ever.
      await expect(withIdempotency(k, fn, { fingerprint: 'other' })).rejects.toBeInstanceOf(IdempotencyMismatchError)
      // The record is gone (expired or deleted): fn runs again, under a new claim.
      server.cli('DEL', recordKey(k))
      expect(await withIdempotency(k, fn)).toBe(2)
      expect(runs).toBe(2)
      // Claimed anew by someone else (in progress): an in-progress duplicate, as ever.
      server.cli('SET', recordKey(k), JSON.stringify({ state: 'in-progress', token: 'x', fingerprint: null, createdAt: Date.now() }), 'PX', '60000')
      await expect(withIdempotency(k, fn)).rejects.toBeInstanceOf(IdempotencyInProgressError)
      expect(runs).toBe(2)
    })
  })

  test('a result of undefined is stored as null; a result JSON cannot represent is a TypeError and nothing is stored', async () => {
    const k = key('undefined')
    expect(await withIdempotency(k, async () => undefined)).toBeUndefined()
    expect(await withIdempotency(k, async () => 'x')).toBeNull()
    for (const bad of [() => 10n, () => {
      const cycle = {}
      cycle.self = cycle
      return cycle
    }, () => () => 1]) {
      const kb = key('unjsonable')
      const error = await withIdempotency(kb, async () => bad()).catch((e) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('EINVALID')
      expect(await inspector.exists(recordKey(kb))).toBe(0) // nothing stored, claim released
    }
  })

  test('while fn runs the key is in progress with a lease of leaseSeconds (default 60)', async () => {
    const k = key('lease')
    const gate = deferred()
    const started = deferred()
    const run = withIdempotency(k, async () => {
      started.resolve()
      await gate.promise
      return 'done'
    })
    await started.promise
    const claim = JSON.parse(await inspector.get(recordKey(k)))
    expect(claim.state).toBe('in-progress')
    const pttl = await inspector.pttl(recordKey(k))
    expect(pttl).toBeGreaterThan(58000)
    expect(pttl).toBeLessThanOrEqual(60000)
    const record = await getIdempotencyRecord(k)
    expect(record).toEqual({ state: 'in-progress', fingerprint: null, createdAt: expect.any(Date), completedAt: null, result: null })
    expect(Math.abs(record.createdAt.getTime() - Date.now())).toBeLessThan(5000)
    gate.resolve()
    expect(await run).toBe('done')
  })

  test('the lease is renewed while fn runs: a 1 s lease held by a 2.5 s fn stays in progress', async () => {
    const k = key('renew')
    let others = 0
    let inProgress = 0
    let aborted = null
    const value = await withIdempotency(
      k,
      async ({ signal }) => {
        const until = Date.now() + 2500
        while (Date.now() < until) {
          try {
            await withIdempotency(k, async () => others++, { leaseSeconds: 1 })
          } catch (error) {
            if (error instanceof IdempotencyInProgressError) inProgress++
          }
          await sleep(100)
        }
        aborted = signal.aborted
        return 'finished'
      },
      { leaseSeconds: 1 },
    )
    expect(value).toBe('finished')
    expect(others).toBe(0)
    expect(inProgress).toBeGreaterThan(15)
    expect(aborted).toBe(false)
    expect((await getIdempotencyRecord(k)).state).toBe('completed')
  })

  test('getIdempotencyRecord: null, then the completed record with its dates and result', async () => {
    const k = key('record')
    expect(await getIdempotencyRecord(k)).toBeNull()
    const before = Date.now()
    await withIdempotency(k, async () => ({ id: 7 }), { fingerprint: 'fp-1' })
    const record = await getIdempotencyRecord(k)
    expect(record).toEqual({
      state: 'completed',
      fingerprint: 'fp-1',
      createdAt: expect.any(Date),
      completedAt: expect.any(Date),
      result: { id: 7 },
    })
    expect(record.createdAt.getTime()).toBeGreaterThanOrEqual(before)
    expect(record.completedAt.getTime()).toBeGreaterThanOrEqual(record.createdAt.getTime())
    expect(record.completedAt.getTime()).toBeLessThanOrEqual(Date.now())
  })

  test('another fingerprint under the same key rejects with IdempotencyMismatchError (completed or in progress)', async () => {
    const k = key('mismatch')
    let runs = 0
    await withIdempotency(k, async () => ++runs, { fingerprint: 'body-a' })
    expect(await withIdempotency(k, async () => ++runs, { fingerprint: 'body-a' })).toBe(1)
    for (const fingerprint of ['body-b', undefined]) {
      const error = await withIdempotency(k, async () => ++runs, { fingerprint }).catch((e) => e)
      expect(error).toBeInstanceOf(IdempotencyMismatchError)
      expect(error).toBeInstanceOf(RedisError)
      expect(error.code).toBe('IDEMPOTENCY_MISMATCH')
      expect(error.key).toBe(k)
    }
    // In progress: the mismatch is reported before the in-progress state.
    const k2 = key('mismatch-running')
    const gate = deferred()
    const running = withIdempotency(k2, () => gate.promise, { fingerprint: 'a' })
    await waitFor(async () => (await inspector.exists(recordKey(k2))) === 1)
    await expect(withIdempotency(k2, async () => 1, { fingerprint: 'b' })).rejects.toBeInstanceOf(IdempotencyMismatchError)
    await expect(withIdempotency(k2, async () => 1, { fingerprint: 'a' })).rejects.toBeInstanceOf(IdempotencyInProgressError)
    gate.resolve('ok')
    await running
    expect(runs).toBe(1)
  })

  test('an in-progress duplicate rejects at once with IdempotencyInProgressError (waitMs 0)', async () => {
    const k = key('busy')
    const gate = deferred()
    const running = withIdempotency(k, () => gate.promise)
    await waitFor(async () => (await inspector.exists(recordKey(k))) === 1)
    const started = Date.now()
    const error = await withIdempotency(k, async () => 'second').catch((e) => e)
    expect(Date.now() - started).toBeLessThan(200)
    expect(error).toBeInstanceOf(IdempotencyInProgressError)
    expect(error.code).toBe('IDEMPOTENCY_IN_PROGRESS')
    expect(error.key).toBe(k)
    gate.resolve('first')
    expect(await running).toBe('first')
  })

  test('with waitMs a duplicate waits for the first call and resolves its result; past waitMs it rejects', async () => {
    const k = key('wait')
    const gate = deferred()
    let runs = 0
    const running = withIdempotency(k, async () => {
      runs++
      await gate.promise
      return { n: 1 }
    })
    await waitFor(async () => (await inspector.exists(recordKey(k))) === 1)
    const started = Date.now()
    const timedOut = await withIdempotency(k, async () => runs++, { waitMs: 300 }).catch((e) => e)
    expect(timedOut).toBeInstanceOf(IdempotencyInProgressError)
    expect(Date.now() - started).toBeGreaterThanOrEqual(290)
    expect(Date.now() - started).toBeLessThan(1000)
    const waiting = withIdempotency(k, async () => runs++, { waitMs: 5000 })
    setTimeout(() => gate.resolve(), 200)
    expect(await waiting).toEqual({ n: 1 })
    expect(await running).toEqual({ n: 1 })
    expect(runs).toBe(1)
  })

  test('waiting on a claim made elsewhere asks Redis less often than the lock code retries (no busy polling)', async () => {
    await withPrivateServer(async (server) => {
      const k = key('poll')
      const rk = recordKey(k)
      const other = { state: 'in-progress', token: 'f'.repeat(32), fingerprint: null, createdAt: Date.now() }
      server.cli('SET', rk, JSON.stringify(other), 'PX', '10000')
      server.cli('CONFIG', 'RESETSTAT')
      const started = Date.now()
      const waiting = withIdempotency(k, async () => 'mine', { waitMs: 5000 })
      await sleep(1500)
      const completed = { ...other, state: 'completed', completedAt: Date.now(), result: 'theirs' }
      delete completed.token
      server.cli('SET', rk, JSON.stringify(completed), 'EX', '60')
      expect(await waiting).toBe('theirs')
      const elapsed = Date.now() - started
      const claims = commandCalls(server, 'set') - 1 // minus the completion written above
      // withLock retries every 50 ms ± 50 % (up to 40 a second); this backs off from 50 ms to 500 ms.
      expect(claims).toBeGreaterThanOrEqual(2)
      expect(claims).toBeLessThan((elapsed / 25) * 0.5)
      expect(claims).toBeLessThanOrEqual(15)
    })
  })

  test('when fn throws, nothing is stored, the claim is released and the error propagates; a retry runs fn again', async () => {
    const k = key('throw')
    const boom = new Error('card declined')
    let runs = 0
    await expect(
      withIdempotency(k, async () => {
        runs++
        throw boom
      }),
    ).rejects.toBe(boom)
    expect(await inspector.exists(recordKey(k))).toBe(0)
    await expect(
      withIdempotency(k, () => {
        runs++
        throw boom // a synchronous throw too
      }),
    ).rejects.toBe(boom)
    expect(await inspector.exists(recordKey(k))).toBe(0)
    expect(await withIdempotency(k, async () => ++runs)).toBe(3)
  })

  test("a claim lost while fn runs: signal aborts, and someone else's claim is never deleted or overwritten", async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      const theirs = JSON.stringify({ state: 'in-progress', token: 'e'.repeat(32), fingerprint: null, createdAt: Date.now() })
      // fn throws after the key was taken behind its back: the release must leave their claim.
      const k = key('lost-throw')
      let reason = null
      const boom = new Error('boom')
      await expect(
        withIdempotency(
          k,
          async ({ signal }) => {
            await inspector.set(recordKey(k), theirs, 'PX', 10000)
            await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
            reason = signal.reason
            throw boom
          },
          { leaseSeconds: 1 },
        ),
      ).rejects.toBe(boom)
      expect(reason).toBeInstanceOf(RedisError)
      expect(reason.code).toBe('IDEMPOTENCY_CLAIM_LOST')
      expect(await inspector.get(recordKey(k))).toBe(theirs)
      // fn resolves after losing the claim: its value is returned, theirs is kept, a warning says so.
      const k2 = key('lost-resolve')
      const value = await withIdempotency(k2, async () => {
        await inspector.set(recordKey(k2), theirs, 'PX', 10000)
        return 'done anyway'
      })
      expect(value).toBe('done anyway')
      expect(await inspector.get(recordKey(k2))).toBe(theirs)
      expect(warn).toHaveBeenCalledWith(expect.stringContaining(k2), { code: 'IDEMPOTENCY_CLAIM_LOST' })
    } finally {
      warn.mockRestore()
    }
  })

  test('100 concurrent callers in one process: fn runs once; without waitMs 99 are told it is in progress', async () => {
    const k = key('hundred')
    let runs = 0
    const fn = async () => {
      runs++
      await sleep(50)
      return { receipt: 'r-1' }
    }
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => withIdempotency(k, fn)))
    expect(runs).toBe(1)
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    expect(results.filter((r) => r.status === 'rejected' && r.reason instanceof IdempotencyInProgressError)).toHaveLength(99)
  })

  test('100 concurrent callers with waitMs all get the one result, waiting on the run in this process without polling', async () => {
    await withPrivateServer(async (server) => {
      const k = key('hundred-wait')
      let runs = 0
      server.cli('CONFIG', 'RESETSTAT')
      const results = await Promise.all(
        Array.from({ length: 100 }, () =>
          withIdempotency(
            k,
            async () => {
              runs++
              await sleep(300)
              return { receipt: 'r-2' }
            },
            { waitMs: 5000 },
          ),
        ),
      )
      expect(runs).toBe(1)
      expect(results.every((r) => r.receipt === 'r-2')).toBe(true)
      // Each waiter claimed once, then once more when the run ended: no polling in 300 ms.
      expect(commandCalls(server, 'set')).toBeLessThanOrEqual(200)
    })
  })

  test('3 node processes × 30 callers on one key: fn runs exactly once between them', async () => {
    const k = key('procs')
    const go = `idem-test:go:${k}`
    const runsKey = `idem-test:runs:${k}`
    const child = `
      const r = require('.')
      const c = r.getRedisClient()
      ;(async () => {
        while ((await c.get(${JSON.stringify(go)})) === null) await new Promise((res) => setTimeout(res, 2))
        const fn = async () => {
          await c.incr(${JSON.stringify(runsKey)})
          await new Promise((res) => setTimeout(res, 200))
          return { pid: process.pid }
        }
        const results = await Promise.allSettled(Array.from({ length: 30 }, () => r.withIdempotency(${JSON.stringify(k)}, fn, { waitMs: 10000 })))
        console.log(JSON.stringify(results.map((x) => x.status === 'fulfilled' ? x.value.pid : x.reason.code)))
        process.exit.call(process, 0)
      })()`
    const all = [runNode(child), runNode(child), runNode(child)]
    await sleep(500)
    await inspector.set(go, '1')
    const outputs = await Promise.all(all)
    for (const o of outputs) expect(o.code).toBe(0)
    expect(await inspector.get(runsKey)).toBe('1')
    const pids = outputs.flatMap((o) => JSON.parse(o.stdout))
    expect(pids).toHaveLength(90)
    expect(new Set(pids).size).toBe(1) // all 90 got the one run's result
    expect(typeof pids[0]).toBe('number')
  }, 30000)

  test('a process killed with SIGKILL while holding a claim frees the key within leaseSeconds', async () => {
    const k = key('sigkill')
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const r = require('.')
        setInterval(() => {}, 1000)
        r.withIdempotency(${JSON.stringify(k)}, async () => {
          console.log('claimed')
          await new Promise(() => {})
        }, { leaseSeconds: 2 })`,
      ],
      { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    try {
      await new Promise((resolve, reject) => {
        child.stdout.on('data', (d) => String(d).includes('claimed') && resolve())
        child.once('exit', () => reject(new Error('the child exited')))
      })
      // Renewed while the child lives, past its 2 s lease.
      await sleep(2500)
      expect((await getIdempotencyRecord(k)).state).toBe('in-progress')
      expect(await withIdempotency(k, async () => 'x').catch((e) => e)).toBeInstanceOf(IdempotencyInProgressError)
      const killedAt = Date.now()
      child.kill('SIGKILL')
      await waitFor(async () => (await inspector.exists(recordKey(k))) === 0, 5000, 20)
      expect(Date.now() - killedAt).toBeLessThanOrEqual(2000 + 250)
      expect(await withIdempotency(k, async () => 'after the crash')).toBe('after the crash')
    } finally {
      child.kill('SIGKILL')
    }
  }, 20000)

  test("fn runs in the caller's AsyncLocalStorage context", async () => {
    const als = new AsyncLocalStorage()
    const seen = await als.run({ request: 'r-9' }, () => withIdempotency(key('als'), async () => als.getStore()))
    expect(seen).toEqual({ request: 'r-9' })
  })

  test('keys holding *, : or { are kept as data: each its own record, under its escaped key', async () => {
    const base = key('data')
    const ids = [`${base}*`, `${base}:x`, `{${base}}`, base]
    const results = []
    for (const id of ids) results.push(await withIdempotency(id, async () => id))
    expect(results).toEqual(ids)
    for (const id of ids) {
      expect(JSON.parse(await inspector.get(recordKey(id))).result).toBe(id)
      expect(await withIdempotency(id, async () => 'again')).toBe(id)
    }
    expect(recordKey(`${base}*`)).toBe(`idempotency:${base}%2A`)
    expect(recordKey(`{${base}}`)).toBe(`idempotency:%7B${base}%7D`)
  })

  test('keyPrefix: the record lives under the prefix', async () => {
    await useRedis({ keyPrefix: 'app9:' })
    try {
      const k = key('prefix')
      await withIdempotency(k, async () => 5)
      expect(JSON.parse(await inspector.get(`app9:${recordKey(k)}`)).result).toBe(5)
      expect(await withIdempotency(k, async () => 6)).toBe(5)
    } finally {
      await useRedis()
    }
  })

  test('bad input is a TypeError (EINVALID) and nothing is sent', async () => {
    const fn = async () => 1
    const sent = await commandsSentDuring(async () => {
      const bad = [
        () => withIdempotency('', fn),
        () => withIdempotency({}, fn),
        () => withIdempotency('k\uD800', fn),
        () => withIdempotency('k', 'not a function'),
        () => withIdempotency('k', fn, 'options'),
        () => withIdempotency('k', fn, { ttlSeconds: 0 }),
        () => withIdempotency('k', fn, { ttlSeconds: 1.5 }),
        () => withIdempotency('k', fn, { ttlSeconds: 400 * 24 * 3600 }),
        () => withIdempotency('k', fn, { leaseSeconds: -1 }),
        () => withIdempotency('k', fn, { leaseSeconds: 90000 }),
        () => withIdempotency('k', fn, { waitMs: -1 }),
        () => withIdempotency('k', fn, { waitMs: 1.5 }),
        () => withIdempotency('k', fn, { fingerprint: 42 }),
        () => withIdempotency('k', fn, { fingerprint: '' }),
        () => getIdempotencyRecord(''),
        () => getIdempotencyRecord(null),
      ]
      for (const call of bad) {
        const error = await call().catch((e) => e)
        expect(error).toBeInstanceOf(TypeError)
        expect(error.code).toBe('EINVALID')
      }
      const handler = async () => new Response('x')
      for (const make of [
        () => idempotentRoute('handler'),
        () => idempotentRoute(handler, { header: '' }),
        () => idempotentRoute(handler, { header: 'bad header' }),
        () => idempotentRoute(handler, { scope: 'user' }),
        () => idempotentRoute(handler, { required: 'yes' }),
        () => idempotentRoute(handler, { ttlSeconds: -5 }),
      ]) {
        let error = null
        try {
          make()
        } catch (e) {
          error = e
        }
        expect(error).toBeInstanceOf(TypeError)
        expect(error.code).toBe('EINVALID')
      }
    })
    expect(sent).toBe(0)
  })

  test('with Redis stopped it rejects clearly within the command timeout and fn does not run', async () => {
    await withPrivateServer(
      async (server) => {
        await withIdempotency(key('warm'), async () => 1) // connected
        await server.stop()
        let runs = 0
        const started = Date.now()
        const error = await withIdempotency(key('down'), async () => ++runs).catch((e) => e)
        expect(Date.now() - started).toBeLessThan(1500)
        expect(error).toBeInstanceOf(RedisError)
        expect(['ECONNECTION', 'ETIMEDOUT', 'ECLOSED']).toContain(error.code)
        expect(runs).toBe(0)
        await expect(getIdempotencyRecord(key('down'))).rejects.toBeInstanceOf(RedisError)
      },
      { commandTimeoutMs: 500, connectTimeoutMs: 500, retryMaxDelayMs: 200 },
    )
  })

  test('Redis gone by the time fn finishes: fn’s value is resolved and a warning says it was not stored', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {})
    try {
      await withPrivateServer(
        async (server) => {
          const k = key('gone')
          const started = Date.now()
          const value = await withIdempotency(k, async () => {
            await server.stop()
            return 'charged'
          })
          expect(value).toBe('charged')
          expect(Date.now() - started).toBeLessThan(2000)
          expect(warn).toHaveBeenCalledWith(expect.stringContaining(k), { code: 'IDEMPOTENCY_NOT_STORED' })
        },
        { commandTimeoutMs: 500, connectTimeoutMs: 500, retryMaxDelayMs: 200 },
      )
    } finally {
      warn.mockRestore()
    }
  })
})

describe('idempotentRoute', () => {
  const post = (path, { key: k, body = '{"amount":100}', headers = {}, method = 'POST' } = {}) =>
    new Request(`http://localhost${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(k === undefined ? {} : { 'idempotency-key': k }), ...headers },
      body: method === 'GET' ? undefined : body,
    })

  function orders() {
    const calls = []
    const handler = async (request) => {
      const body = await request.json()
      calls.push(body)
      return new Response(JSON.stringify({ orderId: `o-${calls.length}`, amount: body.amount }), {
        status: 201,
        headers: { 'content-type': 'application/json', 'x-order': `o-${calls.length}`, 'set-cookie': 'session=abc; HttpOnly' },
      })
    }
    return { calls, handler }
  }

  test('without the header the handler runs as usual; with `required` the request gets 400', async () => {
    const { calls, handler } = orders()
    const route = idempotentRoute(handler)
    expect((await route(post('/api/orders'))).status).toBe(201)
    expect((await route(post('/api/orders'))).status).toBe(201)
    expect(calls).toHaveLength(2)
    const strict = idempotentRoute(handler, { required: true })
    const response = await strict(post('/api/orders'))
    expect(response.status).toBe(400)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(await response.json()).toMatchObject({ status: 400, title: 'Idempotency-Key is missing' })
    expect(calls).toHaveLength(2)
  })

  test('the first request runs the handler; a repeat replays status, body and headers (minus Set-Cookie) marked Idempotent-Replayed', async () => {
    const { calls, handler } = orders()
    const route = idempotentRoute(handler)
    const k = key('route-replay')
    const first = await route(post('/api/orders', { key: k }))
    expect(first.status).toBe(201)
    expect(first.headers.get('set-cookie')).toBe('session=abc; HttpOnly') // the first response is the handler's own
    expect(first.headers.get('idempotent-replayed')).toBeNull()
    const firstBody = await first.json()
    for (let i = 0; i < 2; i++) {
      const again = await route(post('/api/orders', { key: k }))
      expect(again.status).toBe(201)
      expect(again.headers.get('idempotent-replayed')).toBe('true')
      expect(again.headers.get('x-order')).toBe('o-1')
      expect(again.headers.get('content-type')).toBe('application/json')
      expect(again.headers.get('set-cookie')).toBeNull()
      expect(await again.json()).toEqual(firstBody)
    }
    expect(calls).toHaveLength(1)
    // The key is scoped by method and path; the fingerprint is a SHA-256 of method, path and body.
    const stored = JSON.parse(await inspector.get(recordKey(`POST /api/orders  ${k}`)))
    const expected = createHash('sha256').update('POST\n/api/orders\n{"amount":100}').digest('hex')
    expect(stored.fingerprint).toBe(expected)
    expect(stored.result.status).toBe(201)
  })

  test('an sf-string key ("…", as the draft writes it) is the same key as the bare one; a malformed header is 400', async () => {
    const { calls, handler } = orders()
    const route = idempotentRoute(handler)
    const k = key('sf')
    expect((await route(post('/api/orders', { key: `"${k}"` }))).status).toBe(201)
    const again = await route(post('/api/orders', { key: k }))
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    for (const bad of [`"${k}", "other"`, 'a,b', '""', 'x'.repeat(256)]) {
      expect((await route(post('/api/orders', { key: bad }))).status).toBe(400)
    }
    expect(calls).toHaveLength(1)
  })

  test('a repeat while the first is still running gets 409 with Retry-After: 1', async () => {
    const gate = deferred()
    let runs = 0
    const route = idempotentRoute(async () => {
      runs++
      await gate.promise
      return Response.json({ ok: true }, { status: 200 })
    })
    const k = key('route-409')
    const first = route(post('/api/pay', { key: k }))
    await waitFor(async () => (await inspector.exists(recordKey(`POST /api/pay  ${k}`))) === 1)
    const conflict = await route(post('/api/pay', { key: k }))
    expect(conflict.status).toBe(409)
    expect(conflict.headers.get('retry-after')).toBe('1')
    expect((await conflict.json()).status).toBe(409)
    gate.resolve()
    expect((await first).status).toBe(200)
    expect((await route(post('/api/pay', { key: k }))).headers.get('idempotent-replayed')).toBe('true')
    expect(runs).toBe(1)
  })

  test('the same key with another body gets 422; another path, method or scope is another key', async () => {
    const { calls, handler } = orders()
    const route = idempotentRoute(handler, { scope: (request) => request.headers.get('x-user') })
    const k = key('route-422')
    expect((await route(post('/api/orders', { key: k, headers: { 'x-user': 'u1' } }))).status).toBe(201)
    const mismatch = await route(post('/api/orders', { key: k, body: '{"amount":999}', headers: { 'x-user': 'u1' } }))
    expect(mismatch.status).toBe(422)
    expect((await mismatch.json()).title).toBe('Idempotency-Key is already used')
    expect((await route(post('/api/orders?x=1', { key: k, headers: { 'x-user': 'u1' } }))).status).toBe(422) // query is in the fingerprint
    expect((await route(post('/api/other', { key: k, headers: { 'x-user': 'u1' } }))).status).toBe(201)
    expect((await route(post('/api/orders', { key: k, method: 'PUT', headers: { 'x-user': 'u1' } }))).status).toBe(201)
    expect((await route(post('/api/orders', { key: k, headers: { 'x-user': 'u2' } }))).status).toBe(201)
    expect(calls).toHaveLength(4)
    expect(await inspector.exists(recordKey(`POST /api/orders u2 ${k}`))).toBe(1)
  })

  test('2xx and 4xx are stored; a 5xx or a thrown error releases the key and the next request runs the handler', async () => {
    let status = 400
    let runs = 0
    const route = idempotentRoute(async () => {
      runs++
      if (status === 0) throw new Error('handler failed')
      return Response.json({ status }, { status })
    })
    const k4 = key('route-4xx')
    expect((await route(post('/api/x', { key: k4 }))).status).toBe(400)
    const replayed = await route(post('/api/x', { key: k4 }))
    expect(replayed.status).toBe(400)
    expect(replayed.headers.get('idempotent-replayed')).toBe('true')
    expect(runs).toBe(1)
    const k5 = key('route-5xx')
    status = 503
    expect((await route(post('/api/x', { key: k5 }))).status).toBe(503)
    expect(await inspector.exists(recordKey(`POST /api/x  ${k5}`))).toBe(0)
    status = 0
    await expect(route(post('/api/x', { key: k5 }))).rejects.toThrow('handler failed')
    expect(await inspector.exists(recordKey(`POST /api/x  ${k5}`))).toBe(0)
    status = 200
    const ok = await route(post('/api/x', { key: k5 }))
    expect(ok.status).toBe(200)
    expect(ok.headers.get('idempotent-replayed')).toBeNull()
    expect(runs).toBe(4)
  })

  test('a binary body and a 204 replay byte for byte', async () => {
    const bytes = Uint8Array.from([0, 255, 1, 254, 0xc3, 0x28])
    const route = idempotentRoute(async (request) => {
      if (new URL(request.url).pathname === '/empty') return new Response(null, { status: 204, headers: { 'x-a': '1' } })
      return new Response(bytes, { status: 200, headers: { 'content-type': 'application/octet-stream' } })
    })
    const k = key('bin')
    await route(post('/bin', { key: k }))
    const again = await route(post('/bin', { key: k }))
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(new Uint8Array(await again.arrayBuffer())).toEqual(bytes)
    await route(post('/empty', { key: k }))
    const empty = await route(post('/empty', { key: k }))
    expect(empty.status).toBe(204)
    expect(empty.headers.get('x-a')).toBe('1')
    expect(empty.headers.get('idempotent-replayed')).toBe('true')
  })

  test("the handler runs in the caller's AsyncLocalStorage context and gets the request and context", async () => {
    const als = new AsyncLocalStorage()
    let seen = null
    const route = idempotentRoute(async (request, context) => {
      seen = { store: als.getStore(), body: await request.text(), params: await context.params }
      return new Response('ok')
    })
    const response = await als.run({ request: 'r-route' }, () =>
      route(post('/api/als', { key: key('route-als') }), { params: Promise.resolve({ id: '7' }) }),
    )
    expect(response.status).toBe(200)
    expect(seen).toEqual({ store: { request: 'r-route' }, body: '{"amount":100}', params: { id: '7' } })
  })

  test('a custom header name', async () => {
    const { calls, handler } = orders()
    const route = idempotentRoute(handler, { header: 'X-Request-Id' })
    const k = key('custom-header')
    await route(post('/api/orders', { headers: { 'x-request-id': k } }))
    const again = await route(post('/api/orders', { headers: { 'x-request-id': k } }))
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect(calls).toHaveLength(1)
  })

  test('with Redis stopped a keyed request gets 503 and the handler does not run', async () => {
    await withPrivateServer(
      async (server) => {
        await redis.getRedisClient().ping()
        await server.stop()
        let runs = 0
        const route = idempotentRoute(async () => {
          runs++
          return new Response('ok')
        })
        const response = await route(post('/api/down', { key: key('down-route') }))
        expect(response.status).toBe(503)
        expect(response.headers.get('retry-after')).toBe('1')
        expect(runs).toBe(0)
      },
      { commandTimeoutMs: 500, connectTimeoutMs: 500, retryMaxDelayMs: 200 },
    )
  })
})
