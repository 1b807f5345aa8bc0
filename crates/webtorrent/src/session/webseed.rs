//! Web seeds (BEP 19 `url-list`, BEP 17 `httpseeds`) as peers of a torrent.
//!
//! A web seed is driven like a peer that has every piece and never chokes: the torrent's
//! picker assigns it blocks through the same orders a peer task gets, and the blocks it
//! fetches come back as a peer's do, so they are written and verified the same way.
//!
//! BEP 19 asks for few large requests. A web seed is given [`PIPELINE`] blocks at once; they
//! are queued, and at most [`MAX_FETCHES`] fetches run at once: each takes the longest run of
//! consecutive queued blocks (across pieces, up to [`MAX_FETCH_BYTES`]), which the web seed
//! crate turns into as few `Range` requests as the files allow. While fetches run, the
//! orders that come in pile up into long runs, whatever the size of each order.
//!
//! A failing server is backed off (the seed reports itself choked until it may be tried
//! again); a seed whose data fails a piece's check is banned like a peer, which closes it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use webtorrent_storage::{Bitfield, Layout};
use webtorrent_types::{BlockRef, PeerId};
use webtorrent_webseed::{Backoff, BackoffConfig, WebSeed, WebSeedError};

use super::peer::{Ended, PeerEvent, ToPeer};
use super::torrent::{Command, PeerKey};

/// The most fetches of one web seed at once (each on a connection of its own).
const MAX_FETCHES: usize = 8;

/// The blocks a web seed is given at once: 16 MiB, so that whole pieces wait in its queue
/// and each fetch takes one or more of them.
pub(super) const PIPELINE: usize = 1024;

/// The most bytes one fetch asks for.
const MAX_FETCH_BYTES: u64 = 8 * 1024 * 1024;

/// A peer id standing for a web seed: `-WS0000-` and 12 bytes of its URL's SHA-1, so that
/// a ban sticks to the URL.
pub(super) fn seed_id(url: &str) -> PeerId {
    let digest = webtorrent_hash::sha1(url.as_bytes());
    let mut id = *b"-WS0000-000000000000";
    for (slot, byte) in id[8..].iter_mut().zip(digest) {
        *slot = b"0123456789abcdefghijklmnopqrstuvwxyz"[usize::from(byte) % 36];
    }
    PeerId(id)
}

/// Runs a web seed until the torrent closes it or gives up on it.
pub(super) async fn run(
    key: PeerKey,
    seed: WebSeed,
    pieces: u32,
    torrent: mpsc::Sender<Command>,
    mut orders: mpsc::UnboundedReceiver<ToPeer>,
) {
    let seed = Arc::new(seed);
    let tell = |event| {
        let torrent = torrent.clone();
        async move { torrent.send(Command::Peer(key, event)).await.is_ok() }
    };
    if !tell(PeerEvent::Pieces(Bitfield::full(pieces))).await || !tell(PeerEvent::Unchoked).await {
        return;
    }
    let mut backoff = Backoff::new(BackoffConfig::default());
    let mut paused_until: Option<Instant> = None;
    let (done_tx, mut done) = mpsc::unbounded_channel();
    // Blocks ordered and not fetched yet, in torrent order.
    let mut queued: BTreeMap<(u32, u32), BlockRef> = BTreeMap::new();
    let mut fetching = 0usize;
    let ended = loop {
        if paused_until.is_none() {
            while fetching < MAX_FETCHES {
                let run = next_run(&mut queued, seed.layout());
                if run.is_empty() {
                    break;
                }
                fetching += 1;
                tracing::trace!(
                    blocks = run.len(),
                    queued = queued.len(),
                    fetching,
                    "web seed fetch"
                );
                let (seed, done_tx) = (Arc::clone(&seed), done_tx.clone());
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = fetch_run(&seed, &run).await;
                    tracing::trace!(blocks = run.len(), took = ?started.elapsed(), "web seed fetch done");
                    let _ = done_tx.send((run, result));
                });
            }
        }
        let resume = paused_until.map(tokio::time::Instant::from_std);
        tokio::select! {
            order = orders.recv() => match order {
                Some(ToPeer::Request(blocks)) => {
                    if paused_until.is_some() {
                        let returned = PeerEvent::Returned { blocks, timed_out: false };
                        if !tell(returned).await {
                            break Ended::Closed;
                        }
                        continue;
                    }
                    queued.extend(blocks.into_iter().map(|b| ((b.piece, b.offset), b)));
                }
                // Another peer sent it first: no need to fetch it.
                Some(ToPeer::Cancel(block)) => {
                    queued.remove(&(block.piece, block.offset));
                }
                Some(ToPeer::Close) | None => break Ended::Closed,
                // Interest, choking, `have`s, cancels and PEX mean nothing to a web seed.
                Some(_) => {}
            },
            Some((run, result)) = done.recv() => {
                fetching -= 1;
                match result {
                Ok(blocks) => {
                    backoff.on_success();
                    if !tell(PeerEvent::Blocks(blocks)).await {
                        break Ended::Closed;
                    }
                }
                Err(e) => {
                    let now = Instant::now();
                    if paused_until.is_none() {
                        // Once per streak of failures: the requests in flight fail together.
                        tracing::info!(url = seed.url().as_str(), "web seed failed: {e}");
                    }
                    if !tell(PeerEvent::Returned { blocks: run, timed_out: false }).await {
                        break Ended::Closed;
                    }
                    match backoff.on_failure(now, &e) {
                        Some(at) => {
                            if paused_until.is_none() && !tell(PeerEvent::Choked).await {
                                break Ended::Closed;
                            }
                            paused_until = Some(at.max(paused_until.unwrap_or(at)));
                        }
                        None => break Ended::Protocol(format!("web seed given up: {e}")),
                    }
                    // What is still queued waits for the seed to be tried again.
                    if paused_until.is_some() && !queued.is_empty() {
                        let blocks = std::mem::take(&mut queued).into_values().collect();
                        if !tell(PeerEvent::Returned { blocks, timed_out: false }).await {
                            break Ended::Closed;
                        }
                    }
                }
                }
            },
            () = async { tokio::time::sleep_until(resume.unwrap_or_else(tokio::time::Instant::now)).await }, if resume.is_some() => {
                paused_until = None;
                if !tell(PeerEvent::Unchoked).await {
                    break Ended::Closed;
                }
            }
        }
    };
    let _ = torrent
        .send(Command::Peer(key, PeerEvent::Closed(ended)))
        .await;
}

/// Takes the longest run of consecutive blocks from the front of `queued`: blocks that
/// follow each other in a piece, and on into the next piece when a block ends its piece,
/// up to [`MAX_FETCH_BYTES`].
fn next_run(queued: &mut BTreeMap<(u32, u32), BlockRef>, layout: &Layout) -> Vec<BlockRef> {
    let mut run: Vec<BlockRef> = Vec::new();
    let mut bytes = 0u64;
    while let Some((_, &block)) = queued.first_key_value() {
        if let Some(last) = run.last() {
            let end = last.offset + last.length;
            let follows = (last.piece == block.piece && end == block.offset)
                || (block.piece == last.piece + 1
                    && block.offset == 0
                    && u64::from(end) == piece_size(layout, last.piece)
                    && piece_size(layout, last.piece) == layout.info().piece_length());
            if !follows || bytes + u64::from(block.length) > MAX_FETCH_BYTES {
                break;
            }
        }
        queued.pop_first();
        bytes += u64::from(block.length);
        run.push(block);
    }
    run
}

/// Fetches a run of blocks and cuts the answer into blocks. Bytes past the end of a v2
/// file's last piece are padding on the wire: zeros, not fetched.
async fn fetch_run(
    seed: &WebSeed,
    run: &[BlockRef],
) -> Result<Vec<(BlockRef, Vec<u8>)>, WebSeedError> {
    // Each piece's part of the run, clipped to the piece's real size.
    let mut spans: Vec<(u32, u64, u64)> = Vec::new();
    for block in run {
        let start = u64::from(block.offset);
        let end = (start + u64::from(block.length)).min(piece_size(seed.layout(), block.piece));
        if end <= start {
            continue;
        }
        match spans.last_mut() {
            Some((piece, at, len)) if *piece == block.piece && *at + *len == start => {
                *len = end - *at;
            }
            _ => spans.push((block.piece, start, end - start)),
        }
    }
    let data = if spans.is_empty() {
        Vec::new()
    } else {
        seed.fetch_spans(&spans).await?
    };
    let mut out = Vec::with_capacity(run.len());
    let mut at = 0usize;
    for block in run {
        let start = u64::from(block.offset);
        let real = (start + u64::from(block.length))
            .min(piece_size(seed.layout(), block.piece))
            .saturating_sub(start);
        // A span's bytes are within the fetched buffer: `data` holds every real byte.
        let real = real as usize;
        let mut bytes = data
            .get(at..at + real)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        at += real;
        bytes.resize(block.length as usize, 0);
        out.push((*block, bytes));
    }
    Ok(out)
}

fn piece_size(layout: &Layout, piece: u32) -> u64 {
    layout.piece_size(piece).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_join_consecutive_blocks_across_pieces() {
        use webtorrent_metainfo::{MemoryFile, MetaVersion, TorrentBuilder};
        // 32 KiB pieces (two blocks) over 100 000 bytes: the last piece is short.
        let torrent =
            TorrentBuilder::from_memory("t", vec![MemoryFile::new("a", vec![1; 100_000])])
                .piece_length(Some(32 * 1024))
                .meta_version(MetaVersion::V1)
                .build()
                .expect("torrent");
        let layout = Layout::from_metainfo(&torrent);
        let b = |piece, i: u32| BlockRef::new(piece, i * 16_384, 16_384);
        let mut queued: BTreeMap<(u32, u32), BlockRef> = [
            b(1, 1),
            b(0, 1),
            b(1, 0),
            BlockRef::new(3, 0, 1_696),
            b(2, 0),
        ]
        .into_iter()
        .map(|b| ((b.piece, b.offset), b))
        .collect();
        // Piece 0's second block, then piece 1 whole, then piece 2's first block.
        assert_eq!(
            next_run(&mut queued, &layout),
            [b(0, 1), b(1, 0), b(1, 1), b(2, 0)]
        );
        // Piece 2's second block is missing: piece 3 starts a run of its own.
        assert_eq!(next_run(&mut queued, &layout), [BlockRef::new(3, 0, 1_696)]);
        assert!(next_run(&mut queued, &layout).is_empty());
    }

    #[test]
    fn a_seed_id_is_stable_and_printable() {
        let a = seed_id("http://example.com/files/");
        assert_eq!(a, seed_id("http://example.com/files/"));
        assert_ne!(a, seed_id("http://example.com/other/"));
        assert!(a.0.starts_with(b"-WS0000-"));
        assert!(a.0.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-'));
    }
}
