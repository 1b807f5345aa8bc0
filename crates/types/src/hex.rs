//! Lowercase hexadecimal encoding and case-insensitive decoding.
//!
//! ```
//! use webtorrent_types::hex;
//!
//! assert_eq!(hex::encode(&[0x00, 0xab, 0xff]), "00abff");
//! assert_eq!(hex::decode("00ABff").unwrap(), vec![0x00, 0xab, 0xff]);
//! ```

use crate::ParseError;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Encodes `bytes` as lowercase hexadecimal, two characters per byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The value of one hex digit, or `None` for any other byte.
pub(crate) const fn digit_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The error for a bad character at byte `index` of `text`.
///
/// Every byte before `index` was an ASCII hex digit, so `index` is a char boundary.
fn invalid_at(text: &str, index: usize) -> ParseError {
    let found = text
        .get(index..)
        .and_then(|rest| rest.chars().next())
        .unwrap_or(char::REPLACEMENT_CHARACTER);
    ParseError::InvalidHex { index, found }
}

/// Decodes hexadecimal `text` (any case) into `out`, which it must fill exactly.
///
/// # Errors
/// [`ParseError::TextLength`] unless `text` is `2 * out.len()` bytes long,
/// [`ParseError::InvalidHex`] at the first character that is not a hex digit.
pub fn decode_to_slice(text: &str, out: &mut [u8]) -> Result<(), ParseError> {
    let bytes = text.as_bytes();
    if bytes.len() != out.len() * 2 {
        return Err(ParseError::TextLength {
            expected: out.len() * 2,
            actual: bytes.len(),
        });
    }
    for (i, (slot, pair)) in out.iter_mut().zip(bytes.chunks_exact(2)).enumerate() {
        let hi = digit_value(pair[0]).ok_or_else(|| invalid_at(text, 2 * i))?;
        let lo = digit_value(pair[1]).ok_or_else(|| invalid_at(text, 2 * i + 1))?;
        *slot = (hi << 4) | lo;
    }
    Ok(())
}

/// Decodes hexadecimal `text` (any case, even length) into a new vector.
///
/// # Errors
/// [`ParseError::TextLength`] for an odd length, [`ParseError::InvalidHex`] at the
/// first character that is not a hex digit.
pub fn decode(text: &str) -> Result<Vec<u8>, ParseError> {
    if !text.len().is_multiple_of(2) {
        return Err(ParseError::TextLength {
            expected: text.len() + 1,
            actual: text.len(),
        });
    }
    let mut out = vec![0; text.len() / 2];
    decode_to_slice(text, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(encode(&[]), "");
        assert_eq!(
            encode(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]),
            "0123456789abcdef"
        );
        assert_eq!(
            decode("0123456789ABCDEFabcdef").unwrap(),
            [
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xab, 0xcd, 0xef
            ]
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            decode("abc"),
            Err(ParseError::TextLength {
                expected: 4,
                actual: 3
            })
        );
        assert_eq!(
            decode("0g"),
            Err(ParseError::InvalidHex {
                index: 1,
                found: 'g'
            })
        );
        assert_eq!(
            decode("é00"),
            Err(ParseError::InvalidHex {
                index: 0,
                found: 'é'
            })
        );
        assert_eq!(
            decode("00é"),
            Err(ParseError::InvalidHex {
                index: 2,
                found: 'é'
            })
        );
        assert_eq!(
            decode("0é0"),
            Err(ParseError::InvalidHex {
                index: 1,
                found: 'é'
            })
        );
        let mut out = [0u8; 2];
        assert_eq!(
            decode_to_slice("00", &mut out),
            Err(ParseError::TextLength {
                expected: 4,
                actual: 2
            })
        );
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = encode(&bytes);
            prop_assert_eq!(decode(&text).unwrap(), bytes.clone());
            prop_assert_eq!(decode(&text.to_uppercase()).unwrap(), bytes);
        }

        #[test]
        fn never_panics(text in "\\PC{0,80}") {
            let _ = decode(&text);
        }
    }
}
