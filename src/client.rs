//! The process-wide client: one multiplexed connection, made lazily on the first
//! command, re-made in the background with exponential backoff and jitter after
//! it is lost, and closed gracefully on request.
//!
//! A command never waits behind a reconnect it cannot see the end of: while an
//! attempt is under way it waits for that attempt's outcome (bounded by its own
//! timeout); while the client is backing off between attempts it fails at once
//! with the last connection error. Nothing is ever queued to run later.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use redis::aio::MultiplexedConnection;
use tokio::sync::watch;

use crate::config::{password_of, ClientConfig, RedisOptions};
use crate::connection::{FastConn, Handshake};
use crate::errors::{register_secret, Failure, FailureKind};
use crate::events::{emit, RedisEvent};

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

/// The connection commands go over.
#[derive(Clone)]
pub enum Transport {
  /// Our own plain-TCP connection (written to on the caller's thread).
  Fast(Arc<FastConn>),
  /// redis-rs's multiplexed connection (TLS), and its generation.
  Multiplexed(MultiplexedConnection, u64),
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
  pub config: ClientConfig,
  redis: redis::Client,
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
}

/// The client's status for `getConnectionStatus()`.
pub struct Status {
  pub state: &'static str,
  pub reconnects: u64,
  pub last_error: Option<String>,
}

fn connection_config(config: &ClientConfig) -> redis::AsyncConnectionConfig {
  redis::AsyncConnectionConfig::new()
    .set_connection_timeout(Some(config.connect_timeout))
    // Our own timeout wraps every request, including the wait for a connection.
    .set_response_timeout(None)
}

impl Client {
  pub fn new(config: ClientConfig) -> Result<Arc<Self>, Failure> {
    if config.cluster {
      return Err(Failure::new(
        FailureKind::Invalid,
        "Redis Cluster mode (cluster: true / REDIS_CLUSTER=true) is not available in this version yet",
      ));
    }
    let invalid = |e: redis::RedisError| Failure::new(FailureKind::Invalid, format!("invalid Redis URL: {e}"));
    let mut url = config.url.clone();
    if let Some(password) = password_of(&url) {
      register_secret(&password);
    }
    let redis = if config.is_tls() {
      if !config.tls_reject_unauthorized && !url.contains("#insecure") {
        url.push_str("#insecure");
      }
      let root_cert = match &config.tls_ca_file {
        Some(file) => Some(
          std::fs::read(file)
            .map_err(|e| Failure::new(FailureKind::Invalid, format!("cannot read tls.caFile {file}: {e}")))?,
        ),
        None => None,
      };
      let _ = rustls::crypto::ring::default_provider().install_default();
      redis::Client::build_with_tls(
        url.as_str(),
        redis::TlsCertificates {
          client_tls: None,
          root_cert,
        },
      )
      .map_err(invalid)?
    } else {
      redis::Client::open(url.as_str()).map_err(invalid)?
    };
    let (phase, _) = watch::channel(Phase::Idle);
    Ok(Arc::new(Self {
      config,
      redis,
      phase,
      had_attempt: AtomicBool::new(false),
      reconnect_loop_running: AtomicBool::new(false),
      generation: AtomicU64::new(0),
      reconnects: AtomicU64::new(0),
      last_failure: Mutex::new(None),
      in_flight: AtomicUsize::new(0),
      drained: tokio::sync::Notify::new(),
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

  /// The live connection, waiting for an attempt under way; fails at once
  /// while backing off. The caller bounds the wait with its own timeout.
  pub async fn connection(self: &Arc<Self>) -> Result<Transport, Failure> {
    let mut rx = self.phase.subscribe();
    loop {
      let phase = rx.borrow_and_update().clone();
      match phase {
        Phase::Ready { transport, .. } => return Ok(transport),
        Phase::Closed => return Err(Failure::new(FailureKind::Closed, "the Redis connection is closed")),
        Phase::BackingOff => {
          let last = self.last_failure();
          return Err(Failure::new(
            last.kind,
            format!("Redis is unreachable (reconnecting): {}", last.message),
          ));
        }
        Phase::Idle => {
          self.start_reconnect_loop(false);
        }
        Phase::Connecting => {
          if rx.changed().await.is_err() {
            return Err(Failure::new(FailureKind::Closed, "the Redis connection is closed"));
          }
          // An attempt that failed leaves BackingOff (or Idle once maxRetries is
          // spent): report its error rather than waiting for the next one.
          match &*rx.borrow() {
            Phase::BackingOff | Phase::Idle => {
              return Err(self.last_failure());
            }
            _ => {}
          }
        }
      }
    }
  }

  /// The plain-TCP connection, when it is up (the synchronous send path).
  pub fn ready_fast(&self) -> Option<Arc<FastConn>> {
    match &*self.phase.borrow() {
      Phase::Ready {
        transport: Transport::Fast(conn),
        ..
      } if !conn.is_dead() => Some(Arc::clone(conn)),
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
    let cfg = connection_config(&self.config);
    loop {
      if self.is_closed() {
        return;
      }
      self.set_phase(Phase::Connecting);
      if counts_as_reconnect || self.had_attempt.load(Ordering::Relaxed) {
        counts_as_reconnect = true;
      }
      self.had_attempt.store(true, Ordering::Relaxed);
      let generation = self.generation.load(Ordering::Acquire) + 1;
      let result = tokio::time::timeout(self.config.connect_timeout, self.connect_once(&cfg, generation)).await;
      let failure = match result {
        Ok(Ok(transport)) => {
          if self.is_closed() {
            if let Transport::Fast(conn) = &transport {
              conn.shutdown();
            }
            return;
          }
          self.generation.store(generation, Ordering::Release);
          if counts_as_reconnect {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
          }
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
      let delay = backoff_delay(&self.config, attempt);
      self.set_phase(Phase::BackingOff);
      emit(RedisEvent::reconnecting(attempt, delay));
      tokio::time::sleep(delay).await;
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

  /// One connection attempt: our own connection for plain TCP, redis-rs's for TLS.
  async fn connect_once(
    self: &Arc<Self>,
    cfg: &redis::AsyncConnectionConfig,
    generation: u64,
  ) -> Result<Transport, Failure> {
    let info = self.redis.get_connection_info();
    if let redis::ConnectionAddr::Tcp(host, port) = info.addr() {
      let settings = info.redis_settings();
      let handshake = Handshake {
        username: settings.username().map(str::to_string),
        password: settings.password().map(str::to_string),
        db: settings.db(),
      };
      let conn = FastConn::connect(host, *port, &handshake, Arc::clone(self), generation).await?;
      return Ok(Transport::Fast(conn));
    }
    let conn = self
      .redis
      .get_multiplexed_async_connection_with_config(cfg)
      .await
      .map_err(|e| Failure::from_redis(&e))?;
    Ok(Transport::Multiplexed(conn, generation))
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
    // Our own connection is shut down here; redis-rs's closes when its last handle goes.
    if let Phase::Ready {
      transport: Transport::Fast(conn),
      ..
    } = previous
    {
      conn.shutdown();
    }
    if was_open {
      emit(RedisEvent::simple("end"));
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
  options: Option<RedisOptions>,
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
  let config = ClientConfig::resolve(&options).map_err(|e| Failure::new(FailureKind::Invalid, e.reason))?;
  let client = Client::new(config)?;
  registry.client = Some(Arc::clone(&client));
  Ok(client)
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
pub fn effective_config() -> napi::Result<ClientConfig> {
  let registry = REGISTRY.read().unwrap();
  match registry.client.as_ref().filter(|c| !c.is_closed()) {
    Some(c) => Ok(c.config.clone()),
    None => ClientConfig::resolve(&registry.options.clone().unwrap_or_default()),
  }
}

/// The key prefix in force: the open client's, else the next one's (without cloning the whole config).
pub fn key_prefix() -> napi::Result<Vec<u8>> {
  let registry = REGISTRY.read().unwrap();
  match registry.client.as_ref().filter(|c| !c.is_closed()) {
    Some(c) => Ok(c.config.key_prefix.clone()),
    None => Ok(ClientConfig::resolve(&registry.options.clone().unwrap_or_default())?.key_prefix),
  }
}

/// Stores options for the next client. Refused while a client is open, unless
/// the options are the same as the open client's (a re-evaluated module).
pub fn configure(options: RedisOptions) -> napi::Result<()> {
  let config = ClientConfig::resolve(&options)?;
  let mut registry = REGISTRY.write().unwrap();
  if let Some(client) = registry.client.as_ref().filter(|c| !c.is_closed()) {
    if format!("{:?}", client.config) == format!("{:?}", config) {
      return Ok(());
    }
    return Err(crate::errors::usage_error(
      "configureRedis() must be called before the first command, or after closeRedisConnection()",
    ));
  }
  if let Some(password) = password_of(&config.url) {
    register_secret(&password);
  }
  registry.options = Some(options);
  Ok(())
}
