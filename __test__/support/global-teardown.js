'use strict'
module.exports = async function globalTeardown() {
  if (globalThis.__YG_PRIVATE_REDIS__) await globalThis.__YG_PRIVATE_REDIS__.stop()
  if (globalThis.__YG_PRIVATE_REDIS_CLUSTER__) await globalThis.__YG_PRIVATE_REDIS_CLUSTER__.stop()
}
