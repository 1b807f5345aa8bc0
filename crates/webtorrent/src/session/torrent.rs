//! The torrent task: the picker, the choker, peers' piece sets, connections, writes and
//! verification of one torrent.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::stream::PeerStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use webtorrent_metainfo::{MetaVersion, Metainfo};
use webtorrent_storage::{Bitfield, FileStorage, Layout, ResumeData, Storage};
use webtorrent_types::{BLOCK_SIZE, BlockRef, InfoHashV1, PeerId};
use webtorrent_wire::{Geometry, Handshake};

use super::announce::{Announcer, TrackerStatus};
use super::hashes::HashServer;
use super::peer::{self, Ended, Limits, PeerEvent, ToPeer};
use super::{
    Counters, HANDSHAKE_TIMEOUT, STOP_ANNOUNCE_TIMEOUT, SessionError, Shared, TorrentEvent,
    read_handshake,
};
use crate::choker::{Choker, Decision, SNUB_TIMEOUT, Transport};
use crate::picker::{self, PiecePicker, ReadAhead, StreamId};
use crate::ratelimit::RateMeter;
use webtorrent_extensions::{PexFlags, PexPeer};
use webtorrent_webseed::WebSeedUrl;

/// A peer connection's key inside its torrent.
pub(super) type PeerKey = u64;

/// How often rates, pipelines, snubs and dials are reviewed.
const TICK: Duration = Duration::from_secs(1);

/// The fewest requests kept in flight to a peer that unchoked us (a new peer starts here
/// and grows with its rate).
const MIN_PIPELINE: usize = 16;

/// How many seconds of a peer's download rate the requests in flight to it should cover.
const PIPELINE_SECONDS: u64 = 2;

/// The most outbound connections being set up at once, per torrent.
const MAX_HALF_OPEN: usize = 16;

/// The most addresses remembered to dial later, per torrent.
const MAX_CANDIDATES: usize = 2_000;

/// How long to wait before dialing a peer given by the user again after a failure or a
/// disconnection; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// The most failed pieces kept for finding the peer that sent bad data.
const MAX_SUSPECT_PIECES: usize = 32;

/// How long two WebRTC connections to the same peer may both live before one is closed.
const RTC_TWIN_GRACE: Duration = Duration::from_secs(10);

/// While a file is streamed, the requests in flight to a peer cover this much of its rate
/// (at least [`MIN_PIPELINE`]): a peer answers requests in order, so a shorter queue lets a
/// piece a reader waits on overtake the others sooner.
const STREAM_PIPELINE: Duration = Duration::from_millis(100);

/// What the torrent task is told.
#[derive(Debug)]
pub(super) enum Command {
    /// Connect to these peers. `sticky`: given by the user, retried until connected.
    AddPeers {
        peers: Vec<SocketAddr>,
        sticky: bool,
    },
    /// A peer whose handshake is done (ours sent, theirs read and matching).
    Connected {
        stream: PeerStream,
        addr: SocketAddr,
        handshake: Handshake,
        outbound: bool,
    },
    /// An outbound connection failed.
    ConnectFailed(SocketAddr),
    /// News from a peer task.
    Peer(PeerKey, PeerEvent),
    /// News from a connection of a magnet's metadata phase.
    Metadata(PeerKey, super::magnet::MetaEvent),
    /// A batch of block writes finished.
    Written(Vec<(BlockRef, bool)>),
    /// A piece verification finished.
    Verified(Verification),
    /// Set this torrent's rate limits.
    SetLimits {
        upload: crate::ratelimit::Limit,
        download: crate::ratelimit::Limit,
    },
    /// The torrent's announcer, started once the torrent runs.
    Announcer(Announcer),
    /// Report the trackers' state.
    Trackers(oneshot::Sender<Vec<TrackerStatus>>),
    /// Set the priority of every file.
    SetFilePriorities(Vec<u8>, oneshot::Sender<Result<(), SessionError>>),
    /// Report the priority of every file.
    FilePriorities(oneshot::Sender<Result<Vec<u8>, SessionError>>),
    /// A reader of one of the torrent's files moved or closed.
    Stream(StreamOrder),
    /// Report the connected peers.
    Peers(oneshot::Sender<Vec<super::PeerStats>>),
    /// Pause (close the peers, dial and request nothing) or resume.
    Pause(bool),
    /// Stop: tell the trackers, close the peers, flush, save resume data.
    Shutdown(oneshot::Sender<Result<(), SessionError>>),
}

/// What a [`FileReader`](super::FileReader) tells its torrent.
#[derive(Debug, Clone, Copy)]
pub(super) enum StreamOrder {
    /// The reader reads at `pos` and stops at `end` (in the data layout), consuming `rate`
    /// bytes per second (0: not measured yet).
    Set {
        id: u64,
        pos: u64,
        end: u64,
        rate: u64,
    },
    /// The reader was dropped.
    Close(u64),
}

/// The outcome of checking a piece.
#[derive(Debug)]
pub(super) struct Verification {
    piece: u32,
    /// `None`: the piece could not be read.
    ok: Option<bool>,
    /// SHA-1 of each block as read, when the piece is a suspect's (failed before, or
    /// failing now with several senders).
    block_digests: Option<Vec<[u8; 20]>>,
}

/// What a torrent starts with.
pub(super) struct Setup {
    pub(super) shared: Arc<Shared>,
    pub(super) storage: Arc<FileStorage>,
    /// Where readers of the torrent's files find its storage once it is open.
    pub(super) storage_slot: watch::Sender<Option<Arc<FileStorage>>>,
    pub(super) info_hash: InfoHashV1,
    pub(super) resume_path: PathBuf,
    pub(super) metainfo: Arc<Metainfo>,
    pub(super) counters: Arc<Counters>,
    pub(super) events: broadcast::Sender<TorrentEvent>,
    pub(super) done: watch::Sender<bool>,
    /// The torrent's own command channel, for the tasks it starts.
    pub(super) this: mpsc::WeakSender<Command>,
    /// The announcer, when it runs already (a magnet's, started for the metadata).
    pub(super) announcer: Option<Announcer>,
    /// Addresses to dial once running.
    pub(super) candidates: Vec<SocketAddr>,
    /// Web seeds to download from.
    pub(super) web_seeds: Vec<WebSeedUrl>,
    /// The priority of each file, when not the default for all (storage skips the files
    /// of priority 0 already).
    pub(super) priorities: Option<Vec<u8>>,
}

/// A peer known by its id and address: what bans are made of.
type Identity = (PeerId, SocketAddr);

/// A connected peer as the torrent sees it.
#[derive(Debug)]
struct PeerSlot {
    /// Orders to the peer task. Unbounded but small: requests are bounded by the pipeline,
    /// `have`s by the piece count, the rest by state changes.
    tx: mpsc::UnboundedSender<ToPeer>,
    addr: SocketAddr,
    id: PeerId,
    outbound: bool,
    /// A web seed rather than a connection: it holds no connection slot.
    web_seed: bool,
    /// What the wire runs over. A WebRTC peer has no address of its own (`addr` is the
    /// unspecified one) and is never shared over `ut_pex`.
    transport: Transport,
    /// When the connection was set up.
    connected_at: Instant,
    /// The peer's pieces.
    pieces: Bitfield,
    /// Pieces the peer has that we lack (and want).
    wanted: u32,
    am_interested: bool,
    unchoked_us: bool,
    allowed_fast: Vec<u32>,
    in_flight: usize,
    /// Requests to keep in flight, sized to the peer's rate.
    pipeline: usize,
    /// The most requests in flight: ours, or fewer if the peer's `reqq` says so.
    max_pipeline: usize,
    /// The address the peer accepts connections on: the one we dialed, or the port of its
    /// extension handshake. Shared with other peers over `ut_pex`.
    listen: Option<SocketAddr>,
    down: RateMeter,
    up: RateMeter,
    uploaded: Arc<AtomicU64>,
    uploaded_seen: u64,
    /// When the peer last sent a block, or we last asked for one while none were in
    /// flight: the start of the wait that snubbing measures.
    last_block: Instant,
    snubbed: bool,
}

/// A piece that failed its check after several peers sent its blocks: the digests of the
/// blocks as they were, and who sent each, to compare once the piece passes.
#[derive(Debug)]
struct Suspect {
    digests: Vec<[u8; 20]>,
    senders: Vec<Option<Identity>>,
}

pub(super) struct Task {
    shared: Arc<Shared>,
    /// The info dictionary, for `ut_metadata`.
    info: Arc<[u8]>,
    /// Answers BEP 52 hash requests from the piece layers.
    hashes: Arc<HashServer>,
    /// A private torrent (BEP 27): no peer exchange.
    private: bool,
    storage: Arc<FileStorage>,
    geometry: Geometry,
    info_hash: InfoHashV1,
    resume_path: PathBuf,
    picker: PiecePicker,
    have: Bitfield,
    choker: Choker<PeerKey>,
    peers: HashMap<PeerKey, PeerSlot>,
    next_key: PeerKey,
    /// Addresses to dial, and every address known (queued, dialing or connected).
    candidates: VecDeque<SocketAddr>,
    known: HashSet<SocketAddr>,
    dialing: HashSet<SocketAddr>,
    /// Peers the user gave: redialed after failures, with the next attempt's time and delay.
    sticky: HashMap<SocketAddr, (Instant, Duration)>,
    banned_ids: HashSet<PeerId>,
    banned_addrs: HashSet<SocketAddr>,
    /// Who sent each block of pieces under way (index: block of the piece).
    senders: HashMap<u32, Vec<Option<Identity>>>,
    /// Writes under way per piece; a complete piece is checked once they are done.
    writing: HashMap<u32, usize>,
    /// Complete pieces waiting for their writes.
    complete: HashSet<u32>,
    /// Pieces whose writes failed: their check failing is not the peers' fault.
    write_failed: HashSet<u32>,
    suspects: HashMap<u32, Suspect>,
    /// The priority of each file of the info.
    priorities: Vec<u8>,
    /// The file readers' positions, turned into piece deadlines.
    readahead: ReadAhead,
    /// Paused: no peer connections (web seeds are idle), nothing requested.
    paused: bool,
    announcer: Option<Announcer>,
    down: RateMeter,
    up: RateMeter,
    counters: Arc<Counters>,
    events: broadcast::Sender<TorrentEvent>,
    done: watch::Sender<bool>,
    this: mpsc::WeakSender<Command>,
}

/// Each file's pieces and priority, for the picker.
fn file_ranges(info: &webtorrent_metainfo::Info, priorities: &[u8]) -> Vec<(Range<u32>, u8)> {
    priorities
        .iter()
        .enumerate()
        .filter(|&(file, _)| !info.files()[file].is_pad())
        .filter_map(|(file, &p)| Some((info.file_pieces(file)?, p)))
        .collect()
}

/// Builds a torrent's task, ready to [`run`](Task::run) on its command channel.
pub(super) fn build(setup: Setup) -> Result<Task, SessionError> {
    let layout = setup.storage.layout();
    let pieces = layout.piece_count();
    // The bytes the pieces cover, pad files included.
    let piece_length = layout.info().piece_length();
    let last = layout.piece_size(pieces.saturating_sub(1)).unwrap_or(0);
    // A v2 torrent's files each start a piece, and peers (libtorrent) see the last one's
    // tail padded like the others: every piece spans the piece length on the wire.
    let covered = if layout.info().version() == MetaVersion::V2 {
        u64::from(pieces) * piece_length
    } else {
        u64::from(pieces.saturating_sub(1)) * piece_length + last
    };
    let unsupported = SessionError::Unsupported {
        pieces,
        piece_length,
    };
    let length = u32::try_from(piece_length).map_err(|_| unsupported)?;
    let geometry = Geometry::new(covered, length).ok_or(SessionError::Unsupported {
        pieces,
        piece_length,
    })?;
    let mut picker = PiecePicker::uniform(length, covered)
        .map_err(|_| SessionError::Unsupported {
            pieces,
            piece_length,
        })?
        .with_seed(
            u64::from_le_bytes(setup.info_hash.0[..8].try_into().unwrap_or([0; 8]))
                ^ u64::from_le_bytes(setup.shared.peer_id.0[12..].try_into().unwrap_or([0; 8])),
        );
    mark_padding(&mut picker, layout, &geometry);
    let have = setup.storage.verified();
    for piece in have.iter() {
        // In range: the bitfield has the torrent's piece count.
        let _ = picker.piece_verified(piece);
    }
    let file_count = layout.info().files().len();
    let priorities = setup
        .priorities
        .filter(|p| p.len() == file_count)
        .unwrap_or_else(|| vec![picker::DEFAULT_PRIORITY; file_count]);
    picker
        .set_file_priorities(&file_ranges(layout.info(), &priorities))
        .map_err(|e| SessionError::FilePriorities(e.to_string()))?;
    let complete = picker.is_complete();
    let counters = setup.counters;
    counters.verified.store(have.count(), Ordering::Relaxed);
    counters
        .left
        .store(picker.remaining_bytes(), Ordering::Relaxed);
    counters
        .wanted
        .store(picker.wanted_bytes(), Ordering::Relaxed);
    let now = Instant::now();
    let mut choker = Choker::new(setup.shared.choker.clone(), now);
    choker.set_seeding(complete, now);
    setup.done.send_replace(complete);
    counters.total_pieces.store(pieces, Ordering::Relaxed);
    let mut task = Task {
        info: Arc::from(setup.metainfo.info().raw()),
        hashes: Arc::new(HashServer::new(Arc::clone(&setup.metainfo))),
        private: setup.metainfo.info().private(),
        shared: setup.shared,
        storage: setup.storage,
        geometry,
        info_hash: setup.info_hash,
        resume_path: setup.resume_path,
        picker,
        have,
        choker,
        peers: HashMap::new(),
        next_key: 0,
        candidates: VecDeque::new(),
        known: HashSet::new(),
        dialing: HashSet::new(),
        sticky: HashMap::new(),
        banned_ids: HashSet::new(),
        banned_addrs: HashSet::new(),
        senders: HashMap::new(),
        writing: HashMap::new(),
        complete: HashSet::new(),
        write_failed: HashSet::new(),
        suspects: HashMap::new(),
        priorities,
        readahead: ReadAhead::new(piece_length, covered),
        paused: false,
        announcer: setup.announcer,
        down: RateMeter::new(now),
        up: RateMeter::new(now),
        counters,
        events: setup.events,
        done: setup.done,
        this: setup.this,
    };
    setup
        .storage_slot
        .send_replace(Some(Arc::clone(&task.storage)));
    for addr in setup.candidates {
        task.learn(addr);
    }
    if !complete {
        for url in setup.web_seeds {
            task.add_web_seed(url);
        }
    }
    Ok(task)
}

impl Task {
    /// Runs the torrent until it is shut down or its channel closes.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        if !self.candidates.is_empty() {
            self.dial_more(Instant::now());
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let rechoke = tokio::time::Instant::from_std(self.choker.poll_timeout());
            let command = tokio::select! {
                command = rx.recv() => command,
                _ = tick.tick() => {
                    self.tick(Instant::now());
                    continue;
                }
                () = tokio::time::sleep_until(rechoke) => {
                    self.rechoke(Instant::now());
                    continue;
                }
            };
            let Some(command) = command else { return };
            match command {
                Command::AddPeers { peers, sticky } => {
                    let now = Instant::now();
                    for addr in peers {
                        if sticky {
                            self.sticky.insert(addr, (now, FIRST_RETRY));
                        }
                        self.learn(addr);
                    }
                    self.dial_more(now);
                }
                Command::Connected {
                    stream,
                    addr,
                    handshake,
                    outbound,
                } => self.connected(stream, addr, &handshake, outbound),
                Command::ConnectFailed(addr) => {
                    self.dialing.remove(&addr);
                    self.forget(addr);
                    self.dial_more(Instant::now());
                }
                Command::Peer(key, event) => self.peer_event(key, event),
                // A connection of the metadata phase, closing: it gave its slot back.
                Command::Metadata(..) => {}
                Command::Written(results) => self.written(results),
                Command::Verified(v) => self.verified(v),
                Command::SetLimits { upload, download } => {
                    self.shared
                        .set_torrent_limits(self.info_hash, upload, download);
                }
                Command::Announcer(announcer) => self.announcer = Some(announcer),
                Command::Trackers(reply) => {
                    let status = self.announcer.as_ref().map(Announcer::status);
                    let _ = reply.send(status.unwrap_or_default());
                }
                Command::SetFilePriorities(priorities, reply) => {
                    let _ = reply.send(self.set_file_priorities(priorities));
                }
                Command::FilePriorities(reply) => {
                    let _ = reply.send(Ok(self.priorities.clone()));
                }
                Command::Stream(order) => self.stream(order),
                Command::Peers(reply) => {
                    let _ = reply.send(self.peer_stats(Instant::now()));
                }
                Command::Pause(paused) => self.pause(paused),
                Command::Shutdown(reply) => {
                    let _ = reply.send(self.shutdown().await);
                    return;
                }
            }
        }
    }

    /// The connected peers and web seeds as the application sees them.
    fn peer_stats(&mut self, now: Instant) -> Vec<super::PeerStats> {
        self.peers
            .values_mut()
            .map(|p| super::PeerStats {
                addr: p.addr,
                peer_id: p.id,
                transport: p.transport,
                web_seed: p.web_seed,
                outbound: p.outbound,
                pieces: p.pieces.count(),
                download_rate: p.down.rate(now),
                upload_rate: p.up.rate(now),
                unchoked_us: p.unchoked_us,
                snubbed: p.snubbed,
            })
            .collect()
    }

    /// Pauses or resumes: a paused torrent closes its peer connections, refuses new ones,
    /// dials none and requests nothing; resumed, it dials the peers it knows again.
    fn pause(&mut self, paused: bool) {
        if self.paused == paused {
            return;
        }
        self.paused = paused;
        self.counters.paused.store(paused, Ordering::Relaxed);
        let now = Instant::now();
        if paused {
            for peer in self.peers.values().filter(|p| !p.web_seed) {
                let _ = peer.tx.send(ToPeer::Close);
            }
        } else {
            // The user's peers are dialed again at once; the others as they are learnt.
            for (at, delay) in self.sticky.values_mut() {
                *at = now;
                *delay = FIRST_RETRY;
            }
            self.dial_more(now);
            self.fill_all();
        }
    }

    /// A reader moved or closed: its window's pieces get deadlines (or lose them). A piece
    /// a reader now waits on that nobody is fetching overtakes the requests already queued
    /// at the peers that have it.
    fn stream(&mut self, order: StreamOrder) {
        let now = Instant::now();
        let before = self.readahead.urgent(&self.picker);
        match order {
            StreamOrder::Set { id, pos, end, rate } => {
                self.readahead.set(StreamId(id), pos, end, rate);
            }
            StreamOrder::Close(id) => self.readahead.remove(StreamId(id)),
        }
        self.readahead.apply(&mut self.picker, now);
        let jumped: Vec<u32> = self
            .readahead
            .urgent(&self.picker)
            .into_iter()
            .filter(|p| !before.contains(p) && self.picker.free_blocks(*p) > 0)
            .collect();
        let cancelled = if jumped.is_empty() {
            0
        } else {
            let n = self.preempt(&jumped);
            self.fit_pipelines(now);
            n
        };
        tracing::debug!(
            ?order,
            deadlines = self.readahead.applied().len(),
            ?jumped,
            cancelled,
            "stream"
        );
        self.fill_all();
    }

    /// Cancels the requests for pieces without a deadline queued at the peers that have one
    /// of `pieces`, so that the requests for these go first; the blocks cancelled go back to
    /// the picker (a block already on its way is still taken). Returns how many.
    fn preempt(&mut self, pieces: &[u32]) -> usize {
        let mut cancelled = 0;
        for (&key, peer) in &mut self.peers {
            if peer.web_seed || !peer.unchoked_us || !pieces.iter().any(|&p| peer.pieces.has(p)) {
                continue;
            }
            let pk = picker::PeerKey(key);
            let queued: Vec<BlockRef> = self
                .picker
                .requests(pk)
                .filter(|b| !self.readahead.applied().contains(&b.piece))
                .collect();
            for block in queued {
                if self.picker.request_rejected(pk, block) {
                    peer.in_flight = peer.in_flight.saturating_sub(1);
                    let _ = peer.tx.send(ToPeer::Cancel(block));
                    cancelled += 1;
                }
            }
        }
        cancelled
    }

    /// Sizes the pipelines to the peers' rates (see [`tick`](Self::tick)).
    fn fit_pipelines(&mut self, now: Instant) {
        let streaming = !self.readahead.is_empty();
        for peer in self.peers.values_mut() {
            let down = peer.down.rate(now);
            let max = peer.max_pipeline;
            peer.pipeline = if peer.web_seed && !peer.snubbed {
                max
            } else {
                // Enough requests in flight to cover the peer's rate for a while.
                let cover = if streaming {
                    STREAM_PIPELINE
                } else {
                    Duration::from_secs(PIPELINE_SECONDS)
                };
                let blocks = u128::from(down) * cover.as_millis() / 1000 / u128::from(BLOCK_SIZE);
                usize::try_from(blocks)
                    .unwrap_or(usize::MAX)
                    .clamp(MIN_PIPELINE.min(max), max)
            };
        }
    }

    /// New file priorities: storage skips the files of priority 0, the picker orders the
    /// pieces, and interest, completion and web seeds follow.
    fn set_file_priorities(&mut self, priorities: Vec<u8>) -> Result<(), SessionError> {
        let info = self.storage.layout().info();
        if priorities.len() != info.files().len() {
            return Err(SessionError::FilePriorities(format!(
                "{} given for {} files",
                priorities.len(),
                info.files().len()
            )));
        }
        if let Some(&p) = priorities.iter().find(|&&p| p > picker::MAX_PRIORITY) {
            return Err(SessionError::FilePriorities(format!(
                "{p} is above {}",
                picker::MAX_PRIORITY
            )));
        }
        // Moves at most the runs skipped files share with wanted pieces: a few pieces.
        self.storage
            .set_skipped(&super::skipped_files(info, &priorities))?;
        self.picker
            .set_file_priorities(&file_ranges(info, &priorities))
            .map_err(|e| SessionError::FilePriorities(e.to_string()))?;
        self.priorities = priorities;
        self.counters
            .left
            .store(self.picker.remaining_bytes(), Ordering::Relaxed);
        self.counters
            .wanted
            .store(self.picker.wanted_bytes(), Ordering::Relaxed);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for &key in &keys {
            let wanted = self.peers.get(&key).map_or(0, |peer| {
                peer.pieces
                    .iter()
                    .filter(|&p| !self.have.has(p) && self.wanted_piece(p))
                    .count()
            });
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.wanted = u32::try_from(wanted).unwrap_or(u32::MAX);
            }
            self.update_interest(key);
        }
        if self.picker.is_complete() {
            if !*self.done.borrow() {
                self.finished();
            }
        } else {
            let now = Instant::now();
            self.done.send_replace(false);
            self.choker.set_seeding(false, now);
            self.drain_choker();
            self.fill_all();
        }
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), SessionError> {
        for peer in self.peers.values() {
            let _ = peer.tx.send(ToPeer::Close);
        }
        let announcer = self.announcer.take();
        let stopped = async {
            if let Some(announcer) = announcer {
                announcer.stop(STOP_ANNOUNCE_TIMEOUT).await;
            }
        };
        let storage = Arc::clone(&self.storage);
        let path = self.resume_path.clone();
        let save = async {
            tokio::task::spawn_blocking(move || {
                storage.flush()?;
                ResumeData::capture(&storage)?.save(&path)?;
                Ok(())
            })
            .await
            .map_err(|e| SessionError::Task(e.to_string()))
            .and_then(|r| r)
        };
        let ((), result) = tokio::join!(stopped, save);
        {
            let mut limits = self.shared.limits();
            limits.upload.remove_torrent(&self.info_hash);
            limits.download.remove_torrent(&self.info_hash);
        }
        let _ = self.events.send(TorrentEvent::Stopped);
        result
    }

    fn emit(&self, event: TorrentEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    // ----- connections -----

    /// Remembers an address to dial.
    fn learn(&mut self, addr: SocketAddr) {
        if self.banned_addrs.contains(&addr) || addr.port() == 0 || addr.ip().is_unspecified() {
            return;
        }
        if addr.port() == self.shared.port && addr.ip().is_loopback() {
            // Ourselves, as peer exchange and trackers name us.
            return;
        }
        if self.known.len() >= MAX_CANDIDATES && !self.sticky.contains_key(&addr) {
            return;
        }
        if self.known.insert(addr) {
            self.candidates.push_back(addr);
        }
    }

    /// Forgets an address that failed or left; trackers may hand it out again later, and
    /// peers the user gave are retried with a growing delay.
    fn forget(&mut self, addr: SocketAddr) {
        self.known.remove(&addr);
        if let Some((at, delay)) = self.sticky.get_mut(&addr) {
            *at = Instant::now() + *delay;
            *delay = (*delay * 2).min(MAX_RETRY);
        }
    }

    /// Dials queued addresses while the torrent and the client have room.
    fn dial_more(&mut self, now: Instant) {
        if self.paused {
            return;
        }
        let retry: Vec<SocketAddr> = self
            .sticky
            .iter()
            .filter(|(addr, (at, _))| *at <= now && !self.known.contains(addr))
            .map(|(addr, _)| *addr)
            .collect();
        for addr in retry {
            self.learn(addr);
        }
        while self.dialing.len() < MAX_HALF_OPEN
            && self.peers.len() + self.dialing.len() < self.shared.max_connections_per_torrent
        {
            let Some(addr) = self.candidates.pop_front() else {
                break;
            };
            if self.peers.values().any(|p| p.addr == addr) || self.dialing.contains(&addr) {
                continue;
            }
            if !self.shared.reserve_connection() {
                // The client is full: try again later.
                self.candidates.push_front(addr);
                break;
            }
            self.dial(addr);
        }
    }

    /// Connects to `addr` (a connection slot is reserved).
    fn dial(&mut self, addr: SocketAddr) {
        let Some(tx) = self.this.upgrade() else {
            self.shared.release_connection();
            return;
        };
        self.dialing.insert(addr);
        dial(Arc::clone(&self.shared), self.info_hash, addr, tx);
    }

    /// A peer finished its handshake: keep it (its connection slot is reserved) or refuse it.
    fn connected(
        &mut self,
        stream: PeerStream,
        addr: SocketAddr,
        handshake: &Handshake,
        outbound: bool,
    ) {
        let transport = stream.transport();
        if outbound && transport == Transport::Tcp {
            self.dialing.remove(&addr);
        }
        let id = handshake.peer_id;
        let same_id = self.peers.values().filter(|p| p.id == id);
        let (twins, all_webrtc) = same_id.fold((0, true), |(n, rtc), p| {
            (n + 1, rtc && p.transport == Transport::WebRtc)
        });
        let refusal = if self.paused {
            Some("the torrent is paused")
        } else if id == self.shared.peer_id {
            Some("it is ourselves")
        } else if self.banned_ids.contains(&id) || self.banned_addrs.contains(&addr) {
            Some("it is banned")
        } else if twins > 0 && !(twins == 1 && all_webrtc && transport == Transport::WebRtc) {
            // Two WebRTC peers that offered to each other at once end up with two
            // connections, and each side may drop a different one. Both are kept for
            // a while: the other side closes the one it does not want, or
            // `drop_rtc_twins` picks one as the other side would.
            Some("it is connected already")
        } else if self.peers.len() >= self.shared.max_connections_per_torrent {
            Some("the torrent has its fill of peers")
        } else {
            None
        };
        let torrent = self.this.upgrade();
        if let (None, Some(torrent)) = (refusal, torrent) {
            self.accept(stream, addr, handshake, outbound, torrent);
            return;
        }
        tracing::debug!(%addr, ?transport, "peer refused: {}", refusal.unwrap_or("the torrent stopped"));
        self.shared.release_connection();
        if outbound && transport == Transport::Tcp {
            // Never dial ourselves (or a duplicate) again through this address.
            self.known.insert(addr);
            self.sticky.remove(&addr);
        }
    }

    fn accept(
        &mut self,
        stream: PeerStream,
        addr: SocketAddr,
        handshake: &Handshake,
        outbound: bool,
        torrent: mpsc::Sender<Command>,
    ) {
        let transport = stream.transport();
        #[allow(irrefutable_let_patterns)] // without the `webrtc` feature
        if let PeerStream::Tcp(tcp) = &stream {
            let _ = tcp.set_nodelay(true);
        }
        let now = Instant::now();
        let key = self.next_key;
        self.next_key += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        let uploaded = Arc::new(AtomicU64::new(0));
        let tcp = transport == Transport::Tcp;
        if tcp {
            self.known.insert(addr);
            if let Some(retry) = self.sticky.get_mut(&addr) {
                retry.1 = FIRST_RETRY;
            }
        }
        let mut slot = self.new_slot(tx, addr, handshake.peer_id, now);
        slot.outbound = outbound;
        slot.transport = transport;
        slot.listen = (outbound && tcp).then_some(addr);
        slot.uploaded = Arc::clone(&uploaded);
        self.peers.insert(key, slot);
        self.choker.add_peer(key, transport, now);
        self.drain_choker();
        self.counters
            .peers
            .store(self.peers.len(), Ordering::Relaxed);
        if transport != Transport::WebRtc {
            tracing::info!(%transport, %addr, peer = %handshake.peer_id, outbound, "peer connected");
        } else {
            // A WebRTC peer has no address we could dial.
            tracing::info!(%transport, peer = %handshake.peer_id, outbound, "peer connected");
        }
        self.emit(TorrentEvent::PeerConnected {
            addr,
            peer_id: handshake.peer_id,
            outbound,
            transport,
        });
        tokio::spawn(peer::run(
            peer::Context {
                key,
                handshake: *handshake,
                geometry: self.geometry,
                ours: self.have.clone(),
                storage: Arc::clone(&self.storage),
                counters: Arc::clone(&self.counters),
                uploaded,
                limits: Limits::clone(&self.shared.limits),
                info_hash: self.info_hash,
                info: Arc::clone(&self.info),
                hashes: Arc::clone(&self.hashes),
                listen_port: self.shared.port,
                pex: !self.private,
                // WebRTC peers keep the plain reserved bits: they have no UDP port to give.
                dht: self
                    .shared
                    .dht
                    .get()
                    .filter(|_| transport != Transport::WebRtc)
                    .map(|d| (d.dht().clone(), d.port())),
                extensions: Arc::clone(&self.shared.extensions),
                addr,
                torrent,
                commands: rx,
            },
            stream,
        ));
    }

    /// A peer that just joined: an inbound connection, nothing known of its pieces, choked
    /// both ways, the shortest pipeline.
    fn new_slot(
        &self,
        tx: mpsc::UnboundedSender<ToPeer>,
        addr: SocketAddr,
        id: PeerId,
        now: Instant,
    ) -> PeerSlot {
        let max = self.shared.max_requests_per_peer;
        PeerSlot {
            tx,
            addr,
            id,
            outbound: false,
            web_seed: false,
            transport: Transport::Tcp,
            connected_at: now,
            pieces: Bitfield::new(self.geometry.pieces()),
            wanted: 0,
            am_interested: false,
            unchoked_us: false,
            allowed_fast: Vec::new(),
            in_flight: 0,
            pipeline: MIN_PIPELINE.min(max),
            max_pipeline: max,
            listen: None,
            down: RateMeter::new(now),
            up: RateMeter::new(now),
            uploaded: Arc::new(AtomicU64::new(0)),
            uploaded_seen: 0,
            last_block: now,
            snubbed: false,
        }
    }

    /// Starts downloading from a web seed, driven like a peer that has every piece.
    fn add_web_seed(&mut self, url: WebSeedUrl) {
        let (Some(client), Some(torrent)) = (self.shared.web_seed_client(), self.this.upgrade())
        else {
            return;
        };
        let id = super::webseed::seed_id(url.as_str());
        if self.banned_ids.contains(&id) {
            return;
        }
        let now = Instant::now();
        let key = self.next_key;
        self.next_key += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        // Not an address: web seeds are never dialed, shared or banned by address.
        let mut slot = self.new_slot(tx, SocketAddr::from(([0, 0, 0, 0], 0)), id, now);
        slot.outbound = true;
        slot.web_seed = true;
        // An HTTP server needs no slow start, and the more blocks its worker holds, the
        // larger the requests it merges them into (servers answer each request on a
        // keep-alive connection after a delay of their own: Debian's nginx, with
        // `tcp_nopush`, takes 40 ms).
        slot.max_pipeline = super::webseed::PIPELINE;
        slot.pipeline = slot.max_pipeline;
        self.peers.insert(key, slot);
        tracing::debug!(url = url.as_str(), "web seed added");
        let seed = client.seed(url, Arc::new(self.storage.layout().clone()));
        tokio::spawn(super::webseed::run(
            key,
            seed,
            self.geometry.pieces(),
            torrent,
            rx,
        ));
    }

    fn closed(&mut self, key: PeerKey, ended: &Ended) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        if peer.web_seed {
            self.picker.peer_disconnected(picker::PeerKey(key));
            tracing::info!(peer = %peer.id, "web seed stopped: {ended}");
            self.counters
                .peers
                .store(self.peers.len(), Ordering::Relaxed);
            self.fill_all();
            return;
        }
        self.shared.release_connection();
        let now = Instant::now();
        self.picker.peer_disconnected(picker::PeerKey(key));
        self.choker.remove_peer(&key, now);
        self.drain_choker();
        if ended.is_misbehaviour() {
            tracing::info!(addr = %peer.addr, peer = %peer.id, "peer disconnected: {ended}");
        } else {
            tracing::debug!(addr = %peer.addr, "peer disconnected: {ended}");
        }
        self.emit(TorrentEvent::PeerDisconnected {
            addr: peer.addr,
            reason: ended.to_string(),
        });
        if peer.transport == Transport::Tcp {
            self.forget(peer.addr);
        }
        if peer.outbound && peer.transport == Transport::Tcp {
            // An address we dialed that misbehaved is not dialed again.
            if ended.is_misbehaviour() {
                self.banned_addrs.insert(peer.addr);
            }
        }
        self.counters
            .peers
            .store(self.peers.len(), Ordering::Relaxed);
        self.fill_all();
        self.dial_more(now);
        if self.peers.is_empty()
            && !self.have.is_full()
            && let Some(announcer) = &self.announcer
        {
            announcer.want_peers();
        }
    }

    /// Disconnects and bans every peer with this identity.
    fn ban(&mut self, (id, addr): Identity, reason: &str) {
        if !self.banned_ids.insert(id) {
            return;
        }
        // Web seeds have no address (all of them show the unspecified one): a web seed is
        // banned by its id alone, never taking the others with it.
        let by_addr = !addr.ip().is_unspecified();
        if by_addr {
            self.banned_addrs.insert(addr);
            self.sticky.remove(&addr);
        }
        tracing::info!(%addr, peer = %id, "peer banned: {reason}");
        self.emit(TorrentEvent::PeerBanned {
            addr,
            peer_id: id,
            reason: reason.to_owned(),
        });
        for peer in self
            .peers
            .values()
            .filter(|p| p.id == id || (by_addr && p.addr == addr))
        {
            let _ = peer.tx.send(ToPeer::Close);
        }
    }

    // ----- peer events -----

    fn peer_event(&mut self, key: PeerKey, event: PeerEvent) {
        if !self.peers.contains_key(&key) {
            return;
        }
        let now = Instant::now();
        let pk = picker::PeerKey(key);
        match event {
            PeerEvent::Pieces(pieces) => {
                if pieces.is_full() {
                    self.picker.peer_have_all(pk);
                } else if pieces.count() == 0 {
                    self.picker.peer_have_none(pk);
                } else if self.picker.peer_bitfield(pk, pieces.as_bytes()).is_err() {
                    // The connection checked its length already.
                    return;
                }
                let wanted = pieces
                    .iter()
                    .filter(|&p| !self.have.has(p) && self.wanted_piece(p))
                    .count();
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.wanted = u32::try_from(wanted).unwrap_or(u32::MAX);
                    peer.pieces = pieces;
                }
                self.update_interest(key);
                self.fill(key, now);
            }
            PeerEvent::Have(piece) => {
                if self.picker.peer_have(pk, piece).is_err() {
                    return;
                }
                let wanted = !self.have.has(piece) && self.wanted_piece(piece);
                if let Some(peer) = self.peers.get_mut(&key) {
                    let _ = peer.pieces.set(piece);
                    if wanted {
                        peer.wanted += 1;
                    }
                }
                self.update_interest(key);
                self.fill(key, now);
            }
            PeerEvent::Unchoked => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.unchoked_us = true;
                    peer.last_block = now;
                }
                self.fill(key, now);
            }
            PeerEvent::Choked => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.unchoked_us = false;
                }
            }
            PeerEvent::Interested(interested) => {
                tracing::debug!(key, interested, "peer interest");
                self.choker.set_interested(&key, interested, now);
                self.drain_choker();
            }
            PeerEvent::AllowedFast(piece) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.allowed_fast.push(piece);
                }
                self.fill(key, now);
            }
            PeerEvent::Suggest(piece) => {
                let _ = self.picker.peer_suggest(pk, piece);
            }
            PeerEvent::Extensions {
                reqq,
                listen_port,
                client,
            } => {
                let max = self.shared.max_requests_per_peer;
                if let Some(peer) = self.peers.get_mut(&key) {
                    // Never more requests in flight than the peer queues.
                    peer.max_pipeline = reqq
                        .and_then(|r| usize::try_from(r).ok())
                        .map_or(max, |r| r.clamp(1, max));
                    peer.pipeline = peer.pipeline.min(peer.max_pipeline);
                    if let Some(port) =
                        listen_port.filter(|&p| p != 0 && peer.transport == Transport::Tcp)
                    {
                        peer.listen = Some(SocketAddr::new(peer.addr.ip(), port));
                    }
                    tracing::debug!(addr = %peer.addr, client = client.as_deref().unwrap_or("?"), "extension handshake");
                }
            }
            PeerEvent::Pex(addrs) => {
                for addr in addrs {
                    self.learn(addr);
                }
                self.dial_more(now);
            }
            PeerEvent::DontHave(piece) => {
                if self.picker.peer_dont_have(pk, piece).is_err() {
                    return;
                }
                let wanted = !self.have.has(piece) && self.wanted_piece(piece);
                if let Some(peer) = self.peers.get_mut(&key)
                    && peer.pieces.clear(piece).unwrap_or(false)
                    && wanted
                {
                    peer.wanted = peer.wanted.saturating_sub(1);
                }
                self.update_interest(key);
            }
            PeerEvent::Returned { blocks, timed_out } => {
                for block in blocks {
                    let outstanding = if timed_out {
                        self.picker.request_timed_out(pk, block)
                    } else {
                        self.picker.request_rejected(pk, block)
                    };
                    if outstanding && let Some(peer) = self.peers.get_mut(&key) {
                        peer.in_flight = peer.in_flight.saturating_sub(1);
                    }
                }
                if timed_out && let Some(peer) = self.peers.get_mut(&key) {
                    // A slow peer gets a shorter pipeline.
                    peer.pipeline = MIN_PIPELINE.min(peer.pipeline);
                }
                self.fill_all();
            }
            PeerEvent::Blocks(blocks) => self.blocks(key, blocks, now),
            PeerEvent::Closed(ended) => self.closed(key, &ended),
        }
    }

    /// Whether we want `piece` at all (priority above 0).
    fn wanted_piece(&self, piece: u32) -> bool {
        self.picker.priority(piece).is_some_and(|p| p > 0)
    }

    /// Tells a peer whether it has pieces we lack.
    fn update_interest(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let wanted = peer.wanted > 0;
        if wanted != peer.am_interested {
            peer.am_interested = wanted;
            let _ = peer.tx.send(ToPeer::Interested(wanted));
        }
    }

    fn fill_all(&mut self) {
        if self.have.is_full() || self.paused {
            return;
        }
        let now = Instant::now();
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fill(key, now);
        }
    }

    /// Requests blocks from a peer up to its pipeline: rarest first, partial pieces first,
    /// endgame at the end (the picker decides); from its allowed-fast pieces while it chokes
    /// us.
    fn fill(&mut self, key: PeerKey, now: Instant) {
        let share = match self.peers.get(&key) {
            // In endgame a web seed takes blocks others are fetching only once it is idle:
            // its fetches are large, and a duplicate is a whole range fetched twice.
            Some(peer) if peer.web_seed && peer.in_flight > 0 && self.picker.in_endgame() => {
                return;
            }
            Some(peer) if peer.web_seed => self.web_seed_share(),
            Some(_) => usize::MAX,
            None => return,
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let limit = peer.pipeline.min(share);
        if !peer.am_interested || peer.in_flight >= limit {
            return;
        }
        let want = limit - peer.in_flight;
        let pk = picker::PeerKey(key);
        let blocks = if peer.unchoked_us {
            self.picker.pick_blocks(pk, want, now)
        } else if !peer.allowed_fast.is_empty() {
            self.picker
                .pick_allowed_fast(pk, &peer.allowed_fast, want, now)
        } else {
            return;
        };
        if blocks.is_empty() {
            return;
        }
        if peer.in_flight == 0 {
            peer.last_block = now;
        }
        peer.in_flight += blocks.len();
        let _ = peer.tx.send(ToPeer::Request(blocks));
    }

    /// The most blocks one web seed may hold: an even share of what is left among the web
    /// seeds not backed off and the peers unchoking us, so that a web seed's deep pipeline
    /// does not take a small torrent whole while the other sources wait (nor stall it behind
    /// one slow server). At least [`MIN_PIPELINE`].
    fn web_seed_share(&self) -> usize {
        let sources = self
            .peers
            .values()
            // A web seed counts until it backs off (it chokes us then, its pieces known).
            .filter(|p| p.unchoked_us || (p.web_seed && p.wanted == 0))
            .count()
            .max(1);
        let left = self.counters.left.load(Ordering::Relaxed);
        let blocks = usize::try_from(left.div_ceil(u64::from(BLOCK_SIZE))).unwrap_or(usize::MAX);
        blocks.div_ceil(sources).max(MIN_PIPELINE)
    }

    fn blocks(&mut self, key: PeerKey, blocks: Vec<(BlockRef, Vec<u8>)>, now: Instant) {
        let pk = picker::PeerKey(key);
        let Some(identity) = self.peers.get(&key).map(|p| (p.id, p.addr)) else {
            return;
        };
        let mut bytes = 0u64;
        let mut writes = Vec::with_capacity(blocks.len());
        for (block, data) in blocks {
            bytes += data.len() as u64;
            let outstanding = self.picker.requests(pk).any(|b| b == block);
            let received = match self.picker.block_received(pk, block) {
                Ok(received) => received,
                // Not a block of ours: the connection only passes blocks it asked for.
                Err(_) => continue,
            };
            if outstanding && let Some(peer) = self.peers.get_mut(&key) {
                peer.in_flight = peer.in_flight.saturating_sub(1);
            }
            for cancel in received.cancels {
                if let Some(other) = self.peers.get_mut(&cancel.peer.0) {
                    other.in_flight = other.in_flight.saturating_sub(1);
                    let _ = other.tx.send(ToPeer::Cancel(cancel.block));
                }
            }
            if !received.new {
                continue;
            }
            let count = self
                .geometry
                .piece_size(block.piece)
                .unwrap_or(0)
                .div_ceil(BLOCK_SIZE) as usize;
            let senders = self
                .senders
                .entry(block.piece)
                .or_insert_with(|| vec![None; count]);
            if let Some(slot) = senders.get_mut((block.offset / BLOCK_SIZE) as usize) {
                *slot = Some(identity);
            }
            *self.writing.entry(block.piece).or_default() += 1;
            if received.piece_complete {
                self.complete.insert(block.piece);
            }
            writes.push((block, data));
        }
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.down.add(bytes, now);
            peer.last_block = now;
            if peer.snubbed {
                peer.snubbed = false;
                self.choker.set_snubbed(&key, false);
            }
        }
        self.down.add(bytes, now);
        if !writes.is_empty() {
            self.write(writes);
        }
        self.fill(key, now);
    }

    /// Writes blocks on a blocking thread, then reports.
    fn write(&self, blocks: Vec<(BlockRef, Vec<u8>)>) {
        let Some(tx) = self.this.upgrade() else {
            return;
        };
        let storage = Arc::clone(&self.storage);
        tokio::task::spawn_blocking(move || {
            let results = blocks
                .into_iter()
                .map(|(block, data)| {
                    let result = super::write_clipped(&storage, block, &data);
                    if let Err(e) = &result {
                        tracing::error!(piece = block.piece, "cannot write a block: {e}");
                    }
                    (block, result.is_ok())
                })
                .collect();
            let _ = tx.blocking_send(Command::Written(results));
        });
    }

    fn written(&mut self, results: Vec<(BlockRef, bool)>) {
        for (block, ok) in results {
            let piece = block.piece;
            if ok {
                let _ = self.picker.block_written(block);
            } else if self.write_failed.insert(piece) {
                self.emit(TorrentEvent::StorageError(format!(
                    "cannot write piece {piece}"
                )));
            }
            let left = self.writing.get_mut(&piece).map(|n| {
                *n = n.saturating_sub(1);
                *n
            });
            if left == Some(0) {
                self.writing.remove(&piece);
                if self.complete.remove(&piece) {
                    self.verify(piece);
                }
            }
        }
    }

    /// Checks a complete piece on a blocking thread.
    fn verify(&self, piece: u32) {
        let Some(tx) = self.this.upgrade() else {
            return;
        };
        let storage = Arc::clone(&self.storage);
        let suspect = self.suspects.contains_key(&piece)
            || self.senders.get(&piece).is_some_and(|s| several(s));
        tokio::task::spawn_blocking(move || {
            let verification = check_piece(&storage, piece, suspect);
            let _ = tx.blocking_send(Command::Verified(verification));
        });
    }

    fn verified(&mut self, v: Verification) {
        let piece = v.piece;
        let senders = self.senders.remove(&piece).unwrap_or_default();
        match v.ok {
            Some(true) => {
                self.write_failed.remove(&piece);
                self.piece_passed(piece, v.block_digests);
            }
            Some(false) if !self.write_failed.contains(&piece) => {
                self.piece_failed(piece, v.block_digests, senders);
            }
            _ => {
                // A storage error: not the peers' fault; the piece is downloaded again.
                self.write_failed.remove(&piece);
                let _ = self.picker.piece_failed(piece);
                self.mark_padding(piece);
                self.fill_all();
            }
        }
    }

    fn piece_passed(&mut self, piece: u32, digests: Option<Vec<[u8; 20]>>) {
        let cancels = self.picker.piece_verified(piece).unwrap_or_default();
        for cancel in cancels {
            if let Some(peer) = self.peers.get_mut(&cancel.peer.0) {
                peer.in_flight = peer.in_flight.saturating_sub(1);
                let _ = peer.tx.send(ToPeer::Cancel(cancel.block));
            }
        }
        // Bad data sent earlier for this piece: whoever sent a block that differs from the
        // good one lied.
        if let (Some(suspect), Some(good)) = (self.suspects.remove(&piece), digests) {
            let liars: HashSet<Identity> = suspect
                .digests
                .iter()
                .zip(&good)
                .zip(&suspect.senders)
                .filter(|((bad, good), _)| bad != good)
                .filter_map(|(_, sender)| *sender)
                .collect();
            for liar in liars {
                self.ban(liar, &format!("sent bad data for piece {piece}"));
            }
        }
        if !self.have.set(piece).unwrap_or(false) {
            return;
        }
        // The piece's bytes on disk: a v2 piece's padding does not count.
        let size = self.storage.layout().piece_size(piece).unwrap_or(0);
        self.counters.downloaded.fetch_add(size, Ordering::Relaxed);
        self.counters
            .verified
            .store(self.have.count(), Ordering::Relaxed);
        self.counters
            .left
            .store(self.picker.remaining_bytes(), Ordering::Relaxed);
        self.emit(TorrentEvent::PieceVerified(piece));
        let mut lost_interest = Vec::new();
        for (&key, peer) in &mut self.peers {
            let _ = peer.tx.send(ToPeer::Have(piece));
            if peer.pieces.has(piece) {
                peer.wanted = peer.wanted.saturating_sub(1);
                if peer.wanted == 0 {
                    lost_interest.push(key);
                }
            }
        }
        for key in lost_interest {
            self.update_interest(key);
        }
        if self.picker.is_complete() {
            if self.have.is_full() || !*self.done.borrow() {
                self.finished();
            }
        } else {
            self.fill_all();
        }
    }

    fn piece_failed(
        &mut self,
        piece: u32,
        digests: Option<Vec<[u8; 20]>>,
        senders: Vec<Option<Identity>>,
    ) {
        let _ = self.picker.piece_failed(piece);
        self.mark_padding(piece);
        self.emit(TorrentEvent::PieceFailed(piece));
        let distinct: HashSet<Identity> = senders.iter().filter_map(|s| *s).collect();
        if distinct.len() == 1 {
            // One sender: it is the culprit.
            if let Some(&culprit) = distinct.iter().next() {
                self.ban(
                    culprit,
                    &format!("sent piece {piece}, which failed its hash check"),
                );
            }
        } else if let Some(digests) = digests {
            // Several senders: remember the blocks as they were; the liars are found once
            // the piece passes.
            if self.suspects.len() < MAX_SUSPECT_PIECES || self.suspects.contains_key(&piece) {
                self.suspects.insert(piece, Suspect { digests, senders });
            }
            tracing::info!(piece, "piece failed its hash check (several senders)");
        }
        self.fill_all();
    }

    /// Marks the padding of a piece received again, after a failed check reset it.
    fn mark_padding(&mut self, piece: u32) {
        mark_piece_padding(
            &mut self.picker,
            self.storage.layout(),
            &self.geometry,
            piece,
        );
    }

    /// Every wanted piece is verified: flush, seed, and tell the trackers when that is
    /// every piece.
    fn finished(&mut self) {
        let now = Instant::now();
        self.done.send_replace(true);
        self.choker.set_seeding(true, now);
        self.drain_choker();
        if self.have.is_full()
            && let Some(announcer) = &self.announcer
        {
            announcer.completed();
        }
        self.emit(TorrentEvent::Completed);
        let storage = Arc::clone(&self.storage);
        let path = self.resume_path.clone();
        tokio::task::spawn_blocking(move || {
            // Saved now too, so that a crash while seeding does not mean a recheck.
            if storage.flush().is_ok()
                && let Ok(data) = ResumeData::capture(&storage)
            {
                let _ = data.save(&path);
            }
        });
        // Peers that are seeds too have nothing for us, nor we for them.
        for peer in self.peers.values() {
            let _ = peer.tx.send(ToPeer::Interested(false));
        }
    }

    // ----- timers -----

    /// Closes one of two WebRTC connections to the same peer once both have lived
    /// [`RTC_TWIN_GRACE`]: the one offered by the peer whose id is the greater, a rule
    /// the other side can apply too.
    fn drop_rtc_twins(&mut self, now: Instant) {
        let mut by_id: HashMap<PeerId, Vec<(PeerKey, bool)>> = HashMap::new();
        for (&key, peer) in &self.peers {
            if peer.transport == Transport::WebRtc
                && now.saturating_duration_since(peer.connected_at) >= RTC_TWIN_GRACE
            {
                by_id.entry(peer.id).or_default().push((key, peer.outbound));
            }
        }
        let we_are_lower = |theirs: &PeerId| self.shared.peer_id.0 < theirs.0;
        for (id, twins) in by_id {
            if twins.len() < 2 {
                continue;
            }
            // Keep the connection the lower id offered: ours (outbound) if we are lower.
            let keep_outbound = we_are_lower(&id);
            let keep = twins
                .iter()
                .find(|(_, outbound)| *outbound == keep_outbound)
                .or_else(|| twins.first())
                .map(|&(key, _)| key);
            for (key, _) in twins {
                if Some(key) != keep
                    && let Some(peer) = self.peers.get(&key)
                {
                    tracing::debug!(peer = %id, "closing a second WebRTC connection to the same peer");
                    let _ = peer.tx.send(ToPeer::Close);
                }
            }
        }
    }

    /// Rates, snubs, pipelines, stats, dials.
    fn tick(&mut self, now: Instant) {
        self.drop_rtc_twins(now);
        self.fit_pipelines(now);
        let mut total_up = 0;
        for (&key, peer) in &mut self.peers {
            let sent = peer.uploaded.load(Ordering::Relaxed);
            peer.up.add(sent - peer.uploaded_seen, now);
            total_up += sent - peer.uploaded_seen;
            peer.uploaded_seen = sent;
            let down = peer.down.rate(now);
            let up = peer.up.rate(now);
            self.choker.set_rates(&key, down, up);
            if peer.in_flight > 0
                && !peer.snubbed
                && now.saturating_duration_since(peer.last_block) >= SNUB_TIMEOUT
            {
                peer.snubbed = true;
                peer.pipeline = 1;
                self.choker.set_snubbed(&key, true);
            }
        }
        self.up.add(total_up, now);
        self.counters
            .download_rate
            .store(self.down.rate(now), Ordering::Relaxed);
        self.counters
            .upload_rate
            .store(self.up.rate(now), Ordering::Relaxed);
        self.dial_more(now);
        self.fill_all();
        if !self.private {
            self.share_peers();
        }
    }

    /// Tells every peer who else we are connected to (`ut_pex`; each connection sends at
    /// most one message a minute, with what changed).
    fn share_peers(&self) {
        let peers: Arc<[PexPeer]> = self
            .peers
            .values()
            .filter_map(|p| {
                let listen = p.listen?;
                let mut flags = PexFlags::NONE;
                if p.outbound {
                    flags = flags.with(PexFlags::OUTGOING);
                }
                if p.pieces.is_full() {
                    flags = flags.with(PexFlags::SEED);
                }
                Some(PexPeer::new(listen, flags))
            })
            .collect();
        for peer in self.peers.values() {
            let _ = peer.tx.send(ToPeer::Pex(Arc::clone(&peers)));
        }
    }

    fn rechoke(&mut self, now: Instant) {
        self.choker.rechoke(now);
        self.drain_choker();
    }

    fn drain_choker(&mut self) {
        while let Some(decision) = self.choker.poll_decision() {
            let (key, choke) = match decision {
                Decision::Unchoke(key) => (key, false),
                Decision::Choke(key) => (key, true),
            };
            if let Some(peer) = self.peers.get(&key) {
                tracing::debug!(addr = %peer.addr, choke, "choker");
                let _ = peer.tx.send(ToPeer::Choke(choke));
            }
        }
    }
}

/// Connects to `addr` and exchanges handshakes, then tells the torrent (`Connected` or
/// `ConnectFailed`). The caller has reserved a connection slot; it is given back on failure.
pub(super) fn dial(
    shared: Arc<Shared>,
    info_hash: InfoHashV1,
    addr: SocketAddr,
    tx: mpsc::Sender<Command>,
) {
    let ours = Handshake::new(shared.reserved(), info_hash, shared.peer_id);
    tokio::spawn(async move {
        let connect = async {
            let mut stream = TcpStream::connect(addr).await.ok()?;
            stream.set_nodelay(true).ok()?;
            stream.write_all(&ours.to_bytes()).await.ok()?;
            let theirs = read_handshake(&mut stream).await?;
            (theirs.info_hash == ours.info_hash).then_some((stream, theirs))
        };
        let command = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connect).await {
            Ok(Some((stream, handshake))) => Command::Connected {
                stream: PeerStream::Tcp(stream),
                addr,
                handshake,
                outbound: true,
            },
            _ => {
                shared.release_connection();
                Command::ConnectFailed(addr)
            }
        };
        if let Err(mpsc::error::SendError(Command::Connected { .. })) = tx.send(command).await {
            // The torrent stopped: the slot of the connection dies with it.
            shared.release_connection();
        }
    });
}

/// The picker key that stands for "no peer": padding blocks are received from it.
const PADDING: picker::PeerKey = picker::PeerKey(u64::MAX);

/// In a v2 torrent, the last piece of a file ends with the file, but on the wire every piece
/// spans the piece length: the rest is padding that no peer sends. Its whole blocks are
/// marked received at the start, so that they are never requested.
fn mark_padding(picker: &mut PiecePicker, layout: &Layout, geometry: &Geometry) {
    for piece in 0..layout.piece_count() {
        mark_piece_padding(picker, layout, geometry, piece);
    }
}

/// Marks the padding blocks of one piece received (see [`mark_padding`]).
fn mark_piece_padding(picker: &mut PiecePicker, layout: &Layout, geometry: &Geometry, piece: u32) {
    let Some(wire) = geometry.piece_size(piece) else {
        return;
    };
    let real = layout.piece_size(piece).unwrap_or(u64::from(wire));
    let block = u64::from(BLOCK_SIZE);
    let mut offset = real.div_ceil(block) * block;
    while offset < u64::from(wire) {
        // Within the piece: `offset` < `wire`, a u32.
        let at = offset as u32;
        let pad = BlockRef::new(piece, at, BLOCK_SIZE.min(wire - at));
        if picker.block_received(PADDING, pad).is_ok() {
            let _ = picker.block_written(pad);
        }
        offset += block;
    }
}

/// Whether the blocks of a piece came from more than one peer.
fn several(senders: &[Option<Identity>]) -> bool {
    let mut first = None;
    senders
        .iter()
        .flatten()
        .any(|s| *first.get_or_insert(s) != s)
}

/// Reads and checks a piece (blocking); with `digests`, also hashes each block.
fn check_piece(storage: &FileStorage, piece: u32, digests: bool) -> Verification {
    let data = match storage.read_piece(piece) {
        Ok(data) => data,
        Err(e) if e.is_missing_data() => {
            return Verification {
                piece,
                ok: Some(false),
                block_digests: None,
            };
        }
        Err(e) => {
            tracing::error!(piece, "cannot read a piece to check it: {e}");
            return Verification {
                piece,
                ok: None,
                block_digests: None,
            };
        }
    };
    let ok = match storage.layout().check_piece(piece, &data) {
        Ok(ok) => ok,
        Err(e) => {
            tracing::error!(piece, "cannot check a piece: {e}");
            return Verification {
                piece,
                ok: None,
                block_digests: None,
            };
        }
    };
    storage.set_verified(piece, ok);
    let block_digests = digests.then(|| {
        data.chunks(BLOCK_SIZE as usize)
            .map(webtorrent_hash::sha1)
            .collect()
    });
    Verification {
        piece,
        ok: Some(ok),
        block_digests,
    }
}
