//! The Lua scripts, one file each under `src/scripts/` (each names its KEYS and
//! ARGV in a header), compiled into the addon. Every script touches keys of a
//! single hash slot. The JS layer runs them with EVALSHA and falls back to EVAL
//! (which also loads them) when the server answers NOSCRIPT.

/// Compare-and-delete of a lock (KEYS[1] lock, ARGV[1] token).
pub const RELEASE_LOCK: &str = include_str!("../scripts/release_lock.lua");
/// SET NX PX plus the fencing token (KEYS[1] lock, KEYS[2] fencing counter).
pub const ACQUIRE_LOCK: &str = include_str!("../scripts/acquire_lock.lua");
/// Compare-and-expire of a lock (KEYS[1] lock, ARGV[1] token, ARGV[2] ms).
pub const EXTEND_LOCK: &str = include_str!("../scripts/extend_lock.lua");
/// The sliding-window rate limit (KEYS[1] window: packed slot times; ARGV limit, window ms, consume, cost).
pub const SLIDING_WINDOW: &str = include_str!("../scripts/sliding_window.lua");
/// Compare-and-expire of an idempotency claim (KEYS[1] record, ARGV[1] token, ARGV[2] ms).
pub const IDEMPOTENCY_RENEW: &str = include_str!("../scripts/idempotency_renew.lua");
/// Compare-and-delete of an idempotency claim (KEYS[1] record, ARGV[1] token).
pub const IDEMPOTENCY_RELEASE: &str = include_str!("../scripts/idempotency_release.lua");
/// Compare-and-set of a completed idempotency record (KEYS[1] record; ARGV token, record, seconds).
pub const IDEMPOTENCY_COMPLETE: &str = include_str!("../scripts/idempotency_complete.lua");
/// A per-minute counter bucket on the server's clock (KEYS[1] hash; ARGV by, at, minutes kept, minutes ahead).
pub const COUNTER_RECORD: &str = include_str!("../scripts/counter_record.lua");
/// The last N per-minute buckets of a counter (KEYS[1] hash, ARGV[1] minutes).
pub const COUNTER_SERIES: &str = include_str!("../scripts/counter_series.lua");

const SCRIPTS: &[(&str, &str)] = &[
  ("releaseLock", RELEASE_LOCK),
  ("acquireLock", ACQUIRE_LOCK),
  ("extendLock", EXTEND_LOCK),
  ("slidingWindow", SLIDING_WINDOW),
  ("idempotencyRenew", IDEMPOTENCY_RENEW),
  ("idempotencyRelease", IDEMPOTENCY_RELEASE),
  ("idempotencyComplete", IDEMPOTENCY_COMPLETE),
  ("counterRecord", COUNTER_RECORD),
  ("counterSeries", COUNTER_SERIES),
];

/// The source of a script by name (`releaseLock`, `acquireLock`, …).
pub fn source_of(name: &str) -> Option<&'static str> {
  SCRIPTS.iter().find(|(n, _)| *n == name).map(|(_, source)| *source)
}

/// The SHA1 of a script's source, as EVALSHA wants it.
pub fn sha_of(name: &str) -> Option<String> {
  source_of(name).map(|source| redis::Script::new(source).get_hash().to_string())
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
