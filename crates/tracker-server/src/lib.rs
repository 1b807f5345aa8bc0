//! A BitTorrent tracker server for webtorrent-rs, sans-IO first.
//!
//! - [`SwarmStore`]: the swarms (info-hash → peers) shared by every
//!   protocol, with seeder and leecher counts, peer expiry, `numwant` caps
//!   and caps on swarms and peers that bound its memory.
//! - [`udp`]: BEP 15 over that store: stateless connection ids
//!   ([`udp::ConnectionIds`], a keyed hash with a rotating secret) and
//!   [`udp::UdpHandler`], one datagram in, at most one out.
//!
//! Time is always passed in; nothing here opens a socket or reads a clock.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod store;
pub mod udp;

pub use store::{
    AnnounceReply, PeerAddr, PeerAnnounce, PeerInfo, PeerKind, StoreConfig, StoreError, SwarmStore,
};
