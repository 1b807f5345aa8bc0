//! Bencode (BEP 3) for webtorrent-rs: a zero-copy decoder that keeps the
//! exact input bytes of every value, a canonical encoder, and serde support.
//!
//! - [`decode`] borrows from the input and returns a [`Value`] tree; every
//!   value remembers its raw span ([`Value::raw`]), so the info-hash of a
//!   torrent is the hash of the *original* `info` bytes even when they are not
//!   canonical (unsorted keys, leading zeros, …).
//! - Decoding is lenient by default and strict on request
//!   ([`decode_strict`], [`DecodeOptions`]); both enforce a nesting limit and
//!   check every length prefix against the remaining input before using it,
//!   so hostile input can neither overflow the stack nor make the decoder
//!   allocate more than a small multiple of the input size.
//! - [`OwnedValue`] builds values and encodes them canonically (sorted keys).
//! - With the default `serde` feature, `from_bytes` and `to_vec` map Rust
//!   types to and from bencode through the same decoder.
//!
//! ```
//! use webtorrent_bencode::{decode, decode_strict, DecodeErrorKind};
//!
//! // Keys out of order: accepted by default, and the raw span is exact.
//! let input = b"d4:infod6:lengthi5e4:name1:ae8:announce3:urle";
//! let torrent = decode(input)?;
//! let dict = torrent.as_dict().expect("a dictionary");
//! let info = dict.get(b"info").expect("an info key");
//! assert_eq!(info.raw(), b"d6:lengthi5e4:name1:ae");
//! assert_eq!(info.as_dict().and_then(|d| d.get(b"name")).and_then(|v| v.as_str()), Some("a"));
//!
//! // Canonical re-encoding sorts the keys...
//! assert_eq!(torrent.to_owned().encode(), b"d8:announce3:url4:infod6:lengthi5e4:name1:aee");
//! // ...and the strict decoder refuses the original.
//! let err = decode_strict(input).unwrap_err();
//! assert_eq!(err.kind(), &DecodeErrorKind::UnsortedKey);
//! # Ok::<(), webtorrent_bencode::DecodeError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod decode;
mod error;
mod owned;
mod value;

#[cfg(feature = "serde")]
mod serde_impl;

#[cfg(feature = "serde")]
pub use serde_impl::{Error, RawBencode, bytes, from_bytes, from_bytes_with, from_value, to_vec};

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use decode::{DEFAULT_MAX_DEPTH, DecodeOptions};
pub use error::{DecodeError, DecodeErrorKind};
pub use owned::OwnedValue;
pub use value::{ByteStr, Dict, Int, List, Value, ValueType};

/// Decodes exactly one value, leniently, with the default limits; trailing
/// bytes are an error. See [`DecodeOptions`] for what lenient means.
///
/// # Errors
/// [`DecodeError`] with the offset and kind of the first problem.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    DecodeOptions::new().decode(input)
}

/// Decodes exactly one value of canonical bencode, with the default limits.
///
/// # Errors
/// [`DecodeError`] with the offset and kind of the first problem, including
/// non-canonical encodings.
pub fn decode_strict(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    DecodeOptions::new().strict(true).decode(input)
}

/// Decodes one value at the start of `input`, leniently, and returns it with
/// the number of bytes it took. For protocols where raw data follows a
/// bencoded dictionary, such as BEP 9 `ut_metadata` pieces.
///
/// ```
/// let msg = b"d8:msg_typei1e5:piecei0eeRAW PIECE DATA";
/// let (header, used) = webtorrent_bencode::decode_prefix(msg)?;
/// assert_eq!(header.as_dict().and_then(|d| d.get(b"piece")).and_then(|v| v.as_int()), Some(0));
/// assert_eq!(&msg[used..], b"RAW PIECE DATA");
/// # Ok::<(), webtorrent_bencode::DecodeError>(())
/// ```
///
/// # Errors
/// [`DecodeError`] if the input does not start with a valid value.
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, usize), DecodeError> {
    DecodeOptions::new().decode_prefix(input)
}
