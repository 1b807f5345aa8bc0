//! `#[serde(with = "webtorrent_bencode::bytes")]`: byte strings for byte
//! containers.
//!
//! serde serializes `Vec<u8>` and `[u8; N]` as sequences of integers, which
//! bencode would write as a list. With this module they are byte strings:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Handshake {
//!     #[serde(with = "webtorrent_bencode::bytes")]
//!     info_hash: [u8; 4],
//!     #[serde(with = "webtorrent_bencode::bytes")]
//!     pieces: Vec<u8>,
//!     #[serde(default, with = "webtorrent_bencode::bytes::option")]
//!     extra: Option<Vec<u8>>,
//! }
//!
//! let h = Handshake { info_hash: *b"abcd", pieces: vec![0, 255], extra: None };
//! let encoded = webtorrent_bencode::to_vec(&h)?;
//! assert_eq!(encoded, b"d9:info_hash4:abcd6:pieces2:\x00\xffe");
//! assert_eq!(webtorrent_bencode::from_bytes::<Handshake>(&encoded)?, h);
//! # Ok::<(), webtorrent_bencode::Error>(())
//! ```
//!
//! A borrowed `&'de [u8]` field is read as a byte string borrowed from the
//! input without help, but serde writes `[u8]` as a sequence too; add
//! `#[serde(serialize_with = "webtorrent_bencode::bytes::serialize")]`.

use core::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;

/// Serializes any byte container as a byte string.
///
/// # Errors
/// Whatever the serializer returns.
pub fn serialize<T, S>(value: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: ?Sized + AsRef<[u8]>,
    S: Serializer,
{
    serializer.serialize_bytes(value.as_ref())
}

/// Deserializes a byte string into `Vec<u8>`, `[u8; N]` (length checked),
/// `Box<[u8]>` or any other `TryFrom<Vec<u8>>`.
///
/// # Errors
/// The value is not a byte string, or the conversion rejects its length.
pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: TryFrom<Vec<u8>>,
    D: Deserializer<'de>,
{
    let bytes = deserializer.deserialize_byte_buf(ByteBufVisitor)?;
    let len = bytes.len();
    T::try_from(bytes)
        .map_err(|_| de::Error::invalid_length(len, &"a byte string of the right length"))
}

/// Accepts a byte string in any of the forms a deserializer may offer.
struct ByteBufVisitor;

impl<'de> Visitor<'de> for ByteBufVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        Ok(v.as_bytes().to_vec())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Vec<u8>, E> {
        Ok(v.into_bytes())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        Ok(bytes)
    }
}

/// `#[serde(default, with = "webtorrent_bencode::bytes::option")]` for
/// `Option` of a byte container; `None` fields are left out of dictionaries.
/// The `default` attribute makes a missing key read as `None`.
pub mod option {
    use core::fmt;
    use core::marker::PhantomData;

    use serde::de::{Deserializer, Visitor};
    use serde::ser::Serializer;

    use crate::serde_impl::raw::BytesRef;

    /// Serializes `Some` as a byte string and `None` as nothing.
    ///
    /// # Errors
    /// Whatever the serializer returns.
    pub fn serialize<T, S>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: AsRef<[u8]>,
        S: Serializer,
    {
        match value {
            Some(v) => serializer.serialize_some(&BytesRef(v.as_ref())),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes a byte string as `Some`.
    ///
    /// # Errors
    /// As [`super::deserialize`].
    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        T: TryFrom<Vec<u8>>,
        D: Deserializer<'de>,
    {
        struct OptionVisitor<T>(PhantomData<T>);

        impl<'de, T: TryFrom<Vec<u8>>> Visitor<'de> for OptionVisitor<T> {
            type Value = Option<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an optional byte string")
            }

            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                super::deserialize(d).map(Some)
            }
        }

        deserializer.deserialize_option(OptionVisitor(PhantomData))
    }
}
