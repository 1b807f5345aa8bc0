//! BEP 52 hash exchange: serving and fetching piece layers with `hash request` / `hashes` /
//! `hash reject`.
//!
//! A v2 info dictionary carries only each file's `pieces root`; the piece layers travel in
//! the `.torrent` file or, for a torrent added by magnet link, come from peers. A request
//! names a file by its root and asks for `length` nodes of one layer of the file's tree
//! (`base_layer`, 0 being the 16 KiB leaves) starting at `index`, plus the uncle hashes that
//! prove them against the root. The layer is the file's tree padded to a power of two of
//! leaves, so a range may reach into the padding.
//!
//! # Proof layers
//!
//! `proof_layers` counts tree levels above the base layer. The answer holds the `length`
//! nodes, then one uncle for each level from the top of the range's own subtree (`length`
//! rounded up to a power of two) up to level `proof_layers + 1` above the base, bottom-up:
//! `max(0, proof_layers + 1 - log2(length.next_power_of_two()))` uncles. A full proof up to
//! the root therefore asks for `proof_layers = tree height above the base - 1`. This is the
//! count libtorrent 2.0 checks on receipt, so answers built here are accepted there.
//!
//! - [`PieceTree`] answers requests from a file's piece layer (and the levels above it).
//! - [`LayerFetcher`] is the sans-IO state machine of a client that needs the piece layers
//!   of a torrent: which ranges are missing, which are asked of whom, verification, retries,
//!   and which peers lied. Time is passed in.
//!
//! ```
//! use std::time::Instant;
//! use webtorrent_hash::exchange::{FetcherConfig, LayerFetcher, LayerFile, PieceTree};
//! use webtorrent_hash::{merkle, BLOCK_SIZE};
//!
//! // A seeder's file of five 16 KiB pieces.
//! let data: Vec<u8> = (0..5 * BLOCK_SIZE).map(|i| (i % 253) as u8).collect();
//! let layer = merkle::piece_layer(&data, BLOCK_SIZE);
//! let root = merkle::file_root(&data, BLOCK_SIZE).unwrap();
//! let tree = PieceTree::new(layer.clone(), BLOCK_SIZE, &root)?;
//!
//! // A client that knows only the root fetches the layer from the seeder ("s").
//! let now = Instant::now();
//! let file = LayerFile { file: 0, root, length: data.len() as u64 };
//! let mut fetcher = LayerFetcher::new(BLOCK_SIZE, [file], FetcherConfig::default());
//! fetcher.add_peer("s");
//! while let Some((peer, request)) = fetcher.poll_request(now) {
//!     let hashes = tree.answer(&request).expect("a valid request");
//!     fetcher.handle_hashes(now, &peer, &request, &hashes)?;
//! }
//! assert!(fetcher.is_complete());
//! assert_eq!(fetcher.layer(0), Some(&layer[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::BLOCK_SIZE;
use crate::merkle::{self, MerkleError, Node};

/// The most nodes one request may ask for, served or sent (libtorrent's limit: the leaves
/// of a 128 MiB piece).
pub const MAX_REQUEST_HASHES: u32 = 8192;

/// One BEP 52 hash request, as carried by `hash request`, `hashes` and `hash reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRange {
    /// The file's `pieces root`.
    pub pieces_root: Node,
    /// The layer the nodes come from, 0 being the 16 KiB leaves.
    pub base_layer: u32,
    /// The first node, counted within the layer.
    pub index: u32,
    /// How many nodes.
    pub length: u32,
    /// Levels above the base layer the proof reaches (see the [module docs](self)).
    pub proof_layers: u32,
}

/// `ceil(log2(n))` for `n >= 1`.
fn log2_ceil(n: u64) -> u32 {
    n.max(1).next_power_of_two().trailing_zeros()
}

/// How many uncle hashes follow the nodes of an answer to `range`.
#[must_use]
pub fn uncle_count(range: &HashRange) -> u32 {
    let subtree = log2_ceil(u64::from(range.length));
    range.proof_layers.saturating_add(1).saturating_sub(subtree)
}

/// Why a request cannot be answered from a [`PieceTree`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No nodes, or more than [`MAX_REQUEST_HASHES`].
    #[error("a request for {0} hashes")]
    BadLength(u32),
    /// The base layer is not in the tree (above the root).
    #[error("layer {0} is not in the file's tree")]
    NoSuchLayer(u32),
    /// The base layer is below the piece layer: those nodes are not kept.
    #[error("layer {0} is below the piece layer")]
    BelowPieceLayer(u32),
    /// The range reaches past the layer's padded width.
    #[error("the range does not fit in its layer")]
    OutOfRange,
    /// The proof would reach past the root.
    #[error("{0} proof layers reach past the root")]
    TooManyProofLayers(u32),
}

/// A file's Merkle tree from its piece layer up to the root: answers BEP 52 hash requests.
///
/// Memory: about twice the piece layer (32 bytes per piece). Building it hashes each inner
/// node once; an answer then costs `O(length + height)` copies and no hashing.
#[derive(Debug, Clone)]
pub struct PieceTree {
    piece_height: u32,
    /// Levels above the piece layer in the padded tree.
    height: u32,
    /// `levels[0]` is the piece layer, `levels[height]` the root; nodes past the end of a
    /// level are padding.
    levels: Vec<Vec<Node>>,
}

impl PieceTree {
    /// The tree over `layer`, the piece layer of a file larger than one piece of a torrent
    /// with `piece_length`, checked against the file's `root`.
    pub fn new(layer: Vec<Node>, piece_length: usize, root: &Node) -> Result<Self, MerkleError> {
        merkle::validate_piece_length(piece_length)?;
        if layer.is_empty() {
            return Err(MerkleError::EmptyLayer);
        }
        let piece_height = merkle::piece_height(piece_length);
        let height = log2_ceil(layer.len() as u64);
        let mut levels = Vec::with_capacity(height as usize + 1);
        levels.push(layer);
        for level in 0..height {
            let pad = merkle::pad_hash(piece_height + level);
            let below = &levels[level as usize];
            let above: Vec<Node> = below
                .chunks(2)
                .map(|pair| crate::sha256_pair(&pair[0], pair.get(1).unwrap_or(&pad)))
                .collect();
            levels.push(above);
        }
        if levels[height as usize].first() != Some(root) {
            return Err(MerkleError::RootMismatch);
        }
        Ok(Self {
            piece_height,
            height,
            levels,
        })
    }

    /// The file's `pieces root`.
    #[must_use]
    pub fn root(&self) -> Node {
        // `new` checked that the top level holds the root.
        self.levels[self.height as usize][0]
    }

    /// Node `position` of level `level` above the piece layer (padding past the end).
    fn node(&self, level: u32, position: u64) -> Node {
        self.levels
            .get(level as usize)
            .and_then(|l| usize::try_from(position).ok().and_then(|p| l.get(p)))
            .copied()
            .unwrap_or_else(|| merkle::pad_hash(self.piece_height + level))
    }

    /// The answer to `request` (its root is not checked here): the nodes, then the uncles.
    pub fn answer(&self, request: &HashRange) -> Result<Vec<Node>, ServeError> {
        let HashRange {
            base_layer,
            index,
            length,
            proof_layers,
            ..
        } = *request;
        if length == 0 || length > MAX_REQUEST_HASHES {
            return Err(ServeError::BadLength(length));
        }
        // Layers of the whole file tree: the leaves are `piece_height` below the pieces.
        let layers = self.piece_height + self.height;
        if base_layer > layers {
            return Err(ServeError::NoSuchLayer(base_layer));
        }
        if base_layer < self.piece_height {
            return Err(ServeError::BelowPieceLayer(base_layer));
        }
        if base_layer == layers {
            // The root alone is no range a peer needs; libtorrent refuses it too.
            return Err(ServeError::NoSuchLayer(base_layer));
        }
        let level = base_layer - self.piece_height;
        let width = 1u64 << (layers - base_layer);
        let (index64, length64) = (u64::from(index), u64::from(length));
        if index64 + length64 > width {
            return Err(ServeError::OutOfRange);
        }
        if proof_layers >= layers - base_layer {
            return Err(ServeError::TooManyProofLayers(proof_layers));
        }
        let subtree = log2_ceil(length64);
        let mut out = Vec::with_capacity((length + uncle_count(request)) as usize);
        out.extend((index64..index64 + length64).map(|p| self.node(level, p)));
        for above in subtree..=proof_layers {
            let position = (index64 >> above) ^ 1;
            out.push(self.node(level + above, position));
        }
        Ok(out)
    }
}

/// A file whose piece layer is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerFile {
    /// The caller's name for the file (an index into the torrent's files, say).
    pub file: usize,
    /// Its `pieces root`.
    pub root: Node,
    /// Its length in bytes.
    pub length: u64,
}

/// Tuning of a [`LayerFetcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetcherConfig {
    /// Pieces asked for in one request (a power of two; libtorrent asks for 512).
    pub hashes_per_request: u32,
    /// Requests in flight to one peer.
    pub requests_per_peer: usize,
    /// How long an answer may take before the range is asked of another peer.
    pub request_timeout: Duration,
    /// How long a peer that rejected a range (or let it time out) is not asked for it again.
    pub retry_after: Duration,
    /// Bad answers (wrong hashes, wrong counts, answers to nothing asked) after which a
    /// peer is banned.
    pub max_strikes: u32,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        Self {
            hashes_per_request: 512,
            requests_per_peer: 4,
            request_timeout: Duration::from_secs(20),
            retry_after: Duration::from_secs(5),
            max_strikes: 3,
        }
    }
}

/// Why an answer was refused. Each counts as a strike against the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The peer is not known to the fetcher (or was banned).
    #[error("unknown peer")]
    UnknownPeer,
    /// An answer to a request we did not make of this peer.
    #[error("hashes that were not asked for")]
    Unsolicited,
    /// The answer has the wrong number of hashes.
    #[error("expected {expected} hashes, got {actual}")]
    WrongCount {
        /// Nodes plus uncles the request calls for.
        expected: usize,
        /// Hashes received.
        actual: usize,
    },
    /// The hashes do not lead to the file's root.
    #[error("the hashes do not lead to the file's root")]
    WrongHashes,
}

/// What a [`LayerFetcher`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerEvent<P> {
    /// Every piece hash of this file (by [`LayerFile::file`]) is in and verified.
    FileComplete(usize),
    /// Every layer is in.
    Complete,
    /// The peer gave too many bad answers: stop using it (disconnect it).
    PeerBanned(P),
}

#[derive(Debug)]
struct FileState {
    /// The files with this root (the same content): one or more [`LayerFile::file`]s.
    files: Vec<usize>,
    root: Node,
    pieces: u32,
    /// Levels of the piece-layer tree above the pieces (the root's height).
    height: u32,
    layer: Vec<Node>,
    /// Whether each chunk (`hashes_per_request` pieces) is in.
    chunks: Vec<bool>,
    missing: usize,
}

#[derive(Debug)]
struct PeerState {
    /// Requests in flight, with their deadline.
    asked: HashMap<(usize, u32), Instant>,
    /// Requests that timed out: an answer is still taken.
    late: HashSet<(usize, u32)>,
    /// Chunks the peer refused or let time out, and until when it is not asked again.
    resting: HashMap<(usize, u32), Instant>,
    strikes: u32,
}

/// Fetches the piece layers of a torrent's files from peers (sans-IO).
///
/// Feed it peers ([`add_peer`](Self::add_peer), [`remove_peer`](Self::remove_peer)), send
/// what [`poll_request`](Self::poll_request) gives, hand it every `hashes` and
/// `hash reject` ([`handle_hashes`](Self::handle_hashes),
/// [`handle_reject`](Self::handle_reject)), call [`handle_timeout`](Self::handle_timeout)
/// at [`poll_timeout`](Self::poll_timeout), and drain [`poll_event`](Self::poll_event).
///
/// Each file larger than one piece is split into chunks of `hashes_per_request` pieces;
/// each chunk is asked of one peer at a time, spread over the peers with the fewest
/// requests in flight, with a proof up to the file's root, so every answer is verified on
/// its own. A refused or timed-out chunk goes to another peer, and back to the same one
/// after `retry_after`. A peer whose answers fail `max_strikes` times is banned.
#[derive(Debug)]
pub struct LayerFetcher<P> {
    config: FetcherConfig,
    piece_height: u32,
    files: Vec<FileState>,
    by_root: HashMap<Node, usize>,
    peers: HashMap<P, PeerState>,
    /// Peers in the order they came, for fair spreading.
    order: Vec<P>,
    /// Chunks asked of some peer and not yet answered or timed out.
    in_flight: HashSet<(usize, u32)>,
    banned: HashSet<P>,
    events: VecDeque<LayerEvent<P>>,
    complete_sent: bool,
}

impl<P: Clone + Eq + Hash> LayerFetcher<P> {
    /// A fetcher of the layers of `files` in a torrent of `piece_length` (a valid BEP 52
    /// piece length; an invalid one is rounded up, see [`merkle`]). Files of at most one
    /// piece need no layer and are left out.
    pub fn new(
        piece_length: usize,
        files: impl IntoIterator<Item = LayerFile>,
        config: FetcherConfig,
    ) -> Self {
        let mut config = config;
        config.hashes_per_request = config
            .hashes_per_request
            .clamp(2, MAX_REQUEST_HASHES)
            .next_power_of_two();
        config.requests_per_peer = config.requests_per_peer.max(1);
        config.max_strikes = config.max_strikes.max(1);
        let piece_height = merkle::piece_height(piece_length);
        let span = (merkle::leaves_per_piece(piece_length) * BLOCK_SIZE) as u64;
        let mut states = Vec::new();
        let mut by_root = HashMap::new();
        for f in files {
            if f.length <= span {
                continue;
            }
            let Ok(pieces) = u32::try_from(f.length.div_ceil(span)) else {
                continue;
            };
            if let Some(&same) = by_root.get(&f.root) {
                // Files with the same content share a root, so a layer: fetched once.
                let state: &mut FileState = &mut states[same];
                state.files.push(f.file);
                continue;
            }
            let chunks = pieces.div_ceil(config.hashes_per_request) as usize;
            by_root.insert(f.root, states.len());
            states.push(FileState {
                files: vec![f.file],
                root: f.root,
                pieces,
                height: log2_ceil(u64::from(pieces)),
                layer: vec![[0; 32]; pieces as usize],
                chunks: vec![false; chunks],
                missing: chunks,
            });
        }
        let mut fetcher = Self {
            config,
            piece_height,
            files: states,
            by_root,
            peers: HashMap::new(),
            order: Vec::new(),
            in_flight: HashSet::new(),
            banned: HashSet::new(),
            events: VecDeque::new(),
            complete_sent: false,
        };
        fetcher.check_complete();
        fetcher
    }

    /// Whether every layer is in.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.files.iter().all(|f| f.missing == 0)
    }

    /// The verified piece layer of `file` (a [`LayerFile::file`]), once complete.
    #[must_use]
    pub fn layer(&self, file: usize) -> Option<&[Node]> {
        self.files
            .iter()
            .find(|f| f.files.contains(&file) && f.missing == 0)
            .map(|f| &f.layer[..])
    }

    /// Every complete layer, by [`LayerFile::file`] (files with the same root each get
    /// theirs).
    pub fn layers(&self) -> impl Iterator<Item = (usize, &[Node])> {
        self.files
            .iter()
            .filter(|f| f.missing == 0)
            .flat_map(|f| f.files.iter().map(|&file| (file, &f.layer[..])))
    }

    /// A peer to ask. Banned peers are not taken back.
    pub fn add_peer(&mut self, peer: P) {
        if self.banned.contains(&peer) || self.peers.contains_key(&peer) {
            return;
        }
        self.peers.insert(
            peer.clone(),
            PeerState {
                asked: HashMap::new(),
                late: HashSet::new(),
                resting: HashMap::new(),
                strikes: 0,
            },
        );
        self.order.push(peer);
    }

    /// The peer is gone: what it was asked goes to others.
    pub fn remove_peer(&mut self, peer: &P) {
        if let Some(state) = self.peers.remove(peer) {
            for key in state.asked.keys() {
                self.in_flight.remove(key);
            }
            self.order.retain(|p| p != peer);
        }
    }

    /// The request for chunk `chunk` of file state `f`.
    fn request_for(&self, f: usize, chunk: u32) -> HashRange {
        let file = &self.files[f];
        let per = self.config.hashes_per_request;
        let index = chunk * per;
        let length = per.min(file.pieces - index);
        HashRange {
            pieces_root: file.root,
            base_layer: self.piece_height,
            index,
            length,
            // A proof up to the root: the root's level is not a proof layer.
            proof_layers: file.height.saturating_sub(1),
        }
    }

    /// Where `range` falls in our files: the file state and chunk it asks for, when it is
    /// one of the requests this fetcher makes.
    fn locate(&self, range: &HashRange) -> Option<(usize, u32)> {
        let f = *self.by_root.get(&range.pieces_root)?;
        let per = self.config.hashes_per_request;
        if !range.index.is_multiple_of(per) {
            return None;
        }
        let chunk = range.index / per;
        (chunk < self.files[f].chunks.len() as u32 && self.request_for(f, chunk) == *range)
            .then_some((f, chunk))
    }

    /// The next request to send: which peer, what range. Call until `None`.
    pub fn poll_request(&mut self, now: Instant) -> Option<(P, HashRange)> {
        for f in 0..self.files.len() {
            for chunk in 0..self.files[f].chunks.len() {
                let key = (f, chunk as u32);
                if self.files[f].chunks[chunk] || self.in_flight.contains(&key) {
                    continue;
                }
                // The peer with the fewest requests in flight that may be asked.
                let peer = self
                    .order
                    .iter()
                    .filter_map(|p| self.peers.get(p).map(|s| (p, s)))
                    .filter(|(_, s)| {
                        s.asked.len() < self.config.requests_per_peer
                            && !s.asked.contains_key(&key)
                            && s.resting.get(&key).is_none_or(|until| *until <= now)
                    })
                    .min_by_key(|(_, s)| s.asked.len())
                    .map(|(p, _)| p.clone());
                let Some(peer) = peer else { continue };
                let request = self.request_for(f, chunk as u32);
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.resting.remove(&key);
                    state.asked.insert(key, now + self.config.request_timeout);
                }
                self.in_flight.insert(key);
                return Some((peer, request));
            }
        }
        None
    }

    /// Counts a bad answer against `peer`; bans it after `max_strikes`.
    fn strike(&mut self, peer: &P) {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        state.strikes += 1;
        if state.strikes >= self.config.max_strikes {
            self.remove_peer(peer);
            self.banned.insert(peer.clone());
            self.events.push_back(LayerEvent::PeerBanned(peer.clone()));
        }
    }

    /// A `hashes` message from `peer`: `hashes` are the nodes then the uncles.
    ///
    /// A verified answer fills its range (even one that came after its timeout). Any
    /// other answer is refused with the reason, counts as a strike, and its range (when
    /// it was ours) goes to another peer.
    pub fn handle_hashes(
        &mut self,
        now: Instant,
        peer: &P,
        range: &HashRange,
        hashes: &[Node],
    ) -> Result<(), FetchError> {
        if !self.peers.contains_key(peer) {
            return Err(FetchError::UnknownPeer);
        }
        let asked = self.locate(range).filter(|key| {
            self.peers
                .get(peer)
                .is_some_and(|s| s.asked.contains_key(key) || s.late.contains(key))
        });
        let Some((f, chunk)) = asked else {
            self.strike(peer);
            return Err(FetchError::Unsolicited);
        };
        let key = (f, chunk);
        if let Some(state) = self.peers.get_mut(peer) {
            state.late.remove(&key);
            if state.asked.remove(&key).is_some() {
                self.in_flight.remove(&key);
            }
        }
        if let Err(e) = self.verify(f, range, hashes) {
            if let Some(state) = self.peers.get_mut(peer) {
                state.resting.insert(key, now + self.config.retry_after);
            }
            self.strike(peer);
            return Err(e);
        }
        let file = &mut self.files[f];
        if !file.chunks[chunk as usize] {
            let start = range.index as usize;
            let count = range.length as usize;
            file.layer[start..start + count].copy_from_slice(&hashes[..count]);
            file.chunks[chunk as usize] = true;
            file.missing -= 1;
            if file.missing == 0 {
                for &done in &file.files {
                    self.events.push_back(LayerEvent::FileComplete(done));
                }
            }
        }
        self.check_complete();
        Ok(())
    }

    /// Checks an answer to our request `range` of file state `f`.
    fn verify(&self, f: usize, range: &HashRange, hashes: &[Node]) -> Result<(), FetchError> {
        let file = &self.files[f];
        let count = range.length as usize;
        let uncles = uncle_count(range) as usize;
        let (nodes, proof) = if hashes.len() == count + uncles {
            hashes.split_at(count)
        } else if count == 1 && uncles > 0 && hashes.len() == count + uncles - 1 {
            // libtorrent leaves out the sibling of a lone node. We only ask for one node
            // when it is the file's last piece at an even index: its sibling is padding.
            let (nodes, rest) = hashes.split_at(1);
            let mut proof = Vec::with_capacity(uncles);
            proof.push(merkle::pad_hash(self.piece_height));
            proof.extend_from_slice(rest);
            return self.check_root(file, range.index, nodes, &proof);
        } else {
            return Err(FetchError::WrongCount {
                expected: count + uncles,
                actual: hashes.len(),
            });
        };
        self.check_root(file, range.index, nodes, proof)
    }

    fn check_root(
        &self,
        file: &FileState,
        index: u32,
        nodes: &[Node],
        proof: &[Node],
    ) -> Result<(), FetchError> {
        // The range's subtree: the nodes, padded to a power of two with padding pieces.
        let width = nodes.len().next_power_of_two();
        let mut subtree = nodes.to_vec();
        subtree.resize(width, merkle::pad_hash(self.piece_height));
        match merkle::proof_root(index as usize, &subtree, proof) {
            Ok((node, 0)) if node == file.root => Ok(()),
            _ => Err(FetchError::WrongHashes),
        }
    }

    /// A `hash reject` from `peer`: the range goes to another peer, and back to this one
    /// after `retry_after`. A reject of something not asked is ignored.
    pub fn handle_reject(&mut self, now: Instant, peer: &P, range: &HashRange) {
        let Some(key) = self.locate(range) else {
            return;
        };
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        let asked = state.asked.remove(&key).is_some();
        if asked {
            self.in_flight.remove(&key);
        }
        if state.late.remove(&key) || asked {
            state.resting.insert(key, now + self.config.retry_after);
        }
    }

    /// Requests past their deadline go to other peers (an answer that still comes is
    /// taken).
    pub fn handle_timeout(&mut self, now: Instant) {
        let retry = self.config.retry_after;
        for state in self.peers.values_mut() {
            state.resting.retain(|_, until| *until > now);
            let expired: Vec<(usize, u32)> = state
                .asked
                .iter()
                .filter(|(_, deadline)| **deadline <= now)
                .map(|(key, _)| *key)
                .collect();
            for key in expired {
                state.asked.remove(&key);
                self.in_flight.remove(&key);
                state.late.insert(key);
                state.resting.insert(key, now + retry);
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do: the
    /// earliest request deadline, or the end of a rest that holds a chunk back.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadlines = self
            .peers
            .values()
            .flat_map(|s| s.asked.values().chain(s.resting.values()).copied());
        deadlines.min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<LayerEvent<P>> {
        self.events.pop_front()
    }

    fn check_complete(&mut self) {
        if !self.complete_sent && self.is_complete() {
            self.complete_sent = true;
            self.events.push_back(LayerEvent::Complete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PL: usize = BLOCK_SIZE;

    /// A made-up piece layer of `pieces` nodes and its root.
    fn layer(pieces: usize, seed: u8) -> (Vec<Node>, Node) {
        let layer: Vec<Node> = (0..pieces)
            .map(|i| crate::sha256(&[seed, (i % 256) as u8, (i / 256) as u8]))
            .collect();
        let root = merkle::root_from_piece_layer(&layer, PL);
        (layer, root)
    }

    fn file(pieces: usize, seed: u8) -> (LayerFile, PieceTree, Vec<Node>) {
        let (nodes, root) = layer(pieces, seed);
        let tree = PieceTree::new(nodes.clone(), PL, &root).unwrap();
        let f = LayerFile {
            file: usize::from(seed),
            root,
            length: (pieces * PL) as u64 - 100,
        };
        (f, tree, nodes)
    }

    fn range(root: Node, base: u32, index: u32, length: u32, proof: u32) -> HashRange {
        HashRange {
            pieces_root: root,
            base_layer: base,
            index,
            length,
            proof_layers: proof,
        }
    }

    #[test]
    fn tree_rejects_a_wrong_root() {
        let (nodes, _) = layer(5, 1);
        assert_eq!(
            PieceTree::new(nodes, PL, &[9; 32]).unwrap_err(),
            MerkleError::RootMismatch
        );
        assert_eq!(
            PieceTree::new(Vec::new(), PL, &[9; 32]).unwrap_err(),
            MerkleError::EmptyLayer
        );
    }

    #[test]
    fn answers_verify_against_the_root() {
        for pieces in [2usize, 3, 5, 8, 9, 100, 513, 1030] {
            let (nodes, root) = layer(pieces, 7);
            let tree = PieceTree::new(nodes.clone(), PL, &root).unwrap();
            assert_eq!(tree.root(), root);
            let height = log2_ceil(pieces as u64);
            let width = 1usize << height;
            for length in [1u32, 2, 4, 512] {
                if length as usize > width {
                    continue;
                }
                for index in (0..width).step_by(length as usize).take(4) {
                    let r = range(root, 0, index as u32, length, height - 1);
                    let answer = tree.answer(&r).unwrap();
                    let uncles = uncle_count(&r) as usize;
                    assert_eq!(answer.len(), length as usize + uncles);
                    let (got, proof) = answer.split_at(length as usize);
                    for (i, node) in got.iter().enumerate() {
                        let want = nodes.get(index + i).copied().unwrap_or(merkle::pad_hash(0));
                        assert_eq!(*node, want);
                    }
                    let (top, position) = merkle::proof_root(index, got, proof).unwrap();
                    assert_eq!((top, position), (root, 0), "{pieces} {index} {length}");
                }
            }
        }
    }

    #[test]
    fn a_short_proof_reaches_an_inner_node() {
        let (nodes, root) = layer(16, 3);
        let tree = PieceTree::new(nodes.clone(), PL, &root).unwrap();
        // Two nodes with 2 proof layers: uncles at levels 1 and 2, leading to level 3.
        let r = range(root, 0, 4, 2, 2);
        assert_eq!(uncle_count(&r), 2);
        let answer = tree.answer(&r).unwrap();
        let (node, position) = merkle::proof_root(4, &answer[..2], &answer[2..]).unwrap();
        assert_eq!(position, 0);
        let expected = merkle::root_padded(&nodes[0..8], 8, merkle::pad_hash(0));
        assert_eq!(node, expected);
    }

    #[test]
    fn higher_layers_are_served() {
        let (nodes, root) = layer(8, 4);
        let tree = PieceTree::new(nodes.clone(), PL, &root).unwrap();
        // Layer 1 of the piece tree: the 4 parents, with no proof needed.
        let answer = tree.answer(&range(root, 1, 0, 4, 1)).unwrap();
        assert_eq!(answer.len(), 4);
        assert_eq!(answer[0], crate::sha256_pair(&nodes[0], &nodes[1]));
        assert_eq!(merkle::root_from_leaves(&answer), root);
    }

    #[test]
    fn hostile_requests_are_refused() {
        let (nodes, root) = layer(5, 2);
        // The root of 16 KiB pieces is not the root of 64 KiB ones.
        assert!(PieceTree::new(nodes.clone(), 4 * PL, &root).is_err());
        let root = merkle::root_from_piece_layer(&nodes, 4 * PL);
        let tree = PieceTree::new(nodes, 4 * PL, &root).unwrap();
        // Piece height 2, 3 levels above the pieces: layers 0..=5, width 8 at layer 2.
        let cases = [
            (range(root, 2, 0, 0, 0), ServeError::BadLength(0)),
            (
                range(root, 2, 0, u32::MAX, 0),
                ServeError::BadLength(u32::MAX),
            ),
            (range(root, 2, 0, 8193, 0), ServeError::BadLength(8193)),
            (range(root, 0, 0, 4, 0), ServeError::BelowPieceLayer(0)),
            (range(root, 1, 0, 4, 0), ServeError::BelowPieceLayer(1)),
            (range(root, 5, 0, 1, 0), ServeError::NoSuchLayer(5)),
            (
                range(root, u32::MAX, 0, 1, 0),
                ServeError::NoSuchLayer(u32::MAX),
            ),
            (range(root, 2, 8, 1, 0), ServeError::OutOfRange),
            (range(root, 2, 6, 4, 0), ServeError::OutOfRange),
            (range(root, 2, u32::MAX, 2, 0), ServeError::OutOfRange),
            (range(root, 2, 0, 4, 3), ServeError::TooManyProofLayers(3)),
            (
                range(root, 2, 0, 4, u32::MAX),
                ServeError::TooManyProofLayers(u32::MAX),
            ),
        ];
        for (request, error) in cases {
            assert_eq!(tree.answer(&request), Err(error), "{request:?}");
        }
        // The whole padded layer with a full proof is fine.
        assert_eq!(tree.answer(&range(root, 2, 0, 8, 2)).unwrap().len(), 8);
    }

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn fetches_every_layer_from_several_peers() {
        let (a, tree_a, layer_a) = file(1030, 1);
        let (b, tree_b, layer_b) = file(3, 2);
        let small = LayerFile {
            file: 9,
            root: [5; 32],
            length: PL as u64,
        };
        let trees: HashMap<Node, &PieceTree> =
            [(a.root, &tree_a), (b.root, &tree_b)].into_iter().collect();
        let now = t0();
        let mut fetcher = LayerFetcher::new(PL, [a, b, small], FetcherConfig::default());
        fetcher.add_peer(1u32);
        fetcher.add_peer(2u32);
        let mut asked = Vec::new();
        while let Some(request) = fetcher.poll_request(now) {
            asked.push(request);
        }
        // Chunks of 512: 3 for the first file, 1 for the second; spread over both peers.
        assert_eq!(asked.len(), 4);
        assert!(asked.iter().any(|(p, _)| *p == 1) && asked.iter().any(|(p, _)| *p == 2));
        assert!(
            asked
                .iter()
                .all(|(_, r)| r.length <= 512 && r.base_layer == 0)
        );
        assert_eq!(asked[2].1.length, 6);
        for (peer, request) in &asked {
            let hashes = trees[&request.pieces_root].answer(request).unwrap();
            fetcher.handle_hashes(now, peer, request, &hashes).unwrap();
        }
        assert!(fetcher.is_complete());
        assert_eq!(fetcher.layer(1), Some(&layer_a[..]));
        assert_eq!(fetcher.layer(2), Some(&layer_b[..]));
        assert_eq!(fetcher.layer(9), None);
        let events: Vec<_> = std::iter::from_fn(|| fetcher.poll_event()).collect();
        assert!(events.contains(&LayerEvent::FileComplete(1)));
        assert!(events.contains(&LayerEvent::FileComplete(2)));
        assert_eq!(events.last(), Some(&LayerEvent::Complete));
    }

    #[test]
    fn files_with_one_root_share_one_fetch() {
        let (a, tree, layer) = file(20, 1);
        let twin = LayerFile { file: 7, ..a };
        let now = t0();
        let mut fetcher = LayerFetcher::new(PL, [a, twin], FetcherConfig::default());
        fetcher.add_peer(0u8);
        let (peer, request) = fetcher.poll_request(now).unwrap();
        assert_eq!(fetcher.poll_request(now), None, "one request for both");
        let hashes = tree.answer(&request).unwrap();
        fetcher
            .handle_hashes(now, &peer, &request, &hashes)
            .unwrap();
        let layers: Vec<(usize, &[Node])> = fetcher.layers().collect();
        assert_eq!(layers, [(1, &layer[..]), (7, &layer[..])]);
        let events: Vec<_> = std::iter::from_fn(|| fetcher.poll_event()).collect();
        assert_eq!(
            events,
            [
                LayerEvent::FileComplete(1),
                LayerEvent::FileComplete(7),
                LayerEvent::Complete
            ]
        );
    }

    #[test]
    fn small_files_need_nothing() {
        let small = LayerFile {
            file: 0,
            root: [5; 32],
            length: 10,
        };
        let mut fetcher: LayerFetcher<u8> =
            LayerFetcher::new(PL, [small], FetcherConfig::default());
        assert!(fetcher.is_complete());
        assert_eq!(fetcher.poll_event(), Some(LayerEvent::Complete));
        fetcher.add_peer(1);
        assert_eq!(fetcher.poll_request(t0()), None);
    }

    #[test]
    fn a_reject_moves_the_range_to_another_peer_then_back() {
        let (a, tree, _) = file(4, 1);
        let now = t0();
        let config = FetcherConfig::default();
        let mut fetcher = LayerFetcher::new(PL, [a], config);
        fetcher.add_peer("x");
        let (peer, request) = fetcher.poll_request(now).unwrap();
        assert_eq!(peer, "x");
        fetcher.handle_reject(now, &"x", &request);
        // Only "x" is known and it refused: nothing to ask until it has rested.
        assert_eq!(fetcher.poll_request(now), None);
        assert_eq!(fetcher.poll_timeout(), Some(now + config.retry_after));
        fetcher.add_peer("y");
        let (peer, again) = fetcher.poll_request(now).unwrap();
        assert_eq!((peer, again), ("y", request));
        fetcher.handle_reject(now, &"y", &request);
        let later = now + config.retry_after;
        fetcher.handle_timeout(later);
        let (_, third) = fetcher.poll_request(later).unwrap();
        let hashes = tree.answer(&third).unwrap();
        let peer = if fetcher.handle_hashes(later, &"x", &third, &hashes).is_ok() {
            "x"
        } else {
            "y"
        };
        if peer == "y" {
            fetcher.handle_hashes(later, &"y", &third, &hashes).unwrap();
        }
        assert!(fetcher.is_complete());
    }

    #[test]
    fn a_timeout_moves_the_range_and_a_late_answer_counts() {
        let (a, tree, layer) = file(4, 1);
        let now = t0();
        let config = FetcherConfig::default();
        let mut fetcher = LayerFetcher::new(PL, [a], config);
        fetcher.add_peer(1u8);
        fetcher.add_peer(2u8);
        let (first, request) = fetcher.poll_request(now).unwrap();
        assert_eq!(fetcher.poll_request(now), None);
        let deadline = fetcher.poll_timeout().unwrap();
        assert_eq!(deadline, now + config.request_timeout);
        fetcher.handle_timeout(deadline);
        let (second, again) = fetcher.poll_request(deadline).unwrap();
        assert_ne!(first, second);
        assert_eq!(again, request);
        // The slow peer answers after all: taken, and the other answer is then harmless.
        let hashes = tree.answer(&request).unwrap();
        fetcher
            .handle_hashes(deadline, &first, &request, &hashes)
            .unwrap();
        assert_eq!(fetcher.layer(1), Some(&layer[..]));
        fetcher
            .handle_hashes(deadline, &second, &request, &hashes)
            .unwrap();
        assert!(fetcher.is_complete());
    }

    #[test]
    fn liars_are_struck_then_banned_and_an_honest_peer_finishes() {
        let (a, tree, layer) = file(600, 1);
        let now = t0();
        let config = FetcherConfig::default();
        let mut fetcher = LayerFetcher::new(PL, [a], config);
        fetcher.add_peer("liar");
        // Unsolicited: nothing was asked of it yet.
        let bogus = range(a.root, 0, 0, 512, 9);
        let hashes = tree.answer(&bogus).unwrap();
        assert_eq!(
            fetcher.handle_hashes(now, &"liar", &bogus, &hashes),
            Err(FetchError::Unsolicited)
        );
        // Wrong hashes.
        let (_, request) = fetcher.poll_request(now).unwrap();
        let mut wrong = tree.answer(&request).unwrap();
        wrong[3][0] ^= 1;
        assert_eq!(
            fetcher.handle_hashes(now, &"liar", &request, &wrong),
            Err(FetchError::WrongHashes)
        );
        // Wrong count.
        let (_, request) = fetcher.poll_request(now).unwrap();
        let mut short = tree.answer(&request).unwrap();
        short.pop();
        short.pop();
        assert!(matches!(
            fetcher.handle_hashes(now, &"liar", &request, &short),
            Err(FetchError::WrongCount { .. })
        ));
        assert_eq!(fetcher.poll_event(), Some(LayerEvent::PeerBanned("liar")));
        // Banned: not asked again, not taken back.
        fetcher.add_peer("liar");
        assert_eq!(
            fetcher.handle_hashes(now, &"liar", &request, &short),
            Err(FetchError::UnknownPeer)
        );
        fetcher.add_peer("honest");
        while let Some((peer, request)) = fetcher.poll_request(now) {
            assert_eq!(peer, "honest");
            let hashes = tree.answer(&request).unwrap();
            fetcher
                .handle_hashes(now, &peer, &request, &hashes)
                .unwrap();
        }
        assert_eq!(fetcher.layer(1), Some(&layer[..]));
    }

    #[test]
    fn a_lone_last_piece_takes_either_proof_length() {
        // 513 pieces: the last chunk is one piece at an even index.
        let (a, tree, layer) = file(513, 1);
        let now = t0();
        for drop_sibling in [false, true] {
            let mut fetcher = LayerFetcher::new(PL, [a], FetcherConfig::default());
            fetcher.add_peer(0u8);
            while let Some((peer, request)) = fetcher.poll_request(now) {
                let mut hashes = tree.answer(&request).unwrap();
                if drop_sibling && request.length == 1 {
                    // As libtorrent sends it: without the lone node's sibling.
                    hashes.remove(1);
                }
                fetcher
                    .handle_hashes(now, &peer, &request, &hashes)
                    .unwrap();
            }
            assert_eq!(fetcher.layer(1), Some(&layer[..]));
        }
    }

    #[test]
    fn a_reject_or_answer_for_another_range_is_not_taken() {
        let (a, tree, _) = file(8, 1);
        let now = t0();
        let mut fetcher = LayerFetcher::new(PL, [a], FetcherConfig::default());
        fetcher.add_peer(0u8);
        let (_, request) = fetcher.poll_request(now).unwrap();
        let mut other = request;
        other.proof_layers = 0;
        fetcher.handle_reject(now, &0, &other);
        assert_eq!(fetcher.poll_request(now), None);
        let hashes = tree.answer(&other).unwrap();
        assert_eq!(
            fetcher.handle_hashes(now, &0, &other, &hashes),
            Err(FetchError::Unsolicited)
        );
        let hashes = tree.answer(&request).unwrap();
        fetcher.handle_hashes(now, &0, &request, &hashes).unwrap();
        assert!(fetcher.is_complete());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Honest answers always fill the layer; an answer with any one bit flipped is
            /// always refused.
            #[test]
            fn honest_answers_pass_and_any_flipped_bit_fails(
                pieces in 2usize..2100,
                per_log in 1u32..11,
                flip in any::<(usize, usize, u8)>(),
            ) {
                let (a, tree, layer) = file(pieces, 1);
                let config = FetcherConfig {
                    hashes_per_request: 1 << per_log,
                    requests_per_peer: usize::MAX,
                    ..FetcherConfig::default()
                };
                let now = t0();
                let mut fetcher = LayerFetcher::new(PL, [a], config);
                fetcher.add_peer(0u8);
                fetcher.add_peer(1u8);
                let mut first = true;
                while let Some((peer, request)) = fetcher.poll_request(now) {
                    let hashes = tree.answer(&request).unwrap();
                    if first {
                        first = false;
                        let mut bad = hashes.clone();
                        let at = flip.0 % bad.len();
                        bad[at][flip.1 % 32] ^= 1 << (flip.2 % 8);
                        prop_assert_eq!(
                            fetcher.handle_hashes(now, &peer, &request, &bad),
                            Err(FetchError::WrongHashes)
                        );
                        continue;
                    }
                    fetcher.handle_hashes(now, &peer, &request, &hashes).unwrap();
                }
                // The range refused from one peer is taken from the other.
                prop_assert!(fetcher.is_complete());
                prop_assert_eq!(fetcher.layer(1), Some(&layer[..]));
            }
        }
    }
}
