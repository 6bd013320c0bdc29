//! The JS boundary. Calls made in one JS tick cross it together: the JS layer
//! flushes them with one synchronous `Channel.submit()`, Rust sends them to
//! Redis as one pipeline, and the replies come back through one queue that JS
//! empties with `Channel.drain()` when a single weak threadsafe function wakes
//! it. No promise or threadsafe function is made per command.
//!
//! A request in the submitted array is `id, op, argc, arg…`; an entry in the
//! drained array is `tag, value` where `tag = id * 8 + kind` (kind 0: the reply,
//! 1–6: a `FailureKind` and `value` is its message) or `tag = -1` for an event.

use std::ptr;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use redis::Value;

use crate::client::{self, Client, InFlight};
use crate::errors::{Failure, FailureKind};
use crate::events::{self, RedisEvent};
use crate::keys;

/// What a request asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
  /// A command; bulk replies as strings.
  Call = 1,
  /// A command; bulk replies as Buffers.
  CallBuffer = 2,
  /// `SCAN cursor [MATCH m] [COUNT n]` with `keyPrefix` added to the pattern and
  /// taken off the keys.
  Scan = 3,
  /// Close the client gracefully.
  Close = 4,
}

impl Op {
  fn from_code(code: u32) -> Option<Self> {
    Some(match code {
      1 => Op::Call,
      2 => Op::CallBuffer,
      3 => Op::Scan,
      4 => Op::Close,
      _ => return None,
    })
  }
}

/// How a reply is turned into a JS value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReplyMode {
  Strings,
  Buffers,
  Scan,
}

/// A settled request, waiting in the channel's queue for JS.
enum Message {
  Reply { id: u32, mode: ReplyMode, value: Value },
  Failed { id: u32, failure: Failure },
  Done { id: u32 },
  Event(RedisEvent),
}

struct Queue {
  messages: Vec<Message>,
  /// JS has been woken and has not drained yet.
  woken: bool,
}

type WakeFn = ThreadsafeFunction<(), Unknown<'static>, (), Status, false, true>;

pub struct ChannelInner {
  queue: Mutex<Queue>,
  wake: WakeFn,
  key_prefix_strip: Mutex<Vec<u8>>,
}

impl ChannelInner {
  fn push_all(&self, messages: impl IntoIterator<Item = Message>) {
    let mut queue = self.queue.lock().unwrap();
    queue.messages.extend(messages);
    if !queue.woken && !queue.messages.is_empty() {
      queue.woken = true;
      drop(queue);
      self.wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
    }
  }

  pub fn push_event(&self, event: RedisEvent) {
    self.push_all([Message::Event(event)]);
  }
}

/// One command of a batch, ready to send.
struct Request {
  id: u32,
  mode: ReplyMode,
  name: String,
}

/// The JS layer's end of the boundary. One per loaded JS module instance; all
/// of them share the process-wide client.
#[napi]
pub struct Channel {
  inner: Arc<ChannelInner>,
}

#[napi]
impl Channel {
  /// `wake` is called (with no arguments, never keeping the process alive)
  /// when replies are waiting; it should call `drain()`.
  #[napi(constructor)]
  pub fn new(wake: WakeFn) -> Self {
    let inner = Arc::new(ChannelInner {
      queue: Mutex::new(Queue {
        messages: Vec::new(),
        woken: false,
      }),
      wake,
      key_prefix_strip: Mutex::new(Vec::new()),
    });
    events::subscribe(Arc::downgrade(&inner));
    Channel { inner }
  }

  /// Submits the requests in `batch` (`id, op, argc, arg…` repeated; `count`
  /// entries are read). Never throws for one bad request: that request fails alone.
  #[napi]
  pub fn submit(&self, env: Env, batch: Unknown, count: u32) -> Result<()> {
    let reader = FlatReader {
      env: env.raw(),
      array: batch.raw(),
    };
    let client = client::current();
    let mut pipeline = redis::Pipeline::with_capacity(16);
    let mut requests: Vec<Request> = Vec::with_capacity(16);
    let mut early: Vec<Message> = Vec::new();
    let mut close_ids: Vec<u32> = Vec::new();
    let prefix: &[u8] = match &client {
      Ok(c) => &c.config.key_prefix,
      Err(_) => &[],
    };
    let mut i = 0u32;
    let mut args: Vec<Vec<u8>> = Vec::with_capacity(8);
    while i < count {
      let id = reader.u32_at(i)?;
      let op = reader.u32_at(i + 1)?;
      let argc = reader.u32_at(i + 2)?;
      let start = i + 3;
      i = start + argc;
      args.clear();
      let mut bad_arg = None;
      for j in start..start + argc {
        match reader.bytes_at(j)? {
          Ok(bytes) => args.push(bytes),
          Err(what) => {
            bad_arg = Some((j - start, what));
            break;
          }
        }
      }
      let Some(op) = Op::from_code(op) else {
        early.push(Message::Failed {
          id,
          failure: Failure::new(FailureKind::Invalid, "unknown request"),
        });
        continue;
      };
      if let Some((position, what)) = bad_arg {
        let message = match (op, args.first()) {
          (Op::Call | Op::CallBuffer, Some(name)) => format!(
            "{}: argument {position} is {what}; pass a string, a number or a Buffer",
            String::from_utf8_lossy(name).to_ascii_uppercase()
          ),
          _ => format!("argument {position} is {what}; pass a string, a number or a Buffer"),
        };
        early.push(Message::Failed {
          id,
          failure: Failure::new(FailureKind::Invalid, message),
        });
        continue;
      }
      if op == Op::Close {
        close_ids.push(id);
        continue;
      }
      if let Err(failure) = &client {
        early.push(Message::Failed {
          id,
          failure: failure.clone(),
        });
        continue;
      }
      let built = match op {
        Op::Call | Op::CallBuffer => add_command(&mut pipeline, &args, prefix),
        Op::Scan => add_scan(&mut pipeline, &args, prefix),
        Op::Close => unreachable!(),
      };
      match built {
        Ok(name) => requests.push(Request {
          id,
          mode: match op {
            Op::CallBuffer => ReplyMode::Buffers,
            Op::Scan => ReplyMode::Scan,
            _ => ReplyMode::Strings,
          },
          name,
        }),
        Err(failure) => early.push(Message::Failed { id, failure }),
      }
    }
    if !early.is_empty() {
      self.inner.push_all(early);
    }
    if let Ok(client) = client {
      if !requests.is_empty() {
        *self.inner.key_prefix_strip.lock().unwrap() = client.config.key_prefix.clone();
        let guard = client.begin_request();
        let channel = Arc::clone(&self.inner);
        client::RUNTIME.spawn(run_batch(client, channel, pipeline, requests, guard));
      }
    }
    if !close_ids.is_empty() {
      let channel = Arc::clone(&self.inner);
      client::RUNTIME.spawn(async move {
        if let Some(client) = client::existing() {
          client.close().await;
        }
        channel.push_all(close_ids.into_iter().map(|id| Message::Done { id }));
      });
    }
    Ok(())
  }

  /// Takes every settled request and event: `tag, value` pairs (see the module docs).
  #[napi]
  pub fn drain(&self, env: Env) -> Result<Unknown<'_>> {
    let messages = {
      let mut queue = self.inner.queue.lock().unwrap();
      queue.woken = false;
      std::mem::take(&mut queue.messages)
    };
    let prefix = self.inner.key_prefix_strip.lock().unwrap().clone();
    let raw_env = env.raw();
    unsafe {
      let mut array = ptr::null_mut();
      check(sys::napi_create_array_with_length(
        raw_env,
        messages.len() * 2,
        &mut array,
      ))?;
      let mut index = 0u32;
      for message in messages {
        let (tag, value) = match message {
          Message::Reply { id, mode, value } => (id as f64 * 8.0, reply_to_js(raw_env, &value, mode, &prefix)?),
          Message::Failed { id, failure } => (
            id as f64 * 8.0 + failure.kind as u32 as f64,
            string_to_js(raw_env, failure.message.as_bytes())?,
          ),
          Message::Done { id } => (id as f64 * 8.0, null(raw_env)?),
          Message::Event(event) => (-1.0, event_to_js(raw_env, &event)?),
        };
        let mut tag_value = ptr::null_mut();
        check(sys::napi_create_double(raw_env, tag, &mut tag_value))?;
        check(sys::napi_set_element(raw_env, array, index, tag_value))?;
        check(sys::napi_set_element(raw_env, array, index + 1, value))?;
        index += 2;
      }
      Ok(Unknown::from_napi_value(raw_env, array)?)
    }
  }
}

/// Sends one batch as one pipeline and queues every request's own outcome.
async fn run_batch(
  client: Arc<Client>,
  channel: Arc<ChannelInner>,
  pipeline: redis::Pipeline,
  requests: Vec<Request>,
  _in_flight: InFlight,
) {
  let timeout = client.config.command_timeout;
  let count = requests.len();
  let mut generation = 0;
  let outcome = tokio::time::timeout(timeout, async {
    let (mut conn, gen) = client.connection().await?;
    generation = gen;
    conn
      .send_packed_commands(&pipeline, 0, count)
      .await
      .map_err(|e| Failure::from_redis(&e))
  })
  .await;
  let messages: Vec<Message> = match outcome {
    Ok(Ok(values)) if values.len() == count => requests
      .into_iter()
      .zip(values)
      .map(|(request, value)| match value {
        Value::ServerError(err) => Message::Failed {
          id: request.id,
          failure: server_failure(&err),
        },
        value => Message::Reply {
          id: request.id,
          mode: request.mode,
          value,
        },
      })
      .collect(),
    Ok(Ok(values)) => {
      let failure = Failure::new(
        FailureKind::Connection,
        format!("Redis sent {} replies for {count} commands", values.len()),
      );
      fail_all(requests, &failure)
    }
    Ok(Err(failure)) => {
      if failure.kind == FailureKind::Connection && generation > 0 {
        client.connection_failed(generation, &failure);
      }
      fail_all(requests, &failure)
    }
    Err(_) => requests
      .into_iter()
      .map(|r| Message::Failed {
        id: r.id,
        failure: Failure::new(
          FailureKind::Timeout,
          format!("Redis command {} timed out after {} ms", r.name, timeout.as_millis()),
        ),
      })
      .collect(),
  };
  channel.push_all(messages);
}

fn fail_all(requests: Vec<Request>, failure: &Failure) -> Vec<Message> {
  requests
    .into_iter()
    .map(|r| Message::Failed {
      id: r.id,
      failure: failure.clone(),
    })
    .collect()
}

fn server_failure(err: &redis::ServerError) -> Failure {
  let text = match err.details() {
    Some(details) => format!("{} {}", err.code(), details),
    None => err.code().to_string(),
  };
  Failure::new(FailureKind::Reply, text)
}

/// Adds a command with `keyPrefix` put in front of each of its keys; returns its name.
fn add_command(
  pipeline: &mut redis::Pipeline,
  args: &[Vec<u8>],
  prefix: &[u8],
) -> std::result::Result<String, Failure> {
  let Some((name, rest)) = args.split_first() else {
    return Err(Failure::new(FailureKind::Invalid, "a command needs a name"));
  };
  let name = String::from_utf8_lossy(name).to_ascii_uppercase();
  if name.is_empty() {
    return Err(Failure::new(FailureKind::Invalid, "a command needs a name"));
  }
  let cmd = pipeline.cmd(&name);
  if prefix.is_empty() {
    for a in rest {
      cmd.arg(a.as_slice());
    }
    return Ok(name);
  }
  let positions = keys::key_positions(keys::key_spec(&name), rest).map_err(|why| {
    Failure::new(
      FailureKind::Invalid,
      if why == "unknown" {
        format!("{name}: this command's key positions are not known, so keyPrefix cannot be applied to it")
      } else {
        format!("{name}: {why}")
      },
    )
  })?;
  let mut next = positions.iter().peekable();
  for (index, a) in rest.iter().enumerate() {
    if next.peek() == Some(&&index) {
      next.next();
      let mut key = Vec::with_capacity(prefix.len() + a.len());
      key.extend_from_slice(prefix);
      key.extend_from_slice(a);
      cmd.arg(key);
    } else {
      cmd.arg(a.as_slice());
    }
  }
  Ok(name)
}

/// Adds `SCAN cursor MATCH prefix+pattern [COUNT n] [TYPE t]` (args: cursor, pattern, count, type; "" for none).
fn add_scan(pipeline: &mut redis::Pipeline, args: &[Vec<u8>], prefix: &[u8]) -> std::result::Result<String, Failure> {
  let arg = |i: usize| args.get(i).filter(|a| !a.is_empty());
  let cursor = arg(0).cloned().unwrap_or_else(|| b"0".to_vec());
  let cmd = pipeline.cmd("SCAN");
  cmd.arg(cursor);
  let pattern = arg(1).cloned().unwrap_or_else(|| b"*".to_vec());
  if !prefix.is_empty() || pattern != b"*" {
    let mut full = keys::glob_escape(&String::from_utf8_lossy(prefix)).into_bytes();
    full.extend_from_slice(&pattern);
    cmd.arg("MATCH").arg(full);
  }
  if let Some(count) = arg(2) {
    cmd.arg("COUNT").arg(count.as_slice());
  }
  if let Some(kind) = arg(3) {
    cmd.arg("TYPE").arg(kind.as_slice());
  }
  Ok("SCAN".into())
}

/// Reads the flat request array without making a JS object per element.
struct FlatReader {
  env: sys::napi_env,
  array: sys::napi_value,
}

impl FlatReader {
  fn element(&self, index: u32) -> Result<sys::napi_value> {
    let mut value = ptr::null_mut();
    check(unsafe { sys::napi_get_element(self.env, self.array, index, &mut value) })?;
    Ok(value)
  }

  fn u32_at(&self, index: u32) -> Result<u32> {
    let value = self.element(index)?;
    let mut out = 0u32;
    check(unsafe { sys::napi_get_value_uint32(self.env, value, &mut out) })?;
    Ok(out)
  }

  /// The bytes of a string, Buffer or number argument, or what it was instead.
  fn bytes_at(&self, index: u32) -> Result<std::result::Result<Vec<u8>, &'static str>> {
    let value = self.element(index)?;
    unsafe {
      let mut kind = 0;
      check(sys::napi_typeof(self.env, value, &mut kind))?;
      match kind {
        sys::ValueType::napi_string => {
          let mut len = 0usize;
          check(sys::napi_get_value_string_utf8(
            self.env,
            value,
            ptr::null_mut(),
            0,
            &mut len,
          ))?;
          let mut buf: Vec<u8> = Vec::with_capacity(len + 1);
          let mut written = 0usize;
          check(sys::napi_get_value_string_utf8(
            self.env,
            value,
            buf.as_mut_ptr().cast(),
            len + 1,
            &mut written,
          ))?;
          buf.set_len(written);
          Ok(Ok(buf))
        }
        sys::ValueType::napi_number => {
          let mut n = 0f64;
          check(sys::napi_get_value_double(self.env, value, &mut n))?;
          Ok(Ok(number_text(n).into_bytes()))
        }
        sys::ValueType::napi_object => {
          let mut is_buffer = false;
          check(sys::napi_is_buffer(self.env, value, &mut is_buffer))?;
          if !is_buffer {
            let mut is_typed = false;
            check(sys::napi_is_typedarray(self.env, value, &mut is_typed))?;
            if !is_typed {
              return Ok(Err("an object"));
            }
            let mut kind = 0;
            let mut length = 0usize;
            let mut data = ptr::null_mut();
            let mut arraybuffer = ptr::null_mut();
            let mut offset = 0usize;
            check(sys::napi_get_typedarray_info(
              self.env,
              value,
              &mut kind,
              &mut length,
              &mut data,
              &mut arraybuffer,
              &mut offset,
            ))?;
            if kind != sys::TypedarrayType::uint8_array {
              return Ok(Err("a typed array other than Uint8Array"));
            }
            return Ok(Ok(slice_copy(data.cast(), length)));
          }
          let mut data = ptr::null_mut();
          let mut length = 0usize;
          check(sys::napi_get_buffer_info(self.env, value, &mut data, &mut length))?;
          Ok(Ok(slice_copy(data.cast(), length)))
        }
        sys::ValueType::napi_undefined => Ok(Err("undefined")),
        sys::ValueType::napi_null => Ok(Err("null")),
        sys::ValueType::napi_boolean => Ok(Err("a boolean")),
        sys::ValueType::napi_bigint => Ok(Err("a bigint")),
        sys::ValueType::napi_symbol => Ok(Err("a symbol")),
        sys::ValueType::napi_function => Ok(Err("a function")),
        _ => Ok(Err("of an unsupported type")),
      }
    }
  }
}

unsafe fn slice_copy(data: *const u8, length: usize) -> Vec<u8> {
  if length == 0 || data.is_null() {
    Vec::new()
  } else {
    std::slice::from_raw_parts(data, length).to_vec()
  }
}

/// A number as JS prints it for integers; shortest round-trip text otherwise.
fn number_text(n: f64) -> String {
  if n.fract() == 0.0 && n.abs() < 1e21 {
    format!("{}", n as i128)
  } else if n.is_nan() {
    "NaN".into()
  } else if n.is_infinite() {
    if n > 0.0 {
      "inf".into()
    } else {
      "-inf".into()
    }
  } else {
    format!("{n}")
  }
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

unsafe fn null(env: sys::napi_env) -> Result<sys::napi_value> {
  let mut value = ptr::null_mut();
  check(sys::napi_get_null(env, &mut value))?;
  Ok(value)
}

unsafe fn string_to_js(env: sys::napi_env, bytes: &[u8]) -> Result<sys::napi_value> {
  let mut value = ptr::null_mut();
  match std::str::from_utf8(bytes) {
    Ok(s) => check(sys::napi_create_string_utf8(
      env,
      s.as_ptr().cast(),
      s.len() as isize,
      &mut value,
    ))?,
    Err(_) => {
      let s = String::from_utf8_lossy(bytes);
      check(sys::napi_create_string_utf8(
        env,
        s.as_ptr().cast(),
        s.len() as isize,
        &mut value,
      ))?
    }
  }
  Ok(value)
}

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

unsafe fn number_to_js(env: sys::napi_env, n: f64) -> Result<sys::napi_value> {
  let mut value = ptr::null_mut();
  check(sys::napi_create_double(env, n, &mut value))?;
  Ok(value)
}

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
