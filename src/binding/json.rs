//! The string check of the JS serializer compiled per shape (`lib/encoded.js`).

use napi::bindgen_prelude::*;
use napi::JsString;
use napi_derive::napi;

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
