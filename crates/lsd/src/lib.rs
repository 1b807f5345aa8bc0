//! BEP 14 Local Service Discovery: finding peers of the same swarms on the local
//! network by HTTP-over-UDP multicast announces.
//!
//! - [`Announce`]: the `BT-SEARCH` datagram, decoded (lenient about case, spacing and
//!   line ends; strict about sizes, counts and values) and encoded (byte for byte as
//!   libtorrent writes it).
//! - [`Lsd`]: a sans-IO state machine deciding which torrents to announce when (each
//!   every 5 minutes, no more than one datagram a minute, several info-hashes per
//!   datagram when many are due), dropping our own looped-back announces by their
//!   cookie, rate limiting each source IP, and reporting [`Event::Peer`]s of our
//!   torrents. Time is passed in; there is no socket and no clock.
//! - `Driver` (feature `tokio`): a UDP socket, multicast or unicast, running an [`Lsd`].
//!
//! # Example
//!
//! Two state machines, as two hosts on one network, wired by hand:
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use webtorrent_lsd::{Config, Event, Lsd, Output};
//! use webtorrent_types::InfoHashV1;
//!
//! let torrent = InfoHashV1([0xab; 20]);
//! let now = Instant::now();
//!
//! // Alice listens for BitTorrent connections on port 6881 and seeds the torrent.
//! let mut alice = Lsd::new(Config::new(6881, 0x1234));
//! alice.add_torrent(torrent);
//! let mut bob = Lsd::new(Config::new(51413, 0x5678));
//! bob.add_torrent(torrent);
//!
//! // Drain Alice until she has nothing left to do: she announces at once.
//! let mut buf = Vec::new();
//! let alice_addr: SocketAddr = "192.168.1.10:6771".parse()?;
//! loop {
//!     match alice.poll_output(now, &mut buf) {
//!         Output::Transmit(t) => {
//!             assert_eq!(t.destination, "239.192.152.143:6771".parse()?);
//!             // A driver sends `buf` to `t.destination`; Bob's socket receives it.
//!             bob.handle_datagram(now, alice_addr, &buf);
//!         }
//!         Output::Timeout(_) | Output::Idle => break,
//!         _ => {}
//!     }
//! }
//!
//! // Bob learns where to connect to Alice: her address, her listen port.
//! let mut buf = Vec::new();
//! match bob.poll_output(now, &mut buf) {
//!     Output::Event(Event::Peer { info_hash, addr }) => {
//!         assert_eq!(info_hash, torrent);
//!         assert_eq!(addr, "192.168.1.10:6881".parse()?);
//!     }
//!     other => panic!("expected a peer, got {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

mod announcer;
mod error;
mod message;

#[cfg(feature = "tokio")]
mod driver;

pub use announcer::{
    ANNOUNCE_INTERVAL, Config, Event, Lsd, MAX_QUEUED_EVENTS, MIN_SEND_INTERVAL, Output, Received,
    Stats, Transmit,
};
#[cfg(feature = "tokio")]
pub use driver::{Driver, DriverConfig, Multicast};
pub use error::{DecodeError, EncodeError, Header};
pub use message::{
    Announce, MAX_DATAGRAM_LEN, MAX_ENCODED_LEN, MAX_HEADERS, MAX_INFO_HASHES, MAX_VALUE_LEN,
};

/// The LSD port, for both groups.
pub const LSD_PORT: u16 = 6771;

/// The IPv4 group, organisation-local: `239.192.152.143:6771`.
pub const IPV4_GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 192, 152, 143), LSD_PORT);

/// The IPv6 group, site-local: `[ff15::efc0:988f]:6771`.
pub const IPV6_GROUP: SocketAddrV6 = SocketAddrV6::new(
    Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0xefc0, 0x988f),
    LSD_PORT,
    0,
    0,
);
