//! BEP 44 items: immutable (keyed by the SHA-1 of the value) and mutable (keyed by
//! an ed25519 public key and a salt, signed, versioned by `seq`).

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha1::{Digest, Sha1};

use crate::error::ItemError;
use crate::id::NodeId;

/// The longest bencoded value BEP 44 allows.
pub const MAX_VALUE_LEN: usize = 1000;
/// The longest salt BEP 44 allows.
pub const MAX_SALT_LEN: usize = 64;

fn sha1(parts: &[&[u8]]) -> NodeId {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    NodeId(h.finalize().into())
}

/// Checks that `value` is one bencoded value of at most [`MAX_VALUE_LEN`] bytes.
///
/// # Errors
/// [`ItemError::ValueTooLong`] or [`ItemError::NotBencode`].
pub fn check_value(value: &[u8]) -> Result<(), ItemError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(ItemError::ValueTooLong(value.len()));
    }
    webtorrent_bencode::decode(value).map_err(|_| ItemError::NotBencode)?;
    Ok(())
}

/// The target of an immutable item: the SHA-1 of its bencoded value.
pub fn immutable_target(value: &[u8]) -> NodeId {
    sha1(&[value])
}

/// The target of a mutable item: the SHA-1 of the public key followed by the salt.
pub fn mutable_target(key: &[u8; 32], salt: &[u8]) -> NodeId {
    sha1(&[key, salt])
}

/// The bytes a mutable item's signature covers:
/// `4:salt<len>:<salt>3:seqi<seq>e1:v<value>` (the salt part only when non-empty).
pub fn signature_buffer(salt: &[u8], seq: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(salt.len() + value.len() + 40);
    if !salt.is_empty() {
        out.extend_from_slice(b"4:salt");
        out.extend_from_slice(salt.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(salt);
    }
    out.extend_from_slice(b"3:seqi");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b"e1:v");
    out.extend_from_slice(value);
    out
}

/// A signed mutable item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutableItem {
    /// The ed25519 public key.
    pub key: [u8; 32],
    /// The salt (empty for none).
    pub salt: Vec<u8>,
    /// The sequence number.
    pub seq: i64,
    /// The value, bencoded.
    pub value: Vec<u8>,
    /// The signature over [`signature_buffer`].
    pub signature: [u8; 64],
}

impl MutableItem {
    /// Signs `value` (bencoded) with `salt` and `seq`.
    ///
    /// # Errors
    /// The value or salt breaks the limits of BEP 44.
    pub fn sign(
        signing_key: &SigningKey,
        salt: &[u8],
        seq: i64,
        value: Vec<u8>,
    ) -> Result<Self, ItemError> {
        check_value(&value)?;
        if salt.len() > MAX_SALT_LEN {
            return Err(ItemError::SaltTooLong(salt.len()));
        }
        let signature = signing_key
            .sign(&signature_buffer(salt, seq, &value))
            .to_bytes();
        Ok(Self {
            key: signing_key.verifying_key().to_bytes(),
            salt: salt.to_vec(),
            seq,
            value,
            signature,
        })
    }

    /// Checks the limits and the signature.
    ///
    /// # Errors
    /// Which check failed.
    pub fn verify(&self) -> Result<(), ItemError> {
        check_value(&self.value)?;
        if self.salt.len() > MAX_SALT_LEN {
            return Err(ItemError::SaltTooLong(self.salt.len()));
        }
        let key = VerifyingKey::from_bytes(&self.key).map_err(|_| ItemError::BadKey)?;
        let sig = Signature::from_bytes(&self.signature);
        key.verify(&signature_buffer(&self.salt, self.seq, &self.value), &sig)
            .map_err(|_| ItemError::BadSignature)
    }

    /// The DHT key this item is stored under.
    pub fn target(&self) -> NodeId {
        mutable_target(&self.key, &self.salt)
    }
}

/// An item found or stored in the DHT.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// An immutable item: its bencoded value.
    Immutable(Vec<u8>),
    /// A mutable item.
    Mutable(MutableItem),
}

impl Item {
    /// The DHT key.
    pub fn target(&self) -> NodeId {
        match self {
            Self::Immutable(v) => immutable_target(v),
            Self::Mutable(m) => m.target(),
        }
    }

    /// The bencoded value.
    pub fn value(&self) -> &[u8] {
        match self {
            Self::Immutable(v) => v,
            Self::Mutable(m) => &m.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).unwrap();
        }
        out
    }

    const PUBLIC: &str = "77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548";

    /// BEP 44 test vector 1: mutable, no salt.
    #[test]
    fn bep44_vector_mutable() {
        let item = MutableItem {
            key: unhex(PUBLIC),
            salt: Vec::new(),
            seq: 1,
            value: b"12:Hello World!".to_vec(),
            signature: unhex(
                "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff\
                 1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01",
            ),
        };
        assert_eq!(
            signature_buffer(&[], 1, &item.value),
            b"3:seqi1e1:v12:Hello World!"
        );
        item.verify().unwrap();
        assert_eq!(
            item.target(),
            NodeId(unhex("4a533d47ec9c7d95b1ad75f576cffc641853b750"))
        );
        let mut forged = item.clone();
        forged.seq = 2;
        assert_eq!(forged.verify(), Err(ItemError::BadSignature));
    }

    /// BEP 44 test vector 2: mutable, salt "foobar".
    #[test]
    fn bep44_vector_mutable_salt() {
        let item = MutableItem {
            key: unhex(PUBLIC),
            salt: b"foobar".to_vec(),
            seq: 1,
            value: b"12:Hello World!".to_vec(),
            signature: unhex(
                "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d\
                 df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08",
            ),
        };
        assert_eq!(
            signature_buffer(&item.salt, 1, &item.value),
            b"4:salt6:foobar3:seqi1e1:v12:Hello World!"
        );
        item.verify().unwrap();
        assert_eq!(
            item.target(),
            NodeId(unhex("411eba73b6f087ca51a3795d9c8c938d365e32c1"))
        );
    }

    /// BEP 44 test vector 3: immutable.
    #[test]
    fn bep44_vector_immutable() {
        assert_eq!(
            immutable_target(b"12:Hello World!"),
            NodeId(unhex("e5f96f6f38320f0f33959cb4d3d656452117aadb"))
        );
    }

    #[test]
    fn sign_verify_and_limits() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let item = MutableItem::sign(&key, b"s", 5, b"i42e".to_vec()).unwrap();
        item.verify().unwrap();
        let mut v = b"996:".to_vec();
        v.extend(std::iter::repeat_n(b'x', 996));
        assert_eq!(v.len(), 1000);
        assert!(MutableItem::sign(&key, b"", 1, v.clone()).is_ok());
        v[2] = b'7';
        v.push(b'x');
        assert_eq!(
            MutableItem::sign(&key, b"", 1, v),
            Err(ItemError::ValueTooLong(1001))
        );
        assert_eq!(
            MutableItem::sign(&key, &[0; 65], 1, b"i1e".to_vec()),
            Err(ItemError::SaltTooLong(65))
        );
        assert_eq!(
            MutableItem::sign(&key, b"", 1, b"garbage".to_vec()),
            Err(ItemError::NotBencode)
        );
    }
}
