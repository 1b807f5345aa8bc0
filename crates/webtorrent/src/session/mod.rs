//! The session engine: download and seed torrents over TCP.
//!
//! A [`Client`] binds one TCP listener and routes inbound handshakes to its torrents by
//! info-hash. [`Client::add`] opens a torrent's files under the download directory (or
//! [`AddOptions::dir`]), trusts saved resume data when it still matches the files or
//! rechecks them otherwise, and starts the torrent: with every piece verified it seeds,
//! otherwise it downloads from the peers its trackers name, the peers it is given
//! ([`AddOptions::peers`], [`Torrent::add_peer`]) and the peers that connect to it.
//! [`Client::seed`] creates the torrent of a file or folder and seeds it.
//!
//! Tasks and messages:
//!
//! - one task per torrent owns the [picker](crate::picker) (rarest first, partial pieces
//!   first, endgame), the [choker](crate::choker) (tit-for-tat with an optimistic slot
//!   while downloading, round robin while seeding), every peer's piece set and the
//!   connection limits; peers talk to it through a bounded channel, it answers through
//!   per-peer channels it never waits on;
//! - one task per peer connection drives a [`wire::Connection`](webtorrent_wire::Connection)
//!   over the socket's write half; a reader task decodes the read half into a bounded
//!   channel of messages; both directions spend from the client's
//!   [rate limiters](crate::ratelimit) (global and per torrent);
//! - requests are pipelined: a peer gets enough requests in flight to cover two seconds of
//!   its rate, at least 16 and at most [`ClientConfig::max_requests_per_peer`];
//! - blocks are written, pieces read and verified, on blocking threads; a piece counts as
//!   downloaded only once verified. A peer that alone sent a piece failing its check is
//!   banned (by peer id and address); when several peers sent a failing piece, the blocks
//!   as they were are remembered, and once the piece passes, the peers whose blocks differ
//!   are banned;
//! - one announcer per torrent talks to its trackers (HTTP, UDP, BEP 12 tiers), with
//!   `started`, `completed` and, on [`Client::shutdown`], `stopped`;
//! - [`Client::shutdown`] closes every connection, flushes the files and saves resume data
//!   next to them.
//!
//! Not yet: magnet links (metadata exchange), the extension protocol (BEP 10), the BEP 52
//! hash messages, uTP and WebRTC.
//!
//! A seeder and a leecher on loopback:
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddr};
//! use webtorrent::metainfo::TorrentBuilder;
//! use webtorrent::session::{AddOptions, Client, ClientConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
//! let torrent = TorrentBuilder::from_memory_file("demo.bin", data.clone()).build()?;
//! let (seed_dir, leech_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
//! std::fs::write(seed_dir.path().join("demo.bin"), &data)?;
//! let loopback = |dir: &std::path::Path| {
//!     let mut config = ClientConfig::new(dir);
//!     config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
//!     config
//! };
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let seeder = Client::new(loopback(seed_dir.path())).await?;
//!     let seeding = seeder.add(torrent.clone(), AddOptions::default()).await?;
//!     assert!(seeding.is_done()); // the data on disk checked out
//!
//!     let leecher = Client::new(loopback(leech_dir.path())).await?;
//!     let mut options = AddOptions::default();
//!     options.peers.push(seeder.local_addr());
//!     let download = leecher.add(torrent, options).await?;
//!     download.wait_done().await;
//!     assert_eq!(download.stats().downloaded, data.len() as u64);
//!
//!     leecher.shutdown().await?;
//!     seeder.shutdown().await?;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! assert_eq!(std::fs::read(leech_dir.path().join("demo.bin"))?, data);
//! # Ok(())
//! # }
//! ```
//!
//! The same from a `.torrent` file and a known peer:
//!
//! ```no_run
//! use std::time::Duration;
//! use webtorrent::metainfo::Metainfo;
//! use webtorrent::session::{AddOptions, Client, ClientConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let torrent = Metainfo::from_bytes(&std::fs::read("demo.torrent")?)?;
//! let client = Client::new(ClientConfig::new("downloads")).await?;
//! let mut options = AddOptions::default();
//! options.peers.push("192.0.2.7:6881".parse()?);
//! let download = client.add(torrent, options).await?;
//! download.wait_done().await;
//! println!("{:?}", download.stats());
//! client.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod announce;
mod dht;
mod extension;
mod follow;
mod hashes;
mod lsd;
mod magnet;
mod peer;
mod reader;
mod stream;
mod torrent;
#[cfg(feature = "webrtc")]
mod webrtc;
mod webseed;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use webtorrent_magnet::FileRange;
use webtorrent_metainfo::{CreateError, Info, Metainfo, TorrentBuilder};
use webtorrent_storage::{FileStorage, Layout, ResumeError, StorageError};
use webtorrent_types::{BlockRef, InfoHashV1, InfoHashes, PeerId};
use webtorrent_wire::{HANDSHAKE_LEN, Handshake, Reserved};

use crate::choker::ChokerConfig;
use crate::ratelimit::{Limit, RateLimits};
use announce::{AnnounceSetup, Announcer, Progress, Trackers};
use torrent::Command;

pub use extension::{ExtensionFactory, ExtensionWaker, PeerInfo};
pub use follow::{FollowError, FollowOptions, MutableFollower, Version};
pub use reader::{File, FileReader};

/// The extensions our handshake announces: the fast extension (BEP 6) and the extension
/// protocol (BEP 10: `ut_metadata`, `ut_pex`, `lt_donthave`); the DHT bit (BEP 5) is
/// added when the DHT runs ([`Shared::reserved`]). Not yet: the BEP 52 hash messages.
const RESERVED: Reserved = Reserved::NONE.with_fast(true).with_extended(true);

/// How long a peer may take to connect and send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request may stay unanswered before it is asked of another peer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The most inbound connections still in their handshake at once. They hold no connection
/// slot until the handshake names a torrent of ours, so a flood of silent connections
/// cannot crowd out real peers or keep the torrents from dialing.
const MAX_PENDING_INBOUND: usize = 32;

/// How long a shutdown waits for the trackers' answers to `stopped`.
const STOP_ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);

/// The settings of a [`Client`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Where the listener binds (default `0.0.0.0:0`: every interface, any free port).
    pub listen: SocketAddr,
    /// Our peer id (default: a fresh one with this project's client prefix).
    pub peer_id: PeerId,
    /// The directory torrents are stored under, each in its own name; resume data is saved
    /// there too.
    pub download_dir: PathBuf,
    /// The most block requests in flight to one peer (default 250).
    pub max_requests_per_peer: usize,
    /// The most peer connections of the whole client, set up or being set up (default 200).
    pub max_connections: usize,
    /// The most peer connections of one torrent (default 50).
    pub max_connections_per_torrent: usize,
    /// The client's upload limit (default unlimited).
    pub upload_limit: Limit,
    /// The client's download limit (default unlimited).
    pub download_limit: Limit,
    /// Announce to the torrents' trackers (default true).
    pub announce: bool,
    /// Local service discovery (BEP 14): announce the torrents (private ones excepted) on
    /// the local network's multicast group and dial the peers announcing them (default
    /// true).
    pub lsd: bool,
    /// The interface local service discovery uses, by address (default `0.0.0.0`: the
    /// system's choice).
    pub lsd_interface: Ipv4Addr,
    /// The DHT (BEP 5, default true): a node on UDP at the listen address (the listen port
    /// when free), announcing the public torrents and dialing the peers it finds for them;
    /// peers are told its port in `PORT` messages. Private torrents never touch it.
    pub dht: bool,
    /// DHT nodes to bootstrap from, as `host:port` (default none: the DHT then only
    /// learns nodes from peers' `PORT` messages and from nodes that contact it).
    pub dht_bootstrap: Vec<String>,
    /// How upload slots are given out.
    pub choker: ChokerConfig,
    /// The application's own BEP 10 extensions, made for every peer connection (see
    /// [`ExtensionFactory`]).
    pub extensions: Vec<ExtensionFactory>,
    /// WebTorrent peers (default true, with the `webrtc` feature): announce to the
    /// torrents' `ws://`/`wss://` trackers with WebRTC offers, answer the offers they relay,
    /// and trade pieces with browsers and other WebTorrent clients over data channels. A
    /// loopback or specific [`listen`](Self::listen) address binds WebRTC to that address
    /// too.
    pub webrtc: bool,
    /// STUN servers for WebRTC (`stun:host:port`), to learn our public address behind NAT.
    /// None by default: host candidates only, nothing sent to a third party.
    pub stun: Vec<String>,
}

impl ClientConfig {
    /// The default settings, storing torrents under `download_dir`.
    pub fn new(download_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            peer_id: fresh_peer_id(),
            download_dir: download_dir.into(),
            max_requests_per_peer: 250,
            max_connections: 200,
            max_connections_per_torrent: 50,
            upload_limit: Limit::Unlimited,
            download_limit: Limit::Unlimited,
            announce: true,
            lsd: true,
            lsd_interface: Ipv4Addr::UNSPECIFIED,
            dht: true,
            dht_bootstrap: Vec::new(),
            choker: ChokerConfig::default(),
            extensions: Vec::new(),
            webrtc: true,
            stun: Vec::new(),
        }
    }
}

/// A peer id `-RW0100-` followed by 12 bytes that differ between clients and runs.
fn fresh_peer_id() -> PeerId {
    let mut id = *b"-RW0100-000000000000";
    let mut random = crate::rng::SplitMix64::seeded();
    for slot in &mut id[8..] {
        // Printable: the digits and letters of base 36.
        *slot = b"0123456789abcdefghijklmnopqrstuvwxyz"[random.below(36)];
    }
    PeerId(id)
}

/// How a torrent is added.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AddOptions {
    /// Peers to connect to right away; they are dialed again after failures until the
    /// torrent stops.
    pub peers: Vec<SocketAddr>,
    /// Trackers to announce to besides the torrent's own, a tier each (not for a private
    /// torrent, BEP 27: it announces to its own trackers only).
    pub trackers: Vec<String>,
    /// The directory holding the torrent's file or folder (default: the client's download
    /// directory). Resume data is saved there too.
    pub dir: Option<PathBuf>,
    /// The data is known complete (the torrent was just created from it): no recheck.
    pub seed_mode: bool,
    /// This torrent's upload limit (default unlimited; the client's limit applies too).
    pub upload_limit: Limit,
    /// This torrent's download limit.
    pub download_limit: Limit,
    /// The files to download (BEP 53 ranges of file indexes, counting the info's files in
    /// order, pad files included); the others get priority 0. `None`: every file, or for a
    /// magnet link the files of its `so` parameter if it has one. Indexes past the last file
    /// are ignored; a selection naming no file is an error
    /// ([`SessionError::EmptySelection`]). Priorities can be changed later with
    /// [`Torrent::set_file_priorities`].
    pub select: Option<Vec<FileRange>>,
}

/// What can go wrong in the session engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The torrent's files could not be opened, read, written or flushed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The resume data could not be saved.
    #[error("resume data: {0}")]
    Resume(#[from] ResumeError),
    /// The torrent of a path to seed could not be created.
    #[error("cannot create the torrent: {0}")]
    Create(#[from] CreateError),
    /// A path to seed has no parent folder to store it from.
    #[error("{0} has no parent folder")]
    NoParent(PathBuf),
    /// The torrent has no pieces, or pieces too long for the peer wire protocol.
    #[error("{pieces} pieces of {piece_length} bytes cannot be shared")]
    Unsupported {
        /// The piece count.
        pieces: u32,
        /// The piece length.
        piece_length: u64,
    },
    /// The torrent was added already.
    #[error("torrent {0} is added already")]
    Duplicate(InfoHashV1),
    /// A magnet link without a BitTorrent info-hash (`xt=urn:btih:` or `urn:btmh:`).
    #[error("the magnet link names no info-hash")]
    NoInfoHash,
    /// A file selection that names none of the torrent's files.
    #[error("the file selection names none of the torrent's {files} files")]
    EmptySelection {
        /// Number of files of the torrent.
        files: usize,
    },
    /// File priorities that do not fit the torrent: not one per file, or above
    /// [`MAX_PRIORITY`](crate::picker::MAX_PRIORITY).
    #[error("invalid file priorities: {0}")]
    FilePriorities(String),
    /// The torrent's metadata is not known yet (a magnet link still fetching it).
    #[error("the torrent's metadata is not known yet")]
    MetadataPending,
    /// The torrent has stopped (the client shut down).
    #[error("the torrent has stopped")]
    Stopped,
    /// A blocking storage task panicked or was cancelled.
    #[error("a storage task failed: {0}")]
    Task(String),
}

/// Counters shared by a torrent's tasks and its handles.
#[derive(Debug, Default)]
struct Counters {
    downloaded: AtomicU64,
    uploaded: AtomicU64,
    verified: AtomicU32,
    peers: AtomicUsize,
    left: AtomicU64,
    wanted: AtomicU64,
    total_pieces: AtomicU32,
    download_rate: AtomicU64,
    upload_rate: AtomicU64,
    paused: AtomicBool,
}

/// A snapshot of a torrent's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TorrentStats {
    /// Bytes of pieces downloaded and verified in this session.
    pub downloaded: u64,
    /// Bytes of blocks sent to peers in this session.
    pub uploaded: u64,
    /// Pieces verified, including those found on disk when added.
    pub verified_pieces: u32,
    /// The torrent's piece count.
    pub total_pieces: u32,
    /// Bytes of wanted pieces not verified yet.
    pub left: u64,
    /// Bytes of wanted pieces, verified or not: the torrent's size unless files are skipped
    /// (0 until a magnet link's metadata is in).
    pub wanted: u64,
    /// Peers connected now.
    pub peers: usize,
    /// Bytes received per second, over the last seconds.
    pub download_rate: u64,
    /// Bytes sent per second, over the last seconds.
    pub upload_rate: u64,
}

/// Something that happened to a torrent; see [`Torrent::events`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TorrentEvent {
    /// A peer connection is up (handshakes exchanged).
    PeerConnected {
        /// Its address; the unspecified one for a WebRTC peer, which has none to show.
        addr: SocketAddr,
        /// Its peer id.
        peer_id: PeerId,
        /// Whether we dialed it (for WebRTC: whether the offer was ours).
        outbound: bool,
        /// What the wire runs over.
        transport: crate::choker::Transport,
    },
    /// A peer connection ended.
    PeerDisconnected {
        /// Its address.
        addr: SocketAddr,
        /// Why, in words.
        reason: String,
    },
    /// A peer was banned: it is disconnected and never accepted again.
    PeerBanned {
        /// Its address.
        addr: SocketAddr,
        /// Its peer id.
        peer_id: PeerId,
        /// Why, in words.
        reason: String,
    },
    /// A piece passed its hash check and is on disk.
    PieceVerified(u32),
    /// A complete piece failed its hash check; it is downloaded again.
    PieceFailed(u32),
    /// Every wanted piece is verified (every piece, unless files are skipped).
    Completed,
    /// A magnet link's metadata arrived and was verified: [`Torrent::metainfo`] has it.
    MetadataReceived,
    /// The torrent's files could not be written.
    StorageError(String),
    /// The torrent cannot run (a magnet link's files cannot be opened, or its file
    /// selection names none of them): it is stopped.
    Failed(String),
    /// The torrent stopped (the client shut down).
    Stopped,
}

/// One peer of a torrent; see [`Torrent::peers`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStats {
    /// Its address; the unspecified one for a WebRTC peer or a web seed.
    pub addr: SocketAddr,
    /// Its peer id (for a web seed, one made from its URL).
    pub peer_id: PeerId,
    /// What the wire runs over.
    pub transport: crate::choker::Transport,
    /// A web seed (BEP 19/17) rather than a peer.
    pub web_seed: bool,
    /// Whether we dialed it (for WebRTC: whether the offer was ours).
    pub outbound: bool,
    /// How many pieces it has.
    pub pieces: u32,
    /// Bytes per second it sends us.
    pub download_rate: u64,
    /// Bytes per second we send it.
    pub upload_rate: u64,
    /// Whether it lets us request.
    pub unchoked_us: bool,
    /// Whether it left our requests unanswered for a minute.
    pub snubbed: bool,
}

/// One tracker of a torrent; see [`Torrent::trackers`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackerInfo {
    /// The announce URL.
    pub url: String,
    /// Its BEP 12 tier, 0 first.
    pub tier: usize,
    /// Peers in its last answer, when the last announce succeeded.
    pub peers: Option<usize>,
    /// Seeders, if its last answer said.
    pub seeders: Option<u32>,
    /// Leechers, if its last answer said.
    pub leechers: Option<u32>,
    /// Why the last announce failed: a timeout, garbage, or the tracker's `failure reason`.
    pub error: Option<String>,
    /// The `warning message` of its last answer.
    pub warning: Option<String>,
    /// Failed announces since its last success.
    pub failures: u32,
}

impl From<announce::TrackerStatus> for TrackerInfo {
    fn from(status: announce::TrackerStatus) -> Self {
        let (peers, seeders, leechers, error) = match status.last {
            Some(Ok(answer)) => (Some(answer.peers), answer.seeders, answer.leechers, None),
            Some(Err(e)) => (None, None, None, Some(e.to_string())),
            None => (None, None, None, None),
        };
        Self {
            url: status.url,
            tier: status.tier,
            peers,
            seeders,
            leechers,
            error,
            warning: status.warning,
            failures: status.failures,
        }
    }
}

/// The client: a listener and the torrents it serves.
#[derive(Debug)]
pub struct Client {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    listener: JoinHandle<()>,
}

/// What the client's tasks share.
#[derive(Debug)]
struct Shared {
    peer_id: PeerId,
    download_dir: PathBuf,
    port: u16,
    max_requests_per_peer: usize,
    max_connections: usize,
    max_connections_per_torrent: usize,
    /// Connections up, outbound ones being set up included.
    connections: AtomicUsize,
    /// Inbound connections in their handshake.
    pending_inbound: AtomicUsize,
    announce: bool,
    choker: ChokerConfig,
    /// The application's extensions.
    extensions: Arc<[ExtensionFactory]>,
    limits: peer::Limits,
    trackers: Arc<Trackers>,
    /// Local service discovery, when on.
    lsd: OnceLock<lsd::LocalDiscovery>,
    /// The DHT, when on.
    dht: OnceLock<dht::DhtDiscovery>,
    /// The HTTP client of every web seed, made on first use (`None` if it cannot be).
    web_seeds: OnceLock<Option<webtorrent_webseed::WebSeedClient>>,
    /// Torrents by wire info-hash. Touched when a torrent is added or a peer connects only.
    torrents: Mutex<HashMap<InfoHashV1, mpsc::Sender<Command>>>,
    /// WebTorrent peers are on.
    #[cfg(feature = "webrtc")]
    webrtc: bool,
    /// The address peers are listened for on (WebRTC binds its IP when specific).
    #[cfg(feature = "webrtc")]
    listen: SocketAddr,
    #[cfg(feature = "webrtc")]
    stun: Vec<String>,
    /// The WebRTC transport and WebSocket tracker client, made on first use (`None` if
    /// they cannot be).
    #[cfg(feature = "webrtc")]
    rtc: OnceLock<Option<webrtc::RtcContext>>,
}

impl Shared {
    /// Our handshake's reserved bits: [`RESERVED`], and the DHT bit when the DHT runs.
    fn reserved(&self) -> Reserved {
        RESERVED.with_dht(self.dht.get().is_some())
    }

    fn torrent(&self, info_hash: &InfoHashV1) -> Option<mpsc::Sender<Command>> {
        self.torrents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(info_hash)
            .cloned()
    }

    fn limits(&self) -> MutexGuard<'_, RateLimits<InfoHashV1>> {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The web seeds' HTTP client.
    fn web_seed_client(&self) -> Option<&webtorrent_webseed::WebSeedClient> {
        self.web_seeds
            .get_or_init(|| {
                webtorrent_webseed::WebSeedClient::new(Default::default())
                    .inspect_err(|e| tracing::warn!("web seeds cannot be used: {e}"))
                    .ok()
            })
            .as_ref()
    }

    /// Sets a torrent's upload and download limits.
    fn set_torrent_limits(&self, info_hash: InfoHashV1, upload: Limit, download: Limit) {
        let now = Instant::now();
        let mut limits = self.limits();
        limits.upload.set_torrent_limit(info_hash, upload, now);
        limits.download.set_torrent_limit(info_hash, download, now);
    }

    /// Takes a connection slot if the client has one free.
    fn reserve_connection(&self) -> bool {
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_connections).then_some(n + 1)
            })
            .is_ok()
    }

    /// Whether a connection slot is free now.
    #[cfg(feature = "webrtc")]
    fn has_room(&self) -> bool {
        self.connections.load(Ordering::Acquire) < self.max_connections
    }

    /// The WebRTC side, made on first use.
    #[cfg(feature = "webrtc")]
    fn rtc(&self) -> Option<&webrtc::RtcContext> {
        self.rtc
            .get_or_init(|| {
                let ws =
                    webtorrent_tracker::WsTracker::new(webtorrent_tracker::WsConfig::default())
                        .inspect_err(|e| tracing::warn!("WebSocket trackers cannot be used: {e}"))
                        .ok()?;
                let rtc = webtorrent_rtc::Rtc::new(webrtc::rtc_config(self.listen, &self.stun));
                Some(webrtc::RtcContext { rtc, ws })
            })
            .as_ref()
    }

    /// Gives a connection slot back.
    fn release_connection(&self) {
        let _ = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

impl Client {
    /// Binds the listener and starts accepting peers.
    pub async fn new(config: ClientConfig) -> Result<Self, SessionError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| SessionError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| SessionError::Listen {
                addr: config.listen,
                source,
            })?;
        let now = Instant::now();
        let shared = Arc::new(Shared {
            peer_id: config.peer_id,
            download_dir: config.download_dir,
            port: local_addr.port(),
            max_requests_per_peer: config.max_requests_per_peer.max(1),
            max_connections: config.max_connections.max(1),
            max_connections_per_torrent: config.max_connections_per_torrent.max(1),
            connections: AtomicUsize::new(0),
            pending_inbound: AtomicUsize::new(0),
            announce: config.announce,
            choker: config.choker,
            extensions: config.extensions.into(),
            limits: Arc::new(Mutex::new(RateLimits::new(
                config.upload_limit,
                config.download_limit,
                now,
            ))),
            trackers: Arc::new(Trackers::new()),
            web_seeds: OnceLock::new(),
            lsd: OnceLock::new(),
            dht: OnceLock::new(),
            torrents: Mutex::new(HashMap::new()),
            #[cfg(feature = "webrtc")]
            webrtc: config.webrtc,
            #[cfg(feature = "webrtc")]
            listen: local_addr,
            #[cfg(feature = "webrtc")]
            stun: config.stun,
            #[cfg(feature = "webrtc")]
            rtc: OnceLock::new(),
        });
        if config.dht
            && let Some(dht) = dht::DhtDiscovery::start(
                Arc::downgrade(&shared),
                local_addr,
                config.dht_bootstrap,
                shared.download_dir.join(dht::TABLE_FILE),
            )
            .await
        {
            let _ = shared.dht.set(dht);
        }
        let listener = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        if config.lsd
            && let Some(lsd) = lsd::LocalDiscovery::start(
                Arc::downgrade(&shared),
                local_addr.port(),
                config.lsd_interface,
            )
        {
            let _ = shared.lsd.set(lsd);
        }
        Ok(Self {
            shared,
            local_addr,
            listener,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.shared.peer_id
    }

    /// The client's DHT node, when [`ClientConfig::dht`] is on and its socket could be
    /// bound: for BEP 44 items, its address (to bootstrap other nodes from), saving its
    /// table.
    pub fn dht(&self) -> Option<&webtorrent_dht::Dht> {
        self.shared.dht.get().map(dht::DhtDiscovery::dht)
    }

    /// Sets the client's upload and download limits.
    pub fn set_limits(&self, upload: Limit, download: Limit) {
        let now = Instant::now();
        let mut limits = self.shared.limits();
        limits.upload.set_global_limit(upload, now);
        limits.download.set_global_limit(download, now);
    }

    /// Adds a torrent: its verified pieces come from the saved resume data if it still
    /// matches the files, from a recheck otherwise (or, with [`AddOptions::seed_mode`],
    /// every piece is taken as verified). A torrent whose data is complete seeds.
    pub async fn add(
        &self,
        torrent: Metainfo,
        options: AddOptions,
    ) -> Result<Torrent, SessionError> {
        let info_hash = torrent.info_hashes().wire();
        if self.shared.torrent(&info_hash).is_some() {
            return Err(SessionError::Duplicate(info_hash));
        }
        let layout = Layout::from_metainfo(&torrent);
        let dir = options
            .dir
            .clone()
            .unwrap_or_else(|| self.shared.download_dir.clone());
        let resume = resume_path(&dir, &info_hash);
        let seed_mode = options.seed_mode;
        let priorities = select_priorities(torrent.info(), options.select.as_deref())?;
        let storage = {
            let resume = resume.clone();
            let priorities = priorities.clone();
            tokio::task::spawn_blocking(move || {
                open_storage(layout, &dir, &resume, seed_mode, priorities.as_deref())
            })
            .await
            .map_err(|e| SessionError::Task(e.to_string()))??
        };
        let storage = Arc::new(storage);
        self.shared
            .set_torrent_limits(info_hash, options.upload_limit, options.download_limit);
        let mut tiers = torrent.trackers().to_vec();
        if torrent.info().private() {
            // BEP 27: a private torrent's peers come from its own trackers only.
            if !options.trackers.is_empty() {
                tracing::info!(%info_hash, "private torrent: extra trackers ignored");
            }
        } else {
            tiers.extend(options.trackers.iter().map(|url| vec![url.clone()]));
        }
        let counters = Arc::new(Counters::default());
        let (events, _) = broadcast::channel(1024);
        let (tx, rx) = mpsc::channel(1024);
        let (done, done_rx) = watch::channel(false);
        let (storage_slot, storage_rx) = watch::channel(None);
        let metainfo = Arc::new(torrent);
        let task = torrent::build(torrent::Setup {
            shared: Arc::clone(&self.shared),
            storage,
            storage_slot,
            info_hash,
            resume_path: resume,
            metainfo: Arc::clone(&metainfo),
            counters: Arc::clone(&counters),
            events: events.clone(),
            done,
            this: tx.downgrade(),
            announcer: None,
            candidates: Vec::new(),
            web_seeds: webtorrent_webseed::web_seeds(&metainfo),
            priorities,
        })?;
        if !self.register(metainfo.info_hashes(), &tx) {
            return Err(SessionError::Duplicate(info_hash));
        }
        tokio::spawn(task.run(rx));
        if let Some(lsd) = self.shared.lsd.get().filter(|_| !metainfo.info().private()) {
            lsd.add(info_hash);
        }
        if let Some(dht) = self.shared.dht.get().filter(|_| !metainfo.info().private()) {
            dht.add(info_hash);
        }
        if self.shared.announce && !tiers.is_empty() {
            let announcer = start_announcer(&self.shared, tiers, info_hash, &counters, &tx);
            let _ = tx.send(Command::Announcer(announcer)).await;
        }
        let handle = Torrent {
            tx,
            counters,
            done: done_rx,
            events,
            metainfo: Arc::new(OnceLock::from(metainfo)),
            storage: storage_rx,
            info_hash,
        };
        if !options.peers.is_empty() {
            handle.add_peers(options.peers, true).await?;
        }
        Ok(handle)
    }

    /// Adds a torrent by magnet link: its info dictionary is fetched from peers (BEP 9)
    /// found through the link's trackers (`tr`), peers (`x.pe`), [`AddOptions::peers`] and
    /// [`AddOptions::trackers`], verified against the info-hash, and then the download
    /// proceeds as for [`Client::add`]. For a v2-only link (`xt=urn:btmh:` alone) the piece
    /// layers of the files longer than a piece are fetched from the same peers first (BEP 52
    /// hash requests) and verified against each file's root. The handle is returned at
    /// once; [`Torrent::metainfo`] is `None` until the metadata (and those layers) are in.
    pub async fn add_magnet(
        &self,
        magnet: &webtorrent_magnet::Magnet,
        options: AddOptions,
    ) -> Result<Torrent, SessionError> {
        use webtorrent_magnet::PeerAddr;
        let hashes = magnet.info_hashes().ok_or(SessionError::NoInfoHash)?;
        let info_hash = hashes.wire();
        if self.shared.torrent(&info_hash).is_some() {
            return Err(SessionError::Duplicate(info_hash));
        }
        let mut peers: Vec<(SocketAddr, bool)> =
            options.peers.iter().map(|&addr| (addr, true)).collect();
        for peer in &magnet.peers {
            match peer {
                PeerAddr::Ip(addr) => peers.push((*addr, false)),
                PeerAddr::Host { host, port } => {
                    if let Ok(found) = tokio::net::lookup_host((host.as_str(), *port)).await {
                        peers.extend(found.map(|addr| (addr, false)));
                    }
                }
                _ => {}
            }
        }
        let mut tiers: Vec<Vec<String>> = magnet
            .trackers
            .iter()
            .map(|url| vec![url.clone()])
            .collect();
        tiers.extend(options.trackers.iter().map(|url| vec![url.clone()]));
        let counters = Arc::new(Counters::default());
        // Unknown until the metadata is in; trackers need a size left that is not 0.
        counters
            .left
            .store(u64::from(webtorrent_types::BLOCK_SIZE), Ordering::Relaxed);
        let (events, _) = broadcast::channel(1024);
        let (tx, rx) = mpsc::channel(1024);
        let (done, done_rx) = watch::channel(false);
        let (storage_slot, storage_rx) = watch::channel(None);
        let metainfo = Arc::new(OnceLock::new());
        self.shared
            .set_torrent_limits(info_hash, options.upload_limit, options.download_limit);
        if !self.register(hashes, &tx) {
            return Err(SessionError::Duplicate(info_hash));
        }
        let setup = magnet::MagnetSetup {
            shared: Arc::clone(&self.shared),
            hashes,
            info_hash,
            dir: options
                .dir
                .clone()
                .unwrap_or_else(|| self.shared.download_dir.clone()),
            counters: Arc::clone(&counters),
            events: events.clone(),
            done,
            metainfo: Arc::clone(&metainfo),
            storage_slot,
            this: tx.downgrade(),
            peers,
            web_seeds: magnet.web_seeds.clone(),
            select: options
                .select
                .clone()
                .or_else(|| (!magnet.select_only.is_empty()).then(|| magnet.select_only.clone())),
        };
        tokio::spawn(magnet::run(setup, rx));
        if let Some(lsd) = self.shared.lsd.get() {
            lsd.add(info_hash);
        }
        // Whether it is private is known with the metadata: it leaves the DHT then.
        if let Some(dht) = self.shared.dht.get() {
            dht.add(info_hash);
        }
        if self.shared.announce && !tiers.is_empty() {
            let announcer = start_announcer(&self.shared, tiers, info_hash, &counters, &tx);
            let _ = tx.send(Command::Announcer(announcer)).await;
        }
        Ok(Torrent {
            tx,
            counters,
            done: done_rx,
            events,
            metainfo,
            storage: storage_rx,
            info_hash,
        })
    }

    /// Routes peers of the torrent named by `hashes` to `tx`: those naming its wire
    /// info-hash, and for a hybrid torrent also those naming its truncated v2 info-hash
    /// (BEP 52: a hybrid torrent answers to both, as peers that know only its v2 hash use
    /// the latter). `false` if the torrent is there already.
    fn register(&self, hashes: InfoHashes, tx: &mpsc::Sender<Command>) -> bool {
        let mut keys = vec![hashes.wire()];
        if let (Some(_), Some(v2)) = (hashes.v1, hashes.v2) {
            keys.push(v2.truncated());
        }
        let mut torrents = self
            .shared
            .torrents
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if keys.iter().any(|k| torrents.contains_key(k)) {
            return false;
        }
        for key in keys {
            torrents.insert(key, tx.clone());
        }
        true
    }

    /// Creates the torrent of a file or folder (hybrid v1 + v2, libtorrent's automatic
    /// piece length) and seeds it from where it is. The torrent is in
    /// [`Torrent::metainfo`]; for other choices (trackers, v1 only...), build it with
    /// [`TorrentBuilder`] and use [`Client::seed_with`].
    pub async fn seed(&self, path: impl Into<PathBuf>) -> Result<Torrent, SessionError> {
        self.seed_with(TorrentBuilder::new(path.into()), AddOptions::default())
            .await
    }

    /// Creates a torrent with `builder` (which names the file or folder) and seeds it from
    /// the folder that holds that file or folder, without hashing it again.
    pub async fn seed_with(
        &self,
        builder: TorrentBuilder,
        mut options: AddOptions,
    ) -> Result<Torrent, SessionError> {
        let path = builder.path().map(Path::to_path_buf);
        let meta = tokio::task::spawn_blocking(move || builder.build())
            .await
            .map_err(|e| SessionError::Task(e.to_string()))??;
        if let Some(path) = path {
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            let parent = path
                .parent()
                .ok_or_else(|| SessionError::NoParent(path.clone()))?;
            options.dir = Some(parent.to_path_buf());
        }
        options.seed_mode = true;
        self.add(meta, options).await
    }

    /// Removes a torrent: it stops as at [`shutdown`](Self::shutdown) (trackers hear
    /// `stopped`, resume data is saved), and its info-hashes are free to be added again.
    /// With `delete_files`, its files, its part files and its resume data are deleted,
    /// and the folders of a multi-file torrent that are left empty.
    pub async fn remove(&self, torrent: &Torrent, delete_files: bool) -> Result<(), SessionError> {
        let info_hash = torrent.info_hash();
        let found = {
            let mut torrents = self
                .shared
                .torrents
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let before = torrents.len();
            torrents.retain(|_, tx| !tx.same_channel(&torrent.tx));
            torrents.len() < before
        };
        if !found {
            return Err(SessionError::Stopped);
        }
        if let Some(lsd) = self.shared.lsd.get() {
            lsd.remove(info_hash);
        }
        if let Some(dht) = self.shared.dht.get() {
            dht.remove(info_hash);
        }
        let (reply, done) = oneshot::channel();
        let stopped = if torrent.tx.send(Command::Shutdown(reply)).await.is_ok() {
            done.await.unwrap_or(Ok(()))
        } else {
            Ok(())
        };
        let storage = torrent.storage.borrow().clone();
        if delete_files && let Some(storage) = storage {
            tokio::task::spawn_blocking(move || delete_data(&storage, &info_hash))
                .await
                .map_err(|e| SessionError::Task(e.to_string()))??;
        }
        stopped
    }

    /// Stops every torrent: announces `stopped` to the trackers (waiting at most 5 s),
    /// closes the connections, flushes the files and saves resume data. The first error
    /// is returned after every torrent has stopped.
    pub async fn shutdown(&self) -> Result<(), SessionError> {
        self.listener.abort();
        let mut torrents: Vec<mpsc::Sender<Command>> = Vec::new();
        for (_, tx) in self
            .shared
            .torrents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
        {
            // A hybrid torrent is there under both of its hashes: stopped once.
            if !torrents.iter().any(|t| t.same_channel(&tx)) {
                torrents.push(tx);
            }
        }
        let stops = torrents.into_iter().map(|tx| async move {
            let (reply, done) = oneshot::channel();
            if tx.send(Command::Shutdown(reply)).await.is_err() {
                return Ok(());
            }
            done.await.unwrap_or(Ok(()))
        });
        let mut result = Ok(());
        for r in join_all(stops).await {
            if result.is_ok() {
                result = r;
            }
        }
        if let Some(dht) = self.shared.dht.get() {
            dht.save().await;
        }
        result
    }
}

/// Runs futures concurrently and collects their outputs in order.
async fn join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        if let Ok(output) = handle.await {
            out.push(output);
        }
    }
    out
}

/// Starts a torrent's announcer: peers it learns go to the torrent.
fn start_announcer(
    shared: &Arc<Shared>,
    tiers: Vec<Vec<String>>,
    info_hash: InfoHashV1,
    counters: &Arc<Counters>,
    torrent: &mpsc::Sender<Command>,
) -> Announcer {
    let progress = {
        let counters = Arc::clone(counters);
        move || Progress {
            uploaded: counters.uploaded.load(Ordering::Relaxed),
            downloaded: counters.downloaded.load(Ordering::Relaxed),
            left: counters.left.load(Ordering::Relaxed),
        }
    };
    let on_peers = {
        let torrent = torrent.downgrade();
        move |peers: Vec<SocketAddr>| {
            if let Some(torrent) = torrent.upgrade() {
                // A full queue drops this answer's peers; the next answer brings them again.
                let _ = torrent.try_send(Command::AddPeers {
                    peers,
                    sticky: false,
                });
            }
        }
    };
    #[cfg(feature = "webrtc")]
    let signaler = {
        let urls = webrtc::ws_urls(&tiers);
        match shared.rtc().filter(|_| shared.webrtc && !urls.is_empty()) {
            Some(context) => webrtc::Signaler::start(webrtc::SignalSetup {
                context: context.clone(),
                shared: Arc::clone(shared),
                urls,
                info_hash,
                progress: Arc::new(progress.clone()),
                torrent: torrent.downgrade(),
            }),
            None => None,
        }
    };
    Announcer::start(AnnounceSetup {
        trackers: Arc::clone(&shared.trackers),
        tiers,
        info_hash,
        peer_id: shared.peer_id,
        port: shared.port,
        progress: Box::new(progress),
        on_peers: Box::new(on_peers),
        #[cfg(feature = "webrtc")]
        signaler,
    })
}

/// Deletes a torrent's files, part files and resume data, then the folders of a
/// multi-file torrent left empty (blocking).
fn delete_data(storage: &FileStorage, info_hash: &InfoHashV1) -> Result<(), SessionError> {
    use webtorrent_storage::Storage;
    let gone = |r: io::Result<()>| match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    let fail = |path: &Path, e: io::Error| {
        SessionError::Storage(StorageError::Io {
            path: path.to_path_buf(),
            source: e,
        })
    };
    let info = storage.layout().info();
    let mut folders = Vec::new();
    for (i, file) in info.files().iter().enumerate() {
        if file.is_pad() {
            continue;
        }
        if let Some(path) = storage.path(i) {
            gone(std::fs::remove_file(path)).map_err(|e| fail(path, e))?;
            folders.extend(path.parent().map(Path::to_path_buf));
        }
    }
    let parts = storage.parts_dir();
    gone(std::fs::remove_dir_all(&parts)).map_err(|e| fail(&parts, e))?;
    let resume = resume_path(storage.root(), info_hash);
    gone(std::fs::remove_file(&resume)).map_err(|e| fail(&resume, e))?;
    if info.is_multi_file() {
        // Deepest first; a folder still holding other files stays.
        folders.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        folders.dedup();
        let top = storage.root().join(info.name());
        for mut folder in folders {
            while folder.starts_with(&top) && std::fs::remove_dir(&folder).is_ok() {
                if !folder.pop() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Where a torrent's resume data is saved.
fn resume_path(dir: &Path, info_hash: &InfoHashV1) -> PathBuf {
    dir.join(format!(".{}.resume", info_hash.to_hex()))
}

/// Opens a torrent's files and finds its verified pieces (blocking).
/// Opens a torrent's files: `priorities` (one per file) skips the files of priority 0
/// before the recheck, so that their bytes kept in part files count.
fn open_storage(
    layout: Layout,
    dir: &Path,
    resume: &Path,
    seed_mode: bool,
    priorities: Option<&[u8]>,
) -> Result<FileStorage, SessionError> {
    use webtorrent_storage::{Bitfield, ResumeData, Storage};
    let store = match priorities {
        Some(priorities) => {
            let skipped = skipped_files(layout.info(), priorities);
            FileStorage::with_skipped(layout, dir, &skipped)?
        }
        None => FileStorage::new(layout, dir)?,
    };
    if seed_mode {
        store.replace_verified(Bitfield::full(store.layout().piece_count()))?;
        // Saved at once, so that the next start trusts the files without a recheck.
        ResumeData::capture(&store)?.save(resume)?;
        return Ok(store);
    }
    // Resume data that cannot be read or no longer matches is ignored: the recheck below
    // finds the truth on disk.
    let trusted = ResumeData::load(resume)
        .ok()
        .flatten()
        .and_then(|data| {
            let files = store.file_states().ok()?;
            data.validate(store.layout(), &files).ok()
        })
        .filter(|verified| verified.is_full());
    let verified = match trusted {
        Some(verified) => verified,
        None => {
            let threads = std::thread::available_parallelism().map_or(1, usize::from);
            let engine = webtorrent_hash::MultiCoreEngine::new(threads);
            webtorrent_storage::recheck(&store, &engine, |_, _| {})?
        }
    };
    store.replace_verified(verified)?;
    Ok(store)
}

/// The file priorities of a selection: the default for selected files, 0 for the others.
/// `None` when there is no selection.
fn select_priorities(
    info: &Info,
    select: Option<&[FileRange]>,
) -> Result<Option<Vec<u8>>, SessionError> {
    let Some(ranges) = select else {
        return Ok(None);
    };
    let files = info.files();
    let priorities: Vec<u8> = (0..files.len())
        .map(|i| {
            let selected = u32::try_from(i).is_ok_and(|i| ranges.iter().any(|r| r.contains(i)));
            if selected && !files[i].is_pad() {
                crate::picker::DEFAULT_PRIORITY
            } else {
                0
            }
        })
        .collect();
    if priorities.iter().all(|&p| p == 0) {
        return Err(SessionError::EmptySelection { files: files.len() });
    }
    Ok(Some(priorities))
}

/// Which files storage skips for these priorities: those of priority 0 (pad files are
/// never stored anyway).
fn skipped_files(info: &Info, priorities: &[u8]) -> Vec<bool> {
    info.files()
        .iter()
        .zip(priorities)
        .map(|(f, &p)| p == 0 && !f.is_pad())
        .collect()
}

/// Reads a block of the wire's piece space: in a v2 torrent the last piece of a file ends
/// with the file, and the rest of the piece on the wire is padding, zeros (blocking).
fn read_padded(storage: &FileStorage, block: BlockRef) -> Result<Vec<u8>, StorageError> {
    use webtorrent_storage::Storage;
    let size = storage.layout().piece_size(block.piece)?;
    let end = u64::from(block.offset) + u64::from(block.length);
    if end <= size {
        return storage.read_block(block.piece, block.offset, block.length);
    }
    // Only a v2 piece is shorter than the wire's: `size` < the piece length, a u32.
    let real = size.saturating_sub(u64::from(block.offset)) as u32;
    let mut data = if real > 0 {
        storage.read_block(block.piece, block.offset, real)?
    } else {
        Vec::new()
    };
    data.resize(block.length as usize, 0);
    Ok(data)
}

/// Writes a block of the wire's piece space, leaving out its padding (blocking).
fn write_clipped(storage: &FileStorage, block: BlockRef, data: &[u8]) -> Result<(), StorageError> {
    use webtorrent_storage::Storage;
    let size = storage.layout().piece_size(block.piece)?;
    let real = size
        .saturating_sub(u64::from(block.offset))
        .min(data.len() as u64);
    if real == 0 {
        return Ok(());
    }
    // `real` ≤ `data.len()`.
    storage.write_block(block.piece, block.offset, &data[..real as usize])
}

/// Accepts peers and hands each, after its handshake, to the torrent it asks for.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let admitted = shared
            .pending_inbound
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PENDING_INBOUND).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            tracing::debug!(%addr, "inbound peer refused: too many handshakes under way");
            continue;
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut stream = stream;
            let theirs = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_handshake(&mut stream))
                .await
                .map_err(|_| "no handshake in time")
                .and_then(|h| h.ok_or("not a BitTorrent handshake"));
            shared.pending_inbound.fetch_sub(1, Ordering::AcqRel);
            let handed = match theirs {
                Ok(theirs) => inbound(stream, addr, theirs, &shared).await,
                Err(why) => Err(why),
            };
            if let Err(why) = handed {
                tracing::debug!(%addr, "inbound peer dropped: {why}");
            }
        });
    }
}

/// Answers an inbound peer's handshake and passes the peer to its torrent, with a
/// connection slot.
async fn inbound(
    mut stream: TcpStream,
    addr: SocketAddr,
    theirs: Handshake,
    shared: &Shared,
) -> Result<(), &'static str> {
    let tx = shared
        .torrent(&theirs.info_hash)
        .ok_or("a handshake for a torrent we do not have")?;
    if !shared.reserve_connection() {
        return Err("the client has its fill of peers");
    }
    let ours = Handshake::new(shared.reserved(), theirs.info_hash, shared.peer_id);
    let handed = async {
        stream
            .write_all(&ours.to_bytes())
            .await
            .map_err(|_| "connection lost")?;
        tx.send(Command::Connected {
            stream: stream::PeerStream::Tcp(stream),
            addr,
            handshake: theirs,
            outbound: false,
        })
        .await
        .map_err(|_| "the torrent stopped")
    };
    // The slot is the torrent's once it has the peer; given back otherwise.
    let handed = handed.await;
    if handed.is_err() {
        shared.release_connection();
    }
    handed
}

/// Reads the peer's 68-byte handshake; `None` if the connection fails or it is malformed.
async fn read_handshake(stream: &mut (impl AsyncRead + Unpin)) -> Option<Handshake> {
    let mut buf = [0; HANDSHAKE_LEN];
    stream.read_exact(&mut buf).await.ok()?;
    match Handshake::decode(&buf) {
        Ok(Some((handshake, _))) => Some(handshake),
        _ => None,
    }
}

/// A torrent of a [`Client`]. Cheap to clone; the torrent keeps running when handles are
/// dropped, until the client shuts down.
#[derive(Debug, Clone)]
pub struct Torrent {
    tx: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    done: watch::Receiver<bool>,
    events: broadcast::Sender<TorrentEvent>,
    /// Set once known: at once for a .torrent, after the metadata phase for a magnet.
    metainfo: Arc<OnceLock<Arc<Metainfo>>>,
    /// The torrent's storage once its files are open, for file readers.
    storage: watch::Receiver<Option<Arc<FileStorage>>>,
    info_hash: InfoHashV1,
}

impl Torrent {
    /// The info-hash peers know the torrent by.
    pub fn info_hash(&self) -> InfoHashV1 {
        self.info_hash
    }

    /// The torrent's metainfo; `None` while a magnet's metadata is being fetched.
    pub fn metainfo(&self) -> Option<Arc<Metainfo>> {
        self.metainfo.get().cloned()
    }

    /// Waits until the torrent's metainfo is known: at once for a .torrent, for a magnet once
    /// its info dictionary has arrived and hashed to the info-hash
    /// ([`TorrentEvent::MetadataReceived`]). `None` if the torrent stops first.
    pub async fn wait_metadata(&self) -> Option<Arc<Metainfo>> {
        // Subscribed before looking, so that the event cannot slip in between.
        let mut events = self.events.subscribe();
        loop {
            if let Some(meta) = self.metainfo() {
                return Some(meta);
            }
            match events.recv().await {
                Ok(TorrentEvent::Stopped | TorrentEvent::Failed(_))
                | Err(broadcast::error::RecvError::Closed) => return self.metainfo(),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            }
        }
    }

    /// The torrent's files (pad files left out), each with its index among the info's
    /// files; empty while a magnet link's metadata is being fetched.
    pub fn files(&self) -> Vec<File> {
        let Some(meta) = self.metainfo() else {
            return Vec::new();
        };
        (0..meta.info().files().len())
            .filter(|&i| !meta.info().files()[i].is_pad())
            .filter_map(|i| File::new(self.clone(), i))
            .collect()
    }

    /// The pieces verified so far (wire layout: the high bit of the first byte is piece 0);
    /// `None` until the torrent's files are open (a magnet link fetching its metadata).
    pub fn verified(&self) -> Option<webtorrent_types::Bitfield> {
        use webtorrent_storage::Storage;
        self.storage.borrow().as_ref().map(|s| s.verified())
    }

    /// File `index` of the info (pad files counted); `None` if there is no such file or
    /// the metadata is not known yet. Read it with [`File::reader`].
    pub fn file(&self, index: usize) -> Option<File> {
        File::new(self.clone(), index)
    }

    /// Connects to a peer, and again after failures until the torrent stops.
    pub async fn add_peer(&self, addr: SocketAddr) -> Result<(), SessionError> {
        self.add_peers(vec![addr], true).await
    }

    async fn add_peers(&self, peers: Vec<SocketAddr>, sticky: bool) -> Result<(), SessionError> {
        self.tx
            .send(Command::AddPeers { peers, sticky })
            .await
            .map_err(|_| SessionError::Stopped)
    }

    /// Sets this torrent's upload and download limits (the client's apply too).
    pub async fn set_limits(&self, upload: Limit, download: Limit) -> Result<(), SessionError> {
        self.tx
            .send(Command::SetLimits { upload, download })
            .await
            .map_err(|_| SessionError::Stopped)
    }

    /// Sets the priority of every file (one per file of the info, pad files included): 0
    /// skips a file, 1 to [`MAX_PRIORITY`](crate::picker::MAX_PRIORITY) order the others
    /// (higher first; the default is [`DEFAULT_PRIORITY`](crate::picker::DEFAULT_PRIORITY)).
    /// A piece shared by several files gets the highest of their priorities. Skipped files
    /// are not created; the bytes they share with wanted pieces are kept aside (see
    /// [`FileStorage::set_skipped`]). The torrent counts as done once every wanted piece is
    /// verified. Fails with [`SessionError::MetadataPending`] while a magnet link's
    /// metadata is being fetched.
    pub async fn set_file_priorities(&self, priorities: Vec<u8>) -> Result<(), SessionError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::SetFilePriorities(priorities, reply))
            .await
            .map_err(|_| SessionError::Stopped)?;
        answer.await.map_err(|_| SessionError::Stopped)?
    }

    /// The priority of every file (see [`set_file_priorities`](Self::set_file_priorities)).
    pub async fn file_priorities(&self) -> Result<Vec<u8>, SessionError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::FilePriorities(reply))
            .await
            .map_err(|_| SessionError::Stopped)?;
        answer.await.map_err(|_| SessionError::Stopped)?
    }

    /// The torrent's connected peers and web seeds (none while a magnet link's metadata is
    /// being fetched).
    pub async fn peers(&self) -> Result<Vec<PeerStats>, SessionError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Peers(reply))
            .await
            .map_err(|_| SessionError::Stopped)?;
        answer.await.map_err(|_| SessionError::Stopped)
    }

    /// Pauses the torrent: its peer connections close, new ones are refused, nothing is
    /// dialed or requested. Trackers go on being announced to. A magnet link still
    /// fetching its metadata is not paused.
    pub async fn pause(&self) -> Result<(), SessionError> {
        self.tx
            .send(Command::Pause(true))
            .await
            .map_err(|_| SessionError::Stopped)
    }

    /// Resumes a paused torrent: it dials the peers it knows again.
    pub async fn resume(&self) -> Result<(), SessionError> {
        self.tx
            .send(Command::Pause(false))
            .await
            .map_err(|_| SessionError::Stopped)
    }

    /// Whether the torrent is paused.
    pub fn is_paused(&self) -> bool {
        self.counters.paused.load(Ordering::Relaxed)
    }

    /// The torrent's trackers and how their last announces went.
    pub async fn trackers(&self) -> Result<Vec<TrackerInfo>, SessionError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Trackers(reply))
            .await
            .map_err(|_| SessionError::Stopped)?;
        let status = answer.await.map_err(|_| SessionError::Stopped)?;
        Ok(status.into_iter().map(TrackerInfo::from).collect())
    }

    /// What happens to the torrent from now on. A receiver that falls more than 1024
    /// events behind misses the oldest (see [`broadcast::Receiver::recv`]).
    pub fn events(&self) -> broadcast::Receiver<TorrentEvent> {
        self.events.subscribe()
    }

    /// Whether every wanted piece is verified (every piece, unless files are skipped).
    pub fn is_done(&self) -> bool {
        *self.done.borrow()
    }

    /// Waits until every wanted piece is verified (at once when seeding). Returns early if
    /// the torrent stops first.
    pub async fn wait_done(&self) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// The torrent's progress now.
    pub fn stats(&self) -> TorrentStats {
        TorrentStats {
            downloaded: self.counters.downloaded.load(Ordering::Relaxed),
            uploaded: self.counters.uploaded.load(Ordering::Relaxed),
            verified_pieces: self.counters.verified.load(Ordering::Relaxed),
            total_pieces: self.counters.total_pieces.load(Ordering::Relaxed),
            left: self.counters.left.load(Ordering::Relaxed),
            wanted: self.counters.wanted.load(Ordering::Relaxed),
            peers: self.counters.peers.load(Ordering::Relaxed),
            download_rate: self.counters.download_rate.load(Ordering::Relaxed),
            upload_rate: self.counters.upload_rate.load(Ordering::Relaxed),
        }
    }
}
