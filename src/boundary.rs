//! The JS boundary. Calls made in one JS tick cross it together: the JS layer
//! flushes them with one synchronous `Channel.submit()`; on the plain-TCP path
//! Rust encodes them and writes them to the socket right there (no thread hop),
//! and the replies come back through one queue that JS empties with
//! `Channel.drain()` when a single weak threadsafe function wakes it. No
//! promise, threadsafe function or per-element N-API call is made per command.
//!
//! Submit: `meta` (Int32Array) holds `id, op, argc, len…` per request; a
//! `len >= 0` is the UTF-16 length of the next string argument in `text` (all
//! string arguments concatenated), a `len < 0` is Buffer `-len - 1` of `buffers`.
//!
//! Drain: Rust writes into the JS-owned `meta` (Float64Array) `count, more`
//! and then `tag, type, num` per entry, and the bytes of text values into the
//! JS-owned `data` Buffer, one after the other. `tag = id * 8 + kind` (kind 0:
//! a reply; 1–6: a `FailureKind`, the value is its message) or `-1` for an
//! event. Types: see `ValueType`.

use std::ops::Range;
use std::ptr;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use redis::Value;
use tokio::time::Instant;

use crate::client::{self, Client};
use crate::connection::{CommandName, Pending};
use crate::errors::{Failure, FailureKind};
use crate::events::RedisEvent;
use crate::keys;
use crate::reply::{self, Extra, ReplyMode, ReplyQueue, Staged, ValueType};
use crate::resp;

/// What a request asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
  /// A command; bulk replies as strings.
  Call = 1,
  /// A command; bulk replies as Buffers.
  CallBuffer = 2,
  /// `SCAN cursor [MATCH m] [COUNT n] [TYPE t]` with `keyPrefix` added to the
  /// pattern and taken off the keys.
  Scan = 3,
  /// Close the client gracefully.
  Close = 4,
}

/// Request flags, or-ed into the op code (`op | flags`).
/// The caller has a degraded answer for a failure (a cache miss, a rate-limit
/// failure policy, an unhealthy probe): while a lost connection is being made
/// again, fail at once instead of waiting for it.
#[napi]
pub const REQUEST_DEGRADED: i32 = 16;
/// The package's own EVALSHA, which falls back to EVAL by itself: a `NOSCRIPT`
/// reply is not counted as a failed command.
#[napi]
pub const REQUEST_SCRIPT_PROBE: i32 = 32;
/// The op codes (`Op`), for the JS layer.
#[napi]
pub const OP_CALL: i32 = 1;
#[napi]
pub const OP_CALL_BUFFER: i32 = 2;
#[napi]
pub const OP_SCAN: i32 = 3;
#[napi]
pub const OP_CLOSE: i32 = 4;
const OP_MASK: i32 = 15;

impl Op {
  fn from_code(code: i32) -> Option<Self> {
    Some(match code & OP_MASK {
      1 => Op::Call,
      2 => Op::CallBuffer,
      3 => Op::Scan,
      4 => Op::Close,
      _ => return None,
    })
  }
}

// The drain's value types and failure kinds, for the JS layer (one source:
// these constants; `ValueType` and `FailureKind` are checked against them).
#[napi]
pub const VALUE_TEXT: i32 = reply::VALUE_TEXT;
#[napi]
pub const VALUE_NUMBER: i32 = reply::VALUE_NUMBER;
#[napi]
pub const VALUE_NULL: i32 = reply::VALUE_NULL;
#[napi]
pub const VALUE_EXTRA: i32 = reply::VALUE_EXTRA;
#[napi]
pub const VALUE_BYTES: i32 = reply::VALUE_BYTES;
#[napi]
pub const VALUE_OK: i32 = reply::VALUE_OK;
#[napi]
pub const FAILURE_REPLY: i32 = 1;
#[napi]
pub const FAILURE_TIMEOUT: i32 = 2;
#[napi]
pub const FAILURE_CONNECTION: i32 = 3;
#[napi]
pub const FAILURE_AUTH: i32 = 4;
#[napi]
pub const FAILURE_CLOSED: i32 = 5;
#[napi]
pub const FAILURE_INVALID: i32 = 6;
const _: () = {
  assert!(FailureKind::Reply as i32 == FAILURE_REPLY);
  assert!(FailureKind::Timeout as i32 == FAILURE_TIMEOUT);
  assert!(FailureKind::Connection as i32 == FAILURE_CONNECTION);
  assert!(FailureKind::Auth as i32 == FAILURE_AUTH);
  assert!(FailureKind::Closed as i32 == FAILURE_CLOSED);
  assert!(FailureKind::Invalid as i32 == FAILURE_INVALID);
  // A tag is `id * 8 + kind`: every kind must fit below 8.
  assert!(FAILURE_INVALID < 8);
};

/// The JS function `Channel.attach` is given: a weak threadsafe function that never keeps Node alive.
type WakeFn = ThreadsafeFunction<(), Unknown<'static>, (), Status, false, true>;

/// The arguments of the requests of one submit, as byte ranges of one arena.
#[derive(Default)]
struct Args {
  bytes: Vec<u8>,
  ranges: Vec<Range<usize>>,
}

impl Args {
  fn get(&self, i: usize) -> &[u8] {
    &self.bytes[self.ranges[i].clone()]
  }
}

/// The JS layer's end of the boundary. One per loaded JS module instance; all
/// of them share the process-wide client.
#[napi]
pub struct Channel {
  inner: Arc<ReplyQueue>,
  /// Scratch space reused by every submit (JS thread only).
  scratch: Mutex<(Vec<u16>, Args, Vec<u8>)>,
}

#[napi]
impl Channel {
  /// A detached channel: `attach(wake)` before the first submit.
  #[napi(constructor)]
  #[allow(clippy::new_without_default)]
  pub fn new() -> Self {
    let inner = Arc::new(ReplyQueue::default());
    reply::subscribe(Arc::downgrade(&inner));
    Channel {
      inner,
      scratch: Mutex::new(Default::default()),
    }
  }

  /// `wake` is called (with no arguments, never keeping the process alive)
  /// when replies are waiting; it should call `drain()`.
  #[napi]
  pub fn attach(&self, wake: WakeFn) {
    let mut queue = self.inner.queue.lock().unwrap();
    let wake: reply::Wake = Box::new(move || {
      wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
    });
    *self.inner.wake.lock().unwrap() = Some(wake);
    if !queue.entries.is_empty() && !queue.woken {
      queue.woken = true;
      if let Some(wake) = self.inner.wake.lock().unwrap().as_ref() {
        wake();
      }
    }
  }

  /// Releases the wake function (after a close with nothing pending), so that
  /// no threadsafe function outlives the connection; `attach` starts again.
  #[napi]
  pub fn detach(&self) {
    let wake = self.inner.wake.lock().unwrap().take();
    drop(wake);
  }

  /// Submits `count` entries of `meta` (see the module docs). Never throws for
  /// one bad request: that request fails alone.
  #[napi]
  pub fn submit(&self, env: Env, meta: Unknown, count: u32, text: Unknown, buffers: Unknown) -> Result<()> {
    let raw_env = env.raw();
    // SAFETY: `meta` is a live Int32Array argument of this call (checked by
    // int32_slice); the slice is read only here, before control returns to JS.
    let meta = unsafe { int32_slice(raw_env, meta.raw(), count as usize)? };
    let mut scratch = self.scratch.lock().unwrap();
    let (units, args, wire) = &mut *scratch;
    // SAFETY: `text` is an argument of this call; read_utf16 checks it is a string.
    unsafe { read_utf16(raw_env, text.raw(), units)? };
    let buffers = buffers.raw();

    let client = client::current();
    let prefix: Vec<u8> = client.as_ref().map(|c| c.config.key_prefix.clone()).unwrap_or_default();
    let deadline = Instant::now() + client.as_ref().map(|c| c.config.command_timeout).unwrap_or_default();
    let direct = match &client {
      Ok(c) => c.ready_fast(),
      _ => None,
    };
    // Requests with a degraded answer fail at once while the connection is re-made.
    let unreachable = match &client {
      Ok(c) if direct.is_none() && c.is_reconnecting() => Some(c.reconnecting_failure()),
      _ => None,
    };
    let mut staged = Staged::default();
    let mut pending: Vec<Pending> = Vec::new();
    let mut close_ids = Vec::new();
    let mut all_degraded = true;
    wire.clear();

    let mut text_pos = 0usize;
    let mut i = 0usize;
    while i + 3 <= meta.len() {
      let (id, op_code, argc) = (meta[i] as u32, meta[i + 1], meta[i + 2].max(0) as usize);
      let lens = &meta[(i + 3).min(meta.len())..(i + 3 + argc).min(meta.len())];
      i += 3 + argc;
      args.bytes.clear();
      args.ranges.clear();
      let mut malformed = None;
      for &len in lens {
        let start = args.bytes.len();
        if len >= 0 {
          let end = (text_pos + len as usize).min(units.len());
          if let Err(failure) = push_utf8(&mut args.bytes, &units[text_pos..end]) {
            malformed = Some(failure);
          }
          text_pos = end;
        } else {
          // SAFETY: `buffers` is an argument of this call; push_buffer checks the
          // element is a Buffer/Uint8Array and copies its bytes before returning.
          unsafe { push_buffer(raw_env, buffers, (-len - 1) as u32, &mut args.bytes)? };
        }
        args.ranges.push(start..args.bytes.len());
      }
      if let Some(failure) = malformed {
        staged.failure(&self.inner, id, &failure);
        continue;
      }
      let Some(op) = Op::from_code(op_code) else {
        staged.failure(&self.inner, id, &Failure::new(FailureKind::Invalid, "unknown request"));
        continue;
      };
      if op == Op::Close {
        close_ids.push(id);
        continue;
      }
      if let Err(failure) = &client {
        staged.failure(&self.inner, id, failure);
        continue;
      }
      if let (Some(failure), true) = (&unreachable, op_code & REQUEST_DEGRADED != 0) {
        staged.failure(&self.inner, id, failure);
        continue;
      }
      all_degraded &= op_code & REQUEST_DEGRADED != 0;
      let mode = match op {
        Op::CallBuffer => ReplyMode::Buffers,
        Op::Scan => ReplyMode::Scan,
        _ => ReplyMode::Strings,
      };
      let encoded = if op != Op::Scan && prefix.is_empty() {
        // The common case: encode straight into the wire buffer, no allocation.
        plain_command_name(args).inspect(|_| {
          resp::write_array_header(wire, args.ranges.len());
          for range in &args.ranges {
            resp::write_bulk(wire, &[&args.bytes[range.clone()]]);
          }
        })
      } else {
        let command = match op {
          Op::Scan => scan_command(args, &prefix),
          _ => prefixed_command(args, &prefix),
        };
        command.map(|parts| {
          let name = CommandName::new(parts.first().map(|p| p.1).unwrap_or(b""));
          resp::write_array_header(wire, parts.len());
          for (key_prefix, arg) in &parts {
            resp::write_bulk(wire, &[key_prefix, arg]);
          }
          name
        })
      };
      match encoded {
        Ok(name) => pending.push(Pending {
          channel: Arc::clone(&self.inner),
          id,
          mode,
          name,
          deadline,
          timed_out: false,
          probe: op_code & REQUEST_SCRIPT_PROBE != 0,
        }),
        Err(failure) => staged.failure(&self.inner, id, &failure),
      }
      if mode == ReplyMode::Scan && !prefix.is_empty() {
        *self.inner.scan_prefix.lock().unwrap() = prefix.clone();
      } else if mode == ReplyMode::Scan {
        self.inner.scan_prefix.lock().unwrap().clear();
      }
    }
    staged.deliver();
    if let (Ok(client), false) = (&client, pending.is_empty()) {
      client.begin_requests(pending.len());
      let unsent = match direct {
        // Written here, on the caller's thread; given back when the connection
        // died under us (nothing was written), to wait for the next one.
        Some(conn) => conn.send(wire, pending).err().map(|requests| (wire.clone(), requests)),
        None => Some((std::mem::take(wire), pending)),
      };
      if let Some((batch, requests)) = unsent {
        // A batch of degraded requests only (a lone health probe, a cache read)
        // waits for the first connection's attempt, not through retries.
        let degraded = all_degraded;
        client::RUNTIME.spawn(Arc::clone(client).send_later(batch, requests, deadline, degraded));
      }
    }
    if !close_ids.is_empty() {
      let channel = Arc::clone(&self.inner);
      client::RUNTIME.spawn(async move {
        if let Some(client) = client::existing() {
          client.close().await;
        }
        let mut staged = Staged::default();
        for id in close_ids {
          staged.done(&channel, id);
        }
        staged.deliver();
      });
    }
    Ok(())
  }

  /// Hands reading of the current plain-TCP connection to this JS thread:
  /// returns a reader with the socket's descriptor for `net.Socket({ fd })`,
  /// or null when there is nothing to take over (already taken, TLS, Windows).
  /// The environment (thread) that adopts reading hands it back before it goes
  /// (`SocketReader.release`, on its `exit`); if it goes without doing so (a
  /// terminated worker), its cleanup hook drops the connection, so requests of
  /// other threads never wait on a reader that is gone.
  #[napi]
  pub fn adopt_reader(&self, env: Env) -> Option<SocketReader> {
    let client = client::existing()?;
    let conn = client.ready_fast()?;
    let fd = conn.adopt_reader()?;
    let weak = Arc::downgrade(&conn);
    let handed_back = env.add_env_cleanup_hook(weak, |weak| {
      if let Some(conn) = weak.upgrade() {
        conn.abandon_reader();
      }
    });
    if handed_back.is_err() {
      // No way to hand reading back from this environment: do not take it.
      conn.release_reader();
      // SAFETY: `fd` is the descriptor adopt_reader just duplicated for us and
      // nobody else owns it; closing it here is its only close.
      #[cfg(unix)]
      drop(unsafe { <std::net::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) });
      return None;
    }
    Some(SocketReader {
      conn,
      client,
      channel: Arc::clone(&self.inner),
      fd,
    })
  }

  /// Moves settled requests and events into `meta` / `data` / `extras` (see the
  /// module docs); `meta[1]` is 1 when more are waiting.
  #[napi]
  pub fn drain(&self, env: Env, meta: Unknown, data: Unknown, extras: Unknown) -> Result<()> {
    let raw_env = env.raw();
    // SAFETY: `meta` and `data` are live typed-array arguments of this call
    // (their kinds checked); both views live only until this call returns, and
    // JS runs nothing meanwhile. The check below refuses two views of the same
    // memory, so the two `&mut` slices never alias.
    let meta_out = unsafe { float64_slice_mut(raw_env, meta.raw())? };
    let data_out = unsafe { buffer_slice_mut(raw_env, data.raw())? };
    {
      let meta_range = meta_out.as_ptr_range();
      let (meta_start, meta_end) = (meta_range.start as usize, meta_range.end as usize);
      let data_range = data_out.as_ptr_range();
      let (data_start, data_end) = (data_range.start as usize, data_range.end as usize);
      if meta_start < data_end && data_start < meta_end {
        return Err(Error::new(
          Status::InvalidArg,
          "drain: meta and data must not share memory",
        ));
      }
    }
    let extras = extras.raw();
    let capacity = meta_out.len().saturating_sub(2) / 3;
    let prefix = self.inner.scan_prefix.lock().unwrap().clone();
    let mut queue = self.inner.queue.lock().unwrap();
    let mut written = 0usize;
    let mut data_pos = 0usize;
    let mut extra_count = 0u32;
    while written < capacity {
      let Some(entry) = queue.entries.front() else { break };
      let is_bytes = matches!(entry.kind, ValueType::Text | ValueType::Bytes);
      let len = entry.num as usize;
      if is_bytes && data_pos + len > data_out.len() && len <= data_out.len() {
        break; // fits in the next drain
      }
      let mut entry = queue.entries.pop_front().unwrap();
      let m = 2 + written * 3;
      if is_bytes {
        let head = queue.head;
        let bytes = &queue.arena[head..head + len];
        if data_pos + len <= data_out.len() {
          data_out[data_pos..data_pos + len].copy_from_slice(bytes);
          data_pos += len;
        } else {
          // SAFETY: `raw_env` is this call's env; `bytes` is valid for the call.
          let value = unsafe {
            if matches!(entry.kind, ValueType::Bytes) {
              buffer_to_js(raw_env, bytes)?
            } else {
              string_to_js(raw_env, bytes)?
            }
          };
          // SAFETY: `extras` is an array argument of this call, `value` a value of this env.
          // SAFETY: `extras` is an array argument of this call, `value` a value of this env.
          unsafe { check(sys::napi_set_element(raw_env, extras, extra_count, value))? };
          entry.kind = ValueType::Extra;
          entry.num = extra_count as f64;
          extra_count += 1;
        }
        queue.head += len;
      } else if let Some(extra) = entry.extra.take() {
        // SAFETY: `raw_env` is this call's env; the values converted are owned here.
        let value = unsafe {
          match *extra {
            Extra::Reply(value, mode) => reply_to_js(raw_env, &value, mode, &prefix)?,
            Extra::Event(event) => event_to_js(raw_env, &event)?,
          }
        };
        // SAFETY: `extras` is an array argument of this call, `value` a value of this env.
        unsafe { check(sys::napi_set_element(raw_env, extras, extra_count, value))? };
        entry.num = extra_count as f64;
        extra_count += 1;
      }
      meta_out[m] = entry.tag;
      meta_out[m + 1] = entry.kind as u8 as f64;
      meta_out[m + 2] = entry.num;
      written += 1;
    }
    if queue.entries.is_empty() {
      queue.arena.clear();
      queue.head = 0;
    } else if queue.head > (1 << 20) {
      let head = queue.head;
      queue.arena.drain(..head);
      queue.head = 0;
    }
    let more = !queue.entries.is_empty();
    // Still woken while more wait: JS drains again before it returns.
    queue.woken = more;
    if meta_out.len() >= 2 {
      meta_out[0] = written as f64;
      meta_out[1] = if more { 1.0 } else { 0.0 };
    }
    Ok(())
  }
}

/// The JS thread's reading end of one plain-TCP connection.
#[napi]
pub struct SocketReader {
  conn: Arc<crate::connection::FastConn>,
  client: Arc<Client>,
  channel: Arc<ReplyQueue>,
  fd: i32,
}

#[napi]
impl SocketReader {
  /// The socket descriptor (owned by the caller from now on).
  #[napi(getter)]
  pub fn fd(&self) -> i32 {
    self.fd
  }

  /// Parses the first `length` bytes of `chunk` and settles their requests.
  /// The adopting channel is not woken for them: the caller drains it right after.
  #[napi]
  pub fn feed(&self, chunk: &[u8], length: u32) {
    self.channel.queue.lock().unwrap().woken = true;
    self
      .conn
      .feed(&chunk[..(length as usize).min(chunk.len())], &*self.client);
  }

  /// The connection is gone (closed, failed or replaced).
  #[napi(getter)]
  pub fn dead(&self) -> bool {
    self.conn.is_dead()
  }

  /// Hands reading back to the tokio reader (this thread is about to go); the
  /// caller stops reading its socket first.
  #[napi]
  pub fn release(&self) {
    self.conn.release_reader();
  }

  /// The socket ended or failed: fails what is still waiting and reconnects.
  #[napi]
  pub fn closed(&self, message: String) {
    self.channel.queue.lock().unwrap().woken = true;
    self.conn.reader_closed(&message, &*self.client);
  }
}

fn server_failure(err: &redis::ServerError) -> Failure {
  let text = match err.details() {
    Some(details) => format!("{} {}", err.code(), details),
    None => err.code().to_string(),
  };
  Failure::new(FailureKind::Reply, text)
}

/// A command's arguments, each with the key prefix to put in front of it
/// (empty for non-keys): the name first.
type Parts<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The command's name, checked: present, and not one the shared connection refuses.
fn plain_command_name(args: &Args) -> std::result::Result<CommandName, Failure> {
  if args.ranges.is_empty() || args.get(0).is_empty() {
    return Err(Failure::new(FailureKind::Invalid, "a command needs a name"));
  }
  let name = CommandName::new(args.get(0));
  if let Some(why) = keys::shared_connection_refusal(name.as_str()) {
    return Err(Failure::new(
      FailureKind::Invalid,
      format!("{} is not allowed: {why}", name.as_str()),
    ));
  }
  Ok(name)
}

/// The arguments of a command with `keyPrefix` in front of each of its keys.
fn prefixed_command<'a>(args: &'a Args, prefix: &'a [u8]) -> std::result::Result<Parts<'a>, Failure> {
  let name = plain_command_name(args)?;
  let name = name.as_str();
  let mut parts: Parts = (0..args.ranges.len()).map(|i| (&b""[..], args.get(i))).collect();
  if prefix.is_empty() {
    return Ok(parts);
  }
  let rest: Vec<&[u8]> = parts[1..].iter().map(|p| p.1).collect();
  let positions = keys::key_positions(keys::key_spec(name), &rest).map_err(|why| {
    Failure::new(
      FailureKind::Invalid,
      if why == "unknown" {
        format!("{name}: this command's key positions are not known, so keyPrefix cannot be applied to it")
      } else {
        format!("{name}: {why}")
      },
    )
  })?;
  for position in positions {
    parts[position + 1].0 = prefix;
  }
  Ok(parts)
}

/// `SCAN cursor MATCH prefix+pattern [COUNT n] [TYPE t]` from (cursor, pattern, count, type; "" for none).
fn scan_command<'a>(args: &'a Args, prefix: &'a [u8]) -> std::result::Result<Parts<'a>, Failure> {
  let arg = |i: usize| (i < args.ranges.len()).then(|| args.get(i)).filter(|a| !a.is_empty());
  let mut parts: Parts = vec![(b"", b"SCAN"), (b"", arg(0).unwrap_or(b"0"))];
  let pattern = arg(1).unwrap_or(b"*");
  if !prefix.is_empty() || pattern != b"*" {
    parts.push((b"", b"MATCH"));
    parts.push((escaped_prefix(prefix), pattern));
  }
  if let Some(count) = arg(2) {
    parts.push((b"", b"COUNT"));
    parts.push((b"", count));
  }
  if let Some(kind) = arg(3) {
    parts.push((b"", b"TYPE"));
    parts.push((b"", kind));
  }
  Ok(parts)
}

/// The key prefix with glob characters escaped (leaked once per distinct prefix).
fn escaped_prefix(prefix: &[u8]) -> &'static [u8] {
  static CACHE: Mutex<Vec<(Vec<u8>, &'static [u8])>> = Mutex::new(Vec::new());
  let mut cache = CACHE.lock().unwrap();
  if let Some((_, escaped)) = cache.iter().find(|(p, _)| p == prefix) {
    return escaped;
  }
  let escaped: &'static [u8] = Box::leak(
    keys::glob_escape(&String::from_utf8_lossy(prefix))
      .into_bytes()
      .into_boxed_slice(),
  );
  cache.push((prefix.to_vec(), escaped));
  escaped
}

/// Appends UTF-16 code units (a JS string) as UTF-8. A lone surrogate is
/// refused (it would become U+FFFD and two strings would meet on the wire).
fn push_utf8(out: &mut Vec<u8>, units: &[u16]) -> std::result::Result<(), Failure> {
  if units.iter().all(|&u| u < 0x80) {
    out.extend(units.iter().map(|&u| u as u8));
    return Ok(());
  }
  for c in char::decode_utf16(units.iter().copied()) {
    let Ok(c) = c else {
      return Err(Failure::new(
        FailureKind::Invalid,
        "an argument is not well-formed UTF-16 (it holds a lone surrogate); nothing was sent",
      ));
    };
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
  }
  Ok(())
}

// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn int32_slice<'a>(env: sys::napi_env, value: sys::napi_value, count: usize) -> Result<&'a [i32]> {
  let (data, length) = typed_array_data(env, value, sys::TypedarrayType::int32_array)?;
  Ok(if length == 0 {
    &[]
  } else {
    std::slice::from_raw_parts(data.cast::<i32>(), count.min(length))
  })
}

// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn float64_slice_mut<'a>(env: sys::napi_env, value: sys::napi_value) -> Result<&'a mut [f64]> {
  let (data, length) = typed_array_data(env, value, sys::TypedarrayType::float64_array)?;
  Ok(if length == 0 {
    &mut []
  } else {
    std::slice::from_raw_parts_mut(data.cast::<f64>(), length)
  })
}

// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn typed_array_data(
  env: sys::napi_env,
  value: sys::napi_value,
  expected: sys::napi_typedarray_type,
) -> Result<(*mut std::ffi::c_void, usize)> {
  let mut kind = 0;
  let mut length = 0usize;
  let mut data = ptr::null_mut();
  let mut arraybuffer = ptr::null_mut();
  let mut offset = 0usize;
  check(sys::napi_get_typedarray_info(
    env,
    value,
    &mut kind,
    &mut length,
    &mut data,
    &mut arraybuffer,
    &mut offset,
  ))?;
  if kind != expected {
    return Err(Error::new(
      Status::InvalidArg,
      "the boundary got a typed array of the wrong kind",
    ));
  }
  Ok((data, length))
}

// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn buffer_slice_mut<'a>(env: sys::napi_env, value: sys::napi_value) -> Result<&'a mut [u8]> {
  let mut data = ptr::null_mut();
  let mut length = 0usize;
  check(sys::napi_get_buffer_info(env, value, &mut data, &mut length))?;
  Ok(if length == 0 {
    &mut []
  } else {
    std::slice::from_raw_parts_mut(data.cast::<u8>(), length)
  })
}

/// Reads a JS string as UTF-16 into `out` (reusing its allocation).
// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn read_utf16(env: sys::napi_env, value: sys::napi_value, out: &mut Vec<u16>) -> Result<()> {
  let mut len = 0usize;
  check(sys::napi_get_value_string_utf16(
    env,
    value,
    ptr::null_mut(),
    0,
    &mut len,
  ))?;
  out.clear();
  out.reserve(len + 1);
  let mut written = 0usize;
  check(sys::napi_get_value_string_utf16(
    env,
    value,
    out.as_mut_ptr(),
    len + 1,
    &mut written,
  ))?;
  out.set_len(written);
  Ok(())
}

/// Appends the bytes of Buffer (or Uint8Array) `index` of the `buffers` array.
// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn push_buffer(env: sys::napi_env, buffers: sys::napi_value, index: u32, out: &mut Vec<u8>) -> Result<()> {
  let mut value = ptr::null_mut();
  check(sys::napi_get_element(env, buffers, index, &mut value))?;
  let mut is_buffer = false;
  check(sys::napi_is_buffer(env, value, &mut is_buffer))?;
  let (data, length) = if is_buffer {
    let mut data = ptr::null_mut();
    let mut length = 0usize;
    check(sys::napi_get_buffer_info(env, value, &mut data, &mut length))?;
    (data, length)
  } else {
    typed_array_data(env, value, sys::TypedarrayType::uint8_array)?
  };
  if length > 0 && !data.is_null() {
    out.extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), length));
  }
  Ok(())
}

fn check(status: sys::napi_status) -> Result<()> {
  if status == sys::Status::napi_ok {
    Ok(())
  } else {
    Err(Error::new(
      Status::from(status),
      "N-API call failed in the Redis boundary",
    ))
  }
}

// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn null(env: sys::napi_env) -> Result<sys::napi_value> {
  let mut value = ptr::null_mut();
  check(sys::napi_get_null(env, &mut value))?;
  Ok(value)
}

// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn string_to_js(env: sys::napi_env, bytes: &[u8]) -> Result<sys::napi_value> {
  let mut value = ptr::null_mut();
  let text = String::from_utf8_lossy(bytes);
  check(sys::napi_create_string_utf8(
    env,
    text.as_ptr().cast(),
    text.len() as isize,
    &mut value,
  ))?;
  Ok(value)
}

// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn buffer_to_js(env: sys::napi_env, bytes: &[u8]) -> Result<sys::napi_value> {
  let mut value = ptr::null_mut();
  let mut data = ptr::null_mut();
  check(sys::napi_create_buffer_copy(
    env,
    bytes.len(),
    bytes.as_ptr().cast(),
    &mut data,
    &mut value,
  ))?;
  Ok(value)
}

// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn number_to_js(env: sys::napi_env, n: f64) -> Result<sys::napi_value> {
  let mut value = ptr::null_mut();
  check(sys::napi_create_double(env, n, &mut value))?;
  Ok(value)
}

// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn array_to_js(env: sys::napi_env, items: &[Value], mode: ReplyMode, prefix: &[u8]) -> Result<sys::napi_value> {
  let mut array = ptr::null_mut();
  check(sys::napi_create_array_with_length(env, items.len(), &mut array))?;
  for (i, item) in items.iter().enumerate() {
    let element = reply_to_js(env, item, mode, prefix)?;
    check(sys::napi_set_element(env, array, i as u32, element))?;
  }
  Ok(array)
}

/// A reply as ioredis gives it: strings (or Buffers), numbers, null, arrays.
// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn reply_to_js(env: sys::napi_env, value: &Value, mode: ReplyMode, prefix: &[u8]) -> Result<sys::napi_value> {
  match value {
    Value::Nil => null(env),
    Value::Int(n) => number_to_js(env, *n as f64),
    Value::Double(n) => number_to_js(env, *n),
    Value::Okay => string_to_js(env, b"OK"),
    Value::SimpleString(s) => string_to_js(env, s.as_bytes()),
    Value::BulkString(bytes) if mode == ReplyMode::Buffers => buffer_to_js(env, bytes),
    Value::BulkString(bytes) => string_to_js(env, bytes),
    Value::Boolean(b) => {
      let mut out = ptr::null_mut();
      check(sys::napi_get_boolean(env, *b, &mut out))?;
      Ok(out)
    }
    Value::Array(items) if mode == ReplyMode::Scan && items.len() == 2 => {
      // [cursor, keys]: strip keyPrefix from each key.
      let cursor = reply_to_js(env, &items[0], ReplyMode::Strings, prefix)?;
      let keys: Vec<Value> = match &items[1] {
        Value::Array(keys) => keys
          .iter()
          .map(|k| match k {
            Value::BulkString(b) if b.starts_with(prefix) => Value::BulkString(b[prefix.len()..].to_vec()),
            other => other.clone(),
          })
          .collect(),
        _ => Vec::new(),
      };
      let keys = array_to_js(env, &keys, ReplyMode::Strings, prefix)?;
      let mut array = ptr::null_mut();
      check(sys::napi_create_array_with_length(env, 2, &mut array))?;
      check(sys::napi_set_element(env, array, 0, cursor))?;
      check(sys::napi_set_element(env, array, 1, keys))?;
      Ok(array)
    }
    Value::Array(items) | Value::Set(items) => array_to_js(env, items, mode, prefix),
    Value::Map(pairs) => {
      let flat: Vec<Value> = pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect();
      array_to_js(env, &flat, mode, prefix)
    }
    Value::VerbatimString { text, .. } => string_to_js(env, text.as_bytes()),
    Value::BigNumber(n) => string_to_js(env, n),
    Value::Push { data, .. } => array_to_js(env, data, mode, prefix),
    Value::ServerError(err) => string_to_js(env, server_failure(err).message.as_bytes()),
    Value::Attribute { data, .. } => reply_to_js(env, data, mode, prefix),
    _ => null(env),
  }
}

// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn event_to_js(env: sys::napi_env, event: &RedisEvent) -> Result<sys::napi_value> {
  let mut object = ptr::null_mut();
  check(sys::napi_create_object(env, &mut object))?;
  let set = |name: &str, value: sys::napi_value| -> Result<()> {
    let cname = std::ffi::CString::new(name).unwrap();
    check(sys::napi_set_named_property(env, object, cname.as_ptr(), value))
  };
  set("type", string_to_js(env, event.kind.as_bytes())?)?;
  if let Some(error) = &event.error {
    set("error", string_to_js(env, error.as_bytes())?)?;
  }
  if let Some(attempt) = event.attempt {
    set("attempt", number_to_js(env, attempt as f64)?)?;
  }
  if let Some(delay) = event.delay_ms {
    set("delayMs", number_to_js(env, delay as f64)?)?;
  }
  Ok(object)
}
