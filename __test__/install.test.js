'use strict'
// The root package installed without its platform package (npm --omit=optional,
// a lockfile from another platform): the error names the package to install.
// The package's published JS files are copied into node_modules of a temp
// project with no binary; a child node process requires them.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { ROOT, runNode } = require('./support/client.js')

const pkg = require('../package.json')

/** This machine's napi-rs platform name, decided independently of lib/native.js. */
function hostPlatform() {
  const { platform, arch } = process
  if (platform !== 'linux') return `${platform}-${arch}${platform === 'win32' ? '-msvc' : ''}`
  const report = process.report.getReport()
  return `linux-${arch}-${report.header.glibcVersionRuntime ? 'gnu' : 'musl'}`
}
const PLATFORM = hostPlatform()
const PLATFORM_PACKAGE = `${pkg.napi.packageName}-${PLATFORM}`
const BINARY = path.join(ROOT, `${pkg.napi.binaryName}.${PLATFORM}.node`)

const projects = []
/** A temp project with the root package (its `files`, no .node) in node_modules/@yesgoddess/redis. */
function projectWithRootPackageOnly() {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'yg-redis-install-'))
  projects.push(project)
  const dir = path.join(project, 'node_modules', ...pkg.name.split('/'))
  fs.mkdirSync(dir, { recursive: true })
  for (const file of ['package.json', ...pkg.files]) {
    fs.cpSync(path.join(ROOT, file), path.join(dir, file), { recursive: true })
  }
  fs.writeFileSync(path.join(project, 'package.json'), '{ "name": "app", "private": true }\n')
  return project
}

/** Installs the platform package into `project`, with `binary` (a path or bytes) as its .node file. */
function addPlatformPackage(project, binary) {
  const dir = path.join(project, 'node_modules', ...PLATFORM_PACKAGE.split('/'))
  fs.mkdirSync(dir, { recursive: true })
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', PLATFORM, 'package.json'), 'utf8'))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest))
  const target = path.join(dir, manifest.main)
  if (typeof binary === 'string') fs.copyFileSync(binary, target)
  else fs.writeFileSync(target, binary)
}

const CLEAN_ENV = { NODE_PATH: undefined, NAPI_RS_NATIVE_LIBRARY_PATH: undefined, NAPI_RS_FORCE_WASI: undefined }

/** Requires the package in `project` (after `prelude`); resolves what it threw, or `{ loaded: true }`. */
async function load(project, { prelude = '' } = {}) {
  const source = `${prelude}
    let result = { loaded: true }
    try {
      if (typeof require('@yesgoddess/redis').getRedisClient !== 'function') result = { loaded: false }
    } catch (error) {
      result = { name: error.name, message: error.message, code: error.code, cause: error.cause ? error.cause.message : null }
    }
    console.log(JSON.stringify(result))`
  const { code, stdout, stderr } = await runNode(source, { cwd: project, env: CLEAN_ENV })
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
  return JSON.parse(stdout)
}

afterAll(() => {
  for (const project of projects) fs.rmSync(project, { recursive: true, force: true })
})

test(`without ${PLATFORM_PACKAGE}, require names it, the version and the install command`, async () => {
  expect(pkg.napi.targets.length).toBeGreaterThan(0)
  const project = projectWithRootPackageOnly()
  const error = await load(project)
  expect(error.name).toBe('Error')
  expect(error.code).toBe('ENOBINARY')
  expect(error.message).toContain(`${PLATFORM_PACKAGE}@${pkg.version}`)
  expect(error.message).toContain(`npm install ${PLATFORM_PACKAGE}@${pkg.version}`)
  expect(error.message).not.toContain('npm has a bug')
  // napi-rs's own error is kept as the cause.
  expect(error.cause).toMatch(/^Cannot find native binding/)
  // import goes through index.js: the same error (uncaught, as a failed static import is).
  const esm = await runNode(`import '@yesgoddess/redis'`, { cwd: project, env: CLEAN_ENV, nodeArgs: ['--input-type=module'] })
  expect(esm.code).toBe(1)
  expect(esm.stderr).toContain(`Error: ${error.message}\n`)
  expect(esm.stderr).toContain("code: 'ENOBINARY'")
})

test('with the platform package installed, the same files load', async () => {
  if (!fs.existsSync(BINARY)) throw new Error(`build the addon first: ${BINARY} is missing`)
  const project = projectWithRootPackageOnly()
  addPlatformPackage(project, BINARY)
  expect(await load(project)).toEqual({ loaded: true })
})

test('a platform package whose binary does not load is named with the reason, not as missing', async () => {
  const project = projectWithRootPackageOnly()
  addPlatformPackage(project, Buffer.from('not a shared library'))
  const error = await load(project)
  expect(error.code).toBe('ENOBINARY')
  expect(error.message).toContain(`${PLATFORM} is installed (${PLATFORM_PACKAGE}) but failed to load: `)
  expect(error.message).toContain(`npm install ${PLATFORM_PACKAGE}@${pkg.version}`)
  expect(error.message).not.toContain('is missing')
  expect(error.cause).toMatch(/^Cannot find native binding/)
})

test.each([
  ['darwin', 'arm64', 'darwin-arm64'],
  ['darwin', 'x64', 'darwin-x64'],
  ['win32', 'x64', 'win32-x64-msvc'],
])('on %s %s the missing package is -%s', async (platform, arch, name) => {
  const project = projectWithRootPackageOnly()
  const prelude = `Object.defineProperty(process, 'platform', { value: ${JSON.stringify(platform)} });
    Object.defineProperty(process, 'arch', { value: ${JSON.stringify(arch)} });`
  const error = await load(project, { prelude })
  expect(error.code).toBe('ENOBINARY')
  expect(error.message).toContain(`npm install ${pkg.napi.packageName}-${name}@${pkg.version}`)
})

test('a platform with no prebuilt binary is said to be unsupported, with the list of those there are', async () => {
  const project = projectWithRootPackageOnly()
  const error = await load(project, { prelude: `Object.defineProperty(process, 'arch', { value: 'ppc64' });` })
  expect(error.code).toBe('ENOBINARY')
  expect(error.message).toContain(`no prebuilt binary for this platform (${process.platform}-ppc64`)
  for (const dir of fs.readdirSync(path.join(ROOT, 'npm'))) expect(error.message).toContain(dir)
  expect(error.cause).toMatch(/^Cannot find native binding/)
})
