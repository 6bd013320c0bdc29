//! The Lua scripts, one file each under `src/scripts/` (each names its KEYS and
//! ARGV in a header), compiled into the addon. Every script touches keys of a
//! single hash slot.

use napi_derive::napi;

/// Compare-and-delete of a lock (KEYS[1] lock, ARGV[1] token).
pub const RELEASE_LOCK: &str = include_str!("scripts/release_lock.lua");

/// The source of a script by name (`releaseLock`), for the JS layer to run with EVAL.
#[napi]
pub fn script_source(name: String) -> napi::Result<&'static str> {
  match name.as_str() {
    "releaseLock" => Ok(RELEASE_LOCK),
    _ => Err(crate::errors::type_error(format!("no script named {name}"))),
  }
}
