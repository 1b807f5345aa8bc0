//! Piece hashing for BitTorrent and WebTorrent.
//!
//! - [`sha1()`] / [`Sha1`]: BitTorrent v1 piece hashes (and info-hashes).
//! - [`sha256()`] / [`Sha256`]: BitTorrent v2 hashes.
//! - [`merkle`]: BEP 52 Merkle trees: 16 KiB leaves ([`BLOCK_SIZE`]), piece layers, pad hashes,
//!   file roots (`pieces root`), a streaming [`merkle::FileHasher`] and uncle-hash proofs.
//! - [`exchange`]: BEP 52 hash requests: answering them from a piece layer
//!   ([`exchange::PieceTree`]) and fetching a torrent's piece layers from peers
//!   ([`exchange::LayerFetcher`]).
//! - [`HashEngine`]: runs batches of hashing [`Job`]s. [`SingleThreadEngine`] hashes on the
//!   caller's thread; `MultiCoreEngine` (feature `parallel`, on by default) spreads a batch over
//!   every core, and its submit/complete `HashQueue` hashes owned buffers on persistent worker
//!   threads so that a network task can hand pieces off and collect digests later.
//!
//! SHA-1 and SHA-256 come from the RustCrypto `sha1` and `sha2` crates, which pick the x86 SHA
//! extensions (SHA-NI) or the ARMv8 SHA instructions at run time when the CPU has them.
//!
//! The crate is sans-IO: it never touches sockets, files or clocks.
//!
//! # Example
//!
//! ```
//! use webtorrent_hash::{merkle, Algorithm, Digest, HashEngine, Job, SingleThreadEngine, BLOCK_SIZE};
//!
//! // A v1 piece hash.
//! assert_eq!(
//!     webtorrent_hash::sha1(b"abc"),
//!     *b"\xa9\x99\x3e\x36\x47\x06\x81\x6a\xba\x3e\x25\x71\x78\x50\xc2\x6c\x9c\xd0\xd8\x9d",
//! );
//!
//! // A v2 file of two and a half 32 KiB pieces, hashed while streaming.
//! let piece_length = 2 * BLOCK_SIZE;
//! let file: Vec<u8> = (0..5 * BLOCK_SIZE).map(|i| (i % 251) as u8).collect();
//! let mut hasher = merkle::FileHasher::new(piece_length);
//! for chunk in file.chunks(1000) {
//!     hasher.update(chunk);
//! }
//! let hashes = hasher.finish();
//! assert_eq!(hashes.piece_layer.len(), 3);
//! assert_eq!(hashes.root, merkle::file_root(&file, piece_length));
//!
//! // Verify the pieces against the piece layer with an engine.
//! let mut jobs: Vec<Job<'_>> = file
//!     .chunks(piece_length)
//!     .map(|piece| Job::new(piece, Algorithm::MerklePiece { piece_length }))
//!     .collect();
//! SingleThreadEngine.run(&mut jobs);
//! for (job, expected) in jobs.iter().zip(&hashes.piece_layer) {
//!     assert_eq!(job.digest, Some(Digest::Sha256(*expected)));
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod engine;
pub mod exchange;
pub mod merkle;
#[cfg(feature = "parallel")]
mod parallel;

pub use engine::{Algorithm, Digest, HashEngine, Job, SingleThreadEngine};

/// The README's example, run as a doctest.
#[cfg(all(doctest, feature = "parallel"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
#[cfg(feature = "parallel")]
pub use parallel::{Completed, HashQueue, MultiCoreEngine};

use sha1::Digest as _;

/// Size of a BEP 52 Merkle leaf: every file is hashed in 16 KiB blocks. Also the usual size
/// of a peer-wire block request.
pub const BLOCK_SIZE: usize = 16 * 1024;

/// Length of a SHA-1 digest in bytes.
pub const SHA1_LEN: usize = 20;

/// Length of a SHA-256 digest in bytes.
pub const SHA256_LEN: usize = 32;

/// SHA-1 of `data`: a BitTorrent v1 piece hash or info-hash.
///
/// ```
/// assert_eq!(
///     webtorrent_hash::sha1(b""),
///     *b"\xda\x39\xa3\xee\x5e\x6b\x4b\x0d\x32\x55\xbf\xef\x95\x60\x18\x90\xaf\xd8\x07\x09",
/// );
/// ```
#[must_use]
pub fn sha1(data: &[u8]) -> [u8; SHA1_LEN] {
    sha1::Sha1::digest(data).into()
}

/// SHA-256 of `data`: a BitTorrent v2 info-hash or a Merkle leaf.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; SHA256_LEN] {
    sha2::Sha256::digest(data).into()
}

/// SHA-256 of `left || right`: an interior node of a BEP 52 Merkle tree.
#[must_use]
pub fn sha256_pair(left: &[u8; SHA256_LEN], right: &[u8; SHA256_LEN]) -> [u8; SHA256_LEN] {
    let mut hasher = sha2::Sha256::new();
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Incremental SHA-1: feed any number of chunks, then [`finalize`](Self::finalize).
///
/// ```
/// let mut hasher = webtorrent_hash::Sha1::new();
/// hasher.update(b"a");
/// hasher.update(b"bc");
/// assert_eq!(hasher.finalize(), webtorrent_hash::sha1(b"abc"));
/// ```
#[derive(Clone, Default)]
pub struct Sha1(sha1::Sha1);

impl Sha1 {
    /// A hasher over no bytes yet.
    #[must_use]
    pub fn new() -> Self {
        Self(sha1::Sha1::new())
    }

    /// Appends `data` to the hashed message.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything fed so far.
    #[must_use]
    pub fn finalize(self) -> [u8; SHA1_LEN] {
        self.0.finalize().into()
    }
}

impl std::fmt::Debug for Sha1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sha1").finish_non_exhaustive()
    }
}

/// Incremental SHA-256: feed any number of chunks, then [`finalize`](Self::finalize).
///
/// ```
/// let mut hasher = webtorrent_hash::Sha256::new();
/// hasher.update(b"a");
/// hasher.update(b"bc");
/// assert_eq!(hasher.finalize(), webtorrent_hash::sha256(b"abc"));
/// ```
#[derive(Clone, Default)]
pub struct Sha256(sha2::Sha256);

impl Sha256 {
    /// A hasher over no bytes yet.
    #[must_use]
    pub fn new() -> Self {
        Self(sha2::Sha256::new())
    }

    /// Appends `data` to the hashed message.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything fed so far.
    #[must_use]
    pub fn finalize(self) -> [u8; SHA256_LEN] {
        self.0.finalize().into()
    }
}

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sha256").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // FIPS 180-2 / NIST CSHA examples.
    const ABC_448: &[u8] = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

    #[test]
    fn sha1_known_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(ABC_448)),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(&vec![b'a'; 1_000_000])),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(ABC_448)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            hex(&sha256(&vec![b'a'; 1_000_000])),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn sha256_pair_is_hash_of_concatenation() {
        let left = [1u8; 32];
        let right = [2u8; 32];
        let mut both = [0u8; 64];
        both[..32].copy_from_slice(&left);
        both[32..].copy_from_slice(&right);
        assert_eq!(sha256_pair(&left, &right), sha256(&both));
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 256) as u8).collect();
        let mut s1 = Sha1::new();
        let mut s256 = Sha256::new();
        for chunk in data.chunks(777) {
            s1.update(chunk);
            s256.update(chunk);
        }
        assert_eq!(s1.finalize(), sha1(&data));
        assert_eq!(s256.finalize(), sha256(&data));
    }

    proptest::proptest! {
        #[test]
        fn incremental_any_split(data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000), split in 0usize..3000) {
            let split = split.min(data.len());
            let mut s1 = Sha1::new();
            s1.update(&data[..split]);
            s1.update(&data[split..]);
            proptest::prop_assert_eq!(s1.finalize(), sha1(&data));
            let mut s256 = Sha256::new();
            s256.update(&data[..split]);
            s256.update(&data[split..]);
            proptest::prop_assert_eq!(s256.finalize(), sha256(&data));
        }
    }
}
