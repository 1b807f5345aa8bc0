//! Stores against torrents built in memory: layouts, block I/O, verification, recheck,
//! resume data and path safety.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use webtorrent_hash::{MultiCoreEngine, SingleThreadEngine};
use webtorrent_metainfo::{MemoryFile, MetaVersion, Metainfo, TorrentBuilder};
use webtorrent_storage::{
    Bitfield, FileState, FileStorage, Layout, MemoryStorage, ResumeData, ResumeError, Storage,
    StorageError, recheck,
};

const BLOCK: usize = 16 * 1024;

/// Deterministic bytes (xorshift), never all zero.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Fixture {
    torrent: Metainfo,
    layout: Layout,
    /// Content by path relative to the download root.
    content: HashMap<PathBuf, Vec<u8>>,
}

impl Fixture {
    fn new(version: MetaVersion, piece_length: u64, files: &[(&str, usize)], seed: u64) -> Self {
        let mut content = HashMap::new();
        let mut memory = Vec::new();
        for (i, (path, len)) in files.iter().enumerate() {
            let data = bytes(*len, seed + i as u64);
            content.insert(Path::new("t").join(path), data.clone());
            memory.push(MemoryFile::new(*path, data));
        }
        let torrent = TorrentBuilder::from_memory("t", memory)
            .meta_version(version)
            .piece_length(Some(piece_length))
            .build()
            .expect("valid torrent");
        let layout = Layout::from_metainfo(&torrent);
        Self {
            torrent,
            layout,
            content,
        }
    }

    fn single(version: MetaVersion, piece_length: u64, len: usize) -> Self {
        let data = bytes(len, 99);
        let torrent = TorrentBuilder::from_memory_file("one.bin", data.clone())
            .meta_version(version)
            .piece_length(Some(piece_length))
            .build()
            .expect("valid torrent");
        let layout = Layout::from_metainfo(&torrent);
        let content = HashMap::from([(PathBuf::from("one.bin"), data)]);
        Self {
            torrent,
            layout,
            content,
        }
    }

    /// The bytes piece `piece` must hold.
    fn piece(&self, piece: u32) -> Vec<u8> {
        let size = self.layout.piece_size(piece).unwrap();
        let files = self.layout.info().files();
        let mut out = Vec::new();
        for s in self.layout.segments(piece, 0, size).unwrap() {
            if s.pad {
                out.resize(out.len() + s.length as usize, 0);
            } else {
                let data = &self.content[&files[s.file].path];
                out.extend_from_slice(&data[s.offset as usize..(s.offset + s.length) as usize]);
            }
        }
        assert_eq!(out.len() as u64, size);
        out
    }

    /// Every (piece, offset, length) block, shuffled by `seed`.
    fn blocks(&self, seed: u64) -> Vec<(u32, u32, u32)> {
        let mut blocks = Vec::new();
        for p in 0..self.layout.piece_count() {
            let size = self.layout.piece_size(p).unwrap() as u32;
            let mut off = 0;
            while off < size {
                let len = (size - off).min(BLOCK as u32);
                blocks.push((p, off, len));
                off += len;
            }
        }
        let order = bytes(blocks.len() * 8, seed);
        for i in (1..blocks.len()).rev() {
            let r = u64::from_le_bytes(order[i * 8..i * 8 + 8].try_into().unwrap());
            blocks.swap(i, (r % (i as u64 + 1)) as usize);
        }
        blocks
    }

    fn write_pieces(&self, store: &dyn Storage, pieces: &BTreeSet<u32>, seed: u64) {
        for (p, off, len) in self.blocks(seed) {
            if pieces.contains(&p) {
                let data = self.piece(p);
                store
                    .write_block(p, off, &data[off as usize..(off + len) as usize])
                    .unwrap();
            }
        }
    }

    fn all(&self) -> BTreeSet<u32> {
        (0..self.layout.piece_count()).collect()
    }
}

const ODD_FILES: &[(&str, usize)] = &[
    ("a/first.bin", 3 * BLOCK + 17),
    ("a/empty", 0),
    ("b/c/second.bin", 1),
    ("b/empty-too", 0),
    ("third.bin", 5 * BLOCK - 3),
    ("zz.bin", 70_001),
];

fn versions() -> [MetaVersion; 3] {
    [MetaVersion::V1, MetaVersion::V2, MetaVersion::Hybrid]
}

fn check_round_trip(fx: &Fixture, store: &dyn Storage, seed: u64) {
    fx.write_pieces(store, &fx.all(), seed);
    for p in 0..fx.layout.piece_count() {
        assert_eq!(store.read_piece(p).unwrap(), fx.piece(p), "piece {p}");
        assert!(store.verify_piece(p).unwrap(), "piece {p} verifies");
    }
    // Blocks read back at odd offsets and lengths too.
    for (p, off, len) in fx.blocks(seed + 1) {
        let want = fx.piece(p);
        let (off, len) = (off + len / 3, len - len / 3);
        assert_eq!(
            store.read_block(p, off, len).unwrap(),
            &want[off as usize..(off + len) as usize]
        );
    }
    assert!(store.verified().is_full());
}

#[test]
fn file_storage_multi_file_layouts() {
    for version in versions() {
        for piece_length in [16 * 1024, 32 * 1024] {
            let fx = Fixture::new(version, piece_length, ODD_FILES, 1);
            let dir = tempfile::tempdir().unwrap();
            let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
            // Empty files exist from the start.
            assert_eq!(std::fs::read(dir.path().join("t/a/empty")).unwrap(), b"");
            assert!(dir.path().join("t/b/empty-too").is_file());
            check_round_trip(&fx, &store, piece_length);
            store.flush().unwrap();
            for (path, data) in &fx.content {
                assert_eq!(
                    &std::fs::read(dir.path().join(path)).unwrap(),
                    data,
                    "{path:?}"
                );
            }
            // Pad files are never created: only the torrent's own files are there.
            let mut on_disk = Vec::new();
            walk(&dir.path().join("t"), &mut on_disk);
            assert_eq!(on_disk.len(), fx.content.len(), "{version}: {on_disk:?}");
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn memory_storage_multi_file_layouts() {
    for version in versions() {
        let fx = Fixture::new(version, 16 * 1024, ODD_FILES, 2);
        let store = MemoryStorage::new(fx.layout.clone());
        check_round_trip(&fx, &store, 7);
        let fx = Fixture::single(version, 32 * 1024, 100_000);
        check_round_trip(&fx, &MemoryStorage::new(fx.layout.clone()), 8);
    }
}

#[test]
fn hybrid_has_pad_files_and_checks_both_hashes() {
    let fx = Fixture::new(MetaVersion::Hybrid, 16 * 1024, ODD_FILES, 3);
    assert!(fx.layout.info().files().iter().any(|f| f.is_pad()));
    for p in 0..fx.layout.piece_count() {
        assert_eq!(fx.layout.piece_checks(p).unwrap().len(), 2, "piece {p}");
    }
    let store = MemoryStorage::new(fx.layout.clone());
    fx.write_pieces(&store, &fx.all(), 3);
    // A peer sending non-zero bytes where a pad file lies: they are dropped, the piece
    // still holds zeros there.
    let pad_piece = (0..fx.layout.piece_count())
        .find(|&p| {
            let size = fx.layout.piece_size(p).unwrap();
            fx.layout
                .segments(p, 0, size)
                .unwrap()
                .iter()
                .any(|s| s.pad)
        })
        .expect("a piece with padding");
    let size = fx.layout.piece_size(pad_piece).unwrap() as usize;
    store.write_block(pad_piece, 0, &vec![0xAA; size]).unwrap();
    let back = store.read_piece(pad_piece).unwrap();
    assert_eq!(back[size - 1], 0, "pad bytes read as zeros");
    assert!(!store.verify_piece(pad_piece).unwrap());
    assert!(!store.verified().has(pad_piece));
}

#[test]
fn v2_info_alone_cannot_verify_long_files() {
    let fx = Fixture::new(
        MetaVersion::V2,
        16 * 1024,
        &[("big", 5 * BLOCK), ("small", 10)],
        4,
    );
    let layout = Layout::new(fx.layout.info().clone());
    let store = MemoryStorage::new(layout.clone());
    fx.write_pieces(&store, &fx.all(), 1);
    let small = fx.layout.info().file_pieces(1).unwrap().start;
    // `small` fits in one piece: its pieces root is in the info dictionary.
    assert!(store.verify_piece(small).unwrap());
    assert!(matches!(
        store.verify_piece(0),
        Err(StorageError::NoPieceHash { piece: 0 })
    ));
}

#[test]
fn out_of_range_and_missing_data_are_typed_errors() {
    let fx = Fixture::new(
        MetaVersion::V1,
        16 * 1024,
        &[("x", 20_000), ("y", 5_000)],
        5,
    );
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    let n = fx.layout.piece_count();
    assert!(matches!(
        store.read_block(n, 0, 1),
        Err(StorageError::PieceOutOfRange { .. })
    ));
    assert!(matches!(
        store.write_block(n, 0, b"x"),
        Err(StorageError::PieceOutOfRange { .. })
    ));
    assert!(matches!(
        store.read_block(0, 16 * 1024 - 1, 2),
        Err(StorageError::BlockOutOfRange { .. })
    ));
    assert!(matches!(
        store.write_block(1, 0, &[1; 16 * 1024]),
        Err(StorageError::BlockOutOfRange { .. })
    ));
    assert!(matches!(
        store.read_block(u32::MAX, u32::MAX, u32::MAX),
        Err(StorageError::PieceOutOfRange { .. })
    ));
    assert!(matches!(
        store.read_file_at(1, 4_000, &mut [0; 1_001]),
        Err(StorageError::FileRangeOutOfRange { .. })
    ));
    assert!(matches!(
        store.read_file_at(9, 0, &mut [0; 1]),
        Err(StorageError::FileOutOfRange { .. })
    ));
    assert!(matches!(
        store.read_piece(0),
        Err(StorageError::FileMissing { file: 0, .. })
    ));
    // Missing data is "not verified", not an error.
    assert!(!store.verify_piece(0).unwrap());

    fx.write_pieces(&store, &fx.all(), 5);
    store.flush().unwrap();
    // Another program truncates a file behind our back.
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("t/y"))
        .unwrap()
        .set_len(100)
        .unwrap();
    let err = store.read_piece(1).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::ShortFile {
                file: 1,
                actual: 100,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_missing_data());
    assert!(store.replace_verified(Bitfield::new(n + 1)).is_err());
}

#[cfg(unix)]
#[test]
fn files_are_sparse() {
    use std::os::unix::fs::MetadataExt;
    let fx = Fixture::single(MetaVersion::V1, 1 << 20, 64 << 20);
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    let last = fx.layout.piece_count() - 1;
    let data = fx.piece(last);
    store.write_block(last, 0, &data[..BLOCK]).unwrap();
    store.flush().unwrap();
    let meta = std::fs::metadata(dir.path().join("one.bin")).unwrap();
    assert_eq!(meta.len(), 64 << 20, "full length at once");
    assert!(
        meta.blocks() * 512 < 8 << 20,
        "{} blocks allocated",
        meta.blocks()
    );
}

#[cfg(unix)]
#[test]
fn symlinked_folder_in_the_way_is_refused() {
    let fx = Fixture::new(MetaVersion::V1, 16 * 1024, &[("d/f", 1000), ("g", 10)], 6);
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("t")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("t/d")).unwrap();
    let store = FileStorage::new(fx.layout.clone(), &root).unwrap();
    let data = fx.piece(0);
    let err = store.write_block(0, 0, &data).unwrap_err();
    assert!(matches!(err, StorageError::UnsafePath { .. }), "{err:?}");
    assert!(matches!(
        store.read_piece(0),
        Err(StorageError::UnsafePath { .. })
    ));
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing escaped"
    );
    // A symlinked file is refused as well.
    std::fs::remove_file(root.join("t/d")).unwrap();
    std::fs::create_dir(root.join("t/d")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("target"), root.join("t/d/f")).unwrap();
    let store = FileStorage::new(fx.layout.clone(), &root).unwrap();
    assert!(matches!(
        store.write_block(0, 0, &data),
        Err(StorageError::UnsafePath { .. })
    ));
    assert!(!outside.path().join("target").exists());
}

#[test]
fn open_file_cache_is_bounded() {
    let files: Vec<(String, usize)> = (0..12).map(|i| (format!("f{i:02}"), 3000 + i)).collect();
    let spec: Vec<(&str, usize)> = files.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    let fx = Fixture::new(MetaVersion::V1, 16 * 1024, &spec, 7);
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::with_max_open_files(fx.layout.clone(), dir.path(), 3).unwrap();
    fx.write_pieces(&store, &fx.all(), 7);
    assert!(store.open_files() <= 3);
    store.flush().unwrap();
    for p in 0..fx.layout.piece_count() {
        assert!(store.verify_piece(p).unwrap());
        assert!(store.open_files() <= 3);
    }
    for (path, data) in &fx.content {
        assert_eq!(&std::fs::read(dir.path().join(path)).unwrap(), data);
    }
}

#[test]
fn concurrent_writers() {
    let fx = Arc::new(Fixture::new(MetaVersion::Hybrid, 16 * 1024, ODD_FILES, 8));
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(FileStorage::with_max_open_files(fx.layout.clone(), dir.path(), 2).unwrap());
    let blocks = fx.blocks(8);
    std::thread::scope(|s| {
        for chunk in blocks.chunks(blocks.len().div_ceil(4)) {
            let (fx, store) = (Arc::clone(&fx), Arc::clone(&store));
            s.spawn(move || {
                for &(p, off, len) in chunk {
                    let data = fx.piece(p);
                    store
                        .write_block(p, off, &data[off as usize..(off + len) as usize])
                        .unwrap();
                }
            });
        }
    });
    let verified = recheck(&*store, &MultiCoreEngine::new(2), |_, _| {}).unwrap();
    assert!(verified.is_full());
}

#[test]
fn recheck_reports_progress_and_skips_missing_files() {
    let fx = Fixture::new(MetaVersion::V1, 16 * 1024, ODD_FILES, 9);
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    let mut calls = Vec::new();
    let v = recheck(&store, &SingleThreadEngine, |d, t| calls.push((d, t))).unwrap();
    assert_eq!(v.count(), 0);
    let n = fx.layout.piece_count();
    assert_eq!(calls.last(), Some(&(n, n)));
    assert!(calls.windows(2).all(|w| w[0].0 < w[1].0));
}

fn resume_for(store: &FileStorage, torrent: &Metainfo) -> ResumeData {
    ResumeData::new(
        torrent.info_hashes(),
        store.file_states().unwrap(),
        store.verified(),
    )
}

#[test]
fn resume_round_trip_and_stale_files() {
    let fx = Fixture::new(MetaVersion::Hybrid, 16 * 1024, ODD_FILES, 10);
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::new(fx.layout.clone(), dir.path().join("dl")).unwrap();
    fx.write_pieces(&store, &fx.all(), 10);
    store.flush().unwrap();
    recheck(&store, &SingleThreadEngine, |_, _| {}).unwrap();
    let path = dir.path().join("t.resume");
    assert!(ResumeData::load(&path).unwrap().is_none());
    let saved = resume_for(&store, &fx.torrent);
    saved.save(&path).unwrap();
    let loaded = ResumeData::load(&path).unwrap().unwrap();
    assert_eq!(loaded, saved);
    let states = store.file_states().unwrap();
    assert!(loaded.validate(&fx.layout, &states).unwrap().is_full());

    // A file changed size: only its pieces drop out.
    let third = fx
        .layout
        .info()
        .files()
        .iter()
        .position(|f| f.path.ends_with("third.bin"))
        .unwrap();
    let mut changed = states.clone();
    changed[third] = Some(FileState::new(1, None));
    let v = loaded.validate(&fx.layout, &changed).unwrap();
    let dropped: Vec<u32> = (0..v.len()).filter(|&p| !v.has(p)).collect();
    assert_eq!(
        dropped,
        fx.layout
            .info()
            .file_pieces(third)
            .unwrap()
            .collect::<Vec<_>>()
    );

    // Another torrent's resume data is refused.
    let other = Fixture::new(MetaVersion::Hybrid, 16 * 1024, ODD_FILES, 11);
    assert!(matches!(
        loaded.validate(&other.layout, &states),
        Err(ResumeError::OtherTorrent { .. })
    ));
    assert!(matches!(
        loaded.validate(&fx.layout, &states[1..]),
        Err(ResumeError::CountMismatch { what: "files", .. })
    ));
}

#[test]
fn corrupt_or_torn_resume_files() {
    let fx = Fixture::new(MetaVersion::V1, 16 * 1024, ODD_FILES, 12);
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    let path = dir.path().join("t.resume");
    let saved = resume_for(&store, &fx.torrent);
    saved.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();

    // Every single-byte flip and every truncation is refused.
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x20;
        assert!(ResumeData::decode(&bad).is_err(), "flip at {i}");
        assert!(ResumeData::decode(&good[..i]).is_err(), "cut at {i}");
    }
    std::fs::write(&path, b"garbage").unwrap();
    assert!(matches!(
        ResumeData::load(&path),
        Err(ResumeError::BadMagic)
    ));

    // A crash mid-save leaves a torn temporary file: it is never read, the last complete
    // resume file stays valid.
    saved.save(&path).unwrap();
    std::fs::write(
        dir.path().join("t.resume.4242.0.tmp"),
        &good[..good.len() / 2],
    )
    .unwrap();
    assert_eq!(ResumeData::load(&path).unwrap(), Some(saved.clone()));
    // Saving again succeeds over an existing file and leaves no temporary file of its own.
    saved.save(&path).unwrap();
    let tmps = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count();
    assert_eq!(tmps, 1, "only the planted torn file");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Recheck finds exactly the pieces that were written whole and intact.
    #[test]
    fn recheck_finds_exactly_the_complete_pieces(
        version in prop_oneof![Just(MetaVersion::V1), Just(MetaVersion::V2), Just(MetaVersion::Hybrid)],
        sizes in proptest::collection::vec(0usize..60_000, 1..5),
        keep in proptest::collection::vec(any::<bool>(), 16),
        corrupt in proptest::collection::vec(any::<bool>(), 16),
        seed in any::<u64>(),
    ) {
        prop_assume!(sizes.iter().any(|&s| s > 0));
        let names: Vec<String> = (0..sizes.len()).map(|i| format!("d{}/f{i}", i % 2)).collect();
        let spec: Vec<(&str, usize)> = names.iter().map(String::as_str).zip(sizes.iter().copied()).collect();
        let fx = Fixture::new(version, 16 * 1024, &spec, seed);
        let n = fx.layout.piece_count();
        let written: BTreeSet<u32> = (0..n).filter(|&p| keep[p as usize % 16]).collect();
        let dir = tempfile::tempdir().unwrap();
        let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
        fx.write_pieces(&store, &written, seed);
        let mut good = written.clone();
        // Damage one byte of some written pieces (outside pad files).
        for &p in &written {
            if corrupt[(p as usize + 3) % 16] {
                let seg = fx.layout.segments(p, 0, fx.layout.piece_size(p).unwrap()).unwrap()
                    .into_iter().find(|s| !s.pad).unwrap();
                let mut b = [0u8];
                store.read_file_at(seg.file, seg.offset, &mut b).unwrap();
                store.write_file_at(seg.file, seg.offset, &[b[0] ^ 1]).unwrap();
                good.remove(&p);
            }
        }
        let verified = recheck(&store, &MultiCoreEngine::new(2), |_, _| {}).unwrap();
        prop_assert_eq!(verified.iter().collect::<BTreeSet<_>>(), good);
        prop_assert_eq!(store.verified(), verified);
    }
}

#[test]
fn stores_are_thread_safe_objects() {
    fn send_sync<T: Send + Sync + ?Sized>() {}
    send_sync::<FileStorage>();
    send_sync::<MemoryStorage>();
    send_sync::<dyn Storage>();
}

/// Regression: a failed first check of a piece must not shift the digests of the pieces
/// after it in the same recheck batch.
#[test]
fn recheck_after_a_failed_hybrid_piece() {
    let fx = Fixture::new(MetaVersion::Hybrid, 16 * 1024, &[("d0/f0", 16385)], 2);
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    fx.write_pieces(&store, &BTreeSet::from([1]), 1);
    let v = recheck(&store, &SingleThreadEngine, |_, _| {}).unwrap();
    assert_eq!(v.iter().collect::<Vec<_>>(), [1]);
}
