'use strict'
// The Edge runtime: index.js throws one clear error before it loads anything,
// and the edge-light / workerd / worker export conditions resolve to edge.js,
// which throws the same error and requires nothing (so a bundler for Edge
// never reaches the native addon or node:net).
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, runNode } = require('./support/client.js')

const pkg = require('../package.json')

/**
 * Runs `body` (which throws) in a child; resolves `{ name, message, code, loaded }`,
 * `loaded` = the modules left in require.cache. A module that throws leaves it,
 * one that loaded stays, so `[]` means nothing but the throwing modules ran.
 */
async function thrown(body, { prelude = '', nodeArgs = [] } = {}) {
  const { code, stdout, stderr } = await runNode(
    `${prelude}
     let result = { threw: false }
     try { ${body} } catch (error) { result = { message: error.message, code: error.code, name: error.name } }
     result.loaded = Object.keys(require.cache).map((f) => require('node:path').relative(${JSON.stringify(ROOT)}, f)).sort()
     console.log(JSON.stringify(result))`,
    { nodeArgs },
  )
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
  return JSON.parse(stdout)
}

function expectTheEdgeError(result) {
  expect(result.name).toBe('Error')
  expect(result.code).toBe('EEDGERUNTIME')
  expect(result.message).toContain('runs only in the Node.js runtime')
  expect(result.message).toContain("export const runtime = 'nodejs'")
  expect(result.message).toContain("serverExternalPackages: ['@yesgoddess/redis']")
}

test('in the Edge runtime (globalThis.EdgeRuntime), importing index.js throws the clear error before loading anything', async () => {
  const result = await thrown(`require('./index.js')`, { prelude: `globalThis.EdgeRuntime = 'edge-runtime'` })
  expectTheEdgeError(result)
  // Nothing of lib/ nor the binding was loaded.
  expect(result.loaded).toEqual([])
})

test('edge.js throws the same error and requires nothing', async () => {
  const viaIndex = await thrown(`require('./index.js')`, { prelude: `globalThis.EdgeRuntime = 'edge-runtime'` })
  const direct = await thrown(`require('./edge.js')`)
  expectTheEdgeError(direct)
  expect(direct.message).toBe(viaIndex.message)
  expect(direct.loaded).toEqual([])
  const source = fs.readFileSync(path.join(ROOT, 'edge.js'), 'utf8')
  expect(source).not.toMatch(/\brequire\s*\(|^\s*import\b/m)
})

test('outside the Edge runtime nothing changes: index.js loads', async () => {
  const { code, stdout, stderr } = await runNode(`console.log(typeof require('./index.js').getRedisClient)`)
  expect({ code, stdout: stdout.trim(), stderr }).toEqual({ code: 0, stdout: 'function', stderr: '' })
})

test.each(['edge-light', 'workerd', 'worker'])(
  "the '%s' export condition resolves to edge.js, which throws the clear error",
  async (condition) => {
    expect(pkg.exports['.'][condition]).toBe('./edge.js')
    const nodeArgs = [`--conditions=${condition}`]
    const resolved = await runNode(`console.log(require.resolve('@yesgoddess/redis'))`, { nodeArgs })
    expect(resolved.stdout.trim()).toBe(path.join(ROOT, 'edge.js'))
    const result = await thrown(`require('@yesgoddess/redis')`, { nodeArgs })
    expectTheEdgeError(result)
    expect(result.loaded).toEqual([])
    // import resolves there too (an uncaught failed import, so the process exits 1 with it).
    const esm = await runNode(`import '@yesgoddess/redis'`, { nodeArgs: [...nodeArgs, '--input-type=module'] })
    expect(esm.code).toBe(1)
    expect(esm.stderr).toContain(`Error: ${result.message}\n`)
  },
)

test('without those conditions, require and import resolve to index.js and index.mjs', async () => {
  const { stdout } = await runNode(`console.log(require.resolve('@yesgoddess/redis'))`)
  expect(stdout.trim()).toBe(path.join(ROOT, 'index.js'))
  const esm = await runNode(`console.log(import.meta.resolve('@yesgoddess/redis'))`, { nodeArgs: ['--input-type=module'] })
  expect(esm.stdout.trim()).toBe(`file://${path.join(ROOT, 'index.mjs')}`)
  expect(pkg.files).toContain('edge.js')
})
