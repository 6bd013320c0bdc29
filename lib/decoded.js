'use strict'
// The memo of decoded JSON values, by Redis key: the cache's reads and the
// idempotency replays read the same text again and again.

const { runtime, native } = require('./runtime.js')
const { compiled, codegenRefused } = require('./codegen.js')
const { prefixTable } = require('./prefixes.js')

/**
 * Hot keys: `entries`, key → { key, print, text, value, copy } (see
 * `parseFor`), and `order`, the same entry objects in the order their keys
 * came in: the one at `next` is the oldest, whose key makes room for a new
 * one and whose object the new key takes over (no allocation per key read
 * once: spread reads bring a new key on nearly every read). Per JS thread,
 * shared by module instances of this version ("v3").
 */
const memo = runtime.shared('decoded/v3', () => ({ entries: new Map(), order: [], next: 0 }))
const decoded = memo.entries

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
    if (key in Object.prototype) {
      // JSON.parse makes "__proto__" an own property; an assignment would set the prototype (and
      // one to "toString"… would fail with Object.prototype frozen).
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

/**
 * Texts read once (the keys are too many for the memo above) are parsed by a
 * reader compiled for their shape, picked by the key's prefix as the cache's
 * serializers are (lib/encoded.js). V8's JSON.parse spends ~2.4 µs on the
 * 1 KB profile here, most of it scanning strings and looking its keys up in
 * the string table: half of a spread read's client CPU. The reader hands the
 * text to one native call (`jsonMatch`) that checks it against the shape's
 * template (the JSON text of a value of that shape, each leaf a marker) and
 * writes where each string is and each number's value into OUT; a function
 * compiled for the shape then builds the value from object literals (keys as
 * literals) and slices of the text.
 *
 * A match means JSON.parse would give the same value: the keys spelled as
 * JSON.stringify spells them, in the template's order; no whitespace; strings
 * with no escape and no control character; numbers in JSON's grammar, rounded
 * as JSON.parse rounds them (Rust's parser, also correctly rounded); nothing
 * after the end. A string, number or boolean leaf may be null, and a leaf
 * that was null may be any of null, a boolean, a number or a string.
 * A member that some values leave out (an optional one) may be absent.
 * Anything else (another shape, an object where a leaf was, an escaped
 * quote…) is read by JSON.parse; when one shape covers the reader's and
 * that value's (`merged`), a reader for it is compiled at once, else the
 * prefix starts over: its second JSON.parse compiles a reader for the shape
 * it reads then. After MAX_MISSES misses it stays on JSON.parse. Arrays of strings, of
 * numbers, and of objects of one shape (a list of records) may have any
 * length (an array empty in both texts the reader is made from is taken for
 * one of strings); other arrays keep their length. Only texts of at most DECODED_MAX_TEXT
 * units are read this way: a string of the value is a slice of the text, and
 * keeps the text (at most that size) alive as long as it lives.
 */
// "v3": entries of this version's shape (a module of an older version, loaded
// into the same process, keeps its own table); REGISTRY: template ids are the
// loaded binary's (another copy of the package in the process, with a binary
// of its own, shares the runtime but not these tables).
const REGISTRY = native.jsonRegistry()
const readerOf = prefixTable(`decoded-readers/v3/${REGISTRY}`, () => ({ seen: 0, read: null, misses: 0, last: null }))
/**
 * The shape each prefix's reader was made for (a value `merged` made, of this
 * module's own objects: none of them is handed to a caller), per module
 * instance: one evaluated again (hot reload) has its own Maybe, Optional and
 * ANY, and starts that prefix over at its first miss.
 */
const shapes = new WeakMap()
/** After this many changes of shape (or shapes that cannot be compiled), a prefix is read by JSON.parse for good. */
const MAX_MISSES = 8
/**
 * Compiled readers by source, per JS thread (worker threads each compile
 * their own); their templates live in Rust, per process, shared by threads.
 */
const readers = runtime.shared(`decoded-readers-compiled/v3/${REGISTRY}`, () => new Map())
const MAX_READERS = 256
/** Larger values (objects, arrays and leaves) get no reader. */
const MAX_READER_NODES = 256
/**
 * Where `jsonMatch` writes each leaf's figures: a string's start and end, a
 * number, a boolean as 1/0, an array's length, an optional member's presence.
 * A text has fewer than it has units, unless it leaves out many optional
 * members: then `jsonMatch` says JSON_MATCH_FULL and OUT grows (4× a time, up
 * to MAX_OUT figures; past that such a text is read by JSON.parse, and is not
 * a miss).
 */
let OUT = new Float64Array(DECODED_MAX_TEXT + 2)
const MAX_OUT = 16 * (DECODED_MAX_TEXT + 2)
const { JSON_MATCH_YES, JSON_MATCH_FULL } = native
const { JSON_LEAF_STRING, JSON_LEAF_NUMBER, JSON_LEAF_BOOLEAN, JSON_LEAF_STRINGS, JSON_LEAF_NUMBERS, JSON_LEAF_SCALAR } = native
const { JSON_LEAF_ITEMS, JSON_LEAF_MAYBE, JSON_LEAF_OPTIONAL, JSON_GROUP_END, JSON_SCALAR_FALSE, JSON_SCALAR_TRUE, JSON_SCALAR_NUMBER } = native
const LEAF = {
  items: String.fromCharCode(JSON_LEAF_ITEMS),
  maybe: String.fromCharCode(JSON_LEAF_MAYBE),
  optional: String.fromCharCode(JSON_LEAF_OPTIONAL),
  end: String.fromCharCode(JSON_GROUP_END),
  string: String.fromCharCode(JSON_LEAF_STRING),
  number: String.fromCharCode(JSON_LEAF_NUMBER),
  boolean: String.fromCharCode(JSON_LEAF_BOOLEAN),
  strings: String.fromCharCode(JSON_LEAF_STRINGS),
  numbers: String.fromCharCode(JSON_LEAF_NUMBERS),
  scalar: String.fromCharCode(JSON_LEAF_SCALAR),
}

/** A leaf that was null, from `out` at `i`: a string's start and end, or a JSON_SCALAR_* code and a number. */
function scalar(text, out, i) {
  const first = out[i]
  if (first >= 0) return text.slice(first, out[i + 1])
  if (first === JSON_SCALAR_NUMBER) return out[i + 1]
  return first === JSON_SCALAR_TRUE ? true : first === JSON_SCALAR_FALSE ? false : null
}

/** An array of strings from `out` at `i` (its length, then each string's start and end in `text`). */
function strings(text, out, i) {
  const items = []
  const end = i + 1 + 2 * out[i]
  for (let j = i + 1; j < end; j += 2) items.push(text.slice(out[j], out[j + 1]))
  return items
}

/** An array of numbers from `out` at `i` (its length, then each value). */
function numbers(out, i) {
  const items = []
  const end = i + 1 + out[i]
  for (let j = i + 1; j < end; j++) items.push(out[j])
  return items
}

/** Where in OUT the last group built by `items`, `maybe` or `present` ended. */
const END = { k: 0 }

/** Null, or the object or array built by `build`, from `out` at `i` (0 for null; else 1, then its figures). */
function maybe(text, out, i, build) {
  if (out[i] !== 0) return build(text, out, i + 1)
  END.k = i + 1
  return null
}

/** What `present` gives for a member that is absent. */
const ABSENT = Symbol('absent')

/** ABSENT, or the member's value built by `build`, from `out` at `i` (0 when absent; else 1, then its figures). */
function present(text, out, i, build) {
  if (out[i] !== 0) return build(text, out, i + 1)
  END.k = i + 1
  return ABSENT
}

/** An array of items of one shape from `out` at `i` (its length, then each item's figures), each built by `build`. */
function items(text, out, i, build) {
  const list = []
  const n = out[i]
  let k = i + 1
  for (let j = 0; j < n; j++) {
    list.push(build(text, out, k))
    k = END.k
  }
  END.k = k
  return list
}

/** No shape covers both values (see `merged`). */
const APART = Symbol('apart')
/** In a value `merged` made: a leaf of two types, read as any scalar (as null is). */
const ANY = Symbol('any scalar')
/** `merged` goes no deeper: past it, values have no common shape (and no reader: see MAX_READER_NODES). */
const MAX_MERGE_DEPTH = 64

/** In a value `merged` made: an object or array that may be null. */
class Maybe {
  constructor(value) {
    this.value = value
  }
}

/** In a value `merged` made: the value of a member that one of the values has and the other has not. */
class Optional {
  constructor(value) {
    this.value = value
  }
}

/** A member's value as optional. */
function optional(value) {
  return value instanceof Optional ? value : new Optional(value)
}

/** The value of a member both objects have (either may be optional), or APART. */
function mergedMember(a, b, depth) {
  const both = merged(a instanceof Optional ? a.value : a, b instanceof Optional ? b.value : b, depth)
  if (both === APART) return APART
  return a instanceof Optional || b instanceof Optional ? new Optional(both) : both
}

/** An object or array (not a Maybe). */
function isGroup(value) {
  return typeof value === 'object' && value !== null && !(value instanceof Maybe)
}

/** What kind of array `list` is read as: 'empty', 'strings', 'numbers', 'items' (objects or null, any length) or 'fixed'. */
function arrayKind(list) {
  if (list.length === 0) return 'empty'
  if (list.every((item) => typeof item === 'string')) return 'strings'
  if (list.every((item) => typeof item === 'number')) return 'numbers'
  const item = (x) => x === null || x instanceof Maybe || (typeof x === 'object' && !Array.isArray(x))
  if (list.every(item) && list.some((x) => x !== null)) return 'items'
  return 'fixed'
}

/**
 * A value whose reader reads both `a` and `b` (values JSON.parse made, or
 * made by `merged`), or APART: objects whose common keys come in the same
 * order (a key only one of them has becomes an Optional member, in its place),
 * arrays of one kind (an empty one joins any kind of any length), and leaves
 * of one type; two leaves of different types become ANY, which reads any
 * scalar as null does, and null with an object or array becomes a Maybe of it.
 */
function merged(a, b, depth = 0) {
  if (depth > MAX_MERGE_DEPTH) return APART
  if (a instanceof Maybe || b instanceof Maybe || (a === null && isGroup(b)) || (b === null && isGroup(a))) {
    const x = a instanceof Maybe ? a.value : a
    const y = b instanceof Maybe ? b.value : b
    const both = x === null ? y : y === null ? x : merged(x, y, depth + 1)
    return isGroup(both) ? new Maybe(both) : APART
  }
  const leafA = typeof a !== 'object' || a === null
  const leafB = typeof b !== 'object' || b === null
  if (leafA || leafB) {
    if (!(leafA && leafB)) return APART
    return typeof a === typeof b ? a : ANY
  }
  if (Array.isArray(a) !== Array.isArray(b)) return APART
  if (Array.isArray(a)) {
    const kindA = arrayKind(a)
    const kindB = arrayKind(b)
    if (kindA === 'empty' && kindB !== 'fixed') return b
    if (kindB === 'empty' && kindA !== 'fixed') return a
    if (kindA !== kindB) return APART
    if (kindA === 'strings' || kindA === 'numbers') return a
    if (kindA === 'items') {
      const item = merged(itemOf(a, depth + 1), itemOf(b, depth + 1), depth + 1)
      return item === APART ? APART : [item]
    }
    if (a.length !== b.length) return APART
    const list = []
    for (let i = 0; i < a.length; i++) {
      const item = merged(a[i], b[i], depth + 1)
      if (item === APART) return APART
      list.push(item)
    }
    return list
  }
  const keysA = Object.keys(a)
  const keysB = Object.keys(b)
  const inA = new Set(keysA)
  const inB = new Set(keysB)
  const both = {}
  const put = (key, item) => Object.defineProperty(both, key, { value: item, enumerable: true, writable: true, configurable: true })
  let i = 0
  let j = 0
  while (i < keysA.length || j < keysB.length) {
    const x = keysA[i]
    const y = keysB[j]
    if (i < keysA.length && x === y) {
      const item = mergedMember(a[x], b[y], depth + 1)
      if (item === APART) return APART
      put(x, item)
      i++
      j++
    } else if (i < keysA.length && !inB.has(x)) {
      put(x, optional(a[x]))
      i++
    } else if (j < keysB.length && !inA.has(y)) {
      put(y, optional(b[y]))
      j++
    } else {
      return APART // keys both have, in another order
    }
  }
  return both
}

/** One item whose reader reads every item of `list` (of kind 'items'), or APART. */
function itemOf(list, depth = 0) {
  let item = list[0]
  for (let i = 1; i < list.length && item !== APART; i++) item = merged(item, list[i], depth)
  return item
}

/**
 * A group read by a function of its own (added to `at.items`) whose slots
 * count from the `k` it is given; the code calls it through `helper` (`r`:
 * items, `m`: maybe, `p`: present), and slots after it count from where it
 * ended. `head` opens the group's template and `tail` closes it (an optional
 * member's `,"key":`, or `"key":` and `,` before the object's first member
 * that is always there). Null when the group's shape has too many nodes.
 */
function groupParts(shape, at, marker, helper, head = '', tail = '') {
  const inner = { nodes: at.nodes, k: 0, base: true, items: at.items }
  const part = readerParts(shape, inner)
  if (part === null) return null
  at.nodes = inner.nodes
  const build = `f${at.items.length}`
  at.items.push(`const ${build}=function(t,o,k){let a,x;const y=${part.code};e.k=k+${inner.k};return y};`)
  const i = at.base ? `k+${at.k++}` : `${at.k++}`
  at.base = true
  at.k = 0
  return { template: `${marker}${head}${part.template}${tail}${LEAF.end}`, code: `(a=${helper}(t,o,${i},${build}),k=e.k,a)` }
}

/**
 * The statement storing `code`'s value in `y` as member `key` (written as
 * `name`), an own property as JSON.parse makes it: an assignment, but for a
 * name Object.prototype has ("__proto__": an assignment would set the
 * prototype; "toString", "constructor"…: it would fail were the prototype
 * frozen), which is defined (~30× slower).
 */
function store(key, name, code) {
  if (!(key in Object.prototype)) return `y[${name}]=${code};`
  return `Object.defineProperty(y,${name},{value:${code},writable:true,enumerable:true,configurable:true});`
}

/**
 * An object with optional members, read by a function of its own: the
 * members up to the first optional one in an object literal, then each
 * member stored in text order, an optional one only when the text has it
 * (its own text right there: the template's optional group, `,"key":` after
 * the first member that is always there, `"key":` before it, with the comma
 * after the value; see `store`). At least one member must always be there
 * (the commas hang on it). Null when it has too many nodes, or none is.
 */
function objectParts(value, keys, at) {
  const first = keys.findIndex((key) => !(value[key] instanceof Optional))
  if (first < 0) return null
  const inner = { nodes: at.nodes, k: 0, base: true, items: at.items }
  const template = []
  const literal = []
  const stores = []
  for (const [index, key] of keys.entries()) {
    const name = JSON.stringify(key)
    const member = value[key]
    const head = `${index > first ? ',' : ''}${name}:`
    if (member instanceof Optional && stores.length === 0) stores.push(`const y={${literal.join(',')}};`)
    if (member instanceof Optional) {
      const part = groupParts(member.value, inner, LEAF.optional, 'p', head, index < first ? ',' : '')
      if (part === null) return null
      template.push(part.template)
      stores.push(`if((a=${part.code})!==u)${store(key, name, 'a')}`)
      continue
    }
    const part = readerParts(member, inner)
    if (part === null) return null
    template.push(`${head}${part.template}`)
    if (stores.length === 0) literal.push(`${key === '__proto__' ? `[${name}]` : name}:${part.code}`)
    else stores.push(store(key, name, part.code))
  }
  at.nodes = inner.nodes
  const build = `f${at.items.length}`
  at.items.push(`const ${build}=function(t,o,k){let a,x;${stores.join('')}e.k=k+${inner.k};return y};`)
  const i = at.base ? `k+${at.k}` : `${at.k}`
  at.base = true
  at.k = 0
  return { template: `{${template.join('')}}`, code: `(a=${build}(t,o,${i}),k=e.k,a)` }
}

/**
 * The template of `value` (a value JSON.parse made, or one `merged` made:
 * with Maybe groups, Optional members and ANY leaves) and the source of the
 * expression that builds it from `t` (the text) and `o` (OUT), reading OUT in
 * text order from `at.k` on: a number, or `k+n` once an array of any length
 * has set `k`. Null when the value has too many nodes.
 */
function readerParts(value, at) {
  if (--at.nodes < 0) return null
  const slot = () => (at.base ? `k+${at.k++}` : `${at.k++}`)
  // A leaf may also be null in a later text (a negative start, NaN, -1); a
  // leaf that was null may be any of null, a boolean, a number or a string.
  switch (typeof value) {
    case 'string': {
      const start = slot()
      return { template: LEAF.string, code: `((x=o[${start}])<0?null:t.slice(x,o[${slot()}]))` }
    }
    case 'number':
      return { template: LEAF.number, code: `((x=o[${slot()}])!==x?null:x)` }
    case 'boolean':
      return { template: LEAF.boolean, code: `((x=o[${slot()}])<0?null:x===1)` }
  }
  if (value instanceof Maybe) return groupParts(value.value, at, LEAF.maybe, 'm')
  if (value !== null && value !== ANY && typeof value !== 'object') return null // nothing JSON.parse makes
  if (value === null || value === ANY) {
    const first = slot()
    slot()
    return { template: LEAF.scalar, code: `v(t,o,${first})` }
  }
  if (Array.isArray(value)) {
    const kind = value.every((item) => typeof item === 'string') ? 'strings'
      : value.every((item) => typeof item === 'number') ? 'numbers' : null
    if (kind !== null) {
      // The array's length is read at run time: from here on, slots count from k.
      const i = slot()
      const size = kind === 'strings' ? '2*a.length' : 'a.length'
      const read = kind === 'strings' ? `s(t,o,${i})` : `n(o,${i})`
      at.base = true
      at.k = 0
      return { template: LEAF[kind], code: `(a=${read},k=${i}+1+${size},a)` }
    }
    if (arrayKind(value) === 'items') {
      // Objects (or null) read alike, as an array of any length.
      const item = itemOf(value)
      if (item !== APART) return groupParts(item, at, LEAF.items, 'r')
    }
    const parts = []
    for (const item of value) parts.push(readerParts(item, at))
    if (parts.includes(null)) return null
    return { template: `[${parts.map((p) => p.template).join(',')}]`, code: `[${parts.map((p) => p.code).join(',')}]` }
  }
  const keys = Object.keys(value)
  if (keys.some((key) => value[key] instanceof Optional)) return objectParts(value, keys, at)
  const template = []
  const code = []
  for (const key of keys) {
    const name = JSON.stringify(key)
    const part = readerParts(value[key], at)
    if (part === null) return null
    template.push(`${name}:${part.template}`)
    code.push(`${key === '__proto__' ? `[${name}]` : name}:${part.code}`)
  }
  return { template: `{${template.join(',')}}`, code: `{${code.join(',')}}` }
}

/** A reader `text → value` for texts of `value`'s shape (after a match in OUT); null when there is none. */
function readerFor(value) {
  if (codegenRefused()) return null
  const at = { nodes: MAX_READER_NODES, k: 0, base: false, items: [] }
  const parts = readerParts(value, at)
  if (parts === null) return null
  const source = `const{s,n,v,r,m,p,u,e}=h;${at.items.join('')}return function(t,o){let k=0,a,x;return ${parts.code}}`
  // null: MAX_READERS shapes kept, or code generation refused, or Rust keeps no more templates.
  // The source says all the template says (keys, nesting, each leaf's kind), so it alone names the reader.
  const made = compiled(readers, MAX_READERS, ['h'], source, (factory) => {
    const id = native.jsonTemplate(parts.template)
    return id === null ? null : { id, build: factory({ s: strings, n: numbers, v: scalar, r: items, m: maybe, p: present, u: ABSENT, e: END }) }
  })
  return made ?? null
}

/** JSON.parse(text), or the same value built by the reader compiled for the shape of the texts under `key`'s prefix. */
function parseShaped(key, text) {
  const entry = readerOf(key)
  const read = entry.read
  if (read !== null) {
    const found = native.jsonMatch(read.id, text, text.length, OUT)
    if (found === JSON_MATCH_YES) return read.build(text, OUT)
    if (found === JSON_MATCH_FULL) {
      if (OUT.length >= MAX_OUT) return JSON.parse(text)
      OUT = new Float64Array(OUT.length * 4)
      return parseShaped(key, text)
    }
    // Another shape: JSON.parse reads it (or throws), and the prefix starts over…
    const shape = shapes.get(entry)
    entry.read = null
    entry.seen = 0
    entry.misses++
    const value = JSON.parse(text)
    // …unless one shape covers the old and this one (a member absent, or only in this one…): its reader
    // reads on. The shape is made of a copy of its own, never of the value handed to the caller.
    if (shape !== undefined && entry.misses < MAX_MISSES && typeof value === 'object' && value !== null) {
      widen(entry, merged(shape, copyParsed(value)))
    }
    return value
  }
  const value = JSON.parse(text)
  if (typeof value === 'object' && value !== null && entry.misses < MAX_MISSES) {
    if (++entry.seen < 2) {
      // Its text is kept until the next read: the reader is made for a shape both have.
      entry.last = text
      return value
    }
    // Of values of its own, never of the one handed to the caller.
    const own = copyParsed(value)
    const both = entry.last === null ? APART : merged(JSON.parse(entry.last), own)
    entry.last = null
    // A shape both have, else (none, or one with no reader: no member always there…) this text's.
    if (!widen(entry, both) && !widen(entry, own)) {
      entry.seen = 0
      entry.misses++
    }
  }
  return value
}

/** Whether a reader for `shape` (not APART) was made: the prefix's texts are read by it from now on. */
function widen(entry, shape) {
  if (shape === APART) return false
  entry.read = readerFor(shape)
  if (entry.read === null) return false
  shapes.set(entry, shape)
  return true
}

/** JSON.parse(text), read by the reader of `key`'s prefix when the text is short enough (no memo: each read is new). */
function parseByShape(key, text) {
  return key === undefined || text.length > DECODED_MAX_TEXT ? JSON.parse(text) : parseShaped(key, text)
}

/** JSON.parse(text), or a copy of the value kept for `key` when `text` is the text it came from. */
function parseFor(key, text) {
  if (key === undefined || text.length > DECODED_MAX_TEXT) return JSON.parse(text)
  const entry = decoded.get(key)
  if (entry !== undefined && entry.text === text) return entry.copy(entry.value, copyParsed)
  const value = parseShaped(key, text) // throws for non-JSON: nothing is kept
  const print = fingerprint(text)
  if (entry === undefined) {
    // The oldest key makes room, and its entry object is taken over (no allocation per key read once).
    let fresh = memo.order[memo.next]
    if (fresh === undefined) {
      fresh = { key, print, text: undefined, value: undefined, copy: copyParsed }
      memo.order[memo.next] = fresh
    } else {
      decoded.delete(fresh.key)
      fresh.key = key
      fresh.print = print
      fresh.text = undefined
      fresh.value = undefined
      fresh.copy = copyParsed
    }
    memo.next = (memo.next + 1) % DECODED_KEYS
    decoded.set(key, fresh)
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

module.exports = { parseFor, parseByShape }
