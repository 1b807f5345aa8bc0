//! Already-encoded bencode carried through serde verbatim.

use core::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

use crate::{DecodeError, OwnedValue, Value};

/// The newtype-struct name by which [`RawBencode`] asks this crate's
/// serializer and deserializer for raw bytes.
pub(crate) const RAW_TOKEN: &str = "$webtorrent_bencode::private::RawBencode";

/// One bencode value kept as its exact encoded bytes.
///
/// As a field of a deserialized struct it captures the original bytes of the
/// value (say, a torrent's `info` dictionary, whose SHA-1 is the info-hash),
/// borrowed from the input; serializing writes them back verbatim.
///
/// ```
/// use serde::Deserialize;
/// use webtorrent_bencode::RawBencode;
///
/// #[derive(Deserialize)]
/// struct Torrent<'a> {
///     #[serde(borrow)]
///     info: RawBencode<'a>,
/// }
///
/// // Unsorted keys survive untouched.
/// let t: Torrent<'_> = webtorrent_bencode::from_bytes(b"d4:infod4:name1:a6:lengthi1eee")?;
/// assert_eq!(t.info.as_bytes(), b"d4:name1:a6:lengthi1ee");
/// # Ok::<(), webtorrent_bencode::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawBencode<'a>(&'a [u8]);

impl<'a> RawBencode<'a> {
    /// Wraps `encoded` after checking (leniently, with the default limits)
    /// that it is exactly one bencode value.
    ///
    /// # Errors
    /// [`DecodeError`] if it is not.
    pub fn new(encoded: &'a [u8]) -> Result<Self, DecodeError> {
        crate::decode(encoded)?;
        Ok(Self(encoded))
    }

    /// The encoded bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// Decodes the bytes (leniently, with the default limits).
    ///
    /// # Errors
    /// [`DecodeError`] only if the value nests deeper than the default limit,
    /// which can happen when it was captured with a larger
    /// [`crate::DecodeOptions::max_depth`].
    pub fn decode(&self) -> Result<Value<'a>, DecodeError> {
        crate::decode(self.0)
    }
}

impl fmt::Debug for RawBencode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawBencode")
            .field(&crate::value::BytesDebug(self.0))
            .finish()
    }
}

impl From<RawBencode<'_>> for OwnedValue {
    fn from(raw: RawBencode<'_>) -> Self {
        Self::Raw(raw.0.to_vec())
    }
}

/// Serializes a byte slice with `serialize_bytes` (a plain `[u8]` would be a
/// sequence of integers).
pub(crate) struct BytesRef<'b>(pub(crate) &'b [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl Serialize for RawBencode<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(RAW_TOKEN, &BytesRef(self.0))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawBencode<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;

        impl<'de> Visitor<'de> for RawVisitor {
            type Value = RawBencode<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("borrowed bencode bytes")
            }

            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                RawBencode::new(v).map_err(E::custom)
            }

            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Self::Value, D::Error> {
                deserializer.deserialize_bytes(self)
            }
        }

        deserializer.deserialize_newtype_struct(RAW_TOKEN, RawVisitor)
    }
}
