'use strict'
// Private redis-server processes for the tests: each on a free port of
// 127.0.0.1, never persisting anything, stopped by the test that started it.
// Nothing here touches the machine's shared Redis on 6379.

const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const REDIS_SERVER = process.env.REDIS_SERVER_BIN || 'redis-server'
const live = new Set()

/**
 * The harness's TLS switch: with `YG_TEST_TLS=1` the global set-up makes one CA
 * (openssl) and sets `YG_TEST_TLS_FILES`; every RedisServer of the run is then
 * TLS-only unless it asks for `tls: false`, and clients trust the CA through
 * `NODE_EXTRA_CA_CERTS` (the addon and Node's TLS alike).
 */
function harnessTls() {
  const files = process.env.YG_TEST_TLS_FILES
  return files ? JSON.parse(files) : null
}

/** A TCP port that nothing listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

class RedisServer {
  /**
   * @param {object} [options]
   * @param {number} [options.port] fixed port (default: a free one)
   * @param {string[]} [options.args] extra redis-server arguments
   * @param {{cert: string, key: string, ca: string}} [options.tls] serve TLS only
   */
  constructor(options = {}) {
    this.options = options.tls === undefined ? { ...options, tls: harnessTls() || undefined } : options
    if (this.options.tls === false) this.options = { ...this.options, tls: undefined }
    this.port = options.port
    this.child = null
  }

  get url() {
    return this.urlWith()
  }

  /** This server's URL with credentials and a db: `urlWith({ user, password, db })`. */
  urlWith({ user, password, db } = {}) {
    const auth = user !== undefined || password !== undefined ? `${user ?? ''}:${password ?? ''}@` : ''
    return `${this.options.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${this.port}${db !== undefined ? `/${db}` : ''}`
  }

  async start() {
    if (this.child) return this
    if (!this.port) this.port = await freePort()
    const { tls, args = [] } = this.options
    const portArgs = tls
      ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key,
         '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no']
      : ['--port', String(this.port)]
    const child = spawn(
      REDIS_SERVER,
      [...portArgs, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no',
       '--dir', os.tmpdir(), '--loglevel', 'notice', ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    this.child = child
    live.add(child)
    child.on('exit', () => live.delete(child))
    await new Promise((resolve, reject) => {
      let output = ''
      const timer = setTimeout(() => fail(new Error(`redis-server did not start in 10 s:\n${output}`)), 10000)
      const onData = (chunk) => {
        output += chunk
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer)
          resolve()
        }
      }
      const fail = (error) => {
        clearTimeout(timer)
        reject(error)
      }
      child.stdout.on('data', onData)
      child.stderr.on('data', onData)
      child.once('exit', (code) => fail(new Error(`redis-server exited with ${code}:\n${output}`)))
      child.once('error', fail)
    })
    child.stdout.resume()
    child.stderr.resume()
    return this
  }

  async stop() {
    const child = this.child
    if (!child) return
    this.child = null
    if (child.exitCode !== null || child.signalCode !== null) return
    await new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      child.kill('SIGTERM')
    })
  }

  async restart() {
    await this.stop()
    return this.start()
  }

  /** Runs redis-cli against this server (for set-up and inspection, outside the client under test). */
  cli(...args) {
    const tlsArgs = this.options.tls ? ['--tls', '--cacert', this.options.tls.ca] : []
    const auth = this.options.password ? ['-a', this.options.password, '--no-auth-warning'] : []
    return execFileSync('redis-cli', [...tlsArgs, ...auth, '-h', '127.0.0.1', '-p', String(this.port), ...args], {
      encoding: 'utf8',
    }).trim()
  }
}

async function startRedisServer(options) {
  return new RedisServer(options).start()
}

/**
 * A CA and a server certificate (for 127.0.0.1 and localhost unless
 * `subjectAltName` says otherwise), made with openssl in a temp folder.
 */
function makeTlsFiles({ subjectAltName = 'IP:127.0.0.1,DNS:localhost' } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yg-redis-tls-'))
  const file = (name) => path.join(dir, name)
  const openssl = (...args) => execFileSync('openssl', args, { stdio: 'pipe' })
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=yg-test-ca',
    '-keyout', file('ca.key'), '-out', file('ca.crt'))
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'),
    '-out', file('server.csr'))
  fs.writeFileSync(file('ext.cnf'), `subjectAltName=${subjectAltName}\n`)
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
    '-CAcreateserial', '-days', '2', '-extfile', file('ext.cnf'), '-out', file('server.crt'))
  return { dir, ca: file('ca.crt'), cert: file('server.crt'), key: file('server.key') }
}

process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

module.exports = { RedisServer, startRedisServer, freePort, makeTlsFiles, harnessTls }
