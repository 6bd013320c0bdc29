//! This process's command figures for `getRedisMetrics()`: how many commands
//! got an answer, how many failed (error replies, timeouts, lost connections),
//! and a latency histogram, kept with relaxed atomics so that recording costs
//! a few nanoseconds on the reply path. Latency runs from the moment a request
//! was handed to the client to the moment its reply was parsed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two: quantiles are within 1/8 (12.5 %) of the truth.
const SUB_BUCKETS: u32 = 8;
/// Powers of two of microseconds covered: 1 µs to 2^32 µs (~72 minutes).
const POWERS: u32 = 32;
const BUCKETS: usize = (POWERS * SUB_BUCKETS) as usize;

struct CommandMetrics {
  commands: AtomicU64,
  errors: AtomicU64,
  buckets: [AtomicU64; BUCKETS],
}

static METRICS: CommandMetrics = CommandMetrics {
  commands: AtomicU64::new(0),
  errors: AtomicU64::new(0),
  buckets: [const { AtomicU64::new(0) }; BUCKETS],
};

/// The bucket of a latency in microseconds (log-linear: 8 per power of two).
fn bucket_of(micros: u64) -> usize {
  if micros < SUB_BUCKETS as u64 {
    return micros as usize;
  }
  let power = 63 - micros.leading_zeros(); // >= 3
  let sub = (micros >> (power - 3)) & (SUB_BUCKETS as u64 - 1);
  (((power - 2) * SUB_BUCKETS) as usize + sub as usize).min(BUCKETS - 1)
}

/// The largest latency (µs) that falls in `bucket`.
fn bucket_upper(bucket: usize) -> u64 {
  let b = bucket as u64;
  let sub_buckets = SUB_BUCKETS as u64;
  if b < sub_buckets {
    return b;
  }
  let power = b / sub_buckets + 2;
  let sub = b % sub_buckets;
  ((sub_buckets + sub + 1) << (power - 3)) - 1
}

/// Records one answered command (an error reply counts as an error too).
pub fn record(latency: Duration, error: bool) {
  METRICS.commands.fetch_add(1, Ordering::Relaxed);
  if error {
    METRICS.errors.fetch_add(1, Ordering::Relaxed);
  }
  let micros = latency.as_micros().min(u64::MAX as u128) as u64;
  METRICS.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
}

/// Records commands that failed without an answer (timeout, lost connection).
pub fn record_failures(count: usize, waited: Duration) {
  for _ in 0..count {
    record(waited, true);
  }
}

/// The latency (µs) below which `q` of the recorded commands fall.
fn quantile(counts: &[u64], total: u64, q: f64) -> u64 {
  if total == 0 {
    return 0;
  }
  let rank = ((q * total as f64).ceil() as u64).max(1);
  let mut seen = 0;
  for (bucket, &count) in counts.iter().enumerate() {
    seen += count;
    if seen >= rank {
      return bucket_upper(bucket);
    }
  }
  bucket_upper(BUCKETS - 1)
}

/// This process's command figures since it started (or since `reset`).
pub struct CommandFigures {
  /// Commands that finished: answered, failed or timed out.
  pub commands: f64,
  /// Of those, error replies, timeouts and commands lost with their connection.
  pub errors: f64,
  /// Median latency in milliseconds (upper edge of its histogram bucket, within 12.5 %).
  pub p50_ms: f64,
  /// 99th-percentile latency in milliseconds (same resolution).
  pub p99_ms: f64,
}

/// This process's command counts and latency quantiles, from the histogram.
pub fn figures() -> CommandFigures {
  let counts: Vec<u64> = METRICS.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
  let total: u64 = counts.iter().sum();
  CommandFigures {
    commands: METRICS.commands.load(Ordering::Relaxed) as f64,
    errors: METRICS.errors.load(Ordering::Relaxed) as f64,
    p50_ms: quantile(&counts, total, 0.5) as f64 / 1000.0,
    p99_ms: quantile(&counts, total, 0.99) as f64 / 1000.0,
  }
}

/// Sets the command figures back to zero.
pub fn reset() {
  METRICS.commands.store(0, Ordering::Relaxed);
  METRICS.errors.store(0, Ordering::Relaxed);
  for bucket in &METRICS.buckets {
    bucket.store(0, Ordering::Relaxed);
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn buckets_are_ordered_and_tight() {
    let mut last = 0;
    for micros in [0u64, 1, 7, 8, 9, 15, 16, 100, 1000, 12_345, 1_000_000, 3_600_000_000] {
      let b = bucket_of(micros);
      assert!(b >= last, "bucket of {micros} went back");
      last = b;
      let upper = bucket_upper(b);
      assert!(upper >= micros, "{micros} above its bucket's upper edge {upper}");
      assert!(
        upper as f64 <= micros as f64 * 1.125 + 1.0,
        "{micros}: bucket too wide ({upper})"
      );
    }
  }

  #[test]
  fn quantiles_of_a_known_distribution() {
    let mut counts = vec![0u64; BUCKETS];
    counts[bucket_of(100)] = 98;
    counts[bucket_of(50_000)] = 2;
    assert!((100..=113).contains(&quantile(&counts, 100, 0.5)));
    assert!((50_000..=56_250).contains(&quantile(&counts, 100, 0.99)));
  }
}
