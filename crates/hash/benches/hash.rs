//! Throughput of SHA-1 and BEP 52 Merkle piece hashing, on one core and on all cores.
//!
//! `cargo bench -p webtorrent-hash` (results: docs/benchmarks/hash.md).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use webtorrent_hash::{
    Algorithm, BLOCK_SIZE, HashEngine, Job, MultiCoreEngine, SingleThreadEngine, merkle,
};

/// Bytes hashed per iteration of the batch benchmarks.
const BATCH_BYTES: usize = 16 << 20;

/// Piece sizes: one block, 1 MiB, 4 MiB.
const SIZES: [(&str, usize); 3] = [("16KiB", BLOCK_SIZE), ("1MiB", 1 << 20), ("4MiB", 4 << 20)];

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// One buffer hashed on the calling thread, with the plain functions.
fn single_buffer(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_core");
    for (name, size) in SIZES {
        let buffer = data(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("sha1", name), &buffer, |b, buffer| {
            b.iter(|| webtorrent_hash::sha1(black_box(buffer)));
        });
        group.bench_with_input(BenchmarkId::new("sha256", name), &buffer, |b, buffer| {
            b.iter(|| webtorrent_hash::sha256(black_box(buffer)));
        });
        group.bench_with_input(
            BenchmarkId::new("merkle_piece", name),
            &buffer,
            |b, buffer| {
                b.iter(|| merkle::piece_hash(black_box(buffer), size));
            },
        );
    }
    group.finish();
}

fn jobs(buffer: &[u8], piece: usize, algorithm: Algorithm) -> Vec<Job<'_>> {
    buffer
        .chunks(piece)
        .map(|chunk| Job::new(chunk, algorithm))
        .collect()
}

/// A 16 MiB batch of pieces through an engine: the single-thread engine and the multi-core
/// engine on every core.
fn batches(c: &mut Criterion) {
    let buffer = data(BATCH_BYTES);
    let multi = MultiCoreEngine::default();
    let threads = multi.threads();
    let mut group = c.benchmark_group("batch_16MiB");
    group.throughput(Throughput::Bytes(BATCH_BYTES as u64));
    group.sample_size(20);
    for (name, piece) in SIZES {
        for (algo_name, algorithm) in [
            ("sha1", Algorithm::Sha1),
            (
                "merkle_piece",
                Algorithm::MerklePiece {
                    piece_length: piece,
                },
            ),
        ] {
            let mut batch = jobs(&buffer, piece, algorithm);
            group.bench_function(BenchmarkId::new(format!("{algo_name}/single"), name), |b| {
                b.iter(|| SingleThreadEngine.run(black_box(&mut batch)));
            });
            group.bench_function(
                BenchmarkId::new(format!("{algo_name}/multi_{threads}"), name),
                |b| b.iter(|| multi.run(black_box(&mut batch))),
            );
        }
    }
    group.finish();
}

/// The same batches through the submit/complete queue on the persistent workers.
fn queue(c: &mut Criterion) {
    let multi = MultiCoreEngine::default();
    let threads = multi.threads();
    let mut group = c.benchmark_group("queue_16MiB");
    group.throughput(Throughput::Bytes(BATCH_BYTES as u64));
    group.sample_size(20);
    for (name, piece) in SIZES {
        let pieces: Vec<std::sync::Arc<[u8]>> = data(BATCH_BYTES)
            .chunks(piece)
            .map(std::sync::Arc::from)
            .collect();
        let mut queue = multi.queue::<std::sync::Arc<[u8]>>();
        for (algo_name, algorithm) in [
            ("sha1", Algorithm::Sha1),
            (
                "merkle_piece",
                Algorithm::MerklePiece {
                    piece_length: piece,
                },
            ),
        ] {
            group.bench_function(
                BenchmarkId::new(format!("{algo_name}/workers_{threads}"), name),
                |b| {
                    b.iter(|| {
                        for (id, p) in pieces.iter().enumerate() {
                            queue.submit(id as u64, std::sync::Arc::clone(p), algorithm);
                        }
                        black_box(queue.complete_all());
                    });
                },
            );
        }
    }
    group.finish();
}

/// BEP 52 hash exchange over a file of 65,536 pieces (e.g. 1 TiB in 16 MiB pieces, or
/// 1 GiB in 16 KiB ones): building the served tree, and fetching the whole layer through
/// the fetcher (128 requests of 512 hashes, each verified up to the root).
fn exchange(c: &mut Criterion) {
    use webtorrent_hash::exchange::{FetcherConfig, LayerFetcher, LayerFile, PieceTree};
    const PIECES: usize = 65_536;
    let layer: Vec<[u8; 32]> = (0..PIECES as u32)
        .map(|i| webtorrent_hash::sha256(&i.to_le_bytes()))
        .collect();
    let root = merkle::root_from_piece_layer(&layer, BLOCK_SIZE);
    let mut group = c.benchmark_group("exchange");
    group.throughput(Throughput::Elements(PIECES as u64));
    group.bench_function("piece_tree_65536", |b| {
        b.iter(|| PieceTree::new(layer.clone(), BLOCK_SIZE, &root).expect("the root"));
    });
    let tree = PieceTree::new(layer.clone(), BLOCK_SIZE, &root).expect("the root");
    group.bench_function("fetch_layer_65536", |b| {
        b.iter(|| {
            let now = std::time::Instant::now();
            let file = LayerFile {
                file: 0,
                root,
                length: (PIECES * BLOCK_SIZE) as u64,
            };
            let mut fetcher = LayerFetcher::new(BLOCK_SIZE, [file], FetcherConfig::default());
            fetcher.add_peer(0u8);
            while let Some((peer, request)) = fetcher.poll_request(now) {
                let hashes = tree.answer(&request).expect("a valid request");
                fetcher
                    .handle_hashes(now, &peer, &request, &hashes)
                    .expect("honest hashes");
            }
            assert!(fetcher.is_complete());
        });
    });
    group.finish();
}

criterion_group!(benches, single_buffer, batches, queue, exchange);
criterion_main!(benches);
