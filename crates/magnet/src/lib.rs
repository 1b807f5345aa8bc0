//! Magnet URIs for BitTorrent v1, v2 and hybrid torrents: parse and format.
//!
//! Parameters understood (BEP 9, BEP 52, BEP 53, BEP 46 and common practice):
//!
//! | key | field | notes |
//! |---|---|---|
//! | `xt=urn:btih:` | [`Magnet::v1`] | 40 hex digits or 32 base32 characters, any case |
//! | `xt=urn:btmh:` | [`Magnet::v2`] | multihash `1220` + 64 hex digits (sha2-256) |
//! | `dn` | [`Magnet::display_name`] | |
//! | `xl` | [`Magnet::exact_length`] | decimal |
//! | `tr` | [`Magnet::trackers`] | order kept |
//! | `ws` | [`Magnet::web_seeds`] | |
//! | `as` | [`Magnet::acceptable_sources`] | |
//! | `xs` | [`Magnet::exact_sources`] | `urn:btpk:` + 64 hex (BEP 46) is checked |
//! | `s` | [`Magnet::salt`] | hex (BEP 46) |
//! | `x.pe` | [`Magnet::peers`] | `ip:port`, `[ipv6]:port`, `host:port` |
//! | `so` | [`Magnet::select_only`] | `0,2,4-6` (BEP 53); repeated `so` are joined |
//!
//! `xt`, `tr`, `ws`, `as` and `xs` may also be numbered (`xt.1`, `tr.2`). Both `xt`
//! forms may appear (a hybrid torrent); a repeated identical hash is ignored, a
//! different one is an error. A magnet needs an info-hash, or an `xs=urn:btpk:`
//! public key (a BEP 46 mutable torrent).
//!
//! Everything else is kept, in order, in [`Magnet::extra`]: unknown keys, `xt` with
//! other URNs (`urn:ed2k:`, …), and repeats of the single-valued `dn`, `xl` and `s`
//! (the first one wins). Keys are matched after percent-decoding, case-sensitively.
//!
//! # Percent-encoding
//!
//! Keys and values are percent-decoded and `+` is read as a space, as libtorrent and
//! HTML forms do, so a literal `+` must be written `%2B`. An invalid escape, or text
//! that is not UTF-8 once decoded, is an error.
//!
//! Formatting escapes only what must be escaped, as `%XY` with uppercase hex, so URLs
//! stay readable: `&`, `=`, `+`, `#`, `%`, spaces, brackets, other characters RFC 3986
//! does not allow in a query, non-ASCII and control bytes. A space in `dn` is written
//! `+` (as WebTorrent does), elsewhere `%20`.
//!
//! # Formatting
//!
//! The order follows libtorrent and WebTorrent: `magnet:?xt=urn:btih:<hex>`,
//! `&xt=urn:btmh:1220<hex>`, `&dn=`, `&xl=`, `&tr=`…, `&ws=`…, `&as=`…, `&xs=`…,
//! `&s=`, `&x.pe=`…, `&so=`, then the extra parameters. For every magnet that
//! parses, formatting and parsing again gives an equal value.
//!
//! # Parsing details
//!
//! Surrounding ASCII whitespace is ignored, the scheme is case-insensitive, and empty
//! parameters (`&&`) are skipped. A parameter without `=` has an empty value.
//!
//! # Example
//!
//! ```
//! use webtorrent_magnet::Magnet;
//!
//! let uri = "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36\
//!            &dn=Leaves+of+Grass+by+Walt+Whitman.epub\
//!            &tr=udp%3A%2F%2Ftracker.example4.com%3A80\
//!            &tr=wss%3A%2F%2Ftracker.example.org";
//! let magnet = Magnet::parse(uri)?;
//! assert_eq!(magnet.display_name.as_deref(), Some("Leaves of Grass by Walt Whitman.epub"));
//! assert_eq!(magnet.trackers, ["udp://tracker.example4.com:80", "wss://tracker.example.org"]);
//! let wire = magnet.info_hashes().expect("has an info-hash").wire();
//! assert_eq!(wire.to_hex(), "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36");
//!
//! assert_eq!(
//!     magnet.to_string(),
//!     "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36\
//!      &dn=Leaves+of+Grass+by+Walt+Whitman.epub\
//!      &tr=udp://tracker.example4.com:80&tr=wss://tracker.example.org"
//! );
//! assert_eq!(Magnet::parse(&magnet.to_string())?, magnet);
//! # Ok::<(), webtorrent_magnet::MagnetError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod peer;
mod percent;
mod select;

use std::fmt::{self, Write as _};
use std::str::FromStr;

pub use error::MagnetError;
pub use peer::PeerAddr;
pub use select::FileRange;
use webtorrent_types::{InfoHashV1, InfoHashV2, InfoHashes, hex};

const BTIH: &str = "urn:btih:";
const BTMH: &str = "urn:btmh:";
const BTPK: &str = "urn:btpk:";

/// A parsed magnet URI. See the [crate documentation](crate) for the parameters.
///
/// `Display` formats it back to a URI; [`FromStr`] and [`Magnet::parse`] parse one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Magnet {
    /// The v1 info-hash (`xt=urn:btih:`).
    pub v1: Option<InfoHashV1>,
    /// The v2 info-hash (`xt=urn:btmh:1220…`).
    pub v2: Option<InfoHashV2>,
    /// The display name (`dn`).
    pub display_name: Option<String>,
    /// The exact length of the content in bytes (`xl`).
    pub exact_length: Option<u64>,
    /// Tracker URLs (`tr`), in the order given.
    pub trackers: Vec<String>,
    /// Web seed URLs (`ws`, BEP 19).
    pub web_seeds: Vec<String>,
    /// Acceptable sources (`as`): direct download URLs.
    pub acceptable_sources: Vec<String>,
    /// Exact sources (`xs`), including `urn:btpk:<64 hex>` for BEP 46.
    pub exact_sources: Vec<String>,
    /// The BEP 46 salt (`s`, hex in the URI), decoded to bytes.
    pub salt: Option<Vec<u8>>,
    /// Peers to contact directly (`x.pe`).
    pub peers: Vec<PeerAddr>,
    /// The files to download (`so`, BEP 53); empty means all.
    pub select_only: Vec<FileRange>,
    /// Every other parameter, decoded, in order: see the [crate documentation](crate).
    ///
    /// Keys stored here should be ones that parsing would also put here, or a
    /// formatted magnet will not parse back to the same value.
    pub extra: Vec<(String, String)>,
}

impl Magnet {
    /// A magnet with the given info-hashes and nothing else.
    pub fn new(hashes: InfoHashes) -> Self {
        Self {
            v1: hashes.v1,
            v2: hashes.v2,
            ..Self::default()
        }
    }

    /// Parses a magnet URI.
    ///
    /// # Errors
    /// See [`MagnetError`]; every malformed part is an error rather than being skipped.
    pub fn parse(uri: &str) -> Result<Self, MagnetError> {
        let trimmed = uri.trim_matches(|c: char| c.is_ascii_whitespace());
        let lead = uri.len()
            - uri
                .trim_start_matches(|c: char| c.is_ascii_whitespace())
                .len();
        let scheme = trimmed.as_bytes().get(..8).ok_or(MagnetError::NotMagnet)?;
        if !scheme.eq_ignore_ascii_case(b"magnet:?") {
            return Err(MagnetError::NotMagnet);
        }
        let mut magnet = Self::default();
        let mut offset = lead + 8;
        // The first eight bytes are the ASCII "magnet:?", so byte 8 is a char boundary.
        for param in trimmed[8..].split('&') {
            let start = offset;
            offset += param.len() + 1;
            if param.is_empty() {
                continue;
            }
            let (raw_key, raw_value) = param.split_once('=').unwrap_or((param, ""));
            let key = percent::decode(raw_key, start, raw_key)?;
            let value = percent::decode(raw_value, start + raw_key.len() + 1, raw_key)?;
            magnet.apply(key, value)?;
        }
        if magnet.v1.is_none() && magnet.v2.is_none() && magnet.public_key().is_none() {
            return Err(MagnetError::MissingInfoHash);
        }
        Ok(magnet)
    }

    /// Stores one decoded parameter.
    fn apply(&mut self, key: String, value: String) -> Result<(), MagnetError> {
        match base_key(&key) {
            "xt" => return self.apply_xt(key, value),
            "dn" if self.display_name.is_none() => self.display_name = Some(value),
            "xl" if self.exact_length.is_none() => {
                let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                match value.parse() {
                    Ok(n) if digits => self.exact_length = Some(n),
                    _ => return Err(MagnetError::InvalidExactLength { value }),
                }
            }
            "s" if self.salt.is_none() => match hex::decode(&value) {
                Ok(salt) => self.salt = Some(salt),
                Err(source) => return Err(MagnetError::InvalidSalt { value, source }),
            },
            "tr" => self.trackers.push(value),
            "ws" => self.web_seeds.push(value),
            "as" => self.acceptable_sources.push(value),
            "xs" => {
                if let Some(key) = strip_prefix_ignore_case(&value, BTPK)
                    && let Err(source) = hex::decode_to_slice(key, &mut [0; 32])
                {
                    return Err(MagnetError::InvalidPublicKey { value, source });
                }
                self.exact_sources.push(value);
            }
            "x.pe" => self.peers.push(value.parse()?),
            "so" => self.select_only.extend(FileRange::parse_list(&value)?),
            _ => self.extra.push((key, value)),
        }
        Ok(())
    }

    fn apply_xt(&mut self, key: String, value: String) -> Result<(), MagnetError> {
        if let Some(text) = strip_prefix_ignore_case(&value, BTIH) {
            let hash =
                text.parse::<InfoHashV1>()
                    .map_err(|source| MagnetError::InvalidInfoHash {
                        value: value.clone(),
                        source,
                    })?;
            set_once(&mut self.v1, hash)
        } else if let Some(text) = strip_prefix_ignore_case(&value, BTMH) {
            let hash = InfoHashV2::from_multihash_hex(text).map_err(|source| {
                MagnetError::InvalidInfoHash {
                    value: value.clone(),
                    source,
                }
            })?;
            set_once(&mut self.v2, hash)
        } else {
            self.extra.push((key, value));
            Ok(())
        }
    }

    /// The info-hashes, if the magnet has any (a BEP 46 magnet may have none).
    pub fn info_hashes(&self) -> Option<InfoHashes> {
        InfoHashes::new(self.v1, self.v2)
    }

    /// The BEP 46 public key of the first `xs=urn:btpk:` exact source, if any.
    pub fn public_key(&self) -> Option<[u8; 32]> {
        self.exact_sources.iter().find_map(|source| {
            let text = strip_prefix_ignore_case(source, BTPK)?;
            let mut key = [0; 32];
            hex::decode_to_slice(text, &mut key).ok()?;
            Some(key)
        })
    }

    /// Whether the file with this index is to be downloaded: true when
    /// [`Magnet::select_only`] is empty or one of its ranges holds the index.
    pub fn is_selected(&self, file_index: u32) -> bool {
        self.select_only.is_empty() || self.select_only.iter().any(|r| r.contains(file_index))
    }

    /// The URI text; the same as `to_string()`.
    pub fn to_uri(&self) -> String {
        self.to_string()
    }
}

/// `xt.1` → `xt`, for the keys that may be numbered; every other key unchanged.
fn base_key(key: &str) -> &str {
    match key.split_once('.') {
        Some((base @ ("xt" | "tr" | "ws" | "as" | "xs"), n))
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => key,
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    // `head` ends on a char boundary, so the rest is a valid slice.
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Stores `hash` unless a different one is already there.
fn set_once<H: PartialEq + fmt::Display>(slot: &mut Option<H>, hash: H) -> Result<(), MagnetError> {
    match slot {
        Some(first) if *first != hash => Err(MagnetError::ConflictingInfoHash {
            first: first.to_string(),
            second: hash.to_string(),
        }),
        Some(_) => Ok(()),
        None => {
            *slot = Some(hash);
            Ok(())
        }
    }
}

impl FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(uri: &str) -> Result<Self, MagnetError> {
        Self::parse(uri)
    }
}

/// Writes `&` before every parameter but the first.
struct Params<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl Params<'_, '_> {
    fn start(&mut self, key: &str) -> fmt::Result {
        if !self.first {
            self.f.write_char('&')?;
        }
        self.first = false;
        percent::encode(self.f, key, false)?;
        self.f.write_char('=')
    }

    fn text(&mut self, key: &str, value: &str, space_as_plus: bool) -> fmt::Result {
        self.start(key)?;
        percent::encode(self.f, value, space_as_plus)
    }

    fn all(&mut self, key: &str, values: &[String]) -> fmt::Result {
        values.iter().try_for_each(|v| self.text(key, v, false))
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("magnet:?")?;
        let mut p = Params { f, first: true };
        if let Some(v1) = &self.v1 {
            p.start("xt")?;
            write!(p.f, "{BTIH}{v1}")?;
        }
        if let Some(v2) = &self.v2 {
            p.start("xt")?;
            write!(p.f, "{BTMH}{}", v2.to_multihash_hex())?;
        }
        if let Some(name) = &self.display_name {
            p.text("dn", name, true)?;
        }
        if let Some(length) = self.exact_length {
            p.start("xl")?;
            write!(p.f, "{length}")?;
        }
        p.all("tr", &self.trackers)?;
        p.all("ws", &self.web_seeds)?;
        p.all("as", &self.acceptable_sources)?;
        p.all("xs", &self.exact_sources)?;
        if let Some(salt) = &self.salt {
            p.text("s", &hex::encode(salt), false)?;
        }
        for peer in &self.peers {
            p.text("x.pe", &peer.to_string(), false)?;
        }
        if let Some((head, tail)) = self.select_only.split_first() {
            p.start("so")?;
            write!(p.f, "{head}")?;
            for range in tail {
                write!(p.f, ",{range}")?;
            }
        }
        for (key, value) in &self.extra {
            p.text(key, value, false)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36";
    const V2: &str = "caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";

    #[test]
    fn base_keys() {
        assert_eq!(base_key("xt"), "xt");
        assert_eq!(base_key("xt.1"), "xt");
        assert_eq!(base_key("tr.12"), "tr");
        assert_eq!(base_key("xt."), "xt.");
        assert_eq!(base_key("xt.a"), "xt.a");
        assert_eq!(base_key("dn.1"), "dn.1");
        assert_eq!(base_key("x.pe"), "x.pe");
    }

    #[test]
    fn scheme() {
        for bad in [
            "",
            "magnet:",
            "magnet:x",
            "http://x?xt=urn:btih:00",
            "magnet:é?",
            "magne",
        ] {
            assert_eq!(Magnet::parse(bad), Err(MagnetError::NotMagnet), "{bad}");
        }
        let m = Magnet::parse(&format!("  MAGNET:?xt=urn:btih:{V1}\n")).unwrap();
        assert_eq!(m.v1.unwrap().to_hex(), V1);
    }

    #[test]
    fn error_offsets_count_from_the_whole_input() {
        assert_eq!(
            Magnet::parse(&format!(" magnet:?xt=urn:btih:{V1}&dn=a%zz")),
            Err(MagnetError::InvalidPercentEscape {
                offset: 9 + 52 + 1 + 3 + 1
            })
        );
        assert_eq!(
            Magnet::parse("magnet:?d%zz=1"),
            Err(MagnetError::InvalidPercentEscape { offset: 9 })
        );
    }

    #[test]
    fn hybrid_formats_both() {
        let m = Magnet::new(InfoHashes::hybrid(V1.parse().unwrap(), V2.parse().unwrap()));
        assert_eq!(
            m.to_uri(),
            format!("magnet:?xt=urn:btih:{V1}&xt=urn:btmh:1220{V2}")
        );
    }
}

/// The README examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
