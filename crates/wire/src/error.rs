//! The errors of this crate.

pub use webtorrent_types::BitfieldError;
use webtorrent_types::{BlockRef, PieceIndex};

/// Bytes from a peer that are not a valid handshake or message frame. Each one means the
/// stream can no longer be followed: drop the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The stream does not start with the BitTorrent handshake.
    #[error("not a BitTorrent handshake")]
    NotBitTorrent,
    /// A length prefix announced a frame larger than the decoder accepts.
    #[error("a {length}-byte frame is larger than the {max}-byte limit")]
    FrameTooLarge {
        /// The announced frame length (after the 4-byte prefix).
        length: u32,
        /// The decoder's limit.
        max: u32,
    },
    /// A message whose payload length does not fit its type.
    #[error("message id {id} cannot have a {length}-byte frame")]
    BadLength {
        /// The message id.
        id: u8,
        /// The frame length (id byte included).
        length: u32,
    },
}

/// A peer broke the protocol: the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A message arrived before the handshake.
    #[error("message before the handshake")]
    BeforeHandshake,
    /// A second handshake on the same connection.
    #[error("second handshake")]
    DuplicateHandshake,
    /// A message of an extension the handshake did not negotiate.
    #[error("message id {id} needs an extension that was not negotiated")]
    NotNegotiated {
        /// The message id.
        id: u8,
    },
    /// A bitfield that does not fit the torrent.
    #[error("invalid bitfield: {0}")]
    Bitfield(#[from] BitfieldError),
    /// A `have` for a piece past the end of the torrent.
    #[error("have for piece {piece}, the torrent has {pieces}")]
    HaveOutOfRange {
        /// The index.
        piece: PieceIndex,
        /// The torrent's piece count.
        pieces: u32,
    },
    /// A request outside the torrent, empty, or longer than the limit.
    #[error("invalid request for {block:?}")]
    InvalidRequest {
        /// The request.
        block: BlockRef,
    },
    /// More queued requests than the limit, from a peer without the fast extension
    /// (with it, the surplus is rejected instead).
    #[error("more than {limit} queued requests")]
    TooManyRequests {
        /// The limit.
        limit: usize,
    },
    /// A `piece` message for a block we never requested.
    #[error("unrequested block {block:?}")]
    UnrequestedBlock {
        /// The block received.
        block: BlockRef,
    },
    /// The peer sent nothing, not even a keep-alive, for too long.
    #[error("peer silent for {silent:?}")]
    Idle {
        /// How long it has been silent.
        silent: std::time::Duration,
    },
}

/// A call the connection cannot honour in its current state; nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The handshake has not been exchanged yet.
    #[error("handshake not exchanged yet")]
    NoHandshake,
    /// A request to a peer that chokes us, for a piece it has not allowed fast.
    #[error("peer is choking us")]
    Choked,
    /// A request for a piece the peer has not announced.
    #[error("peer does not have piece {piece}")]
    PeerLacksPiece {
        /// The piece.
        piece: PieceIndex,
    },
    /// A block outside the torrent, empty, or longer than the request limit.
    #[error("invalid block {block:?}")]
    InvalidBlock {
        /// The block.
        block: BlockRef,
    },
    /// A piece index past the end of the torrent.
    #[error("piece {piece} is out of range (the torrent has {pieces})")]
    PieceOutOfRange {
        /// The index.
        piece: PieceIndex,
        /// The torrent's piece count.
        pieces: u32,
    },
    /// A block already requested and not yet answered.
    #[error("block {block:?} already requested")]
    AlreadyRequested {
        /// The block.
        block: BlockRef,
    },
    /// An answer to a request the peer did not make (or cancelled).
    #[error("peer has not requested {block:?}")]
    NotRequested {
        /// The block.
        block: BlockRef,
    },
    /// Piece data whose length is not the block's.
    #[error("{actual} bytes of data for a {expected}-byte block")]
    DataLength {
        /// The block length.
        expected: u32,
        /// The data length.
        actual: usize,
    },
    /// A message that needs an extension the handshake did not negotiate.
    #[error("extension not negotiated")]
    NotNegotiated,
    /// A bitfield (or have all / have none) after other messages were sent.
    #[error("the bitfield must be the first message")]
    NotFirst,
    /// A bitfield for another piece count than the torrent's.
    #[error("bitfield of {actual} pieces for a torrent of {expected}")]
    BitfieldLength {
        /// The torrent's piece count.
        expected: u32,
        /// The bitfield's.
        actual: u32,
    },
    /// A message whose state this connection tracks, to be sent with its own method.
    #[error("message id {id} must be sent with its own method")]
    Stateful {
        /// The message id.
        id: u8,
    },
}
