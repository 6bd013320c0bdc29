#!/usr/bin/env node
// `npm install` in a clone of this repository builds the native addon (the
// `prepare` script). Set YG_REDIS_SKIP_BUILD=1 to skip it (e.g. when a
// prebuilt binary is already in place).
'use strict'

const { spawnSync } = require('node:child_process')
const path = require('node:path')

if (process.env.YG_REDIS_SKIP_BUILD === '1') {
  console.log('[@yesgoddess/redis] YG_REDIS_SKIP_BUILD=1: not building the addon')
  process.exit(0)
}

const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' })
if (cargo.error || cargo.status !== 0) {
  console.error(
    '[@yesgoddess/redis] building from source needs a Rust toolchain (cargo) on PATH: https://rustup.rs',
  )
  process.exit(1)
}

const root = path.resolve(__dirname, '..')
const napi = path.join(path.dirname(require.resolve('@napi-rs/cli/package.json', { paths: [root] })), 'dist', 'cli.js')
const debug = process.env.YG_REDIS_DEBUG_BUILD === '1'
const args = [napi, 'build', '--platform', '--js', 'binding.js', '--dts', 'binding.d.ts']
if (!debug) args.push('--release')
console.log(`[@yesgoddess/redis] building the native addon (${debug ? 'debug' : 'release'})…`)
const build = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
process.exit(build.status ?? 1)
