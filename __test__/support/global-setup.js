'use strict'
// One private redis-server for the whole jest run, unless REDIS_URL is set.
// With YG_TEST_CLUSTER=1 (and no REDIS_URL): one private Redis Cluster instead
// (3 masters + 3 replicas, see cluster.js; TLS too under YG_TEST_TLS=1): REDIS_URL
// names its first node, REDIS_CLUSTER=true, REDIS_CLUSTER_NODES lists every node,
// and YG_TEST_CLUSTER_INFO lets a test file inspect it (RedisCluster.attach()).
const { startRedisServer, makeTlsFiles } = require('./redis-server.js')

module.exports = async function globalSetup() {
  if (process.env.YG_TEST_TLS === '1' && !process.env.YG_TEST_TLS_FILES) {
    // Every private server of the run serves TLS only, with this CA (see harnessTls).
    const files = makeTlsFiles()
    process.env.YG_TEST_TLS_FILES = JSON.stringify(files)
    process.env.NODE_EXTRA_CA_CERTS = files.ca
  }
  if (process.env.REDIS_URL) return
  if (process.env.YG_TEST_CLUSTER === '1') {
    const { startRedisCluster } = require('./cluster.js')
    const cluster = await startRedisCluster()
    globalThis.__YG_PRIVATE_REDIS_CLUSTER__ = cluster
    process.env.REDIS_URL = cluster.url
    process.env.REDIS_CLUSTER = 'true'
    process.env.REDIS_CLUSTER_NODES = cluster.seedList
    process.env.YG_TEST_CLUSTER_INFO = JSON.stringify(cluster.describe())
    process.env.YG_PRIVATE_REDIS = '1'
    return
  }
  const server = await startRedisServer()
  globalThis.__YG_PRIVATE_REDIS__ = server
  process.env.REDIS_URL = server.url
  process.env.YG_PRIVATE_REDIS = '1'
}
