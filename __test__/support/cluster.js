'use strict'
// A private Redis Cluster for the tests: 3 masters + 3 replicas (by default),
// each a `redis-server --cluster-enabled yes` on free ports of 127.0.0.1 with
// its own temp dir for nodes.conf, never persisting data, created with
// `redis-cli --cluster create … --cluster-yes`, and stopped by pid (also on
// process exit, through redis-server.js's `live` set). Nothing here touches
// the machine's shared Redis on 6379.
//
// Options:
// - `tls` (default: the harness's TLS switch, YG_TEST_TLS): every node serves
//   TLS only, and the cluster bus and replication run over TLS too
//   (`tls-cluster yes`, `tls-replication yes`).
// - `announce: true`: once the cluster is formed, every node announces an
//   address only a natMap resolves — the hostname `node-<i>.yg-cluster.invalid`
//   (`.invalid` never resolves, RFC 2606) as its preferred endpoint, and a client
//   port nothing listens on. `cluster.natMap` maps each announced
//   `host:port` to the real `127.0.0.1:port`. (An unreachable announced IP
//   such as 10.255.0.1 is not possible on one machine: the cluster bus itself
//   connects to the announced IP, so the nodes would lose each other.)
// - `masters` (3), `replicasPerMaster` (1), `nodeTimeoutMs` (1500: a failed
//   master is replaced within a few seconds), `args` (extra redis-server args).
//
// Node objects: `{ index, host: '127.0.0.1', port, busPort, id, address
// ('127.0.0.1:port'), announced: { host, port } | null, server (a RedisServer) }`.

const { execFile, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const tlsModule = require('node:tls')
const { RedisServer, freePort, harnessTls } = require('./redis-server.js')

const REDIS_CLI = process.env.REDIS_CLI_BIN || 'redis-cli'
const SLOTS = 16384

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Parses `CLUSTER NODES` text into `[{ id, address, port, flags, master, epoch, link, slots: [[a, b]…], migrating }]`. */
function parseClusterNodes(text) {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [id, addr, flags, master, , , epoch, link, ...slotWords] = line.split(' ')
      const hostPort = addr.split('@')[0]
      const colon = hostPort.lastIndexOf(':')
      const slots = []
      const migrating = []
      for (const word of slotWords) {
        if (word.startsWith('[')) migrating.push(word)
        else {
          const [a, b] = word.split('-').map(Number)
          slots.push([a, b ?? a])
        }
      }
      return {
        id,
        address: hostPort,
        host: hostPort.slice(0, colon),
        port: Number(hostPort.slice(colon + 1)),
        flags: flags.split(','),
        master: master === '-' ? null : master,
        epoch: Number(epoch),
        link,
        slots,
        migrating,
      }
    })
}

/** `key: value` lines (INFO, CLUSTER INFO) as an object. */
function parseInfo(text) {
  const out = {}
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':')
    if (at > 0 && !line.startsWith('#')) out[line.slice(0, at)] = line.slice(at + 1).trim()
  }
  return out
}


/**
 * Parses one RESP2 reply at `at`: `{ value, end }`, or null while incomplete.
 * Strings come back as Buffers, errors as Error objects, nil as null.
 */
function parseReply(buf, at) {
  const cr = buf.indexOf('\r\n', at)
  if (cr < 0) return null
  const head = buf.toString('latin1', at + 1, cr)
  const next = cr + 2
  switch (String.fromCharCode(buf[at])) {
    case '+':
      return { value: Buffer.from(head, 'latin1'), end: next }
    case '-':
      return { value: new Error(head), end: next }
    case ':':
      return { value: Number(head), end: next }
    case '$': {
      const len = Number(head)
      if (len < 0) return { value: null, end: next }
      return buf.length >= next + len + 2 ? { value: buf.subarray(next, next + len), end: next + len + 2 } : null
    }
    case '*': {
      const count = Number(head)
      if (count < 0) return { value: null, end: next }
      const items = []
      let pos = next
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, pos)
        if (!item) return null
        items.push(item.value)
        pos = item.end
      }
      return { value: items, end: pos }
    }
    default:
      throw new Error(`not RESP2 at byte ${at}: 0x${buf[at].toString(16)}`)
  }
}

function encodeCommand(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)]
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg))
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'))
  }
  return Buffer.concat(parts)
}

/**
 * Sends `commands` pipelined on one fresh connection to 127.0.0.1:`port`
 * (TLS with `tls.ca` when given); resolves `[{ raw, value }]`, one per command.
 */
function rawPipeline({ port, tls }, commands, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    const socket = tls
      ? tlsModule.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(tls.ca) })
      : net.connect({ host: '127.0.0.1', port })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete reply from 127.0.0.1:${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    let buf = Buffer.alloc(0)
    let at = 0
    const replies = []
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on(tls ? 'secureConnect' : 'connect', () => socket.write(Buffer.concat(commands.map(encodeCommand))))
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        const reply = parseReply(buf, at)
        if (!reply) break
        replies.push({ raw: buf.subarray(at, reply.end), value: reply.value })
        at = reply.end
      }
      if (replies.length === commands.length) {
        clearTimeout(timer)
        socket.destroy()
        resolve(replies)
      }
    })
  })
}

/** For a timeout's message: the slots a node's view (`entries`) leaves without an owner, and that node's own line (role, open migrations). */
function unowned(entries) {
  const owned = new Uint8Array(SLOTS)
  for (const e of entries) for (const [a, b] of e.slots) owned.fill(1, a, b + 1)
  const missing = []
  for (let slot = 0; slot < SLOTS && missing.length < 8; slot++) if (!owned[slot]) missing.push(slot)
  const myself = entries.find((e) => e.flags.includes('myself'))
  const self = myself ? `${myself.id} ${myself.flags.join(',')}${myself.master ? ` of ${myself.master}` : ''}${myself.migrating.length ? ` migrating ${JSON.stringify(myself.migrating)}` : ''}` : '?'
  return `; no owner in its view: ${missing.length ? missing.join(',') : 'none'}; it is ${self}`
}

class RedisCluster {
  /**
   * @param {object} [options]
   * @param {number} [options.masters]
   * @param {number} [options.replicasPerMaster]
   * @param {number} [options.nodeTimeoutMs]
   * @param {{cert: string, key: string, ca: string} | false} [options.tls]
   * @param {boolean} [options.announce]
   * @param {string[]} [options.args]
   */
  constructor(options = {}) {
    const tls = options.tls === undefined ? harnessTls() : options.tls
    this.options = {
      masters: 3,
      replicasPerMaster: 1,
      nodeTimeoutMs: 1500,
      args: [],
      announce: false,
      ...options,
      tls: tls || null,
    }
    this.nodes = []
    this.dir = null
    this.natMap = null
  }

  /** The seed URL (the first node's real address): `redis://127.0.0.1:port` or `rediss://…`. */
  get url() {
    return `${this.options.tls ? 'rediss' : 'redis'}://127.0.0.1:${this.nodes[0].port}`
  }

  /** Every node's real address, `host:port,host:port…` (as REDIS_CLUSTER_NODES takes them). */
  get seedList() {
    return this.nodes.map((n) => n.address).join(',')
  }

  async start() {
    if (this.nodes.length) return this
    const { masters, replicasPerMaster, nodeTimeoutMs, tls, args } = this.options
    const count = masters * (1 + replicasPerMaster)
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yg-redis-cluster-'))
    try {
      // Ports are free when chosen, but another socket may take one before
      // the node binds it: a node that fails to bind gets new ports and tries again.
      const startNode = async (index) => {
        for (let attempt = 1; ; attempt++) {
          const port = await freePort()
          let busPort = await freePort()
          while (busPort === port) busPort = await freePort()
          const nodeDir = path.join(this.dir, `node-${index}`)
          fs.mkdirSync(nodeDir, { recursive: true })
          const nodeArgs = [
            '--cluster-enabled', 'yes',
            '--cluster-config-file', path.join(nodeDir, 'nodes.conf'),
            '--cluster-node-timeout', String(nodeTimeoutMs),
            '--cluster-port', String(busPort),
            '--dir', nodeDir,
            ...(tls ? ['--tls-cluster', 'yes', '--tls-replication', 'yes'] : []),
            ...args,
          ]
          const server = new RedisServer({ port, args: nodeArgs, tls: tls || false })
          const node = { index, host: '127.0.0.1', port, busPort, address: `127.0.0.1:${port}`, id: null, announced: null, server }
          this.nodes[index] = node
          try {
            await server.start()
            return
          } catch (error) {
            if (attempt >= 5 || !/Address already in use/.test(String(error && error.message))) throw error
            fs.rmSync(path.join(nodeDir, 'nodes.conf'), { force: true })
          }
        }
      }
      await Promise.all(Array.from({ length: count }, (_, index) => startNode(index)))
      for (const node of this.nodes) node.id = this.cli(node, 'CLUSTER', 'MYID')
      await this.#redisCli([
        '--cluster', 'create', ...this.nodes.map((n) => n.address),
        '--cluster-replicas', String(replicasPerMaster), '--cluster-yes',
      ])
      await this.waitForHealthy()
      if (this.options.announce) await this.#announce()
      return this
    } catch (error) {
      await this.stop()
      throw error
    }
  }

  /** Makes every node announce an address only `this.natMap` resolves (see the header). */
  async #announce() {
    this.natMap = {}
    for (const node of this.nodes) {
      let fake = await freePort()
      while (this.nodes.some((n) => n.port === fake || n.busPort === fake)) fake = await freePort()
      const host = `node-${node.index}.yg-cluster.invalid`
      node.announced = { host, port: fake }
      this.natMap[`${host}:${fake}`] = { host: '127.0.0.1', port: node.port }
      this.cli(node, 'CONFIG', 'SET', 'cluster-announce-hostname', host)
      this.cli(node, 'CONFIG', 'SET', 'cluster-preferred-endpoint-type', 'hostname')
      // The bus keeps the real port; only the client port is announced falsely.
      this.cli(node, 'CONFIG', 'SET', 'cluster-announce-bus-port', String(node.busPort))
      this.cli(node, 'CONFIG', 'SET', this.options.tls ? 'cluster-announce-tls-port' : 'cluster-announce-port', String(fake))
    }
    // Every node has heard every other node's announcement.
    await this.#until(() => {
      for (const node of this.live()) {
        const shards = this.cli(node, 'CLUSTER', 'SHARDS')
        for (const other of this.nodes) {
          if (!shards.includes(other.announced.host) || !shards.includes(String(other.announced.port))) return false
        }
      }
      return true
    }, 15000, 'every node to learn the announced addresses')
  }

  /** The nodes whose process runs. */
  live() {
    return this.nodes.filter((n) => n.server.child)
  }

  /** The harness node for a node object, index, id, `host:port` (real or announced) or port. */
  node(which) {
    if (which && typeof which === 'object' && this.nodes.includes(which)) return which
    const found = this.nodes.find((n) =>
      typeof which === 'number'
        ? n.index === which || n.port === which
        : n.id === which || n.address === which ||
          (n.announced && `${n.announced.host}:${n.announced.port}` === which) ||
          (which && typeof which === 'object' && which.id === n.id),
    )
    if (!found) throw new Error(`no node ${JSON.stringify(which)} in this cluster`)
    return found
  }

  #cliArgs(node) {
    const tls = this.options.tls ? ['--tls', '--cacert', this.options.tls.ca] : []
    return [...tls, '-h', '127.0.0.1', '-p', String(node.port)]
  }

  /** Runs redis-cli against one node (outside any client under test); resolves its trimmed output. */
  cli(which, ...args) {
    return execFileSync(REDIS_CLI, [...this.#cliArgs(this.node(which)), ...args.map(String)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 10000,
    }).trim()
  }

  /** redis-cli --cluster …, async (it can take seconds), against the first live node's address. */
  #redisCli(args) {
    const tls = this.options.tls ? ['--tls', '--cacert', this.options.tls.ca] : []
    return new Promise((resolve, reject) => {
      execFile(REDIS_CLI, [...tls, ...args], { encoding: 'utf8', timeout: 120000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`redis-cli ${args.slice(0, 2).join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`))
        else if (/\[ERR\]/.test(stdout)) reject(new Error(`redis-cli ${args.slice(0, 2).join(' ')} reported an error:\n${stdout}`))
        else resolve(stdout)
      })
    })
  }

  /** CLUSTER INFO of one node, as an object. */
  clusterInfo(which) {
    return parseInfo(this.cli(which, 'CLUSTER', 'INFO'))
  }

  /** The cluster as one live node sees it: parsed CLUSTER NODES (see parseClusterNodes). */
  view(which = this.live()[0]) {
    return parseClusterNodes(this.cli(which, 'CLUSTER', 'NODES'))
  }

  #withSlots(entry) {
    const node = this.nodes.find((n) => n.id === entry.id)
    return node ? Object.assign(node, { slots: entry.slots }) : null
  }

  /** The current masters that own slots (harness nodes with `slots`), in slot order. */
  masters() {
    return this.view()
      .filter((e) => e.flags.includes('master') && !e.flags.includes('fail') && e.slots.length)
      .sort((a, b) => a.slots[0][0] - b.slots[0][0])
      .map((e) => this.#withSlots(e))
      .filter(Boolean)
  }

  /** The current replicas (harness nodes with `master`: the id they replicate). */
  replicas() {
    return this.view()
      .filter((e) => e.flags.includes('slave') && !e.flags.includes('fail'))
      .map((e) => Object.assign(this.node(e.id), { master: e.master }))
  }

  /** The hash slot of `key` (a string or Buffer), by the server's CLUSTER KEYSLOT. */
  keySlot(key) {
    return Number(this.cli(this.live()[0], 'CLUSTER', 'KEYSLOT', key))
  }

  /** Commands pipelined to one node on a fresh connection; resolves their replies (Buffers, numbers, arrays, Errors). */
  async pipeline(which, commands) {
    const node = this.node(which)
    const replies = await rawPipeline({ port: node.port, tls: this.options.tls }, commands)
    return replies.map((r) => r.value)
  }

  /** The hash slots of many keys at once (CLUSTER KEYSLOT, pipelined). */
  async keySlots(keys) {
    return this.pipeline(this.live()[0], keys.map((k) => ['CLUSTER', 'KEYSLOT', k]))
  }

  /** The master that owns `key`'s slot now. */
  nodeFor(key) {
    const slot = typeof key === 'number' ? key : this.keySlot(key)
    const owner = this.masters().find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b))
    if (!owner) throw new Error(`no master owns slot ${slot}`)
    return owner
  }

  /**
   * Waits until every live node says cluster_state:ok, knows every live node,
   * and all of them agree on who owns each of the 16384 slots (no open migration).
   */
  async waitForHealthy(timeoutMs = 30000) {
    await this.#until(() => this.#agreement(), timeoutMs, 'cluster_state:ok and one slot map on every node')
  }

  /** True when the live nodes agree (see waitForHealthy); else a string saying which node is not there yet, and why. */
  #agreement() {
    let reference = null
    for (const node of this.live()) {
      const info = this.clusterInfo(node)
      const entries = this.view(node)
      if (info.cluster_state !== 'ok' || Number(info.cluster_slots_assigned) !== SLOTS) {
        return `${node.address}: cluster_state ${info.cluster_state}, ${info.cluster_slots_assigned} slots assigned` + unowned(entries)
      }
      const alive = entries.filter((e) => !e.flags.includes('fail') && !e.flags.includes('fail?') && !e.flags.includes('handshake'))
      if (alive.length < this.live().length) return `${node.address}: sees ${alive.length} of ${this.live().length} live nodes`
      if (entries.some((e) => e.migrating.length)) return `${node.address}: a slot migration is open`
      // Every node has its role: a master with slots, or a replica of one.
      const roleless = alive.find((e) => !(e.flags.includes('slave') && e.master) && !(e.flags.includes('master') && e.slots.length))
      if (roleless) return `${node.address}: ${roleless.id} is ${roleless.flags.join(',')} with no slots and no master`
      // A replica has synced with its master (else it could not take over).
      const myself = entries.find((e) => e.flags.includes('myself'))
      if (myself.flags.includes('slave')) {
        const link = parseInfo(this.cli(node, 'INFO', 'replication')).master_link_status
        if (link !== 'up') return `${node.address}: replica whose master link is ${link}`
      }
      const owners = entries
        .filter((e) => e.flags.includes('master') && e.slots.length)
        .map((e) => `${e.id}:${e.slots.map((r) => r.join('-')).join(',')}`)
        .sort()
        .join(' ')
      if (reference === null) reference = owners
      else if (reference !== owners) return `${node.address}: its slot map differs from ${this.live()[0].address}'s`
    }
    return reference !== null || 'no live node'
  }

  /** Polls `check` every 100 ms until it returns true; a string it returns says why not, for the timeout's message. */
  async #until(check, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs
    let lastError = null
    let lastReason = null
    for (;;) {
      try {
        const result = check()
        if (result === true) return
        if (typeof result === 'string') lastReason = result
      } catch (error) {
        lastError = error
      }
      if (Date.now() > deadline) {
        const why = [lastReason && `last seen: ${lastReason}`, lastError && `last error: ${lastError.message}`].filter(Boolean).join('; ')
        throw new Error(`cluster: timed out after ${timeoutMs} ms waiting for ${what}${why ? ` (${why})` : ''}`)
      }
      await sleep(100)
    }
  }

  /**
   * Kills a master with SIGKILL (a crash: no goodbye to the bus); `which` is a
   * node, its address or id; default: the master of the first slot range.
   * Resolves the killed node (with the `slots` it owned).
   */
  async killMaster(which) {
    const node = which === undefined ? this.masters()[0] : this.node(which)
    const owned = this.masters().find((m) => m.id === node.id)
    if (!owned) throw new Error(`${node.address} is not a master that owns slots`)
    await this.kill(node)
    return node
  }

  /** Kills any node with SIGKILL and waits for its process to exit. */
  async kill(which) {
    const node = this.node(which)
    const child = node.server.child
    if (!child) return node
    node.server.child = null
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise((resolve) => {
        child.once('exit', resolve)
        child.kill('SIGKILL')
      })
    }
    return node
  }

  /**
   * Waits until every slot is served by a live master again (a replica
   * promoted) and the live nodes agree; resolves the masters.
   */
  async waitForFailover(timeoutMs = 20000) {
    await this.#until(() => {
      const liveIds = new Set(this.live().map((n) => n.id))
      const covered = this.masters().filter((m) => liveIds.has(m.id))
      let slots = 0
      for (const m of covered) for (const [a, b] of m.slots) slots += b - a + 1
      if (slots !== SLOTS) return `live masters cover ${slots} of ${SLOTS} slots`
      return this.#agreement()
    }, timeoutMs, 'a replica to take over the dead master\'s slots')
    return this.masters()
  }

  /** Starts a stopped or killed node again on its port with its nodes.conf (it rejoins, as a replica if it was replaced). */
  async restart(which) {
    const node = this.node(which)
    if (node.server.child) await node.server.stop()
    await node.server.start()
    if (node.announced) {
      // CONFIG SET does not survive a restart (nothing persists): announce again.
      this.cli(node, 'CONFIG', 'SET', 'cluster-announce-hostname', node.announced.host)
      this.cli(node, 'CONFIG', 'SET', 'cluster-preferred-endpoint-type', 'hostname')
      this.cli(node, 'CONFIG', 'SET', 'cluster-announce-bus-port', String(node.busPort))
      this.cli(node, 'CONFIG', 'SET', this.options.tls ? 'cluster-announce-tls-port' : 'cluster-announce-port', String(node.announced.port))
    }
    return node
  }

  /**
   * Moves `slots` slots from master `from` to master `to` (nodes, addresses or
   * ids; default: the first master to the second), keys included.
   * `via: 'redis-cli'` (the default unless `announce`) runs `redis-cli --cluster
   * reshard … --cluster-yes`; `via: 'manual'` runs `migrateSlot` for each slot.
   * Resolves the slot numbers moved.
   */
  async reshard({ from, to, slots = 100, via } = {}) {
    const masters = this.masters()
    const source = from === undefined ? masters[0] : this.node(from)
    const target = to === undefined ? masters.find((m) => m.id !== source.id) : this.node(to)
    const owned = []
    for (const [a, b] of this.masters().find((m) => m.id === source.id).slots) {
      for (let s = a; s <= b && owned.length < slots; s++) owned.push(s)
    }
    if ((via ?? (this.options.announce ? 'manual' : 'redis-cli')) === 'redis-cli') {
      await this.#redisCli([
        '--cluster', 'reshard', source.address,
        '--cluster-from', source.id, '--cluster-to', target.id,
        '--cluster-slots', String(slots), '--cluster-yes', '--cluster-pipeline', '100',
      ])
    } else {
      for (const slot of owned) {
        const migration = await this.migrateSlot({ slot, from: source, to: target })
        await migration.moveKeys(Infinity)
        await migration.finish()
      }
    }
    await this.waitForHealthy()
    return owned
  }

  /**
   * Starts moving one slot from `from` to `to` the way redis-cli does, step by
   * step, so that a test can pause in the middle: while keys are split between
   * the two nodes, the source answers `-ASK` for keys it no longer has.
   * Resolves `{ moveKeys(n): the number moved, keysLeft(), finish(), abort() }`.
   */
  async migrateSlot({ slot, from, to }) {
    const source = this.node(from)
    const target = this.node(to)
    this.cli(target, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id)
    this.cli(source, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id)
    const keysLeft = () => Number(this.cli(source, 'CLUSTER', 'COUNTKEYSINSLOT', slot))
    return {
      keysLeft,
      moveKeys: async (n = Infinity) => {
        let moved = 0
        while (moved < n) {
          const batch = Math.min(100, n - moved)
          // Keys may be binary: ask for them through --no-raw-less output, one per line.
          const keys = this.cli(source, '--raw', 'CLUSTER', 'GETKEYSINSLOT', slot, batch).split('\n').filter(Boolean)
          if (!keys.length) break
          const reply = this.cli(source, 'MIGRATE', '127.0.0.1', target.port, '', 0, 5000, 'REPLACE', 'KEYS', ...keys)
          if (reply !== 'OK') throw new Error(`MIGRATE of slot ${slot} failed: ${reply}`)
          moved += keys.length
          await sleep(0)
        }
        return moved
      },
      finish: async () => {
        // The order redis-cli uses: the target first, so the slot is never ownerless.
        this.cli(target, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id)
        this.cli(source, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id)
        for (const m of this.masters()) {
          if (m.id !== source.id && m.id !== target.id) this.cli(m, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id)
        }
      },
      abort: async () => {
        this.cli(target, 'CLUSTER', 'SETSLOT', slot, 'STABLE')
        this.cli(source, 'CLUSTER', 'SETSLOT', slot, 'STABLE')
      },
    }
  }

  /** FLUSHALL on every live master of THIS cluster (replicas follow). */
  flushAll() {
    for (const m of this.masters()) {
      if (m.server.child) this.cli(m, 'FLUSHALL')
    }
  }

  /** Everything a process that did not start the cluster needs to inspect it (see `RedisCluster.attach`). */
  describe() {
    return {
      options: { ...this.options },
      dir: this.dir,
      natMap: this.natMap,
      nodes: this.nodes.map(({ index, host, port, busPort, address, id, announced, server }) => ({
        index, host, port, busPort, address, id, announced, pid: server.child ? server.child.pid : null,
      })),
    }
  }

  /**
   * A handle on a cluster another process started (e.g. jest's global set-up
   * under YG_TEST_CLUSTER=1, which publishes `describe()` in YG_TEST_CLUSTER_INFO):
   * cli, masters, replicas, nodeFor, flushAll, waitForHealthy work; kill and
   * killMaster signal the pid; restart starts a process owned by this one.
   */
  static attach(description = JSON.parse(process.env.YG_TEST_CLUSTER_INFO || 'null')) {
    if (!description) throw new Error('no cluster to attach to (YG_TEST_CLUSTER_INFO is not set)')
    const cluster = new RedisCluster(description.options)
    cluster.dir = description.dir
    cluster.natMap = description.natMap
    cluster.nodes = description.nodes.map((n) => {
      const server = new RedisServer({
        port: n.port,
        tls: cluster.options.tls || false,
        args: [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', path.join(description.dir, `node-${n.index}`, 'nodes.conf'),
          '--cluster-node-timeout', String(cluster.options.nodeTimeoutMs),
          '--cluster-port', String(n.busPort),
          '--dir', path.join(description.dir, `node-${n.index}`),
          ...(cluster.options.tls ? ['--tls-cluster', 'yes', '--tls-replication', 'yes'] : []),
          ...cluster.options.args,
        ],
      })
      // A foreign process: stand-in with what kill() needs.
      if (n.pid) server.child = foreignChild(n.pid)
      return { ...n, server }
    })
    return cluster
  }

  /** Stops every node by pid and removes the temp dir. */
  async stop() {
    await Promise.all(this.nodes.map((n) => n.server.stop()))
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true })
    this.dir = null
  }
}

/** A minimal ChildProcess look-alike for a process this one did not spawn (kill by pid, poll for its exit). */
function foreignChild(pid) {
  const alive = () => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  return {
    pid,
    get exitCode() {
      return alive() ? null : 0
    },
    signalCode: null,
    kill(signal) {
      try {
        process.kill(pid, signal)
      } catch {
        // already gone
      }
    },
    once(event, listener) {
      if (event !== 'exit') return
      const poll = setInterval(() => {
        if (!alive()) {
          clearInterval(poll)
          listener(0)
        }
      }, 20)
    },
  }
}

async function startRedisCluster(options) {
  return new RedisCluster(options).start()
}

module.exports = { RedisCluster, startRedisCluster, parseClusterNodes, parseInfo, rawPipeline, parseReply, SLOTS }
