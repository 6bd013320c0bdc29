//! The process-wide client: its configuration, its link(s) to Redis (see
//! `link.rs`: made lazily on the first command, re-made after a loss, closed
//! gracefully on request), and the registry that makes one client per process.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use once_cell::sync::Lazy;

use super::cluster::router::Cluster;
use super::config::{password_of, ClientConfig, Options};
use super::connection::Pending;
use super::error::{register_secret, Failure, FailureKind};
pub use super::link::Transport;
use super::link::{Endpoint, Link, Requests, Status};
pub use super::runtime::RUNTIME;

pub struct Client {
  pub config: Arc<ClientConfig>,
  topology: Topology,
  /// Requests submitted and not yet settled, over every link.
  requests: Arc<Requests>,
}

/// One server, or a cluster.
enum Topology {
  Single(Arc<Link>),
  Cluster(Arc<Cluster>),
}

impl Client {
  pub fn new(config: ClientConfig) -> Result<Arc<Self>, Failure> {
    let config = Arc::new(config);
    let requests = Arc::new(Requests::default());
    let topology = if config.cluster {
      Topology::Cluster(Cluster::new(Arc::clone(&config), Arc::clone(&requests))?)
    } else {
      let endpoint = Endpoint::from_config(&config)?;
      Topology::Single(Link::new(Arc::clone(&config), endpoint, Arc::clone(&requests)))
    };
    Ok(Arc::new(Self {
      config,
      topology,
      requests,
    }))
  }

  pub fn status(&self) -> Status {
    match &self.topology {
      Topology::Single(link) => link.status(),
      Topology::Cluster(cluster) => cluster.status(),
    }
  }

  pub fn is_closed(&self) -> bool {
    match &self.topology {
      Topology::Single(link) => link.is_closed(),
      Topology::Cluster(cluster) => cluster.is_closed(),
    }
  }

  /// True while a lost connection is being made again (not before the first
  /// one). On a cluster each request's node decides (see `Cluster`).
  pub fn is_reconnecting(&self) -> bool {
    self.link().is_some_and(|link| link.is_reconnecting())
  }

  /// The failure a degraded request gets at once while the connection is re-made.
  pub fn reconnecting_failure(&self) -> Failure {
    match self.link() {
      Some(link) => link.reconnecting_failure(),
      None => Failure::new(FailureKind::Connection, "Redis is unreachable (reconnecting)"),
    }
  }

  /// The connection of a single server, when it is up (the synchronous send path).
  pub fn ready_fast(&self) -> Option<Transport> {
    self.link().and_then(|link| link.ready_fast())
  }

  /// The one link of a single server (`None` on a cluster).
  pub fn link(&self) -> Option<&Arc<Link>> {
    match &self.topology {
      Topology::Single(link) => Some(link),
      Topology::Cluster(_) => None,
    }
  }

  /// Every server link: the one of a single server, or a cluster's links.
  pub fn links(&self) -> Vec<Arc<Link>> {
    match &self.topology {
      Topology::Single(link) => vec![Arc::clone(link)],
      Topology::Cluster(cluster) => cluster.links(),
    }
  }

  /// The cluster, when the client talks to one.
  pub fn cluster(&self) -> Option<&Arc<Cluster>> {
    match &self.topology {
      Topology::Single(_) => None,
      Topology::Cluster(cluster) => Some(cluster),
    }
  }

  /// Sends requests that were made while no connection was ready (see `Link::send_later`).
  pub async fn send_later(
    self: Arc<Self>,
    bytes: Vec<u8>,
    pending: Vec<Pending>,
    deadline: tokio::time::Instant,
    degraded: bool,
  ) {
    match &self.topology {
      Topology::Single(link) => Arc::clone(link).send_later(bytes, pending, deadline, degraded).await,
      Topology::Cluster(cluster) => cluster.send_later(pending, degraded),
    }
  }

  /// Counts `n` requests in flight (for the graceful close).
  pub fn begin_requests(&self, n: usize) {
    self.requests.begin(n);
  }

  /// Waits for the requests in flight (up to the command timeout), then closes.
  pub async fn close(self: &Arc<Self>) {
    self
      .requests
      .drained(Instant::now() + self.config.command_timeout)
      .await;
    match &self.topology {
      Topology::Single(link) => link.close(),
      Topology::Cluster(cluster) => {
        let was_open = !cluster.is_closed();
        cluster.close();
        if was_open {
          super::reply::broadcast(super::events::RedisEvent::simple("end"));
        }
      }
    }
  }
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
    Some(c) => Ok((*c.config).clone()),
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

/// The key prefix in force when the client in force (the open one, else the
/// next one) is a cluster's, else `None`: keys of one script must then share a slot.
pub fn cluster_key_prefix() -> Result<Option<Vec<u8>>, Failure> {
  let registry = REGISTRY.read().unwrap();
  match registry.client.as_ref().filter(|c| !c.is_closed()) {
    Some(c) => Ok(c.config.cluster.then(|| c.config.key_prefix.clone())),
    None => {
      let config = ClientConfig::resolve(&registry.options.clone().unwrap_or_default())?;
      Ok(config.cluster.then_some(config.key_prefix))
    }
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
