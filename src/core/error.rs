//! The bottom layer: why a request failed (`Failure`, `FailureKind`, the codes
//! JS sees) and password redaction for every message. No N-API here: the
//! binding turns a `Failure` into a JS error.

use std::sync::RwLock;

use once_cell::sync::Lazy;

/// Secrets (passwords from configured URLs) that must never appear in a message.
static SECRETS: Lazy<RwLock<Vec<String>>> = Lazy::new(|| RwLock::new(Vec::new()));

/// Remembers a secret so that `redact` removes it from every later message.
pub fn register_secret(secret: &str) {
  if secret.len() < 2 {
    return;
  }
  let mut secrets = SECRETS.write().unwrap();
  if !secrets.iter().any(|s| s == secret) {
    secrets.push(secret.to_string());
  }
}

/// Removes the password of any `scheme://user:password@` URL and every registered secret.
pub fn redact(message: &str) -> String {
  let mut out = String::with_capacity(message.len());
  let mut rest = message;
  while let Some(pos) = rest.find("://") {
    let (head, tail) = rest.split_at(pos + 3);
    out.push_str(head);
    let end = tail
      .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
      .unwrap_or(tail.len());
    let authority = &tail[..end];
    match authority.rfind('@') {
      Some(at) => {
        let userinfo = &authority[..at];
        match userinfo.split_once(':') {
          Some((user, _)) => {
            out.push_str(user);
            out.push_str(":***");
          }
          None => out.push_str(userinfo),
        }
        out.push_str(&authority[at..]);
      }
      None => out.push_str(authority),
    }
    rest = &tail[end..];
  }
  out.push_str(rest);
  let secrets = SECRETS.read().unwrap();
  for secret in secrets.iter() {
    if out.contains(secret.as_str()) {
      out = out.replace(secret.as_str(), "***");
    }
  }
  out
}

/// Why a request failed, as seen by JS (`code` on the rejected error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
  /// The server answered with an error reply (`ReplyError`).
  Reply = 1,
  /// No reply within `commandTimeoutMs` (`ETIMEDOUT`).
  Timeout = 2,
  /// The connection could not be made or was lost (`ECONNECTION`).
  Connection = 3,
  /// The server refused our credentials (`EAUTH`).
  Auth = 4,
  /// The client was closed (`ECLOSED`).
  Closed = 5,
  /// Bad input found before anything was sent (`EINVALID`, thrown as `TypeError`).
  Invalid = 6,
  /// A misuse that is not a type problem (configuring an open client): a plain `Error`.
  Usage = 7,
}

/// A request's failure: its kind and a message with no secret in it.
#[derive(Clone, Debug)]
pub struct Failure {
  pub kind: FailureKind,
  pub message: String,
  /// Trying again cannot help (refused credentials, a database that cannot be
  /// selected): requests waiting for a connection fail at once with it.
  pub fatal: bool,
}

impl Failure {
  pub fn new(kind: FailureKind, message: impl AsRef<str>) -> Self {
    Self {
      kind,
      message: redact(message.as_ref()),
      fatal: false,
    }
  }

  /// A failure that another attempt would only repeat.
  pub fn fatal(kind: FailureKind, message: impl AsRef<str>) -> Self {
    Self {
      fatal: true,
      ..Self::new(kind, message)
    }
  }
}
