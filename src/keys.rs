//! The key scheme of the seed's `keys.ts`: eight prefixes, their builders and
//! default TTLs, the escaping that keeps ids data (never patterns), and where
//! `keyPrefix` goes in each command.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::type_error;

/// One piece of a key template: fixed text or the n-th argument.
#[derive(Clone, Copy)]
enum Part {
  Text(&'static str),
  Arg,
  /// An optional last argument, written as `:value` when given.
  OptionalArg,
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
    parts: &[Text("counter:"), Arg, OptionalArg],
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
/// pattern or a cluster hash tag. They are written as `%XX`, so an id is always
/// one literal key segment.
fn needs_escape(c: char) -> bool {
  matches!(c, '%' | ':' | '*' | '?' | '[' | ']' | '\\' | '{' | '}' | '^') || c.is_control()
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

/// Escapes glob metacharacters so that `text` matches itself in SCAN MATCH.
/// `text` with SCAN-pattern characters escaped, so that it matches only itself.
#[napi(js_name = "globEscape")]
pub fn glob_escape_js(text: String) -> String {
  glob_escape(&text)
}

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

/// An id as a builder takes it: a non-empty string or a safe integer.
pub fn id_text(builder: &str, value: &Unknown) -> Result<String> {
  match value.get_type()? {
    ValueType::String => {
      // SAFETY: the value's type was just checked to be a string.
      let s: String = unsafe { value.cast()? };
      if s.is_empty() {
        Err(type_error(format!(
          "{builder}: id must be a non-empty string or a safe integer (got an empty string)"
        )))
      } else {
        Ok(s)
      }
    }
    ValueType::Number => {
      // SAFETY: the value's type was just checked to be a number.
      let n: f64 = unsafe { value.cast()? };
      if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 {
        Ok(format!("{}", n as i64))
      } else {
        Err(type_error(format!(
          "{builder}: id must be a non-empty string or a safe integer (got {n})"
        )))
      }
    }
    other => Err(type_error(format!(
      "{builder}: id must be a non-empty string or a safe integer (got {})",
      type_name(other)
    ))),
  }
}

fn type_name(t: ValueType) -> &'static str {
  match t {
    ValueType::Undefined => "undefined",
    ValueType::Null => "null",
    ValueType::Boolean => "boolean",
    ValueType::Number => "number",
    ValueType::String => "string",
    ValueType::Symbol => "symbol",
    ValueType::Object => "object",
    ValueType::Function => "function",
    ValueType::External => "external",
    ValueType::BigInt => "bigint",
    _ => "unknown",
  }
}

/// One builder as JS sees it, to build `RedisKeys` and `RedisTTL`.
#[napi(object)]
pub struct KeyBuilderInfo {
  pub family: String,
  pub name: String,
  /// How many arguments it requires.
  pub required_args: u32,
  /// How many arguments it accepts.
  pub max_args: u32,
  /// Default TTL in seconds, or null when keys persist.
  pub ttl: Option<u32>,
}

/// The TTL in seconds a cache write of `key` (written without `keyPrefix`) gets
/// when none is given: its prefix's default; 0 for `jobs:`, `counter:` and
/// `flag:` keys, which persist.
#[napi]
pub fn default_ttl(key: String) -> u32 {
  match default_ttl_for(key.as_bytes()) {
    DefaultTtl::Seconds(s) => s,
    DefaultTtl::Persist => 0,
  }
}

/// The key scheme, for the JS layer to build `RedisKeys` and `RedisTTL` from.
#[napi]
pub fn key_scheme() -> Vec<KeyBuilderInfo> {
  BUILDERS
    .iter()
    .map(|b| {
      let required = b.parts.iter().filter(|p| matches!(p, Arg)).count() as u32;
      let optional = b.parts.iter().filter(|p| matches!(p, OptionalArg)).count() as u32;
      KeyBuilderInfo {
        family: b.family.to_string(),
        name: b.name.to_string(),
        required_args: required,
        max_args: required + optional,
        ttl: b.ttl,
      }
    })
    .collect()
}

/// Default TTL per prefix (`[prefix, seconds | null]`), for `RedisTTL.<family>.default`.
#[napi]
pub fn prefix_ttls() -> Vec<(String, Option<u32>)> {
  PREFIX_TTLS.iter().map(|(p, t)| (p.to_string(), *t)).collect()
}

/// Builds the key of builder `index` (from `keyScheme()`) for the given ids.
#[napi]
pub fn build_key(index: u32, first: Option<Unknown>, second: Option<Unknown>) -> Result<String> {
  let builder = BUILDERS
    .get(index as usize)
    .ok_or_else(|| type_error(format!("no key builder {index}")))?;
  let full_name = || format!("RedisKeys.{}.{}", builder.family, builder.name);
  let mut given = [first, second].into_iter();
  let mut key = String::with_capacity(48);
  for part in builder.parts {
    match part {
      Text(t) => key.push_str(t),
      Arg => {
        let value = given.next().flatten();
        let value = match value {
          Some(v) if !matches!(v.get_type()?, ValueType::Undefined) => v,
          _ => return Err(type_error(format!("{}: a required id is missing", full_name()))),
        };
        escape_id(&id_text(&full_name(), &value)?, &mut key);
      }
      OptionalArg => {
        if let Some(v) = given.next().flatten() {
          if !matches!(v.get_type()?, ValueType::Undefined | ValueType::Null) {
            key.push(':');
            escape_id(&id_text(&full_name(), &v)?, &mut key);
          }
        }
      }
    }
  }
  Ok(key)
}

/// Where the keys are in a command's arguments (after the command name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
  /// No keys (PING, INFO, …).
  None,
  /// Only the argument at this position.
  At(usize),
  /// Every argument from this position on.
  AllFrom(usize),
  /// Every argument from this position on but the last (BLPOP key… timeout).
  AllFromButLast(usize),
  /// Arguments 0, 2, 4, … (MSET key value …).
  Alternate,
  /// Arguments `from..to` (RENAME src dst).
  Range(usize, usize),
  /// A count of keys at this position, the keys right after it (EVAL script numkeys key…).
  NumKeysAt(usize),
  /// The first argument, then a count of keys and the keys (ZUNIONSTORE dst numkeys key…).
  DestThenNumKeys,
  /// The keys follow the STREAMS word, as many as the ids after them (XREAD).
  Streams,
  /// A command this table does not know.
  Unknown,
}

/// The command table: every command the package knows, with where its keys
/// are. The one source of this fact: `keyPrefix` placement (`key_spec`), the raw
/// client's command methods (`known_commands`, minus the refused ones) and, by
/// a test that fails when they drift, `RedisCommandName` in `index.d.ts`.
static COMMANDS: &[(&str, KeySpec)] = {
  use KeySpec::*;
  &[
    ("PING", None),
    ("ECHO", None),
    ("INFO", None),
    ("TIME", None),
    ("DBSIZE", None),
    ("CLIENT", None),
    ("CONFIG", None),
    ("SCRIPT", None),
    ("FUNCTION", None),
    ("FLUSHDB", None),
    ("FLUSHALL", None),
    ("SELECT", None),
    ("AUTH", None),
    ("HELLO", None),
    ("QUIT", None),
    ("COMMAND", None),
    ("SLOWLOG", None),
    ("LATENCY", None),
    ("PUBLISH", None),
    ("SCAN", None),
    ("RANDOMKEY", None),
    ("LASTSAVE", None),
    ("ROLE", None),
    ("LOLWUT", None),
    ("WAIT", None),
    ("SWAPDB", None),
    ("ACL", None),
    ("MODULE", None),
    ("SAVE", None),
    ("BGSAVE", None),
    ("BGREWRITEAOF", None),
    ("DEBUG", None),
    ("CLUSTER", None),
    ("READONLY", None),
    ("READWRITE", None),
    ("PUBSUB", None),
    ("RESET", None),
    ("UNWATCH", None),
    ("DEL", AllFrom(0)),
    ("UNLINK", AllFrom(0)),
    ("EXISTS", AllFrom(0)),
    ("MGET", AllFrom(0)),
    ("TOUCH", AllFrom(0)),
    ("WATCH", AllFrom(0)),
    ("PFCOUNT", AllFrom(0)),
    ("PFMERGE", AllFrom(0)),
    ("SINTER", AllFrom(0)),
    ("SUNION", AllFrom(0)),
    ("SDIFF", AllFrom(0)),
    ("SINTERSTORE", AllFrom(0)),
    ("SUNIONSTORE", AllFrom(0)),
    ("SDIFFSTORE", AllFrom(0)),
    ("BITOP", AllFrom(1)),
    ("BLPOP", AllFromButLast(0)),
    ("BRPOP", AllFromButLast(0)),
    ("BZPOPMIN", AllFromButLast(0)),
    ("BZPOPMAX", AllFromButLast(0)),
    ("MSET", Alternate),
    ("MSETNX", Alternate),
    ("RENAME", Range(0, 2)),
    ("RENAMENX", Range(0, 2)),
    ("RPOPLPUSH", Range(0, 2)),
    ("BRPOPLPUSH", Range(0, 2)),
    ("SMOVE", Range(0, 2)),
    ("LMOVE", Range(0, 2)),
    ("BLMOVE", Range(0, 2)),
    ("COPY", Range(0, 2)),
    ("GEOSEARCHSTORE", Range(0, 2)),
    ("ZRANGESTORE", Range(0, 2)),
    ("EVAL", NumKeysAt(1)),
    ("EVALSHA", NumKeysAt(1)),
    ("EVAL_RO", NumKeysAt(1)),
    ("EVALSHA_RO", NumKeysAt(1)),
    ("FCALL", NumKeysAt(1)),
    ("FCALL_RO", NumKeysAt(1)),
    ("ZUNION", NumKeysAt(0)),
    ("ZINTER", NumKeysAt(0)),
    ("ZDIFF", NumKeysAt(0)),
    ("ZINTERCARD", NumKeysAt(0)),
    ("SINTERCARD", NumKeysAt(0)),
    ("LMPOP", NumKeysAt(0)),
    ("ZMPOP", NumKeysAt(0)),
    ("BLMPOP", NumKeysAt(1)),
    ("BZMPOP", NumKeysAt(1)),
    ("ZUNIONSTORE", DestThenNumKeys),
    ("ZINTERSTORE", DestThenNumKeys),
    ("ZDIFFSTORE", DestThenNumKeys),
    ("XREAD", Streams),
    ("XREADGROUP", Streams),
    ("OBJECT", At(1)),
    ("MEMORY", At(1)),
    ("XGROUP", At(1)),
    ("XINFO", At(1)),
    ("GET", At(0)),
    ("SET", At(0)),
    ("SETNX", At(0)),
    ("SETEX", At(0)),
    ("PSETEX", At(0)),
    ("APPEND", At(0)),
    ("STRLEN", At(0)),
    ("INCR", At(0)),
    ("DECR", At(0)),
    ("INCRBY", At(0)),
    ("DECRBY", At(0)),
    ("INCRBYFLOAT", At(0)),
    ("GETSET", At(0)),
    ("GETDEL", At(0)),
    ("GETEX", At(0)),
    ("GETRANGE", At(0)),
    ("SETRANGE", At(0)),
    ("GETBIT", At(0)),
    ("SETBIT", At(0)),
    ("BITCOUNT", At(0)),
    ("BITPOS", At(0)),
    ("BITFIELD", At(0)),
    ("BITFIELD_RO", At(0)),
    ("EXPIRE", At(0)),
    ("PEXPIRE", At(0)),
    ("EXPIREAT", At(0)),
    ("PEXPIREAT", At(0)),
    ("EXPIRETIME", At(0)),
    ("PEXPIRETIME", At(0)),
    ("TTL", At(0)),
    ("PTTL", At(0)),
    ("PERSIST", At(0)),
    ("TYPE", At(0)),
    ("DUMP", At(0)),
    ("RESTORE", At(0)),
    ("HSET", At(0)),
    ("HSETNX", At(0)),
    ("HGET", At(0)),
    ("HMSET", At(0)),
    ("HMGET", At(0)),
    ("HDEL", At(0)),
    ("HLEN", At(0)),
    ("HKEYS", At(0)),
    ("HVALS", At(0)),
    ("HGETALL", At(0)),
    ("HEXISTS", At(0)),
    ("HINCRBY", At(0)),
    ("HINCRBYFLOAT", At(0)),
    ("HSTRLEN", At(0)),
    ("HSCAN", At(0)),
    ("HRANDFIELD", At(0)),
    ("LPUSH", At(0)),
    ("RPUSH", At(0)),
    ("LPUSHX", At(0)),
    ("RPUSHX", At(0)),
    ("LPOP", At(0)),
    ("RPOP", At(0)),
    ("LLEN", At(0)),
    ("LRANGE", At(0)),
    ("LINDEX", At(0)),
    ("LSET", At(0)),
    ("LREM", At(0)),
    ("LTRIM", At(0)),
    ("LINSERT", At(0)),
    ("LPOS", At(0)),
    ("SADD", At(0)),
    ("SREM", At(0)),
    ("SMEMBERS", At(0)),
    ("SISMEMBER", At(0)),
    ("SMISMEMBER", At(0)),
    ("SCARD", At(0)),
    ("SPOP", At(0)),
    ("SRANDMEMBER", At(0)),
    ("SSCAN", At(0)),
    ("ZADD", At(0)),
    ("ZREM", At(0)),
    ("ZSCORE", At(0)),
    ("ZMSCORE", At(0)),
    ("ZINCRBY", At(0)),
    ("ZCARD", At(0)),
    ("ZCOUNT", At(0)),
    ("ZRANGE", At(0)),
    ("ZRANGEBYSCORE", At(0)),
    ("ZREVRANGE", At(0)),
    ("ZREVRANGEBYSCORE", At(0)),
    ("ZRANK", At(0)),
    ("ZREVRANK", At(0)),
    ("ZREMRANGEBYRANK", At(0)),
    ("ZREMRANGEBYSCORE", At(0)),
    ("ZREMRANGEBYLEX", At(0)),
    ("ZRANGEBYLEX", At(0)),
    ("ZREVRANGEBYLEX", At(0)),
    ("ZLEXCOUNT", At(0)),
    ("ZPOPMIN", At(0)),
    ("ZPOPMAX", At(0)),
    ("ZRANDMEMBER", At(0)),
    ("ZSCAN", At(0)),
    ("PFADD", At(0)),
    ("XADD", At(0)),
    ("XLEN", At(0)),
    ("XRANGE", At(0)),
    ("XREVRANGE", At(0)),
    ("XDEL", At(0)),
    ("XTRIM", At(0)),
    ("XACK", At(0)),
    ("XCLAIM", At(0)),
    ("XAUTOCLAIM", At(0)),
    ("XPENDING", At(0)),
    ("XSETID", At(0)),
    ("GEOADD", At(0)),
    ("GEODIST", At(0)),
    ("GEOHASH", At(0)),
    ("GEOPOS", At(0)),
    ("GEOSEARCH", At(0)),
    ("GEORADIUS", At(0)),
    ("GEORADIUSBYMEMBER", At(0)),
    ("GEORADIUS_RO", At(0)),
    ("GEORADIUSBYMEMBER_RO", At(0)),
    ("SORT", At(0)),
    ("SORT_RO", At(0)),
    ("LCS", At(0)),
  ]
};

/// The key positions of a command (upper-case name); `Unknown` for a command
/// the table does not hold.
pub fn key_spec(command: &str) -> KeySpec {
  static BY_NAME: once_cell::sync::Lazy<std::collections::HashMap<&'static str, KeySpec>> =
    once_cell::sync::Lazy::new(|| COMMANDS.iter().copied().collect());
  BY_NAME.get(command).copied().unwrap_or(KeySpec::Unknown)
}

/// The commands whose key positions are known (`client.get(…)`, `pipeline.set(…)`, …).
/// Whether `key` has a Redis Cluster hash tag (`{…}` with something inside).
fn has_hash_tag(key: &[u8]) -> bool {
  match key.iter().position(|&b| b == b'{') {
    Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
      Some(len) => len > 0,
      None => false,
    },
    None => false,
  }
}

/// The fencing counter's key for a lock key, in the lock's hash slot as the
/// server sees it (after `prefix`): `key:fence` when the key already has a
/// hash tag, else `{prefix+key}:fence` (the tag is the whole wire key).
pub fn fencing_key_for(prefix: &[u8], key: &str) -> String {
  let mut wire = prefix.to_vec();
  wire.extend_from_slice(key.as_bytes());
  if has_hash_tag(&wire) {
    format!("{key}:fence")
  } else {
    format!("{{{}}}:fence", String::from_utf8_lossy(&wire))
  }
}

/// The per-minute buckets of a counter (`counters.record` / `series`) live in one hash
/// next to its total: `<metric key>::minutes`. A metric key (`counter:<name>[:<id>]`, each
/// segment escaped and non-empty) never holds `::`, so no metric key can be a series key.
pub fn counter_series_key_for(metric_key: &str) -> String {
  format!("{metric_key}::minutes")
}

/// The key of a counter's per-minute buckets, from its metric key
/// (`RedisKeys.counter.metric(name, id)`); one key, so one hash slot.
#[napi]
pub fn counter_series_key(metric_key: String) -> Result<String> {
  if !metric_key.starts_with("counter:") {
    return Err(type_error(format!("not a counter key: {metric_key}")));
  }
  Ok(counter_series_key_for(&metric_key))
}

#[napi]
pub fn known_commands() -> Vec<&'static str> {
  COMMANDS
    .iter()
    .map(|(name, _)| *name)
    .filter(|c| shared_connection_refusal(c).is_none())
    .collect()
}

/// Why a command may not go over the shared connection: it would change that
/// connection's state for every other caller in the process.
pub fn shared_connection_refusal(command: &str) -> Option<&'static str> {
  Some(match command {
    "SELECT" | "SWAPDB" => {
      "it would switch the database of every caller; put the database in the URL (redis://host:6379/2)"
    }
    "AUTH" | "HELLO" => "it would change the shared connection's credentials or protocol; put them in the URL",
    "RESET" | "QUIT" => "it would reset or end the connection every caller shares; use closeRedisConnection()",
    "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" => {
      "transactions cannot be shared with concurrent callers; use a Lua script (EVAL), which runs atomically"
    }
    "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE" | "MONITOR" => {
      "it would turn the shared connection into a subscriber; use a dedicated connection (e.g. ioredis) for Pub/Sub"
    }
    _ => return None,
  })
}

/// The positions (in `args`, which excludes the command name) that hold keys.
pub fn key_positions<A: AsRef<[u8]>>(spec: KeySpec, args: &[A]) -> std::result::Result<Vec<usize>, String> {
  let n = args.len();
  let parse_count = |i: usize| -> std::result::Result<usize, String> {
    args
      .get(i)
      .and_then(|a| std::str::from_utf8(a.as_ref()).ok())
      .and_then(|s| s.parse::<usize>().ok())
      .ok_or_else(|| "the number of keys is missing or not a number".to_string())
  };
  Ok(match spec {
    KeySpec::None => vec![],
    KeySpec::At(i) => (i < n).then_some(i).into_iter().collect(),
    KeySpec::AllFrom(i) => (i.min(n)..n).collect(),
    KeySpec::AllFromButLast(i) => (i.min(n)..n.saturating_sub(1).max(i.min(n))).collect(),
    KeySpec::Alternate => (0..n).step_by(2).collect(),
    KeySpec::Range(a, b) => (a.min(n)..b.min(n)).collect(),
    KeySpec::NumKeysAt(i) => {
      let count = parse_count(i)?;
      let start = i + 1;
      if start + count > n {
        return Err("fewer keys than the number of keys says".into());
      }
      (start..start + count).collect()
    }
    KeySpec::DestThenNumKeys => {
      let count = parse_count(1)?;
      if 2 + count > n {
        return Err("fewer keys than the number of keys says".into());
      }
      std::iter::once(0).chain(2..2 + count).collect()
    }
    KeySpec::Streams => {
      let at = args
        .iter()
        .position(|a| a.as_ref().eq_ignore_ascii_case(b"STREAMS"))
        .ok_or_else(|| "STREAMS is missing".to_string())?;
      let rest = n - at - 1;
      (at + 1..at + 1 + rest / 2).collect()
    }
    KeySpec::Unknown => return Err("unknown".into()),
  })
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
    assert_eq!(counter_series_key_for("counter:views"), "counter:views::minutes");
    assert_eq!(counter_series_key_for("counter:views:7"), "counter:views:7::minutes");
    // An id of "minutes" (or ":minutes") stays one escaped segment of a metric key.
    let mut metric = String::from("counter:views:");
    escape_id(":minutes", &mut metric);
    assert_ne!(metric, counter_series_key_for("counter:views"));
  }

  #[test]
  fn escapes_pattern_and_separator_characters() {
    let mut out = String::new();
    escape_id("a:b*c?[d]\\e%f{g}", &mut out);
    assert_eq!(out, "a%3Ab%2Ac%3F%5Bd%5D%5Ce%25f%7Bg%7D");
  }

  #[test]
  fn default_ttls_follow_the_prefix() {
    assert_eq!(default_ttl_for(b"cache:user:1"), DefaultTtl::Seconds(3600));
    assert_eq!(default_ttl_for(b"lock:x"), DefaultTtl::Seconds(300));
    assert_eq!(default_ttl_for(b"flag:maintenance"), DefaultTtl::Persist);
    assert_eq!(default_ttl_for(b"other"), DefaultTtl::Seconds(3600));
  }

  #[test]
  fn connection_state_commands_are_refused() {
    for name in ["SELECT", "MULTI", "EXEC", "SUBSCRIBE", "QUIT", "AUTH", "MONITOR"] {
      assert!(shared_connection_refusal(name).is_some(), "{name}");
    }
    assert!(shared_connection_refusal("GET").is_none());
  }

  #[test]
  fn the_command_table_is_one_entry_per_command_and_answers_key_spec() {
    let mut names: Vec<&str> = COMMANDS.iter().map(|(n, _)| *n).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "a command appears twice in COMMANDS");
    for (name, spec) in COMMANDS {
      assert_eq!(key_spec(name), *spec, "{name}");
      assert_eq!(name.to_ascii_uppercase(), *name);
    }
    assert_eq!(key_spec("NOT-A-COMMAND"), KeySpec::Unknown);
    // Every refused command is in the table too (so the JS side knows to refuse it).
    for name in ["SELECT", "SWAPDB", "AUTH", "HELLO", "QUIT", "RESET"] {
      assert!(names.binary_search(&name).is_ok(), "{name}");
      assert!(!known_commands().contains(&name), "{name}");
    }
  }

  #[test]
  fn key_positions_of_common_commands() {
    let a = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
    assert_eq!(
      key_positions(key_spec("MSET"), &a(&["k1", "v1", "k2", "v2"])).unwrap(),
      vec![0, 2]
    );
    assert_eq!(
      key_positions(key_spec("EVAL"), &a(&["s", "2", "a", "b", "x"])).unwrap(),
      vec![2, 3]
    );
    assert_eq!(
      key_positions(key_spec("BLPOP"), &a(&["a", "b", "0"])).unwrap(),
      vec![0, 1]
    );
    assert_eq!(
      key_positions(key_spec("XREAD"), &a(&["COUNT", "1", "STREAMS", "s1", "s2", "0", "0"])).unwrap(),
      vec![3, 4]
    );
    assert_eq!(
      key_positions(key_spec("ZUNIONSTORE"), &a(&["d", "2", "a", "b", "WEIGHTS", "1", "2"])).unwrap(),
      vec![0, 2, 3]
    );
    assert!(key_positions(key_spec("EVAL"), &a(&["s", "3", "a"])).is_err());
  }
}
