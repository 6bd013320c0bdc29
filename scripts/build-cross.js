#!/usr/bin/env node
// Builds the binary that the linux-x64-gnu package ships against glibc 2.17,
// as napi-rs's own release builds do:
//   napi build --platform --release --use-napi-cross --target x86_64-unknown-linux-gnu
// with its own cargo target directory (target/cross) and output directory
// (target/cross-out/), so the host build in the repository root is left alone.
// Prints the binary's path on stdout (everything else goes to stderr):
//   cp "$(node scripts/build-cross.js)" .
//
// `--use-napi-cross` extracts a gcc toolchain with a glibc 2.17 sysroot into
// ~/.napi-rs/cross-toolchain/<@napi-rs/cross-toolchain version>/<target>/ and
// skips that when the folder has a package.json. Two registry quirks stop the
// CLI from doing it itself, so this script lays that folder out first:
//  - @napi-rs/cross-toolchain 1.0.5 (the CLI's) fetches
//    @napi-rs/cross-toolchain-x64-target-x86_64@1.0.5, which the registry does
//    not have; 1.0.0 has the same toolchain (x86_64-unknown-linux-gnu.tar.xz).
//  - its xz decompressor, @napi-rs/lzma, declares engines node ^22.20, so npm
//    leaves its platform package (@napi-rs/lzma-linux-x64-gnu) out on Node 20;
//    it is installed here explicitly, at the version the CLI's copy has.
// Those packages go into a cache folder outside the repository
// ($YG_REDIS_CROSS_CACHE, default ~/.cache/yg-redis-cross). A second run skips
// every step already done, and cargo rebuilds only what changed.
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const { createRequire } = require('node:module')
const os = require('node:os')
const path = require('node:path')
const { glibcVersions, compareVersions } = require('./glibc-needs.js')

const ROOT = path.resolve(__dirname, '..')
const pkg = require('../package.json')
const TARGET = 'x86_64-unknown-linux-gnu'
const BINARY = `${pkg.napi.binaryName}.linux-x64-gnu.node`
const MAX_GLIBC = '2.17'
// The toolchain package for TARGET on an x64 host, at a version the registry has.
const TOOLCHAIN_PACKAGE = { name: '@napi-rs/cross-toolchain-x64-target-x86_64', version: '1.0.0', archive: `${TARGET}.tar.xz` }
const CACHE = process.env.YG_REDIS_CROSS_CACHE || path.join(os.homedir(), '.cache', 'yg-redis-cross')
const TARGET_DIR = path.join(ROOT, 'target', 'cross')
const OUT_DIR = path.join(ROOT, 'target', 'cross-out')

const log = (message) => console.error(`[build-cross] ${message}`)

/** The directory of a package as Node resolves it from the folder `from` (node_modules upwards). */
function packageDir(name, from) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name)
    if (fs.existsSync(path.join(candidate, 'package.json'))) return fs.realpathSync(candidate)
    if (path.dirname(dir) === dir) throw new Error(`cannot find ${name} from ${from} (run npm ci first)`)
  }
}
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'))

/** The CLI, its @napi-rs/cross-toolchain, and the versions of the latter's lzma and tar. */
function cliPackages() {
  const cli = packageDir('@napi-rs/cli', ROOT)
  const crossToolchain = packageDir('@napi-rs/cross-toolchain', cli)
  return {
    cliJs: path.join(cli, 'dist', 'cli.js'),
    crossVersion: readJson(path.join(crossToolchain, 'package.json')).version,
    lzmaVersion: readJson(path.join(packageDir('@napi-rs/lzma', crossToolchain), 'package.json')).version,
    tarVersion: readJson(path.join(packageDir('@napi-rs/tar', crossToolchain), 'package.json')).version,
  }
}

/** Where the CLI looks for the toolchain (pickCrossToolchain in @napi-rs/cli's dist/cli.js). */
function toolchainDir(crossVersion) {
  return path.join(os.homedir(), '.napi-rs', 'cross-toolchain', crossVersion, TARGET)
}

/** Installs the toolchain package, @napi-rs/lzma with its platform package, and @napi-rs/tar into CACHE, unless there. */
function ensureHelpers({ lzmaVersion, tarVersion }) {
  const wanted = {
    [TOOLCHAIN_PACKAGE.name]: TOOLCHAIN_PACKAGE.version,
    '@napi-rs/lzma': lzmaVersion,
    '@napi-rs/lzma-linux-x64-gnu': lzmaVersion,
    '@napi-rs/tar': tarVersion,
  }
  const installed = (name) => {
    try {
      return readJson(path.join(CACHE, 'node_modules', name, 'package.json')).version
    } catch {
      return null
    }
  }
  const missing = Object.keys(wanted).filter((name) => installed(name) !== wanted[name])
  if (missing.length === 0) {
    log(`helpers already in ${CACHE}`)
    return
  }
  log(`installing ${missing.map((n) => `${n}@${wanted[n]}`).join(', ')} into ${CACHE}`)
  fs.mkdirSync(CACHE, { recursive: true })
  fs.writeFileSync(path.join(CACHE, 'package.json'),
    JSON.stringify({ name: 'yg-redis-cross-cache', private: true, dependencies: wanted }, null, 2))
  // --engine-strict=false: @napi-rs/lzma(-linux-x64-gnu) declare node ^22.20 but work on Node 20.
  const npm = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--engine-strict=false',
    '--no-package-lock', '--prefix', CACHE], { cwd: CACHE, stdio: ['ignore', 2, 2] })
  if (npm.status !== 0) throw new Error(`npm install into ${CACHE} failed (${npm.status ?? npm.error})`)
  const still = Object.keys(wanted).filter((name) => installed(name) !== wanted[name])
  if (still.length) throw new Error(`npm install into ${CACHE} left out ${still.join(', ')}`)
}

/** Lays out the toolchain where the CLI looks for it, as @napi-rs/cross-toolchain's download() + the CLI's unpack would. */
function ensureToolchain(packages) {
  const dir = toolchainDir(packages.crossVersion)
  const gcc = path.join(dir, 'bin', `${TARGET}-gcc`)
  if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(gcc)) {
    log(`toolchain already in ${dir}`)
    return dir
  }
  ensureHelpers(packages)
  const req = createRequire(path.join(CACHE, 'package.json'))
  const { xz } = req('@napi-rs/lzma')
  const { Archive } = req('@napi-rs/tar')
  const archive = path.join(CACHE, 'node_modules', TOOLCHAIN_PACKAGE.name, TOOLCHAIN_PACKAGE.archive)
  const t = Date.now()
  log(`unpacking ${TOOLCHAIN_PACKAGE.name}@${TOOLCHAIN_PACKAGE.version}'s ${TOOLCHAIN_PACKAGE.archive} into ${dir}`)
  // A folder without package.json is an unfinished extraction (or the empty
  // one a failed CLI run leaves): start over, in a side folder, then rename.
  fs.rmSync(dir, { recursive: true, force: true })
  const partial = `${dir}.partial-${process.pid}`
  fs.rmSync(partial, { recursive: true, force: true })
  fs.mkdirSync(partial, { recursive: true })
  new Archive(xz.decompressSync(fs.readFileSync(archive))).unpack(partial)
  // The archive carries the toolchain package's package.json at its root; the
  // CLI takes that file as the sign that the toolchain is in place.
  if (!fs.existsSync(path.join(partial, 'package.json'))) {
    fs.copyFileSync(path.join(CACHE, 'node_modules', TOOLCHAIN_PACKAGE.name, 'package.json'), path.join(partial, 'package.json'))
  }
  if (!fs.existsSync(path.join(partial, 'bin', `${TARGET}-gcc`))) throw new Error(`${archive} has no bin/${TARGET}-gcc`)
  fs.renameSync(partial, dir)
  log(`toolchain unpacked in ${((Date.now() - t) / 1000).toFixed(1)} s`)
  return dir
}

/** Checks a built binary needs no glibc newer than MAX_GLIBC; returns the versions it needs. */
function checkGlibc(binary) {
  const versions = glibcVersions(binary)
  const newer = versions.filter((v) => compareVersions(v, MAX_GLIBC) > 0)
  if (newer.length) throw new Error(`${binary} needs GLIBC ${newer.join(', ')}, newer than ${MAX_GLIBC}`)
  return versions
}

/** Builds (or brings up to date) the glibc 2.17 binary; returns its path. */
function buildCross() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`build-cross builds on a Linux x64 host (this is ${process.platform}-${process.arch})`)
  }
  const packages = cliPackages()
  ensureToolchain(packages)
  const args = [packages.cliJs, 'build', '--platform', '--release', '--use-napi-cross', '--target', TARGET,
    '--target-dir', TARGET_DIR, '--output-dir', OUT_DIR, '--js', 'binding.js', '--dts', 'binding.d.ts']
  log(`napi ${args.slice(1).map((a) => path.isAbsolute(a) ? path.relative(ROOT, a) : a).join(' ')}`)
  fs.mkdirSync(OUT_DIR, { recursive: true })
  const t = Date.now()
  const build = spawnSync(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 2, 2] })
  if (build.status !== 0) throw new Error(`napi build --use-napi-cross failed (${build.status ?? build.error})`)
  const binary = path.join(OUT_DIR, BINARY)
  if (!fs.existsSync(binary)) throw new Error(`napi build left no ${binary}`)
  const versions = checkGlibc(binary)
  log(`built in ${((Date.now() - t) / 1000).toFixed(1)} s: ${path.relative(ROOT, binary)} needs GLIBC ${versions.join(', ')} (highest ${versions[versions.length - 1]}, at most ${MAX_GLIBC})`)
  return binary
}

module.exports = { buildCross, checkGlibc, toolchainDir, TARGET, BINARY, MAX_GLIBC, OUT_DIR, TARGET_DIR, CACHE }

if (require.main === module) {
  try {
    console.log(buildCross())
  } catch (error) {
    console.error(`[build-cross] ${error.message}`)
    process.exit(1)
  }
}
