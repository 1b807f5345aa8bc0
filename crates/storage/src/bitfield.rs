//! A fixed-size set of pieces in the BEP 3 `bitfield` layout.

use std::fmt;

/// A set of pieces: bit `i` is set when piece `i` is in the set.
///
/// Bytes follow the BEP 3 `bitfield` message: piece 0 is the high bit of byte 0, and spare
/// bits at the end of the last byte are always zero.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
}

impl Bitfield {
    /// An empty set over `len` pieces.
    #[must_use]
    pub fn new(len: u32) -> Self {
        Self {
            bytes: vec![0; byte_len(len)],
            len,
        }
    }

    /// A set over `len` pieces holding every piece.
    #[must_use]
    pub fn full(len: u32) -> Self {
        let mut b = Self {
            bytes: vec![0xff; byte_len(len)],
            len,
        };
        b.clear_spare_bits();
        b
    }

    /// A set from BEP 3 bytes, or `None` when the byte count does not match `len` or a
    /// spare bit is set.
    #[must_use]
    pub fn from_bytes(bytes: &[u8], len: u32) -> Option<Self> {
        if bytes.len() != byte_len(len) {
            return None;
        }
        let b = Self {
            bytes: bytes.to_vec(),
            len,
        };
        let mut clean = b.clone();
        clean.clear_spare_bits();
        (clean == b).then_some(b)
    }

    /// The BEP 3 bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of pieces the set ranges over.
    #[must_use]
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the set ranges over no pieces at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `piece` is in the set (`false` when out of range).
    #[must_use]
    pub fn get(&self, piece: u32) -> bool {
        let (byte, mask) = locate(piece);
        piece < self.len && self.bytes.get(byte).is_some_and(|b| b & mask != 0)
    }

    /// Adds or removes `piece`; out-of-range pieces are ignored. Returns the previous value.
    pub fn set(&mut self, piece: u32, value: bool) -> bool {
        if piece >= self.len {
            return false;
        }
        let (byte, mask) = locate(piece);
        let Some(b) = self.bytes.get_mut(byte) else {
            return false;
        };
        let old = *b & mask != 0;
        if value {
            *b |= mask;
        } else {
            *b &= !mask;
        }
        old
    }

    /// Number of pieces in the set.
    #[must_use]
    pub fn count(&self) -> u32 {
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }

    /// Whether every piece is in the set.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.count() == self.len
    }

    /// The pieces in the set, in order.
    pub fn iter_set(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&p| self.get(p))
    }

    fn clear_spare_bits(&mut self) {
        let spare = self.len % 8;
        if spare != 0
            && let Some(last) = self.bytes.last_mut()
        {
            *last &= 0xffu8 << (8 - spare);
        }
    }
}

impl fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitfield({}/{} ", self.count(), self.len)?;
        for p in 0..self.len.min(128) {
            f.write_str(if self.get(p) { "1" } else { "0" })?;
        }
        if self.len > 128 {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

fn byte_len(len: u32) -> usize {
    // u32 -> usize never truncates on the 32- and 64-bit targets the crate supports.
    len.div_ceil(8) as usize
}

fn locate(piece: u32) -> (usize, u8) {
    ((piece / 8) as usize, 0x80 >> (piece % 8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_bep3() {
        let mut b = Bitfield::new(10);
        b.set(0, true);
        b.set(9, true);
        assert_eq!(b.as_bytes(), [0x80, 0x40]);
        assert!(b.get(9));
        assert!(!b.get(10));
        assert!(!b.set(10, true));
        assert_eq!(b.count(), 2);
        assert_eq!(Bitfield::full(10).as_bytes(), [0xff, 0xc0]);
        assert!(Bitfield::full(10).is_complete());
        assert!(Bitfield::from_bytes(&[0xff, 0xe0], 10).is_none());
        assert!(Bitfield::from_bytes(&[0xff], 10).is_none());
        assert_eq!(format!("{b:?}"), "Bitfield(2/10 1000000001)");
    }

    proptest! {
        #[test]
        fn bytes_round_trip(len in 0u32..200, seed in proptest::collection::vec(any::<u32>(), 0..50)) {
            let mut b = Bitfield::new(len);
            for s in &seed {
                if len > 0 {
                    b.set(s % len, true);
                }
            }
            let back = Bitfield::from_bytes(b.as_bytes(), len).expect("valid bytes");
            prop_assert_eq!(&back, &b);
            prop_assert_eq!(back.iter_set().count() as u32, b.count());
        }
    }
}
