//! Parse and create `.torrent` files: BitTorrent v1 (BEP 3), v2 (BEP 52) and hybrid, with
//! trackers (BEP 12), web seeds (BEP 19), the private flag (BEP 27) and pad files and file
//! attributes (BEP 47).
//!
//! - [`Metainfo`] is a whole `.torrent` file, [`Info`] its info dictionary. Both keep the
//!   exact bytes of the info dictionary: the info-hashes are hashes of those bytes, and
//!   writing a parsed torrent again writes them unchanged.
//! - Every path is sanitised ([`PathProblem`]): a hostile torrent is refused with an error
//!   that names the offending path, it never yields a path that leaves the download folder.
//! - [`Info::files`] gives each file's offset, and [`Info::piece_files`] /
//!   [`Info::file_pieces`] map pieces to file ranges and back.
//! - With the default `create` feature, [`TorrentBuilder`] creates torrents from files on
//!   disk (or in memory), hashing in parallel with bounded memory. It writes what
//!   libtorrent 2.0 writes for the same files (same info-hashes); `docs/metainfo.md` in the
//!   repository records the rules.
//!
//! Parsing is sans-IO: it reads bytes only. Creation reads the filesystem and uses threads,
//! which is why it sits behind the `create` feature.
//!
//! ```
//! use webtorrent_metainfo::{Metainfo, MetaVersion};
//!
//! // A small v1 torrent, written by hand (keys need not be sorted).
//! let mut bytes = b"d4:infod4:name5:hello12:piece lengthi16384e6:lengthi11e6:pieces20:".to_vec();
//! bytes.extend_from_slice(&webtorrent_hash::sha1(b"hello world"));
//! bytes.extend_from_slice(b"e8:announce19:udp://tracker:1337/e");
//!
//! let torrent = Metainfo::from_bytes(&bytes)?;
//! let info = torrent.info();
//! assert_eq!(info.version(), MetaVersion::V1);
//! assert_eq!(info.name(), "hello");
//! assert_eq!(info.files()[0].length, 11);
//! assert_eq!(torrent.trackers(), [vec!["udp://tracker:1337/".to_string()]]);
//!
//! // The info-hash is the SHA-1 of the info dictionary exactly as written.
//! let start = b"d4:info".len();
//! let end = bytes.len() - b"8:announce19:udp://tracker:1337/e".len();
//! let v1 = torrent.info_hashes().v1.unwrap();
//! assert_eq!(v1.0, webtorrent_hash::sha1(&bytes[start..end]));
//!
//! // Writing it again keeps the info-hash.
//! let again = Metainfo::from_bytes(&torrent.to_bytes())?;
//! assert_eq!(again.info_hashes(), torrent.info_hashes());
//! # Ok::<(), webtorrent_metainfo::MetainfoError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "create")]
mod create;
mod error;
mod file;
mod info;
mod metainfo;
mod path;
mod piece_length;

#[cfg(feature = "create")]
pub use create::{CreateError, MemoryFile, TorrentBuilder};
pub use error::{HybridMismatch, MetainfoError};
pub use file::{FileAttributes, FileEntry, FileSlice};
pub use info::{Info, MAX_FILES, MetaVersion};
pub use metainfo::Metainfo;
pub use path::{MAX_COMPONENT_LEN, MAX_PATH_LEN, PathProblem};
pub use piece_length::{
    MAX_PIECE_LENGTH, MIN_V2_PIECE_LENGTH, auto_piece_length, is_valid_v1_piece_length,
    is_valid_v2_piece_length,
};
pub use webtorrent_types::{InfoHashV1, InfoHashV2, InfoHashes};

/// The README's examples, run as doctests.
#[cfg(all(doctest, feature = "create"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
