#!/usr/bin/env node
// End to end, as an npm user installs it: builds the release binary (the
// linux-x64-gnu one against glibc 2.17, scripts/build-cross.js), packs the
// root package (with the optionalDependencies publishing adds) and the
// linux-x64-gnu platform package with `npm pack`, installs both tarballs into
// a fresh project outside the source tree with no Rust toolchain on PATH,
// checks that the installed binary needs no glibc newer than 2.17 (its ELF
// version needs, and `objdump -T` where binutils is installed), and there
// imports the package from CommonJS and ESM, type-checks a TypeScript file
// against the shipped index.d.ts, and does a cache set/get and a rate-limit
// check against a private redis-server.
//   npm run e2e:pack
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { RedisServer } = require('../__test__/support/redis-server.js')
const { packTarballs, platformPackages, run, PLATFORM, BINARY, ROOT } = require('./pack.js')
const { MAX_GLIBC, OUT_DIR } = require('./build-cross.js')
const { glibcVersions, compareVersions } = require('./glibc-needs.js')

const pkg = require('../package.json')
const started = Date.now()

let failures = 0
function check(condition, what, detail = '') {
  console.log(`${condition ? '  ok  ' : '  FAIL'} ${what}${detail ? ` — ${detail}` : ''}`)
  if (!condition) failures++
}

const highest = (versions) => versions.slice().sort(compareVersions).pop() ?? null

/** The GLIBC_ versions `objdump -T` names for a file's dynamic symbols, or null without binutils. */
function objdumpGlibc(file) {
  const result = spawnSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (result.error?.code === 'ENOENT') return null
  if (result.status !== 0) throw new Error(`objdump -T ${file} failed (${result.status}): ${result.stderr}`)
  return [...new Set([...result.stdout.matchAll(/\bGLIBC_(\d+(?:\.\d+)+)\b/g)].map((m) => m[1]))].sort(compareVersions)
}

/** Checks that a binary needs no glibc newer than MAX_GLIBC, and prints the highest version it needs. */
function checkGlibc(binary) {
  const needs = glibcVersions(binary)
  const top = highest(needs)
  console.log(`  highest GLIBC_ version needed: GLIBC_${top} (ELF version needs: ${needs.join(', ')})`)
  check(top !== null && compareVersions(top, MAX_GLIBC) <= 0, `the binary needs glibc <= ${MAX_GLIBC} (ELF version needs)`, `GLIBC_${top}`)
  const dumped = objdumpGlibc(binary)
  if (dumped === null) {
    console.log('  (objdump not installed: the ELF version needs above are the check)')
    return
  }
  const topDumped = highest(dumped)
  console.log(`  highest GLIBC_ version in objdump -T: GLIBC_${topDumped}`)
  check(topDumped !== null && compareVersions(topDumped, MAX_GLIBC) <= 0 && topDumped === top,
    `objdump -T: no symbol needs a glibc newer than ${MAX_GLIBC}`, `GLIBC_${topDumped}`)
}

async function main() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    console.log('e2e:pack installs the linux-x64-gnu package: skipped on this platform')
    return
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'yg-redis-pack-'))
  const tarballs = path.join(work, 'tarballs')
  fs.mkdirSync(tarballs)

  console.log('e2e:pack — release build and npm pack')
  const { rootTgz, platformTgz, binary } = packTarballs(tarballs)
  check(path.dirname(binary) === OUT_DIR, 'the platform package carries the glibc 2.17 cross build', path.relative(ROOT, binary))
  for (const file of ['binding.js', 'binding.d.ts']) {
    check(fs.readFileSync(path.join(OUT_DIR, file), 'utf8') === fs.readFileSync(path.join(ROOT, file), 'utf8'),
      `the root package's ${file} is the one the cross build generates`)
  }
  const contents = run('tar', ['-tzf', rootTgz])
  check(!/\.node$/m.test(contents), 'the root tarball carries no binary', `${contents.trim().split('\n').length} files`)
  check(run('tar', ['-tzf', platformTgz]).includes(`package/${BINARY}`), `the platform tarball carries ${BINARY}`)
  for (const p of platformPackages()) {
    check(p.version === pkg.version && p.name === `${pkg.napi.packageName}-${p.dir}` && p.os && p.cpu,
      `npm/${p.dir}: ${p.name}@${p.version} os=${p.os} cpu=${p.cpu}${p.libc ? ` libc=${p.libc}` : ''}`)
  }

  // A fresh project, outside the source tree, with no Rust toolchain on PATH.
  const app = path.join(work, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'pack-e2e-app', private: true, version: '1.0.0' }))
  const env = {
    ...process.env,
    PATH: [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].filter((d) => !fs.existsSync(path.join(d, 'cargo'))).join(':'),
    CARGO_HOME: path.join(work, 'no-cargo'),
    RUSTUP_HOME: path.join(work, 'no-rustup'),
  }
  check(spawnSync('cargo', ['--version'], { env }).error !== undefined, 'no cargo on the PATH the app is installed and run with')
  const t = Date.now()
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error',
    platformTgz, rootTgz, 'typescript@5.9.3', '@types/node@20.19.25'], { cwd: app, env })
  console.log(`  (npm install of the two tarballs: ${((Date.now() - t) / 1000).toFixed(1)} s)`)
  const installed = path.join(app, 'node_modules', '@yesgoddess', 'redis')
  check(!fs.lstatSync(installed).isSymbolicLink() && !fs.existsSync(path.join(installed, BINARY)),
    'installed from the tarball (a copy, not a link to the source), binary not in the root package')
  checkGlibc(path.join(app, 'node_modules', '@yesgoddess', `redis-${PLATFORM}`, BINARY))

  const server = await new RedisServer().start()
  try {
    fs.writeFileSync(path.join(app, 'check.cjs'), `
      const redis = require('@yesgoddess/redis')
      const binary = Object.keys(require.cache).find((f) => f.endsWith('.node'))
      redis.configureRedis({ url: process.env.REDIS_URL })
      ;(async () => {
        await redis.cacheService.set(redis.RedisKeys.cache.user('pack'), { from: 'cjs' })
        const value = await redis.cacheService.get(redis.RedisKeys.cache.user('pack'))
        await redis.closeRedisConnection()
        console.log(JSON.stringify({ value, binary }))
      })()`)
    fs.writeFileSync(path.join(app, 'check.mjs'), `
      import { cacheService, RedisKeys, configureRedis, closeRedisConnection, rateLimiter } from '@yesgoddess/redis'
      configureRedis({ url: process.env.REDIS_URL })
      await cacheService.set(RedisKeys.cache.user('pack-esm'), { from: 'esm' })
      const value = await cacheService.get(RedisKeys.cache.user('pack-esm'))
      const limit = await rateLimiter.checkLimit('pack', 'api')
      await closeRedisConnection()
      console.log(JSON.stringify({ value, allowed: limit.allowed }))`)
    fs.writeFileSync(path.join(app, 'check.ts'), `
      import { cacheService, RedisKeys, RedisTTL, withLock, type CacheStats } from '@yesgoddess/redis'
      export async function example(id: string): Promise<CacheStats> {
        await cacheService.set(RedisKeys.cache.user(id), { id }, RedisTTL.cache.user)
        const user: { id: string } | null = await cacheService.get<{ id: string }>(RedisKeys.cache.user(id))
        await withLock(RedisKeys.lock.resource(id), async ({ fencingToken }) => fencingToken, 10)
        void user
        return cacheService.getStats()
      }`)
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', skipLibCheck: false, types: ['node'] },
      files: ['check.ts'],
    }))
    const appEnv = { ...env, REDIS_URL: server.url }
    const cjs = JSON.parse(run(process.execPath, ['check.cjs'], { cwd: app, env: appEnv }))
    check(cjs.value?.from === 'cjs', 'CommonJS: require, cacheService set/get', JSON.stringify(cjs.value))
    check(cjs.binary?.includes(`node_modules/@yesgoddess/redis-${PLATFORM}/${BINARY}`), 'the binary came from the platform package', cjs.binary)
    const esm = JSON.parse(run(process.execPath, ['check.mjs'], { cwd: app, env: appEnv }))
    check(esm.value?.from === 'esm' && esm.allowed === true, 'ESM: import, cacheService set/get, rateLimiter', JSON.stringify(esm))
    run(process.execPath, [path.join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', app], { cwd: app, env })
    check(true, 'TypeScript: tsc --noEmit --strict against the shipped index.d.ts')
  } catch (error) {
    check(false, 'the installed package works', error.message)
  } finally {
    await server.stop()
    fs.rmSync(work, { recursive: true, force: true })
  }
  console.log(`e2e:pack — ${failures === 0 ? 'passed' : `${failures} check(s) failed`} in ${((Date.now() - started) / 1000).toFixed(0)} s`)
  process.exit(failures === 0 ? 0 : 1)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
