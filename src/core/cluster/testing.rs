//! Test support (compiled for `cargo test` only): real redis-servers in
//! cluster mode on free ports of 127.0.0.1, each with its own temp dir for
//! nodes.conf, never persisting data, killed (by their `Child`) when dropped.
//! The jest harness (`__test__/support/cluster.js`) is the full-featured one;
//! this is the minimum the Rust tests need: one cluster-enabled node, or a
//! cluster created with `redis-cli --cluster create`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::core::resp;

pub(crate) use super::topology::Resp as Reply;

/// A small deterministic PRNG (xorshift64*) so that failures print a seed that reproduces them.
pub(crate) struct Rng(u64);

impl Rng {
  pub fn new(seed: u64) -> Self {
    Rng(seed.max(1))
  }

  pub fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
      .duration_since(std::time::UNIX_EPOCH)
      .map(|d| d.as_nanos() as u64)
      .unwrap_or(1)
  }

  pub fn next(&mut self) -> u64 {
    let mut x = self.0;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    self.0 = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
  }

  /// A number in `0..n`.
  pub fn below(&mut self, n: u64) -> u64 {
    self.next() % n.max(1)
  }
}

fn free_port() -> u16 {
  std::net::TcpListener::bind("127.0.0.1:0")
    .unwrap()
    .local_addr()
    .unwrap()
    .port()
}

fn temp_dir(tag: &str) -> PathBuf {
  static COUNTER: AtomicUsize = AtomicUsize::new(0);
  let dir = std::env::temp_dir().join(format!(
    "yg-rust-cluster-{tag}-{}-{}-{}",
    std::process::id(),
    COUNTER.fetch_add(1, Ordering::Relaxed),
    Rng::seed_from_clock() % 1_000_000
  ));
  std::fs::create_dir_all(&dir).unwrap();
  dir
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
  let deadline = Instant::now() + timeout;
  while !check() {
    assert!(Instant::now() < deadline, "timed out waiting for {what}");
    std::thread::sleep(Duration::from_millis(50));
  }
}

/// One redis-server with `--cluster-enabled yes`.
pub(crate) struct TestNode {
  child: Child,
  pub port: u16,
  dir: PathBuf,
}

impl TestNode {
  fn spawn(node_timeout_ms: u32) -> Self {
    let port = free_port();
    let mut bus = free_port();
    while bus == port {
      bus = free_port();
    }
    let dir = temp_dir("node");
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
      .args(["--cluster-enabled", "yes", "--cluster-port", &bus.to_string()])
      .args(["--cluster-node-timeout", &node_timeout_ms.to_string()])
      .arg("--cluster-config-file")
      .arg(dir.join("nodes.conf"))
      .arg("--dir")
      .arg(&dir)
      .stdout(Stdio::null())
      .stderr(Stdio::null())
      .spawn()
      .expect("redis-server must be on PATH for these tests");
    let node = TestNode { child, port, dir };
    wait_until("redis-server to listen", Duration::from_secs(10), || {
      TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    node
  }

  /// A single cluster-enabled node (no slots: enough for CLUSTER KEYSLOT).
  pub fn start_cluster_enabled() -> Self {
    Self::spawn(2000)
  }

  /// Sends `commands` pipelined on one connection and returns each reply's raw bytes.
  pub fn pipeline_raw(&self, commands: &[Vec<&[u8]>]) -> Vec<Vec<u8>> {
    let mut socket = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut wire = Vec::new();
    for args in commands {
      resp::write_command(&mut wire, args);
    }
    socket.write_all(&wire).unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut replies = Vec::with_capacity(commands.len());
    let mut at = 0;
    while replies.len() < commands.len() {
      match resp::parse_frame(&buf, at).unwrap() {
        Some((_, next)) => {
          replies.push(buf[at..next].to_vec());
          at = next;
        }
        None => {
          let n = socket.read(&mut chunk).unwrap();
          assert!(n > 0, "the server closed the connection");
          buf.extend_from_slice(&chunk[..n]);
        }
      }
    }
    replies
  }

  pub fn pipeline(&self, commands: &[Vec<&[u8]>]) -> Vec<Reply> {
    self
      .pipeline_raw(commands)
      .iter()
      .map(|raw| super::topology::parse_reply(raw).unwrap())
      .collect()
  }

  /// One command's raw reply.
  pub fn raw(&self, args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    self.pipeline_raw(&[args]).pop().unwrap()
  }

  /// One command whose reply is a string (bulk or simple).
  pub fn text(&self, args: &[&str]) -> String {
    match super::topology::parse_reply(&self.raw(args)).unwrap() {
      Reply::Str(s) => String::from_utf8(s).unwrap(),
      other => panic!("{args:?} answered {other:?}"),
    }
  }
}

impl Drop for TestNode {
  fn drop(&mut self) {
    let _ = self.child.kill();
    let _ = self.child.wait();
    let _ = std::fs::remove_dir_all(&self.dir);
  }
}

/// A cluster of `masters` masters with `replicas` replicas each.
pub(crate) struct TestCluster {
  pub nodes: Vec<TestNode>,
}

impl TestCluster {
  pub fn start(masters: usize, replicas: usize) -> Self {
    let nodes: Vec<TestNode> = (0..masters * (1 + replicas)).map(|_| TestNode::spawn(1500)).collect();
    let mut create = Command::new("redis-cli");
    create.arg("--cluster").arg("create");
    for node in &nodes {
      create.arg(format!("127.0.0.1:{}", node.port));
    }
    let output = create
      .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
      .output()
      .expect("redis-cli must be on PATH for these tests");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
      output.status.success() && !stdout.contains("[ERR]"),
      "redis-cli --cluster create failed: {stdout}"
    );
    let cluster = TestCluster { nodes };
    let expected_replicas = masters * replicas;
    wait_until("the cluster to be formed", Duration::from_secs(30), || {
      cluster.nodes.iter().all(|node| {
        let info = node.text(&["CLUSTER", "INFO"]);
        let text = node.text(&["CLUSTER", "NODES"]);
        let entries: Vec<&str> = text.lines().collect();
        info.contains("cluster_state:ok")
          && entries.iter().filter(|l| l.contains("slave")).count() == expected_replicas
          && !entries.iter().any(|l| l.contains("fail") || l.contains("handshake"))
          && (!text.lines().any(|l| l.contains("myself,slave"))
            || node.text(&["INFO", "replication"]).contains("master_link_status:up"))
      })
    });
    cluster
  }
}
