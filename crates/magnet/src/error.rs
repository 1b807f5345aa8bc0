//! The error type of magnet parsing.

use webtorrent_types::ParseError;

/// Why a magnet URI (or one of its parts) could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MagnetError {
    /// The text does not start with `magnet:?`.
    #[error("not a magnet URI: it must start with \"magnet:?\"")]
    NotMagnet,
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-escape at byte {offset}")]
    InvalidPercentEscape {
        /// Byte offset of the `%` in the input.
        offset: usize,
    },
    /// A key or value that is not UTF-8 once percent-decoded.
    #[error("parameter {key:?} is not valid UTF-8 once percent-decoded")]
    InvalidUtf8 {
        /// The parameter's key as written in the URI (not decoded).
        key: String,
    },
    /// An `xt=urn:btih:` or `xt=urn:btmh:` whose hash does not parse.
    #[error("invalid info-hash {value:?}: {source}")]
    InvalidInfoHash {
        /// The decoded `xt` value.
        value: String,
        /// What is wrong with the hash.
        source: ParseError,
    },
    /// Two different hashes of the same kind (two v1 or two v2).
    #[error("conflicting info-hashes {first} and {second}")]
    ConflictingInfoHash {
        /// The hash seen first, in hex.
        first: String,
        /// The different hash seen later, in hex.
        second: String,
    },
    /// Neither an info-hash (`xt`) nor a BEP 46 public key (`xs=urn:btpk:`).
    #[error("no info-hash (xt=urn:btih: or xt=urn:btmh:) and no public key (xs=urn:btpk:)")]
    MissingInfoHash,
    /// An `xs=urn:btpk:` whose key is not 64 hex digits.
    #[error("invalid public key {value:?}: {source}")]
    InvalidPublicKey {
        /// The decoded `xs` value.
        value: String,
        /// What is wrong with the key.
        source: ParseError,
    },
    /// An `s` (BEP 46 salt) that is not hex.
    #[error("invalid salt {value:?}: {source}")]
    InvalidSalt {
        /// The decoded `s` value.
        value: String,
        /// What is wrong with it.
        source: ParseError,
    },
    /// An `xl` that is not a decimal number fitting in 64 bits.
    #[error("invalid exact length {value:?}")]
    InvalidExactLength {
        /// The decoded `xl` value.
        value: String,
    },
    /// An `so` (BEP 53) that is not a comma-separated list of indices and
    /// `first-last` ranges with `first <= last`.
    #[error("invalid file selection {value:?}")]
    InvalidSelectOnly {
        /// The decoded `so` value.
        value: String,
    },
    /// An `x.pe` that is not `ip:port`, `[ipv6]:port` or `host:port` with a port
    /// from 1 to 65535.
    #[error("invalid peer address {value:?}")]
    InvalidPeer {
        /// The decoded `x.pe` value.
        value: String,
    },
}
