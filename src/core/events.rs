//! Connection events (`onRedisEvent`): delivered to every reply queue with the
//! completions, so they reach JS on the same batched wake-up (`reply::broadcast`).

/// One event as `onRedisEvent` listeners see it.
#[derive(Clone, Debug)]
pub struct RedisEvent {
  pub kind: &'static str,
  pub error: Option<String>,
  pub attempt: Option<u32>,
  pub delay_ms: Option<u32>,
  /// On a cluster: the node (`host:port`) the event is about.
  pub node: Option<String>,
}

impl RedisEvent {
  pub fn simple(kind: &'static str) -> Self {
    Self {
      kind,
      error: None,
      attempt: None,
      delay_ms: None,
      node: None,
    }
  }

  pub fn error(message: &str) -> Self {
    Self {
      kind: "error",
      error: Some(super::error::redact(message)),
      attempt: None,
      delay_ms: None,
      node: None,
    }
  }

  pub fn reconnecting(attempt: u32, delay: std::time::Duration) -> Self {
    Self {
      kind: "reconnecting",
      error: None,
      attempt: Some(attempt),
      delay_ms: Some(delay.as_millis() as u32),
      node: None,
    }
  }

  /// The same event, about `node` (when it is set).
  pub fn about(mut self, node: Option<&str>) -> Self {
    self.node = node.map(str::to_string);
    self
  }
}
