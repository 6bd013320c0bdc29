'use strict'
// The private Redis Cluster harness (support/cluster.js) does what the cluster
// tests will rely on: 3 masters + 3 replicas with cluster_state:ok; hash slots
// that match the package's Rust key_slot (through the fixture a cargo test
// checks against key_slot); failover; resharding (redis-cli and step by step,
// with an ASK window); a TLS cluster; announced addresses only a natMap
// resolves. ioredis is the independent client throughout.
const fs = require('node:fs')
const path = require('node:path')
const Redis = require('ioredis')
const { RedisCluster, SLOTS } = require('./support/cluster.js')
const { makeTlsFiles, harnessTls } = require('./support/redis-server.js')

jest.setTimeout(120000)

/** ioredis options for one node or a Cluster of `cluster` (TLS when the cluster is TLS). */
function tlsOptions(cluster) {
  return cluster.options.tls ? { tls: { ca: fs.readFileSync(cluster.options.tls.ca) } } : {}
}

function nodeClient(cluster, node) {
  return new Redis({ host: '127.0.0.1', port: node.port, maxRetriesPerRequest: 0, ...tlsOptions(cluster) })
}

function clusterClient(cluster, extra = {}) {
  return new Redis.Cluster([{ host: '127.0.0.1', port: cluster.nodes[0].port }], {
    redisOptions: { ...tlsOptions(cluster) },
    ...extra,
  })
}

const owned = (ranges) => ranges.reduce((n, [a, b]) => n + b - a + 1, 0)

describe('a private cluster (the harness default: plain, or TLS under YG_TEST_TLS=1)', () => {
  let cluster
  const clients = []
  beforeAll(async () => {
    cluster = await new RedisCluster({ nodeTimeoutMs: 1000 }).start()
  })
  afterAll(async () => {
    for (const c of clients) if (c.status !== 'end') c.disconnect()
    if (cluster) await cluster.stop()
  })

  test('3 masters with one replica each, cluster_state:ok everywhere, every slot owned once', () => {
    expect(cluster.nodes).toHaveLength(6)
    expect(Boolean(cluster.options.tls)).toBe(Boolean(harnessTls()))
    for (const node of cluster.nodes) {
      expect(cluster.clusterInfo(node)).toMatchObject({ cluster_state: 'ok', cluster_slots_assigned: '16384', cluster_known_nodes: '6' })
      expect(node.id).toMatch(/^[0-9a-f]{40}$/)
    }
    const masters = cluster.masters()
    expect(masters).toHaveLength(3)
    expect(masters.reduce((n, m) => n + owned(m.slots), 0)).toBe(SLOTS)
    const replicas = cluster.replicas()
    expect(replicas).toHaveLength(3)
    expect(new Set(replicas.map((r) => r.master))).toEqual(new Set(masters.map((m) => m.id)))
    // Every node runs in its own temp dir with its own nodes.conf.
    for (const node of cluster.nodes) {
      expect(fs.existsSync(path.join(cluster.dir, `node-${node.index}`, 'nodes.conf'))).toBe(true)
    }
    expect(cluster.url).toBe(`${cluster.options.tls ? 'rediss' : 'redis'}://127.0.0.1:${cluster.nodes[0].port}`)
  })

  test('the hash slots of the Rust key_slot fixture are what CLUSTER KEYSLOT answers', async () => {
    // __test__/fixtures/cluster-keyslots.json is written and checked against
    // src/core/cluster/slot.rs key_slot() by the cargo test keyslot_fixture_is_what_key_slot_answers.
    const { vectors } = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'cluster-keyslots.json'), 'utf8'))
    expect(vectors.length).toBeGreaterThan(500)
    const keys = vectors.map((v) => Buffer.from(v.keyHex, 'hex'))
    // The tricky ones are there: empty tags, nested braces, binary, UTF-8.
    for (const tricky of ['{}', '{{a}}', 'a{b}c{d}', '{', '}{', '{}{b}', '日本{語}']) {
      expect(keys.some((k) => k.equals(Buffer.from(tricky)))).toBe(true)
    }
    expect(keys.some((k) => k.includes(0xff))).toBe(true)
    const client = nodeClient(cluster, cluster.nodes[0])
    clients.push(client)
    const pipeline = client.pipeline()
    for (const key of keys) pipeline.call('CLUSTER', 'KEYSLOT', key)
    const replies = await pipeline.exec()
    const mismatches = vectors.filter((v, i) => replies[i][0] || replies[i][1] !== v.slot)
    expect(mismatches).toEqual([])
    // Slots are spread: the fixture is not one slot repeated.
    expect(new Set(vectors.map((v) => v.slot)).size).toBeGreaterThan(400)
  })

  test('nodeFor names the master that holds a key (checked with ioredis per node)', async () => {
    const writer = clusterClient(cluster)
    clients.push(writer)
    const keys = Array.from({ length: 60 }, (_, i) => `harness:key:${i}`)
    for (const key of keys) await writer.set(key, `v-${key}`)
    const perNode = new Map()
    for (const key of keys) {
      const owner = cluster.nodeFor(key)
      if (!perNode.has(owner.id)) {
        const c = nodeClient(cluster, owner)
        clients.push(c)
        perNode.set(owner.id, c)
      }
      expect(await perNode.get(owner.id).get(key)).toBe(`v-${key}`)
    }
    expect(perNode.size).toBe(3)
    // Another master refuses the key with MOVED to the owner.
    const key = keys[0]
    const other = cluster.masters().find((m) => m.id !== cluster.nodeFor(key).id)
    const c = nodeClient(cluster, other)
    clients.push(c)
    await expect(c.get(key)).rejects.toThrow(new RegExp(`^MOVED ${cluster.keySlot(key)} 127\\.0\\.0\\.1:${cluster.nodeFor(key).port}$`))
    // flushAll empties every master of this cluster.
    cluster.flushAll()
    for (const m of cluster.masters()) expect(cluster.cli(m, 'DBSIZE')).toBe('0')
  })

  test('attach() gives another process the same view', () => {
    const attached = RedisCluster.attach(JSON.parse(JSON.stringify(cluster.describe())))
    expect(attached.masters().map((m) => m.id)).toEqual(cluster.masters().map((m) => m.id))
    expect(attached.nodeFor('some-key').id).toBe(cluster.nodeFor('some-key').id)
    expect(attached.nodes.every((n) => typeof n.server.child.pid === 'number')).toBe(true)
  })

  // Runs before the resharding tests. When the victim was the target of the
  // resharding, Redis 7.0 (this machine's) left the last slot redis-cli had
  // moved without an owner in one master's view after the rejoin, for good:
  // once in CI and once in 32 runs here under load. Slot moves bump the
  // epoch without consensus, and 7.0's cluster bus does not always heal a
  // view after that (later Redis changed how a dropped slot claim is
  // handled: redis/redis#12344, #12564). This test is about failover and
  // rejoin, so it starts from a cluster whose slots were never moved.
  test('a killed master is replaced by its replica within seconds, and rejoins as a replica', async () => {
    const writer = clusterClient(cluster)
    clients.push(writer)
    const victim = cluster.masters()[0]
    const [a, b] = victim.slots[0]
    const candidates = Array.from({ length: 200 }, (_, i) => `fo:${i}`)
    const candidateSlots = await cluster.keySlots(candidates)
    const key = candidates.find((_, i) => candidateSlots[i] >= a && candidateSlots[i] <= b)
    await writer.set(key, 'before')
    // The replica has it before the master dies.
    expect(cluster.cli(victim, 'WAIT', 1, 2000)).toBe('1')
    const replica = cluster.replicas().find((r) => r.master === victim.id)
    const slots = victim.slots
    const started = Date.now()
    await cluster.killMaster(victim)
    expect(victim.server.child).toBe(null)
    const masters = await cluster.waitForFailover()
    const tookMs = Date.now() - started
    expect(tookMs).toBeLessThan(15000)
    const promoted = masters.find((m) => m.id === replica.id)
    expect(promoted).toBeDefined()
    expect(promoted.slots).toEqual(slots)
    expect(masters.map((m) => m.id)).not.toContain(victim.id)
    const c = nodeClient(cluster, promoted)
    clients.push(c)
    expect(await c.get(key)).toBe('before')
    await cluster.restart(victim)
    // Rejoining takes a full resync from the promoted replica (nothing is kept
    // on disk); under a loaded host that has taken longer than the default 30 s.
    await cluster.waitForHealthy(60000)
    expect(cluster.replicas().find((r) => r.id === victim.id).master).toBe(replica.id)
    expect(cluster.masters()).toHaveLength(3)
  })

  test('resharding with redis-cli moves slots and their keys', async () => {
    const [from, to] = cluster.masters()
    const before = { from: owned(from.slots), to: owned(to.slots) }
    // Keys in the first slots of `from`, which redis-cli moves first.
    const first = from.slots[0][0]
    const writer = clusterClient(cluster)
    clients.push(writer)
    const candidates = Array.from({ length: 20000 }, (_, i) => `reshard:${i}`)
    const slots = await cluster.keySlots(candidates)
    const keys = candidates.filter((_, i) => slots[i] >= first && slots[i] < first + 50).slice(0, 20)
    expect(keys.length).toBe(20)
    for (const key of keys) await writer.set(key, key)
    const moved = await cluster.reshard({ from, to, slots: 50 })
    expect(moved).toHaveLength(50)
    const after = cluster.masters()
    expect(owned(after.find((m) => m.id === from.id).slots)).toBe(before.from - 50)
    expect(owned(after.find((m) => m.id === to.id).slots)).toBe(before.to + 50)
    const target = nodeClient(cluster, to)
    clients.push(target)
    for (const key of keys) {
      expect(cluster.nodeFor(key).id).toBe(to.id)
      expect(await target.get(key)).toBe(key)
    }
  })

  test('a slot moved step by step opens an ASK window, then MOVED', async () => {
    // Keys that share one hash tag share its slot.
    const slot = cluster.keySlot('ask-window')
    const from = cluster.nodeFor(slot)
    const to = cluster.masters().find((m) => m.id !== from.id)
    const keys = Array.from({ length: 6 }, (_, i) => `ask:{ask-window}:${i}`)
    expect(await cluster.keySlots(keys)).toEqual(keys.map(() => slot))
    const source = nodeClient(cluster, from)
    const target = nodeClient(cluster, to)
    clients.push(source, target)
    for (const key of keys) await source.set(key, key)
    const migration = await cluster.migrateSlot({ slot, from, to })
    try {
      expect(await migration.moveKeys(3)).toBe(3)
      expect(migration.keysLeft()).toBe(3)
      const left = cluster.cli(from, 'CLUSTER', 'GETKEYSINSLOT', slot, 100).split('\n')
      const movedKey = keys.find((k) => !left.includes(k))
      const stayed = keys.find((k) => left.includes(k))
      // A key already moved: the source answers ASK; the target serves it only after ASKING.
      await expect(source.get(movedKey)).rejects.toThrow(new RegExp(`^ASK ${slot} 127\\.0\\.0\\.1:${to.port}$`))
      await expect(target.get(movedKey)).rejects.toThrow(new RegExp(`^MOVED ${slot} 127\\.0\\.0\\.1:${from.port}$`))
      const [[, asking], [, value]] = await target.pipeline().call('ASKING').get(movedKey).exec()
      expect([asking, value]).toEqual(['OK', movedKey])
      // A key not moved yet is still served by the source.
      expect(await source.get(stayed)).toBe(stayed)
      await migration.moveKeys()
      expect(migration.keysLeft()).toBe(0)
      await migration.finish()
    } catch (error) {
      await migration.abort()
      throw error
    }
    await cluster.waitForHealthy()
    await expect(source.get(keys[0])).rejects.toThrow(new RegExp(`^MOVED ${slot} 127\\.0\\.0\\.1:${to.port}$`))
    for (const key of keys) expect(await target.get(key)).toBe(key)
  })
})

describe('the YG_TEST_CLUSTER switch of the jest global set-up', () => {
  test('on: the run REDIS_URL is a private cluster this file can attach to; off: nothing cluster-related is set', () => {
    if (process.env.YG_TEST_CLUSTER === '1' && process.env.YG_TEST_CLUSTER_INFO) {
      const suite = RedisCluster.attach()
      expect(process.env.REDIS_CLUSTER).toBe('true')
      expect(process.env.REDIS_URL).toBe(suite.url)
      expect(process.env.REDIS_CLUSTER_NODES.split(',')).toHaveLength(6)
      expect(suite.masters()).toHaveLength(3)
      expect(suite.clusterInfo(suite.nodes[0]).cluster_state).toBe('ok')
    } else {
      expect(process.env.YG_TEST_CLUSTER_INFO).toBeUndefined()
      expect(process.env.REDIS_CLUSTER_NODES).toBeUndefined()
      expect(['true', '1']).not.toContain(process.env.REDIS_CLUSTER)
    }
  })
})

describe('a TLS cluster', () => {
  let cluster
  const clients = []
  beforeAll(async () => {
    cluster = await new RedisCluster({ tls: makeTlsFiles() }).start()
  })
  afterAll(async () => {
    for (const c of clients) if (c.status !== 'end') c.disconnect()
    if (cluster) await cluster.stop()
  })

  test('forms over TLS (bus and replication too) and serves only TLS', async () => {
    expect(cluster.url).toMatch(/^rediss:\/\//)
    for (const node of cluster.nodes) {
      expect(cluster.clusterInfo(node).cluster_state).toBe('ok')
      expect(cluster.cli(node, 'CONFIG', 'GET', 'tls-cluster')).toBe('tls-cluster\nyes')
      expect(cluster.cli(node, 'CONFIG', 'GET', 'port')).toBe('port\n0')
    }
    const shards = cluster.cli(cluster.nodes[0], 'CLUSTER', 'SHARDS')
    expect(shards).toContain('tls-port')
    const client = clusterClient(cluster)
    clients.push(client)
    for (let i = 0; i < 30; i++) await client.set(`tls:${i}`, String(i))
    for (let i = 0; i < 30; i++) expect(await client.get(`tls:${i}`)).toBe(String(i))
    // A plain client on a node's port gets no answer it can use.
    const plain = new Redis({ host: '127.0.0.1', port: cluster.nodes[0].port, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true })
    clients.push(plain)
    await expect(plain.connect().then(() => plain.ping())).rejects.toThrow()
  })
})

describe('announced addresses only a natMap resolves', () => {
  let cluster
  const clients = []
  beforeAll(async () => {
    cluster = await new RedisCluster({ announce: true }).start()
  })
  afterAll(async () => {
    for (const c of clients) if (c.status !== 'end') c.disconnect()
    if (cluster) await cluster.stop()
  })

  test('the cluster announces .invalid hostnames and ports nothing listens on; the natMap maps them back', async () => {
    const real = new Set(cluster.nodes.map((n) => `127.0.0.1:${n.port}`))
    const seed = nodeClient(cluster, cluster.nodes[0])
    clients.push(seed)
    const slots = await seed.call('CLUSTER', 'SLOTS')
    const announced = slots.flatMap(([, , ...nodes]) => nodes.map(([host, port]) => `${host}:${port}`))
    expect(announced.length).toBeGreaterThanOrEqual(3)
    for (const address of announced) {
      expect(address).toMatch(/^node-\d\.yg-cluster\.invalid:\d+$/)
      expect(real.has(address)).toBe(false)
      expect(cluster.natMap[address]).toBeDefined()
      expect(real.has(`${cluster.natMap[address].host}:${cluster.natMap[address].port}`)).toBe(true)
    }
    // Every node is in the map, each to its own real port.
    expect(Object.keys(cluster.natMap)).toHaveLength(6)
    expect(new Set(Object.values(cluster.natMap).map((a) => a.port)).size).toBe(6)
    // Redirects name the announced address too.
    const key = 'nat:key'
    const other = cluster.masters().find((m) => m.id !== cluster.nodeFor(key).id)
    const c = nodeClient(cluster, other)
    clients.push(c)
    const owner = cluster.nodeFor(key)
    await expect(c.get(key)).rejects.toThrow(`MOVED ${cluster.keySlot(key)} ${owner.announced.host}:${owner.announced.port}`)
    // The announced addresses themselves are unreachable.
    const direct = new Redis({ host: owner.announced.host, port: owner.announced.port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    clients.push(direct)
    await expect(direct.connect()).rejects.toThrow()
  })

  test('ioredis Cluster works through the natMap (and every key lands on its real owner)', async () => {
    const client = clusterClient(cluster, { natMap: cluster.natMap })
    clients.push(client)
    for (let i = 0; i < 40; i++) await client.set(`nat:${i}`, String(i))
    const perNode = new Set()
    for (let i = 0; i < 40; i++) {
      const owner = cluster.nodeFor(`nat:${i}`)
      perNode.add(owner.id)
      expect(cluster.cli(owner, 'GET', `nat:${i}`)).toBe(String(i))
    }
    expect(perNode.size).toBe(3)
  })
})
