//! The `ut_metadata` message codec (BEP 9).

use std::collections::BTreeMap;

use webtorrent_bencode::{DecodeOptions, OwnedValue};

use crate::error::MetadataMessageError;

/// The size of a metadata piece: every piece but the last is exactly this long.
pub const METADATA_PIECE_SIZE: usize = 16 * 1024;

/// Header dictionaries are one level deep with a handful of keys.
const DECODE: DecodeOptions = DecodeOptions::new().max_depth(4).max_items(Some(64));

/// One `ut_metadata` message: a bencoded dictionary, followed by the piece's bytes for
/// `data`.
///
/// ```
/// use webtorrent_extensions::MetadataMessage;
///
/// let msg = MetadataMessage::Data { piece: 0, total_size: Some(4), data: b"d1:ae" };
/// let bytes = msg.to_vec();
/// assert_eq!(bytes, b"d8:msg_typei1e5:piecei0e10:total_sizei4eed1:ae");
/// assert_eq!(MetadataMessage::decode(&bytes)?, msg);
/// # Ok::<(), webtorrent_extensions::MetadataMessageError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataMessage<'a> {
    /// `msg_type` 0: asks for a piece.
    Request {
        /// The piece index.
        piece: u32,
    },
    /// `msg_type` 1: a piece of the info dictionary.
    Data {
        /// The piece index.
        piece: u32,
        /// `total_size`: the size of the whole info dictionary (BEP 9 requires it; a
        /// missing one is tolerated when decoding).
        total_size: Option<u64>,
        /// The piece's bytes, after the dictionary.
        data: &'a [u8],
    },
    /// `msg_type` 2: the sender will not send this piece.
    Reject {
        /// The piece index.
        piece: u32,
    },
}

impl<'a> MetadataMessage<'a> {
    /// The piece the message is about.
    #[must_use]
    pub const fn piece(&self) -> u32 {
        match self {
            Self::Request { piece } | Self::Data { piece, .. } | Self::Reject { piece } => *piece,
        }
    }

    /// Decodes a payload (after the extended message id), borrowing the piece bytes.
    ///
    /// Unknown keys in the dictionary are ignored.
    ///
    /// # Errors
    /// [`MetadataMessageError`] when the payload does not start with a dictionary, lacks
    /// a valid `msg_type` or `piece`, has an unknown type, or has bytes after the
    /// dictionary of a request or reject.
    pub fn decode(payload: &'a [u8]) -> Result<Self, MetadataMessageError> {
        let (header, used) = DECODE.decode_prefix(payload)?;
        let dict = header
            .as_dict()
            .ok_or(MetadataMessageError::NotADictionary)?;
        let msg_type = dict
            .get(b"msg_type")
            .and_then(webtorrent_bencode::Value::as_int)
            .ok_or(MetadataMessageError::BadField("msg_type"))?;
        let piece = dict
            .get(b"piece")
            .and_then(webtorrent_bencode::Value::as_int)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or(MetadataMessageError::BadField("piece"))?;
        // `used` never exceeds the input length.
        let rest = payload.get(used..).unwrap_or_default();
        let no_data = |msg| {
            if rest.is_empty() {
                Ok(msg)
            } else {
                Err(MetadataMessageError::TrailingBytes { extra: rest.len() })
            }
        };
        match msg_type {
            0 => no_data(Self::Request { piece }),
            1 => {
                let total_size = match dict.get(b"total_size") {
                    None => None,
                    Some(v) => Some(
                        v.as_int()
                            .and_then(|i| u64::try_from(i).ok())
                            .ok_or(MetadataMessageError::BadField("total_size"))?,
                    ),
                };
                Ok(Self::Data {
                    piece,
                    total_size,
                    data: rest,
                })
            }
            2 => no_data(Self::Reject { piece }),
            other => Err(MetadataMessageError::UnknownType(other)),
        }
    }

    /// Appends the payload (without the extended message id) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut dict = BTreeMap::new();
        let (msg_type, piece) = match self {
            Self::Request { piece } => (0, piece),
            Self::Data { piece, .. } => (1, piece),
            Self::Reject { piece } => (2, piece),
        };
        dict.insert(b"msg_type".to_vec(), OwnedValue::Int(msg_type));
        dict.insert(b"piece".to_vec(), OwnedValue::Int(i64::from(*piece)));
        if let Self::Data {
            total_size: Some(size),
            ..
        } = self
        {
            // No metadata comes near i64::MAX bytes; saturate rather than wrap.
            let size = i64::try_from(*size).unwrap_or(i64::MAX);
            dict.insert(b"total_size".to_vec(), OwnedValue::Int(size));
        }
        OwnedValue::Dict(dict).encode_into(out);
        if let Self::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
    }

    /// The payload as a new buffer.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// The number of metadata pieces of an info dictionary of `size` bytes.
#[must_use]
pub fn piece_count(size: u64) -> u64 {
    size.div_ceil(METADATA_PIECE_SIZE as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bep9_examples() {
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei0e5:piecei0ee").unwrap(),
            MetadataMessage::Request { piece: 0 }
        );
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei1e5:piecei0e10:total_sizei34256eexxxxxxxx")
                .unwrap(),
            MetadataMessage::Data {
                piece: 0,
                total_size: Some(34256),
                data: b"xxxxxxxx"
            }
        );
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei2e5:piecei0ee").unwrap(),
            MetadataMessage::Reject { piece: 0 }
        );
    }

    #[test]
    fn errors() {
        use MetadataMessageError as E;
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei3e5:piecei0ee"),
            Err(E::UnknownType(3))
        );
        assert_eq!(
            MetadataMessage::decode(b"d5:piecei0ee"),
            Err(E::BadField("msg_type"))
        );
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei0e5:piecei-1ee"),
            Err(E::BadField("piece"))
        );
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei1e5:piecei0e10:total_size1:xe"),
            Err(E::BadField("total_size"))
        );
        assert_eq!(
            MetadataMessage::decode(b"d8:msg_typei0e5:piecei0eeX"),
            Err(E::TrailingBytes { extra: 1 })
        );
        assert_eq!(MetadataMessage::decode(b"i0e"), Err(E::NotADictionary));
        assert!(matches!(MetadataMessage::decode(b""), Err(E::Bencode(_))));
    }

    #[test]
    fn piece_counts() {
        assert_eq!(piece_count(0), 0);
        assert_eq!(piece_count(1), 1);
        assert_eq!(piece_count(16384), 1);
        assert_eq!(piece_count(16385), 2);
    }

    proptest! {
        #[test]
        fn round_trip(
            kind in 0..3u8,
            piece in any::<u32>(),
            total_size in prop::option::of(0..=i64::MAX as u64),
            data in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let msg = match kind {
                0 => MetadataMessage::Request { piece },
                1 => MetadataMessage::Reject { piece },
                _ => MetadataMessage::Data { piece, total_size, data: &data },
            };
            let bytes = msg.to_vec();
            prop_assert_eq!(MetadataMessage::decode(&bytes).unwrap(), msg);
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
            let _ = MetadataMessage::decode(&bytes);
        }
    }
}
