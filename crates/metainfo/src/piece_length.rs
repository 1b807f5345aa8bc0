//! Piece length rules: the automatic choice and what is accepted.

/// Smallest v2 (and hybrid) piece length: one 16 KiB Merkle leaf block (BEP 52).
pub const MIN_V2_PIECE_LENGTH: u64 = 16 * 1024;

/// Largest piece length accepted when parsing or creating a torrent: 512 MiB.
///
/// No known creator goes beyond 256 MiB, and a client has to buffer a whole piece to verify
/// it, so larger values are refused as not sane.
pub const MAX_PIECE_LENGTH: u64 = 512 * 1024 * 1024;

/// Total sizes up to which each automatic piece length is used, starting at 16 KiB and
/// doubling at every step; beyond the last entry the piece length is 16 MiB.
///
/// These are libtorrent 2.0's thresholds (`create_torrent`): they aim at a piece list of about
/// `2 * sqrt(total)` bytes of SHA-1 hashes, that is `total = (2 * piece / 20)^2`.
const AUTO_THRESHOLDS: [u64; 10] = [
    2_684_355,
    10_737_418,
    42_949_673,
    171_798_692,
    687_194_767,
    2_748_779_069,
    10_995_116_278,
    43_980_465_111,
    175_921_860_444,
    703_687_441_777,
];

/// The piece length libtorrent 2.0 and 2.1 pick for a torrent whose real files (pad files not
/// counted) add up to `total_length` bytes: 16 KiB up to about 2.7 MB, doubling at every
/// threshold, at most 16 MiB. It is a power of two, so it is valid for v1, v2 and hybrid.
///
/// ```
/// use webtorrent_metainfo::auto_piece_length;
/// assert_eq!(auto_piece_length(1), 16 * 1024);
/// assert_eq!(auto_piece_length(1 << 30), 512 * 1024); // 1 GiB
/// assert_eq!(auto_piece_length(u64::MAX), 16 * 1024 * 1024);
/// ```
#[must_use]
pub fn auto_piece_length(total_length: u64) -> u64 {
    let steps = AUTO_THRESHOLDS
        .iter()
        .take_while(|&&limit| limit < total_length)
        .count();
    MIN_V2_PIECE_LENGTH << steps
}

/// Whether `piece_length` is valid for a v2 or hybrid torrent: a power of two between
/// [`MIN_V2_PIECE_LENGTH`] and [`MAX_PIECE_LENGTH`].
#[must_use]
pub fn is_valid_v2_piece_length(piece_length: u64) -> bool {
    piece_length.is_power_of_two()
        && (MIN_V2_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&piece_length)
}

/// Whether `piece_length` is accepted in a parsed v1 torrent: between 1 byte and
/// [`MAX_PIECE_LENGTH`]. Real torrents almost always use powers of two, but BEP 3 does not
/// require it, so any size in range parses (a tiny size costs nothing: the piece count is
/// bounded by the length of the `pieces` string).
#[must_use]
pub fn is_valid_v1_piece_length(piece_length: u64) -> bool {
    (1..=MAX_PIECE_LENGTH).contains(&piece_length)
}

/// Whether `piece_length` may be used to create a v1 torrent: libtorrent's rule (a multiple
/// of 16 KiB or a power of two), within the parse limits.
#[cfg(feature = "create")]
#[must_use]
pub(crate) fn is_valid_v1_create_piece_length(piece_length: u64) -> bool {
    is_valid_v1_piece_length(piece_length)
        && (piece_length.is_multiple_of(MIN_V2_PIECE_LENGTH) || piece_length.is_power_of_two())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values measured with python3-libtorrent 2.0.8 and the libtorrent 2.1.1 wheel
    /// (`create_torrent(fs, 0, flags).piece_length()` for one file of each size), identical
    /// for v1, v2 and hybrid.
    #[test]
    fn matches_libtorrent_measurements() {
        let measured: &[(u64, u64)] = &[
            (1, 16384),
            (16384, 16384),
            (2_684_354, 16384),
            (2_684_355, 16384),
            (2_684_356, 32768),
            (10_737_418, 32768),
            (10_737_419, 65536),
            (42_949_673, 65536),
            (42_949_674, 131_072),
            (171_798_692, 131_072),
            (171_798_693, 262_144),
            (687_194_767, 262_144),
            (687_194_768, 524_288),
            (2_748_779_069, 524_288),
            (2_748_779_070, 1_048_576),
            (10_995_116_278, 1_048_576),
            (10_995_116_279, 2_097_152),
            (43_980_465_111, 2_097_152),
            (43_980_465_112, 4_194_304),
            (175_921_860_444, 4_194_304),
            (175_921_860_445, 8_388_608),
            (703_687_441_777, 8_388_608),
            (703_687_441_778, 16_777_216),
            (10_000_000_000_000, 16_777_216),
            (1 << 43, 16_777_216),
        ];
        for &(total, piece) in measured {
            assert_eq!(auto_piece_length(total), piece, "total {total}");
        }
    }

    #[test]
    fn validity() {
        assert!(is_valid_v2_piece_length(16384));
        assert!(is_valid_v2_piece_length(MAX_PIECE_LENGTH));
        assert!(!is_valid_v2_piece_length(8192));
        assert!(!is_valid_v2_piece_length(3 * 16384));
        assert!(!is_valid_v2_piece_length(MAX_PIECE_LENGTH * 2));
        assert!(!is_valid_v1_piece_length(0));
        assert!(is_valid_v1_piece_length(1000));
    }

    #[cfg(feature = "create")]
    #[test]
    fn create_validity() {
        assert!(is_valid_v1_create_piece_length(3 * 16384));
        assert!(is_valid_v1_create_piece_length(1024));
        assert!(!is_valid_v1_create_piece_length(1000));
        assert!(!is_valid_v1_create_piece_length(0));
    }
}
