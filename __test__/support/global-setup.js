'use strict'
// One private redis-server for the whole jest run, unless REDIS_URL is set.
const { startRedisServer } = require('./redis-server.js')

module.exports = async function globalSetup() {
  if (process.env.REDIS_URL) return
  const server = await startRedisServer()
  globalThis.__YG_PRIVATE_REDIS__ = server
  process.env.REDIS_URL = server.url
  process.env.YG_PRIVATE_REDIS = '1'
}
