//! THE command table: every command the package knows, where its keys are,
//! and which ones the shared connection refuses. The one source of these
//! facts: `keyPrefix` placement and cluster routing (`key_spec`,
//! `key_positions`), the raw client's command methods (`known_commands`) and,
//! by a test that fails when they drift, `RedisCommandName` in `index.d.ts`.

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

/// The commands the raw client gets a method for: the table minus the refused ones.
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
  use super::*;

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
