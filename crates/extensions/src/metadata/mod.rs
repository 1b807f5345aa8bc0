//! `ut_metadata` (BEP 9): the message codec, a fetcher for magnet links and a server.

mod codec;
mod fetcher;
mod server;

pub use codec::{METADATA_PIECE_SIZE, MetadataMessage, piece_count};
pub use fetcher::{FetchEvent, FetcherConfig, MetadataFetcher, PieceRequest};
pub use server::{MetadataServer, ServerConfig};
