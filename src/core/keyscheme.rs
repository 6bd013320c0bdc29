//! The key scheme of the seed's `keys.ts`: eight prefixes, their builders and
//! default TTLs, the escaping that keeps ids data (never patterns), and where
//! `keyPrefix` goes in each command.

use super::error::{Failure, FailureKind};

/// One piece of a key template: fixed text or the n-th argument.
#[derive(Clone, Copy)]
enum Part {
  Text(&'static str),
  Arg,
  /// An optional last argument, written after its separator (`:value`) when given.
  OptionalArg(&'static str),
}

/// A key builder such as `RedisKeys.cache.user(id)`.
struct Builder {
  family: &'static str,
  name: &'static str,
  parts: &'static [Part],
  /// Default TTL in seconds for keys of this builder; `None` means they persist.
  ttl: Option<u32>,
}

use Part::{Arg, OptionalArg, Text};

const HOUR: u32 = 3600;
const DAY: u32 = 24 * HOUR;

/// The families (prefixes) and the default TTL of a key under each of them.
/// `None` means a key of that prefix persists unless a TTL is given.
pub const PREFIX_TTLS: &[(&str, Option<u32>)] = &[
  ("cache:", Some(HOUR)),
  ("session:", Some(15 * 60)),
  ("jobs:", None),
  ("ratelimit:", Some(HOUR)),
  ("idempotency:", Some(DAY)),
  ("lock:", Some(5 * 60)),
  ("counter:", None),
  ("flag:", None),
];

static BUILDERS: &[Builder] = &[
  Builder {
    family: "cache",
    name: "user",
    parts: &[Text("cache:user:"), Arg],
    ttl: Some(HOUR),
  },
  Builder {
    family: "cache",
    name: "creator",
    parts: &[Text("cache:creator:"), Arg],
    ttl: Some(HOUR),
  },
  Builder {
    family: "cache",
    name: "brand",
    parts: &[Text("cache:brand:"), Arg],
    ttl: Some(HOUR),
  },
  Builder {
    family: "cache",
    name: "project",
    parts: &[Text("cache:project:"), Arg],
    ttl: Some(HOUR),
  },
  Builder {
    family: "cache",
    name: "asset",
    parts: &[Text("cache:asset:"), Arg],
    ttl: Some(HOUR),
  },
  Builder {
    family: "cache",
    name: "license",
    parts: &[Text("cache:license:"), Arg],
    ttl: Some(HOUR),
  },
  Builder {
    family: "cache",
    name: "creatorAssets",
    parts: &[Text("cache:creator-assets:"), Arg],
    ttl: Some(HOUR),
  },
  Builder {
    family: "cache",
    name: "projectAssets",
    parts: &[Text("cache:project-assets:"), Arg],
    ttl: Some(HOUR),
  },
  Builder {
    family: "cache",
    name: "brandLicenses",
    parts: &[Text("cache:brand-licenses:"), Arg],
    ttl: Some(HOUR),
  },
  Builder {
    family: "cache",
    name: "assetLicenses",
    parts: &[Text("cache:asset-licenses:"), Arg],
    ttl: Some(HOUR),
  },
  Builder {
    family: "session",
    name: "upload",
    parts: &[Text("session:upload:"), Arg],
    ttl: Some(15 * 60),
  },
  Builder {
    family: "session",
    name: "auth",
    parts: &[Text("session:auth:"), Arg],
    ttl: Some(DAY),
  },
  Builder {
    family: "session",
    name: "verification",
    parts: &[Text("session:verification:"), Arg],
    ttl: Some(DAY),
  },
  Builder {
    family: "jobs",
    name: "queue",
    parts: &[Text("jobs:"), Arg],
    ttl: None,
  },
  Builder {
    family: "ratelimit",
    name: "key",
    parts: &[Text("ratelimit:"), Arg, Text(":"), Arg],
    ttl: Some(HOUR),
  },
  Builder {
    family: "idempotency",
    name: "key",
    parts: &[Text("idempotency:"), Arg],
    ttl: Some(DAY),
  },
  Builder {
    family: "lock",
    name: "royaltyRun",
    parts: &[Text("lock:royalty-run:"), Arg],
    ttl: Some(5 * 60),
  },
  Builder {
    family: "lock",
    name: "payout",
    parts: &[Text("lock:payout:"), Arg],
    ttl: Some(5 * 60),
  },
  Builder {
    family: "lock",
    name: "resource",
    parts: &[Text("lock:resource:"), Arg],
    ttl: Some(5 * 60),
  },
  Builder {
    family: "counter",
    name: "metric",
    parts: &[Text("counter:"), Arg, OptionalArg(":")],
    ttl: None,
  },
  Builder {
    family: "flag",
    name: "feature",
    parts: &[Text("flag:feature:"), Arg],
    ttl: None,
  },
  Builder {
    family: "flag",
    name: "maintenance",
    parts: &[Text("flag:maintenance")],
    ttl: None,
  },
];

/// What a key gets when it is written without an explicit TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultTtl {
  Seconds(u32),
  Persist,
}

/// The default TTL of a key (written without `keyPrefix`): its prefix's default,
/// `cache:`'s default for a key of no known prefix.
pub fn default_ttl_for(key: &[u8]) -> DefaultTtl {
  for (prefix, ttl) in PREFIX_TTLS {
    if key.starts_with(prefix.as_bytes()) {
      return ttl.map_or(DefaultTtl::Persist, DefaultTtl::Seconds);
    }
  }
  DefaultTtl::Seconds(HOUR)
}

/// Characters an id may hold that would otherwise act as a separator, a glob
/// pattern or a cluster hash tag; with the control characters (U+0000–U+001F,
/// U+007F–U+009F) they are written as `%XX`, so an id is always one literal
/// key segment.
const ESCAPED: &[char] = &['%', ':', '*', '?', '[', ']', '\\', '{', '}', '^'];

fn needs_escape(c: char) -> bool {
  ESCAPED.contains(&c) || c.is_control()
}

/// A JavaScript regular expression (source, no flags) that matches exactly the
/// non-empty ids that `escape_id` leaves unchanged: the JS builders compose
/// such keys from `key_scheme()`'s parts without calling into Rust, and hand
/// every other id to `build_key`.
pub fn plain_id_pattern() -> String {
  let mut class = String::from("^[^");
  for c in ESCAPED {
    if "\\^$.*+?()[]{}|/-".contains(*c) {
      class.push('\\');
    }
    class.push(*c);
  }
  // char::is_control is the general category Cc: exactly these two ranges
  // (checked by a test below).
  class.push_str("\\u0000-\\u001f\\u007f-\\u009f]+$");
  class
}

/// Writes an id as one key segment (see `needs_escape`).
pub fn escape_id(id: &str, out: &mut String) {
  for c in id.chars() {
    if needs_escape(c) {
      let mut buf = [0u8; 4];
      for b in c.encode_utf8(&mut buf).bytes() {
        out.push('%');
        out.push_str(&format!("{b:02X}"));
      }
    } else {
      out.push(c);
    }
  }
}

/// `text` with SCAN-pattern characters escaped, so that it matches only itself.
pub fn glob_escape(text: &str) -> String {
  let mut out = String::with_capacity(text.len() + 4);
  for c in text.chars() {
    if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
      out.push('\\');
    }
    out.push(c);
  }
  out
}

/// An id as the binding received it from JS, before it is checked.
pub enum IdArg {
  /// Not given (`undefined`).
  Missing,
  /// `null`.
  Null,
  Text(String),
  Number(f64),
  /// Any other JS type, by name.
  Other(&'static str),
}

/// An id as a builder takes it: a non-empty string or a safe integer.
fn id_text(builder: &str, value: IdArg) -> Result<String, Failure> {
  let refuse = |got: String| {
    Failure::new(
      FailureKind::Invalid,
      format!("{builder}: id must be a non-empty string or a safe integer (got {got})"),
    )
  };
  match value {
    IdArg::Text(s) if s.is_empty() => Err(refuse("an empty string".into())),
    IdArg::Text(s) => Ok(s),
    IdArg::Number(n) if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 => Ok(format!("{}", n as i64)),
    IdArg::Number(n) => Err(refuse(n.to_string())),
    IdArg::Missing => Err(refuse("undefined".into())),
    IdArg::Null => Err(refuse("null".into())),
    IdArg::Other(name) => Err(refuse(name.into())),
  }
}

/// One builder, for the JS layer to build `RedisKeys` and `RedisTTL` from.
pub struct BuilderInfo {
  pub family: &'static str,
  pub name: &'static str,
  /// How many arguments it requires.
  pub required_args: u32,
  /// How many arguments it accepts.
  pub max_args: u32,
  /// Default TTL in seconds, or `None` when keys persist.
  pub ttl: Option<u32>,
  /// The template, in order: fixed text, a required id, or an optional id
  /// with the separator written before it when it is given.
  pub parts: Vec<PartInfo>,
}

/// One piece of a builder's template (see `BuilderInfo::parts`).
pub enum PartInfo {
  Text(&'static str),
  Id,
  OptionalId { separator: &'static str },
}

/// The key scheme: every builder, in the order `build_key` numbers them.
pub fn key_scheme() -> impl Iterator<Item = BuilderInfo> {
  BUILDERS.iter().map(|b| {
    let required = b.parts.iter().filter(|p| matches!(p, Arg)).count() as u32;
    let optional = b.parts.iter().filter(|p| matches!(p, OptionalArg(_))).count() as u32;
    BuilderInfo {
      family: b.family,
      name: b.name,
      required_args: required,
      max_args: required + optional,
      ttl: b.ttl,
      parts: b
        .parts
        .iter()
        .map(|p| match *p {
          Text(t) => PartInfo::Text(t),
          Arg => PartInfo::Id,
          OptionalArg(separator) => PartInfo::OptionalId { separator },
        })
        .collect(),
    }
  })
}

/// Builds the key of builder `index` (of `key_scheme()`) for the given ids,
/// each escaped into one literal segment.
pub fn build_key(index: usize, ids: [IdArg; 2]) -> Result<String, Failure> {
  let builder = BUILDERS
    .get(index)
    .ok_or_else(|| Failure::new(FailureKind::Invalid, format!("no key builder {index}")))?;
  let full_name = || format!("RedisKeys.{}.{}", builder.family, builder.name);
  let mut given = ids.into_iter();
  let mut key = String::with_capacity(48);
  for part in builder.parts {
    match part {
      Text(t) => key.push_str(t),
      Arg => match given.next() {
        None | Some(IdArg::Missing) => {
          return Err(Failure::new(
            FailureKind::Invalid,
            format!("{}: a required id is missing", full_name()),
          ))
        }
        Some(value) => escape_id(&id_text(&full_name(), value)?, &mut key),
      },
      OptionalArg(separator) => match given.next() {
        None | Some(IdArg::Missing) | Some(IdArg::Null) => {}
        Some(value) => {
          key.push_str(separator);
          escape_id(&id_text(&full_name(), value)?, &mut key);
        }
      },
    }
  }
  Ok(key)
}

/// The fencing counter's key for a lock key, in the lock's hash slot as the
/// server sees it (after `prefix`): `key:fence` when the key already has a
/// hash tag, else `{prefix+key}:fence` (the tag is the whole wire key).
pub fn fencing_key_for(prefix: &[u8], key: &str) -> String {
  let mut wire = prefix.to_vec();
  wire.extend_from_slice(key.as_bytes());
  if super::cluster::slot::hash_tag(&wire).is_some() {
    format!("{key}:fence")
  } else {
    format!("{{{}}}:fence", String::from_utf8_lossy(&wire))
  }
}

/// The per-minute buckets of a counter (`counters.record` / `series`) live in one hash
/// next to its total: `<metric key>::minutes`. A metric key (`counter:<name>[:<id>]`, each
/// segment escaped and non-empty) never holds `::`, so no metric key can be a series key.
pub fn counter_series_key_for(metric_key: &str) -> Result<String, Failure> {
  if !metric_key.starts_with("counter:") {
    return Err(Failure::new(
      FailureKind::Invalid,
      format!("not a counter key: {metric_key}"),
    ));
  }
  Ok(format!("{metric_key}::minutes"))
}

#[cfg(test)]
mod tests {
  #[test]
  fn fencing_keys_share_the_lock_slot() {
    use super::fencing_key_for;
    assert_eq!(fencing_key_for(b"", "lock:payout:7"), "{lock:payout:7}:fence");
    assert_eq!(fencing_key_for(b"app:", "lock:payout:7"), "{app:lock:payout:7}:fence");
    assert_eq!(fencing_key_for(b"{app}:", "lock:x"), "lock:x:fence");
    assert_eq!(fencing_key_for(b"", "lock:{run}:x"), "lock:{run}:x:fence");
    assert_eq!(fencing_key_for(b"", "lock:{}:x"), "{lock:{}:x}:fence");
  }

  use super::*;

  #[test]
  fn counter_series_keys_never_collide_with_metric_keys() {
    assert_eq!(
      counter_series_key_for("counter:views").unwrap(),
      "counter:views::minutes"
    );
    assert_eq!(
      counter_series_key_for("counter:views:7").unwrap(),
      "counter:views:7::minutes"
    );
    assert!(counter_series_key_for("cache:views").is_err());
    // An id of "minutes" (or ":minutes") stays one escaped segment of a metric key.
    let mut metric = String::from("counter:views:");
    escape_id(":minutes", &mut metric);
    assert_ne!(metric, counter_series_key_for("counter:views").unwrap());
  }

  #[test]
  fn escapes_pattern_and_separator_characters() {
    let mut out = String::new();
    escape_id("a:b*c?[d]\\e%f{g}", &mut out);
    assert_eq!(out, "a%3Ab%2Ac%3F%5Bd%5D%5Ce%25f%7Bg%7D");
  }

  #[test]
  fn the_plain_id_pattern_names_every_escaped_character() {
    // The pattern's control ranges are exactly char::is_control.
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
      let in_ranges = (c as u32) <= 0x1F || (0x7F..=0x9F).contains(&(c as u32));
      assert_eq!(c.is_control(), in_ranges, "U+{:04X}", c as u32);
    }
    let pattern = plain_id_pattern();
    assert_eq!(pattern, r"^[^%:\*\?\[\]\\\{\}\^\u0000-\u001f\u007f-\u009f]+$");
  }

  #[test]
  fn default_ttls_follow_the_prefix() {
    assert_eq!(default_ttl_for(b"cache:user:1"), DefaultTtl::Seconds(3600));
    assert_eq!(default_ttl_for(b"lock:x"), DefaultTtl::Seconds(300));
    assert_eq!(default_ttl_for(b"flag:maintenance"), DefaultTtl::Persist);
    assert_eq!(default_ttl_for(b"other"), DefaultTtl::Seconds(3600));
  }
}
