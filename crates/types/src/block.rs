//! Pieces and blocks.

/// The index of a piece within a torrent.
pub type PieceIndex = u32;

/// The block size every common client requests: 16 KiB (BEP 3, BEP 52 leaf size).
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// A range of bytes inside one piece, as named by `request`, `piece` and `cancel`
/// messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockRef {
    /// The piece the block belongs to.
    pub piece: PieceIndex,
    /// Byte offset of the block within the piece.
    pub offset: u32,
    /// Length of the block in bytes.
    pub length: u32,
}

impl BlockRef {
    /// A block of `length` bytes at `offset` within `piece`.
    pub const fn new(piece: PieceIndex, offset: u32, length: u32) -> Self {
        Self {
            piece,
            offset,
            length,
        }
    }

    /// The offset one past the block's last byte within the piece. Computed in `u64`
    /// so that hostile values from the wire cannot overflow.
    pub const fn end(&self) -> u64 {
        self.offset as u64 + self.length as u64
    }

    /// Whether the block lies inside a piece of `piece_length` bytes and is not empty.
    pub const fn fits_in(&self, piece_length: u32) -> bool {
        self.length > 0 && self.end() <= piece_length as u64
    }

    /// The blocks of at most [`BLOCK_SIZE`] bytes that cover a piece of
    /// `piece_length` bytes, in order; the last one may be shorter.
    pub fn split_piece(piece: PieceIndex, piece_length: u32) -> impl Iterator<Item = Self> {
        (0..piece_length.div_ceil(BLOCK_SIZE)).map(move |i| {
            let offset = i * BLOCK_SIZE;
            Self::new(piece, offset, BLOCK_SIZE.min(piece_length - offset))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds() {
        let b = BlockRef::new(3, 16384, 16384);
        assert_eq!(b.end(), 32768);
        assert!(b.fits_in(32768));
        assert!(!b.fits_in(32767));
        assert!(!BlockRef::new(0, 0, 0).fits_in(10));
        assert_eq!(
            BlockRef::new(0, u32::MAX, u32::MAX).end(),
            2 * u64::from(u32::MAX)
        );
    }

    #[test]
    fn split() {
        let blocks: Vec<_> = BlockRef::split_piece(7, 40000).collect();
        assert_eq!(
            blocks,
            [
                BlockRef::new(7, 0, 16384),
                BlockRef::new(7, 16384, 16384),
                BlockRef::new(7, 32768, 7232),
            ]
        );
        assert_eq!(BlockRef::split_piece(0, 0).count(), 0);
    }

    proptest! {
        #[test]
        fn split_covers_piece(len in 0u32..=4 * 1024 * 1024) {
            let mut next = 0u64;
            for b in BlockRef::split_piece(1, len) {
                prop_assert_eq!(u64::from(b.offset), next);
                prop_assert!(b.fits_in(len));
                prop_assert!(b.length <= BLOCK_SIZE);
                next = b.end();
            }
            prop_assert_eq!(next, u64::from(len));
        }
    }
}
