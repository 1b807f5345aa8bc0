//! WebTorrent-compatible BitTorrent in Rust.
//!
//! This umbrella crate re-exports the protocol crates of the workspace as modules and holds
//! what joins them. Each module is also usable on its own as its `webtorrent-*` crate.
//!
//! | module | what it does |
//! |---|---|
//! | [`bencode`] | zero-copy bencode with raw spans, canonical encoder, serde |
//! | [`types`] | info-hashes (v1, v2, truncated), peer ids with BEP 20 client names |
//! | [`hash`] | SHA-1 pieces, BEP 52 Merkle trees, hash engines |
//! | [`metainfo`] | `.torrent` files: parse and create v1, v2 and hybrid torrents |
//! | [`magnet`] | magnet links: parse and format |
//! | [`wire`] | peer wire protocol, sans-IO: handshake, messages, per-peer state machine |
//! | [`storage`] | pieces and blocks on files or in memory, verification, resume data |
//! | [`tracker`] | HTTP and UDP tracker protocols and clients, BEP 12 tiers |
//! | [`choker`] | tit-for-tat choker: regular and optimistic unchoke slots, seeding modes |
//! | [`picker`] | piece picker: rarest first, priorities, streaming deadlines, endgame |
//! | [`ratelimit`] | token-bucket rate limits (global and per torrent), rate meters |
//! | [`session`] | the engine: TCP listener, torrents, magnets, trackers, PEX, download and seed, file readers |
//! | `http` | (feature `http`) HTTP server: Range streaming, JSON API, metrics, web UI |
//!
//! Create a torrent from data in memory, then read it back and share its magnet link:
//!
//! ```
//! use webtorrent::metainfo::{Metainfo, TorrentBuilder};
//!
//! let created = TorrentBuilder::from_memory_file("hello.txt", b"hello, swarm".to_vec())
//!     .tracker("wss://tracker.example/announce".to_owned())
//!     .build()?;
//! let parsed = Metainfo::from_bytes(&created.to_bytes())?;
//! assert_eq!(parsed.info_hashes(), created.info_hashes());
//!
//! let link = webtorrent::magnet_link(&parsed).to_string();
//! assert!(link.starts_with("magnet:?xt=urn:btih:"));
//! assert!(link.contains("&xt=urn:btmh:1220"));   // hybrid: v1 and v2 info-hashes
//! assert!(link.contains("&dn=hello.txt"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use webtorrent_bencode as bencode;
pub use webtorrent_dht as dht;
pub use webtorrent_extensions as extensions;
pub use webtorrent_hash as hash;
pub use webtorrent_magnet as magnet;
pub use webtorrent_metainfo as metainfo;
#[cfg(feature = "webrtc")]
pub use webtorrent_rtc as rtc;
pub use webtorrent_storage as storage;
pub use webtorrent_tracker as tracker;
pub use webtorrent_types as types;
pub use webtorrent_wire as wire;

pub mod choker;
#[cfg(feature = "http")]
pub mod http;
pub mod picker;
pub mod ratelimit;
mod rng;
pub mod session;

/// The magnet link of a torrent: its info-hashes (v1 and/or v2), name, trackers (every tier,
/// in order) and web seeds.
pub fn magnet_link(torrent: &metainfo::Metainfo) -> magnet::Magnet {
    let mut m = magnet::Magnet::new(torrent.info_hashes());
    m.display_name = Some(torrent.info().name().to_owned());
    m.trackers = torrent.trackers().iter().flatten().cloned().collect();
    m.web_seeds = torrent.web_seeds().to_vec();
    m
}

/// The README examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
