//! Connection events (`onRedisEvent`): delivered to every open channel with
//! the completions, so they reach JS on the same batched wake-up.

use std::sync::{Mutex, Weak};

use once_cell::sync::Lazy;

use crate::boundary::ChannelInner;

/// One event as `onRedisEvent` listeners see it.
#[derive(Clone, Debug)]
pub struct RedisEvent {
  pub kind: &'static str,
  pub error: Option<String>,
  pub attempt: Option<u32>,
  pub delay_ms: Option<u32>,
}

impl RedisEvent {
  pub fn simple(kind: &'static str) -> Self {
    Self {
      kind,
      error: None,
      attempt: None,
      delay_ms: None,
    }
  }

  pub fn error(message: &str) -> Self {
    Self {
      kind: "error",
      error: Some(crate::errors::redact(message)),
      attempt: None,
      delay_ms: None,
    }
  }

  pub fn reconnecting(attempt: u32, delay: std::time::Duration) -> Self {
    Self {
      kind: "reconnecting",
      error: None,
      attempt: Some(attempt),
      delay_ms: Some(delay.as_millis() as u32),
    }
  }
}

static SUBSCRIBERS: Lazy<Mutex<Vec<Weak<ChannelInner>>>> = Lazy::new(|| Mutex::new(Vec::new()));

/// Registers a channel to receive events until it is dropped.
pub fn subscribe(channel: Weak<ChannelInner>) {
  SUBSCRIBERS.lock().unwrap().push(channel);
}

/// Sends an event to every live channel.
pub fn emit(event: RedisEvent) {
  let mut subscribers = SUBSCRIBERS.lock().unwrap();
  subscribers.retain(|weak| match weak.upgrade() {
    Some(channel) => {
      channel.push_event(event.clone());
      true
    }
    None => false,
  });
}
