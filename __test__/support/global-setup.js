'use strict'
// One private redis-server for the whole jest run, unless REDIS_URL is set.
const { startRedisServer, makeTlsFiles } = require('./redis-server.js')

module.exports = async function globalSetup() {
  if (process.env.YG_TEST_TLS === '1' && !process.env.YG_TEST_TLS_FILES) {
    // Every private server of the run serves TLS only, with this CA (see harnessTls).
    const files = makeTlsFiles()
    process.env.YG_TEST_TLS_FILES = JSON.stringify(files)
    process.env.NODE_EXTRA_CA_CERTS = files.ca
  }
  if (process.env.REDIS_URL) return
  const server = await startRedisServer()
  globalThis.__YG_PRIVATE_REDIS__ = server
  process.env.REDIS_URL = server.url
  process.env.YG_PRIVATE_REDIS = '1'
}
