//! Core value types shared by the webtorrent-rs protocol crates.
//!
//! - [`InfoHashV1`] (SHA-1, 20 bytes) and [`InfoHashV2`] (SHA-256, 32 bytes), with hex,
//!   base32 and multihash text forms, and [`InfoHashes`], the pair a v1, v2 or hybrid
//!   torrent has. [`InfoHashes::wire`] gives the 20-byte name used on the wire.
//! - [`PeerId`], with [`PeerId::client`] recognising the client and version that made
//!   it (BEP 20), and [`OUR_PEER_ID_PREFIX`] for ids this project sends.
//! - [`PieceIndex`], [`BlockRef`] and [`BLOCK_SIZE`]; [`Bitfield`], a set of pieces in the
//!   BEP 3 wire layout.
//! - [`hex`], a tiny hexadecimal codec.
//!
//! The crate does no I/O: randomness for peer ids is passed in.
//!
//! ```
//! use webtorrent_types::{InfoHashV1, InfoHashV2, InfoHashes, PeerId};
//!
//! let v1: InfoHashV1 = "64DZYZWMUAVLIWJUXGDIK4QGAAIN7SL6".parse()?;
//! assert_eq!(v1.to_string(), "f7079c66cca02ab45934b9868572060010dfc97e");
//!
//! let v2 = InfoHashV2::from_multihash_hex(
//!     "1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e",
//! )?;
//! assert_eq!(InfoHashes::from_v2(v2).wire(), v2.truncated());
//! assert_eq!(InfoHashes::hybrid(v1, v2).wire(), v1);
//!
//! let peer = PeerId::new(b"-qB4520-", [b'x'; 20]);
//! let client = peer.client().expect("a known client");
//! assert_eq!((client.name, client.version.as_str()), ("qBittorrent", "4.5.2"));
//! # Ok::<(), webtorrent_types::ParseError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod base32;
mod bitfield;
mod block;
mod bytes;
mod error;
pub mod hex;
mod info_hash;
mod peer_id;

pub use bitfield::{Bitfield, BitfieldError};
pub use block::{BLOCK_SIZE, BlockRef, PieceIndex};
pub use error::ParseError;
pub use info_hash::{InfoHashV1, InfoHashV2, InfoHashes};
pub use peer_id::{Client, OUR_CLIENT_NAME, OUR_PEER_ID_PREFIX, PeerId};

/// The README examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
