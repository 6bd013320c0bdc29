//! JSON text of a known shape for the JS layer: the string check of the
//! serializer compiled per shape (`lib/encoded.js`) and the match of the
//! reader compiled per shape (`lib/decoded.js`).

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, OnceLock, RwLock};

use napi::bindgen_prelude::*;
use napi::JsString;
use napi_derive::napi;

use super::channel::{float64_slice_mut, read_utf16_of_length};
use crate::core::json;

/// Whether JSON.stringify writes `text` unchanged between quotes (no control
/// character, '"', '\\' or surrogate): one call for all the strings of a value.
#[napi]
pub fn json_plain(text: JsString) -> Result<bool> {
  let units = text.into_utf16()?;
  // napi-rs's copy ends with the terminating NUL.
  let units = units.as_slice().split_last().map_or(&[][..], |(_, rest)| rest);
  Ok(json::is_plain(units))
}

// The leaves of a template (see `json::Template::match_text`), for lib/decoded.js.
/// A template's string leaf.
#[napi]
pub const JSON_LEAF_STRING: u32 = json::LEAF_STRING as u32;
/// A template's number leaf.
#[napi]
pub const JSON_LEAF_NUMBER: u32 = json::LEAF_NUMBER as u32;
/// A template's boolean leaf.
#[napi]
pub const JSON_LEAF_BOOLEAN: u32 = json::LEAF_BOOLEAN as u32;
/// A template's array of strings (any length).
#[napi]
pub const JSON_LEAF_STRINGS: u32 = json::LEAF_STRINGS as u32;
/// A template's array of numbers (any length).
#[napi]
pub const JSON_LEAF_NUMBERS: u32 = json::LEAF_NUMBERS as u32;
/// A template's array of items of one shape (any length): the item's template follows, up to `JSON_GROUP_END`.
#[napi]
pub const JSON_LEAF_ITEMS: u32 = json::LEAF_ITEMS as u32;
/// Closes the template that `JSON_LEAF_ITEMS`, `JSON_LEAF_MAYBE` or `JSON_LEAF_OPTIONAL` opened.
#[napi]
pub const JSON_GROUP_END: u32 = json::GROUP_END as u32;
/// A template's object or array that may be null: its template follows, up to `JSON_GROUP_END`.
#[napi]
pub const JSON_LEAF_MAYBE: u32 = json::LEAF_MAYBE as u32;
/// A template's object member that may be absent: its template (`,"key":` and the value's, or
/// `"key":`, the value's and `,` before the first member always there) follows, up to `JSON_GROUP_END`.
#[napi]
pub const JSON_LEAF_OPTIONAL: u32 = json::LEAF_OPTIONAL as u32;
/// A template's leaf that was `null` (null, a boolean, a number or a string).
#[napi]
pub const JSON_LEAF_SCALAR: u32 = json::LEAF_SCALAR as u32;
/// `JSON_LEAF_SCALAR`'s first figure for `null`.
#[napi]
pub const JSON_SCALAR_NULL: i32 = json::SCALAR_NULL;
/// `JSON_LEAF_SCALAR`'s first figure for `false`.
#[napi]
pub const JSON_SCALAR_FALSE: i32 = json::SCALAR_FALSE;
/// `JSON_LEAF_SCALAR`'s first figure for `true`.
#[napi]
pub const JSON_SCALAR_TRUE: i32 = json::SCALAR_TRUE;
/// `JSON_LEAF_SCALAR`'s first figure for a number (the second is its value).
#[napi]
pub const JSON_SCALAR_NUMBER: i32 = json::SCALAR_NUMBER;

/// `jsonMatch`'s answer when the text matched: its figures are in `out`.
#[napi]
pub const JSON_MATCH_YES: u32 = json::Match::Yes as u32;
/// `jsonMatch`'s answer when the text did not match (JSON.parse reads it).
#[napi]
pub const JSON_MATCH_NO: u32 = json::Match::No as u32;
/// `jsonMatch`'s answer when `out` had no room for the text's figures (a larger one may do).
#[napi]
pub const JSON_MATCH_FULL: u32 = json::Match::Full as u32;

/// Templates by id, per process: every thread's readers may use any of them.
static TEMPLATES: RwLock<Vec<Arc<json::Template>>> = RwLock::new(Vec::new());
/// This loaded binary's template registry, named for the JS tables that keep
/// its template ids: two copies of the package in one process (each with its
/// own binary, its own TEMPLATES) share the JS runtime but must not share ids.
/// Random, made once per loaded binary.
#[napi]
pub fn json_registry() -> String {
  static REGISTRY: OnceLock<String> = OnceLock::new();
  REGISTRY
    .get_or_init(|| format!("{:016x}", RandomState::new().build_hasher().finish()))
    .clone()
}

/// Templates kept per process; past this many, none is registered.
const MAX_TEMPLATES: usize = 1024;
/// Longer texts are never matched (the JS readers take at most 4,096 units).
const MAX_TEXT: u32 = 1 << 16;

thread_local! {
  /// The text being matched, as UTF-16 (its allocation reused).
  static TEXT: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
}

/// Registers a template (the JSON text of a shape with its leaves replaced by
/// the `JSON_LEAF_*` units) and returns its id; null when MAX_TEMPLATES are
/// kept, or when its groups (`JSON_LEAF_ITEMS`, `JSON_LEAF_MAYBE`, `JSON_LEAF_OPTIONAL` …
/// `JSON_GROUP_END`) do not pair up.
#[napi]
pub fn json_template(template: JsString) -> Result<Option<u32>> {
  let units = template.into_utf16()?;
  let units = units.as_slice().split_last().map_or(&[][..], |(_, rest)| rest);
  let mut templates = TEMPLATES.write().unwrap_or_else(|e| e.into_inner());
  // Threads (each with its own JS readers) register the same shapes.
  if let Some(id) = templates.iter().position(|t| t.units() == units) {
    return Ok(Some(id as u32));
  }
  if templates.len() >= MAX_TEMPLATES {
    return Ok(None);
  }
  let Some(template) = json::Template::new(units) else {
    return Ok(None);
  };
  templates.push(Arc::new(template));
  Ok(Some((templates.len() - 1) as u32))
}

/// Whether `text` (of `length` units) is an instance of template `id`:
/// `JSON_MATCH_YES`, and its leaves' figures are in `out` (a Float64Array), in
/// text order (see `json::Template::match_text`); `JSON_MATCH_NO`; or
/// `JSON_MATCH_FULL` when `out` had no room for them. A text of another
/// length, or a template id it does not hold, never matches.
#[napi]
pub fn json_match(env: Env, id: u32, text: Unknown, length: u32, out: Unknown) -> Result<u32> {
  const NO: u32 = json::Match::No as u32;
  // lib/decoded.js sends texts of at most 4,096 units; a larger `length` reserves nothing.
  if length > MAX_TEXT {
    return Ok(NO);
  }
  let template = {
    let templates = TEMPLATES.read().unwrap_or_else(|e| e.into_inner());
    match templates.get(id as usize) {
      Some(template) => template.clone(),
      None => return Ok(NO),
    }
  };
  TEXT.with_borrow_mut(|units| {
    // SAFETY: `text` and `out` are arguments of this call (the helpers check
    // their types); `out` is JS memory used only here, before control returns
    // to JS, and `units` is Rust's own, so the two cannot alias.
    let out = unsafe {
      read_utf16_of_length(env.raw(), text.raw(), length as usize, units)?;
      float64_slice_mut(env.raw(), out.raw())?
    };
    if units.len() != length as usize {
      return Ok(NO);
    }
    Ok(template.match_text(units, out) as u32)
  })
}
