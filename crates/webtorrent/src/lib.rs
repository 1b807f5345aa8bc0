//! WebTorrent-compatible BitTorrent in Rust.
//!
//! This umbrella crate re-exports the protocol crates of the workspace as modules.
#![forbid(unsafe_code)]

pub use webtorrent_bencode as bencode;
pub use webtorrent_hash as hash;
pub use webtorrent_magnet as magnet;
pub use webtorrent_metainfo as metainfo;
pub use webtorrent_types as types;
