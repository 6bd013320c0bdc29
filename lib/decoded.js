'use strict'
// The memo of decoded JSON values, by Redis key: the cache's reads and the
// idempotency replays read the same text again and again.

const { runtime } = require('./runtime.js')
const { compiled, codegenRefused } = require('./codegen.js')

/**
 * Hot keys: key → { print, text, value, copy } (see `parseFor`); per process,
 * shared by module instances of this version ("v2": its entries hold `copy`).
 */
const decoded = runtime.shared('decoded/v2', () => new Map())

/**
 * Hot keys read again unchanged are not parsed again. For each of the last
 * DECODED_KEYS keys read, a short fingerprint of the text last read is kept.
 * When a read's text has the same fingerprint, the text itself and a private
 * copy of its decoded value are kept; from then on a read whose text is equal
 * to the kept text (compared in full) gets a fresh copy of that value (~45 ns
 * for a 1 KB profile, by a copier compiled for its shape: `copierFor`) instead
 * of a new JSON.parse (~2.5 µs). Every read still
 * goes to Redis, and every caller gets its own object, equal to what
 * JSON.parse would give. Keys read once hold a number, not their text.
 * Shared by the cache and the idempotency records: it is keyed by Redis key
 * and checked against the full text, so two readers of one key can share it.
 */
const DECODED_KEYS = 512
/** Longer texts are always parsed (and bound the memo at ~DECODED_KEYS × 3 × this). */
const DECODED_MAX_TEXT = 4096

/** A deep copy of a value made by JSON.parse: plain objects, arrays and primitives only. */
function copyParsed(value) {
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) {
    const copy = []
    for (let i = 0; i < value.length; i++) copy.push(copyParsed(value[i]))
    return copy
  }
  const copy = {}
  const keys = Object.keys(value)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    if (key === '__proto__') {
      // JSON.parse makes "__proto__" an own property; an assignment would set the prototype.
      Object.defineProperty(copy, key, { value: copyParsed(value[key]), writable: true, enumerable: true, configurable: true })
    } else {
      copy[key] = copyParsed(value[key])
    }
  }
  return copy
}

/**
 * Copiers made for the shapes of kept values: the JS source of a function
 * that builds a copy of a value of that shape (object and array literals,
 * leaves read from the kept value) → the compiled function. A literal builds
 * an object in one go where `copyParsed` stores key by key through a
 * megamorphic store: ~45 ns against ~820 ns for the 1 KB profile. Per
 * process, at most MAX_COPIERS shapes (then key by key for new shapes).
 */
const copiers = runtime.shared('decoded-copiers', () => new Map())
const MAX_COPIERS = 256
/** Larger values (more objects, arrays and leaves) are copied by `copyParsed`. */
const MAX_COPIER_NODES = 256
/** Longer arrays are copied by `copyParsed`, inside the literal of the rest. */
const MAX_LITERAL_ARRAY = 32
/** A longer source is not compiled (each key is written at most twice, so ~2× the text at most). */
const MAX_COPIER_SOURCE = 16384

/**
 * The source of an expression copying `value`, which the copier reads as
 * `ref`; each object or array inside is read once into a local (declared in
 * `out.decls`), so a key appears at most twice in the source. Null when the
 * value has too many nodes. Property names are written as JSON strings,
 * which are JS string literals, so no key can change the code; "__proto__"
 * is a computed key (an own property, as JSON.parse makes it), never the
 * prototype.
 */
function copyExpression(value, ref, out) {
  if (--out.nodes < 0) return null
  if (Array.isArray(value)) {
    if (value.length > MAX_LITERAL_ARRAY) return `c(${ref})`
    const items = []
    for (let i = 0; i < value.length; i++) {
      const item = copyChild(value[i], `${ref}[${i}]`, out)
      if (item === null) return null
      items.push(item)
    }
    return `[${items.join(',')}]`
  }
  const fields = []
  for (const key of Object.keys(value)) {
    const name = JSON.stringify(key)
    const field = copyChild(value[key], `${ref}[${name}]`, out)
    if (field === null) return null
    fields.push(`${key === '__proto__' ? `[${name}]` : name}:${field}`)
  }
  return `{${fields.join(',')}}`
}

/** A leaf is read in place; an object or array is first read into a local of its own. */
function copyChild(value, path, out) {
  if (typeof value !== 'object' || value === null) {
    return --out.nodes < 0 ? null : path
  }
  if (Array.isArray(value) && value.length > MAX_LITERAL_ARRAY) {
    return --out.nodes < 0 ? null : `c(${path})`
  }
  const local = `n${out.decls.length}`
  out.decls.push(`const ${local}=${path};`)
  return copyExpression(value, local, out)
}

/** A function `(value, copyParsed) → copy` for values of `value`'s shape. */
function copierFor(value) {
  if (codegenRefused() || typeof value !== 'object' || value === null) return copyParsed
  const out = { nodes: MAX_COPIER_NODES, decls: [] }
  const expression = copyExpression(value, 'v', out)
  if (expression === null) return copyParsed
  const source = `${out.decls.join('')}return ${expression}`
  if (source.length > MAX_COPIER_SOURCE) return copyParsed
  // null: MAX_COPIERS shapes kept, or code generation refused (key by key from now on).
  return compiled(copiers, MAX_COPIERS, ['v', 'c'], source) ?? copyParsed
}

/** A cheap fingerprint of a text (its length and ~16 of its characters); equal texts have equal ones. */
function fingerprint(text) {
  const length = text.length
  const step = (length >>> 4) + 1
  let hash = length
  for (let i = 0; i < length; i += step) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0
  return hash
}

/** JSON.parse(text), or a copy of the value kept for `key` when `text` is the text it came from. */
function parseFor(key, text) {
  if (key === undefined || text.length > DECODED_MAX_TEXT) return JSON.parse(text)
  const entry = decoded.get(key)
  if (entry !== undefined && entry.text === text) return entry.copy(entry.value, copyParsed)
  const value = JSON.parse(text) // throws for non-JSON: nothing is kept
  const print = fingerprint(text)
  if (entry === undefined) {
    if (decoded.size >= DECODED_KEYS) decoded.delete(decoded.keys().next().value)
    decoded.set(key, { print, text: undefined, value: undefined, copy: copyParsed })
  } else if (entry.text === undefined && entry.print === print) {
    // Read again (most likely the same text): keep it and a private copy of its value.
    entry.text = text
    entry.value = copyParsed(value)
    entry.copy = copierFor(entry.value)
  } else {
    entry.print = print
    entry.text = undefined
    entry.value = undefined
    entry.copy = copyParsed
  }
  return value
}

module.exports = { parseFor }
