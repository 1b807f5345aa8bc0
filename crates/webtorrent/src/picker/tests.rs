use super::*;
use proptest::prelude::*;
use std::time::Duration;

const A: PeerKey = PeerKey(1);
const B: PeerKey = PeerKey(2);
const C: PeerKey = PeerKey(3);

fn now() -> Instant {
    // Tests never read the clock for decisions: only relative to this one instant.
    Instant::now()
}

/// `n` pieces of `blocks` full blocks each.
fn picker(n: u32, blocks: u32) -> PiecePicker {
    PiecePicker::uniform(blocks * BLOCK_SIZE, u64::from(n * blocks * BLOCK_SIZE)).unwrap()
}

fn bitfield(n: u32, pieces: &[u32]) -> Vec<u8> {
    let mut b = vec![0u8; n.div_ceil(8) as usize];
    for &p in pieces {
        b[(p / 8) as usize] |= 0x80 >> (p % 8);
    }
    b
}

fn pieces_of(blocks: &[BlockRef]) -> Vec<PieceIndex> {
    blocks.iter().map(|b| b.piece).collect()
}

/// Receives `block` from `peer` and verifies its piece when complete.
fn deliver(p: &mut PiecePicker, peer: PeerKey, block: BlockRef) -> Received {
    let r = p.block_received(peer, block).unwrap();
    if r.piece_complete {
        p.piece_verified(block.piece).unwrap();
    }
    p.check_consistency();
    r
}

#[test]
fn geometry() {
    let p = PiecePicker::uniform(32 * 1024, 2 * 32 * 1024 + 20_000).unwrap();
    assert_eq!(p.piece_count(), 3);
    assert_eq!(p.piece_size(2), Some(20_000));
    assert_eq!(p.piece_size(3), None);
    assert_eq!(p.wanted_bytes(), 2 * 32 * 1024 + 20_000);
    assert!(PiecePicker::uniform(0, 10).is_err());
    assert!(PiecePicker::uniform(1, u64::from(u32::MAX) + 1).is_err());
    assert!(PiecePicker::from_sizes(vec![16384, 0]).is_err());
    let empty = PiecePicker::uniform(16384, 0).unwrap();
    assert_eq!(empty.piece_count(), 0);
    assert!(empty.is_complete());

    // v2: short pieces in the middle; the last block of a piece is shorter.
    let mut p = PiecePicker::from_sizes(vec![40_000, 100, 16384]).unwrap();
    p.peer_have_all(A);
    let mut got = p.pick_blocks(A, 10, now());
    got.sort();
    assert_eq!(
        got,
        [
            BlockRef::new(0, 0, 16384),
            BlockRef::new(0, 16384, 16384),
            BlockRef::new(0, 32768, 7232),
            BlockRef::new(1, 0, 100),
            BlockRef::new(2, 0, 16384),
        ]
    );
}

#[test]
fn rarest_first() {
    let mut p = picker(4, 1).with_seed(3);
    p.peer_bitfield(A, &bitfield(4, &[0, 1, 2, 3])).unwrap();
    p.peer_bitfield(B, &bitfield(4, &[0, 1])).unwrap();
    p.peer_have(C, 0).unwrap();
    assert_eq!(
        (0..4).map(|i| p.availability(i)).collect::<Vec<_>>(),
        [3, 2, 1, 1]
    );
    let got = pieces_of(&p.pick_blocks(A, 4, now()));
    let mut first_two = got[..2].to_vec();
    first_two.sort();
    assert_eq!(first_two, [2, 3]);
    assert_eq!(&got[2..], [1, 0]);
}

#[test]
fn rarest_first_counts_seeds_and_ties_are_random() {
    // Across seeds, ties at equal availability come out in different orders.
    let mut firsts = BTreeSet::new();
    for seed in 0..20 {
        let mut p = picker(8, 1).with_seed(seed);
        p.peer_have_all(A);
        p.peer_have(B, 5).unwrap();
        let got = pieces_of(&p.pick_blocks(A, 8, now()));
        // Piece 5 has two peers: the others come first.
        assert_eq!(got.last(), Some(&5));
        firsts.insert(got[0]);
    }
    assert!(
        firsts.len() > 2,
        "tie-break should vary with the seed: {firsts:?}"
    );
}

#[test]
fn priorities_order_and_skip() {
    let mut p = picker(4, 1);
    p.peer_have_all(A);
    p.peer_have(B, 3).unwrap(); // piece 3 is the most common...
    p.set_priority(3, 7).unwrap(); // ...but has the highest priority
    p.set_priority(0, 0).unwrap();
    p.set_priority(1, 1).unwrap();
    assert_eq!(p.set_priority(1, 8), Err(PickerError::InvalidPriority(8)));
    let got = pieces_of(&p.pick_blocks(A, 10, now()));
    assert_eq!(got, [3, 2, 1]);
    assert_eq!(p.wanted_bytes(), 3 * u64::from(BLOCK_SIZE));

    // File priorities: a piece takes the highest priority of the files touching it.
    let mut p = picker(4, 1);
    p.set_file_priorities(&[(0..2, 0), (1..3, 2), (3..4, 0)])
        .unwrap();
    assert_eq!(
        (0..4).map(|i| p.priority(i).unwrap()).collect::<Vec<_>>(),
        [0, 2, 2, 0]
    );
    assert!(p.set_file_priorities(&[(0..5, 1)]).is_err());
}

#[test]
fn deadlines_come_first_in_order() {
    let t = now();
    let mut p = picker(6, 1);
    p.peer_have_all(A);
    p.peer_have(B, 4).unwrap();
    p.peer_have(B, 1).unwrap();
    p.set_deadline(4, t + Duration::from_secs(2)).unwrap();
    p.set_deadline(1, t + Duration::from_secs(1)).unwrap();
    p.set_deadline(5, t + Duration::from_secs(3)).unwrap();
    p.set_deadline(5, t + Duration::from_millis(1500)).unwrap(); // moved earlier
    let got = pieces_of(&p.pick_blocks(A, 4, t));
    assert_eq!(&got[..3], [1, 5, 4]);
    // Verified pieces drop their deadline.
    deliver(&mut p, A, BlockRef::new(1, 0, BLOCK_SIZE));
    assert!(!p.deadline_of.contains_key(&1));
    p.clear_deadlines();
    assert!(p.deadlines.is_empty());
}

#[test]
fn overdue_deadline_gets_a_second_requester() {
    let t = now();
    let mut p = picker(4, 1);
    p.peer_have_all(A);
    p.peer_have_all(B);
    p.peer_have_all(C);
    p.set_deadline(2, t + Duration::from_secs(1)).unwrap();
    assert_eq!(pieces_of(&p.pick_blocks(A, 1, t)), [2]);
    // Not overdue yet: B gets something else.
    assert_ne!(pieces_of(&p.pick_blocks(B, 1, t)), [2]);
    // Overdue: B is asked too, C is not (MAX_REQUESTERS).
    let late = t + Duration::from_secs(2);
    assert_eq!(pieces_of(&p.pick_blocks(B, 1, late)), [2]);
    assert_ne!(pieces_of(&p.pick_blocks(C, 1, late)), [2]);
    let block = BlockRef::new(2, 0, BLOCK_SIZE);
    assert_eq!(p.requesters(block), [A, B]);
    let r = p.block_received(B, block).unwrap();
    assert_eq!(r.cancels, [Cancel { peer: A, block }]);
    assert!(p.requests(A).all(|b| b != block));
    p.check_consistency();
}

#[test]
fn partial_pieces_are_finished_first() {
    let mut p = picker(10, 4);
    p.peer_have_all(A);
    p.peer_have_all(B);
    let first = p.pick_blocks(A, 1, now());
    assert_eq!(first.len(), 1);
    let piece = first[0].piece;
    assert_eq!(p.piece_state(piece), Some(PieceState::Downloading));
    let got = p.pick_blocks(B, 3, now());
    assert_eq!(pieces_of(&got), [piece; 3]);
    assert!(!got.contains(&first[0]));
}

#[test]
fn suggestions_before_rarest() {
    let mut p = picker(5, 1);
    p.peer_have_all(A);
    p.peer_have(B, 0).unwrap();
    p.peer_have(B, 1).unwrap();
    p.peer_have(B, 2).unwrap();
    p.peer_suggest(A, 1).unwrap();
    assert_eq!(pieces_of(&p.pick_blocks(A, 1, now())), [1]);
}

#[test]
fn allowed_fast_restricts_picks() {
    let mut p = picker(6, 1);
    p.peer_bitfield(A, &bitfield(6, &[0, 2, 3, 5])).unwrap();
    let mut got = pieces_of(&p.pick_allowed_fast(A, &[1, 3, 5], 10, now()));
    got.sort();
    assert_eq!(got, [3, 5]);
    // An allowed-fast set from a peer may name pieces out of range.
    p.peer_have_all(B);
    assert_eq!(
        pieces_of(&p.pick_allowed_fast(B, &[6, 99, 1], 10, now())),
        [1]
    );
}

#[test]
fn no_duplicates_then_endgame_with_cancels() {
    let mut p = picker(2, 2);
    p.peer_have_all(A);
    p.peer_have_all(B);
    p.peer_have_all(C);
    let a = p.pick_blocks(A, 3, now());
    assert_eq!(a.len(), 3);
    assert!(!p.in_endgame());
    // One free block left: B gets it and nothing requested from A.
    let b = p.pick_blocks(B, 4, now());
    assert_eq!(b.len(), 1);
    assert!(!a.contains(&b[0]));
    assert!(p.in_endgame());
    // Endgame: B now gets A's blocks, C gets the remaining single-requested one; nobody gets
    // a block from a third peer.
    let b2 = p.pick_blocks(B, 4, now());
    assert_eq!(b2.len(), 3);
    assert!(b2.iter().all(|x| a.contains(x)));
    let c = p.pick_blocks(C, 4, now());
    assert_eq!(c, b);
    assert!(p.pick_blocks(C, 4, now()).is_empty());
    for x in a.iter().chain(&b) {
        assert!(p.requesters(*x).len() <= MAX_REQUESTERS);
    }
    // First arrival wins; the other requester gets a cancel; a late duplicate is not new.
    let r = p.block_received(B, a[0]).unwrap();
    assert!(r.new);
    assert_eq!(
        r.cancels,
        [Cancel {
            peer: A,
            block: a[0]
        }]
    );
    assert!(p.requests(A).all(|x| x != a[0]));
    let late = p.block_received(A, a[0]).unwrap();
    assert!(!late.new && late.cancels.is_empty());
    p.check_consistency();
}

#[test]
fn failed_piece_returns_blocks_and_names_contributors() {
    let mut p = picker(1, 3);
    p.peer_have_all(A);
    p.peer_have_all(B);
    let a = p.pick_blocks(A, 2, now());
    let b = p.pick_blocks(B, 2, now());
    assert_eq!(b.len(), 1);
    assert!(!p.block_received(A, a[0]).unwrap().piece_complete);
    p.block_written(a[0]).unwrap();
    assert_eq!(p.block_state(a[0]), Some(BlockState::Written));
    assert!(!p.block_received(A, a[1]).unwrap().piece_complete);
    assert!(p.block_received(B, b[0]).unwrap().piece_complete);
    assert_eq!(p.piece_state(0), Some(PieceState::Complete));
    assert!(p.pick_blocks(A, 5, now()).is_empty());
    assert_eq!(p.piece_failed(0).unwrap(), [A, B]);
    assert_eq!(p.piece_state(0), Some(PieceState::Missing));
    assert_eq!(p.block_state(a[0]), Some(BlockState::Free));
    assert_eq!(p.pick_blocks(B, 5, now()).len(), 3);
    // Failing a piece that is not complete is a usage error.
    assert!(matches!(
        p.piece_failed(0),
        Err(PickerError::WrongState { piece: 0, .. })
    ));
    p.check_consistency();
}

#[test]
fn peer_gone_returns_requests_and_availability() {
    let mut p = picker(4, 2);
    p.peer_bitfield(A, &bitfield(4, &[0, 1, 2, 3])).unwrap();
    p.peer_have_all(B);
    let a = p.pick_blocks(A, 3, now());
    assert_eq!(p.availability(0), 2);
    let mut dropped = p.peer_disconnected(A);
    dropped.sort();
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(dropped, sorted);
    assert_eq!(p.availability(0), 1);
    assert_eq!(p.requests(A).count(), 0);
    for x in &a {
        assert_eq!(p.block_state(*x), Some(BlockState::Free));
    }
    assert_eq!(p.pick_blocks(B, 8, now()).len(), 8);
    p.peer_disconnected(B);
    assert_eq!(p.availability(0), 0);
    assert!(p.pick_blocks(B, 8, now()).is_empty());
    p.check_consistency();
}

#[test]
fn rejected_and_timed_out_requests_go_back() {
    let mut p = picker(1, 2);
    p.peer_have_all(A);
    let a = p.pick_blocks(A, 2, now());
    assert!(p.request_rejected(A, a[0]));
    assert!(!p.request_rejected(A, a[0]));
    assert!(p.request_timed_out(A, a[1]));
    // Nothing in flight any more: the piece counts as missing again.
    assert_eq!(p.piece_state(0), Some(PieceState::Missing));
    assert_eq!(p.pick_blocks(A, 2, now()).len(), 2);
    assert_eq!(p.drop_requests(A).len(), 2);
    // A late block after a timeout is still accepted.
    assert!(p.block_received(A, a[0]).unwrap().new);
    p.check_consistency();
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut p = picker(3, 2);
    for bad in [
        BlockRef::new(3, 0, BLOCK_SIZE),
        BlockRef::new(0, 1, BLOCK_SIZE),
        BlockRef::new(0, 0, 100),
        BlockRef::new(0, 2 * BLOCK_SIZE, BLOCK_SIZE),
        BlockRef::new(0, u32::MAX, u32::MAX),
    ] {
        assert_eq!(
            p.block_received(A, bad),
            Err(PickerError::InvalidBlock(bad))
        );
        assert_eq!(p.block_state(bad), None);
    }
    assert_eq!(
        p.peer_bitfield(A, &[0, 0]),
        Err(PickerError::BitfieldLength {
            expected: 1,
            actual: 2
        })
    );
    assert!(p.peer_have(A, 3).is_err());
    assert!(p.set_deadline(9, now()).is_err());
    assert!(p.block_written(BlockRef::new(0, 0, BLOCK_SIZE)).is_err());
    // Spare bits of a bitfield are ignored.
    p.peer_bitfield(A, &[0xff]).unwrap();
    assert_eq!(p.availability(2), 1);
    assert!(!p.to_string_error_is_empty());
}

impl PiecePicker {
    fn to_string_error_is_empty(&self) -> bool {
        PickerError::InvalidPriority(9).to_string().is_empty()
    }
}

#[test]
fn have_none_then_have_and_dont_have() {
    let mut p = picker(100, 1);
    p.peer_have_none(A);
    assert!(p.pick_blocks(A, 5, now()).is_empty());
    p.peer_have(A, 70).unwrap();
    assert_eq!(pieces_of(&p.pick_blocks(A, 5, now())), [70]);
    p.peer_have_all(B);
    assert_eq!(p.availability(70), 2);
    p.peer_dont_have(B, 70).unwrap();
    assert_eq!(p.availability(70), 1);
    assert_eq!(p.availability(69), 1);
    p.peer_dont_have(A, 70).unwrap();
    assert_eq!(p.availability(70), 0);
    // A new bitfield replaces the old one.
    p.peer_bitfield(B, &bitfield(100, &[1])).unwrap();
    assert_eq!(p.availability(69), 0);
    assert_eq!(p.availability(1), 1);
    p.check_consistency();
}

#[test]
fn counters_and_completion() {
    let mut p = picker(4, 1);
    p.set_priority(3, 0).unwrap();
    assert_eq!(p.wanted_bytes(), 3 * u64::from(BLOCK_SIZE));
    p.piece_verified(0).unwrap(); // from resume data
    assert!(p.have(0));
    assert_eq!(p.remaining_bytes(), 2 * u64::from(BLOCK_SIZE));
    assert_eq!(p.verified_bytes(), u64::from(BLOCK_SIZE));
    p.peer_have_all(A);
    let got = p.pick_blocks(A, 10, now());
    assert_eq!(got.len(), 2);
    assert!(p.in_endgame());
    for b in got {
        deliver(&mut p, A, b);
    }
    assert!(p.is_complete());
    assert!(!p.in_endgame());
    // Wanting piece 3 again makes the torrent incomplete.
    p.set_priority(3, 1).unwrap();
    assert!(!p.is_complete());
    assert_eq!(pieces_of(&p.pick_blocks(A, 10, now())), [3]);
    // Verifying a piece with requests in flight reports them as cancels.
    let cancels = p.piece_verified(3).unwrap();
    assert_eq!(
        cancels,
        [Cancel {
            peer: A,
            block: BlockRef::new(3, 0, BLOCK_SIZE)
        }]
    );
    assert!(p.is_complete());
}

#[test]
fn few_piece_peer_uses_the_candidate_path() {
    // A peer with few pieces among many is sorted by key rather than scanned.
    let mut p = picker(1000, 1);
    p.peer_have_all(A);
    p.peer_bitfield(B, &bitfield(1000, &[10, 20, 30])).unwrap();
    p.peer_have(C, 20).unwrap();
    p.set_priority(30, 6).unwrap();
    assert_eq!(pieces_of(&p.pick_blocks(B, 3, now())), [30, 10, 20]);
}

// ----- simulation -----

#[derive(Debug, Clone)]
struct Swarm {
    pieces: u32,
    blocks: u32,
    last: u32,
    peers: Vec<Vec<bool>>,
    priorities: Vec<u8>,
    seed: u64,
    fail_every: u32,
}

fn swarm() -> impl Strategy<Value = Swarm> {
    (
        1u32..40,
        1u32..4,
        1u32..=BLOCK_SIZE,
        1usize..6,
        any::<u64>(),
        2u32..6,
    )
        .prop_flat_map(|(pieces, blocks, last, npeers, seed, fail_every)| {
            (
                proptest::collection::vec(
                    proptest::collection::vec(any::<bool>(), pieces as usize),
                    npeers,
                ),
                proptest::collection::vec(
                    prop_oneof![1 => Just(0u8), 4 => 1u8..=7],
                    pieces as usize,
                ),
            )
                .prop_map(move |(peers, priorities)| Swarm {
                    pieces,
                    blocks,
                    last,
                    peers,
                    priorities,
                    seed,
                    fail_every,
                })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn swarm_downloads_everything_available(s in swarm()) {
        let piece_len = s.blocks * BLOCK_SIZE;
        let total = u64::from(s.pieces - 1) * u64::from(piece_len) + u64::from(s.last);
        let mut p = PiecePicker::uniform(piece_len, total).unwrap().with_seed(s.seed);
        for (i, &prio) in s.priorities.iter().enumerate() {
            p.set_priority(i as u32, prio).unwrap();
        }
        for (i, has) in s.peers.iter().enumerate() {
            let set: Vec<u32> = (0..s.pieces).filter(|&q| has[q as usize]).collect();
            if set.len() == s.pieces as usize && i % 2 == 0 {
                p.peer_have_all(PeerKey(i as u64));
            } else {
                p.peer_bitfield(PeerKey(i as u64), &bitfield(s.pieces, &set)).unwrap();
            }
        }
        // The peer that answers a block; rotates so that endgame duplicates happen.
        let mut rng = crate::rng::SplitMix64::new(s.seed);
        let mut failures = 0u32;
        let mut outstanding: Vec<(PeerKey, BlockRef)> = Vec::new();
        for _round in 0..10_000 {
            let t = now();
            for (i, has) in s.peers.iter().enumerate() {
                let peer = PeerKey(i as u64);
                let endgame = p.in_endgame();
                let got = p.pick_blocks(peer, 1 + rng.below(6), t);
                for b in &got {
                    let prio = s.priorities[b.piece as usize];
                    prop_assert!(prio > 0, "priority-0 piece {} requested", b.piece);
                    prop_assert!(!p.have(b.piece), "piece {} requested though we have it", b.piece);
                    prop_assert!(has[b.piece as usize], "peer {} lacks piece {}", i, b.piece);
                    let n = p.requesters(*b).len();
                    prop_assert!(n <= MAX_REQUESTERS);
                    if !endgame {
                        prop_assert_eq!(n, 1, "block {:?} requested twice outside endgame", b);
                    }
                    outstanding.push((peer, *b));
                }
            }
            // Answer a random subset; sometimes reject or time out instead.
            let mut keep = Vec::new();
            for (peer, b) in outstanding.drain(..) {
                match rng.below(8) {
                    0 => { p.request_rejected(peer, b); }
                    1 | 2 => keep.push((peer, b)),
                    _ => {
                        let r = p.block_received(peer, b).unwrap();
                        for c in &r.cancels {
                            prop_assert!(c.peer != peer && c.block == b);
                        }
                        if r.piece_complete {
                            failures += 1;
                            if failures.is_multiple_of(s.fail_every) {
                                let bad = p.piece_failed(b.piece).unwrap();
                                prop_assert!(!bad.is_empty());
                            } else {
                                p.piece_verified(b.piece).unwrap();
                            }
                        }
                    }
                }
            }
            outstanding = keep;
            // Requests cancelled by the picker are gone from its records.
            outstanding.retain(|(peer, b)| p.requests(*peer).any(|x| x == *b));
            // Now and then a peer reconnects (its requests are lost) or a reader sets a
            // deadline (far ahead, so that it only reorders picks).
            if rng.below(16) == 0 {
                let i = rng.below(s.peers.len());
                let peer = PeerKey(i as u64);
                p.peer_disconnected(peer);
                let set: Vec<u32> = (0..s.pieces).filter(|&q| s.peers[i][q as usize]).collect();
                p.peer_bitfield(peer, &bitfield(s.pieces, &set)).unwrap();
                outstanding.retain(|(o, _)| *o != peer);
            }
            if rng.below(8) == 0 {
                let q = rng.below(s.pieces as usize) as u32;
                p.set_deadline(q, t + Duration::from_secs(3600)).unwrap();
            }
            p.check_consistency();
            if p.is_complete() {
                break;
            }
        }
        // Everything some peer has and we want is verified.
        for q in 0..s.pieces {
            let wanted = s.priorities[q as usize] > 0;
            let available = s.peers.iter().any(|h| h[q as usize]);
            prop_assert_eq!(p.have(q), wanted && available, "piece {}", q);
        }
        let union_complete = (0..s.pieces)
            .all(|q| s.priorities[q as usize] == 0 || s.peers.iter().any(|h| h[q as usize]));
        prop_assert_eq!(p.is_complete(), union_complete);
        // Peers leaving return every request and availability.
        for i in 0..s.peers.len() {
            p.peer_disconnected(PeerKey(i as u64));
        }
        for q in 0..s.pieces {
            prop_assert_eq!(p.availability(q), 0);
        }
        p.check_consistency();
    }
}

#[test]
fn pieces_nobody_has_do_not_hold_off_endgame() {
    let mut p = picker(3, 1);
    p.peer_bitfield(A, &bitfield(3, &[0, 1])).unwrap();
    p.peer_bitfield(B, &bitfield(3, &[0, 1])).unwrap();
    assert_eq!(p.pick_blocks(A, 5, now()).len(), 2);
    assert!(p.in_endgame());
    assert_eq!(p.pick_blocks(B, 5, now()).len(), 2);
    // Once a peer has piece 2, its free block is pickable again: no endgame.
    p.peer_have(C, 2).unwrap();
    assert!(!p.in_endgame());
    assert_eq!(pieces_of(&p.pick_blocks(C, 5, now())), [2]);
    assert!(p.in_endgame());
    // A seed makes every piece available.
    p.peer_disconnected(C);
    assert!(p.in_endgame()); // piece 2 is requested from nobody now, and nobody has it
    p.peer_have_all(C);
    assert!(!p.in_endgame());
    p.check_consistency();
}
