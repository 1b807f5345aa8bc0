//! The error type of the serde layer.

use core::fmt;

use crate::{DecodeError, ValueType};

/// Why [`crate::from_bytes`] or [`crate::to_vec`] failed.
///
/// `offset`, where present, is the byte offset in the input of the value that
/// could not be deserialized (relative to the start of the value given to
/// [`crate::from_value`]); it is `None` for serialization errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not valid bencode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A value has the wrong bencode type for the Rust type.
    #[error("expected {expected}, found {found}{}", At(*.offset))]
    InvalidType {
        /// What the Rust type needs.
        expected: &'static str,
        /// What the input holds.
        found: ValueType,
        /// Where the value starts.
        offset: Option<usize>,
    },
    /// An integer does not fit the Rust integer type (or is not 0 or 1 for a
    /// `bool`, or does not fit bencode's `i64` when serializing).
    #[error("integer {value} out of range for {target}{}", At(*.offset))]
    IntegerOutOfRange {
        /// The integer.
        value: i128,
        /// The Rust type it was meant for.
        target: &'static str,
        /// Where the value starts.
        offset: Option<usize>,
    },
    /// A byte string read as text is not valid UTF-8.
    #[error("byte string is not valid UTF-8{}", At(*.offset))]
    InvalidUtf8 {
        /// Where the byte string starts.
        offset: Option<usize>,
    },
    /// A list has more items than the tuple it is read into.
    #[error("list has {extra} more items than expected{}", At(*.offset))]
    TrailingItems {
        /// How many items were left over.
        extra: usize,
        /// Where the list starts.
        offset: Option<usize>,
    },
    /// A dictionary lacks a field that the struct requires.
    #[error("missing field `{field}`{}", At(*.offset))]
    MissingField {
        /// The field name.
        field: &'static str,
        /// Where the dictionary starts.
        offset: Option<usize>,
    },
    /// A Rust value that bencode cannot represent (floats, unit, `None`
    /// outside a dictionary value).
    #[error("bencode cannot represent {what}")]
    Unsupported {
        /// What it was.
        what: &'static str,
    },
    /// A map key that is not a string, byte string or unit enum variant.
    #[error("dictionary keys must be byte strings")]
    KeyNotBytes,
    /// Two entries of one map serialize to the same key.
    #[error("duplicate dictionary key b\"{}\"", .key.escape_ascii())]
    DuplicateKey {
        /// The key.
        key: Vec<u8>,
    },
    /// Any other error, raised by a `Serialize` or `Deserialize`
    /// implementation.
    #[error("{message}{}", At(*.offset))]
    Custom {
        /// The message.
        message: String,
        /// Where the value being deserialized starts.
        offset: Option<usize>,
    },
}

/// Formats an optional offset as ` at byte N`.
struct At(Option<usize>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(offset) => write!(f, " at byte {offset}"),
            None => Ok(()),
        }
    }
}

impl Error {
    /// The byte offset of the value the error is about, if known.
    #[must_use]
    pub fn offset(&self) -> Option<usize> {
        match self {
            Self::Decode(e) => Some(e.offset),
            Self::InvalidType { offset, .. }
            | Self::IntegerOutOfRange { offset, .. }
            | Self::InvalidUtf8 { offset }
            | Self::TrailingItems { offset, .. }
            | Self::MissingField { offset, .. }
            | Self::Custom { offset, .. } => *offset,
            Self::Unsupported { .. } | Self::KeyNotBytes | Self::DuplicateKey { .. } => None,
        }
    }

    /// Sets the offset if the error has room for one and none is set yet, so
    /// that the innermost value an error is raised in is the one reported.
    pub(crate) fn or_offset(mut self, at: Option<usize>) -> Self {
        match &mut self {
            Self::InvalidType { offset, .. }
            | Self::IntegerOutOfRange { offset, .. }
            | Self::InvalidUtf8 { offset }
            | Self::TrailingItems { offset, .. }
            | Self::MissingField { offset, .. }
            | Self::Custom { offset, .. } => {
                if offset.is_none() {
                    *offset = at;
                }
            }
            Self::Decode(_)
            | Self::Unsupported { .. }
            | Self::KeyNotBytes
            | Self::DuplicateKey { .. } => {}
        }
        self
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Custom {
            message: msg.to_string(),
            offset: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self::MissingField {
            field,
            offset: None,
        }
    }
}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Custom {
            message: msg.to_string(),
            offset: None,
        }
    }
}
