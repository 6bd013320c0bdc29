//! RESP2, the Redis wire protocol, for the plain-TCP fast path: commands are
//! encoded straight into one output buffer, and replies are parsed from the
//! read buffer without allocating for the common top-level kinds.

use redis::Value;

/// Appends one argument as a bulk string: `$<len>\r\n<bytes>\r\n`.
pub fn write_bulk(out: &mut Vec<u8>, parts: &[&[u8]]) {
  let len: usize = parts.iter().map(|p| p.len()).sum();
  out.push(b'$');
  write_decimal(out, len as u64);
  out.extend_from_slice(b"\r\n");
  for part in parts {
    out.extend_from_slice(part);
  }
  out.extend_from_slice(b"\r\n");
}

/// Appends the array header of a command of `argc` arguments: `*<argc>\r\n`.
pub fn write_array_header(out: &mut Vec<u8>, argc: usize) {
  out.push(b'*');
  write_decimal(out, argc as u64);
  out.extend_from_slice(b"\r\n");
}

/// Appends a whole command.
pub fn write_command(out: &mut Vec<u8>, args: &[&[u8]]) {
  write_array_header(out, args.len());
  for arg in args {
    write_bulk(out, &[arg]);
  }
}

fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
  let mut digits = [0u8; 20];
  let mut i = digits.len();
  loop {
    i -= 1;
    digits[i] = b'0' + (n % 10) as u8;
    n /= 10;
    if n == 0 {
      break;
    }
  }
  out.extend_from_slice(&digits[i..]);
}

/// One top-level reply. Ranges point into the buffer that was parsed.
#[derive(Debug, PartialEq)]
pub enum Frame {
  /// `+OK` and other simple strings.
  Simple(std::ops::Range<usize>),
  /// `-ERR …`.
  Error(std::ops::Range<usize>),
  Int(i64),
  Bulk(std::ops::Range<usize>),
  /// `$-1` or `*-1`.
  Nil,
  /// `*n` with its elements (allocated; arrays are the uncommon case).
  Array(Vec<Value>),
}

/// A protocol violation: the connection cannot be trusted any more.
#[derive(Debug)]
pub struct ProtocolError(pub String);

/// Parses one reply at `buf[start..]`: `Ok(None)` while it is incomplete,
/// otherwise the reply and the index just after it.
pub fn parse_frame(buf: &[u8], start: usize) -> Result<Option<(Frame, usize)>, ProtocolError> {
  let Some((kind, line, next)) = line_at(buf, start)? else {
    return Ok(None);
  };
  Ok(Some(match kind {
    b'+' => (Frame::Simple(line), next),
    b'-' => (Frame::Error(line), next),
    b':' => (Frame::Int(parse_int(&buf[line])?), next),
    b'$' => {
      let len = parse_int(&buf[line])?;
      if len < 0 {
        return Ok(Some((Frame::Nil, next)));
      }
      let end = next + len as usize;
      if buf.len() < end + 2 {
        return Ok(None);
      }
      if &buf[end..end + 2] != b"\r\n" {
        return Err(ProtocolError("a bulk string is not followed by CRLF".into()));
      }
      (Frame::Bulk(next..end), end + 2)
    }
    b'*' => {
      let count = parse_int(&buf[line])?;
      if count < 0 {
        return Ok(Some((Frame::Nil, next)));
      }
      let mut items = Vec::with_capacity((count as usize).min(4096));
      let mut at = next;
      for _ in 0..count {
        match parse_value(buf, at)? {
          None => return Ok(None),
          Some((value, after)) => {
            items.push(value);
            at = after;
          }
        }
      }
      (Frame::Array(items), at)
    }
    other => return Err(ProtocolError(format!("unexpected reply type byte 0x{other:02x}"))),
  }))
}

/// Parses one reply as a `redis::Value` (for array elements).
fn parse_value(buf: &[u8], start: usize) -> Result<Option<(Value, usize)>, ProtocolError> {
  let Some((frame, next)) = parse_frame(buf, start)? else {
    return Ok(None);
  };
  let value = match frame {
    Frame::Simple(r) => Value::SimpleString(String::from_utf8_lossy(&buf[r]).into_owned()),
    // An error inside an array (EXEC): redis-rs builds the ServerError.
    Frame::Error(_) => redis::parse_redis_value(&buf[start..next])
      .unwrap_or_else(|_| Value::SimpleString(String::from_utf8_lossy(&buf[start..next]).into_owned())),
    Frame::Int(n) => Value::Int(n),
    Frame::Bulk(r) => Value::BulkString(buf[r].to_vec()),
    Frame::Nil => Value::Nil,
    Frame::Array(items) => Value::Array(items),
  };
  Ok(Some((value, next)))
}

/// The type byte, the line's range (without CRLF) and the index after the CRLF.
fn line_at(buf: &[u8], start: usize) -> Result<Option<(u8, std::ops::Range<usize>, usize)>, ProtocolError> {
  if start >= buf.len() {
    return Ok(None);
  }
  let kind = buf[start];
  let Some(offset) = memchr_cr(&buf[start + 1..]) else {
    return Ok(None);
  };
  let cr = start + 1 + offset;
  if cr + 1 >= buf.len() {
    return Ok(None);
  }
  if buf[cr + 1] != b'\n' {
    return Err(ProtocolError("a line does not end with CRLF".into()));
  }
  Ok(Some((kind, start + 1..cr, cr + 2)))
}

fn memchr_cr(haystack: &[u8]) -> Option<usize> {
  haystack.iter().position(|&b| b == b'\r')
}

fn parse_int(bytes: &[u8]) -> Result<i64, ProtocolError> {
  let (negative, digits) = match bytes.first() {
    Some(b'-') => (true, &bytes[1..]),
    _ => (false, bytes),
  };
  if digits.is_empty() || digits.len() > 19 {
    return Err(ProtocolError("a length or integer is not a number".into()));
  }
  let mut n: i64 = 0;
  for &d in digits {
    if !d.is_ascii_digit() {
      return Err(ProtocolError("a length or integer is not a number".into()));
    }
    n = n
      .checked_mul(10)
      .and_then(|n| n.checked_add((d - b'0') as i64))
      .ok_or_else(|| ProtocolError("an integer overflows".into()))?;
  }
  Ok(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn encodes_commands() {
    let mut out = Vec::new();
    write_command(&mut out, &[b"SET", b"k", b"\xff\r\n"]);
    assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n\xff\r\n\r\n");
    out.clear();
    write_bulk(&mut out, &[b"pre:", b"key"]);
    assert_eq!(out, b"$7\r\npre:key\r\n");
  }

  #[test]
  fn parses_every_kind_and_waits_for_more() {
    let buf = b"+OK\r\n-ERR bad thing\r\n:-42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n:7\r\n*-1\r\n";
    let mut at = 0;
    let mut frames = Vec::new();
    while let Some((frame, next)) = parse_frame(buf, at).unwrap() {
      frames.push(frame);
      at = next;
    }
    assert_eq!(at, buf.len());
    assert_eq!(frames[0], Frame::Simple(1..3));
    assert_eq!(
      &buf[match &frames[1] {
        Frame::Error(r) => r.clone(),
        _ => panic!(),
      }],
      b"ERR bad thing"
    );
    assert_eq!(frames[2], Frame::Int(-42));
    assert_eq!(
      &buf[match &frames[3] {
        Frame::Bulk(r) => r.clone(),
        _ => panic!(),
      }],
      b"hello"
    );
    assert_eq!(frames[4], Frame::Nil);
    assert_eq!(
      frames[5],
      Frame::Array(vec![Value::BulkString(b"a".to_vec()), Value::Int(7)])
    );
    assert_eq!(frames[6], Frame::Nil);
    // every proper prefix of a reply is incomplete, never an error
    for cut in 0..buf.len() {
      let mut at = 0;
      while let Some((_, next)) = parse_frame(&buf[..cut], at).unwrap() {
        at = next;
      }
      assert!(at <= cut);
    }
  }

  #[test]
  fn rejects_garbage() {
    assert!(parse_frame(b"?what\r\n", 0).is_err());
    assert!(parse_frame(b"$3\r\nabcXY", 0).is_err());
    assert!(parse_frame(b":12a\r\n", 0).is_err());
  }
}
