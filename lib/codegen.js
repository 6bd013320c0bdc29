'use strict'
// Functions compiled from generated source, shared by the cache's hot-key
// copiers (lib/decoded.js) and its serializers (lib/encoded.js).

/** Set when code generation from strings is refused (--disallow-code-generation-from-strings). */
let refused = false

/** Whether code generation was refused in this process (callers then skip building source). */
function codegenRefused() {
  return refused
}

/**
 * `make(new Function(...params, source))`, made once per source and kept in
 * `kept` (a Map shared by this thread's module instances); null when `max`
 * sources are kept already, when code generation is refused (remembered:
 * never tried again), or when `make` throws (not kept: tried again next time).
 */
function compiled(kept, max, params, source, make = (fn) => fn) {
  let made = kept.get(source)
  if (made !== undefined) return made
  if (refused || kept.size >= max) return null
  let fn
  try {
    fn = new Function(...params, source)
  } catch {
    refused = true
    return null
  }
  try {
    made = make(fn)
  } catch {
    return null
  }
  kept.set(source, made)
  return made
}

module.exports = { compiled, codegenRefused }
