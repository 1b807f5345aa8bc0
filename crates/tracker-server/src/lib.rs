//! A BitTorrent tracker server for webtorrent-rs, sans-IO first.
//!
//! - [`SwarmStore`]: the swarms (info-hash → peers) shared by every
//!   protocol, with seeder and leecher counts, peer expiry, `numwant` caps
//!   and caps on swarms and peers that bound its memory.
//! - [`udp`]: BEP 15 over that store: stateless connection ids
//!   ([`udp::ConnectionIds`], a keyed hash with a rotating secret) and
//!   [`udp::UdpHandler`], one datagram in, at most one out.
//! - [`http`]: announce and scrape query strings (BEP 3, 48: info-hashes and
//!   peer ids as percent-encoded bytes) and [`http::HttpHandler`], whose
//!   bencoded answers carry compact (BEP 23) or dictionary peers, IPv6
//!   peers in `peers6` (BEP 7), or a `failure reason`.
//!
//! Time is always passed in; nothing above opens a socket or reads a clock.
//! The drivers are behind the `tokio` feature:
//! - `UdpServer`: the UDP tracker on a tokio socket;
//! - `HttpServer`: HTTP announce and scrape (axum);
//! - `SharedStore`, the store they share, and `StoreExpiry`, which expires
//!   it periodically.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod http;
#[cfg(feature = "tokio")]
mod http_server;
#[cfg(feature = "tokio")]
mod shared;
mod store;
pub mod udp;
#[cfg(feature = "tokio")]
mod udp_server;

#[cfg(feature = "tokio")]
pub use http_server::HttpServer;
#[cfg(feature = "tokio")]
pub use shared::{SharedStore, StoreExpiry};
pub use store::{
    AnnounceReply, PeerAddr, PeerAnnounce, PeerInfo, PeerKind, StoreConfig, StoreError, SwarmStore,
};
#[cfg(feature = "tokio")]
pub use udp_server::UdpServer;

/// The README examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
