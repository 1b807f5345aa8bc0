//! Torrent storage: pieces and blocks on files, with resume data and recheck.
//!
//! - [`Layout`] is a torrent seen through its pieces: which file runs a block covers
//!   ([`Layout::segments`], built on the metainfo's piece ↔ file mapping) and which hashes a
//!   piece must match ([`Layout::piece_checks`]: SHA-1 for v1, the BEP 52 Merkle piece hash
//!   for v2, both for hybrid torrents).
//! - [`Storage`] is the thread-safe store the session engine talks to: read and write
//!   blocks, read and verify pieces, flush, and the verified set ([`Bitfield`]).
//! - [`FileStorage`] keeps the files under a download root with positional I/O, sparse
//!   files and a bounded cache of open files; [`MemoryStorage`] keeps them in memory.
//!   BEP 47 pad files are never stored: they read as zeros.
//! - [`ResumeData`] saves the verified set atomically with what it was checked against
//!   (info-hashes, piece count, file sizes and times) and validates it when loaded.
//! - [`recheck()`] hashes the data already on disk, in parallel and in bounded memory.
//!
//! The API is synchronous: an async engine calls it from blocking threads.
//!
//! ```
//! use webtorrent_hash::SingleThreadEngine;
//! use webtorrent_metainfo::{MemoryFile, TorrentBuilder};
//! use webtorrent_storage::{FileStorage, Layout, ResumeData, Storage, recheck};
//!
//! // A hybrid torrent of two files (pad files keep v2 pieces aligned).
//! let a: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
//! let b = b"a short second file".to_vec();
//! let torrent = TorrentBuilder::from_memory(
//!     "demo",
//!     vec![MemoryFile::new("a.bin", a.clone()), MemoryFile::new("b.txt", b.clone())],
//! )
//! .piece_length(Some(16 * 1024))
//! .build()?;
//! let layout = Layout::from_metainfo(&torrent);
//!
//! let dir = tempfile::tempdir()?;
//! let store = FileStorage::new(layout.clone(), dir.path())?;
//! // Blocks arrive from peers in any order; each piece is verified once complete.
//! let pieces = layout.piece_count();
//! for piece in (0..pieces).rev() {
//!     let size = layout.piece_size(piece)? as usize;
//!     let offset = piece as usize * 16 * 1024;
//!     let mut data = vec![0u8; size];
//!     for (i, byte) in data.iter_mut().enumerate() {
//!         *byte = if offset + i < a.len() { a[offset + i] } else { 0 };
//!     }
//!     // The last piece holds the second file.
//!     if piece == pieces - 1 {
//!         data = b.clone();
//!     }
//!     store.write_block(piece, 0, &data)?;
//!     assert!(store.verify_piece(piece)?);
//! }
//! store.flush()?;
//! assert_eq!(std::fs::read(dir.path().join("demo/b.txt"))?, b);
//!
//! // Save the verified set; a new session loads and validates it against the files.
//! let resume_path = dir.path().join("demo.resume");
//! ResumeData::capture(&store)?.save(&resume_path)?;
//! let loaded = ResumeData::load(&resume_path)?.expect("just saved");
//! assert!(loaded.validate(&layout, &store.file_states()?)?.is_full());
//!
//! // Or rehash everything on disk.
//! let verified = recheck(&store, &SingleThreadEngine, |_done, _total| {})?;
//! assert!(verified.is_full());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod file;
mod layout;
mod memory;
mod parts;
mod recheck;
pub mod resume;
mod storage;

pub use error::StorageError;
pub use file::{DEFAULT_MAX_OPEN_FILES, FileStorage};
pub use layout::{Layout, PieceCheck, Segment};
pub use memory::MemoryStorage;
pub use recheck::{RECHECK_BATCH_BYTES, recheck};
pub use resume::{FileState, ResumeData, ResumeError};
pub use storage::Storage;
pub use webtorrent_types::Bitfield;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
