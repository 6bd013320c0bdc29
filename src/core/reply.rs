//! The reply queue: settled requests and events waiting for their owner (a JS
//! thread's channel) to drain them. Producers — a reader pass, a batch failed
//! at once — stage entries per queue and deliver them with one lock and at most
//! one wake-up per queue. No N-API here: the binding gives each queue a `Wake`
//! closure and turns entries into JS values when it drains.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use once_cell::sync::Lazy;
use redis::Value;

use super::error::{Failure, FailureKind};
use super::events::RedisEvent;
use super::resp::Frame;

/// The drained value types (`type` in the drain metadata).
pub const VALUE_TEXT: i32 = 0;
pub const VALUE_NUMBER: i32 = 1;
pub const VALUE_NULL: i32 = 2;
pub const VALUE_EXTRA: i32 = 3;
pub const VALUE_BYTES: i32 = 4;
pub const VALUE_OK: i32 = 5;

/// How a drained value is encoded (`type` in the drain metadata).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
  /// UTF-8 text of `num` bytes in `data`.
  Text = VALUE_TEXT as u8,
  /// The number `num`.
  Number = VALUE_NUMBER as u8,
  /// `null`.
  Null = VALUE_NULL as u8,
  /// `extras[num]` (arrays, events, values too long for `data`).
  Extra = VALUE_EXTRA as u8,
  /// A Buffer of `num` bytes in `data`.
  Bytes = VALUE_BYTES as u8,
  /// The string `'OK'`.
  Ok = VALUE_OK as u8,
}

/// How a reply is turned into a JS value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
  Strings,
  Buffers,
  Scan,
  /// The reply is dropped (the `ASKING` sent before a command after an `ASK` redirect).
  Discard,
}

/// Something that needs a real JS value made for it in `drain`.
pub enum Extra {
  Reply(Value, ReplyMode),
  Event(RedisEvent),
}

/// One settled request or event. Text values live in the queue's arena.
pub struct Entry {
  pub tag: f64,
  pub kind: ValueType,
  pub num: f64,
  pub extra: Option<Box<Extra>>,
}

/// Settled requests of one channel, with the bytes of their text values.
#[derive(Default)]
pub struct Batch {
  entries: Vec<Entry>,
  arena: Vec<u8>,
}

pub fn tag(id: u32) -> f64 {
  id as f64 * 8.0
}

impl Batch {
  fn text(&mut self, tag: f64, kind: ValueType, bytes: &[u8]) {
    self.arena.extend_from_slice(bytes);
    self.entries.push(Entry {
      tag,
      kind,
      num: bytes.len() as f64,
      extra: None,
    });
  }

  fn plain(&mut self, tag: f64, kind: ValueType, num: f64) {
    self.entries.push(Entry {
      tag,
      kind,
      num,
      extra: None,
    });
  }

  pub fn extra(&mut self, tag: f64, extra: Extra) {
    self.entries.push(Entry {
      tag,
      kind: ValueType::Extra,
      num: 0.0,
      extra: Some(Box::new(extra)),
    });
  }

  fn failure(&mut self, id: u32, failure: &Failure) {
    self.text(
      tag(id) + failure.kind as u32 as f64,
      ValueType::Text,
      failure.message.as_bytes(),
    );
  }

  /// A reply parsed by our own RESP reader.
  fn frame(&mut self, id: u32, mode: ReplyMode, buf: &[u8], frame: Frame) {
    match frame {
      Frame::Bulk(r) if mode == ReplyMode::Buffers => self.text(tag(id), ValueType::Bytes, &buf[r]),
      Frame::Bulk(r) => self.text(tag(id), ValueType::Text, &buf[r]),
      Frame::Simple(r) if &buf[r.clone()] == b"OK" => self.plain(tag(id), ValueType::Ok, 0.0),
      Frame::Simple(r) => self.text(tag(id), ValueType::Text, &buf[r]),
      Frame::Int(n) => self.plain(tag(id), ValueType::Number, n as f64),
      Frame::Nil => self.plain(tag(id), ValueType::Null, 0.0),
      Frame::Error(r) => {
        let failure = Failure::new(FailureKind::Reply, String::from_utf8_lossy(&buf[r]));
        self.failure(id, &failure)
      }
      Frame::Array(items) => self.extra(tag(id), Extra::Reply(Value::Array(items), mode)),
    }
  }
}

/// Replies collected by one producer (a reader pass, a batch) for one or more
/// channels, delivered with one lock and at most one wake-up per channel.
#[derive(Default)]
pub struct Staged {
  groups: Vec<(Arc<ReplyQueue>, Batch)>,
}

impl Staged {
  fn batch(&mut self, channel: &Arc<ReplyQueue>) -> &mut Batch {
    let index = match self.groups.iter().rposition(|(c, _)| Arc::ptr_eq(c, channel)) {
      Some(i) => i,
      None => {
        self.groups.push((Arc::clone(channel), Batch::default()));
        self.groups.len() - 1
      }
    };
    &mut self.groups[index].1
  }

  pub fn reply(&mut self, channel: &Arc<ReplyQueue>, id: u32, mode: ReplyMode, buf: &[u8], frame: Frame) {
    self.batch(channel).frame(id, mode, buf, frame);
  }

  pub fn failure(&mut self, channel: &Arc<ReplyQueue>, id: u32, failure: &Failure) {
    self.batch(channel).failure(id, failure);
  }

  pub fn done(&mut self, channel: &Arc<ReplyQueue>, id: u32) {
    self.batch(channel).plain(tag(id), ValueType::Null, 0.0);
  }

  /// A reply made here rather than parsed (a merged reply of a split command).
  pub fn extra(&mut self, channel: &Arc<ReplyQueue>, id: u32, extra: Extra) {
    self.batch(channel).extra(tag(id), extra);
  }

  pub fn number(&mut self, channel: &Arc<ReplyQueue>, id: u32, n: f64) {
    self.batch(channel).plain(tag(id), ValueType::Number, n);
  }

  pub fn ok(&mut self, channel: &Arc<ReplyQueue>, id: u32) {
    self.batch(channel).plain(tag(id), ValueType::Ok, 0.0);
  }

  /// Moves everything staged into the channels' queues and wakes them.
  pub fn deliver(&mut self) {
    for (channel, batch) in self.groups.iter_mut() {
      if !batch.entries.is_empty() {
        channel.append(batch);
      }
    }
    if self.groups.len() > 4 {
      self.groups.clear();
    }
  }
}

/// The settled entries of one queue, with the bytes of their text values.
pub struct Queue {
  pub entries: VecDeque<Entry>,
  pub arena: Vec<u8>,
  /// Bytes of `arena` already drained.
  pub head: usize,
  /// Its owner has been woken and has not drained everything yet.
  pub woken: bool,
}

/// How a queue wakes its owner (the binding wraps a threadsafe function in it).
pub type Wake = Box<dyn Fn() + Send + Sync>;

/// Where the replies of one owner (a JS thread's channel) go: requests carry
/// it, producers append to it, and it calls `wake` once per batch.
pub struct ReplyQueue {
  pub queue: Mutex<Queue>,
  /// `None` while the owner is detached (after a close), so that a closed
  /// client leaves no handle behind.
  pub wake: Mutex<Option<Wake>>,
  /// The key prefix SCAN replies are stripped of.
  pub scan_prefix: Mutex<Vec<u8>>,
}

impl Default for ReplyQueue {
  fn default() -> Self {
    Self {
      queue: Mutex::new(Queue {
        entries: VecDeque::new(),
        arena: Vec::new(),
        head: 0,
        woken: false,
      }),
      wake: Mutex::new(None),
      scan_prefix: Mutex::new(Vec::new()),
    }
  }
}

impl ReplyQueue {
  fn append(&self, batch: &mut Batch) {
    let mut queue = self.queue.lock().unwrap();
    queue.entries.extend(batch.entries.drain(..));
    queue.arena.extend_from_slice(&batch.arena);
    batch.arena.clear();
    if !queue.woken {
      let wake = self.wake.lock().unwrap();
      if let Some(wake) = wake.as_ref() {
        queue.woken = true;
        drop(queue);
        wake();
      }
    }
  }

  /// Events go to attached channels only: a detached one has nobody waiting.
  pub fn push_event(&self, event: RedisEvent) {
    if self.wake.lock().unwrap().is_none() {
      return;
    }
    let mut batch = Batch::default();
    batch.extra(-1.0, Extra::Event(event));
    self.append(&mut batch);
  }
}

static SUBSCRIBERS: Lazy<Mutex<Vec<Weak<ReplyQueue>>>> = Lazy::new(|| Mutex::new(Vec::new()));

/// Registers a queue to receive connection events until it is dropped.
pub fn subscribe(queue: Weak<ReplyQueue>) {
  SUBSCRIBERS.lock().unwrap().push(queue);
}

/// Sends a connection event to every live queue.
pub fn broadcast(event: RedisEvent) {
  let mut subscribers = SUBSCRIBERS.lock().unwrap();
  subscribers.retain(|weak| match weak.upgrade() {
    Some(queue) => {
      queue.push_event(event.clone());
      true
    }
    None => false,
  });
}
