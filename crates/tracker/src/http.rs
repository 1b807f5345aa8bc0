//! HTTP tracker protocol (BEP 3, 7, 23, 48), without I/O: announce and scrape
//! URLs, and bencoded responses in both directions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use webtorrent_bencode::{Dict, OwnedValue, Value};
use webtorrent_types::{InfoHashV1, PeerId};

use crate::{
    AnnounceRequest, AnnounceResponse, DEFAULT_INTERVAL, Peer, ScrapeResponse, ScrapeStats,
    TrackerError,
};

/// The most peers accepted from one announce response (IPv4 and IPv6
/// together). A 4 MiB body of compact IPv4 peers would hold about 700 000.
pub const MAX_PEERS: usize = 20_000;

/// The most torrents accepted from one scrape response.
pub const MAX_SCRAPE_FILES: usize = 20_000;

/// Appends `bytes` to `out`, percent-encoding every byte outside the RFC 3986
/// unreserved set (`A-Z a-z 0-9 - . _ ~`).
pub fn percent_encode_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Splits a URL into the part before the fragment and the fragment (with
/// its `#`).
fn split_fragment(url: &str) -> (&str, &str) {
    url.find('#').map_or((url, ""), |i| url.split_at(i))
}

/// Appends `name=value` query parameters to a URL, keeping its own query
/// and fragment.
fn append_query(base: &str, query: &str) -> String {
    let (head, fragment) = split_fragment(base);
    let mut url = String::with_capacity(head.len() + query.len() + fragment.len() + 1);
    url.push_str(head);
    if !head.contains('?') {
        url.push('?');
    } else if !head.ends_with('?') && !head.ends_with('&') {
        url.push('&');
    }
    url.push_str(query);
    url.push_str(fragment);
    url
}

/// The full announce URL for `request`: the tracker's URL (its own query
/// parameters kept) with the BEP 3 parameters appended. `info_hash` and
/// `peer_id` are percent-encoded byte by byte.
///
/// ```
/// use webtorrent_tracker::{AnnounceRequest, Event, http::announce_url};
/// use webtorrent_types::{InfoHashV1, PeerId};
///
/// let mut req = AnnounceRequest::new(InfoHashV1([0xab; 20]), PeerId(*b"-RW0100-abcdefghijkl"), 6881);
/// req.event = Event::Started;
/// req.left = 1000;
/// let url = announce_url("http://t.example/announce?passkey=x", &req);
/// assert!(url.starts_with("http://t.example/announce?passkey=x&info_hash=%AB%AB"));
/// assert!(url.ends_with("&left=1000&compact=1&event=started"));
/// ```
#[must_use]
pub fn announce_url(tracker: &str, request: &AnnounceRequest) -> String {
    let mut q = String::with_capacity(256);
    q.push_str("info_hash=");
    percent_encode_into(&mut q, request.info_hash.as_bytes());
    q.push_str("&peer_id=");
    percent_encode_into(&mut q, request.peer_id.as_bytes());
    // Writing to a String cannot fail.
    let _ = write!(
        q,
        "&port={}&uploaded={}&downloaded={}&left={}&compact={}",
        request.port,
        request.uploaded,
        request.downloaded,
        request.left,
        u8::from(request.compact)
    );
    if let Some(event) = request.event.http_name() {
        q.push_str("&event=");
        q.push_str(event);
    }
    if let Some(n) = request.numwant {
        let _ = write!(q, "&numwant={n}");
    }
    if let Some(key) = request.key {
        let _ = write!(q, "&key={key:08X}");
    }
    if let Some(ip) = request.ip {
        q.push_str("&ip=");
        percent_encode_into(&mut q, ip.to_string().as_bytes());
    }
    if let Some(id) = &request.trackerid {
        q.push_str("&trackerid=");
        percent_encode_into(&mut q, id);
    }
    append_query(tracker, &q)
}

/// The BEP 48 scrape URL of an announce URL: the last path component must
/// start with `announce`, which becomes `scrape`; `None` when it does not.
///
/// ```
/// use webtorrent_tracker::http::scrape_url;
/// assert_eq!(scrape_url("http://t.example/x/announce.php?k=1").as_deref(),
///            Some("http://t.example/x/scrape.php?k=1"));
/// assert_eq!(scrape_url("http://t.example/a/announce/b"), None);
/// ```
#[must_use]
pub fn scrape_url(announce: &str) -> Option<String> {
    let (head, fragment) = split_fragment(announce);
    let path_end = head.find('?').unwrap_or(head.len());
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let path_start = authority_start + head[authority_start..path_end].find('/')?;
    let slash = path_start + head[path_start..path_end].rfind('/')?;
    let last = &head[slash + 1..path_end];
    let rest = last.strip_prefix("announce")?;
    let mut url = String::with_capacity(announce.len());
    url.push_str(&head[..=slash]);
    url.push_str("scrape");
    url.push_str(rest);
    url.push_str(&head[path_end..]);
    url.push_str(fragment);
    Some(url)
}

/// The scrape URL for some info-hashes: [`scrape_url`] with one `info_hash`
/// parameter per torrent. `None` when the tracker has no scrape URL.
#[must_use]
pub fn scrape_url_for(announce: &str, info_hashes: &[InfoHashV1]) -> Option<String> {
    let base = scrape_url(announce)?;
    if info_hashes.is_empty() {
        return Some(base);
    }
    let mut q = String::with_capacity(info_hashes.len() * 70);
    for (i, h) in info_hashes.iter().enumerate() {
        if i > 0 {
            q.push('&');
        }
        q.push_str("info_hash=");
        percent_encode_into(&mut q, h.as_bytes());
    }
    Some(append_query(&base, &q))
}

fn top_dict<'v, 'a>(value: &'v Value<'a>) -> Result<&'v Dict<'a>, TrackerError> {
    let dict = value.as_dict().ok_or(TrackerError::Malformed {
        what: "response is not a dictionary",
    })?;
    if let Some(reason) = dict.get(b"failure reason") {
        let reason = reason.as_bytes().ok_or(TrackerError::Malformed {
            what: "`failure reason` is not a string",
        })?;
        return Err(TrackerError::Failure {
            reason: String::from_utf8_lossy(reason).into_owned(),
        });
    }
    Ok(dict)
}

fn opt_u32(dict: &Dict<'_>, key: &[u8], what: &'static str) -> Result<Option<u32>, TrackerError> {
    dict.get(key)
        .map(|v| {
            v.as_int()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(TrackerError::Malformed { what })
        })
        .transpose()
}

fn opt_bytes<'a>(
    dict: &Dict<'a>,
    key: &[u8],
    what: &'static str,
) -> Result<Option<&'a [u8]>, TrackerError> {
    dict.get(key)
        .map(|v| v.as_bytes().ok_or(TrackerError::Malformed { what }))
        .transpose()
}

fn check_count(count: usize, limit: usize) -> Result<(), TrackerError> {
    if count > limit {
        return Err(TrackerError::TooManyEntries { count, limit });
    }
    Ok(())
}

/// Decodes BEP 23 compact IPv4 peers (6 bytes each).
///
/// # Errors
/// [`TrackerError::Malformed`] if the length is not a multiple of 6.
pub fn decode_compact_v4(bytes: &[u8]) -> Result<Vec<SocketAddr>, TrackerError> {
    if !bytes.len().is_multiple_of(6) {
        return Err(TrackerError::Malformed {
            what: "compact `peers` length is not a multiple of 6",
        });
    }
    Ok(bytes
        .chunks_exact(6)
        .map(|c| {
            let ip = Ipv4Addr::new(c[0], c[1], c[2], c[3]);
            SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([c[4], c[5]]))
        })
        .collect())
}

/// Decodes BEP 7 compact IPv6 peers (18 bytes each).
///
/// # Errors
/// [`TrackerError::Malformed`] if the length is not a multiple of 18.
pub fn decode_compact_v6(bytes: &[u8]) -> Result<Vec<SocketAddr>, TrackerError> {
    if !bytes.len().is_multiple_of(18) {
        return Err(TrackerError::Malformed {
            what: "compact `peers6` length is not a multiple of 18",
        });
    }
    Ok(bytes
        .chunks_exact(18)
        .map(|c| {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&c[..16]);
            let ip = Ipv6Addr::from(octets);
            SocketAddr::new(IpAddr::V6(ip), u16::from_be_bytes([c[16], c[17]]))
        })
        .collect())
}

/// Appends one peer's compact form: 6 bytes for IPv4, 18 for IPv6.
pub fn encode_compact(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Parses one dictionary-model peer. `Ok(None)` for a peer whose `ip` is a
/// DNS name, which this crate does not resolve.
fn dict_peer(value: &Value<'_>) -> Result<Option<Peer>, TrackerError> {
    let d = value.as_dict().ok_or(TrackerError::Malformed {
        what: "a `peers` entry is not a dictionary",
    })?;
    let ip = d
        .get(b"ip")
        .and_then(Value::as_bytes)
        .ok_or(TrackerError::Malformed {
            what: "a `peers` entry has no string `ip`",
        })?;
    let port = d
        .get(b"port")
        .and_then(Value::as_int)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(TrackerError::Malformed {
            what: "a `peers` entry has no valid `port`",
        })?;
    let peer_id = match d.get(b"peer id") {
        None => None,
        Some(v) => Some(
            v.as_bytes()
                .and_then(|b| PeerId::from_bytes(b).ok())
                .ok_or(TrackerError::Malformed {
                    what: "a `peers` entry has a `peer id` that is not 20 bytes",
                })?,
        ),
    };
    let Some(ip) = std::str::from_utf8(ip)
        .ok()
        .and_then(|s| s.trim_matches(['[', ']']).parse::<IpAddr>().ok())
    else {
        return Ok(None);
    };
    Ok(Some(Peer {
        addr: SocketAddr::new(ip, port),
        peer_id,
    }))
}

/// Parses an HTTP announce response body.
///
/// Accepts compact (`peers` as a string, BEP 23) and dictionary-model
/// (`peers` as a list) peers, plus `peers6` (BEP 7). Dictionary-model peers
/// whose `ip` is a DNS name are skipped. Unknown keys are ignored.
///
/// ```
/// use webtorrent_tracker::http::parse_announce_response;
/// let body = b"d8:completei3e10:incompletei1e8:intervali900e5:peers6:\x7f\x00\x00\x01\x1a\xe1e";
/// let resp = parse_announce_response(body)?;
/// assert_eq!(resp.interval.as_secs(), 900);
/// assert_eq!(resp.peers[0].addr, "127.0.0.1:6881".parse().unwrap());
/// # Ok::<(), webtorrent_tracker::TrackerError>(())
/// ```
///
/// # Errors
/// [`TrackerError::Failure`] for a `failure reason`; [`TrackerError::Bencode`],
/// [`TrackerError::Malformed`] or [`TrackerError::TooManyEntries`] for a body
/// that cannot be used.
pub fn parse_announce_response(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let value = webtorrent_bencode::decode(body)?;
    let dict = top_dict(&value)?;
    let secs = |key: &[u8], what| -> Result<Option<Duration>, TrackerError> {
        Ok(opt_u32(dict, key, what)?.map(|s| Duration::from_secs(u64::from(s))))
    };
    let interval =
        secs(b"interval", "`interval` is not a non-negative integer")?.unwrap_or(DEFAULT_INTERVAL);
    let min_interval = secs(
        b"min interval",
        "`min interval` is not a non-negative integer",
    )?;
    let complete = opt_u32(
        dict,
        b"complete",
        "`complete` is not a non-negative integer",
    )?;
    let incomplete = opt_u32(
        dict,
        b"incomplete",
        "`incomplete` is not a non-negative integer",
    )?;
    let tracker_id =
        opt_bytes(dict, b"tracker id", "`tracker id` is not a string")?.map(<[u8]>::to_vec);
    let warning = opt_bytes(
        dict,
        b"warning message",
        "`warning message` is not a string",
    )?
    .map(|w| String::from_utf8_lossy(w).into_owned());

    let mut peers = Vec::new();
    match dict.get(b"peers") {
        None => {}
        Some(Value::Bytes(b)) => {
            let b = b.as_bytes();
            check_count(b.len() / 6, MAX_PEERS)?;
            peers.extend(decode_compact_v4(b)?.into_iter().map(Peer::from));
        }
        Some(Value::List(list)) => {
            check_count(list.len(), MAX_PEERS)?;
            for entry in list.iter() {
                if let Some(peer) = dict_peer(entry)? {
                    peers.push(peer);
                }
            }
        }
        Some(_) => {
            return Err(TrackerError::Malformed {
                what: "`peers` is neither a string nor a list",
            });
        }
    }
    if let Some(b) = opt_bytes(dict, b"peers6", "`peers6` is not a string")? {
        check_count(peers.len() + b.len() / 18, MAX_PEERS)?;
        peers.extend(decode_compact_v6(b)?.into_iter().map(Peer::from));
    }
    Ok(AnnounceResponse {
        interval,
        min_interval,
        tracker_id,
        complete,
        incomplete,
        peers,
        warning,
    })
}

/// A scrape `files` key: 20 raw bytes, or (as bittorrent-tracker sends
/// them) the UTF-8 encoding of those bytes read as Latin-1 characters.
fn scrape_key(key: &[u8]) -> Option<InfoHashV1> {
    if let Ok(hash) = InfoHashV1::from_bytes(key) {
        return Some(hash);
    }
    let text = std::str::from_utf8(key).ok()?;
    let mut out = [0u8; 20];
    let mut n = 0;
    for c in text.chars() {
        *out.get_mut(n)? = u8::try_from(u32::from(c)).ok()?;
        n += 1;
    }
    (n == 20).then_some(InfoHashV1(out))
}

/// Parses an HTTP scrape response body (BEP 48): `files` maps raw 20-byte
/// info-hashes to `complete`, `downloaded` and `incomplete` counts (a
/// missing count reads as 0). A key that is not 20 bytes but is the UTF-8
/// form of 20 Latin-1 characters (bittorrent-tracker's encoding) is read
/// back to the 20 bytes.
///
/// # Errors
/// As [`parse_announce_response`].
pub fn parse_scrape_response(body: &[u8]) -> Result<ScrapeResponse, TrackerError> {
    let value = webtorrent_bencode::decode(body)?;
    let dict = top_dict(&value)?;
    let Some(files) = dict.get(b"files") else {
        return Ok(ScrapeResponse::default());
    };
    let files = files.as_dict().ok_or(TrackerError::Malformed {
        what: "`files` is not a dictionary",
    })?;
    check_count(files.len(), MAX_SCRAPE_FILES)?;
    let mut out = Vec::with_capacity(files.len());
    for (key, stats) in files.iter() {
        let hash = scrape_key(key).ok_or(TrackerError::Malformed {
            what: "a `files` key is not a 20-byte info-hash",
        })?;
        let stats = stats.as_dict().ok_or(TrackerError::Malformed {
            what: "a `files` entry is not a dictionary",
        })?;
        let what = "a scrape count is not a non-negative 32-bit integer";
        out.push((
            hash,
            ScrapeStats {
                complete: opt_u32(stats, b"complete", what)?.unwrap_or(0),
                downloaded: opt_u32(stats, b"downloaded", what)?.unwrap_or(0),
                incomplete: opt_u32(stats, b"incomplete", what)?.unwrap_or(0),
            },
        ));
    }
    Ok(ScrapeResponse { files: out })
}

fn int(n: impl Into<i64>) -> OwnedValue {
    OwnedValue::Int(n.into())
}

fn secs(d: Duration) -> OwnedValue {
    int(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Encodes an announce response as a tracker would send it.
///
/// With `compact`, IPv4 peers go into a compact `peers` string and IPv6
/// peers into `peers6`, and peer ids are dropped; otherwise every peer is a
/// dictionary in a `peers` list.
#[must_use]
pub fn encode_announce_response(response: &AnnounceResponse, compact: bool) -> Vec<u8> {
    let mut d = BTreeMap::new();
    d.insert(b"interval".to_vec(), secs(response.interval));
    if let Some(m) = response.min_interval {
        d.insert(b"min interval".to_vec(), secs(m));
    }
    if let Some(id) = &response.tracker_id {
        d.insert(b"tracker id".to_vec(), OwnedValue::Bytes(id.clone()));
    }
    if let Some(n) = response.complete {
        d.insert(b"complete".to_vec(), int(n));
    }
    if let Some(n) = response.incomplete {
        d.insert(b"incomplete".to_vec(), int(n));
    }
    if let Some(w) = &response.warning {
        d.insert(b"warning message".to_vec(), OwnedValue::from(w.as_str()));
    }
    if compact {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for p in &response.peers {
            encode_compact(if p.addr.is_ipv4() { &mut v4 } else { &mut v6 }, &p.addr);
        }
        d.insert(b"peers".to_vec(), OwnedValue::Bytes(v4));
        if !v6.is_empty() {
            d.insert(b"peers6".to_vec(), OwnedValue::Bytes(v6));
        }
    } else {
        let list = response
            .peers
            .iter()
            .map(|p| {
                let mut e = BTreeMap::new();
                e.insert(
                    b"ip".to_vec(),
                    OwnedValue::from(p.addr.ip().to_string().as_str()),
                );
                e.insert(b"port".to_vec(), int(p.addr.port()));
                if let Some(id) = p.peer_id {
                    e.insert(
                        b"peer id".to_vec(),
                        OwnedValue::Bytes(id.as_bytes().to_vec()),
                    );
                }
                OwnedValue::Dict(e)
            })
            .collect();
        d.insert(b"peers".to_vec(), OwnedValue::List(list));
    }
    OwnedValue::Dict(d).encode()
}

/// Encodes a scrape response as a tracker would send it.
#[must_use]
pub fn encode_scrape_response(response: &ScrapeResponse) -> Vec<u8> {
    let files = response
        .files
        .iter()
        .map(|(h, s)| {
            let mut e = BTreeMap::new();
            e.insert(b"complete".to_vec(), int(s.complete));
            e.insert(b"downloaded".to_vec(), int(s.downloaded));
            e.insert(b"incomplete".to_vec(), int(s.incomplete));
            (h.as_bytes().to_vec(), OwnedValue::Dict(e))
        })
        .collect();
    let mut d = BTreeMap::new();
    d.insert(b"files".to_vec(), OwnedValue::Dict(files));
    OwnedValue::Dict(d).encode()
}

/// Encodes a `failure reason` response.
#[must_use]
pub fn encode_failure(reason: &str) -> Vec<u8> {
    let mut d = BTreeMap::new();
    d.insert(b"failure reason".to_vec(), OwnedValue::from(reason));
    OwnedValue::Dict(d).encode()
}
