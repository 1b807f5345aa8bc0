//! The BitTorrent handshake (BEP 3) and its reserved bits (BEP 5, 6, 10, 52).

use webtorrent_types::{InfoHashV1, PeerId};

use crate::error::DecodeError;

/// The protocol string every BitTorrent handshake starts with, after its length byte.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// The length of a handshake on the wire: 1 + 19 + 8 + 20 + 20 bytes.
pub const HANDSHAKE_LEN: usize = 68;

/// The eight reserved bytes of a handshake, where peers announce protocol extensions.
///
/// Bits this crate does not name are kept as received, so a handshake re-encodes to the
/// bytes it was decoded from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// The bits this project sets: fast extension, extension protocol and DHT.
    pub const OURS: Self = Self::NONE
        .with_fast(true)
        .with_extended(true)
        .with_dht(true);
    /// No extension at all.
    pub const NONE: Self = Self([0; 8]);

    const fn bit(&self, byte: usize, mask: u8) -> bool {
        self.0[byte] & mask != 0
    }

    const fn with_bit(mut self, byte: usize, mask: u8, on: bool) -> Self {
        if on {
            self.0[byte] |= mask;
        } else {
            self.0[byte] &= !mask;
        }
        self
    }

    /// BEP 5: the peer runs a DHT node and accepts `port` messages (`reserved[7] & 0x01`).
    pub const fn dht(&self) -> bool {
        self.bit(7, 0x01)
    }

    /// BEP 6: the fast extension (`reserved[7] & 0x04`).
    pub const fn fast(&self) -> bool {
        self.bit(7, 0x04)
    }

    /// BEP 52: the peer can upgrade a hybrid torrent's connection to v2 (`reserved[7] & 0x10`).
    pub const fn v2(&self) -> bool {
        self.bit(7, 0x10)
    }

    /// BEP 10: the extension protocol (`reserved[5] & 0x10`).
    pub const fn extended(&self) -> bool {
        self.bit(5, 0x10)
    }

    /// These bits with the DHT bit set or cleared.
    pub const fn with_dht(self, on: bool) -> Self {
        self.with_bit(7, 0x01, on)
    }

    /// These bits with the fast extension bit set or cleared.
    pub const fn with_fast(self, on: bool) -> Self {
        self.with_bit(7, 0x04, on)
    }

    /// These bits with the v2 upgrade bit set or cleared.
    pub const fn with_v2(self, on: bool) -> Self {
        self.with_bit(7, 0x10, on)
    }

    /// These bits with the extension protocol bit set or cleared.
    pub const fn with_extended(self, on: bool) -> Self {
        self.with_bit(5, 0x10, on)
    }
}

/// A decoded or to-be-sent handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// The extension bits.
    pub reserved: Reserved,
    /// The torrent, by its 20-byte wire name (a v2 info-hash is truncated).
    pub info_hash: InfoHashV1,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// A handshake with the given parts.
    pub const fn new(reserved: Reserved, info_hash: InfoHashV1, peer_id: PeerId) -> Self {
        Self {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// The 68 bytes of this handshake.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = PROTOCOL.len() as u8;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved.0);
        out[28..48].copy_from_slice(self.info_hash.as_bytes());
        out[48..68].copy_from_slice(self.peer_id.as_bytes());
        out
    }

    /// Appends the 68 bytes of this handshake to `out`.
    pub fn encode(&self, out: &mut impl bytes::BufMut) {
        out.put_slice(&self.to_bytes());
    }

    /// Decodes a handshake from the start of `buf`, which may hold more bytes (the first
    /// messages) after it.
    ///
    /// Returns `Ok(None)` while fewer than [`HANDSHAKE_LEN`] bytes have arrived, and
    /// `Ok(Some((handshake, HANDSHAKE_LEN)))` once it is complete. A wrong protocol string
    /// is an error as soon as the first differing byte is in `buf`, so a caller can drop a
    /// stranger without waiting for 68 bytes.
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, DecodeError> {
        let mut expected = [0u8; 20];
        expected[0] = PROTOCOL.len() as u8;
        expected[1..].copy_from_slice(PROTOCOL);
        let seen = buf.len().min(expected.len());
        if buf[..seen] != expected[..seen] {
            return Err(DecodeError::NotBitTorrent);
        }
        let Some(bytes) = buf.get(..HANDSHAKE_LEN) else {
            return Ok(None);
        };
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&bytes[20..28]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&bytes[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&bytes[48..68]);
        Ok(Some((
            Self::new(Reserved(reserved), InfoHashV1(info_hash), PeerId(peer_id)),
            HANDSHAKE_LEN,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reserved_bits() {
        let r = Reserved::OURS;
        assert!(r.fast() && r.extended() && r.dht() && !r.v2());
        assert_eq!(r.0, [0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        let r = r.with_v2(true).with_dht(false);
        assert_eq!(r.0[7], 0x14);
        assert!(!Reserved::NONE.fast());
    }

    #[test]
    fn layout() {
        let h = Handshake::new(
            Reserved::OURS,
            InfoHashV1([0xaa; 20]),
            PeerId(*b"-RW0100-abcdefghijkl"),
        );
        let bytes = h.to_bytes();
        assert_eq!(&bytes[..20], b"\x13BitTorrent protocol");
        assert_eq!(&bytes[48..], b"-RW0100-abcdefghijkl");
        assert_eq!(Handshake::decode(&bytes[..67]), Ok(None));
        let mut more = bytes.to_vec();
        more.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Handshake::decode(&more), Ok(Some((h, 68))));
    }

    #[test]
    fn strangers_fail_early() {
        assert_eq!(Handshake::decode(b""), Ok(None));
        assert_eq!(Handshake::decode(b"\x13Bit"), Ok(None));
        assert_eq!(
            Handshake::decode(b"GET / HTTP/1.1"),
            Err(DecodeError::NotBitTorrent)
        );
        assert_eq!(
            Handshake::decode(b"\x13BitTorrent protocoX"),
            Err(DecodeError::NotBitTorrent)
        );
    }

    proptest! {
        #[test]
        fn round_trip(r: [u8; 8], ih: [u8; 20], id: [u8; 20]) {
            let h = Handshake::new(Reserved(r), InfoHashV1(ih), PeerId(id));
            let mut out = Vec::new();
            h.encode(&mut out);
            prop_assert_eq!(Handshake::decode(&out), Ok(Some((h, HANDSHAKE_LEN))));
        }
    }
}
