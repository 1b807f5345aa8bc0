//! The WebTorrent WebSocket tracker protocol, sans-IO: the JSON frames both
//! ways, the reconnection back-off, and [`WsConnection`], the state of one
//! tracker connection (torrents, offers waiting for answers, scrapes
//! waiting for replies) that the async `WsTracker` drives.
//!
//! Every frame is one JSON object in a text message. Binary ids (info-hash,
//! peer id, offer id) travel as 20-character strings with one character per
//! byte (U+0000–U+00FF, "Latin-1 style"), which JSON then writes as UTF-8.
//!
//! What a client sends:
//! - [`ClientMessage::Announce`]: `action: "announce"`, `info_hash`,
//!   `peer_id`, `uploaded`, `downloaded`, `left`, optional `event`, and for
//!   announces that look for peers `numwant` and `offers: [{offer, offer_id}]`.
//!   The tracker relays each offer to one other peer of the swarm.
//! - [`ClientMessage::Answer`]: an announce carrying `answer`, `offer_id`
//!   and `to_peer_id`, which the tracker relays to the peer that made the
//!   offer.
//! - [`ClientMessage::Scrape`]: `action: "scrape"` with one info-hash or an
//!   array of them.
//!
//! What a tracker sends is a [`ServerMessage`]: an announce reply with
//! `interval` and the swarm counts, a relayed offer or answer, a scrape reply
//! whose `files` are keyed by info-hash strings, or a `failure reason`.
//!
//! [`decode_server`] (and [`decode_client`], its mirror for test trackers)
//! never panics: frames above [`MAX_FRAME_BYTES`], wrong JSON types, ids of
//! the wrong length or with characters above U+00FF are [`WsDecodeError`]s.
//!
//! ```
//! use webtorrent_tracker::Event;
//! use webtorrent_tracker::ws::{self, ClientMessage, OfferId, ServerMessage, Signal, WsAnnounce, WsOffer};
//! use webtorrent_types::{InfoHashV1, PeerId};
//!
//! let mut announce = WsAnnounce::new(InfoHashV1([0xc3; 20]), PeerId([b'p'; 20]));
//! announce.event = Event::Started;
//! announce.left = Some(1000);
//! announce.offers.push(WsOffer { offer_id: OfferId([0xff; 20]), offer: Signal::sdp("offer", "v=0\r\n") });
//! let frame = ws::encode_client(&ClientMessage::Announce(announce.clone()));
//! assert!(frame.contains(r#""action":"announce""#));
//! assert_eq!(ws::decode_client(&frame)?, ClientMessage::Announce(announce));
//!
//! let reply = r#"{"action":"announce","info_hash":"ÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃ","interval":120,"complete":1,"incomplete":2}"#;
//! match ws::decode_server(reply)? {
//!     ServerMessage::Announced { info_hash, reply } => {
//!         assert_eq!(info_hash, InfoHashV1([0xc3; 20]));
//!         assert_eq!((reply.complete, reply.incomplete), (Some(1), Some(2)));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), ws::WsDecodeError>(())
//! ```

use std::time::Duration;

use serde_json::{Map, Value};
use webtorrent_types::{InfoHashV1, PeerId};

use crate::{Event, ScrapeResponse, ScrapeStats};

mod connection;
pub use connection::{ScrapeId, WsConfig, WsConnection, WsEvent, WsOutput};

/// The largest frame accepted, in bytes (offers with full SDP are a few KiB each).
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// The most entries a scrape reply may list.
pub const MAX_SCRAPE_FILES: usize = 1024;

/// The most info-hashes one scrape frame may ask for.
pub const MAX_SCRAPE_HASHES: usize = 1024;

/// The most offers one announce frame may carry (bittorrent-tracker caps
/// the peers it relays to at 82).
pub const MAX_OFFERS: usize = 82;

/// The most characters of a `failure reason`, `warning message` or
/// `tracker id` kept.
const MAX_TEXT_CHARS: usize = 1024;

/// The 20-byte id of one offer, chosen by its maker; the answer carries it
/// back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OfferId(pub [u8; 20]);

/// A WebRTC signalling payload (an SDP offer or answer), kept as the JSON
/// object the peers exchange, usually `{"type": "offer", "sdp": "…"}`. The
/// tracker relays it untouched; this crate does not look inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal(Map<String, Value>);

impl Signal {
    /// The usual payload: `{"type": kind, "sdp": sdp}`.
    #[must_use]
    pub fn sdp(kind: &str, sdp: &str) -> Self {
        let mut m = Map::new();
        m.insert("type".to_owned(), Value::String(kind.to_owned()));
        m.insert("sdp".to_owned(), Value::String(sdp.to_owned()));
        Self(m)
    }

    /// A payload given as JSON text, which must be an object.
    ///
    /// # Errors
    /// [`WsDecodeError::Json`] for text that is not JSON,
    /// [`WsDecodeError::WrongType`] for JSON that is not an object.
    pub fn from_json(text: &str) -> Result<Self, WsDecodeError> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(WsDecodeError::TooLarge {
                len: text.len(),
                limit: MAX_FRAME_BYTES,
            });
        }
        let value: Value = serde_json::from_str(text).map_err(|e| json_error(&e))?;
        Self::from_value("signal", value)
    }

    fn from_value(field: &'static str, value: Value) -> Result<Self, WsDecodeError> {
        match value {
            Value::Object(m) => Ok(Self(m)),
            _ => Err(WsDecodeError::WrongType {
                field,
                expected: "object",
            }),
        }
    }

    /// The payload as compact JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing a map of JSON values cannot fail.
        Value::Object(self.0.clone()).to_string()
    }

    /// The `type` member (`"offer"`, `"answer"`), if it is a string.
    #[must_use]
    pub fn kind(&self) -> Option<&str> {
        self.0.get("type").and_then(Value::as_str)
    }

    /// The `sdp` member, if it is a string.
    #[must_use]
    pub fn sdp_text(&self) -> Option<&str> {
        self.0.get("sdp").and_then(Value::as_str)
    }
}

/// One offer of an announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsOffer {
    /// Its id; the answer comes back with it.
    pub offer_id: OfferId,
    /// The SDP offer.
    pub offer: Signal,
}

/// An announce over a WebSocket tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsAnnounce {
    /// The torrent.
    pub info_hash: InfoHashV1,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Bytes uploaded this session.
    pub uploaded: u64,
    /// Bytes downloaded this session.
    pub downloaded: u64,
    /// Bytes missing; `None` when unknown (a magnet link without metadata),
    /// which the tracker counts as a leecher.
    pub left: Option<u64>,
    /// The event; [`Event::None`] sends no `event` key.
    pub event: Event,
    /// Peers wanted. bittorrent-tracker relays one offer per peer and
    /// ignores this number, using the count of offers instead.
    pub numwant: Option<u32>,
    /// Offers for other peers, at most [`MAX_OFFERS`] of them.
    pub offers: Vec<WsOffer>,
    /// The `tracker id` an earlier reply gave.
    pub trackerid: Option<String>,
}

impl WsAnnounce {
    /// An announce with zero counters, no event and no offers.
    #[must_use]
    pub const fn new(info_hash: InfoHashV1, peer_id: PeerId) -> Self {
        Self {
            info_hash,
            peer_id,
            uploaded: 0,
            downloaded: 0,
            left: None,
            event: Event::None,
            numwant: None,
            offers: Vec::new(),
            trackerid: None,
        }
    }
}

/// An answer to an offer relayed by the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsAnswer {
    /// The torrent.
    pub info_hash: InfoHashV1,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The peer that made the offer.
    pub to_peer_id: PeerId,
    /// The offer answered.
    pub offer_id: OfferId,
    /// The SDP answer.
    pub answer: Signal,
    /// The `tracker id` an earlier reply gave.
    pub trackerid: Option<String>,
}

/// A frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientMessage {
    /// An announce, possibly with offers.
    Announce(WsAnnounce),
    /// An answer to a relayed offer.
    Answer(WsAnswer),
    /// A scrape of these torrents (one or more).
    Scrape(Vec<InfoHashV1>),
}

/// The useful part of an announce reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WsAnnounceReply {
    /// When to announce again, if the tracker said.
    pub interval: Option<Duration>,
    /// The tracker asks not to announce more often than this.
    pub min_interval: Option<Duration>,
    /// Seeders.
    pub complete: Option<u32>,
    /// Leechers.
    pub incomplete: Option<u32>,
    /// A `warning message`.
    pub warning: Option<String>,
    /// A `tracker id` to send back in later announces.
    pub tracker_id: Option<String>,
}

/// A frame a tracker sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// The reply to one of our announces.
    Announced {
        /// The torrent.
        info_hash: InfoHashV1,
        /// Interval and counts.
        reply: WsAnnounceReply,
    },
    /// Another peer's offer, for us to answer.
    Offer {
        /// The torrent.
        info_hash: InfoHashV1,
        /// The peer that made it.
        peer_id: PeerId,
        /// To send back with the answer.
        offer_id: OfferId,
        /// The SDP offer.
        offer: Signal,
    },
    /// Another peer's answer to one of our offers.
    Answer {
        /// The torrent.
        info_hash: InfoHashV1,
        /// The peer that answered.
        peer_id: PeerId,
        /// Which of our offers it answers.
        offer_id: OfferId,
        /// The SDP answer.
        answer: Signal,
    },
    /// A scrape reply.
    Scraped(ScrapeResponse),
    /// A refusal. bittorrent-tracker names the torrent and the action when
    /// the request parsed, and neither when it did not.
    Failure {
        /// The torrent, when the tracker said.
        info_hash: Option<InfoHashV1>,
        /// `true` if the tracker said the refused request was a scrape.
        scrape: bool,
        /// The tracker's text.
        reason: String,
    },
}

/// Why a frame cannot be decoded. The connection stays usable after any
/// of these: each frame stands alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsDecodeError {
    /// The frame is larger than the limit.
    #[error("WebSocket tracker frame of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Frame length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The frame is not JSON.
    #[error("WebSocket tracker frame is not JSON (line {line}, column {column})")]
    Json {
        /// Where the JSON parser stopped.
        line: usize,
        /// Where the JSON parser stopped.
        column: usize,
    },
    /// A member is missing.
    #[error("WebSocket tracker frame lacks `{field}`")]
    Missing {
        /// The member.
        field: &'static str,
    },
    /// A member (or the frame itself) has the wrong JSON type.
    #[error("`{field}` of a WebSocket tracker frame is not {expected}")]
    WrongType {
        /// The member (`"frame"` for the whole frame).
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A binary id does not have 20 characters.
    #[error("`{field}` has {chars} characters, not 20")]
    WrongLength {
        /// The member.
        field: &'static str,
        /// Its length in characters.
        chars: usize,
    },
    /// A binary id has a character above U+00FF, which no byte maps to.
    #[error("`{field}` has a character above U+00FF")]
    NotBinary {
        /// The member.
        field: &'static str,
    },
    /// A number is negative, fractional or too large.
    #[error("`{field}` is out of range")]
    OutOfRange {
        /// The member.
        field: &'static str,
    },
    /// The `action` is not `announce` or `scrape`.
    #[error("unknown WebSocket tracker action")]
    UnknownAction,
    /// The `event` is not one this crate knows.
    #[error("unknown announce event")]
    UnknownEvent,
    /// Too many scrape entries, info-hashes or offers.
    #[error("WebSocket tracker frame lists {count} entries, more than the limit of {limit}")]
    TooManyEntries {
        /// Entries in the frame.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

fn json_error(e: &serde_json::Error) -> WsDecodeError {
    WsDecodeError::Json {
        line: e.line(),
        column: e.column(),
    }
}

/// Writes bytes one character per byte.
fn binary_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Reads a 20-character one-char-per-byte string.
fn binary20(field: &'static str, value: &Value) -> Result<[u8; 20], WsDecodeError> {
    let s = value.as_str().ok_or(WsDecodeError::WrongType {
        field,
        expected: "a string",
    })?;
    let mut out = [0u8; 20];
    let mut n = 0;
    for c in s.chars() {
        let b = u8::try_from(u32::from(c)).map_err(|_| WsDecodeError::NotBinary { field })?;
        if let Some(slot) = out.get_mut(n) {
            *slot = b;
        }
        n += 1;
    }
    if n == 20 {
        Ok(out)
    } else {
        Err(WsDecodeError::WrongLength { field, chars: n })
    }
}

fn required<'a>(
    m: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a Value, WsDecodeError> {
    m.get(field).ok_or(WsDecodeError::Missing { field })
}

/// A member that may be absent or `null`.
fn optional<'a>(m: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    m.get(field).filter(|v| !v.is_null())
}

fn uint(field: &'static str, value: &Value) -> Result<u64, WsDecodeError> {
    match value {
        Value::Number(n) => n.as_u64().ok_or(WsDecodeError::OutOfRange { field }),
        _ => Err(WsDecodeError::WrongType {
            field,
            expected: "a number",
        }),
    }
}

fn uint32(field: &'static str, value: &Value) -> Result<u32, WsDecodeError> {
    u32::try_from(uint(field, value)?).map_err(|_| WsDecodeError::OutOfRange { field })
}

fn text(field: &'static str, value: &Value) -> Result<String, WsDecodeError> {
    let s = value.as_str().ok_or(WsDecodeError::WrongType {
        field,
        expected: "a string",
    })?;
    Ok(s.chars().take(MAX_TEXT_CHARS).collect())
}

fn seconds(field: &'static str, value: &Value) -> Result<Duration, WsDecodeError> {
    let s = uint(field, value)?;
    // Anything longer than a year is as good as a year.
    Ok(Duration::from_secs(s.min(365 * 24 * 3600)))
}

fn parse_object(frame: &str) -> Result<Map<String, Value>, WsDecodeError> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(WsDecodeError::TooLarge {
            len: frame.len(),
            limit: MAX_FRAME_BYTES,
        });
    }
    // serde_json bounds nesting depth (128), so hostile nesting is an error.
    match serde_json::from_str(frame).map_err(|e| json_error(&e))? {
        Value::Object(m) => Ok(m),
        _ => Err(WsDecodeError::WrongType {
            field: "frame",
            expected: "an object",
        }),
    }
}

fn event_name(event: Event) -> Option<&'static str> {
    event.http_name()
}

fn event_of(value: &Value) -> Result<Event, WsDecodeError> {
    match value.as_str() {
        None => Err(WsDecodeError::WrongType {
            field: "event",
            expected: "a string",
        }),
        Some("started") => Ok(Event::Started),
        Some("completed") => Ok(Event::Completed),
        Some("stopped") => Ok(Event::Stopped),
        // BEP 21 `paused` is a regular announce to a tracker.
        Some("update" | "empty" | "paused" | "") => Ok(Event::None),
        Some(_) => Err(WsDecodeError::UnknownEvent),
    }
}

/// Encodes a frame a client sends, as JSON text.
#[must_use]
pub fn encode_client(message: &ClientMessage) -> String {
    let mut m = Map::new();
    let put = |m: &mut Map<String, Value>, k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    match message {
        ClientMessage::Announce(a) => {
            put(&mut m, "action", "announce".into());
            put(&mut m, "info_hash", binary_string(&a.info_hash.0).into());
            put(&mut m, "peer_id", binary_string(&a.peer_id.0).into());
            put(&mut m, "uploaded", a.uploaded.into());
            put(&mut m, "downloaded", a.downloaded.into());
            if let Some(left) = a.left {
                put(&mut m, "left", left.into());
            }
            if let Some(name) = event_name(a.event) {
                put(&mut m, "event", name.into());
            }
            if let Some(n) = a.numwant {
                put(&mut m, "numwant", n.into());
            }
            if !a.offers.is_empty() {
                let offers = a
                    .offers
                    .iter()
                    .map(|o| {
                        let mut e = Map::new();
                        put(&mut e, "offer", Value::Object(o.offer.0.clone()));
                        put(&mut e, "offer_id", binary_string(&o.offer_id.0).into());
                        Value::Object(e)
                    })
                    .collect();
                put(&mut m, "offers", Value::Array(offers));
            }
            if let Some(id) = &a.trackerid {
                put(&mut m, "trackerid", id.as_str().into());
            }
        }
        ClientMessage::Answer(a) => {
            put(&mut m, "action", "announce".into());
            put(&mut m, "info_hash", binary_string(&a.info_hash.0).into());
            put(&mut m, "peer_id", binary_string(&a.peer_id.0).into());
            put(&mut m, "to_peer_id", binary_string(&a.to_peer_id.0).into());
            put(&mut m, "offer_id", binary_string(&a.offer_id.0).into());
            put(&mut m, "answer", Value::Object(a.answer.0.clone()));
            if let Some(id) = &a.trackerid {
                put(&mut m, "trackerid", id.as_str().into());
            }
        }
        ClientMessage::Scrape(hashes) => {
            put(&mut m, "action", "scrape".into());
            let list = hashes
                .iter()
                .map(|h| Value::String(binary_string(&h.0)))
                .collect();
            put(&mut m, "info_hash", Value::Array(list));
        }
    }
    Value::Object(m).to_string()
}

/// Decodes a frame a client sends (the tracker's side; used by test
/// trackers and to check [`encode_client`]).
///
/// # Errors
/// A [`WsDecodeError`] for anything that is not a well-formed client frame.
pub fn decode_client(frame: &str) -> Result<ClientMessage, WsDecodeError> {
    let m = parse_object(frame)?;
    let action = required(&m, "action")?;
    match action.as_str() {
        Some("announce") => {
            let info_hash = InfoHashV1(binary20("info_hash", required(&m, "info_hash")?)?);
            let peer_id = PeerId(binary20("peer_id", required(&m, "peer_id")?)?);
            let trackerid = optional(&m, "trackerid")
                .map(|v| text("trackerid", v))
                .transpose()?;
            if let Some(answer) = optional(&m, "answer") {
                return Ok(ClientMessage::Answer(WsAnswer {
                    info_hash,
                    peer_id,
                    to_peer_id: PeerId(binary20("to_peer_id", required(&m, "to_peer_id")?)?),
                    offer_id: OfferId(binary20("offer_id", required(&m, "offer_id")?)?),
                    answer: Signal::from_value("answer", answer.clone())?,
                    trackerid,
                }));
            }
            let count = |field| optional(&m, field).map(|v| uint(field, v)).transpose();
            let offers = match optional(&m, "offers") {
                None => Vec::new(),
                Some(Value::Array(list)) => {
                    if list.len() > MAX_OFFERS {
                        return Err(WsDecodeError::TooManyEntries {
                            count: list.len(),
                            limit: MAX_OFFERS,
                        });
                    }
                    list.iter()
                        .map(|o| {
                            let o = o.as_object().ok_or(WsDecodeError::WrongType {
                                field: "offers",
                                expected: "an array of objects",
                            })?;
                            Ok(WsOffer {
                                offer_id: OfferId(binary20("offer_id", required(o, "offer_id")?)?),
                                offer: Signal::from_value("offer", required(o, "offer")?.clone())?,
                            })
                        })
                        .collect::<Result<_, WsDecodeError>>()?
                }
                Some(_) => {
                    return Err(WsDecodeError::WrongType {
                        field: "offers",
                        expected: "an array",
                    });
                }
            };
            Ok(ClientMessage::Announce(WsAnnounce {
                info_hash,
                peer_id,
                uploaded: count("uploaded")?.unwrap_or(0),
                downloaded: count("downloaded")?.unwrap_or(0),
                left: count("left")?,
                event: optional(&m, "event")
                    .map(event_of)
                    .transpose()?
                    .unwrap_or(Event::None),
                numwant: optional(&m, "numwant")
                    .map(|v| uint32("numwant", v))
                    .transpose()?,
                offers,
                trackerid,
            }))
        }
        Some("scrape") => {
            let hashes = match optional(&m, "info_hash") {
                None => Vec::new(),
                Some(v @ Value::String(_)) => vec![InfoHashV1(binary20("info_hash", v)?)],
                Some(Value::Array(list)) => {
                    if list.len() > MAX_SCRAPE_HASHES {
                        return Err(WsDecodeError::TooManyEntries {
                            count: list.len(),
                            limit: MAX_SCRAPE_HASHES,
                        });
                    }
                    list.iter()
                        .map(|v| binary20("info_hash", v).map(InfoHashV1))
                        .collect::<Result<_, _>>()?
                }
                Some(_) => {
                    return Err(WsDecodeError::WrongType {
                        field: "info_hash",
                        expected: "a string or an array",
                    });
                }
            };
            Ok(ClientMessage::Scrape(hashes))
        }
        Some(_) => Err(WsDecodeError::UnknownAction),
        None => Err(WsDecodeError::WrongType {
            field: "action",
            expected: "a string",
        }),
    }
}

/// Encodes a frame a tracker sends (for test trackers and round trips).
#[must_use]
pub fn encode_server(message: &ServerMessage) -> String {
    let mut m = Map::new();
    let put = |m: &mut Map<String, Value>, k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    match message {
        ServerMessage::Announced { info_hash, reply } => {
            put(&mut m, "action", "announce".into());
            put(&mut m, "info_hash", binary_string(&info_hash.0).into());
            if let Some(i) = reply.interval {
                put(&mut m, "interval", i.as_secs().into());
            }
            if let Some(i) = reply.min_interval {
                put(&mut m, "min interval", i.as_secs().into());
            }
            if let Some(c) = reply.complete {
                put(&mut m, "complete", c.into());
            }
            if let Some(c) = reply.incomplete {
                put(&mut m, "incomplete", c.into());
            }
            if let Some(w) = &reply.warning {
                put(&mut m, "warning message", w.as_str().into());
            }
            if let Some(t) = &reply.tracker_id {
                put(&mut m, "tracker id", t.as_str().into());
            }
        }
        ServerMessage::Offer {
            info_hash,
            peer_id,
            offer_id,
            offer,
        } => {
            put(&mut m, "action", "announce".into());
            put(&mut m, "info_hash", binary_string(&info_hash.0).into());
            put(&mut m, "peer_id", binary_string(&peer_id.0).into());
            put(&mut m, "offer_id", binary_string(&offer_id.0).into());
            put(&mut m, "offer", Value::Object(offer.0.clone()));
        }
        ServerMessage::Answer {
            info_hash,
            peer_id,
            offer_id,
            answer,
        } => {
            put(&mut m, "action", "announce".into());
            put(&mut m, "info_hash", binary_string(&info_hash.0).into());
            put(&mut m, "peer_id", binary_string(&peer_id.0).into());
            put(&mut m, "offer_id", binary_string(&offer_id.0).into());
            put(&mut m, "answer", Value::Object(answer.0.clone()));
        }
        ServerMessage::Scraped(files) => {
            put(&mut m, "action", "scrape".into());
            let mut f = Map::new();
            for (hash, stats) in &files.files {
                let mut e = Map::new();
                put(&mut e, "complete", stats.complete.into());
                put(&mut e, "incomplete", stats.incomplete.into());
                put(&mut e, "downloaded", stats.downloaded.into());
                f.insert(binary_string(&hash.0), Value::Object(e));
            }
            put(&mut m, "files", Value::Object(f));
        }
        ServerMessage::Failure {
            info_hash,
            scrape,
            reason,
        } => {
            if let Some(h) = info_hash {
                put(
                    &mut m,
                    "action",
                    if *scrape { "scrape" } else { "announce" }.into(),
                );
                put(&mut m, "info_hash", binary_string(&h.0).into());
            } else if *scrape {
                put(&mut m, "action", "scrape".into());
            }
            put(&mut m, "failure reason", reason.as_str().into());
        }
    }
    Value::Object(m).to_string()
}

/// Decodes a frame a tracker sends.
///
/// # Errors
/// A [`WsDecodeError`] for anything that is not a well-formed tracker frame.
pub fn decode_server(frame: &str) -> Result<ServerMessage, WsDecodeError> {
    let m = parse_object(frame)?;
    let action = match optional(&m, "action") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(WsDecodeError::WrongType {
                field: "action",
                expected: "a string",
            });
        }
    };
    if let Some(reason) = optional(&m, "failure reason") {
        // A refused scrape may name its torrents in any shape; only a
        // well-formed single info-hash routes the failure.
        let info_hash = optional(&m, "info_hash")
            .and_then(|v| binary20("info_hash", v).ok())
            .map(InfoHashV1);
        return Ok(ServerMessage::Failure {
            info_hash,
            scrape: action == Some("scrape"),
            reason: text("failure reason", reason)?,
        });
    }
    match action {
        Some("announce") => {}
        Some("scrape") => return decode_scrape(&m),
        Some(_) => return Err(WsDecodeError::UnknownAction),
        None => return Err(WsDecodeError::Missing { field: "action" }),
    }
    let info_hash = InfoHashV1(binary20("info_hash", required(&m, "info_hash")?)?);
    let offer = optional(&m, "offer");
    let answer = optional(&m, "answer");
    if offer.is_some() || answer.is_some() {
        let peer_id = PeerId(binary20("peer_id", required(&m, "peer_id")?)?);
        let offer_id = OfferId(binary20("offer_id", required(&m, "offer_id")?)?);
        return Ok(match (offer, answer) {
            (Some(o), _) => ServerMessage::Offer {
                info_hash,
                peer_id,
                offer_id,
                offer: Signal::from_value("offer", o.clone())?,
            },
            (None, Some(a)) => ServerMessage::Answer {
                info_hash,
                peer_id,
                offer_id,
                answer: Signal::from_value("answer", a.clone())?,
            },
            (None, None) => return Err(WsDecodeError::Missing { field: "offer" }),
        });
    }
    let reply = WsAnnounceReply {
        interval: optional(&m, "interval")
            .map(|v| seconds("interval", v))
            .transpose()?,
        min_interval: optional(&m, "min interval")
            .map(|v| seconds("min interval", v))
            .transpose()?,
        complete: optional(&m, "complete")
            .map(|v| uint32("complete", v))
            .transpose()?,
        incomplete: optional(&m, "incomplete")
            .map(|v| uint32("incomplete", v))
            .transpose()?,
        warning: optional(&m, "warning message")
            .map(|v| text("warning message", v))
            .transpose()?,
        tracker_id: optional(&m, "tracker id")
            .map(|v| text("tracker id", v))
            .transpose()?,
    };
    Ok(ServerMessage::Announced { info_hash, reply })
}

fn decode_scrape(m: &Map<String, Value>) -> Result<ServerMessage, WsDecodeError> {
    let files = match optional(m, "files") {
        None => return Ok(ServerMessage::Scraped(ScrapeResponse::default())),
        Some(Value::Object(f)) => f,
        Some(_) => {
            return Err(WsDecodeError::WrongType {
                field: "files",
                expected: "an object",
            });
        }
    };
    if files.len() > MAX_SCRAPE_FILES {
        return Err(WsDecodeError::TooManyEntries {
            count: files.len(),
            limit: MAX_SCRAPE_FILES,
        });
    }
    let mut out = ScrapeResponse::default();
    for (key, stats) in files {
        let hash = InfoHashV1(binary20("files", &Value::String(key.clone()))?);
        let stats = stats.as_object().ok_or(WsDecodeError::WrongType {
            field: "files",
            expected: "an object of objects",
        })?;
        let count = |field| {
            optional(stats, field)
                .map(|v| uint32(field, v))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        out.files.push((
            hash,
            ScrapeStats {
                complete: count("complete")?,
                downloaded: count("downloaded")?,
                incomplete: count("incomplete")?,
            },
        ));
    }
    Ok(ServerMessage::Scraped(out))
}

/// When to reconnect to a WebSocket tracker after a failure: `base·2ⁿ`
/// capped at `max`, plus up to `jitter` of randomness the caller supplies.
/// The attempt count resets once a connection has proved useful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// The longest delay before jitter.
    pub max: Duration,
    /// The most randomness added to a delay.
    pub jitter: Duration,
    attempts: u32,
}

impl Backoff {
    /// A back-off that has not failed yet.
    #[must_use]
    pub const fn new(base: Duration, max: Duration, jitter: Duration) -> Self {
        Self {
            base,
            max,
            jitter,
            attempts: 0,
        }
    }

    /// The delay before the next attempt, counting one more failure.
    /// `random` picks the jitter: `jitter · random / u64::MAX`.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let factor = 1u32.checked_shl(self.attempts).unwrap_or(u32::MAX);
        let delay = self.base.saturating_mul(factor).min(self.max);
        self.attempts = self.attempts.saturating_add(1).min(32);
        let jitter_nanos = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
        // u128 arithmetic cannot overflow here: both factors fit in 64 bits.
        let extra = u128::from(jitter_nanos) * u128::from(random) / u128::from(u64::MAX);
        delay.saturating_add(Duration::from_nanos(
            u64::try_from(extra).unwrap_or(u64::MAX),
        ))
    }

    /// Failures since the last reset.
    #[must_use]
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Forgets the failures: the next delay is `base` again.
    pub const fn reset(&mut self) {
        self.attempts = 0;
    }
}
