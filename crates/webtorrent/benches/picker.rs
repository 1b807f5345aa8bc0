//! Piece picker throughput: a 100 000-piece torrent, 50 peers with random bitfields.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use webtorrent::picker::{PeerKey, PiecePicker};

const PIECES: u32 = 100_000;
const PEERS: u64 = 50;
/// 256 KiB pieces: 16 blocks each.
const PIECE_LENGTH: u32 = 256 * 1024;

/// A deterministic generator for the bitfields (SplitMix64).
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Peer `i` has each piece with probability (i + 1) / (PEERS + 1); every fifth peer is a seed.
fn swarm() -> PiecePicker {
    let total = u64::from(PIECES) * u64::from(PIECE_LENGTH);
    let mut picker = PiecePicker::uniform(PIECE_LENGTH, total).expect("valid geometry");
    let mut rng = 42;
    for i in 0..PEERS {
        if i % 5 == 4 {
            picker.peer_have_all(PeerKey(i));
            continue;
        }
        let mut bitfield = vec![0u8; PIECES.div_ceil(8) as usize];
        for piece in 0..PIECES {
            if next(&mut rng) % (PEERS + 1) <= i {
                bitfield[(piece / 8) as usize] |= 0x80 >> (piece % 8);
            }
        }
        picker
            .peer_bitfield(PeerKey(i), &bitfield)
            .expect("bitfield of the right length");
    }
    picker
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    c.bench_function("picker/setup 100k pieces 50 peers", |b| b.iter(swarm));

    let base = swarm();
    c.bench_function("picker/pick 64 blocks for each of 50 peers", |b| {
        b.iter_batched(
            || base.clone(),
            |mut picker| {
                for i in 0..PEERS {
                    black_box(picker.pick_blocks(PeerKey(i), 64, now));
                }
                picker
            },
            BatchSize::LargeInput,
        );
    });

    c.bench_function("picker/have + receive cycle", |b| {
        let mut picker = base.clone();
        let mut i = 0u64;
        b.iter(|| {
            let peer = PeerKey(i % PEERS);
            i += 1;
            for block in picker.pick_blocks(peer, 16, now) {
                let received = picker.block_received(peer, block).expect("picked block");
                if received.piece_complete {
                    picker.piece_verified(block.piece).expect("in range");
                }
            }
            picker
                .peer_have(peer, (i % u64::from(PIECES)) as u32)
                .expect("in range");
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
