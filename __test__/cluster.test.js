'use strict'
// Redis Cluster behaviour of the package (issue 13), against private clusters
// the harness starts here (3 masters + 3 replicas; stopped by pid in afterAll).
// The independent check is ioredis, one plain connection per node: every key
// the package writes must be on the master that owns its hash slot (the slot
// from the package's keySlot, cross-checked with the server's CLUSTER KEYSLOT,
// and the owner from the harness's view of CLUSTER NODES).
//
// The client is process-wide: every describe block configures it
// (configureRedis) and closes it (closeRedisConnection) again.
const fs = require('node:fs')
const Redis = require('ioredis')
const { RedisCluster, SLOTS } = require('./support/cluster.js')
const { makeTlsFiles } = require('./support/redis-server.js')
const { redis, sleep } = require('./support/client.js')

const { cacheService, rateLimiter, withLock, RedisKeys } = redis

jest.setTimeout(120000)

const PREFIX = 'h13:'
const COMMAND_TIMEOUT_MS = 2000

// ── helpers ──────────────────────────────────────────────────────────────────

/** configureRedis options for `cluster` (TLS through the CA file the harness made). */
function clientOptions(cluster, extra = {}) {
  return {
    url: cluster.url,
    cluster: true,
    keyPrefix: PREFIX,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    ...(cluster.options.tls ? { tls: { caFile: cluster.options.tls.ca } } : {}),
    ...extra,
  }
}

async function configure(cluster, extra) {
  await redis.closeRedisConnection()
  redis.configureRedis(clientOptions(cluster, extra))
}

/**
 * Per-node ioredis connections and the slot owners as the harness sees them
 * (`refresh()` after the topology changed).
 */
class Nodes {
  constructor(cluster) {
    this.cluster = cluster
    this.clients = new Map()
    this.refresh()
  }

  refresh() {
    this.masters = this.cluster.masters()
    return this
  }

  client(node) {
    let c = this.clients.get(node.port)
    if (!c) {
      c = new Redis({
        host: '127.0.0.1',
        port: node.port,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        ...(this.cluster.options.tls ? { tls: { ca: fs.readFileSync(this.cluster.options.tls.ca) } } : {}),
      })
      c.on('error', () => {})
      this.clients.set(node.port, c)
    }
    return c
  }

  ownerOfSlot(slot) {
    const owner = this.masters.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b))
    if (!owner) throw new Error(`no master owns slot ${slot}`)
    return owner
  }

  /** The master owning `key` (written without the prefix), by the package's keySlot. */
  ownerOf(key) {
    return this.ownerOfSlot(redis.keySlot(key))
  }

  /** Every key (prefix added) of `pattern` on one node, by SCAN over that node alone. */
  async scanNode(node, pattern) {
    const c = this.client(node)
    const out = []
    let cursor = '0'
    do {
      const [next, keys] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = next
      out.push(...keys)
    } while (cursor !== '0')
    return out
  }

  close() {
    for (const c of this.clients.values()) c.disconnect()
    this.clients.clear()
  }
}

/**
 * Checks the package's keySlot against the server's CLUSTER KEYSLOT (prefix included),
 * then reads each key (GET, or `read(client, fullKey)`) on its owner master with ioredis,
 * and checks that another master answers MOVED for it. Resolves what the owners hold.
 */
async function onOwners(nodes, keys, read = (c, k) => c.get(k)) {
  const slots = keys.map((k) => redis.keySlot(k))
  expect(await nodes.cluster.keySlots(keys.map((k) => PREFIX + k))).toEqual(slots)
  return Promise.all(
    keys.map(async (key, i) => {
      const owner = nodes.ownerOfSlot(slots[i])
      const other = nodes.masters.find((m) => m.id !== owner.id)
      await expect(nodes.client(other).get(PREFIX + key)).rejects.toThrow(new RegExp(`^MOVED ${slots[i]} `))
      return read(nodes.client(owner), PREFIX + key)
    }),
  )
}

/** Writes `fullKeys` (prefix included or not: as given) straight to their owners with ioredis, one SET each. */
async function writeRaw(nodes, fullKeys, value = '1') {
  const slots = await nodes.cluster.keySlots(fullKeys)
  await Promise.all(fullKeys.map((k, i) => nodes.client(nodes.ownerOfSlot(slots[i])).set(k, value)))
}

/** `count` keys from `make(i)` whose owners include every master (checked). */
function spread(nodes, make, count) {
  const keys = Array.from({ length: count }, (_, i) => make(i))
  const owners = new Set(keys.map((k) => nodes.ownerOf(k).id))
  expect(owners.size).toBe(nodes.masters.length)
  return keys
}

/** `perMaster` values of `make(i)` per master, grouped `[{ master, values }]`. */
function perMaster(nodes, make, perMasterCount, keyOf = (v) => v) {
  const groups = new Map(nodes.masters.map((m) => [m.id, []]))
  for (let i = 0; groups.size && [...groups.values()].some((g) => g.length < perMasterCount); i++) {
    if (i > 100000) throw new Error('could not spread the values over the masters')
    const value = make(i)
    const group = groups.get(nodes.ownerOf(keyOf(value)).id)
    if (group.length < perMasterCount) group.push(value)
  }
  return nodes.masters.map((m) => ({ master: m, values: groups.get(m.id) }))
}

const shuffled = (list) => {
  const out = [...list]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

const rateKey = (action, id) => RedisKeys.ratelimit.key(action, id)

/** Runs `n` concurrent checkLimit of (id, action) with limit `limit`; resolves the allowed count (and checks no degraded answers). */
async function concurrentLimit(id, action, n, limit) {
  const results = await Promise.all(Array.from({ length: n }, () => rateLimiter.checkLimit(id, action, { limit, windowSeconds: 60 })))
  expect(results.filter((r) => r.degraded)).toEqual([])
  return results.filter((r) => r.allowed).length
}

/** `cmdstat_<name>` calls on one node (0 when never called). */
async function commandCalls(client, name) {
  const info = await client.info('commandstats')
  const m = new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info)
  return m ? Number(m[1]) : 0
}

// ── keys in many slots, multi-key commands, fan-out (one plain cluster, or TLS under YG_TEST_TLS=1) ──

describe('a cluster (the harness default transport)', () => {
  let cluster
  let nodes
  beforeAll(async () => {
    cluster = await new RedisCluster({ nodeTimeoutMs: 1000 }).start()
    nodes = new Nodes(cluster)
  })
  afterAll(async () => {
    await redis.closeRedisConnection()
    if (nodes) nodes.close()
    if (cluster) await cluster.stop()
  })

  describe('keys in many slots', () => {
    beforeAll(async () => {
      cluster.flushAll()
      nodes.refresh()
      await configure(cluster)
    })
    afterAll(() => redis.closeRedisConnection())

    // 50 plain keys and 20 hash-tagged pairs (two keys per tag, one slot per pair).
    const plain = Array.from({ length: 50 }, (_, i) => `cache:h13:plain:${i}`)
    const tagged = Array.from({ length: 20 }, (_, i) => [`cache:{h13t${i}}:one`, `cache:{h13t${i}}:two`]).flat()
    const keys = [...plain, ...tagged]

    test('keySlot is the server\'s slot of the key with keyPrefix; the keys cover 50+ slots on every master', async () => {
      expect(typeof redis.keySlot).toBe('function')
      const slots = keys.map((k) => redis.keySlot(k))
      expect(await cluster.keySlots(keys.map((k) => PREFIX + k))).toEqual(slots)
      expect(new Set(slots).size).toBeGreaterThanOrEqual(50)
      // The tag decides the slot: both keys of a pair share it.
      for (let i = 0; i < tagged.length; i += 2) expect(redis.keySlot(tagged[i])).toBe(redis.keySlot(tagged[i + 1]))
      const counts = new Map()
      for (const k of keys) counts.set(nodes.ownerOf(k).id, (counts.get(nodes.ownerOf(k).id) || 0) + 1)
      expect(counts.size).toBe(3)
      for (const n of counts.values()) expect(n).toBeGreaterThanOrEqual(10)
    })

    test('cacheService set / get / exists / ttl: each key on the master that owns its slot', async () => {
      const value = (k, i) => ({ key: k, n: i, nested: { list: [i, String(i)] } })
      expect(await Promise.all(keys.map((k, i) => cacheService.set(k, value(k, i), 600)))).toEqual(keys.map(() => true))
      expect(await Promise.all(keys.map((k) => cacheService.get(k)))).toEqual(keys.map(value))
      const stored = await onOwners(nodes, keys)
      expect(stored.map((raw) => JSON.parse(raw))).toEqual(keys.map(value))
      const ttls = await onOwners(nodes, keys, (c, k) => c.ttl(k))
      for (const t of ttls) expect(t).toBeGreaterThan(590)
      expect(await Promise.all(keys.map((k) => cacheService.exists(k)))).toEqual(keys.map(() => true))
      const missing = keys.map((k) => `${k}:missing`)
      expect(await Promise.all(missing.map((k) => cacheService.exists(k)))).toEqual(missing.map(() => false))
      expect(await Promise.all(missing.map((k) => cacheService.get(k)))).toEqual(missing.map(() => null))
      const packageTtls = await Promise.all(keys.map((k) => cacheService.ttl(k)))
      for (const t of packageTtls) {
        expect(t).toBeGreaterThan(590)
        expect(t).toBeLessThanOrEqual(600)
      }
    })

    test('cacheService getOrSet: one load per key (single flight) over many slots, the value on the owner', async () => {
      const gos = spread(nodes, (i) => `cache:h13:gos:${i}`, 40)
      const loads = new Map()
      const loader = (k) => async () => {
        loads.set(k, (loads.get(k) || 0) + 1)
        await sleep(5)
        return { loaded: k }
      }
      const results = await Promise.all(gos.flatMap((k) => [1, 2, 3].map(() => cacheService.getOrSet(k, loader(k), 300))))
      expect(results).toEqual(gos.flatMap((k) => [1, 2, 3].map(() => ({ loaded: k }))))
      expect([...loads.values()]).toEqual(gos.map(() => 1))
      expect((await onOwners(nodes, gos)).map((raw) => JSON.parse(raw))).toEqual(gos.map((k) => ({ loaded: k })))
      // Now cached: the loader is not called again.
      const again = await Promise.all(gos.map((k) => cacheService.getOrSet(k, () => { throw new Error('must not load') }, 300)))
      expect(again).toEqual(gos.map((k) => ({ loaded: k })))
    })

    test('cacheService mset / mget across slots: values in the caller\'s order, each key on its owner', async () => {
      const entries = keys.map((k, i) => [`${k}:m`, { m: i }])
      expect(await cacheService.mset(entries, 300)).toBe(true)
      const mkeys = entries.map(([k]) => k)
      expect(new Set(mkeys.map((k) => redis.keySlot(k))).size).toBeGreaterThanOrEqual(50)
      const order = shuffled([...mkeys, ...mkeys.slice(0, 15).map((k) => `${k}:absent`)])
      const expected = order.map((k) => (k.endsWith(':absent') ? null : { m: mkeys.indexOf(k) }))
      expect(await cacheService.mget(order)).toEqual(expected)
      expect((await onOwners(nodes, mkeys)).map((raw) => JSON.parse(raw))).toEqual(entries.map(([, v]) => v))
      for (const t of await onOwners(nodes, mkeys, (c, k) => c.ttl(k))) {
        expect(t).toBeGreaterThan(290)
        expect(t).toBeLessThanOrEqual(300)
      }
      // The object form too.
      const object = Object.fromEntries(plain.map((k, i) => [`${k}:o`, i]))
      expect(await cacheService.mset(object)).toBe(true)
      expect(await cacheService.mget(Object.keys(object).reverse())).toEqual(Object.values(object).reverse())
    })

    test('cacheService delete across slots counts the keys that existed; they are gone from every owner', async () => {
      const victims = keys.filter((_, i) => i % 2 === 0)
      const kept = keys.filter((_, i) => i % 2 === 1)
      const absent = victims.slice(0, 10).map((k) => `${k}:never`)
      expect(await cacheService.delete(shuffled([...victims, ...absent]))).toBe(victims.length)
      expect(await onOwners(nodes, victims, (c, k) => c.exists(k))).toEqual(victims.map(() => 0))
      expect(await onOwners(nodes, kept, (c, k) => c.exists(k))).toEqual(kept.map(() => 1))
      // One key at a time, on each master.
      for (const k of kept.slice(0, 6)) expect(await cacheService.delete(k)).toBe(1)
      expect(await onOwners(nodes, kept.slice(0, 6), (c, k) => c.exists(k))).toEqual([0, 0, 0, 0, 0, 0])
      expect(await cacheService.delete(kept.slice(0, 6))).toBe(0)
    })

    test('rateLimiter.checkLimit is exact under concurrency for identifiers in different slots on every master', async () => {
      const groups = perMaster(nodes, (i) => `h13-user-${i}`, 3, (id) => rateKey('h13exact', id))
      const ids = groups.flatMap((g) => g.values)
      expect(new Set(ids.map((id) => redis.keySlot(rateKey('h13exact', id)))).size).toBe(ids.length)
      const cases = ids.map((id, i) => ({ id, n: [25, 7, 10][i % 3], limit: 10 }))
      const allowed = await Promise.all(cases.map((c) => concurrentLimit(c.id, 'h13exact', c.n, c.limit)))
      expect(allowed).toEqual(cases.map((c) => Math.min(c.n, c.limit)))
      // The window lives on the owner of its slot.
      const windows = await onOwners(nodes, ids.map((id) => rateKey('h13exact', id)), (c, k) => c.exists(k))
      expect(windows).toEqual(ids.map(() => 1))
      // A second round: the windows are full or count on from where they were.
      const more = await Promise.all(cases.map((c) => concurrentLimit(c.id, 'h13exact', 5, c.limit)))
      expect(more).toEqual(cases.map((c) => Math.max(0, Math.min(5, c.limit - Math.min(c.n, c.limit)))))
    })

    test('withLock excludes mutually on keys in different slots; fencing tokens grow; lock and fence live on the owner', async () => {
      const groups = perMaster(nodes, (i) => RedisKeys.lock.resource(`h13-${i}-x`), 2)
      const lockKeys = groups.flatMap((g) => g.values)
      const active = new Map()
      const tokens = new Map(lockKeys.map((k) => [k, []]))
      const violations = []
      const placement = []
      const run = (key) =>
        withLock(
          key,
          async ({ fencingToken }) => {
            if (active.get(key)) violations.push(key)
            active.set(key, true)
            tokens.get(key).push(fencingToken)
            const owner = nodes.ownerOf(key)
            const onOwner = await nodes.scanNode(owner, `*${key}*`)
            placement.push({ key, onOwner: onOwner.length, exists: await nodes.client(owner).exists(PREFIX + key) })
            await sleep(3)
            active.set(key, false)
            return fencingToken
          },
          10,
          { waitMs: 15000, retryDelayMs: 5 },
        )
      await Promise.all(lockKeys.flatMap((k) => Array.from({ length: 6 }, () => run(k))))
      expect(violations).toEqual([])
      for (const k of lockKeys) {
        const list = tokens.get(k)
        expect(list).toHaveLength(6)
        for (let i = 1; i < list.length; i++) expect(list[i]).toBeGreaterThan(list[i - 1])
      }
      // While held: the lock key and its fencing counter both on the owner master.
      for (const p of placement) expect(p).toEqual({ key: p.key, onOwner: 2, exists: 1 })
      // Released: only the fencing counter remains, on the owner; no other master has anything of it.
      for (const k of lockKeys) {
        for (const m of nodes.masters) {
          const found = await nodes.scanNode(m, `*${k}*`)
          expect(found.length).toBe(m.id === nodes.ownerOf(k).id ? 1 : 0)
        }
      }
    })
  })

  describe('multi-key commands and pipelines across slots (the raw client)', () => {
    let client
    beforeAll(async () => {
      cluster.flushAll()
      nodes.refresh()
      await configure(cluster)
      client = redis.getRedisClient()
    })
    afterAll(() => redis.closeRedisConnection())

    test('MSET / MGET / EXISTS / DEL across slots: order kept, counts summed', async () => {
      const keys = spread(nodes, (i) => (i % 3 ? `raw:${i}` : `raw:{tag${i % 9}}:${i}`), 90)
      expect(new Set(keys.map((k) => redis.keySlot(k))).size).toBeGreaterThanOrEqual(50)
      expect(await client.mset(...keys.flatMap((k) => [k, `v:${k}`]))).toBe('OK')
      expect(await onOwners(nodes, keys)).toEqual(keys.map((k) => `v:${k}`))
      const order = shuffled([...keys, 'raw:absent:1', 'raw:absent:2', 'raw:absent:3'])
      expect(await client.mget(...order)).toEqual(order.map((k) => (k.startsWith('raw:absent') ? null : `v:${k}`)))
      // EXISTS counts a key as often as it is named.
      expect(await client.exists(...keys.slice(0, 30), keys[0], 'raw:absent:1')).toBe(31)
      const gone = keys.slice(0, 40)
      expect(await client.del(...shuffled([...gone, 'raw:absent:1', 'raw:absent:2']))).toBe(40)
      expect(await onOwners(nodes, gone, (c, k) => c.exists(k))).toEqual(gone.map(() => 0))
      expect(await onOwners(nodes, keys.slice(40), (c, k) => c.exists(k))).toEqual(keys.slice(40).map(() => 1))
      expect(await client.unlink(...keys.slice(40))).toBe(50)
    })

    test('a pipeline of 200 mixed commands over every master: replies in the caller\'s order, an error stays in its place', async () => {
      const pipeline = client.pipeline()
      const expected = []
      const written = new Map()
      const counters = new Map()
      for (let i = 0; i < 200; i++) {
        const k = `pl:${i}`
        if (i === 100) {
          // INCR of a string that is not a number: an error reply, at index 100.
          pipeline.call('INCR', 'pl:95')
          expected.push('ERR')
          continue
        }
        switch (i % 5) {
          case 0:
            pipeline.set(k, `v${i}`)
            written.set(k, `v${i}`)
            expected.push('OK')
            break
          case 1:
            pipeline.get(`pl:${i - 1}`)
            expected.push(written.get(`pl:${i - 1}`) ?? null)
            break
          case 2: {
            const c = `plc:{n${i % 7}}`
            counters.set(c, (counters.get(c) || 0) + 1)
            pipeline.incr(c)
            expected.push(counters.get(c))
            break
          }
          case 3:
            pipeline.hset(`plh:${i}`, 'f', String(i))
            expected.push(1)
            break
          default:
            pipeline.exists(`pl:${i - 4}`)
            expected.push(written.has(`pl:${i - 4}`) ? 1 : 0)
        }
      }
      expect(pipeline.length).toBe(200)
      // The keys of the pipeline are spread over all three masters.
      const pipelineKeys = [...written.keys(), ...counters.keys()]
      expect(new Set(pipelineKeys.map((k) => nodes.ownerOf(k).id)).size).toBe(3)
      const replies = await pipeline.exec()
      expect(replies).toHaveLength(200)
      replies.forEach(([error, reply], i) => {
        if (i === 100) {
          expect(error).toBeInstanceOf(redis.ReplyError)
          expect(error.message).toMatch(/not an integer/)
          expect(error.code).toBe('ERR')
        } else {
          expect([i, error]).toEqual([i, null])
          expect([i, reply]).toEqual([i, expected[i]])
        }
      })
      expect(expected[101]).toBe(null) // pl:100 was never set
      // The effects are on the owners.
      expect(await onOwners(nodes, [...written.keys()])).toEqual([...written.values()])
      expect((await onOwners(nodes, [...counters.keys()])).map(Number)).toEqual([...counters.values()])
    })

    test('a multi-key command across slots that cannot be split is a TypeError EINVALID, and nothing reaches any node', async () => {
      expect(new Set(['a', 'b', 'c'].map((k) => redis.keySlot(k))).size).toBe(3)
      expect(new Set(['a', 'b', 'c'].map((k) => nodes.ownerOf(k).id)).size).toBeGreaterThan(1)
      const before = await Promise.all(nodes.masters.map((m) => commandCalls(nodes.client(m), 'sunionstore')))
      await client.sadd('b', 'x')
      await client.sadd('c', 'y')
      const error = await client.call('SUNIONSTORE', 'a', 'b', 'c').catch((e) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect(error.code).toBe('EINVALID')
      expect(error.message).toMatch(/CROSSSLOT|slot/i)
      const rename = await client.call('RENAME', 'b', 'c').catch((e) => e)
      expect(rename).toBeInstanceOf(TypeError)
      expect(rename.code).toBe('EINVALID')
      expect(await nodes.client(nodes.ownerOf('a')).exists(PREFIX + 'a')).toBe(0)
      expect(await nodes.client(nodes.ownerOf('b')).smembers(PREFIX + 'b')).toEqual(['x'])
      expect(await nodes.client(nodes.ownerOf('c')).smembers(PREFIX + 'c')).toEqual(['y'])
      const after = await Promise.all(nodes.masters.map((m) => commandCalls(nodes.client(m), 'sunionstore')))
      expect(after).toEqual(before)
      // The same keys in one slot (one hash tag) are fine.
      await client.sadd('{s}b', 'x')
      await client.sadd('{s}c', 'y')
      expect(await client.call('SUNIONSTORE', '{s}a', '{s}b', '{s}c')).toBe(2)
      expect((await nodes.client(nodes.ownerOf('{s}a')).smembers(PREFIX + '{s}a')).sort()).toEqual(['x', 'y'])
    })
  })

  describe('fan-out over every master', () => {
    beforeAll(async () => {
      cluster.flushAll()
      nodes.refresh()
      await configure(cluster)
    })
    afterAll(() => redis.closeRedisConnection())

    test('getRedisClient().scan() sees the keys of all three masters exactly once', async () => {
      const groups = perMaster(nodes, (i) => `scan13:${i}`, 40)
      // Written behind the package's back, straight to each owner.
      await writeRaw(nodes, groups.flatMap((g) => g.values).map((k) => PREFIX + k))
      // Keys outside the pattern, or without the prefix, which scan must not yield.
      await writeRaw(nodes, Array.from({ length: 30 }, (_, i) => `${PREFIX}notscan13:${i}`))
      await writeRaw(nodes, Array.from({ length: 30 }, (_, i) => `scan13:${i}`))
      const seen = []
      for await (const batch of redis.getRedisClient().scan({ match: 'scan13:*', count: 7 })) seen.push(...batch)
      const expected = groups.flatMap((g) => g.values)
      expect(seen.length).toBe(expected.length)
      expect([...seen].sort()).toEqual([...expected].sort())
    })

    test('cacheService.invalidatePattern removes the matching keys on every master and nothing else', async () => {
      const matching = perMaster(nodes, (i) => `cache:inv13:${i}`, 30)
      const nonMatching = perMaster(nodes, (i) => `cache:keep13:${i}`, 10)
      for (const { values } of matching) await cacheService.mset(values.map((k) => [k, 1]), 300)
      for (const { values } of nonMatching) await cacheService.mset(values.map((k) => [k, 1]), 300)
      // Keys without the prefix that match the pattern's text: another app's keys.
      const foreign = Array.from({ length: 12 }, (_, i) => `cache:inv13:foreign:${i}`)
      await writeRaw(nodes, foreign)
      const counts = {}
      for (const m of nodes.masters) counts[m.id] = (await nodes.scanNode(m, `${PREFIX}cache:inv13:*`)).length
      expect(Object.values(counts).every((n) => n >= 30)).toBe(true)
      expect(await cacheService.invalidatePattern('cache:inv13:*')).toBe(90)
      for (const m of nodes.masters) {
        expect(await nodes.scanNode(m, `${PREFIX}cache:inv13:*`)).toEqual([])
        const kept = nonMatching.find((g) => g.master.id === m.id).values
        expect((await nodes.scanNode(m, `${PREFIX}cache:keep13:*`)).sort()).toEqual(kept.map((k) => PREFIX + k).sort())
      }
      const foreignLeft = []
      for (const m of nodes.masters) foreignLeft.push(...(await nodes.scanNode(m, 'cache:inv13:foreign:*')))
      expect(foreignLeft.sort()).toEqual([...foreign].sort())
      // (Gone again, so that the key counts below hold only this package's keys.)
      const foreignSlots = await cluster.keySlots(foreign)
      await Promise.all(foreign.map((k, i) => nodes.client(nodes.ownerOfSlot(foreignSlots[i])).del(k)))
    })

    test('getRedisMetrics: server.mode cluster, the cluster section, keys summed over the masters', async () => {
      const metrics = await redis.getRedisMetrics()
      expect(metrics.server.mode).toBe('cluster')
      const section = metrics.cluster
      expect(section).toMatchObject({ state: 'ok', masters: 3, replicas: 3 })
      expect(section.slotsOk).toBe(SLOTS)
      expect(section.nodes).toHaveLength(6)
      expect(section.nodes.map((n) => n.address).sort()).toEqual(cluster.nodes.map((n) => n.address).sort())
      for (const n of section.nodes) {
        const master = nodes.masters.find((m) => m.address === n.address)
        expect(n.role).toBe(master ? 'master' : 'replica')
        expect(typeof n.connected).toBe('boolean')
        if (master) {
          expect(n.slots).toEqual(master.slots)
          expect(n.connected).toBe(true)
        } else {
          expect(n.slots).toEqual([])
        }
      }
      const sizes = await Promise.all(nodes.masters.map((m) => nodes.client(m).dbsize()))
      expect(metrics.totalKeys).toBe(sizes.reduce((a, b) => a + b, 0))
      expect(sizes.every((n) => n > 0)).toBe(true)
      // keyDistribution covers every master: the 30 cache:keep13 keys are spread over all three.
      expect(metrics.keyDistribution.cache).toBe(30)
    })

    test('checkRedisHealth is healthy; getConnectionStatus lists every node with its slots', async () => {
      const health = await redis.checkRedisHealth()
      expect(health).toMatchObject({ healthy: true, status: 'ready', cluster: { state: 'ok' } })
      expect(health.cluster.masters.map((m) => m.address).sort()).toEqual(nodes.masters.map((m) => m.address).sort())
      for (const m of health.cluster.masters) expect(m.healthy).toBe(true)
      const status = redis.getConnectionStatus()
      expect(status.state).toBe('ready')
      expect(status.nodes.map((n) => n.address).sort()).toEqual(cluster.nodes.map((n) => n.address).sort())
      for (const m of nodes.masters) {
        const n = status.nodes.find((x) => x.address === m.address)
        expect(n).toMatchObject({ role: 'master', failed: false, slots: m.slots })
      }
    })
  })

  describe('failover under load', () => {
    let watcher
    let victim
    beforeAll(async () => {
      cluster.flushAll()
      nodes.refresh()
      await configure(cluster, { commandTimeoutMs: COMMAND_TIMEOUT_MS })
      // Every decision a round trip (no denial answered from this process's memory).
      redis.configureRateLimiter({ denyCache: false })
    })
    afterAll(async () => {
      redis.configureRateLimiter({ denyCache: true })
      if (watcher) watcher.disconnect()
      await redis.closeRedisConnection()
      // Whatever the test's outcome, the next block gets a whole cluster.
      if (victim && !victim.server.child) {
        await cluster.restart(victim)
        await cluster.waitForHealthy()
      }
      nodes.refresh()
    })

    test('a master killed with 128 calls in flight: every call settles in time, its slots come back within 3 s, locks and limits hold', async () => {
      victim = nodes.masters[0]
      const replica = cluster.replicas().find((r) => r.master === victim.id)
      const onVictim = (key) => nodes.ownerOf(key).id === victim.id
      const LIMIT = 40

      const cacheKeys = perMaster(nodes, (i) => `cache:fo:${i}`, 8).flatMap((g) => g.values)
      const ids = perMaster(nodes, (i) => `fo-user-${i}`, 2, (id) => rateKey('h13fo', id)).flatMap((g) => g.values)
      const lockKeys = perMaster(nodes, (i) => RedisKeys.lock.resource(`fo-${i}`), 2).flatMap((g) => g.values)
      await cacheService.mset(cacheKeys.map((k) => [k, { k }]), 600)
      // Every master has a live connection before the kill.
      for (const k of cacheKeys) expect(await cacheService.get(k)).toEqual({ k })

      // An independent connection to the replica: it has the victim's keys before its master
      // dies, and it sees the promotion (polled asynchronously: no blocking harness calls under load).
      watcher = new Redis({ host: '127.0.0.1', port: replica.port, maxRetriesPerRequest: 0, ...(cluster.options.tls ? { tls: { ca: fs.readFileSync(cluster.options.tls.ca) } } : {}) })
      watcher.on('error', () => {})
      await watcher.call('READONLY')
      for (const k of cacheKeys.filter(onVictim)) {
        for (let i = 0; (await watcher.get(PREFIX + k)) === null; i++) {
          if (i > 200) throw new Error(`the replica never got ${k}`)
          await sleep(10)
        }
      }

      const active = new Map()
      const overlaps = []
      const tokens = new Map(lockKeys.map((k) => [k, []]))
      const calls = []
      let stop = false
      let inFlight = 0
      /** One call of worker `w`: what it does, on which key, whether the key is on a surviving master. */
      const oneCall = (w, round) => {
        const n = w + round * 128
        switch (w % 4) {
          case 0: {
            const k = cacheKeys[n % cacheKeys.length]
            return { kind: 'set', key: k, promise: cacheService.set(k, { k }, 600), ok: (v) => v === true }
          }
          case 1: {
            const k = cacheKeys[(n * 7) % cacheKeys.length]
            return { kind: 'get', key: k, promise: cacheService.get(k), ok: (v) => v !== null && v.k === k }
          }
          case 2: {
            const id = ids[Math.floor(w / 4) % ids.length]
            const k = rateKey('h13fo', id)
            return { kind: 'limit', key: k, promise: rateLimiter.checkLimit(id, 'h13fo', { limit: LIMIT, windowSeconds: 60 }), ok: (r) => !r.degraded && !r.cached }
          }
          default: {
            const k = lockKeys[Math.floor(w / 4) % lockKeys.length]
            const body = async ({ fencingToken }) => {
              if (active.get(k)) overlaps.push(k)
              active.set(k, true)
              tokens.get(k).push({ at: Date.now(), fencingToken })
              await sleep(10)
              active.set(k, false)
              return fencingToken
            }
            // Contenders wait their turn; on the victim a call must not outlive the bound
            // (a wait of 200 ms, then at most one attempt of commandTimeoutMs).
            const options = onVictim(k) ? { waitMs: 200, retryDelayMs: 5 } : { waitMs: 1000, retryDelayMs: 5 }
            // A 3 s lease: longer than the cluster-wide CLUSTERDOWN while the dead master is flagged
            // failed and not yet replaced (cluster-require-full-coverage), which stalls a release on any master.
            return { kind: 'lock', key: k, promise: withLock(k, body, 3, options), ok: () => true }
          }
        }
      }
      const worker = async (w) => {
        for (let round = 0; !stop; round++) {
          const startedAt = Date.now()
          const { kind, key, promise, ok } = oneCall(w, round)
          const call = { kind, key, survivor: !onVictim(key), startedAt, settledAt: null, value: undefined, error: null, ok: false }
          calls.push(call)
          inFlight++
          try {
            call.value = await promise
            call.ok = ok(call.value)
          } catch (error) {
            call.error = error
            // A lock someone else holds for the whole wait is a correct answer, not a failure.
            call.ok = kind === 'lock' && error instanceof redis.LockNotAcquiredError
          }
          call.settledAt = Date.now()
          inFlight--
          await new Promise((resolve) => setImmediate(resolve))
        }
      }
      const workers = Array.from({ length: 128 }, (_, w) => worker(w))
      let promotedAt = null
      let killedAt = null
      try {
        await sleep(300)
        // SIGKILL (sent synchronously by kill()) at a moment when every worker has its call in flight.
        for (const deadline = Date.now() + 5000; inFlight < 128 && Date.now() < deadline; ) {
          await new Promise((resolve) => setImmediate(resolve))
        }
        const inFlightAtKill = calls.filter((c) => c.settledAt === null)
        expect(inFlightAtKill.length).toBe(inFlight)
        killedAt = Date.now()
        await cluster.kill(victim)
        const exitedAt = Date.now()
        // The promotion, as the replica reports it.
        while (promotedAt === null && Date.now() - killedAt < 20000) {
          const [role] = await watcher.role().catch(() => [null])
          if (role === 'master') promotedAt = Date.now()
          else await sleep(20)
        }
        expect(promotedAt).not.toBe(null)
        // Load goes on for 3.5 s after the promotion.
        await sleep(3500)
        stop = true
        await Promise.all(workers)
        const victimCalls = calls.filter((c) => !c.survivor)
        const sample = (list) => list.slice(0, 5).map((c) => ({ kind: c.kind, key: c.key, ms: c.settledAt - c.startedAt, error: c.error && `${c.error.code} ${c.error.message}`, value: c.value }))

        // The master died with the 128 workers' calls in flight, some on its slots.
        expect(inFlightAtKill.length).toBe(128)
        expect(inFlightAtKill.filter((c) => !c.survivor).length).toBeGreaterThan(0)
        // Every call settled within commandTimeoutMs + 25 %.
        expect(sample(calls.filter((c) => c.settledAt - c.startedAt > COMMAND_TIMEOUT_MS * 1.25))).toEqual([])
        // Calls on the surviving masters all succeeded, all along.
        expect(sample(calls.filter((c) => c.survivor && !c.ok))).toEqual([])
        // The victim's slots: a call made after the master died succeeded within 3 s of the promotion,
        // and every call made from then on succeeded.
        const firstOk = victimCalls.filter((c) => c.startedAt >= exitedAt && c.ok).sort((a, b) => a.settledAt - b.settledAt)[0]
        expect(firstOk).toBeDefined()
        expect(firstOk.settledAt - promotedAt).toBeLessThanOrEqual(3000)
        expect(sample(victimCalls.filter((c) => c.startedAt >= promotedAt + 3000 && !c.ok))).toEqual([])
        expect(victimCalls.filter((c) => c.startedAt >= promotedAt + 3000).length).toBeGreaterThan(20)
        // Limiter exactness on the other masters: exactly LIMIT allowed of many more calls, none degraded.
        for (const id of ids.filter((x) => !onVictim(rateKey('h13fo', x)))) {
          const results = calls.filter((c) => c.kind === 'limit' && c.key === rateKey('h13fo', id)).map((c) => c.value)
          expect(results.length).toBeGreaterThan(LIMIT)
          expect(results.filter((r) => r.allowed).length).toBe(LIMIT)
        }
        // No lock held by two holders at once; fencing tokens grow on every lock key, across the failover too.
        expect(overlaps).toEqual([])
        for (const k of lockKeys) {
          const list = tokens.get(k)
          for (let i = 1; i < list.length; i++) expect(list[i].fencingToken).toBeGreaterThan(list[i - 1].fencingToken)
          // Taken again and again, the victim's locks after the promotion too.
          expect(list.filter((t) => t.at > promotedAt).length).toBeGreaterThan(5)
        }
      } finally {
        stop = true
        await Promise.all(workers)
      }
      // The harness agrees: the replica owns the victim's slots; the client's node list says so too.
      const after = await cluster.waitForFailover()
      expect(after.find((m) => m.id === replica.id).slots).toEqual(victim.slots)
      expect(redis.getConnectionStatus().nodes.find((n) => n.address === replica.address)).toMatchObject({ role: 'master', slots: victim.slots })
      // The old master comes back as a replica.
      await cluster.restart(victim)
      await cluster.waitForHealthy()
      nodes.refresh()
      expect(nodes.masters.map((m) => m.id)).toContain(replica.id)
    })
  })

  describe('resharding under load', () => {
    const events = []
    let unsubscribe
    beforeAll(async () => {
      cluster.flushAll()
      nodes.refresh()
      await configure(cluster)
      unsubscribe = redis.onRedisEvent((e) => events.push(e))
    })
    afterAll(async () => {
      unsubscribe()
      await redis.closeRedisConnection()
    })

    test('slots moved between masters (redis-cli reshard and a step-by-step slot with an ASK window) while calls run: none fails', async () => {
      const [from, to] = nodes.masters
      const first = from.slots[0][0]
      // Keys in the slots redis-cli moves first (the source's lowest 150), and keys elsewhere.
      const moving = []
      for (let i = 0; moving.length < 150; i++) {
        const k = `rs:m:${i}`
        const s = redis.keySlot(k)
        if (s >= first && s < first + 150) moving.push(k)
      }
      const elsewhere = spread(nodes, (i) => `rs:e:${i}`, 60)
      // One slot of the third master moved by hand, with many keys (one hash tag).
      const askFrom = nodes.masters[2]
      const askTo = to
      let tag = 0
      while (nodes.ownerOf(`rs:{ask13-${tag}}:0`).id !== askFrom.id) tag++
      const askKeys = Array.from({ length: 40 }, (_, i) => `rs:{ask13-${tag}}:${i}`)
      const all = [...moving, ...elsewhere, ...askKeys]
      await redis.getRedisClient().mset(...all.flatMap((k) => [k, `v:${k}`]))

      const failures = []
      let ops = 0
      let stop = false
      const pick = () => all[Math.floor(Math.random() * all.length)]
      const worker = async (w) => {
        while (!stop) {
          const k = pick()
          try {
            switch ((ops + w) % 5) {
              case 0: {
                const v = await redis.getRedisClient().get(k)
                if (v !== `v:${k}`) failures.push(`get ${k} → ${v}`)
                break
              }
              case 1:
                await redis.getRedisClient().set(k, `v:${k}`)
                break
              case 2: {
                const ks = [pick(), pick(), pick(), pick()]
                const vs = await redis.getRedisClient().mget(...ks)
                if (JSON.stringify(vs) !== JSON.stringify(ks.map((x) => `v:${x}`))) failures.push(`mget ${ks} → ${vs}`)
                break
              }
              case 3: {
                const r = await rateLimiter.checkLimit(k, 'h13rs', { limit: 1000000, windowSeconds: 60 })
                if (!r.allowed || r.degraded) failures.push(`checkLimit ${k} → ${JSON.stringify(r)}`)
                break
              }
              default: {
                const ks = [pick(), pick(), pick()]
                const p = redis.getRedisClient().pipeline()
                for (const x of ks) p.get(x)
                const replies = await p.exec()
                if (JSON.stringify(replies) !== JSON.stringify(ks.map((x) => [null, `v:${x}`]))) failures.push(`pipeline ${ks} → ${JSON.stringify(replies)}`)
              }
            }
          } catch (error) {
            failures.push(`${error.code} ${error.message}`)
          }
          ops++
          await new Promise((resolve) => setImmediate(resolve))
        }
      }
      const workers = Array.from({ length: 16 }, (_, w) => worker(w))
      let askingBefore = null
      let askingAfter = null
      try {
        await sleep(100)
        // Step by step: half the keys moved (an ASK window) under load, then the rest.
        const slot = redis.keySlot(askKeys[0])
        askingBefore = await commandCalls(nodes.client(askTo), 'asking')
        const migration = await cluster.migrateSlot({ slot, from: askFrom, to: askTo })
        try {
          await migration.moveKeys(20)
          await sleep(300)
          askingAfter = await commandCalls(nodes.client(askTo), 'asking')
          await migration.moveKeys()
          await migration.finish()
        } catch (error) {
          await migration.abort()
          throw error
        }
        await sleep(200)
        const moved = await cluster.reshard({ from, to, slots: 150 })
        expect(moved).toHaveLength(150)
        await sleep(300)
      } finally {
        stop = true
        await Promise.all(workers)
      }
      expect(failures.slice(0, 10)).toEqual([])
      expect(ops).toBeGreaterThan(500)
      // ASK was followed: the target of the half-moved slot was sent ASKING while the window was open.
      expect(askingAfter).toBeGreaterThan(askingBefore)
      nodes.refresh()
      // The keys are where the new map says, and the client still finds every one.
      for (const k of moving) expect(nodes.ownerOf(k).id).toBe(to.id)
      for (const k of askKeys) expect(nodes.ownerOf(k).id).toBe(askTo.id)
      expect(await onOwners(nodes, all)).toEqual(all.map((k) => `v:${k}`))
      expect(await redis.getRedisClient().mget(...all)).toEqual(all.map((k) => `v:${k}`))
      // MOVED was seen and reported, naming a node.
      const movedEvents = events.filter((e) => e.type === 'moved')
      expect(movedEvents.length).toBeGreaterThan(0)
      for (const e of movedEvents) expect(cluster.nodes.map((n) => n.address)).toContain(e.node)
    })
  })
})

// ── a TLS cluster (tls-cluster yes), with the CA passed as tls.caFile ────────

describe('a TLS cluster', () => {
  let cluster
  let nodes
  beforeAll(async () => {
    cluster = await new RedisCluster({ tls: makeTlsFiles() }).start()
    nodes = new Nodes(cluster)
    await configure(cluster)
  })
  afterAll(async () => {
    await redis.closeRedisConnection()
    if (nodes) nodes.close()
    if (cluster) await cluster.stop()
  })

  test('cacheService over many slots, each key on its owner, with tls.caFile', async () => {
    expect(cluster.url).toMatch(/^rediss:\/\//)
    expect(clientOptions(cluster).tls).toEqual({ caFile: cluster.options.tls.ca })
    const keys = spread(nodes, (i) => (i % 4 ? `cache:tls:${i}` : `cache:{tlstag${i % 8}}:${i}`), 80)
    expect(new Set(keys.map((k) => redis.keySlot(k))).size).toBeGreaterThanOrEqual(50)
    await Promise.all(keys.map((k, i) => cacheService.set(k, { i }, 300)))
    expect(await Promise.all(keys.map((k) => cacheService.get(k)))).toEqual(keys.map((_, i) => ({ i })))
    expect((await onOwners(nodes, keys)).map((raw) => JSON.parse(raw))).toEqual(keys.map((_, i) => ({ i })))
    const order = shuffled(keys)
    expect(await cacheService.mget(order)).toEqual(order.map((k) => ({ i: keys.indexOf(k) })))
    expect(await cacheService.delete([...keys.slice(0, 30), 'cache:tls:none'])).toBe(30)
    expect(await onOwners(nodes, keys.slice(0, 30), (c, k) => c.exists(k))).toEqual(keys.slice(0, 30).map(() => 0))
    const ids = perMaster(nodes, (i) => `tls-user-${i}`, 1, (id) => rateKey('h13tls', id)).flatMap((g) => g.values)
    expect(await Promise.all(ids.map((id) => concurrentLimit(id, 'h13tls', 12, 5)))).toEqual([5, 5, 5])
  })

  test('pipeline order with an error in the middle, and the cross-slot refusal, over TLS', async () => {
    const client = redis.getRedisClient()
    const p = client.pipeline()
    const keys = spread(nodes, (i) => `tlspl:${i}`, 30)
    keys.forEach((k, i) => {
      // A string where a list is wanted: WRONGTYPE, at index 15.
      if (i === 15) p.call('LPUSH', keys[0], 'x')
      else p.set(k, String(i))
    })
    keys.forEach((k) => p.get(k))
    const replies = await p.exec()
    expect(replies).toHaveLength(60)
    expect(replies[15][0]).toBeInstanceOf(redis.ReplyError)
    expect(replies[15][0].code).toBe('WRONGTYPE')
    replies.forEach(([error, reply], i) => {
      if (i === 15) return
      expect(error).toBe(null)
      expect(reply).toEqual(i < 30 ? 'OK' : i === 45 ? null : String(i - 30))
    })
    const error = await client.call('SUNIONSTORE', 'a', 'b', 'c').catch((e) => e)
    expect(error).toBeInstanceOf(TypeError)
    expect(error.code).toBe('EINVALID')
    expect(await nodes.client(nodes.ownerOf('a')).exists(PREFIX + 'a')).toBe(0)
  })
})

// ── nodes that announce addresses only a natMap resolves ─────────────────────

describe('announced addresses and natMap', () => {
  let cluster
  let nodes
  beforeAll(async () => {
    cluster = await new RedisCluster({ announce: true }).start()
    nodes = new Nodes(cluster)
  })
  afterAll(async () => {
    await redis.closeRedisConnection()
    if (nodes) nodes.close()
    if (cluster) await cluster.stop()
  })

  test('without the natMap the first command fails within its timeout with an error naming the unreachable address', async () => {
    await configure(cluster, { commandTimeoutMs: 1500 })
    const startedAt = Date.now()
    const error = await redis.getRedisClient().set('nat:first', '1').catch((e) => e)
    const ms = Date.now() - startedAt
    expect(error).toBeInstanceOf(Error)
    expect(ms).toBeLessThanOrEqual(1500 * 1.25)
    expect(error.message).toMatch(/yg-cluster\.invalid/)
    for (const m of nodes.masters) expect(await nodes.client(m).dbsize()).toBe(0)
    await redis.closeRedisConnection()
  })

  test('with the natMap every call works, each key on its real owner', async () => {
    await configure(cluster, { natMap: cluster.natMap })
    const keys = spread(nodes, (i) => `cache:nat:${i}`, 60)
    expect(new Set(keys.map((k) => redis.keySlot(k))).size).toBeGreaterThanOrEqual(50)
    await cacheService.mset(keys.map((k, i) => [k, i]), 300)
    expect(await Promise.all(keys.map((k) => cacheService.get(k)))).toEqual(keys.map((_, i) => i))
    expect((await onOwners(nodes, keys)).map(Number)).toEqual(keys.map((_, i) => i))
    const ids = perMaster(nodes, (i) => `nat-user-${i}`, 1, (id) => rateKey('h13nat', id)).flatMap((g) => g.values)
    expect(await Promise.all(ids.map((id) => concurrentLimit(id, 'h13nat', 9, 4)))).toEqual([4, 4, 4])
    // The client connects to the real addresses the map names.
    const status = redis.getConnectionStatus()
    const real = new Set(cluster.nodes.map((n) => n.address))
    for (const n of status.nodes) expect(real.has(n.address)).toBe(true)
  })
})
