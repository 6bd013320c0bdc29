//! The N-API layer: everything JavaScript calls, over the core. Core failures
//! become JS errors here (`Invalid` → `InvalidArg`, which the JS layer throws as
//! a `TypeError` with `code: 'EINVALID'`); the wire codes the JS layer shares
//! with Rust are exported from here, never copied by hand.

mod channel;
mod client;
mod json;
mod keys;

use crate::core::error::{Failure, FailureKind};

/// A core failure as a JS error: bad input is `InvalidArg` (a `TypeError` in
/// JS), anything else a plain error. Messages are already redacted.
pub fn js_error(failure: Failure) -> napi::Error {
  let status = match failure.kind {
    FailureKind::Invalid => napi::Status::InvalidArg,
    _ => napi::Status::GenericFailure,
  };
  napi::Error::new(status, failure.message)
}

/// `InvalidArg` with `message` (a `TypeError` in JS).
pub fn type_error(message: impl AsRef<str>) -> napi::Error {
  js_error(Failure::new(FailureKind::Invalid, message))
}
