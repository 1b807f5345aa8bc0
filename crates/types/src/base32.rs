//! RFC 4648 base32 without padding, for inputs whose bit length is a multiple of 40
//! (five bytes become eight characters), which covers a 20-byte v1 info-hash.

use crate::ParseError;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Encodes `bytes` (length a multiple of 5) as uppercase base32.
pub(crate) fn encode(bytes: &[u8]) -> String {
    debug_assert!(
        bytes.len().is_multiple_of(5),
        "callers pass whole 40-bit groups"
    );
    let mut out = String::with_capacity(bytes.len() / 5 * 8);
    for group in bytes.chunks(5) {
        let mut acc: u64 = 0;
        for &b in group {
            acc = (acc << 8) | u64::from(b);
        }
        // A short final group (never produced by this crate) is padded with zero bits.
        acc <<= 8 * (5 - group.len());
        for shift in (0..8).rev() {
            let index = (acc >> (shift * 5)) & 0x1f;
            // `index` is masked to five bits, so it is in range for the 32-entry alphabet.
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

fn value(b: u8) -> Option<u64> {
    match b {
        b'A'..=b'Z' => Some(u64::from(b - b'A')),
        b'a'..=b'z' => Some(u64::from(b - b'a')),
        b'2'..=b'7' => Some(u64::from(b - b'2' + 26)),
        _ => None,
    }
}

/// Decodes base32 `text` (any case, no padding) into `out`, which it must fill exactly;
/// `out.len()` must be a multiple of 5.
pub(crate) fn decode_to_slice(text: &str, out: &mut [u8]) -> Result<(), ParseError> {
    debug_assert!(
        out.len().is_multiple_of(5),
        "callers pass whole 40-bit groups"
    );
    let bytes = text.as_bytes();
    let expected = out.len() / 5 * 8;
    if bytes.len() != expected {
        return Err(ParseError::TextLength {
            expected,
            actual: bytes.len(),
        });
    }
    for (g, (chunk, dest)) in bytes
        .chunks_exact(8)
        .zip(out.chunks_exact_mut(5))
        .enumerate()
    {
        let mut acc: u64 = 0;
        for (i, &b) in chunk.iter().enumerate() {
            let index = g * 8 + i;
            let v = value(b).ok_or_else(|| ParseError::InvalidBase32 {
                index,
                // Every earlier byte was ASCII, so `index` is a char boundary.
                found: text
                    .get(index..)
                    .and_then(|rest| rest.chars().next())
                    .unwrap_or(char::REPLACEMENT_CHARACTER),
            })?;
            acc = (acc << 5) | v;
        }
        for (k, slot) in dest.iter_mut().enumerate() {
            // Truncation keeps exactly the byte selected by the shift.
            *slot = (acc >> (8 * (4 - k))) as u8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc4648_vectors() {
        // RFC 4648 section 10: "fooba" encodes to "MZXW6YTB".
        assert_eq!(encode(b"fooba"), "MZXW6YTB");
        let mut out = [0u8; 5];
        decode_to_slice("mzxw6ytb", &mut out).unwrap();
        assert_eq!(&out, b"fooba");
    }

    #[test]
    fn rejects_bad_input() {
        let mut out = [0u8; 5];
        assert_eq!(
            decode_to_slice("MZXW6YT", &mut out),
            Err(ParseError::TextLength {
                expected: 8,
                actual: 7
            })
        );
        assert_eq!(
            decode_to_slice("MZXW6YT1", &mut out),
            Err(ParseError::InvalidBase32 {
                index: 7,
                found: '1'
            })
        );
        assert_eq!(
            decode_to_slice("MZXW6Y=", &mut out),
            Err(ParseError::TextLength {
                expected: 8,
                actual: 7
            })
        );
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..8).prop_map(|v| {
            // Whole 40-bit groups only.
            let mut v = v.repeat(5);
            v.truncate(v.len() / 5 * 5);
            v
        })) {
            let text = encode(&bytes);
            let mut out = vec![0u8; bytes.len()];
            decode_to_slice(&text.to_lowercase(), &mut out).unwrap();
            prop_assert_eq!(out, bytes);
        }
    }
}
