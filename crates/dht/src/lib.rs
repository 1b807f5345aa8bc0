//! Mainline DHT (BEP 5): the KRPC codec, a sans-IO node and an optional tokio driver.
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
