//! `lt_donthave`: a peer no longer has a piece (libtorrent's extension, used by
//! share-mode and partial seeds, and when a piece fails a later re-check).

use webtorrent_types::{Bitfield, PieceIndex};

use crate::error::DontHaveError;

/// One `lt_donthave` message: the sender lost this piece.
///
/// ```
/// use webtorrent_extensions::DontHave;
/// use webtorrent_types::Bitfield;
///
/// let msg = DontHave(7);
/// assert_eq!(msg.to_bytes(), [0, 0, 0, 7]);
/// let got = DontHave::decode(&[0, 0, 0, 7])?;
///
/// let mut theirs = Bitfield::full(10);
/// assert!(got.apply(&mut theirs));
/// assert!(!theirs.has(7));
/// # Ok::<(), webtorrent_extensions::DontHaveError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DontHave(pub PieceIndex);

impl DontHave {
    /// Decodes a payload (after the extended message id): a big-endian piece index.
    ///
    /// # Errors
    /// [`DontHaveError::BadLength`] unless the payload is exactly 4 bytes.
    pub fn decode(payload: &[u8]) -> Result<Self, DontHaveError> {
        <[u8; 4]>::try_from(payload)
            .map(|b| Self(u32::from_be_bytes(b)))
            .map_err(|_| DontHaveError::BadLength(payload.len()))
    }

    /// The payload.
    #[must_use]
    pub const fn to_bytes(&self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// Clears the piece in the sender's bitfield. Returns whether it was set; an index
    /// beyond the torrent changes nothing and returns `false`.
    pub fn apply(&self, bitfield: &mut Bitfield) -> bool {
        bitfield.clear(self.0).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bad_lengths() {
        assert_eq!(DontHave::decode(&[]), Err(DontHaveError::BadLength(0)));
        assert_eq!(DontHave::decode(&[0; 5]), Err(DontHaveError::BadLength(5)));
    }

    #[test]
    fn out_of_range_piece_is_harmless() {
        let mut bf = Bitfield::full(3);
        assert!(!DontHave(3).apply(&mut bf));
        assert!(!DontHave(u32::MAX).apply(&mut bf));
        assert_eq!(bf, Bitfield::full(3));
    }

    proptest! {
        #[test]
        fn round_trip(piece in any::<u32>()) {
            prop_assert_eq!(DontHave::decode(&DontHave(piece).to_bytes()), Ok(DontHave(piece)));
        }
    }
}
