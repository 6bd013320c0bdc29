//! One link: the connection to one Redis server (the only one, or one node of
//! a cluster), made lazily, re-made in the background with exponential
//! backoff and jitter after it is lost, and closed on request. It owns its
//! transport (`FastConn`) and hears from it only through the `Owner` trait.
//!
//! A command that has not been written waits for a connection within its own
//! deadline (`commandTimeoutMs`) and is never sent after it; while commands
//! wait, attempts start at once and are at most `EAGER_DELAY_FACTOR` base
//! delays apart. A request that asks for a degraded answer (a cache read, a
//! rate-limit check, a health probe) fails at once while the connection is
//! being re-made. Nothing is ever queued to run later, and nothing that was
//! written is ever sent again.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::config::{connection_info, password_of, ClientConfig};
use super::connection::{FastConn, Handshake, Owner, Pending};
use super::error::{register_secret, Failure, FailureKind};
use super::events::RedisEvent;
use super::metrics;
use super::reply::broadcast;
use super::reply::Staged;
use super::runtime::RUNTIME;
use super::tls::TlsSettings;

/// The owner of a cluster's links: told of requests that a node redirected
/// (`MOVED`, `ASK`) or asked to retry (`TRYAGAIN`, `CLUSTERDOWN`), and of lost
/// connections (a node may have failed over).
pub trait Router: Send + Sync {
  /// `pending` was answered `reply` by the node at `from`.
  fn rerouted(&self, pending: Pending, reply: &str, from: &str);
  fn link_lost(&self, address: &str);
}

/// Requests submitted and not yet settled, over every link of a client (for
/// the graceful close, which waits for them).
#[derive(Default)]
pub struct Requests {
  count: AtomicUsize,
  drained: tokio::sync::Notify,
}

impl Requests {
  /// Counts `n` requests in flight.
  pub fn begin(&self, n: usize) {
    self.count.fetch_add(n, Ordering::AcqRel);
  }

  /// Counts `n` requests settled.
  pub fn end(&self, n: usize) {
    if n > 0 && self.count.fetch_sub(n, Ordering::AcqRel) == n {
      self.drained.notify_waiters();
    }
  }

  /// Waits until nothing is in flight, or `deadline`.
  pub async fn drained(&self, deadline: Instant) {
    while self.count.load(Ordering::Acquire) > 0 {
      let notified = self.drained.notified();
      if self.count.load(Ordering::Acquire) == 0 {
        break;
      }
      if tokio::time::timeout_at(deadline.into(), notified).await.is_err() {
        break;
      }
    }
  }
}

/// The connection commands go over: our own, plain TCP or TLS, written to on
/// the caller's thread.
pub type Transport = Arc<FastConn>;

/// Where to connect and how to introduce ourselves, from the URL (parsed once,
/// by redis-rs: the one place it still earns its keep).
pub struct Endpoint {
  pub host: String,
  pub port: u16,
  pub username: Option<String>,
  pub password: Option<String>,
  pub db: i64,
  /// Present for `rediss://`.
  pub tls: Option<TlsSettings>,
}

/// Where the connection is, as `getConnectionStatus().state` tells it.
#[derive(Clone)]
enum Phase {
  /// No connection yet, none being made (before the first command, or after
  /// `maxRetries` attempts failed).
  Idle,
  /// An attempt is under way; commands wait for its outcome.
  Connecting,
  /// Connected; `generation` tells one connection from the next.
  Ready { transport: Transport, generation: u64 },
  /// Waiting before the next attempt; commands fail at once.
  BackingOff,
  /// Closed by `closeRedisConnection()`.
  Closed,
}

pub struct Link {
  /// This link, for the connection's reports (`Owner`).
  me: std::sync::Weak<Link>,
  config: Arc<ClientConfig>,
  endpoint: Endpoint,
  phase: watch::Sender<Phase>,
  /// True once a connection has ever been made or attempted, to tell
  /// `connecting` from `reconnecting`.
  had_attempt: AtomicBool,
  reconnect_loop_running: AtomicBool,
  generation: AtomicU64,
  pub reconnects: AtomicU64,
  last_failure: Mutex<Option<Failure>>,
  /// The client's count of requests in flight.
  requests: Arc<Requests>,
  /// Requests waiting for a connection: while there are any, attempts come quickly.
  waiters: AtomicUsize,
  /// A request began to wait while the loop backed off: try again now.
  attempt_now: tokio::sync::Notify,
  /// The server refused `CLIENT SETNAME` once: reported, and not asked again.
  name_refused: AtomicBool,
  /// On a cluster: this node's address (events name it) and the router.
  label: Option<String>,
  router: Option<std::sync::Weak<dyn Router>>,
}

/// While requests wait for a connection, reconnect attempts are at most this
/// many `retryBaseDelayMs` apart (capped by `retryMaxDelayMs`).
pub const EAGER_DELAY_FACTOR: u32 = 4;

/// Counts a request as waiting for a connection while it lives.
struct Waiting<'a>(&'a Link);

impl<'a> Waiting<'a> {
  fn new(client: &'a Link) -> Self {
    client.waiters.fetch_add(1, Ordering::AcqRel);
    client.attempt_now.notify_one();
    Self(client)
  }
}

impl Drop for Waiting<'_> {
  fn drop(&mut self) {
    self.0.waiters.fetch_sub(1, Ordering::AcqRel);
  }
}

/// A link's status for `getConnectionStatus()`.
pub struct Status {
  pub state: &'static str,
  pub reconnects: u64,
  pub last_error: Option<String>,
}

impl Endpoint {
  /// A cluster node's endpoint: `host:port` with the URL's credentials and the
  /// client's TLS settings (the certificate checked against `host`, or
  /// `tls.servername`). A cluster has one database, 0.
  pub fn for_node(config: &ClientConfig, host: &str, port: u16) -> Result<Self, Failure> {
    Self::build(config, Some((host, port)))
  }

  /// The endpoint of `config.url`, with its TLS settings for `rediss://`.
  pub fn from_config(config: &ClientConfig) -> Result<Self, Failure> {
    Self::build(config, None)
  }

  /// `config.url`'s endpoint, or `node`'s with the URL's credentials
  /// (database 0); the TLS settings are made once, for the host connected to.
  fn build(config: &ClientConfig, node: Option<(&str, u16)>) -> Result<Self, Failure> {
    if let Some(password) = password_of(&config.url) {
      register_secret(&password);
    }
    let info = connection_info(&config.url)?;
    let (url_host, url_port, insecure) = match info.addr() {
      redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port, false),
      redis::ConnectionAddr::TcpTls {
        host, port, insecure, ..
      } => (host.clone(), *port, *insecure),
      _ => {
        return Err(Failure::new(
          FailureKind::Invalid,
          "only redis:// and rediss:// URLs (TCP) are supported",
        ))
      }
    };
    let settings = info.redis_settings();
    let (host, port, db) = match node {
      Some((host, port)) => (host.to_string(), port, 0),
      None => (url_host, url_port, settings.db()),
    };
    let tls = if config.is_tls() {
      Some(TlsSettings::new(
        &host,
        config.tls_ca_file.as_deref(),
        config.tls_reject_unauthorized && !insecure,
        config.tls_servername.as_deref(),
      )?)
    } else {
      None
    };
    Ok(Endpoint {
      host,
      port,
      username: settings.username().map(str::to_string),
      password: settings.password().map(str::to_string),
      db,
      tls,
    })
  }
}

impl Link {
  pub fn new(config: Arc<ClientConfig>, endpoint: Endpoint, requests: Arc<Requests>) -> Arc<Self> {
    Self::with_router(config, endpoint, requests, None, None)
  }

  /// A link to one node of a cluster: its events name `label`, and `router`
  /// hears of redirected requests and lost connections.
  pub fn with_router(
    config: Arc<ClientConfig>,
    endpoint: Endpoint,
    requests: Arc<Requests>,
    label: Option<String>,
    router: Option<std::sync::Weak<dyn Router>>,
  ) -> Arc<Self> {
    let (phase, _) = watch::channel(Phase::Idle);
    Arc::new_cyclic(|me| Self {
      me: me.clone(),
      config,
      endpoint,
      phase,
      had_attempt: AtomicBool::new(false),
      reconnect_loop_running: AtomicBool::new(false),
      generation: AtomicU64::new(0),
      reconnects: AtomicU64::new(0),
      last_failure: Mutex::new(None),
      requests,
      waiters: AtomicUsize::new(0),
      attempt_now: tokio::sync::Notify::new(),
      name_refused: AtomicBool::new(false),
      label,
      router,
    })
  }

  fn emit(&self, event: RedisEvent) {
    broadcast(event.about(self.label.as_deref()));
  }

  pub fn status(&self) -> Status {
    let state = match &*self.phase.borrow() {
      Phase::Idle => "idle",
      Phase::Connecting if !self.had_connection() => "connecting",
      Phase::Connecting | Phase::BackingOff => "reconnecting",
      Phase::Ready { .. } => "ready",
      Phase::Closed => "closed",
    };
    Status {
      state,
      reconnects: self.reconnects.load(Ordering::Relaxed),
      last_error: self.last_failure.lock().unwrap().as_ref().map(|f| f.message.clone()),
    }
  }

  fn had_connection(&self) -> bool {
    self.generation.load(Ordering::Relaxed) > 0 || self.reconnects.load(Ordering::Relaxed) > 0
  }

  pub fn is_closed(&self) -> bool {
    matches!(&*self.phase.borrow(), Phase::Closed)
  }

  /// The last connection failure, or a generic one.
  fn last_failure(&self) -> Failure {
    self
      .last_failure
      .lock()
      .unwrap()
      .clone()
      .unwrap_or_else(|| Failure::new(FailureKind::Connection, "no connection to Redis"))
  }

  /// True while a lost connection is being made again (not before the first one).
  pub fn is_reconnecting(&self) -> bool {
    match &*self.phase.borrow() {
      Phase::BackingOff => true,
      Phase::Connecting => self.had_connection(),
      Phase::Ready { transport, .. } => transport.is_dead(),
      _ => false,
    }
  }

  /// The live connection. Waits for it (the caller bounds the wait with its
  /// deadline) through attempts and backoff; fails at once when the client is
  /// closed, when the last attempt failed for good (credentials, SELECT), or
  /// when `maxRetries` attempts started for this request are spent. With
  /// `degraded`, fails at once instead of waiting while a lost connection is
  /// being made again (the first connection is still waited for).
  pub async fn connection(self: &Arc<Self>, degraded: bool) -> Result<Transport, Failure> {
    let mut rx = self.phase.subscribe();
    let mut started_loop = false;
    let mut waiting = None;
    loop {
      let phase = rx.borrow_and_update().clone();
      match phase {
        Phase::Ready { transport, generation } => {
          if !transport.is_dead() {
            return Ok(transport);
          }
          // The socket died and its reader has not said so yet: say it for it.
          let failure = Failure::new(FailureKind::Connection, "the connection to Redis was lost");
          self.connection_failed(generation, &failure);
          continue;
        }
        Phase::Closed => return Err(Failure::new(FailureKind::Closed, "the Redis connection is closed")),
        Phase::BackingOff | Phase::Connecting | Phase::Idle => {
          let last = self.last_failure.lock().unwrap().clone();
          if let Some(last) = last.filter(|f| f.fatal) {
            if !matches!(phase, Phase::Connecting) {
              return Err(last);
            }
          }
          if matches!(phase, Phase::BackingOff) && degraded {
            return Err(self.reconnecting_failure());
          }
          if matches!(phase, Phase::Connecting) && degraded && self.had_connection() {
            return Err(Failure::new(
              FailureKind::Connection,
              "Redis is unreachable (reconnecting)",
            ));
          }
          if matches!(phase, Phase::Idle) {
            if started_loop {
              // maxRetries attempts made for this request are spent.
              return Err(self.last_failure());
            }
            started_loop = true;
            self.start_reconnect_loop(false);
            continue;
          }
          if waiting.is_none() && !degraded {
            waiting = Some(Waiting::new(self));
          }
          if rx.changed().await.is_err() {
            return Err(Failure::new(FailureKind::Closed, "the Redis connection is closed"));
          }
          if degraded {
            // The first connection's attempt ended: its outcome answers.
            if let Phase::BackingOff | Phase::Idle = &*rx.borrow() {
              return Err(self.last_failure());
            }
          }
        }
      }
    }
  }

  /// The failure a degraded request gets at once while the connection is re-made.
  pub fn reconnecting_failure(&self) -> Failure {
    let last = self.last_failure();
    Failure::new(
      last.kind,
      format!("Redis is unreachable (reconnecting): {}", last.message),
    )
  }

  /// Why requests whose wait for a connection ran out got none: the last
  /// failed attempt (so the server is unreachable, not merely slow), if any.
  pub fn unreachable(&self) -> Option<Failure> {
    if matches!(&*self.phase.borrow(), Phase::Ready { .. }) {
      return None;
    }
    // Cleared by every successful connection: an attempt failed since the last one.
    self.last_failure.lock().unwrap().clone()
  }

  /// The connection, when it is up (the synchronous send path).
  pub fn ready_fast(&self) -> Option<Arc<FastConn>> {
    match &*self.phase.borrow() {
      Phase::Ready { transport, .. } if !transport.is_dead() => Some(Arc::clone(transport)),
      _ => None,
    }
  }

  /// Called when a request on connection `generation` failed in a way that
  /// means the connection is gone: starts reconnecting (once per connection).
  pub fn connection_failed(self: &Arc<Self>, generation: u64, failure: &Failure) {
    let current = matches!(&*self.phase.borrow(), Phase::Ready { generation: g, .. } if *g == generation);
    if !current {
      return;
    }
    *self.last_failure.lock().unwrap() = Some(failure.clone());
    self.emit(RedisEvent::error(&failure.message));
    self.emit(RedisEvent::simple("end"));
    self.start_reconnect_loop(true);
  }

  /// Runs connection attempts until one succeeds, `maxRetries` is spent or
  /// the client is closed. At most one loop runs at a time.
  fn start_reconnect_loop(self: &Arc<Self>, after_loss: bool) {
    if self.reconnect_loop_running.swap(true, Ordering::AcqRel) {
      return;
    }
    let replaced = self.phase.send_if_modified(|p| {
      if matches!(p, Phase::Closed) {
        false
      } else {
        *p = Phase::Connecting;
        true
      }
    });
    if !replaced {
      self.reconnect_loop_running.store(false, Ordering::Release);
      return;
    }
    let this = Arc::clone(self);
    RUNTIME.spawn(async move {
      this.reconnect_loop(after_loss).await;
      this.reconnect_loop_running.store(false, Ordering::Release);
    });
  }

  async fn reconnect_loop(self: &Arc<Self>, mut counts_as_reconnect: bool) {
    let mut attempt: u32 = 0;
    loop {
      if self.is_closed() {
        return;
      }
      self.set_phase(Phase::Connecting);
      if counts_as_reconnect || self.had_attempt.load(Ordering::Relaxed) {
        counts_as_reconnect = true;
      }
      self.had_attempt.store(true, Ordering::Relaxed);
      // `reconnects` counts every attempt after the first, failed ones too.
      if counts_as_reconnect {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
      }
      let generation = self.generation.load(Ordering::Acquire) + 1;
      let result = tokio::time::timeout(self.config.connect_timeout, self.connect_once(generation)).await;
      let failure = match result {
        Ok(Ok(transport)) => {
          if self.is_closed() {
            transport.shutdown();
            return;
          }
          self.generation.store(generation, Ordering::Release);
          *self.last_failure.lock().unwrap() = None;
          self.emit(RedisEvent::simple("connect"));
          self.set_phase(Phase::Ready { transport, generation });
          self.emit(RedisEvent::simple("ready"));
          return;
        }
        Ok(Err(failure)) => failure,
        Err(_) => Failure::new(
          FailureKind::Connection,
          format!(
            "connecting to Redis timed out after {} ms",
            self.config.connect_timeout.as_millis()
          ),
        ),
      };
      *self.last_failure.lock().unwrap() = Some(failure.clone());
      attempt += 1;
      self.emit(RedisEvent::error(&failure.message));
      if self.config.max_retries.is_some_and(|max| attempt > max) {
        self.set_phase(Phase::Idle);
        return;
      }
      let mut delay = backoff_delay(&self.config, attempt);
      let eager = eager_delay(&self.config);
      if self.waiters.load(Ordering::Acquire) > 0 {
        delay = delay.min(eager);
      }
      let failed_at = tokio::time::Instant::now();
      self.set_phase(Phase::BackingOff);
      self.emit(RedisEvent::reconnecting(attempt, delay));
      tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = self.attempt_now.notified() => {
          // A request started waiting: try again soon, but no sooner than one base delay.
          tokio::time::sleep_until(failed_at + self.config.retry_base_delay.min(delay)).await;
        }
      }
    }
  }

  fn set_phase(&self, phase: Phase) {
    self.phase.send_if_modified(|p| {
      if matches!(p, Phase::Closed) {
        return false;
      }
      *p = phase;
      true
    });
  }

  /// One connection attempt (TCP, TLS for `rediss://`, then Redis's handshake).
  async fn connect_once(self: &Arc<Self>, generation: u64) -> Result<Transport, Failure> {
    let endpoint = &self.endpoint;
    let handshake = Handshake {
      username: endpoint.username.clone(),
      password: endpoint.password.clone(),
      db: endpoint.db,
      set_name: !self.name_refused.load(Ordering::Relaxed),
    };
    let connected = FastConn::connect(
      &endpoint.host,
      endpoint.port,
      &handshake,
      endpoint.tls.as_ref(),
      Arc::clone(self) as Arc<dyn Owner>,
      generation,
    )
    .await?;
    for (step, reason) in connected.refused {
      if step == "CLIENT SETNAME" && self.name_refused.swap(true, Ordering::Relaxed) {
        continue;
      }
      // Reported once; the connection is used all the same.
      self.emit(RedisEvent::error(&format!(
        "{step} was refused (optional: the connection is used without it): {reason}"
      )));
    }
    Ok(connected.conn)
  }

  /// Sends requests that were made while no connection was ready: waits for one
  /// (within the requests' deadline), then sends them once. A connection that
  /// turns out dead before anything was written is waited past too.
  pub async fn send_later(
    self: Arc<Self>,
    bytes: Vec<u8>,
    mut pending: Vec<Pending>,
    deadline: tokio::time::Instant,
    degraded: bool,
  ) {
    let client = self;
    loop {
      let conn = match tokio::time::timeout_at(deadline, client.connection(degraded)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(failure)) => return client.fail_pending(pending, &failure),
        Err(_) => return client.fail_unsent(pending),
      };
      match conn.send(&bytes, pending) {
        Ok(()) => return,
        Err(requests) => {
          // Nothing was written: wait for the next connection.
          pending = requests;
          let failure = Failure::new(FailureKind::Connection, "the connection to Redis was lost");
          client.connection_failed(conn.generation, &failure);
        }
      }
    }
  }

  /// Fails requests whose deadline passed before any connection could take them:
  /// a connection error while the server is unreachable, else a timeout. Either
  /// way the command was not sent, and never will be.
  pub fn fail_unsent(&self, pending: Vec<Pending>) {
    let timeout = self.config.command_timeout.as_millis();
    let unreachable = self.unreachable();
    let mut staged = Staged::default();
    let mut settled = 0;
    for p in &pending {
      let failure = match &unreachable {
        Some(last) => Failure::new(
          last.kind,
          format!(
            "Redis command {} was not sent: no connection within {timeout} ms ({})",
            p.name.as_str(),
            last.message
          ),
        ),
        None => Failure::new(
          FailureKind::Timeout,
          format!(
            "Redis command {} timed out after {timeout} ms waiting for a connection",
            p.name.as_str()
          ),
        ),
      };
      settled += usize::from(p.fail(&failure, &mut staged));
    }
    metrics::record_failures(settled, self.config.command_timeout);
    staged.deliver();
    self.requests.end(settled);
  }

  /// Fails requests that were never written, with `failure`.
  pub fn fail_pending(&self, pending: Vec<Pending>, failure: &Failure) {
    let mut staged = Staged::default();
    let now = tokio::time::Instant::now();
    let mut settled = 0;
    for p in &pending {
      if p.fail(failure, &mut staged) {
        metrics::record(
          now.saturating_duration_since(p.deadline - self.config.command_timeout),
          true,
        );
        settled += 1;
      }
    }
    staged.deliver();
    self.requests.end(settled);
  }

  /// Closes the link: no new connection is made, and the live one is shut
  /// down (what is still in flight on it fails). Reports `end` once.
  pub fn close(&self) {
    let was_open = !self.is_closed();
    let previous = self.phase.send_replace(Phase::Closed);
    if let Phase::Ready { transport, .. } = previous {
      transport.shutdown();
    }
    if was_open {
      self.emit(RedisEvent::simple("end"));
    }
  }
}

/// The longest pause between attempts while requests wait for a connection.
fn eager_delay(config: &ClientConfig) -> Duration {
  (config.retry_base_delay * EAGER_DELAY_FACTOR).clamp(config.retry_base_delay, config.retry_max_delay)
}

impl Owner for Link {
  fn command_timeout(&self) -> Duration {
    self.config.command_timeout
  }

  fn settled(&self, n: usize) {
    self.requests.end(n);
  }

  fn lost(&self, generation: u64, failure: &Failure) {
    if let Some(me) = self.me.upgrade() {
      me.connection_failed(generation, failure);
    }
    if let (Some(router), Some(label)) = (self.router.as_ref().and_then(|r| r.upgrade()), &self.label) {
      router.link_lost(label);
    }
  }

  fn rerouted(&self, pending: Pending, reply: &str) {
    match (self.router.as_ref().and_then(|r| r.upgrade()), &self.label) {
      (Some(router), Some(from)) => router.rerouted(pending, reply, from),
      _ => {
        let mut staged = Staged::default();
        let settled = pending.fail(&Failure::new(FailureKind::Reply, reply), &mut staged);
        staged.deliver();
        if settled {
          self.requests.end(1);
        }
      }
    }
  }
}

/// Exponential backoff with jitter: a delay drawn from the upper half of
/// `base * 2^(attempt-1)`, kept within `[base, max]`.
fn backoff_delay(config: &ClientConfig, attempt: u32) -> Duration {
  let base = config.retry_base_delay.as_millis() as u64;
  let max = config.retry_max_delay.as_millis() as u64;
  let ceiling = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(30)).min(max);
  let half = ceiling / 2;
  let jitter = if ceiling > half {
    random_u64() % (ceiling - half + 1)
  } else {
    0
  };
  Duration::from_millis((half + jitter).clamp(base, max))
}

/// A cheap random number (not for secrets): time and a counter through splitmix64.
fn random_u64() -> u64 {
  static COUNTER: AtomicU64 = AtomicU64::new(0);
  let nanos = std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map(|d| d.as_nanos() as u64)
    .unwrap_or(0);
  let mut z = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
  z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
  z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
  z ^ (z >> 31)
}
