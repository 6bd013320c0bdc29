'use strict'
// Per-prefix state of the cache's compiled JSON writers (lib/encoded.js) and
// readers (lib/decoded.js): the shapes of the values under a key's prefix.

const { runtime } = require('./runtime.js')

/** Prefixes remembered per table (the oldest is forgotten first). */
const MAX_PREFIXES = 512

/** The part of a key that names its kind: up to its last ':' ('' for every key without one). */
function prefixOf(key) {
  return key.slice(0, key.lastIndexOf(':') + 1)
}

/**
 * A function `key → entry` over the per-process table `name`: the entry of the
 * key's prefix, made by `make()` the first time. The prefix of the last key
 * is found with no slice and no lookup; an entry forgotten from the table
 * still works for whoever holds it.
 */
function prefixTable(name, make) {
  const entries = runtime.shared(name, () => new Map())
  const last = { prefix: '', entry: null }
  return function entryFor(key) {
    if (last.entry !== null && key.startsWith(last.prefix) && key.indexOf(':', last.prefix.length) < 0) {
      return last.entry
    }
    const prefix = prefixOf(key)
    let entry = entries.get(prefix)
    if (entry === undefined) {
      if (entries.size >= MAX_PREFIXES) entries.delete(entries.keys().next().value)
      entry = make()
      entries.set(prefix, entry)
    }
    last.prefix = prefix
    last.entry = entry
    return entry
  }
}

module.exports = { prefixTable }
