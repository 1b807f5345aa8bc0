//! Typed errors of the codec.

use std::fmt;

/// A header of the BT-SEARCH announce, as named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Header {
    /// `Host`: the multicast group the announce was sent to.
    Host,
    /// `Port`: the sender's BitTorrent listen port.
    Port,
    /// `Infohash`: one swarm the sender takes part in.
    Infohash,
    /// `cookie`: the sender's opaque token.
    Cookie,
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Host => "Host",
            Self::Port => "Port",
            Self::Infohash => "Infohash",
            Self::Cookie => "cookie",
        })
    }
}

/// Why a datagram is not a BT-SEARCH announce we accept.
///
/// LSD never answers, so every error means the same thing to a receiver: drop the
/// datagram. Lines are numbered from 1 (the request line); offsets count bytes from
/// the start of the datagram.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The datagram is longer than any announce may be.
    #[error("datagram of {len} bytes is longer than the {max} bytes an announce may take")]
    TooLong {
        /// The datagram's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The datagram is empty.
    #[error("empty datagram")]
    Empty,
    /// The first line is not `BT-SEARCH * HTTP/1.x` (any case, any blanks between).
    #[error("the request line is not `BT-SEARCH * HTTP/1.x`")]
    BadRequestLine,
    /// The request uses another method (such as SSDP's `M-SEARCH`).
    #[error("the request's method is not BT-SEARCH")]
    NotBtSearch,
    /// More header lines than an announce needs.
    #[error("more than {max} header lines")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// A header line without a colon, or with a name that is not an HTTP token.
    #[error("malformed header on line {line} (byte {offset})")]
    MalformedHeader {
        /// The line number.
        line: usize,
        /// The offset of the line's first byte.
        offset: usize,
    },
    /// A header that must appear once appears again.
    #[error("second {header} header on line {line}")]
    DuplicateHeader {
        /// The header.
        header: Header,
        /// The line of the repetition.
        line: usize,
    },
    /// A header's value is malformed: a port that is not 1 to 65535 in decimal, an
    /// info-hash that is not 40 hex digits, a `Host` or `cookie` that is empty, too
    /// long or not visible ASCII.
    #[error("invalid {header} value on line {line}")]
    InvalidValue {
        /// The header.
        header: Header,
        /// The line number.
        line: usize,
    },
    /// More `Infohash` headers than an announce may carry.
    #[error("more than {max} Infohash headers")]
    TooManyInfoHashes {
        /// The limit.
        max: usize,
    },
    /// A required header is absent: `Port`, or any `Infohash`.
    #[error("no {header} header")]
    MissingHeader {
        /// The header.
        header: Header,
    },
    /// Something other than line ends and blanks follows the end of the headers.
    #[error("unexpected bytes after the headers at byte {offset}")]
    TrailingBytes {
        /// The offset of the first unexpected byte.
        offset: usize,
    },
}

/// Why an [`Announce`](crate::Announce) cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// An announce names at least one swarm.
    #[error("an announce needs at least one info-hash")]
    NoInfoHash,
    /// More info-hashes than one datagram may carry.
    #[error("{count} info-hashes, more than the {max} one announce may carry")]
    TooManyInfoHashes {
        /// The number given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Port 0 cannot be connected to.
    #[error("port 0 cannot be announced")]
    PortZero,
    /// A `Host` or `cookie` that is empty, longer than
    /// [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN) or not visible ASCII.
    #[error("invalid {header} value")]
    InvalidValue {
        /// The header.
        header: Header,
    },
    /// The datagram would exceed the size BEP 14 allows.
    #[error("announce of {len} bytes is longer than {max}")]
    TooLong {
        /// The encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The output buffer has no room for the datagram.
    #[error("buffer has room for {available} bytes, the announce needs {needed}")]
    BufferTooSmall {
        /// The encoded length.
        needed: usize,
        /// The buffer's remaining capacity.
        available: usize,
    },
}
