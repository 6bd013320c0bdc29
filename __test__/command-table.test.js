'use strict'
// One command table (src/core/command.rs COMMANDS): the raw client's methods come from
// it, and the `RedisCommandName` union of index.d.ts must list exactly the same
// commands, so the types cannot drift from what the package does.
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, redis } = require('./support/client.js')
const native = require('../binding.js')

function declaredCommands() {
  const dts = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8')
  const start = dts.indexOf('export type RedisCommandName =')
  expect(start).toBeGreaterThan(0)
  const end = dts.indexOf('\n\n', start)
  return [...dts.slice(start, end).matchAll(/\|\s*'([a-z_]+)'/g)].map((m) => m[1])
}

test('index.d.ts RedisCommandName lists exactly the commands of the table', () => {
  const table = native.knownCommands().map((c) => c.toLowerCase())
  const declared = declaredCommands()
  expect(new Set(declared).size).toBe(declared.length)
  expect([...declared].sort()).toEqual([...table].sort())
})

test('every command of the table is a method of the raw client and of a pipeline; refused ones are not', () => {
  const client = redis.getRedisClient()
  const pipeline = client.pipeline()
  for (const name of native.knownCommands()) {
    expect(typeof client[name.toLowerCase()]).toBe('function')
    expect(typeof pipeline[name.toLowerCase()]).toBe('function')
  }
  for (const refused of ['select', 'swapdb', 'auth', 'hello', 'quit']) expect(client[refused]).toBeUndefined()
})

test('codes shared by JS and Rust come from the binding', () => {
  const runtime = require('../lib/runtime.js')
  expect(runtime.Op).toEqual({
    CALL: native.OP_CALL,
    CALL_BUFFER: native.OP_CALL_BUFFER,
    SCAN: native.OP_SCAN,
    CLOSE: native.OP_CLOSE,
    MASTERS: native.OP_MASTERS,
  })
  expect(new Set(Object.values(runtime.Op)).size).toBe(5)
  expect(runtime.Flag).toEqual({ DEGRADED: native.REQUEST_DEGRADED, SCRIPT_PROBE: native.REQUEST_SCRIPT_PROBE, NODE: native.REQUEST_NODE })
  // Flags never collide with an op code.
  for (const flag of Object.values(runtime.Flag)) for (const op of Object.values(runtime.Op)) expect(flag & op).toBe(0)
})
