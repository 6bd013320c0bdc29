//! JSON text of a known shape, both ways. Writing: the check behind the JS
//! serializer compiled per shape (`lib/encoded.js`), which writes the strings
//! that need no escape between quotes instead of escaping them one by one.
//! Reading: the match behind the JS reader compiled per shape
//! (`lib/decoded.js`), which finds where each leaf of a text is (and reads its
//! numbers) so that JS builds the value with no JSON.parse.

/// Whether JSON.stringify writes the UTF-16 `units` unchanged between quotes:
/// no control character (below U+0020), no '"', no '\\', and no surrogate (a
/// lone one is written as an escape; a pair is left to JSON.stringify too).
pub fn is_plain(units: &[u16]) -> bool {
  // No early exit: the loop is vectorized, and strings are mostly plain.
  !units.iter().fold(false, |escape, &u| {
    escape | (u < 0x20) | (u == 0x22) | (u == 0x5c) | ((u & 0xf800) == 0xd800)
  })
}

/// A template unit standing for a string leaf: `"…"` with no escape and no
/// control character (else no match: JSON.parse reads it), written to `out`
/// as its start and end (UTF-16 indices of its content); or `null`, written
/// as -1 and 0 (a negative start).
pub const LEAF_STRING: u16 = 1;
/// A number leaf (JSON's grammar), written to `out` as its value; or `null`,
/// written as NaN (which no JSON number is).
pub const LEAF_NUMBER: u16 = 2;
/// A boolean leaf, written to `out` as 1 (`true`) or 0 (`false`); or `null`, as -1.
pub const LEAF_BOOLEAN: u16 = 3;
/// An array of string leaves of any length: its length, then each string's start and end.
pub const LEAF_STRINGS: u16 = 4;
/// An array of number leaves of any length: its length, then each value.
pub const LEAF_NUMBERS: u16 = 5;
/// A leaf that was `null`: `null`, a boolean, a number or a string, written
/// as two figures: a string's start and end, or one of the `SCALAR_*` codes
/// (all negative) and 0 or the number.
pub const LEAF_SCALAR: u16 = 6;
/// An array of any length whose items are all of one shape: the units up to
/// the matching `GROUP_END` are the template of one item. Written to `out` as
/// its length, then each item's figures in turn.
pub const LEAF_ITEMS: u16 = 7;
/// Closes the template that `LEAF_ITEMS`, `LEAF_MAYBE` or `LEAF_OPTIONAL` opened.
pub const GROUP_END: u16 = 8;
/// An object or array that may be `null`: the units up to the matching
/// `GROUP_END` are its template. Written to `out` as 0 for `null`, else as 1
/// and then its figures.
pub const LEAF_MAYBE: u16 = 9;
/// A member of an object that may be absent: the units up to the matching
/// `GROUP_END` are its template, which opens with the member's text as it is
/// (`,"key":`; or `"key":` before the object's first member that is always
/// there, the comma then closing the group). Written to `out` as 0 when the
/// text does not go on with that opening (the member is absent), else as 1
/// and then the member's figures.
pub const LEAF_OPTIONAL: u16 = 10;
/// How deep `LEAF_ITEMS`, `LEAF_MAYBE` and `LEAF_OPTIONAL` may nest in one template.
pub const MAX_GROUP_DEPTH: usize = 8;
/// `LEAF_SCALAR`'s first figure for `null`.
pub const SCALAR_NULL: i32 = -1;
/// `LEAF_SCALAR`'s first figure for `false`.
pub const SCALAR_FALSE: i32 = -2;
/// `LEAF_SCALAR`'s first figure for `true`.
pub const SCALAR_TRUE: i32 = -3;
/// `LEAF_SCALAR`'s first figure for a number (the second is its value).
pub const SCALAR_NUMBER: i32 = -4;

/// What `Template::match_text` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
  /// The text is an instance of the template; its figures are in `out`.
  Yes = 1,
  /// It is not (or not one this matcher reads: JSON.parse reads it).
  No = 0,
  /// `out` had no room for its figures; whether it matches is not known.
  Full = 2,
}

/// A template (see `Template::match_text`) made ready for matching: its runs of
/// literal units are compared whole.
pub struct Template {
  units: Box<[u16]>,
  steps: Box<[Step]>,
}

enum Step {
  /// `units[start..end]` must be in the text as it is.
  Literal(usize, usize),
  /// A `LEAF_*` unit.
  Leaf(u16),
  /// `LEAF_ITEMS`: an array of any length, each item matching these steps.
  Items(Box<[Step]>),
  /// `LEAF_MAYBE`: `null`, or a text matching these steps.
  Maybe(Box<[Step]>),
  /// `LEAF_OPTIONAL`: nothing, or a text matching these steps, the first of
  /// them a literal (the member's opening) that tells which.
  Optional(Box<[Step]>),
}

/// The steps of `units` from `start` to the `GROUP_END` that closes them (at
/// `depth` > 0) or to the end; and the index after them. None when the
/// template is not well formed: a `GROUP_END` with nothing open, one missing,
/// an empty group, an optional group that does not open with a literal, or
/// groups nested deeper than MAX_GROUP_DEPTH.
fn steps_of(units: &[u16], start: usize, depth: usize) -> Option<(Vec<Step>, usize)> {
  let mut steps = Vec::new();
  let mut run = start;
  let mut i = start;
  while i < units.len() {
    let unit = units[i];
    if !(LEAF_STRING..=LEAF_OPTIONAL).contains(&unit) {
      i += 1;
      continue;
    }
    if run < i {
      steps.push(Step::Literal(run, i));
    }
    match unit {
      GROUP_END => return (depth > 0 && !steps.is_empty()).then_some((steps, i + 1)),
      LEAF_ITEMS | LEAF_MAYBE | LEAF_OPTIONAL if depth < MAX_GROUP_DEPTH => {
        let (group, next) = steps_of(units, i + 1, depth + 1)?;
        steps.push(match unit {
          LEAF_ITEMS => Step::Items(group.into()),
          LEAF_MAYBE => Step::Maybe(group.into()),
          _ if matches!(group.first(), Some(Step::Literal(..))) => Step::Optional(group.into()),
          _ => return None,
        });
        i = next;
      }
      LEAF_ITEMS | LEAF_MAYBE | LEAF_OPTIONAL => return None,
      leaf => {
        steps.push(Step::Leaf(leaf));
        i += 1;
      }
    }
    run = i;
  }
  if run < i {
    steps.push(Step::Literal(run, i));
  }
  (depth == 0).then_some((steps, i))
}

impl Template {
  /// None when `units` is not a well-formed template (see `steps_of`).
  pub fn new(units: &[u16]) -> Option<Template> {
    let (steps, _) = steps_of(units, 0, 0)?;
    Some(Template {
      units: units.into(),
      steps: steps.into(),
    })
  }

  /// The units it was made from.
  pub fn units(&self) -> &[u16] {
    &self.units
  }

  /// Whether `text` is an instance of this template, the JSON text of a value of
  /// one shape with each leaf replaced by one of the `LEAF_*` units (they never
  /// occur in JSON.stringify's output, which escapes controls). Every other unit
  /// of the template must be in `text` as it is, so a match has no whitespace,
  /// the keys spelled as the template spells them, and nothing after the end.
  /// The leaves' figures go to `out` in text order. A match means
  /// JSON.parse(text) gives the value built from `out`: the same keys in the
  /// same order, and leaves JSON.parse would read the same. `Match::Full` when
  /// `out` had no room for them (an absent optional member takes a figure and
  /// no unit of the text, so a text may need more figures than it has units).
  pub fn match_text(&self, text: &[u16], out: &mut [f64]) -> Match {
    let mut out = Figures {
      out,
      written: 0,
      full: false,
    };
    match self.steps_at(&self.steps, text, 0, &mut out) {
      Some(end) if end == text.len() => Match::Yes,
      _ if out.full => Match::Full,
      _ => Match::No,
    }
  }

  /// Where the text matching `steps` from `at` ends.
  fn steps_at(&self, steps: &[Step], text: &[u16], mut at: usize, out: &mut Figures) -> Option<usize> {
    for step in steps {
      at = match *step {
        Step::Literal(start, end) => self.literal_at(start, end, text, at),
        Step::Items(ref item) => self.items_at(item, text, at, out),
        // The group opens with the member's literal: found, the rest of the group reads on from its end.
        Step::Optional(ref group) => match group.split_first() {
          Some((&Step::Literal(start, end), rest)) => match self.literal_at(start, end, text, at) {
            Some(after) => out.put(1.0).and_then(|()| self.steps_at(rest, text, after, out)),
            None => out.put(0.0).map(|()| at),
          },
          _ => out.put(0.0).map(|()| at),
        },
        Step::Maybe(_) if starts_with(text, at, b"null") => out.put(0.0).map(|()| at + 4),
        Step::Maybe(ref group) => out.put(1.0).and_then(|()| self.steps_at(group, text, at, out)),
        _ if starts_with(text, at, b"null") => match *step {
          // `null` where a leaf was: its figures say so.
          Step::Leaf(LEAF_STRING) | Step::Leaf(LEAF_SCALAR) => out.two(f64::from(SCALAR_NULL), 0.0).map(|()| at + 4),
          Step::Leaf(LEAF_NUMBER) => out.put(f64::NAN).map(|()| at + 4),
          Step::Leaf(LEAF_BOOLEAN) => out.put(-1.0).map(|()| at + 4),
          _ => None,
        },
        Step::Leaf(LEAF_STRING) => string_at(text, at).and_then(|end| out.string(at, end)),
        Step::Leaf(LEAF_NUMBER) => number_at(text, at).and_then(|(value, end)| out.put(value).map(|()| end)),
        Step::Leaf(LEAF_BOOLEAN) => boolean_at(text, at).and_then(|(value, end)| out.put(value).map(|()| end)),
        Step::Leaf(LEAF_SCALAR) => match text.get(at) {
          Some(0x22) => string_at(text, at).and_then(|end| out.string(at, end)),
          Some(0x74 | 0x66) => boolean_at(text, at).and_then(|(value, end)| {
            let code = if value == 1.0 { SCALAR_TRUE } else { SCALAR_FALSE };
            out.two(f64::from(code), 0.0).map(|()| end)
          }),
          _ => number_at(text, at).and_then(|(value, end)| out.two(f64::from(SCALAR_NUMBER), value).map(|()| end)),
        },
        Step::Leaf(unit) => array_at(text, at, unit == LEAF_STRINGS, out),
      }?;
    }
    Some(at)
  }

  /// Where the template's units `start..end`, found in `text` at `at` as they are, end.
  fn literal_at(&self, start: usize, end: usize, text: &[u16], at: usize) -> Option<usize> {
    let literal = &self.units[start..end];
    (text.get(at..at + literal.len()) == Some(literal)).then_some(at + literal.len())
  }

  /// An array at `at` of any length whose items each match `item`: its length, then each item's figures.
  fn items_at(&self, item: &[Step], text: &[u16], at: usize, out: &mut Figures) -> Option<usize> {
    list_at(text, at, out, |at, out| self.steps_at(item, text, at, out))
  }
}

/// Where the leaves' figures go, in text order.
struct Figures<'a> {
  out: &'a mut [f64],
  written: usize,
  /// Set when a figure found no room.
  full: bool,
}

impl Figures<'_> {
  /// None when `out` is full.
  fn put(&mut self, value: f64) -> Option<()> {
    let Some(slot) = self.out.get_mut(self.written) else {
      self.full = true;
      return None;
    };
    *slot = value;
    self.written += 1;
    Some(())
  }

  /// Two figures, or none when `out` has room for one only.
  fn two(&mut self, first: f64, second: f64) -> Option<()> {
    if self.written + 2 > self.out.len() {
      self.full = true;
      return None;
    }
    self.put(first)?;
    self.put(second)
  }

  /// The string opening at `open` and closing at `close`: its content's start and end; the index after it.
  fn string(&mut self, open: usize, close: usize) -> Option<usize> {
    self.put((open + 1) as f64)?;
    self.put(close as f64)?;
    Some(close + 1)
  }
}

/// An array of strings (or numbers) at `at`, of any length: its length, then its items' figures.
fn array_at(text: &[u16], at: usize, strings: bool, out: &mut Figures) -> Option<usize> {
  list_at(text, at, out, |at, out| {
    if strings {
      out.string(at, string_at(text, at)?)
    } else {
      let (value, end) = number_at(text, at)?;
      out.put(value).map(|()| end)
    }
  })
}

/// An array at `at` of any length, each item read by `item` (from where it
/// starts to where it ends, its figures in `out`): the array's length goes
/// first, then the items' figures.
fn list_at(
  text: &[u16],
  mut at: usize,
  out: &mut Figures,
  mut item: impl FnMut(usize, &mut Figures) -> Option<usize>,
) -> Option<usize> {
  if text.get(at) != Some(&0x5b) {
    return None; // '['
  }
  at += 1;
  let count_slot = out.written;
  out.put(0.0)?;
  if text.get(at) == Some(&0x5d) {
    return Some(at + 1); // ']'
  }
  let mut count = 0u32;
  loop {
    at = item(at, out)?;
    count += 1;
    match text.get(at) {
      Some(0x2c) => at += 1, // ','
      Some(0x5d) => break,   // ']'
      _ => return None,
    }
  }
  out.out[count_slot] = f64::from(count);
  Some(at + 1)
}

/// `true` (1) or `false` (0) at `at`, and where it ends.
fn boolean_at(text: &[u16], at: usize) -> Option<(f64, usize)> {
  if starts_with(text, at, b"true") {
    Some((1.0, at + 4))
  } else if starts_with(text, at, b"false") {
    Some((0.0, at + 5))
  } else {
    None
  }
}

fn starts_with(text: &[u16], at: usize, word: &[u8]) -> bool {
  text.len() >= at + word.len()
    && text[at..at + word.len()]
      .iter()
      .zip(word)
      .all(|(&u, &b)| u == u16::from(b))
}

/// The index of the closing quote of the string opening at `at`, when it has
/// no escape and no control character (what JSON.parse would read as it is).
fn string_at(text: &[u16], at: usize) -> Option<usize> {
  if text.get(at) != Some(&0x22) {
    return None;
  }
  let stops = |u: u16| (u == 0x22) | (u == 0x5c) | (u < 0x20);
  let mut i = at + 1;
  // Sixteen units at a time (vectorized) up to the chunk with a stop in it.
  for chunk in text[i..].chunks_exact(16) {
    if chunk.iter().fold(false, |hit, &u| hit | stops(u)) {
      break;
    }
    i += 16;
  }
  while let Some(&u) = text.get(i) {
    if u == 0x22 {
      return Some(i);
    }
    if stops(u) {
      return None;
    }
    i += 1;
  }
  None
}

/// The number at `at` in JSON's grammar (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`)
/// and where it ends; its value rounded as JSON.parse rounds it (to nearest, ±Infinity past the range).
fn number_at(text: &[u16], at: usize) -> Option<(f64, usize)> {
  let digit = |i: usize| text.get(i).is_some_and(|&u| (0x30..=0x39).contains(&u));
  let digits_from = |mut i: usize| {
    while digit(i) {
      i += 1;
    }
    i
  };
  let mut i = at;
  if text.get(i) == Some(&0x2d) {
    i += 1;
  }
  match text.get(i).copied() {
    Some(0x30) => i += 1,
    Some(0x31..=0x39) => i = digits_from(i + 1),
    _ => return None,
  }
  if text.get(i) == Some(&0x2e) {
    if !digit(i + 1) {
      return None;
    }
    i = digits_from(i + 1);
  }
  if matches!(text.get(i), Some(0x65 | 0x45)) {
    i += 1;
    if matches!(text.get(i), Some(0x2b | 0x2d)) {
      i += 1;
    }
    if !digit(i) {
      return None;
    }
    i = digits_from(i);
  }
  // A whole number of up to 15 digits is exact in an f64: no parser needed.
  if i - at <= 16 && !text[at..i].iter().any(|&u| u == 0x2e || u == 0x65 || u == 0x45) {
    let negative = text[at] == 0x2d;
    let digits = &text[at + usize::from(negative)..i];
    if digits.len() <= 15 {
      let whole = digits.iter().fold(0u64, |n, &u| n * 10 + u64::from(u - 0x30)) as f64;
      return Some((if negative { -whole } else { whole }, i));
    }
  }
  // All ASCII: one byte per unit.
  let mut bytes = [0u8; 64];
  let value = if i - at <= bytes.len() {
    for (b, &u) in bytes.iter_mut().zip(&text[at..i]) {
      *b = u as u8;
    }
    std::str::from_utf8(&bytes[..i - at]).ok()?.parse::<f64>().ok()?
  } else {
    text[at..i]
      .iter()
      .map(|&u| u as u8 as char)
      .collect::<String>()
      .parse::<f64>()
      .ok()?
  };
  Some((value, i))
}

#[cfg(test)]
mod tests {
  use super::*;

  fn units(text: &str) -> Vec<u16> {
    text.encode_utf16().collect()
  }

  impl Template {
    fn matches(&self, text: &[u16], out: &mut [f64]) -> bool {
      self.match_text(text, out) == Match::Yes
    }
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

  /// The template of a value as lib/decoded.js writes it (here by hand).
  fn tpl(parts: &[&str]) -> Vec<u16> {
    parts
      .iter()
      .flat_map(|p| match *p {
        "S" => vec![LEAF_STRING],
        "N" => vec![LEAF_NUMBER],
        "B" => vec![LEAF_BOOLEAN],
        "SS" => vec![LEAF_STRINGS],
        "NN" => vec![LEAF_NUMBERS],
        "X" => vec![LEAF_SCALAR],
        "[*" => vec![LEAF_ITEMS],
        "*]" => vec![GROUP_END],
        "?[" => vec![LEAF_MAYBE],
        "+[" => vec![LEAF_OPTIONAL],
        lit => units(lit),
      })
      .collect()
  }

  fn matched(template: &[u16], text: &str) -> Option<Vec<f64>> {
    // Figures up to the first slot left as it was (f64::MAX, which no test writes).
    let mut out = [f64::MAX; 32];
    let units = units(text);
    let ok = Template::new(template).unwrap().matches(&units, &mut out);
    ok.then(|| out.iter().copied().take_while(|&v| v != f64::MAX).collect())
  }

  #[test]
  fn a_text_of_the_shape_gives_its_leaves() {
    let t = tpl(&[
      "{\"a\":",
      "S",
      ",\"n\":",
      "N",
      ",\"b\":",
      "B",
      ",\"z\":null,\"s\":",
      "SS",
      ",\"m\":",
      "NN",
      "}",
    ]);
    let text = r#"{"a":"héllo","n":-12.5e1,"b":false,"z":null,"s":["x","",""],"m":[1,0,-0.25]}"#;
    let got = matched(&t, text).expect("a match");
    // "héllo" is units 6..11 (é is one unit).
    assert_eq!(
      got,
      vec![6.0, 11.0, -125.0, 0.0, 3.0, 50.0, 51.0, 54.0, 54.0, 57.0, 57.0, 3.0, 1.0, 0.0, -0.25]
    );
    assert_eq!(
      matched(&t, r#"{"a":"","n":0,"b":true,"z":null,"s":[],"m":[]}"#).unwrap(),
      vec![6.0, 6.0, 0.0, 1.0, 0.0, 0.0]
    );
    // -0 stays -0; past the range is Infinity, as JSON.parse reads them.
    let n = tpl(&["[", "N", ",", "N", ",", "N", "]"]);
    let got = matched(&n, "[-0,1e400,123456789012345678901234567890]").unwrap();
    assert!(got[0] == 0.0 && got[0].is_sign_negative());
    assert_eq!(got[1], f64::INFINITY);
    assert_eq!(got[2], 123456789012345678901234567890.0);
    assert_eq!(
      matched(&n, "[0.1,2.5E-3,9007199254740993]").unwrap(),
      vec![0.1, 0.0025, 9007199254740992.0]
    );
    // A long number (past the stack buffer).
    let long = format!("[1.{},0,0]", "0".repeat(100));
    assert_eq!(matched(&n, &long).unwrap(), vec![1.0, 0.0, 0.0]);
    // Long strings and surrogates as they are.
    let s = tpl(&["[", "S", "]"]);
    let text = format!("[\"{}😀\"]", "x".repeat(40));
    assert_eq!(matched(&s, &text).unwrap(), vec![2.0, 44.0]);
  }

  #[test]
  fn anything_else_is_left_to_json_parse() {
    let t = tpl(&["{\"a\":", "S", ",\"n\":", "N", "}"]);
    assert!(matched(&t, r#"{"a":"x","n":1}"#).is_some());
    for text in [
      r#"{"a":"x","n":1} "#, // after the end
      r#"{"a":"x","n":1}}"#,
      r#"{ "a":"x","n":1}"#, // whitespace
      r#"{"a":"x", "n":1}"#,
      r#"{"a":"x\"y","n":1}"#, // an escape
      r#"{"a":"x\u0041","n":1}"#,
      "{\"a\":\"x\ty\",\"n\":1}", // a control character
      "{\"a\":\"x\u{1f}\",\"n\":1}",
      r#"{"a":"x","n":01}"#, // not JSON numbers
      r#"{"a":"x","n":1.}"#,
      r#"{"a":"x","n":.5}"#,
      r#"{"a":"x","n":+1}"#,
      r#"{"a":"x","n":1e}"#,
      r#"{"a":"x","n":-}"#,
      r#"{"a":"x","n":0x10}"#,
      r#"{"a":"x","n":NaN}"#,
      r#"{"a":"x","n":"1"}"#, // another type
      r#"{"a":1,"n":1}"#,
      r#"{"b":"x","n":1}"#, // other keys, order, or number of them
      r#"{"n":1,"a":"x"}"#,
      r#"{"a":"x","n":1,"c":2}"#,
      r#"{"a":"x"}"#,
      r#"{"a":"x","n":1"#, // cut short
      r#"{"a":"x"#,
      "",
    ] {
      assert!(matched(&t, text).is_none(), "{text}");
    }
    let b = tpl(&["[", "B", "]"]);
    for text in ["[tru]", "[True]", "[1]", "[nul]", "[nullx]", "[truex]", "[true"] {
      assert!(matched(&b, text).is_none(), "{text}");
    }
    let a = tpl(&["[", "SS", ",", "NN", "]"]);
    assert!(matched(&a, r#"[["a","b"],[1,2]]"#).is_some());
    for text in [
      r#"[["a",1],[1,2]]"#,
      r#"[["a","b",],[1]]"#,
      r#"[[,],[]]"#,
      r#"[["a" ,"b"],[]]"#,
      r#"[["a"],[1,"2"]]"#,
      r#"[["a"],[1 ]]"#,
      r#"[[],[1,]]"#,
    ] {
      assert!(matched(&a, text).is_none(), "{text}");
    }
  }

  #[test]
  fn a_leaf_may_be_null_and_a_null_leaf_any_scalar() {
    let t = tpl(&["[", "S", ",", "N", ",", "B", ",", "X", "]"]);
    let null = f64::from(SCALAR_NULL);
    let got = matched(&t, "[null,null,null,null]").unwrap();
    assert_eq!((got[0], got[1], got[3], got[4], got[5]), (null, 0.0, -1.0, null, 0.0));
    assert!(got[2].is_nan());
    for (text, first, second) in [
      (r#"["a",1,true,"xy"]"#, 13.0, 15.0),
      (r#"["a",1,true,false]"#, f64::from(SCALAR_FALSE), 0.0),
      (r#"["a",1,true,true]"#, f64::from(SCALAR_TRUE), 0.0),
      (r#"["a",1,true,-0.5e1]"#, f64::from(SCALAR_NUMBER), -5.0),
      (r#"["a",1,true,0]"#, f64::from(SCALAR_NUMBER), 0.0),
    ] {
      let got = matched(&t, text).unwrap();
      assert_eq!(&got[..4], &[2.0, 3.0, 1.0, 1.0], "{text}");
      assert_eq!((got[4], got[5]), (first, second), "{text}");
    }
    for text in [
      r#"["a",1,true,nul]"#,
      r#"["a",1,true,nulls]"#,
      r#"["a",1,true,tru]"#,
      r#"["a",1,true,[]]"#,
      r#"["a",1,true,{}]"#,
      r#"["a",1,true,"x\"]"#,
      r#"["a",1,true,01]"#,
      r#"["a",1,true,]"#,
    ] {
      assert!(matched(&t, text).is_none(), "{text}");
    }
    // Arrays of any length are not null.
    assert!(matched(&tpl(&["SS"]), "null").is_none());
    assert!(matched(&tpl(&["NN"]), "null").is_none());
    // A null leaf's two figures need room for both.
    assert!(!Template::new(&tpl(&["X"]))
      .unwrap()
      .matches(&units("null"), &mut [0.0; 1]));
  }

  #[test]
  fn arrays_of_items_of_one_shape_have_any_length() {
    let t = tpl(&[
      "{\"l\":", "[*", "{\"id\":", "N", ",\"t\":", "S", ",\"g\":", "SS", "}", "*]", ",\"n\":", "N", "}",
    ]);
    let text = r#"{"l":[{"id":1,"t":"a","g":["x"]},{"id":2,"t":null,"g":[]}],"n":7}"#;
    // Two items: 1, "a" (units 19..20), ["x"] (28..29); 2, null, []; then 7.
    assert_eq!(
      matched(&t, text).unwrap(),
      vec![2.0, 1.0, 19.0, 20.0, 1.0, 28.0, 29.0, 2.0, -1.0, 0.0, 0.0, 7.0]
    );
    assert_eq!(matched(&t, r#"{"l":[],"n":7}"#).unwrap(), vec![0.0, 7.0]);
    for text in [
      r#"{"l":[{"id":1,"t":"a","g":[]},],"n":7}"#, // a trailing comma
      r#"{"l":[,],"n":7}"#,
      r#"{"l":[{"id":1,"t":"a","g":[]} ],"n":7}"#, // whitespace
      r#"{"l":[{"id":1,"t":"a","g":[]},{"id":1,"t":"a"}],"n":7}"#, // an item of another shape
      r#"{"l":[{"id":1,"t":"a","g":[]},null],"n":7}"#,
      r#"{"l":null,"n":7}"#,
      r#"{"l":[{"id":1,"t":"a","g":[]}"#, // cut short
      r#"{"l":{},"n":7}"#,
    ] {
      assert!(matched(&t, text).is_none(), "{text}");
    }
    // Nested: an array of arrays of items.
    let n = tpl(&["[*", "[*", "[", "N", "]", "*]", "*]"]);
    assert_eq!(
      matched(&n, "[[[1],[2]],[],[[3]]]").unwrap(),
      vec![3.0, 2.0, 1.0, 2.0, 0.0, 1.0, 3.0]
    );
    assert!(matched(&n, "[[[1],[2,3]]]").is_none());
  }

  #[test]
  fn an_object_or_array_may_be_null() {
    let t = tpl(&[
      "[", "?[", "{\"a\":", "N", "}", "*]", ",", "?[", "[*", "?[", "[", "S", "]", "*]", "*]", "*]", "]",
    ]);
    assert_eq!(matched(&t, "[null,null]").unwrap(), vec![0.0, 0.0]);
    assert_eq!(matched(&t, r#"[{"a":5},[]]"#).unwrap(), vec![1.0, 5.0, 1.0, 0.0]);
    // {"a":null} (NaN), then a list of three: null, ["x"] (units 20..21), null.
    let got = matched(&t, r#"[{"a":null},[null,["x"],null]]"#).unwrap();
    assert!(got[1].is_nan());
    assert_eq!((got[0], &got[2..]), (1.0, &[1.0, 3.0, 0.0, 1.0, 20.0, 21.0, 0.0][..]));
    for text in [
      "[nul,null]",
      "[nullx,null]",
      "[{},null]",
      r#"[{"a":1},{}]"#,
      r#"[[],null]"#,
      "[null,[[]]]",
      "[null]",
    ] {
      assert!(matched(&t, text).is_none(), "{text}");
    }
  }

  #[test]
  fn a_member_may_be_absent() {
    // {"id":N, "t"?:S, "o"?:{"a":N}, "n":N, "l"?:[{"x":N, "y"?:SS}]}
    let t = tpl(&[
      "{\"id\":",
      "N",
      "+[",
      ",\"t\":",
      "S",
      "*]",
      "+[",
      ",\"o\":{\"a\":",
      "N",
      "}",
      "*]",
      ",\"n\":",
      "N",
      "+[",
      ",\"l\":",
      "[*",
      "{\"x\":",
      "N",
      "+[",
      ",\"y\":",
      "SS",
      "*]",
      "}",
      "*]",
      "*]",
      "}",
    ]);
    assert_eq!(matched(&t, r#"{"id":1,"n":2}"#).unwrap(), vec![1.0, 0.0, 0.0, 2.0, 0.0]);
    // "x" is units 13..14.
    assert_eq!(
      matched(&t, r#"{"id":1,"t":"x","n":2}"#).unwrap(),
      vec![1.0, 1.0, 13.0, 14.0, 0.0, 2.0, 0.0]
    );
    assert_eq!(
      matched(&t, r#"{"id":1,"o":{"a":3},"n":2,"l":[{"x":4},{"x":5,"y":[]}]}"#).unwrap(),
      vec![1.0, 0.0, 1.0, 3.0, 2.0, 1.0, 2.0, 4.0, 0.0, 5.0, 1.0, 0.0]
    );
    // A member present with a null leaf.
    let got = matched(&t, r#"{"id":1,"t":null,"n":2}"#).unwrap();
    assert_eq!(got, vec![1.0, 1.0, -1.0, 0.0, 0.0, 2.0, 0.0]);
    for text in [
      r#"{"id":1}"#,                       // a member that may not be absent
      r#"{"id":1,"n":2,"t":"x"}"#,         // another order
      r#"{"id":1,"t":"x","t":"x","n":2}"#, // twice
      r#"{"id":1,"t":1,"n":2}"#,           // present, of another type
      r#"{"id":1,"o":null,"n":2}"#,
      r#"{"id":1,"tt":"x","n":2}"#, // another key
      r#"{"id":1,"t" :"x","n":2}"#,
      r#"{"id":1,,"n":2}"#,
      r#"{"id":1,"n":2,"l":[{"y":[]}]}"#,
      r#"{"id":1,"n":2,}"#,
    ] {
      assert!(matched(&t, text).is_none(), "{text}");
    }
  }

  #[test]
  fn a_member_before_the_first_one_always_there_may_be_absent() {
    // {"a"?:N, "b":N}: the optional member's group closes with its comma.
    let t = tpl(&["{", "+[", "\"a\":", "N", ",", "*]", "\"b\":", "N", "}"]);
    assert_eq!(matched(&t, r#"{"b":1}"#).unwrap(), vec![0.0, 1.0]);
    assert_eq!(matched(&t, r#"{"a":2,"b":1}"#).unwrap(), vec![1.0, 2.0, 1.0]);
    for text in [
      r#"{"a":2}"#,
      r#"{"a":2,}"#,
      r#"{,"b":1}"#,
      r#"{"a":2"b":1}"#,
      r#"{"b":1,"a":2}"#,
    ] {
      assert!(matched(&t, text).is_none(), "{text}");
    }
  }

  #[test]
  fn a_template_whose_items_do_not_pair_up_is_refused() {
    for parts in [
      &["[*", "N"][..],
      &["N", "*]"],
      &["[*", "*]"],
      &["[*", "[", "N", "]", "*]", "*]"],
      &["?[", "N"],
      &["?[", "*]"],
      &["+[", "N", "*]"], // an optional member that does not open with its key
      &["{", "+[", "*]", "}"],
      &["+[", ",\"a\":", "N"],
    ] {
      assert!(Template::new(&tpl(parts)).is_none(), "{parts:?}");
    }
    let deep = |n: usize| [vec![LEAF_ITEMS; n], vec![LEAF_NUMBER], vec![GROUP_END; n]].concat();
    assert!(Template::new(&deep(MAX_GROUP_DEPTH)).is_some());
    assert!(Template::new(&deep(MAX_GROUP_DEPTH + 1)).is_none());
  }

  #[test]
  fn no_match_when_out_is_too_short() {
    let t = tpl(&["NN"]);
    let mut out = [0.0; 3];
    assert!(Template::new(&t).unwrap().matches(&units("[1,2]"), &mut out));
    assert_eq!(out, [2.0, 1.0, 2.0]);
    assert!(!Template::new(&t).unwrap().matches(&units("[1,2,3]"), &mut out));
    let s = tpl(&["[", "S", "]"]);
    assert!(!Template::new(&s).unwrap().matches(&units("[\"x\"]"), &mut [0.0; 1]));
    // Told apart from a text that does not match.
    let s = Template::new(&s).unwrap();
    assert_eq!(s.match_text(&units("[\"x\"]"), &mut [0.0; 1]), Match::Full);
    assert_eq!(s.match_text(&units("[1]"), &mut [0.0; 1]), Match::No);
    assert_eq!(s.match_text(&units("[\"x\"]"), &mut [0.0; 2]), Match::Yes);
    // Absent optional members take figures and no text: more figures than units.
    let mut t = [vec![LEAF_ITEMS], units("{\"i\":"), vec![LEAF_NUMBER]].concat();
    for key in 'a'..='j' {
      t.extend(
        [
          vec![LEAF_OPTIONAL],
          units(&format!(",\"{key}\":")),
          vec![LEAF_NUMBER, GROUP_END],
        ]
        .concat(),
      );
    }
    t.extend([units("}"), vec![GROUP_END]].concat());
    let t = Template::new(&t).unwrap();
    let text = format!("[{}]", [r#"{"i":1}"#; 10].join(","));
    // 1 + 10 × 11 figures for 81 units.
    assert_eq!(t.match_text(&units(&text), &mut vec![0.0; text.len()]), Match::Full);
    assert_eq!(t.match_text(&units(&text), &mut vec![0.0; 111]), Match::Yes);
    assert_eq!(t.match_text(&units(&text), &mut vec![0.0; 110]), Match::Full);
  }
}
