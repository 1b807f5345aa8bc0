//! The mainline DHT (BEP 5) and its extensions: a KRPC codec, a sans-IO node, and a
//! tokio driver behind the `tokio` feature.
//!
//! - [`Message`]: KRPC queries, replies and errors, decoded from and encoded to
//!   bencode; BEP 32 `nodes6` and `want`, BEP 42 `ip`, BEP 43 `ro`, BEP 44 `get`/`put`.
//!   Hostile input is a typed [`DecodeError`], never a panic.
//! - [`Node`]: the state machine. IPv4 and IPv6 routing tables of 160-bit XOR buckets
//!   (K = 8, split when the bucket holding our id fills, good/questionable/bad contacts,
//!   replacement caches, refresh of stale buckets, one contact per IP, BEP 42 ids ranked
//!   or enforced); iterative lookups with α = 3 queries in flight until the K closest
//!   contacts have answered; write tokens from a secret rotated every 5 minutes; a peer
//!   store with expiry and caps; BEP 44 items with signature, `seq` and `cas` checks;
//!   read-only mode (BEP 43); bootstrap from configured nodes; save and restore.
//!   Time is passed in; there is no socket and no clock.
//! - [`MutableItem`], [`immutable_target`], [`mutable_target`]: BEP 44 items.
//! - [`encode_pointer`], [`decode_pointer`], [`MutableTorrent`]: BEP 46.
//! - `Dht` (feature `tokio`): a [`Node`] on UDP sockets, with async `get_peers`,
//!   `announce`, `get_immutable`, `put_immutable`, `get_mutable`, `put_mutable`, `save`.
//!
//! # Example
//!
//! Three nodes on a network wired by hand: Bob and Carol bootstrap from Alice, Carol
//! announces a torrent, Bob finds her.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use webtorrent_dht::{Config, Event, Node, NodeId, Output};
//!
//! let now = Instant::now();
//! let addrs: Vec<SocketAddr> =
//!     vec!["10.0.0.1:6881".parse()?, "10.0.0.2:6881".parse()?, "10.0.0.3:6881".parse()?];
//! let mut nodes: Vec<Node> = (0..3u8)
//!     .map(|i| {
//!         let mut config = Config::new([i; 32]);
//!         if i > 0 {
//!             config.bootstrap = vec![addrs[0]];
//!         }
//!         Node::new(config, now)
//!     })
//!     .collect();
//!
//! // Delivers every datagram until all nodes wait for a timeout; returns the events.
//! let run = |nodes: &mut Vec<Node>| {
//!     let mut events = Vec::new();
//!     let mut buf = Vec::new();
//!     loop {
//!         let mut idle = true;
//!         for i in 0..nodes.len() {
//!             loop {
//!                 match nodes[i].poll_output(now, &mut buf) {
//!                     Output::Transmit(t) => {
//!                         idle = false;
//!                         let to = addrs.iter().position(|a| *a == t.destination).unwrap();
//!                         nodes[to].handle_datagram(now, addrs[i], &buf);
//!                     }
//!                     Output::Event(e) => events.push((i, e)),
//!                     _ => break,
//!                 }
//!             }
//!         }
//!         if idle {
//!             return events;
//!         }
//!     }
//! };
//!
//! nodes[1].bootstrap(now)?;
//! nodes[2].bootstrap(now)?;
//! run(&mut nodes);
//!
//! let torrent = NodeId([0xab; 20]);
//! nodes[2].announce(now, torrent, Some(51413))?;
//! run(&mut nodes);
//! nodes[1].get_peers(now, torrent)?;
//! let found = run(&mut nodes).into_iter().find_map(|(i, e)| match e {
//!     Event::Done(done) if i == 1 => Some(done.peers),
//!     _ => None,
//! });
//! assert_eq!(found, Some(vec!["10.0.0.3:51413".parse()?]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod id;
pub mod krpc;

pub use error::{DecodeError, DecodeErrorKind, ItemError, PointerError, RestoreError};
pub use id::{NodeId, bep42_exempt, crc32c};
pub use krpc::{Body, ErrorBody, Message, MutableFields, NodeInfo, PutArgs, Query, Response, Want};
mod item;
pub use ed25519_dalek::SigningKey;
pub use item::{
    Item, MAX_SALT_LEN, MAX_VALUE_LEN, MutableItem, check_value, immutable_target, mutable_target,
    signature_buffer,
};
mod node;
mod store;
mod table;
pub use node::{
    Busy, Config, Event, LookupDone, LookupId, MAINTENANCE_INTERVAL, MAX_VALUES_PER_REPLY, Node,
    Output, PutError, REFRESH_INTERVAL, Stats, Transmit,
};
pub use store::{StoreLimits, TOKEN_ROTATION};
pub use table::{BAD_AFTER_FAILURES, K, NodeState, QUESTIONABLE_AFTER};
mod bep46;
pub use bep46::{MutableTorrent, decode_pointer, encode_pointer};
#[cfg(feature = "tokio")]
mod driver;
#[cfg(feature = "tokio")]
pub use driver::{Dht, DhtConfig, DhtError, DhtTask};
