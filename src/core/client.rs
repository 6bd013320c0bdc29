//! The process-wide client: one multiplexed connection, made lazily on the first
//! command, re-made in the background with exponential backoff and jitter after
//! it is lost, and closed gracefully on request.
//!
//! A command that has not been written waits for a connection within its own
//! deadline (`commandTimeoutMs`) and is never sent after it; while commands
//! wait, attempts start at once and are at most `EAGER_DELAY_FACTOR` base
//! delays apart. A request that asks for a degraded answer (a cache read, a
//! rate-limit check, a health probe) fails at once while the connection is
//! being re-made. Nothing is ever queued to run later, and nothing that was
//! written is ever sent again.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use tokio::sync::watch;

use super::config::{connection_info, password_of, ClientConfig, Options};
use super::connection::{FastConn, Handshake, Owner, Pending};
use super::error::{register_secret, Failure, FailureKind};
use super::events::RedisEvent;
use super::metrics;
use super::reply::broadcast as emit;
use super::reply::Staged;
use super::tls::TlsSettings;

/// The tokio runtime every client uses; its threads never keep Node alive.
pub static RUNTIME: Lazy<tokio::runtime::Runtime> = Lazy::new(|| {
  let threads = std::env::var("YG_REDIS_THREADS")
    .ok()
    .and_then(|v| v.parse().ok())
    .unwrap_or(1);
  tokio::runtime::Builder::new_multi_thread()
    .worker_threads(threads)
    .thread_name("yg-redis")
    .enable_all()
    .build()
    .expect("cannot start the tokio runtime")
});

/// The connection commands go over: our own, plain TCP or TLS, written to on
/// the caller's thread.
pub type Transport = Arc<FastConn>;

/// Where to connect and how to introduce ourselves, from the URL (parsed once,
/// by redis-rs: the one place it still earns its keep).
struct Endpoint {
  host: String,
  port: u16,
  username: Option<String>,
  password: Option<String>,
  db: i64,
  /// Present for `rediss://`.
  tls: Option<TlsSettings>,
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

pub struct Client {
  /// This client, for the connection's reports (`Owner`).
  me: std::sync::Weak<Client>,
  pub config: ClientConfig,
  endpoint: Endpoint,
  phase: watch::Sender<Phase>,
  /// True once a connection has ever been made or attempted, to tell
  /// `connecting` from `reconnecting`.
  had_attempt: AtomicBool,
  reconnect_loop_running: AtomicBool,
  generation: AtomicU64,
  pub reconnects: AtomicU64,
  last_failure: Mutex<Option<Failure>>,
  /// Requests submitted and not yet settled, for the graceful close.
  in_flight: AtomicUsize,
  drained: tokio::sync::Notify,
  /// Requests waiting for a connection: while there are any, attempts come quickly.
  waiters: AtomicUsize,
  /// A request began to wait while the loop backed off: try again now.
  attempt_now: tokio::sync::Notify,
  /// The server refused `CLIENT SETNAME` once: reported, and not asked again.
  name_refused: AtomicBool,
}

/// While requests wait for a connection, reconnect attempts are at most this
/// many `retryBaseDelayMs` apart (capped by `retryMaxDelayMs`).
pub const EAGER_DELAY_FACTOR: u32 = 4;

/// Counts a request as waiting for a connection while it lives.
struct Waiting<'a>(&'a Client);

impl<'a> Waiting<'a> {
  fn new(client: &'a Client) -> Self {
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

/// The client's status for `getConnectionStatus()`.
pub struct Status {
  pub state: &'static str,
  pub reconnects: u64,
  pub last_error: Option<String>,
}

impl Client {
  pub fn new(config: ClientConfig) -> Result<Arc<Self>, Failure> {
    if config.cluster {
      return Err(Failure::new(
        FailureKind::Invalid,
        "Redis Cluster mode (cluster: true / REDIS_CLUSTER=true) is not available in this version yet",
      ));
    }
    if let Some(password) = password_of(&config.url) {
      register_secret(&password);
    }
    let info = connection_info(&config.url)?;
    let (host, port, insecure) = match info.addr() {
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
    let settings = info.redis_settings();
    let endpoint = Endpoint {
      host,
      port,
      username: settings.username().map(str::to_string),
      password: settings.password().map(str::to_string),
      db: settings.db(),
      tls,
    };
    let (phase, _) = watch::channel(Phase::Idle);
    Ok(Arc::new_cyclic(|me| Self {
      me: me.clone(),
      config,
      endpoint,
      phase,
      had_attempt: AtomicBool::new(false),
      reconnect_loop_running: AtomicBool::new(false),
      generation: AtomicU64::new(0),
      reconnects: AtomicU64::new(0),
      last_failure: Mutex::new(None),
      in_flight: AtomicUsize::new(0),
      drained: tokio::sync::Notify::new(),
      waiters: AtomicUsize::new(0),
      attempt_now: tokio::sync::Notify::new(),
      name_refused: AtomicBool::new(false),
    }))
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
    emit(RedisEvent::error(&failure.message));
    emit(RedisEvent::simple("end"));
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
          emit(RedisEvent::simple("connect"));
          self.set_phase(Phase::Ready { transport, generation });
          emit(RedisEvent::simple("ready"));
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
      emit(RedisEvent::error(&failure.message));
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
      emit(RedisEvent::reconnecting(attempt, delay));
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
      emit(RedisEvent::error(&format!(
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
  fn fail_unsent(&self, pending: Vec<Pending>) {
    let client = self;
    let timeout = client.config.command_timeout.as_millis();
    metrics::record_failures(pending.len(), client.config.command_timeout);
    let unreachable = client.unreachable();
    let mut staged = Staged::default();
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
      staged.failure(&p.channel, p.id, &failure);
    }
    staged.deliver();
    client.end_requests(pending.len());
  }

  fn fail_pending(&self, pending: Vec<Pending>, failure: &Failure) {
    let client = self;
    let mut staged = Staged::default();
    let now = tokio::time::Instant::now();
    for p in &pending {
      metrics::record(
        now.saturating_duration_since(p.deadline - client.config.command_timeout),
        true,
      );
      staged.failure(&p.channel, p.id, failure);
    }
    staged.deliver();
    client.end_requests(pending.len());
  }

  /// Counts `n` requests in flight (for the graceful close).
  pub fn begin_requests(&self, n: usize) {
    self.in_flight.fetch_add(n, Ordering::AcqRel);
  }

  /// Counts `n` requests settled.
  pub fn end_requests(&self, n: usize) {
    if n > 0 && self.in_flight.fetch_sub(n, Ordering::AcqRel) == n {
      self.drained.notify_waiters();
    }
  }

  /// Waits for the requests in flight (up to the command timeout), then closes.
  pub async fn close(self: &Arc<Self>) {
    let deadline = Instant::now() + self.config.command_timeout;
    while self.in_flight.load(Ordering::Acquire) > 0 {
      let notified = self.drained.notified();
      if self.in_flight.load(Ordering::Acquire) == 0 {
        break;
      }
      if tokio::time::timeout_at(deadline.into(), notified).await.is_err() {
        break;
      }
    }
    let was_open = !self.is_closed();
    let previous = self.phase.send_replace(Phase::Closed);
    if let Phase::Ready { transport, .. } = previous {
      transport.shutdown();
    }
    if was_open {
      emit(RedisEvent::simple("end"));
    }
  }
}

/// The longest pause between attempts while requests wait for a connection.
fn eager_delay(config: &ClientConfig) -> Duration {
  (config.retry_base_delay * EAGER_DELAY_FACTOR).clamp(config.retry_base_delay, config.retry_max_delay)
}

impl Owner for Client {
  fn command_timeout(&self) -> Duration {
    self.config.command_timeout
  }

  fn settled(&self, n: usize) {
    self.end_requests(n);
  }

  fn lost(&self, generation: u64, failure: &Failure) {
    if let Some(me) = self.me.upgrade() {
      me.connection_failed(generation, failure);
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
pub fn random_u64() -> u64 {
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

/// The one client of this process and the options the next one is made from.
struct Registry {
  client: Option<Arc<Client>>,
  options: Option<Options>,
}

static REGISTRY: Lazy<RwLock<Registry>> = Lazy::new(|| {
  RwLock::new(Registry {
    client: None,
    options: None,
  })
});

/// The current client, made (not connected) from the configured options on first use.
pub fn current() -> Result<Arc<Client>, Failure> {
  if let Some(client) = REGISTRY.read().unwrap().client.as_ref() {
    if !client.is_closed() {
      return Ok(Arc::clone(client));
    }
  }
  let mut registry = REGISTRY.write().unwrap();
  if let Some(client) = registry.client.as_ref() {
    if !client.is_closed() {
      return Ok(Arc::clone(client));
    }
  }
  let options = registry.options.clone().unwrap_or_default();
  let config = ClientConfig::resolve(&options)?;
  let client = Client::new(config)?;
  registry.client = Some(Arc::clone(&client));
  Ok(client)
}

/// The client of the registry, open or closed (for its status), without making one.
pub fn latest() -> Option<Arc<Client>> {
  REGISTRY.read().unwrap().client.clone()
}

/// The current client if one is open, without making one.
pub fn existing() -> Option<Arc<Client>> {
  REGISTRY
    .read()
    .unwrap()
    .client
    .as_ref()
    .filter(|c| !c.is_closed())
    .cloned()
}

/// The configuration the next client will use (the open one's, if any).
pub fn effective_config() -> Result<ClientConfig, Failure> {
  let registry = REGISTRY.read().unwrap();
  match registry.client.as_ref().filter(|c| !c.is_closed()) {
    Some(c) => Ok(c.config.clone()),
    None => ClientConfig::resolve(&registry.options.clone().unwrap_or_default()),
  }
}

/// The key prefix in force: the open client's, else the next one's (without cloning the whole config).
pub fn key_prefix() -> Result<Vec<u8>, Failure> {
  let registry = REGISTRY.read().unwrap();
  match registry.client.as_ref().filter(|c| !c.is_closed()) {
    Some(c) => Ok(c.config.key_prefix.clone()),
    None => Ok(ClientConfig::resolve(&registry.options.clone().unwrap_or_default())?.key_prefix),
  }
}

/// Stores options for the next client. Refused once a command has made the
/// client (whatever the options), until `closeRedisConnection()`.
pub fn configure(options: Options) -> Result<(), Failure> {
  let config = ClientConfig::resolve(&options)?;
  let mut registry = REGISTRY.write().unwrap();
  if registry.client.as_ref().is_some_and(|c| !c.is_closed()) {
    return Err(Failure::new(
      FailureKind::Usage,
      "configureRedis() must be called before the first command, or after closeRedisConnection()",
    ));
  }
  if let Some(password) = password_of(&config.url) {
    register_secret(&password);
  }
  registry.options = Some(options);
  Ok(())
}
