//! The peer wire protocol, sans-IO.
//!
//! - [`Handshake`] and its [`Reserved`] extension bits (BEP 5 DHT, BEP 6 fast,
//!   BEP 10 extension protocol, BEP 52 v2 upgrade).
//! - [`Message`]: every BEP 3 message, `port` (BEP 5), the fast extension (BEP 6),
//!   extended messages (BEP 10, payload left opaque) and the BEP 52 hash messages.
//!   [`Decoder`] splits a byte stream into messages borrowed from the caller's buffer
//!   and enforces a frame size limit before anything is buffered.
//! - [`Bitfield`]: the pieces a peer has.
//! - [`Connection`]: the per-peer state machine (choke and interest, request queues
//!   both ways with validation and timeouts, BEP 6 rejects and allowed-fast pieces,
//!   keep-alive and idle timers), driven by messages, method calls and the time.
//! - [`allowed_fast_set`]: the BEP 6 canonical allowed-fast pieces for a peer.
//!
//! No sockets, no clock: the caller reads and writes the bytes.
//!
//! ```
//! use std::borrow::Cow;
//! use webtorrent_types::{BlockRef, InfoHashV1, PeerId};
//! use webtorrent_wire::{Decoder, Handshake, Message, Reserved};
//!
//! let ours = Handshake::new(Reserved::OURS, InfoHashV1([1; 20]), PeerId(*b"-RW0100-000000000000"));
//! let mut stream = Vec::new();
//! ours.encode(&mut stream);
//! Message::Request(BlockRef::new(3, 0, 16384)).encode(&mut stream);
//! Message::Piece { piece: 3, offset: 0, data: Cow::Borrowed(b"data") }.encode(&mut stream);
//!
//! let (theirs, mut at) = Handshake::decode(&stream)?.expect("68 bytes are in");
//! assert!(theirs.reserved.fast() && theirs.reserved.extended());
//! let decoder = Decoder::new();
//! let mut messages = Vec::new();
//! while let Some((message, used)) = decoder.decode(&stream[at..])? {
//!     messages.push(message);
//!     at += used;
//! }
//! assert_eq!(messages[0], Message::Request(BlockRef::new(3, 0, 16384)));
//! assert!(matches!(&messages[1], Message::Piece { data, .. } if &data[..] == b"data"));
//! # Ok::<(), webtorrent_wire::DecodeError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod connection;
mod error;
mod fast;
mod handshake;
mod message;

pub use connection::{Config, Connection, Event, Geometry};
pub use error::{BitfieldError, DecodeError, ProtocolError, UsageError};
pub use fast::allowed_fast_set;
pub use handshake::{HANDSHAKE_LEN, Handshake, PROTOCOL, Reserved};
pub use message::{DEFAULT_MAX_FRAME, Decoder, HashRequest, Message, id};
pub use webtorrent_types::Bitfield;

/// The README examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
