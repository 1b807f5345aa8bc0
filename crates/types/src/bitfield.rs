//! A set of pieces in the BEP 3 `bitfield` layout: what a peer has, what we verified.

use crate::PieceIndex;

/// A bitfield that does not fit the torrent, or a piece past its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BitfieldError {
    /// The bitfield has the wrong number of bytes for the torrent's piece count.
    #[error("bitfield of {actual} bytes, expected {expected}")]
    Length {
        /// `ceil(pieces / 8)`.
        expected: usize,
        /// What was received.
        actual: usize,
    },
    /// Bits after the last piece are set.
    #[error("bitfield has spare bits set after the last piece")]
    SpareBits,
    /// A piece index past the end of the torrent.
    #[error("piece {piece} is out of range (the torrent has {pieces})")]
    OutOfRange {
        /// The index.
        piece: PieceIndex,
        /// The torrent's piece count.
        pieces: u32,
    },
}

/// One bit per piece, most significant bit of the first byte for piece 0 (BEP 3).
///
/// ```
/// use webtorrent_types::Bitfield;
///
/// let mut have = Bitfield::new(10);
/// have.set(0)?;
/// have.set(9)?;
/// assert_eq!(have.as_bytes(), [0x80, 0x40]);
/// assert_eq!(Bitfield::from_bytes(have.as_bytes(), 10)?, have);
/// assert!(Bitfield::from_bytes(&[0x80, 0x60], 10).is_err()); // a spare bit is set
/// # Ok::<(), webtorrent_types::BitfieldError>(())
/// ```
///
/// The spare bits after the last piece are always zero: [`Bitfield::from_bytes`] rejects
/// bytes where they are set, as the protocol requires.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    ones: u32,
}

impl Bitfield {
    /// The number of bytes a bitfield of `pieces` pieces takes on the wire.
    pub const fn byte_len(pieces: u32) -> usize {
        pieces.div_ceil(8) as usize
    }

    /// A bitfield of `pieces` pieces, none of them set.
    pub fn new(pieces: u32) -> Self {
        Self {
            bytes: vec![0; Self::byte_len(pieces)],
            len: pieces,
            ones: 0,
        }
    }

    /// A bitfield of `pieces` pieces, all of them set.
    pub fn full(pieces: u32) -> Self {
        let mut bytes = vec![0xff; Self::byte_len(pieces)];
        if let Some(last) = bytes.last_mut() {
            *last = Self::last_byte_mask(pieces);
        }
        Self {
            bytes,
            len: pieces,
            ones: pieces,
        }
    }

    /// The bits of the last byte that name pieces.
    const fn last_byte_mask(pieces: u32) -> u8 {
        match pieces % 8 {
            0 => 0xff,
            used => !(0xffu8 >> used),
        }
    }

    /// Parses the payload of a `bitfield` message for a torrent of `pieces` pieces.
    pub fn from_bytes(bytes: &[u8], pieces: u32) -> Result<Self, BitfieldError> {
        let expected = Self::byte_len(pieces);
        if bytes.len() != expected {
            return Err(BitfieldError::Length {
                expected,
                actual: bytes.len(),
            });
        }
        if let Some(&last) = bytes.last()
            && last & !Self::last_byte_mask(pieces) != 0
        {
            return Err(BitfieldError::SpareBits);
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            len: pieces,
            ones: bytes.iter().map(|b| b.count_ones()).sum(),
        })
    }

    /// The wire form: [`Bitfield::byte_len`] bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The number of pieces this bitfield covers.
    pub const fn len(&self) -> u32 {
        self.len
    }

    /// Whether it covers no piece at all.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many pieces are set.
    pub const fn count(&self) -> u32 {
        self.ones
    }

    /// Whether every piece is set.
    pub const fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// Whether `piece` is set; `false` for pieces past the end.
    pub fn has(&self, piece: PieceIndex) -> bool {
        piece < self.len && self.bytes[(piece / 8) as usize] & (0x80 >> (piece % 8)) != 0
    }

    /// Sets `piece`. Returns whether it was newly set, or `Err` if it is past the end.
    pub fn set(&mut self, piece: PieceIndex) -> Result<bool, BitfieldError> {
        self.change(piece, true)
    }

    /// Clears `piece`. Returns whether it was set, or `Err` if it is past the end.
    pub fn clear(&mut self, piece: PieceIndex) -> Result<bool, BitfieldError> {
        self.change(piece, false)
    }

    /// Sets or clears `piece`. Returns whether it changed, or `Err` if it is past the end.
    pub fn set_to(&mut self, piece: PieceIndex, on: bool) -> Result<bool, BitfieldError> {
        self.change(piece, on)
    }

    fn change(&mut self, piece: PieceIndex, on: bool) -> Result<bool, BitfieldError> {
        if piece >= self.len {
            return Err(BitfieldError::OutOfRange {
                piece,
                pieces: self.len,
            });
        }
        let byte = &mut self.bytes[(piece / 8) as usize];
        let mask = 0x80 >> (piece % 8);
        let was = *byte & mask != 0;
        if on && !was {
            *byte |= mask;
            self.ones += 1;
        } else if !on && was {
            *byte &= !mask;
            self.ones -= 1;
        }
        Ok(was != on)
    }

    /// The set pieces, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        self.bytes.iter().enumerate().flat_map(|(i, &byte)| {
            (0..8u32)
                .filter(move |bit| byte & (0x80 >> bit) != 0)
                .map(move |bit| i as u32 * 8 + bit)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bits_and_spare_bits() {
        let mut b = Bitfield::new(10);
        assert_eq!(b.as_bytes(), [0, 0]);
        assert_eq!(b.set(0), Ok(true));
        assert_eq!(b.set(0), Ok(false));
        assert_eq!(b.set(9), Ok(true));
        assert_eq!(b.as_bytes(), [0x80, 0x40]);
        assert_eq!(
            b.set(10),
            Err(BitfieldError::OutOfRange {
                piece: 10,
                pieces: 10
            })
        );
        assert_eq!(b.count(), 2);
        assert_eq!(b.iter().collect::<Vec<_>>(), [0, 9]);
        assert!(b.has(9) && !b.has(1) && !b.has(10) && !b.has(u32::MAX));
        assert_eq!(b.clear(0), Ok(true));
        assert_eq!(b.count(), 1);

        assert_eq!(Bitfield::full(10).as_bytes(), [0xff, 0xc0]);
        assert_eq!(Bitfield::full(16).as_bytes(), [0xff, 0xff]);
        assert!(Bitfield::full(0).is_full() && Bitfield::full(0).is_empty());
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10),
            Err(BitfieldError::SpareBits)
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff], 10),
            Err(BitfieldError::Length {
                expected: 2,
                actual: 1
            })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xc0], 10),
            Ok(Bitfield::full(10))
        );
    }

    proptest! {
        #[test]
        fn set_pieces_round_trip(pieces in 0u32..2000, picks: Vec<u32>) {
            let mut b = Bitfield::new(pieces);
            let mut expected = std::collections::BTreeSet::new();
            for p in picks {
                let r = b.set(p);
                if p < pieces {
                    prop_assert_eq!(r, Ok(expected.insert(p)));
                } else {
                    prop_assert!(r.is_err());
                }
            }
            prop_assert_eq!(b.iter().collect::<Vec<_>>(), expected.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(b.count() as usize, expected.len());
            let again = Bitfield::from_bytes(b.as_bytes(), pieces);
            prop_assert_eq!(again.as_ref(), Ok(&b));
        }
    }
}
