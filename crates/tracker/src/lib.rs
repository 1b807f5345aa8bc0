//! Tracker protocols for webtorrent-rs.
//!
//! The core is sans-IO and always built:
//! - [`AnnounceRequest`], [`AnnounceResponse`], [`ScrapeResponse`] and
//!   [`TrackerError`], shared by every protocol;
//! - [`http`]: announce and scrape URLs (BEP 3, 48) and bencoded responses,
//!   compact (BEP 23), dictionary-model and IPv6 (BEP 7) peers;
//! - [`udp`]: the BEP 15 packet codec and [`udp::UdpTrackerMachine`], the
//!   connect/announce/scrape state machine with retransmissions, driven by
//!   a clock and a random source the caller supplies;
//! - [`ws`]: the WebTorrent WebSocket tracker's JSON frames (announces with
//!   WebRTC offers, relayed offers and answers, scrape, failures) and the
//!   reconnection [`ws::Backoff`];
//! - [`TierList`] (BEP 12 tiers) and [`AnnounceSchedule`] (when to
//!   announce, with which event).
//!
//! Async clients are behind features: `http` (`HttpTracker`, reqwest with
//! rustls), `udp` (`UdpTracker`, tokio) and `ws` (`WsTracker`,
//! tokio-tungstenite with rustls: one connection per tracker URL shared by
//! every torrent announced on it, reconnection with back-off, events per
//! torrent).
//!
//! ```
//! use webtorrent_tracker::{AnnounceRequest, Event, http};
//! use webtorrent_types::{InfoHashV1, PeerId};
//!
//! let mut req = AnnounceRequest::new(InfoHashV1([0x12; 20]), PeerId(*b"-RW0100-000000000000"), 6881);
//! req.event = Event::Started;
//! let url = http::announce_url("https://tracker.example/announce", &req);
//! assert!(url.contains("info_hash=%12%12"));
//!
//! // A tracker's answer: two compact IPv4 peers and a warning.
//! let body = b"d8:intervali1800e5:peers12:\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x1a\xe215:warning message4:slowe";
//! let resp = http::parse_announce_response(body)?;
//! assert_eq!(resp.peers.len(), 2);
//! assert_eq!(resp.warning.as_deref(), Some("slow"));
//!
//! // A refusal is an error carrying the tracker's reason.
//! let err = http::parse_announce_response(b"d14:failure reason9:not founde").unwrap_err();
//! assert_eq!(err.to_string(), "tracker failure: not found");
//! # Ok::<(), webtorrent_tracker::TrackerError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod announce;
mod error;
pub mod http;
#[cfg(feature = "http")]
mod http_client;
mod tiers;
pub mod udp;
#[cfg(feature = "udp")]
mod udp_client;
pub mod ws;
#[cfg(feature = "ws")]
mod ws_client;

pub use announce::{
    AnnounceRequest, AnnounceResponse, DEFAULT_INTERVAL, Event, Peer, ScrapeResponse, ScrapeStats,
};
pub use error::TrackerError;
#[cfg(feature = "http")]
pub use http_client::{HttpConfig, HttpTracker};
pub use tiers::{AnnounceSchedule, TierList};
#[cfg(feature = "udp")]
pub use udp_client::UdpTracker;
#[cfg(feature = "ws")]
pub use ws::{WsConfig, WsEvent};
#[cfg(feature = "ws")]
pub use ws_client::{WsStats, WsTorrent, WsTracker};

/// The README examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
