//! The error type shared by every parser in this crate.

/// Why a byte slice or a string could not be turned into one of this crate's types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A byte slice had the wrong length.
    #[error("expected {expected} bytes, got {actual}")]
    ByteLength {
        /// The length the type needs.
        expected: usize,
        /// The length that was given.
        actual: usize,
    },
    /// A text form (hex, base32) had the wrong length, counted in bytes of UTF-8.
    #[error("expected {expected} characters, got {actual}")]
    TextLength {
        /// The length the encoding needs.
        expected: usize,
        /// The length that was given.
        actual: usize,
    },
    /// A string's length matches none of the text forms a `FromStr` accepts.
    #[error("no supported encoding is {actual} characters long")]
    UnknownEncoding {
        /// The length that was given, in bytes of UTF-8.
        actual: usize,
    },
    /// A character that is not a hexadecimal digit.
    #[error("invalid hex character {found:?} at byte {index}")]
    InvalidHex {
        /// Byte offset of the character in the input.
        index: usize,
        /// The offending character.
        found: char,
    },
    /// A character outside the RFC 4648 base32 alphabet (`A`–`Z`, `2`–`7`, any case).
    #[error("invalid base32 character {found:?} at byte {index}")]
    InvalidBase32 {
        /// Byte offset of the character in the input.
        index: usize,
        /// The offending character.
        found: char,
    },
    /// A multihash whose prefix is not `1220` (sha2-256, 32-byte digest).
    #[error(
        "unsupported multihash prefix {prefix:?}: only \"1220\" (sha2-256, 32 bytes) is allowed"
    )]
    UnsupportedMultihash {
        /// The first (up to) four characters that were found instead.
        prefix: String,
    },
}
