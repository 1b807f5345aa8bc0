//! Magnet links: the info dictionary is fetched from peers (BEP 9, `ut_metadata`) before
//! the download starts.
//!
//! The torrent's command channel exists from the start, so the handle, the listener's
//! routing and the announcer work while the metadata is missing. This phase dials the
//! peers it learns (from the magnet, trackers, the listener), speaks only the extension
//! protocol to them, and feeds a [`MetadataFetcher`]. Once the info dictionary is verified
//! against the info-hash, the files are opened (and rechecked if present) and the regular
//! torrent task takes over the same channel; the peers seen so far are dialed again by it.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch};
use webtorrent_extensions::{
    ExtHandshake, FetchEvent, FetcherConfig, Incoming, MetadataFetcher, MetadataMessage, Registry,
};
use webtorrent_hash::exchange::{
    FetcherConfig as LayerConfig, LayerEvent, LayerFetcher, LayerFile,
};
use webtorrent_metainfo::MetaVersion;
use webtorrent_metainfo::{Info, Metainfo};
use webtorrent_storage::Layout;
use webtorrent_types::{InfoHashV1, InfoHashes};
use webtorrent_wire::{Decoder, Handshake, HashRequest, Message};

use super::announce::Announcer;
use super::hashes;
use super::stream::PeerStream;
use super::torrent::{self, Command, PeerKey};
use super::{Counters, SessionError, Shared, TorrentEvent, resume_path};
use crate::choker::Transport;

/// How often idle metadata connections get a keep-alive, and dials are retried.
const TICK: Duration = Duration::from_secs(1);

/// The most connections of the metadata phase at once.
const MAX_PEERS: usize = 20;

/// What a connection of the metadata phase reports.
#[derive(Debug)]
pub(crate) enum MetaEvent {
    /// The peer's extension handshake.
    Handshake(ExtHandshake),
    /// A `ut_metadata` message (its payload).
    Metadata(Vec<u8>),
    /// BEP 52 `hashes`: the request answered, then the hashes and their proof.
    Hashes(HashRequest, Vec<[u8; 32]>),
    /// BEP 52 `hash reject`.
    HashReject(HashRequest),
    /// The connection ended.
    Closed,
}

/// What the metadata phase tells a connection.
#[derive(Debug)]
enum MetaOrder {
    /// Ask for a metadata piece.
    Request(u32),
    /// Ask for a range of a file's piece layer (BEP 52).
    Hashes(HashRequest),
    /// Close the connection.
    Close,
}

/// What a magnet's torrent starts with.
pub(super) struct MagnetSetup {
    pub(super) shared: Arc<Shared>,
    pub(super) hashes: InfoHashes,
    pub(super) info_hash: InfoHashV1,
    pub(super) dir: PathBuf,
    pub(super) counters: Arc<Counters>,
    pub(super) events: broadcast::Sender<TorrentEvent>,
    pub(super) done: watch::Sender<bool>,
    pub(super) metainfo: Arc<OnceLock<Arc<Metainfo>>>,
    /// Where file readers find the storage once it is open.
    pub(super) storage_slot: watch::Sender<Option<Arc<webtorrent_storage::FileStorage>>>,
    pub(super) this: mpsc::WeakSender<Command>,
    /// Peers to dial, and whether they are the user's (dialed again after failures).
    pub(super) peers: Vec<(SocketAddr, bool)>,
    /// The link's web seeds (`ws`).
    pub(super) web_seeds: Vec<String>,
    /// The files to download (the options', else the link's `so`); `None`: all.
    pub(super) select: Option<Vec<webtorrent_magnet::FileRange>>,
}

/// Fetches the metadata, then runs the torrent on the same channel.
pub(super) async fn run(setup: MagnetSetup, mut rx: mpsc::Receiver<Command>) {
    let mut phase = Phase {
        shared: Arc::clone(&setup.shared),
        info_hash: setup.info_hash,
        fetcher: MetadataFetcher::new(setup.hashes, FetcherConfig::default()),
        conns: HashMap::new(),
        next_key: 1 << 62,
        known: HashSet::new(),
        queue: Vec::new(),
        sticky: HashSet::new(),
        reached: HashSet::new(),
        webrtc_peers: false,
        dialing: HashSet::new(),
        announcer: None,
        this: setup.this.clone(),
        events: setup.events.clone(),
        layers: None,
    };
    for &(addr, sticky) in &setup.peers {
        if sticky {
            phase.sticky.insert(addr);
        }
        phase.learn(addr);
    }
    let Some(info) = phase.fetch(&mut rx).await else {
        return;
    };
    // A v2-only torrent's pieces are checked against its piece layers, which are not in
    // the info dictionary: fetch them from the same peers before anything is downloaded.
    // (A hybrid torrent's pieces are checked with its v1 hashes.)
    let mut layers = Vec::new();
    if info.version() == MetaVersion::V2 {
        let Some(fetched) = phase.fetch_layers(&mut rx, &info).await else {
            return;
        };
        layers = fetched;
    }
    let candidates: Vec<SocketAddr> = phase.known.iter().copied().collect();
    // The user's peers, and the ones that answered us: the torrent dials them again until
    // they connect (a peer may still be closing our metadata connection when the torrent's
    // first dial arrives, and refuse it as a duplicate).
    let sticky: Vec<SocketAddr> = phase.sticky.union(&phase.reached).copied().collect();
    for conn in phase.conns.values() {
        let _ = conn.send(MetaOrder::Close);
    }
    let announcer = phase.announcer.take();
    #[cfg(feature = "webrtc")]
    if phase.webrtc_peers
        && let Some(announcer) = &announcer
    {
        announcer.renew_offers();
    }
    match start(&setup, info, layers, announcer, candidates).await {
        Ok(task) => {
            if !sticky.is_empty()
                && let Some(tx) = setup.this.upgrade()
            {
                let _ = tx
                    .send(Command::AddPeers {
                        peers: sticky,
                        sticky: true,
                    })
                    .await;
            }
            task.run(rx).await;
        }
        Err(e) => {
            // Reported to the application by the Failed event.
            tracing::info!(info_hash = %setup.info_hash, "cannot start the torrent: {e}");
            let _ = setup.events.send(TorrentEvent::Failed(e.to_string()));
            // Answer a shutdown, then end: the handle reports the torrent stopped.
            while let Some(command) = rx.recv().await {
                if let Command::Shutdown(reply) = command {
                    let _ = reply.send(Err(e));
                    return;
                }
            }
        }
    }
}

/// Opens the files of the fetched torrent and builds its task.
async fn start(
    setup: &MagnetSetup,
    info: Info,
    layers: Vec<(usize, Vec<[u8; 32]>)>,
    announcer: Option<Announcer>,
    candidates: Vec<SocketAddr>,
) -> Result<torrent::Task, SessionError> {
    let mut metainfo = Metainfo::from_info(info);
    for (file, layer) in layers {
        // Verified against the file's root already; checked once more here.
        if let Err(e) = metainfo.set_piece_layer(file, layer) {
            tracing::error!(info_hash = %setup.info_hash, "a fetched piece layer is unusable: {e}");
        }
    }
    let metainfo = Arc::new(metainfo);
    let _ = setup.metainfo.set(Arc::clone(&metainfo));
    let _ = setup.events.send(TorrentEvent::MetadataReceived);
    if metainfo.info().private()
        && let Some(lsd) = setup.shared.lsd.get()
    {
        // BEP 27: a private torrent is not announced on the local network.
        lsd.remove(setup.info_hash);
    }
    if metainfo.info().private()
        && let Some(dht) = setup.shared.dht.get()
    {
        // BEP 27: nor in the DHT.
        dht.remove(setup.info_hash);
    }
    let layout = Layout::from_metainfo(&metainfo);
    let resume = resume_path(&setup.dir, &setup.info_hash);
    let priorities = super::select_priorities(metainfo.info(), setup.select.as_deref())?;
    let storage = {
        let (dir, resume) = (setup.dir.clone(), resume.clone());
        let priorities = priorities.clone();
        // A recheck of files already there.
        tokio::task::spawn_blocking(move || {
            super::open_storage(layout, &dir, &resume, false, priorities.as_deref())
        })
        .await
        .map_err(|e| SessionError::Task(e.to_string()))??
    };
    torrent::build(torrent::Setup {
        shared: Arc::clone(&setup.shared),
        storage: Arc::new(storage),
        storage_slot: setup.storage_slot.clone(),
        info_hash: setup.info_hash,
        resume_path: resume,
        metainfo,
        counters: Arc::clone(&setup.counters),
        events: setup.events.clone(),
        done: setup.done.clone(),
        this: setup.this.clone(),
        announcer,
        candidates,
        web_seeds: setup
            .web_seeds
            .iter()
            .filter_map(|url| webtorrent_webseed::WebSeedUrl::url_list(url.as_str()).ok())
            .collect(),
        priorities,
    })
}

/// The metadata phase's state.
struct Phase {
    shared: Arc<Shared>,
    info_hash: InfoHashV1,
    fetcher: MetadataFetcher<PeerKey>,
    conns: HashMap<PeerKey, mpsc::UnboundedSender<MetaOrder>>,
    next_key: PeerKey,
    /// Every address seen: dialed once each, handed to the torrent afterwards.
    known: HashSet<SocketAddr>,
    queue: Vec<SocketAddr>,
    sticky: HashSet<SocketAddr>,
    /// Addresses we dialed and reached.
    reached: HashSet<SocketAddr>,
    /// A WebRTC peer connected: once the torrent starts, fresh offers find it again.
    webrtc_peers: bool,
    dialing: HashSet<SocketAddr>,
    announcer: Option<Announcer>,
    this: mpsc::WeakSender<Command>,
    events: broadcast::Sender<TorrentEvent>,
    /// The piece-layer fetcher, once the metadata of a v2-only torrent is in.
    layers: Option<LayerFetcher<PeerKey>>,
}

impl Phase {
    fn learn(&mut self, addr: SocketAddr) {
        if addr.port() != 0 && !addr.ip().is_unspecified() && self.known.insert(addr) {
            self.queue.push(addr);
        }
    }

    fn dial_more(&mut self) {
        while self.conns.len() + self.dialing.len() < MAX_PEERS {
            let Some(addr) = self.queue.pop() else { return };
            if !self.shared.reserve_connection() {
                self.queue.push(addr);
                return;
            }
            let Some(tx) = self.this.upgrade() else {
                self.shared.release_connection();
                return;
            };
            self.dialing.insert(addr);
            torrent::dial(Arc::clone(&self.shared), self.info_hash, addr, tx);
        }
    }

    /// Runs until the metadata is verified (`Some`) or the torrent is shut down (`None`).
    async fn fetch(&mut self, rx: &mut mpsc::Receiver<Command>) -> Option<Info> {
        let mut tick = tokio::time::interval(TICK);
        loop {
            self.dial_more();
            let now = Instant::now();
            while let Some(request) = self.fetcher.poll_request(now) {
                if let Some(conn) = self.conns.get(&request.peer) {
                    let _ = conn.send(MetaOrder::Request(request.piece));
                }
            }
            while let Some(event) = self.fetcher.poll_event() {
                match event {
                    FetchEvent::Complete(bytes) => match Info::from_bytes(&bytes) {
                        Ok(info) => return Some(info),
                        Err(e) => {
                            // It hashed right, so every peer has this torrent: nothing to do.
                            tracing::error!(info_hash = %self.info_hash, "the torrent's metadata is unusable: {e}");
                            let _ = self.events.send(TorrentEvent::StorageError(format!(
                                "the torrent's metadata is unusable: {e}"
                            )));
                        }
                    },
                    FetchEvent::PeerBanned(key) => {
                        tracing::info!(
                            key,
                            "peer banned: it sent metadata that fails the info-hash"
                        );
                        if let Some(conn) = self.conns.get(&key) {
                            let _ = conn.send(MetaOrder::Close);
                        }
                    }
                    FetchEvent::HashMismatch { .. } => {
                        tracing::info!("metadata from several peers failed the info-hash");
                    }
                    _ => {}
                }
            }
            let deadline = self.fetcher.poll_timeout().map_or_else(
                || tokio::time::Instant::now() + TICK,
                tokio::time::Instant::from_std,
            );
            tokio::select! {
                command = rx.recv() => {
                    let command = command?;
                    if self.command(command).await {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    self.fetcher.handle_timeout(Instant::now());
                }
                _ = tick.tick() => self.retry_sticky(),
            }
        }
    }

    /// Fetches the piece layers of `info`'s files from the peers (BEP 52 hash requests)
    /// until every one is in and verified (`Some`, by file index) or the torrent is shut
    /// down (`None`). Every connected peer is asked, and each peer that connects later.
    async fn fetch_layers(
        &mut self,
        rx: &mut mpsc::Receiver<Command>,
        info: &Info,
    ) -> Option<Vec<(usize, Vec<[u8; 32]>)>> {
        let piece_length = usize::try_from(info.piece_length()).unwrap_or(usize::MAX);
        let files = info.files().iter().enumerate().filter_map(|(file, entry)| {
            Some(LayerFile {
                file,
                root: entry.pieces_root.filter(|_| !entry.is_pad())?,
                length: entry.length,
            })
        });
        let mut fetcher = LayerFetcher::new(piece_length, files, LayerConfig::default());
        for key in self.conns.keys() {
            fetcher.add_peer(*key);
        }
        self.layers = Some(fetcher);
        tracing::debug!(info_hash = %self.info_hash, "fetching the piece layers");
        let mut tick = tokio::time::interval(TICK);
        loop {
            self.dial_more();
            let now = Instant::now();
            let fetcher = self.layers.as_mut()?;
            while let Some((key, range)) = fetcher.poll_request(now) {
                match self.conns.get(&key) {
                    Some(conn) => {
                        let _ = conn.send(MetaOrder::Hashes(hashes::request(&range)));
                    }
                    None => fetcher.remove_peer(&key),
                }
            }
            while let Some(event) = fetcher.poll_event() {
                match event {
                    LayerEvent::Complete => {
                        let layers = fetcher
                            .layers()
                            .map(|(file, layer)| (file, layer.to_vec()))
                            .collect();
                        tracing::debug!(info_hash = %self.info_hash, "piece layers verified");
                        self.layers = None;
                        return Some(layers);
                    }
                    LayerEvent::PeerBanned(key) => {
                        tracing::info!(key, "peer dropped: its piece-layer hashes were wrong");
                        if let Some(conn) = self.conns.get(&key) {
                            let _ = conn.send(MetaOrder::Close);
                        }
                    }
                    _ => {}
                }
            }
            let deadline = fetcher.poll_timeout().map_or_else(
                || tokio::time::Instant::now() + TICK,
                tokio::time::Instant::from_std,
            );
            tokio::select! {
                command = rx.recv() => {
                    let command = command?;
                    if self.command(command).await {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    if let Some(fetcher) = self.layers.as_mut() {
                        fetcher.handle_timeout(Instant::now());
                    }
                }
                _ = tick.tick() => self.retry_sticky(),
            }
        }
    }

    /// With no connection left, the user's peers are dialed again.
    fn retry_sticky(&mut self) {
        if !self.conns.is_empty() {
            return;
        }
        let retry: Vec<SocketAddr> = self
            .sticky
            .iter()
            .filter(|a| !self.dialing.contains(a) && !self.queue.contains(a))
            .copied()
            .collect();
        self.queue.extend(retry);
    }

    /// Handles a command; `true` when the torrent is shut down.
    async fn command(&mut self, command: Command) -> bool {
        match command {
            Command::AddPeers { peers, sticky } => {
                for addr in peers {
                    if sticky {
                        self.sticky.insert(addr);
                    }
                    self.learn(addr);
                }
            }
            Command::Connected {
                stream,
                addr,
                handshake,
                outbound,
            } => {
                let tcp = stream.transport() == Transport::Tcp;
                if outbound && tcp {
                    self.dialing.remove(&addr);
                    self.reached.insert(addr);
                }
                if tcp {
                    self.known.insert(addr);
                } else {
                    self.webrtc_peers = true;
                }
                if handshake.peer_id == self.shared.peer_id || !handshake.reserved.extended() {
                    // Ourselves, or a peer that cannot send metadata.
                    self.shared.release_connection();
                } else {
                    self.connect(stream, addr, handshake);
                }
            }
            Command::ConnectFailed(addr) => {
                self.dialing.remove(&addr);
            }
            Command::Metadata(key, event) => self.meta_event(key, event),
            Command::Announcer(announcer) => self.announcer = Some(announcer),
            Command::Trackers(reply) => {
                let status = self.announcer.as_ref().map(Announcer::status);
                let _ = reply.send(status.unwrap_or_default());
            }
            Command::SetLimits { upload, download } => {
                self.shared
                    .set_torrent_limits(self.info_hash, upload, download);
            }
            Command::SetFilePriorities(_, reply) => {
                let _ = reply.send(Err(SessionError::MetadataPending));
            }
            Command::FilePriorities(reply) => {
                let _ = reply.send(Err(SessionError::MetadataPending));
            }
            Command::Shutdown(reply) => {
                for conn in self.conns.values() {
                    let _ = conn.send(MetaOrder::Close);
                }
                if let Some(announcer) = self.announcer.take() {
                    announcer.stop(super::STOP_ANNOUNCE_TIMEOUT).await;
                }
                let _ = self.events.send(TorrentEvent::Stopped);
                let _ = reply.send(Ok(()));
                return true;
            }
            // Nothing of the download runs yet.
            Command::Peer(..)
            | Command::Written(_)
            | Command::Verified(_)
            | Command::Stream(_)
            | Command::Pause(_) => {}
            Command::Peers(reply) => {
                let _ = reply.send(Vec::new());
            }
        }
        false
    }

    fn connect(&mut self, stream: PeerStream, addr: SocketAddr, handshake: Handshake) {
        let Some(torrent) = self.this.upgrade() else {
            self.shared.release_connection();
            return;
        };
        let key = self.next_key;
        self.next_key += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        self.conns.insert(key, tx);
        if let Some(layers) = self.layers.as_mut() {
            layers.add_peer(key);
        }
        tracing::debug!(%addr, "metadata peer connected");
        tokio::spawn(metadata_peer(PeerTask {
            key,
            stream,
            addr,
            handshake,
            shared: Arc::clone(&self.shared),
            torrent,
            orders: rx,
        }));
    }

    fn meta_event(&mut self, key: PeerKey, event: MetaEvent) {
        match event {
            MetaEvent::Handshake(theirs) => {
                if let Err(e) = self.fetcher.add_peer(key, &theirs) {
                    tracing::debug!(key, "metadata peer not used: {e}");
                }
            }
            MetaEvent::Metadata(payload) => {
                if let Ok(message) = MetadataMessage::decode(&payload) {
                    let _ = self.fetcher.handle_message(Instant::now(), &key, &message);
                }
            }
            MetaEvent::Hashes(request, hashes) => {
                if let Some(layers) = self.layers.as_mut() {
                    let range = hashes::range(&request);
                    if let Err(e) = layers.handle_hashes(Instant::now(), &key, &range, &hashes) {
                        tracing::debug!(key, "piece-layer hashes refused: {e}");
                    }
                }
            }
            MetaEvent::HashReject(request) => {
                if let Some(layers) = self.layers.as_mut() {
                    layers.handle_reject(Instant::now(), &key, &hashes::range(&request));
                }
            }
            MetaEvent::Closed => {
                self.conns.remove(&key);
                self.fetcher.remove_peer(&key);
                if let Some(layers) = self.layers.as_mut() {
                    layers.remove_peer(&key);
                }
            }
        }
    }
}

/// A connection of the metadata phase.
struct PeerTask {
    key: PeerKey,
    stream: PeerStream,
    addr: SocketAddr,
    handshake: Handshake,
    shared: Arc<Shared>,
    torrent: mpsc::Sender<Command>,
    orders: mpsc::UnboundedReceiver<MetaOrder>,
}

/// Speaks the extension protocol with one peer until told to close or the peer leaves;
/// gives its connection slot back at the end.
async fn metadata_peer(mut task: PeerTask) {
    let result = talk(&mut task).await;
    if let Err(why) = result {
        tracing::debug!(addr = %task.addr, "metadata peer closed: {why}");
    }
    task.shared.release_connection();
    let _ = task
        .torrent
        .send(Command::Metadata(task.key, MetaEvent::Closed))
        .await;
}

async fn talk(task: &mut PeerTask) -> Result<(), &'static str> {
    let mut registry = Registry::with_builtins();
    let mut ours = ExtHandshake::ours();
    ours.listen_port = Some(task.shared.port);
    ours.your_ip = Some(task.addr.ip()).filter(|ip| !ip.is_unspecified());
    let mut out = Vec::new();
    registry.handshake(ours).encode(&mut out);
    if task.handshake.reserved.fast() {
        Message::HaveNone.encode(&mut out);
    }
    let (mut read, mut write) = tokio::io::split(&mut task.stream);
    write.write_all(&out).await.map_err(|_| "connection lost")?;
    let decoder = Decoder::new();
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut chunk = vec![0u8; 32 * 1024];
    let mut keep_alive = tokio::time::interval(Duration::from_secs(60));
    loop {
        let mut out = Vec::new();
        tokio::select! {
            n = read.read(&mut chunk) => {
                let n = n.map_err(|_| "connection lost")?;
                if n == 0 {
                    return Err("closed by the peer");
                }
                buf.extend_from_slice(&chunk[..n]);
                let mut at = 0;
                while let Some((message, used)) =
                    decoder.decode(&buf[at..]).map_err(|_| "undecodable stream")?
                {
                    at += used;
                    let (id, payload) = match message {
                        Message::Extended { id, payload } => (id, payload),
                        Message::Hashes { request, hashes } => {
                            let event = MetaEvent::Hashes(request, hashes.into_owned());
                            task.torrent
                                .send(Command::Metadata(task.key, event))
                                .await
                                .map_err(|_| "the torrent stopped")?;
                            continue;
                        }
                        Message::HashReject(request) => {
                            task.torrent
                                .send(Command::Metadata(task.key, MetaEvent::HashReject(request)))
                                .await
                                .map_err(|_| "the torrent stopped")?;
                            continue;
                        }
                        Message::HashRequest(request) => {
                            // We hold no hashes yet.
                            Message::HashReject(request).encode(&mut out);
                            continue;
                        }
                        _ => continue,
                    };
                    let event = match registry.handle(id, &payload) {
                        Ok(Incoming::Handshake(theirs)) => Some(MetaEvent::Handshake(theirs)),
                        Ok(Incoming::Metadata(MetadataMessage::Request { piece })) => {
                            // We have no metadata to give yet.
                            if let Some(reject) = registry.ut_metadata(&MetadataMessage::Reject { piece }) {
                                reject.encode(&mut out);
                            }
                            None
                        }
                        Ok(Incoming::Metadata(_)) => Some(MetaEvent::Metadata(payload.to_vec())),
                        Ok(_) => None,
                        Err(_) => return Err("malformed extension message"),
                    };
                    if let Some(event) = event {
                        task.torrent
                            .send(Command::Metadata(task.key, event))
                            .await
                            .map_err(|_| "the torrent stopped")?;
                    }
                }
                buf.drain(..at);
            }
            order = task.orders.recv() => match order {
                Some(MetaOrder::Request(piece)) => {
                    if let Some(request) = registry.ut_metadata(&MetadataMessage::Request { piece }) {
                        request.encode(&mut out);
                    }
                }
                Some(MetaOrder::Hashes(request)) => Message::HashRequest(request).encode(&mut out),
                Some(MetaOrder::Close) | None => return Ok(()),
            },
            _ = keep_alive.tick() => Message::KeepAlive.encode(&mut out),
        }
        if !out.is_empty() {
            write.write_all(&out).await.map_err(|_| "connection lost")?;
        }
    }
}
