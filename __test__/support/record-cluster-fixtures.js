'use strict'
// Records the raw RESP replies of CLUSTER SHARDS and CLUSTER SLOTS from real
// private clusters (see cluster.js) into src/core/cluster/fixtures/, for the
// topology parser's cargo tests. Each `<name>.resp` holds the reply bytes
// exactly as the server sent them; `<name>.json` says whom they were asked
// of and what the cluster looked like then, from the same node's
// CLUSTER NODES (an independent source the tests compare the parse with).
//
//   node __test__/support/record-cluster-fixtures.js
//
// Run it again only to refresh the fixtures (ids and ports change each time;
// the tests read the expectations from the .json files).

const fs = require('node:fs')
const path = require('node:path')
const { RedisCluster, parseClusterNodes, rawPipeline } = require('./cluster.js')
const { makeTlsFiles } = require('./redis-server.js')

const OUT = path.resolve(__dirname, '..', '..', 'src', 'core', 'cluster', 'fixtures')

/** Sends one command on a fresh connection and resolves the raw reply bytes. */
async function rawCommand({ port, tls }, args) {
  const [reply] = await rawPipeline({ port, tls }, [args])
  return reply.raw
}

async function record(cluster, which, name, scenario) {
  const node = cluster.node(which)
  const asked = { host: '127.0.0.1', port: node.port }
  const truth = parseClusterNodes(cluster.cli(node, 'CLUSTER', 'NODES'))
  const preferred = cluster.cli(node, 'CONFIG', 'GET', 'cluster-preferred-endpoint-type').split('\n')[1]
  for (const command of ['SHARDS', 'SLOTS']) {
    const bytes = await rawCommand({ port: node.port, tls: cluster.options.tls }, ['CLUSTER', command])
    fs.writeFileSync(path.join(OUT, `${name}-${command.toLowerCase()}.resp`), bytes)
  }
  const meta = {
    scenario,
    recordedWith: cluster.cli(node, 'INFO', 'server').match(/redis_version:(\S+)/)[1],
    asked,
    tls: Boolean(cluster.options.tls),
    preferredEndpointType: preferred,
    natMap: cluster.natMap,
    // From the same node's CLUSTER NODES: `address` is ip:port as announced (the
    // TLS port on a TLS cluster), `hostname` the announced hostname or null.
    nodes: truth.map((e) => ({
      id: e.id,
      ip: e.host,
      port: e.port,
      hostname: (cluster.nodes.find((n) => n.id === e.id)?.announced?.host) ?? null,
      role: e.flags.includes('master') ? 'master' : 'replica',
      failed: e.flags.includes('fail'),
      master: e.master,
      slots: e.slots,
    })),
  }
  fs.writeFileSync(path.join(OUT, `${name}.json`), `${JSON.stringify(meta, null, 2)}\n`)
  console.log(`recorded ${name} from ${asked.host}:${asked.port}`)
}

/** Writes a few keys so that the replicas' replication offsets move (else they report health "loading"). */
async function touch(cluster) {
  for (let i = 0; i < 30; i++) cluster.cli(cluster.nodeFor(`fixture:${i}`), 'SET', `fixture:${i}`, 'x')
  await new Promise((r) => setTimeout(r, 1200))
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true })

  // 1. A plain cluster: healthy; then "?" and NULL endpoints; then a failed
  //    master before and after its replica took over.
  let cluster = await new RedisCluster({ tls: false, nodeTimeoutMs: 1000 }).start()
  try {
    await touch(cluster)
    await record(cluster, 0, 'plain', 'a healthy 3 + 3 cluster over plain TCP')
    for (const n of cluster.nodes) cluster.cli(n, 'CONFIG', 'SET', 'cluster-preferred-endpoint-type', 'hostname')
    await record(cluster, 1, 'hostname-unset', 'cluster-preferred-endpoint-type hostname with no hostname announced: endpoints are "?"')
    for (const n of cluster.nodes) cluster.cli(n, 'CONFIG', 'SET', 'cluster-preferred-endpoint-type', 'unknown-endpoint')
    await record(cluster, 2, 'unknown-endpoint', 'cluster-preferred-endpoint-type unknown-endpoint: endpoints are NULL / empty')
    for (const n of cluster.nodes) cluster.cli(n, 'CONFIG', 'SET', 'cluster-preferred-endpoint-type', 'ip')

    // Its replica holds back (cluster-replica-no-failover) until the failed state is recorded.
    const victim = cluster.masters()[1]
    const heir = cluster.replicas().find((r) => r.master === victim.id)
    cluster.cli(heir, 'CONFIG', 'SET', 'cluster-replica-no-failover', 'yes')
    const dead = await cluster.killMaster(victim)
    const asker = cluster.live()[0]
    // Until the others agree it failed (PFAIL → FAIL), then before the promotion.
    for (let i = 0; i < 100; i++) {
      const view = parseClusterNodes(cluster.cli(asker, 'CLUSTER', 'NODES'))
      if (view.find((e) => e.id === dead.id).flags.includes('fail')) break
      await new Promise((r) => setTimeout(r, 50))
    }
    await record(cluster, asker, 'master-failed', 'a master killed (SIGKILL) and flagged fail, before its replica\'s promotion')
    cluster.cli(heir, 'CONFIG', 'SET', 'cluster-replica-no-failover', 'no')
    await cluster.waitForFailover()
    await record(cluster, asker, 'after-failover', 'the replica promoted; the dead master is still known, failed, with no slots')
    await cluster.restart(dead)
    await cluster.waitForHealthy()
    await touch(cluster)
    await record(cluster, dead, 'rejoined', 'the old master restarted: it rejoined as a replica of its replacement')

    const extra = await cluster.reshard({ from: cluster.masters()[0], to: cluster.masters()[1], slots: 10, via: 'manual' })
    console.log(`moved slots ${extra[0]}..${extra[extra.length - 1]}`)
    await record(cluster, 0, 'resharded', 'ten slots moved from the first master to the second: a master owns two ranges')
  } finally {
    await cluster.stop()
  }

  // 2. A TLS cluster (tls-port in SHARDS; SLOTS over TLS reports the TLS port).
  cluster = await new RedisCluster({ tls: makeTlsFiles() }).start()
  try {
    await touch(cluster)
    await record(cluster, 0, 'tls', 'a healthy 3 + 3 cluster, TLS only (tls-cluster, tls-replication)')
  } finally {
    await cluster.stop()
  }

  // 3. Announced addresses only a natMap resolves.
  cluster = await new RedisCluster({ tls: false, announce: true }).start()
  try {
    await touch(cluster)
    await record(cluster, 0, 'announce', 'every node announces node-<i>.yg-cluster.invalid and a client port nothing listens on')
  } finally {
    await cluster.stop()
  }
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}

module.exports = { rawCommand }
