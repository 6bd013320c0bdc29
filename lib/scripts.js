'use strict'
// Runs the Lua scripts that Rust compiles in (src/scripts/*.lua): EVALSHA on
// the batched boundary, and EVAL (which loads the script) once when the
// server does not know it yet (a new or flushed server).

const { runtime, native, Op, Flag } = require('./runtime.js')

const { request } = runtime
const scripts = new Map()

function script(name) {
  let entry = scripts.get(name)
  if (entry === undefined) {
    entry = { source: native.scriptSource(name), sha: native.scriptSha(name) }
    scripts.set(name, entry)
  }
  return entry
}

/**
 * Runs a script with `rest` = [its sha, numkeys, ...keys, ...args]: EVALSHA,
 * and EVAL with the source (which also loads it) when the server answers
 * NOSCRIPT — a reply handled here, so not counted as a failed command.
 * `flags` (e.g. `Flag.DEGRADED`) go with both requests; `op` is `Op.CALL`, or
 * `Op.CALL_BUFFER` for a reply of bytes (a Buffer).
 */
async function evalScript(entry, rest, flags = 0, op = Op.CALL) {
  try {
    return await request(op | Flag.SCRIPT_PROBE | flags, 'EVALSHA', rest)
  } catch (error) {
    if (error === null || typeof error !== 'object' || error.code !== 'NOSCRIPT') throw error
    rest[0] = entry.source
    return request(op | flags, 'EVAL', rest)
  }
}

/** Runs the script `name` with `keys` and `args`; resolves its reply. */
function runScript(name, keys, args) {
  const entry = script(name)
  const rest = [entry.sha, keys.length]
  for (let i = 0; i < keys.length; i++) rest.push(keys[i])
  for (let i = 0; i < args.length; i++) rest.push(args[i])
  return evalScript(entry, rest)
}

module.exports = { runScript, script, evalScript }
