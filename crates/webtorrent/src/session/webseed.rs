//! Web seeds (BEP 19 `url-list`, BEP 17 `httpseeds`) as peers of a torrent.
//!
//! A web seed is driven like a peer that has every piece and never chokes: the torrent's
//! picker assigns it blocks through the same orders a peer task gets, and the blocks it
//! fetches come back as a peer's do, so they are written and verified the same way. Runs of
//! consecutive blocks of a piece become one HTTP range request. A failing server is backed
//! off (the seed reports itself choked until it may be tried again); a seed whose data fails
//! a piece's check is banned like a peer, which closes it.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use webtorrent_storage::{Bitfield, Layout};
use webtorrent_types::{BlockRef, PeerId};
use webtorrent_webseed::{Backoff, BackoffConfig, WebSeed, WebSeedError};

use super::peer::{Ended, PeerEvent, ToPeer};
use super::torrent::{Command, PeerKey};

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
    let ended = loop {
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
                    for run in runs(blocks) {
                        let (seed, done_tx) = (Arc::clone(&seed), done_tx.clone());
                        tokio::spawn(async move {
                            let result = fetch_run(&seed, &run).await;
                            let _ = done_tx.send((run, result));
                        });
                    }
                }
                Some(ToPeer::Close) | None => break Ended::Closed,
                // Interest, choking, `have`s, cancels and PEX mean nothing to a web seed.
                Some(_) => {}
            },
            Some((run, result)) = done.recv() => match result {
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

/// Splits requested blocks into runs of consecutive blocks of one piece.
fn runs(mut blocks: Vec<BlockRef>) -> Vec<Vec<BlockRef>> {
    blocks.sort_unstable_by_key(|b| (b.piece, b.offset));
    let mut out: Vec<Vec<BlockRef>> = Vec::new();
    for block in blocks {
        match out.last_mut() {
            Some(run)
                if run.last().is_some_and(|last| {
                    last.piece == block.piece && last.offset + last.length == block.offset
                }) =>
            {
                run.push(block);
            }
            _ => out.push(vec![block]),
        }
    }
    out
}

/// Fetches a run of blocks with one request and cuts the answer into blocks. Bytes past the
/// end of a v2 file's last piece are padding on the wire: zeros, not fetched.
async fn fetch_run(
    seed: &WebSeed,
    run: &[BlockRef],
) -> Result<Vec<(BlockRef, Vec<u8>)>, WebSeedError> {
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Ok(Vec::new());
    };
    let start = u64::from(first.offset);
    let end = u64::from(last.offset) + u64::from(last.length);
    let real_end = end.min(piece_size(seed.layout(), first.piece));
    let mut data = if real_end > start {
        seed.fetch(first.piece, start, real_end - start).await?
    } else {
        Vec::new()
    };
    // `end - start` covers blocks of one piece: far below usize::MAX.
    data.resize((end - start) as usize, 0);
    let mut out = Vec::with_capacity(run.len());
    for block in run {
        let at = (u64::from(block.offset) - start) as usize;
        out.push((*block, data[at..at + block.length as usize].to_vec()));
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
    fn runs_join_consecutive_blocks_of_a_piece() {
        let b = |piece, i: u32| BlockRef::new(piece, i * 16_384, 16_384);
        let got = runs(vec![b(1, 1), b(0, 0), b(0, 1), b(1, 0), b(0, 3)]);
        assert_eq!(
            got,
            vec![
                vec![b(0, 0), b(0, 1)],
                vec![b(0, 3)],
                vec![b(1, 0), b(1, 1)]
            ]
        );
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
