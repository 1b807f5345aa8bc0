//! BEP 52 Merkle trees: reference vectors from libtorrent, a naive model, proofs.

use proptest::prelude::*;
use webtorrent_hash::merkle::{
    self, FileHasher, MerkleError, Node, ZERO_LEAF, file_root, leaf_hashes, pad_hash, piece_hash,
    proof, proof_root, root_from_leaves, root_from_piece_layer, root_padded, verify_piece,
    verify_piece_layer, verify_proof,
};
use webtorrent_hash::{BLOCK_SIZE, sha256, sha256_pair};

/// The content libtorrent hashed: byte `i` is `i % 251`.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn nodes(s: &str) -> Vec<Node> {
    if s == "-" {
        return Vec::new();
    }
    unhex(s)
        .chunks(32)
        .map(|c| c.try_into().expect("32-byte node"))
        .collect()
}

struct Vector {
    piece_length: usize,
    length: usize,
    root: Node,
    layer: Vec<Node>,
}

fn vectors() -> Vec<Vector> {
    include_str!("../testdata/libtorrent_vectors.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 4, "line {line}");
            Vector {
                piece_length: fields[0].parse().expect("piece length"),
                length: fields[1].parse().expect("length"),
                root: nodes(fields[2])[0],
                layer: nodes(fields[3]),
            }
        })
        .collect()
}

#[test]
fn libtorrent_vectors_file_root_and_layer() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 24);
    for v in &vectors {
        let data = content(v.length);
        let ctx = format!("piece_length {} length {}", v.piece_length, v.length);
        assert_eq!(file_root(&data, v.piece_length), Some(v.root), "{ctx}");
        assert_eq!(merkle::piece_layer(&data, v.piece_length), v.layer, "{ctx}");

        if v.layer.is_empty() {
            assert!(v.length <= v.piece_length, "{ctx}");
            assert_eq!(root_from_leaves(&leaf_hashes(&data)), v.root, "{ctx}");
        } else {
            assert_eq!(
                root_from_piece_layer(&v.layer, v.piece_length),
                v.root,
                "{ctx}"
            );
            assert!(
                verify_piece_layer(&v.layer, v.piece_length, &v.root),
                "{ctx}"
            );
            for (piece, expected) in data.chunks(v.piece_length).zip(&v.layer) {
                assert!(verify_piece(piece, v.piece_length, expected), "{ctx}");
            }
        }

        for chunk in [1, 1000, BLOCK_SIZE, 100_003] {
            if chunk == 1 && v.length > 4 * BLOCK_SIZE + 1 {
                continue; // byte-at-a-time is slow in debug builds; small files cover it
            }
            let mut hasher = FileHasher::new(v.piece_length);
            for part in data.chunks(chunk) {
                hasher.update(part);
            }
            let hashes = hasher.finish();
            assert_eq!(hashes.root, Some(v.root), "{ctx} chunk {chunk}");
            assert_eq!(hashes.piece_layer, v.layer, "{ctx} chunk {chunk}");
            assert_eq!(hashes.length, v.length as u64, "{ctx}");
        }
    }
}

#[test]
fn empty_file_has_no_root() {
    assert_eq!(file_root(&[], BLOCK_SIZE), None);
    let hashes = FileHasher::new(BLOCK_SIZE).finish();
    assert_eq!(hashes.root, None);
    assert!(hashes.piece_layer.is_empty());
    assert_eq!(hashes.length, 0);
    let mut hasher = FileHasher::new(4 * BLOCK_SIZE);
    hasher.update(&[]);
    assert_eq!(hasher.finish().root, None);
}

#[test]
fn one_block_file_root_is_its_leaf() {
    for len in [1, 100, BLOCK_SIZE - 1, BLOCK_SIZE] {
        let data = content(len);
        assert_eq!(file_root(&data, 1 << 20), Some(sha256(&data)));
    }
}

#[test]
fn small_file_pads_to_leaf_count_not_piece_width() {
    // Three leaves in a 64 KiB piece: the file root pads to 4 leaves, the piece hash to 4 too;
    // five leaves in a 256 KiB piece: root pads to 8 leaves, piece hash to 16.
    let data = content(5 * BLOCK_SIZE);
    let leaves = leaf_hashes(&data);
    let root8 = root_padded(&leaves, 8, ZERO_LEAF);
    assert_eq!(file_root(&data, 16 * BLOCK_SIZE), Some(root8));
    let piece16 = root_padded(&leaves, 16, ZERO_LEAF);
    assert_eq!(piece_hash(&data, 16 * BLOCK_SIZE), piece16);
    assert_ne!(root8, piece16);
    assert_eq!(piece16, sha256_pair(&root8, &pad_hash(3)));
}

#[test]
fn file_of_exactly_one_piece_stores_no_layer() {
    let data = content(4 * BLOCK_SIZE);
    let hashes = {
        let mut h = FileHasher::new(4 * BLOCK_SIZE);
        h.update(&data);
        h.finish()
    };
    assert!(hashes.piece_layer.is_empty());
    assert_eq!(hashes.root, Some(piece_hash(&data, 4 * BLOCK_SIZE)));
}

#[test]
fn file_hasher_reports_progress() {
    let data = content(2 * BLOCK_SIZE + 3);
    let mut hasher = FileHasher::new(BLOCK_SIZE);
    hasher.update(&data[..BLOCK_SIZE + 1]);
    assert_eq!(hasher.length(), BLOCK_SIZE as u64 + 1);
    assert_eq!(hasher.piece_length(), BLOCK_SIZE);
    assert_eq!(hasher.completed_pieces(), &[sha256(&data[..BLOCK_SIZE])]);
    assert!(format!("{hasher:?}").contains("completed_pieces: 1"));
}

#[test]
fn pad_hashes() {
    assert_eq!(pad_hash(0), [0; 32]);
    let mut expected = [0u8; 32];
    for h in 1..70 {
        expected = sha256_pair(&expected, &expected);
        assert_eq!(pad_hash(h), expected, "height {h}");
    }
    // Known value: SHA-256 of 64 zero bytes.
    assert_eq!(pad_hash(1), sha256(&[0; 64]));
}

#[test]
fn piece_length_validation_and_rounding() {
    assert_eq!(merkle::validate_piece_length(BLOCK_SIZE), Ok(()));
    assert_eq!(merkle::validate_piece_length(1 << 30), Ok(()));
    for bad in [0, 1, BLOCK_SIZE / 2, BLOCK_SIZE + 1, 3 * BLOCK_SIZE] {
        assert_eq!(
            merkle::validate_piece_length(bad),
            Err(MerkleError::InvalidPieceLength(bad))
        );
    }
    // Invalid lengths round up to the next valid one and never panic.
    assert_eq!(merkle::leaves_per_piece(0), 1);
    assert_eq!(merkle::leaves_per_piece(3 * BLOCK_SIZE), 4);
    assert_eq!(merkle::piece_height(usize::MAX), usize::BITS - 14);
    let data = content(3 * BLOCK_SIZE);
    assert_eq!(
        piece_hash(&data, 3 * BLOCK_SIZE),
        piece_hash(&data, 4 * BLOCK_SIZE)
    );
    assert_eq!(piece_hash(&data, 0), piece_hash(&data, 4 * BLOCK_SIZE));
    let _ = piece_hash(&data, usize::MAX);
    let _ = file_root(&data, usize::MAX);
    let _ = FileHasher::new(usize::MAX).finish();
    // Data longer than the piece widens the tree instead of panicking.
    assert_eq!(
        piece_hash(&data, BLOCK_SIZE),
        piece_hash(&data, 4 * BLOCK_SIZE)
    );
    assert_eq!(merkle::leaf_count(0), 0);
    assert_eq!(merkle::leaf_count(BLOCK_SIZE as u64 + 1), 2);
}

#[test]
fn empty_piece_and_layer_edge_cases() {
    assert_eq!(piece_hash(&[], 4 * BLOCK_SIZE), pad_hash(2));
    assert_eq!(root_from_leaves(&[]), ZERO_LEAF);
    assert_eq!(root_from_piece_layer(&[], 4 * BLOCK_SIZE), pad_hash(2));
    assert!(!verify_piece_layer(&[], BLOCK_SIZE, &ZERO_LEAF));
    assert_eq!(root_padded(&[], 0, [9; 32]), [9; 32]);
    // A width below the layer length or not a power of two is raised.
    let layer: Vec<Node> = (0..5u8).map(|i| [i; 32]).collect();
    assert_eq!(
        root_padded(&layer, 3, ZERO_LEAF),
        root_padded(&layer, 8, ZERO_LEAF)
    );
    assert_eq!(
        root_padded(&layer, 6, ZERO_LEAF),
        root_padded(&layer, 8, ZERO_LEAF)
    );
    let _ = root_padded(&layer, usize::MAX, ZERO_LEAF);
}

/// The tree computed the obvious way: one layer at a time, padding each odd layer.
fn naive_root(layer: &[Node], width: usize, pad: Node) -> Node {
    let mut current: Vec<Node> = layer.to_vec();
    current.resize(width, pad);
    while current.len() > 1 {
        current = current
            .chunks(2)
            .map(|pair| sha256_pair(&pair[0], &pair[1]))
            .collect();
    }
    current[0]
}

fn arb_layer(max: usize) -> impl Strategy<Value = Vec<Node>> {
    proptest::collection::vec(any::<[u8; 32]>(), 1..max)
}

proptest! {
    #[test]
    fn root_padded_matches_naive(layer in arb_layer(70), extra in 0u32..3, pad in any::<[u8; 32]>()) {
        let width = layer.len().next_power_of_two() << extra;
        prop_assert_eq!(root_padded(&layer, width, pad), naive_root(&layer, width, pad));
    }

    #[test]
    fn roots_match_naive(layer in arb_layer(70), piece_shift in 0u32..4) {
        let width = layer.len().next_power_of_two();
        prop_assert_eq!(root_from_leaves(&layer), naive_root(&layer, width, ZERO_LEAF));
        let piece_length = BLOCK_SIZE << piece_shift;
        prop_assert_eq!(
            root_from_piece_layer(&layer, piece_length),
            naive_root(&layer, width, pad_hash(piece_shift))
        );
    }

    #[test]
    fn piece_hash_matches_naive(len in 0usize..(9 * BLOCK_SIZE), piece_shift in 0u32..5) {
        let piece_length = BLOCK_SIZE << piece_shift;
        let data = content(len);
        let leaves = leaf_hashes(&data);
        let width = leaves.len().next_power_of_two().max(1 << piece_shift);
        prop_assert_eq!(piece_hash(&data, piece_length), naive_root(&leaves, width, ZERO_LEAF));
    }

    #[test]
    fn file_hasher_equals_file_root(
        len in 0usize..(12 * BLOCK_SIZE),
        piece_shift in 0u32..3,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let piece_length = BLOCK_SIZE << piece_shift;
        let data = content(len);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
        cuts.push(0);
        cuts.push(len);
        cuts.sort_unstable();
        let mut hasher = FileHasher::new(piece_length);
        for pair in cuts.windows(2) {
            hasher.update(&data[pair[0]..pair[1]]);
        }
        let hashes = hasher.finish();
        prop_assert_eq!(hashes.root, file_root(&data, piece_length));
        prop_assert_eq!(hashes.piece_layer, merkle::piece_layer(&data, piece_length));
        // The whole tree is the leaves padded to the next power of two of their count.
        if len > 0 {
            let leaves = leaf_hashes(&data);
            let width = leaves.len().next_power_of_two();
            prop_assert_eq!(hashes.root, Some(naive_root(&leaves, width, ZERO_LEAF)));
        }
    }

    #[test]
    fn proof_round_trip(
        layer in arb_layer(150),
        height in 0u32..4,
        range_shift in 0u32..8,
        pick in any::<prop::sample::Index>(),
    ) {
        let pad = pad_hash(height);
        let width = layer.len().next_power_of_two();
        let root = naive_root(&layer, width, pad);
        let count = (1usize << range_shift).min(width);
        let index = pick.index(width / count) * count;
        let uncles = proof(&layer, index, count, pad).expect("valid range");
        prop_assert_eq!(uncles.len(), (width / count).trailing_zeros() as usize);

        // The proven hashes, padding included where the range passes the end.
        let hashes: Vec<Node> = (index..index + count)
            .map(|i| layer.get(i).copied().unwrap_or(pad))
            .collect();
        prop_assert_eq!(verify_proof(&root, layer.len(), index, &hashes, &uncles), Ok(()));
        prop_assert_eq!(proof_root(index, &hashes, &uncles), Ok((root, 0)));

        // A partial proof stops at an inner node.
        if !uncles.is_empty() {
            let short = &uncles[..uncles.len() - 1];
            let (inner, position) = proof_root(index, &hashes, short).expect("aligned");
            prop_assert_eq!(position, (index / count) >> short.len());
            prop_assert_eq!(
                verify_proof(&root, layer.len(), index, &hashes, short),
                Err(MerkleError::ProofLength { expected: uncles.len(), actual: short.len() })
            );
            prop_assert_ne!(inner, root);
        }

        // Any flipped bit is caught.
        let mut bad = hashes.clone();
        bad[0][0] ^= 1;
        prop_assert_eq!(
            verify_proof(&root, layer.len(), index, &bad, &uncles),
            Err(MerkleError::RootMismatch)
        );
        if let Some(first) = uncles.first() {
            let mut bad_uncles = uncles.clone();
            bad_uncles[0] = sha256(first);
            prop_assert_eq!(
                verify_proof(&root, layer.len(), index, &hashes, &bad_uncles),
                Err(MerkleError::RootMismatch)
            );
        }
    }
}

#[test]
fn proof_of_blocks_within_a_file() {
    // Leaves of a 5-block file: prove block 4 (the short last one) against the root.
    let data = content(4 * BLOCK_SIZE + 10);
    let leaves = leaf_hashes(&data);
    let root = file_root(&data, BLOCK_SIZE).expect("non-empty");
    let uncles = proof(&leaves, 4, 1, ZERO_LEAF).expect("in range");
    assert_eq!(uncles.len(), 3);
    assert_eq!(uncles[0], ZERO_LEAF);
    assert_eq!(uncles[1], pad_hash(1));
    assert_eq!(
        verify_proof(
            &root,
            leaves.len(),
            4,
            &[sha256(&data[4 * BLOCK_SIZE..])],
            &uncles
        ),
        Ok(())
    );
    // Piece layer range against the same root (piece length 16 KiB: the leaves are pieces).
    let uncles = proof(&leaves, 0, 4, ZERO_LEAF).expect("in range");
    assert_eq!(
        verify_proof(&root, leaves.len(), 0, &leaves[..4], &uncles),
        Ok(())
    );
}

#[test]
fn proof_rejects_bad_ranges() {
    let layer: Vec<Node> = (0..5u8).map(|i| [i; 32]).collect();
    assert_eq!(
        proof(&layer, 0, 3, ZERO_LEAF),
        Err(MerkleError::UnalignedRange { index: 0, count: 3 })
    );
    assert_eq!(
        proof(&layer, 2, 4, ZERO_LEAF),
        Err(MerkleError::UnalignedRange { index: 2, count: 4 })
    );
    assert_eq!(
        proof(&layer, 0, 0, ZERO_LEAF),
        Err(MerkleError::UnalignedRange { index: 0, count: 0 })
    );
    assert_eq!(
        proof(&layer, 8, 1, ZERO_LEAF),
        Err(MerkleError::RangeOutOfBounds {
            index: 8,
            count: 1,
            width: 8
        })
    );
    assert_eq!(
        proof(&layer, 0, 16, ZERO_LEAF),
        Err(MerkleError::RangeOutOfBounds {
            index: 0,
            count: 16,
            width: 8
        })
    );
    assert_eq!(proof(&[], 0, 1, ZERO_LEAF), Err(MerkleError::EmptyLayer));
    let root = root_from_leaves(&layer);
    assert_eq!(
        verify_proof(&root, 0, 0, &layer[..1], &[]),
        Err(MerkleError::EmptyLayer)
    );
    assert_eq!(
        verify_proof(&root, usize::MAX, 0, &layer[..1], &[]),
        Err(MerkleError::EmptyLayer)
    );
    assert_eq!(
        verify_proof(&root, 5, 0, &layer[..3], &[]),
        Err(MerkleError::UnalignedRange { index: 0, count: 3 })
    );
    assert_eq!(
        proof_root(1, &layer[..2], &[]),
        Err(MerkleError::UnalignedRange { index: 1, count: 2 })
    );
    // A whole-tree "proof" has no uncles.
    assert_eq!(proof(&layer[..4], 0, 4, ZERO_LEAF), Ok(Vec::new()));
    assert_eq!(
        verify_proof(&root_from_leaves(&layer[..4]), 4, 0, &layer[..4], &[]),
        Ok(())
    );
    // Errors print something useful.
    assert_eq!(
        MerkleError::ProofLength {
            expected: 3,
            actual: 2
        }
        .to_string(),
        "expected 3 uncle hashes, got 2"
    );
}
