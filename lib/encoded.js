'use strict'
// The JSON text of the values the cache writes: JSON.stringify, or, for a
// shape written again and again, a serializer compiled for that shape.

const { isBoxedPrimitive } = require('node:util').types
const { runtime, native } = require('./runtime.js')
const { prefixTable } = require('./prefixes.js')
const { compiled, codegenRefused } = require('./codegen.js')

/**
 * Node 20's V8 serializes a string character by character (~1.5 ns each
 * here): for a 1 KB profile JSON.stringify is ~2 µs, half of a cache write's
 * client CPU. A serializer compiled for the value's shape writes the keys and
 * punctuation as literals, and each string that needs no escape (one regular
 * expression test) as it is between them: ~1 µs for the profile, the same text.
 *
 * Serializers are picked by the key's prefix (up to its last ':', e.g.
 * `cache:user:`; keys without ':' share one). The second write of a plain
 * object under a prefix compiles one for its shape; later writes under that
 * prefix use it while every object in them has the same own enumerable keys
 * in the same order and no toJSON, and every leaf the same type (a Date
 * counts as a leaf). Anything else is written by JSON.stringify, and the
 * prefix starts over; after MAX_MISSES such changes it stays on JSON.stringify.
 * Compiled: objects, leaves (strings, numbers, booleans, null, Dates) and
 * arrays of anything (items that are objects are written by JSON.stringify).
 * Not compiled: values with keys "__proto__" or "toJSON", with undefined,
 * function, symbol or bigint values, or objects of a class (such a value is
 * still written right by a compiled one: JSON.stringify writes it as a plain
 * object, except a boxed primitive, told apart where it could pass).
 * Reads, getters, proxies' traps and toJSON calls run in JSON.stringify's
 * order. A compiled write that finds another shape part-way leaves the value
 * to JSON.stringify, which reads it again: a getter may then run twice, and
 * the text is that of the second read.
 */
const writerOf = prefixTable('encoded/v1', () => ({ seen: 0, write: null, misses: 0 }))
/** After this many changes of shape (or shapes that cannot be compiled), a prefix is written by JSON.stringify for good. */
const MAX_MISSES = 8
/** Compiled serializers by source, per process; new shapes past this many are not compiled. */
const serializers = runtime.shared('encoded-serializers', () => new Map())
const MAX_SERIALIZERS = 256
/** Larger values (objects, arrays and leaves) are not compiled. */
const MAX_NODES = 256
/** A longer source is not compiled. */
const MAX_SOURCE = 16384

/** Thrown by a compiled serializer when the value is not of its shape. */
const BAIL = Symbol('not of this shape')
const OBJECT_PROTOTYPE = Object.prototype
const DATE_TO_JSON = Date.prototype.toJSON
/**
 * A string JSON.stringify writes as it is, between quotes: nothing it escapes
 * (controls, '"', '\\', and lone surrogates: any surrogate is sent to JSON.stringify).
 */
// eslint-disable-next-line no-control-regex -- the controls are what JSON escapes
const PLAIN = /^[^\u0000-\u001f"\\\ud800-\udfff]*$/

/**
 * An object that JSON.stringify writes as its own enumerable keys, and whose
 * keys are `keys`, in that order: of any class, as for JSON.stringify, but not
 * an array or a boxed primitive (JSON.stringify writes the primitive).
 */
function isShape(o, keys) {
  if (typeof o !== 'object' || o === null || Array.isArray(o) || isBoxedPrimitive(o)) return false
  // for-in lists the own enumerable keys in Object.keys's order, then any
  // inherited enumerable ones (which make the shape differ: JSON.stringify then).
  let i = 0
  for (const key in o) if (key !== keys[i++]) return false
  return i === keys.length
}

/** The JSON text of a leaf, as JSON.stringify writes it inside an object; throws BAIL for what is not a leaf. */
function leaf(x) {
  switch (typeof x) {
    case 'string':
      return PLAIN.test(x) ? `"${x}"` : JSON.stringify(x)
    case 'number':
      return Number.isFinite(x) ? `${x}` : 'null'
    case 'boolean':
      return x ? 'true' : 'false'
    case 'object': {
      if (x === null) return 'null'
      // A Date: its toJSON ignores the key, so its own text is its text in place.
      if (x.toJSON === DATE_TO_JSON) {
        const text = JSON.stringify(x)
        if (typeof text === 'string') return text
      }
      throw BAIL
    }
    default:
      // undefined, a function or a symbol (the key is left out), a bigint (a TypeError).
      throw BAIL
  }
}

/** The JSON text of an item of an array: undefined, functions and symbols are null. */
function item(x) {
  if (typeof x === 'object' && x !== null && x.toJSON === undefined) {
    // The item's own text is its text in place (no toJSON of its own to see the key).
    return JSON.stringify(x)
  }
  if (x === undefined || typeof x === 'function' || typeof x === 'symbol') return 'null'
  return leaf(x)
}

/** The JSON text of an array. */
function array(a) {
  if (!Array.isArray(a) || a.toJSON !== undefined) throw BAIL
  const n = a.length
  if (n === 0) return '[]'
  let out = `[${item(a[0])}`
  for (let i = 1; i < n; i++) out += `,${item(a[i])}`
  return `${out}]`
}

/** The text of a string between its quotes, as JSON.stringify writes it. */
function escaped(x) {
  const text = JSON.stringify(x)
  return text.slice(1, text.length - 1)
}

/** A value not of the shape compiled. */
function other() {
  throw BAIL
}

const helpers = { isShape, leaf, array, escaped, other, PLAIN, jsonPlain: native.jsonPlain }

/**
 * Appends to `out` the code writing the object `value`, which the serializer
 * has read into the local `ref`. Every read, check and call that can run
 * user code (a getter, a proxy's trap, a Date's toJSON, an array) is a
 * statement of `out.lines`, in the order JSON.stringify makes them; the text
 * is one concatenation of literals and of locals and string operations on
 * primitives (`out.terms`). Keys are written as JSON strings, which are JS
 * string literals, so no key can change the code. False when the value
 * cannot be compiled.
 */
function objectCode(value, ref, out) {
  // Compiled from plain objects only (any object of the shape is written right at run time).
  const prototype = Object.getPrototypeOf(value)
  if ((prototype !== OBJECT_PROTOTYPE && prototype !== null) || value.toJSON !== undefined) return false
  const keys = Object.keys(value)
  const shape = `K${out.consts.length}`
  out.consts.push(`const ${shape}=${JSON.stringify(keys)};`)
  out.lines.push(`if(${ref}.toJSON!==undefined||!isShape(${ref},${shape}))other();`)
  out.text += '{'
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    // `o["__proto__"]` reads the prototype, and an own toJSON makes the object not plain.
    if (key === '__proto__' || key === 'toJSON' || --out.nodes < 0) return false
    out.text += `${i === 0 ? '' : ','}${JSON.stringify(key)}:`
    const path = `${ref}[${JSON.stringify(key)}]`
    const child = value[key]
    const local = `a${out.locals++}`
    if (Array.isArray(child)) {
      out.lines.push(`const ${local}=array(${path});`)
      term(out, local)
    } else if (typeof child === 'object' && child !== null && child.toJSON !== DATE_TO_JSON) {
      out.lines.push(`const ${local}=${path};`)
      if (!objectCode(child, local, out)) return false
    } else if (typeof child === 'string') {
      // The quotes are part of the literals around it; a string that needs
      // escapes is escaped by JSON.stringify, and anything else is another shape.
      out.lines.push(`const ${local}=${path};`)
      out.text += '"'
      term(out, { string: local })
      out.chars += child.length
      out.text += '"'
    } else if (typeof child === 'number') {
      out.lines.push(`const ${local}=${path};`)
      term(out, `(typeof ${local}==="number"?${local}-${local}===0?""+${local}:"null":other())`)
    } else if (typeof child === 'boolean') {
      out.lines.push(`const ${local}=${path};`)
      term(out, `(${local}===true?"true":${local}===false?"false":other())`)
    } else if (child === null || typeof child === 'object') {
      // null or a Date: leaf() (a Date's toJSON runs here, in order).
      out.lines.push(`const ${local}=leaf(${path});`)
      term(out, local)
    } else {
      // undefined, a function or a symbol (the key is left out), a bigint (a TypeError).
      return false
    }
  }
  out.text += '}'
  return true
}

/** Appends the pending literal and `code` to the concatenation. */
function term(out, code) {
  if (out.text !== '') out.terms.push(JSON.stringify(out.text))
  out.text = ''
  out.terms.push(code)
}

/** A serializer `(value) → text` for plain objects of `value`'s shape, or null. */
function writerFor(value) {
  if (codegenRefused()) return null
  const out = { consts: [], lines: [], terms: [], text: '', locals: 0, nodes: MAX_NODES, chars: 0 }
  if (!objectCode(value, 'v', out)) return null
  if (out.text !== '') out.terms.push(JSON.stringify(out.text))
  // The strings are checked by one native call over all of them when that is
  // cheaper (~150 ns a call, ~0.2 ns a character) than a regular expression
  // test of each (~35 ns a test, ~1.2 ns a character), judged on this value.
  const strings = out.terms.filter((t) => typeof t !== 'string').map((t) => t.string)
  const together = 27 * strings.length + out.chars > 150
  if (together) {
    const all = strings.map((local) => `(typeof ${local}==="string"?${local}:"")`).join('+')
    out.lines.push(`const plain=jsonPlain(${all});`)
  }
  const terms = out.terms.map((t) => {
    if (typeof t === 'string') return t
    const local = t.string
    const check = together ? `plain||PLAIN.test(${local})` : `PLAIN.test(${local})`
    return `(typeof ${local}==="string"?${check}?${local}:escaped(${local}):other())`
  })
  const source = `const{isShape,leaf,array,escaped,other,PLAIN,jsonPlain}=h;${out.consts.join('')}return function(v){${out.lines.join('')}return ${terms.join('+')}}`
  if (source.length > MAX_SOURCE) return null
  // null: MAX_SERIALIZERS shapes kept, or code generation refused (JSON.stringify from now on).
  return compiled(serializers, MAX_SERIALIZERS, ['h'], source, (factory) => factory(helpers))
}

/**
 * JSON.stringify(value), written by the serializer compiled for the shape of
 * the values written under `key`'s prefix when `value` is of that shape.
 * Throws what JSON.stringify throws.
 */
function stringifyFor(key, value) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return JSON.stringify(value)
  const entry = writerOf(key)
  if (entry.write !== null) {
    try {
      return entry.write(value)
    } catch {
      // Another shape (or a getter that threw): JSON.stringify says what it is.
      entry.write = null
      entry.seen = 0
      entry.misses++
      return JSON.stringify(value)
    }
  }
  const text = JSON.stringify(value)
  if (text !== undefined && ++entry.seen >= 2 && entry.misses < MAX_MISSES) {
    try {
      entry.write = writerFor(value)
    } catch {
      // A getter or a proxy's trap that threw on this second look: the text stands.
      entry.write = null
    }
    if (entry.write === null) {
      entry.seen = 0
      entry.misses++
    }
  }
  return text
}

module.exports = { stringifyFor }
