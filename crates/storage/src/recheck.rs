//! Recheck: find which pieces of data already on disk are good.

use webtorrent_hash::{HashEngine, Job};

use crate::layout::PieceCheck;
use crate::{Bitfield, Storage, StorageError};

/// Bytes of piece data read per batch at most (one piece more when a piece is larger).
pub const RECHECK_BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// Hashes every piece whose data is present and returns the pieces that match the torrent's
/// hashes; the store's verified set is replaced by the result.
///
/// Pieces are read in batches of at most [`RECHECK_BATCH_BYTES`] and each batch is hashed
/// with `engine` (a `MultiCoreEngine` spreads it over every core), so memory stays bounded
/// whatever the torrent's size. A piece touching a missing or short file, or without any
/// known hash, is not verified. `progress(done, total)` is called after each batch.
pub fn recheck<S: Storage + ?Sized>(
    storage: &S,
    engine: &dyn HashEngine,
    mut progress: impl FnMut(u32, u32),
) -> Result<Bitfield, StorageError> {
    let layout = storage.layout();
    let total = layout.piece_count();
    let mut verified = Bitfield::new(total);
    let max_pieces = engine.parallelism().max(1) * 4;
    let mut next = 0u32;
    while next < total {
        let mut batch: Vec<(u32, Vec<u8>, Vec<PieceCheck>)> = Vec::new();
        let mut bytes = 0u64;
        while next < total && bytes < RECHECK_BATCH_BYTES && batch.len() < max_pieces {
            let piece = next;
            next += 1;
            let checks = layout.piece_checks(piece)?;
            if checks.is_empty() {
                continue;
            }
            match storage.read_piece(piece) {
                Ok(data) => {
                    bytes += data.len() as u64;
                    batch.push((piece, data, checks));
                }
                Err(e) if e.is_missing_data() => {}
                Err(e) => return Err(e),
            }
        }
        let mut jobs: Vec<Job<'_>> = Vec::new();
        for (_, data, checks) in &batch {
            for c in checks {
                // Ranges come from the piece's own layout, so they lie inside its data; an
                // impossible one hashes nothing and fails its check.
                let part = data.get(c.range.clone()).unwrap_or(&[]);
                jobs.push(Job::new(part, c.algorithm));
            }
        }
        engine.run(&mut jobs);
        let mut digests = jobs.iter().map(|j| j.digest);
        for (piece, _, checks) in &batch {
            // Take every digest of this piece, even after a failed check.
            let results: Vec<bool> = checks
                .iter()
                .map(|c| digests.next().flatten() == Some(c.expected))
                .collect();
            if results.iter().all(|&ok| ok) {
                // `piece` comes from 0..total, the bitfield's length.
                let _ = verified.set(*piece);
            }
        }
        progress(next, total);
    }
    storage.replace_verified(verified.clone())?;
    Ok(verified)
}
