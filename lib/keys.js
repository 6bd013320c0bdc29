'use strict'
// `RedisKeys` and `RedisTTL`, built from the key scheme that Rust owns
// (src/core/keyscheme.rs): its templates and its set of ids written unchanged
// come from the binding; an id to escape or to refuse goes to Rust, which
// escapes it so that an id is always data, never a pattern.

const { native, nativeCall, invalid } = require('./runtime.js')

/** A lone surrogate would reach Rust as U+FFFD and two ids would share one key. */
function wellFormed(id, what) {
  if (typeof id === 'string' && !id.isWellFormed()) {
    throw invalid(`RedisKeys.${what}: the id is not well-formed UTF-16 (it holds a lone surrogate)`)
  }
}

/**
 * Ids that a builder writes unchanged (no character to escape), as Rust
 * defines them (`plainIdPattern()`): the key of such ids is composed here from
 * the builder's parts, also Rust's, without a call into Rust. Any other id
 * (one to escape, or one to refuse) goes to Rust's `buildKey`, which escapes
 * it or throws; a test checks that both give the same key for every character.
 */
const PLAIN_ID = new RegExp(native.plainIdPattern())

/** The id as its key writes it when it needs no escaping, else undefined. */
function plainId(id) {
  if (typeof id === 'string') return PLAIN_ID.test(id) && id.isWellFormed() ? id : undefined
  // A safe integer is written in decimal, as Rust writes it (-0 as 0).
  if (typeof id === 'number' && Number.isSafeInteger(id)) return String(id)
  return undefined
}

/** The key of `parts` (Rust's template) for ids `a` and `b`, or undefined when an id needs Rust. */
function compose(parts, a, b) {
  let key = ''
  let given = 0
  for (const part of parts) {
    if (part.kind === 'text') {
      key += part.text
      continue
    }
    const id = given++ === 0 ? a : b
    if (part.kind === 'optionalId') {
      if (id === undefined || id === null) continue
      key += part.text
    }
    const text = plainId(id)
    if (text === undefined) return undefined
    key += text
  }
  return key
}

function makeBuilder(index, info) {
  const what = `${info.family}.${info.name}`
  const parts = info.parts
  const build = (a, b) => {
    const key = compose(parts, a, b)
    if (key !== undefined) return key
    wellFormed(a, what)
    if (info.maxArgs > 1) wellFormed(b, what)
    return nativeCall(() => native.buildKey(index, a, b))
  }
  let builder
  if (info.maxArgs === 0) {
    const key = build()
    builder = () => key
  } else if (info.maxArgs === 1) builder = (id) => build(id) // a second argument is ignored
  else builder = build
  Object.defineProperty(builder, 'name', { value: what })
  return builder
}

const RedisKeys = {}
const RedisTTL = {}
native.keyScheme().forEach((info, index) => {
  const family = (RedisKeys[info.family] ||= {})
  family[info.name] = makeBuilder(index, info)
  if (info.ttl != null) (RedisTTL[info.family] ||= {})[info.name] = info.ttl
})
for (const [prefix, ttl] of native.prefixTtls()) {
  if (ttl != null) (RedisTTL[prefix.replace(/:$/, '')] ||= {}).default = ttl
}
for (const group of [...Object.values(RedisKeys), ...Object.values(RedisTTL)]) Object.freeze(group)
Object.freeze(RedisKeys)
Object.freeze(RedisTTL)

/**
 * The Redis Cluster hash slot (0–16383) of `key` as the package sends it
 * (with `keyPrefix`; a `{hash tag}` in it decides). Keys in one slot can go in
 * one multi-key command or script.
 */
function keySlot(key) {
  if (typeof key !== 'string' || key.length === 0) throw invalid('keySlot(key): key must be a non-empty string')
  return nativeCall(() => native.keySlot(key))
}

module.exports = { RedisKeys, RedisTTL, keySlot }
