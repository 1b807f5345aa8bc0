//! The BEP 10 extension protocol for webtorrent-rs, sans-IO, and the extensions that
//! keep swarms healthy.
//!
//! - [`ExtHandshake`]: the extension handshake dictionary (`m`, `v`, `p`, `yourip`,
//!   `ipv4`, `ipv6`, `reqq`, `metadata_size`, `upload_only`, unknown keys kept).
//! - [`Registry`]: the extensions of one connection, their local ids and the peer's, and
//!   routing of `Message::Extended` frames both ways; the [`Extension`] trait lets an
//!   application add its own (like JS WebTorrent's `wire.use()`).
//! - `ut_metadata` (BEP 9): [`MetadataMessage`], [`MetadataFetcher`] (downloads and
//!   verifies the info dictionary for magnet links, spread over peers, liars banned) and
//!   [`MetadataServer`] (answers requests, rate-limited).
//! - `ut_pex` (BEP 11): [`PexMessage`] and [`PexState`] (the diff we send once a minute,
//!   and flood protection for what we receive).
//! - `lt_donthave`: [`DontHave`].
//!
//! Nothing here does I/O or reads a clock: the driver feeds messages and the time in,
//! and drains outputs with `poll_*` methods. Every state machine is a plain struct
//! changed through `&mut self`, so an async driver can keep one per connection (the
//! [`Registry`], [`PexState`], [`MetadataServer`]) and one per torrent (the
//! [`MetadataFetcher`]) without locks.
//!
//! # Example: resolving a magnet link
//!
//! One peer connection, carried in memory: the seeder's [`Registry`] and
//! [`MetadataServer`] on one side, the downloader's [`Registry`] and
//! [`MetadataFetcher`] on the other.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use webtorrent_extensions::{
//!     ExtHandshake, FetchEvent, FetcherConfig, Incoming, MetadataFetcher, MetadataServer,
//!     Registry, ServerConfig,
//! };
//! use webtorrent_types::{InfoHashV1, InfoHashes};
//! use webtorrent_wire::Message;
//!
//! // What the seeder has, and what the magnet link tells the downloader.
//! let info: Vec<u8> = b"d6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:"
//!     .iter().copied().chain([7; 20]).chain(*b"e").collect();
//! let hashes = InfoHashes::from_v1(InfoHashV1(webtorrent_hash::sha1(&info)));
//!
//! let mut seeder = Registry::with_builtins();
//! let mut server = MetadataServer::new(Arc::from(info.clone()), ServerConfig::default());
//! let mut downloader = Registry::with_builtins();
//! let mut fetcher = MetadataFetcher::new(hashes, FetcherConfig::default());
//! let now = Instant::now();
//!
//! fn frame(message: Message<'_>) -> (u8, Vec<u8>) {
//!     match message {
//!         Message::Extended { id, payload } => (id, payload.into_owned()),
//!         _ => unreachable!("the registry builds extended messages"),
//!     }
//! }
//!
//! // Handshakes: the seeder announces the metadata size.
//! let mut ours = ExtHandshake::ours();
//! ours.metadata_size = Some(server.metadata_size());
//! let (id, payload) = frame(seeder.handshake(ours));
//! if let Incoming::Handshake(theirs) = downloader.handle(id, &payload)? {
//!     fetcher.add_peer("seeder", &theirs)?;
//! }
//! let (id, payload) = frame(downloader.handshake(ExtHandshake::ours()));
//! seeder.handle(id, &payload)?;
//!
//! // The fetcher asks, the server answers, the fetcher verifies.
//! while let Some(request) = fetcher.poll_request(now) {
//!     let (id, payload) = frame(downloader.ut_metadata(&request.message()).expect("enabled"));
//!     let Incoming::Metadata(asked) = seeder.handle(id, &payload)? else { unreachable!() };
//!     let answer = server.handle(now, &asked).expect("an answer to a request");
//!     let (id, payload) = frame(seeder.ut_metadata(&answer).expect("enabled"));
//!     let Incoming::Metadata(got) = downloader.handle(id, &payload)? else { unreachable!() };
//!     fetcher.handle_message(now, &request.peer, &got)?;
//! }
//! assert_eq!(fetcher.poll_event(), Some(FetchEvent::Complete(info)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod donthave;
mod error;
mod handshake;
mod metadata;
mod pex;
mod registry;

pub use donthave::DontHave;
pub use error::{
    DontHaveError, ExtensionError, FetchError, HandshakeError, IncomingError, MetadataMessageError,
    PeerRefused, PexMessageError, RegistryError,
};
pub use handshake::{
    ExtHandshake, MAX_CLIENT_NAME_LEN, MAX_EXTENSION_NAME_LEN, MAX_EXTENSION_NAMES,
    MAX_UNKNOWN_KEYS, OUR_CLIENT_VERSION,
};
pub use metadata::{
    FetchEvent, FetcherConfig, METADATA_PIECE_SIZE, MetadataFetcher, MetadataMessage,
    MetadataServer, PieceRequest, ServerConfig, piece_count,
};
pub use pex::{
    MAX_PEX_PEERS, PEX_INTERVAL, PexConfig, PexFlags, PexMessage, PexPeer, PexState, PexUpdate,
    is_local_addr, is_valid_peer_addr,
};
pub use registry::{
    Builtin, Extension, HANDSHAKE_ID, Incoming, LT_DONTHAVE, Registry, UT_METADATA, UT_PEX,
};

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
