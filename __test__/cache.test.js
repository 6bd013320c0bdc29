'use strict'
// cacheService against a private redis-server.
const { AsyncLocalStorage } = require('node:async_hooks')
const { isDeepStrictEqual } = require('node:util')
const { RedisServer } = require('./support/redis-server.js')
const { redis, useRedis, runNode, useRedisWithInspector, dataNodes } = require('./support/client.js')

const { cacheService, RedisKeys, RedisTTL } = redis
const inspector = useRedisWithInspector()

beforeEach(() => cacheService.resetStats())

// The application's database in the seed's examples (not Redis): a tiny in-memory stand-in.
const users = new Map([['u-1', { id: 'u-1', name: 'Ada', email: 'ada@example.com' }]])
const prisma = {
  user: {
    findUnique: async ({ where }) => users.get(where.id) ?? null,
    update: async ({ where, data }) => users.set(where.id, { ...users.get(where.id), ...data }).get(where.id),
  },
}

test("the seed's example 1, caching user data, runs as written", async () => {
  const userId = 'u-1'
  const updates = { name: 'Ada L.' }
  // Cache user profile
  const user = await prisma.user.findUnique({ where: { id: userId } })
  await cacheService.set(RedisKeys.cache.user(userId), user, RedisTTL.cache.user)
  // Retrieve from cache
  const cachedUser = await cacheService.get(RedisKeys.cache.user(userId))
  expect(cachedUser).toEqual(user)
  expect(await inspector.ttl('cache:user:u-1')).toBeGreaterThan(3590)
  // Invalidate on update
  await prisma.user.update({ where: { id: userId }, data: updates })
  await cacheService.invalidateUser(userId)
  expect(await cacheService.get(RedisKeys.cache.user(userId))).toBeNull()
})

test("the seed's example 4, session management, runs as written", async () => {
  const userId = 'u-1'
  const fileName = 'song.wav'
  const storageKey = 'uploads/u-1/song.wav'
  const sessionId = 'sess-42'
  // Store upload session
  const sessionData = {
    userId,
    fileName,
    storageKey,
    expiresAt: new Date(Date.now() + 15 * 60 * 1000),
  }
  await cacheService.set(RedisKeys.session.upload(sessionId), sessionData, RedisTTL.session.upload)
  // Retrieve and validate session
  const session = await cacheService.get(RedisKeys.session.upload(sessionId))
  if (!session) {
    throw new Error('Session expired')
  }
  expect(session).toEqual({ ...sessionData, expiresAt: sessionData.expiresAt.toISOString() })
  const ttl = await inspector.ttl('session:upload:sess-42')
  expect(ttl).toBeGreaterThan(890)
  expect(ttl).toBeLessThanOrEqual(900)
})

test('a write without a TTL takes its prefix default; 0 means no expiry', async () => {
  const cases = [
    ['cache:thing:1', 3600],
    ['session:upload:ttl', 900],
    ['ratelimit:api:ttl', 3600],
    ['idempotency:ttl', 86400],
    ['lock:ttl', 300],
    ['no-known-prefix:ttl', 3600],
  ]
  for (const [key, ttl] of cases) {
    await cacheService.set(key, { v: 1 })
    const actual = await inspector.ttl(key)
    expect([key, actual <= ttl && actual >= ttl - 5]).toEqual([key, true])
  }
  for (const key of ['counter:views', 'flag:feature:x', 'jobs:q:meta']) {
    await cacheService.set(key, 1)
    expect(await inspector.ttl(key)).toBe(-1)
  }
  await cacheService.set('cache:explicit', 'x', 42)
  expect(await cacheService.ttl('cache:explicit')).toBeLessThanOrEqual(42)
  await cacheService.set('cache:forever', 'x', 0)
  expect(await cacheService.ttl('cache:forever')).toBe(-1)
})

test('bad input is a TypeError and sends nothing', async () => {
  const cycle = {}
  cycle.self = cycle
  for (const value of [cycle, 10n, () => 1, undefined, Symbol('s'), { big: 1n }]) {
    await expect(cacheService.set('cache:bad', value)).rejects.toBeInstanceOf(TypeError)
  }
  for (const key of ['', null, 42, undefined]) {
    await expect(cacheService.get(key)).rejects.toBeInstanceOf(TypeError)
    await expect(cacheService.set(key, 1)).rejects.toBeInstanceOf(TypeError)
  }
  await expect(cacheService.set('cache:bad', 1, -1)).rejects.toBeInstanceOf(TypeError)
  await expect(cacheService.set('cache:bad', 1, 1.5)).rejects.toBeInstanceOf(TypeError)
  await expect(cacheService.mset([['cache:ok', 1], ['cache:bad', 1n]])).rejects.toBeInstanceOf(TypeError)
  await expect(cacheService.invalidateUser('')).rejects.toBeInstanceOf(TypeError)
  expect(await inspector.exists('cache:bad', 'cache:ok')).toBe(0)
  expect(cacheService.getStats().sets).toBe(0)
})

test('a stored value that is not JSON reads as a miss and counts an error', async () => {
  await inspector.set('cache:not-json', '{oops')
  expect(await cacheService.get('cache:not-json')).toBeNull()
  expect(cacheService.getStats()).toMatchObject({ hits: 0, misses: 1, errors: 1 })
})

test('mget, mset, delete, exists, ttl and stats', async () => {
  await cacheService.mset([['cache:m:1', { a: 1 }], ['cache:m:2', [1, 'two']]])
  await cacheService.mset({ 'cache:m:3': 'three', 'counter:m': 7 }, undefined)
  expect(await cacheService.mget(['cache:m:1', 'cache:m:2', 'cache:m:missing', 'cache:m:3', 'counter:m'])).toEqual([
    { a: 1 },
    [1, 'two'],
    null,
    'three',
    7,
  ])
  expect(await inspector.ttl('cache:m:1')).toBeGreaterThan(3590)
  expect(await inspector.ttl('counter:m')).toBe(-1)
  expect(await cacheService.exists('cache:m:1')).toBe(true)
  expect(await cacheService.delete('cache:m:1')).toBe(1)
  expect(await cacheService.exists('cache:m:1')).toBe(false)
  expect(await cacheService.delete(['cache:m:2', 'cache:m:3', 'cache:m:missing'])).toBe(2)
  expect(await cacheService.ttl('cache:m:missing')).toBe(-2)
  expect(await cacheService.mget([])).toEqual([])
  const stats = cacheService.getStats()
  expect(stats).toMatchObject({ hits: 4, misses: 1, sets: 4, deletes: 3, errors: 0 })
  expect(stats.hitRate).toBeCloseTo(0.8)
})

/**
 * A maker of random values, `make(depth)`, from `seed`: null and booleans,
 * the given numbers, strings and other leaves (a function is called with the
 * random source), objects of up to 5 keys (a third of them from `keys`,
 * "__proto__" and "toJSON" as own properties), and arrays of up to 4 items
 * (with `longArrays`, a third of them of 40).
 */
function randomValues(seed, { numbers, strings, others, keys, longArrays }) {
  const random = (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed % n
  }
  const pick = (list) => {
    const item = list[random(list.length)]
    return typeof item === 'function' ? item(random) : item
  }
  const make = (depth) => {
    const kind = depth > 3 ? random(4) : random(7)
    if (kind === 0) return random(2) === 0 ? null : random(2) === 0
    if (kind === 1) return pick(numbers)
    if (kind === 2) return pick(strings)
    if (kind === 3) return pick(others)
    if (kind === 4 || kind === 5) {
      const o = {}
      const n = random(6)
      for (let i = 0; i < n; i++) {
        const k = random(3) === 0 ? keys[random(keys.length)] : `k${random(20)}`
        if (k === '__proto__' || k === 'toJSON') Object.defineProperty(o, k, { value: make(depth + 1), enumerable: true, writable: true, configurable: true })
        else o[k] = make(depth + 1)
      }
      return o
    }
    return Array.from({ length: longArrays && random(3) === 0 ? 40 : random(5) }, () => make(depth + 1))
  }
  return make
}

describe('a hot key read again unchanged', () => {
  // The memo of decoded values (lib/cache.js): from the third read of the same
  // text, the value is a copy of a kept one rather than a new JSON.parse.
  test('every read returns its own object, equal to what JSON.parse gives, and follows changes in Redis', async () => {
    const key = 'cache:memo:profile'
    const text = '{"__proto__":{"polluted":true},"2":-0,"name":"Ada","tags":["a",{"b":[null,true,1.5e300]}],"nested":{"x":{}}}'
    await inspector.set(key, text)
    const reads = []
    for (let i = 0; i < 5; i++) reads.push(await cacheService.get(key))
    const reference = JSON.parse(text)
    for (const value of reads) {
      expect(value).toStrictEqual(reference)
      expect(Object.keys(value)).toEqual(['2', '__proto__', 'name', 'tags', 'nested'])
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype)
      expect(Object.hasOwn(value, '__proto__')).toBe(true)
      expect(value.polluted).toBeUndefined()
      expect(Object.is(value[2], -0)).toBe(true)
    }
    // No two reads share an object at any depth.
    expect(new Set(reads).size).toBe(5)
    expect(new Set(reads.map((v) => v.tags)).size).toBe(5)
    expect(new Set(reads.map((v) => v.tags[1].b)).size).toBe(5)
    // A caller that mutates its value changes nothing for the next reader.
    reads[4].name = 'changed'
    reads[4].tags[1].b.push('more')
    reads[4].nested.x.y = 1
    expect(await cacheService.get(key)).toStrictEqual(reference)
    // A new value in Redis (written behind the package's back) is read as such,
    // and so is a value that differs only deep inside.
    await inspector.set(key, '{"name":"Grace"}')
    expect(await cacheService.get(key)).toEqual({ name: 'Grace' })
    expect(await cacheService.get(key)).toEqual({ name: 'Grace' })
    expect(await cacheService.get(key)).toEqual({ name: 'Grace' })
    await inspector.set(key, '{"name":"Grace","n":[1,2,3]}')
    expect(await cacheService.get(key)).toEqual({ name: 'Grace', n: [1, 2, 3] })
    await inspector.set(key, '{"name":"Grace","n":[1,2,4]}')
    expect(await cacheService.get(key)).toEqual({ name: 'Grace', n: [1, 2, 4] })
    // Deleted: a miss; not JSON any more: a miss and an error.
    await inspector.del(key)
    expect(await cacheService.get(key)).toBeNull()
    await inspector.set(key, '{oops')
    expect(await cacheService.get(key)).toBeNull()
    expect(await cacheService.get(key)).toBeNull()
    expect(await cacheService.get(key)).toBeNull()
    expect(cacheService.getStats()).toMatchObject({ hits: 11, misses: 4, errors: 3 })
  })

  test('values of every shape copied from a kept one equal JSON.parse, share no object, and keys cannot change the copy', async () => {
    // From the third read a kept value is copied by a function compiled for its
    // shape (object and array literals), or key by key when it is too large.
    const make = randomValues(7, {
      numbers: [0, -0, 1.5, -2e-7, 123456789012, 1e300],
      strings: ['', 'x', 'caf\u00e9', '\u2028', '"q"', (random) => 'a'.repeat(random(50))],
      others: [(random) => random(3)],
      keys: ['__proto__', '"]);process.abort();//', '\\', '\u2028', 'then', '0', '10', '-1', '', 'a b', 'ü', '`$' + '{x}`', '__proto__ '],
      longArrays: true,
    })
    const values = Array.from({ length: 60 }, () => make(0))
    // An array longer than 32 items (copied item by item inside the literal),
    // more nodes than one copier takes (copied key by key), and long keys.
    values.push({ wide: Array.from({ length: 300 }, (_, i) => ({ i })) })
    values.push(Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i % 2 === 0 ? [i] : i])))
    values.push({ ['k'.repeat(1000)]: Array.from({ length: 3 }, () => Array(32).fill(0)) })
    for (let v = 0; v < values.length; v++) {
      const key = `cache:memo:shape-${v}`
      const text = JSON.stringify(values[v])
      await inspector.set(key, text)
      const reads = []
      for (let i = 0; i < 4; i++) reads.push(await cacheService.get(key))
      const reference = JSON.parse(text)
      for (const read of reads) {
        expect(read).toStrictEqual(reference)
        expect(JSON.stringify(read)).toBe(text) // same keys in the same order, same numbers
      }
      // No object shared between two reads, at any depth.
      const seen = new Set()
      const walk = (x) => {
        if (typeof x !== 'object' || x === null) return
        expect(seen.has(x)).toBe(false)
        seen.add(x)
        Object.values(x).forEach(walk)
      }
      reads.forEach(walk)
    }
  })

  test('without code generation from strings, kept values are still copied right, and values written right', async () => {
    const key = 'cache:memo:no-codegen'
    const text = '{"__proto__":{"p":1},"a":[1,{"b":"c"}],"n":-0}'
    await inspector.set(key, text)
    const child = `
      const r = require('.');
      (async () => {
        const reads = [];
        for (let i = 0; i < 4; i++) reads.push(await r.cacheService.get(${JSON.stringify(key)}));
        let codegen = 'allowed';
        try { new Function('return 1') } catch { codegen = 'refused' }
        for (let i = 0; i < 3; i++) await r.cacheService.set('cache:enc:no-codegen', { a: 'x"y', n: [1, { b: null }] }, 60);
        console.log(JSON.stringify({ codegen, texts: reads.map((v) => JSON.stringify(v)), own: reads.every((v) => Object.hasOwn(v, '__proto__') && Object.getPrototypeOf(v) === Object.prototype), distinct: new Set(reads.map((v) => v.a)).size }));
        await r.closeRedisConnection();
      })();`
    const out = await runNode(child, { nodeArgs: ['--disallow-code-generation-from-strings'] })
    expect(out.stderr).toBe('')
    const result = JSON.parse(out.stdout)
    expect(result).toEqual({ codegen: 'refused', texts: Array(4).fill(JSON.stringify(JSON.parse(text))), own: true, distinct: 4 })
    expect(await inspector.get('cache:enc:no-codegen')).toBe(JSON.stringify({ a: 'x"y', n: [1, { b: null }] }))
  })

  test('mget keeps its values apart per key, and large values are parsed every time', async () => {
    const big = { blob: 'z'.repeat(10000) }
    await cacheService.mset([['cache:memo:a', { v: 'a' }], ['cache:memo:b', { v: 'b' }], ['cache:memo:big', big]])
    for (let i = 0; i < 4; i++) {
      const values = await cacheService.mget(['cache:memo:b', 'cache:memo:a', 'cache:memo:big', 'cache:memo:b'])
      expect(values).toEqual([{ v: 'b' }, { v: 'a' }, big, { v: 'b' }])
      expect(values[0]).not.toBe(values[3])
      values[0].v = 'mutated'
    }
    expect(await cacheService.get('cache:memo:b')).toEqual({ v: 'b' })
  })
})

describe('a shape read again and again', () => {
  // lib/decoded.js: from the second JSON.parse under a key prefix, texts of that
  // shape are read by a reader compiled for it (a native match against the
  // shape's template, then object literals and slices of the text). Whatever
  // Redis holds, a read gives what JSON.parse gives, or a miss and an error
  // where JSON.parse throws.
  const native = require('../lib/native.js')
  let matches
  beforeEach(() => {
    matches = jest.spyOn(native, 'jsonMatch')
  })
  afterEach(() => matches.mockRestore())
  /** How many reads the compiled reader built since the last call (the spy then starts over). */
  const built = () => {
    const n = matches.mock.results.filter((r) => r.value === native.JSON_MATCH_YES).length
    matches.mockClear()
    return n
  }
  let serial = 0
  /** Reads `text` from a key of its own under `prefix` (read once: never from the hot-key memo). */
  const read = async (prefix, text) => {
    const key = `${prefix}${serial++}`
    await inspector.set(key, text)
    return cacheService.get(key)
  }
  /** A read equals JSON.parse(text) exactly: keys and their order, -0, prototypes, own "__proto__". */
  const expectParsed = (value, text) => {
    const reference = JSON.parse(text)
    // Not toStrictEqual: it compares `.constructor`, which a key "constructor" holds.
    expect(isDeepStrictEqual(value, reference)).toBe(true)
    const walk = (a, b) => {
      if (typeof b !== 'object' || b === null) return expect(Object.is(a, b)).toBe(true)
      expect(Array.isArray(a)).toBe(Array.isArray(b))
      expect(Object.getPrototypeOf(a)).toBe(Object.getPrototypeOf(b))
      expect(Object.keys(a)).toEqual(Object.keys(b))
      for (const k of Object.keys(b)) walk(a[k], b[k])
    }
    walk(value, reference)
  }

  test('texts of the shape are built from the text, and every other text is read by JSON.parse', async () => {
    const base = '{"2":"two","__proto__":{"p":"q"},"a":"x","n":1,"b":true,"z":null,"s":["p","q"],"m":[1,2.5],"o":{"k":"v"},"mix":[1,"two",{"t":3}]}'
    const prefix = 'cache:shape-read:'
    for (let i = 0; i < 2; i++) expectParsed(await read(prefix, base), base)
    expect(built()).toBe(0)
    const same = (patch) => base.replace(/"(a|n|b|s|m)":("x"|1|true|\["p","q"\]|\[1,2\.5\])/g, (whole, key) => (key in patch ? `"${key}":${patch[key]}` : whole))
    // Of the shape: built by the reader, and equal to what JSON.parse gives.
    const ofShape = [
      base,
      same({ a: '""' }),
      same({ a: '"café 😀 \u2028 \u00ff \ud7ff \ue000"' }),
      same({ a: JSON.stringify('long '.repeat(200)) }),
      same({ a: '"/\u007f"' }),
      same({ n: '-0' }),
      same({ n: '0' }),
      same({ n: '-12' }),
      same({ n: '0.1' }),
      same({ n: '1e400' }),
      same({ n: '-1E+400' }),
      same({ n: '1e-400' }),
      same({ n: '2.5e-3' }),
      same({ n: '1.5e2' }),
      same({ n: '123456789012345' }),
      same({ n: '1234567890123456789' }),
      same({ n: '9007199254740993' }),
      same({ n: '5e-324' }),
      same({ n: '1.7976931348623157e308' }),
      same({ n: `1.${'0'.repeat(80)}1` }),
      same({ b: 'false' }),
      same({ s: '[]' }),
      same({ s: '["only"]' }),
      same({ s: `[${Array.from({ length: 50 }, (_, i) => `"s${i}"`).join(',')}]` }),
      same({ m: '[]' }),
      same({ m: '[-0,1e300,-7]' }),
      same({ s: '["a","b","c"]', m: '[0]' }),
      // A leaf may be null; a leaf that was null may be any of null, a boolean, a number or a string.
      same({ a: 'null' }),
      same({ n: 'null' }),
      same({ b: 'null' }),
      same({ a: 'null', n: 'null', b: 'null' }),
      base.replace('"z":null', '"z":"now a string"'),
      base.replace('"z":null', '"z":""'),
      base.replace('"z":null', '"z":"😀"'),
      base.replace('"z":null', '"z":-0'),
      base.replace('"z":null', '"z":1e400'),
      base.replace('"z":null', '"z":12.5'),
      base.replace('"z":null', '"z":true'),
      base.replace('"z":null', '"z":false'),
      base.replace('"k":"v"', '"k":null'),
      base.replace('"mix":[1,"two",{"t":3}]', '"mix":[null,null,{"t":null}]'),
      base.replace('"mix":[1,"two",{"t":3}]', '"mix":[-0,null,{"t":4}]'),
    ]
    for (const text of ofShape) {
      expectParsed(await read(prefix, text), text)
      expect(built()).toBe(1)
    }
    // Not of the shape: JSON.parse reads them (each under a prefix of its own,
    // whose reader is compiled first), and the prefix starts over.
    let fresh = 0
    const compiledFor = async () => {
      const own = `cache:shape-read-${fresh++}:`
      for (let i = 0; i < 3; i++) expectParsed(await read(own, base), base)
      expect(built()).toBe(1)
      return own
    }
    // Each: [text, whether the prefix starts over]. Else one shape covers the reader's and the
    // text's value (an escape or a space in the text, a member the reader has not, a leaf of another
    // type, an object null): a reader for it is made at once, and reads on.
    const others = [
      [base.replace('"x"', '"x\\"y"'), false],
      [base.replace('"x"', '"\\u0041"'), false],
      [base.replace('"x"', '"\\n"'), false],
      [base.replace('"x"', '"\\\\"'), false],
      [base.replace('"n":1', '"n":"1"'), false],
      [base.replace('"z":null', '"z":[]'), false],
      [base.replace('"z":null', '"z":{}'), false],
      [base.replace('"s":["p","q"]', '"s":null'), false],
      [base.replace('"m":[1,2.5]', '"m":null'), false],
      [base.replace('"o":{"k":"v"}', '"o":null'), false],
      [base.replace('"mix":[1,"two",{"t":3}]', '"mix":null'), false],
      [base.replace('"b":true', '"b":1'), false],
      [base.replace('"o":{"k":"v"}', '"o":{"k":"v","extra":1}'), false],
      [base.replace('"o":{"k":"v"}', '"o":{}'), true],
      [base.replace('"a":"x","n":1', '"n":1,"a":"x"'), true],
      [base.replace('"mix":[1,"two",{"t":3}]', '"mix":[1,"two"]'), true],
      [base.replace('"mix":[1,"two",{"t":3}]', '"mix":[1,"two",{"t":3},4]'), true],
      [base.replace('"s":["p","q"]', '"s":["p",1]'), true],
      [base.replace('"m":[1,2.5]', '"m":[1,"2"]'), true],
      [base.replace('"2":"two",', ''), false],
      [base.replace('{"2"', '{ "2"'), false],
      [base.replace('"n":1', '"n": 1'), false],
      [base.replace('"k":"v"', '"\\u006b":"v"'), false],
      [`${base}\n`, false],
      [` ${base}`, false],
    ]
    for (const [text, startsOver] of others) {
      const own = await compiledFor()
      expectParsed(await read(own, text), text)
      expect(built()).toBe(0)
      // The prefix starts over: JSON.parse twice, then the reader again; or its reader reads on.
      for (let i = 0; i < 3; i++) expectParsed(await read(own, base), base)
      expect(built()).toBe(startsOver ? 1 : 3)
    }
    // A text JSON.parse refuses is a miss and an error, whatever the reader.
    const refused = [
      base.replace('"x"', '"x\ty"'),
      base.replace('"x"', '"x\u0000"'),
      base.replace('"x"', '"x\u001f"'),
      base.replace('"x"', '"x\\"'),
      base.replace('"x"', '"x\\u00"'),
      base.replace('"n":1', '"n":01'),
      base.replace('"n":1', '"n":-01'),
      base.replace('"n":1', '"n":1.'),
      base.replace('"n":1', '"n":.5'),
      base.replace('"n":1', '"n":+1'),
      base.replace('"n":1', '"n":-'),
      base.replace('"n":1', '"n":1e'),
      base.replace('"n":1', '"n":1e+'),
      base.replace('"n":1', '"n":0x1'),
      base.replace('"n":1', '"n":NaN'),
      base.replace('"n":1', '"n":Infinity'),
      base.replace('"b":true', '"b":tru'),
      base.replace('"b":true', '"b":truee'),
      base.replace('"b":true', '"b":nul'),
      base.replace('"z":null', '"z":nulll'),
      base.replace('"z":null', '"z":nul'),
      base.replace('"z":null', '"z":"a\tb"'),
      base.replace('"z":null', '"z":01'),
      base.replace('"z":null', '"z":'),
      base.replace('"s":["p","q"]', '"s":["p","q",]'),
      base.replace('"s":["p","q"]', '"s":["p" "q"]'),
      base.replace('"m":[1,2.5]', '"m":[1,,2.5]'),
      base.replace('"m":[1,2.5]', '"m":[1,2.5'),
      `${base}}`,
      `${base}x`,
      base.slice(0, -1),
      base.slice(0, 40),
      '',
    ]
    for (const text of refused) {
      const own = await compiledFor()
      cacheService.resetStats()
      expect(await read(own, text)).toBeNull()
      expect(cacheService.getStats()).toMatchObject({ misses: 1, errors: 1 })
      expect(built()).toBe(0)
    }
    // After MAX_MISSES (8) changes of shape, a prefix is read by JSON.parse for good.
    const own = await compiledFor()
    const apart = [...others.filter(([, startsOver]) => startsOver).map(([text]) => text), base.replace('"a":"x"', '"a":{"x":1}'), base.replace('"b":true', '"b":[true]')]
    expect(apart.length).toBe(8)
    for (const text of apart) {
      expectParsed(await read(own, text), text)
      for (let i = 0; i < 2; i++) expectParsed(await read(own, base), base)
    }
    expect(built()).toBe(0)
    for (let i = 0; i < 3; i++) expectParsed(await read(own, base), base)
    expect(built()).toBe(0)
  })

  /** The leaves and keys of the random values read below (see randomValues). */
  const RANDOM_READS = {
    numbers: [0, -0, 1.5, -2e-7, 123456789012, 1e300, 2 ** 53 + 2, 0.1 + 0.2],
    strings: ['', 'x', 'caf\u00e9', '\u2028', '"q"', '\n', '\\', '😀', (random) => 'a'.repeat(random(50))],
    others: [(random) => random(3), (random) => random(2) === 0],
    keys: ['__proto__', '"]);process.abort();//', '\\', '\u2028', 'then', '0', '10', '-1', '', 'a b', 'ü', '`$' + '{x}`', 'constructor'],
    longArrays: false,
  }

  /**
   * Reads `reads` texts under each of `count` prefixes `${name}<n>:`, each
   * prefix's value made by `make()`: the value itself twice, then `vary(value)`;
   * each read as JSON.parse reads it. Resolves how many prefixes had a read built by a reader.
   */
  const readersOver = async (count, name, make, reads, vary) => {
    let readers = 0
    for (let v = 0; v < count; v++) {
      const value = make()
      for (let i = 0; i < reads; i++) {
        const text = JSON.stringify(i < 2 ? value : vary(value))
        expectParsed(await read(`${name}${v}:`, text), text)
      }
      readers += built() > 0 ? 1 : 0
    }
    return readers
  }

  /** A seeded random source: `random(n)` is an integer below n. */
  const seeded = (seed) => (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed % n
  }

  test('random values of one shape each, with random leaves, are read as JSON.parse reads them', async () => {
    const make = randomValues(23, RANDOM_READS)
    const random = seeded(5)
    const leaves = {
      string: ['', 'y', 'né', '😀😀', 'tab\there', 'a"b', 'z'.repeat(70), '\u001f'],
      number: [0, -0, 3, -1.25, 6.02e23, 1e-300, 4294967296],
    }
    /** The value again with other leaves of the same types (so most are of its shape). */
    const vary = (v) => {
      // A leaf may become null, and a null any leaf: still of the shape.
      if (v === null) return [null, 'was null', -0, 7.5, true, false][random(6)]
      if (['string', 'number', 'boolean'].includes(typeof v) && random(5) === 0) return null
      if (typeof v === 'string') return leaves.string[random(leaves.string.length)]
      if (typeof v === 'number') return leaves.number[random(leaves.number.length)]
      if (typeof v === 'boolean') return random(2) === 0
      if (v === null || typeof v !== 'object') return v
      if (Array.isArray(v)) {
        if (v.length > 0 && v.every((x) => typeof x === 'string')) return Array.from({ length: random(4) }, () => vary('s'))
        return v.map(vary)
      }
      const o = {}
      for (const k of Object.keys(v)) Object.defineProperty(o, k, { value: vary(v[k]), enumerable: true, writable: true, configurable: true })
      return o
    }
    const readers = await readersOver(40, 'cache:shape-read-', () => ({ root: make(1), other: make(1) }), 6, vary)
    // Most of them were read by a compiled reader.
    expect(readers).toBeGreaterThan(20)
  })

  test('strings of a read keep nothing larger than a short text alive, and long texts are always parsed', async () => {
    const prefix = 'cache:shape-read-long:'
    const value = (n) => JSON.stringify({ blob: 'b'.repeat(n), n: 1 })
    for (let i = 0; i < 3; i++) expectParsed(await read(prefix, value(5000)), value(5000))
    expect(built()).toBe(0)
    for (let i = 0; i < 3; i++) expectParsed(await read(prefix, value(3000)), value(3000))
    expect(built()).toBe(1)
  })

  test('an array at the top, and mget, are read by the reader too', async () => {
    const prefix = 'cache:shape-read-array:'
    for (const text of ['["a","b"]', '["c"]', '[]', '["d","e","f"]']) expectParsed(await read(prefix, text), text)
    expect(built()).toBe(2)
    // The second value's array (numbers) decides the shape; an empty one is of any.
    const values = [{ v: 'a', n: [1] }, { v: 'b', n: [2] }, { v: 'c', n: [] }, { v: 'd', n: [3, -0] }, { v: 'e', n: ['x'] }]
    const keys = values.map((_, i) => `cache:shape-read-m:${i}`)
    await cacheService.mset(values.map((value, i) => [keys[i], value]))
    const got = await cacheService.mget(keys)
    got.forEach((value, i) => expectParsed(value, JSON.stringify(values[i])))
    expect(Object.is(got[3].n[1], 0)).toBe(true) // JSON.stringify wrote -0 as 0
    expect(built()).toBe(2)
  })

  test('lists of records have any length, their items are read alike, and items of another shape go to JSON.parse', async () => {
    const prefix = 'cache:shape-read-list:'
    // Records whose fields are null in some and set in others, with arrays of any length and lists in them.
    const record = (i) => ({
      id: i,
      title: i % 5 === 0 ? null : `post ${i} 😀`,
      score: i % 7 === 0 ? null : i / 4,
      live: i % 2 === 0,
      tags: ['a', 'b', 'c'].slice(0, i % 4),
      author: { name: `n${i}`, avatar: i % 3 === 0 ? null : `/a/${i}.png` },
      replies: Array.from({ length: i % 3 }, (_, j) => ({ by: `u${j}`, at: j * 1000 })),
      extra: i % 6 === 0 ? 'six' : i % 6 === 1 ? 6 : null,
      org: i % 4 === 1 ? null : { id: `o${i}`, seats: [i, i + 1].slice(0, i % 3) },
    })
    const page = (n, from = 0) => JSON.stringify({ page: from, items: Array.from({ length: n }, (_, i) => record(from + i)), total: 99 })
    for (const text of [page(3), page(6, 10)]) expectParsed(await read(prefix, text), text)
    expect(built()).toBe(0)
    const lengths = [0, 1, 2, 5, 12, 20]
    for (const n of lengths) {
      const text = page(n, n * 3)
      expectParsed(await read(prefix, text), text)
    }
    expect(built()).toBe(lengths.length)
    // Past 4,096 units (30 records), JSON.parse reads it.
    expect(page(30).length).toBeGreaterThan(4096)
    expectParsed(await read(prefix, page(30)), page(30))
    expect(built()).toBe(0)
    // An item of another shape (under a prefix of its own, read alike first) is read by JSON.parse.
    const items = JSON.parse(page(4, 1)).items
    const withItem = (change) => {
      const list = items.map((item) => ({ ...item }))
      list[2] = change(list[2])
      return JSON.stringify({ page: 1, items: list, total: 99 })
    }
    const others = [
      withItem(({ extra, ...rest }) => rest),
      withItem((item) => ({ ...item, more: 1 })),
      withItem(({ id, ...rest }) => ({ ...rest, id })),
      withItem(() => null),
      withItem(() => []),
      withItem(() => 'item'),
      withItem((item) => ({ ...item, tags: [1] })),
      withItem((item) => ({ ...item, author: null })),
      withItem((item) => ({ ...item, replies: [{ by: 'x' }] })),
      withItem((item) => ({ ...item, replies: [{ by: 'x', at: 1 }, null] })),
      withItem((item) => ({ ...item, live: 'yes' })),
      withItem((item) => ({ ...item, org: 'org' })),
      withItem((item) => ({ ...item, org: [] })),
      withItem((item) => ({ ...item, org: { id: 'o' } })),
    ]
    let fresh = 0
    for (const text of others) {
      const own = `cache:shape-read-list-${fresh++}:`
      for (const base of [page(3), page(6, 10), page(2, 4)]) expectParsed(await read(own, base), base)
      expect(built()).toBe(1)
      expectParsed(await read(own, text), text)
      expect(built()).toBe(0)
    }
    // A list JSON.parse refuses is a miss and an error.
    for (const text of [page(2).replace('}],"total"', '},],"total"'), page(2).replace('},{', '},,{'), page(2).replace('},{', '} ,{')]) {
      const own = `cache:shape-read-list-${fresh++}:`
      for (const base of [page(3), page(6, 10)]) expectParsed(await read(own, base), base)
      cacheService.resetStats()
      const value = await read(own, text)
      if (text.includes(' ,')) expectParsed(value, text)
      else expect(value).toBeNull()
      expect(cacheService.getStats()).toMatchObject({ errors: text.includes(' ,') ? 0 : 1 })
      expect(built()).toBe(0)
    }
    // A list at the top, and lists in lists.
    const top = (n) => JSON.stringify(Array.from({ length: n }, (_, i) => record(i)))
    for (const n of [2, 3, 0, 1, 9]) expectParsed(await read('cache:shape-read-top:', top(n)), top(n))
    expect(built()).toBe(3)
    const grid = (rows) => JSON.stringify({ rows: rows.map((n) => Array.from({ length: n }, (_, i) => ({ i }))) })
    const shapes = [[1, 2], [3, 0, 1], [], [2], [0, 0, 0, 4]]
    for (const rows of shapes) expectParsed(await read('cache:shape-read-grid:', grid(rows)), grid(rows))
    // Arrays of arrays keep their length: the first two texts differ in it, so JSON.parse reads all.
    expect(built()).toBe(0)
    // Items may be null, and objects may be null where the first texts had them.
    const holes = (n, hole) => JSON.stringify({ list: Array.from({ length: n }, (_, i) => (i % hole === 0 ? null : { i, o: i % 3 ? { p: i } : null })) })
    const texts = [holes(4, 2), holes(4, 3), holes(0, 1), holes(5, 1), holes(6, 4), holes(2, 5)]
    for (const text of texts) expectParsed(await read('cache:shape-read-holes:', text), text)
    expect(built()).toBe(4)
    // Leaves of two types beside an object: an array that keeps its length, whose first item reads any scalar.
    for (const text of ['[1,{}]', '["s",{}]', '[true,{}]', '[null,{}]', '[2,{}]']) expectParsed(await read('cache:shape-read-mixed:', text), text)
    expect(built()).toBe(3)
    const deep = (rows) => JSON.stringify({ rows: rows.map((n) => ({ cells: Array.from({ length: n }, (_, i) => ({ i, s: `${i}` })) })) })
    for (const rows of shapes) expectParsed(await read('cache:shape-read-deep:', deep(rows)), deep(rows))
    expect(built()).toBe(3)
  })

  test('random lists of random records are read as JSON.parse reads them', async () => {
    const make = randomValues(41, RANDOM_READS)
    const random = seeded(9)
    /** A record like `v`: leaves changed or null, objects null, arrays of strings and lists of records of other lengths. */
    const vary = (v, depth = 0) => {
      if (v === null) return [null, 'was null', -0, 7.5, true][random(5)]
      if (depth > 1 && typeof v === 'object' && !Array.isArray(v) && random(12) === 0) return null
      if (typeof v !== 'object') {
        if (random(4) === 0) return null
        if (typeof v === 'string') return ['', 'y', '😀', 'a"b', 'z'.repeat(30)][random(5)]
        if (typeof v === 'number') return [0, -0, 3, -1.25, 6.02e23][random(5)]
        return random(2) === 0
      }
      if (Array.isArray(v)) {
        if (v.length > 0 && v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) {
          return Array.from({ length: random(5) }, () => vary(v[random(v.length)], depth + 1))
        }
        return v.map((x) => vary(x, depth + 1))
      }
      const o = {}
      for (const k of Object.keys(v)) Object.defineProperty(o, k, { value: vary(v[k], depth + 1), enumerable: true, writable: true, configurable: true })
      return o
    }
    const list = () => {
      let item = make(1)
      if (typeof item !== 'object' || item === null || Array.isArray(item)) item = { only: item }
      return { items: [item, vary(item), vary(item)], sub: [{ inner: [item] }] }
    }
    const readers = await readersOver(30, 'cache:shape-read-lists-', list, 8, vary)
    expect(readers).toBeGreaterThan(15)
  })

  test('members absent from some values are read by a reader that grows to cover them, and all else by JSON.parse', async () => {
    // Values written from objects whose fields may be undefined (JSON.stringify leaves them out).
    const user = (i, absent = '') => {
      const o = { id: i, email: `u${i}@example.com`, name: `user ${i}`, avatar: `/a/${i}.png`, org: { id: `o${i}`, seats: i }, tags: ['a', 'b'].slice(0, i % 3), live: i % 2 === 0 }
      for (const key of absent.split(',')) if (key.startsWith('org.')) delete o.org[key.slice(4)]; else delete o[key]
      return JSON.stringify(o)
    }
    const prefix = 'cache:shape-read-optional:'
    for (const text of [user(1), user(2)]) expectParsed(await read(prefix, text), text)
    expect(built()).toBe(0)
    // A member absent: JSON.parse reads it, and the reader made then reads both shapes (and the first stays read).
    for (const absent of ['email', 'email', '', 'avatar,org.seats', 'email', 'email,avatar', '', 'org.seats']) {
      const text = user(7, absent)
      expectParsed(await read(prefix, text), text)
    }
    // Misses: the first 'email', then 'avatar,org.seats' (new absent members); the rest are built.
    expect(built()).toBe(6)
    for (const absent of ['', 'email,avatar,org.seats', 'avatar', 'org.seats', 'email,org', 'live']) {
      const text = user(8, absent)
      expectParsed(await read(prefix, text), text)
      // 'org' and 'live' were never absent: each is read by JSON.parse once, and from then on by a reader.
      expect(built()).toBe(['email,org', 'live'].includes(absent) ? 0 : 1)
    }
    for (const absent of ['email,org', 'live,org,email', 'tags']) {
      const text = user(9, absent)
      expectParsed(await read(prefix, text), text)
    }
    expect(built()).toBe(2)
    // Each under a prefix whose reader reads 'avatar' absent: [text, whether the next read, 'email' absent, is built].
    const others = [
      // A member of another shape, or members in another order: the prefix starts over.
      [user(3).replace('"email":"u3@example.com"', '"email":{"at":"x"}'), false],
      [user(3).replace('"org":{"id":"o3","seats":3}', '"org":{"seats":3,"id":"o3"}'), false],
      [user(3, 'avatar').replace(',"tags"', ',"avatar":"/b.png","tags"'), false],
      // A member twice (JSON.parse keeps the last value, in the first place): of the shape, with 'email' present.
      [user(3).replace('"name"', '"email":"v@example.com","name"'), false],
      // Members no value had: the reader grows to cover them.
      [user(3).replace('"email"', '"mail"'), true],
      [user(3, 'email'), true],
    ]
    for (const [i, [text, next]] of others.entries()) {
      const own = `cache:shape-read-optional-${i}:`
      for (const base of [user(1), user(2), user(3, 'avatar'), user(4, 'avatar')]) expectParsed(await read(own, base), base)
      expect(built()).toBe(1)
      expectParsed(await read(own, text), text)
      expect(built()).toBe(0)
      expectParsed(await read(own, user(5, 'email')), user(5, 'email'))
      expect(built()).toBe(next ? 1 : 0)
    }
    // Lists of records whose records leave out different members.
    const post = (i) => JSON.stringify({ id: i, ...(i % 2 ? { title: `t${i}` } : {}), body: 'b', ...(i % 3 ? {} : { by: { name: `n${i}`, ...(i % 5 ? {} : { url: '/u' }) } }) })
    const page = (n, from) => `{"items":[${Array.from({ length: n }, (_, i) => post(from + i)).join(',')}],"n":${n}}`
    // The first two pages have no 'by'; page(4, 3) brings it (3, 6), and page(11, 20) its 'url' (30): two misses.
    const pages = [page(2, 1), page(2, 7), page(4, 3), page(0, 0), page(3, 12), page(11, 20), page(1, 1), page(6, 0)]
    for (const text of pages) expectParsed(await read('cache:shape-read-optional-list:', text), text)
    expect(built()).toBe(pages.length - 4)
    // Members absent before the first one that is always there (its comma after the value).
    const leading = ['{"a":1,"b":2,"c":3}', '{"b":2}', '{"a":5,"b":6}', '{"b":4,"c":5}', '{"a":7,"b":8}', '{"a":1,"a":2,"b":3}', '{"b":1,"a":2}', '{"b":0}']
    for (const text of leading) expectParsed(await read('cache:shape-read-optional-leading:', text), text)
    // Built: the three after the first two. Misses: the duplicate 'a' (of the shape: the reader reads
    // on), and 'a' after 'b' (the prefix starts over: '{"b":0}' is its first read).
    expect(built()).toBe(3)
    // No member always there makes no shape: the reader is made for the second text alone, the
    // first text's shape is a miss, and the prefix starts over.
    for (const text of ['{"a":1}', '{"b":2}', '{"a":3}', '{"b":4}']) expectParsed(await read('cache:shape-read-optional-none:', text), text)
    expect(built()).toBe(0)
    // "__proto__" and the names Object.prototype has are own properties, in the literal or stored
    // after an optional member (defined: an assignment would set the prototype, or call a setter).
    const named = [
      ['{"__proto__":{"p":1},"a":1,"b":2}', '{"__proto__":{"p":2},"a":1}', '{"__proto__":{"p":3},"a":1}', '{"__proto__":{"p":4},"a":2,"b":3}'],
      ['{"a":1,"__proto__":{"p":1},"b":2}', '{"a":1,"b":2}', '{"a":3,"__proto__":{"p":2},"b":4}', '{"a":1,"b":2}'],
      ['{"a":1,"b":2,"__proto__":3}', '{"a":1,"__proto__":3}', '{"a":1,"b":2,"__proto__":null}', '{"a":1,"__proto__":4}'],
      ['{"a":1,"b":2,"toString":"t","constructor":1,"valueOf":null}', '{"a":1,"toString":"s","constructor":2}', '{"a":1,"b":3,"toString":"u","constructor":3}', '{"a":5,"toString":"v","constructor":4,"valueOf":true}'],
    ]
    for (const [i, texts] of named.entries()) {
      for (const text of texts) expectParsed(await read(`cache:shape-read-optional-named-${i}:`, text), text)
      expect(built()).toBe(2)
    }
    // With Object.prototype frozen (in a child process), a stored "toString" is still the value's own.
    await inspector.set('cache:shape-read-frozen:0', '{"id":1,"note":"x","toString":"a"}')
    await inspector.set('cache:shape-read-frozen:1', '{"id":1,"toString":"b"}')
    await inspector.set('cache:shape-read-frozen:2', '{"id":2,"toString":"c"}')
    const child = `
      Object.freeze(Object.prototype);
      const r = require('.');
      (async () => {
        const values = [];
        for (let i = 0; i < 3; i++) values.push(await r.cacheService.get('cache:shape-read-frozen:' + i));
        console.log(JSON.stringify(values.map((v) => Object.getOwnPropertyNames(v).map((k) => [k, v[k]]))));
        await r.closeRedisConnection();
      })();`
    const out = await runNode(child)
    expect(out.stderr).toBe('')
    expect(JSON.parse(out.stdout)[2]).toEqual([['id', 2], ['toString', 'c']])
    // Integer-like keys come first in JSON.parse's order, as in the text JSON.stringify writes.
    const indexed = ['{"1":"x","a":1}', '{"1":"x","2":"y","a":1}', '{"1":"z","a":2}', '{"1":"x","2":"y","a":1}', '{"1":"x","2":"y"}']
    for (const text of indexed) expectParsed(await read('cache:shape-read-optional-indexed:', text), text)
    expect(built()).toBe(2)
  })

  test('a value handed to the caller may be changed, and texts needing more figures than characters are still read', async () => {
    // The shapes a prefix keeps are its own: changing a value read does not change later reads.
    const prefix = 'cache:shape-read-own:'
    const texts = ['{"id":1,"name":"A","email":"a@x"}', '{"id":2,"name":"B","email":"b@x","profile":{"bio":"x"},"tags":[]}']
    for (const text of texts) {
      const value = await read(prefix, text)
      expectParsed(value, text)
      if (value.profile) value.profile.bio = undefined
      value.tags?.push({ not: 'json' })
      value.email = () => 1
    }
    for (const text of ['{"id":3,"name":"C"}', '{"id":4,"name":"D","profile":{"bio":"y"},"tags":["t"]}', '{"id":5,"name":"E","more":1}', '{"id":6,"name":"F"}']) {
      const value = await read(prefix, text)
      expectParsed(value, text)
      Object.assign(value, { name: undefined, profile: { bio: Symbol('x') } })
    }
    expect(built()).toBe(2)
    // Records of eleven members of which ten may be absent: 380 records of one member each need
    // 4,181 figures for 4,071 characters, more than the first array holds.
    const full = { id: 1 }
    for (let i = 0; i < 10; i++) full[`f${i}`] = 'x'
    for (const text of [JSON.stringify([full, { id: 2 }]), JSON.stringify([{ id: 3 }, full])]) expectParsed(await read('cache:shape-read-sparse:', text), text)
    expect(built()).toBe(0)
    const sparse = JSON.stringify(Array.from({ length: 380 }, (_, i) => ({ id: i })))
    expect(sparse.length).toBeLessThanOrEqual(4096)
    for (let i = 0; i < 12; i++) {
      const text = i % 2 ? JSON.stringify([{ id: 4 }, full]) : sparse
      expectParsed(await read('cache:shape-read-sparse:', text), text)
    }
    expect(built()).toBe(12)
  })

  test('random values with members left out are read as JSON.parse reads them', async () => {
    const make = randomValues(57, RANDOM_READS)
    const random = seeded(13)
    /** The value with some members left out (never an object's first) and its leaves changed or null. */
    const vary = (v) => {
      if (v === null) return [null, 'was null', -0, 7.5, true][random(5)]
      if (typeof v !== 'object') {
        if (random(5) === 0) return null
        if (typeof v === 'string') return ['', 'y', '😀', 'z'.repeat(30)][random(4)]
        return typeof v === 'number' ? [0, -0, 3, -1.25][random(4)] : random(2) === 0
      }
      if (Array.isArray(v)) {
        if (v.length > 0 && v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) {
          return Array.from({ length: random(4) }, () => vary(v[random(v.length)]))
        }
        return v.map(vary)
      }
      const o = {}
      for (const [i, k] of Object.keys(v).entries()) {
        if (i > 0 && random(3) === 0) continue
        Object.defineProperty(o, k, { value: vary(v[k]), enumerable: true, writable: true, configurable: true })
      }
      return o
    }
    const record = () => {
      let item = make(1)
      if (typeof item !== 'object' || item === null || Array.isArray(item)) item = { only: item }
      return { id: 1, item, list: [item, vary(item)], more: 'x' }
    }
    const readers = await readersOver(40, 'cache:shape-read-absent-', record, 10, vary)
    expect(readers).toBeGreaterThan(20)
  })

  test('deeply nested texts are read as JSON.parse reads them, even on a small stack', async () => {
    const deep = (leaf) => `${'['.repeat(1500)}${leaf}${']'.repeat(1500)}`
    for (const [i, leaf] of ['1', '"x"', '{}'].entries()) await inspector.set(`cache:shape-read-deep-nest:${i}`, deep(leaf))
    const child = `
      const r = require('.');
      (async () => {
        const texts = [];
        for (let i = 0; i < 3; i++) {
          const value = await r.cacheService.get('cache:shape-read-deep-nest:' + i);
          let depth = 0;
          for (let v = value; Array.isArray(v); v = v[0]) depth++;
          texts.push(depth);
        }
        console.log(JSON.stringify({ texts, stats: r.cacheService.getStats() }));
        await r.closeRedisConnection();
      })();`
    const out = await runNode(child, { nodeArgs: ['--stack-size=300'] })
    expect(out.stderr).toBe('')
    expect(JSON.parse(out.stdout)).toMatchObject({ texts: [1500, 1500, 1500], stats: { hits: 3, errors: 0 } })
  })

  test('the native match refuses a text of another length than it is told, and any template id it does not hold', () => {
    const { JSON_MATCH_YES: YES, JSON_MATCH_NO: NO, JSON_MATCH_FULL: FULL } = native
    expect(new Set([YES, NO, FULL]).size).toBe(3)
    const id = native.jsonTemplate(`[${String.fromCharCode(native.JSON_LEAF_NUMBER)}]`)
    const out = new Float64Array(4)
    expect(native.jsonMatch(id, '[1]', 3, out)).toBe(YES)
    expect(out[0]).toBe(1)
    for (const length of [0, 2, 4, 2 ** 16, 2 ** 32 - 1]) expect(native.jsonMatch(id, '[1]', length, out)).toBe(NO)
    expect(native.jsonMatch(2 ** 31, '[1]', 3, out)).toBe(NO)
    // No room for the figures is told apart from no match.
    expect(native.jsonMatch(id, '[1]', 3, new Float64Array(0))).toBe(FULL)
    expect(native.jsonMatch(id, '["1"]', 5, new Float64Array(0))).toBe(NO)
    // The binary's registry of templates has one name per loaded binary.
    expect(native.jsonRegistry()).toMatch(/^[0-9a-f]{16}$/)
    expect(native.jsonRegistry()).toBe(native.jsonRegistry())
  })

  test('two copies of the package in one process (each with its binary) never use each other\'s template ids', async () => {
    const fs = require('node:fs')
    const os = require('node:os')
    const path = require('node:path')
    const root = path.resolve(__dirname, '..')
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'yg-copy-'))
    try {
      for (const name of ['lib', 'binding.js', 'package.json', 'index.js']) fs.cpSync(path.join(root, name), path.join(copy, name), { recursive: true })
      for (const name of fs.readdirSync(root).filter((f) => f.endsWith('.node'))) fs.copyFileSync(path.join(root, name), path.join(copy, name))
      // Copy B registers another template first, so the same id names other templates in the two binaries.
      const child = `
        const A = require('./lib/decoded.js');
        const nativeB = require(${JSON.stringify(path.join(copy, 'lib', 'native.js'))});
        nativeB.jsonTemplate('[' + String.fromCharCode(nativeB.JSON_LEAF_STRING) + ',' + String.fromCharCode(nativeB.JSON_LEAF_STRING) + ']');
        const B = require(${JSON.stringify(path.join(copy, 'lib', 'decoded.js'))});
        const reads = [];
        for (const [D, key, text] of [[A, 'p:1', '{"n":1,"s":"x"}'], [A, 'p:2', '{"n":2,"s":"y"}'], [A, 'p:3', '{"n":3,"s":"z"}'],
            [B, 'p:4', '["abc","de"]'], [B, 'p:5', '{"n":4,"s":"w"}'], [B, 'p:6', '{"n":5,"s":"v"}'], [B, 'p:7', '{"n":6,"s":"u"}'], [A, 'p:8', '{"n":7,"s":"t"}']]) {
          reads.push([JSON.stringify(D.parseByShape(key, text)), JSON.stringify(JSON.parse(text))]);
        }
        console.log(JSON.stringify({ reads, two: nativeB.jsonRegistry() !== require('./lib/native.js').jsonRegistry() }));`
      const out = await runNode(child)
      expect(out.stderr).toBe('')
      const { reads, two } = JSON.parse(out.stdout)
      expect(two).toBe(true)
      for (const [got, parsed] of reads) expect(got).toBe(parsed)
    } finally {
      fs.rmSync(copy, { recursive: true, force: true })
    }
  })
})

describe('a shape written again and again', () => {
  // lib/encoded.js: from the second write of a plain object under a key prefix,
  // values of its shape are written by a serializer compiled for it. Whatever
  // is written, Redis must hold exactly what JSON.stringify gives.
  const serializers = () => globalThis[Symbol.for('@yesgoddess/redis/runtime/v1')].shared('encoded-serializers', () => new Map())
  const written = async (key, value) => {
    await cacheService.set(key, value, 60)
    return inspector.get(key)
  }

  test('values of its shape and of every other shape under the prefix are written as JSON.stringify writes them', async () => {
    class Point {
      constructor() {
        this.p = 'q'
      }
    }
    const base = () => ({ a: 'x', n: 1, b: true, z: null, d: new Date(0), arr: [1, 'two', null], o: { p: 'q' } })
    const compiledBefore = serializers().size
    for (let i = 0; i < 3; i++) expect(await written('cache:enc:one', base())).toBe(JSON.stringify(base()))
    expect(serializers().size).toBe(compiledBefore + 1)
    const nonEnumerableToJson = base()
    Object.defineProperty(nonEnumerableToJson.o, 'toJSON', { value: () => 'from toJSON', enumerable: false })
    const getter = base()
    Object.defineProperty(getter.o, 'p', { get: () => 'from a getter', enumerable: true })
    const nullPrototype = base()
    nullPrototype.o = Object.assign(Object.create(null), { p: 'no prototype' })
    const classInstance = base()
    classInstance.o = new Point()
    const cyclicInArray = base()
    cyclicInArray.arr = [{ back: cyclicInArray }]
    const variants = [
      { a: 'needs "escapes" \\ and\nnew lines\u0001' },
      { a: 'a lone \ud800 surrogate, and \udc00 another' },
      { a: 'a pair 😀, café, ü, \u2028' },
      { a: '' },
      { a: new String('boxed') },
      { a: 42 },
      { a: undefined },
      { a: () => 'fn' },
      { a: Symbol('s') },
      { n: NaN },
      { n: -0 },
      { n: Infinity },
      { n: 1e21 },
      { n: 5e-7 },
      { n: '1' },
      { b: false },
      { b: 'true' },
      { z: undefined },
      { z: { nested: 'now an object' } },
      { d: new Date(Number.NaN) },
      { d: Object.assign(new Date(0), { toJSON: () => 'own toJSON' }) },
      { d: { toJSON: (key) => `toJSON of ${key}` } },
      { d: '2020-01-01' },
      { arr: [undefined, () => 1, Symbol('x'), , { x: 1 }, [2, [3]], new Date(1), 'a"b', NaN] }, // eslint-disable-line no-sparse-arrays
      { arr: [] },
      { arr: 'not an array' },
      { arr: { 0: 1, length: 1 } },
      { arr: [{ toJSON: (key) => `item ${key}` }] },
      { o: { p: 'q', extra: 1 } },
      { o: { extra: 1, p: 'q' } },
      { o: {} },
      { o: new Number(5) },
      { o: [1] },
      { o: null },
    ]
    // Each case under a prefix of its own whose serializer is compiled (a prefix
    // whose shapes keep changing stops being compiled).
    let prefixes = 0
    const compiled = async () => {
      const key = `cache:enc-${prefixes++}:one`
      for (let i = 0; i < 3; i++) expect(await written(key, base())).toBe(JSON.stringify(base()))
      return key
    }
    for (const change of variants) {
      const key = await compiled()
      const value = { ...base(), ...change }
      expect(await written(key, value)).toBe(JSON.stringify(value))
      expect(await written(key, base())).toBe(JSON.stringify(base()))
    }
    for (const value of [nonEnumerableToJson, getter, nullPrototype, classInstance]) {
      const key = await compiled()
      expect(await written(key, value)).toBe(JSON.stringify(value))
      expect(await written(key, base())).toBe(JSON.stringify(base()))
    }
    // What JSON.stringify refuses is refused, compiled shape or not.
    for (const value of [{ ...base(), a: 10n }, cyclicInArray]) {
      const key = await compiled()
      await expect(cacheService.set(key, value, 60)).rejects.toMatchObject({ name: 'TypeError', code: 'EINVALID' })
      expect(await written(key, base())).toBe(JSON.stringify(base()))
    }
    // A toJSON added to Object.prototype is seen by every later write.
    const key = await compiled()
    try {
      Object.prototype.toJSON = function () { return 'from Object.prototype' }
      expect(await written(key, base())).toBe(JSON.stringify(base()))
    } finally {
      delete Object.prototype.toJSON
    }
    expect(await written(key, base())).toBe(JSON.stringify(base()))
    // A prefix whose shapes keep changing is written right all along.
    for (let i = 0; i < 30; i++) {
      const value = i % 2 === 0 ? base() : { ...base(), [`k${i}`]: i }
      expect(await written('cache:enc:changing', value)).toBe(JSON.stringify(value))
    }
  })

  test('a boxed primitive is never taken for an object of the shape, whatever keys or prototype it has', async () => {
    const boxed = (primitive, prototype) => {
      const box = Object.assign(Object(primitive), { p: 'q' })
      if (prototype !== undefined) Object.setPrototypeOf(box, prototype)
      return box
    }
    const cases = [
      [{ e: {} }, { e: new Number(5) }],
      [{ e: {} }, { e: new Boolean(false) }],
      [{ e: { 0: 'a', 1: 'b' } }, { e: new String('ab') }],
      [{ e: { p: 'q' } }, { e: boxed(false) }],
      [{ e: { p: 'q' } }, { e: boxed(5) }],
      [{ e: { 0: 'a', p: 'q' } }, { e: boxed('a') }],
      [{ e: { p: 'q' } }, { e: boxed(5, Object.prototype) }],
      [{ e: { p: 'q' } }, { e: boxed(false, null) }],
      [{ p: 'q' }, boxed(5)],
      [{ p: 'q' }, boxed('x', Object.prototype)],
    ]
    for (let c = 0; c < cases.length; c++) {
      const [shape, box] = cases[c]
      const key = `cache:enc-boxed-${c}:x`
      for (let i = 0; i < 3; i++) expect(await written(key, shape)).toBe(JSON.stringify(shape))
      expect(await written(key, box)).toBe(JSON.stringify(box))
      expect(await written(key, shape)).toBe(JSON.stringify(shape))
    }
    // A boxed BigInt: JSON.stringify throws, and so does the write.
    const key = 'cache:enc-boxed-bigint:x'
    for (let i = 0; i < 3; i++) await written(key, { e: { p: 'q' } })
    await expect(cacheService.set(key, { e: boxed(1n) }, 60)).rejects.toMatchObject({ name: 'TypeError', code: 'EINVALID' })
  })

  test('getters, toJSON and proxies run in the order JSON.stringify runs them, and a second look that throws costs nothing', async () => {
    const key = 'cache:enc-order:x'
    for (let i = 0; i < 3; i++) await written(key, { list: [], s: 'x', d: new Date(0), t: 'y' })
    const calls = []
    const value = {
      get list() {
        calls.push('list')
        return this.items
      },
      get s() {
        calls.push('s')
        this.items.push(1) // changes the array read before it: JSON.stringify wrote it already
        return 'x'
      },
      d: Object.assign(new Date(0), { toISOString: () => (calls.push('d'), 'when') }),
      get t() {
        calls.push('t')
        return 'y'
      },
    }
    Object.defineProperty(value, 'items', { value: [], writable: true, enumerable: false })
    const expected = JSON.stringify(value)
    const stringifyCalls = calls.splice(0)
    value.items = []
    expect(await written(key, value)).toBe(expected)
    expect(calls).toEqual(stringifyCalls)
    expect(stringifyCalls).toEqual(['list', 's', 'd', 't'])
    // A proxy whose getPrototypeOf throws (JSON.stringify never asks): written
    // right on the write that compiles its prefix, and on every other.
    const proxied = () => ({ o: new Proxy({ a: 1 }, { getPrototypeOf() { throw new Error('asked for a prototype') } }) })
    for (let i = 0; i < 4; i++) expect(await written('cache:enc-proxy:x', proxied())).toBe('{"o":{"a":1}}')
  })

  test('strings checked all at once (long ones) are escaped where one of them needs it', async () => {
    const base = (bio, tag) => ({ id: 'u-1', bio, tags: [tag], more: { a: 'x'.repeat(100), b: 'y' } })
    const plain = 'z'.repeat(300)
    for (const [bio, tag] of [['line\nbreak ' + plain, 't'], [plain + '"', 't'], [plain, 'quote"'], ['\ud800' + plain, 't'], [plain + '\udfff', 't'], ['😀' + plain, 't'], [plain + '\u0000', '\\'], [plain, 't']]) {
      const key = `cache:enc-long-${bio.length}-${bio.charCodeAt(0)}-${bio.charCodeAt(bio.length - 1)}-${tag.length}:x`
      for (let i = 0; i < 3; i++) expect(await written(key, base(plain, 't'))).toBe(JSON.stringify(base(plain, 't')))
      expect(await written(key, base(bio, tag))).toBe(JSON.stringify(base(bio, tag)))
    }
  })

  test('random values, each written three times under its own prefix, are written as JSON.stringify writes them', async () => {
    const make = randomValues(11, {
      numbers: [0, -0, 1.5, -2e-7, 123456789012, 1e300, NaN],
      strings: ['', 'x', 'caf\u00e9', '\u2028', '"q"', '\n', '\ud83d', (random) => 'a'.repeat(random(50))],
      others: [(random) => new Date(random(1e12)), undefined, (random) => random(3)],
      keys: ['__proto__', '"]);process.abort();//', '\\', '\u2028', 'toJSON', '0', '10', '-1', '', 'a b', 'ü', '`$' + '{x}`', 'constructor'],
      longArrays: false,
    })
    const compiledBefore = serializers().size
    for (let v = 0; v < 60; v++) {
      const value = { root: make(1), other: make(1) }
      const expected = JSON.stringify(value)
      for (let i = 0; i < 3; i++) expect(await written(`cache:enc-${v}:x`, value)).toBe(expected)
    }
    // Most of them were written by a compiled serializer.
    expect(serializers().size).toBeGreaterThan(compiledBefore + 20)
  })
})

describe('invalidation', () => {
  /** Seeds `keys`, runs `invalidate`, and checks exactly `gone` went and the rest stayed. */
  async function expectRemoves(invalidate, gone, stay) {
    await inspector.mset(...[...gone, ...stay].flatMap((k) => [k, '1']))
    const removed = await invalidate()
    expect(removed).toBe(gone.length)
    for (const k of gone) expect([k, await inspector.exists(k)]).toEqual([k, 0])
    for (const k of stay) expect([k, await inspector.exists(k)]).toEqual([k, 1])
    await inspector.del(...stay)
  }

  test('each cascade removes exactly its keys', async () => {
    await expectRemoves(
      () => cacheService.invalidateUser('7'),
      ['cache:user:7', 'cache:user:7:profile', 'cache:user:7:a:b'],
      ['cache:user:70', 'cache:user:7x', 'cache:creator:7', 'session:auth:7'],
    )
    await expectRemoves(
      () => cacheService.invalidateCreator('c1'),
      ['cache:creator:c1', 'cache:creator:c1:stats', 'cache:creator-assets:c1'],
      ['cache:creator:c10', 'cache:creator-assets:c10', 'cache:user:c1', 'cache:project-assets:c1'],
    )
    await expectRemoves(
      () => cacheService.invalidateProject('p1'),
      ['cache:project:p1', 'cache:project:p1:members', 'cache:project-assets:p1'],
      ['cache:project:p12', 'cache:creator-assets:p1'],
    )
    await expectRemoves(
      () => cacheService.invalidateBrand('b1'),
      ['cache:brand:b1', 'cache:brand:b1:team', 'cache:brand-licenses:b1'],
      ['cache:brand:b11', 'cache:asset-licenses:b1'],
    )
    await expectRemoves(
      () => cacheService.invalidateAsset('a1'),
      ['cache:asset:a1', 'cache:asset:a1:renditions', 'cache:asset-licenses:a1'],
      ['cache:asset:a10', 'cache:brand-licenses:a1'],
    )
  })

  test('an id is data: pattern and separator characters never widen what is deleted', async () => {
    for (const id of ['*', '?', '[a-z]', '[', ']', '\\', ':', '7:*', '*:profile']) {
      const own = RedisKeys.cache.user(id)
      await expectRemoves(
        () => cacheService.invalidateUser(id),
        [own, `${own}:x`],
        ['cache:user:7', 'cache:user:7:profile', 'cache:user:a', 'cache:user:abc', 'cache:user::x'],
      )
    }
  })

  test('invalidatePattern removes 100,000 matching keys in batches, and nothing else', async () => {
    const client = redis.getRedisClient()
    for (let start = 0; start < 100000; start += 10000) {
      const p = client.pipeline()
      for (let i = start; i < start + 10000; i++) p.set(`cache:many:${i}`, '1')
      await p.exec()
    }
    await inspector.set('cache:manyx', 'stays')
    const started = Date.now()
    expect(await cacheService.invalidatePattern('cache:many:*')).toBe(100000)
    const elapsed = Date.now() - started
    expect(await inspector.exists('cache:manyx')).toBe(1)
    expect(await inspector.dbsize()).toBeLessThan(100000)
    // the server (every master of a cluster) was never blocked for long: its slowest command stayed short
    for (const node of await dataNodes(inspector)) {
      const slow = await node.call('SLOWLOG', 'GET', '1')
      const worstUs = slow.length > 0 ? Number(slow[0][2]) : 0
      expect(worstUs).toBeLessThan(100000) // < 100 ms for any single command
    }
    expect(elapsed).toBeLessThan(20000)
  }, 60000)

  test('invalidatePattern removes every match in batches, and nothing else', async () => {
    const p = redis.getRedisClient().pipeline()
    for (let i = 0; i < 5000; i++) p.set(`cache:bulk:${i}`, '1')
    p.set('cache:bulky', 'stays')
    await p.exec()
    expect(await cacheService.invalidatePattern('cache:bulk:*')).toBe(5000)
    expect(await inspector.exists('cache:bulky')).toBe(1)
    expect(await cacheService.invalidatePattern('cache:bulk:*')).toBe(0)
  })
})

describe('getOrSet', () => {
  test('100 concurrent callers for one missing key run the loader once and share its value', async () => {
    let calls = 0
    const loader = async () => {
      calls++
      await new Promise((r) => setTimeout(r, 20))
      return { loaded: true }
    }
    const values = await Promise.all(Array.from({ length: 100 }, () => cacheService.getOrSet('cache:gos:1', loader, 60)))
    expect(calls).toBe(1)
    expect(values.every((v) => v.loaded === true)).toBe(true)
    expect(await cacheService.getOrSet('cache:gos:1', loader)).toEqual({ loaded: true })
    expect(calls).toBe(1)
    expect(await inspector.ttl('cache:gos:1')).toBeLessThanOrEqual(60)
  })

  test('a loader that throws rejects every waiter and caches nothing', async () => {
    let calls = 0
    const loader = async () => {
      calls++
      await new Promise((r) => setTimeout(r, 10))
      throw new Error('database down')
    }
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => cacheService.getOrSet('cache:gos:2', loader)))
    expect(calls).toBe(1)
    expect(results.every((r) => r.status === 'rejected' && r.reason.message === 'database down')).toBe(true)
    expect(await inspector.exists('cache:gos:2')).toBe(0)
  })

  test('two processes hammering one cold key run the loader once between them', async () => {
    const child = `
      const r = require('.');
      const c = r.getRedisClient();
      (async () => {
        while ((await c.get('cache:gos:go')) === null) await new Promise((res) => setTimeout(res, 2));
        const loader = async () => {
          await c.incr('cache:gos:loads');
          await new Promise((res) => setTimeout(res, 300));
          return { from: process.pid };
        };
        const values = await Promise.all(Array.from({ length: 50 }, () => r.cacheService.getOrSet('cache:gos:x', loader, 60)));
        console.log(JSON.stringify({ pids: [...new Set(values.map((v) => v.from))] }));
      })();`
    const both = [runNode(child), runNode(child)]
    await new Promise((r) => setTimeout(r, 400)) // both processes up and polling
    await inspector.set('cache:gos:go', '1')
    const [a, b] = await Promise.all(both)
    expect(await inspector.get('cache:gos:loads')).toBe('1')
    const pids = [...JSON.parse(a.stdout).pids, ...JSON.parse(b.stdout).pids]
    expect(new Set(pids).size).toBe(1) // everyone got the one loaded value
    expect(await inspector.exists('lock:get-or-set:cache:gos:x')).toBe(0) // the lock was released
  })

  test('the loader runs in the caller\'s AsyncLocalStorage context', async () => {
    const als = new AsyncLocalStorage()
    const seen = await als.run({ request: 'r-1' }, () =>
      cacheService.getOrSet('cache:gos:3', async () => ({ request: als.getStore()?.request })),
    )
    expect(seen).toEqual({ request: 'r-1' })
  })
})

test('with the server gone, get degrades to a miss and set reports the error', async () => {
  const server = await new RedisServer().start()
  try {
    await useRedis({ url: server.url, commandTimeoutMs: 500 })
    await cacheService.set('cache:down', { ok: 1 })
    await server.stop()
    cacheService.resetStats()
    expect(await cacheService.get('cache:down')).toBeNull()
    await expect(cacheService.set('cache:down', 2)).rejects.toBeInstanceOf(redis.RedisError)
    expect(cacheService.getStats()).toMatchObject({ misses: 1, errors: 2 })
  } finally {
    await server.stop()
    await useRedis()
  }
})
