//! The piece picker: which blocks to request from which peer, for one torrent.
//!
//! [`PiecePicker`] is sans-IO: it never touches sockets, files or the clock. The session engine
//! tells it what happens ([`peer_bitfield`](PiecePicker::peer_bitfield),
//! [`peer_have`](PiecePicker::peer_have), [`block_received`](PiecePicker::block_received),
//! [`piece_verified`](PiecePicker::piece_verified), ...) and asks it what to request next with
//! [`pick_blocks`](PiecePicker::pick_blocks), passing the current time in.
//!
//! Order of picks for a peer:
//! 1. time-critical pieces (streaming deadlines), earliest deadline first;
//! 2. pieces already partially downloaded, so that few pieces are in flight at once;
//! 3. pieces the peer suggested (BEP 6 `suggest piece`);
//! 4. rarest first: higher priority before lower, then fewer peers having the piece, ties broken
//!    at random (a small seeded generator inside; no global randomness).
//!
//! Pieces of priority 0 are never requested. A block requested from one peer is not handed out
//! again, except in *endgame* (every missing block some connected peer has is requested) and for time-critical
//! pieces whose deadline has passed: then a block may be requested from up to
//! [`MAX_REQUESTERS`] peers, and [`block_received`](PiecePicker::block_received) lists the
//! cancels to send to the others.
//!
//! ```
//! use webtorrent::picker::{PeerKey, PiecePicker};
//! use std::time::Instant;
//!
//! // Three pieces of 32 KiB (two blocks each), the last one 20 000 bytes.
//! let mut picker = PiecePicker::uniform(32 * 1024, 2 * 32 * 1024 + 20_000)?.with_seed(7);
//! let (a, b) = (PeerKey(1), PeerKey(2));
//! picker.peer_have_all(a);
//! picker.peer_have(b, 2)?;
//!
//! // Piece 2 is the most common (two peers have it): the rarer pieces 0 and 1 come first.
//! let blocks = picker.pick_blocks(a, 4, Instant::now());
//! let mut pieces: Vec<u32> = blocks.iter().map(|b| b.piece).collect();
//! pieces.sort();
//! assert_eq!(pieces, [0, 0, 1, 1]);
//! for block in blocks {
//!     let received = picker.block_received(a, block)?;
//!     if received.piece_complete {
//!         // The engine hashes the piece, then reports the result.
//!         picker.piece_verified(block.piece)?;
//!     }
//! }
//! assert_eq!(picker.remaining_bytes(), 20_000);
//! # Ok::<(), webtorrent::picker::PickerError>(())
//! ```

mod bits;
mod readahead;
#[cfg(test)]
mod tests;

pub use readahead::{ASSUMED_RATE, MAX_WINDOW, MIN_WINDOW, ReadAhead, StreamId, WINDOW_SECONDS};

use crate::rng::SplitMix64;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Range;
use std::time::Instant;

use webtorrent_types::{BLOCK_SIZE, BlockRef, PieceIndex};

use bits::PieceBits;

/// How many peers a block may be requested from at once in endgame or for an overdue
/// time-critical piece.
pub const MAX_REQUESTERS: usize = 2;

/// The highest piece priority; 0 means "skip", [`DEFAULT_PRIORITY`] is the default.
pub const MAX_PRIORITY: u8 = 7;

/// The priority every piece starts with (libtorrent's default too). A BEP 53 selection maps
/// to it: selected files keep 4, the others get 0.
pub const DEFAULT_PRIORITY: u8 = 4;

/// How many suggested pieces are remembered per peer; older suggestions are dropped.
const MAX_SUGGESTIONS: usize = 16;

/// The engine's name for a connected peer: any number unique among live connections (a slab
/// index, a connection counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerKey(pub u64);

/// A request the engine should cancel: `peer` was asked for `block`, which is no longer needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cancel {
    /// The peer the block was requested from.
    pub peer: PeerKey,
    /// The block to cancel.
    pub block: BlockRef,
}

/// What [`PiecePicker::block_received`] learnt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// Whether the block was new. `false` for a block already received (an endgame duplicate
    /// that crossed a cancel) or of a piece already complete: the data can be dropped.
    pub new: bool,
    /// Whether this block completed its piece: hash it, then call
    /// [`PiecePicker::piece_verified`] or [`PiecePicker::piece_failed`].
    pub piece_complete: bool,
    /// Requests of the same block from other peers, to cancel.
    pub cancels: Vec<Cancel>,
}

/// The state of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockState {
    /// Not requested from anyone.
    Free,
    /// Requested from this many peers (at most [`MAX_REQUESTERS`]).
    Requested(usize),
    /// Data received, not yet written.
    Received,
    /// Data received and written to storage ([`PiecePicker::block_written`]).
    Written,
    /// Its piece passed the hash check.
    Verified,
}

/// The state of one piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PieceState {
    /// No block requested or received.
    Missing,
    /// Some blocks requested or received.
    Downloading,
    /// Every block received; waiting for the hash check.
    Complete,
    /// Hash checked: we have it.
    Verified,
}

/// Errors of the picker. A peer's bad input (an unknown block) is reported, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickerError {
    /// A piece length of 0, or a torrent of more than `u32::MAX` pieces.
    #[error("invalid torrent geometry: piece length {piece_length}, length {total_length}")]
    InvalidGeometry {
        /// The piece length given.
        piece_length: u32,
        /// The torrent length given.
        total_length: u64,
    },
    /// A piece index beyond the torrent.
    #[error("piece {piece} out of range (torrent has {pieces} pieces)")]
    PieceOutOfRange {
        /// The index given.
        piece: PieceIndex,
        /// The number of pieces of the torrent.
        pieces: u32,
    },
    /// A block that is not one of the 16 KiB blocks the pieces are split into.
    #[error("not a block of the torrent: piece {} offset {} length {}", .0.piece, .0.offset, .0.length)]
    InvalidBlock(BlockRef),
    /// A priority above [`MAX_PRIORITY`].
    #[error("priority {0} above {MAX_PRIORITY}")]
    InvalidPriority(u8),
    /// A bitfield whose length does not match the number of pieces.
    #[error("bitfield of {actual} bytes, expected {expected}")]
    BitfieldLength {
        /// Bytes expected: the piece count divided by 8, rounded up.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The piece is not in the state the call needs (e.g. failing a piece not complete).
    #[error("piece {piece} is {state:?}, not in the state the call needs")]
    WrongState {
        /// The piece.
        piece: PieceIndex,
        /// Its state.
        state: PieceState,
    },
    /// [`PiecePicker::block_written`] on a block that was not received.
    #[error("block not received: piece {} offset {} length {}", .0.piece, .0.offset, .0.length)]
    NotReceived(BlockRef),
}

/// Piece sizes: one length for all but a shorter last piece, or one length each (v2 torrents,
/// whose pieces end at file boundaries).
#[derive(Debug, Clone)]
enum Sizes {
    Uniform { length: u32, count: u32, last: u32 },
    Each(Vec<u32>),
}

impl Sizes {
    fn count(&self) -> u32 {
        match self {
            Self::Uniform { count, .. } => *count,
            // Checked at construction to fit in u32.
            Self::Each(v) => v.len() as u32,
        }
    }

    /// Size of an in-range piece.
    fn size(&self, piece: PieceIndex) -> u32 {
        match self {
            Self::Uniform {
                length,
                count,
                last,
            } => {
                if piece + 1 == *count {
                    *last
                } else {
                    *length
                }
            }
            Self::Each(v) => v[piece as usize],
        }
    }
}

/// What a peer has.
#[derive(Debug, Clone)]
enum Has {
    /// A seed: counted once in `seeds`, not in each piece's availability.
    All,
    Some(PieceBits),
}

#[derive(Debug, Clone, Default)]
struct Peer {
    has: Option<Has>,
    requests: BTreeSet<BlockRef>,
    suggested: VecDeque<PieceIndex>,
}

impl Peer {
    fn has(&self, piece: PieceIndex) -> bool {
        match &self.has {
            Some(Has::All) => true,
            Some(Has::Some(bits)) => bits.get(piece),
            None => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Missing,
    Downloading,
    Complete,
    Verified,
}

/// Per-piece bookkeeping, kept small: 12 bytes a piece.
#[derive(Debug, Clone, Copy)]
struct PieceInfo {
    /// Peers that have the piece, seeds not counted.
    avail: u32,
    /// Index in its availability bucket; meaningful only while in one.
    slot: u32,
    priority: u8,
    status: Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BState {
    Free,
    Requested,
    Received,
    Written,
}

#[derive(Debug, Clone)]
struct Block {
    state: BState,
    requesters: Vec<PeerKey>,
    contributor: Option<PeerKey>,
}

/// A piece being downloaded or waiting for its hash check.
#[derive(Debug, Clone)]
struct Partial {
    blocks: Vec<Block>,
    free: u32,
    received: u32,
}

/// Chooses blocks to request for one torrent; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct PiecePicker {
    sizes: Sizes,
    pieces: Vec<PieceInfo>,
    /// Pieces that may be picked (priority > 0, missing or downloading), grouped by sort key:
    /// priority tier in the high half, availability in the low half. Each group is kept in
    /// random order.
    buckets: BTreeMap<u64, Vec<PieceIndex>>,
    bucketed: u32,
    partials: BTreeMap<PieceIndex, Partial>,
    peers: HashMap<PeerKey, Peer>,
    seeds: u32,
    deadlines: BTreeSet<(Instant, PieceIndex)>,
    deadline_of: HashMap<PieceIndex, Instant>,
    /// Free blocks of wanted (priority > 0), not yet complete pieces.
    free_blocks: u64,
    /// The part of `free_blocks` in pieces no connected peer but a seed has.
    free_unavailable: u64,
    wanted_bytes: u64,
    remaining_bytes: u64,
    verified_bytes: u64,
    rng: SplitMix64,
}

impl PiecePicker {
    /// A picker for a torrent of `total_length` bytes in pieces of `piece_length` bytes, the
    /// last one shorter (v1 and hybrid torrents). Every piece starts missing, at
    /// [`DEFAULT_PRIORITY`].
    pub fn uniform(piece_length: u32, total_length: u64) -> Result<Self, PickerError> {
        let bad = PickerError::InvalidGeometry {
            piece_length,
            total_length,
        };
        if piece_length == 0 {
            return Err(bad);
        }
        let count =
            u32::try_from(total_length.div_ceil(u64::from(piece_length))).map_err(|_| bad)?;
        let last = match total_length % u64::from(piece_length) {
            0 => piece_length,
            // Below piece_length, so it fits in u32.
            rest => rest as u32,
        };
        Ok(Self::build(Sizes::Uniform {
            length: piece_length,
            count,
            last,
        }))
    }

    /// A picker for pieces of the given sizes (v2 torrents, whose last piece of each file may
    /// be short). Every size must be above 0.
    pub fn from_sizes(sizes: Vec<u32>) -> Result<Self, PickerError> {
        let total: u64 = sizes.iter().map(|&s| u64::from(s)).sum();
        if u32::try_from(sizes.len()).is_err() || sizes.contains(&0) {
            return Err(PickerError::InvalidGeometry {
                piece_length: 0,
                total_length: total,
            });
        }
        Ok(Self::build(Sizes::Each(sizes)))
    }

    fn build(sizes: Sizes) -> Self {
        let count = sizes.count();
        let total: u64 = (0..count).map(|p| u64::from(sizes.size(p))).sum();
        let mut me = Self {
            pieces: vec![
                PieceInfo {
                    avail: 0,
                    slot: 0,
                    priority: DEFAULT_PRIORITY,
                    status: Status::Missing,
                };
                count as usize
            ],
            sizes,
            buckets: BTreeMap::new(),
            bucketed: 0,
            partials: BTreeMap::new(),
            peers: HashMap::new(),
            seeds: 0,
            deadlines: BTreeSet::new(),
            deadline_of: HashMap::new(),
            free_blocks: 0,
            free_unavailable: 0,
            wanted_bytes: total,
            remaining_bytes: total,
            verified_bytes: 0,
            rng: SplitMix64::new(0x5eed),
        };
        // Every piece starts with the same key: default priority, availability 0.
        let key = u64::from(MAX_PRIORITY - DEFAULT_PRIORITY) << 32;
        let mut all: Vec<PieceIndex> = (0..count).collect();
        for i in (1..all.len()).rev() {
            let j = me.rng.below(i + 1);
            all.swap(i, j);
        }
        for (slot, &p) in all.iter().enumerate() {
            me.pieces[p as usize].slot = slot as u32;
            me.free_blocks += u64::from(me.block_count(p));
        }
        me.free_unavailable = me.free_blocks;
        me.bucketed = count;
        if count > 0 {
            me.buckets.insert(key, all);
        }
        me
    }

    /// Seeds the tie-break generator (the default seed is fixed, so runs repeat).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = SplitMix64::new(seed);
        for bucket in self.buckets.values_mut() {
            for i in (1..bucket.len()).rev() {
                let j = self.rng.below(i + 1);
                bucket.swap(i, j);
            }
            for (slot, &p) in bucket.iter().enumerate() {
                self.pieces[p as usize].slot = slot as u32;
            }
        }
        self
    }

    // ----- geometry and queries -----

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.sizes.count()
    }

    /// Size of `piece` in bytes, `None` out of range.
    pub fn piece_size(&self, piece: PieceIndex) -> Option<u32> {
        (piece < self.piece_count()).then(|| self.sizes.size(piece))
    }

    fn block_count(&self, piece: PieceIndex) -> u32 {
        self.sizes.size(piece).div_ceil(BLOCK_SIZE)
    }

    fn block_ref(&self, piece: PieceIndex, index: u32) -> BlockRef {
        let offset = index * BLOCK_SIZE;
        BlockRef::new(
            piece,
            offset,
            BLOCK_SIZE.min(self.sizes.size(piece) - offset),
        )
    }

    /// The index of `block` within its piece, if it is exactly one of the piece's blocks.
    fn block_index(&self, block: BlockRef) -> Result<u32, PickerError> {
        let bad = PickerError::InvalidBlock(block);
        let size = self.piece_size(block.piece).ok_or(bad.clone())?;
        if !block.offset.is_multiple_of(BLOCK_SIZE) || !block.fits_in(size) {
            return Err(bad);
        }
        let index = block.offset / BLOCK_SIZE;
        if self.block_ref(block.piece, index).length != block.length {
            return Err(bad);
        }
        Ok(index)
    }

    fn check(&self, piece: PieceIndex) -> Result<(), PickerError> {
        if piece < self.piece_count() {
            Ok(())
        } else {
            Err(PickerError::PieceOutOfRange {
                piece,
                pieces: self.piece_count(),
            })
        }
    }

    /// The state of `piece`, `None` out of range.
    pub fn piece_state(&self, piece: PieceIndex) -> Option<PieceState> {
        self.pieces.get(piece as usize).map(|i| match i.status {
            Status::Missing => PieceState::Missing,
            Status::Downloading => PieceState::Downloading,
            Status::Complete => PieceState::Complete,
            Status::Verified => PieceState::Verified,
        })
    }

    /// The state of `block`, `None` if it is not a block of the torrent.
    pub fn block_state(&self, block: BlockRef) -> Option<BlockState> {
        let index = self.block_index(block).ok()?;
        let info = self.pieces[block.piece as usize];
        Some(match info.status {
            Status::Missing => BlockState::Free,
            Status::Verified => BlockState::Verified,
            Status::Downloading | Status::Complete => {
                // Downloading and complete pieces always have partial state.
                let b = &self.partials.get(&block.piece)?.blocks[index as usize];
                match b.state {
                    BState::Free => BlockState::Free,
                    BState::Requested => BlockState::Requested(b.requesters.len()),
                    BState::Received => BlockState::Received,
                    BState::Written => BlockState::Written,
                }
            }
        })
    }

    /// The peers `block` is requested from.
    pub fn requesters(&self, block: BlockRef) -> &[PeerKey] {
        match self.block_index(block) {
            Ok(i) => self
                .partials
                .get(&block.piece)
                .map_or(&[], |p| &p.blocks[i as usize].requesters),
            Err(_) => &[],
        }
    }

    /// The blocks requested from `peer` and not yet received, rejected or timed out.
    pub fn requests(&self, peer: PeerKey) -> impl Iterator<Item = BlockRef> + '_ {
        self.peers
            .get(&peer)
            .into_iter()
            .flat_map(|p| p.requests.iter().copied())
    }

    /// Whether we have (verified) `piece`.
    pub fn have(&self, piece: PieceIndex) -> bool {
        self.pieces
            .get(piece as usize)
            .is_some_and(|i| i.status == Status::Verified)
    }

    /// The priority of `piece`, `None` out of range.
    pub fn priority(&self, piece: PieceIndex) -> Option<u8> {
        self.pieces.get(piece as usize).map(|i| i.priority)
    }

    /// Blocks of `piece` neither requested nor received: all of a missing piece's, none
    /// of a complete or verified one's (0 out of range).
    pub fn free_blocks(&self, piece: PieceIndex) -> u32 {
        if piece >= self.piece_count() {
            return 0;
        }
        self.free_of(piece)
    }

    /// How many connected peers have `piece` (seeds included).
    pub fn availability(&self, piece: PieceIndex) -> u32 {
        self.pieces
            .get(piece as usize)
            .map_or(0, |i| i.avail + self.seeds)
    }

    /// Bytes of the pieces of priority above 0, verified or not.
    pub fn wanted_bytes(&self) -> u64 {
        self.wanted_bytes
    }

    /// Bytes of the pieces of priority above 0 not verified yet.
    pub fn remaining_bytes(&self) -> u64 {
        self.remaining_bytes
    }

    /// Bytes of verified pieces, whatever their priority.
    pub fn verified_bytes(&self) -> u64 {
        self.verified_bytes
    }

    /// Whether every wanted piece (priority above 0) is verified.
    pub fn is_complete(&self) -> bool {
        self.remaining_bytes == 0
    }

    /// Whether the download is in endgame: something is missing, but every missing block of a
    /// wanted piece that a connected peer has is requested or received. Pieces nobody has do
    /// not hold endgame off.
    pub fn in_endgame(&self) -> bool {
        let free = if self.seeds > 0 {
            self.free_blocks
        } else {
            self.free_blocks - self.free_unavailable
        };
        free == 0 && self.remaining_bytes > 0
    }

    /// Checks every internal invariant, panicking on the first broken one. For tests and
    /// fuzzing only.
    #[cfg(any(test, fuzzing))]
    #[doc(hidden)]
    pub fn check_consistency(&self) {
        let mut bucketed = 0;
        let (mut free, mut wanted, mut remaining, mut verified) = (0u64, 0u64, 0u64, 0u64);
        let mut free_unavailable = 0u64;
        for piece in 0..self.piece_count() {
            let info = self.pieces[piece as usize];
            let size = u64::from(self.sizes.size(piece));
            if Self::pickable(&info) {
                bucketed += 1;
                let bucket = &self.buckets[&self.key(piece)];
                assert_eq!(bucket[info.slot as usize], piece, "slot of piece {piece}");
            }
            if info.priority > 0 {
                wanted += size;
                free += u64::from(self.free_of(piece));
                if info.avail == 0 {
                    free_unavailable += u64::from(self.free_of(piece));
                }
                if info.status != Status::Verified {
                    remaining += size;
                }
            }
            if info.status == Status::Verified {
                verified += size;
            }
            let has_partial = self.partials.contains_key(&piece);
            assert_eq!(
                has_partial,
                matches!(info.status, Status::Downloading | Status::Complete),
                "partial state of piece {piece}"
            );
            let holders = self
                .peers
                .values()
                .filter(|p| matches!(&p.has, Some(Has::Some(b)) if b.get(piece)))
                .count();
            assert_eq!(
                info.avail as usize, holders,
                "availability of piece {piece}"
            );
        }
        assert_eq!(self.bucketed, bucketed);
        assert_eq!(self.free_unavailable, free_unavailable);
        assert_eq!(
            self.buckets.values().map(Vec::len).sum::<usize>(),
            bucketed as usize
        );
        assert_eq!(
            (
                self.free_blocks,
                self.wanted_bytes,
                self.remaining_bytes,
                self.verified_bytes
            ),
            (free, wanted, remaining, verified)
        );
        let seeds = self
            .peers
            .values()
            .filter(|p| matches!(p.has, Some(Has::All)))
            .count();
        assert_eq!(self.seeds as usize, seeds);
        let mut requested = 0;
        for (&piece, partial) in &self.partials {
            let n_free = partial
                .blocks
                .iter()
                .filter(|b| b.state == BState::Free)
                .count();
            assert_eq!(
                partial.free as usize, n_free,
                "free blocks of piece {piece}"
            );
            let n_received = partial
                .blocks
                .iter()
                .filter(|b| matches!(b.state, BState::Received | BState::Written))
                .count();
            assert_eq!(partial.received as usize, n_received);
            // Nothing requested or received any more turns a piece back to missing.
            assert!(
                (partial.free as usize) < partial.blocks.len(),
                "idle partial {piece}"
            );
            for (i, b) in partial.blocks.iter().enumerate() {
                assert_eq!(b.state == BState::Requested, !b.requesters.is_empty());
                assert!(b.requesters.len() <= MAX_REQUESTERS);
                let block = self.block_ref(piece, i as u32);
                for r in &b.requesters {
                    assert!(self.peers[r].requests.contains(&block), "{r:?} {block:?}");
                }
                requested += b.requesters.len();
            }
        }
        let listed: usize = self.peers.values().map(|p| p.requests.len()).sum();
        assert_eq!(listed, requested, "requests listed by peers and by blocks");
        for (t, piece) in &self.deadlines {
            assert_eq!(self.deadline_of.get(piece), Some(t));
        }
        assert_eq!(self.deadlines.len(), self.deadline_of.len());
    }

    // ----- bookkeeping helpers -----

    /// The sort key of a piece: priority tier first (higher priority sorts first), then
    /// availability without seeds.
    fn key(&self, piece: PieceIndex) -> u64 {
        let i = self.pieces[piece as usize];
        (u64::from(MAX_PRIORITY - i.priority) << 32) | u64::from(i.avail)
    }

    fn pickable(i: &PieceInfo) -> bool {
        i.priority > 0 && matches!(i.status, Status::Missing | Status::Downloading)
    }

    fn free_of(&self, piece: PieceIndex) -> u32 {
        match self.pieces[piece as usize].status {
            Status::Missing => self.block_count(piece),
            Status::Downloading => self.partials.get(&piece).map_or(0, |p| p.free),
            Status::Complete | Status::Verified => 0,
        }
    }

    /// Takes a piece out of the bucket and the counters, before its priority, status or
    /// availability changes. [`attach`](Self::attach) puts it back.
    fn detach(&mut self, piece: PieceIndex) {
        let info = self.pieces[piece as usize];
        if Self::pickable(&info) {
            let key = self.key(piece);
            let slot = info.slot as usize;
            // Pickable pieces are always in the bucket of their key.
            let bucket = self
                .buckets
                .get_mut(&key)
                .expect("pickable piece in its bucket");
            bucket.swap_remove(slot);
            if let Some(&moved) = bucket.get(slot) {
                self.pieces[moved as usize].slot = slot as u32;
            }
            if bucket.is_empty() {
                self.buckets.remove(&key);
            }
            self.bucketed -= 1;
        }
        if info.priority > 0 {
            let size = u64::from(self.sizes.size(piece));
            self.wanted_bytes -= size;
            if info.status != Status::Verified {
                self.remaining_bytes -= size;
            }
            let free = u64::from(self.free_of(piece));
            self.free_blocks -= free;
            if info.avail == 0 {
                self.free_unavailable -= free;
            }
        }
        if info.status == Status::Verified {
            self.verified_bytes -= u64::from(self.sizes.size(piece));
        }
    }

    fn attach(&mut self, piece: PieceIndex) {
        let info = self.pieces[piece as usize];
        if Self::pickable(&info) {
            let key = self.key(piece);
            let bucket = self.buckets.entry(key).or_default();
            bucket.push(piece);
            let last = bucket.len() - 1;
            let j = self.rng.below(bucket.len());
            bucket.swap(j, last);
            let (a, b) = (bucket[j], bucket[last]);
            self.pieces[a as usize].slot = j as u32;
            self.pieces[b as usize].slot = last as u32;
            self.bucketed += 1;
        }
        if info.priority > 0 {
            let size = u64::from(self.sizes.size(piece));
            self.wanted_bytes += size;
            if info.status != Status::Verified {
                self.remaining_bytes += size;
            }
            let free = u64::from(self.free_of(piece));
            self.free_blocks += free;
            if info.avail == 0 {
                self.free_unavailable += free;
            }
        }
        if info.status == Status::Verified {
            self.verified_bytes += u64::from(self.sizes.size(piece));
        }
    }

    fn add_avail(&mut self, piece: PieceIndex, up: bool) {
        let pickable = Self::pickable(&self.pieces[piece as usize]);
        if pickable {
            self.detach(piece);
        }
        let a = &mut self.pieces[piece as usize].avail;
        *a = if up {
            a.saturating_add(1)
        } else {
            a.saturating_sub(1)
        };
        if pickable {
            self.attach(piece);
        }
    }

    /// Moves a free block of a wanted piece out of (or back into) the free count.
    fn free_changed(&mut self, piece: PieceIndex, freed: bool) {
        let info = self.pieces[piece as usize];
        if info.priority > 0 {
            let unavailable = u64::from(info.avail == 0);
            if freed {
                self.free_blocks += 1;
                self.free_unavailable += unavailable;
            } else {
                self.free_blocks -= 1;
                self.free_unavailable -= unavailable;
            }
        }
    }

    fn start_partial(&mut self, piece: PieceIndex) {
        if self.pieces[piece as usize].status != Status::Missing {
            return;
        }
        let n = self.block_count(piece);
        self.partials.insert(
            piece,
            Partial {
                blocks: vec![
                    Block {
                        state: BState::Free,
                        requesters: Vec::new(),
                        contributor: None,
                    };
                    n as usize
                ],
                free: n,
                received: 0,
            },
        );
        // Missing and Downloading count the same in buckets and counters.
        self.pieces[piece as usize].status = Status::Downloading;
    }

    // ----- our pieces and priorities -----

    /// Marks `piece` as verified: we have it (from resume data, a recheck, or another source).
    /// Returns requests for it still outstanding, to cancel.
    pub fn piece_verified(&mut self, piece: PieceIndex) -> Result<Vec<Cancel>, PickerError> {
        self.check(piece)?;
        let mut cancels = Vec::new();
        if self.pieces[piece as usize].status == Status::Verified {
            return Ok(cancels);
        }
        self.detach(piece);
        if let Some(partial) = self.partials.remove(&piece) {
            for (i, b) in partial.blocks.iter().enumerate() {
                let block = self.block_ref(piece, i as u32);
                for &peer in &b.requesters {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.requests.remove(&block);
                    }
                    cancels.push(Cancel { peer, block });
                }
            }
        }
        self.pieces[piece as usize].status = Status::Verified;
        self.attach(piece);
        if let Some(t) = self.deadline_of.remove(&piece) {
            self.deadlines.remove(&(t, piece));
        }
        Ok(cancels)
    }

    /// Reports that a complete piece failed its hash check: every block goes back to free, and
    /// the peers that sent its blocks are returned (sorted, each once) so that the engine can
    /// distrust or ban them.
    pub fn piece_failed(&mut self, piece: PieceIndex) -> Result<Vec<PeerKey>, PickerError> {
        self.check(piece)?;
        let status = self.pieces[piece as usize].status;
        if status != Status::Complete {
            return Err(PickerError::WrongState {
                piece,
                state: self.piece_state(piece).unwrap_or(PieceState::Missing),
            });
        }
        self.detach(piece);
        let partial = self.partials.remove(&piece);
        let mut contributors: Vec<PeerKey> = partial
            .iter()
            .flat_map(|p| p.blocks.iter().filter_map(|b| b.contributor))
            .collect();
        contributors.sort_unstable();
        contributors.dedup();
        self.pieces[piece as usize].status = Status::Missing;
        self.attach(piece);
        Ok(contributors)
    }

    /// Sets the priority of `piece`: 0 skips it, 1 to [`MAX_PRIORITY`] order it (higher first).
    pub fn set_priority(&mut self, piece: PieceIndex, priority: u8) -> Result<(), PickerError> {
        self.check(piece)?;
        if priority > MAX_PRIORITY {
            return Err(PickerError::InvalidPriority(priority));
        }
        if self.pieces[piece as usize].priority != priority {
            self.detach(piece);
            self.pieces[piece as usize].priority = priority;
            self.attach(piece);
        }
        Ok(())
    }

    /// Sets piece priorities from file priorities: each file is the range of pieces it touches
    /// (`Info::file_pieces` of the metainfo crate) and its priority. A piece gets the highest
    /// priority among the files touching it, so a piece shared with a wanted file is fetched;
    /// pieces no listed file touches keep their priority.
    pub fn set_file_priorities(
        &mut self,
        files: &[(Range<PieceIndex>, u8)],
    ) -> Result<(), PickerError> {
        let mut best: BTreeMap<PieceIndex, u8> = BTreeMap::new();
        for (range, prio) in files {
            if *prio > MAX_PRIORITY {
                return Err(PickerError::InvalidPriority(*prio));
            }
            if range.end > self.piece_count() {
                return Err(PickerError::PieceOutOfRange {
                    piece: range.end.saturating_sub(1),
                    pieces: self.piece_count(),
                });
            }
            for p in range.clone() {
                let e = best.entry(p).or_insert(0);
                *e = (*e).max(*prio);
            }
        }
        for (p, prio) in best {
            self.set_priority(p, prio)?;
        }
        Ok(())
    }

    /// Makes `piece` time-critical: it is picked before any non-critical piece, earliest
    /// deadline first. Once `now` passes the deadline (see
    /// [`pick_blocks`](Self::pick_blocks)), its blocks may be requested from a second peer.
    /// Ignored for verified pieces; pieces of priority 0 are still never requested.
    pub fn set_deadline(
        &mut self,
        piece: PieceIndex,
        deadline: Instant,
    ) -> Result<(), PickerError> {
        self.check(piece)?;
        if self.have(piece) {
            return Ok(());
        }
        if let Some(old) = self.deadline_of.insert(piece, deadline) {
            self.deadlines.remove(&(old, piece));
        }
        self.deadlines.insert((deadline, piece));
        Ok(())
    }

    /// Removes the deadline of `piece`, if any.
    pub fn clear_deadline(&mut self, piece: PieceIndex) {
        if let Some(old) = self.deadline_of.remove(&piece) {
            self.deadlines.remove(&(old, piece));
        }
    }

    /// Removes every deadline (e.g. the streaming reader seeked elsewhere).
    pub fn clear_deadlines(&mut self) {
        self.deadlines.clear();
        self.deadline_of.clear();
    }

    // ----- what peers have -----

    fn forget_has(&mut self, peer: PeerKey) {
        let Some(has) = self.peers.get_mut(&peer).and_then(|p| p.has.take()) else {
            return;
        };
        match has {
            Has::All => self.seeds -= 1,
            Has::Some(bits) => {
                for piece in bits.iter() {
                    self.add_avail(piece, false);
                }
            }
        }
    }

    /// `peer` sent a bitfield, in wire layout (high bit of the first byte is piece 0). Replaces
    /// what the peer was known to have. Spare bits at the end are ignored.
    pub fn peer_bitfield(&mut self, peer: PeerKey, bitfield: &[u8]) -> Result<(), PickerError> {
        let count = self.piece_count();
        let expected = count.div_ceil(8) as usize;
        if bitfield.len() != expected {
            return Err(PickerError::BitfieldLength {
                expected,
                actual: bitfield.len(),
            });
        }
        self.forget_has(peer);
        let mut bits = PieceBits::new(count);
        for (i, &byte) in bitfield.iter().enumerate() {
            let mut rest = byte;
            while rest != 0 {
                let bit = rest.leading_zeros();
                rest &= !(0x80 >> bit);
                let piece = i as u32 * 8 + bit;
                if piece < count {
                    bits.insert(piece);
                    self.add_avail(piece, true);
                }
            }
        }
        self.peers.entry(peer).or_default().has = Some(Has::Some(bits));
        Ok(())
    }

    /// `peer` has every piece (BEP 6 `have all`, or a full bitfield).
    pub fn peer_have_all(&mut self, peer: PeerKey) {
        self.forget_has(peer);
        self.seeds += 1;
        self.peers.entry(peer).or_default().has = Some(Has::All);
    }

    /// `peer` has no piece (BEP 6 `have none`).
    pub fn peer_have_none(&mut self, peer: PeerKey) {
        self.forget_has(peer);
        self.peers.entry(peer).or_default().has = Some(Has::Some(PieceBits::new(0)));
    }

    /// `peer` announced `piece` (`have`).
    pub fn peer_have(&mut self, peer: PeerKey, piece: PieceIndex) -> Result<(), PickerError> {
        self.check(piece)?;
        let count = self.piece_count();
        let p = self.peers.entry(peer).or_default();
        let added = match &mut p.has {
            Some(Has::All) => false,
            Some(Has::Some(bits)) => {
                // `have none` stores an empty set without room: grow it on first use.
                bits.grow(count);
                bits.insert(piece)
            }
            None => {
                let mut bits = PieceBits::new(count);
                bits.insert(piece);
                p.has = Some(Has::Some(bits));
                true
            }
        };
        if added {
            self.add_avail(piece, true);
        }
        Ok(())
    }

    /// `peer` no longer has `piece` (the `lt_donthave` extension).
    pub fn peer_dont_have(&mut self, peer: PeerKey, piece: PieceIndex) -> Result<(), PickerError> {
        self.check(piece)?;
        let count = self.piece_count();
        let Some(p) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        match &mut p.has {
            Some(Has::All) => {
                // A seed becomes a peer with every piece but one.
                let mut bits = PieceBits::new(count);
                for q in (0..count).filter(|&q| q != piece) {
                    bits.insert(q);
                }
                p.has = Some(Has::Some(bits));
                self.seeds -= 1;
                for q in (0..count).filter(|&q| q != piece) {
                    self.add_avail(q, true);
                }
            }
            Some(Has::Some(bits)) => {
                let removed = bits.remove(piece);
                if removed {
                    self.add_avail(piece, false);
                }
            }
            None => {}
        }
        Ok(())
    }

    /// `peer` suggested `piece` (BEP 6 `suggest piece`): it is preferred over rarest-first
    /// picks for that peer.
    pub fn peer_suggest(&mut self, peer: PeerKey, piece: PieceIndex) -> Result<(), PickerError> {
        self.check(piece)?;
        let p = self.peers.entry(peer).or_default();
        if !p.suggested.contains(&piece) {
            if p.suggested.len() == MAX_SUGGESTIONS {
                p.suggested.pop_front();
            }
            p.suggested.push_back(piece);
        }
        Ok(())
    }

    /// `peer` disconnected: its requests go back to the pool and its pieces no longer count
    /// as available. Returns the requests it had outstanding.
    pub fn peer_disconnected(&mut self, peer: PeerKey) -> Vec<BlockRef> {
        let dropped = self.drop_requests(peer);
        self.forget_has(peer);
        self.peers.remove(&peer);
        dropped
    }

    /// Every request to `peer` goes back to the pool (e.g. it choked us without the fast
    /// extension, which drops requests silently). Returns them.
    pub fn drop_requests(&mut self, peer: PeerKey) -> Vec<BlockRef> {
        let requests: Vec<BlockRef> = self
            .peers
            .get_mut(&peer)
            .map(|p| std::mem::take(&mut p.requests).into_iter().collect())
            .unwrap_or_default();
        for &block in &requests {
            self.unrequest(peer, block);
        }
        requests
    }

    /// `peer` rejected the request of `block` (BEP 6 `reject request`). Returns whether it
    /// was outstanding.
    pub fn request_rejected(&mut self, peer: PeerKey, block: BlockRef) -> bool {
        let outstanding = self
            .peers
            .get_mut(&peer)
            .is_some_and(|p| p.requests.remove(&block));
        if outstanding {
            self.unrequest(peer, block);
        }
        outstanding
    }

    /// The request of `block` to `peer` timed out: the block goes back to the pool (if the
    /// data still arrives, it is accepted). Returns whether it was outstanding.
    pub fn request_timed_out(&mut self, peer: PeerKey, block: BlockRef) -> bool {
        self.request_rejected(peer, block)
    }

    /// Removes `peer` from the requesters of `block` (already removed from the peer's set).
    fn unrequest(&mut self, peer: PeerKey, block: BlockRef) {
        let Ok(index) = self.block_index(block) else {
            return;
        };
        let Some(partial) = self.partials.get_mut(&block.piece) else {
            return;
        };
        let b = &mut partial.blocks[index as usize];
        b.requesters.retain(|&r| r != peer);
        if b.state == BState::Requested && b.requesters.is_empty() {
            b.state = BState::Free;
            partial.free += 1;
            let untouched = partial.free as usize == partial.blocks.len();
            self.free_changed(block.piece, true);
            if untouched {
                // Nothing requested or received any more: back to missing, which counts the
                // same in buckets and counters.
                self.partials.remove(&block.piece);
                self.pieces[block.piece as usize].status = Status::Missing;
            }
        }
    }

    // ----- blocks -----

    /// `peer` sent the data of `block`. Accepts blocks that were not requested from it (a
    /// late answer after a timeout); a block already received is reported as not new.
    pub fn block_received(
        &mut self,
        peer: PeerKey,
        block: BlockRef,
    ) -> Result<Received, PickerError> {
        let index = self.block_index(block)?;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.requests.remove(&block);
        }
        let mut out = Received::default();
        match self.pieces[block.piece as usize].status {
            Status::Complete | Status::Verified => return Ok(out),
            Status::Missing => self.start_partial(block.piece),
            Status::Downloading => {}
        }
        let Some(partial) = self.partials.get_mut(&block.piece) else {
            return Ok(out); // Downloading pieces always have partial state.
        };
        let b = &mut partial.blocks[index as usize];
        let was_free = match b.state {
            BState::Received | BState::Written => {
                b.requesters.retain(|&r| r != peer);
                return Ok(out);
            }
            BState::Free => true,
            BState::Requested => false,
        };
        b.state = BState::Received;
        b.contributor = Some(peer);
        for other in std::mem::take(&mut b.requesters) {
            if other != peer {
                out.cancels.push(Cancel { peer: other, block });
            }
        }
        partial.received += 1;
        if was_free {
            partial.free -= 1;
        }
        let complete = partial.received == partial.blocks.len() as u32;
        if was_free {
            self.free_changed(block.piece, false);
        }
        for c in &out.cancels {
            if let Some(p) = self.peers.get_mut(&c.peer) {
                p.requests.remove(&block);
            }
        }
        if complete {
            self.detach(block.piece);
            self.pieces[block.piece as usize].status = Status::Complete;
            self.attach(block.piece);
        }
        out.new = true;
        out.piece_complete = complete;
        Ok(out)
    }

    /// The data of `block` was written to storage.
    pub fn block_written(&mut self, block: BlockRef) -> Result<(), PickerError> {
        let index = self.block_index(block)?;
        let b = self
            .partials
            .get_mut(&block.piece)
            .map(|p| &mut p.blocks[index as usize])
            .filter(|b| matches!(b.state, BState::Received | BState::Written))
            .ok_or(PickerError::NotReceived(block))?;
        b.state = BState::Written;
        Ok(())
    }

    // ----- picking -----

    /// Up to `max` blocks to request from `peer`, recorded as requested from it. `now` decides
    /// which time-critical pieces are overdue. Empty for a peer with no known pieces.
    pub fn pick_blocks(&mut self, peer: PeerKey, max: usize, now: Instant) -> Vec<BlockRef> {
        self.pick(peer, max, now, None)
    }

    /// Like [`pick_blocks`](Self::pick_blocks), restricted to `pieces`: the allowed-fast set
    /// of a peer that chokes us (BEP 6).
    pub fn pick_allowed_fast(
        &mut self,
        peer: PeerKey,
        pieces: &[PieceIndex],
        max: usize,
        now: Instant,
    ) -> Vec<BlockRef> {
        self.pick(peer, max, now, Some(pieces))
    }

    fn pick(
        &mut self,
        peer: PeerKey,
        max: usize,
        now: Instant,
        only: Option<&[PieceIndex]>,
    ) -> Vec<BlockRef> {
        let mut out = Vec::new();
        let Some(p) = self.peers.get(&peer) else {
            return out;
        };
        let eligible = |me: &Self, piece: PieceIndex| me.eligible(p, piece, only);
        let endgame = self.in_endgame();

        // 1. Time-critical pieces, earliest first; overdue ones may get second requesters.
        let critical: Vec<(bool, PieceIndex)> = self
            .deadlines
            .iter()
            .filter(|&&(_, piece)| eligible(self, piece))
            .map(|&(t, piece)| (t <= now, piece))
            .collect();
        // 2. Pieces in progress.
        let partial: Vec<PieceIndex> = self
            .partials
            .keys()
            .copied()
            .filter(|&piece| {
                eligible(self, piece) && self.partials.get(&piece).is_some_and(|x| x.free > 0)
            })
            .collect();
        // 3. Suggestions.
        let suggested: Vec<PieceIndex> = p
            .suggested
            .iter()
            .copied()
            .filter(|&piece| eligible(self, piece))
            .collect();
        let seed = matches!(p.has, Some(Has::All));
        let peer_count = match &p.has {
            Some(Has::Some(bits)) => bits.count(),
            _ => self.piece_count(),
        };

        for &(overdue, piece) in &critical {
            self.take_blocks(peer, piece, max, overdue || endgame, &mut out);
        }
        for piece in partial.into_iter().chain(suggested) {
            if out.len() >= max {
                break;
            }
            self.take_blocks(peer, piece, max, false, &mut out);
        }
        // 4. Rarest first.
        if out.len() < max {
            let rarest = self.rarest(peer, max - out.len(), only, seed, peer_count);
            for piece in rarest {
                self.take_blocks(peer, piece, max, false, &mut out);
            }
        }
        // 5. Endgame: blocks others are already fetching.
        if endgame && out.len() < max {
            let busy: Vec<PieceIndex> = match self.peers.get(&peer) {
                Some(p) => self
                    .partials
                    .keys()
                    .copied()
                    .filter(|&piece| self.eligible(p, piece, only))
                    .collect(),
                None => Vec::new(),
            };
            for piece in busy {
                if out.len() >= max {
                    break;
                }
                self.take_blocks(peer, piece, max, true, &mut out);
            }
        }
        out
    }

    /// Whether `piece` may be picked from `peer` at all.
    fn eligible(&self, peer: &Peer, piece: PieceIndex, only: Option<&[PieceIndex]>) -> bool {
        self.pieces.get(piece as usize).is_some_and(Self::pickable)
            && peer.has(piece)
            && only.is_none_or(|o| o.contains(&piece))
    }

    /// Pieces the peer has, in rarest-first order, with at least `need` free blocks in all
    /// (fewer if there are not enough).
    fn rarest(
        &self,
        peer: PeerKey,
        need: usize,
        only: Option<&[PieceIndex]>,
        seed: bool,
        peer_count: u32,
    ) -> Vec<PieceIndex> {
        let Some(p) = self.peers.get(&peer) else {
            return Vec::new();
        };
        // `only` may come from a peer (its allowed-fast set): indices are checked here.
        let usable = |piece: PieceIndex| {
            self.pieces.get(piece as usize).is_some_and(Self::pickable) && self.free_of(piece) > 0
        };
        let mut picked = Vec::new();
        let mut got = 0usize;
        let by_candidates = |candidates: &mut dyn Iterator<Item = PieceIndex>| {
            let mut c: Vec<(u64, u32, PieceIndex)> = candidates
                .filter(|&piece| usable(piece))
                .map(|piece| (self.key(piece), self.pieces[piece as usize].slot, piece))
                .collect();
            // Each piece has a free block, so the `need` first ones are enough: select them
            // in linear time, then sort only those.
            if need > 0 && c.len() > need {
                c.select_nth_unstable(need - 1);
                c.truncate(need);
            }
            c.sort_unstable();
            c.into_iter().map(|(_, _, piece)| piece).collect::<Vec<_>>()
        };
        let ordered = match (only, &p.has) {
            (Some(only), _) => {
                by_candidates(&mut only.iter().copied().filter(|&piece| p.has(piece)))
            }
            // A peer with a fraction f of the pieces costs about f·n to list, and a scan of
            // the buckets about need/f pieces: list its pieces when f²·n < need, with a margin
            // as the rarest buckets hold fewer of a peer's pieces than average.
            (None, Some(Has::Some(bits)))
                if u64::from(peer_count).pow(2)
                    < 4 * need as u64 * u64::from(self.bucketed.max(1)) =>
            {
                by_candidates(&mut bits.iter())
            }
            _ => {
                for (&key, bucket) in &self.buckets {
                    // Availability 0 (seeds aside): no peer but a seed has these.
                    if key & 0xffff_ffff == 0 && !seed {
                        continue;
                    }
                    for &piece in bucket {
                        if p.has(piece) && usable(piece) {
                            picked.push(piece);
                            got += self.free_of(piece) as usize;
                            if got >= need {
                                return picked;
                            }
                        }
                    }
                }
                return picked;
            }
        };
        for piece in ordered {
            picked.push(piece);
            got += self.free_of(piece) as usize;
            if got >= need {
                break;
            }
        }
        picked
    }

    /// Requests free blocks of `piece` from `peer` (and, if `busy`, blocks requested from
    /// fewer than [`MAX_REQUESTERS`] other peers) until `out` holds `max`.
    fn take_blocks(
        &mut self,
        peer: PeerKey,
        piece: PieceIndex,
        max: usize,
        busy: bool,
        out: &mut Vec<BlockRef>,
    ) {
        if out.len() >= max {
            return;
        }
        self.start_partial(piece);
        let n = self.block_count(piece);
        let mut newly = Vec::new();
        let mut taken_free = 0u32;
        if let Some(partial) = self.partials.get_mut(&piece) {
            for i in 0..n {
                if out.len() + newly.len() >= max {
                    break;
                }
                let b = &mut partial.blocks[i as usize];
                let take = match b.state {
                    BState::Free => {
                        taken_free += 1;
                        true
                    }
                    BState::Requested => {
                        busy && b.requesters.len() < MAX_REQUESTERS && !b.requesters.contains(&peer)
                    }
                    BState::Received | BState::Written => false,
                };
                if take {
                    b.state = BState::Requested;
                    b.requesters.push(peer);
                    newly.push(i);
                }
            }
            partial.free -= taken_free;
        }
        let info = self.pieces[piece as usize];
        if info.priority > 0 {
            self.free_blocks -= u64::from(taken_free);
            if info.avail == 0 {
                self.free_unavailable -= u64::from(taken_free);
            }
        }
        for i in newly {
            let block = self.block_ref(piece, i);
            if let Some(p) = self.peers.get_mut(&peer) {
                p.requests.insert(block);
            }
            out.push(block);
        }
    }
}
