//! The session engine: download and seed torrents over TCP.
//!
//! A [`Client`] binds one TCP listener and routes inbound handshakes to its torrents by
//! info-hash. [`Client::add`] opens a torrent's files under the download directory,
//! trusts saved resume data when it still matches the files or rechecks them otherwise,
//! and starts the torrent: with every piece verified it seeds, otherwise it downloads from
//! the peers it is given ([`AddOptions::peers`], [`Torrent::add_peer`]) and from peers
//! that connect to it.
//!
//! Tasks and messages:
//!
//! - one task per torrent owns the piece state (which blocks are free, requested, being
//!   written; which pieces are being verified) and every peer's piece set; peers talk to it
//!   through a bounded channel, it answers through per-peer channels it never waits on;
//! - one task per peer connection drives a [`wire::Connection`](webtorrent_wire::Connection)
//!   over the socket's write half; a reader task decodes the read half into a bounded
//!   channel of messages;
//! - blocks are written, pieces read and verified, on blocking threads; a piece counts as
//!   downloaded only once verified, and the peers that sent a piece that fails verification
//!   are disconnected and banned (by peer id and address);
//! - requests are pipelined: up to [`ClientConfig::max_requests_per_peer`] blocks in flight
//!   per peer;
//! - [`Client::shutdown`] closes every connection, flushes the files and saves resume data
//!   next to them.
//!
//! Not yet: tracker announces, the [`picker`](crate::picker) (pieces are taken in order,
//! no rarest-first, no endgame), the [`choker`](crate::choker) (every interested peer is
//! unchoked), [rate limits](crate::ratelimit), request pipelines sized to the peer's rate,
//! magnet links (metadata exchange), the extension protocol (BEP 10), the BEP 52 hash
//! messages, uTP and WebRTC. Interop is tested with libtorrent in both directions; other
//! clients are not tested yet.
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

mod peer;
mod torrent;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use webtorrent_metainfo::Metainfo;
use webtorrent_storage::{FileStorage, Layout, ResumeError, StorageError};
use webtorrent_types::{InfoHashV1, PeerId};
use webtorrent_wire::{HANDSHAKE_LEN, Handshake, Reserved};

use torrent::Command;

/// The extensions our handshake announces: the fast extension (BEP 6) only, as the engine
/// does not speak the extension protocol (BEP 10), DHT or the BEP 52 hash messages yet.
/// (Announcing BEP 10 also makes peers such as libtorrent send their extension handshake
/// before their bitfield.)
const RESERVED: Reserved = Reserved::NONE.with_fast(true);

/// How long a peer may take to connect and send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// How many block requests may be in flight to one peer.
    pub max_requests_per_peer: usize,
}

impl ClientConfig {
    /// The default settings, storing torrents under `download_dir`.
    pub fn new(download_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            peer_id: fresh_peer_id(),
            download_dir: download_dir.into(),
            max_requests_per_peer: 128,
        }
    }
}

/// A peer id `-RW0100-` followed by 12 bytes that differ between clients and runs.
fn fresh_peer_id() -> PeerId {
    use std::hash::{BuildHasher, Hasher};
    let mut id = *b"-RW0100-000000000000";
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let a = hasher.finish();
    hasher.write_u64(a);
    let b = hasher.finish();
    let random: Vec<u8> = a.to_le_bytes().into_iter().chain(b.to_le_bytes()).collect();
    for (slot, byte) in id[8..].iter_mut().zip(random) {
        // Printable: the digits and letters of base 36.
        *slot = b"0123456789abcdefghijklmnopqrstuvwxyz"[usize::from(byte) % 36];
    }
    PeerId(id)
}

/// How a torrent is added.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AddOptions {
    /// Peers to connect to right away.
    pub peers: Vec<SocketAddr>,
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
    /// Peers connected now.
    pub peers: usize,
}

/// The client: a listener and the torrents it serves.
#[derive(Debug)]
pub struct Client {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    listener: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    peer_id: PeerId,
    download_dir: PathBuf,
    max_requests_per_peer: usize,
    /// Torrents by wire info-hash. Touched when a torrent is added or a peer connects only.
    torrents: Mutex<HashMap<InfoHashV1, mpsc::Sender<Command>>>,
}

impl Shared {
    fn torrent(&self, info_hash: &InfoHashV1) -> Option<mpsc::Sender<Command>> {
        self.torrents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(info_hash)
            .cloned()
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
        let shared = Arc::new(Shared {
            peer_id: config.peer_id,
            download_dir: config.download_dir,
            max_requests_per_peer: config.max_requests_per_peer.max(1),
            torrents: Mutex::new(HashMap::new()),
        });
        let listener = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
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

    /// Adds a torrent stored under the download directory: its verified pieces come from
    /// the saved resume data if it still matches the files, from a recheck otherwise. A
    /// torrent whose data is complete seeds.
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
        let dir = self.shared.download_dir.clone();
        let resume = resume_path(&dir, &info_hash);
        let storage = tokio::task::spawn_blocking(move || open_storage(layout, &dir, &resume))
            .await
            .map_err(|e| SessionError::Task(e.to_string()))??;
        let (handle, tx) = torrent::start(torrent::Setup {
            storage: Arc::new(storage),
            info_hash,
            peer_id: self.shared.peer_id,
            resume_path: resume_path(&self.shared.download_dir, &info_hash),
            max_requests_per_peer: self.shared.max_requests_per_peer,
        })?;
        {
            let mut torrents = self
                .shared
                .torrents
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if torrents.contains_key(&info_hash) {
                return Err(SessionError::Duplicate(info_hash));
            }
            torrents.insert(info_hash, tx);
        }
        for peer in options.peers {
            handle.add_peer(peer).await?;
        }
        Ok(handle)
    }

    /// Stops every torrent: closes the connections, flushes the files and saves resume
    /// data. The first error is returned after every torrent has stopped.
    pub async fn shutdown(self) -> Result<(), SessionError> {
        self.listener.abort();
        let torrents: Vec<_> = self
            .shared
            .torrents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        let mut result = Ok(());
        for (_, tx) in torrents {
            let (reply, done) = oneshot::channel();
            if tx.send(Command::Shutdown(reply)).await.is_ok()
                && let Ok(Err(e)) = done.await
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    }
}

/// Where a torrent's resume data is saved.
fn resume_path(dir: &Path, info_hash: &InfoHashV1) -> PathBuf {
    dir.join(format!(".{}.resume", info_hash.to_hex()))
}

/// Opens a torrent's files and finds its verified pieces (blocking).
fn open_storage(layout: Layout, dir: &Path, resume: &Path) -> Result<FileStorage, SessionError> {
    use webtorrent_storage::{ResumeData, Storage};
    let store = FileStorage::new(layout, dir)?;
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

/// Accepts peers and hands each, after its handshake, to the torrent it asks for.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, inbound(stream, addr, &shared)).await;
        });
    }
}

/// Reads an inbound peer's handshake, answers it, and passes the peer to its torrent.
async fn inbound(mut stream: TcpStream, addr: SocketAddr, shared: &Shared) -> Option<()> {
    let theirs = read_handshake(&mut stream).await?;
    let tx = shared.torrent(&theirs.info_hash)?;
    let ours = Handshake::new(RESERVED, theirs.info_hash, shared.peer_id);
    stream.write_all(&ours.to_bytes()).await.ok()?;
    tx.send(Command::Connected {
        stream,
        addr,
        handshake: theirs,
        outbound: false,
    })
    .await
    .ok()
}

/// Reads the peer's 68-byte handshake; `None` if the connection fails or it is malformed.
async fn read_handshake(stream: &mut TcpStream) -> Option<Handshake> {
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
    info_hash: InfoHashV1,
    total_pieces: u32,
}

impl Torrent {
    /// The info-hash peers know the torrent by.
    pub fn info_hash(&self) -> InfoHashV1 {
        self.info_hash
    }

    /// Connects to a peer (once: known peers are skipped).
    pub async fn add_peer(&self, addr: SocketAddr) -> Result<(), SessionError> {
        self.tx
            .send(Command::AddPeer(addr))
            .await
            .map_err(|_| SessionError::Stopped)
    }

    /// Whether every piece is verified.
    pub fn is_done(&self) -> bool {
        *self.done.borrow()
    }

    /// Waits until every piece is verified (at once when seeding). Returns early if the
    /// torrent stops first.
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
            total_pieces: self.total_pieces,
            peers: self.counters.peers.load(Ordering::Relaxed),
        }
    }
}
