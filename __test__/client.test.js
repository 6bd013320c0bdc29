'use strict'
// Round trips through the real addon against the private redis-server.
const { redis, useRedis, runNode, CLUSTER } = require('./support/client.js')

const { ReplyError } = redis
let client

beforeAll(async () => {
  client = await useRedis()
})
afterAll(() => redis.closeRedisConnection())

const key = (name) => `test:client:${name}`

test('call, command methods and ping round-trip', async () => {
  expect(await client.ping()).toBe('PONG')
  expect(await client.call('SET', key('a'), 'value-a')).toBe('OK')
  expect(await client.call('GET', key('a'))).toBe('value-a')
  expect(await client.get(key('a'))).toBe('value-a')
  expect(await client.call('get', key('missing'))).toBeNull()
  expect(await client.incrby(key('n'), 41)).toBe(41)
  expect(await client.incr(key('n'))).toBe(42)
  await client.call('RPUSH', key('list'), 'x', 'y', 'z')
  expect(await client.lrange(key('list'), 0, -1)).toEqual(['x', 'y', 'z'])
  await client.hset(key('h'), 'f1', 'v1', 'f2', 'v2')
  expect(await client.hgetall(key('h'))).toEqual(['f1', 'v1', 'f2', 'v2'])
  expect(await client.call('EVAL', 'return {KEYS[1], ARGV[1], 7}', 1, key('k'), 'arg')).toEqual([key('k'), 'arg', 7])
})

test('binary-safe values through Buffers and unicode strings round-trip', async () => {
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  expect(await client.call('SET', key('bin'), bytes)).toBe('OK')
  const back = await client.callBuffer('GET', key('bin'))
  expect(Buffer.isBuffer(back)).toBe(true)
  expect(back.equals(bytes)).toBe(true)
  expect(Number(await client.call('STRLEN', key('bin')))).toBe(256)

  const text = 'naïve café — 日本語 🎉 \u0000 end'
  await client.set(key('utf8'), text)
  expect(await client.get(key('utf8'))).toBe(text)
  expect(await client.call('STRLEN', key('utf8'))).toBe(Buffer.byteLength(text))
  const u8 = new Uint8Array([0xff, 0x00, 0xfe])
  await client.call('SET', key('u8'), u8)
  expect([...(await client.callBuffer('GET', key('u8')))]).toEqual([0xff, 0x00, 0xfe])
})

test('replies larger than the read and drain buffers arrive whole, next to small ones', async () => {
  const big = 'é'.repeat(3 * 1024 * 1024) // 6 MiB of UTF-8, split over many socket reads
  const bytes = Buffer.alloc(2 * 1024 * 1024 + 3, 7)
  await client.set(key('big'), big)
  await client.set(key('bigbin'), bytes)
  const [a, b, c, d] = await Promise.all([
    client.get(key('big')),
    client.set(key('small'), 's'),
    client.callBuffer('GET', key('bigbin')),
    client.get(key('small')),
  ])
  expect(a.length).toBe(big.length)
  expect(a === big).toBe(true)
  expect(b).toBe('OK')
  expect(c.equals(bytes)).toBe(true)
  expect(d).toBe('s')
})

test('each request keeps its own result: one failure never rejects its neighbours', async () => {
  await client.set(key('s'), 'string')
  const results = await Promise.allSettled([
    client.call('GET', key('s')),
    client.call('HGET', key('s'), 'field'), // WRONGTYPE
    client.call('NO-SUCH-COMMAND'),
    client.call('SET', key('bad'), { not: 'an argument' }),
    client.call('INCR', key('counter')),
  ])
  expect(results[0]).toEqual({ status: 'fulfilled', value: 'string' })
  expect(results[1].reason).toBeInstanceOf(ReplyError)
  expect(results[1].reason.code).toBe('WRONGTYPE')
  if (CLUSTER) {
    // a command the table does not know has no slot: refused before sending, not sent to some node
    expect(results[2].reason).toBeInstanceOf(TypeError)
    expect(results[2].reason.message).toMatch(/keys are not known, so it cannot be routed on a cluster/)
  } else {
    expect(results[2].reason).toBeInstanceOf(ReplyError)
    expect(results[2].reason.message).toMatch(/unknown command/)
  }
  expect(results[3].reason).toBeInstanceOf(TypeError)
  expect(results[3].reason.message).toMatch(/^SET: argument 2 is an object/)
  expect(results[4]).toEqual({ status: 'fulfilled', value: 1 })
  // the bad SET sent nothing
  expect(await client.exists(key('bad'))).toBe(0)
})

test('bad command names are TypeErrors before anything is sent', async () => {
  await expect(client.call('')).rejects.toBeInstanceOf(TypeError)
  await expect(client.call(42)).rejects.toBeInstanceOf(TypeError)
  expect(() => client.pipeline().call(undefined)).toThrow(TypeError)
  for (const bad of [undefined, null, true, Symbol('s'), () => 1, 10n]) {
    await expect(client.call('SET', key('x'), bad)).rejects.toBeInstanceOf(TypeError)
  }
})

test('commands that would change the shared connection for everyone are refused before sending', async () => {
  for (const command of ['SELECT', 'select', 'MULTI', 'EXEC', 'WATCH', 'SUBSCRIBE', 'MONITOR', 'QUIT', 'AUTH', 'HELLO']) {
    const error = await client.call(command, '1').catch((e) => e)
    expect(error).toBeInstanceOf(TypeError)
    expect(error.message).toMatch(/is not allowed/)
  }
  expect(await client.ping()).toBe('PONG') // the connection is untouched
})

test('many concurrent requests each get their own reply', async () => {
  const n = 5000
  await Promise.all(Array.from({ length: n }, (_, i) => client.set(key(`many:${i}`), `v${i}`)))
  const values = await Promise.all(Array.from({ length: n }, (_, i) => client.get(key(`many:${i}`))))
  values.forEach((v, i) => expect(v).toBe(`v${i}`))
})

test("one turn's requests larger than one submit go out in several, in the order they were made", async () => {
  // About 450 KB of text in one turn: the runtime sends it in submits of about
  // 64 K UTF-16 units each. The counter's replies prove the order on the wire.
  const counter = key('order:counter')
  await client.del(counter)
  const calls = []
  for (let i = 0; i < 300; i++) {
    const value = (i % 3 === 0 ? `é${i}-` : `${i}-`).repeat(200).slice(0, 1000 + i) // some not ASCII
    calls.push(client.set(key(`order:${i}`), value).then((reply) => ({ reply, value })))
    calls.push(client.incr(counter))
    if (i === 150) calls.push(client.set(key('order:huge'), 'h'.repeat(200 * 1024))) // one request over the cap
    if (i === 200) calls.push(client.set(key('order:bytes'), Buffer.alloc(70 * 1024, 5)))
  }
  const settled = await Promise.all(calls)
  let n = 0
  for (const r of settled) {
    if (typeof r === 'number') expect(r).toBe(++n)
  }
  expect(n).toBe(300)
  const sets = settled.filter((r) => typeof r === 'object' && r !== null)
  expect(sets.every((r) => r.reply === 'OK')).toBe(true)
  const values = await Promise.all(sets.map((_, i) => client.get(key(`order:${i}`))))
  values.forEach((v, i) => expect(v).toBe(sets[i].value))
  expect(await client.strlen(key('order:huge'))).toBe(200 * 1024)
  expect((await client.callBuffer('GET', key('order:bytes'))).equals(Buffer.alloc(70 * 1024, 5))).toBe(true)
})

test('pipeline().exec() resolves every reply in order, errors in place', async () => {
  const pipeline = client.pipeline()
  pipeline.set(key('p1'), 'one')
  pipeline.set(key('p2'), 'two')
  pipeline.call('HGET', key('p1'), 'f')
  pipeline.get(key('p2'))
  pipeline.incr(key('pn'))
  expect(pipeline.length).toBe(5)
  const results = await pipeline.exec()
  expect(results).toHaveLength(5)
  expect(results[0]).toEqual([null, 'OK'])
  expect(results[1]).toEqual([null, 'OK'])
  expect(results[2][0]).toBeInstanceOf(ReplyError)
  expect(results[2][1]).toBeNull()
  expect(results[3]).toEqual([null, 'two'])
  expect(results[4]).toEqual([null, 1])
  expect(await client.pipeline().exec()).toEqual([])
})

test('scan() iterates every matching key in batches, never KEYS', async () => {
  const wanted = new Set()
  const p = client.pipeline()
  for (let i = 0; i < 1234; i++) {
    const k = key(`scan:${i}`)
    wanted.add(k)
    p.set(k, '1')
  }
  p.set(key('scanx'), 'not matched')
  await p.exec()
  const seen = new Set()
  let batches = 0
  for await (const keys of client.scan({ match: key('scan:*'), count: 100 })) {
    batches++
    for (const k of keys) seen.add(k)
  }
  expect(batches).toBeGreaterThan(1)
  expect(seen).toEqual(wanted)
  expect(() => client.scan({ count: 0 })).toThrow(TypeError)
  expect(() => client.scan({ match: '' })).toThrow(TypeError)
})

describe('who reads the socket', () => {
  const n = 3000
  const expected = (i) => `value-${i}-${'x'.repeat(i % 50)}`

  beforeAll(async () => {
    const p = client.pipeline()
    for (let i = 0; i < n; i++) p.set(key(`read:${i}`), expected(i))
    await p.exec()
  })

  /** 256 workers in a closed loop, each checking that every reply is its own. */
  async function loadAndCheck(steps) {
    let mismatches = 0
    await Promise.all(
      Array.from({ length: 256 }, async (_, worker) => {
        for (let step = 0; step < steps; step++) {
          const j = (worker * 41 + step * 7) % n
          if ((await client.get(key(`read:${j}`))) !== expected(j)) mismatches++
        }
      }),
    )
    return mismatches
  }

  test('the JS thread takes reading over from Rust mid-stream without losing or mixing a reply', async () => {
    const { runtime } = require('../lib/runtime.js')
    for (let round = 0; round < 3; round++) {
      const adopted = runtime.readerStats.adopted
      await redis.closeRedisConnection()
      // The first batch goes out before the connection is ready and is read by
      // Rust; the JS thread adopts the socket at a later flush, mid-stream.
      expect(await loadAndCheck(30)).toBe(0)
      const jsThreadReads = process.platform !== 'win32' && process.env.YG_REDIS_JS_READER !== '0'
      const taken = runtime.readerStats.adopted - adopted
      if (!jsThreadReads) expect(taken).toBe(0)
      else if (!CLUSTER) expect(taken).toBe(1)
      else {
        // A cluster: each master's connection once it is ready (the load touches every master).
        expect(taken).toBeGreaterThanOrEqual(1)
        expect(taken).toBeLessThanOrEqual(redis.getConnectionStatus().nodes.filter((n) => n.role === 'master').length)
      }
    }
  })

  test('the Rust-thread reader (Windows, or YG_REDIS_JS_READER=0) keeps every reply with its request', async () => {
    const result = await runNode(
      `const r = require('.');
       const c = r.getRedisClient();
       (async () => {
         let bad = 0;
         await Promise.all(Array.from({ length: 256 }, async (_, w) => {
           for (let s = 0; s < 30; s++) {
             const j = (w * 41 + s * 7) % ${n};
             const v = await c.get('${key('read:')}' + j);
             if (v !== 'value-' + j + '-' + 'x'.repeat(j % 50)) bad++;
           }
         }));
         const adopted = require('./lib/runtime.js').runtime.readerStats.adopted;
         console.log(JSON.stringify({ bad, adopted }));
       })()`,
      { env: { YG_REDIS_JS_READER: '0' } },
    )
    const { bad, adopted } = JSON.parse(result.stdout)
    expect(bad).toBe(0)
    expect(adopted).toBe(0) // Rust read every reply
  })
})
