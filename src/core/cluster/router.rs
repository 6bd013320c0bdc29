//! A Redis Cluster as the client sees it: the slot map, one link (connection
//! manager, see `link.rs`) per node it sends to, and what happens to a request
//! between the submit and its reply.
//!
//! Invariants:
//! - A request goes to the master of its slot in the current map (a keyless
//!   command to any master; a fan-out request to the node it names). It is
//!   written once per attempt and carries its own bytes (`Routed`), so that a
//!   reply which says it did not run — `MOVED`, `ASK`, `TRYAGAIN`,
//!   `CLUSTERDOWN` — sends it on, and nothing else does: a command written to a
//!   connection that is lost fails and is never resent.
//! - Every attempt is bounded by the request's own deadline (`commandTimeoutMs`
//!   from its submit): waiting for a map, a connection or a retry ends with a
//!   failure at that deadline, and no command is written after it.
//! - `MOVED` updates the map for its slot at once (the server's own word);
//!   the whole map is refreshed, rate-limited, after a redirect, after a lost
//!   connection, while requests wait for a node, and every 30 s of use. A
//!   refresh asks up to three nodes and keeps the view they agree on
//!   (`topology::choose_view`).
//! - Links of nodes that leave the map and are not connected are closed; a
//!   link is never shared by two addresses.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::topology::{choose_view, Address, Context, NatMap, Redirect, RedirectKind, Role, SlotMap};
use crate::core::config::ClientConfig;
use crate::core::connection::{self, CommandName, Handshake, Pending};
use crate::core::error::{Failure, FailureKind};
use crate::core::link::{Endpoint, Link, Requests, Router, Status};
use crate::core::reply::{ReplyMode, Staged};
use crate::core::runtime::RUNTIME;

/// Redirects and retries one request may take before it fails with the last reply.
const MAX_HOPS: u8 = 16;
/// The least time between two refreshes of the map.
const REFRESH_SPACING: Duration = Duration::from_millis(100);
/// A map older than this is refreshed when the cluster is used.
const REFRESH_AGE: Duration = Duration::from_secs(30);
/// How many nodes a refresh asks.
const VIEWS: usize = 3;

/// The map and the link of each master in it.
struct View {
  map: SlotMap,
  /// `links[i]` for a master `i` of `map.nodes`.
  links: Vec<Option<Arc<Link>>>,
}

#[derive(Default)]
struct RefreshState {
  running: bool,
  /// Another refresh was asked for while one ran.
  again: bool,
  last: Option<Instant>,
  last_error: Option<Failure>,
}

pub struct Cluster {
  me: Weak<Cluster>,
  config: Arc<ClientConfig>,
  requests: Arc<Requests>,
  seeds: Vec<Address>,
  nat: NatMap,
  view: RwLock<Option<View>>,
  /// Every link, by address.
  links: Mutex<HashMap<Address, Arc<Link>>>,
  /// Bumped at every change of the map: waiting requests route again.
  version: watch::Sender<u64>,
  refresh: Mutex<RefreshState>,
  closed: AtomicBool,
  /// A request has been made: the client is no longer idle.
  started: AtomicBool,
}

/// One node as `getConnectionStatus().nodes` and the fan-out see it.
pub struct NodeInfo {
  pub address: String,
  pub role: &'static str,
  pub state: &'static str,
  pub slots: Vec<(u16, u16)>,
  pub failed: bool,
}

impl Cluster {
  pub fn new(config: Arc<ClientConfig>, requests: Arc<Requests>) -> Result<Arc<Self>, Failure> {
    let invalid = |message: String| Failure::new(FailureKind::Invalid, message);
    let url_seed = Endpoint::from_config(&config)?;
    let mut seeds = Vec::new();
    for node in &config.cluster_nodes {
      seeds.push(Address::parse(node).map_err(|e| invalid(format!("REDIS_CLUSTER_NODES: {e}")))?);
    }
    if seeds.is_empty() {
      seeds.push(Address::new(url_seed.host.clone(), url_seed.port));
    }
    let nat = NatMap::new(
      config
        .nat_map
        .iter()
        .map(|(from, host, port)| (from.as_str(), Address::new(host.clone(), *port))),
    )
    .map_err(|e| invalid(format!("natMap: {e}")))?;
    let (version, _) = watch::channel(0);
    Ok(Arc::new_cyclic(|me| Cluster {
      me: me.clone(),
      config,
      requests,
      seeds,
      nat,
      view: RwLock::new(None),
      links: Mutex::new(HashMap::new()),
      version,
      refresh: Mutex::new(RefreshState::default()),
      closed: AtomicBool::new(false),
      started: AtomicBool::new(false),
    }))
  }

  pub fn is_closed(&self) -> bool {
    self.closed.load(Ordering::Acquire)
  }

  fn me(&self) -> Arc<Cluster> {
    self.me.upgrade().expect("the cluster outlives its calls")
  }

  fn context<'a>(&'a self, asked: &'a Address) -> Context<'a> {
    Context {
      asked,
      tls: self.config.is_tls(),
      nat: &self.nat,
    }
  }

  /// The link of `address`, made (not connected) on first use.
  fn link(&self, address: &Address) -> Result<Arc<Link>, Failure> {
    let mut links = self.links.lock().unwrap();
    if let Some(link) = links.get(address) {
      if !link.is_closed() {
        return Ok(Arc::clone(link));
      }
    }
    let endpoint = Endpoint::for_node(&self.config, &address.host, address.port)?;
    let router: Weak<dyn Router> = self.me.clone();
    let link = Link::with_router(
      Arc::clone(&self.config),
      endpoint,
      Arc::clone(&self.requests),
      Some(address.to_string()),
      Some(router),
    );
    links.insert(address.clone(), Arc::clone(&link));
    Ok(link)
  }

  /// Where a request goes now: the node it names, else its slot's master, else
  /// (no key) any master. `None` while there is no map.
  pub fn target(&self, slot: Option<u16>, node: Option<&str>) -> Result<Option<Arc<Link>>, Failure> {
    self.started.store(true, Ordering::Relaxed);
    if let Some(node) = node {
      let address = Address::parse(node).map_err(|e| Failure::new(FailureKind::Invalid, format!("node {e}")))?;
      let known = self
        .view
        .read()
        .unwrap()
        .as_ref()
        .map(|v| v.map.node_at(&address).is_some());
      return match known {
        None => Ok(None),
        Some(true) => self.link(&address).map(Some),
        Some(false) => Err(Failure::new(
          FailureKind::Invalid,
          format!("{node} is not a node of this cluster"),
        )),
      };
    }
    let view = self.view.read().unwrap();
    let Some(view) = view.as_ref() else {
      return Ok(None);
    };
    let index = match slot {
      Some(slot) => view.map.master_index(slot),
      None => view.map.masters().first().copied(),
    };
    Ok(index.and_then(|i| view.links.get(i).cloned().flatten()))
  }

  /// Asks for a refresh unless one ran in the last `REFRESH_SPACING` (then it
  /// runs when that time is up); a map older than `REFRESH_AGE` is refreshed
  /// when `stale_only`.
  pub fn refresh_soon(&self, stale_only: bool) {
    let mut state = self.refresh.lock().unwrap();
    if stale_only && state.last.is_some_and(|last| last.elapsed() < REFRESH_AGE) {
      return;
    }
    if state.running {
      state.again = true;
      return;
    }
    state.running = true;
    let wait = state
      .last
      .map(|last| REFRESH_SPACING.saturating_sub(last.elapsed()))
      .unwrap_or_default();
    drop(state);
    let me = self.me();
    RUNTIME.spawn(async move {
      tokio::time::sleep(wait).await;
      loop {
        let outcome = me.refresh_once().await;
        let again = {
          let mut state = me.refresh.lock().unwrap();
          state.last = Some(Instant::now());
          let again = std::mem::take(&mut state.again) || matches!(outcome, Ok(true));
          state.last_error = outcome.err();
          if !again || me.is_closed() {
            state.running = false;
          }
          again && !me.is_closed()
        };
        if !again {
          break;
        }
        tokio::time::sleep(REFRESH_SPACING).await;
      }
      // Waiters re-route (or see the failure) after every attempt.
      me.version.send_modify(|v| *v += 1);
    });
  }

  /// Asks up to `VIEWS` nodes for the map and installs the one they agree on.
  /// `Ok(true)` when it should be asked again soon (views disagreed, or slots
  /// have no owner).
  async fn refresh_once(&self) -> Result<bool, Failure> {
    let mut candidates: Vec<Address> = Vec::new();
    if let Some(view) = self.view.read().unwrap().as_ref() {
      let mut masters: Vec<Address> = Vec::new();
      let mut others: Vec<Address> = Vec::new();
      for node in &view.map.nodes {
        if node.role == Role::Master && !node.slots.is_empty() {
          masters.push(node.address.clone());
        } else {
          others.push(node.address.clone());
        }
      }
      candidates.extend(masters);
      candidates.extend(others);
    }
    for seed in &self.seeds {
      if !candidates.contains(seed) {
        candidates.push(seed.clone());
      }
    }
    // Up to five nodes are asked at once; the first `VIEWS` answers count.
    // (A dead node costs its connect timeout in parallel, not in turn.)
    let mut asking = tokio::task::JoinSet::new();
    for address in candidates.into_iter().take(5) {
      let me = self.me();
      asking.spawn(async move {
        match tokio::time::timeout(me.config.connect_timeout, me.ask_map(&address)).await {
          Ok(outcome) => outcome,
          Err(_) => Err(Failure::new(
            FailureKind::Connection,
            format!("asking {address} for the slot map timed out"),
          )),
        }
      });
    }
    let mut views = Vec::new();
    let mut last_failure = None;
    while let Some(joined) = asking.join_next().await {
      match joined {
        Ok(Ok(map)) => views.push(map),
        Ok(Err(failure)) => last_failure = Some(failure),
        Err(_) => {}
      }
      if views.len() == VIEWS || self.is_closed() {
        break;
      }
    }
    asking.abort_all();
    let Some(agreement) = choose_view(&views) else {
      return Err(last_failure.unwrap_or_else(|| Failure::new(FailureKind::Connection, "no cluster node answered")));
    };
    let map = views.swap_remove(agreement.chosen);
    let again = agreement.contested || !map.is_complete();
    self.install(map)?;
    Ok(again)
  }

  /// One node's map: `CLUSTER SHARDS`, or `CLUSTER SLOTS` where SHARDS is unknown.
  async fn ask_map(&self, address: &Address) -> Result<SlotMap, Failure> {
    let endpoint = Endpoint::for_node(&self.config, &address.host, address.port)?;
    let handshake = Handshake {
      username: endpoint.username.clone(),
      password: endpoint.password.clone(),
      db: 0,
      set_name: false,
    };
    let shape = |e: super::topology::TopologyError| {
      Failure::new(FailureKind::Connection, format!("the slot map from {address}: {e}"))
    };
    let ask = |command: &'static [&'static [u8]]| {
      connection::query(&address.host, address.port, &handshake, endpoint.tls.as_ref(), command)
    };
    let reply = ask(&[b"CLUSTER", b"SHARDS"]).await?;
    if reply.starts_with(b"-") && reply.windows(24).any(|w| w == b"cluster support disabled") {
      // A configuration mistake, not an outage: say so at once.
      let answer = String::from_utf8_lossy(&reply[1..]).trim_end().to_string();
      return Err(Failure::fatal(
        FailureKind::Usage,
        format!(
          "Cluster mode is on (cluster: true / REDIS_CLUSTER=true), but {address} is not a cluster node \
           (it answered: {answer}); turn cluster mode off for a single server"
        ),
      ));
    }
    match SlotMap::from_shards(&reply, self.context(address)) {
      Ok(map) => Ok(map),
      Err(e) if e.is_unknown_subcommand() => {
        let reply = ask(&[b"CLUSTER", b"SLOTS"]).await?;
        SlotMap::from_slots(&reply, self.context(address)).map_err(shape)
      }
      Err(e) => Err(shape(e)),
    }
  }

  /// Makes `map` the current one, with a link for each master.
  fn install(&self, map: SlotMap) -> Result<(), Failure> {
    let mut links = Vec::with_capacity(map.nodes.len());
    for node in &map.nodes {
      let serves = node.role == Role::Master && !node.slots.is_empty();
      links.push(if serves { Some(self.link(&node.address)?) } else { None });
    }
    // Links of nodes the map no longer has, and that are not connected, go.
    {
      let mut all = self.links.lock().unwrap();
      all.retain(|address, link| {
        let keep = map.node_at(address).is_some() || link.ready_fast().is_some();
        if !keep {
          link.close();
        }
        keep
      });
    }
    *self.view.write().unwrap() = Some(View { map, links });
    self.version.send_modify(|v| *v += 1);
    Ok(())
  }

  /// Sends requests that no connection took yet: each to where the map says,
  /// as soon as that node's connection is up, re-routed whenever the map
  /// changes; failed at its deadline if it cannot be written by then.
  pub fn send_later(&self, pending: Vec<Pending>, degraded: bool) {
    if pending.is_empty() {
      return;
    }
    let me = self.me();
    RUNTIME.spawn(async move { me.send_when_routed(pending, degraded).await });
  }

  async fn send_when_routed(self: Arc<Self>, mut pending: Vec<Pending>, degraded: bool) {
    let mut version = self.version.subscribe();
    loop {
      if self.is_closed() {
        let failure = Failure::new(FailureKind::Closed, "the Redis connection is closed");
        return self.fail_all(pending, &failure);
      }
      let now = Instant::now();
      let (late, waiting): (Vec<Pending>, Vec<Pending>) = pending.into_iter().partition(|p| p.deadline <= now);
      self.fail_late(late);
      pending = waiting;
      // Send what can be sent; keep the rest with the link they wait for.
      let mut waits: Vec<(Arc<Link>, Vec<Pending>)> = Vec::new();
      let mut unmapped: Vec<Pending> = Vec::new();
      for p in pending.drain(..) {
        let route = p.route.as_ref().expect("cluster requests are routed");
        match self.target(route.slot, route.node.as_deref()) {
          Err(failure) => self.fail_all(vec![p], &failure),
          Ok(None) => unmapped.push(p),
          Ok(Some(link)) => match waits.iter_mut().find(|(l, _)| Arc::ptr_eq(l, &link)) {
            Some((_, list)) => list.push(p),
            None => waits.push((link, vec![p])),
          },
        }
      }
      for (link, list) in std::mem::take(&mut waits) {
        match link.ready_fast() {
          Some(conn) => {
            let (bytes, list) = wire_of(list);
            if let Err(back) = conn.send(&bytes, list) {
              waits.push((
                link,
                back.into_iter().filter(|p| p.mode != ReplyMode::Discard).collect(),
              ));
            }
          }
          None => waits.push((link, list)),
        }
      }
      if waits.is_empty() && unmapped.is_empty() {
        return;
      }
      if !unmapped.is_empty() {
        let fatal = self.refresh.lock().unwrap().last_error.clone().filter(|f| f.fatal);
        if let Some(failure) = fatal {
          let all = waits.into_iter().flat_map(|(_, l)| l).chain(unmapped).collect();
          return self.fail_all(all, &failure);
        }
        self.refresh_soon(false);
      }
      let deadline = waits
        .iter()
        .flat_map(|(_, l)| l.iter())
        .chain(unmapped.iter())
        .map(|p| p.deadline)
        .min()
        .expect("something waits");
      // Wait for the first link's connection (degraded requests: only its
      // outcome), the map to change, or the earliest deadline.
      let first = waits.first().map(|(link, _)| Arc::clone(link));
      let mut failed_now: Option<Failure> = None;
      tokio::select! {
        _ = tokio::time::sleep_until(deadline) => {}
        // A node that stays unreachable may have failed over: look again.
        _ = tokio::time::sleep(Duration::from_millis(250)) => self.refresh_soon(false),
        changed = version.changed() => {
          if changed.is_err() {
            failed_now = Some(Failure::new(FailureKind::Closed, "the Redis connection is closed"));
          }
        }
        outcome = async { first.as_ref().unwrap().connection(degraded).await }, if first.is_some() => {
          if let Err(failure) = outcome {
            if degraded || failure.fatal {
              failed_now = Some(failure);
            } else {
              // The node is unreachable: it may have failed over.
              self.refresh_soon(false);
            }
          }
        }
      }
      pending = waits.into_iter().flat_map(|(_, l)| l).chain(unmapped).collect();
      if let Some(failure) = failed_now {
        return self.fail_all(pending, &failure);
      }
    }
  }

  /// Fails requests whose deadline passed before any connection took them.
  fn fail_late(&self, late: Vec<Pending>) {
    if late.is_empty() {
      return;
    }
    let state = self.refresh.lock().unwrap().last_error.clone();
    let timeout = self.config.command_timeout.as_millis();
    let mut staged = Staged::default();
    let mut settled = 0;
    for p in &late {
      let failure = match &state {
        Some(last) => Failure::new(
          last.kind,
          format!(
            "Redis command {} was not sent: no cluster node took it within {timeout} ms ({})",
            p.name.as_str(),
            last.message
          ),
        ),
        None => Failure::new(
          FailureKind::Timeout,
          format!(
            "Redis command {} timed out after {timeout} ms waiting for a cluster node",
            p.name.as_str()
          ),
        ),
      };
      settled += usize::from(p.fail(&failure, &mut staged));
    }
    crate::core::metrics::record_failures(settled, self.config.command_timeout);
    staged.deliver();
    self.requests.end(settled);
  }

  fn fail_all(&self, pending: Vec<Pending>, failure: &Failure) {
    let mut staged = Staged::default();
    let mut settled = 0;
    for p in &pending {
      settled += usize::from(p.fail(failure, &mut staged));
    }
    crate::core::metrics::record_failures(settled, self.config.command_timeout);
    staged.deliver();
    self.requests.end(settled);
  }

  /// Sends `pending` to `link` now if it is connected, else when it is.
  fn send_to(&self, link: &Arc<Link>, pending: Pending) {
    if let Some(conn) = link.ready_fast() {
      let (bytes, list) = wire_of(vec![pending]);
      match conn.send(&bytes, list) {
        Ok(()) => return,
        Err(back) => {
          let back: Vec<Pending> = back.into_iter().filter(|p| p.mode != ReplyMode::Discard).collect();
          return self.send_later(back, false);
        }
      }
    }
    self.send_later(vec![pending], false)
  }

  /// The cluster's nodes, masters first (for the fan-out and the status).
  pub fn nodes(&self) -> Vec<NodeInfo> {
    let view = self.view.read().unwrap();
    let Some(view) = view.as_ref() else {
      return Vec::new();
    };
    let links = self.links.lock().unwrap();
    let mut nodes: Vec<NodeInfo> = view
      .map
      .nodes
      .iter()
      .map(|node| {
        let state = match links.get(&node.address) {
          Some(link) => link.status().state,
          None => "idle",
        };
        NodeInfo {
          address: node.address.to_string(),
          role: match node.role {
            Role::Master if !node.slots.is_empty() => "master",
            Role::Master => "master (no slots)",
            Role::Replica => "replica",
          },
          state,
          slots: node.slots.clone(),
          failed: node.health == super::topology::Health::Failed,
        }
      })
      .collect();
    nodes.sort_by_key(|n| (n.role != "master", n.address.clone()));
    nodes
  }

  /// The masters' addresses once there is a map: asks for one when there is
  /// none and waits for it until `deadline`.
  pub async fn masters_when_mapped(&self, deadline: Instant) -> Result<Vec<String>, Failure> {
    self.started.store(true, Ordering::Relaxed);
    let mut version = self.version.subscribe();
    loop {
      if self.is_closed() {
        return Err(Failure::new(FailureKind::Closed, "the Redis connection is closed"));
      }
      if self.view.read().unwrap().is_some() {
        return Ok(self.masters());
      }
      self.refresh_soon(false);
      tokio::select! {
        _ = tokio::time::sleep_until(deadline) => {
          let last = self.refresh.lock().unwrap().last_error.clone();
          return Err(last.unwrap_or_else(|| Failure::new(
            FailureKind::Timeout,
            format!("no slot map within {} ms", self.config.command_timeout.as_millis()),
          )));
        }
        _ = version.changed() => {}
      }
    }
  }

  /// The addresses of the masters that serve slots.
  pub fn masters(&self) -> Vec<String> {
    let view = self.view.read().unwrap();
    view
      .as_ref()
      .map(|v| {
        v.map
          .masters()
          .into_iter()
          .map(|i| v.map.nodes[i].address.to_string())
          .collect()
      })
      .unwrap_or_default()
  }

  /// The cluster's state for `getConnectionStatus()`: `ready` when there is a
  /// map and every master's connection is up.
  /// Every link this cluster has now (one per node it sent to).
  pub fn links(&self) -> Vec<Arc<Link>> {
    self.links.lock().unwrap().values().cloned().collect()
  }

  pub fn status(&self) -> Status {
    if self.is_closed() {
      return Status {
        state: "closed",
        reconnects: 0,
        last_error: None,
      };
    }
    let links: Vec<Arc<Link>> = self.links.lock().unwrap().values().cloned().collect();
    let reconnects = links.iter().map(|l| l.status().reconnects).sum();
    let refresh_error = self.refresh.lock().unwrap().last_error.clone();
    let view = self.view.read().unwrap();
    let Some(view) = view.as_ref() else {
      let started = self.started.load(Ordering::Relaxed);
      return Status {
        state: if started { "connecting" } else { "idle" },
        reconnects,
        last_error: refresh_error.map(|f| f.message),
      };
    };
    let masters: Vec<Status> = view.links.iter().flatten().map(|l| l.status()).collect();
    // Connections are made when first needed: a master nothing was sent to
    // yet (idle) does not hold the state back.
    let used: Vec<&Status> = masters.iter().filter(|s| s.state != "idle").collect();
    let state = if used.is_empty() {
      "idle"
    } else if used.iter().all(|s| s.state == "ready") && view.map.is_complete() {
      "ready"
    } else if used.iter().any(|s| s.state == "reconnecting") {
      "reconnecting"
    } else {
      "connecting"
    };
    let last_error = masters
      .iter()
      .find_map(|s| s.last_error.clone())
      .or(refresh_error.map(|f| f.message));
    Status {
      state,
      reconnects,
      last_error,
    }
  }

  /// Closes every link; requests that wait for one fail as closed.
  pub fn close(&self) {
    self.closed.store(true, Ordering::Release);
    let links: Vec<Arc<Link>> = self.links.lock().unwrap().drain().map(|(_, l)| l).collect();
    for link in links {
      link.close();
    }
    self.version.send_modify(|v| *v += 1);
  }

  /// A `MOVED`/`ASK` reply of the node at `from` (which an empty endpoint in it means).
  fn redirect_of(&self, reply: &str, from: &str) -> Option<Redirect> {
    let asked = Address::parse(from).ok()?;
    Redirect::parse(reply, self.context(&asked))
  }
}

/// The bytes of `pending` (each with `ASKING` before it where it asks for it)
/// and the list to send with them, in the same order.
fn wire_of(pending: Vec<Pending>) -> (Vec<u8>, Vec<Pending>) {
  let mut bytes = Vec::new();
  let mut list = Vec::with_capacity(pending.len());
  for mut p in pending {
    let route = p.route.as_mut().expect("cluster requests are routed");
    if route.asking {
      crate::core::resp::write_command(&mut bytes, &[b"ASKING"]);
      list.push(Pending {
        channel: Arc::clone(&p.channel),
        id: 0,
        mode: ReplyMode::Discard,
        name: CommandName::new(b"ASKING"),
        deadline: p.deadline,
        timed_out: false,
        probe: false,
        route: None,
      });
    }
    bytes.extend_from_slice(&route.bytes);
    list.push(p);
  }
  (bytes, list)
}

impl Router for Cluster {
  fn rerouted(&self, mut pending: Pending, reply: &str, from: &str) {
    let name = pending.name;
    let failed = |pending: Pending, failure: Failure| self.fail_all(vec![pending], &failure);
    let route = pending.route.as_mut().expect("only cluster requests are rerouted");
    route.hops += 1;
    if route.hops > MAX_HOPS {
      return failed(
        pending,
        Failure::new(
          FailureKind::Reply,
          format!("{reply} (sent on {MAX_HOPS} times; the cluster keeps redirecting)"),
        ),
      );
    }
    if pending.deadline <= Instant::now() {
      let failure = Failure::new(
        FailureKind::Timeout,
        format!(
          "Redis command {} was not sent again after `{reply}`: its {} ms ran out",
          name.as_str(),
          self.config.command_timeout.as_millis()
        ),
      );
      return failed(pending, failure);
    }
    if let Some(redirect) = self.redirect_of(reply, from) {
      let target = match self.link(&redirect.address) {
        Ok(link) => link,
        Err(failure) => return failed(pending, failure),
      };
      let route = pending.route.as_mut().expect("routed");
      match redirect.kind {
        RedirectKind::Moved => {
          route.asking = false;
          route.node = None;
          route.slot = Some(redirect.slot);
          if let Some(view) = self.view.write().unwrap().as_mut() {
            let index = view.map.apply_moved(redirect.slot, &redirect.address);
            if view.links.len() <= index {
              view.links.resize(index + 1, None);
            }
            view.links[index] = Some(Arc::clone(&target));
          }
          crate::core::reply::broadcast(
            crate::core::events::RedisEvent::simple("moved").about(Some(&redirect.address.to_string())),
          );
          self.refresh_soon(false);
        }
        RedirectKind::Ask => {
          route.asking = true;
          route.node = Some(redirect.address.to_string());
        }
      }
      return self.send_to(&target, pending);
    }
    // TRYAGAIN (a slot migrating with keys on both sides) or CLUSTERDOWN (a
    // failover under way): again after a pause, within the deadline.
    let hops = route.hops;
    let deadline = pending.deadline;
    if reply.starts_with("CLUSTERDOWN") {
      self.refresh_soon(false);
    }
    let pause = Duration::from_millis((10u64 << hops.min(5)).min(200));
    let me = self.me();
    RUNTIME.spawn(async move {
      tokio::time::sleep_until((Instant::now() + pause).min(deadline)).await;
      me.send_when_routed(vec![pending], false).await;
    });
  }

  fn link_lost(&self, _address: &str) {
    if !self.is_closed() {
      self.refresh_soon(false);
    }
  }
}
