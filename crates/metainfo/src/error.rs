//! Parse and validation errors.

use std::path::PathBuf;

use webtorrent_bencode::DecodeError;

use crate::path::PathProblem;

/// Why a `.torrent` file or info dictionary was refused.
///
/// Keys are named by their path from the top of the `.torrent`, e.g. `info.piece length` or
/// `info.files[3].path`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetainfoError {
    /// The bytes are not valid bencode.
    #[error(transparent)]
    Bencode(#[from] DecodeError),
    /// A required key is missing.
    #[error("missing key `{key}`")]
    MissingKey {
        /// The key.
        key: &'static str,
    },
    /// A key holds a value of the wrong type.
    #[error("`{key}` should be {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// What it should hold, e.g. "a dictionary".
        expected: &'static str,
    },
    /// `meta version` is neither absent (v1) nor 2.
    #[error("unsupported meta version {version}")]
    UnsupportedMetaVersion {
        /// The value found.
        version: i64,
    },
    /// `piece length` is 0, negative, too large, or (v2) not a power of two of at least
    /// 16 KiB.
    #[error("invalid piece length {piece_length}")]
    InvalidPieceLength {
        /// The value found.
        piece_length: i64,
    },
    /// The `pieces` string is not a whole number of 20-byte SHA-1 hashes.
    #[error("`info.pieces` is {len} bytes long, not a multiple of 20")]
    InvalidPiecesLength {
        /// Its length in bytes.
        len: usize,
    },
    /// The number of piece hashes does not match the total length.
    #[error("{actual} piece hashes for data needing {expected} pieces")]
    PieceCountMismatch {
        /// Pieces needed by the files.
        expected: u64,
        /// Hashes in `pieces`.
        actual: u64,
    },
    /// A file length is negative.
    #[error("file {path:?} has negative length {length}")]
    NegativeLength {
        /// The file (components joined with `/`).
        path: String,
        /// The length found.
        length: i64,
    },
    /// File lengths (with padding) add up to more than `u64::MAX`, or more pieces than a
    /// `u32` piece index can address.
    #[error("file lengths overflow")]
    LengthOverflow,
    /// The torrent lists no file.
    #[error("the torrent contains no files")]
    NoFiles,
    /// Every file is empty: there is no piece to share.
    #[error("the torrent's files are all empty")]
    NoData,
    /// The torrent lists more files than accepted.
    #[error("{count} files, more than the {max} accepted")]
    TooManyFiles {
        /// Files counted so far.
        count: usize,
        /// The limit ([`crate::MAX_FILES`]).
        max: usize,
    },
    /// The file paths of a v2 `file tree`, written out in full, would take far more memory
    /// than the torrent itself (deep folders shared by very many files).
    #[error("the file paths of the `file tree` are too large")]
    PathsTooLarge,
    /// The torrent name or a file path is hostile or cannot be a file name here.
    #[error("refused path {path:?}: {problem}")]
    InvalidPath {
        /// The offending path (components joined with `/`, lossy UTF-8).
        path: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// Two files have the same path (compared byte for byte, so case-sensitively).
    #[error("duplicate file path {path:?}")]
    DuplicatePath {
        /// The path, starting with the torrent name for multi-file torrents.
        path: PathBuf,
    },
    /// A path is used both as a file and as a directory.
    #[error("{path:?} is both a file and a directory")]
    FileIsDirectory {
        /// The path, starting with the torrent name for multi-file torrents.
        path: PathBuf,
    },
    /// A symlink target leaves the torrent.
    #[error("symlink {path:?} points outside the torrent ({target})")]
    SymlinkEscapes {
        /// The symlink.
        path: PathBuf,
        /// Its target as stored (components joined with `/`).
        target: String,
    },
    /// A v2 file entry has no 32-byte `pieces root` although it is not empty, or has one
    /// that is all zeros.
    #[error("file {path:?} has a missing or invalid `pieces root`")]
    InvalidPiecesRoot {
        /// The file.
        path: PathBuf,
    },
    /// A v2 file larger than one piece has no entry in `piece layers`.
    #[error("no piece layer for file {path:?}")]
    MissingPieceLayer {
        /// The file.
        path: PathBuf,
    },
    /// A piece layer has the wrong length for its file.
    #[error("piece layer of {path:?} is {actual} bytes, expected {expected}")]
    PieceLayerLength {
        /// The file.
        path: PathBuf,
        /// `32 * ceil(length / piece length)`.
        expected: u64,
        /// The length found.
        actual: u64,
    },
    /// A piece layer does not hash to its file's `pieces root`.
    #[error("piece layer of {path:?} does not match its pieces root")]
    PieceLayerRoot {
        /// The file.
        path: PathBuf,
    },
    /// A piece layer was given for a file that takes none: no such file, a pad file, a
    /// file of at most one piece, or a torrent without v2 hashes.
    #[error("file {index} takes no piece layer")]
    NoPieceLayer {
        /// The file's index in the info dictionary's file list.
        index: usize,
    },
    /// The v1 and v2 parts of a hybrid torrent describe different files.
    #[error("hybrid torrent: the v1 and v2 file lists disagree: {0}")]
    HybridMismatch(HybridMismatch),
}

/// How the two halves of a hybrid torrent disagree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HybridMismatch {
    /// One is a single-file torrent and the other a multi-file one.
    #[error("one is single-file, the other multi-file")]
    Shape,
    /// Different numbers of (non-pad) files.
    #[error("{v1} files in v1, {v2} in v2")]
    FileCount {
        /// Real files in the v1 list.
        v1: usize,
        /// Files in the v2 tree.
        v2: usize,
    },
    /// The file at this position differs in path, length or symlink target.
    #[error("file #{index} differs: {v1:?} in v1, {v2:?} in v2")]
    File {
        /// Position among real files.
        index: usize,
        /// The v1 path.
        v1: PathBuf,
        /// The v2 path.
        v2: PathBuf,
    },
    /// A v1 file does not start on the piece boundary where v2 places it (pad files are
    /// missing or wrong).
    #[error("{path:?} starts at byte {v1} in v1 but {v2} in v2")]
    Offset {
        /// The file.
        path: PathBuf,
        /// Its offset in the v1 stream.
        v1: u64,
        /// Its offset in the v2 (piece-aligned) layout.
        v2: u64,
    },
    /// The v1 data runs on after the last file's final piece.
    #[error("v1 data is {v1} bytes, v2 data ends at {v2}")]
    TotalLength {
        /// Length of the v1 stream, pad files included.
        v1: u64,
        /// End of the last file in the v2 layout.
        v2: u64,
    },
}
