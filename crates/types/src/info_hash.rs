//! Info-hashes: SHA-1 (v1, BEP 3), SHA-256 (v2, BEP 52) and the pair a torrent has.

use std::fmt;
use std::str::FromStr;

use crate::bytes::fixed_bytes;
use crate::{ParseError, base32};

/// The multihash prefix of a sha2-256 digest: function code `0x12`, length `0x20`.
const MULTIHASH_SHA2_256: &str = "1220";

/// A v1 info-hash: the SHA-1 of the bencoded `info` dictionary (BEP 3).
///
/// `Display` and `Debug` print lowercase hex. `FromStr` accepts 40 hex digits or
/// 32 base32 characters, in any case.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct InfoHashV1(pub [u8; 20]);

/// A v2 info-hash: the SHA-256 of the bencoded `info` dictionary (BEP 52).
///
/// On the peer wire, in trackers and in the DHT a v2 torrent is named by the first
/// 20 bytes of this hash: see [`InfoHashV2::truncated`].
///
/// `Display` and `Debug` print lowercase hex. `FromStr` accepts 64 hex digits, or the
/// 68-character multihash form `1220<64 hex>` used by magnet links.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct InfoHashV2(pub [u8; 32]);

fixed_bytes!(InfoHashV1, 20, "hash");

impl InfoHashV1 {
    /// 32 uppercase RFC 4648 base32 characters, the older magnet-link form.
    pub fn to_base32(&self) -> String {
        base32::encode(&self.0)
    }

    /// Parses 32 base32 characters (RFC 4648 alphabet, any case, no padding).
    ///
    /// # Errors
    /// [`ParseError::TextLength`] or [`ParseError::InvalidBase32`].
    pub fn from_base32(text: &str) -> Result<Self, ParseError> {
        let mut out = [0; 20];
        base32::decode_to_slice(text, &mut out)?;
        Ok(Self(out))
    }
}

fixed_bytes!(InfoHashV2, 32, "hash");

impl InfoHashV2 {
    /// The first 20 bytes: how a v2 torrent is named on the peer wire (handshake),
    /// to trackers and in the DHT (BEP 52).
    pub fn truncated(&self) -> InfoHashV1 {
        let mut out = [0; 20];
        out.copy_from_slice(&self.0[..20]);
        InfoHashV1(out)
    }

    /// The multihash form used in magnet links (`xt=urn:btmh:`): `1220` followed by
    /// 64 lowercase hex digits.
    pub fn to_multihash_hex(&self) -> String {
        let mut out = String::with_capacity(68);
        out.push_str(MULTIHASH_SHA2_256);
        out.push_str(&self.to_hex());
        out
    }

    /// Parses the multihash form `1220<64 hex>` (any case).
    ///
    /// # Errors
    /// [`ParseError::UnsupportedMultihash`] if the text does not start with `1220`,
    /// otherwise the errors of [`InfoHashV2::from_hex`].
    pub fn from_multihash_hex(text: &str) -> Result<Self, ParseError> {
        match text.strip_prefix(MULTIHASH_SHA2_256) {
            Some(digest) => Self::from_hex(digest),
            None => Err(ParseError::UnsupportedMultihash {
                prefix: text.chars().take(4).collect(),
            }),
        }
    }
}

impl FromStr for InfoHashV1 {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        match text.len() {
            40 => Self::from_hex(text),
            32 => Self::from_base32(text),
            actual => Err(ParseError::UnknownEncoding { actual }),
        }
    }
}

impl FromStr for InfoHashV2 {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        match text.len() {
            64 => Self::from_hex(text),
            68 => Self::from_multihash_hex(text),
            actual => Err(ParseError::UnknownEncoding { actual }),
        }
    }
}

macro_rules! common_impls {
    ($ty:ident, $n:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self.to_hex())
            }
        }

        impl From<[u8; $n]> for $ty {
            fn from(bytes: [u8; $n]) -> Self {
                Self(bytes)
            }
        }

        impl From<$ty> for [u8; $n] {
            fn from(hash: $ty) -> Self {
                hash.0
            }
        }

        impl TryFrom<&[u8]> for $ty {
            type Error = ParseError;

            fn try_from(bytes: &[u8]) -> Result<Self, ParseError> {
                Self::from_bytes(bytes)
            }
        }

        impl AsRef<[u8]> for $ty {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
    };
}

common_impls!(InfoHashV1, 20);
common_impls!(InfoHashV2, 32);

/// The info-hashes of one torrent: v1, v2, or both for a hybrid torrent.
///
/// At least one of the two should be set; the constructors guarantee it. A value with
/// neither (only possible by writing the public fields directly) names no torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InfoHashes {
    /// The SHA-1 info-hash, for v1 and hybrid torrents.
    pub v1: Option<InfoHashV1>,
    /// The SHA-256 info-hash, for v2 and hybrid torrents.
    pub v2: Option<InfoHashV2>,
}

impl InfoHashes {
    /// The hashes of a v1-only torrent.
    pub const fn from_v1(v1: InfoHashV1) -> Self {
        Self {
            v1: Some(v1),
            v2: None,
        }
    }

    /// The hashes of a v2-only torrent.
    pub const fn from_v2(v2: InfoHashV2) -> Self {
        Self {
            v1: None,
            v2: Some(v2),
        }
    }

    /// The hashes of a hybrid torrent.
    pub const fn hybrid(v1: InfoHashV1, v2: InfoHashV2) -> Self {
        Self {
            v1: Some(v1),
            v2: Some(v2),
        }
    }

    /// Combines optional hashes; `None` when both are missing.
    pub const fn new(v1: Option<InfoHashV1>, v2: Option<InfoHashV2>) -> Option<Self> {
        if v1.is_none() && v2.is_none() {
            None
        } else {
            Some(Self { v1, v2 })
        }
    }

    /// Whether both hashes are present.
    pub const fn is_hybrid(&self) -> bool {
        self.v1.is_some() && self.v2.is_some()
    }

    /// The 20-byte name used in handshakes, tracker announces and DHT lookups: the v1
    /// hash if present, else the truncated v2 hash (BEP 52).
    ///
    /// For the invalid value with neither hash this is the all-zero hash.
    pub fn wire(&self) -> InfoHashV1 {
        match (self.v1, self.v2) {
            (Some(v1), _) => v1,
            (None, Some(v2)) => v2.truncated(),
            (None, None) => InfoHashV1::default(),
        }
    }

    /// Whether a 20-byte hash from the wire names this torrent: it equals the v1 hash
    /// or the truncated v2 hash. A hybrid torrent answers to both.
    pub fn matches_wire(&self, wire: &InfoHashV1) -> bool {
        self.v1.as_ref() == Some(wire) || self.v2.map(|v2| v2.truncated()).as_ref() == Some(wire)
    }
}

impl From<InfoHashV1> for InfoHashes {
    fn from(v1: InfoHashV1) -> Self {
        Self::from_v1(v1)
    }
}

impl From<InfoHashV2> for InfoHashes {
    fn from(v2: InfoHashV2) -> Self {
        Self::from_v2(v2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36";

    #[test]
    fn v1_text_forms() {
        let h: InfoHashV1 = HEX.parse().unwrap();
        assert_eq!(h.to_string(), HEX);
        assert_eq!(format!("{h:?}"), format!("InfoHashV1({HEX})"));
        assert_eq!(HEX.to_uppercase().parse::<InfoHashV1>().unwrap(), h);
        // A well-known pair: base32 "64DZYZWMUAVLIWJUXGDIK4QGAAIN7SL6" is this hex.
        let b32: InfoHashV1 = "64DZYZWMUAVLIWJUXGDIK4QGAAIN7SL6".parse().unwrap();
        assert_eq!(b32.to_hex(), "f7079c66cca02ab45934b9868572060010dfc97e");
        assert_eq!(b32.to_base32(), "64DZYZWMUAVLIWJUXGDIK4QGAAIN7SL6");
        assert_eq!(
            "64dzyzwmuavliwjuxgdik4qgaain7sl6"
                .parse::<InfoHashV1>()
                .unwrap(),
            b32
        );
    }

    #[test]
    fn v1_errors() {
        assert_eq!(
            "abc".parse::<InfoHashV1>(),
            Err(ParseError::UnknownEncoding { actual: 3 })
        );
        assert_eq!(
            InfoHashV1::from_bytes(&[0; 19]),
            Err(ParseError::ByteLength {
                expected: 20,
                actual: 19
            })
        );
        let bad = format!("{}x", &HEX[..39]);
        assert_eq!(
            bad.parse::<InfoHashV1>(),
            Err(ParseError::InvalidHex {
                index: 39,
                found: 'x'
            })
        );
        assert_eq!(
            InfoHashV1::from_base32("0".repeat(32).as_str()),
            Err(ParseError::InvalidBase32 {
                index: 0,
                found: '0'
            })
        );
    }

    #[test]
    fn v2_forms_and_truncation() {
        let hex64 = "caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";
        let h: InfoHashV2 = hex64.parse().unwrap();
        assert_eq!(h.to_string(), hex64);
        assert_eq!(h.to_multihash_hex(), format!("1220{hex64}"));
        assert_eq!(
            InfoHashV2::from_multihash_hex(&h.to_multihash_hex()).unwrap(),
            h
        );
        assert_eq!(format!("1220{hex64}").parse::<InfoHashV2>().unwrap(), h);
        assert_eq!(h.truncated().to_hex(), hex64[..40]);
        assert_eq!(
            InfoHashV2::from_multihash_hex(&format!("1114{hex64}")),
            Err(ParseError::UnsupportedMultihash {
                prefix: "1114".into()
            })
        );
        assert_eq!(
            InfoHashV2::from_multihash_hex("12"),
            Err(ParseError::UnsupportedMultihash {
                prefix: "12".into()
            })
        );
    }

    #[test]
    fn info_hashes_wire() {
        let v1 = InfoHashV1([1; 20]);
        let v2 = InfoHashV2([2; 32]);
        assert_eq!(InfoHashes::from_v1(v1).wire(), v1);
        assert_eq!(InfoHashes::from_v2(v2).wire(), InfoHashV1([2; 20]));
        let hybrid = InfoHashes::hybrid(v1, v2);
        assert!(hybrid.is_hybrid());
        assert_eq!(hybrid.wire(), v1);
        assert!(hybrid.matches_wire(&v1));
        assert!(hybrid.matches_wire(&v2.truncated()));
        assert!(!hybrid.matches_wire(&InfoHashV1([3; 20])));
        assert_eq!(InfoHashes::new(None, None), None);
        assert_eq!(
            InfoHashes::new(Some(v1), None),
            Some(InfoHashes::from_v1(v1))
        );
        assert_eq!(
            InfoHashes { v1: None, v2: None }.wire(),
            InfoHashV1([0; 20])
        );
    }

    proptest! {
        #[test]
        fn v1_round_trips(bytes in any::<[u8; 20]>()) {
            let h = InfoHashV1(bytes);
            prop_assert_eq!(InfoHashV1::from_hex(&h.to_hex()).unwrap(), h);
            prop_assert_eq!(InfoHashV1::from_base32(&h.to_base32()).unwrap(), h);
            prop_assert_eq!(h.to_string().parse::<InfoHashV1>().unwrap(), h);
            prop_assert_eq!(h.to_base32().parse::<InfoHashV1>().unwrap(), h);
            prop_assert_eq!(InfoHashV1::from_bytes(h.as_bytes()).unwrap(), h);
        }

        #[test]
        fn v2_round_trips(bytes in any::<[u8; 32]>()) {
            let h = InfoHashV2(bytes);
            prop_assert_eq!(InfoHashV2::from_hex(&h.to_hex()).unwrap(), h);
            prop_assert_eq!(InfoHashV2::from_multihash_hex(&h.to_multihash_hex()).unwrap(), h);
            prop_assert_eq!(h.to_string().parse::<InfoHashV2>().unwrap(), h);
            prop_assert_eq!(InfoHashV2::from_bytes(h.as_bytes()).unwrap(), h);
            prop_assert_eq!(&h.truncated().0[..], &bytes[..20]);
        }

        #[test]
        fn parsers_never_panic(text in "\\PC{0,80}") {
            let _ = text.parse::<InfoHashV1>();
            let _ = text.parse::<InfoHashV2>();
        }
    }
}
