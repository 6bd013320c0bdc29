//! `@yesgoddess/redis`: the Redis layer of the YesGoddess backend as a Node.js
//! native addon. Rust owns the client, the protocol, the Lua scripts and the
//! key scheme; the JS layer (`index.js`, `lib/`) adds only what the FFI cannot
//! express well (promises, user callbacks, Request/Response).
//!
//! Two layers, dependencies pointing down only:
//!
//! ```text
//! binding/   the N-API layer: exports, wire codes, Channel (submit/drain),
//!            the JS thread's socket reader; every unsafe block lives here
//! core/      no N-API below this line, so it has cargo tests of its own:
//!   client, request        the process-wide client, one submit's requests
//!   connection, tls        the transport (plain or TLS) and its Owner trait
//!   reply, events          the reply queue and its waker interface
//!   command, keyscheme     THE command table; key builders, TTLs, escaping
//!   config, metrics, scripts
//!   resp, error            RESP codec; Failure and redaction
//! ```

#![deny(clippy::all)]
// The `#[napi]` exports are reached from JavaScript only: in the unit-test
// build nothing calls them.
#![cfg_attr(test, allow(dead_code))]

mod binding;
mod core;
