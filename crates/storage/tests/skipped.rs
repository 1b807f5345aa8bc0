//! Skipped files: the bytes they share with wanted pieces go to part files, never to the
//! skipped files themselves, and come back when the file is wanted again.

use std::path::Path;

use proptest::prelude::*;
use webtorrent_metainfo::{MemoryFile, MetaVersion, Metainfo, TorrentBuilder};
use webtorrent_storage::{FileStorage, Layout, Storage, StorageError};

/// Deterministic bytes, different per seed.
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
    data: Vec<Vec<u8>>,
}

impl Fixture {
    fn new(version: MetaVersion, piece_length: u64, sizes: &[usize]) -> Self {
        let data: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| bytes(n, i as u64 + 7))
            .collect();
        let files = data
            .iter()
            .enumerate()
            .map(|(i, d)| MemoryFile::new(format!("f{i}"), d.clone()))
            .collect();
        let torrent = TorrentBuilder::from_memory("t", files)
            .meta_version(version)
            .piece_length(Some(piece_length))
            .build()
            .expect("valid torrent");
        let layout = Layout::from_metainfo(&torrent);
        Self {
            torrent,
            layout,
            data,
        }
    }

    /// The torrent's files (pad files included) mapped to the fixture's, by name.
    fn content(&self, file: usize) -> Option<&[u8]> {
        let entry = &self.layout.info().files()[file];
        if entry.is_pad() {
            return None;
        }
        let name = entry.path.file_name()?.to_str()?;
        let index: usize = name.strip_prefix('f')?.parse().ok()?;
        Some(&self.data[index])
    }

    fn piece(&self, piece: u32) -> Vec<u8> {
        let size = self.layout.piece_size(piece).unwrap();
        let mut out = Vec::new();
        for s in self.layout.segments(piece, 0, size).unwrap() {
            match self.content(s.file) {
                Some(d) => {
                    out.extend_from_slice(&d[s.offset as usize..(s.offset + s.length) as usize])
                }
                None => out.resize(out.len() + s.length as usize, 0),
            }
        }
        out
    }

    /// Pieces touching a file not skipped.
    fn wanted_pieces(&self, skipped: &[bool]) -> Vec<u32> {
        let info = self.layout.info();
        let mut pieces: Vec<u32> = (0..info.files().len())
            .filter(|&f| !skipped[f] && !info.files()[f].is_pad())
            .filter_map(|f| info.file_pieces(f))
            .flatten()
            .collect();
        pieces.sort_unstable();
        pieces.dedup();
        pieces
    }

    /// Writes pieces in 5000-byte blocks (so blocks straddle files).
    fn write(&self, store: &FileStorage, pieces: &[u32]) {
        for &p in pieces {
            let data = self.piece(p);
            for (i, chunk) in data.chunks(5000).enumerate() {
                store.write_block(p, (i * 5000) as u32, chunk).unwrap();
            }
        }
    }
}

fn path(root: &Path, fx: &Fixture, file: usize) -> std::path::PathBuf {
    root.join(&fx.layout.info().files()[file].path)
}

fn part_files(store: &FileStorage) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(store.parts_dir()) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[test]
fn skipped_file_never_appears_and_comes_back_when_wanted() {
    // 16 KiB pieces: f1 starts inside piece 0 and ends inside piece 3.
    let fx = Fixture::new(MetaVersion::V1, 16 * 1024, &[10_000, 50_000, 20_000]);
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    let skipped = [false, true, false];
    store.set_skipped(&skipped).unwrap();
    assert_eq!(store.skipped(), skipped);

    let pieces = fx.wanted_pieces(&skipped);
    assert_eq!(pieces, [0, 3, 4]);
    fx.write(&store, &pieces);
    for &p in &pieces {
        assert!(store.verify_piece(p).unwrap(), "piece {p}");
        assert_eq!(store.read_piece(p).unwrap(), fx.piece(p));
    }
    store.flush().unwrap();
    assert!(
        !path(dir.path(), &fx, 1).exists(),
        "the skipped file was created"
    );
    assert_eq!(std::fs::read(path(dir.path(), &fx, 0)).unwrap(), fx.data[0]);
    assert_eq!(std::fs::read(path(dir.path(), &fx, 2)).unwrap(), fx.data[2]);
    // Only f1's runs in the two pieces it shares with wanted files have a part file.
    assert_eq!(part_files(&store), ["0-1", "3-1"]);
    // The part folder is hidden inside the download root.
    assert!(store.parts_dir().starts_with(dir.path()));
    assert!(
        store
            .parts_dir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with('.')
    );

    // A new store over the same folder finds the part files again.
    drop(store);
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    store.set_skipped(&skipped).unwrap();
    assert!(store.verify_piece(0).unwrap());
    assert!(store.verify_piece(3).unwrap());
    assert!(!store.verify_piece(1).unwrap(), "never written");

    // Wanted again: the kept bytes move into the file, the part files go away.
    store.set_skipped(&[false; 3]).unwrap();
    assert!(part_files(&store).is_empty());
    assert!(!store.parts_dir().exists());
    assert!(store.verify_piece(0).unwrap());
    assert!(store.verify_piece(3).unwrap());
    fx.write(&store, &[1, 2]);
    for p in 0..fx.layout.piece_count() {
        assert!(store.verify_piece(p).unwrap(), "piece {p}");
    }
    store.flush().unwrap();
    for f in 0..3 {
        assert_eq!(std::fs::read(path(dir.path(), &fx, f)).unwrap(), fx.data[f]);
    }
}

#[test]
fn part_file_stays_while_another_skipped_file_needs_it() {
    // Piece 0 holds f0 (wanted), f1 and f2 (both skipped).
    let fx = Fixture::new(MetaVersion::V1, 16 * 1024, &[4_000, 4_000, 30_000]);
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    store.set_skipped(&[false, true, true]).unwrap();
    fx.write(&store, &[0]);
    assert!(store.verify_piece(0).unwrap());
    assert_eq!(part_files(&store), ["0-1", "0-2"]);
    store.set_skipped(&[false, false, true]).unwrap();
    // f1 is whole now; f2 still keeps its run of piece 0 in its part file.
    assert_eq!(std::fs::read(path(dir.path(), &fx, 1)).unwrap(), fx.data[1]);
    assert_eq!(part_files(&store), ["0-2"]);
    assert!(!path(dir.path(), &fx, 2).exists());
    assert!(store.verify_piece(0).unwrap());
}

#[test]
fn data_already_in_a_file_that_becomes_skipped_is_still_read() {
    let fx = Fixture::new(MetaVersion::V1, 16 * 1024, &[10_000, 30_000]);
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    fx.write(&store, &[0, 1, 2]);
    store.set_skipped(&[true, false]).unwrap();
    for p in 0..3 {
        assert!(store.verify_piece(p).unwrap(), "piece {p}");
    }
    assert!(part_files(&store).is_empty());
}

#[test]
fn skipped_empty_files_are_not_created() {
    let fx = Fixture::new(MetaVersion::V1, 16 * 1024, &[10_000, 0, 30_000, 0]);
    let dir = tempfile::tempdir().unwrap();
    let skipped = [false, true, false, false];
    let store = FileStorage::with_skipped(fx.layout.clone(), dir.path(), &skipped).unwrap();
    assert_eq!(store.skipped(), skipped);
    assert!(!path(dir.path(), &fx, 1).exists());
    assert!(path(dir.path(), &fx, 3).is_file());
    assert!(matches!(
        FileStorage::with_skipped(fx.layout.clone(), dir.path(), &[true]),
        Err(StorageError::FileCountMismatch { .. })
    ));
}

#[test]
fn skipping_and_wanting_again_never_overwrites_a_file_with_zeros() {
    // Piece 0: f0 (0..4000) then f1.
    let fx = Fixture::new(MetaVersion::V1, 16 * 1024, &[4_000, 30_000]);
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    store.set_skipped(&[false, true]).unwrap();
    fx.write(&store, &[0]);
    store.set_skipped(&[true, false]).unwrap();
    store.set_skipped(&[false, false]).unwrap();
    assert!(store.verify_piece(0).unwrap());
    assert_eq!(std::fs::read(path(dir.path(), &fx, 0)).unwrap(), fx.data[0]);
}

#[test]
fn part_files_left_by_an_earlier_selection_are_moved_in_when_opened() {
    let fx = Fixture::new(MetaVersion::V1, 16 * 1024, &[10_000, 50_000, 20_000]);
    let dir = tempfile::tempdir().unwrap();
    {
        let store =
            FileStorage::with_skipped(fx.layout.clone(), dir.path(), &[true, false, true]).unwrap();
        let pieces = fx.wanted_pieces(&[true, false, true]);
        fx.write(&store, &pieces);
        store.flush().unwrap();
        assert_eq!(part_files(&store), ["0-0", "3-2"]);
    }
    // Every file wanted now: the kept runs land in their files at once.
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    assert!(!store.parts_dir().exists());
    for p in [0, 3] {
        assert!(store.verify_piece(p).unwrap(), "piece {p}");
    }
    // A part file that was never complete is dropped, not moved in.
    let other = tempfile::tempdir().unwrap();
    let store =
        FileStorage::with_skipped(fx.layout.clone(), other.path(), &[true, false, false]).unwrap();
    store.write_block(0, 0, &fx.piece(0)[..100]).unwrap();
    assert_eq!(part_files(&store), ["0-0"]);
    drop(store);
    let store = FileStorage::new(fx.layout.clone(), other.path()).unwrap();
    assert!(!store.parts_dir().exists());
    assert!(!path(other.path(), &fx, 0).exists());
}

#[test]
fn selection_of_the_wrong_length_is_an_error() {
    let fx = Fixture::new(MetaVersion::V1, 16 * 1024, &[10_000, 30_000]);
    let dir = tempfile::tempdir().unwrap();
    let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
    assert!(matches!(
        store.set_skipped(&[true]),
        Err(StorageError::FileCountMismatch {
            expected: 2,
            actual: 1
        })
    ));
    assert_eq!(store.skipped(), [false, false]);
    let _ = &fx.torrent;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the files, piece length and selection: the pieces touching wanted files
    /// verify, wanted files hold their bytes, skipped files are never created, and wanting
    /// everything afterwards completes the torrent.
    #[test]
    fn any_selection(
        version in prop_oneof![Just(MetaVersion::V1), Just(MetaVersion::Hybrid), Just(MetaVersion::V2)],
        sizes in prop::collection::vec(1usize..40_000, 1..6),
        skip in prop::collection::vec(any::<bool>(), 6),
        piece_length in prop_oneof![Just(16 * 1024u64), Just(32 * 1024u64)],
    ) {
        let fx = Fixture::new(version, piece_length, &sizes);
        let info = fx.layout.info();
        let skipped: Vec<bool> = (0..info.files().len())
            .map(|f| fx.content(f).is_some() && {
                let name = info.files()[f].path.file_name().unwrap().to_str().unwrap();
                skip[name[1..].parse::<usize>().unwrap()]
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let store = FileStorage::new(fx.layout.clone(), dir.path()).unwrap();
        store.set_skipped(&skipped).unwrap();
        let pieces = fx.wanted_pieces(&skipped);
        fx.write(&store, &pieces);
        for &p in &pieces {
            prop_assert!(store.verify_piece(p).unwrap(), "piece {}", p);
        }
        store.flush().unwrap();
        for (f, &skip) in skipped.iter().enumerate() {
            let Some(data) = fx.content(f) else { continue };
            let on_disk = path(dir.path(), &fx, f);
            if skip {
                prop_assert!(!on_disk.exists(), "skipped file {} exists", f);
            } else {
                prop_assert_eq!(&std::fs::read(on_disk).unwrap(), data);
            }
        }
        store.set_skipped(&vec![false; skipped.len()]).unwrap();
        prop_assert!(!store.parts_dir().exists());
        let rest: Vec<u32> = (0..fx.layout.piece_count()).filter(|p| !pieces.contains(p)).collect();
        fx.write(&store, &rest);
        for p in 0..fx.layout.piece_count() {
            prop_assert!(store.verify_piece(p).unwrap(), "piece {}", p);
        }
        for f in 0..info.files().len() {
            if let Some(data) = fx.content(f) {
                prop_assert_eq!(&std::fs::read(path(dir.path(), &fx, f)).unwrap(), data);
            }
        }
    }
}
