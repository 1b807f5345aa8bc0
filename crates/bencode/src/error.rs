//! Decoding errors.

use core::fmt;

/// Why bencode input was rejected, and where.
///
/// `offset` is the byte position in the input at which the problem was
/// detected: the offending byte for syntax errors, the first byte of the
/// offending item for semantic ones (integer overflow, unsorted key, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bencode at byte {offset}: {kind}")]
#[non_exhaustive]
pub struct DecodeError {
    /// Byte offset into the input where the problem was detected.
    pub offset: usize,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) const fn new(offset: usize, kind: DecodeErrorKind) -> Self {
        Self { offset, kind }
    }

    /// Byte offset into the input where the problem was detected.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// What went wrong.
    #[must_use]
    pub const fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }
}

/// The kind of a [`DecodeError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended in the middle of a value (or was empty).
    UnexpectedEof,
    /// A byte that cannot start a value (`i`, `l`, `d` or a digit), or an `e`
    /// where no container is open.
    UnexpectedByte(u8),
    /// An integer is not of the form `i` `-`? digits `e`.
    InvalidInteger,
    /// An integer does not fit in an `i64`.
    IntegerOverflow,
    /// Strict mode: an integer has a leading zero (`i03e`) or is negative
    /// zero (`i-0e`).
    NonCanonicalInteger,
    /// A byte-string length prefix is not of the form digits `:`.
    InvalidLength,
    /// Strict mode: a byte-string length has a leading zero (`03:abc`).
    NonCanonicalLength,
    /// A byte-string length prefix is larger than the rest of the input.
    LengthExceedsInput {
        /// The declared length, saturated at `u64::MAX`.
        length: u64,
        /// How many bytes were left after the `:`.
        remaining: usize,
    },
    /// A dictionary key is not a byte string.
    DictKeyNotBytes,
    /// A dictionary ended (`e`) after a key, before its value.
    DictMissingValue,
    /// Strict mode: a dictionary key sorts before the previous key.
    UnsortedKey,
    /// Strict mode: a dictionary key equals the previous key.
    DuplicateKey,
    /// Lists and dictionaries are nested deeper than the configured limit.
    DepthLimitExceeded {
        /// The configured limit ([`crate::DecodeOptions::max_depth`]).
        max_depth: usize,
    },
    /// The input holds more values than the configured limit.
    ItemLimitExceeded {
        /// The configured limit ([`crate::DecodeOptions::max_items`]).
        max_items: usize,
    },
    /// A complete value was followed by more bytes (only [`crate::decode`]
    /// and friends; [`crate::decode_prefix`] allows them).
    TrailingBytes,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEof => f.write_str("unexpected end of input"),
            Self::UnexpectedByte(b) => write!(f, "unexpected byte '{}'", b.escape_ascii()),
            Self::InvalidInteger => f.write_str("malformed integer"),
            Self::IntegerOverflow => f.write_str("integer does not fit in 64 bits"),
            Self::NonCanonicalInteger => {
                f.write_str("non-canonical integer (leading zero or negative zero)")
            }
            Self::InvalidLength => f.write_str("malformed byte-string length"),
            Self::NonCanonicalLength => {
                f.write_str("non-canonical byte-string length (leading zero)")
            }
            Self::LengthExceedsInput {
                length: u64::MAX,
                remaining,
            } => write!(
                f,
                "byte-string length of at least 2^64 - 1 exceeds the {remaining} remaining input bytes"
            ),
            Self::LengthExceedsInput { length, remaining } => write!(
                f,
                "byte-string length {length} exceeds the {remaining} remaining input bytes"
            ),
            Self::DictKeyNotBytes => f.write_str("dictionary key is not a byte string"),
            Self::DictMissingValue => f.write_str("dictionary key has no value"),
            Self::UnsortedKey => f.write_str("dictionary keys are not sorted"),
            Self::DuplicateKey => f.write_str("duplicate dictionary key"),
            Self::DepthLimitExceeded { max_depth } => {
                write!(f, "nesting deeper than the limit of {max_depth}")
            }
            Self::ItemLimitExceeded { max_items } => {
                write!(f, "more than the limit of {max_items} values")
            }
            Self::TrailingBytes => f.write_str("trailing bytes after the value"),
        }
    }
}
