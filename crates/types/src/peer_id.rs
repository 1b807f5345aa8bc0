//! Peer ids and the client names and versions they encode (BEP 20).

use std::fmt;

use crate::ParseError;
use crate::bytes::fixed_bytes;

/// The first eight bytes of every peer id this project sends: Azureus style, client
/// code `RW` ("Rust WebTorrent"), then the crate version as four libtorrent-style
/// digits (`0`–`9`, then `A`–`Z` for 10–35): major, minor, patch, `0`.
///
/// `RW` appears in no published BEP 20 client table we know of; [`PeerId::client`]
/// names it `webtorrent-rs`. A unit test keeps the digits in step with the crate version.
pub const OUR_PEER_ID_PREFIX: [u8; 8] = *b"-RW0100-";

/// The name [`PeerId::client`] gives to peer ids starting with [`OUR_PEER_ID_PREFIX`]'s code.
pub const OUR_CLIENT_NAME: &str = "webtorrent-rs";

/// A 20-byte peer id, as sent in handshakes and tracker announces.
///
/// `Display` and `Debug` show the bytes as ASCII with non-printable bytes escaped
/// (`-qB4520-\x01…`); [`PeerId::to_hex`] gives an exact form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PeerId(pub [u8; 20]);

/// A client implementation recognised from a peer id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Client {
    /// The client's name, e.g. `"qBittorrent"` or `"libtorrent (Rasterbar)"`.
    pub name: &'static str,
    /// The version as the client writes it, e.g. `"4.5.2"`; empty when the peer id
    /// carries none (or one that could not be decoded).
    pub version: String,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.version.is_empty() {
            f.write_str(self.name)
        } else {
            write!(f, "{} {}", self.name, self.version)
        }
    }
}

fixed_bytes!(PeerId, 20, "peer id");

impl PeerId {
    /// Builds a peer id from a prefix (such as [`OUR_PEER_ID_PREFIX`]) followed by
    /// the caller's random bytes: the first `prefix.len()` bytes of `random` are
    /// replaced by the prefix. A prefix longer than 20 bytes is cut to 20.
    ///
    /// Randomness is the caller's job, so that this crate stays free of I/O.
    pub fn new(prefix: &[u8], random: [u8; 20]) -> Self {
        let mut id = random;
        let n = prefix.len().min(Self::LEN);
        id[..n].copy_from_slice(&prefix[..n]);
        Self(id)
    }

    /// Our own peer id: [`OUR_PEER_ID_PREFIX`] followed by 12 random bytes.
    pub fn ours(random: [u8; 12]) -> Self {
        let mut id = [0; 20];
        id[..8].copy_from_slice(&OUR_PEER_ID_PREFIX);
        id[8..].copy_from_slice(&random);
        Self(id)
    }

    /// Recognises the client that made this peer id, following BEP 20's conventions:
    ///
    /// - Azureus style `-XXvvvv-` (a table of common two-letter codes, each with its
    ///   own version rule, e.g. `-qB4520-` is qBittorrent 4.5.2, `-LT2080-`
    ///   libtorrent 2.0.8, `-TR3000-` Transmission 3.00, `-WW0102-` WebTorrent 1.2);
    /// - aria2's `A2-1-36-0-` and old `-aria2-`;
    /// - Mainline style `M4-3-6--` (and `Q` for Queen Bee);
    /// - Shad0w style `S58B-----`: one letter, then up to five version characters,
    ///   each a number `0`–`9`, `A`–`Z` (10–35), `a`–`z` (36–61), `.` (62).
    ///
    /// Returns `None` for ids that follow none of these or use an unknown code.
    pub fn client(&self) -> Option<Client> {
        let id = &self.0;
        if id[0] == b'-'
            && id[7] == b'-'
            && let Some(client) = azureus(id)
        {
            return Some(client);
        }
        if id.starts_with(b"-aria2-") {
            return Some(Client {
                name: "aria2",
                version: String::new(),
            });
        }
        if let Some(rest) = id.strip_prefix(b"A2-")
            && let Some((version, _)) = dashed_version(rest)
        {
            return Some(Client {
                name: "aria2",
                version,
            });
        }
        mainline(id).or_else(|| shadow(id))
    }
}

/// How an Azureus-style client writes its version into the four characters.
#[derive(Clone, Copy)]
enum Version {
    /// libtorrent's `generate_fingerprint`: major, minor, revision, tag as base-36
    /// digits; printed `major.minor.revision`, plus `.tag` when the tag is not 0.
    Libtorrent,
    /// Four digits printed `a.b.c.d` (Azureus/Vuze, BiglyBT).
    FourDigits,
    /// Three digits and a release letter (µTorrent, BitTorrent): `B` beta, `A` alpha.
    ThreeDigitsMnemonic,
    /// Transmission: `-TR2940-` is 2.94 (and `Z`/`X` a later dev/beta build, shown
    /// `+`); from 4.0, base-62 digits major, minor, patch and `0`/`B`/`Z` for
    /// release/beta/dev. `000x` and `00xy` are the oldest forms (0.x, 0.xy).
    Transmission,
    /// WebTorrent: two decimal digits of major then two of minor (`0102` is 1.2).
    WebTorrent,
    /// BitComet: the first digit is ignored, then `major.minor2` (`0201` is 2.01).
    SkipFirst,
    /// No version is encoded.
    None,
}

const AZUREUS_CLIENTS: &[(&[u8; 2], &str, Version)] = &[
    (b"AZ", "Azureus", Version::FourDigits),
    (b"BC", "BitComet", Version::SkipFirst),
    (b"BF", "Bitflu", Version::None),
    (b"BG", "BTG", Version::FourDigits),
    (b"BI", "BiglyBT", Version::FourDigits),
    (b"BT", "BitTorrent", Version::ThreeDigitsMnemonic),
    (b"DE", "Deluge", Version::Libtorrent),
    (b"LT", "libtorrent (Rasterbar)", Version::Libtorrent),
    (b"LW", "LimeWire", Version::None),
    (b"lt", "libTorrent (Rakshasa)", Version::Libtorrent),
    (b"OS", "OneSwarm", Version::FourDigits),
    (b"qB", "qBittorrent", Version::Libtorrent),
    (b"RW", OUR_CLIENT_NAME, Version::Libtorrent),
    (b"SD", "Thunder (Xunlei)", Version::None),
    (b"SZ", "Shareaza", Version::FourDigits),
    (b"TR", "Transmission", Version::Transmission),
    (b"UM", "µTorrent Mac", Version::ThreeDigitsMnemonic),
    (b"UT", "µTorrent", Version::ThreeDigitsMnemonic),
    (b"UW", "µTorrent Web", Version::ThreeDigitsMnemonic),
    (b"WD", "WebTorrent Desktop", Version::WebTorrent),
    (b"WW", "WebTorrent", Version::WebTorrent),
    (b"XL", "Thunder (Xunlei)", Version::None),
];

/// A base-62 digit: `0`–`9`, `A`–`Z` (10–35), `a`–`z` (36–61).
fn base62(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 36),
        _ => None,
    }
}

fn decimal(c: u8) -> Option<u32> {
    c.is_ascii_digit().then(|| u32::from(c - b'0'))
}

fn azureus(id: &[u8; 20]) -> Option<Client> {
    let code = [id[1], id[2]];
    let &(_, name, rule) = AZUREUS_CLIENTS.iter().find(|(c, _, _)| **c == code)?;
    let v = [id[3], id[4], id[5], id[6]];
    let version = azureus_version(rule, v).unwrap_or_default();
    Some(Client { name, version })
}

fn azureus_version(rule: Version, v: [u8; 4]) -> Option<String> {
    let digits = |f: fn(u8) -> Option<u32>| -> Option<[u32; 4]> {
        Some([f(v[0])?, f(v[1])?, f(v[2])?, f(v[3])?])
    };
    Some(match rule {
        Version::Libtorrent => {
            let [a, b, c, d] = digits(base62)?;
            if d == 0 {
                format!("{a}.{b}.{c}")
            } else {
                format!("{a}.{b}.{c}.{d}")
            }
        }
        Version::FourDigits => {
            let [a, b, c, d] = digits(base62)?;
            format!("{a}.{b}.{c}.{d}")
        }
        Version::ThreeDigitsMnemonic => {
            let (a, b, c) = (base62(v[0])?, base62(v[1])?, base62(v[2])?);
            match v[3] {
                b'B' => format!("{a}.{b}.{c} Beta"),
                b'A' => format!("{a}.{b}.{c} Alpha"),
                _ => format!("{a}.{b}.{c}"),
            }
        }
        Version::Transmission => transmission_version(v)?,
        Version::WebTorrent => {
            let [a, b, c, d] = digits(decimal)?;
            format!("{}.{}", a * 10 + b, c * 10 + d)
        }
        Version::SkipFirst => {
            let [_, b, c, d] = digits(decimal)?;
            format!("{b}.{c}{d}")
        }
        Version::None => return None,
    })
}

fn transmission_version(v: [u8; 4]) -> Option<String> {
    if v.starts_with(b"000") {
        return Some(format!("0.{}", decimal(v[3])?));
    }
    if v.starts_with(b"00") {
        return Some(format!("0.{}{}", decimal(v[2])?, decimal(v[3])?));
    }
    if v[0] <= b'3' {
        // 0.80 up to 3.00: one digit of major, two of minor, then a build letter.
        let (major, m1, m2) = (decimal(v[0])?, decimal(v[1])?, decimal(v[2])?);
        let suffix = if matches!(v[3], b'Z' | b'X') { "+" } else { "" };
        return Some(format!("{major}.{m1}{m2}{suffix}"));
    }
    let (major, minor, patch) = (base62(v[0])?, base62(v[1])?, base62(v[2])?);
    let suffix = match v[3] {
        b'B' => " Beta",
        b'Z' => " Dev",
        _ => "",
    };
    Some(format!("{major}.{minor}.{patch}{suffix}"))
}

/// Parses `N-N-N-` (decimal numbers) at the start of `bytes`, returning the dotted
/// version and the number of bytes consumed (including the final dash).
fn dashed_version(bytes: &[u8]) -> Option<(String, usize)> {
    let mut parts = Vec::with_capacity(3);
    let mut pos = 0;
    for _ in 0..3 {
        let start = pos;
        while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        if pos == start || pos - start > 3 || bytes.get(pos) != Some(&b'-') {
            return None;
        }
        // At most three ASCII digits, so both conversions succeed.
        parts.push(
            std::str::from_utf8(&bytes[start..pos])
                .ok()?
                .parse::<u32>()
                .ok()?,
        );
        pos += 1;
    }
    Some((format!("{}.{}.{}", parts[0], parts[1], parts[2]), pos))
}

/// Mainline style: `M4-3-6--`, `M4-20-8-`; the first eight bytes hold one letter, the
/// dashed version and `-` padding.
fn mainline(id: &[u8; 20]) -> Option<Client> {
    let name = match id[0] {
        b'M' => "Mainline",
        b'Q' => "Queen Bee",
        _ => return None,
    };
    let (version, used) = dashed_version(&id[1..])?;
    let end = 1 + used;
    (end <= 8 && id[end..8].iter().all(|&b| b == b'-')).then_some(Client { name, version })
}

fn shadow_digit(c: u8) -> Option<u32> {
    if c == b'.' { Some(62) } else { base62(c) }
}

/// Shad0w style: one letter, up to five version characters padded with `-`, then three
/// characters that are usually `---`.
fn shadow(id: &[u8; 20]) -> Option<Client> {
    let name = match id[0] {
        b'A' => "ABC",
        b'O' => "Osprey Permaseed",
        b'Q' => "BTQueue",
        b'R' => "Tribler",
        b'S' => "Shad0w",
        b'T' => "BitTornado",
        b'U' => "UPnP NAT Bit Torrent",
        _ => return None,
    };
    let field = &id[1..6];
    let len = field.iter().position(|&b| b == b'-').unwrap_or(field.len());
    // The first version digit must be a plain digit, padding must run to the end of
    // the field, and a full five-character version must be followed by "---"; this
    // keeps random ids from matching.
    if len == 0
        || !field[0].is_ascii_digit()
        || !field[len..].iter().all(|&b| b == b'-')
        || (len == field.len() && &id[6..9] != b"---")
    {
        return None;
    }
    let numbers: Option<Vec<String>> = field[..len]
        .iter()
        .map(|&c| shadow_digit(c).map(|n| n.to_string()))
        .collect();
    Some(Client {
        name,
        version: numbers?.join("."),
    })
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            write!(f, "{}", std::ascii::escape_default(b))?;
        }
        Ok(())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId(\"{self}\")")
    }
}

impl From<[u8; 20]> for PeerId {
    fn from(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }
}

impl TryFrom<&[u8]> for PeerId {
    type Error = ParseError;

    fn try_from(bytes: &[u8]) -> Result<Self, ParseError> {
        Self::from_bytes(bytes)
    }
}

impl AsRef<[u8]> for PeerId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(prefix: &[u8]) -> PeerId {
        PeerId::new(prefix, *b"\x01\x02\x03\x04\x05\x06\x07\x08abcdefghijkl")
    }

    fn client(prefix: &[u8]) -> Option<(&'static str, String)> {
        id(prefix).client().map(|c| (c.name, c.version))
    }

    fn is(prefix: &[u8], name: &str, version: &str) {
        let label = String::from_utf8_lossy(prefix);
        assert_eq!(client(prefix), Some((name, version.to_owned())), "{label}");
    }

    #[test]
    fn azureus_style() {
        is(b"-qB4520-", "qBittorrent", "4.5.2");
        is(b"-qB46A0-", "qBittorrent", "4.6.10");
        is(b"-LT2080-", "libtorrent (Rasterbar)", "2.0.8");
        is(b"-LT12J0-", "libtorrent (Rasterbar)", "1.2.19");
        is(b"-LT2110-", "libtorrent (Rasterbar)", "2.1.1");
        is(b"-lt0D80-", "libTorrent (Rakshasa)", "0.13.8");
        is(b"-DE13F0-", "Deluge", "1.3.15");
        is(b"-AZ2060-", "Azureus", "2.0.6.0");
        is(b"-BI3400-", "BiglyBT", "3.4.0.0");
        is(b"-UT355S-", "µTorrent", "3.5.5");
        is(b"-UT170B-", "µTorrent", "1.7.0 Beta");
        is(b"-BT7A0S-", "BitTorrent", "7.10.0");
        is(b"-WW0102-", "WebTorrent", "1.2");
        is(b"-WW0200-", "WebTorrent", "2.0");
        is(b"-WW1015-", "WebTorrent", "10.15");
        is(b"-WD0021-", "WebTorrent Desktop", "0.21");
        is(b"-BC0201-", "BitComet", "2.01");
        is(b"-XL0012-", "Thunder (Xunlei)", "");
        is(b"-RW0100-", OUR_CLIENT_NAME, "0.1.0");
    }

    #[test]
    fn transmission_versions() {
        is(b"-TR0006-", "Transmission", "0.6");
        is(b"-TR0072-", "Transmission", "0.72");
        is(b"-TR1330-", "Transmission", "1.33");
        is(b"-TR133Z-", "Transmission", "1.33+");
        is(b"-TR2940-", "Transmission", "2.94");
        is(b"-TR3000-", "Transmission", "3.00");
        is(b"-TR400B-", "Transmission", "4.0.0 Beta");
        is(b"-TR40aZ-", "Transmission", "4.0.36 Dev");
        is(b"-TR4060-", "Transmission", "4.0.6");
    }

    #[test]
    fn other_styles() {
        is(b"A2-1-36-0-", "aria2", "1.36.0");
        is(b"-aria2-", "aria2", "");
        is(b"M4-3-6--", "Mainline", "4.3.6");
        is(b"M4-20-8-", "Mainline", "4.20.8");
        is(b"Q1-0-0--", "Queen Bee", "1.0.0");
        is(b"S58B-----", "Shad0w", "5.8.11");
        is(b"T03I-----", "BitTornado", "0.3.18");
        is(b"T03I.----", "BitTornado", "0.3.18.62");
    }

    #[test]
    fn unknown_or_malformed() {
        assert_eq!(client(b"-ZZ1234-"), None);
        assert_eq!(client(b"\x01\x02\x03"), None);
        assert_eq!(client(b"M4-3-6-x"), None);
        assert_eq!(client(b"M4-3-6"), None);
        assert_eq!(client(b"S-8B-----"), None);
        assert_eq!(client(b"S5-8-----"), None);
        assert_eq!(client(b"S58B1xyz"), None);
        // Known code, undecodable version: the name is still reported.
        assert_eq!(client(b"-qB4.2.-"), Some(("qBittorrent", String::new())));
        assert_eq!(client(b"-WWab12-"), Some(("WebTorrent", String::new())));
    }

    #[test]
    fn our_prefix_tracks_crate_version() {
        let digit = |v: &str| {
            let n: u32 = v.parse().unwrap();
            char::from_digit(n, 36).unwrap().to_ascii_uppercase()
        };
        let expected = format!(
            "-RW{}{}{}0-",
            digit(env!("CARGO_PKG_VERSION_MAJOR")),
            digit(env!("CARGO_PKG_VERSION_MINOR")),
            digit(env!("CARGO_PKG_VERSION_PATCH")),
        );
        assert_eq!(std::str::from_utf8(&OUR_PEER_ID_PREFIX).unwrap(), expected);
        let ours = PeerId::ours([7; 12]);
        assert_eq!(&ours.0[..8], &OUR_PEER_ID_PREFIX);
        assert_eq!(&ours.0[8..], &[7; 12]);
        let client = ours.client().unwrap();
        assert_eq!(client.name, OUR_CLIENT_NAME);
        assert_eq!(
            client.to_string(),
            format!("{OUR_CLIENT_NAME} {}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn construction_and_text() {
        let long = PeerId::new(&[b'x'; 30], [0; 20]);
        assert_eq!(long.0, [b'x'; 20]);
        let p = PeerId::new(
            b"-qB4520-",
            *b"\x00\x00\x00\x00\x00\x00\x00\x00abc\"\\\x7fxyz123",
        );
        assert_eq!(p.to_string(), "-qB4520-abc\\\"\\\\\\x7fxyz123");
        assert_eq!(
            format!("{p:?}"),
            "PeerId(\"-qB4520-abc\\\"\\\\\\x7fxyz123\")"
        );
        assert_eq!(PeerId::from_hex(&p.to_hex()).unwrap(), p);
        assert_eq!(
            PeerId::from_bytes(&[0; 21]),
            Err(ParseError::ByteLength {
                expected: 20,
                actual: 21
            })
        );
    }

    proptest! {
        #[test]
        fn client_never_panics(bytes in any::<[u8; 20]>()) {
            let _ = PeerId(bytes).client();
        }

        #[test]
        fn client_never_panics_on_az_shapes(code in "[A-Za-z~]{2}", v in "[0-9A-Za-z.-]{4}", rest in any::<[u8; 12]>()) {
            let mut prefix = format!("-{code}{v}-").into_bytes();
            prefix.extend_from_slice(&rest);
            let _ = PeerId::from_bytes(&prefix).unwrap().client();
        }

        #[test]
        fn hex_round_trip(bytes in any::<[u8; 20]>()) {
            let p = PeerId(bytes);
            prop_assert_eq!(PeerId::from_hex(&p.to_hex()).unwrap(), p);
        }
    }
}
