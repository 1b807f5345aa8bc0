//! Mainline DHT (BEP 5): the KRPC codec, a sans-IO node and an optional tokio driver.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod id;
pub mod krpc;

pub use error::{DecodeError, DecodeErrorKind, ItemError, PointerError, RestoreError};
pub use id::{NodeId, bep42_exempt, crc32c};
pub use krpc::{Body, ErrorBody, Message, MutableFields, NodeInfo, PutArgs, Query, Response, Want};
