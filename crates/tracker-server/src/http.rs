//! The HTTP tracker (BEP 3, 7, 23, 48), without I/O: announce and scrape
//! query strings in, bencoded bodies out.
//!
//! Queries parse into the client crate's [`AnnounceRequest`], and answers
//! are encoded with its [`http`](webtorrent_tracker::http) encoders, so both
//! sides of the workspace speak one dialect.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use webtorrent_tracker::http::{encode_announce_response, encode_failure, encode_scrape_response};
use webtorrent_tracker::{AnnounceRequest, AnnounceResponse, Event, Peer, ScrapeResponse};
use webtorrent_types::{InfoHashV1, PeerId};

use crate::store::{PeerAddr, PeerAnnounce, PeerKind, SwarmStore};

/// The longest query string accepted.
pub const MAX_QUERY_LEN: usize = 16 * 1024;
/// The most info-hashes in one scrape.
pub const MAX_SCRAPE_HASHES: usize = 128;

/// Why a query string is refused. Its text becomes the `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpRequestError {
    /// The query string is longer than [`MAX_QUERY_LEN`].
    #[error("query string of {len} bytes exceeds {limit}")]
    QueryTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A required parameter is absent.
    #[error("missing {param}")]
    Missing {
        /// The parameter.
        param: &'static str,
    },
    /// A parameter has a value it cannot have (bad percent-encoding, wrong
    /// length, not a number, unknown event).
    #[error("invalid {param}")]
    Invalid {
        /// The parameter.
        param: &'static str,
    },
    /// A scrape of more than [`MAX_SCRAPE_HASHES`] info-hashes.
    #[error("scrape of {count} info-hashes exceeds {limit}")]
    TooManyInfoHashes {
        /// Info-hashes asked for.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A scrape without `info_hash`, which asks for every torrent (BEP 48);
    /// this tracker does not serve it.
    #[error("full scrape is not served")]
    FullScrape,
}

/// Decodes one percent-encoded query component. `+` stays `+`: binary
/// values are percent-encoded byte by byte.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = char::from(hex[0]).to_digit(16)?;
            let lo = char::from(hex[1]).to_digit(16)?;
            // Two hex digits make at most 255.
            out.push(u8::try_from(hi * 16 + lo).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// `name=value` pairs of a query string, values still encoded. A pair
/// without `=` has an empty value.
fn pairs(query: &str) -> Result<impl Iterator<Item = (&str, &str)>, HttpRequestError> {
    if query.len() > MAX_QUERY_LEN {
        return Err(HttpRequestError::QueryTooLong {
            len: query.len(),
            limit: MAX_QUERY_LEN,
        });
    }
    Ok(query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, ""))))
}

fn bytes20(value: &str, param: &'static str) -> Result<[u8; 20], HttpRequestError> {
    percent_decode(value)
        .and_then(|v| <[u8; 20]>::try_from(v.as_slice()).ok())
        .ok_or(HttpRequestError::Invalid { param })
}

fn text(value: &str, param: &'static str) -> Result<String, HttpRequestError> {
    percent_decode(value)
        .and_then(|v| String::from_utf8(v).ok())
        .ok_or(HttpRequestError::Invalid { param })
}

fn number<T: std::str::FromStr>(value: &str, param: &'static str) -> Result<T, HttpRequestError> {
    text(value, param)?
        .parse()
        .map_err(|_| HttpRequestError::Invalid { param })
}

/// Parses an announce query string (the part after `?`).
///
/// `info_hash`, `peer_id` and `port` are required. A missing `left` means
/// "unknown" and is read as not complete (`u64::MAX`); missing `uploaded`
/// and `downloaded` are 0; `compact` defaults to on (BEP 23); a negative
/// `numwant` means "the tracker's default"; `event=paused` (BEP 21) is a
/// regular announce; a `key` that is not hexadecimal and an `ip` that is
/// not an address (BEP 3 allows DNS names) are dropped. Later duplicates
/// win.
///
/// ```
/// use webtorrent_tracker::{AnnounceRequest, http::announce_url};
/// use webtorrent_tracker_server::http::parse_announce;
/// use webtorrent_types::{InfoHashV1, PeerId};
///
/// let mut req = AnnounceRequest::new(InfoHashV1([0xab; 20]), PeerId(*b"-RW0100-abcdefghijkl"), 6881);
/// req.left = 10;
/// let url = announce_url("http://t.example/announce", &req);
/// let (_, query) = url.split_once('?').unwrap();
/// assert_eq!(parse_announce(query)?, req);
/// # Ok::<(), webtorrent_tracker_server::http::HttpRequestError>(())
/// ```
///
/// # Errors
/// [`HttpRequestError`] for a missing or invalid parameter or a query that
/// is too long.
pub fn parse_announce(query: &str) -> Result<AnnounceRequest, HttpRequestError> {
    let (mut info_hash, mut peer_id, mut port) = (None, None, None);
    let mut request = AnnounceRequest::new(InfoHashV1([0; 20]), PeerId([0; 20]), 0);
    request.left = u64::MAX;
    for (name, value) in pairs(query)? {
        match name {
            "info_hash" => info_hash = Some(InfoHashV1(bytes20(value, "info_hash")?)),
            "peer_id" => peer_id = Some(PeerId(bytes20(value, "peer_id")?)),
            "port" => port = Some(number::<u16>(value, "port")?),
            "uploaded" => request.uploaded = number(value, "uploaded")?,
            "downloaded" => request.downloaded = number(value, "downloaded")?,
            "left" => request.left = number(value, "left")?,
            "compact" => request.compact = value != "0",
            "event" => {
                request.event = match value {
                    "" | "empty" => Event::None,
                    // BEP 21's upload-only announce is a regular one here.
                    "paused" => Event::None,
                    "started" => Event::Started,
                    "completed" => Event::Completed,
                    "stopped" => Event::Stopped,
                    _ => return Err(HttpRequestError::Invalid { param: "event" }),
                }
            }
            "numwant" => {
                let n: i64 = number(value, "numwant")?;
                request.numwant =
                    u32::try_from(n)
                        .ok()
                        .or(if n < 0 { None } else { Some(u32::MAX) });
            }
            "key" => {
                request.key = text(value, "key")
                    .ok()
                    .filter(|k| k.len() <= 8)
                    .and_then(|k| u32::from_str_radix(&k, 16).ok());
            }
            // BEP 3 allows a DNS name; the address is not used anyway.
            "ip" => request.ip = number::<IpAddr>(value, "ip").ok(),
            "trackerid" => {
                request.trackerid = Some(
                    percent_decode(value)
                        .ok_or(HttpRequestError::Invalid { param: "trackerid" })?,
                );
            }
            _ => {}
        }
    }
    request.info_hash = info_hash.ok_or(HttpRequestError::Missing { param: "info_hash" })?;
    request.peer_id = peer_id.ok_or(HttpRequestError::Missing { param: "peer_id" })?;
    request.port = port.ok_or(HttpRequestError::Missing { param: "port" })?;
    Ok(request)
}

/// Parses a scrape query string: every `info_hash`, in order.
///
/// # Errors
/// [`HttpRequestError::FullScrape`] without `info_hash`, and the other
/// variants for a bad or too long query.
pub fn parse_scrape(query: &str) -> Result<Vec<InfoHashV1>, HttpRequestError> {
    let mut hashes = Vec::new();
    for (name, value) in pairs(query)? {
        if name == "info_hash" {
            if hashes.len() == MAX_SCRAPE_HASHES {
                return Err(HttpRequestError::TooManyInfoHashes {
                    count: hashes.len() + 1,
                    limit: MAX_SCRAPE_HASHES,
                });
            }
            hashes.push(InfoHashV1(bytes20(value, "info_hash")?));
        }
    }
    if hashes.is_empty() {
        return Err(HttpRequestError::FullScrape);
    }
    Ok(hashes)
}

/// Settings of an [`HttpHandler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The re-announce `interval`.
    pub interval: Duration,
    /// The `min interval`, if any.
    pub min_interval: Option<Duration>,
}

impl Default for HttpConfig {
    /// A 30-minute interval and no minimum.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30 * 60),
            min_interval: None,
        }
    }
}

/// The tracker's side of HTTP announce and scrape: a query string in, a
/// bencoded body out (always with status 200; refusals carry a
/// `failure reason`).
///
/// Announces are stored under the connection's remote address (canonical:
/// IPv4-mapped addresses count as IPv4) and the announced `port`; the `ip`
/// parameter is ignored so that nobody can point a swarm at a third party.
/// Peers of both families are handed out: compact answers put IPv4 peers
/// in `peers` and IPv6 peers in `peers6`, dictionary answers list both with
/// their peer ids.
#[derive(Debug, Clone, Default)]
pub struct HttpHandler {
    config: HttpConfig,
}

impl HttpHandler {
    /// A handler with `config`.
    #[must_use]
    pub const fn new(config: HttpConfig) -> Self {
        Self { config }
    }

    /// Answers an announce query from `remote`.
    #[must_use]
    pub fn announce(
        &self,
        store: &mut SwarmStore,
        now: Instant,
        remote: SocketAddr,
        query: &str,
    ) -> Vec<u8> {
        match self.try_announce(store, now, remote, query) {
            Ok(body) => body,
            Err(reason) => encode_failure(&reason),
        }
    }

    fn try_announce(
        &self,
        store: &mut SwarmStore,
        now: Instant,
        remote: SocketAddr,
        query: &str,
    ) -> Result<Vec<u8>, String> {
        let request = parse_announce(query).map_err(|e| e.to_string())?;
        let peer = PeerAnnounce {
            peer_id: request.peer_id,
            addr: PeerAddr::Socket(SocketAddr::new(remote.ip().to_canonical(), request.port)),
            left: request.left,
            event: request.event,
            numwant: request.numwant,
        };
        let reply = store
            .announce(now, request.info_hash, &peer, PeerKind::Socket)
            .map_err(|e| e.to_string())?;
        let response = AnnounceResponse {
            interval: self.config.interval,
            min_interval: self.config.min_interval,
            tracker_id: None,
            complete: Some(reply.seeders),
            incomplete: Some(reply.leechers),
            peers: reply
                .peers
                .iter()
                .filter_map(|p| match p.addr {
                    PeerAddr::Socket(addr) => Some(Peer {
                        addr,
                        peer_id: Some(p.peer_id),
                    }),
                    PeerAddr::WebRtc(_) => None,
                })
                .collect(),
            warning: None,
        };
        Ok(encode_announce_response(&response, request.compact))
    }

    /// Answers a scrape query.
    #[must_use]
    pub fn scrape(&self, store: &SwarmStore, query: &str) -> Vec<u8> {
        match parse_scrape(query) {
            Ok(hashes) => encode_scrape_response(&ScrapeResponse {
                files: hashes.into_iter().map(|h| (h, store.scrape(&h))).collect(),
            }),
            Err(e) => encode_failure(&e.to_string()),
        }
    }
}
