//! One submit's worth of requests, from arguments to bytes on the wire: the
//! command name checked against the table's refusals, `keyPrefix` put in front
//! of every key (the command table says where), `SCAN` patterns prefixed, RESP
//! encoded into one buffer; then the batch is written at once on the caller's
//! thread when the connection is up, or handed to the client to wait for one
//! within its deadline. Bad requests fail alone, before anything is sent.
//!
//! The binding decodes JS arguments into `Args` and calls `Submission::add` per
//! request; nothing here knows about N-API.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use redis::Value;
use tokio::time::Instant;

use super::client::{self, Client};
use super::cluster::command::{self as cluster_command, Route, RouteError};
use super::cluster::router::Cluster;
use super::command;
use super::connection::Routed;
use super::connection::{CommandName, Pending};
use super::error::{Failure, FailureKind};
use super::gather::Gather;
use super::keyscheme;
use super::link::Link;
use super::reply::{Extra, ReplyMode, ReplyQueue, Staged};
use super::resp;

/// Op codes of a request (the low bits of its code; see `OP_MASK`).
pub const OP_CALL: i32 = 1;
/// A command whose bulk replies are Buffers.
pub const OP_CALL_BUFFER: i32 = 2;
/// `SCAN cursor [MATCH m] [COUNT n] [TYPE t]` with `keyPrefix` added to the
/// pattern and taken off the keys.
pub const OP_SCAN: i32 = 3;
/// Close the client gracefully.
pub const OP_CLOSE: i32 = 4;
/// The addresses of a cluster's masters (the fan-out set), once the slot map
/// is loaded (within the deadline); `null` for a single server.
pub const OP_MASTERS: i32 = 5;
const OP_MASK: i32 = 15;
/// Flag: the caller has a degraded answer for a failure (a cache miss, a
/// rate-limit failure policy, an unhealthy probe): while a lost connection is
/// being made again, fail at once instead of waiting for it.
pub const REQUEST_DEGRADED: i32 = 16;
/// Flag: the package's own EVALSHA, which falls back to EVAL by itself: a
/// `NOSCRIPT` reply is not counted as a failed command.
pub const REQUEST_SCRIPT_PROBE: i32 = 32;
/// Flag: the first argument names the node (`host:port`) the request goes to
/// (the fan-out over a cluster's masters); it is not sent. One server ignores it.
pub const REQUEST_NODE: i32 = 64;

/// What a request asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
  Call,
  CallBuffer,
  Scan,
  Close,
  Masters,
}

impl Op {
  fn from_code(code: i32) -> Option<Self> {
    Some(match code & OP_MASK {
      OP_CALL => Op::Call,
      OP_CALL_BUFFER => Op::CallBuffer,
      OP_SCAN => Op::Scan,
      OP_CLOSE => Op::Close,
      OP_MASTERS => Op::Masters,
      _ => return None,
    })
  }
}

/// The arguments of one request, as byte ranges of one arena (reused).
#[derive(Default)]
pub struct Args {
  pub bytes: Vec<u8>,
  pub ranges: Vec<Range<usize>>,
}

impl Args {
  pub fn clear(&mut self) {
    self.bytes.clear();
    self.ranges.clear();
  }

  /// Starts the next request's arguments, keeping the arena's first `keep`
  /// bytes (text shared by every request of the submit, see `push_range`).
  pub fn next_request(&mut self, keep: usize) {
    self.bytes.truncate(keep);
    self.ranges.clear();
  }

  /// Adds an argument that is already in the arena (no copy).
  pub fn push_range(&mut self, range: Range<usize>) {
    self.ranges.push(range);
  }

  pub fn get(&self, i: usize) -> &[u8] {
    &self.bytes[self.ranges[i].clone()]
  }

  pub fn len(&self) -> usize {
    self.ranges.len()
  }

  pub fn is_empty(&self) -> bool {
    self.ranges.is_empty()
  }

  /// Appends a JS string's UTF-16 code units as one UTF-8 argument. A lone
  /// surrogate is refused (it would become U+FFFD and two strings would meet
  /// on the wire); the argument is then left incomplete and the request must fail.
  pub fn push_utf16(&mut self, units: &[u16]) -> Result<(), Failure> {
    let start = self.bytes.len();
    let outcome = push_utf8(&mut self.bytes, units);
    self.ranges.push(start..self.bytes.len());
    outcome
  }

  /// Appends raw bytes as one argument.
  pub fn push_bytes(&mut self, bytes: &[u8]) {
    let _ = self.push_with(|out| -> Result<(), ()> {
      out.extend_from_slice(bytes);
      Ok(())
    });
  }

  /// Appends one argument whose bytes `fill` appends to the arena.
  pub fn push_with<E>(&mut self, fill: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
    let start = self.bytes.len();
    let outcome = fill(&mut self.bytes);
    self.ranges.push(start..self.bytes.len());
    outcome
  }
}

/// The requests of one submit: encoded into `wire`, then sent together by `finish`.
pub struct Submission<'a> {
  channel: &'a Arc<ReplyQueue>,
  wire: &'a mut Vec<u8>,
  client: Result<Arc<Client>, Failure>,
  prefix: Vec<u8>,
  deadline: Instant,
  /// The live connection, when there is one: the batch is written right away.
  direct: Option<client::Transport>,
  /// Set while a lost connection is re-made: degraded requests fail with it at once.
  unreachable: Option<Failure>,
  staged: Staged,
  pending: Vec<Pending>,
  close_ids: Vec<u32>,
  all_degraded: bool,
  /// The last command name checked (as sent, and checked): a batch repeats names.
  last_name: Option<(Vec<u8>, CommandName)>,
  /// The callers' requests accepted (a split command is one).
  requests: usize,
  /// On a cluster: the client's cluster, the requests for each node's link
  /// (with their bytes), and those with no node yet (no map).
  cluster: Option<Arc<Cluster>>,
  groups: Vec<(Arc<Link>, Vec<u8>, Vec<Pending>)>,
  unrouted: Vec<Pending>,
}

impl<'a> Submission<'a> {
  /// Starts a submit for `channel`'s requests, encoding into `wire` (reused).
  pub fn begin(channel: &'a Arc<ReplyQueue>, wire: &'a mut Vec<u8>) -> Self {
    wire.clear();
    let client = client::current();
    let cluster = client.as_ref().ok().and_then(|c| c.cluster().cloned());
    let (prefix, deadline, direct, unreachable) = match &client {
      Ok(c) => {
        let direct = c.ready_fast();
        let unreachable = (direct.is_none() && c.is_reconnecting()).then(|| c.reconnecting_failure());
        (
          c.config.key_prefix.clone(),
          Instant::now() + c.config.command_timeout,
          direct,
          unreachable,
        )
      }
      Err(_) => (Vec::new(), Instant::now(), None, None),
    };
    Submission {
      channel,
      wire,
      client,
      prefix,
      deadline,
      direct,
      unreachable,
      staged: Staged::default(),
      pending: Vec::new(),
      close_ids: Vec::new(),
      all_degraded: true,
      last_name: None,
      requests: 0,
      cluster,
      groups: Vec::new(),
      unrouted: Vec::new(),
    }
  }

  /// Fails request `id` alone (bad arguments found while decoding them).
  pub fn fail(&mut self, id: u32, failure: &Failure) {
    self.staged.failure(self.channel, id, failure);
  }

  /// Adds request `id` with op code (and flags) `code` and its arguments.
  pub fn add(&mut self, id: u32, code: i32, args: &mut Args) {
    let Some(op) = Op::from_code(code) else {
      return self.fail(id, &Failure::new(FailureKind::Invalid, "unknown request"));
    };
    if op == Op::Close {
      self.close_ids.push(id);
      return;
    }
    if let Err(failure) = &self.client {
      let failure = failure.clone();
      return self.fail(id, &failure);
    }
    if op == Op::Masters {
      return self.masters(id);
    }
    // A fan-out request names its node first; one server has only one.
    let node = if code & REQUEST_NODE != 0 && !args.is_empty() {
      let node = String::from_utf8_lossy(args.get(0)).into_owned();
      args.ranges.remove(0);
      Some(node)
    } else {
      None
    };
    let degraded = code & REQUEST_DEGRADED != 0;
    if let (Some(failure), true) = (&self.unreachable, degraded) {
      let failure = failure.clone();
      return self.fail(id, &failure);
    }
    self.all_degraded &= degraded;
    let mode = match op {
      Op::CallBuffer => ReplyMode::Buffers,
      Op::Scan => ReplyMode::Scan,
      _ => ReplyMode::Strings,
    };
    let checked = if op == Op::Scan {
      Ok(CommandName::new(b"SCAN"))
    } else {
      self.name_of(args)
    };
    let probe = code & REQUEST_SCRIPT_PROBE != 0;
    if let Some(cluster) = self.cluster.clone() {
      if let Err(failure) = self.add_routed(&cluster, id, op, mode, checked, args, node, degraded, probe) {
        return self.fail(id, &failure);
      }
    } else {
      match encode(&mut *self.wire, op, checked, args, &self.prefix) {
        Ok(name) => {
          let pending = self.pending_of(id, mode, name, probe, None);
          self.pending.push(pending);
        }
        Err(failure) => return self.fail(id, &failure),
      }
    }
    self.requests += 1;
    if mode == ReplyMode::Scan {
      let mut scan_prefix = self.channel.scan_prefix.lock().unwrap();
      scan_prefix.clear();
      scan_prefix.extend_from_slice(&self.prefix);
    }
  }

  /// A cluster request: routed by the slot of its keys (or to the node it
  /// names), a splittable multi-key command split per slot, each piece
  /// carrying its bytes for a redirect.
  #[allow(clippy::too_many_arguments)]
  fn add_routed(
    &mut self,
    cluster: &Arc<Cluster>,
    id: u32,
    op: Op,
    mode: ReplyMode,
    checked: Result<CommandName, Failure>,
    args: &Args,
    node: Option<String>,
    degraded: bool,
    probe: bool,
  ) -> Result<(), Failure> {
    let name = checked?;
    let invalid = |message: String| Failure::new(FailureKind::Invalid, message);
    let slices: Vec<&[u8]> = (0..args.len()).map(|i| args.get(i)).collect();
    let route = if op == Op::Scan || node.is_some() {
      // SCAN and fan-out requests go where they are sent.
      Route::NoKeys
    } else {
      cluster_command::route(&self.prefix, &slices).map_err(|e| match e {
        RouteError::UnknownCommand(command) => invalid(format!(
          "{command}: this command's keys are not known, so it cannot be routed on a cluster"
        )),
        other => invalid(other.to_string()),
      })?
    };
    // (bytes, slot, part of a split command)
    type Piece = (Vec<u8>, Option<u16>, Option<(Arc<Gather>, usize)>);
    let mut pieces: Vec<Piece> = Vec::new();
    match route {
      Route::NoKeys | Route::Slot(_) => {
        let mut bytes = Vec::new();
        encode(&mut bytes, op, Ok(name), args, &self.prefix)?;
        let slot = match route {
          Route::Slot(slot) => Some(slot),
          _ => None,
        };
        pieces.push((bytes, slot, None));
      }
      Route::Split(plan) => {
        let parts: Vec<(u16, Args)> = plan
          .parts
          .iter()
          .map(|part| {
            let mut part_args = Args::default();
            for arg in part.select(&slices) {
              part_args.push_bytes(arg);
            }
            (part.slot, part_args)
          })
          .collect();
        let gather = Gather::new(Arc::clone(self.channel), id, mode, plan);
        for (index, (slot, part_args)) in parts.into_iter().enumerate() {
          let mut bytes = Vec::new();
          encode(&mut bytes, op, Ok(name), &part_args, &self.prefix)?;
          pieces.push((bytes, Some(slot), Some((Arc::clone(&gather), index))));
        }
      }
    }
    for (bytes, slot, part) in pieces {
      let target = cluster.target(slot, node.as_deref())?;
      if let (Some(link), true) = (&target, degraded) {
        if link.ready_fast().is_none() && link.is_reconnecting() {
          return Err(link.reconnecting_failure());
        }
      }
      let routed = Routed {
        bytes,
        slot,
        hops: 0,
        part,
        node: node.clone(),
        asking: false,
      };
      let pending = self.pending_of(id, mode, name, probe, Some(Box::new(routed)));
      match target {
        Some(link) => {
          let bytes = &pending.route.as_ref().expect("routed").bytes;
          match self.groups.iter_mut().find(|(l, _, _)| Arc::ptr_eq(l, &link)) {
            Some((_, wire, list)) => {
              wire.extend_from_slice(bytes);
              list.push(pending);
            }
            None => {
              let wire = bytes.clone();
              self.groups.push((link, wire, vec![pending]));
            }
          }
        }
        None => self.unrouted.push(pending),
      }
    }
    Ok(())
  }

  /// A request of this submit, waiting for its reply until the submit's deadline.
  fn pending_of(
    &self,
    id: u32,
    mode: ReplyMode,
    name: CommandName,
    probe: bool,
    route: Option<Box<Routed>>,
  ) -> Pending {
    Pending {
      channel: Arc::clone(self.channel),
      id,
      mode,
      name,
      deadline: self.deadline,
      timed_out: false,
      probe,
      route,
    }
  }

  /// Answers `OP_MASTERS`: the cluster's masters once there is a map, `null` for one server.
  fn masters(&mut self, id: u32) {
    let Some(cluster) = self.cluster.clone() else {
      return self.staged.done(self.channel, id);
    };
    let channel = Arc::clone(self.channel);
    let deadline = self.deadline;
    client::RUNTIME.spawn(async move {
      let mut staged = Staged::default();
      match cluster.masters_when_mapped(deadline).await {
        Ok(masters) => {
          let list = masters.into_iter().map(|m| Value::BulkString(m.into_bytes())).collect();
          staged.extra(&channel, id, Extra::Reply(Value::Array(list), ReplyMode::Strings));
        }
        Err(failure) => staged.failure(&channel, id, &failure),
      }
      staged.deliver();
    });
  }

  /// The request's command name, checked (see `checked_name`); the last
  /// name's verdict is reused while names repeat.
  fn name_of(&mut self, args: &Args) -> Result<CommandName, Failure> {
    if let (Some((raw, name)), false) = (&self.last_name, args.is_empty()) {
      if raw.as_slice() == args.get(0) {
        return Ok(*name);
      }
    }
    let name = checked_name(args)?;
    self.last_name = Some((args.get(0).to_vec(), name));
    Ok(name)
  }

  /// Delivers the failures, sends the batch (written here on the caller's
  /// thread when the connection is up, else it waits for one within its
  /// deadline) and starts a requested close.
  pub fn finish(mut self) {
    self.staged.deliver();
    if let (Ok(client), Some(cluster)) = (&self.client, &self.cluster) {
      client.begin_requests(self.requests);
      let mut unsent = std::mem::take(&mut self.unrouted);
      for (link, bytes, list) in self.groups.drain(..) {
        match link.ready_fast() {
          // Written here, on the caller's thread, one write per node.
          Some(conn) => {
            if let Err(back) = conn.send(&bytes, list) {
              unsent.extend(back);
            }
          }
          None => unsent.extend(list),
        }
      }
      cluster.send_later(unsent, self.all_degraded);
      cluster.refresh_soon(true);
    }
    if let (Ok(client), false) = (&self.client, self.pending.is_empty()) {
      client.begin_requests(self.pending.len());
      let pending = std::mem::take(&mut self.pending);
      let unsent = match &self.direct {
        // Given back when the connection died under us (nothing was written),
        // to wait for the next one.
        Some(conn) => conn
          .send(self.wire, pending)
          .err()
          .map(|requests| (self.wire.clone(), requests)),
        None => Some((std::mem::take(self.wire), pending)),
      };
      if let Some((batch, requests)) = unsent {
        // A batch of degraded requests only (a lone health probe, a cache read)
        // waits for the first connection's attempt, not through retries.
        let degraded = self.all_degraded;
        client::RUNTIME.spawn(Arc::clone(client).send_later(batch, requests, self.deadline, degraded));
      }
    }
    if !self.close_ids.is_empty() {
      let channel = Arc::clone(self.channel);
      let close_ids = std::mem::take(&mut self.close_ids);
      client::RUNTIME.spawn(async move {
        if let Some(client) = client::existing() {
          client.close().await;
        }
        let mut staged = Staged::default();
        for id in close_ids {
          staged.done(&channel, id);
        }
        staged.deliver();
      });
    }
  }
}

/// Encodes one command (its name already checked) into `out`, with
/// `keyPrefix` in front of its keys (or SCAN's pattern).
fn encode(
  out: &mut Vec<u8>,
  op: Op,
  checked: Result<CommandName, Failure>,
  args: &Args,
  prefix: &[u8],
) -> Result<CommandName, Failure> {
  if op != Op::Scan && prefix.is_empty() {
    // The common case: encode straight into the wire buffer, no allocation.
    return checked.inspect(|_| {
      resp::write_array_header(out, args.len());
      for range in &args.ranges {
        resp::write_bulk(out, &[&args.bytes[range.clone()]]);
      }
    });
  }
  let command = match op {
    Op::Scan => scan_command(args, prefix),
    _ => checked.and_then(|name| prefixed_command(&name, args, prefix)),
  };
  command.map(|parts| {
    let name = CommandName::new(parts.first().map(|p| p.1).unwrap_or(b""));
    resp::write_array_header(out, parts.len());
    for (key_prefix, arg) in &parts {
      resp::write_bulk(out, &[key_prefix, arg]);
    }
    name
  })
}

/// A command's arguments, each with the key prefix to put in front of it
/// (empty for non-keys): the name first.
type Parts<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The command's name, checked: present, and not one the shared connection refuses.
fn checked_name(args: &Args) -> Result<CommandName, Failure> {
  if args.is_empty() || args.get(0).is_empty() {
    return Err(Failure::new(FailureKind::Invalid, "a command needs a name"));
  }
  let name = CommandName::new(args.get(0));
  if let Some(why) = command::shared_connection_refusal(name.as_str()) {
    return Err(Failure::new(
      FailureKind::Invalid,
      format!("{} is not allowed: {why}", name.as_str()),
    ));
  }
  Ok(name)
}

/// The arguments of a command (its name checked) with `keyPrefix` in front of each of its keys.
fn prefixed_command<'a>(name: &CommandName, args: &'a Args, prefix: &'a [u8]) -> Result<Parts<'a>, Failure> {
  let name = name.as_str();
  let mut parts: Parts = (0..args.len()).map(|i| (&b""[..], args.get(i))).collect();
  if prefix.is_empty() {
    return Ok(parts);
  }
  let rest: Vec<&[u8]> = parts[1..].iter().map(|p| p.1).collect();
  let positions = command::key_positions(command::key_spec(name), &rest).map_err(|why| {
    Failure::new(
      FailureKind::Invalid,
      if why == "unknown" {
        format!("{name}: this command's key positions are not known, so keyPrefix cannot be applied to it")
      } else {
        format!("{name}: {why}")
      },
    )
  })?;
  for position in positions {
    parts[position + 1].0 = prefix;
  }
  Ok(parts)
}

/// `SCAN cursor MATCH prefix+pattern [COUNT n] [TYPE t]` from (cursor, pattern, count, type; "" for none).
fn scan_command<'a>(args: &'a Args, prefix: &'a [u8]) -> Result<Parts<'a>, Failure> {
  let arg = |i: usize| (i < args.len()).then(|| args.get(i)).filter(|a| !a.is_empty());
  let mut parts: Parts = vec![(b"", b"SCAN"), (b"", arg(0).unwrap_or(b"0"))];
  let pattern = arg(1).unwrap_or(b"*");
  if !prefix.is_empty() || pattern != b"*" {
    parts.push((b"", b"MATCH"));
    parts.push((escaped_prefix(prefix), pattern));
  }
  if let Some(count) = arg(2) {
    parts.push((b"", b"COUNT"));
    parts.push((b"", count));
  }
  if let Some(kind) = arg(3) {
    parts.push((b"", b"TYPE"));
    parts.push((b"", kind));
  }
  Ok(parts)
}

/// The key prefix with glob characters escaped (leaked once per distinct prefix).
fn escaped_prefix(prefix: &[u8]) -> &'static [u8] {
  static CACHE: Mutex<Vec<(Vec<u8>, &'static [u8])>> = Mutex::new(Vec::new());
  let mut cache = CACHE.lock().unwrap();
  if let Some((_, escaped)) = cache.iter().find(|(p, _)| p == prefix) {
    return escaped;
  }
  let escaped: &'static [u8] = Box::leak(
    keyscheme::glob_escape(&String::from_utf8_lossy(prefix))
      .into_bytes()
      .into_boxed_slice(),
  );
  cache.push((prefix.to_vec(), escaped));
  escaped
}

/// Appends UTF-16 code units (a JS string) as UTF-8; refuses a lone surrogate.
fn push_utf8(out: &mut Vec<u8>, units: &[u16]) -> Result<(), Failure> {
  if units.iter().all(|&u| u < 0x80) {
    out.extend(units.iter().map(|&u| u as u8));
    return Ok(());
  }
  for c in char::decode_utf16(units.iter().copied()) {
    let Ok(c) = c else {
      return Err(Failure::new(
        FailureKind::Invalid,
        "an argument is not well-formed UTF-16 (it holds a lone surrogate); nothing was sent",
      ));
    };
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
  }
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;

  fn args(list: &[&str]) -> Args {
    let mut a = Args::default();
    for s in list {
      a.push_bytes(s.as_bytes());
    }
    a
  }

  fn flat(parts: &Parts) -> Vec<String> {
    parts
      .iter()
      .map(|(p, a)| format!("{}{}", String::from_utf8_lossy(p), String::from_utf8_lossy(a)))
      .collect()
  }

  #[test]
  fn the_prefix_goes_before_every_key_and_nothing_else() {
    let a = args(&["MSET", "k1", "v1", "k2", "v2"]);
    assert_eq!(
      flat(&prefixed_command(&checked_name(&a).unwrap(), &a, b"app:").unwrap()),
      ["MSET", "app:k1", "v1", "app:k2", "v2"]
    );
    let a = args(&["EVALSHA", "abc", "2", "x", "y", "arg"]);
    assert_eq!(
      flat(&prefixed_command(&checked_name(&a).unwrap(), &a, b"p:").unwrap()),
      ["EVALSHA", "abc", "2", "p:x", "p:y", "arg"]
    );
  }

  #[test]
  fn refused_and_unknown_commands_fail_before_encoding() {
    assert!(checked_name(&args(&["MULTI"])).is_err());
    assert!(checked_name(&args(&[""])).is_err());
    let unknown = args(&["NOTACOMMAND", "k"]);
    let name = checked_name(&unknown).unwrap();
    let failure = prefixed_command(&name, &unknown, b"p:").unwrap_err();
    assert!(failure.message.contains("key positions are not known"));
    // Without a prefix an unknown command goes as it is.
    assert!(prefixed_command(&name, &unknown, b"").is_ok());
  }

  #[test]
  fn scan_patterns_get_the_escaped_prefix() {
    let a = args(&["0", "cache:*", "100", ""]);
    assert_eq!(
      flat(&scan_command(&a, b"a*b:").unwrap()),
      ["SCAN", "0", "MATCH", "a\\*b:cache:*", "COUNT", "100"]
    );
    assert_eq!(flat(&scan_command(&args(&["7"]), b"").unwrap()), ["SCAN", "7"]);
  }

  #[test]
  fn utf16_arguments_become_utf8_and_lone_surrogates_are_refused() {
    let mut a = Args::default();
    a.push_utf16(&"héllo €".encode_utf16().collect::<Vec<_>>()).unwrap();
    assert_eq!(a.get(0), "héllo €".as_bytes());
    assert!(a.push_utf16(&[0x61, 0xD800]).is_err());
  }
}
