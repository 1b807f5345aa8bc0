//! The BEP 10 extension handshake: the dictionary sent as extended message 0.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use webtorrent_bencode::{DecodeOptions, Dict, OwnedValue, Value};

use crate::error::HandshakeError;

/// The client name this project puts in `v`.
pub const OUR_CLIENT_VERSION: &str = concat!("webtorrent-rs ", env!("CARGO_PKG_VERSION"));

/// The most `m` entries kept from a peer's handshake; further entries are ignored.
///
/// Real clients advertise fewer than a dozen extensions.
pub const MAX_EXTENSION_NAMES: usize = 128;

/// The longest extension name kept from a peer's handshake, in bytes.
pub const MAX_EXTENSION_NAME_LEN: usize = 64;

/// The longest client name (`v`) kept from a peer's handshake, in bytes.
pub const MAX_CLIENT_NAME_LEN: usize = 128;

/// The most unknown top-level keys kept from a peer's handshake.
pub const MAX_UNKNOWN_KEYS: usize = 32;

/// Nesting and size limits for decoding a handshake: real ones are two levels deep.
const DECODE: DecodeOptions = DecodeOptions::new().max_depth(8).max_items(Some(4096));

/// An extension handshake (BEP 10), decoded or to be sent.
///
/// Decoding is lenient the way BEP 10 asks: every key is optional, and a key whose
/// value has the wrong type or is out of range is ignored rather than failing the whole
/// handshake. Only a payload that is not a bencoded dictionary, or an `m` that is not a
/// dictionary, is an error. Unknown keys are kept in [`ExtHandshake::extra`] (bounded by
/// [`MAX_UNKNOWN_KEYS`]) and re-encoded.
///
/// ```
/// use webtorrent_extensions::ExtHandshake;
///
/// let mut ours = ExtHandshake::ours();
/// ours.m.insert("ut_metadata".into(), 1);
/// ours.metadata_size = Some(31_235);
/// let bytes = ours.encode();
/// let back = ExtHandshake::decode(&bytes)?;
/// assert_eq!(back.extension_id("ut_metadata"), Some(1));
/// assert_eq!(back.metadata_size, Some(31_235));
/// # Ok::<(), webtorrent_extensions::HandshakeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtHandshake {
    /// `m`: extension name to the message id the sender wants to receive it under.
    /// Id 0 means the extension is disabled (in an update handshake: switched off).
    pub m: BTreeMap<String, u8>,
    /// `v`: the client's name and version.
    pub client: Option<String>,
    /// `p`: the TCP port the sender listens on.
    pub listen_port: Option<u16>,
    /// `yourip`: the receiver's address as the sender sees it.
    pub your_ip: Option<IpAddr>,
    /// `ipv4`: the sender's own IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// `ipv6`: the sender's own IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// `reqq`: how many outstanding requests the sender queues without dropping.
    pub reqq: Option<u32>,
    /// `metadata_size` (BEP 9): the size of the info dictionary in bytes.
    pub metadata_size: Option<u64>,
    /// `upload_only` (BEP 21): the sender only uploads (it is a seed or a partial seed).
    pub upload_only: Option<bool>,
    /// Keys this crate does not interpret, kept as received.
    pub extra: BTreeMap<Vec<u8>, OwnedValue>,
}

impl ExtHandshake {
    /// An empty handshake naming this client in `v`.
    #[must_use]
    pub fn ours() -> Self {
        Self {
            client: Some(OUR_CLIENT_VERSION.to_owned()),
            ..Self::default()
        }
    }

    /// The id the sender wants to receive extension `name` under, or `None` when it did
    /// not name it or disabled it (id 0).
    #[must_use]
    pub fn extension_id(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied().filter(|&id| id != 0)
    }

    /// Decodes the payload of extended message 0.
    ///
    /// # Errors
    /// [`HandshakeError`] when the payload is not one bencoded dictionary or its `m` is
    /// not a dictionary. Wrong types and out-of-range values elsewhere are ignored.
    pub fn decode(payload: &[u8]) -> Result<Self, HandshakeError> {
        let value = DECODE.decode(payload)?;
        let Some(dict) = value.as_dict() else {
            return Err(HandshakeError::NotADictionary);
        };
        let mut hs = Self::default();
        for (key, value) in dict.iter() {
            match key {
                b"m" => {
                    let Some(m) = value.as_dict() else {
                        return Err(HandshakeError::MNotADictionary);
                    };
                    hs.m = decode_m(m);
                }
                b"v" => {
                    // Checked after the lossy conversion, which may lengthen the name (each
                    // invalid byte becomes a 3-byte U+FFFD): what we keep encodes within the
                    // limit too.
                    hs.client = value
                        .as_bytes()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .filter(|name| name.len() <= MAX_CLIENT_NAME_LEN);
                }
                b"p" => hs.listen_port = int_in::<u16>(value).filter(|&p| p != 0),
                b"yourip" => hs.your_ip = value.as_bytes().and_then(ip_from_bytes),
                b"ipv4" => {
                    hs.ipv4 = value
                        .as_bytes()
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map(Ipv4Addr::from);
                }
                b"ipv6" => {
                    hs.ipv6 = value
                        .as_bytes()
                        .and_then(|b| <[u8; 16]>::try_from(b).ok())
                        .map(Ipv6Addr::from);
                }
                b"reqq" => hs.reqq = int_in::<u32>(value),
                b"metadata_size" => hs.metadata_size = int_in::<u64>(value),
                b"upload_only" => hs.upload_only = value.as_int().map(|i| i != 0),
                _ => {
                    if hs.extra.len() < MAX_UNKNOWN_KEYS {
                        hs.extra
                            .entry(key.to_vec())
                            .or_insert_with(|| value.to_owned());
                    }
                }
            }
        }
        Ok(hs)
    }

    /// Encodes the payload of extended message 0 (canonical bencode).
    ///
    /// Entries of [`ExtHandshake::extra`] whose keys this crate interprets are skipped:
    /// the typed fields win.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut dict: BTreeMap<Vec<u8>, OwnedValue> = self
            .extra
            .iter()
            .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_slice()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let m = self
            .m
            .iter()
            .map(|(name, &id)| (name.as_bytes().to_vec(), OwnedValue::Int(i64::from(id))))
            .collect();
        dict.insert(b"m".to_vec(), OwnedValue::Dict(m));
        if let Some(v) = &self.client {
            dict.insert(b"v".to_vec(), OwnedValue::from(v.as_str()));
        }
        if let Some(p) = self.listen_port {
            dict.insert(b"p".to_vec(), OwnedValue::Int(i64::from(p)));
        }
        if let Some(ip) = self.your_ip {
            let bytes = match ip {
                IpAddr::V4(ip) => ip.octets().to_vec(),
                IpAddr::V6(ip) => ip.octets().to_vec(),
            };
            dict.insert(b"yourip".to_vec(), OwnedValue::Bytes(bytes));
        }
        if let Some(ip) = self.ipv4 {
            dict.insert(b"ipv4".to_vec(), OwnedValue::Bytes(ip.octets().to_vec()));
        }
        if let Some(ip) = self.ipv6 {
            dict.insert(b"ipv6".to_vec(), OwnedValue::Bytes(ip.octets().to_vec()));
        }
        if let Some(reqq) = self.reqq {
            dict.insert(b"reqq".to_vec(), OwnedValue::Int(i64::from(reqq)));
        }
        if let Some(size) = self.metadata_size {
            // Sizes above i64::MAX cannot be encoded; no real info dictionary is near it.
            dict.insert(
                b"metadata_size".to_vec(),
                OwnedValue::Int(i64::try_from(size).unwrap_or(i64::MAX)),
            );
        }
        if let Some(upload_only) = self.upload_only {
            dict.insert(
                b"upload_only".to_vec(),
                OwnedValue::Int(i64::from(upload_only)),
            );
        }
        OwnedValue::Dict(dict).encode()
    }

    /// Applies an update handshake from the same peer (BEP 10: later handshakes may
    /// enable or disable single extensions without repeating the others).
    ///
    /// Every `m` entry of `update` replaces ours (id 0 disables); other fields are
    /// replaced when `update` has them.
    pub fn merge(&mut self, update: Self) {
        for (name, id) in update.m {
            if self.m.len() < MAX_EXTENSION_NAMES || self.m.contains_key(&name) {
                self.m.insert(name, id);
            }
        }
        macro_rules! take {
            ($($field:ident),*) => {$(
                if update.$field.is_some() {
                    self.$field = update.$field;
                }
            )*};
        }
        take!(
            client,
            listen_port,
            your_ip,
            ipv4,
            ipv6,
            reqq,
            metadata_size,
            upload_only
        );
        for (k, v) in update.extra {
            if self.extra.len() < MAX_UNKNOWN_KEYS || self.extra.contains_key(&k) {
                self.extra.insert(k, v);
            }
        }
    }
}

const KNOWN_KEYS: [&[u8]; 9] = [
    b"m",
    b"v",
    b"p",
    b"yourip",
    b"ipv4",
    b"ipv6",
    b"reqq",
    b"metadata_size",
    b"upload_only",
];

/// The `m` entries that are valid: UTF-8 names of sane length, ids 0..=255. The first
/// of duplicate names wins, as with [`Dict::get`].
fn decode_m(m: &Dict<'_>) -> BTreeMap<String, u8> {
    let mut out = BTreeMap::new();
    for (name, id) in m.iter() {
        if out.len() >= MAX_EXTENSION_NAMES {
            break;
        }
        if name.is_empty() || name.len() > MAX_EXTENSION_NAME_LEN {
            continue;
        }
        let (Ok(name), Some(id)) = (core::str::from_utf8(name), int_in::<u8>(id)) else {
            continue;
        };
        out.entry(name.to_owned()).or_insert(id);
    }
    out
}

/// The integer in `value` if it is one and fits `T`.
fn int_in<T: TryFrom<i64>>(value: &Value<'_>) -> Option<T> {
    value.as_int().and_then(|i| T::try_from(i).ok())
}

/// A 4- or 16-byte address; anything else is ignored.
pub(crate) fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::V4(Ipv4Addr::from(v4)))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(IpAddr::V6(Ipv6Addr::from(v6)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bep10_example() {
        let hs = ExtHandshake::decode(b"d1:md11:LT_metadatai1e7:\xc2\xb5T_PEXi2eee").unwrap();
        assert_eq!(hs.extension_id("LT_metadata"), Some(1));
        assert_eq!(hs.extension_id("\u{b5}T_PEX"), Some(2));
        assert_eq!(hs.client, None);
    }

    #[test]
    fn hostile_values_are_ignored() {
        let hs = ExtHandshake::decode(
            b"d1:md1:ai256e1:bi-1e1:c3:xyz1:di7e0:i3ee1:pi70000e6:yourip3:abc4:reqqi-5e\
              13:metadata_sizei-1e4:ipv45:abcde11:upload_only3:yese",
        )
        .unwrap();
        assert_eq!(hs.m.len(), 1);
        assert_eq!(hs.extension_id("d"), Some(7));
        assert_eq!(hs.listen_port, None);
        assert_eq!(hs.your_ip, None);
        assert_eq!(hs.reqq, None);
        assert_eq!(hs.metadata_size, None);
        assert_eq!(hs.ipv4, None);
        assert_eq!(hs.upload_only, None);
    }

    #[test]
    fn structural_errors() {
        assert_eq!(
            ExtHandshake::decode(b"li1ee"),
            Err(HandshakeError::NotADictionary)
        );
        assert_eq!(
            ExtHandshake::decode(b"d1:mi1ee"),
            Err(HandshakeError::MNotADictionary)
        );
        assert!(matches!(
            ExtHandshake::decode(b"d1:m"),
            Err(HandshakeError::Bencode(_))
        ));
        assert!(matches!(
            ExtHandshake::decode(b"de trailing"),
            Err(HandshakeError::Bencode(_))
        ));
    }

    #[test]
    fn huge_m_dict_is_capped() {
        let mut payload = b"d1:md".to_vec();
        for i in 0..1000 {
            let name = format!("ext{i:04}");
            payload.extend_from_slice(format!("{}:{name}i{}e", name.len(), i % 256).as_bytes());
        }
        payload.extend_from_slice(b"ee");
        let hs = ExtHandshake::decode(&payload).unwrap();
        assert_eq!(hs.m.len(), MAX_EXTENSION_NAMES);
    }

    #[test]
    fn a_client_name_that_grows_when_made_valid_utf8_is_dropped() {
        // 100 invalid bytes become 300 bytes of U+FFFD: over the limit once converted.
        let mut payload = b"d1:md6:ut_pexi1ee1:v100:".to_vec();
        payload.extend([0xff; 100]);
        payload.push(b'e');
        let hs = ExtHandshake::decode(&payload).unwrap();
        assert_eq!(hs.client, None);
        assert_eq!(ExtHandshake::decode(&hs.encode()).unwrap(), hs);
        // A few invalid bytes fit: the name keeps its replacement characters.
        let hs = ExtHandshake::decode(b"d1:v3:a\xffbe").unwrap();
        assert_eq!(hs.client.as_deref(), Some("a\u{fffd}b"));
        assert_eq!(ExtHandshake::decode(&hs.encode()).unwrap(), hs);
    }

    #[test]
    fn unknown_keys_round_trip() {
        let input = b"d12:complete_agoi-1e1:md6:ut_pexi1ee1:v4:test1:zli1eee";
        let hs = ExtHandshake::decode(input).unwrap();
        assert_eq!(hs.extra.len(), 2);
        assert_eq!(hs.encode(), input);
    }

    #[test]
    fn merge_updates_single_extensions() {
        let mut hs = ExtHandshake::decode(b"d1:md11:ut_metadatai2e6:ut_pexi1eee").unwrap();
        hs.merge(ExtHandshake::decode(b"d1:md6:ut_pexi0ee4:reqqi5ee").unwrap());
        assert_eq!(hs.extension_id("ut_pex"), None);
        assert_eq!(hs.extension_id("ut_metadata"), Some(2));
        assert_eq!(hs.reqq, Some(5));
    }

    fn arb_handshake() -> impl Strategy<Value = ExtHandshake> {
        (
            prop::collection::btree_map("[a-z_]{1,12}", any::<u8>(), 0..8),
            prop::option::of("[ -~]{0,20}"),
            prop::option::of(1..=u16::MAX),
            prop::option::of(any::<IpAddr>()),
            prop::option::of(any::<Ipv4Addr>()),
            prop::option::of(any::<Ipv6Addr>()),
            prop::option::of(any::<u32>()),
            prop::option::of(0..=i64::MAX as u64),
            prop::option::of(any::<bool>()),
            prop::collection::btree_map("x[a-z]{1,6}", any::<i64>(), 0..4),
        )
            .prop_map(
                |(m, client, listen_port, your_ip, ipv4, ipv6, reqq, size, up, extra)| {
                    ExtHandshake {
                        m,
                        client,
                        listen_port,
                        your_ip,
                        ipv4,
                        ipv6,
                        reqq,
                        metadata_size: size,
                        upload_only: up,
                        extra: extra
                            .into_iter()
                            .map(|(k, v)| (k.into_bytes(), OwnedValue::Int(v)))
                            .collect(),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(hs in arb_handshake()) {
            prop_assert_eq!(ExtHandshake::decode(&hs.encode()).unwrap(), hs);
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = ExtHandshake::decode(&bytes);
        }
    }
}
