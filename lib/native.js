'use strict'
// Loads the native addon through napi-rs's generated loader (../binding.js).
// When it finds no binary for this platform, the error says which platform
// package is missing and how to install it, instead of the loader's generic
// "npm has a bug related to optional dependencies"; the loader's error stays
// as `cause`. Any other failure is rethrown as it is.

const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..')

let native
try {
  native = require('../binding.js')
} catch (error) {
  throw explainLoadFailure(error)
}

module.exports = native

/** Whether this Linux uses musl, decided as binding.js decides it (the filesystem, then process.report). */
function isMusl() {
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    // no /usr/bin/ldd: ask the process report
  }
  if (!process.report || typeof process.report.getReport !== 'function') return false
  try {
    process.report.excludeNetwork = true
    const report = process.report.getReport()
    if (report.header && report.header.glibcVersionRuntime) return false
    return Array.isArray(report.sharedObjects)
      && report.sharedObjects.some((f) => f.includes('libc.musl-') || f.includes('ld-musl-'))
  } catch {
    return false
  }
}

/** napi-rs's platform name (`linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, …) of a Rust target triple. */
function platformOfTriple(triple) {
  const [arch, vendor, system, abi] = triple.split('-')
  const cpu = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' }[arch] || arch
  if (vendor === 'apple') return `darwin-${cpu}`
  if (system === 'windows') return `win32-${cpu}-${abi}`
  if (system === 'linux') return `linux-${cpu}-${abi === 'musl' ? 'musl' : 'gnu'}`
  return `${system}-${cpu}`
}

/** The platform name of this process, in the same spelling. */
function currentPlatform() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') {
    // binding.js's test for a MinGW (gnu) Node.js
    const v = (process.config && process.config.variables) || {}
    return `win32-${arch}-${v.shlib_suffix === 'dll.a' || v.node_target_type === 'shared_library' ? 'gnu' : 'msvc'}`
  }
  return `${platform}-${arch}`
}

/** Whether the package `request` resolves from the package root (as binding.js resolves it). */
function resolvable(request) {
  try {
    require.resolve(request, { paths: [ROOT] })
    return true
  } catch (error) {
    // A package whose exports hide package.json is still installed.
    return error && error.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED'
  }
}

/** The first message in the loader's cause chain that is not "Cannot find module". */
function firstLoadError(error) {
  const seen = new Set()
  for (let e = error && error.cause; e && !seen.has(e); e = e.cause) {
    seen.add(e)
    const message = typeof e.message === 'string' ? e.message : String(e)
    if (!message.startsWith('Cannot find module')) return message.split('\n')[0]
  }
  return null
}

function explainLoadFailure(error) {
  const message = error && typeof error.message === 'string' ? error.message : ''
  // Only the loader's own "nothing loaded" errors; an override path, forced
  // WASI or a version mismatch already says what is wrong.
  if (!message.startsWith('Cannot find native binding') && !message.startsWith('Failed to load native binding')) {
    return error
  }
  let pkg
  try {
    pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  } catch {
    return error
  }
  const name = pkg.name
  const version = pkg.version
  const packagePrefix = (pkg.napi && pkg.napi.packageName) || name
  const binaryName = (pkg.napi && pkg.napi.binaryName) || 'yesgoddess-redis'
  const supported = ((pkg.napi && pkg.napi.targets) || []).map(platformOfTriple)
  const platform = currentPlatform()
  const platformPackage = `${packagePrefix}-${platform}`
  let explained
  if (!supported.includes(platform)) {
    explained = new Error(
      `${name}: there is no prebuilt binary for this platform (${platform}, Node.js ${process.version}). ` +
        `Prebuilt binaries exist for: ${supported.join(', ')}. ` +
        `On another platform, build the addon from source in a clone of the package's repository ` +
        `(a Rust toolchain and \`npm install\`, which runs \`napi build\`).`,
    )
  } else if (fs.existsSync(path.join(ROOT, `${binaryName}.${platform}.node`)) || resolvable(`${platformPackage}/package.json`)) {
    // The binary is there but did not load (another libc, a damaged file, an old Node.js).
    const reason = firstLoadError(error)
    const local = fs.existsSync(path.join(ROOT, `${binaryName}.${platform}.node`))
    explained = new Error(
      `${name}: the native binary for ${platform} is installed ` +
        `(${local ? `${binaryName}.${platform}.node, built in the package` : platformPackage}) but failed to load` +
        `${reason ? `: ${reason}` : ''}. ` +
        (local ? 'Rebuild it with `npm run build`.' : `Reinstall it with \`npm install ${platformPackage}@${version}\`.`),
    )
  } else {
    explained = new Error(
      `${name}: the native binary for this platform (${platform}) is missing. It ships in the package ` +
        `${platformPackage}@${version}, an optional dependency of ${name} that was not installed ` +
        `(npm skips it with --omit=optional, or when package-lock.json was written on another platform). ` +
        `Install it with: npm install ${platformPackage}@${version}`,
    )
  }
  explained.code = 'ENOBINARY'
  explained.cause = error
  return explained
}
