//! Client configuration: options from `configureRedis()` merged over the
//! environment (`REDIS_URL`, `REDIS_CLUSTER`, `REDIS_KEY_PREFIX`), validated once.

use std::time::Duration;

use super::error::{redact, Failure, FailureKind};

/// TLS settings for `rediss://` URLs (the binding's `TlsOptions`, documented there).
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
  pub ca_file: Option<String>,
  pub reject_unauthorized: Option<bool>,
  pub servername: Option<String>,
}

/// The options of `configureRedis()`, every one optional (the binding's
/// `RedisOptions`, documented there, converts into this).
#[derive(Clone, Debug, Default)]
pub struct Options {
  pub url: Option<String>,
  pub key_prefix: Option<String>,
  pub connect_timeout_ms: Option<u32>,
  pub command_timeout_ms: Option<u32>,
  pub max_retries: Option<u32>,
  pub retry_base_delay_ms: Option<u32>,
  pub retry_max_delay_ms: Option<u32>,
  pub cluster: Option<bool>,
  pub tls: Option<TlsOptions>,
  /// `announced host:port` → `(host, port)` to connect to (clusters behind NAT).
  pub nat_map: Option<Vec<(String, String, u16)>>,
}

/// Bad input (a `TypeError` in JS).
fn invalid(message: impl AsRef<str>) -> Failure {
  Failure::new(FailureKind::Invalid, message)
}

/// The validated configuration one client is built from.
#[derive(Clone, Debug)]
pub struct ClientConfig {
  pub url: String,
  pub key_prefix: Vec<u8>,
  pub connect_timeout: Duration,
  pub command_timeout: Duration,
  pub max_retries: Option<u32>,
  pub retry_base_delay: Duration,
  pub retry_max_delay: Duration,
  pub cluster: bool,
  /// A cluster's seed nodes (`host:port`): `REDIS_CLUSTER_NODES`, else the URL's host.
  pub cluster_nodes: Vec<String>,
  /// Announced `host:port` → the address to connect to, sorted.
  pub nat_map: Vec<(String, String, u16)>,
  pub tls_ca_file: Option<String>,
  pub tls_reject_unauthorized: bool,
  pub tls_servername: Option<String>,
}

pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

fn env_nonempty(name: &str) -> Option<String> {
  std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn millis(value: Option<u32>, default: u64, name: &str, allow_zero: bool) -> Result<Duration, Failure> {
  match value {
    None => Ok(Duration::from_millis(default)),
    Some(0) if !allow_zero => Err(invalid(format!("{name} must be a positive number of milliseconds"))),
    Some(ms) => Ok(Duration::from_millis(ms as u64)),
  }
}

impl ClientConfig {
  /// Merges explicit options over the environment and checks them.
  pub fn resolve(options: &Options) -> Result<Self, Failure> {
    let url = options
      .url
      .clone()
      .or_else(|| env_nonempty("REDIS_URL"))
      .unwrap_or_else(|| DEFAULT_URL.to_string());
    let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
    if !scheme_ok {
      return Err(invalid(format!(
        "url must start with redis:// or rediss:// (got {})",
        redact(&url)
      )));
    }
    connection_info(&url)?;
    let cluster = match options.cluster {
      Some(c) => c,
      None => env_nonempty("REDIS_CLUSTER").is_some_and(|v| v == "true" || v == "1"),
    };
    let key_prefix = options
      .key_prefix
      .clone()
      .or_else(|| env_nonempty("REDIS_KEY_PREFIX"))
      .unwrap_or_default()
      .into_bytes();
    let retry_base_delay = millis(options.retry_base_delay_ms, 50, "retryBaseDelayMs", false)?;
    let retry_max_delay = millis(options.retry_max_delay_ms, 2000, "retryMaxDelayMs", false)?;
    if retry_max_delay < retry_base_delay {
      return Err(invalid("retryMaxDelayMs must not be smaller than retryBaseDelayMs"));
    }
    let tls = options.tls.clone().unwrap_or_default();
    // Seeds: an explicit `url` option names the cluster (its one node seeds
    // it); otherwise REDIS_CLUSTER_NODES when set, else REDIS_URL's node.
    let from_env = if options.url.is_some() {
      None
    } else {
      env_nonempty("REDIS_CLUSTER_NODES")
    };
    let cluster_nodes: Vec<String> = from_env
      .map(|nodes| {
        nodes
          .split(',')
          .map(|n| n.trim().to_string())
          .filter(|n| !n.is_empty())
          .collect()
      })
      .unwrap_or_default();
    for node in &cluster_nodes {
      let port_ok = node
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
      if !port_ok {
        return Err(invalid(format!(
          "REDIS_CLUSTER_NODES must be host:port,host:port (got {node:?})"
        )));
      }
    }
    let mut nat_map = options.nat_map.clone().unwrap_or_default();
    for (from, host, port) in &nat_map {
      let from_ok = from
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
      if !from_ok || host.is_empty() || *port == 0 {
        return Err(invalid(format!(
          "natMap entries are {{ 'host:port': {{ host, port }} }} (got {from:?} → {host}:{port})"
        )));
      }
    }
    nat_map.sort();
    Ok(Self {
      url,
      key_prefix,
      connect_timeout: millis(options.connect_timeout_ms, 2000, "connectTimeoutMs", false)?,
      command_timeout: millis(options.command_timeout_ms, 2000, "commandTimeoutMs", false)?,
      max_retries: options.max_retries,
      retry_base_delay,
      retry_max_delay,
      cluster,
      cluster_nodes,
      nat_map,
      tls_ca_file: tls.ca_file,
      tls_reject_unauthorized: tls.reject_unauthorized.unwrap_or(true),
      tls_servername: tls.servername,
    })
  }

  pub fn is_tls(&self) -> bool {
    self.url.starts_with("rediss://")
  }
}

/// Connection options in the shape BullMQ (ioredis) takes.
pub struct BullMqConnection {
  pub host: String,
  pub port: u32,
  pub username: Option<String>,
  pub password: Option<String>,
  pub db: u32,
  /// Present for `rediss://`.
  pub tls: Option<BullMqTls>,
}

/// TLS part of the BullMQ connection options.
pub struct BullMqTls {
  pub ca: Option<String>,
  pub reject_unauthorized: bool,
  pub servername: Option<String>,
}

/// The URL as redis-rs parses it (the parser the connection itself uses).
pub fn connection_info(url: &str) -> Result<redis::ConnectionInfo, Failure> {
  redis::IntoConnectionInfo::into_connection_info(url)
    .map_err(|e| invalid(format!("invalid Redis URL {}: {e}", redact(url))))
}

/// The password in a Redis URL, if it has one.
pub fn password_of(url: &str) -> Option<String> {
  let info = connection_info(url).ok()?;
  info
    .redis_settings()
    .password()
    .filter(|p| !p.is_empty())
    .map(str::to_string)
}

impl ClientConfig {
  /// Parses the URL into BullMQ's connection options.
  pub fn bullmq_connection(&self) -> Result<BullMqConnection, Failure> {
    let info = connection_info(&self.url)?;
    let (host, port) = match info.addr() {
      redis::ConnectionAddr::Tcp(host, port) | redis::ConnectionAddr::TcpTls { host, port, .. } => {
        (host.clone(), *port)
      }
      _ => return Err(invalid("BullMQ needs a TCP Redis URL")),
    };
    let settings = info.redis_settings();
    let tls = if self.is_tls() {
      let ca = match &self.tls_ca_file {
        Some(f) => Some(std::fs::read_to_string(f).map_err(|e| invalid(format!("cannot read tls.caFile {f}: {e}")))?),
        None => None,
      };
      Some(BullMqTls {
        ca,
        reject_unauthorized: self.tls_reject_unauthorized,
        servername: self.tls_servername.clone(),
      })
    } else {
      None
    };
    Ok(BullMqConnection {
      host,
      port: port as u32,
      username: settings.username().filter(|u| !u.is_empty()).map(str::to_string),
      password: settings.password().filter(|p| !p.is_empty()).map(str::to_string),
      db: settings.db().max(0) as u32,
      tls,
    })
  }
}
