//! serde support: our own `Serializer` and `Deserializer`.

pub mod bytes;
mod de;
mod error;
mod owned;
pub(crate) mod raw;
mod ser;

use serde::{Deserialize, Serialize};

pub use error::Error;
pub use raw::RawBencode;

use crate::{DecodeOptions, Value};

/// Deserializes a `T` from exactly one bencode value, decoded leniently with
/// the default limits (see [`DecodeOptions`]).
///
/// `&'de str` and `&'de [u8]` fields borrow from `input`. Missing keys read as
/// `None` for `Option` fields; integers are range-checked for every width;
/// `bool` is `i0e` or `i1e`; an enum is a byte string (unit variant) or a
/// one-entry dictionary. Of duplicate keys only the first is seen.
///
/// # Errors
/// [`Error::Decode`] for invalid bencode, other [`Error`] variants when the
/// data does not fit `T`.
pub fn from_bytes<'de, T: Deserialize<'de>>(input: &'de [u8]) -> Result<T, Error> {
    from_bytes_with(input, &DecodeOptions::new())
}

/// [`from_bytes`] with explicit decode options (strictness, limits).
///
/// # Errors
/// As [`from_bytes`].
pub fn from_bytes_with<'de, T: Deserialize<'de>>(
    input: &'de [u8],
    options: &DecodeOptions,
) -> Result<T, Error> {
    let value = options.decode(input)?;
    T::deserialize(de::ValueDeserializer::new(&value, input))
}

/// Deserializes a `T` from an already decoded value; error offsets are
/// relative to the start of `value`.
///
/// # Errors
/// When the data does not fit `T`.
pub fn from_value<'de, T: Deserialize<'de>>(value: &Value<'de>) -> Result<T, Error> {
    T::deserialize(de::ValueDeserializer::new(value, value.raw()))
}

/// Serializes `value` to canonical bencode: dictionary keys sorted (whatever
/// the field order of a struct), `None` fields and map values left out,
/// `bool` as `i0e`/`i1e`, unit enum variants as their name, other variants as
/// a one-entry dictionary.
///
/// # Errors
/// [`Error::Unsupported`] for floats, `()` and `None` outside a dictionary
/// value; [`Error::IntegerOutOfRange`] past `i64`; [`Error::KeyNotBytes`] and
/// [`Error::DuplicateKey`] for maps that cannot be bencode dictionaries.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    value.serialize(ser::Serializer {
        out: &mut out,
        none_allowed: false,
    })?;
    Ok(out)
}
