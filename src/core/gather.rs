//! A multi-key command split per slot on a cluster (MGET, DEL, UNLINK, EXISTS,
//! TOUCH, MSET; see `cluster::command`): its parts travel as requests of their
//! own, possibly to several nodes, and each part's outcome lands here. When
//! the last part has answered, the merged reply is staged for the caller's
//! request — once; the first failure of any part settles it instead, and the
//! outcomes of the other parts are dropped.

use std::sync::{Arc, Mutex};

use redis::Value;

use super::cluster::command::{MergeError, Merged, PartReply, SplitPlan};
use super::error::{Failure, FailureKind};
use super::reply::{Extra, ReplyMode, ReplyQueue, Staged};
use super::resp::Frame;

/// The parts of one caller's request.
pub struct Gather {
  channel: Arc<ReplyQueue>,
  id: u32,
  mode: ReplyMode,
  plan: SplitPlan,
  state: Mutex<State>,
}

struct State {
  replies: Vec<Option<PartReply<Value>>>,
  missing: usize,
  /// The caller's request has been settled (merged, or failed).
  settled: bool,
}

impl Gather {
  pub fn new(channel: Arc<ReplyQueue>, id: u32, mode: ReplyMode, plan: SplitPlan) -> Arc<Self> {
    let parts = plan.parts.len();
    Arc::new(Gather {
      channel,
      id,
      mode,
      plan,
      state: Mutex::new(State {
        replies: (0..parts).map(|_| None).collect(),
        missing: parts,
        settled: false,
      }),
    })
  }

  /// Part `index` answered `frame` (its bytes in `buf`). Returns true when this
  /// settled the caller's request (the last part, or a failure).
  pub fn reply(&self, index: usize, frame: Frame, buf: &[u8], staged: &mut Staged) -> bool {
    let reply = match frame {
      Frame::Array(items) => Ok(PartReply::Values(items)),
      Frame::Int(n) => Ok(PartReply::Int(n)),
      Frame::Simple(r) if &buf[r.clone()] == b"OK" => Ok(PartReply::Ok),
      Frame::Error(r) => Err(Failure::new(FailureKind::Reply, String::from_utf8_lossy(&buf[r]))),
      _ => Err(Failure::new(
        FailureKind::Reply,
        format!("{}: a part answered an unexpected reply", self.plan.command),
      )),
    };
    match reply {
      Ok(reply) => self.put(index, reply, staged),
      Err(failure) => self.fail(&failure, staged),
    }
  }

  fn put(&self, index: usize, reply: PartReply<Value>, staged: &mut Staged) -> bool {
    let mut state = self.state.lock().unwrap();
    if state.settled || state.replies[index].is_some() {
      return false;
    }
    state.replies[index] = Some(reply);
    state.missing -= 1;
    if state.missing > 0 {
      return false;
    }
    state.settled = true;
    let replies: Vec<Result<PartReply<Value>, ()>> = state.replies.drain(..).map(|r| r.ok_or(())).collect();
    drop(state);
    match self.plan.merge(replies) {
      Ok(Merged::Values(values)) => staged.extra(&self.channel, self.id, Extra::Reply(Value::Array(values), self.mode)),
      Ok(Merged::Int(n)) => staged.number(&self.channel, self.id, n as f64),
      Ok(Merged::Ok) => staged.ok(&self.channel, self.id),
      Err(error) => {
        let message = match error {
          MergeError::Shape { part, slot, expected } => {
            format!(
              "{}: part {part} (slot {slot}) did not answer {expected}",
              self.plan.command
            )
          }
          MergeError::Count { expected, got } => format!("{}: {got} of {expected} parts answered", self.plan.command),
          MergeError::Part { part, slot, .. } => format!("{}: part {part} (slot {slot}) failed", self.plan.command),
        };
        staged.failure(&self.channel, self.id, &Failure::new(FailureKind::Reply, message));
      }
    }
    true
  }

  /// A part failed (an error reply, a timeout, a lost connection): the
  /// caller's request fails with it, unless it was settled already. Returns
  /// true when this settled it.
  pub fn fail(&self, failure: &Failure, staged: &mut Staged) -> bool {
    let mut state = self.state.lock().unwrap();
    if std::mem::replace(&mut state.settled, true) {
      return false;
    }
    drop(state);
    let failure = Failure {
      message: format!(
        "{} split across slots: {} (other parts may have been applied)",
        self.plan.command, failure.message
      ),
      ..failure.clone()
    };
    staged.failure(&self.channel, self.id, &failure);
    true
  }
}
