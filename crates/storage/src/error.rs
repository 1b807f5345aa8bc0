//! Errors of the storage layer.

use std::io;
use std::path::PathBuf;

/// An error reading, writing or verifying torrent data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The piece index is not below the torrent's piece count.
    #[error("piece {piece} is out of range (the torrent has {piece_count} pieces)")]
    PieceOutOfRange {
        /// The requested piece.
        piece: u32,
        /// Number of pieces of the torrent.
        piece_count: u32,
    },
    /// A block reaches past the end of its piece.
    #[error(
        "block at offset {offset} of length {length} reaches past the end of piece {piece} ({piece_size} bytes)"
    )]
    BlockOutOfRange {
        /// The piece.
        piece: u32,
        /// Offset of the block inside the piece.
        offset: u64,
        /// Length of the block.
        length: u64,
        /// Size of the piece.
        piece_size: u64,
    },
    /// A per-file list (such as the skipped files) does not have one entry per file.
    #[error("expected one entry per file ({expected}), got {actual}")]
    FileCountMismatch {
        /// Number of files of the torrent.
        expected: usize,
        /// Entries given.
        actual: usize,
    },
    /// A file index is not below the number of files.
    #[error("file {file} is out of range (the torrent has {file_count} files)")]
    FileOutOfRange {
        /// The requested file.
        file: usize,
        /// Number of files of the torrent.
        file_count: usize,
    },
    /// A file range reaches past the end of the file.
    #[error(
        "range at {offset} of length {length} reaches past the end of file {file} ({file_length} bytes)"
    )]
    FileRangeOutOfRange {
        /// The file index.
        file: usize,
        /// Offset inside the file.
        offset: u64,
        /// Length of the range.
        length: u64,
        /// Length of the file in the torrent.
        file_length: u64,
    },
    /// Data was read from a file that does not exist (yet).
    #[error("file {file} ({}) does not exist", path.display())]
    FileMissing {
        /// The file index.
        file: usize,
        /// Where the file was looked for.
        path: PathBuf,
    },
    /// A file on disk is shorter than the data asked for.
    #[error("file {file} ({}) is too short: needed {needed} bytes, it has {actual}", path.display())]
    ShortFile {
        /// The file index.
        file: usize,
        /// The file's path.
        path: PathBuf,
        /// Bytes the read needed the file to have.
        needed: u64,
        /// Bytes the file has.
        actual: u64,
    },
    /// A file's path would leave the download root, or crosses a symbolic link.
    #[error("refusing the path {}: {reason}", path.display())]
    UnsafePath {
        /// The offending path.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The torrent has no hash to check this piece against (v2 info without piece layers).
    #[error("no hash is known for piece {piece}")]
    NoPieceHash {
        /// The piece.
        piece: u32,
    },
    /// A bitfield of the wrong length was given for this torrent.
    #[error("bitfield of {actual} pieces given for a torrent of {expected}")]
    BitfieldLength {
        /// Piece count of the torrent.
        expected: u32,
        /// Length of the bitfield.
        actual: u32,
    },
    /// An I/O error on a file.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    /// Whether the error means "the data is not there": a missing or short file. Recheck
    /// treats such pieces as not verified instead of failing.
    #[must_use]
    pub fn is_missing_data(&self) -> bool {
        matches!(self, Self::FileMissing { .. } | Self::ShortFile { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
