'use strict'
// Packs the package as it is published, for the end-to-end scripts: the
// linux-x64-gnu platform package (as `napi artifacts` lays it out) with the
// binary the release ships, built against glibc 2.17 by scripts/build-cross.js
// (`napi build --use-napi-cross`, not the host build in the repository root),
// and the root package with the optionalDependencies that publishing adds
// (`napi pre-publish`), each with `npm pack`.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { buildCross } = require('./build-cross.js')

const ROOT = path.resolve(__dirname, '..')
const pkg = require('../package.json')
const PLATFORM = 'linux-x64-gnu'
const BINARY = `${pkg.napi.binaryName}.${PLATFORM}.node`

/** Runs a command; returns its stdout, or throws with its output. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...options })
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`)
  }
  return result.stdout
}

/** The platform packages of npm/, by directory: { dir, name, version, os, cpu, libc }. */
function platformPackages() {
  return fs.readdirSync(path.join(ROOT, 'npm')).map((dir) => ({
    dir,
    ...JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', dir, 'package.json'), 'utf8')),
  }))
}

/**
 * Builds the release binaries and packs both packages into `destination`;
 * returns the tarballs' paths and the packed binary's (`binary`). The host
 * build keeps the root package's binding.js and binding.d.ts current; the
 * platform package gets the glibc 2.17 cross build.
 * With `YG_REDIS_PACK_BINARY=<file>` (or `options.binary`) nothing is built:
 * that binary goes into the platform package, with the binding.js and
 * binding.d.ts of the tree as they are (for a machine where Rust must not be
 * built, e.g. `YG_REDIS_PACK_BINARY=yesgoddess-redis.linux-x64-gnu.node`).
 */
function packTarballs(destination, options = {}) {
  fs.mkdirSync(destination, { recursive: true })
  const given = options.binary || process.env.YG_REDIS_PACK_BINARY
  let binary
  if (given) {
    binary = path.resolve(ROOT, given)
    if (!fs.existsSync(binary)) throw new Error(`YG_REDIS_PACK_BINARY: no such file ${binary}`)
    console.error(`[pack] packing ${path.relative(ROOT, binary)} as it is (nothing built)`)
  } else {
    run(process.execPath, [path.join(ROOT, 'scripts', 'build-if-needed.js')], { cwd: ROOT, stdio: 'inherit' })
    binary = buildCross()
  }
  const work = fs.mkdtempSync(path.join(destination, 'stage-'))
  try {
    const platformDir = path.join(work, 'platform')
    fs.cpSync(path.join(ROOT, 'npm', PLATFORM), platformDir, { recursive: true })
    fs.copyFileSync(binary, path.join(platformDir, BINARY))
    const platformTgz = run('npm', ['pack', '--silent', '--pack-destination', destination], { cwd: platformDir }).trim()

    const stage = path.join(work, 'root')
    fs.mkdirSync(stage)
    for (const entry of [...pkg.files, 'README.md']) fs.cpSync(path.join(ROOT, entry), path.join(stage, entry), { recursive: true })
    const published = { ...pkg, optionalDependencies: {} }
    delete published.devDependencies
    delete published.scripts
    for (const p of platformPackages()) published.optionalDependencies[p.name] = pkg.version
    fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(published, null, 2))
    const rootTgz = run('npm', ['pack', '--silent', '--pack-destination', destination], { cwd: stage }).trim()
    return { rootTgz: path.join(destination, rootTgz), platformTgz: path.join(destination, platformTgz), binary }
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
}

module.exports = { packTarballs, platformPackages, run, PLATFORM, BINARY, ROOT }
