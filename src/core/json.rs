//! What JSON.stringify writes as it is: the check behind the JS serializer
//! compiled per shape (`lib/encoded.js`), which writes the strings that need
//! no escape between quotes instead of escaping them one by one.

/// Whether JSON.stringify writes the UTF-16 `units` unchanged between quotes:
/// no control character (below U+0020), no '"', no '\\', and no surrogate (a
/// lone one is written as an escape; a pair is left to JSON.stringify too).
pub fn is_plain(units: &[u16]) -> bool {
  // No early exit: the loop is vectorized, and strings are mostly plain.
  !units.iter().fold(false, |escape, &u| {
    escape | (u < 0x20) | (u == 0x22) | (u == 0x5c) | ((u & 0xf800) == 0xd800)
  })
}

#[cfg(test)]
mod tests {
  use super::is_plain;

  fn units(text: &str) -> Vec<u16> {
    text.encode_utf16().collect()
  }

  #[test]
  fn plain_is_what_json_writes_unchanged() {
    for text in [
      "",
      "x",
      "café ü",
      "\u{2028}\u{2029}",
      "a b/c'd`e",
      "\u{7f}\u{ff}\u{fffd}",
      &"x".repeat(1000),
    ] {
      assert!(is_plain(&units(text)), "{text:?}");
    }
    for text in [
      "\"",
      "\\",
      "\n",
      "\u{0}",
      "\u{1f}",
      "ok\"",
      "😀",
      &format!("{}\t", "x".repeat(999)),
    ] {
      assert!(!is_plain(&units(text)), "{text:?}");
    }
    // Lone surrogates, as JS strings may hold them.
    assert!(!is_plain(&[0x61, 0xd800]));
    assert!(!is_plain(&[0xdfff, 0x61]));
    // Every unit below U+0020, and the ones around the refused ones.
    for u in 0u16..0x20 {
      assert!(!is_plain(&[0x61, u]));
    }
    for u in [0x20u16, 0x21, 0x23, 0x5b, 0x5d, 0xd7ff, 0xe000, 0xffff] {
      assert!(is_plain(&[u]), "{u:#x}");
    }
  }
}
