//! BEP 52 Merkle trees.
//!
//! Every file of a v2 torrent is split into 16 KiB blocks ([`BLOCK_SIZE`]); the SHA-256 of
//! each block (a shorter last block hashes just its bytes) is a leaf. Interior nodes are
//! `SHA-256(left || right)`. The tree is padded on the right to a power-of-two number of
//! leaves with zero leaves (`[0; 32]`), so a padded subtree of height `h` hashes to
//! [`pad_hash(h)`](pad_hash).
//!
//! - The *piece layer* is the layer whose nodes each cover `piece_length` bytes (a power of
//!   two of at least 16 KiB). A piece's hash is the root of the subtree over its blocks; a
//!   short last piece is padded with zero leaves to `piece_length / BLOCK_SIZE` leaves
//!   ([`piece_hash`]).
//! - A file's `pieces root` ([`file_root`]) is the root of the whole tree. For a file larger
//!   than one piece it is the root over the piece layer padded with `pad_hash(piece height)`
//!   ([`root_from_piece_layer`]); for a file of at most one piece it is the root over its
//!   leaves padded to the next power of two of the *leaf* count ([`root_from_leaves`]). Both
//!   are the same tree: its width is always the next power of two of the leaf count. Empty
//!   files have no root.
//! - Piece layers are stored in the torrent only for files larger than one piece
//!   ([`FileHasher`] returns an empty layer otherwise).
//! - Peers exchange ranges of a layer with the *uncle hashes* that prove them against the
//!   root (BEP 52 `hash request` / `hashes` messages): [`proof`], [`verify_proof`],
//!   [`proof_root`].
//!
//! # Piece lengths
//!
//! Functions that take a `piece_length` never panic. A value that is not a power of two of
//! at least [`BLOCK_SIZE`] (which a valid torrent cannot have) is treated as the next such
//! value, so the result cannot match any valid torrent's hash. Reject such values up front
//! with [`validate_piece_length`].

use crate::{BLOCK_SIZE, sha256, sha256_pair};
use std::sync::OnceLock;

/// A SHA-256 node of a Merkle tree.
pub type Node = [u8; 32];

/// The zero leaf used to pad trees: `[0; 32]`.
pub const ZERO_LEAF: Node = [0; 32];

/// Why a Merkle computation or check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// The piece length is not a power of two of at least [`BLOCK_SIZE`].
    #[error("piece length {0} is not a power of two of at least 16 KiB")]
    InvalidPieceLength(usize),
    /// A range of hashes is empty, not a power of two long, or not aligned to its length.
    #[error(
        "range of {count} hashes at index {index} is not a power-of-two range aligned to its length"
    )]
    UnalignedRange {
        /// First node of the range.
        index: usize,
        /// Number of nodes in the range.
        count: usize,
    },
    /// A range of hashes reaches past the padded width of its layer.
    #[error("range of {count} hashes at index {index} does not fit in a layer {width} nodes wide")]
    RangeOutOfBounds {
        /// First node of the range.
        index: usize,
        /// Number of nodes in the range.
        count: usize,
        /// Padded width of the layer (a power of two).
        width: usize,
    },
    /// The layer has no nodes, so it has no tree.
    #[error("the layer is empty")]
    EmptyLayer,
    /// A proof has the wrong number of uncle hashes for the tree.
    #[error("expected {expected} uncle hashes, got {actual}")]
    ProofLength {
        /// Uncle hashes the tree needs.
        expected: usize,
        /// Uncle hashes given.
        actual: usize,
    },
    /// The hashes do not lead to the expected root.
    #[error("the hashes do not lead to the expected root")]
    RootMismatch,
}

/// Checks that `piece_length` is a valid BEP 52 piece length: a power of two of at least
/// [`BLOCK_SIZE`].
///
/// ```
/// use webtorrent_hash::merkle::{validate_piece_length, MerkleError};
/// assert!(validate_piece_length(1 << 20).is_ok());
/// assert_eq!(validate_piece_length(20_000), Err(MerkleError::InvalidPieceLength(20_000)));
/// ```
pub fn validate_piece_length(piece_length: usize) -> Result<(), MerkleError> {
    if piece_length >= BLOCK_SIZE && piece_length.is_power_of_two() {
        Ok(())
    } else {
        Err(MerkleError::InvalidPieceLength(piece_length))
    }
}

/// Number of leaves (16 KiB blocks) under one piece: `piece_length / BLOCK_SIZE`, after
/// rounding an invalid `piece_length` up to the next valid one.
#[must_use]
pub fn leaves_per_piece(piece_length: usize) -> usize {
    // piece_length.div_ceil(BLOCK_SIZE) <= usize::MAX / 2^14 + 1, so its next power of two
    // cannot overflow.
    piece_length.div_ceil(BLOCK_SIZE).max(1).next_power_of_two()
}

/// Height of the piece layer above the leaves: `log2(piece_length / BLOCK_SIZE)`, after
/// rounding an invalid `piece_length` up to the next valid one.
#[must_use]
pub fn piece_height(piece_length: usize) -> u32 {
    leaves_per_piece(piece_length).trailing_zeros()
}

/// Number of 16 KiB leaves of a file of `len` bytes (the last one may be short).
#[must_use]
pub fn leaf_count(len: u64) -> u64 {
    len.div_ceil(BLOCK_SIZE as u64)
}

/// Heights whose pad hash is kept in the table; taller subtrees cover more than 2^77 bytes.
const PAD_TABLE_LEN: usize = 64;

fn pad_table() -> &'static [Node; PAD_TABLE_LEN] {
    static PADS: OnceLock<[Node; PAD_TABLE_LEN]> = OnceLock::new();
    PADS.get_or_init(|| {
        let mut pads = [ZERO_LEAF; PAD_TABLE_LEN];
        for h in 1..PAD_TABLE_LEN {
            pads[h] = sha256_pair(&pads[h - 1], &pads[h - 1]);
        }
        pads
    })
}

/// Root of a subtree of `2^height` zero leaves: `pad_hash(0)` is `[0; 32]`, and
/// `pad_hash(h + 1) = SHA-256(pad_hash(h) || pad_hash(h))`.
///
/// Heights below 64 are computed once and cached; taller ones (never needed: such a subtree
/// covers more than 2^77 bytes) are computed on demand in `O(height)`.
///
/// ```
/// use webtorrent_hash::{merkle::pad_hash, sha256_pair};
/// assert_eq!(pad_hash(0), [0; 32]);
/// assert_eq!(pad_hash(1), sha256_pair(&[0; 32], &[0; 32]));
/// ```
#[must_use]
pub fn pad_hash(height: u32) -> Node {
    let table = pad_table();
    match table.get(height as usize) {
        Some(node) => *node,
        None => {
            let mut node = table[PAD_TABLE_LEN - 1];
            for _ in PAD_TABLE_LEN as u32 - 1..height {
                node = sha256_pair(&node, &node);
            }
            node
        }
    }
}

/// `ceil(log2(n))` for `n >= 1`, and 0 for `n == 0`: the height of a tree over `n` nodes.
fn ceil_log2(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        u64::BITS - (n - 1).leading_zeros()
    }
}

/// Incremental Merkle builder over one layer: holds at most one complete subtree per height,
/// like the bits of a binary counter, so memory stays `O(log n)`.
#[derive(Clone)]
struct Stack {
    /// Number of nodes pushed so far.
    count: u64,
    /// `subtrees[h]` is the complete subtree of height `h` when bit `h` of `count` is set.
    subtrees: [Node; 64],
}

impl Stack {
    fn new() -> Self {
        Self {
            count: 0,
            subtrees: [ZERO_LEAF; 64],
        }
    }

    fn has(&self, height: u32) -> bool {
        height < 64 && (self.count >> height) & 1 == 1
    }

    fn push(&mut self, node: Node) {
        let mut carry = node;
        let mut height = 0;
        while self.has(height) {
            carry = sha256_pair(&self.subtrees[height as usize], &carry);
            height += 1;
        }
        // count < 2^64 - 1 in practice (each node stands for at least one byte of memory or
        // of a file); `height` is at most 63 because `count` has a zero bit below bit 64.
        self.subtrees[height as usize] = carry;
        self.count += 1;
    }

    /// Root of the tree of height `height` (at least `ceil_log2(count)`) over the pushed
    /// nodes, padded on the right; `pad(h)` is the root of an empty subtree of height `h`.
    fn root(&self, height: u32, pad: impl Fn(u32) -> Node) -> Node {
        debug_assert!(ceil_log2(self.count) <= height);
        if self.has(height) {
            // Exactly 2^height nodes: one complete subtree.
            return self.subtrees[height as usize];
        }
        // `acc` is the padded right part of the tree at the current height.
        let mut acc: Option<Node> = None;
        for h in 0..height {
            if self.has(h) {
                // A complete subtree on the stack is always a left child.
                let right = acc.unwrap_or_else(|| pad(h));
                acc = Some(sha256_pair(&self.subtrees[h as usize], &right));
            } else if let Some(left) = acc {
                acc = Some(sha256_pair(&left, &pad(h)));
            }
        }
        acc.unwrap_or_else(|| pad(height))
    }
}

/// SHA-256 of each 16 KiB block of `data` (the last block may be short).
#[must_use]
pub fn leaf_hashes(data: &[u8]) -> Vec<Node> {
    data.chunks(BLOCK_SIZE).map(sha256).collect()
}

/// Root over `layer` padded on the right to `width` nodes with `pad` (the root of an all-zero
/// subtree of the same height as the layer's nodes, see [`pad_hash`]).
///
/// `width` should be a power of two of at least `layer.len()`; a smaller or non-power-of-two
/// `width` is raised to the next power of two of at least `layer.len()`. An empty layer of
/// width 1 has root `pad`.
///
/// ```
/// use webtorrent_hash::{merkle::{pad_hash, root_padded}, sha256_pair};
/// let (a, b, c) = ([1; 32], [2; 32], [3; 32]);
/// let root = root_padded(&[a, b, c], 4, pad_hash(0));
/// assert_eq!(root, sha256_pair(&sha256_pair(&a, &b), &sha256_pair(&c, &[0; 32])));
/// ```
#[must_use]
pub fn root_padded(layer: &[Node], width: usize, pad: Node) -> Node {
    let width = width.max(layer.len()).max(1);
    let height = if width.is_power_of_two() {
        width.trailing_zeros()
    } else {
        usize::BITS - (width - 1).leading_zeros()
    };
    let mut stack = Stack::new();
    for node in layer {
        stack.push(*node);
    }
    // Pad roots for every height of the tree: pads[h] is `pad` raised h levels.
    let mut pads = Vec::with_capacity(height as usize + 1);
    let mut current = pad;
    for _ in 0..=height {
        pads.push(current);
        current = sha256_pair(&current, &current);
    }
    stack.root(height, |h| pads.get(h as usize).copied().unwrap_or(current))
}

/// Hash of one piece: its blocks hashed and padded with zero leaves to
/// `piece_length / BLOCK_SIZE` leaves.
///
/// `data` is the piece's bytes: `piece_length` of them, or fewer for the last piece of a
/// file. Longer `data` widens the tree to cover it (no valid piece has that hash).
///
/// ```
/// use webtorrent_hash::{merkle::{pad_hash, piece_hash}, sha256, sha256_pair, BLOCK_SIZE};
/// // A last piece of one short block in 64 KiB pieces: the leaf, then zero padding.
/// let leaf = sha256(b"tail");
/// let expected = sha256_pair(&sha256_pair(&leaf, &pad_hash(0)), &pad_hash(1));
/// assert_eq!(piece_hash(b"tail", 4 * BLOCK_SIZE), expected);
/// ```
#[must_use]
pub fn piece_hash(data: &[u8], piece_length: usize) -> Node {
    let mut stack = Stack::new();
    for block in data.chunks(BLOCK_SIZE) {
        stack.push(sha256(block));
    }
    let height = piece_height(piece_length).max(ceil_log2(stack.count));
    stack.root(height, pad_hash)
}

/// `true` when `data` hashes to `expected` as a piece of `piece_length` (see [`piece_hash`]).
#[must_use]
pub fn verify_piece(data: &[u8], piece_length: usize, expected: &Node) -> bool {
    piece_hash(data, piece_length) == *expected
}

/// The piece layer of a file held in memory: one [`piece_hash`] per piece. Empty when the
/// file is at most one piece long (such files store no piece layer).
#[must_use]
pub fn piece_layer(data: &[u8], piece_length: usize) -> Vec<Node> {
    let span = piece_span(piece_length);
    if data.len() <= span {
        return Vec::new();
    }
    data.chunks(span)
        .map(|piece| piece_hash(piece, piece_length))
        .collect()
}

/// Bytes covered by one piece after rounding `piece_length` to a valid value.
fn piece_span(piece_length: usize) -> usize {
    leaves_per_piece(piece_length).saturating_mul(BLOCK_SIZE)
}

/// `pieces root` of a whole file held in memory, or `None` for an empty file.
///
/// Meant for tests and small files; [`FileHasher`] does the same in bounded memory.
///
/// ```
/// use webtorrent_hash::{merkle::file_root, sha256, BLOCK_SIZE};
/// assert_eq!(file_root(b"", BLOCK_SIZE), None);
/// // A file of one block: the root is its leaf.
/// assert_eq!(file_root(b"hello", BLOCK_SIZE), Some(sha256(b"hello")));
/// ```
#[must_use]
pub fn file_root(data: &[u8], piece_length: usize) -> Option<Node> {
    if data.is_empty() {
        return None;
    }
    if data.len() <= piece_span(piece_length) {
        let mut stack = Stack::new();
        for block in data.chunks(BLOCK_SIZE) {
            stack.push(sha256(block));
        }
        return Some(stack.root(ceil_log2(stack.count), pad_hash));
    }
    Some(root_from_piece_layer(
        &piece_layer(data, piece_length),
        piece_length,
    ))
}

/// `pieces root` of a file larger than one piece, from its piece layer: the root over the
/// layer padded to a power of two with `pad_hash(piece height)`.
///
/// An empty layer gives `pad_hash(piece height)`.
#[must_use]
pub fn root_from_piece_layer(layer: &[Node], piece_length: usize) -> Node {
    let base = piece_height(piece_length);
    let mut stack = Stack::new();
    for node in layer {
        stack.push(*node);
    }
    stack.root(ceil_log2(stack.count), |h| pad_hash(base + h))
}

/// `true` when `layer` is the piece layer of a file whose `pieces root` is `root`.
#[must_use]
pub fn verify_piece_layer(layer: &[Node], piece_length: usize, root: &Node) -> bool {
    !layer.is_empty() && root_from_piece_layer(layer, piece_length) == *root
}

/// `pieces root` of a file of at most one piece, from its leaf hashes: the root over the
/// leaves padded with zero leaves to the next power of two of the leaf count.
///
/// No leaves give `[0; 32]` (but an empty file has no root at all).
///
/// ```
/// use webtorrent_hash::{merkle::root_from_leaves, sha256_pair};
/// let (a, b, c) = ([1; 32], [2; 32], [3; 32]);
/// let root = root_from_leaves(&[a, b, c]);
/// assert_eq!(root, sha256_pair(&sha256_pair(&a, &b), &sha256_pair(&c, &[0; 32])));
/// ```
#[must_use]
pub fn root_from_leaves(leaves: &[Node]) -> Node {
    let mut stack = Stack::new();
    for leaf in leaves {
        stack.push(*leaf);
    }
    stack.root(ceil_log2(stack.count), pad_hash)
}

/// Hashes of one file, from [`FileHasher::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHashes {
    /// `pieces root`; `None` for an empty file.
    pub root: Option<Node>,
    /// Piece layer; empty when the file is at most one piece long.
    pub piece_layer: Vec<Node>,
    /// File length in bytes.
    pub length: u64,
}

/// Streaming hasher of one file: feed chunks of any size with [`update`](Self::update), then
/// [`finish`](Self::finish) gives the `pieces root` and piece layer.
///
/// Memory is bounded: one block hasher, `O(log)` partial subtrees, and the finished piece
/// layer (32 bytes per piece).
///
/// ```
/// use webtorrent_hash::{merkle::{file_root, FileHasher}, BLOCK_SIZE};
/// let data = vec![7u8; 3 * BLOCK_SIZE + 5];
/// let mut hasher = FileHasher::new(BLOCK_SIZE);
/// hasher.update(&data[..10]);
/// hasher.update(&data[10..]);
/// let hashes = hasher.finish();
/// assert_eq!(hashes.length, data.len() as u64);
/// assert_eq!(hashes.piece_layer.len(), 4);
/// assert_eq!(hashes.root, file_root(&data, BLOCK_SIZE));
/// ```
#[derive(Clone)]
pub struct FileHasher {
    piece_length: usize,
    piece_height: u32,
    leaves_per_piece: u64,
    block: sha2::Sha256,
    block_fill: usize,
    piece: Stack,
    piece_layer: Vec<Node>,
    length: u64,
}

impl FileHasher {
    /// A hasher for a file of a torrent with this `piece_length` (see the
    /// [module docs](self#piece-lengths) for invalid values).
    #[must_use]
    pub fn new(piece_length: usize) -> Self {
        use sha2::Digest as _;
        let piece_height = piece_height(piece_length);
        Self {
            piece_length,
            piece_height,
            leaves_per_piece: 1u64 << piece_height,
            block: sha2::Sha256::new(),
            block_fill: 0,
            piece: Stack::new(),
            piece_layer: Vec::new(),
            length: 0,
        }
    }

    /// Appends the next `data` bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) {
        use sha2::Digest as _;
        self.length += data.len() as u64;
        while !data.is_empty() {
            let take = (BLOCK_SIZE - self.block_fill).min(data.len());
            let (head, rest) = data.split_at(take);
            self.block.update(head);
            self.block_fill += take;
            data = rest;
            if self.block_fill == BLOCK_SIZE {
                self.finish_block();
            }
        }
    }

    fn finish_block(&mut self) {
        use sha2::Digest as _;
        let leaf: Node = self.block.finalize_reset().into();
        self.block_fill = 0;
        self.piece.push(leaf);
        if self.piece.count == self.leaves_per_piece {
            self.piece_layer
                .push(self.piece.root(self.piece_height, pad_hash));
            self.piece = Stack::new();
        }
    }

    /// Bytes fed so far.
    #[must_use]
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The piece length this hasher was made with.
    #[must_use]
    pub fn piece_length(&self) -> usize {
        self.piece_length
    }

    /// Hashes of the pieces completed so far.
    #[must_use]
    pub fn completed_pieces(&self) -> &[Node] {
        &self.piece_layer
    }

    /// The file's root and piece layer.
    #[must_use]
    pub fn finish(mut self) -> FileHashes {
        if self.block_fill > 0 {
            self.finish_block();
        }
        let length = self.length;
        if self.piece.count > 0 {
            if self.piece_layer.is_empty() {
                // The whole file is shorter than one piece: pad to the leaf count only.
                let root = self.piece.root(ceil_log2(self.piece.count), pad_hash);
                return FileHashes {
                    root: Some(root),
                    piece_layer: Vec::new(),
                    length,
                };
            }
            self.piece_layer
                .push(self.piece.root(self.piece_height, pad_hash));
        }
        match self.piece_layer.len() {
            0 => FileHashes {
                root: None,
                piece_layer: Vec::new(),
                length,
            },
            // Exactly one full piece: the piece hash is the root, and no layer is stored.
            1 => FileHashes {
                root: Some(self.piece_layer[0]),
                piece_layer: Vec::new(),
                length,
            },
            _ => FileHashes {
                root: Some(root_from_piece_layer(&self.piece_layer, self.piece_length)),
                piece_layer: self.piece_layer,
                length,
            },
        }
    }
}

impl std::fmt::Debug for FileHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileHasher")
            .field("piece_length", &self.piece_length)
            .field("length", &self.length)
            .field("completed_pieces", &self.piece_layer.len())
            .finish_non_exhaustive()
    }
}

/// Checks that `index..index + count` is a power-of-two range aligned to its length and fits
/// in `width` (a power of two); returns `log2(count)`.
fn check_range(index: usize, count: usize, width: usize) -> Result<u32, MerkleError> {
    if count == 0 || !count.is_power_of_two() || !index.is_multiple_of(count) {
        return Err(MerkleError::UnalignedRange { index, count });
    }
    if count > width || index > width - count {
        return Err(MerkleError::RangeOutOfBounds {
            index,
            count,
            width,
        });
    }
    Ok(count.trailing_zeros())
}

/// Padded width of a layer of `len` nodes (the next power of two).
fn layer_width(len: usize) -> Result<usize, MerkleError> {
    if len == 0 {
        return Err(MerkleError::EmptyLayer);
    }
    // len <= isize::MAX / 32 for a real slice; for a length passed by value, a width that
    // does not fit means no range can be proven in it.
    len.checked_next_power_of_two()
        .ok_or(MerkleError::EmptyLayer)
}

/// Uncle hashes proving the range `index..index + count` of `layer` against the root of the
/// tree over `layer` (BEP 52 `hashes` message), bottom-up.
///
/// `layer` is a whole layer of a file's tree (its leaves, its piece layer, ...) and `pad`
/// the root of an all-zero subtree as tall as its nodes (`pad_hash(height of the layer)`).
/// The tree is padded to the next power of two of `layer.len()`. `count` must be a power of
/// two and `index` a multiple of it; the range may reach into the padding. The proof holds
/// `log2(width / count)` hashes: first the sibling of the range's subtree, last a child of
/// the root.
///
/// ```
/// use webtorrent_hash::merkle::{proof, pad_hash, root_from_leaves, verify_proof};
/// let leaves: Vec<[u8; 32]> = (0..5u8).map(|i| [i; 32]).collect();
/// let root = root_from_leaves(&leaves);
/// let uncles = proof(&leaves, 2, 2, pad_hash(0))?;
/// assert_eq!(uncles.len(), 2);
/// verify_proof(&root, leaves.len(), 2, &leaves[2..4], &uncles)?;
/// # Ok::<(), webtorrent_hash::merkle::MerkleError>(())
/// ```
pub fn proof(
    layer: &[Node],
    index: usize,
    count: usize,
    pad: Node,
) -> Result<Vec<Node>, MerkleError> {
    let width = layer_width(layer.len())?;
    let range_height = check_range(index, count, width)?;
    let tree_height = width.trailing_zeros();
    let mut uncles = Vec::with_capacity((tree_height - range_height) as usize);
    let mut current: Vec<Node> = layer.to_vec();
    let mut pad = pad;
    for level in 0..tree_height {
        if level >= range_height {
            let sibling = (index >> level) ^ 1;
            uncles.push(current.get(sibling).copied().unwrap_or(pad));
        }
        current = (0..current.len())
            .step_by(2)
            .map(|i| {
                let right = current.get(i + 1).unwrap_or(&pad);
                sha256_pair(&current[i], right)
            })
            .collect();
        pad = sha256_pair(&pad, &pad);
    }
    Ok(uncles)
}

/// The node that `hashes` (the aligned range starting at `index` of some layer) and
/// `uncles` (bottom-up, as from [`proof`]) lead to: the root when the proof is complete, or
/// an inner node when the uncles stop early (BEP 52 lets a requester ask for fewer proof
/// layers when it already knows the rest).
///
/// Returns the node, and its index in its own layer.
pub fn proof_root(
    index: usize,
    hashes: &[Node],
    uncles: &[Node],
) -> Result<(Node, usize), MerkleError> {
    let count = hashes.len();
    if count == 0 || !count.is_power_of_two() || !index.is_multiple_of(count) {
        return Err(MerkleError::UnalignedRange { index, count });
    }
    let mut subtree = Stack::new();
    for hash in hashes {
        subtree.push(*hash);
    }
    // `count` is a power of two, so the subtree is complete and needs no padding.
    let mut node = subtree.root(count.trailing_zeros(), |_| ZERO_LEAF);
    let mut position = index / count;
    for uncle in uncles {
        node = if position.is_multiple_of(2) {
            sha256_pair(&node, uncle)
        } else {
            sha256_pair(uncle, &node)
        };
        position /= 2;
    }
    Ok((node, position))
}

/// Checks that `hashes`, the range starting at `index` of a layer of `layer_len` nodes,
/// belong to the tree with root `root`, given the `uncles` from [`proof`].
///
/// The number of uncles must match the tree height exactly, so that an inner node cannot be
/// passed off as a node of the layer. Hashes past `layer_len` are padding and must equal the
/// pad hash of the layer's height for the root to match.
pub fn verify_proof(
    root: &Node,
    layer_len: usize,
    index: usize,
    hashes: &[Node],
    uncles: &[Node],
) -> Result<(), MerkleError> {
    let width = layer_width(layer_len)?;
    let range_height = check_range(index, hashes.len(), width)?;
    let expected = (width.trailing_zeros() - range_height) as usize;
    if uncles.len() != expected {
        return Err(MerkleError::ProofLength {
            expected,
            actual: uncles.len(),
        });
    }
    let (node, _) = proof_root(index, hashes, uncles)?;
    if node == *root {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch)
    }
}
