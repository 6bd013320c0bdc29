//! Redis Cluster, the parts that need no I/O: hash slots (`slot`), where a
//! command goes and how a multi-key command splits per slot (`command`), and
//! the slot map parsed from CLUSTER SHARDS / CLUSTER SLOTS with a natMap
//! (`topology`). No N-API here, and nothing here opens a socket (the tests do,
//! against private redis-servers: `testing`). The transport and the client
//! wire these in; until then nothing outside the tests calls them.

pub mod command;
pub mod router;
pub mod slot;
pub mod topology;

#[cfg(test)]
pub(crate) mod testing;
