//! Exports about the process-wide client: configuration, status, BullMQ's
//! options, this process's command figures and the Lua scripts.

use napi_derive::napi;

use super::{js_error, type_error};
use crate::core::{client, config, metrics, scripts};

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
  /// A cluster behind NAT or in Docker: `{ 'announced-host:port': { host, port } }`,
  /// the address to connect to for each address the cluster announces.
  pub nat_map: Option<std::collections::HashMap<String, NatTarget>>,
}

/// Where to connect for one announced cluster address.
#[napi(object)]
#[derive(Clone, Debug)]
pub struct NatTarget {
  pub host: String,
  pub port: u32,
}

impl From<RedisOptions> for config::Options {
  fn from(o: RedisOptions) -> Self {
    config::Options {
      url: o.url,
      key_prefix: o.key_prefix,
      connect_timeout_ms: o.connect_timeout_ms,
      command_timeout_ms: o.command_timeout_ms,
      max_retries: o.max_retries,
      retry_base_delay_ms: o.retry_base_delay_ms,
      retry_max_delay_ms: o.retry_max_delay_ms,
      cluster: o.cluster,
      tls: o.tls.map(|t| config::TlsOptions {
        ca_file: t.ca_file,
        reject_unauthorized: t.reject_unauthorized,
        servername: t.servername,
      }),
      nat_map: o.nat_map.map(|map| {
        map
          .into_iter()
          .map(|(from, to)| (from, to.host, u16::try_from(to.port).unwrap_or(0)))
          .collect()
      }),
    }
  }
}

/// Stores options for the client; refused once a client with other options is open.
#[napi]
pub fn configure(options: RedisOptions) -> napi::Result<()> {
  client::configure(options.into()).map_err(js_error)
}

/// Whether `options` would give a configuration other than the one in force
/// (the open client's, else the next one's).
#[napi]
pub fn config_differs(options: RedisOptions) -> napi::Result<bool> {
  let wanted = config::ClientConfig::resolve(&options.into()).map_err(js_error)?;
  let current = client::effective_config().map_err(js_error)?;
  Ok(format!("{wanted:?}") != format!("{current:?}"))
}

/// The client's connection status.
#[napi(object)]
pub struct ConnectionStatus {
  /// `idle`, `connecting`, `ready`, `reconnecting` or `closed`.
  pub state: String,
  /// Connection attempts after the first one (failed attempts included).
  pub reconnects: u32,
  /// The last connection error, with any password removed; null when none.
  pub last_error: Option<String>,
  /// On a cluster: every node of the slot map, masters first.
  pub nodes: Option<Vec<ClusterNode>>,
}

/// One node of a cluster.
#[napi(object)]
pub struct ClusterNode {
  /// `host:port` (after the natMap).
  pub address: String,
  /// `master` (serving slots), `replica`, or `master (no slots)`.
  pub role: String,
  /// The state of this client's connection to it (`idle` when it has none).
  pub state: String,
  /// The slot ranges it serves, `[first, last]` inclusive.
  pub slots: Vec<Vec<u32>>,
  /// The cluster has flagged it failed.
  pub failed: bool,
}

fn cluster_nodes_of(cluster: &crate::core::cluster::router::Cluster) -> Vec<ClusterNode> {
  cluster
    .nodes()
    .into_iter()
    .map(|n| ClusterNode {
      address: n.address,
      role: n.role.to_string(),
      state: n.state.to_string(),
      slots: n.slots.iter().map(|&(a, b)| vec![a as u32, b as u32]).collect(),
      failed: n.failed,
    })
    .collect()
}

/// The cluster's nodes, masters first; null for a single server (or a closed client).
#[napi]
pub fn cluster_nodes() -> Option<Vec<ClusterNode>> {
  let client = client::existing()?;
  Some(cluster_nodes_of(client.cluster()?))
}

/// The client's connection status (`idle` before the first command, `closed`
/// after `closeRedisConnection()` until the next command).
#[napi]
pub fn connection_status() -> ConnectionStatus {
  match client::latest() {
    Some(c) => {
      let s = c.status();
      ConnectionStatus {
        state: s.state.to_string(),
        reconnects: s.reconnects as u32,
        last_error: s.last_error,
        nodes: c.cluster().map(|cluster| cluster_nodes_of(cluster)),
      }
    }
    None => ConnectionStatus {
      state: "idle".into(),
      reconnects: 0,
      last_error: None,
      nodes: None,
    },
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

/// BullMQ's connection options, parsed from the configured URL.
#[napi]
pub fn bullmq_connection() -> napi::Result<BullMqConnection> {
  let c = client::effective_config()
    .and_then(|config| config.bullmq_connection())
    .map_err(js_error)?;
  Ok(BullMqConnection {
    host: c.host,
    port: c.port,
    username: c.username,
    password: c.password,
    db: c.db,
    tls: c.tls.map(|t| BullMqTls {
      ca: t.ca,
      reject_unauthorized: t.reject_unauthorized,
      servername: t.servername,
    }),
  })
}

/// The key prefix in force (`keyPrefix` / `REDIS_KEY_PREFIX`).
#[napi]
pub fn key_prefix() -> napi::Result<String> {
  let prefix = client::key_prefix().map_err(js_error)?;
  Ok(String::from_utf8_lossy(&prefix).into_owned())
}

/// This process's command figures since it started (or since `resetCommandMetrics`).
#[napi(object)]
pub struct CommandFigures {
  /// Commands that finished: answered, failed or timed out.
  pub commands: f64,
  /// Of those, error replies, timeouts and commands lost with their connection.
  pub errors: f64,
  /// Median latency in milliseconds (upper edge of its histogram bucket, within 12.5 %).
  pub p50_ms: f64,
  /// 99th-percentile latency in milliseconds (same resolution).
  pub p99_ms: f64,
}

/// This process's command counts and latency quantiles, from the histogram kept in Rust.
#[napi]
pub fn command_metrics() -> CommandFigures {
  let f = metrics::figures();
  CommandFigures {
    commands: f.commands,
    errors: f.errors,
    p50_ms: f.p50_ms,
    p99_ms: f.p99_ms,
  }
}

/// Sets the command figures back to zero.
#[napi]
pub fn reset_command_metrics() {
  metrics::reset();
}

/// The source of a script by name (`releaseLock`, `acquireLock`, `extendLock`, `slidingWindow`, …).
#[napi]
pub fn script_source(name: String) -> napi::Result<&'static str> {
  scripts::source_of(&name).ok_or_else(|| type_error(format!("no script named {name}")))
}

/// The SHA1 of a script's source, as EVALSHA wants it.
#[napi]
pub fn script_sha(name: String) -> napi::Result<String> {
  scripts::sha_of(&name).ok_or_else(|| type_error(format!("no script named {name}")))
}
