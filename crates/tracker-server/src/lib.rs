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
//! - [`ws`]: WebTorrent's WebSocket signaling as bittorrent-tracker 11
//!   serves it: [`ws::WsHandler`] relays offers and answers between
//!   connections and announces browsers into the same store.
//! - [`limits`]: requests per second and connections per client address.
//! - [`stats`]: statistics as JSON and Prometheus text.
//!
//! Time is always passed in; nothing above opens a socket or reads a clock.
//! The drivers are behind the `tokio` feature:
//! - `UdpServer`: the UDP tracker on a tokio socket;
//! - `HttpServer`: HTTP announce and scrape, WebSocket signaling and
//!   statistics on one TCP listener (hyper, axum, tungstenite);
//! - `SharedStore`, the store they share, and `StoreExpiry`, which expires
//!   it periodically.
//!
//! With the `config` feature, `config::Config` (TOML) and `config::start`
//! bring up every server of a configuration over one store; with `cli`,
//! `cli::TrackerArgs` and `cli::run` are the command line shared by the
//! `webtorrent-tracker` binary and `webtorrent tracker`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "config")]
pub mod config;
pub mod http;
#[cfg(feature = "tokio")]
mod http_fast;
#[cfg(feature = "tokio")]
mod http_server;
pub mod limits;
#[cfg(feature = "tokio")]
mod shared;
pub mod stats;
mod store;
pub mod udp;
#[cfg(feature = "tokio")]
mod udp_server;
pub mod ws;

#[cfg(feature = "tokio")]
pub use http_server::{HttpServer, TcpOptions};
#[cfg(feature = "tokio")]
pub use shared::{SharedLimiter, SharedStore, StoreExpiry};
pub use store::{
    AnnounceReply, PeerAddr, PeerAnnounce, PeerInfo, PeerKind, StoreConfig, StoreCounters,
    StoreError, StoreStats, SwarmStore,
};
#[cfg(feature = "tokio")]
pub use udp_server::UdpServer;

/// The README examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
