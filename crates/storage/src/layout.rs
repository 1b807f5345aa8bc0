//! Where pieces and blocks live: a torrent's files seen through its pieces.

use std::ops::Range;

use webtorrent_hash::{Algorithm, BLOCK_SIZE, Digest, merkle};
use webtorrent_metainfo::{Info, Metainfo};

use crate::StorageError;

/// A run of bytes of one file that a block or piece covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Segment {
    /// Index into [`Info::files`].
    pub file: usize,
    /// Offset inside the file.
    pub offset: u64,
    /// Number of bytes.
    pub length: u64,
    /// Whether the file is a BEP 47 pad file: its bytes are zeros and never stored.
    pub pad: bool,
}

/// One hash check of a piece: hash `range` of the piece's bytes with `algorithm` and
/// compare with `expected`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PieceCheck {
    /// The bytes of the piece to hash (v2 checks leave out pad bytes after a file's end).
    pub range: Range<usize>,
    /// What to compute.
    pub algorithm: Algorithm,
    /// The digest the torrent expects.
    pub expected: Digest,
}

/// A torrent's info dictionary plus the v2 piece hashes, which live outside it.
///
/// It maps pieces and blocks onto files with the piece ↔ file mapping of
/// [`Info::piece_files`], and says how to verify a piece ([`piece_checks`](Self::piece_checks)).
#[derive(Clone, Debug)]
pub struct Layout {
    info: Info,
    /// v2 hash of each piece, empty when none is known.
    v2: Vec<Option<[u8; 32]>>,
}

impl Layout {
    /// The layout of an info dictionary alone (fetched from peers with a magnet link, say):
    /// v1 hashes come with it, v2 piece layers do not, so v2-only pieces of files longer
    /// than a piece cannot be verified yet.
    #[must_use]
    pub fn new(info: Info) -> Self {
        let v2 = if info.version().has_v2() {
            (0..info.piece_count())
                .map(|p| {
                    let file = &info.files()[info.file_at_piece(p)?];
                    (file.length <= info.piece_length())
                        .then_some(file.pieces_root)
                        .flatten()
                })
                .collect()
        } else {
            Vec::new()
        };
        Self { info, v2 }
    }

    /// The layout of a whole torrent, v2 piece layers included.
    #[must_use]
    pub fn from_metainfo(torrent: &Metainfo) -> Self {
        let info = torrent.info().clone();
        let v2 = if info.version().has_v2() {
            (0..info.piece_count())
                .map(|p| torrent.piece_hash_v2(p))
                .collect()
        } else {
            Vec::new()
        };
        Self { info, v2 }
    }

    /// The info dictionary.
    #[must_use]
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// Number of pieces.
    #[must_use]
    pub fn piece_count(&self) -> u32 {
        self.info.piece_count()
    }

    /// Size of piece `piece` in bytes.
    pub fn piece_size(&self, piece: u32) -> Result<u64, StorageError> {
        self.info
            .piece_size(piece)
            .ok_or(StorageError::PieceOutOfRange {
                piece,
                piece_count: self.piece_count(),
            })
    }

    /// The file runs that `length` bytes at `offset` inside piece `piece` cover, in order.
    /// Empty files never appear; pad files do, marked [`Segment::pad`].
    pub fn segments(
        &self,
        piece: u32,
        offset: u64,
        length: u64,
    ) -> Result<Vec<Segment>, StorageError> {
        let piece_size = self.piece_size(piece)?;
        let end = offset
            .checked_add(length)
            .filter(|&end| end <= piece_size)
            .ok_or(StorageError::BlockOutOfRange {
                piece,
                offset,
                length,
                piece_size,
            })?;
        let files = self.info.files();
        let mut out = Vec::new();
        let mut pos = 0u64; // offset inside the piece of the current slice
        for slice in self.info.piece_files(piece) {
            let (start, stop) = (pos, pos + slice.length);
            pos = stop;
            let (a, b) = (start.max(offset), stop.min(end));
            if a < b {
                out.push(Segment {
                    file: slice.file,
                    offset: slice.offset + (a - start),
                    length: b - a,
                    pad: files[slice.file].is_pad(),
                });
            }
            if stop >= end {
                break;
            }
        }
        Ok(out)
    }

    /// The v2 hash of `piece`, when known.
    #[must_use]
    pub fn piece_hash_v2(&self, piece: u32) -> Option<[u8; 32]> {
        self.v2.get(usize::try_from(piece).ok()?).copied().flatten()
    }

    /// The hash checks piece `piece` must pass: SHA-1 for v1 and hybrid torrents, the BEP
    /// 52 Merkle hash when the v2 hash is known. Both are checked for a hybrid torrent:
    /// v1 peers rely on the first, v2 peers on the second. Empty when no hash is known.
    pub fn piece_checks(&self, piece: u32) -> Result<Vec<PieceCheck>, StorageError> {
        let size = self.piece_size(piece)?;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let mut checks = Vec::with_capacity(2);
        if let Some(h) = self.info.piece_hash_v1(piece) {
            checks.push(PieceCheck {
                range: 0..size,
                algorithm: Algorithm::Sha1,
                expected: Digest::Sha1(h),
            });
        }
        if let Some(h) = self.piece_hash_v2(piece)
            && let Some(file) = self.info.file_at_piece(piece)
            && let Some(range) = self.info.piece_range(piece)
        {
            let entry = &self.info.files()[file];
            // In a hybrid torrent the piece may end with pad bytes after the file.
            let data_end = range.end.min(entry.end()) - range.start;
            let data_end = usize::try_from(data_end).unwrap_or(usize::MAX);
            let piece_length = usize::try_from(self.info.piece_length()).unwrap_or(usize::MAX);
            let tree_width = if entry.length <= self.info.piece_length() {
                // A file of at most one piece: its `pieces root` pads only to a power of two
                // of blocks, which is a piece hash for that (smaller) piece length.
                let leaves = merkle::leaf_count(entry.length).max(1);
                usize::try_from(leaves.next_power_of_two())
                    .unwrap_or(usize::MAX)
                    .saturating_mul(BLOCK_SIZE)
            } else {
                piece_length
            };
            checks.push(PieceCheck {
                range: 0..data_end,
                algorithm: Algorithm::MerklePiece {
                    piece_length: tree_width,
                },
                expected: Digest::Sha256(h),
            });
        }
        Ok(checks)
    }

    /// Checks a whole piece's bytes on the current thread: `Ok(true)` when every check of
    /// [`piece_checks`](Self::piece_checks) passes.
    pub fn check_piece(&self, piece: u32, data: &[u8]) -> Result<bool, StorageError> {
        let checks = self.piece_checks(piece)?;
        if checks.is_empty() {
            return Err(StorageError::NoPieceHash { piece });
        }
        Ok(checks_pass(&checks, data))
    }
}

pub(crate) fn checks_pass(checks: &[PieceCheck], data: &[u8]) -> bool {
    checks.iter().all(|c| {
        data.get(c.range.clone())
            .is_some_and(|d| c.algorithm.hash(d) == c.expected)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use webtorrent_metainfo::{MemoryFile, MetaVersion, TorrentBuilder};

    fn layout(version: MetaVersion, sizes: &[usize]) -> Layout {
        let files = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| MemoryFile::new(format!("f{i}"), vec![i as u8 + 1; n]))
            .collect();
        let t = TorrentBuilder::from_memory("t", files)
            .meta_version(version)
            .piece_length(Some(BLOCK_SIZE as u64))
            .build()
            .expect("valid torrent");
        Layout::from_metainfo(&t)
    }

    #[test]
    fn v1_block_spanning_three_files() {
        // f0: 0..10000, f1: 10000..10000 (empty), f2: 10000..10005, f3: 10005..40000.
        let l = layout(MetaVersion::V1, &[10_000, 0, 5, 29_995]);
        let segs = l.segments(0, 9_000, 2_000).unwrap();
        assert_eq!(
            segs,
            [
                Segment {
                    file: 0,
                    offset: 9_000,
                    length: 1_000,
                    pad: false
                },
                Segment {
                    file: 2,
                    offset: 0,
                    length: 5,
                    pad: false
                },
                Segment {
                    file: 3,
                    offset: 0,
                    length: 995,
                    pad: false
                },
            ]
        );
        // Piece 1 starts inside f3.
        assert_eq!(
            l.segments(1, 0, 10).unwrap(),
            [Segment {
                file: 3,
                offset: BLOCK_SIZE as u64 - 10_005,
                length: 10,
                pad: false
            }]
        );
        assert!(l.segments(0, 0, 0).unwrap().is_empty());
        assert!(matches!(
            l.segments(2, 7_232, 1),
            Err(StorageError::BlockOutOfRange {
                piece_size: 7_232,
                ..
            })
        ));
        assert!(matches!(
            l.segments(0, u64::MAX, 2),
            Err(StorageError::BlockOutOfRange { .. })
        ));
        assert!(matches!(
            l.segments(3, 0, 1),
            Err(StorageError::PieceOutOfRange { .. })
        ));
        assert_eq!(l.piece_checks(0).unwrap().len(), 1);
    }

    #[test]
    fn hybrid_pads_and_v2_ranges() {
        let l = layout(MetaVersion::Hybrid, &[10_000, 40_000]);
        // f0 then a pad file up to the piece boundary.
        let segs = l.segments(0, 0, BLOCK_SIZE as u64).unwrap();
        assert_eq!(segs.len(), 2);
        assert!(segs[1].pad && segs[1].length == BLOCK_SIZE as u64 - 10_000);
        let checks = l.piece_checks(0).unwrap();
        assert_eq!(checks[0].range, 0..BLOCK_SIZE);
        // The v2 hash covers only f0's bytes, not the padding.
        assert_eq!(checks[1].range, 0..10_000);
        assert_eq!(l.piece_hash_v2(0), l.info().files()[0].pieces_root);
        assert_eq!(l.piece_hash_v2(99), None);
    }
}
