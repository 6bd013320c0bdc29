//! Redis Cluster hash slots: CRC16 (XMODEM, as Redis's `crc16.c`) of the key,
//! or of its hash tag, modulo 16384.
//!
//! Invariants:
//! - `key_slot(k)` equals what `CLUSTER KEYSLOT k` answers, for every byte
//!   string (checked against a live cluster-enabled redis-server in the tests).
//! - The hash tag is the bytes between the FIRST `{` and the first `}` after
//!   it, and only when there is at least one byte between them; otherwise the
//!   whole key is hashed (`{}x`, `x{`, `}{` hash whole; `{{a}}` hashes `{a`).
//! - `key_slot_parts(&[prefix, key])` equals `key_slot(prefix ++ key)` without
//!   building the concatenation (the wire key is `keyPrefix` + key), in one pass.

/// The number of hash slots of a Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

/// CRC16-CCITT/XMODEM: polynomial 0x1021, initial value 0, no reflection, no final xor.
const CRC16_TABLE: [u16; 256] = {
  let mut table = [0u16; 256];
  let mut i = 0;
  while i < 256 {
    let mut crc = (i as u16) << 8;
    let mut bit = 0;
    while bit < 8 {
      crc = if crc & 0x8000 != 0 {
        (crc << 1) ^ 0x1021
      } else {
        crc << 1
      };
      bit += 1;
    }
    table[i] = crc;
    i += 1;
  }
  table
};

#[inline]
fn crc16_step(crc: u16, byte: u8) -> u16 {
  (crc << 8) ^ CRC16_TABLE[(((crc >> 8) as u8) ^ byte) as usize]
}

/// CRC16/XMODEM of `bytes` (Redis's `crc16()`).
#[cfg(test)]
pub fn crc16(bytes: &[u8]) -> u16 {
  bytes.iter().fold(0, |crc, &b| crc16_step(crc, b))
}

/// The hash tag of `key`: the non-empty bytes between its first `{` and the
/// first `}` after that, if any.
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
  let open = key.iter().position(|&b| b == b'{')?;
  let len = key[open + 1..].iter().position(|&b| b == b'}')?;
  (len > 0).then(|| &key[open + 1..open + 1 + len])
}

/// The hash slot of `key`.
#[cfg(test)]
pub fn key_slot(key: &[u8]) -> u16 {
  key_slot_parts(&[key])
}

/// The hash slot of the concatenation of `parts` (e.g. `[keyPrefix, key]`),
/// computed in one pass without concatenating.
pub fn key_slot_parts(parts: &[&[u8]]) -> u16 {
  // Both CRCs run side by side: the whole key's, and the tag's once a `{` is
  // seen. The first `}` after the first `{` decides: a non-empty tag is the
  // answer at once; an empty one means the whole key is hashed.
  let mut whole = 0u16;
  let mut tag = 0u16;
  let mut state = Tag::NotOpened;
  for part in parts {
    for &b in *part {
      whole = crc16_step(whole, b);
      match state {
        Tag::NotOpened if b == b'{' => state = Tag::Open { len: 0 },
        Tag::Open { len } if b == b'}' => {
          if len > 0 {
            return tag % SLOT_COUNT;
          }
          state = Tag::Closed;
        }
        Tag::Open { len } => {
          tag = crc16_step(tag, b);
          state = Tag::Open { len: len + 1 };
        }
        _ => {}
      }
    }
  }
  whole % SLOT_COUNT
}

#[derive(Clone, Copy)]
enum Tag {
  NotOpened,
  Open {
    len: usize,
  },
  /// `{}`: an empty tag; the whole key is hashed, whatever follows.
  Closed,
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::core::cluster::testing::{Rng, TestNode};

  /// Keys whose hash tag rule is easy to get wrong.
  pub(crate) fn tricky_keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = [
      "",
      "{",
      "}",
      "{}",
      "}{",
      "{}{",
      "{{}}",
      "{{a}}",
      "{a}}",
      "{{a}",
      "a{b}c{d}",
      "{a}{b}",
      "a{}{b}",
      "{}{b}",
      "{}b}",
      "a{",
      "a}",
      "{a",
      "a{b",
      "a}b{c}",
      "foo",
      "bar",
      "123456789",
      "somekey",
      "foo{hash_tag}",
      "{user1000}.following",
      "{user1000}.followers",
      "lock:payout:7",
      "{lock:payout:7}:fence",
      "cache:user:42",
      "app:{tenant-9}:cache:user:1",
      "ratelimit:api:user%3A1",
      " { } ",
      "{ }",
      "日本{語}",
      "{日本}語",
      "emoji{🙂}x",
      "émoji-{é}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    keys.push((0u8..=255).collect());
    keys.push(vec![0, b'{', 0, b'}', 0]);
    keys.push(vec![b'{', 0xff, 0xfe, b'}']);
    keys.push(vec![0xff; 17]);
    keys.push(b"\r\n{\r\n}\r\n".to_vec());
    let mut long = vec![b'x'; 10_000];
    long.extend_from_slice(b"{tail}");
    keys.push(long);
    keys.push([vec![b'{'; 500], b"x}".to_vec()].concat());
    keys
  }

  #[test]
  fn crc16_matches_known_values() {
    // The check value of CRC-16/XMODEM, and the example in Redis's crc16.c.
    assert_eq!(crc16(b"123456789"), 0x31C3);
    assert_eq!(crc16(b""), 0);
    assert_eq!(crc16(b"A"), 0x58E5);
  }

  #[test]
  fn key_slots_match_the_cluster_specification_examples() {
    assert_eq!(key_slot(b"123456789"), 0x31C3, "below 16384, so the CRC itself");
    assert_eq!(key_slot(b"foo"), 12182);
    assert_eq!(key_slot(b"bar"), 5061);
    assert_eq!(key_slot(b"somekey"), 11058);
    assert_eq!(key_slot(b"foo{hash_tag}"), 2515);
    assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
    assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
  }

  #[test]
  fn hash_tags_follow_the_first_brace_rule() {
    assert_eq!(hash_tag(b"{}"), None);
    assert_eq!(hash_tag(b"{"), None);
    assert_eq!(hash_tag(b"}{"), None);
    assert_eq!(hash_tag(b"{{a}}"), Some(&b"{a"[..]));
    assert_eq!(hash_tag(b"a{b}c{d}"), Some(&b"b"[..]));
    assert_eq!(
      hash_tag(b"{}{b}"),
      None,
      "the first {{ decides even when its tag is empty"
    );
    assert_eq!(key_slot(b"{}{b}"), crc16(b"{}{b}") % 16384);
    assert_eq!(key_slot(b"a{b}c{d}"), key_slot(b"b"));
  }

  #[test]
  fn parts_hash_like_their_concatenation() {
    let mut rng = Rng::new(7);
    let alphabet = b"{}ab:";
    for _ in 0..20_000 {
      let len = rng.below(9) as usize;
      let key: Vec<u8> = (0..len)
        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
        .collect();
      let expected = match hash_tag(&key) {
        Some(tag) => crc16(tag) % 16384,
        None => crc16(&key) % 16384,
      };
      assert_eq!(key_slot(&key), expected, "{:?}", String::from_utf8_lossy(&key));
      for cut in 0..=key.len() {
        let (a, b) = key.split_at(cut);
        assert_eq!(
          key_slot_parts(&[a, b]),
          expected,
          "{:?} cut at {cut}",
          String::from_utf8_lossy(&key)
        );
        assert_eq!(key_slot_parts(&[a, &[], b]), expected);
      }
    }
  }

  /// Random keys: mostly printable with braces, some arbitrary bytes, some long.
  pub(crate) fn random_keys(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..count)
      .map(|i| {
        let len = match i % 10 {
          0 => rng.below(2000) as usize,
          _ => rng.below(24) as usize,
        };
        (0..len)
          .map(|_| match rng.below(8) {
            0 => b'{',
            1 => b'}',
            2 => rng.below(256) as u8,
            _ => b"abcxyz:0123-_"[rng.below(13) as usize],
          })
          .collect()
      })
      .collect()
  }

  /// Every key against `CLUSTER KEYSLOT` of a real cluster-enabled redis-server.
  #[test]
  fn key_slots_match_a_real_server() {
    let node = TestNode::start_cluster_enabled();
    let seed = Rng::seed_from_clock();
    let mut keys = tricky_keys();
    keys.extend(random_keys(seed, 3000));
    let commands: Vec<Vec<&[u8]>> = keys.iter().map(|k| vec![&b"CLUSTER"[..], b"KEYSLOT", k]).collect();
    let replies = node.pipeline(&commands);
    for (key, reply) in keys.iter().zip(replies) {
      let server = match reply {
        crate::core::cluster::testing::Reply::Int(n) => n as u16,
        other => panic!("CLUSTER KEYSLOT answered {other:?}"),
      };
      assert_eq!(
        key_slot(key),
        server,
        "key {:?} (seed {seed})",
        String::from_utf8_lossy(&key[..key.len().min(80)])
      );
    }
  }

  /// The vectors jest checks against a live cluster's CLUSTER KEYSLOT
  /// (`__test__/cluster-harness.test.js`): this test fails when they are not
  /// what `key_slot` answers. `YG_WRITE_KEYSLOT_FIXTURE=1 cargo test --lib
  /// keyslot_fixture` writes them afresh.
  #[test]
  fn keyslot_fixture_is_what_key_slot_answers() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("__test__/fixtures/cluster-keyslots.json");
    if std::env::var("YG_WRITE_KEYSLOT_FIXTURE").as_deref() == Ok("1") {
      let mut keys = tricky_keys();
      keys.extend(random_keys(0x5107, 500));
      let entries: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::json!({ "keyHex": hex(k), "slot": key_slot(k) }))
        .collect();
      let doc = serde_json::json!({
        "comment": "Hash slots computed by src/core/cluster/slot.rs key_slot(); checked against CLUSTER KEYSLOT by __test__/cluster-harness.test.js",
        "vectors": entries,
      });
      std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("the fixture exists (YG_WRITE_KEYSLOT_FIXTURE=1 writes it)");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() > 500);
    for v in vectors {
      let key = unhex(v["keyHex"].as_str().unwrap());
      assert_eq!(key_slot(&key) as u64, v["slot"].as_u64().unwrap(), "{}", v["keyHex"]);
    }
  }

  fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
  }

  fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
      .step_by(2)
      .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
      .collect()
  }
}
