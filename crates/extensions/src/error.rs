//! The errors of this crate.
//!
//! Decoding errors mean a peer sent a message that cannot be understood. The extension
//! protocol has no error replies, so none of them can be answered: the caller decides
//! whether to ignore the message or close the connection (closing is right for a bad
//! extension handshake; ignoring is usually enough for the rest).

use webtorrent_bencode::DecodeError;

/// An extension handshake that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The payload is not (exactly) one bencoded value.
    #[error("extension handshake: {0}")]
    Bencode(#[from] DecodeError),
    /// The payload is bencode but not a dictionary.
    #[error("extension handshake is not a dictionary")]
    NotADictionary,
    /// The `m` key is present but not a dictionary.
    #[error("extension handshake `m` is not a dictionary")]
    MNotADictionary,
}

/// A `ut_metadata` (BEP 9) message that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataMessageError {
    /// The payload does not start with a bencoded value.
    #[error("ut_metadata: {0}")]
    Bencode(#[from] DecodeError),
    /// The bencoded value is not a dictionary.
    #[error("ut_metadata message is not a dictionary")]
    NotADictionary,
    /// A required key is missing or is not a non-negative integer of the right range.
    #[error("ut_metadata message has no valid `{0}`")]
    BadField(&'static str),
    /// `msg_type` is none of request (0), data (1) and reject (2).
    #[error("ut_metadata message type {0} is unknown")]
    UnknownType(i64),
    /// Bytes follow the dictionary of a request or reject.
    #[error("ut_metadata {extra} bytes after a message that carries no data")]
    TrailingBytes {
        /// How many bytes follow.
        extra: usize,
    },
}

/// A `ut_pex` (BEP 11) message that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PexMessageError {
    /// The payload is not (exactly) one bencoded value.
    #[error("ut_pex: {0}")]
    Bencode(#[from] DecodeError),
    /// The payload is bencode but not a dictionary.
    #[error("ut_pex message is not a dictionary")]
    NotADictionary,
    /// A compact peer list whose length is not a multiple of its entry size.
    #[error("ut_pex `{key}` is {len} bytes, not a multiple of {entry}")]
    BadCompactLength {
        /// The key of the list.
        key: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The size of one entry: 6 for IPv4, 18 for IPv6.
        entry: usize,
    },
}

/// An `lt_donthave` message that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DontHaveError {
    /// The payload is not exactly a 4-byte piece index.
    #[error("lt_donthave payload is {0} bytes, not 4")]
    BadLength(usize),
}

/// An error a custom [`crate::Extension`] reports for a message it cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("extension message rejected: {reason}")]
#[non_exhaustive]
pub struct ExtensionError {
    /// Why the message was rejected.
    pub reason: &'static str,
}

impl ExtensionError {
    /// An error with a fixed description.
    #[must_use]
    pub const fn new(reason: &'static str) -> Self {
        Self { reason }
    }
}

/// A problem building a [`crate::Registry`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two extensions with one name.
    #[error("extension `{0}` is registered twice")]
    DuplicateName(String),
    /// More extensions than the 255 ids a byte can give.
    #[error("more than 255 extensions")]
    TooManyExtensions,
    /// An empty name, or one longer than [`crate::MAX_EXTENSION_NAME_LEN`].
    #[error("extension name `{0}` is empty or too long")]
    BadName(String),
}

/// An extended message from a peer that the [`crate::Registry`] cannot handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IncomingError {
    /// The extension handshake is invalid: close the connection.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// An extended message id we never assigned (or assigned to a disabled extension).
    #[error("extended message id {0} is not one of ours")]
    UnknownId(u8),
    /// A bad `ut_metadata` message.
    #[error(transparent)]
    Metadata(#[from] MetadataMessageError),
    /// A bad `ut_pex` message.
    #[error(transparent)]
    Pex(#[from] PexMessageError),
    /// A bad `lt_donthave` message.
    #[error(transparent)]
    DontHave(#[from] DontHaveError),
    /// A custom extension rejected the message.
    #[error("extension `{name}`: {source}")]
    Custom {
        /// The extension's name.
        name: String,
        /// What it reported.
        source: ExtensionError,
    },
}

/// Why a [`crate::MetadataFetcher`] will not use a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerRefused {
    /// The peer's handshake does not enable `ut_metadata`.
    #[error("peer does not support ut_metadata")]
    NoUtMetadata,
    /// The peer's handshake has no `metadata_size` (or zero).
    #[error("peer did not announce metadata_size")]
    NoMetadataSize,
    /// The announced size is above the configured limit.
    #[error("peer announced {size} bytes of metadata, more than the {max}-byte limit")]
    TooLarge {
        /// The announced size.
        size: u64,
        /// The limit ([`crate::FetcherConfig::max_metadata_size`]).
        max: u64,
    },
    /// The peer sent metadata that failed verification before.
    #[error("peer sent bad metadata before")]
    Banned,
}

/// A `ut_metadata` message a [`crate::MetadataFetcher`] cannot use. The peer misbehaved
/// (or is slow and answered after its request timed out); ignoring the message is safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The peer was never added or has been removed.
    #[error("message from a peer the fetcher does not know")]
    UnknownPeer,
    /// Data or a reject for a piece we have not asked this peer for.
    #[error("metadata piece {0} was not requested from this peer")]
    Unrequested(u32),
    /// Data whose `total_size` differs from the size this attempt is fetching.
    #[error("metadata total_size {got:?} differs from the expected {expected}")]
    WrongTotalSize {
        /// The size in the message (`None` if absent).
        got: Option<u64>,
        /// The size being fetched.
        expected: u64,
    },
    /// Data of the wrong length for its piece.
    #[error("metadata piece {piece} has {got} bytes, expected {expected}")]
    WrongPieceLength {
        /// The piece.
        piece: u32,
        /// Its length in the message.
        got: usize,
        /// The length it must have.
        expected: usize,
    },
    /// A request sent to the fetcher, which only downloads (answer it with a
    /// [`crate::MetadataServer`]).
    #[error("a metadata request is not for the fetcher")]
    NotAnAnswer,
}
