//! Client configuration: options from `configureRedis()` merged over the
//! environment (`REDIS_URL`, `REDIS_CLUSTER`, `REDIS_KEY_PREFIX`), validated once.

use std::time::Duration;

use napi_derive::napi;

use crate::errors::{redact, type_error};

/// TLS settings for `rediss://` URLs.
#[napi(object)]
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
  /// A PEM file with the certificate authority that signed the server's certificate.
  pub ca_file: Option<String>,
  /// `false` accepts any server certificate (tests only). Default `true`.
  pub reject_unauthorized: Option<bool>,
  /// The name the server's certificate must carry, sent as SNI. Default: the URL's host.
  pub servername: Option<String>,
}

/// Options for `configureRedis()`. Every field is optional.
#[napi(object)]
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
  /// `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. Default `REDIS_URL` or `redis://127.0.0.1:6379`.
  pub url: Option<String>,
  /// Prepended literally to every key the package sends. Default `REDIS_KEY_PREFIX` or none.
  pub key_prefix: Option<String>,
  /// How long one connection attempt may take. Default 2000.
  pub connect_timeout_ms: Option<u32>,
  /// Every command settles (with its reply or an error) within this time. Default 2000.
  pub command_timeout_ms: Option<u32>,
  /// Consecutive reconnect attempts after a connection loss before the client stops trying
  /// until the next command. Default: no limit.
  pub max_retries: Option<u32>,
  /// The first reconnect delay. Default 50.
  pub retry_base_delay_ms: Option<u32>,
  /// The largest reconnect delay. Default 2000.
  pub retry_max_delay_ms: Option<u32>,
  /// Connect to a Redis Cluster. Default `REDIS_CLUSTER=true` or false.
  pub cluster: Option<bool>,
  /// TLS settings (used with `rediss://`).
  pub tls: Option<TlsOptions>,
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
  pub tls_ca_file: Option<String>,
  pub tls_reject_unauthorized: bool,
  pub tls_servername: Option<String>,
}

pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

fn env_nonempty(name: &str) -> Option<String> {
  std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn millis(value: Option<u32>, default: u64, name: &str, allow_zero: bool) -> napi::Result<Duration> {
  match value {
    None => Ok(Duration::from_millis(default)),
    Some(0) if !allow_zero => Err(type_error(format!("{name} must be a positive number of milliseconds"))),
    Some(ms) => Ok(Duration::from_millis(ms as u64)),
  }
}

impl ClientConfig {
  /// Merges explicit options over the environment and checks them.
  pub fn resolve(options: &RedisOptions) -> napi::Result<Self> {
    let url = options
      .url
      .clone()
      .or_else(|| env_nonempty("REDIS_URL"))
      .unwrap_or_else(|| DEFAULT_URL.to_string());
    let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
    if !scheme_ok {
      return Err(type_error(format!(
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
      return Err(type_error("retryMaxDelayMs must not be smaller than retryBaseDelayMs"));
    }
    let tls = options.tls.clone().unwrap_or_default();
    Ok(Self {
      url,
      key_prefix,
      connect_timeout: millis(options.connect_timeout_ms, 2000, "connectTimeoutMs", false)?,
      command_timeout: millis(options.command_timeout_ms, 2000, "commandTimeoutMs", false)?,
      max_retries: options.max_retries,
      retry_base_delay,
      retry_max_delay,
      cluster,
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
#[napi(object)]
pub struct BullMqConnection {
  pub host: String,
  pub port: u32,
  pub username: Option<String>,
  pub password: Option<String>,
  pub db: u32,
  /// Present for `rediss://` (with `ca` when a CA file is configured), otherwise absent.
  pub tls: Option<BullMqTls>,
}

/// TLS part of the BullMQ connection options.
#[napi(object)]
pub struct BullMqTls {
  pub ca: Option<String>,
  pub reject_unauthorized: bool,
  pub servername: Option<String>,
}

/// The URL as redis-rs parses it (the parser the connection itself uses).
pub fn connection_info(url: &str) -> napi::Result<redis::ConnectionInfo> {
  redis::IntoConnectionInfo::into_connection_info(url)
    .map_err(|e| type_error(format!("invalid Redis URL {}: {e}", redact(url))))
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
  pub fn bullmq_connection(&self) -> napi::Result<BullMqConnection> {
    let info = connection_info(&self.url)?;
    let (host, port) = match info.addr() {
      redis::ConnectionAddr::Tcp(host, port) | redis::ConnectionAddr::TcpTls { host, port, .. } => {
        (host.clone(), *port)
      }
      _ => return Err(type_error("BullMQ needs a TCP Redis URL")),
    };
    let settings = info.redis_settings();
    let tls = if self.is_tls() {
      let ca = match &self.tls_ca_file {
        Some(f) => {
          Some(std::fs::read_to_string(f).map_err(|e| type_error(format!("cannot read tls.caFile {f}: {e}")))?)
        }
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
