//! Hashing jobs and the [`HashEngine`] trait.

use crate::{SHA1_LEN, SHA256_LEN, merkle, sha1, sha256};

/// What to compute over a job's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// SHA-1: a BitTorrent v1 piece hash.
    Sha1,
    /// BEP 52 piece hash: the Merkle root over the piece's 16 KiB blocks, padded with zero
    /// leaves to `piece_length / BLOCK_SIZE` leaves (see [`merkle::piece_hash`]).
    MerklePiece {
        /// Piece length of the torrent: a power of two of at least 16 KiB.
        piece_length: usize,
    },
    /// Plain SHA-256 of the data.
    Sha256,
}

impl Algorithm {
    /// Hashes `data` with this algorithm on the current thread.
    #[must_use]
    pub fn hash(self, data: &[u8]) -> Digest {
        match self {
            Self::Sha1 => Digest::Sha1(sha1(data)),
            Self::MerklePiece { piece_length } => {
                Digest::Sha256(merkle::piece_hash(data, piece_length))
            }
            Self::Sha256 => Digest::Sha256(sha256(data)),
        }
    }

    /// Rough relative cost per byte, used to balance batches (SHA-1 is a little cheaper than
    /// SHA-256 per byte).
    #[cfg(feature = "parallel")]
    pub(crate) fn cost(self, len: usize) -> u64 {
        let len = len as u64;
        match self {
            Self::Sha1 => len,
            Self::MerklePiece { .. } | Self::Sha256 => len + len / 8,
        }
    }
}

/// A computed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Digest {
    /// A SHA-1 digest.
    Sha1([u8; SHA1_LEN]),
    /// A SHA-256 digest (plain, or a Merkle root).
    Sha256([u8; SHA256_LEN]),
}

impl Digest {
    /// The digest bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Sha1(d) => d,
            Self::Sha256(d) => d,
        }
    }

    /// The SHA-1 digest, if this is one.
    #[must_use]
    pub fn sha1(&self) -> Option<[u8; SHA1_LEN]> {
        match self {
            Self::Sha1(d) => Some(*d),
            Self::Sha256(_) => None,
        }
    }

    /// The SHA-256 digest, if this is one.
    #[must_use]
    pub fn sha256(&self) -> Option<[u8; SHA256_LEN]> {
        match self {
            Self::Sha256(d) => Some(*d),
            Self::Sha1(_) => None,
        }
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// One unit of hashing work: [`HashEngine::run`] fills in `digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job<'a> {
    /// Bytes to hash.
    pub data: &'a [u8],
    /// What to compute.
    pub algorithm: Algorithm,
    /// The result, once run.
    pub digest: Option<Digest>,
}

impl<'a> Job<'a> {
    /// A job that has not run yet.
    #[must_use]
    pub fn new(data: &'a [u8], algorithm: Algorithm) -> Self {
        Self {
            data,
            algorithm,
            digest: None,
        }
    }

    /// Runs the job on the current thread.
    pub fn compute(&mut self) {
        self.digest = Some(self.algorithm.hash(self.data));
    }
}

/// A piece-hash engine. Implementations may hash jobs in parallel.
///
/// Engines never panic on job contents: every job gets a digest (see
/// [`merkle`](crate::merkle#piece-lengths) for invalid piece lengths).
pub trait HashEngine: Send + Sync {
    /// Hashes every job, filling `job.digest`.
    fn run(&self, jobs: &mut [Job<'_>]);

    /// How many jobs it can usefully run at once (for batching).
    fn parallelism(&self) -> usize;

    /// Hashes one buffer.
    fn hash(&self, data: &[u8], algorithm: Algorithm) -> Digest {
        algorithm.hash(data)
    }
}

/// Hashes every job on the caller's thread, in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SingleThreadEngine;

impl HashEngine for SingleThreadEngine {
    fn run(&self, jobs: &mut [Job<'_>]) {
        for job in jobs {
            job.compute();
        }
    }

    fn parallelism(&self) -> usize {
        1
    }
}

impl<E: HashEngine + ?Sized> HashEngine for &E {
    fn run(&self, jobs: &mut [Job<'_>]) {
        (**self).run(jobs);
    }

    fn parallelism(&self) -> usize {
        (**self).parallelism()
    }
}

impl<E: HashEngine + ?Sized> HashEngine for std::sync::Arc<E> {
    fn run(&self, jobs: &mut [Job<'_>]) {
        (**self).run(jobs);
    }

    fn parallelism(&self) -> usize {
        (**self).parallelism()
    }
}

impl<E: HashEngine + ?Sized> HashEngine for Box<E> {
    fn run(&self, jobs: &mut [Job<'_>]) {
        (**self).run(jobs);
    }

    fn parallelism(&self) -> usize {
        (**self).parallelism()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BLOCK_SIZE;

    #[test]
    fn single_thread_fills_every_digest() {
        let data = vec![3u8; 3 * BLOCK_SIZE + 1];
        let mut jobs = vec![
            Job::new(&data, Algorithm::Sha1),
            Job::new(&data, Algorithm::Sha256),
            Job::new(
                &data,
                Algorithm::MerklePiece {
                    piece_length: 4 * BLOCK_SIZE,
                },
            ),
            Job::new(&[], Algorithm::Sha1),
        ];
        SingleThreadEngine.run(&mut jobs);
        assert_eq!(jobs[0].digest, Some(Digest::Sha1(sha1(&data))));
        assert_eq!(jobs[1].digest, Some(Digest::Sha256(sha256(&data))));
        assert_eq!(
            jobs[2].digest,
            Some(Digest::Sha256(merkle::piece_hash(&data, 4 * BLOCK_SIZE)))
        );
        assert_eq!(jobs[3].digest, Some(Digest::Sha1(sha1(b""))));
    }

    #[test]
    fn digest_accessors() {
        let d1 = Digest::Sha1([1; 20]);
        let d2 = Digest::Sha256([2; 32]);
        assert_eq!(d1.as_bytes(), &[1; 20]);
        assert_eq!(d2.as_ref(), &[2; 32]);
        assert_eq!(d1.sha1(), Some([1; 20]));
        assert_eq!(d1.sha256(), None);
        assert_eq!(d2.sha256(), Some([2; 32]));
        assert_eq!(d2.sha1(), None);
    }
}
