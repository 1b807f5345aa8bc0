//! [`WsConnection`]: the bookkeeping of one WebSocket tracker connection,
//! sans-IO.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use webtorrent_types::{InfoHashV1, PeerId};

use super::{
    Backoff, ClientMessage, MAX_SCRAPE_HASHES, OfferId, ServerMessage, Signal, WsAnnounce,
    WsAnnounceReply, WsAnswer, decode_server, encode_client,
};
use crate::{Event, ScrapeResponse, TrackerError};

/// Settings of a WebSocket tracker client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsConfig {
    /// Time allowed for TCP, TLS and the WebSocket handshake together
    /// (used by the async client).
    pub connect_timeout: Duration,
    /// First delay before reconnecting after a failure (doubled per failure).
    pub reconnect_base: Duration,
    /// Longest delay before reconnecting, before jitter.
    pub reconnect_max: Duration,
    /// Most random time added to each reconnection delay.
    pub reconnect_jitter: Duration,
    /// How long an offer's id is kept to route its answer.
    pub offer_timeout: Duration,
    /// How long a scrape waits for its reply.
    pub scrape_timeout: Duration,
    /// Events buffered per torrent by the async client; beyond this, new
    /// events are dropped (a relayed offer then simply goes unanswered).
    pub event_capacity: usize,
}

impl Default for WsConfig {
    /// bittorrent-tracker's client timings: reconnect after 10 s doubling to
    /// an hour with up to 5 minutes of jitter, offers kept 50 s.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            reconnect_base: Duration::from_secs(10),
            reconnect_max: Duration::from_secs(3600),
            reconnect_jitter: Duration::from_secs(300),
            offer_timeout: Duration::from_secs(50),
            scrape_timeout: Duration::from_secs(15),
            event_capacity: 256,
        }
    }
}

impl WsConfig {
    /// The same settings with other reconnection delays.
    #[must_use]
    pub const fn with_reconnect(mut self, base: Duration, max: Duration, jitter: Duration) -> Self {
        self.reconnect_base = base;
        self.reconnect_max = max;
        self.reconnect_jitter = jitter;
        self
    }

    /// The same settings with another scrape timeout.
    #[must_use]
    pub const fn with_scrape_timeout(mut self, timeout: Duration) -> Self {
        self.scrape_timeout = timeout;
        self
    }
}

/// What a WebSocket tracker tells one torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsEvent {
    /// The connection is up (again). Announces made while it was down were
    /// sent now; after a reconnection the torrent was re-announced as
    /// `started` without offers, so this is the moment to announce fresh
    /// offers.
    Connected,
    /// The reply to an announce: interval and swarm counts.
    Announced(WsAnnounceReply),
    /// Another peer's offer, relayed by the tracker, to answer.
    Offer {
        /// The peer that made it.
        peer_id: PeerId,
        /// To give back with the answer.
        offer_id: OfferId,
        /// The SDP offer.
        offer: Signal,
    },
    /// The answer to one of our offers, found by its offer id.
    Answer {
        /// The peer that answered.
        peer_id: PeerId,
        /// Our offer.
        offer_id: OfferId,
        /// The SDP answer.
        answer: Signal,
    },
    /// A refusal ([`TrackerError::Failure`]), a bad frame
    /// ([`TrackerError::Frame`], [`TrackerError::ResponseTooLarge`],
    /// [`TrackerError::Malformed`]) or a lost connection
    /// ([`TrackerError::Transport`], [`TrackerError::Timeout`]); the client
    /// reconnects by itself.
    Error(TrackerError),
}

/// Names one scrape of a [`WsConnection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScrapeId(pub u64);

/// What a [`WsConnection`] wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsOutput {
    /// Send this text frame on the connection.
    Send(String),
    /// Tell a torrent.
    Event(InfoHashV1, WsEvent),
    /// A scrape finished.
    Scraped(ScrapeId, Result<ScrapeResponse, TrackerError>),
}

struct Torrent {
    peer_id: PeerId,
    /// The latest announce, and whether this connection has sent it.
    last: Option<(WsAnnounce, bool)>,
    tracker_id: Option<String>,
}

struct PendingScrape {
    id: ScrapeId,
    hashes: Vec<InfoHashV1>,
    deadline: Instant,
    sent: bool,
}

/// One WebSocket tracker connection's state, without the socket: which
/// torrents it carries, the offers waiting for answers (by offer id), the
/// scrapes waiting for replies (in order), the announces to send when the
/// connection comes up, and when to reconnect.
///
/// The driver tells it about the socket ([`on_connected`](Self::on_connected),
/// [`on_frame`](Self::on_frame), [`on_disconnected`](Self::on_disconnected)),
/// passes the torrents' requests, calls
/// [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), and after each call drains
/// [`poll_output`](Self::poll_output) until it returns `None`: frames to
/// send, events for torrents, finished scrapes. It connects when
/// [`wants_connect`](Self::wants_connect) says so.
///
/// ```
/// use std::time::Instant;
/// use webtorrent_tracker::Event;
/// use webtorrent_tracker::ws::{WsAnnounce, WsConfig, WsConnection, WsEvent, WsOutput};
/// use webtorrent_types::{InfoHashV1, PeerId};
///
/// let (hash, me) = (InfoHashV1([1; 20]), PeerId([b'm'; 20]));
/// let mut c = WsConnection::new(WsConfig::default());
/// c.add_torrent(hash, me)?;
/// let now = Instant::now();
/// let mut a = WsAnnounce::new(hash, me);
/// a.event = Event::Started;
/// c.announce(now, a); // kept until the connection is up
/// assert!(c.poll_output().is_none() && c.wants_connect(now));
/// c.on_connected(now);
/// assert_eq!(c.poll_output(), Some(WsOutput::Event(hash, WsEvent::Connected)));
/// assert!(matches!(c.poll_output(), Some(WsOutput::Send(frame)) if frame.contains("started")));
/// # Ok::<(), webtorrent_tracker::TrackerError>(())
/// ```
pub struct WsConnection {
    config: WsConfig,
    connected: bool,
    /// When to try connecting again, after a failure.
    retry_at: Option<Instant>,
    backoff: Backoff,
    torrents: HashMap<InfoHashV1, Torrent>,
    offers: HashMap<OfferId, (InfoHashV1, Instant)>,
    scrapes: VecDeque<PendingScrape>,
    next_scrape: u64,
    outputs: VecDeque<WsOutput>,
}

impl std::fmt::Debug for WsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConnection")
            .field("connected", &self.connected)
            .field("torrents", &self.torrents.len())
            .field("offers", &self.offers.len())
            .field("scrapes", &self.scrapes.len())
            .finish_non_exhaustive()
    }
}

impl WsConnection {
    /// A connection not yet made, with no torrent.
    #[must_use]
    pub fn new(config: WsConfig) -> Self {
        let backoff = Backoff::new(
            config.reconnect_base,
            config.reconnect_max,
            config.reconnect_jitter,
        );
        Self {
            config,
            connected: false,
            retry_at: None,
            backoff,
            torrents: HashMap::new(),
            offers: HashMap::new(),
            scrapes: VecDeque::new(),
            next_scrape: 0,
            outputs: VecDeque::new(),
        }
    }

    /// The settings.
    #[must_use]
    pub const fn config(&self) -> &WsConfig {
        &self.config
    }

    /// Whether the driver has told of a connection that is up.
    #[must_use]
    pub const fn is_connected(&self) -> bool {
        self.connected
    }

    /// No torrent and no scrape: the connection can be closed.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.torrents.is_empty() && self.scrapes.is_empty()
    }

    /// Whether the driver should connect now: not connected, something to
    /// serve, and the back-off delay over.
    #[must_use]
    pub fn wants_connect(&self, now: Instant) -> bool {
        !self.connected && !self.is_idle() && self.retry_at.is_none_or(|t| now >= t)
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) (or connect):
    /// the earliest offer or scrape expiry, or the end of the back-off.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let offers = self.offers.values().map(|(_, d)| *d);
        let scrapes = self.scrapes.iter().map(|s| s.deadline);
        let retry = self.retry_at.filter(|_| !self.connected);
        offers.chain(scrapes).chain(retry).min()
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<WsOutput> {
        self.outputs.pop_front()
    }

    fn emit(&mut self, info_hash: InfoHashV1, event: WsEvent) {
        self.outputs.push_back(WsOutput::Event(info_hash, event));
    }

    fn broadcast(&mut self, error: &TrackerError) {
        let mut hashes: Vec<_> = self.torrents.keys().copied().collect();
        hashes.sort_unstable_by_key(|h| h.0);
        for h in hashes {
            self.emit(h, WsEvent::Error(error.clone()));
        }
    }

    fn send(&mut self, message: &ClientMessage) {
        self.outputs
            .push_back(WsOutput::Send(encode_client(message)));
    }

    /// Adds a torrent.
    ///
    /// # Errors
    /// [`TrackerError::AlreadyAnnounced`] if it is already here: relayed
    /// offers do not say which of two peers of ours they are for.
    pub fn add_torrent(
        &mut self,
        info_hash: InfoHashV1,
        peer_id: PeerId,
    ) -> Result<(), TrackerError> {
        match self.torrents.entry(info_hash) {
            Entry::Occupied(_) => Err(TrackerError::AlreadyAnnounced),
            Entry::Vacant(v) => {
                v.insert(Torrent {
                    peer_id,
                    last: None,
                    tracker_id: None,
                });
                Ok(())
            }
        }
    }

    /// Removes a torrent and forgets its offers.
    pub fn remove_torrent(&mut self, info_hash: InfoHashV1) {
        self.torrents.remove(&info_hash);
        self.offers.retain(|_, (h, _)| *h != info_hash);
    }

    /// Announces a torrent of this connection: sent now if connected
    /// (recording its offers for their answers), otherwise kept, replacing
    /// any earlier unsent announce, until [`on_connected`](Self::on_connected).
    /// An announce for a torrent not added is ignored.
    pub fn announce(&mut self, now: Instant, mut announce: WsAnnounce) {
        let connected = self.connected;
        let Some(t) = self.torrents.get_mut(&announce.info_hash) else {
            return;
        };
        announce.trackerid.clone_from(&t.tracker_id);
        t.last = Some((announce.clone(), connected));
        if connected {
            let deadline = now + self.config.offer_timeout;
            for o in &announce.offers {
                self.offers
                    .insert(o.offer_id, (announce.info_hash, deadline));
            }
            self.send(&ClientMessage::Announce(announce));
        }
    }

    /// Answers a relayed offer; dropped when not connected (the offer went
    /// with the connection) or for a torrent not added.
    pub fn answer(&mut self, mut answer: WsAnswer) {
        if !self.connected {
            return;
        }
        if let Some(t) = self.torrents.get(&answer.info_hash) {
            answer.trackerid.clone_from(&t.tracker_id);
            self.send(&ClientMessage::Answer(answer));
        }
    }

    /// Scrapes: sent now if connected, else when the connection comes up.
    /// The result is a [`WsOutput::Scraped`] with the id returned, within
    /// [`WsConfig::scrape_timeout`].
    ///
    /// # Errors
    /// [`TrackerError::TooManyInfoHashes`] above [`MAX_SCRAPE_HASHES`].
    pub fn scrape(
        &mut self,
        now: Instant,
        info_hashes: Vec<InfoHashV1>,
    ) -> Result<ScrapeId, TrackerError> {
        if info_hashes.len() > MAX_SCRAPE_HASHES {
            return Err(TrackerError::TooManyInfoHashes {
                count: info_hashes.len(),
                limit: MAX_SCRAPE_HASHES,
            });
        }
        let id = ScrapeId(self.next_scrape);
        self.next_scrape = self.next_scrape.wrapping_add(1);
        if self.connected {
            self.send(&ClientMessage::Scrape(info_hashes.clone()));
        }
        self.scrapes.push_back(PendingScrape {
            id,
            hashes: info_hashes,
            deadline: now + self.config.scrape_timeout,
            sent: self.connected,
        });
        Ok(id)
    }

    /// The connection is up: every torrent hears [`WsEvent::Connected`];
    /// announces not sent yet go out as they are, announces sent on an
    /// earlier connection again as `started` without their (stale) offers,
    /// and waiting scrapes are sent.
    pub fn on_connected(&mut self, now: Instant) {
        self.connected = true;
        self.retry_at = None;
        let mut hashes: Vec<_> = self.torrents.keys().copied().collect();
        hashes.sort_unstable_by_key(|h| h.0);
        let mut announces = Vec::new();
        for h in hashes {
            self.emit(h, WsEvent::Connected);
            let Some(t) = self.torrents.get_mut(&h) else {
                continue;
            };
            match t.last.take() {
                Some((a, false)) => announces.push(a),
                Some((mut a, true)) if a.event != Event::Stopped => {
                    a.event = Event::Started;
                    a.offers.clear();
                    announces.push(a);
                }
                other => t.last = other,
            }
        }
        for a in announces {
            self.announce(now, a);
        }
        let waiting: Vec<_> = self
            .scrapes
            .iter_mut()
            .filter(|s| !s.sent)
            .map(|s| {
                s.sent = true;
                s.hashes.clone()
            })
            .collect();
        for hashes in waiting {
            self.send(&ClientMessage::Scrape(hashes));
        }
    }

    /// The connection failed or could not be made: every torrent hears
    /// `error`, offers and sent scrapes are dropped (the scrapes fail), and
    /// the next attempt waits for the back-off; `random` picks its jitter.
    pub fn on_disconnected(&mut self, now: Instant, error: &TrackerError, random: u64) {
        self.connected = false;
        self.broadcast(error);
        self.offers.clear();
        let (lost, kept): (VecDeque<_>, VecDeque<_>) = self.scrapes.drain(..).partition(|s| s.sent);
        self.scrapes = kept;
        for s in lost {
            self.outputs
                .push_back(WsOutput::Scraped(s.id, Err(error.clone())));
        }
        self.retry_at = Some(now + self.backoff.next_delay(random));
    }

    /// Expires offers nobody answered and scrapes nobody replied to.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.offers.retain(|_, (_, deadline)| *deadline > now);
        let waited = self.config.scrape_timeout;
        let (expired, kept): (VecDeque<_>, VecDeque<_>) =
            self.scrapes.drain(..).partition(|s| s.deadline <= now);
        self.scrapes = kept;
        for s in expired {
            self.outputs.push_back(WsOutput::Scraped(
                s.id,
                Err(TrackerError::Timeout {
                    attempts: 1,
                    waited,
                }),
            ));
        }
    }

    /// A text frame from the tracker. A frame that cannot be decoded is a
    /// [`WsEvent::Error`] for every torrent; the connection stays up.
    pub fn on_frame(&mut self, now: Instant, text: &str) {
        let message = match decode_server(text) {
            Ok(m) => m,
            Err(e) => {
                self.broadcast(&TrackerError::Frame(e));
                return;
            }
        };
        // The tracker speaks the protocol: the back-off starts over.
        self.backoff.reset();
        self.handle_timeout(now);
        match message {
            ServerMessage::Announced { info_hash, reply } => {
                if let Some(t) = self.torrents.get_mut(&info_hash) {
                    if reply.tracker_id.is_some() {
                        t.tracker_id.clone_from(&reply.tracker_id);
                    }
                    self.emit(info_hash, WsEvent::Announced(reply));
                }
            }
            ServerMessage::Offer {
                info_hash,
                peer_id,
                offer_id,
                offer,
            } => {
                // Offers of our own peer id are echoes of ours.
                if self
                    .torrents
                    .get(&info_hash)
                    .is_some_and(|t| t.peer_id != peer_id)
                {
                    self.emit(
                        info_hash,
                        WsEvent::Offer {
                            peer_id,
                            offer_id,
                            offer,
                        },
                    );
                }
            }
            ServerMessage::Answer {
                info_hash,
                peer_id,
                offer_id,
                answer,
            } => {
                let ours = self
                    .offers
                    .get(&offer_id)
                    .is_some_and(|(h, _)| *h == info_hash)
                    && self
                        .torrents
                        .get(&info_hash)
                        .is_some_and(|t| t.peer_id != peer_id);
                if ours {
                    self.offers.remove(&offer_id);
                    self.emit(
                        info_hash,
                        WsEvent::Answer {
                            peer_id,
                            offer_id,
                            answer,
                        },
                    );
                }
            }
            ServerMessage::Scraped(files) => {
                if let Some(i) = self.scrapes.iter().position(|s| s.sent)
                    && let Some(s) = self.scrapes.remove(i)
                {
                    self.outputs.push_back(WsOutput::Scraped(s.id, Ok(files)));
                }
            }
            ServerMessage::Failure {
                info_hash,
                scrape,
                reason,
            } => {
                let error = TrackerError::Failure { reason };
                if scrape {
                    if let Some(i) = self.scrapes.iter().position(|s| s.sent)
                        && let Some(s) = self.scrapes.remove(i)
                    {
                        self.outputs.push_back(WsOutput::Scraped(s.id, Err(error)));
                    }
                } else if let Some(h) = info_hash.filter(|h| self.torrents.contains_key(h)) {
                    self.emit(h, WsEvent::Error(error));
                } else {
                    // A request the tracker could not even parse: it does
                    // not say whose, so every torrent hears of it.
                    self.broadcast(&error);
                }
            }
        }
    }

    /// A frame that is not text or not UTF-8, or an error of the frame
    /// layer that leaves the connection up: every torrent hears `error`.
    pub fn on_bad_frame(&mut self, error: &TrackerError) {
        self.broadcast(error);
    }
}
