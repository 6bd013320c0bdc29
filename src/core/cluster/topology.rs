//! The cluster's topology as the client needs it: which master serves each of
//! the 16384 slots, and every node's reachable address, role and health —
//! parsed from the raw RESP2 bytes of `CLUSTER SHARDS` (Redis 7) or
//! `CLUSTER SLOTS` (older servers), with a natMap applied.
//!
//! Invariants:
//! - A `SlotMap` is one node's answer, self-consistent: each slot has at most
//!   one owner, the owner is a node of role `Master`, `nodes[i].slots` are
//!   exactly the slots whose owner is `i` (as inclusive ranges, ascending).
//!   A view that contradicts itself (two masters claiming a slot) is an error,
//!   never half-applied.
//! - A node's `address` is where to connect; `announced` is what the cluster
//!   said (after the endpoint rule, before the natMap). The endpoint rule, from
//!   redis.conf's `cluster-preferred-endpoint-type` notes: an endpoint that is
//!   NULL or empty means "the endpoint you used for this request" (the asked
//!   host, with the node's own port); `?` means the node has no preferred
//!   endpoint of the configured type (hostname preferred, none announced): its
//!   `ip` (SHARDS, or SLOTS's metadata) is used, else the asked host; the
//!   wildcards `0.0.0.0` and `::` are the asked host too (as redis-rs does).
//! - Ports: a TLS client takes `tls-port` (SHARDS) when given, else `port`; a
//!   plain client `port`, else `tls-port`. `CLUSTER SLOTS` already answers the
//!   port of the asking connection's kind.
//! - natMap keys are the announced `host:port` (endpoint, else ip); the first
//!   match wins; a node no entry names keeps its announced address.
//! - Failed masters keep their slots until the cluster gives them to another
//!   node (that is the truth the server reports): the router sees
//!   `Health::Failed` and decides; nodes with no slots (a replaced master, a
//!   fresh node) are listed with empty `slots`.
//!
//! Disagreeing maps (`choose_view`). What the references do:
//! - ioredis (`built/cluster/index.js` `refreshSlotsCache`): shuffles the known
//!   nodes and takes the first `CLUSTER SLOTS` answer; no comparison.
//! - redis-rs 1.x (`cluster_handling/async_connection/mod.rs` `refresh_slots`):
//!   the first connection that answers `CLUSTER SLOTS` wins; no comparison.
//! - valkey-glide's redis-rs fork (`glide-core/redis-rs/redis/src/cluster_topology.rs`
//!   `calculate_topology`): asks several nodes, groups identical views (slot
//!   ranges, primary, sorted replicas), takes the most frequent; on a tie the
//!   one covering more slots, and retries the refresh (up to 3 times) before
//!   accepting a tie; refuses a view fewer than 20 % of the asked nodes share.
//! - Lettuce (`KnownMajority`, and PR redis/lettuce#3854): prefers views with
//!   full slot coverage, because a node that is joining answers with a partial one.
//!
//! Our rule: ask up to three nodes; drop views that failed; if any view covers
//! all 16384 slots, consider only full views; group the rest by
//! `Fingerprint` (slot ranges → master address, sorted ONLINE replica
//! addresses; health, offsets and order ignored); the largest group wins, a
//! tie going to more slots covered, then fewer failed masters, then the
//! earliest view (the caller lists the nodes it trusts most first). A tie is
//! reported as `contested` so the client can refresh again soon (rate-limited)
//! instead of trusting it long. Config epochs, which would settle it, are not
//! in SHARDS or SLOTS; a MOVED reply is the server's own word for one slot
//! (`SlotMap::apply_moved`) and needs no vote.

use std::collections::HashMap;
use std::fmt;

use redis::Value;

use super::slot::SLOT_COUNT;
use crate::core::resp::{self, Frame};

/// A reply as a tree (RESP2; RESP3 maps and sets flattened into arrays).
#[derive(Clone, Debug, PartialEq)]
pub enum Resp {
  /// Simple or bulk string.
  Str(Vec<u8>),
  Int(i64),
  Nil,
  Array(Vec<Resp>),
  /// An error reply, without the leading `-`.
  Error(String),
}

impl Resp {
  fn as_str(&self) -> Option<&str> {
    match self {
      Resp::Str(s) => std::str::from_utf8(s).ok(),
      _ => None,
    }
  }

  /// An integer, or a string holding one (some servers send slots as strings).
  fn as_int(&self) -> Option<i64> {
    match self {
      Resp::Int(n) => Some(*n),
      Resp::Str(_) => self.as_str()?.parse().ok(),
      _ => None,
    }
  }
}

/// Parses exactly one complete reply spanning all of `buf`.
pub fn parse_reply(buf: &[u8]) -> Result<Resp, TopologyError> {
  match resp::parse_frame(buf, 0) {
    Err(e) => Err(TopologyError::Protocol(e.0)),
    Ok(None) => Err(TopologyError::Protocol("the reply is incomplete".into())),
    Ok(Some((_, end))) if end != buf.len() => Err(TopologyError::Protocol(format!(
      "{} bytes after the reply",
      buf.len() - end
    ))),
    Ok(Some((frame, _))) => Ok(match frame {
      Frame::Simple(r) | Frame::Bulk(r) => Resp::Str(buf[r].to_vec()),
      Frame::Error(r) => Resp::Error(String::from_utf8_lossy(&buf[r]).into_owned()),
      Frame::Int(n) => Resp::Int(n),
      Frame::Nil => Resp::Nil,
      Frame::Array(items) => Resp::Array(items.into_iter().map(from_value).collect()),
    }),
  }
}

fn from_value(value: Value) -> Resp {
  match value {
    Value::Nil => Resp::Nil,
    Value::Int(n) => Resp::Int(n),
    Value::BulkString(b) => Resp::Str(b),
    Value::SimpleString(s) => Resp::Str(s.into_bytes()),
    Value::Okay => Resp::Str(b"OK".to_vec()),
    Value::Array(items) | Value::Set(items) => Resp::Array(items.into_iter().map(from_value).collect()),
    Value::Push { data, .. } => Resp::Array(data.into_iter().map(from_value).collect()),
    Value::Map(pairs) => Resp::Array(
      pairs
        .into_iter()
        .flat_map(|(k, v)| [from_value(k), from_value(v)])
        .collect(),
    ),
    Value::Attribute { data, .. } => from_value(*data),
    Value::Double(d) => Resp::Str(d.to_string().into_bytes()),
    Value::Boolean(b) => Resp::Int(b as i64),
    Value::VerbatimString { text, .. } => Resp::Str(text.into_bytes()),
    Value::ServerError(e) => Resp::Error(e.to_string()),
    other => Resp::Str(format!("{other:?}").into_bytes()),
  }
}

/// Why a topology reply could not be used.
#[derive(Clone, Debug, PartialEq)]
pub enum TopologyError {
  /// The bytes are not one RESP2 reply.
  Protocol(String),
  /// The server answered an error (e.g. `ERR unknown subcommand 'SHARDS'` on
  /// Redis < 7: fall back to CLUSTER SLOTS; or cluster support disabled).
  Server(String),
  /// A reply of an unexpected shape.
  Shape(String),
  /// The reply contradicts itself (a slot claimed twice).
  Inconsistent(String),
}

impl TopologyError {
  /// Whether the server does not know CLUSTER SHARDS (so CLUSTER SLOTS is the way).
  pub fn is_unknown_subcommand(&self) -> bool {
    matches!(self, TopologyError::Server(m) if m.to_ascii_lowercase().contains("unknown subcommand"))
  }
}

impl fmt::Display for TopologyError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      TopologyError::Protocol(m) => write!(f, "cluster topology: not a RESP reply: {m}"),
      TopologyError::Server(m) => write!(f, "cluster topology: the server answered: {m}"),
      TopologyError::Shape(m) => write!(f, "cluster topology: unexpected reply: {m}"),
      TopologyError::Inconsistent(m) => write!(f, "cluster topology: inconsistent reply: {m}"),
    }
  }
}

impl std::error::Error for TopologyError {}

fn shape(message: impl Into<String>) -> TopologyError {
  TopologyError::Shape(message.into())
}

/// A host and port. `Display` writes `host:port` (`[v6]:port` for IPv6).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
  pub host: String,
  pub port: u16,
}

impl Address {
  pub fn new(host: impl Into<String>, port: u16) -> Self {
    Address {
      host: host.into(),
      port,
    }
  }

  /// Parses `host:port`, `[v6]:port` or `v6:port` (the last colon separates the port).
  pub fn parse(text: &str) -> Result<Address, String> {
    let (host, port) = text
      .rsplit_once(':')
      .ok_or_else(|| format!("{text:?} is not host:port"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port: u16 = port
      .parse()
      .ok()
      .filter(|p| *p > 0)
      .ok_or_else(|| format!("{text:?} has no valid port (1-65535)"))?;
    if host.is_empty() {
      return Err(format!("{text:?} has no host"));
    }
    Ok(Address::new(host, port))
  }
}

impl fmt::Display for Address {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if self.host.contains(':') {
      write!(f, "[{}]:{}", self.host, self.port)
    } else {
      write!(f, "{}:{}", self.host, self.port)
    }
  }
}

/// `{ 'announced-host:port': { host, port } }`: announced addresses → reachable ones
/// (clusters behind NAT or in Docker). Host names compare case-insensitively.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NatMap(HashMap<Address, Address>);

impl NatMap {
  /// From `("host:port", reachable)` entries; a key that is not `host:port` is an error naming it.
  pub fn new<K: AsRef<str>>(entries: impl IntoIterator<Item = (K, Address)>) -> Result<NatMap, String> {
    let mut map = HashMap::new();
    for (key, to) in entries {
      let from = Address::parse(key.as_ref()).map_err(|e| format!("natMap key {e}"))?;
      if to.port == 0 || to.host.is_empty() {
        return Err(format!("natMap entry for {:?} needs a host and a port", key.as_ref()));
      }
      map.insert(Self::normalize(&from), to);
    }
    Ok(NatMap(map))
  }

  #[cfg(test)]
  pub fn is_empty(&self) -> bool {
    self.0.is_empty()
  }

  fn normalize(address: &Address) -> Address {
    Address::new(address.host.to_ascii_lowercase(), address.port)
  }

  /// The reachable address for an announced one, if the map names it.
  pub fn map(&self, announced: &Address) -> Option<&Address> {
    if self.0.is_empty() {
      return None;
    }
    self.0.get(&Self::normalize(announced))
  }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
  Master,
  Replica,
}

/// SHARDS's `health`; CLUSTER SLOTS says nothing (`Unknown`), but lists
/// neither failed nor loading replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
  Online,
  /// A replica still loading or syncing (SHARDS `loading`).
  Loading,
  /// The cluster flagged the node FAIL.
  Failed,
  Unknown,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
  /// The node id (40 hex characters); CLUSTER SLOTS of Redis < 4 has none.
  pub id: Option<String>,
  /// Where to connect: `announced` through the natMap.
  pub address: Address,
  /// The address the cluster announces (after the endpoint rule, before the natMap).
  pub announced: Address,
  pub ip: Option<String>,
  pub hostname: Option<String>,
  /// SHARDS's `port` and `tls-port` (CLUSTER SLOTS: the one port it gave, in `port`).
  pub port: Option<u16>,
  pub tls_port: Option<u16>,
  pub role: Role,
  pub health: Health,
  pub replication_offset: Option<i64>,
  /// A replica's master (an index into `SlotMap::nodes`).
  pub master: Option<usize>,
  /// The slots this node serves, as inclusive ranges in ascending order (masters only).
  pub slots: Vec<(u16, u16)>,
}

/// Which command a map came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
  Shards,
  Slots,
}

const NO_OWNER: u16 = u16::MAX;

/// One node's view of the cluster (see the module's invariants).
#[derive(Clone, Debug, PartialEq)]
pub struct SlotMap {
  pub nodes: Vec<Node>,
  /// For each slot, the index of its master in `nodes`, or `NO_OWNER`.
  owners: Vec<u16>,
  pub source: Source,
}

/// How to read addresses out of a reply: the address that was asked, the
/// kind of connection, and the natMap.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
  /// The address the reply came from (the host used for empty and NULL endpoints).
  pub asked: &'a Address,
  /// Whether the client connects with TLS (which of SHARDS's ports to take).
  pub tls: bool,
  pub nat: &'a NatMap,
}

fn is_wildcard(host: &str) -> bool {
  matches!(host, "0.0.0.0" | "::" | "[::]")
}

impl Context<'_> {
  /// The announced host by the endpoint rule (module header).
  fn host(&self, endpoint: Option<&str>, ip: Option<&str>) -> String {
    match endpoint {
      Some("?") => match ip {
        Some(ip) if !ip.is_empty() && !is_wildcard(ip) => ip.to_string(),
        _ => self.asked.host.clone(),
      },
      Some(e) if !e.is_empty() && !is_wildcard(e) => e.to_string(),
      _ => self.asked.host.clone(),
    }
  }

  /// The reachable address: the natMap entry for the announced address, else
  /// for `ip:port`, else the announced address itself.
  fn reachable(&self, announced: &Address, ip: Option<&str>) -> Address {
    if let Some(to) = self.nat.map(announced) {
      return to.clone();
    }
    if let Some(ip) = ip.filter(|ip| *ip != announced.host) {
      if let Some(to) = self.nat.map(&Address::new(ip, announced.port)) {
        return to.clone();
      }
    }
    announced.clone()
  }
}

fn port_of(value: &Resp, what: &str) -> Result<u16, TopologyError> {
  value
    .as_int()
    .and_then(|p| u16::try_from(p).ok())
    .ok_or_else(|| shape(format!("{what} is not a port: {value:?}")))
}

fn slot_of(value: &Resp) -> Result<u16, TopologyError> {
  value
    .as_int()
    .filter(|s| (0..SLOT_COUNT as i64).contains(s))
    .map(|s| s as u16)
    .ok_or_else(|| shape(format!("{value:?} is not a slot number")))
}

fn top_level(reply: &[u8]) -> Result<Vec<Resp>, TopologyError> {
  match parse_reply(reply)? {
    Resp::Array(items) => Ok(items),
    Resp::Error(e) => Err(TopologyError::Server(e)),
    other => Err(shape(format!("expected an array, got {other:?}"))),
  }
}

/// A flat `key, value, key, value…` array as (key, value) pairs.
fn pairs(items: &[Resp]) -> impl Iterator<Item = (&str, &Resp)> {
  items
    .chunks_exact(2)
    .filter_map(|kv| kv[0].as_str().map(|k| (k, &kv[1])))
}

impl SlotMap {
  fn empty(source: Source) -> Self {
    SlotMap {
      nodes: Vec::new(),
      owners: vec![NO_OWNER; SLOT_COUNT as usize],
      source,
    }
  }

  /// Parses the raw bytes of a `CLUSTER SHARDS` reply.
  pub fn from_shards(reply: &[u8], cx: Context) -> Result<SlotMap, TopologyError> {
    let mut map = SlotMap::empty(Source::Shards);
    for shard in top_level(reply)? {
      let Resp::Array(fields) = shard else {
        return Err(shape("a shard is not an array"));
      };
      let mut ranges = Vec::new();
      let mut members = Vec::new();
      for (key, value) in pairs(&fields) {
        match (key, value) {
          ("slots", Resp::Array(bounds)) => {
            if !bounds.len().is_multiple_of(2) {
              return Err(shape("a shard's slots are not start/end pairs"));
            }
            for pair in bounds.chunks_exact(2) {
              let (start, end) = (slot_of(&pair[0])?, slot_of(&pair[1])?);
              if start > end {
                return Err(shape(format!("slot range {start}-{end} is reversed")));
              }
              ranges.push((start, end));
            }
          }
          ("nodes", Resp::Array(nodes)) => members = nodes.iter().collect(),
          _ => {}
        }
      }
      let first = map.nodes.len();
      for member in members {
        let Resp::Array(fields) = member else {
          return Err(shape("a shard's node is not an array"));
        };
        map.nodes.push(shards_node(fields, cx)?);
      }
      let shard_nodes = first..map.nodes.len();
      // The shard's master: a master not failed, else the one with the highest
      // replication offset (two masters in one shard only during a failover).
      let master = shard_nodes
        .clone()
        .filter(|&i| map.nodes[i].role == Role::Master)
        .max_by_key(|&i| {
          let n = &map.nodes[i];
          (
            n.health != Health::Failed,
            n.replication_offset.unwrap_or(-1),
            std::cmp::Reverse(i),
          )
        });
      for i in shard_nodes {
        if map.nodes[i].role == Role::Replica {
          map.nodes[i].master = master;
        }
      }
      if let Some(master) = master {
        for (start, end) in ranges {
          map.claim(start, end, master)?;
        }
      }
      // A shard with slots but no master (mid-failover): its slots stay
      // unowned; the router finds them uncovered and refreshes.
    }
    map.finish();
    Ok(map)
  }

  /// Parses the raw bytes of a `CLUSTER SLOTS` reply.
  pub fn from_slots(reply: &[u8], cx: Context) -> Result<SlotMap, TopologyError> {
    let mut map = SlotMap::empty(Source::Slots);
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for entry in top_level(reply)? {
      let Resp::Array(items) = entry else {
        return Err(shape("a CLUSTER SLOTS entry is not an array"));
      };
      if items.len() < 3 {
        return Err(shape("a CLUSTER SLOTS entry has no node"));
      }
      let (start, end) = (slot_of(&items[0])?, slot_of(&items[1])?);
      if start > end {
        return Err(shape(format!("slot range {start}-{end} is reversed")));
      }
      let mut master = None;
      for (position, node) in items[2..].iter().enumerate() {
        let Resp::Array(fields) = node else {
          return Err(shape("a CLUSTER SLOTS node is not an array"));
        };
        let role = if position == 0 { Role::Master } else { Role::Replica };
        let parsed = slots_node(fields, role, cx)?;
        let key = parsed.id.clone().unwrap_or_else(|| parsed.announced.to_string());
        let index = match by_key.get(&key) {
          Some(&i) => {
            if map.nodes[i].role != role {
              return Err(TopologyError::Inconsistent(format!(
                "{} is listed both as a master and as a replica",
                map.nodes[i].announced
              )));
            }
            i
          }
          None => {
            map.nodes.push(parsed);
            by_key.insert(key, map.nodes.len() - 1);
            map.nodes.len() - 1
          }
        };
        match role {
          Role::Master => master = Some(index),
          Role::Replica => map.nodes[index].master = master,
        }
      }
      map.claim(start, end, master.expect("position 0 is the master"))?;
    }
    map.finish();
    Ok(map)
  }

  fn claim(&mut self, start: u16, end: u16, owner: usize) -> Result<(), TopologyError> {
    for slot in start..=end {
      let current = self.owners[slot as usize];
      if current != NO_OWNER && current as usize != owner {
        return Err(TopologyError::Inconsistent(format!(
          "slot {slot} is claimed by {} and {}",
          self.nodes[current as usize].announced, self.nodes[owner].announced
        )));
      }
      self.owners[slot as usize] = owner as u16;
    }
    Ok(())
  }

  /// Derives every node's `slots` from the owner table.
  fn finish(&mut self) {
    for node in &mut self.nodes {
      node.slots.clear();
    }
    for (start, end, owner) in self.runs() {
      if let Some(owner) = owner {
        self.nodes[owner].slots.push((start, end));
      }
    }
  }

  /// Maximal runs of slots with the same owner: `(start, end, owner)`.
  fn runs(&self) -> Vec<(u16, u16, Option<usize>)> {
    let mut runs = Vec::new();
    let mut start = 0u16;
    for slot in 1..=SLOT_COUNT {
      if slot == SLOT_COUNT || self.owners[slot as usize] != self.owners[start as usize] {
        let owner = self.owners[start as usize];
        runs.push((start, slot - 1, (owner != NO_OWNER).then_some(owner as usize)));
        start = slot;
      }
    }
    runs
  }

  /// The index in `nodes` of the master that serves `slot`.
  pub fn master_index(&self, slot: u16) -> Option<usize> {
    match self.owners.get(slot as usize) {
      Some(&o) if o != NO_OWNER => Some(o as usize),
      _ => None,
    }
  }

  /// The master that serves `slot`.
  #[cfg(test)]
  pub fn master_of(&self, slot: u16) -> Option<&Node> {
    self.master_index(slot).map(|i| &self.nodes[i])
  }

  /// The indices of the masters that serve at least one slot (the fan-out set).
  pub fn masters(&self) -> Vec<usize> {
    (0..self.nodes.len())
      .filter(|&i| self.nodes[i].role == Role::Master && !self.nodes[i].slots.is_empty())
      .collect()
  }

  /// The indices of `master`'s replicas.
  pub fn replicas_of(&self, master: usize) -> Vec<usize> {
    (0..self.nodes.len())
      .filter(|&i| self.nodes[i].master == Some(master))
      .collect()
  }

  /// The number of slots that have an owner.
  pub fn covered(&self) -> usize {
    self.owners.iter().filter(|&&o| o != NO_OWNER).count()
  }

  /// Whether every slot has an owner.
  pub fn is_complete(&self) -> bool {
    self.covered() == SLOT_COUNT as usize
  }

  /// How many slot-owning masters are flagged failed.
  pub fn failed_masters(&self) -> usize {
    self
      .masters()
      .into_iter()
      .filter(|&i| self.nodes[i].health == Health::Failed)
      .count()
  }

  /// The index of the node at `address` (reachable address).
  pub fn node_at(&self, address: &Address) -> Option<usize> {
    self.nodes.iter().position(|n| &n.address == address)
  }

  /// Applies a `MOVED slot address` redirect: `slot` now belongs to the node
  /// at `address` (added as a master if unknown). Resolves its index. The
  /// server's word for that one slot; the rest waits for a refresh.
  pub fn apply_moved(&mut self, slot: u16, address: &Address) -> usize {
    let index = match self.node_at(address) {
      Some(i) => {
        let node = &mut self.nodes[i];
        if node.role == Role::Replica {
          // A promoted replica: it serves slots now.
          node.role = Role::Master;
          node.master = None;
        }
        i
      }
      None => {
        self.nodes.push(Node {
          id: None,
          address: address.clone(),
          announced: address.clone(),
          ip: None,
          hostname: None,
          port: Some(address.port),
          tls_port: None,
          role: Role::Master,
          health: Health::Unknown,
          replication_offset: None,
          master: None,
          slots: Vec::new(),
        });
        self.nodes.len() - 1
      }
    };
    self.owners[slot as usize] = index as u16;
    self.finish();
    index
  }

  /// What two views must share to count as the same view (see `choose_view`).
  pub fn fingerprint(&self) -> Fingerprint {
    Fingerprint(
      self
        .runs()
        .into_iter()
        .filter_map(|(start, end, owner)| {
          let owner = owner?;
          let mut replicas: Vec<String> = self
            .replicas_of(owner)
            .into_iter()
            .filter(|&r| matches!(self.nodes[r].health, Health::Online | Health::Unknown))
            .map(|r| self.nodes[r].address.to_string())
            .collect();
          replicas.sort_unstable();
          Some((start, end, self.nodes[owner].address.to_string(), replicas))
        })
        .collect(),
    )
  }
}

/// A view reduced to what routing depends on: slot ranges, each master's
/// address, its online replicas' addresses (sorted).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub Vec<(u16, u16, String, Vec<String>)>);

fn shards_node(fields: &[Resp], cx: Context) -> Result<Node, TopologyError> {
  let mut id = None;
  let mut port = None;
  let mut tls_port = None;
  let mut ip = None;
  let mut endpoint: Option<Option<String>> = None;
  let mut hostname = None;
  let mut role = None;
  let mut offset = None;
  let mut health = Health::Unknown;
  for (key, value) in pairs(fields) {
    match key {
      "id" => id = value.as_str().map(str::to_string),
      "port" => port = Some(port_of(value, "port")?),
      "tls-port" => tls_port = Some(port_of(value, "tls-port")?),
      "ip" => ip = value.as_str().map(str::to_string),
      "endpoint" => endpoint = Some(value.as_str().map(str::to_string)),
      "hostname" => hostname = value.as_str().filter(|h| !h.is_empty()).map(str::to_string),
      "role" => {
        role = Some(match value.as_str() {
          Some("master") | Some("primary") => Role::Master,
          Some("replica") | Some("slave") => Role::Replica,
          _ => return Err(shape(format!("unknown role {value:?}"))),
        })
      }
      "replication-offset" => offset = value.as_int(),
      "health" => {
        health = match value.as_str() {
          Some("online") => Health::Online,
          Some("loading") => Health::Loading,
          Some("fail") | Some("failed") => Health::Failed,
          _ => Health::Unknown,
        }
      }
      _ => {}
    }
  }
  let role = role.ok_or_else(|| shape("a shard's node has no role"))?;
  let chosen = if cx.tls { tls_port.or(port) } else { port.or(tls_port) };
  let chosen = chosen
    .filter(|p| *p > 0)
    .ok_or_else(|| shape("a shard's node has no port"))?;
  // No `endpoint` field at all (not Redis 7's SHARDS, but be lenient): the ip.
  let host = match &endpoint {
    Some(e) => cx.host(e.as_deref(), ip.as_deref()),
    None => cx.host(ip.as_deref(), None),
  };
  let announced = Address::new(host, chosen);
  Ok(Node {
    id,
    address: cx.reachable(&announced, ip.as_deref()),
    announced,
    ip,
    hostname,
    port,
    tls_port,
    role,
    health,
    replication_offset: offset,
    master: None,
    slots: Vec::new(),
  })
}

fn slots_node(fields: &[Resp], role: Role, cx: Context) -> Result<Node, TopologyError> {
  if fields.len() < 2 {
    return Err(shape("a CLUSTER SLOTS node has no port"));
  }
  let endpoint = match &fields[0] {
    Resp::Nil => None,
    Resp::Str(_) => Some(
      fields[0]
        .as_str()
        .ok_or_else(|| shape("a CLUSTER SLOTS endpoint is not UTF-8"))?,
    ),
    other => return Err(shape(format!("a CLUSTER SLOTS endpoint is {other:?}"))),
  };
  let port = port_of(&fields[1], "port")?;
  let id = fields.get(2).and_then(Resp::as_str).map(str::to_string);
  let mut ip = None;
  let mut hostname = None;
  if let Some(Resp::Array(meta)) = fields.get(3) {
    for (key, value) in pairs(meta) {
      match key {
        "ip" => ip = value.as_str().map(str::to_string),
        "hostname" => hostname = value.as_str().filter(|h| !h.is_empty()).map(str::to_string),
        _ => {}
      }
    }
  }
  let announced = Address::new(cx.host(endpoint, ip.as_deref()), port);
  Ok(Node {
    id,
    address: cx.reachable(&announced, ip.as_deref()),
    announced,
    ip,
    hostname,
    port: Some(port),
    tls_port: None,
    role,
    health: Health::Unknown,
    replication_offset: None,
    master: None,
    slots: Vec::new(),
  })
}

/// The outcome of `choose_view`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreement {
  /// The index of the chosen view in the slice given.
  pub chosen: usize,
  /// How many views are identical to it (itself included).
  pub votes: usize,
  /// How many views were considered (the full ones when any is full).
  pub of: usize,
  /// Another group had as many votes: refresh again soon.
  pub contested: bool,
}

/// Picks one view among several nodes' answers by the rule in the module
/// header; `None` when there is none.
pub fn choose_view(views: &[SlotMap]) -> Option<Agreement> {
  let any_complete = views.iter().any(SlotMap::is_complete);
  let candidates: Vec<usize> = (0..views.len())
    .filter(|&i| !any_complete || views[i].is_complete())
    .collect();
  // Groups in order of first appearance: (first index, votes).
  let mut groups: Vec<(Fingerprint, usize, usize)> = Vec::new();
  for &i in &candidates {
    let fp = views[i].fingerprint();
    match groups.iter_mut().find(|g| g.0 == fp) {
      Some(g) => g.2 += 1,
      None => groups.push((fp, i, 1)),
    }
  }
  let rank = |&(_, first, votes): &(Fingerprint, usize, usize)| {
    let view = &views[first];
    (
      votes,
      view.covered(),
      std::cmp::Reverse(view.failed_masters()),
      std::cmp::Reverse(first),
    )
  };
  let best = groups.iter().max_by_key(|g| rank(g))?;
  let contested = groups
    .iter()
    .any(|g| g.1 != best.1 && g.2 == best.2 && views[g.1].covered() == views[best.1].covered());
  Some(Agreement {
    chosen: best.1,
    votes: best.2,
    of: candidates.len(),
    contested,
  })
}

/// A `MOVED` or `ASK` error reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
  pub kind: RedirectKind,
  pub slot: u16,
  /// Where to go (natMap applied).
  pub address: Address,
  /// What the server said (endpoint rule applied, before the natMap).
  pub announced: Address,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectKind {
  Moved,
  Ask,
}

impl Redirect {
  /// Parses `MOVED <slot> <endpoint>:<port>` / `ASK …` (the error text
  /// without its leading `-`). An empty or `?` endpoint means the node that
  /// answered (`cx.asked`), as in CLUSTER SLOTS. `None` for any other error.
  pub fn parse(error: &str, cx: Context) -> Option<Redirect> {
    let mut words = error.split(' ');
    let kind = match words.next()? {
      "MOVED" => RedirectKind::Moved,
      "ASK" => RedirectKind::Ask,
      _ => return None,
    };
    let slot: u16 = words.next()?.parse().ok().filter(|s| *s < SLOT_COUNT)?;
    let target = words.next()?;
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let announced = Address::new(cx.host(Some(host), None), port);
    Some(Redirect {
      kind,
      slot,
      address: cx.reachable(&announced, None),
      announced,
    })
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::cluster::testing::TestCluster;

  /// A recorded fixture: `src/core/cluster/fixtures/<name>.json` and its two replies.
  struct Fixture {
    meta: serde_json::Value,
    shards: Vec<u8>,
    slots: Vec<u8>,
  }

  fn fixture(name: &str) -> Fixture {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core/cluster/fixtures");
    let read = |file: String| std::fs::read(dir.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    Fixture {
      meta: serde_json::from_slice(&read(format!("{name}.json"))).unwrap(),
      shards: read(format!("{name}-shards.resp")),
      slots: read(format!("{name}-slots.resp")),
    }
  }

  /// The truth recorded beside a fixture (from CLUSTER NODES of the same node).
  #[derive(Debug)]
  struct Truth {
    id: String,
    port: u16,
    role: Role,
    failed: bool,
    master: Option<String>,
    slots: Vec<(u16, u16)>,
  }

  impl Fixture {
    fn truth(&self) -> Vec<Truth> {
      self.meta["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| Truth {
          id: n["id"].as_str().unwrap().to_string(),
          port: n["port"].as_u64().unwrap() as u16,
          role: if n["role"] == "master" {
            Role::Master
          } else {
            Role::Replica
          },
          failed: n["failed"].as_bool().unwrap(),
          master: n["master"].as_str().map(str::to_string),
          slots: n["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[0].as_u64().unwrap() as u16, r[1].as_u64().unwrap() as u16))
            .collect(),
        })
        .collect()
    }

    fn asked(&self) -> Address {
      Address::new(
        self.meta["asked"]["host"].as_str().unwrap(),
        self.meta["asked"]["port"].as_u64().unwrap() as u16,
      )
    }

    fn tls(&self) -> bool {
      self.meta["tls"].as_bool().unwrap()
    }

    fn nat(&self) -> NatMap {
      match self.meta["natMap"].as_object() {
        None => NatMap::default(),
        Some(entries) => NatMap::new(entries.iter().map(|(k, v)| {
          (
            k.clone(),
            Address::new(v["host"].as_str().unwrap(), v["port"].as_u64().unwrap() as u16),
          )
        }))
        .unwrap(),
      }
    }
  }

  fn by_id<'a>(map: &'a SlotMap, id: &str) -> &'a Node {
    map
      .nodes
      .iter()
      .find(|n| n.id.as_deref() == Some(id))
      .unwrap_or_else(|| panic!("node {id} is missing from {:?}", map.source))
  }

  fn index_of(map: &SlotMap, id: &str) -> usize {
    map.nodes.iter().position(|n| n.id.as_deref() == Some(id)).unwrap()
  }

  /// Checks a parsed map against the fixture's CLUSTER NODES truth.
  fn check_against_truth(map: &SlotMap, truth: &[Truth]) {
    // Every slot a (live or failed) master owns per CLUSTER NODES is that master's here.
    let mut owned = 0;
    for t in truth.iter().filter(|t| t.role == Role::Master) {
      if t.slots.is_empty() && map.source == Source::Slots {
        continue; // CLUSTER SLOTS lists only nodes that serve slots
      }
      assert_eq!(by_id(map, &t.id).slots, t.slots, "{:?}: slots of {}", map.source, t.id);
      for &(a, b) in &t.slots {
        owned += (b - a + 1) as usize;
        for slot in [a, b, a + (b - a) / 2] {
          assert_eq!(map.master_of(slot).unwrap().id.as_deref(), Some(t.id.as_str()));
        }
      }
    }
    assert_eq!(map.covered(), owned, "{:?}", map.source);
    // Replicas point at their master (SLOTS lists only those that are available).
    for node in &map.nodes {
      let t = truth.iter().find(|t| Some(&t.id) == node.id.as_ref()).unwrap();
      assert_eq!(node.role, t.role, "{:?}: role of {}", map.source, t.id);
      if t.role == Role::Replica {
        let master = node.master.map(|m| map.nodes[m].id.clone().unwrap());
        assert_eq!(master, t.master, "{:?}: master of {}", map.source, t.id);
      }
    }
    if map.source == Source::Shards {
      // SHARDS lists every node CLUSTER NODES knows, with its failure flag.
      assert_eq!(map.nodes.len(), truth.len());
      for t in truth {
        assert_eq!(
          by_id(map, &t.id).health == Health::Failed,
          t.failed,
          "health of {}",
          t.id
        );
      }
    }
  }

  fn plain_cx(asked: &Address) -> Context<'_> {
    static NO_NAT: once_cell::sync::Lazy<NatMap> = once_cell::sync::Lazy::new(NatMap::default);
    Context {
      asked,
      tls: false,
      nat: &NO_NAT,
    }
  }

  #[test]
  fn a_healthy_cluster_from_shards_and_slots() {
    let f = fixture("plain");
    let asked = f.asked();
    let nat = f.nat();
    let cx = Context {
      asked: &asked,
      tls: f.tls(),
      nat: &nat,
    };
    let shards = SlotMap::from_shards(&f.shards, cx).unwrap();
    let slots = SlotMap::from_slots(&f.slots, cx).unwrap();
    let truth = f.truth();
    check_against_truth(&shards, &truth);
    check_against_truth(&slots, &truth);
    for map in [&shards, &slots] {
      assert!(map.is_complete());
      assert_eq!(map.masters().len(), 3);
      for m in map.masters() {
        assert_eq!(map.replicas_of(m).len(), 1, "{:?}", map.source);
      }
      for node in &map.nodes {
        let t = truth.iter().find(|t| Some(&t.id) == node.id.as_ref()).unwrap();
        assert_eq!(node.address, Address::new("127.0.0.1", t.port));
        assert_eq!(node.announced, node.address);
      }
    }
    assert!(shards.nodes.iter().all(|n| n.health == Health::Online));
    assert!(shards.nodes.iter().all(|n| n.port.is_some() && n.tls_port.is_none()));
    assert_eq!(shards.fingerprint(), slots.fingerprint());
  }

  #[test]
  fn tls_ports_are_taken_for_a_tls_client() {
    let f = fixture("tls");
    let asked = f.asked();
    let nat = NatMap::default();
    let cx = Context {
      asked: &asked,
      tls: true,
      nat: &nat,
    };
    let shards = SlotMap::from_shards(&f.shards, cx).unwrap();
    let slots = SlotMap::from_slots(&f.slots, cx).unwrap();
    check_against_truth(&shards, &f.truth());
    check_against_truth(&slots, &f.truth());
    assert!(shards.nodes.iter().all(|n| n.tls_port.is_some() && n.port.is_none()));
    assert!(shards.nodes.iter().all(|n| Some(n.address.port) == n.tls_port));
    assert_eq!(shards.fingerprint(), slots.fingerprint());
    // The asked node is one of them, on the TLS port the client used.
    assert!(shards.node_at(&asked).is_some());
  }

  #[test]
  fn a_failed_master_keeps_its_slots_until_replaced() {
    let f = fixture("master-failed");
    let asked = f.asked();
    let cx = plain_cx(&asked);
    let shards = SlotMap::from_shards(&f.shards, cx).unwrap();
    let slots = SlotMap::from_slots(&f.slots, cx).unwrap();
    let truth = f.truth();
    check_against_truth(&shards, &truth);
    check_against_truth(&slots, &truth);
    let dead = truth.iter().find(|t| t.failed).unwrap();
    assert_eq!(dead.role, Role::Master);
    let node = by_id(&shards, &dead.id);
    assert_eq!(node.health, Health::Failed);
    assert_eq!(node.slots, dead.slots);
    assert_eq!(shards.failed_masters(), 1);
    // SLOTS says nothing of health: the dead master is still the slot's primary there.
    assert_eq!(by_id(&slots, &dead.id).slots, dead.slots);
    assert_eq!(slots.failed_masters(), 0);
    assert_eq!(shards.fingerprint(), slots.fingerprint());
  }

  #[test]
  fn after_a_failover_the_old_master_has_no_slots() {
    let f = fixture("after-failover");
    let asked = f.asked();
    let cx = plain_cx(&asked);
    let shards = SlotMap::from_shards(&f.shards, cx).unwrap();
    let slots = SlotMap::from_slots(&f.slots, cx).unwrap();
    let truth = f.truth();
    check_against_truth(&shards, &truth);
    check_against_truth(&slots, &truth);
    let dead = truth.iter().find(|t| t.failed).unwrap();
    let old = by_id(&shards, &dead.id);
    assert!(old.slots.is_empty());
    assert_eq!((old.role, old.health), (Role::Master, Health::Failed));
    assert!(
      !shards.masters().contains(&index_of(&shards, &dead.id)),
      "not in the fan-out set"
    );
    assert!(
      slots.nodes.iter().all(|n| n.id.as_deref() != Some(&dead.id)),
      "SLOTS drops it"
    );
    assert!(shards.is_complete() && slots.is_complete());
    assert_eq!(shards.masters().len(), 3);
    assert_eq!(shards.fingerprint(), slots.fingerprint());
  }

  #[test]
  fn a_restarted_master_rejoins_as_a_replica_and_a_resharded_master_has_two_ranges() {
    for name in ["rejoined", "resharded"] {
      let f = fixture(name);
      let asked = f.asked();
      let cx = plain_cx(&asked);
      let shards = SlotMap::from_shards(&f.shards, cx).unwrap();
      let slots = SlotMap::from_slots(&f.slots, cx).unwrap();
      check_against_truth(&shards, &f.truth());
      check_against_truth(&slots, &f.truth());
      assert_eq!(shards.fingerprint(), slots.fingerprint(), "{name}");
    }
    let f = fixture("resharded");
    let asked = f.asked();
    let map = SlotMap::from_slots(&f.slots, plain_cx(&asked)).unwrap();
    let two = map
      .masters()
      .into_iter()
      .find(|&m| map.nodes[m].slots.len() == 2)
      .unwrap();
    assert_eq!(map.nodes[two].slots, vec![(0, 9), (5461, 10922)]);
    assert_eq!(map.master_index(9), Some(two));
    assert_ne!(map.master_index(10), Some(two));
  }

  #[test]
  fn question_mark_endpoints_fall_back_to_the_ip() {
    let f = fixture("hostname-unset");
    // Asked under another name, so that a fallback to the asked host would show.
    let asked = Address::new("seed.example", f.asked().port);
    let cx = plain_cx(&asked);
    let shards = SlotMap::from_shards(&f.shards, cx).unwrap();
    let slots = SlotMap::from_slots(&f.slots, cx).unwrap();
    assert!(f.shards.windows(7).any(|w| w == b"\r\n$1\r\n?"));
    for map in [&shards, &slots] {
      check_against_truth(map, &f.truth());
      assert!(
        map.nodes.iter().all(|n| n.address.host == "127.0.0.1"),
        "{:?}",
        map.source
      );
    }
  }

  #[test]
  fn empty_and_null_endpoints_mean_the_asked_host() {
    let f = fixture("unknown-endpoint");
    let asked = Address::new("seed.example", f.asked().port);
    let cx = plain_cx(&asked);
    let shards = SlotMap::from_shards(&f.shards, cx).unwrap();
    let slots = SlotMap::from_slots(&f.slots, cx).unwrap();
    assert!(f.slots.windows(5).any(|w| w == b"$-1\r\n"), "SLOTS sends NULL");
    assert!(
      f.shards.windows(16).any(|w| w == b"endpoint\r\n$0\r\n\r\n"),
      "SHARDS sends an empty string"
    );
    let truth = f.truth();
    for map in [&shards, &slots] {
      check_against_truth(map, &truth);
      for node in &map.nodes {
        let t = truth.iter().find(|t| Some(&t.id) == node.id.as_ref()).unwrap();
        assert_eq!(node.address, Address::new("seed.example", t.port), "{:?}", map.source);
      }
    }
    assert_eq!(shards.fingerprint(), slots.fingerprint());
  }

  #[test]
  fn announced_addresses_go_through_the_nat_map() {
    let f = fixture("announce");
    let asked = f.asked();
    let nat = f.nat();
    assert!(!nat.is_empty());
    let cx = Context {
      asked: &asked,
      tls: false,
      nat: &nat,
    };
    let shards = SlotMap::from_shards(&f.shards, cx).unwrap();
    let slots = SlotMap::from_slots(&f.slots, cx).unwrap();
    let truth = f.truth();
    check_against_truth(&shards, &truth);
    check_against_truth(&slots, &truth);
    for map in [&shards, &slots] {
      for node in &map.nodes {
        assert!(
          node.announced.host.ends_with(".yg-cluster.invalid"),
          "{:?}",
          node.announced
        );
        assert_eq!(nat.map(&node.announced), Some(&node.address));
        assert_eq!(node.address.host, "127.0.0.1");
        assert_ne!(
          node.address.port, node.announced.port,
          "the announced port is not the real one"
        );
      }
    }
    // The asked node is found at its real address.
    assert!(shards.node_at(&asked).is_some());
    assert_eq!(shards.fingerprint(), slots.fingerprint());
    // Without the map the nodes keep their (unreachable) announced addresses.
    let bare = SlotMap::from_shards(&f.shards, plain_cx(&asked)).unwrap();
    assert!(bare.nodes.iter().all(|n| n.address == n.announced));
    assert_ne!(bare.fingerprint(), shards.fingerprint());
    // Keys match case-insensitively, and by ip:port when the endpoint has no entry.
    let first = &shards.nodes[0];
    let upper = NatMap::new([(first.announced.to_string().to_uppercase(), Address::new("h", 1))]).unwrap();
    assert_eq!(upper.map(&first.announced), Some(&Address::new("h", 1)));
    let by_ip = NatMap::new([(format!("127.0.0.1:{}", first.announced.port), Address::new("via-ip", 7))]).unwrap();
    let cx = Context {
      asked: &asked,
      tls: false,
      nat: &by_ip,
    };
    let map = SlotMap::from_shards(&f.shards, cx).unwrap();
    assert_eq!(map.nodes[0].address, Address::new("via-ip", 7));
  }

  /// Builds a RESP2 reply from a compact description (tests only).
  fn encode(value: &Resp, out: &mut Vec<u8>) {
    match value {
      Resp::Str(s) => {
        out.extend_from_slice(format!("${}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
        out.extend_from_slice(b"\r\n");
      }
      Resp::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
      Resp::Nil => out.extend_from_slice(b"$-1\r\n"),
      Resp::Error(e) => out.extend_from_slice(format!("-{e}\r\n").as_bytes()),
      Resp::Array(items) => {
        out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
        for item in items {
          encode(item, out);
        }
      }
    }
  }

  fn s(text: &str) -> Resp {
    Resp::Str(text.as_bytes().to_vec())
  }

  fn shard_node(id: &str, endpoint: Resp, port: i64, role: &str, health: &str, offset: i64) -> Resp {
    Resp::Array(vec![
      s("id"),
      s(id),
      s("port"),
      Resp::Int(port),
      s("ip"),
      s("10.0.0.9"),
      s("endpoint"),
      endpoint,
      s("role"),
      s(role),
      s("replication-offset"),
      Resp::Int(offset),
      s("health"),
      s(health),
    ])
  }

  fn bytes(value: &Resp) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out);
    out
  }

  #[test]
  fn two_masters_in_a_shard_the_live_one_takes_the_slots() {
    let reply = Resp::Array(vec![Resp::Array(vec![
      s("slots"),
      Resp::Array(vec![s("0"), s("16383")]), // slots as strings: accepted
      s("nodes"),
      Resp::Array(vec![
        shard_node("a", s("10.0.0.1"), 7000, "master", "fail", 100),
        shard_node("b", s("0.0.0.0"), 7001, "master", "online", 90),
        shard_node("c", s("10.0.0.3"), 7002, "replica", "online", 90),
      ]),
    ])]);
    let asked = Address::new("seed", 7001);
    let map = SlotMap::from_shards(&bytes(&reply), plain_cx(&asked)).unwrap();
    let b = index_of(&map, "b");
    assert_eq!(map.master_index(0), Some(b));
    assert_eq!(
      map.nodes[b].address,
      Address::new("seed", 7001),
      "a wildcard endpoint is the asked host"
    );
    assert!(map.nodes[index_of(&map, "a")].slots.is_empty());
    assert_eq!(map.nodes[index_of(&map, "c")].master, Some(b));
    assert!(map.is_complete());
  }

  #[test]
  fn bad_replies_are_errors_never_partial_maps() {
    let asked = Address::new("seed", 1);
    let cx = plain_cx(&asked);
    let err = SlotMap::from_shards(b"-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n", cx).unwrap_err();
    assert!(err.is_unknown_subcommand(), "{err}");
    assert!(matches!(
      SlotMap::from_slots(b"-ERR This instance has cluster support disabled\r\n", cx),
      Err(TopologyError::Server(_))
    ));
    let f = fixture("plain");
    // Truncated anywhere: incomplete, never a smaller map.
    for cut in [1, 10, f.shards.len() / 2, f.shards.len() - 1] {
      assert!(matches!(
        SlotMap::from_shards(&f.shards[..cut], cx),
        Err(TopologyError::Protocol(_))
      ));
    }
    let mut trailing = f.slots.clone();
    trailing.extend_from_slice(b"+OK\r\n");
    assert!(matches!(
      SlotMap::from_slots(&trailing, cx),
      Err(TopologyError::Protocol(_))
    ));
    assert!(matches!(
      SlotMap::from_slots(b":1\r\n", cx),
      Err(TopologyError::Shape(_))
    ));
    // One slot claimed by two masters.
    let overlap = Resp::Array(vec![
      Resp::Array(vec![
        Resp::Int(0),
        Resp::Int(10),
        Resp::Array(vec![s("h1"), Resp::Int(1)]),
      ]),
      Resp::Array(vec![
        Resp::Int(10),
        Resp::Int(20),
        Resp::Array(vec![s("h2"), Resp::Int(2)]),
      ]),
    ]);
    assert!(matches!(
      SlotMap::from_slots(&bytes(&overlap), cx),
      Err(TopologyError::Inconsistent(_))
    ));
    let out_of_range = Resp::Array(vec![Resp::Array(vec![
      Resp::Int(0),
      Resp::Int(16384),
      Resp::Array(vec![s("h1"), Resp::Int(1)]),
    ])]);
    assert!(matches!(
      SlotMap::from_slots(&bytes(&out_of_range), cx),
      Err(TopologyError::Shape(_))
    ));
  }

  #[test]
  fn addresses_parse_and_print() {
    assert_eq!(Address::parse("10.0.0.1:6379").unwrap(), Address::new("10.0.0.1", 6379));
    assert_eq!(Address::parse("[::1]:7000").unwrap(), Address::new("::1", 7000));
    assert_eq!(Address::parse("::1:7000").unwrap(), Address::new("::1", 7000));
    assert_eq!(Address::new("::1", 7000).to_string(), "[::1]:7000");
    for bad in ["host", "host:0", "host:abc", ":6379", "host:70000"] {
      assert!(Address::parse(bad).is_err(), "{bad}");
      assert!(NatMap::new([(bad, Address::new("x", 1))]).is_err(), "{bad}");
    }
  }

  #[test]
  fn redirects_parse_with_the_endpoint_rule_and_the_nat_map() {
    let asked = Address::new("10.1.1.1", 7000);
    let nat = NatMap::new([("node-1.internal:7001", Address::new("127.0.0.1", 17001))]).unwrap();
    let cx = Context {
      asked: &asked,
      tls: false,
      nat: &nat,
    };
    let moved = Redirect::parse("MOVED 3999 10.0.0.2:6381", cx).unwrap();
    assert_eq!(
      (moved.kind, moved.slot, moved.address.clone()),
      (RedirectKind::Moved, 3999, Address::new("10.0.0.2", 6381))
    );
    let ask = Redirect::parse("ASK 1 node-1.internal:7001", cx).unwrap();
    assert_eq!(ask.kind, RedirectKind::Ask);
    assert_eq!(ask.address, Address::new("127.0.0.1", 17001));
    assert_eq!(ask.announced, Address::new("node-1.internal", 7001));
    assert_eq!(
      Redirect::parse("MOVED 12 :7005", cx).unwrap().address,
      Address::new("10.1.1.1", 7005)
    );
    assert_eq!(
      Redirect::parse("MOVED 12 ::1:7005", cx).unwrap().address,
      Address::new("::1", 7005)
    );
    for other in [
      "ERR x",
      "MOVED",
      "MOVED 16384 h:1",
      "MOVED 1 h",
      "ASK x h:1",
      "TRYAGAIN Multiple keys",
    ] {
      assert_eq!(Redirect::parse(other, cx), None, "{other}");
    }
  }

  #[test]
  fn moved_updates_one_slot() {
    let f = fixture("plain");
    let asked = f.asked();
    let mut map = SlotMap::from_shards(&f.shards, plain_cx(&asked)).unwrap();
    let replica = (0..map.nodes.len())
      .find(|&i| map.nodes[i].role == Role::Replica)
      .unwrap();
    let its_master = map.nodes[replica].master.unwrap();
    let slot = map.nodes[its_master].slots[0].0 + 5;
    let address = map.nodes[replica].address.clone();
    assert_eq!(map.apply_moved(slot, &address), replica);
    assert_eq!(map.master_index(slot), Some(replica));
    assert_eq!(map.master_index(slot - 1), Some(its_master));
    assert_eq!(map.nodes[replica].role, Role::Master);
    assert_eq!(
      map.nodes[its_master].slots.len(),
      2,
      "its range is split around the moved slot"
    );
    let fresh = map.apply_moved(0, &Address::new("new-node", 1));
    assert_eq!(map.master_of(0).unwrap().address, Address::new("new-node", 1));
    assert_eq!(map.nodes[fresh].slots, vec![(0, 0)]);
    assert!(map.is_complete());
  }

  #[test]
  fn the_largest_group_of_identical_full_views_wins() {
    let plain = fixture("plain");
    let failed = fixture("after-failover");
    let resharded = fixture("resharded");
    let parse = |f: &Fixture| {
      let asked = f.asked();
      SlotMap::from_shards(&f.shards, plain_cx(&asked)).unwrap()
    };
    let a = parse(&plain);
    let b = parse(&failed);
    let c = parse(&resharded);
    assert_eq!(choose_view(&[]), None);
    // Two agree on b (after the failover), one still has the old view.
    let got = choose_view(&[a.clone(), b.clone(), b.clone()]).unwrap();
    assert_eq!((got.chosen, got.votes, got.of, got.contested), (1, 2, 3, false));
    // A SLOTS view and a SHARDS view of the same cluster count as one.
    let asked = failed.asked();
    let b_slots = SlotMap::from_slots(&failed.slots, plain_cx(&asked)).unwrap();
    let got = choose_view(&[b_slots, a.clone(), b.clone()]).unwrap();
    assert_eq!((got.chosen, got.votes), (0, 2));
    // A tie: the earliest view, reported as contested.
    let got = choose_view(&[c.clone(), b.clone()]).unwrap();
    assert_eq!((got.chosen, got.votes, got.contested), (0, 1, true));
    // A partial view (a node that is still joining) loses to any full one,
    // however many partial ones agree.
    let mut partial = b.clone();
    for slot in 0..100 {
      partial.owners[slot] = NO_OWNER;
    }
    partial.finish();
    assert!(!partial.is_complete());
    let got = choose_view(&[partial.clone(), partial.clone(), partial.clone(), c.clone()]).unwrap();
    assert_eq!((got.chosen, got.votes, got.of), (3, 1, 1));
    // Only partial views: the one covering most.
    let mut smaller = partial.clone();
    smaller.owners[100] = NO_OWNER;
    smaller.finish();
    let got = choose_view(&[smaller, partial]).unwrap();
    assert_eq!((got.chosen, got.contested), (1, false));
    // Equal votes and coverage: fewer failed masters first.
    let dead = fixture("master-failed");
    let asked = dead.asked();
    let with_failed = SlotMap::from_shards(&dead.shards, plain_cx(&asked)).unwrap();
    assert_eq!(with_failed.failed_masters(), 1);
    let got = choose_view(&[with_failed, b.clone()]).unwrap();
    assert_eq!((got.chosen, got.contested), (1, true));
  }

  /// Parses `CLUSTER NODES` text: (id, port, is_master, master id, slot ranges).
  /// One CLUSTER NODES line: (id, port, is_master, master id, slot ranges).
  type NodeLine = (String, u16, bool, Option<String>, Vec<(u16, u16)>);

  fn cluster_nodes(text: &str) -> Vec<NodeLine> {
    text
      .lines()
      .map(|line| {
        let words: Vec<&str> = line.split(' ').collect();
        let port = words[1].split('@').next().unwrap().rsplit_once(':').unwrap().1;
        let slots = words[8..]
          .iter()
          .filter(|w| !w.starts_with('['))
          .map(|w| match w.split_once('-') {
            Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
            None => (w.parse().unwrap(), w.parse().unwrap()),
          })
          .collect();
        (
          words[0].to_string(),
          port.parse().unwrap(),
          words[2].contains("master"),
          (words[3] != "-").then(|| words[3].to_string()),
          slots,
        )
      })
      .collect()
  }

  /// Against a live cluster: every node's SHARDS and SLOTS parse into the same
  /// view, and that view is what each node's CLUSTER NODES says.
  #[test]
  fn every_node_of_a_live_cluster_gives_the_same_map() {
    let cluster = TestCluster::start(3, 1);
    let nat = NatMap::default();
    let mut views = Vec::new();
    for node in &cluster.nodes {
      let asked = Address::new("127.0.0.1", node.port);
      let cx = Context {
        asked: &asked,
        tls: false,
        nat: &nat,
      };
      let shards = SlotMap::from_shards(&node.raw(&["CLUSTER", "SHARDS"]), cx).unwrap();
      let slots = SlotMap::from_slots(&node.raw(&["CLUSTER", "SLOTS"]), cx).unwrap();
      let truth = cluster_nodes(&node.text(&["CLUSTER", "NODES"]));
      for (id, port, is_master, master, ranges) in &truth {
        let n = by_id(&shards, id);
        assert_eq!(n.address, Address::new("127.0.0.1", *port));
        assert_eq!(n.role == Role::Master, *is_master);
        assert_eq!(&n.slots, ranges);
        if let Some(master) = master {
          assert_eq!(shards.nodes[n.master.unwrap()].id.as_ref(), Some(master));
        }
      }
      assert!(shards.is_complete() && slots.is_complete());
      assert_eq!(shards.masters().len(), 3);
      views.push(shards);
      views.push(slots);
    }
    let got = choose_view(&views).unwrap();
    let first = views[0].fingerprint();
    let agreeing = views.iter().filter(|v| v.fingerprint() == first).count();
    // Replicas still loading are left out of SLOTS and of the fingerprint alike,
    // so all twelve views agree.
    assert_eq!(agreeing, views.len(), "every node's SHARDS and SLOTS agree");
    assert_eq!((got.votes, got.of, got.contested), (12, 12, false));
  }
}
