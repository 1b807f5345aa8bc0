//! Percent-encoding of magnet keys and values.
//!
//! Decoding turns `%XY` into the byte `0xXY` and `+` into a space, as libtorrent does
//! and as HTML forms do; a literal `+` must be written `%2B`.
//!
//! Encoding leaves alone every character RFC 3986 allows in a query component except
//! the three that mean something in a magnet (`&`, `=`, `+`), so tracker and web-seed
//! URLs stay readable (`udp://tracker.example:1337/announce`). Everything else is
//! written `%XY` with uppercase hex; a space is written `+` in `dn` only, as
//! WebTorrent does, and `%20` elsewhere.

use std::fmt;

use crate::MagnetError;

/// Whether `b` is written as itself: RFC 3986 unreserved characters, the sub-delims
/// other than `&`, `=` and `+`, and `:`, `@`, `/`, `?`.
const fn is_plain(b: u8) -> bool {
    matches!(b,
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9'
        | b'-' | b'.' | b'_' | b'~'
        | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b',' | b';'
        | b':' | b'@' | b'/' | b'?')
}

/// Writes `text` percent-encoded; with `space_as_plus` a space becomes `+`.
pub(crate) fn encode(out: &mut impl fmt::Write, text: &str, space_as_plus: bool) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if is_plain(b) {
            continue;
        }
        if start < i {
            // `start..i` is a non-empty run of plain ASCII bytes right after an escaped
            // byte or the start, so both ends are char boundaries.
            out.write_str(&text[start..i])?;
        }
        if b == b' ' && space_as_plus {
            out.write_char('+')?;
        } else {
            out.write_char('%')?;
            out.write_char(char::from(HEX[usize::from(b >> 4)]))?;
            out.write_char(char::from(HEX[usize::from(b & 0x0f)]))?;
        }
        start = i + 1;
    }
    // Every byte from `start` on is plain ASCII (or there are none), so `start` is a
    // char boundary.
    out.write_str(&text[start..])
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `raw`, which starts at byte `offset` of the whole URI; `key` is the raw key
/// of the parameter, for the error message.
pub(crate) fn decode(raw: &str, offset: usize, key: &str) -> Result<String, MagnetError> {
    if !raw.contains(['%', '+']) {
        return Ok(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let escaped = bytes
                    .get(i + 1)
                    .and_then(|&h| hex_value(h))
                    .zip(bytes.get(i + 2).and_then(|&l| hex_value(l)));
                let (hi, lo) =
                    escaped.ok_or(MagnetError::InvalidPercentEscape { offset: offset + i })?;
                out.push((hi << 4) | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| MagnetError::InvalidUtf8 {
        key: key.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(text: &str, plus: bool) -> String {
        let mut out = String::new();
        encode(&mut out, text, plus).unwrap();
        out
    }

    #[test]
    fn encodes_only_what_is_needed() {
        assert_eq!(
            enc("udp://tracker.example:1337/announce", false),
            "udp://tracker.example:1337/announce"
        );
        assert_eq!(
            enc("http://t.example/a?passkey=x&y=1+2", false),
            "http://t.example/a?passkey%3Dx%26y%3D1%2B2"
        );
        assert_eq!(enc("a b%c#d", false), "a%20b%25c%23d");
        assert_eq!(enc("a b", true), "a+b");
        assert_eq!(enc("[::1]:80", false), "%5B::1%5D:80");
        assert_eq!(enc("é", false), "%C3%A9");
    }

    #[test]
    fn decodes() {
        assert_eq!(decode("a+b%20c%2Bd%2b", 0, "k").unwrap(), "a b c+d+");
        assert_eq!(decode("%C3%A9t%c3%a9", 0, "k").unwrap(), "été");
        assert_eq!(decode("plain", 0, "k").unwrap(), "plain");
    }

    #[test]
    fn rejects_bad_escapes() {
        assert_eq!(
            decode("ab%", 10, "k"),
            Err(MagnetError::InvalidPercentEscape { offset: 12 })
        );
        assert_eq!(
            decode("%4", 0, "k"),
            Err(MagnetError::InvalidPercentEscape { offset: 0 })
        );
        assert_eq!(
            decode("x%zz", 0, "k"),
            Err(MagnetError::InvalidPercentEscape { offset: 1 })
        );
        assert_eq!(
            decode("%ff", 0, "k"),
            Err(MagnetError::InvalidUtf8 { key: "k".into() })
        );
    }

    proptest! {
        #[test]
        fn round_trip(text in "\\PC{0,40}", plus in any::<bool>()) {
            let encoded = enc(&text, plus);
            prop_assert!(!encoded.contains(['&', '=', '#', ' ']));
            prop_assert_eq!(decode(&encoded, 0, "k").unwrap(), text);
        }

        #[test]
        fn decode_never_panics(text in "\\PC{0,40}") {
            let _ = decode(&text, 0, "k");
        }
    }
}
