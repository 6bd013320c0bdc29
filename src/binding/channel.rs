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

use std::ptr;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use redis::Value;

use crate::core::client;
use crate::core::connection::{FastConn, Owner};
use crate::core::error::{Failure, FailureKind};
use crate::core::events::RedisEvent;
use crate::core::reply::{self, Extra, ReplyMode, ReplyQueue, ValueType};
use crate::core::request::{self, Args, Submission};

// The request codes (op | flags), for the JS layer (one source: core::request).
/// A command; bulk replies as strings.
#[napi]
pub const OP_CALL: i32 = request::OP_CALL;
/// A command; bulk replies as Buffers.
#[napi]
pub const OP_CALL_BUFFER: i32 = request::OP_CALL_BUFFER;
/// `SCAN` with `keyPrefix` added to the pattern and taken off the keys.
#[napi]
pub const OP_SCAN: i32 = request::OP_SCAN;
/// Close the client gracefully.
#[napi]
pub const OP_CLOSE: i32 = request::OP_CLOSE;
/// A cluster's master addresses (the fan-out set); `null` for one server.
#[napi]
pub const OP_MASTERS: i32 = request::OP_MASTERS;
/// Flag: fail at once while a lost connection is re-made (the caller has a degraded answer).
#[napi]
pub const REQUEST_DEGRADED: i32 = request::REQUEST_DEGRADED;
/// Flag: the package's own EVALSHA, whose `NOSCRIPT` is handled (not counted as an error).
#[napi]
pub const REQUEST_SCRIPT_PROBE: i32 = request::REQUEST_SCRIPT_PROBE;
/// Flag: the first argument names the node (`host:port`) the request goes to.
#[napi]
pub const REQUEST_NODE: i32 = request::REQUEST_NODE;

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
#[napi]
pub const FAILURE_USAGE: i32 = 7;
const _: () = {
  assert!(FailureKind::Reply as i32 == FAILURE_REPLY);
  assert!(FailureKind::Timeout as i32 == FAILURE_TIMEOUT);
  assert!(FailureKind::Connection as i32 == FAILURE_CONNECTION);
  assert!(FailureKind::Auth as i32 == FAILURE_AUTH);
  assert!(FailureKind::Closed as i32 == FAILURE_CLOSED);
  assert!(FailureKind::Invalid as i32 == FAILURE_INVALID);
  assert!(FailureKind::Usage as i32 == FAILURE_USAGE);
  // A tag is `id * 8 + kind`: every kind must fit below 8.
  assert!(FAILURE_USAGE < 8);
};

/// The JS function `Channel.attach` is given: a weak threadsafe function that never keeps Node alive.
type WakeFn = ThreadsafeFunction<(), Unknown<'static>, (), Status, false, true>;

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
    args.clear();
    units.clear();
    // The common case: the whole text is ASCII, read once as bytes into the
    // arena, and every string argument is a range of it (no copy). Otherwise
    // it is read as UTF-16 and each argument converted (lone surrogates refused).
    // SAFETY: `text` is an argument of this call; both readers check it is a string.
    let ascii = unsafe { read_ascii(raw_env, text.raw(), &mut args.bytes)? };
    if !ascii {
      // SAFETY: as above.
      unsafe { read_utf16(raw_env, text.raw(), units)? };
    }
    let text_len = if ascii { args.bytes.len() } else { units.len() };
    let shared = args.bytes.len();
    let buffers = buffers.raw();

    let mut submission = Submission::begin(&self.inner, wire);
    let mut text_pos = 0usize;
    let mut i = 0usize;
    while i + 3 <= meta.len() {
      let (id, code, argc) = (meta[i] as u32, meta[i + 1], meta[i + 2].max(0) as usize);
      let lens = &meta[(i + 3).min(meta.len())..(i + 3 + argc).min(meta.len())];
      i += 3 + argc;
      args.next_request(shared);
      let mut malformed = None;
      for &len in lens {
        if len >= 0 {
          let end = (text_pos + len as usize).min(text_len);
          if ascii {
            args.push_range(text_pos..end);
          } else if let Err(failure) = args.push_utf16(&units[text_pos..end]) {
            malformed = Some(failure);
          }
          text_pos = end;
        } else {
          // SAFETY: `buffers` is an argument of this call; push_buffer checks the
          // element is a Buffer/Uint8Array and copies its bytes before returning.
          args.push_with(|out| unsafe { push_buffer(raw_env, buffers, (-len - 1) as u32, out) })?;
        }
      }
      match malformed {
        Some(failure) => submission.fail(id, &failure),
        None => submission.add(id, code, args),
      }
    }
    submission.finish();
    // A huge submit (a value of many MiB) does not keep its scratch space for good.
    const KEEP: usize = 4 << 20;
    if args.bytes.capacity() > KEEP {
      args.bytes = Vec::new();
    }
    if units.capacity() > KEEP {
      *units = Vec::new();
    }
    if wire.capacity() > KEEP {
      *wire = Vec::new();
    }
    Ok(())
  }

  /// Hands reading of the ready connections (one server's, or each cluster
  /// node's) that no thread reads yet to this JS thread: a reader per
  /// connection, with the socket's descriptor for `net.Socket({ fd })`; none
  /// when there is nothing to take over (already taken, not ready, Windows).
  /// The environment (thread) that adopts reading hands it back before it goes
  /// (`SocketReader.release`, on its `exit`); if it goes without doing so (a
  /// terminated worker), its cleanup hook drops the connection, so requests of
  /// other threads never wait on a reader that is gone.
  #[napi]
  pub fn adopt_readers(&self, env: Env) -> Vec<SocketReader> {
    let Some(client) = client::existing() else {
      return Vec::new();
    };
    client
      .links()
      .into_iter()
      .filter_map(|link| adopt_one(&self.inner, &env, link))
      .collect()
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
    // SAFETY: as for `meta` above; the overlap check follows before either is written.
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

/// One link's connection handed to the JS thread of `env` (see `adopt_readers`).
fn adopt_one(inner: &Arc<ReplyQueue>, env: &Env, link: Arc<crate::core::link::Link>) -> Option<SocketReader> {
  let conn = link.ready_fast()?;
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
    owner: link as Arc<dyn Owner>,
    channel: Arc::clone(inner),
    fd,
  })
}

/// The JS thread's reading end of one plain-TCP connection.
#[napi]
pub struct SocketReader {
  conn: Arc<FastConn>,
  owner: Arc<dyn Owner>,
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
      .feed(&chunk[..(length as usize).min(chunk.len())], &*self.owner);
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
    self.conn.reader_closed(&message, &*self.owner);
  }
}

fn server_failure(err: &redis::ServerError) -> Failure {
  let text = match err.details() {
    Some(details) => format!("{} {}", err.code(), details),
    None => err.code().to_string(),
  };
  Failure::new(FailureKind::Reply, text)
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
pub(super) unsafe fn float64_slice_mut<'a>(env: sys::napi_env, value: sys::napi_value) -> Result<&'a mut [f64]> {
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

/// Reads a JS string as UTF-8 into `out` (reusing its allocation) and tells
/// whether it is all ASCII; when it is not, `out` is left empty. Every UTF-16
/// unit that is not ASCII becomes at least two bytes (a lone surrogate three,
/// as U+FFFD), so the string is ASCII exactly when it has as many bytes as units.
// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
unsafe fn read_ascii(env: sys::napi_env, value: sys::napi_value, out: &mut Vec<u8>) -> Result<bool> {
  let mut units = 0usize;
  check(sys::napi_get_value_string_utf16(
    env,
    value,
    ptr::null_mut(),
    0,
    &mut units,
  ))?;
  out.clear();
  // At most three bytes per unit, and the terminating NUL.
  let capacity = units * 3 + 1;
  out.reserve(capacity);
  let mut written = 0usize;
  check(sys::napi_get_value_string_utf8(
    env,
    value,
    out.as_mut_ptr().cast(),
    capacity,
    &mut written,
  ))?;
  out.set_len(written.min(capacity - 1));
  if out.len() == units {
    Ok(true)
  } else {
    out.clear();
    Ok(false)
  }
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
  read_utf16_of_length(env, value, len, out)
}

/// Reads a JS string said to be `len` UTF-16 units long into `out` with one
/// call: up to `len + 1` units, so a caller sees a longer string as one.
// SAFETY: callers pass the env of the N-API call in progress and values of it; nothing returned outlives that call.
pub(super) unsafe fn read_utf16_of_length(
  env: sys::napi_env,
  value: sys::napi_value,
  len: usize,
  out: &mut Vec<u16>,
) -> Result<()> {
  out.clear();
  out.reserve(len + 2);
  let mut written = 0usize;
  // N-API writes at most `len + 1` units and a NUL into the `len + 2` reserved.
  check(sys::napi_get_value_string_utf16(
    env,
    value,
    out.as_mut_ptr(),
    len + 2,
    &mut written,
  ))?;
  out.set_len(written.min(len + 1));
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
  if let Some(node) = &event.node {
    set("node", string_to_js(env, node.as_bytes())?)?;
  }
  Ok(object)
}
