//! The torrent task: piece state, peers' piece sets, request assignment, verification.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use webtorrent_storage::{Bitfield, FileStorage, ResumeData, Storage};
use webtorrent_types::{BLOCK_SIZE, BlockRef, InfoHashV1, PeerId};
use webtorrent_wire::{Geometry, Handshake};

use super::peer::{self, PeerEvent, ToPeer};
use super::{Counters, HANDSHAKE_TIMEOUT, RESERVED, SessionError, Torrent, read_handshake};

/// A peer connection's key inside its torrent.
pub(super) type PeerKey = u64;

/// What the torrent task is told.
#[derive(Debug)]
pub(super) enum Command {
    /// Connect to this peer.
    AddPeer(SocketAddr),
    /// A peer whose handshake is done (ours sent, theirs read and matching).
    Connected {
        stream: TcpStream,
        addr: SocketAddr,
        handshake: Handshake,
        outbound: bool,
    },
    /// An outbound connection failed.
    ConnectFailed(SocketAddr),
    /// News from a peer task.
    Peer(PeerKey, PeerEvent),
    /// A block write finished.
    Written { block: BlockRef, ok: bool },
    /// A piece verification finished.
    Verified {
        piece: u32,
        /// `None`: the piece could not be read.
        result: Option<bool>,
    },
    /// Stop: close the peers, flush, save resume data.
    Shutdown(oneshot::Sender<Result<(), SessionError>>),
}

/// What a torrent starts with.
pub(super) struct Setup {
    pub(super) storage: Arc<FileStorage>,
    pub(super) info_hash: InfoHashV1,
    pub(super) peer_id: PeerId,
    pub(super) resume_path: PathBuf,
    pub(super) max_requests_per_peer: usize,
}

/// The state of one block of a piece being downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    Requested(PeerKey),
    Writing,
    Written,
}

/// A piece being downloaded.
#[derive(Debug)]
struct Active {
    blocks: Vec<Slot>,
    written: usize,
    verifying: bool,
    /// Who sent its blocks, to ban if it fails verification.
    sources: HashSet<(PeerId, SocketAddr)>,
}

/// A connected peer as the torrent sees it.
#[derive(Debug)]
struct PeerSlot {
    tx: mpsc::UnboundedSender<ToPeer>,
    addr: SocketAddr,
    id: PeerId,
    pieces: Bitfield,
    unchoked_us: bool,
    interested: bool,
    in_flight: usize,
}

struct Task {
    storage: Arc<FileStorage>,
    geometry: Geometry,
    info_hash: InfoHashV1,
    peer_id: PeerId,
    resume_path: PathBuf,
    max_requests: usize,
    have: Bitfield,
    active: BTreeMap<u32, Active>,
    peers: HashMap<PeerKey, PeerSlot>,
    next_key: PeerKey,
    /// Outbound addresses connecting or connected.
    dialed: HashSet<SocketAddr>,
    banned_ids: HashSet<PeerId>,
    banned_addrs: HashSet<SocketAddr>,
    counters: Arc<Counters>,
    done: watch::Sender<bool>,
    this: mpsc::WeakSender<Command>,
}

/// Starts a torrent's task; returns its handle and the sender the listener routes to.
pub(super) fn start(setup: Setup) -> Result<(Torrent, mpsc::Sender<Command>), SessionError> {
    let (tx, rx) = mpsc::channel(256);
    let layout = setup.storage.layout();
    let pieces = layout.piece_count();
    // The bytes the pieces cover, pad files included.
    let piece_length = layout.info().piece_length();
    let last = layout.piece_size(pieces.saturating_sub(1)).unwrap_or(0);
    let covered = u64::from(pieces.saturating_sub(1)) * piece_length + last;
    let geometry = u32::try_from(piece_length)
        .ok()
        .and_then(|length| Geometry::new(covered, length))
        .ok_or(SessionError::Unsupported {
            pieces,
            piece_length,
        })?;
    let have = setup.storage.verified();
    let counters = Arc::new(Counters::default());
    counters.verified.store(have.count(), Ordering::Relaxed);
    let (done_tx, done_rx) = watch::channel(have.is_full());
    let task = Task {
        storage: setup.storage,
        geometry,
        info_hash: setup.info_hash,
        peer_id: setup.peer_id,
        resume_path: setup.resume_path,
        max_requests: setup.max_requests_per_peer,
        have,
        active: BTreeMap::new(),
        peers: HashMap::new(),
        next_key: 0,
        dialed: HashSet::new(),
        banned_ids: HashSet::new(),
        banned_addrs: HashSet::new(),
        counters: Arc::clone(&counters),
        done: done_tx,
        this: tx.downgrade(),
    };
    tokio::spawn(task.run(rx));
    let handle = Torrent {
        tx: tx.clone(),
        counters,
        done: done_rx,
        info_hash: setup.info_hash,
        total_pieces: pieces,
    };
    Ok((handle, tx))
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        while let Some(command) = rx.recv().await {
            match command {
                Command::AddPeer(addr) => self.dial(addr),
                Command::Connected {
                    stream,
                    addr,
                    handshake,
                    outbound,
                } => self.connected(stream, addr, &handshake, outbound),
                Command::ConnectFailed(addr) => {
                    self.dialed.remove(&addr);
                }
                Command::Peer(key, event) => self.peer_event(key, event),
                Command::Written { block, ok } => self.written(block, ok),
                Command::Verified { piece, result } => self.verified(piece, result),
                Command::Shutdown(reply) => {
                    for peer in self.peers.values() {
                        let _ = peer.tx.send(ToPeer::Close);
                    }
                    let storage = Arc::clone(&self.storage);
                    let path = self.resume_path.clone();
                    let result = tokio::task::spawn_blocking(move || {
                        storage.flush()?;
                        ResumeData::capture(&storage)?.save(&path)?;
                        Ok(())
                    })
                    .await
                    .map_err(|e| SessionError::Task(e.to_string()))
                    .and_then(|r| r);
                    let _ = reply.send(result);
                    return;
                }
            }
        }
    }

    fn dial(&mut self, addr: SocketAddr) {
        if self.banned_addrs.contains(&addr)
            || self.peers.values().any(|p| p.addr == addr)
            || !self.dialed.insert(addr)
        {
            return;
        }
        let Some(tx) = self.this.upgrade() else {
            return;
        };
        let ours = Handshake::new(RESERVED, self.info_hash, self.peer_id);
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
                    stream,
                    addr,
                    handshake,
                    outbound: true,
                },
                _ => Command::ConnectFailed(addr),
            };
            let _ = tx.send(command).await;
        });
    }

    fn connected(
        &mut self,
        stream: TcpStream,
        addr: SocketAddr,
        handshake: &Handshake,
        outbound: bool,
    ) {
        let id = handshake.peer_id;
        let refused = id == self.peer_id
            || self.banned_ids.contains(&id)
            || self.banned_addrs.contains(&addr)
            || self.peers.values().any(|p| p.id == id);
        let Some(torrent) = self.this.upgrade() else {
            return;
        };
        if refused {
            if outbound {
                self.dialed.remove(&addr);
            }
            return;
        }
        let _ = stream.set_nodelay(true);
        let key = self.next_key;
        self.next_key += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        self.peers.insert(
            key,
            PeerSlot {
                tx,
                addr,
                id,
                pieces: Bitfield::new(self.geometry.pieces()),
                unchoked_us: false,
                interested: false,
                in_flight: 0,
            },
        );
        self.counters
            .peers
            .store(self.peers.len(), Ordering::Relaxed);
        tokio::spawn(peer::run(peer::Context {
            key,
            stream: Some(stream),
            handshake: *handshake,
            now: Instant::now(),
            geometry: self.geometry,
            ours: self.have.clone(),
            storage: Arc::clone(&self.storage),
            counters: Arc::clone(&self.counters),
            torrent,
            commands: rx,
        }));
    }

    fn peer_event(&mut self, key: PeerKey, event: PeerEvent) {
        if !self.peers.contains_key(&key) {
            return;
        }
        match event {
            PeerEvent::Pieces(pieces) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.pieces = pieces;
                }
                self.update_interest(key);
                // The peer may have unchoked us before its piece set arrived.
                self.fill(key);
            }
            PeerEvent::Have(piece) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    let _ = peer.pieces.set(piece);
                }
                self.update_interest(key);
                self.fill(key);
            }
            PeerEvent::Unchoked => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.unchoked_us = true;
                }
                self.fill(key);
            }
            PeerEvent::Choked => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.unchoked_us = false;
                }
            }
            PeerEvent::Returned { blocks, retry_here } => {
                for block in blocks {
                    self.release(key, block);
                }
                self.fill_all(if retry_here { None } else { Some(key) });
            }
            PeerEvent::Block { block, data } => self.block(key, block, data),
            PeerEvent::Closed => {
                let Some(peer) = self.peers.remove(&key) else {
                    return;
                };
                self.dialed.remove(&peer.addr);
                self.counters
                    .peers
                    .store(self.peers.len(), Ordering::Relaxed);
                for active in self.active.values_mut() {
                    for slot in &mut active.blocks {
                        if *slot == Slot::Requested(key) {
                            *slot = Slot::Free;
                        }
                    }
                }
                self.fill_all(None);
            }
        }
    }

    /// Tells a peer whether it has pieces we lack.
    fn update_interest(&mut self, key: PeerKey) {
        let have = &self.have;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let wanted = peer.pieces.iter().any(|piece| !have.has(piece));
        if wanted != peer.interested {
            peer.interested = wanted;
            let _ = peer.tx.send(ToPeer::Interested(wanted));
        }
    }

    /// A block of `key`'s will not come: it may be requested again.
    fn release(&mut self, key: PeerKey, block: BlockRef) {
        let index = (block.offset / BLOCK_SIZE) as usize;
        if let Some(slot) = self
            .active
            .get_mut(&block.piece)
            .and_then(|a| a.blocks.get_mut(index))
            && *slot == Slot::Requested(key)
        {
            *slot = Slot::Free;
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.in_flight = peer.in_flight.saturating_sub(1);
            }
        }
    }

    fn fill_all(&mut self, except: Option<PeerKey>) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            if Some(key) != except {
                self.fill(key);
            }
        }
    }

    /// Assigns free blocks to a peer that unchoked us, up to its pipeline depth: blocks of
    /// pieces under way first, then new pieces in order.
    fn fill(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.unchoked_us || !peer.interested || peer.in_flight >= self.max_requests {
            return;
        }
        let mut want = self.max_requests - peer.in_flight;
        let mut blocks = Vec::new();
        for (&piece, active) in &mut self.active {
            if want == 0 {
                break;
            }
            if active.verifying || !peer.pieces.has(piece) {
                continue;
            }
            let size = self.geometry.piece_size(piece).unwrap_or(0);
            for (i, slot) in active.blocks.iter_mut().enumerate() {
                if want == 0 {
                    break;
                }
                if *slot == Slot::Free {
                    *slot = Slot::Requested(key);
                    blocks.push(block_at(piece, i, size));
                    want -= 1;
                }
            }
        }
        let mut piece = 0;
        while want > 0 && piece < self.geometry.pieces() {
            if !self.have.has(piece) && !self.active.contains_key(&piece) && peer.pieces.has(piece)
            {
                let size = self.geometry.piece_size(piece).unwrap_or(0);
                let count = size.div_ceil(BLOCK_SIZE) as usize;
                let mut slots = vec![Slot::Free; count];
                for (i, slot) in slots.iter_mut().enumerate().take(want) {
                    *slot = Slot::Requested(key);
                    blocks.push(block_at(piece, i, size));
                }
                want = want.saturating_sub(count);
                self.active.insert(
                    piece,
                    Active {
                        blocks: slots,
                        written: 0,
                        verifying: false,
                        sources: HashSet::new(),
                    },
                );
            }
            piece += 1;
        }
        if !blocks.is_empty() {
            peer.in_flight += blocks.len();
            let _ = peer.tx.send(ToPeer::Request(blocks));
        }
    }

    fn block(&mut self, key: PeerKey, block: BlockRef, data: Vec<u8>) {
        let index = (block.offset / BLOCK_SIZE) as usize;
        let size = self.geometry.piece_size(block.piece).unwrap_or(0);
        let Some(active) = self.active.get_mut(&block.piece) else {
            return;
        };
        let Some(slot) = active.blocks.get_mut(index) else {
            return;
        };
        let Slot::Requested(owner) = *slot else {
            // Already received from someone else, or never requested.
            return;
        };
        if block_at(block.piece, index, size) != block || data.len() != block.length as usize {
            return;
        }
        *slot = Slot::Writing;
        if let Some(peer) = self.peers.get_mut(&owner) {
            peer.in_flight = peer.in_flight.saturating_sub(1);
        }
        if let Some(peer) = self.peers.get(&key) {
            active.sources.insert((peer.id, peer.addr));
        }
        if let Some(tx) = self.this.upgrade() {
            let storage = Arc::clone(&self.storage);
            tokio::spawn(async move {
                let ok = tokio::task::spawn_blocking(move || {
                    storage.write_block(block.piece, block.offset, &data)
                })
                .await
                .is_ok_and(|r| r.is_ok());
                let _ = tx.send(Command::Written { block, ok }).await;
            });
        }
        self.fill(key);
    }

    fn written(&mut self, block: BlockRef, ok: bool) {
        let index = (block.offset / BLOCK_SIZE) as usize;
        let Some(active) = self.active.get_mut(&block.piece) else {
            return;
        };
        let Some(slot) = active.blocks.get_mut(index) else {
            return;
        };
        if !ok {
            *slot = Slot::Free;
            self.fill_all(None);
            return;
        }
        *slot = Slot::Written;
        active.written += 1;
        if active.written == active.blocks.len() {
            active.verifying = true;
            let Some(tx) = self.this.upgrade() else {
                return;
            };
            let storage = Arc::clone(&self.storage);
            let piece = block.piece;
            tokio::spawn(async move {
                let result = tokio::task::spawn_blocking(move || storage.verify_piece(piece))
                    .await
                    .ok()
                    .and_then(Result::ok);
                let _ = tx.send(Command::Verified { piece, result }).await;
            });
        }
    }

    fn verified(&mut self, piece: u32, result: Option<bool>) {
        let Some(active) = self.active.remove(&piece) else {
            return;
        };
        if result != Some(true) {
            // Bad data: every peer that sent part of it is banned. A storage error is not
            // the peers' fault: the piece is simply downloaded again.
            if result == Some(false) {
                for (id, addr) in active.sources {
                    self.banned_ids.insert(id);
                    self.banned_addrs.insert(addr);
                    for peer in self.peers.values().filter(|p| p.id == id) {
                        let _ = peer.tx.send(ToPeer::Close);
                    }
                }
            }
            self.fill_all(None);
            return;
        }
        if !self.have.set(piece).unwrap_or(false) {
            return;
        }
        let size = self.geometry.piece_size(piece).unwrap_or(0);
        self.counters
            .downloaded
            .fetch_add(u64::from(size), Ordering::Relaxed);
        self.counters
            .verified
            .store(self.have.count(), Ordering::Relaxed);
        for peer in self.peers.values() {
            let _ = peer.tx.send(ToPeer::Have(piece));
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.update_interest(key);
        }
        if self.have.is_full() {
            self.done.send_replace(true);
            let storage = Arc::clone(&self.storage);
            tokio::task::spawn_blocking(move || storage.flush());
        } else {
            self.fill_all(None);
        }
    }
}

/// Block `index` of a piece of `size` bytes.
fn block_at(piece: u32, index: usize, size: u32) -> BlockRef {
    // `index` comes from a slot list of `size.div_ceil(BLOCK_SIZE)` entries.
    let offset = index as u32 * BLOCK_SIZE;
    BlockRef::new(piece, offset, BLOCK_SIZE.min(size - offset))
}
