'use strict'
// `RedisKeys` and `RedisTTL`, built from the key scheme that Rust owns
// (src/core/keyscheme.rs): every builder calls into Rust, which validates the id and
// escapes it so that an id is always data, never a pattern.

const { native, nativeCall, invalid } = require('./runtime.js')

/** A lone surrogate would reach Rust as U+FFFD and two ids would share one key. */
function wellFormed(id, what) {
  if (typeof id === 'string' && !id.isWellFormed()) {
    throw invalid(`RedisKeys.${what}: the id is not well-formed UTF-16 (it holds a lone surrogate)`)
  }
}

/**
 * Keys built lately, per builder: a key depends only on the builder and its
 * ids (the key prefix is added when a command is sent), so a hot id (an
 * idempotency key replayed, a flag asked for on every request) skips the call
 * into Rust. Emptied when it reaches this size.
 */
const MEMO_SIZE = 4096

/** Only ids that Rust accepted and that a Map compares by value are kept. */
function memoable(id) {
  return typeof id === 'string' || typeof id === 'number'
}

function makeBuilder(index, maxArgs, family, name) {
  const what = `${family}.${name}`
  let builder
  if (maxArgs === 0) builder = () => nativeCall(() => native.buildKey(index))
  else if (maxArgs === 1) {
    const memo = new Map()
    builder = (id) => {
      let key = memo.get(id)
      if (key !== undefined) return key
      wellFormed(id, what)
      key = nativeCall(() => native.buildKey(index, id))
      if (memoable(id)) {
        if (memo.size >= MEMO_SIZE) memo.clear()
        memo.set(id, key)
      }
      return key
    }
  } else {
    // Two levels: the first id, then the second (`undefined` when left out).
    const memo = new Map()
    let size = 0
    builder = (a, b) => {
      const inner = memo.get(a)
      if (inner !== undefined) {
        const key = inner.get(b)
        if (key !== undefined) return key
      }
      wellFormed(a, what)
      wellFormed(b, what)
      const key = nativeCall(() => native.buildKey(index, a, b))
      if (memoable(a) && (b === undefined || memoable(b))) {
        if (size >= MEMO_SIZE) {
          memo.clear()
          size = 0
        }
        let ids = memo.get(a)
        if (ids === undefined) memo.set(a, (ids = new Map()))
        ids.set(b, key)
        size++
      }
      return key
    }
  }
  Object.defineProperty(builder, 'name', { value: what })
  return builder
}

const RedisKeys = {}
const RedisTTL = {}
native.keyScheme().forEach((info, index) => {
  const family = (RedisKeys[info.family] ||= {})
  family[info.name] = makeBuilder(index, info.maxArgs, info.family, info.name)
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
