//! The Lua scripts, one file each under `src/scripts/` (each names its KEYS and
//! ARGV in a header), compiled into the addon. Every script touches keys of a
//! single hash slot. The JS layer runs them with EVALSHA and falls back to EVAL
//! (which also loads them) when the server answers NOSCRIPT.

use napi_derive::napi;

/// Compare-and-delete of a lock (KEYS[1] lock, ARGV[1] token).
pub const RELEASE_LOCK: &str = include_str!("scripts/release_lock.lua");
/// SET NX PX plus the fencing token (KEYS[1] lock, KEYS[2] fencing counter).
pub const ACQUIRE_LOCK: &str = include_str!("scripts/acquire_lock.lua");
/// Compare-and-expire of a lock (KEYS[1] lock, ARGV[1] token, ARGV[2] ms).
pub const EXTEND_LOCK: &str = include_str!("scripts/extend_lock.lua");
/// The sliding-window rate limit (KEYS[1] window: packed slot times; ARGV limit, window ms, consume, cost).
pub const SLIDING_WINDOW: &str = include_str!("scripts/sliding_window.lua");

const SCRIPTS: &[(&str, &str)] = &[
  ("releaseLock", RELEASE_LOCK),
  ("acquireLock", ACQUIRE_LOCK),
  ("extendLock", EXTEND_LOCK),
  ("slidingWindow", SLIDING_WINDOW),
];

fn source_of(name: &str) -> Option<&'static str> {
  SCRIPTS.iter().find(|(n, _)| *n == name).map(|(_, source)| *source)
}

fn find(name: &str) -> napi::Result<&'static str> {
  source_of(name).ok_or_else(|| crate::errors::type_error(format!("no script named {name}")))
}

/// The source of a script by name (`releaseLock`, `acquireLock`, `extendLock`, `slidingWindow`).
#[napi]
pub fn script_source(name: String) -> napi::Result<&'static str> {
  find(&name)
}

/// The SHA1 of a script's source, as EVALSHA wants it.
#[napi]
pub fn script_sha(name: String) -> napi::Result<String> {
  Ok(redis::Script::new(find(&name)?).get_hash().to_string())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn every_script_names_its_keys_and_args() {
    for (name, source) in SCRIPTS {
      assert!(source.contains("KEYS[1]"), "{name} has no KEYS header");
      assert!(source.starts_with("-- "), "{name} has no header");
      assert_eq!(redis::Script::new(source_of(name).unwrap()).get_hash().len(), 40);
    }
  }
}
