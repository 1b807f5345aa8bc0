//! `WsTracker`: the WebTorrent WebSocket tracker client over tokio-tungstenite.
//!
//! One task per tracker URL owns the connection; every torrent announced on
//! that URL shares it. The task ends when its last torrent is dropped and no
//! scrape is waiting, or when every handle to it is gone.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use webtorrent_types::{InfoHashV1, PeerId};

use crate::ws::{
    self, Backoff, ClientMessage, MAX_FRAME_BYTES, MAX_SCRAPE_HASHES, OfferId, ServerMessage,
    Signal, WsAnnounce, WsAnnounceReply, WsAnswer, WsOffer,
};
use crate::{Event, ScrapeResponse, TrackerError};

/// Settings of [`WsTracker`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsConfig {
    /// Time allowed for TCP, TLS and the WebSocket handshake together.
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
    /// Events buffered per torrent; beyond this, new events are dropped
    /// (a relayed offer then simply goes unanswered).
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

/// The counters of an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WsStats {
    /// Bytes uploaded this session.
    pub uploaded: u64,
    /// Bytes downloaded this session.
    pub downloaded: u64,
    /// Bytes missing; `None` when unknown (counted as a leecher).
    pub left: Option<u64>,
    /// Peers wanted (bittorrent-tracker relays one offer per peer instead).
    pub numwant: Option<u32>,
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
    /// Another peer's offer, relayed by the tracker: answer it with
    /// [`WsTorrent::answer`].
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
    /// ([`TrackerError::Frame`], [`TrackerError::ResponseTooLarge`]) or a
    /// lost connection ([`TrackerError::Transport`], [`TrackerError::Timeout`]);
    /// the client reconnects by itself.
    Error(TrackerError),
}

type ScrapeReply = oneshot::Sender<Result<ScrapeResponse, TrackerError>>;

enum Command {
    Add {
        info_hash: InfoHashV1,
        peer_id: PeerId,
        events: mpsc::Sender<WsEvent>,
        reply: oneshot::Sender<Result<(), TrackerError>>,
    },
    Remove(InfoHashV1),
    Announce(Box<WsAnnounce>),
    Answer(Box<WsAnswer>),
    Scrape(Vec<InfoHashV1>, ScrapeReply),
}

/// A WebSocket (WebTorrent) tracker client. Cheap to clone; one instance
/// serves any number of trackers and torrents, with one connection per
/// tracker URL shared by the torrents announced on it.
///
/// TLS (`wss://`) is rustls with the *ring* provider and the platform's
/// certificate verifier, as for [`crate::HttpTracker`].
///
/// ```no_run
/// # async fn run() -> Result<(), webtorrent_tracker::TrackerError> {
/// use webtorrent_tracker::{Event, WsConfig, WsEvent, WsStats, WsTracker};
/// use webtorrent_tracker::ws::{OfferId, Signal, WsOffer};
/// use webtorrent_types::{InfoHashV1, PeerId};
///
/// let client = WsTracker::new(WsConfig::default())?;
/// let mut torrent = client
///     .add_torrent("wss://tracker.example", InfoHashV1([1; 20]), PeerId::ours([7; 12]))
///     .await?;
/// let offer = WsOffer { offer_id: OfferId([9; 20]), offer: Signal::sdp("offer", "v=0\r\n…") };
/// let stats = WsStats { left: Some(1 << 20), ..WsStats::default() };
/// torrent.announce(stats, Event::Started, vec![offer])?;
/// while let Some(event) = torrent.next_event().await {
///     match event {
///         WsEvent::Offer { peer_id, offer_id, offer } => {
///             // Hand `offer` to WebRTC, then send its answer back:
///             # let answer = offer;
///             torrent.answer(peer_id, offer_id, answer)?;
///         }
///         WsEvent::Answer { offer_id, answer, .. } => { /* complete our offer `offer_id` */ }
///         other => println!("{other:?}"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct WsTracker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: WsConfig,
    tls: Arc<rustls::ClientConfig>,
    connections: Mutex<HashMap<String, mpsc::UnboundedSender<Command>>>,
}

impl WsTracker {
    /// A client with these settings.
    ///
    /// # Errors
    /// [`TrackerError::Transport`] if TLS cannot be set up (for example no
    /// platform certificate store).
    pub fn new(config: WsConfig) -> Result<Self, TrackerError> {
        let setup = |what: &str, e: &dyn std::fmt::Display| TrackerError::Transport {
            message: format!("{what}: {e}"),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
            .map_err(|e| setup("certificate verifier", &e))?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| setup("TLS versions", &e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                tls: Arc::new(tls),
                connections: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Sends `command` to the task of `url`, starting one if there is none
    /// (or the previous one ended).
    fn send(&self, url: &str, mut command: Command) -> Result<(), TrackerError> {
        parse_url(url)?;
        let mut connections = self
            .inner
            .connections
            .lock()
            // The map stays consistent even if a holder panicked.
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = connections.get(url) {
            match tx.send(command) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(c)) => command = c,
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        // The receiver is alive: the task is spawned below.
        let _ = tx.send(command);
        connections.retain(|_, tx| !tx.is_closed());
        connections.insert(url.to_owned(), tx.clone());
        let connection = Connection::new(url.to_owned(), Arc::clone(&self.inner), rx);
        tokio::spawn(connection.run());
        Ok(())
    }

    /// Starts announcing a torrent on the tracker at `url` (`ws://` or
    /// `wss://`), connecting if this client has no connection there yet.
    /// Nothing is sent until [`WsTorrent::announce`].
    ///
    /// # Errors
    /// [`TrackerError::InvalidUrl`], [`TrackerError::AlreadyAnnounced`] if
    /// this client already has this info-hash on `url`.
    ///
    /// # Panics
    /// Outside a tokio runtime (the connection task is spawned).
    pub async fn add_torrent(
        &self,
        url: &str,
        info_hash: InfoHashV1,
        peer_id: PeerId,
    ) -> Result<WsTorrent, TrackerError> {
        let (events_tx, events) = mpsc::channel(self.inner.config.event_capacity.max(1));
        let (reply, answer) = oneshot::channel();
        self.send(
            url,
            Command::Add {
                info_hash,
                peer_id,
                events: events_tx,
                reply,
            },
        )?;
        answer.await.map_err(|_| TrackerError::Shutdown)??;
        Ok(WsTorrent {
            client: self.clone(),
            url: url.to_owned(),
            info_hash,
            peer_id,
            events,
        })
    }

    /// Scrapes the tracker at `url` for these torrents (at most
    /// [`ws::MAX_SCRAPE_HASHES`]). Waits for the connection if it is being
    /// set up.
    ///
    /// # Errors
    /// [`TrackerError::Failure`] if the tracker refuses,
    /// [`TrackerError::Timeout`] after [`WsConfig::scrape_timeout`],
    /// [`TrackerError::Transport`] if the connection drops first,
    /// [`TrackerError::TooManyInfoHashes`], [`TrackerError::InvalidUrl`].
    pub async fn scrape(
        &self,
        url: &str,
        info_hashes: &[InfoHashV1],
    ) -> Result<ScrapeResponse, TrackerError> {
        if info_hashes.len() > MAX_SCRAPE_HASHES {
            return Err(TrackerError::TooManyInfoHashes {
                count: info_hashes.len(),
                limit: MAX_SCRAPE_HASHES,
            });
        }
        let (reply, answer) = oneshot::channel();
        self.send(url, Command::Scrape(info_hashes.to_vec(), reply))?;
        answer.await.map_err(|_| TrackerError::Shutdown)?
    }
}

/// One torrent on one WebSocket tracker: announces, answers, and the events
/// the tracker sends for it. Dropping it removes the torrent from the
/// connection (announce [`Event::Stopped`] first to leave the swarm at once;
/// otherwise the tracker forgets the peer when the connection closes or
/// after its timeout).
#[derive(Debug)]
pub struct WsTorrent {
    client: WsTracker,
    url: String,
    info_hash: InfoHashV1,
    peer_id: PeerId,
    events: mpsc::Receiver<WsEvent>,
}

impl WsTorrent {
    /// The tracker URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The torrent.
    #[must_use]
    pub const fn info_hash(&self) -> InfoHashV1 {
        self.info_hash
    }

    /// Announces. Offers are relayed by the tracker to other peers (one
    /// each); their answers come back as [`WsEvent::Answer`] for
    /// [`WsConfig::offer_timeout`]. bittorrent-tracker's own client sends no
    /// offers with `stopped` or `completed`. While the connection is down
    /// the latest announce waits and is sent on reconnection.
    ///
    /// # Errors
    /// [`TrackerError::Shutdown`] if the connection task is gone.
    pub fn announce(
        &self,
        stats: WsStats,
        event: Event,
        offers: Vec<WsOffer>,
    ) -> Result<(), TrackerError> {
        let announce = WsAnnounce {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            uploaded: stats.uploaded,
            downloaded: stats.downloaded,
            left: stats.left,
            event,
            numwant: stats.numwant,
            offers,
            trackerid: None,
        };
        self.client
            .send(&self.url, Command::Announce(Box::new(announce)))
    }

    /// Answers an offer from [`WsEvent::Offer`]. Dropped if the connection
    /// is down (the offer is gone with it).
    ///
    /// # Errors
    /// [`TrackerError::Shutdown`] if the connection task is gone.
    pub fn answer(
        &self,
        to_peer_id: PeerId,
        offer_id: OfferId,
        answer: Signal,
    ) -> Result<(), TrackerError> {
        let answer = WsAnswer {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            to_peer_id,
            offer_id,
            answer,
            trackerid: None,
        };
        self.client
            .send(&self.url, Command::Answer(Box::new(answer)))
    }

    /// The next event; `None` once the connection task has ended.
    pub async fn next_event(&mut self) -> Option<WsEvent> {
        self.events.recv().await
    }
}

impl Drop for WsTorrent {
    fn drop(&mut self) {
        let connections = self
            .client
            .inner
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = connections.get(&self.url) {
            // A task that already ended has nothing to remove.
            let _ = tx.send(Command::Remove(self.info_hash));
        }
    }
}

/// Where to connect for a `ws://` or `wss://` URL.
struct Target {
    tls: bool,
    host: String,
    port: u16,
}

fn parse_url(url: &str) -> Result<Target, TrackerError> {
    let invalid = |what| TrackerError::InvalidUrl {
        url: url.to_owned(),
        what,
    };
    let request = url
        .into_client_request()
        .map_err(|_| invalid("not a WebSocket URL"))?;
    let uri = request.uri();
    let tls = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("ws") => false,
        Some(s) if s.eq_ignore_ascii_case("wss") => true,
        _ => return Err(invalid("not a ws:// or wss:// URL")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(Target { tls, host, port })
}

/// A byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

fn transport(what: &str, e: &dyn std::fmt::Display) -> TrackerError {
    TrackerError::Transport {
        message: format!("{what}: {e}"),
    }
}

fn ws_error(e: &tungstenite::Error) -> TrackerError {
    match e {
        tungstenite::Error::Capacity(_) => TrackerError::ResponseTooLarge {
            limit: MAX_FRAME_BYTES,
        },
        other => transport("WebSocket", other),
    }
}

async fn connect(url: &str, tls: &Arc<rustls::ClientConfig>) -> Result<Socket, TrackerError> {
    let target = parse_url(url)?;
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| transport("connect", &e))?;
    // Frames are small and latency matters for signalling.
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if target.tls {
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| transport("TLS server name", &e))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| transport("TLS", &e))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let (socket, _response) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .map_err(|e| ws_error(&e))?;
    Ok(socket)
}

struct Torrent {
    peer_id: PeerId,
    events: mpsc::Sender<WsEvent>,
    /// The latest announce, and whether this connection has sent it.
    last: Option<(WsAnnounce, bool)>,
    tracker_id: Option<String>,
}

impl Torrent {
    fn emit(&self, event: WsEvent) {
        if self.events.try_send(event).is_err() {
            tracing::debug!("WebSocket tracker event dropped: queue full or torrent gone");
        }
    }
}

struct PendingScrape {
    hashes: Vec<InfoHashV1>,
    deadline: Instant,
    sent: bool,
    reply: ScrapeReply,
}

/// How a connected session ended.
enum End {
    /// The connection failed: reconnect after the back-off.
    Lost,
    /// Nothing is left to do: the task ends.
    Done,
}

struct Connection {
    url: String,
    inner: Arc<Inner>,
    commands: mpsc::UnboundedReceiver<Command>,
    torrents: HashMap<InfoHashV1, Torrent>,
    offers: HashMap<OfferId, (InfoHashV1, Instant)>,
    scrapes: VecDeque<PendingScrape>,
    backoff: Backoff,
    random: RandomState,
    counter: u64,
}

impl Connection {
    fn new(url: String, inner: Arc<Inner>, commands: mpsc::UnboundedReceiver<Command>) -> Self {
        let c = &inner.config;
        let backoff = Backoff::new(c.reconnect_base, c.reconnect_max, c.reconnect_jitter);
        Self {
            url,
            inner,
            commands,
            torrents: HashMap::new(),
            offers: HashMap::new(),
            scrapes: VecDeque::new(),
            backoff,
            random: RandomState::new(),
            counter: 0,
        }
    }

    fn random(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        let mut h = self.random.build_hasher();
        h.write_u64(self.counter);
        h.finish()
    }

    /// Nothing to serve: no torrent, no scrape, and no command queued.
    fn idle(&self) -> bool {
        self.torrents.is_empty() && self.scrapes.is_empty() && self.commands.is_empty()
    }

    /// When idle, closes the command channel so that the next command
    /// starts a new task, and says whether this task may end. The check and
    /// the close happen under the lock `WsTracker` sends under, so no
    /// command is lost in between.
    fn finish(&mut self) -> bool {
        if !self.idle() {
            return false;
        }
        let mut connections = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !self.commands.is_empty() {
            return false;
        }
        self.commands.close();
        connections.retain(|_, tx| !tx.is_closed());
        true
    }

    fn broadcast(&self, error: &TrackerError) {
        for t in self.torrents.values() {
            t.emit(WsEvent::Error(error.clone()));
        }
    }

    fn config(&self) -> &WsConfig {
        &self.inner.config
    }

    async fn run(mut self) {
        // The command that started the task is already queued.
        match self.commands.recv().await {
            Some(c) => self.offline(c),
            None => return,
        }
        loop {
            if self.finish() {
                break;
            }
            let connected = tokio::time::timeout(
                self.config().connect_timeout,
                connect(&self.url, &self.inner.tls),
            )
            .await;
            let error = match connected {
                Ok(Ok(socket)) => match self.session(socket).await {
                    End::Done => break,
                    End::Lost => None,
                },
                Ok(Err(e)) => Some(e),
                Err(_) => Some(TrackerError::Timeout {
                    attempts: 1,
                    waited: self.config().connect_timeout,
                }),
            };
            if let Some(e) = error {
                tracing::debug!(url = %self.url, error = %e, "WebSocket tracker connection failed");
                self.broadcast(&e);
            }
            let random = self.random();
            let delay = self.backoff.next_delay(random);
            tracing::debug!(url = %self.url, ?delay, "reconnecting to WebSocket tracker");
            if !self.wait(Instant::now() + delay).await {
                break;
            }
        }
        tracing::debug!(url = %self.url, "WebSocket tracker connection task ends");
    }

    /// Waits until `until` while disconnected; `false` if the task should end.
    async fn wait(&mut self, until: Instant) -> bool {
        loop {
            self.expire(Instant::now());
            if self.finish() {
                return false;
            }
            let next = self.next_deadline().map_or(until, |d| d.min(until));
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(c) => self.offline(c),
                    None => return false,
                },
                () = tokio::time::sleep_until(next) => {
                    if Instant::now() >= until {
                        return true;
                    }
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let offers = self.offers.values().map(|(_, d)| *d);
        let scrapes = self.scrapes.iter().map(|s| s.deadline);
        offers.chain(scrapes).min()
    }

    /// Drops offers nobody answered and fails scrapes nobody replied to.
    fn expire(&mut self, now: Instant) {
        self.offers.retain(|_, (_, deadline)| *deadline > now);
        let waited = self.inner.config.scrape_timeout;
        let (expired, kept): (VecDeque<_>, VecDeque<_>) =
            self.scrapes.drain(..).partition(|s| s.deadline <= now);
        self.scrapes = kept;
        for s in expired {
            let _ = s.reply.send(Err(TrackerError::Timeout {
                attempts: 1,
                waited,
            }));
        }
    }

    fn add(
        &mut self,
        info_hash: InfoHashV1,
        peer_id: PeerId,
        events: mpsc::Sender<WsEvent>,
    ) -> Result<(), TrackerError> {
        match self.torrents.entry(info_hash) {
            Entry::Occupied(_) => Err(TrackerError::AlreadyAnnounced),
            Entry::Vacant(v) => {
                v.insert(Torrent {
                    peer_id,
                    events,
                    last: None,
                    tracker_id: None,
                });
                Ok(())
            }
        }
    }

    fn remove(&mut self, info_hash: InfoHashV1) {
        self.torrents.remove(&info_hash);
        self.offers.retain(|_, (h, _)| *h != info_hash);
    }

    fn push_scrape(&mut self, hashes: Vec<InfoHashV1>, reply: ScrapeReply) {
        self.scrapes.push_back(PendingScrape {
            hashes,
            deadline: Instant::now() + self.inner.config.scrape_timeout,
            sent: false,
            reply,
        });
    }

    /// A command while disconnected: announces and scrapes wait for the
    /// connection, answers are dropped (their offer went with it).
    fn offline(&mut self, command: Command) {
        match command {
            Command::Add {
                info_hash,
                peer_id,
                events,
                reply,
            } => {
                let _ = reply.send(self.add(info_hash, peer_id, events));
            }
            Command::Remove(h) => self.remove(h),
            Command::Announce(a) => {
                if let Some(t) = self.torrents.get_mut(&a.info_hash) {
                    t.last = Some((*a, false));
                }
            }
            Command::Answer(_) => {
                tracing::debug!(url = %self.url, "answer dropped: WebSocket tracker not connected");
            }
            Command::Scrape(hashes, reply) => self.push_scrape(hashes, reply),
        }
    }

    async fn send(socket: &mut Socket, message: &ClientMessage) -> Result<(), TrackerError> {
        let frame = ws::encode_client(message);
        socket
            .send(Message::text(frame))
            .await
            .map_err(|e| ws_error(&e))
    }

    /// Sends an announce, recording its offers for the answers.
    async fn send_announce(
        &mut self,
        socket: &mut Socket,
        mut announce: WsAnnounce,
    ) -> Result<(), TrackerError> {
        let Some(t) = self.torrents.get_mut(&announce.info_hash) else {
            return Ok(());
        };
        announce.trackerid.clone_from(&t.tracker_id);
        t.last = Some((announce.clone(), true));
        let deadline = Instant::now() + self.inner.config.offer_timeout;
        for o in &announce.offers {
            self.offers
                .insert(o.offer_id, (announce.info_hash, deadline));
        }
        Self::send(socket, &ClientMessage::Announce(announce)).await
    }

    /// What to send on a fresh connection: pending announces as they are,
    /// announces already sent on a previous connection again as `started`
    /// without their (stale) offers, and the waiting scrapes.
    async fn on_connect(&mut self, socket: &mut Socket) -> Result<(), TrackerError> {
        let mut announces = Vec::new();
        for t in self.torrents.values_mut() {
            t.emit(WsEvent::Connected);
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
            self.send_announce(socket, a).await?;
        }
        for i in 0..self.scrapes.len() {
            let Some(s) = self.scrapes.get_mut(i) else {
                break;
            };
            if !s.sent {
                s.sent = true;
                let message = ClientMessage::Scrape(s.hashes.clone());
                Self::send(socket, &message).await?;
            }
        }
        Ok(())
    }

    async fn session(&mut self, mut socket: Socket) -> End {
        tracing::debug!(url = %self.url, "connected to WebSocket tracker");
        let end = match self.on_connect(&mut socket).await {
            Ok(()) => self.serve(&mut socket).await,
            Err(e) => {
                self.broadcast(&e);
                End::Lost
            }
        };
        // Scrapes sent on this connection will not be answered now.
        let (lost, kept): (VecDeque<_>, VecDeque<_>) = self.scrapes.drain(..).partition(|s| s.sent);
        self.scrapes = kept;
        for s in lost {
            let _ = s
                .reply
                .send(Err(transport("WebSocket", &"connection lost")));
        }
        self.offers.clear();
        if matches!(end, End::Done) {
            // A polite close; the task ends either way.
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
        }
        end
    }

    async fn serve(&mut self, socket: &mut Socket) -> End {
        loop {
            self.expire(Instant::now());
            if self.finish() {
                return End::Done;
            }
            let next = self.next_deadline();
            let sleep = async {
                match next {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = socket.next() => {
                    let result = match message {
                        None => Err(transport("WebSocket", &"closed by the tracker")),
                        Some(Err(e)) => Err(ws_error(&e)),
                        Some(Ok(Message::Text(text))) => {
                            self.frame(text.as_str());
                            Ok(())
                        }
                        Some(Ok(Message::Binary(bytes))) => {
                            match std::str::from_utf8(&bytes) {
                                Ok(text) => self.frame(text),
                                Err(_) => self.broadcast(&TrackerError::Malformed {
                                    what: "binary WebSocket frame is not UTF-8",
                                }),
                            }
                            Ok(())
                        }
                        Some(Ok(Message::Close(_))) => {
                            Err(transport("WebSocket", &"closed by the tracker"))
                        }
                        // Pings are answered by tungstenite.
                        Some(Ok(_)) => Ok(()),
                    };
                    if let Err(e) = result {
                        tracing::debug!(url = %self.url, error = %e, "WebSocket tracker connection lost");
                        self.broadcast(&e);
                        return End::Lost;
                    }
                }
                command = self.commands.recv() => {
                    let Some(command) = command else { return End::Done };
                    if let Err(e) = self.online(socket, command).await {
                        self.broadcast(&e);
                        return End::Lost;
                    }
                }
                () = sleep => {}
            }
        }
    }

    async fn online(&mut self, socket: &mut Socket, command: Command) -> Result<(), TrackerError> {
        match command {
            Command::Announce(a) => {
                if self.torrents.contains_key(&a.info_hash) {
                    self.send_announce(socket, *a).await?;
                }
            }
            Command::Answer(mut a) => {
                if let Some(t) = self.torrents.get(&a.info_hash) {
                    a.trackerid.clone_from(&t.tracker_id);
                    Self::send(socket, &ClientMessage::Answer(*a)).await?;
                }
            }
            Command::Scrape(hashes, reply) => {
                let message = ClientMessage::Scrape(hashes.clone());
                self.push_scrape(hashes, reply);
                if let Some(s) = self.scrapes.back_mut() {
                    s.sent = true;
                }
                Self::send(socket, &message).await?;
            }
            other => self.offline(other),
        }
        Ok(())
    }

    /// Handles one frame from the tracker.
    fn frame(&mut self, text: &str) {
        let message = match ws::decode_server(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(url = %self.url, error = %e, "bad WebSocket tracker frame");
                self.broadcast(&TrackerError::Frame(e));
                return;
            }
        };
        // The tracker speaks the protocol: back-off starts over.
        self.backoff.reset();
        match message {
            ServerMessage::Announced { info_hash, reply } => {
                if let Some(t) = self.torrents.get_mut(&info_hash) {
                    if reply.tracker_id.is_some() {
                        t.tracker_id.clone_from(&reply.tracker_id);
                    }
                    t.emit(WsEvent::Announced(reply));
                }
            }
            ServerMessage::Offer {
                info_hash,
                peer_id,
                offer_id,
                offer,
            } => match self.torrents.get(&info_hash) {
                Some(t) if t.peer_id != peer_id => t.emit(WsEvent::Offer {
                    peer_id,
                    offer_id,
                    offer,
                }),
                _ => tracing::debug!(url = %self.url, "offer for no torrent of ours ignored"),
            },
            ServerMessage::Answer {
                info_hash,
                peer_id,
                offer_id,
                answer,
            } => {
                let ours = self
                    .offers
                    .get(&offer_id)
                    .is_some_and(|(h, _)| *h == info_hash);
                match self.torrents.get(&info_hash) {
                    Some(t) if ours && t.peer_id != peer_id => {
                        self.offers.remove(&offer_id);
                        t.emit(WsEvent::Answer {
                            peer_id,
                            offer_id,
                            answer,
                        });
                    }
                    _ => tracing::debug!(url = %self.url, "answer to no offer of ours ignored"),
                }
            }
            ServerMessage::Scraped(files) => match self.scrapes.iter().position(|s| s.sent) {
                Some(i) => {
                    if let Some(s) = self.scrapes.remove(i) {
                        let _ = s.reply.send(Ok(files));
                    }
                }
                None => tracing::debug!(url = %self.url, "unrequested scrape reply ignored"),
            },
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
                        let _ = s.reply.send(Err(error));
                    }
                } else if let Some(t) = info_hash.and_then(|h| self.torrents.get(&h)) {
                    t.emit(WsEvent::Error(error));
                } else {
                    // A request the tracker could not even parse: it does
                    // not say whose, so every torrent hears of it.
                    self.broadcast(&error);
                }
            }
        }
    }
}
