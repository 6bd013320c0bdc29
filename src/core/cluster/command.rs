//! Where a command goes on a cluster: the hash slot of its keys, found with the
//! one command table (`keys::key_spec` / `keys::key_positions`), and for the
//! multi-key commands that can be split (MGET, DEL, UNLINK, EXISTS, TOUCH,
//! MSET) a plan that sends one command per slot and a rule that merges the
//! replies back into the one reply the caller expects.
//!
//! Invariants:
//! - Slots are computed on the WIRE keys: `prefix` (the `keyPrefix` the
//!   boundary adds where the table says) followed by the key, without
//!   concatenating (`slot::key_slot_parts`).
//! - `command_slot` never guesses: a command the table does not know is
//!   `UnknownCommand`, malformed key counts are `BadArguments`, keys in two or
//!   more slots are `CrossSlot` — each before anything is sent.
//! - A split is per SLOT, not per node: Redis refuses a multi-key command whose
//!   keys are in different slots even when one node serves them all, and the
//!   same key always lands in the same part (so `DEL k k` still counts 1 and
//!   `EXISTS k k` counts 2, as on one server).
//! - Parts are in order of each slot's first key in the caller's arguments;
//!   every key (MSET: key and value) is in exactly one part; `merge` puts MGET
//!   values back at the caller's positions.
//! - A split command is not atomic: MSET across slots can be partly applied,
//!   and a failed part of DEL leaves the others done. `merge` reports the
//!   first failed part (in plan order) and says nothing about the others, as
//!   redis-rs's multi-slot routing does; MSETNX is never split (its
//!   all-or-nothing promise cannot be kept across slots): CrossSlot.
//!
//! `NoKeys` means only that the command names no key. Whether it belongs on
//! any one node (PING, TIME) or on every master (DBSIZE, FLUSHDB, SCAN,
//! SCRIPT LOAD/FLUSH, FUNCTION LOAD, RANDOMKEY …) is the fan-out layer's call.

use std::fmt;

use super::slot::key_slot_parts;
use crate::core::command::{key_positions, key_spec, KeySpec};

/// Where a single (unsplit) command goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandSlot {
  /// The command names no key.
  NoKeys,
  /// Every key is in this slot.
  Slot(u16),
}

/// Why a command cannot be routed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
  /// No arguments at all.
  Empty,
  /// The command table does not know this command (its keys are unknown).
  UnknownCommand(String),
  /// The key count or layout is malformed (e.g. EVAL's numkeys, MSET's pairs).
  BadArguments { command: String, reason: String },
  /// Keys in several slots, and the command cannot be split.
  CrossSlot(CrossSlot),
}

/// Keys of one command in several slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossSlot {
  /// The command name, upper case.
  pub command: String,
  /// Each slot with the positions (in the caller's arguments, the name being 0)
  /// of the keys in it, in order of first appearance.
  pub slots: Vec<(u16, Vec<usize>)>,
}

impl fmt::Display for CrossSlot {
  /// Names slots and argument positions, never the keys themselves (they may hold user data).
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
      f,
      "CROSSSLOT Keys in request don't hash to the same slot: {} has keys in {} slots (",
      self.command,
      self.slots.len()
    )?;
    const SHOWN: usize = 6;
    for (i, (slot, positions)) in self.slots.iter().take(SHOWN).enumerate() {
      if i > 0 {
        f.write_str("; ")?;
      }
      let list: Vec<String> = positions.iter().map(|p| p.to_string()).collect();
      let noun = if positions.len() == 1 { "argument" } else { "arguments" };
      write!(f, "slot {slot}: {noun} {}", list.join(", "))?;
    }
    if self.slots.len() > SHOWN {
      write!(f, "; and {} more", self.slots.len() - SHOWN)?;
    }
    f.write_str("); give the keys one {hash tag} to keep them in one slot")
  }
}

impl fmt::Display for RouteError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      RouteError::Empty => f.write_str("no command"),
      RouteError::UnknownCommand(name) => write!(f, "{name}: the command table does not know where its keys are"),
      RouteError::BadArguments { command, reason } => write!(f, "{command}: {reason}"),
      RouteError::CrossSlot(c) => c.fmt(f),
    }
  }
}

impl std::error::Error for RouteError {}

/// A command's upper-case name, its key positions (indices into the caller's
/// `args`, the name being 0) and their slots.
struct Keys {
  name: String,
  positions: Vec<usize>,
  slots: Vec<u16>,
}

fn keys_of<A: AsRef<[u8]>>(prefix: &[u8], args: &[A]) -> Result<Keys, RouteError> {
  let name = args.first().ok_or(RouteError::Empty)?.as_ref();
  let name = String::from_utf8_lossy(name).to_ascii_uppercase();
  let spec = key_spec(&name);
  if spec == KeySpec::Unknown {
    return Err(RouteError::UnknownCommand(name));
  }
  let positions: Vec<usize> = key_positions(spec, &args[1..])
    .map_err(|reason| RouteError::BadArguments {
      command: name.clone(),
      reason,
    })?
    .into_iter()
    .map(|p| p + 1)
    .collect();
  let slots = positions
    .iter()
    .map(|&p| key_slot_parts(&[prefix, args[p].as_ref()]))
    .collect();
  Ok(Keys { name, positions, slots })
}

/// Groups key positions by slot, in order of each slot's first key.
fn by_slot(keys: &Keys) -> Vec<(u16, Vec<usize>)> {
  let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
  for (&position, &slot) in keys.positions.iter().zip(&keys.slots) {
    match groups.iter_mut().find(|(s, _)| *s == slot) {
      Some((_, members)) => members.push(position),
      None => groups.push((slot, vec![position])),
    }
  }
  groups
}

/// The one slot of a command's keys (`args[0]` is the name; keys without
/// `prefix`). The client routes with `route`, which splits what it can.
#[cfg(test)]
pub fn command_slot<A: AsRef<[u8]>>(prefix: &[u8], args: &[A]) -> Result<CommandSlot, RouteError> {
  let keys = keys_of(prefix, args)?;
  single(&keys)
}

fn single(keys: &Keys) -> Result<CommandSlot, RouteError> {
  match keys.slots.first() {
    None => Ok(CommandSlot::NoKeys),
    Some(&first) if keys.slots.iter().all(|&s| s == first) => Ok(CommandSlot::Slot(first)),
    Some(_) => Err(RouteError::CrossSlot(CrossSlot {
      command: keys.name.clone(),
      slots: by_slot(keys),
    })),
  }
}

/// How the replies of a split command's parts become the caller's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
  /// MGET: each part answers an array of values for its keys; the caller gets
  /// one array in the order of its own keys.
  Values,
  /// DEL, UNLINK, EXISTS, TOUCH: the sum of the parts' integers.
  Sum,
  /// MSET: `OK` when every part answered `OK`.
  AllOk,
}

/// One command of a split: its arguments and which of the caller's keys it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
  pub slot: u16,
  /// Indices into the caller's arguments: 0 (the name) first, then this part's
  /// keys (MSET: key, value, key, value…) in the caller's order.
  pub args: Vec<usize>,
  /// For each key of this part, its ordinal among the caller's keys (0 = first key).
  pub keys: Vec<usize>,
}

impl Part {
  /// This part's arguments, borrowed from the caller's.
  pub fn select<'a, A: AsRef<[u8]>>(&self, args: &'a [A]) -> Vec<&'a [u8]> {
    self.args.iter().map(|&i| args[i].as_ref()).collect()
  }
}

/// A multi-key command split into one command per slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitPlan {
  pub command: String,
  pub merge: Merge,
  pub parts: Vec<Part>,
  /// How many keys the caller gave.
  pub key_count: usize,
}

/// Where a command goes once splitting is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
  /// No key: the fan-out layer decides (see the module header).
  NoKeys,
  /// One slot.
  Slot(u16),
  /// Several slots, and the command can be split.
  Split(SplitPlan),
}

/// The commands that can be split per slot, and how their replies merge.
fn splittable(name: &str) -> Option<Merge> {
  Some(match name {
    "MGET" => Merge::Values,
    "DEL" | "UNLINK" | "EXISTS" | "TOUCH" => Merge::Sum,
    "MSET" => Merge::AllOk,
    _ => return None,
  })
}

/// Like `command_slot`, but a splittable command (MGET, DEL, UNLINK, EXISTS,
/// TOUCH, MSET) with keys in several slots becomes a `SplitPlan` instead of a
/// CrossSlot error.
pub fn route<A: AsRef<[u8]>>(prefix: &[u8], args: &[A]) -> Result<Route, RouteError> {
  let keys = keys_of(prefix, args)?;
  let merge = splittable(&keys.name);
  if merge == Some(Merge::AllOk) && (args.len() < 3 || args.len().is_multiple_of(2)) {
    return Err(RouteError::BadArguments {
      command: keys.name,
      reason: "needs key value pairs".into(),
    });
  }
  match (single(&keys), merge) {
    (Ok(CommandSlot::NoKeys), _) => Ok(Route::NoKeys),
    (Ok(CommandSlot::Slot(s)), _) => Ok(Route::Slot(s)),
    (Err(RouteError::CrossSlot(_)), Some(merge)) => Ok(Route::Split(plan(&keys, merge))),
    (Err(e), _) => Err(e),
  }
}

fn plan(keys: &Keys, merge: Merge) -> SplitPlan {
  let mut parts: Vec<Part> = Vec::new();
  for (ordinal, (&position, &slot)) in keys.positions.iter().zip(&keys.slots).enumerate() {
    let part = match parts.iter().position(|p| p.slot == slot) {
      Some(i) => &mut parts[i],
      None => {
        parts.push(Part {
          slot,
          args: vec![0],
          keys: Vec::new(),
        });
        parts.last_mut().unwrap()
      }
    };
    part.args.push(position);
    if merge == Merge::AllOk {
      part.args.push(position + 1); // MSET's value follows its key
    }
    part.keys.push(ordinal);
  }
  SplitPlan {
    command: keys.name.clone(),
    merge,
    parts,
    key_count: keys.positions.len(),
  }
}

/// What one part answered, as far as merging needs to know.
#[derive(Clone, Debug, PartialEq)]
pub enum PartReply<V> {
  /// An array of values (MGET).
  Values(Vec<V>),
  /// An integer (DEL, UNLINK, EXISTS, TOUCH).
  Int(i64),
  /// `+OK` (MSET).
  Ok,
}

/// The caller's reply, merged.
#[derive(Clone, Debug, PartialEq)]
pub enum Merged<V> {
  Values(Vec<V>),
  Int(i64),
  Ok,
}

/// Why the parts' replies could not be merged.
#[derive(Clone, Debug, PartialEq)]
pub enum MergeError<E> {
  /// A part failed (the first in plan order); other parts may have been applied.
  Part { part: usize, slot: u16, error: E },
  /// A part answered something of the wrong kind or length.
  Shape {
    part: usize,
    slot: u16,
    expected: &'static str,
  },
  /// Not one reply per part.
  Count { expected: usize, got: usize },
}

impl SplitPlan {
  /// Merges one reply per part (in `parts` order) into the caller's reply.
  pub fn merge<V, E>(&self, replies: Vec<Result<PartReply<V>, E>>) -> Result<Merged<V>, MergeError<E>> {
    if replies.len() != self.parts.len() {
      return Err(MergeError::Count {
        expected: self.parts.len(),
        got: replies.len(),
      });
    }
    let mut values: Vec<Option<V>> = match self.merge {
      Merge::Values => (0..self.key_count).map(|_| None).collect(),
      _ => Vec::new(),
    };
    let mut sum: i64 = 0;
    for (index, (part, reply)) in self.parts.iter().zip(replies).enumerate() {
      let shape = |expected| MergeError::Shape {
        part: index,
        slot: part.slot,
        expected,
      };
      let reply = reply.map_err(|error| MergeError::Part {
        part: index,
        slot: part.slot,
        error,
      })?;
      match (self.merge, reply) {
        (Merge::Values, PartReply::Values(got)) => {
          if got.len() != part.keys.len() {
            return Err(shape("one value per key"));
          }
          for (&ordinal, value) in part.keys.iter().zip(got) {
            values[ordinal] = Some(value);
          }
        }
        (Merge::Sum, PartReply::Int(n)) => sum = sum.checked_add(n).ok_or_else(|| shape("an integer"))?,
        (Merge::AllOk, PartReply::Ok) => {}
        (Merge::Values, _) => return Err(shape("an array of values")),
        (Merge::Sum, _) => return Err(shape("an integer")),
        (Merge::AllOk, _) => return Err(shape("OK")),
      }
    }
    Ok(match self.merge {
      // Every ordinal is in exactly one part (plan's invariant), so none is left None.
      Merge::Values => Merged::Values(values.into_iter().map(|v| v.expect("every key has a part")).collect()),
      Merge::Sum => Merged::Int(sum),
      Merge::AllOk => Merged::Ok,
    })
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::cluster::slot::key_slot;
  use crate::core::cluster::testing::{Reply, Rng, TestCluster};
  use crate::core::cluster::topology::{Address, Context, NatMap, SlotMap};

  fn args(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
  }

  #[test]
  fn single_slot_commands() {
    assert_eq!(command_slot(b"", &args(&["PING"])), Ok(CommandSlot::NoKeys));
    assert_eq!(
      command_slot(b"", &args(&["get", "foo"])),
      Ok(CommandSlot::Slot(key_slot(b"foo")))
    );
    assert_eq!(
      command_slot(b"", &args(&["MGET", "{u1}a", "{u1}b", "u1"])),
      Ok(CommandSlot::Slot(key_slot(b"u1")))
    );
    // EVAL with its keys in one slot, and with no keys.
    assert_eq!(
      command_slot(b"", &args(&["EVAL", "return 1", "2", "lock:{x}", "{x}:fence", "arg"])),
      Ok(CommandSlot::Slot(key_slot(b"x")))
    );
    assert_eq!(
      command_slot(b"", &args(&["EVALSHA", "abc", "0", "arg"])),
      Ok(CommandSlot::NoKeys)
    );
    // The prefix is part of the wire key: it moves the slot unless the key has a tag.
    assert_eq!(
      command_slot(b"app:", &args(&["GET", "foo"])),
      Ok(CommandSlot::Slot(key_slot(b"app:foo")))
    );
    assert_eq!(
      command_slot(b"app:", &args(&["GET", "{t}foo"])),
      Ok(CommandSlot::Slot(key_slot(b"t")))
    );
    // A prefix holding the tag keeps every key of a command together.
    assert_eq!(
      command_slot(b"{tenant}:", &args(&["MSETNX", "a", "1", "b", "2"])),
      Ok(CommandSlot::Slot(key_slot(b"tenant")))
    );
    // The ZUNIONSTORE destination counts too.
    assert!(matches!(
      command_slot(b"", &args(&["ZUNIONSTORE", "dst", "2", "{a}1", "{a}2"])),
      Err(RouteError::CrossSlot(_))
    ));
  }

  #[test]
  fn refusals_before_anything_is_sent() {
    let empty: Vec<Vec<u8>> = Vec::new();
    assert_eq!(command_slot(b"", &empty), Err(RouteError::Empty));
    assert_eq!(
      command_slot(b"", &args(&["NOSUCHCMD", "k"])),
      Err(RouteError::UnknownCommand("NOSUCHCMD".into()))
    );
    assert!(matches!(
      command_slot(b"", &args(&["EVAL", "s", "3", "a"])),
      Err(RouteError::BadArguments { .. })
    ));
    assert!(matches!(
      route(b"", &args(&["MSET", "a", "1", "b"])),
      Err(RouteError::BadArguments { .. })
    ));
    let err = command_slot(b"", &args(&["MSETNX", "foo", "1", "bar", "2", "{foo}x", "3"])).unwrap_err();
    let RouteError::CrossSlot(cross) = &err else {
      panic!("{err:?}")
    };
    assert_eq!(cross.command, "MSETNX");
    assert_eq!(
      cross.slots,
      vec![(key_slot(b"foo"), vec![1, 5]), (key_slot(b"bar"), vec![3])]
    );
    let text = err.to_string();
    assert!(text.starts_with("CROSSSLOT"), "{text}");
    assert!(
      text.contains(&format!("slot {}: arguments 1, 5", key_slot(b"foo"))),
      "{text}"
    );
    assert!(
      !text.contains("foo") && !text.contains("bar"),
      "no key in the message: {text}"
    );
    // MSETNX is never split; neither is a script.
    assert!(matches!(
      route(b"", &args(&["MSETNX", "foo", "1", "bar", "2"])),
      Err(RouteError::CrossSlot(_))
    ));
    assert!(matches!(
      route(b"", &args(&["EVAL", "s", "2", "foo", "bar"])),
      Err(RouteError::CrossSlot(_))
    ));
    // A long list is cut short in the message.
    let many: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let mut words = vec!["SINTER"];
    words.extend(many.iter().map(String::as_str));
    let text = command_slot(b"", &args(&words)).unwrap_err().to_string();
    assert!(text.contains("more"), "{text}");
  }

  #[test]
  fn splits_keep_the_callers_order_and_every_key_once() {
    let mut rng = Rng::new(99);
    for command in ["MGET", "DEL", "UNLINK", "EXISTS", "TOUCH", "MSET"] {
      for round in 0..200 {
        let count = 1 + rng.below(12) as usize;
        // Few distinct keys, so that duplicates and shared tags occur.
        let keys: Vec<String> = (0..count)
          .map(|_| match rng.below(3) {
            0 => format!("{{t{}}}x{}", rng.below(3), rng.below(4)),
            _ => format!("k{}", rng.below(6)),
          })
          .collect();
        let mut words = vec![command.to_string()];
        for (i, k) in keys.iter().enumerate() {
          words.push(k.clone());
          if command == "MSET" {
            words.push(format!("v{i}"));
          }
        }
        let a: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        let distinct: std::collections::BTreeSet<u16> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
        match route(b"", &a).unwrap() {
          Route::Slot(s) => assert_eq!(distinct.into_iter().collect::<Vec<_>>(), vec![s]),
          Route::NoKeys => panic!("keys were given"),
          Route::Split(plan) => {
            assert!(distinct.len() > 1, "{command} round {round}");
            assert_eq!(plan.parts.len(), distinct.len());
            assert_eq!(plan.key_count, count);
            let mut seen = vec![0; count];
            for part in &plan.parts {
              assert_eq!(part.args[0], 0);
              let selected = part.select(&a);
              let step = if command == "MSET" { 2 } else { 1 };
              assert_eq!(selected.len(), 1 + part.keys.len() * step);
              for (j, &ordinal) in part.keys.iter().enumerate() {
                seen[ordinal] += 1;
                let key = selected[1 + j * step];
                assert_eq!(key, keys[ordinal].as_bytes());
                assert_eq!(key_slot(key), part.slot);
                if command == "MSET" {
                  assert_eq!(selected[2 + j * step], format!("v{ordinal}").as_bytes());
                }
              }
              // Within a part, the caller's order.
              assert!(part.keys.windows(2).all(|w| w[0] < w[1]));
            }
            assert!(seen.iter().all(|&n| n == 1));
            // Parts in order of their first key.
            let firsts: Vec<usize> = plan.parts.iter().map(|p| p.keys[0]).collect();
            assert!(firsts.windows(2).all(|w| w[0] < w[1]));
          }
        }
      }
    }
  }

  #[test]
  fn merge_rules() {
    let a = args(&["MGET", "foo", "bar", "{foo}2", "baz"]);
    let Route::Split(plan) = route(b"", &a).unwrap() else {
      panic!()
    };
    assert_eq!(plan.merge, Merge::Values);
    // Each part answers its keys' values in its own order.
    let replies: Vec<Result<PartReply<String>, String>> = plan
      .parts
      .iter()
      .map(|p| {
        Ok(PartReply::Values(
          p.keys.iter().map(|&k| format!("value-of-{k}")).collect(),
        ))
      })
      .collect();
    assert_eq!(
      plan.merge(replies),
      Ok(Merged::Values((0..4).map(|k| format!("value-of-{k}")).collect()))
    );
    // A part with the wrong number of values, a failed part, a missing part.
    let short: Vec<Result<PartReply<String>, String>> = plan
      .parts
      .iter()
      .map(|_| Ok(PartReply::Values(vec!["x".into()])))
      .collect();
    assert!(matches!(plan.merge(short), Err(MergeError::Shape { .. })));
    let mut failing: Vec<Result<PartReply<String>, String>> = plan
      .parts
      .iter()
      .map(|p| Ok(PartReply::Values(vec![String::new(); p.keys.len()])))
      .collect();
    failing[1] = Err("CLUSTERDOWN".into());
    failing[2] = Err("later".into());
    assert_eq!(
      plan.merge(failing),
      Err(MergeError::Part {
        part: 1,
        slot: plan.parts[1].slot,
        error: "CLUSTERDOWN".to_string()
      })
    );
    assert_eq!(
      plan.merge::<String, String>(vec![]),
      Err(MergeError::Count {
        expected: plan.parts.len(),
        got: 0
      })
    );

    let Route::Split(del) = route(b"", &args(&["DEL", "foo", "bar", "foo"])).unwrap() else {
      panic!()
    };
    assert_eq!(del.merge, Merge::Sum);
    assert_eq!(del.parts[0].keys, vec![0, 2], "the same key stays in one part");
    let ints: Vec<Result<PartReply<()>, ()>> = vec![Ok(PartReply::Int(1)), Ok(PartReply::Int(1))];
    assert_eq!(del.merge(ints), Ok(Merged::Int(2)));
    let wrong: Vec<Result<PartReply<()>, ()>> = vec![Ok(PartReply::Int(1)), Ok(PartReply::Ok)];
    assert!(matches!(del.merge(wrong), Err(MergeError::Shape { .. })));

    let Route::Split(mset) = route(b"", &args(&["MSET", "foo", "1", "bar", "2"])).unwrap() else {
      panic!()
    };
    assert_eq!(mset.merge, Merge::AllOk);
    let oks: Vec<Result<PartReply<()>, ()>> = vec![Ok(PartReply::Ok), Ok(PartReply::Ok)];
    assert_eq!(mset.merge(oks), Ok(Merged::Ok));
  }

  /// The plans and merge rules against a live 3-master cluster: every part
  /// goes to the master the topology names for its slot, none is refused
  /// (no MOVED, no CROSSSLOT), and the merged replies are what one server
  /// would have answered.
  #[test]
  fn split_commands_on_a_live_cluster() {
    let cluster = TestCluster::start(3, 0);
    let seed = &cluster.nodes[0];
    let asked = Address::new("127.0.0.1", seed.port);
    let nat = NatMap::default();
    let cx = Context {
      asked: &asked,
      tls: false,
      nat: &nat,
    };
    let map = SlotMap::from_shards(&seed.raw(&["CLUSTER", "SHARDS"]), cx).unwrap();
    let node_for = |slot: u16| {
      let address = &map.master_of(slot).unwrap().address;
      cluster.nodes.iter().find(|n| n.port == address.port).unwrap()
    };
    let run = |words: &[String]| -> Vec<Reply> {
      let a: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
      match route(b"yg:", &a).unwrap() {
        Route::Split(plan) => plan
          .parts
          .iter()
          .map(|part| {
            // The wire command: keys get the prefix, MSET's values do not.
            let step = if plan.merge == Merge::AllOk { 2 } else { 1 };
            let wire: Vec<Vec<u8>> = part
              .args
              .iter()
              .enumerate()
              .map(|(j, &i)| {
                let is_key = j > 0 && (step == 1 || j % 2 == 1);
                if is_key {
                  [&b"yg:"[..], &a[i]].concat()
                } else {
                  a[i].clone()
                }
              })
              .collect();
            let sent: Vec<&[u8]> = wire.iter().map(Vec::as_slice).collect();
            node_for(part.slot).pipeline(&[sent]).pop().unwrap()
          })
          .collect(),
        other => panic!("{other:?}"),
      }
    };
    let keys: Vec<String> = (0..40).map(|i| format!("key:{i}")).collect();
    let mut mset = vec!["MSET".to_string()];
    for k in &keys {
      mset.push(k.clone());
      mset.push(format!("value of {k}"));
    }
    let a: Vec<Vec<u8>> = mset.iter().map(|w| w.as_bytes().to_vec()).collect();
    let Route::Split(plan) = route(b"yg:", &a).unwrap() else {
      panic!()
    };
    let to_part = |r: Reply| match r {
      Reply::Str(s) if s == b"OK" => Ok(PartReply::Ok),
      Reply::Int(n) => Ok(PartReply::Int(n)),
      Reply::Array(values) => Ok(PartReply::Values(values)),
      Reply::Error(e) => Err(e),
      other => panic!("{other:?}"),
    };
    let replies: Vec<_> = run(&mset).into_iter().map(to_part).collect();
    assert_eq!(plan.merge(replies), Ok(Merged::Ok));

    // MGET in a shuffled order, with a missing key and a duplicate.
    let mut order: Vec<String> = keys.iter().rev().cloned().collect();
    order.insert(7, "missing".into());
    order.push(keys[3].clone());
    let mut mget = vec!["MGET".to_string()];
    mget.extend(order.iter().cloned());
    let a: Vec<Vec<u8>> = mget.iter().map(|w| w.as_bytes().to_vec()).collect();
    let Route::Split(plan) = route(b"yg:", &a).unwrap() else {
      panic!()
    };
    assert!(plan.parts.len() > 10, "40 keys spread over many slots");
    let replies: Vec<_> = run(&mget).into_iter().map(to_part).collect();
    let expected: Vec<Reply> = order
      .iter()
      .map(|k| {
        if k == "missing" {
          Reply::Nil
        } else {
          Reply::Str(format!("value of {k}").into_bytes())
        }
      })
      .collect();
    assert_eq!(plan.merge(replies), Ok(Merged::Values(expected)));

    // EXISTS counts duplicates; DEL does not; then nothing is left.
    for (command, expected) in [("EXISTS", 42), ("TOUCH", 42), ("DEL", 40), ("EXISTS", 0)] {
      let mut words = vec![command.to_string()];
      words.extend(keys.iter().cloned());
      words.push(keys[0].clone());
      words.push(keys[1].clone());
      let a: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
      let Route::Split(plan) = route(b"yg:", &a).unwrap() else {
        panic!()
      };
      let replies: Vec<_> = run(&words).into_iter().map(to_part).collect();
      assert_eq!(plan.merge(replies), Ok(Merged::Int(expected)), "{command}");
    }
  }
}
