//! The fast path: one Redis connection of our own, plain TCP or TLS.
//!
//! TLS is sans-I/O (rustls's `ClientConnection`): requests are encrypted and
//! written on the caller's thread like plain ones, and replies are decrypted
//! by whichever reader reads the socket, into the same buffer the parser
//! reads. Only the handshakes (TLS, then Redis's) are asynchronous.
//!
//! Writes happen on the caller's thread (the JS thread, inside
//! `Channel.submit`): the request's entries go into the in-flight FIFO and its
//! bytes into the socket under one lock, so the order of the FIFO is the order
//! of the bytes on the wire and every reply meets its request. A reader task on
//! the tokio runtime parses replies and hands them to the channels; it also
//! times requests out (FIFO order is deadline order) — a timed-out request
//! stays in the FIFO to swallow its late reply, and is never sent again.
//! Bytes the socket does not take at once wait in a backlog that a flusher
//! task writes when the socket is writable again.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::error::{Failure, FailureKind};
use super::gather::Gather;
use super::metrics;
use super::reply::{ReplyMode, ReplyQueue, Staged};
use super::resp::{self, Frame};
use super::tls::{self, TlsSettings};

/// What a connection reports to whoever owns it (the client): a narrow
/// interface, so that the transport never calls up into the client. (As in
/// redis-rs, where each request carries its own reply sender and the
/// connection manager decides reconnects from the errors it is told of.)
pub trait Owner: Send + Sync + 'static {
  /// How long a request may wait for its reply.
  fn command_timeout(&self) -> Duration;
  /// `n` requests were settled (replied, failed or timed out).
  fn settled(&self, n: usize);
  /// Connection `generation` is gone (its requests are already failed).
  fn lost(&self, generation: u64, failure: &Failure);
  /// A cluster request was answered with `reply`, a redirect or a retry
  /// (`is_cluster_retry`): it did not run. Its owner sends it on within its
  /// deadline; by default it fails with the reply.
  fn rerouted(&self, pending: Pending, reply: &str) {
    let mut staged = Staged::default();
    let settled = pending.fail(&Failure::new(FailureKind::Reply, reply), &mut staged);
    staged.deliver();
    if settled {
      self.settled(1);
    }
  }
}

/// A command name kept inline for the timeout message.
#[derive(Clone, Copy)]
pub struct CommandName {
  bytes: [u8; 23],
  len: u8,
}

impl CommandName {
  pub fn new(name: &[u8]) -> Self {
    let mut bytes = [0u8; 23];
    let len = name.len().min(bytes.len());
    for (dst, src) in bytes.iter_mut().zip(name) {
      *dst = src.to_ascii_uppercase();
    }
    Self { bytes, len: len as u8 }
  }

  pub fn as_str(&self) -> &str {
    std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("?")
  }
}

/// A request on the wire, waiting for its reply.
pub struct Pending {
  pub channel: Arc<ReplyQueue>,
  pub id: u32,
  pub mode: ReplyMode,
  pub name: CommandName,
  pub deadline: Instant,
  /// Its caller already got a timeout; the reply is dropped when it comes.
  pub timed_out: bool,
  /// The package's own EVALSHA, which falls back to EVAL itself: a `NOSCRIPT`
  /// reply is handled, not an error of the application's.
  pub probe: bool,
  /// On a cluster: what its owner needs to send it on after a redirect.
  pub route: Option<Box<Routed>>,
}

/// A cluster request's bookkeeping: its bytes (to write again to another
/// node after `MOVED`, `ASK`, `TRYAGAIN` or `CLUSTERDOWN` — replies that mean
/// the command did not run), its slot, and the split command it is a part of.
pub struct Routed {
  pub bytes: Vec<u8>,
  /// The hash slot of its keys; `None` for a command without keys.
  pub slot: Option<u16>,
  /// Redirects and retries so far.
  pub hops: u8,
  /// Part `.1` of a split multi-key command.
  pub part: Option<(Arc<Gather>, usize)>,
  /// Sent to this node (`host:port`) whatever the slot map says: a fan-out
  /// request, or one an `ASK` redirect sends on (then with `asking`).
  pub node: Option<String>,
  /// Preceded by `ASKING` (the slot is being imported by `node`).
  pub asking: bool,
}

/// Whether an error reply to a cluster request means it did not run and can
/// be sent on: a redirect, or a cluster that is reconfiguring.
pub fn is_cluster_retry(error: &[u8]) -> bool {
  [&b"MOVED "[..], b"ASK ", b"TRYAGAIN", b"CLUSTERDOWN"]
    .iter()
    .any(|p| error.starts_with(p))
}

impl Pending {
  /// Stages `failure` for this request (for the whole split command, if it is
  /// a part). Returns true when a caller's request was settled by it.
  pub fn fail(&self, failure: &Failure, staged: &mut Staged) -> bool {
    match self.route.as_ref().and_then(|r| r.part.as_ref()) {
      Some((gather, _)) => gather.fail(failure, staged),
      None if self.mode == ReplyMode::Discard => false,
      None => {
        staged.failure(&self.channel, self.id, failure);
        true
      }
    }
  }

  /// Whether `reply` counts as a failed command in this process's figures.
  pub fn counts_as_error(&self, error_text: Option<&[u8]>) -> bool {
    match error_text {
      Some(text) => !(self.probe && text.starts_with(b"NOSCRIPT")),
      None => false,
    }
  }
}

struct Writer {
  /// A second handle on the socket, non-blocking, for writes on the caller's thread.
  socket: std::net::TcpStream,
  /// Bytes the socket has not taken yet; while it is not empty, new bytes go after them.
  backlog: Vec<u8>,
  /// TLS records of one send (reused).
  sealed: Vec<u8>,
}

struct InFlight {
  queue: VecDeque<Pending>,
  /// How many entries at the front have timed out (their replies are still due).
  timed_out_at_front: usize,
}

pub struct FastConn {
  pub generation: u64,
  writer: Mutex<Writer>,
  in_flight: Mutex<InFlight>,
  dead: AtomicBool,
  /// Wakes the reader: the JS thread took over reading, or requests came while
  /// the reader's timer was parked (see `timer_parked`).
  reader_wakeup: Notify,
  /// The reader sleeps without a timer (idle for a while): a new request must
  /// wake it so its deadline is watched. While traffic is recent the reader
  /// ticks instead, and requests need not wake anyone.
  timer_parked: AtomicBool,
  /// The backlog has bytes.
  flush_wakeup: Notify,
  read_state: Mutex<ReadState>,
  /// The TLS session of a `rediss://` connection. Locked after `writer` or
  /// `read_state`, never before them.
  tls: Option<Mutex<rustls::ClientConnection>>,
}

/// The handshake's reads and writes, on a plain or a TLS socket.
struct HandshakeIo<'a> {
  stream: &'a TcpStream,
  tls: Option<rustls::ClientConnection>,
  peer: &'a str,
}

impl HandshakeIo<'_> {
  fn io(&self, e: std::io::Error) -> Failure {
    Failure::new(FailureKind::Connection, format!("{e} ({})", self.peer))
  }

  async fn write_all(&mut self, bytes: &[u8]) -> Result<(), Failure> {
    if let Some(conn) = self.tls.as_mut() {
      return tls::send(self.stream, conn, bytes, self.peer).await;
    }
    let mut written = 0;
    while written < bytes.len() {
      self.stream.writable().await.map_err(|e| self.io(e))?;
      match self.stream.try_write(&bytes[written..]) {
        Ok(n) => written += n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
        Err(e) => return Err(self.io(e)),
      }
    }
    Ok(())
  }

  /// Appends what arrives next to `buf`; false when the server closed.
  async fn read_more(&mut self, buf: &mut Vec<u8>) -> Result<bool, Failure> {
    if let Some(conn) = self.tls.as_mut() {
      return tls::recv(self.stream, conn, buf, self.peer).await;
    }
    let mut chunk = [0u8; 512];
    loop {
      self.stream.readable().await.map_err(|e| self.io(e))?;
      match self.stream.try_read(&mut chunk) {
        Ok(0) => return Ok(false),
        Ok(n) => {
          buf.extend_from_slice(&chunk[..n]);
          return Ok(true);
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
        Err(e) => return Err(self.io(e)),
      }
    }
  }
}

/// Handshake settings from the URL.
pub struct Handshake {
  pub username: Option<String>,
  pub password: Option<String>,
  pub db: i64,
  /// Name the connection (`CLIENT SETNAME`): a courtesy, skipped once refused.
  pub set_name: bool,
}

/// What a step of the handshake is for, and so what its refusal means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
  /// `AUTH`: a refusal is fatal.
  Auth,
  /// `SELECT db`: a refusal is fatal (commands would go to the wrong database).
  Select,
  /// `CLIENT SETNAME`: a refusal is reported and the connection is used.
  Name,
  /// `PING`: proves the server answers; `NOPERM` is fine, `LOADING` is not ready yet.
  Ping,
}

impl Step {
  fn name(self) -> &'static str {
    match self {
      Step::Auth => "AUTH",
      Step::Select => "SELECT",
      Step::Name => "CLIENT SETNAME",
      Step::Ping => "PING",
    }
  }
}

/// A connection that passed its handshake, with the optional steps the server refused.
pub struct Connected {
  pub conn: Arc<FastConn>,
  /// `"CLIENT SETNAME: NOPERM …"` for each optional step the server refused.
  pub refused: Vec<(&'static str, String)>,
}

/// What the server's answer to one handshake step means.
fn judge_step(step: Step, text: &str, db: i64) -> Result<Option<String>, Failure> {
  if text.starts_with("WRONGPASS") || text.starts_with("NOAUTH") || step == Step::Auth {
    return Err(Failure::fatal(
      FailureKind::Auth,
      format!("Redis authentication failed: {text}"),
    ));
  }
  match step {
    Step::Select => Err(Failure::fatal(
      FailureKind::Connection,
      format!("SELECT {db} failed: {text}"),
    )),
    Step::Ping if !text.starts_with("NOPERM") => Err(Failure::new(
      FailureKind::Connection,
      format!("Redis is not ready: {text}"),
    )),
    _ => Ok(Some(text.to_string())),
  }
}

/// A socket that passed the handshakes (TLS, then Redis's).
struct Opened {
  stream: TcpStream,
  tls: Option<rustls::ClientConnection>,
  refused: Vec<(&'static str, String)>,
  /// The raw reply to the command sent after the handshake, if one was.
  reply: Option<Vec<u8>>,
}

/// Connects, runs the TLS handshake for `rediss://` and Redis's own
/// (`AUTH`, `SELECT`, `CLIENT SETNAME`, `PING`), and sends `then` after it when given.
async fn open(
  host: &str,
  port: u16,
  handshake: &Handshake,
  tls_settings: Option<&TlsSettings>,
  then: Option<&[&[u8]]>,
) -> Result<Opened, Failure> {
  let peer = format!("{host}:{port}");
  let io = |e: std::io::Error| Failure::new(FailureKind::Connection, format!("{e} ({host}:{port})"));
  let stream = TcpStream::connect((host, port)).await.map_err(io)?;
  stream.set_nodelay(true).map_err(io)?;
  let tls_conn = match tls_settings {
    Some(settings) => {
      let mut conn = settings.client()?;
      tls::handshake(&stream, &mut conn, &peer).await?;
      Some(conn)
    }
    None => None,
  };
  let mut hs = HandshakeIo {
    stream: &stream,
    tls: tls_conn,
    peer: &peer,
  };

  let mut hello = Vec::new();
  let mut expected = Vec::new();
  if let Some(password) = &handshake.password {
    match &handshake.username {
      Some(user) => resp::write_command(&mut hello, &[b"AUTH", user.as_bytes(), password.as_bytes()]),
      None => resp::write_command(&mut hello, &[b"AUTH", password.as_bytes()]),
    }
    expected.push(Step::Auth);
  }
  if handshake.db != 0 {
    resp::write_command(&mut hello, &[b"SELECT", handshake.db.to_string().as_bytes()]);
    expected.push(Step::Select);
  }
  if handshake.set_name {
    resp::write_command(&mut hello, &[b"CLIENT", b"SETNAME", b"yesgoddess-redis"]);
    expected.push(Step::Name);
  }
  resp::write_command(&mut hello, &[b"PING"]);
  expected.push(Step::Ping);
  if let Some(command) = then {
    resp::write_command(&mut hello, command);
  }
  hs.write_all(&hello).await?;

  let wanted = expected.len() + usize::from(then.is_some());
  let mut buf = Vec::with_capacity(512);
  let mut at = 0;
  let mut answered = 0;
  let mut refused = Vec::new();
  let mut reply = None;
  while answered < wanted {
    if !hs.read_more(&mut buf).await? {
      return Err(Failure::new(
        FailureKind::Connection,
        "Redis closed the connection during the handshake",
      ));
    }
    while answered < wanted {
      let parsed = resp::parse_frame(&buf, at).map_err(|e| Failure::new(FailureKind::Connection, e.0))?;
      let Some((frame, next)) = parsed else { break };
      if answered == expected.len() {
        reply = Some(buf[at..next].to_vec());
      } else if let Frame::Error(range) = frame {
        let text = String::from_utf8_lossy(&buf[range]).into_owned();
        let step = expected[answered];
        if let Some(reason) = judge_step(step, &text, handshake.db)? {
          refused.push((step.name(), reason));
        }
      }
      answered += 1;
      at = next;
    }
  }
  let tls = hs.tls.take();
  Ok(Opened {
    stream,
    tls,
    refused,
    reply,
  })
}

/// One command on a connection of its own (connected, handshaken, then
/// closed): its raw reply. For what the fast path cannot carry, such as the
/// cluster's topology queries.
pub async fn query(
  host: &str,
  port: u16,
  handshake: &Handshake,
  tls_settings: Option<&TlsSettings>,
  command: &[&[u8]],
) -> Result<Vec<u8>, Failure> {
  let opened = open(host, port, handshake, tls_settings, Some(command)).await?;
  Ok(opened.reply.unwrap_or_default())
}

impl FastConn {
  /// Connects (with the TLS handshake for `rediss://`), authenticates and
  /// selects the database, then starts the reader.
  pub async fn connect(
    host: &str,
    port: u16,
    handshake: &Handshake,
    tls_settings: Option<&TlsSettings>,
    owner: Arc<dyn Owner>,
    generation: u64,
  ) -> Result<Connected, Failure> {
    let io = |e: std::io::Error| Failure::new(FailureKind::Connection, format!("{e} ({host}:{port})"));
    let opened = open(host, port, handshake, tls_settings, None).await?;
    let (stream, tls_conn, refused) = (opened.stream, opened.tls, opened.refused);
    // The socket leaves tokio's reactor here: the reader registers it again
    // only while it reads itself (see `read_loop`), the flusher only while a
    // backlog waits, so a socket the JS thread reads never wakes this thread.
    let socket = stream.into_std().map_err(io)?;
    socket.set_nonblocking(true).map_err(io)?;
    let conn = Arc::new(FastConn {
      generation,
      writer: Mutex::new(Writer {
        socket,
        backlog: Vec::new(),
        sealed: Vec::new(),
      }),
      in_flight: Mutex::new(InFlight {
        queue: VecDeque::new(),
        timed_out_at_front: 0,
      }),
      dead: AtomicBool::new(false),
      reader_wakeup: Notify::new(),
      timer_parked: AtomicBool::new(false),
      flush_wakeup: Notify::new(),
      read_state: Mutex::new(ReadState {
        buf: Vec::with_capacity(64 * 1024),
        ..Default::default()
      }),
      tls: tls_conn.map(Mutex::new),
    });
    tokio::spawn(read_loop(Arc::clone(&conn), owner));
    tokio::spawn(flush_loop(Arc::clone(&conn)));
    Ok(Connected { conn, refused })
  }

  /// A new handle on the socket, registered with tokio's reactor for as long as it lives.
  fn registered(&self) -> std::io::Result<TcpStream> {
    let socket = self.writer.lock().unwrap().socket.try_clone()?;
    TcpStream::from_std(socket)
  }

  pub fn is_dead(&self) -> bool {
    self.dead.load(Ordering::Acquire)
  }

  /// Sends `bytes` (the encoded commands of `requests`, in order). Gives the
  /// requests back when the connection is already gone, so the caller fails them.
  pub fn send(&self, bytes: &[u8], requests: Vec<Pending>) -> Result<(), Vec<Pending>> {
    let mut writer = self.writer.lock().unwrap();
    if self.is_dead() {
      return Err(requests);
    }
    {
      let mut in_flight = self.in_flight.lock().unwrap();
      in_flight.queue.extend(requests);
    }
    std::sync::atomic::fence(Ordering::SeqCst);
    if self.timer_parked.swap(false, Ordering::SeqCst) {
      self.reader_wakeup.notify_one();
    }
    match &self.tls {
      None => self.write_locked(&mut writer, bytes),
      Some(session) => {
        let mut sealed = std::mem::take(&mut writer.sealed);
        sealed.clear();
        let encrypted = tls::encrypt(&mut session.lock().unwrap(), bytes, &mut sealed);
        match encrypted {
          Ok(()) => self.write_locked(&mut writer, &sealed),
          Err(_) => self.kill_locked(&writer),
        }
        writer.sealed = sealed;
      }
    }
    Ok(())
  }

  /// Writes `bytes` to the socket after the backlog (under the writer lock).
  fn write_locked(&self, writer: &mut Writer, bytes: &[u8]) {
    if !writer.backlog.is_empty() {
      writer.backlog.extend_from_slice(bytes);
      return;
    }
    match (&writer.socket).write(bytes) {
      Ok(n) if n == bytes.len() => {}
      Ok(n) => {
        writer.backlog.extend_from_slice(&bytes[n..]);
        self.flush_wakeup.notify_one();
      }
      Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
        writer.backlog.extend_from_slice(bytes);
        self.flush_wakeup.notify_one();
      }
      Err(_) => {
        // The reader sees the broken socket and fails everything in flight.
        self.kill_locked(writer);
      }
    }
  }

  /// TLS records rustls wants to send on its own (an alert, a key update's answer).
  fn flush_session(&self) {
    let Some(session) = &self.tls else { return };
    let mut writer = self.writer.lock().unwrap();
    if self.is_dead() {
      return;
    }
    let mut sealed = std::mem::take(&mut writer.sealed);
    sealed.clear();
    {
      let mut session = session.lock().unwrap();
      while session.wants_write() {
        if session.write_tls(&mut sealed).is_err() {
          break;
        }
      }
    }
    if !sealed.is_empty() {
      self.write_locked(&mut writer, &sealed);
    }
    writer.sealed = sealed;
  }

  /// Takes bytes read from the socket into `state.buf` as plaintext: `chunk`
  /// (the JS thread's read), or what the tokio reader left in `state.cipher`.
  /// For TLS they are decrypted here. Returns false when the server ended the
  /// TLS session.
  fn take_in(&self, state: &mut ReadState, chunk: Option<&[u8]>) -> Result<bool, Failure> {
    let Some(session) = &self.tls else {
      if let Some(chunk) = chunk {
        state.buf.extend_from_slice(chunk);
      }
      return Ok(true);
    };
    let cipher = std::mem::take(&mut state.cipher);
    let input = chunk.unwrap_or(&cipher);
    // One lock of the session for the records and for what rustls wants to answer.
    let (outcome, wants_write) = {
      let mut session = session.lock().unwrap();
      let outcome = tls::decrypt(&mut session, input, &mut state.buf);
      (outcome, session.wants_write())
    };
    state.cipher = cipher;
    state.cipher.clear();
    let open = outcome.map_err(|e| match e {
      tls::Decrypt::Tls(e) => tls::tls_failure(e, "Redis"),
      tls::Decrypt::Io(e) => Failure::new(FailureKind::Connection, format!("reading from Redis failed: {e}")),
    })?;
    if wants_write {
      self.flush_session();
    }
    Ok(open)
  }

  fn kill_locked(&self, writer: &Writer) {
    self.dead.store(true, Ordering::Release);
    let _ = writer.socket.shutdown(std::net::Shutdown::Both);
    self.reader_wakeup.notify_one();
    self.flush_wakeup.notify_one();
  }

  /// Closes the socket; the reader fails whatever is still in flight.
  pub fn shutdown(&self) {
    let writer = self.writer.lock().unwrap();
    self.kill_locked(&writer);
  }

  /// The deadline of the oldest request that has not timed out yet.
  fn next_deadline(&self) -> Option<Instant> {
    let in_flight = self.in_flight.lock().unwrap();
    in_flight.queue.get(in_flight.timed_out_at_front).map(|p| p.deadline)
  }

  /// Fails the requests whose deadline has passed; returns how many.
  fn expire(&self, now: Instant, timeout: Duration, staged: &mut Staged) -> usize {
    let mut in_flight = self.in_flight.lock().unwrap();
    let mut expired = 0;
    loop {
      let front = in_flight.timed_out_at_front;
      let Some(pending) = in_flight.queue.get_mut(front) else {
        break;
      };
      if pending.deadline > now {
        break;
      }
      pending.timed_out = true;
      let failure = Failure::new(
        FailureKind::Timeout,
        format!(
          "Redis command {} timed out after {} ms",
          pending.name.as_str(),
          timeout.as_millis()
        ),
      );
      if pending.fail(&failure, staged) {
        metrics::record(timeout, true);
        expired += 1;
      }
      in_flight.timed_out_at_front += 1;
    }
    expired
  }
}

/// How late a timeout may fire at most when its request came while the reader
/// was ticking (see `FastConn::timer_parked`).
const DEADLINE_TICK: Duration = Duration::from_millis(10);
/// How long without requests before the reader stops ticking.
const IDLE_BEFORE_PARKING: Duration = Duration::from_secs(1);

/// The bytes read and not yet parsed, and who reads the socket.
#[derive(Default)]
pub struct ReadState {
  /// Plaintext: RESP bytes for the parser.
  buf: Vec<u8>,
  start: usize,
  /// Ciphertext read by the tokio reader, not yet decrypted (TLS only).
  cipher: Vec<u8>,
  /// The JS thread reads the socket now (through libuv); the tokio task only keeps time.
  js_reads: bool,
  /// The end of the connection has been handled.
  finished: bool,
}

impl FastConn {
  /// Parses every complete reply in `state`, gives each to its request, and
  /// delivers them. Returns a failure when the stream cannot be trusted any more.
  fn process(&self, state: &mut ReadState, owner: &dyn Owner) -> Result<(), Failure> {
    let mut frames = Vec::new();
    let mut protocol_error = None;
    loop {
      match resp::parse_frame(&state.buf, state.start) {
        Ok(Some((frame, next))) => {
          frames.push(frame);
          state.start = next;
        }
        Ok(None) => break,
        Err(e) => {
          protocol_error = Some(Failure::new(
            FailureKind::Connection,
            format!("Redis protocol error: {}", e.0),
          ));
          break;
        }
      }
    }
    let mut settled = 0;
    let mut rerouted: Vec<(Pending, String)> = Vec::new();
    if !frames.is_empty() {
      // Take as many requests from the FIFO in one short lock (writers use it too).
      let owners: Vec<Pending> = {
        let mut in_flight = self.in_flight.lock().unwrap();
        let n = frames.len().min(in_flight.queue.len());
        let owners: Vec<Pending> = in_flight.queue.drain(..n).collect();
        let timed_out = owners.iter().filter(|p| p.timed_out).count();
        in_flight.timed_out_at_front -= timed_out;
        owners
      };
      if owners.len() < frames.len() {
        protocol_error = Some(Failure::new(
          FailureKind::Connection,
          "Redis sent a reply nobody asked for",
        ));
      }
      let mut staged = Staged::default();
      let now = Instant::now();
      let timeout = owner.command_timeout();
      for (frame, pending) in frames.into_iter().zip(owners) {
        if pending.timed_out || pending.mode == ReplyMode::Discard {
          continue;
        }
        let error_text = match &frame {
          Frame::Error(range) => Some(&state.buf[range.clone()]),
          _ => None,
        };
        if let Some(route) = &pending.route {
          if let Some(text) = error_text.filter(|t| is_cluster_retry(t)) {
            rerouted.push((pending, String::from_utf8_lossy(text).into_owned()));
            continue;
          }
          if let Some((gather, index)) = &route.part {
            let failed = pending.counts_as_error(error_text);
            if gather.reply(*index, frame, &state.buf, &mut staged) {
              metrics::record(now.saturating_duration_since(pending.deadline - timeout), failed);
              settled += 1;
            }
            continue;
          }
        }
        let latency = now.saturating_duration_since(pending.deadline - timeout);
        metrics::record(latency, pending.counts_as_error(error_text));
        staged.reply(&pending.channel, pending.id, pending.mode, &state.buf, frame);
        settled += 1;
      }
      staged.deliver();
    }
    owner.settled(settled);
    for (pending, reply) in rerouted {
      owner.rerouted(pending, &reply);
    }
    if state.start == state.buf.len() {
      state.buf.clear();
      state.start = 0;
    } else if state.start > 32 * 1024 {
      state.buf.drain(..state.start);
      state.start = 0;
    }
    protocol_error.map_or(Ok(()), Err)
  }

  /// The end of this connection: fails everything still waiting, once, and
  /// lets its owner reconnect.
  fn finish(&self, state: &mut ReadState, owner: &dyn Owner, failure: &Failure) {
    if std::mem::replace(&mut state.finished, true) {
      return;
    }
    self.shutdown();
    let mut staged = Staged::default();
    let failed = {
      let mut in_flight = self.in_flight.lock().unwrap();
      let mut failed = 0;
      let now = Instant::now();
      for pending in in_flight.queue.drain(..) {
        if !pending.timed_out && pending.fail(failure, &mut staged) {
          metrics::record(
            now.saturating_duration_since(pending.deadline - owner.command_timeout()),
            true,
          );
          failed += 1;
        }
      }
      in_flight.timed_out_at_front = 0;
      failed
    };
    staged.deliver();
    owner.settled(failed);
  }

  /// Hands reading to the JS thread: returns a new descriptor of the socket for
  /// libuv, once per connection. The tokio task stops reading under the same
  /// lock, so the two never read at the same time.
  #[cfg(unix)]
  pub fn adopt_reader(&self) -> Option<i32> {
    use std::os::fd::IntoRawFd;
    let mut state = self.read_state.lock().unwrap();
    if state.js_reads || state.finished || self.is_dead() {
      return None;
    }
    let socket = self.writer.lock().unwrap().socket.try_clone().ok()?;
    state.js_reads = true;
    self.reader_wakeup.notify_one();
    Some(socket.into_raw_fd())
  }

  #[cfg(not(unix))]
  pub fn adopt_reader(&self) -> Option<i32> {
    None
  }

  /// The JS thread that reads hands reading back (its environment is about to
  /// go, cleanly): the tokio task reads again, so no request waits on a reader
  /// that is gone. Every byte that thread took from the socket was parsed.
  pub fn release_reader(&self) {
    let mut state = self.read_state.lock().unwrap();
    if state.js_reads && !state.finished {
      state.js_reads = false;
      drop(state);
      self.reader_wakeup.notify_one();
    }
  }

  /// The environment of the JS thread that reads went away without handing
  /// reading back (a terminated worker): libuv may have taken bytes from the
  /// socket that were never parsed, so the stream cannot be trusted. The
  /// connection is shut down (what is in flight fails, nothing is resent) and
  /// the client makes a new one.
  pub fn abandon_reader(&self) {
    let state = self.read_state.lock().unwrap();
    if state.js_reads && !state.finished {
      drop(state);
      self.shutdown();
    }
  }

  /// Bytes the JS thread read from the socket.
  pub fn feed(&self, chunk: &[u8], owner: &dyn Owner) {
    let mut state = self.read_state.lock().unwrap();
    if state.finished {
      return;
    }
    let outcome = self.take_in(&mut state, Some(chunk)).and_then(|open| {
      self.process(&mut state, owner)?;
      if open {
        Ok(())
      } else {
        Err(Failure::new(FailureKind::Connection, "Redis ended the TLS session"))
      }
    });
    if let Err(failure) = outcome {
      self.finish(&mut state, owner, &failure);
      drop(state);
      owner.lost(self.generation, &failure);
    }
  }

  /// The JS thread's socket ended or failed.
  pub fn reader_closed(&self, message: &str, owner: &dyn Owner) {
    let failure = Failure::new(FailureKind::Connection, message);
    let mut state = self.read_state.lock().unwrap();
    self.finish(&mut state, owner, &failure);
    drop(state);
    owner.lost(self.generation, &failure);
  }
}

/// Reads replies (until the JS thread takes over reading) and times requests out.
async fn read_loop(conn: Arc<FastConn>, owner: Arc<dyn Owner>) {
  let timeout = owner.command_timeout();
  let mut last_busy = Instant::now();
  // The socket, registered with the reactor only while this task reads it.
  let mut registration: Option<TcpStream> = None;
  let failure = loop {
    if conn.is_dead() {
      break Failure::new(FailureKind::Connection, "the connection to Redis was closed");
    }
    let mut deadline = conn.next_deadline();
    if deadline.is_some() {
      last_busy = Instant::now();
    } else if last_busy.elapsed() < IDLE_BEFORE_PARKING {
      // Recent traffic: check again after a tick rather than be woken per request.
      deadline = Some(Instant::now() + DEADLINE_TICK);
    } else {
      conn.timer_parked.store(true, Ordering::SeqCst);
      std::sync::atomic::fence(Ordering::SeqCst);
      if conn.next_deadline().is_some() {
        conn.timer_parked.store(false, Ordering::SeqCst);
        continue;
      }
    }
    let js_reads = conn.read_state.lock().unwrap().js_reads;
    if js_reads {
      registration = None;
    } else if registration.is_none() {
      match conn.registered() {
        Ok(stream) => registration = Some(stream),
        Err(e) => break Failure::new(FailureKind::Connection, format!("reading from Redis failed: {e}")),
      }
    }
    let stream = registration.as_ref();
    tokio::select! {
      biased;
      ready = async { stream.unwrap().readable().await }, if stream.is_some() => {
        if let Err(e) = ready {
          break Failure::new(FailureKind::Connection, format!("reading from Redis failed: {e}"));
        }
      }
      _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => {
        let mut staged = Staged::default();
        let expired = conn.expire(Instant::now(), timeout, &mut staged);
        staged.deliver();
        owner.settled(expired);
        continue;
      }
      _ = conn.reader_wakeup.notified() => continue,
    }
    // Read everything available, unless the JS thread reads now.
    let mut state = conn.read_state.lock().unwrap();
    let Some(stream) = registration.as_ref().filter(|_| !state.js_reads) else {
      continue;
    };
    let mut closed = None;
    let state = &mut *state;
    loop {
      // Plaintext goes straight to the parser's buffer; TLS records wait to be decrypted.
      let into = if conn.tls.is_some() {
        &mut state.cipher
      } else {
        &mut state.buf
      };
      if into.capacity() - into.len() < 16 * 1024 {
        into.reserve(64 * 1024);
      }
      let spare = into.capacity() - into.len();
      // Reads into the Vec's spare capacity and extends its length by what was
      // read. A short read emptied the socket: it clears the readiness (as
      // tokio's own `poll_read` does), so the next wait is for new bytes and no
      // read is spent on an `EAGAIN` (one syscall per wake-up saved). Bytes that
      // arrive after the read are a new edge of the edge-triggered registration
      // (a readiness tick the clear leaves alone), so nothing waits unread.
      // Not on Windows: there mio re-arms its emulated readiness only after a
      // real WouldBlock, so a cleared readiness would never fire again (tokio's
      // own poll_read skips this shortcut there too).
      let read = stream.try_io(Interest::READABLE, || match stream.try_read_buf(into)? {
        n if cfg!(not(windows)) && n > 0 && n < spare => Err(std::io::ErrorKind::WouldBlock.into()),
        n => Ok(n),
      });
      match read {
        Ok(0) => {
          closed = Some(Failure::new(FailureKind::Connection, "Redis closed the connection"));
          break;
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
        Err(e) => {
          closed = Some(Failure::new(
            FailureKind::Connection,
            format!("reading from Redis failed: {e}"),
          ));
          break;
        }
      }
    }
    match conn.take_in(state, None) {
      Ok(true) => {}
      Ok(false) => {
        closed = closed.or(Some(Failure::new(
          FailureKind::Connection,
          "Redis ended the TLS session",
        )))
      }
      Err(failure) => break failure,
    }
    if let Err(failure) = conn.process(state, &*owner) {
      break failure;
    }
    if let Some(failure) = closed {
      break failure;
    }
  };
  // The connection is gone: fail everything still waiting, and reconnect.
  {
    let mut state = conn.read_state.lock().unwrap();
    conn.finish(&mut state, &*owner, &failure);
  }
  owner.lost(conn.generation, &failure);
}

/// Writes the backlog whenever the socket takes more.
async fn flush_loop(conn: Arc<FastConn>) {
  loop {
    conn.flush_wakeup.notified().await;
    // Registered with the reactor only while a backlog waits for the socket.
    let mut registration: Option<TcpStream> = None;
    loop {
      if conn.is_dead() {
        return;
      }
      {
        let mut writer = conn.writer.lock().unwrap();
        if writer.backlog.is_empty() {
          break;
        }
        // Through the registration once there is one, so that a WouldBlock
        // clears the readiness it waits on.
        let written = match &registration {
          Some(stream) => stream.try_write(&writer.backlog),
          None => (&writer.socket).write(&writer.backlog),
        };
        match written {
          Ok(n) => {
            writer.backlog.drain(..n);
            continue;
          }
          Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
          Err(_) => {
            conn.kill_locked(&writer);
            return;
          }
        }
      }
      if registration.is_none() {
        match conn.registered() {
          Ok(stream) => registration = Some(stream),
          Err(_) => {
            let writer = conn.writer.lock().unwrap();
            conn.kill_locked(&writer);
            return;
          }
        }
      }
      let stream = registration.as_ref().unwrap();
      if stream.writable().await.is_err() {
        let writer = conn.writer.lock().unwrap();
        conn.kill_locked(&writer);
        return;
      }
    }
  }
}

#[cfg(test)]
mod tests {
  //! The transport against a real redis-server, with no N-API and no client:
  //! a test owner and a reply queue whose wake-up only counts.
  use super::*;
  use crate::core::reply::{ReplyQueue, ValueType};
  use std::process::{Child, Command, Stdio};
  use std::sync::atomic::AtomicUsize;

  struct Server {
    child: Child,
    port: u16,
  }

  impl Server {
    fn start() -> Self {
      let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
      let child = Command::new("redis-server")
        .args([
          "--port",
          &port.to_string(),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be on PATH for these tests");
      wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
      Server { child, port }
    }

    /// Sends one command on a connection of its own and waits for the reply.
    fn command(&self, args: &[&[u8]]) {
      let mut socket = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
      let mut wire = Vec::new();
      resp::write_command(&mut wire, args);
      socket.write_all(&wire).unwrap();
      let mut reply = [0u8; 64];
      let _ = std::io::Read::read(&mut socket, &mut reply).unwrap();
    }
  }

  impl Drop for Server {
    fn drop(&mut self) {
      let _ = self.child.kill();
      let _ = self.child.wait();
    }
  }

  #[derive(Default)]
  struct TestOwner {
    settled: AtomicUsize,
    lost: Mutex<Vec<(u64, FailureKind)>>,
  }

  impl Owner for TestOwner {
    fn command_timeout(&self) -> Duration {
      Duration::from_millis(300)
    }
    fn settled(&self, n: usize) {
      self.settled.fetch_add(n, Ordering::SeqCst);
    }
    fn lost(&self, generation: u64, failure: &Failure) {
      self.lost.lock().unwrap().push((generation, failure.kind));
    }
  }

  fn wait_until(check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !check() {
      assert!(std::time::Instant::now() < deadline, "condition not met within 5 s");
      std::thread::sleep(Duration::from_millis(10));
    }
  }

  fn request(queue: &Arc<ReplyQueue>, id: u32, name: &[u8]) -> Pending {
    Pending {
      channel: Arc::clone(queue),
      id,
      mode: ReplyMode::Strings,
      name: CommandName::new(name),
      deadline: Instant::now() + Duration::from_millis(300),
      timed_out: false,
      probe: false,
      route: None,
    }
  }

  /// `(tag, type)` of every entry in the queue, and its text arena.
  fn drained(queue: &ReplyQueue) -> (Vec<(f64, ValueType)>, String) {
    let mut q = queue.queue.lock().unwrap();
    let entries = q.entries.drain(..).map(|e| (e.tag, e.kind)).collect();
    let text = String::from_utf8_lossy(&q.arena).into_owned();
    q.arena.clear();
    (entries, text)
  }

  #[test]
  fn replies_in_order_a_timeout_that_stays_in_step_and_a_loss_reported_to_the_owner() {
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
      .worker_threads(1)
      .enable_all()
      .build()
      .unwrap();
    let owner = Arc::new(TestOwner::default());
    let queue = Arc::new(ReplyQueue::default());
    let wakes = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&wakes);
    *queue.wake.lock().unwrap() = Some(Box::new(move || {
      counter.fetch_add(1, Ordering::SeqCst);
    }));
    let handshake = Handshake {
      username: None,
      password: None,
      db: 0,
      set_name: true,
    };
    let owned: Arc<dyn Owner> = Arc::clone(&owner) as Arc<dyn Owner>;
    let connected = runtime
      .block_on(FastConn::connect("127.0.0.1", server.port, &handshake, None, owned, 7))
      .unwrap();
    assert!(connected.refused.is_empty());
    let conn = connected.conn;

    // Two requests in one write: replies meet their requests in order, one wake-up.
    let mut wire = Vec::new();
    resp::write_command(&mut wire, &[b"SET", b"t:k", b"value"]);
    resp::write_command(&mut wire, &[b"GET", b"t:k"]);
    assert!(conn
      .send(&wire, vec![request(&queue, 1, b"SET"), request(&queue, 2, b"GET")])
      .is_ok());
    wait_until(|| owner.settled.load(Ordering::SeqCst) == 2);
    assert_eq!(
      drained(&queue),
      (vec![(8.0, ValueType::Ok), (16.0, ValueType::Text)], "value".into())
    );
    assert!(wakes.load(Ordering::SeqCst) >= 1);

    // A paused server: the request times out at its deadline (kind 2), its late
    // reply is swallowed, and the next request gets its own reply.
    server.command(&[b"CLIENT", b"PAUSE", b"700", b"ALL"]);
    let mut wire = Vec::new();
    resp::write_command(&mut wire, &[b"INCR", b"t:n"]);
    let started = std::time::Instant::now();
    assert!(conn.send(&wire, vec![request(&queue, 3, b"INCR")]).is_ok());
    wait_until(|| owner.settled.load(Ordering::SeqCst) == 3);
    assert!(started.elapsed() < Duration::from_millis(300 + 100));
    let (entries, text) = drained(&queue);
    assert_eq!(entries, vec![(3.0 * 8.0 + 2.0, ValueType::Text)]);
    assert_eq!(text, "Redis command INCR timed out after 300 ms");
    std::thread::sleep(Duration::from_millis(800));
    let mut wire = Vec::new();
    resp::write_command(&mut wire, &[b"GET", b"t:n"]);
    assert!(conn.send(&wire, vec![request(&queue, 4, b"GET")]).is_ok());
    wait_until(|| owner.settled.load(Ordering::SeqCst) == 4);
    assert_eq!(drained(&queue), (vec![(32.0, ValueType::Text)], "1".into())); // INCR ran once

    // The server goes away: what is in flight fails as a connection loss, and the
    // owner is told once, with this connection's generation.
    server.command(&[b"CLIENT", b"PAUSE", b"2000", b"ALL"]);
    let mut wire = Vec::new();
    resp::write_command(&mut wire, &[b"PING"]);
    assert!(conn.send(&wire, vec![request(&queue, 5, b"PING")]).is_ok());
    drop(server);
    wait_until(|| !owner.lost.lock().unwrap().is_empty());
    assert_eq!(*owner.lost.lock().unwrap(), vec![(7, FailureKind::Connection)]);
    let (entries, _) = drained(&queue);
    assert!(
      entries == vec![(5.0 * 8.0 + 3.0, ValueType::Text)] || entries == vec![(5.0 * 8.0 + 2.0, ValueType::Text)],
      "{entries:?}"
    );
    assert!(conn.is_dead());
    // Nothing can be sent on a dead connection: the requests come back unsent.
    assert!(conn
      .send(b"*1\r\n$4\r\nPING\r\n", vec![request(&queue, 6, b"PING")])
      .is_err());
  }

  #[test]
  fn a_write_larger_than_the_socket_takes_goes_out_through_the_backlog() {
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
      .worker_threads(1)
      .enable_all()
      .build()
      .unwrap();
    let owner = Arc::new(TestOwner::default());
    let queue = Arc::new(ReplyQueue::default());
    let handshake = Handshake {
      username: None,
      password: None,
      db: 0,
      set_name: false,
    };
    let owned: Arc<dyn Owner> = Arc::clone(&owner) as Arc<dyn Owner>;
    let conn = runtime
      .block_on(FastConn::connect("127.0.0.1", server.port, &handshake, None, owned, 1))
      .unwrap()
      .conn;
    // 16 MiB in one send: the socket takes part of it at once, the flusher
    // (registered with the reactor only while the backlog waits) the rest.
    let value = vec![b'v'; 16 << 20];
    let mut wire = Vec::new();
    resp::write_command(&mut wire, &[b"SET", b"t:big", &value]);
    resp::write_command(&mut wire, &[b"STRLEN", b"t:big"]);
    let mut slow = request(&queue, 1, b"SET");
    slow.deadline = Instant::now() + Duration::from_secs(20);
    let mut slow2 = request(&queue, 2, b"STRLEN");
    slow2.deadline = slow.deadline;
    assert!(conn.send(&wire, vec![slow, slow2]).is_ok());
    wait_until(|| owner.settled.load(Ordering::SeqCst) == 2);
    let (entries, _) = drained(&queue);
    assert_eq!(entries, vec![(8.0, ValueType::Ok), (16.0, ValueType::Number)]);
    assert!(owner.lost.lock().unwrap().is_empty());
    assert!(!conn.is_dead());
  }
}
