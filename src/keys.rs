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

/// The key positions of a command (upper-case name).
pub fn key_spec(command: &str) -> KeySpec {
  use KeySpec::*;
  match command {
    "PING" | "ECHO" | "INFO" | "TIME" | "DBSIZE" | "CLIENT" | "CONFIG" | "SCRIPT" | "FUNCTION" | "FLUSHDB"
    | "FLUSHALL" | "SELECT" | "AUTH" | "HELLO" | "QUIT" | "COMMAND" | "SLOWLOG" | "LATENCY" | "PUBLISH" | "SCAN"
    | "RANDOMKEY" | "LASTSAVE" | "ROLE" | "LOLWUT" | "WAIT" | "SWAPDB" | "ACL" | "MODULE" | "SAVE" | "BGSAVE"
    | "BGREWRITEAOF" | "DEBUG" | "CLUSTER" | "READONLY" | "READWRITE" | "PUBSUB" | "RESET" | "UNWATCH" => None,
    "DEL" | "UNLINK" | "EXISTS" | "MGET" | "TOUCH" | "WATCH" | "PFCOUNT" | "PFMERGE" | "SINTER" | "SUNION"
    | "SDIFF" | "SINTERSTORE" | "SUNIONSTORE" | "SDIFFSTORE" => AllFrom(0),
    "BITOP" => AllFrom(1),
    "BLPOP" | "BRPOP" | "BZPOPMIN" | "BZPOPMAX" => AllFromButLast(0),
    "MSET" | "MSETNX" => Alternate,
    "RENAME" | "RENAMENX" | "RPOPLPUSH" | "BRPOPLPUSH" | "SMOVE" | "LMOVE" | "BLMOVE" | "COPY" | "GEOSEARCHSTORE"
    | "ZRANGESTORE" => Range(0, 2),
    "EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "FCALL" | "FCALL_RO" => NumKeysAt(1),
    "ZUNION" | "ZINTER" | "ZDIFF" | "ZINTERCARD" | "SINTERCARD" | "LMPOP" | "ZMPOP" => NumKeysAt(0),
    "BLMPOP" | "BZMPOP" => NumKeysAt(1),
    "ZUNIONSTORE" | "ZINTERSTORE" | "ZDIFFSTORE" => DestThenNumKeys,
    "XREAD" | "XREADGROUP" => Streams,
    "OBJECT" | "MEMORY" | "XGROUP" | "XINFO" => At(1),
    "GET"
    | "SET"
    | "SETNX"
    | "SETEX"
    | "PSETEX"
    | "APPEND"
    | "STRLEN"
    | "INCR"
    | "DECR"
    | "INCRBY"
    | "DECRBY"
    | "INCRBYFLOAT"
    | "GETSET"
    | "GETDEL"
    | "GETEX"
    | "GETRANGE"
    | "SETRANGE"
    | "GETBIT"
    | "SETBIT"
    | "BITCOUNT"
    | "BITPOS"
    | "BITFIELD"
    | "BITFIELD_RO"
    | "EXPIRE"
    | "PEXPIRE"
    | "EXPIREAT"
    | "PEXPIREAT"
    | "EXPIRETIME"
    | "PEXPIRETIME"
    | "TTL"
    | "PTTL"
    | "PERSIST"
    | "TYPE"
    | "DUMP"
    | "RESTORE"
    | "HSET"
    | "HSETNX"
    | "HGET"
    | "HMSET"
    | "HMGET"
    | "HDEL"
    | "HLEN"
    | "HKEYS"
    | "HVALS"
    | "HGETALL"
    | "HEXISTS"
    | "HINCRBY"
    | "HINCRBYFLOAT"
    | "HSTRLEN"
    | "HSCAN"
    | "HRANDFIELD"
    | "LPUSH"
    | "RPUSH"
    | "LPUSHX"
    | "RPUSHX"
    | "LPOP"
    | "RPOP"
    | "LLEN"
    | "LRANGE"
    | "LINDEX"
    | "LSET"
    | "LREM"
    | "LTRIM"
    | "LINSERT"
    | "LPOS"
    | "SADD"
    | "SREM"
    | "SMEMBERS"
    | "SISMEMBER"
    | "SMISMEMBER"
    | "SCARD"
    | "SPOP"
    | "SRANDMEMBER"
    | "SSCAN"
    | "ZADD"
    | "ZREM"
    | "ZSCORE"
    | "ZMSCORE"
    | "ZINCRBY"
    | "ZCARD"
    | "ZCOUNT"
    | "ZRANGE"
    | "ZRANGEBYSCORE"
    | "ZREVRANGE"
    | "ZREVRANGEBYSCORE"
    | "ZRANK"
    | "ZREVRANK"
    | "ZREMRANGEBYRANK"
    | "ZREMRANGEBYSCORE"
    | "ZREMRANGEBYLEX"
    | "ZRANGEBYLEX"
    | "ZREVRANGEBYLEX"
    | "ZLEXCOUNT"
    | "ZPOPMIN"
    | "ZPOPMAX"
    | "ZRANDMEMBER"
    | "ZSCAN"
    | "PFADD"
    | "XADD"
    | "XLEN"
    | "XRANGE"
    | "XREVRANGE"
    | "XDEL"
    | "XTRIM"
    | "XACK"
    | "XCLAIM"
    | "XAUTOCLAIM"
    | "XPENDING"
    | "XSETID"
    | "GEOADD"
    | "GEODIST"
    | "GEOHASH"
    | "GEOPOS"
    | "GEOSEARCH"
    | "GEORADIUS"
    | "GEORADIUSBYMEMBER"
    | "GEORADIUS_RO"
    | "GEORADIUSBYMEMBER_RO"
    | "SORT"
    | "SORT_RO"
    | "LCS"
    | "OBJECT_FREQ" => At(0),
    _ => Unknown,
  }
}

/// Every command `key_spec` knows, for the JS layer's command methods.
const KNOWN_COMMANDS: &[&str] = &[
  "PING",
  "ECHO",
  "INFO",
  "TIME",
  "DBSIZE",
  "CLIENT",
  "CONFIG",
  "SCRIPT",
  "FUNCTION",
  "FLUSHDB",
  "FLUSHALL",
  "SELECT",
  "AUTH",
  "HELLO",
  "QUIT",
  "COMMAND",
  "SLOWLOG",
  "LATENCY",
  "PUBLISH",
  "SCAN",
  "RANDOMKEY",
  "LASTSAVE",
  "ROLE",
  "LOLWUT",
  "WAIT",
  "SWAPDB",
  "ACL",
  "MODULE",
  "SAVE",
  "BGSAVE",
  "BGREWRITEAOF",
  "DEBUG",
  "CLUSTER",
  "READONLY",
  "READWRITE",
  "PUBSUB",
  "RESET",
  "UNWATCH",
  "DEL",
  "UNLINK",
  "EXISTS",
  "MGET",
  "TOUCH",
  "WATCH",
  "PFCOUNT",
  "PFMERGE",
  "SINTER",
  "SUNION",
  "SDIFF",
  "SINTERSTORE",
  "SUNIONSTORE",
  "SDIFFSTORE",
  "BITOP",
  "BLPOP",
  "BRPOP",
  "BZPOPMIN",
  "BZPOPMAX",
  "MSET",
  "MSETNX",
  "RENAME",
  "RENAMENX",
  "RPOPLPUSH",
  "BRPOPLPUSH",
  "SMOVE",
  "LMOVE",
  "BLMOVE",
  "COPY",
  "GEOSEARCHSTORE",
  "ZRANGESTORE",
  "EVAL",
  "EVALSHA",
  "EVAL_RO",
  "EVALSHA_RO",
  "FCALL",
  "FCALL_RO",
  "ZUNION",
  "ZINTER",
  "ZDIFF",
  "ZINTERCARD",
  "SINTERCARD",
  "LMPOP",
  "ZMPOP",
  "BLMPOP",
  "BZMPOP",
  "ZUNIONSTORE",
  "ZINTERSTORE",
  "ZDIFFSTORE",
  "XREAD",
  "XREADGROUP",
  "OBJECT",
  "MEMORY",
  "XGROUP",
  "XINFO",
  "GET",
  "SET",
  "SETNX",
  "SETEX",
  "PSETEX",
  "APPEND",
  "STRLEN",
  "INCR",
  "DECR",
  "INCRBY",
  "DECRBY",
  "INCRBYFLOAT",
  "GETSET",
  "GETDEL",
  "GETEX",
  "GETRANGE",
  "SETRANGE",
  "GETBIT",
  "SETBIT",
  "BITCOUNT",
  "BITPOS",
  "BITFIELD",
  "BITFIELD_RO",
  "EXPIRE",
  "PEXPIRE",
  "EXPIREAT",
  "PEXPIREAT",
  "EXPIRETIME",
  "PEXPIRETIME",
  "TTL",
  "PTTL",
  "PERSIST",
  "TYPE",
  "DUMP",
  "RESTORE",
  "HSET",
  "HSETNX",
  "HGET",
  "HMSET",
  "HMGET",
  "HDEL",
  "HLEN",
  "HKEYS",
  "HVALS",
  "HGETALL",
  "HEXISTS",
  "HINCRBY",
  "HINCRBYFLOAT",
  "HSTRLEN",
  "HSCAN",
  "HRANDFIELD",
  "LPUSH",
  "RPUSH",
  "LPUSHX",
  "RPUSHX",
  "LPOP",
  "RPOP",
  "LLEN",
  "LRANGE",
  "LINDEX",
  "LSET",
  "LREM",
  "LTRIM",
  "LINSERT",
  "LPOS",
  "SADD",
  "SREM",
  "SMEMBERS",
  "SISMEMBER",
  "SMISMEMBER",
  "SCARD",
  "SPOP",
  "SRANDMEMBER",
  "SSCAN",
  "ZADD",
  "ZREM",
  "ZSCORE",
  "ZMSCORE",
  "ZINCRBY",
  "ZCARD",
  "ZCOUNT",
  "ZRANGE",
  "ZRANGEBYSCORE",
  "ZREVRANGE",
  "ZREVRANGEBYSCORE",
  "ZRANK",
  "ZREVRANK",
  "ZREMRANGEBYRANK",
  "ZREMRANGEBYSCORE",
  "ZREMRANGEBYLEX",
  "ZRANGEBYLEX",
  "ZREVRANGEBYLEX",
  "ZLEXCOUNT",
  "ZPOPMIN",
  "ZPOPMAX",
  "ZRANDMEMBER",
  "ZSCAN",
  "PFADD",
  "XADD",
  "XLEN",
  "XRANGE",
  "XREVRANGE",
  "XDEL",
  "XTRIM",
  "XACK",
  "XCLAIM",
  "XAUTOCLAIM",
  "XPENDING",
  "XSETID",
  "GEOADD",
  "GEODIST",
  "GEOHASH",
  "GEOPOS",
  "GEOSEARCH",
  "GEORADIUS",
  "GEORADIUSBYMEMBER",
  "GEORADIUS_RO",
  "GEORADIUSBYMEMBER_RO",
  "SORT",
  "SORT_RO",
  "LCS",
];

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

/// The key of a lock's fencing counter (same hash slot as the lock, with `keyPrefix` in force).
#[napi]
pub fn fencing_key(key: String) -> Result<String> {
  Ok(fencing_key_for(&crate::client::key_prefix()?, &key))
}

#[napi]
pub fn known_commands() -> Vec<&'static str> {
  KNOWN_COMMANDS
    .iter()
    .copied()
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
  fn every_known_command_has_a_key_spec() {
    for name in KNOWN_COMMANDS {
      assert_ne!(key_spec(name), KeySpec::Unknown, "{name}");
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
