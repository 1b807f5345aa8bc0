//! BEP 46: mutable torrents. A mutable item whose value is `{"ih": <info-hash>}`
//! points at the current version of a torrent; `magnet:?xs=urn:btpk:<key>&s=<salt>`
//! names the pointer.

use std::collections::BTreeMap;

use webtorrent_bencode::OwnedValue;
use webtorrent_magnet::Magnet;
use webtorrent_types::InfoHashV1;

use crate::error::PointerError;
use crate::id::NodeId;
use crate::item::mutable_target;

/// The bencoded pointer value `d2:ih20:<info-hash>e`.
pub fn encode_pointer(info_hash: InfoHashV1) -> Vec<u8> {
    let mut d = BTreeMap::new();
    d.insert(b"ih".to_vec(), OwnedValue::Bytes(info_hash.0.to_vec()));
    OwnedValue::Dict(d).encode()
}

/// The info-hash a pointer value names. Other keys are ignored.
///
/// # Errors
/// [`PointerError::NotAPointer`] when the value is not a dictionary with a 20-byte
/// `ih`.
pub fn decode_pointer(value: &[u8]) -> Result<InfoHashV1, PointerError> {
    let v = webtorrent_bencode::decode(value).map_err(|_| PointerError::NotAPointer)?;
    v.as_dict()
        .and_then(|d| d.get(b"ih"))
        .and_then(|ih| ih.as_bytes())
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .map(InfoHashV1)
        .ok_or(PointerError::NotAPointer)
}

/// The public key and salt of a mutable torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutableTorrent {
    /// The publisher's ed25519 public key.
    pub key: [u8; 32],
    /// The salt (empty for none).
    pub salt: Vec<u8>,
}

impl MutableTorrent {
    /// The pointer named by a magnet's `xs=urn:btpk:` and `s`.
    ///
    /// # Errors
    /// [`PointerError::NoPublicKey`] when the magnet has no such key.
    pub fn from_magnet(magnet: &Magnet) -> Result<Self, PointerError> {
        let key = magnet.public_key().ok_or(PointerError::NoPublicKey)?;
        Ok(Self {
            key,
            salt: magnet.salt.clone().unwrap_or_default(),
        })
    }

    /// Parses `magnet:?xs=urn:btpk:<64 hex>[&s=<hex salt>]`.
    ///
    /// # Errors
    /// The magnet does not parse or has no public key.
    pub fn parse(uri: &str) -> Result<Self, PointerError> {
        let m = Magnet::parse(uri).map_err(|e| PointerError::Magnet(e.to_string()))?;
        Self::from_magnet(&m)
    }

    /// The magnet link naming this pointer.
    pub fn to_magnet(&self) -> Magnet {
        let mut hex = String::with_capacity(64);
        for b in self.key {
            hex.push_str(&format!("{b:02x}"));
        }
        Magnet {
            exact_sources: vec![format!("urn:btpk:{hex}")],
            salt: (!self.salt.is_empty()).then(|| self.salt.clone()),
            ..Magnet::default()
        }
    }

    /// The DHT target of the pointer item.
    pub fn target(&self) -> NodeId {
        mutable_target(&self.key, &self.salt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_round_trip() {
        let ih = InfoHashV1([0x3c; 20]);
        let v = encode_pointer(ih);
        assert_eq!(&v[..8], b"d2:ih20:");
        assert_eq!(decode_pointer(&v), Ok(ih));
        assert_eq!(
            decode_pointer(b"d2:ih3:abce"),
            Err(PointerError::NotAPointer)
        );
        assert_eq!(decode_pointer(b"junk"), Err(PointerError::NotAPointer));
        assert_eq!(
            decode_pointer(b"d1:ai1e2:ih20:aaaaaaaaaaaaaaaaaaaae"),
            Ok(InfoHashV1([b'a'; 20]))
        );
    }

    #[test]
    fn magnet_links() {
        let key = "8543d3e6115f0f98c944077a4493dcd543e49c739fd998550a1f614ab36ed63e";
        let t = MutableTorrent::parse(&format!("magnet:?xs=urn:btpk:{key}&s=6e")).unwrap();
        assert_eq!(t.salt, b"n");
        assert_eq!(t.key[0], 0x85);
        let again = MutableTorrent::from_magnet(&t.to_magnet()).unwrap();
        assert_eq!(again, t);
        assert_eq!(t.target(), mutable_target(&t.key, b"n"));
        let uri = t.to_magnet().to_uri();
        assert!(uri.contains(&format!("xs=urn:btpk:{key}")), "{uri}");
        assert_eq!(
            MutableTorrent::parse("magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36"),
            Err(PointerError::NoPublicKey)
        );
        assert!(matches!(
            MutableTorrent::parse("http://x"),
            Err(PointerError::Magnet(_))
        ));
    }
}
