//! `@yesgoddess/redis`: the Redis layer of the YesGoddess backend as a Node.js
//! native addon. Rust owns the client, the protocol and the key scheme; the JS
//! layer (`index.js`) adds only what the FFI cannot express well (promises,
//! listeners, async iterators).

#![deny(clippy::all)]
// The `#[napi]` exports are reached from JavaScript only: in the unit-test
// build nothing calls them.
#![cfg_attr(test, allow(dead_code))]

mod boundary;
mod client;
mod cluster;
mod config;
mod connection;
mod errors;
mod events;
mod keys;
mod monitor;
mod reply;
mod resp;
mod scripts;
mod tls;

use napi_derive::napi;

pub use boundary::Channel;
pub use config::{BullMqConnection, RedisOptions};

/// Stores options for the client; refused once a client with other options is open.
#[napi]
pub fn configure(options: RedisOptions) -> napi::Result<()> {
  client::configure(options)
}

/// Whether `options` would give a configuration other than the one in force
/// (the open client's, else the next one's).
#[napi]
pub fn config_differs(options: RedisOptions) -> napi::Result<bool> {
  let wanted = config::ClientConfig::resolve(&options)?;
  Ok(format!("{:?}", wanted) != format!("{:?}", client::effective_config()?))
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
      }
    }
    None => ConnectionStatus {
      state: "idle".into(),
      reconnects: 0,
      last_error: None,
    },
  }
}

/// BullMQ's connection options, parsed from the configured URL.
#[napi]
pub fn bullmq_connection() -> napi::Result<BullMqConnection> {
  client::effective_config()?.bullmq_connection()
}

/// The key prefix in force (`keyPrefix` / `REDIS_KEY_PREFIX`).
#[napi]
pub fn key_prefix() -> napi::Result<String> {
  Ok(String::from_utf8_lossy(&client::key_prefix()?).into_owned())
}

/// The key of a lock's fencing counter (same hash slot as the lock, with `keyPrefix` in force).
#[napi]
pub fn fencing_key(key: String) -> napi::Result<String> {
  Ok(keys::fencing_key_for(&client::key_prefix()?, &key))
}
