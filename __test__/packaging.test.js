'use strict'
// The napi-rs distribution: one npm/<platform> package per target, in step with
// the root package, and a release workflow that builds every target.
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..')
const pkg = require('../package.json')

/** napi-rs's platform directory name (and os, cpu, libc) for a Rust target triple. */
function platformOf(triple) {
  const [arch, vendor, system, abi] = triple.split('-')
  const cpu = { x86_64: 'x64', aarch64: 'arm64' }[arch]
  if (vendor === 'apple') return { dir: `darwin-${cpu}`, os: 'darwin', cpu }
  if (system === 'windows') return { dir: `win32-${cpu}-${abi}`, os: 'win32', cpu }
  return { dir: `linux-${cpu}-${abi}`, os: 'linux', cpu, libc: abi === 'musl' ? 'musl' : 'glibc' }
}

test('every target has its npm/<platform> package with os, cpu, libc, version and binary name', () => {
  const dirs = fs.readdirSync(path.join(ROOT, 'npm')).sort()
  const expected = pkg.napi.targets.map(platformOf)
  expect(dirs).toEqual(expected.map((e) => e.dir).sort())
  for (const e of expected) {
    const p = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', e.dir, 'package.json'), 'utf8'))
    expect(p.name).toBe(`${pkg.napi.packageName}-${e.dir}`)
    expect(p.version).toBe(pkg.version) // kept in step (`npm version` runs `napi version`)
    expect(p.os).toEqual([e.os])
    expect(p.cpu).toEqual([e.cpu])
    if (e.libc) expect(p.libc).toEqual([e.libc])
    else expect(p.libc).toBeUndefined()
    expect(p.main).toBe(`${pkg.napi.binaryName}.${e.dir}.node`)
    expect(p.files).toEqual([p.main])
  }
})

test('the loader picks glibc or musl on Linux and falls back to the platform packages', () => {
  const loader = fs.readFileSync(path.join(ROOT, 'binding.js'), 'utf8')
  expect(loader).toMatch(/isMusl\(\)/)
  for (const dir of fs.readdirSync(path.join(ROOT, 'npm'))) {
    expect(loader).toContain(`${pkg.napi.packageName}-${dir}`)
    expect(loader).toContain(`./${pkg.napi.binaryName}.${dir}.node`)
  }
})

test('the release workflow builds every target and publishes the platform packages', () => {
  const workflow = fs.readFileSync(path.join(ROOT, '.github', 'workflows', 'release.yml'), 'utf8')
  for (const target of pkg.napi.targets) expect(workflow).toContain(`target: ${target}`)
  expect(workflow).toMatch(/napi artifacts/)
  expect(workflow).toMatch(/napi pre-publish/)
  expect(workflow).toMatch(/npm publish/)
})

test('the root package ships the loader, entry points, types and lib, and no binary', () => {
  expect(pkg.files).toEqual(expect.arrayContaining(['index.js', 'index.mjs', 'index.d.ts', 'edge.js', 'binding.js', 'lib/']))
  expect(pkg.files.some((f) => f.endsWith('.node'))).toBe(false)
  // The first condition that matches wins: types, then the Edge runtimes' (edge.test.js), then Node's.
  expect(Object.entries(pkg.exports['.'])).toEqual([
    ['types', './index.d.ts'],
    ['edge-light', './edge.js'],
    ['workerd', './edge.js'],
    ['worker', './edge.js'],
    ['import', './index.mjs'],
    ['require', './index.js'],
  ])
})
