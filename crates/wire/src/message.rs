//! Length-prefixed peer messages (BEP 3, 5, 6, 10, 52) and their incremental decoder.

use std::borrow::Cow;

use bytes::BufMut;
use webtorrent_types::{BLOCK_SIZE, BlockRef, PieceIndex};

use crate::error::DecodeError;
use webtorrent_types::Bitfield;

/// Message ids, the byte after the length prefix.
pub mod id {
    /// BEP 3 `choke`.
    pub const CHOKE: u8 = 0;
    /// BEP 3 `unchoke`.
    pub const UNCHOKE: u8 = 1;
    /// BEP 3 `interested`.
    pub const INTERESTED: u8 = 2;
    /// BEP 3 `not interested`.
    pub const NOT_INTERESTED: u8 = 3;
    /// BEP 3 `have`.
    pub const HAVE: u8 = 4;
    /// BEP 3 `bitfield`.
    pub const BITFIELD: u8 = 5;
    /// BEP 3 `request`.
    pub const REQUEST: u8 = 6;
    /// BEP 3 `piece`.
    pub const PIECE: u8 = 7;
    /// BEP 3 `cancel`.
    pub const CANCEL: u8 = 8;
    /// BEP 5 `port`.
    pub const PORT: u8 = 9;
    /// BEP 6 `suggest piece`.
    pub const SUGGEST: u8 = 0x0d;
    /// BEP 6 `have all`.
    pub const HAVE_ALL: u8 = 0x0e;
    /// BEP 6 `have none`.
    pub const HAVE_NONE: u8 = 0x0f;
    /// BEP 6 `reject request`.
    pub const REJECT: u8 = 0x10;
    /// BEP 6 `allowed fast`.
    pub const ALLOWED_FAST: u8 = 0x11;
    /// BEP 10 extended message.
    pub const EXTENDED: u8 = 20;
    /// BEP 52 `hash request`.
    pub const HASH_REQUEST: u8 = 21;
    /// BEP 52 `hashes`.
    pub const HASHES: u8 = 22;
    /// BEP 52 `hash reject`.
    pub const HASH_REJECT: u8 = 23;
}

/// A BEP 52 request for a range of one layer of a file's Merkle tree, with the proof
/// (uncle hashes) up to the piece layer or root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRequest {
    /// The file's Merkle root.
    pub pieces_root: [u8; 32],
    /// The layer the hashes come from, 0 being the 16 KiB leaves.
    pub base_layer: u32,
    /// The offset of the first hash within that layer.
    pub index: u32,
    /// How many hashes of that layer.
    pub length: u32,
    /// How many layers of uncle hashes to include.
    pub proof_layers: u32,
}

impl HashRequest {
    const LEN: usize = 32 + 16;

    fn parse(b: &[u8]) -> Self {
        let mut pieces_root = [0u8; 32];
        pieces_root.copy_from_slice(&b[..32]);
        Self {
            pieces_root,
            base_layer: be32(&b[32..]),
            index: be32(&b[36..]),
            length: be32(&b[40..]),
            proof_layers: be32(&b[44..]),
        }
    }

    fn put(&self, out: &mut impl BufMut) {
        out.put_slice(&self.pieces_root);
        out.put_u32(self.base_layer);
        out.put_u32(self.index);
        out.put_u32(self.length);
        out.put_u32(self.proof_layers);
    }
}

/// One peer message. Payloads are borrowed from the decoder's input; build owned ones
/// with `Cow::Owned` to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message<'a> {
    /// A zero-length frame.
    KeepAlive,
    /// The sender will not answer requests.
    Choke,
    /// The sender will answer requests.
    Unchoke,
    /// The sender wants pieces the receiver has.
    Interested,
    /// The sender wants nothing from the receiver.
    NotInterested,
    /// The sender has completed a piece.
    Have(PieceIndex),
    /// The pieces the sender has, one bit each ([`Bitfield`] validates them).
    Bitfield(Cow<'a, [u8]>),
    /// A request for a block.
    Request(BlockRef),
    /// A block of data.
    Piece {
        /// The piece.
        piece: PieceIndex,
        /// The offset within the piece.
        offset: u32,
        /// The block's bytes.
        data: Cow<'a, [u8]>,
    },
    /// Withdraws a request.
    Cancel(BlockRef),
    /// BEP 5: the sender's DHT port.
    Port(u16),
    /// BEP 6: the sender suggests downloading this piece.
    Suggest(PieceIndex),
    /// BEP 6: the sender has every piece.
    HaveAll,
    /// BEP 6: the sender has no piece.
    HaveNone,
    /// BEP 6: the sender will not answer this request.
    Reject(BlockRef),
    /// BEP 6: the receiver may request this piece while choked.
    AllowedFast(PieceIndex),
    /// BEP 10: an extension message, payload left to the extensions crate.
    Extended {
        /// The extended message id (0 is the extension handshake).
        id: u8,
        /// The payload after the id byte.
        payload: Cow<'a, [u8]>,
    },
    /// BEP 52: asks for Merkle tree hashes.
    HashRequest(HashRequest),
    /// BEP 52: the hashes asked for, then the proof hashes.
    Hashes {
        /// The request being answered.
        request: HashRequest,
        /// The hashes.
        hashes: Cow<'a, [[u8; 32]]>,
    },
    /// BEP 52: the sender will not answer this hash request.
    HashReject(HashRequest),
    /// A message id this crate does not know; BEP 3 says to ignore it.
    Unknown {
        /// The id.
        id: u8,
        /// The payload after the id byte.
        payload: Cow<'a, [u8]>,
    },
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn block(b: &[u8]) -> BlockRef {
    BlockRef::new(be32(b), be32(&b[4..]), be32(&b[8..]))
}

impl Message<'_> {
    /// The message id, or `None` for a keep-alive.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Self::KeepAlive => return None,
            Self::Choke => id::CHOKE,
            Self::Unchoke => id::UNCHOKE,
            Self::Interested => id::INTERESTED,
            Self::NotInterested => id::NOT_INTERESTED,
            Self::Have(_) => id::HAVE,
            Self::Bitfield(_) => id::BITFIELD,
            Self::Request(_) => id::REQUEST,
            Self::Piece { .. } => id::PIECE,
            Self::Cancel(_) => id::CANCEL,
            Self::Port(_) => id::PORT,
            Self::Suggest(_) => id::SUGGEST,
            Self::HaveAll => id::HAVE_ALL,
            Self::HaveNone => id::HAVE_NONE,
            Self::Reject(_) => id::REJECT,
            Self::AllowedFast(_) => id::ALLOWED_FAST,
            Self::Extended { .. } => id::EXTENDED,
            Self::HashRequest(_) => id::HASH_REQUEST,
            Self::Hashes { .. } => id::HASHES,
            Self::HashReject(_) => id::HASH_REJECT,
            Self::Unknown { id, .. } => *id,
        })
    }

    /// The frame length after the 4-byte prefix (id byte included).
    pub fn frame_len(&self) -> usize {
        match self {
            Self::KeepAlive => 0,
            Self::Choke | Self::Unchoke | Self::Interested | Self::NotInterested => 1,
            Self::HaveAll | Self::HaveNone => 1,
            Self::Have(_) | Self::Suggest(_) | Self::AllowedFast(_) => 5,
            Self::Port(_) => 3,
            Self::Request(_) | Self::Cancel(_) | Self::Reject(_) => 13,
            Self::Bitfield(b) => 1 + b.len(),
            Self::Piece { data, .. } => 9 + data.len(),
            Self::Extended { payload, .. } => 2 + payload.len(),
            Self::HashRequest(_) | Self::HashReject(_) => 1 + HashRequest::LEN,
            Self::Hashes { hashes, .. } => 1 + HashRequest::LEN + 32 * hashes.len(),
            Self::Unknown { payload, .. } => 1 + payload.len(),
        }
    }

    /// Appends the length-prefixed message to `out`.
    ///
    /// # Panics
    ///
    /// If the frame is 4 GiB or longer, which no length prefix can express.
    pub fn encode(&self, out: &mut impl BufMut) {
        let len = u32::try_from(self.frame_len()).expect("a peer message shorter than 4 GiB");
        out.put_u32(len);
        let Some(id) = self.id() else {
            return;
        };
        out.put_u8(id);
        match self {
            Self::KeepAlive
            | Self::Choke
            | Self::Unchoke
            | Self::Interested
            | Self::NotInterested
            | Self::HaveAll
            | Self::HaveNone => {}
            Self::Have(p) | Self::Suggest(p) | Self::AllowedFast(p) => out.put_u32(*p),
            Self::Port(port) => out.put_u16(*port),
            Self::Request(b) | Self::Cancel(b) | Self::Reject(b) => {
                out.put_u32(b.piece);
                out.put_u32(b.offset);
                out.put_u32(b.length);
            }
            Self::Bitfield(bytes) => out.put_slice(bytes),
            Self::Piece {
                piece,
                offset,
                data,
            } => {
                out.put_u32(*piece);
                out.put_u32(*offset);
                out.put_slice(data);
            }
            Self::Extended { id, payload } => {
                out.put_u8(*id);
                out.put_slice(payload);
            }
            Self::HashRequest(r) | Self::HashReject(r) => r.put(out),
            Self::Hashes { request, hashes } => {
                request.put(out);
                out.put_slice(hashes.as_flattened());
            }
            Self::Unknown { payload, .. } => out.put_slice(payload),
        }
    }

    /// The message as a new byte vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.frame_len());
        self.encode(&mut out);
        out
    }

    /// The same message owning its payload.
    pub fn into_owned(self) -> Message<'static> {
        fn own<T: Clone>(c: Cow<'_, [T]>) -> Cow<'static, [T]> {
            Cow::Owned(c.into_owned())
        }
        match self {
            Self::KeepAlive => Message::KeepAlive,
            Self::Choke => Message::Choke,
            Self::Unchoke => Message::Unchoke,
            Self::Interested => Message::Interested,
            Self::NotInterested => Message::NotInterested,
            Self::Have(p) => Message::Have(p),
            Self::Bitfield(b) => Message::Bitfield(own(b)),
            Self::Request(b) => Message::Request(b),
            Self::Piece {
                piece,
                offset,
                data,
            } => Message::Piece {
                piece,
                offset,
                data: own(data),
            },
            Self::Cancel(b) => Message::Cancel(b),
            Self::Port(p) => Message::Port(p),
            Self::Suggest(p) => Message::Suggest(p),
            Self::HaveAll => Message::HaveAll,
            Self::HaveNone => Message::HaveNone,
            Self::Reject(b) => Message::Reject(b),
            Self::AllowedFast(p) => Message::AllowedFast(p),
            Self::Extended { id, payload } => Message::Extended {
                id,
                payload: own(payload),
            },
            Self::HashRequest(r) => Message::HashRequest(r),
            Self::Hashes { request, hashes } => Message::Hashes {
                request,
                hashes: own(hashes),
            },
            Self::HashReject(r) => Message::HashReject(r),
            Self::Unknown { id, payload } => Message::Unknown {
                id,
                payload: own(payload),
            },
        }
    }
}

impl<'a> Message<'a> {
    /// Decodes one frame body: the id byte and payload, without the length prefix.
    /// `frame` must not be empty (an empty frame is a keep-alive).
    fn decode_frame(frame: &'a [u8]) -> Result<Self, DecodeError> {
        let Some((&id, p)) = frame.split_first() else {
            return Ok(Self::KeepAlive);
        };
        let bad = || DecodeError::BadLength {
            id,
            // The frame came from a u32 length prefix.
            length: frame.len() as u32,
        };
        let fixed = |n: usize| if p.len() == n { Ok(()) } else { Err(bad()) };
        Ok(match id {
            id::CHOKE => fixed(0).map(|()| Self::Choke)?,
            id::UNCHOKE => fixed(0).map(|()| Self::Unchoke)?,
            id::INTERESTED => fixed(0).map(|()| Self::Interested)?,
            id::NOT_INTERESTED => fixed(0).map(|()| Self::NotInterested)?,
            id::HAVE_ALL => fixed(0).map(|()| Self::HaveAll)?,
            id::HAVE_NONE => fixed(0).map(|()| Self::HaveNone)?,
            id::HAVE => fixed(4).map(|()| Self::Have(be32(p)))?,
            id::SUGGEST => fixed(4).map(|()| Self::Suggest(be32(p)))?,
            id::ALLOWED_FAST => fixed(4).map(|()| Self::AllowedFast(be32(p)))?,
            id::PORT => fixed(2).map(|()| Self::Port(u16::from_be_bytes([p[0], p[1]])))?,
            id::REQUEST => fixed(12).map(|()| Self::Request(block(p)))?,
            id::CANCEL => fixed(12).map(|()| Self::Cancel(block(p)))?,
            id::REJECT => fixed(12).map(|()| Self::Reject(block(p)))?,
            id::BITFIELD => Self::Bitfield(Cow::Borrowed(p)),
            id::PIECE => {
                if p.len() < 8 {
                    return Err(bad());
                }
                Self::Piece {
                    piece: be32(p),
                    offset: be32(&p[4..]),
                    data: Cow::Borrowed(&p[8..]),
                }
            }
            id::EXTENDED => match p.split_first() {
                Some((&id, payload)) => Self::Extended {
                    id,
                    payload: Cow::Borrowed(payload),
                },
                None => return Err(bad()),
            },
            id::HASH_REQUEST => {
                fixed(HashRequest::LEN).map(|()| Self::HashRequest(HashRequest::parse(p)))?
            }
            id::HASH_REJECT => {
                fixed(HashRequest::LEN).map(|()| Self::HashReject(HashRequest::parse(p)))?
            }
            id::HASHES => {
                let Some(rest) = p.get(HashRequest::LEN..) else {
                    return Err(bad());
                };
                let (hashes, []) = rest.as_chunks::<32>() else {
                    return Err(bad());
                };
                Self::Hashes {
                    request: HashRequest::parse(p),
                    hashes: Cow::Borrowed(hashes),
                }
            }
            _ => Self::Unknown {
                id,
                payload: Cow::Borrowed(p),
            },
        })
    }
}

/// The frame limit of [`Decoder::new`], 32 KiB: a 16 KiB block with its header, a BEP 9
/// metadata piece with its dictionary, 512 BEP 52 hashes with their proof, or the
/// bitfield of a torrent of up to 262,136 pieces.
pub const DEFAULT_MAX_FRAME: u32 = 2 * BLOCK_SIZE;

/// Splits a byte stream into messages, enforcing a frame size limit.
///
/// The decoder keeps no buffer of its own: the caller appends what it reads to a buffer,
/// decodes messages from its start until it needs more, then drops the bytes consumed.
///
/// ```
/// use webtorrent_wire::{Decoder, Message};
///
/// let decoder = Decoder::new();
/// let mut buf = vec![0, 0, 0, 5, 4, 0, 0, 0]; // `have` with its last byte yet to arrive
/// assert_eq!(decoder.decode(&buf)?, None);
/// buf.extend_from_slice(&[7, 0, 0, 0, 1, 1]); // the rest, then an `unchoke`
///
/// let mut start = 0;
/// let mut seen = Vec::new();
/// while let Some((message, used)) = decoder.decode(&buf[start..])? {
///     seen.push(message.into_owned());
///     start += used;
/// }
/// buf.drain(..start);
/// assert_eq!(seen, [Message::Have(7), Message::Unchoke]);
/// assert!(buf.is_empty());
/// # Ok::<(), webtorrent_wire::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    max_frame: u32,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder accepting frames of up to [`DEFAULT_MAX_FRAME`] bytes.
    pub const fn new() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
        }
    }

    /// A decoder accepting frames of up to `max_frame` bytes (after the length prefix).
    pub const fn with_max_frame(max_frame: u32) -> Self {
        Self { max_frame }
    }

    /// A decoder for a torrent of `pieces` pieces: the default limit, raised if needed so
    /// that the torrent's bitfield fits.
    pub const fn for_pieces(pieces: u32) -> Self {
        let bitfield = 1 + Bitfield::byte_len(pieces) as u32;
        Self::with_max_frame(if bitfield > DEFAULT_MAX_FRAME {
            bitfield
        } else {
            DEFAULT_MAX_FRAME
        })
    }

    /// The frame size limit.
    pub const fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// Decodes the message at the start of `buf`.
    ///
    /// Returns `Ok(None)` if `buf` holds only part of it, or the message and the number
    /// of bytes it took. The length prefix is checked against the limit as soon as its
    /// four bytes are in, so a hostile peer cannot make the caller buffer a huge frame.
    pub fn decode<'a>(&self, buf: &'a [u8]) -> Result<Option<(Message<'a>, usize)>, DecodeError> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let length = be32(prefix);
        if length > self.max_frame {
            return Err(DecodeError::FrameTooLarge {
                length,
                max: self.max_frame,
            });
        }
        // Saturating: on 16- and 32-bit targets a huge limit must not wrap around.
        let end = (length as usize).saturating_add(4);
        let Some(frame) = buf.get(4..end) else {
            return Ok(None);
        };
        Ok(Some((Message::decode_frame(frame)?, end)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hash_request() -> HashRequest {
        HashRequest {
            pieces_root: [0x11; 32],
            base_layer: 1,
            index: 2,
            length: 3,
            proof_layers: 4,
        }
    }

    #[test]
    fn known_layouts() {
        let cases: Vec<(Message<'_>, Vec<u8>)> = vec![
            (Message::KeepAlive, vec![0, 0, 0, 0]),
            (Message::Choke, vec![0, 0, 0, 1, 0]),
            (Message::Unchoke, vec![0, 0, 0, 1, 1]),
            (Message::Interested, vec![0, 0, 0, 1, 2]),
            (Message::NotInterested, vec![0, 0, 0, 1, 3]),
            (Message::Have(0x0102_0304), vec![0, 0, 0, 5, 4, 1, 2, 3, 4]),
            (
                Message::Bitfield(Cow::Borrowed(&[0xf0])),
                vec![0, 0, 0, 2, 5, 0xf0],
            ),
            (
                Message::Request(BlockRef::new(1, 0x4000, 0x4000)),
                vec![0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
            ),
            (
                Message::Piece {
                    piece: 2,
                    offset: 3,
                    data: Cow::Borrowed(b"ab"),
                },
                vec![0, 0, 0, 11, 7, 0, 0, 0, 2, 0, 0, 0, 3, b'a', b'b'],
            ),
            (
                Message::Cancel(BlockRef::new(1, 2, 3)),
                vec![0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
            ),
            (Message::Port(6881), vec![0, 0, 0, 3, 9, 0x1a, 0xe1]),
            (Message::Suggest(9), vec![0, 0, 0, 5, 0x0d, 0, 0, 0, 9]),
            (Message::HaveAll, vec![0, 0, 0, 1, 0x0e]),
            (Message::HaveNone, vec![0, 0, 0, 1, 0x0f]),
            (
                Message::Reject(BlockRef::new(1, 2, 3)),
                vec![0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
            ),
            (Message::AllowedFast(9), vec![0, 0, 0, 5, 0x11, 0, 0, 0, 9]),
            (
                Message::Extended {
                    id: 0,
                    payload: Cow::Borrowed(b"de"),
                },
                vec![0, 0, 0, 4, 20, 0, b'd', b'e'],
            ),
            (
                Message::Unknown {
                    id: 99,
                    payload: Cow::Borrowed(b"x"),
                },
                vec![0, 0, 0, 2, 99, b'x'],
            ),
        ];
        for (message, bytes) in cases {
            assert_eq!(message.to_vec(), bytes, "{message:?}");
            assert_eq!(
                Decoder::new().decode(&bytes),
                Ok(Some((message, bytes.len())))
            );
        }
    }

    #[test]
    fn hash_messages() {
        let r = hash_request();
        let mut head = vec![0x11; 32];
        head.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]);
        for (message, id) in [
            (Message::HashRequest(r), id::HASH_REQUEST),
            (Message::HashReject(r), id::HASH_REJECT),
        ] {
            let mut expected = vec![0, 0, 0, 49, id];
            expected.extend_from_slice(&head);
            assert_eq!(message.to_vec(), expected);
        }
        let hashes = Message::Hashes {
            request: r,
            hashes: Cow::Owned(vec![[0xaa; 32], [0xbb; 32]]),
        };
        let bytes = hashes.to_vec();
        assert_eq!(&bytes[..5], [0, 0, 0, 113, 22]);
        assert_eq!(&bytes[5..53], &head[..]);
        assert_eq!(bytes[53..85], [0xaa; 32]);
        assert_eq!(Decoder::new().decode(&bytes), Ok(Some((hashes, 117))));
        // Hashes must be whole 32-byte values.
        let mut cut = bytes.clone();
        cut.pop();
        cut[3] -= 1;
        assert_eq!(
            Decoder::new().decode(&cut),
            Err(DecodeError::BadLength {
                id: 22,
                length: 112
            })
        );
    }

    #[test]
    fn bad_lengths() {
        for (bytes, id, length) in [
            (&[0, 0, 0, 2, 0, 0][..], 0, 2),
            (&[0, 0, 0, 4, 4, 0, 0, 0], 4, 4),
            (&[0, 0, 0, 2, 9, 0], 9, 2),
            (&[0, 0, 0, 1, 6], 6, 1),
            (&[0, 0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0], 7, 8),
            (&[0, 0, 0, 1, 20], 20, 1),
            (&[0, 0, 0, 1, 21], 21, 1),
            (&[0, 0, 0, 1, 22], 22, 1),
        ] {
            assert_eq!(
                Decoder::new().decode(bytes),
                Err(DecodeError::BadLength { id, length }),
                "{bytes:?}"
            );
        }
        // An empty piece and an empty bitfield are well-formed frames.
        assert!(
            Decoder::new()
                .decode(&[0, 0, 0, 9, 7, 0, 0, 0, 0, 0, 0, 0, 0])
                .is_ok()
        );
        assert!(Decoder::new().decode(&[0, 0, 0, 1, 5]).is_ok());
    }

    #[test]
    fn frame_limit_before_body() {
        let d = Decoder::with_max_frame(100);
        assert_eq!(d.decode(&[0, 0, 0]), Ok(None));
        assert_eq!(d.decode(&[0, 0, 0, 100]), Ok(None));
        assert_eq!(
            d.decode(&[0, 0, 0, 101]),
            Err(DecodeError::FrameTooLarge {
                length: 101,
                max: 100
            })
        );
        assert_eq!(
            Decoder::new().decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::FrameTooLarge {
                length: u32::MAX,
                max: DEFAULT_MAX_FRAME
            })
        );
        assert_eq!(Decoder::for_pieces(1000).max_frame(), DEFAULT_MAX_FRAME);
        // 4,000,000 pieces: a 500,000-byte bitfield plus its id byte.
        assert_eq!(Decoder::for_pieces(4_000_000).max_frame(), 500_001);
        let big = Message::Bitfield(Cow::Owned(vec![0; 500_000])).to_vec();
        assert!(Decoder::for_pieces(4_000_000).decode(&big).is_ok());
        assert!(Decoder::new().decode(&big).is_err());
        // A full block fits the default.
        let block = Message::Piece {
            piece: 0,
            offset: 0,
            data: Cow::Owned(vec![0; BLOCK_SIZE as usize]),
        };
        assert!(Decoder::new().decode(&block.to_vec()).is_ok());
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..64)
    }

    fn block() -> impl Strategy<Value = BlockRef> {
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(p, o, l)| BlockRef::new(p, o, l))
    }

    fn hash_req() -> impl Strategy<Value = HashRequest> {
        (any::<[u8; 32]>(), any::<[u32; 4]>()).prop_map(|(pieces_root, [a, b, c, d])| HashRequest {
            pieces_root,
            base_layer: a,
            index: b,
            length: c,
            proof_layers: d,
        })
    }

    fn message() -> impl Strategy<Value = Message<'static>> {
        prop_oneof![
            Just(Message::KeepAlive),
            Just(Message::Choke),
            Just(Message::Unchoke),
            Just(Message::Interested),
            Just(Message::NotInterested),
            Just(Message::HaveAll),
            Just(Message::HaveNone),
            any::<u32>().prop_map(Message::Have),
            any::<u32>().prop_map(Message::Suggest),
            any::<u32>().prop_map(Message::AllowedFast),
            any::<u16>().prop_map(Message::Port),
            block().prop_map(Message::Request),
            block().prop_map(Message::Cancel),
            block().prop_map(Message::Reject),
            bytes().prop_map(|b| Message::Bitfield(Cow::Owned(b))),
            (any::<u32>(), any::<u32>(), bytes()).prop_map(|(piece, offset, d)| Message::Piece {
                piece,
                offset,
                data: Cow::Owned(d)
            }),
            (any::<u8>(), bytes()).prop_map(|(id, p)| Message::Extended {
                id,
                payload: Cow::Owned(p)
            }),
            hash_req().prop_map(Message::HashRequest),
            hash_req().prop_map(Message::HashReject),
            (
                hash_req(),
                proptest::collection::vec(any::<[u8; 32]>(), 0..5)
            )
                .prop_map(|(request, h)| Message::Hashes {
                    request,
                    hashes: Cow::Owned(h)
                }),
            ((24u8..=255), bytes()).prop_map(|(id, p)| Message::Unknown {
                id,
                payload: Cow::Owned(p)
            }),
            ((10u8..=12), bytes()).prop_map(|(id, p)| Message::Unknown {
                id,
                payload: Cow::Owned(p)
            }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(messages in proptest::collection::vec(message(), 1..8), split in any::<usize>()) {
            let mut stream = Vec::new();
            for m in &messages {
                m.encode(&mut stream);
            }
            let lens: usize = messages.iter().map(|m| 4 + m.frame_len()).sum();
            prop_assert_eq!(stream.len(), lens);
            // Feed the stream in two parts, as a socket would.
            let split = split % (stream.len() + 1);
            let d = Decoder::new();
            let mut buf = stream[..split].to_vec();
            let mut got = Vec::new();
            let drain = |buf: &mut Vec<u8>, got: &mut Vec<Message<'static>>| {
                let mut at = 0;
                while let Some((m, used)) = d.decode(&buf[at..]).expect("valid stream") {
                    got.push(m.into_owned());
                    at += used;
                }
                buf.drain(..at);
            };
            drain(&mut buf, &mut got);
            buf.extend_from_slice(&stream[split..]);
            drain(&mut buf, &mut got);
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, messages);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_re_encode(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(Some((m, used))) = Decoder::new().decode(&data) {
                prop_assert_eq!(m.to_vec(), &data[..used]);
            }
        }
    }
}
