//! Drives the piece picker with an arbitrary sequence of peer events, picks and piece results
//! (bytes read as operations): nothing may panic, picks must respect what peers have and the
//! priorities, and every internal invariant must hold after each step.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use webtorrent::picker::{PeerKey, PiecePicker, PieceState};
use webtorrent::types::{BLOCK_SIZE, BlockRef};

fuzz_target!(|data: &[u8]| {
    let Some((&shape, ops)) = data.split_first() else {
        return;
    };
    let pieces = u32::from(shape % 24);
    let piece_length = BLOCK_SIZE * u32::from(1 + (shape >> 5) % 3);
    let total =
        (u64::from(pieces) * u64::from(piece_length)).saturating_sub(u64::from(shape & 7) * 1000);
    let Ok(mut p) = PiecePicker::uniform(piece_length, total) else {
        return;
    };
    let count = p.piece_count().max(1);
    let start = Instant::now();
    let mut picked: Vec<(PeerKey, BlockRef)> = Vec::new();
    for op in ops.chunks_exact(3) {
        let peer = PeerKey(u64::from(op[1] % 4));
        let piece = u32::from(op[2]) % (count + 1); // sometimes out of range
        let block = picked
            .get(usize::from(op[2]) % picked.len().max(1))
            .copied();
        let now = start + Duration::from_millis(u64::from(op[1]) * 10);
        match op[0] % 16 {
            0 => {
                let bytes: Vec<u8> = (0..count.div_ceil(8))
                    .map(|i| op[2].rotate_left(i))
                    .collect();
                let _ = p.peer_bitfield(peer, &bytes);
            }
            1 => p.peer_have_all(peer),
            2 => p.peer_have_none(peer),
            3 | 4 => {
                let _ = p.peer_have(peer, piece);
            }
            5 => {
                let _ = p.peer_dont_have(peer, piece);
            }
            6 => {
                p.peer_disconnected(peer);
            }
            7 | 8 => {
                for b in p.pick_blocks(peer, usize::from(op[2] % 9), now) {
                    assert!(p.priority(b.piece).is_some_and(|x| x > 0));
                    assert!(!p.have(b.piece));
                    assert!(p.requesters(b).contains(&peer));
                    picked.push((peer, b));
                }
            }
            9 => {
                if let Some((from, b)) = block {
                    let r = p.block_received(from, b).expect("a block of the torrent");
                    if r.piece_complete {
                        if op[2] & 1 == 0 {
                            p.piece_verified(b.piece).expect("in range");
                        } else {
                            p.piece_failed(b.piece).expect("complete");
                        }
                    }
                }
            }
            10 => {
                if let Some((from, b)) = block {
                    p.request_rejected(from, b);
                }
            }
            11 => {
                p.drop_requests(peer);
            }
            12 => {
                let _ = p.set_priority(piece, op[1] % 9);
            }
            13 => {
                let _ = p.set_deadline(piece, start + Duration::from_millis(u64::from(op[1]) * 7));
            }
            14 => {
                let _ = p.peer_suggest(peer, piece);
                let _ = p.pick_allowed_fast(peer, &[piece, piece / 2], 4, now);
            }
            _ => {
                // Arbitrary block from a peer: validated, never trusted.
                let b = BlockRef::new(piece, u32::from(op[1]) * 4096, BLOCK_SIZE);
                if let Ok(r) = p.block_received(peer, b)
                    && r.piece_complete
                {
                    assert_eq!(p.piece_state(piece), Some(PieceState::Complete));
                    let _ = p.piece_failed(piece);
                }
            }
        }
        p.check_consistency();
    }
});
