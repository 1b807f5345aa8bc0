//! `WsTracker`: the WebTorrent WebSocket tracker client over tokio-tungstenite.
//!
//! One task per tracker URL owns the connection; every torrent announced on
//! that URL shares it. The task ends when its last torrent is dropped and no
//! scrape is waiting, or when every handle to it is gone.

use std::collections::HashMap;
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
    MAX_FRAME_BYTES, MAX_SCRAPE_HASHES, OfferId, ScrapeId, Signal, WsAnnounce, WsAnswer, WsConfig,
    WsConnection, WsEvent, WsOffer, WsOutput,
};
use crate::{Event, ScrapeResponse, TrackerError};

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
        // A URL with a task is known to be good; a new one is checked once.
        parse_url(url)?;
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
    /// [`MAX_SCRAPE_HASHES`]). Waits for the connection if it is being
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

/// The task of one tracker URL: a socket when connected, the
/// [`WsConnection`] state machine, and the torrents' event queues.
struct Connection {
    url: String,
    inner: Arc<Inner>,
    commands: mpsc::UnboundedReceiver<Command>,
    machine: WsConnection,
    events: HashMap<InfoHashV1, mpsc::Sender<WsEvent>>,
    scrapes: HashMap<ScrapeId, ScrapeReply>,
    random: RandomState,
    counter: u64,
}

impl Connection {
    fn new(url: String, inner: Arc<Inner>, commands: mpsc::UnboundedReceiver<Command>) -> Self {
        let machine = WsConnection::new(inner.config.clone());
        Self {
            url,
            inner,
            commands,
            machine,
            events: HashMap::new(),
            scrapes: HashMap::new(),
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

    /// When nothing is left to serve, closes the command channel so that
    /// the next command starts a new task, and says whether this task may
    /// end. The check and the close happen under the lock `WsTracker` sends
    /// under, so no command is lost in between.
    fn finish(&mut self) -> bool {
        if !self.machine.is_idle() || !self.commands.is_empty() {
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

    fn command(&mut self, command: Command) {
        let now = std::time::Instant::now();
        match command {
            Command::Add {
                info_hash,
                peer_id,
                events,
                reply,
            } => {
                let added = self.machine.add_torrent(info_hash, peer_id);
                if added.is_ok() {
                    self.events.insert(info_hash, events);
                }
                let _ = reply.send(added);
            }
            Command::Remove(h) => {
                self.machine.remove_torrent(h);
                self.events.remove(&h);
            }
            Command::Announce(a) => self.machine.announce(now, *a),
            Command::Answer(a) => self.machine.answer(*a),
            Command::Scrape(hashes, reply) => match self.machine.scrape(now, hashes) {
                Ok(id) => {
                    self.scrapes.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
        }
    }

    /// Carries out what the machine wants: frames to send (when connected),
    /// events for torrents, scrape results. A failed send ends the
    /// connection.
    async fn flush(&mut self, socket: &mut Option<Socket>) {
        while let Some(output) = self.machine.poll_output() {
            match output {
                WsOutput::Send(frame) => {
                    let Some(s) = socket.as_mut() else { continue };
                    if let Err(e) = s.send(Message::text(frame)).await {
                        *socket = None;
                        self.lost(&ws_error(&e));
                    }
                }
                WsOutput::Event(h, event) => {
                    if let Some(tx) = self.events.get(&h)
                        && tx.try_send(event).is_err()
                    {
                        tracing::debug!(url = %self.url, "WebSocket tracker event dropped: queue full");
                    }
                }
                WsOutput::Scraped(id, result) => {
                    if let Some(reply) = self.scrapes.remove(&id) {
                        // The caller may have given up.
                        let _ = reply.send(result);
                    }
                }
            }
        }
    }

    fn lost(&mut self, error: &TrackerError) {
        tracing::debug!(url = %self.url, error = %error, "WebSocket tracker connection lost");
        let random = self.random();
        self.machine
            .on_disconnected(std::time::Instant::now(), error, random);
    }

    async fn connect(&mut self) -> Option<Socket> {
        let timeout = self.inner.config.connect_timeout;
        let error = match tokio::time::timeout(timeout, connect(&self.url, &self.inner.tls)).await {
            Ok(Ok(socket)) => {
                tracing::debug!(url = %self.url, "connected to WebSocket tracker");
                self.machine.on_connected(std::time::Instant::now());
                return Some(socket);
            }
            Ok(Err(e)) => e,
            Err(_) => TrackerError::Timeout {
                attempts: 1,
                waited: timeout,
            },
        };
        self.lost(&error);
        None
    }

    /// One frame (or the end) from the socket.
    fn incoming(
        &mut self,
        socket: &mut Option<Socket>,
        message: Option<Result<Message, tungstenite::Error>>,
    ) {
        let now = std::time::Instant::now();
        let error = match message {
            Some(Ok(Message::Text(text))) => {
                self.machine.on_frame(now, text.as_str());
                return;
            }
            Some(Ok(Message::Binary(bytes))) => {
                match std::str::from_utf8(&bytes) {
                    Ok(text) => self.machine.on_frame(now, text),
                    Err(_) => self.machine.on_bad_frame(&TrackerError::Malformed {
                        what: "binary WebSocket frame is not UTF-8",
                    }),
                }
                return;
            }
            // Pings are answered by tungstenite.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => return,
            None | Some(Ok(Message::Close(_))) => transport("WebSocket", &"closed by the tracker"),
            Some(Err(e)) => ws_error(&e),
        };
        *socket = None;
        self.lost(&error);
    }

    async fn run(mut self) {
        let mut socket: Option<Socket> = None;
        loop {
            self.flush(&mut socket).await;
            if self.finish() {
                break;
            }
            let now = std::time::Instant::now();
            if socket.is_none() && self.machine.wants_connect(now) {
                socket = self.connect().await;
                continue;
            }
            let deadline = self.machine.poll_timeout().map(Instant::from_std);
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let read = async {
                match socket.as_mut() {
                    Some(s) => s.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = read => self.incoming(&mut socket, message),
                command = self.commands.recv() => match command {
                    Some(c) => self.command(c),
                    None => break,
                },
                () = sleep => self.machine.handle_timeout(std::time::Instant::now()),
            }
        }
        if let Some(mut s) = socket {
            // A polite close; the task ends either way.
            let _ = tokio::time::timeout(Duration::from_secs(1), s.close(None)).await;
        }
        tracing::debug!(url = %self.url, "WebSocket tracker connection task ends");
    }
}
