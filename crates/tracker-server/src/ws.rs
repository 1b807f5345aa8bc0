//! WebSocket signaling (WebTorrent), sans-IO: JSON text frames in, frames
//! for this and other connections out, over the store every protocol shares.
//!
//! The behaviour follows bittorrent-tracker 11's server:
//! - an announce gets `{"action":"announce","info_hash","interval",
//!   "complete","incomplete"}`; its `offers` are relayed, one each, to up
//!   to that many other browser peers of the swarm, as
//!   `{"action":"announce","info_hash","peer_id","offer_id","offer"}` with
//!   the offerer's peer id;
//! - an announce carrying an `answer` is relayed to the connection of the
//!   peer `to_peer_id` of that swarm, as `{… "peer_id","offer_id","answer"}`
//!   with the answerer's peer id, and the answerer gets no reply;
//! - `stopped` removes the peer and answers with the new counts;
//! - a scrape lists `files` keyed by info-hash (one, several, or every
//!   swarm when the frame names none) with `complete`, `incomplete`,
//!   `downloaded`, and `flags.min_request_interval`;
//! - anything else gets `{"failure reason": …}`, with `action` and
//!   `info_hash` when the request itself was well formed;
//! - when a connection closes, its peers leave their swarms.
//!
//! Ids (info-hash, peer id, offer id) are 20-character strings, one
//! character per byte, as in the client crate's [`webtorrent_tracker::ws`]
//! frames, which this module decodes and encodes with.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use webtorrent_tracker::ws::{
    ClientMessage, ServerMessage, WsAnnounce, WsAnnounceReply, WsAnswer, WsDecodeError,
    decode_client, encode_server,
};
use webtorrent_tracker::{Event, ScrapeStats};
use webtorrent_types::{InfoHashV1, PeerId};

use crate::store::{PeerAddr, PeerAnnounce, PeerKind, SwarmStore};

/// Settings of a [`WsHandler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsConfig {
    /// The `interval` of announce replies (bittorrent-tracker: 120 s).
    pub interval: Duration,
    /// The `flags.min_request_interval` of scrape replies
    /// (bittorrent-tracker: 600 s).
    pub scrape_interval: Duration,
    /// The most bytes of one text message; larger ones are refused.
    pub max_message_bytes: usize,
    /// The most swarms one connection may announce in.
    pub max_swarms_per_connection: usize,
    /// The most swarms a scrape naming none lists (0: such scrapes are
    /// answered with no files).
    pub max_full_scrape: usize,
}

impl Default for WsConfig {
    /// bittorrent-tracker's intervals; 64 KiB messages; 1024 swarms per
    /// connection; full scrapes of up to 1000 swarms.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(120),
            scrape_interval: Duration::from_secs(600),
            max_message_bytes: 64 * 1024,
            max_swarms_per_connection: 1024,
            max_full_scrape: 1000,
        }
    }
}

/// A text frame for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsSend {
    /// The connection, as numbered by the caller of [`WsHandler::open`].
    pub to: u64,
    /// The JSON text.
    pub text: String,
}

#[derive(Debug, Default)]
struct Connection {
    /// Swarm memberships this connection announced, to undo on close.
    peers: Vec<(InfoHashV1, PeerId)>,
}

/// The signaling state of every WebSocket connection: which peers each one
/// announced, for routing and for cleanup when it closes.
///
/// ```
/// use std::time::Instant;
/// use webtorrent_tracker_server::{StoreConfig, SwarmStore, ws::WsHandler};
///
/// let mut store = SwarmStore::new(StoreConfig::default(), 1);
/// let mut ws = WsHandler::default();
/// let mut out = Vec::new();
/// ws.open(1);
/// let hash = "h".repeat(20);
/// let frame = format!(
///     r#"{{"action":"announce","info_hash":"{hash}","peer_id":"aaaaaaaaaaaaaaaaaaaa","left":0,"event":"started"}}"#
/// );
/// ws.message(&mut store, Instant::now(), 1, &frame, &mut out);
/// assert_eq!(out[0].to, 1);
/// assert!(out[0].text.contains(r#""complete":1"#));
/// ws.close(&mut store, 1);
/// assert_eq!(store.peer_count(), 0);
/// ```
#[derive(Debug, Default)]
pub struct WsHandler {
    config: WsConfig,
    connections: HashMap<u64, Connection>,
}

impl WsHandler {
    /// A handler with these settings.
    #[must_use]
    pub fn new(config: WsConfig) -> Self {
        Self {
            config,
            connections: HashMap::new(),
        }
    }

    /// The settings in use.
    #[must_use]
    pub const fn config(&self) -> &WsConfig {
        &self.config
    }

    /// Open connections.
    #[must_use]
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// A new connection, numbered `conn` by the caller (numbers must not
    /// be reused while open).
    pub fn open(&mut self, conn: u64) {
        self.connections.entry(conn).or_default();
    }

    /// The connection closed: its peers leave their swarms (unless another
    /// connection announced the same peer id since).
    pub fn close(&mut self, store: &mut SwarmStore, conn: u64) {
        if let Some(c) = self.connections.remove(&conn) {
            for (info_hash, peer_id) in c.peers {
                store.remove(&info_hash, &peer_id, PeerAddr::WebRtc(conn));
            }
        }
    }

    /// One text message from connection `conn`; frames to send are pushed
    /// to `out` (for `conn` itself and for the connections of other
    /// peers). A connection not [`open`](Self::open)ed is opened.
    pub fn message(
        &mut self,
        store: &mut SwarmStore,
        now: Instant,
        conn: u64,
        text: &str,
        out: &mut Vec<WsSend>,
    ) {
        if text.len() > self.config.max_message_bytes {
            let e = WsDecodeError::TooLarge {
                len: text.len(),
                limit: self.config.max_message_bytes,
            };
            out.push(failure(conn, None, false, &e.to_string()));
            return;
        }
        match decode_client(text) {
            Ok(ClientMessage::Announce(a)) => self.announce(store, now, conn, &a, out),
            Ok(ClientMessage::Answer(a)) => self.answer(store, now, conn, &a, out),
            Ok(ClientMessage::Scrape(hashes)) => self.scrape(store, conn, hashes, out),
            Ok(_) => out.push(failure(conn, None, false, "invalid action")),
            Err(e) => out.push(decode_failure(conn, text, &e)),
        }
    }

    /// Remembers that `conn` announced `peer_id` in `info_hash`; false if
    /// the connection is at its limit of swarms.
    fn remember(&mut self, conn: u64, info_hash: InfoHashV1, peer_id: PeerId) -> bool {
        let limit = self.config.max_swarms_per_connection;
        let c = self.connections.entry(conn).or_default();
        if c.peers.contains(&(info_hash, peer_id)) {
            return true;
        }
        if c.peers.len() >= limit {
            return false;
        }
        c.peers.push((info_hash, peer_id));
        true
    }

    fn forget(&mut self, conn: u64, info_hash: InfoHashV1, peer_id: PeerId) {
        if let Some(c) = self.connections.get_mut(&conn) {
            c.peers.retain(|p| *p != (info_hash, peer_id));
        }
    }

    fn announce(
        &mut self,
        store: &mut SwarmStore,
        now: Instant,
        conn: u64,
        a: &WsAnnounce,
        out: &mut Vec<WsSend>,
    ) {
        let stopping = a.event == Event::Stopped;
        if stopping {
            self.forget(conn, a.info_hash, a.peer_id);
        } else if !self.remember(conn, a.info_hash, a.peer_id) {
            out.push(failure(
                conn,
                Some(a.info_hash),
                false,
                "too many torrents on one connection",
            ));
            return;
        }
        // bittorrent-tracker relays one offer per peer and asks the swarm
        // for exactly as many peers as there are offers.
        let numwant = u32::try_from(a.offers.len()).unwrap_or(u32::MAX);
        let announce = PeerAnnounce {
            peer_id: a.peer_id,
            addr: PeerAddr::WebRtc(conn),
            // An unknown `left` (a magnet link without metadata) is a leecher.
            left: a.left.unwrap_or(u64::MAX),
            event: a.event,
            numwant: Some(numwant),
        };
        let reply = match store.announce(now, a.info_hash, &announce, PeerKind::WebRtc) {
            Ok(r) => r,
            Err(e) => {
                self.forget(conn, a.info_hash, a.peer_id);
                out.push(failure(conn, Some(a.info_hash), false, &e.to_string()));
                return;
            }
        };
        if !reply.stored {
            self.forget(conn, a.info_hash, a.peer_id);
        }
        out.push(WsSend {
            to: conn,
            text: encode_server(&ServerMessage::Announced {
                info_hash: a.info_hash,
                reply: WsAnnounceReply {
                    interval: Some(self.config.interval),
                    complete: Some(reply.seeders),
                    incomplete: Some(reply.leechers),
                    ..WsAnnounceReply::default()
                },
            }),
        });
        for (peer, offer) in reply.peers.iter().zip(&a.offers) {
            let PeerAddr::WebRtc(to) = peer.addr else {
                continue;
            };
            out.push(WsSend {
                to,
                text: encode_server(&ServerMessage::Offer {
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    offer_id: offer.offer_id,
                    offer: offer.offer.clone(),
                }),
            });
        }
    }

    fn answer(
        &mut self,
        store: &mut SwarmStore,
        now: Instant,
        conn: u64,
        a: &WsAnswer,
        out: &mut Vec<WsSend>,
    ) {
        // bittorrent-tracker counts an answer as an announce of the
        // answerer (joining it as a leecher when it was not in the swarm)
        // and sends the answerer nothing back, not even a refusal.
        if !store.touch(now, &a.info_hash, &a.peer_id)
            && self.remember(conn, a.info_hash, a.peer_id)
        {
            let announce = PeerAnnounce {
                peer_id: a.peer_id,
                addr: PeerAddr::WebRtc(conn),
                left: u64::MAX,
                event: Event::None,
                numwant: Some(0),
            };
            let stored = store
                .announce(now, a.info_hash, &announce, PeerKind::WebRtc)
                .is_ok_and(|r| r.stored);
            if !stored {
                self.forget(conn, a.info_hash, a.peer_id);
            }
        }
        let Some(target) = store.peer(&a.info_hash, &a.to_peer_id) else {
            return;
        };
        let PeerAddr::WebRtc(to) = target.addr else {
            return;
        };
        let text = encode_server(&ServerMessage::Answer {
            info_hash: a.info_hash,
            peer_id: a.peer_id,
            offer_id: a.offer_id,
            answer: a.answer.clone(),
        });
        out.push(WsSend { to, text });
    }

    fn scrape(
        &self,
        store: &SwarmStore,
        conn: u64,
        mut hashes: Vec<InfoHashV1>,
        out: &mut Vec<WsSend>,
    ) {
        if hashes.is_empty() {
            hashes = store.info_hashes(self.config.max_full_scrape);
        }
        let mut files = Map::new();
        for h in hashes {
            let s: ScrapeStats = store.scrape(&h);
            let mut e = Map::new();
            e.insert("complete".into(), s.complete.into());
            e.insert("incomplete".into(), s.incomplete.into());
            e.insert("downloaded".into(), s.downloaded.into());
            files.insert(binary_string(&h.0), Value::Object(e));
        }
        let mut flags = Map::new();
        flags.insert(
            "min_request_interval".into(),
            self.config.scrape_interval.as_secs().into(),
        );
        let mut m = Map::new();
        m.insert("action".into(), "scrape".into());
        m.insert("files".into(), Value::Object(files));
        m.insert("flags".into(), Value::Object(flags));
        out.push(WsSend {
            to: conn,
            text: Value::Object(m).to_string(),
        });
    }
}

fn binary_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn failure(conn: u64, info_hash: Option<InfoHashV1>, scrape: bool, reason: &str) -> WsSend {
    WsSend {
        to: conn,
        text: encode_server(&ServerMessage::Failure {
            info_hash,
            scrape,
            reason: reason.to_owned(),
        }),
    }
}

/// The refusal of a frame that did not decode, in bittorrent-tracker's
/// words where it has some: errors in the ids or the action get a bare
/// `failure reason`; an unknown event in an otherwise good announce names
/// the action and the torrent.
fn decode_failure(conn: u64, text: &str, e: &WsDecodeError) -> WsSend {
    let reason = match e {
        WsDecodeError::Missing { field }
        | WsDecodeError::WrongType { field, .. }
        | WsDecodeError::WrongLength { field, .. }
        | WsDecodeError::NotBinary { field } => match *field {
            "info_hash" => "invalid info_hash".to_owned(),
            "peer_id" => "invalid peer_id".to_owned(),
            "to_peer_id" => "invalid `to_peer_id` (required with `answer`)".to_owned(),
            // JSON that is not an object has no action.
            "frame" => "invalid action in WS request: undefined".to_owned(),
            "action" => {
                let shown = serde_json::from_str::<Map<String, Value>>(text)
                    .ok()
                    .and_then(|m| m.get("action").map(Value::to_string))
                    .unwrap_or_else(|| "undefined".to_owned());
                format!("invalid action in WS request: {shown}")
            }
            _ => e.to_string(),
        },
        WsDecodeError::UnknownAction => {
            let action = serde_json::from_str::<Map<String, Value>>(text)
                .ok()
                .and_then(|m| m.get("action").cloned());
            // As JavaScript would print it.
            let shown = match action {
                Some(Value::String(s)) => s,
                Some(v) => v.to_string(),
                None => "undefined".to_owned(),
            };
            format!("invalid action in WS request: {shown}")
        }
        WsDecodeError::UnknownEvent => {
            let info_hash = serde_json::from_str::<Map<String, Value>>(text)
                .ok()
                .and_then(|m| m.get("info_hash")?.as_str().and_then(latin1_20))
                .map(InfoHashV1);
            return failure(conn, info_hash, false, "invalid event");
        }
        _ => e.to_string(),
    };
    failure(conn, None, false, &reason)
}

fn latin1_20(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let mut n = 0;
    for c in s.chars() {
        *out.get_mut(n)? = u8::try_from(u32::from(c)).ok()?;
        n += 1;
    }
    (n == 20).then_some(out)
}
