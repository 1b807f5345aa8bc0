//! Typed errors.

/// Why a datagram is not a KRPC message we accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Longer than any KRPC message we accept.
    #[error("datagram of {len} bytes is longer than {max}")]
    TooLong {
        /// The datagram's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not bencode.
    #[error("not bencode: {0}")]
    Bencode(#[from] webtorrent_bencode::DecodeError),
    /// Not a dictionary at the top level.
    #[error("the message is not a dictionary")]
    NotADict,
    /// A required key is missing.
    #[error("missing key `{0}`")]
    Missing(&'static str),
    /// A key has the wrong type or size.
    #[error("key `{0}` has the wrong type or length")]
    Invalid(&'static str),
    /// `y` is not `q`, `r` or `e`.
    #[error("unknown message type")]
    UnknownType,
}

/// A KRPC message that failed to decode.
///
/// When the message was a query with a transaction id, [`DecodeError::transaction_id`]
/// holds it and the sender may be answered with error 203 (protocol error).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct DecodeError {
    /// What is wrong.
    pub kind: DecodeErrorKind,
    /// The transaction id of a malformed query, to answer with an error.
    pub transaction_id: Option<Vec<u8>>,
}

impl DecodeError {
    pub(crate) fn new(kind: DecodeErrorKind) -> Self {
        Self {
            kind,
            transaction_id: None,
        }
    }
}

impl From<DecodeErrorKind> for DecodeError {
    fn from(kind: DecodeErrorKind) -> Self {
        Self::new(kind)
    }
}

/// Why a BEP 44 item is refused. Each maps to a KRPC error code
/// ([`ItemError::code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ItemError {
    /// The bencoded value is longer than 1000 bytes (205).
    #[error("value of {0} bytes is longer than 1000")]
    ValueTooLong(usize),
    /// The salt is longer than 64 bytes (207).
    #[error("salt of {0} bytes is longer than 64")]
    SaltTooLong(usize),
    /// The value is not exactly one bencoded value (203).
    #[error("the value is not bencode")]
    NotBencode,
    /// The signature does not verify (206).
    #[error("invalid signature")]
    BadSignature,
    /// The public key is not a valid ed25519 point (206).
    #[error("invalid public key")]
    BadKey,
    /// `cas` does not match the stored sequence number (301).
    #[error("cas mismatch: stored seq {stored}, cas {cas}")]
    CasMismatch {
        /// The sequence number we hold.
        stored: i64,
        /// The `cas` of the put.
        cas: i64,
    },
    /// The sequence number is lower than the one stored (302).
    #[error("sequence number {seq} is less than the stored {stored}")]
    SeqTooLow {
        /// The sequence number we hold.
        stored: i64,
        /// The sequence number of the put.
        seq: i64,
    },
    /// The same sequence number with a different value (302).
    #[error("same sequence number {0} with a different value")]
    SeqReused(i64),
    /// The item's target is not the one asked for.
    #[error("the item does not hash to the target")]
    WrongTarget,
}

impl ItemError {
    /// The KRPC error code BEP 44 assigns.
    pub fn code(&self) -> i64 {
        match self {
            Self::ValueTooLong(_) => 205,
            Self::SaltTooLong(_) => 207,
            Self::NotBencode | Self::WrongTarget => 203,
            Self::BadSignature | Self::BadKey => 206,
            Self::CasMismatch { .. } => 301,
            Self::SeqTooLow { .. } | Self::SeqReused(_) => 302,
        }
    }
}

/// Why a saved routing table cannot be restored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The bytes do not start with the format's magic.
    #[error("not a saved routing table")]
    BadMagic,
    /// The bytes end early or carry trailing bytes.
    #[error("truncated or malformed saved table")]
    Malformed,
}

/// Why a BEP 46 value or link is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PointerError {
    /// The value is not a dictionary with a 20-byte `ih`.
    #[error("not a BEP 46 pointer: expected d2:ih20:<info-hash>e")]
    NotAPointer,
    /// The magnet has no `xs=urn:btpk:` public key.
    #[error("the magnet has no xs=urn:btpk: public key")]
    NoPublicKey,
    /// The magnet does not parse.
    #[error("invalid magnet: {0}")]
    Magnet(String),
}
