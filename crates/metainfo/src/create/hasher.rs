//! Hashing for creation: the layout of the hashed stream, and the choice between the two
//! hashing paths.
//!
//! - Without an injected engine, [`super::direct`] hashes with `webtorrent_hash`'s SHA-1 and
//!   SHA-256 on one worker per core; each worker reads the pieces it claims with positioned
//!   reads and hashes them while they are in cache. No worker waits for another, and the
//!   data is copied once, from the page cache into a small per-worker buffer.
//! - With an engine ([`TorrentBuilder::engine`](super::TorrentBuilder::engine)),
//!   [`super::batched`] reads the stream ahead on one thread and hands every piece to
//!   [`HashEngine::run`] in batches of a few MiB. An engine may hash on a GPU, in WebCrypto
//!   or on a remote machine, and [`HashEngine`] only promises to run batches of jobs, so the
//!   engine sees every byte and decides how to parallelise. The built-in engines
//!   (`SingleThreadEngine`, `MultiCoreEngine`) also work there; the direct path is what the
//!   default engine would do, without the batch barriers.

use webtorrent_hash::HashEngine;

use super::{CreateError, PlannedFile, batched, direct};
use crate::info::MetaVersion;

/// A run of the data stream: a file's bytes, or zeros (padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Index into the planned files; `None` for padding.
    pub(crate) file: Option<usize>,
    pub(crate) offset: u64,
    pub(crate) length: u64,
}

/// Where every byte goes.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) piece_length: u64,
    pub(crate) version: MetaVersion,
    /// The v1 `files` list order: files and the pad files to write (hybrid only).
    pub(crate) segments: Vec<Segment>,
    /// Offset of each planned file in the hashed stream (piece-aligned when v2 is written).
    pub(crate) offsets: Vec<u64>,
    /// Length of the hashed stream.
    pub(crate) stream_length: u64,
    pub(crate) piece_count: u32,
}

impl Layout {
    /// Lays out `files` (already sorted) like libtorrent 2.0.
    pub(crate) fn new(
        files: &[PlannedFile],
        piece_length: u64,
        version: MetaVersion,
    ) -> Result<Self, CreateError> {
        let too_large = || CreateError::TooLarge { piece_length };
        let write_pads = version == MetaVersion::Hybrid && files.len() > 1;
        let align = version.has_v2();
        let mut segments = Vec::with_capacity(files.len() * 2);
        let mut offsets = Vec::with_capacity(files.len());
        let mut end = 0u64;
        for (i, f) in files.iter().enumerate() {
            if align && !write_pads {
                // v2-only (or a single file): virtual alignment, nothing written.
                end = end
                    .checked_next_multiple_of(piece_length)
                    .ok_or_else(too_large)?;
            }
            offsets.push(end);
            segments.push(Segment {
                file: Some(i),
                offset: end,
                length: f.length,
            });
            end = end.checked_add(f.length).ok_or_else(too_large)?;
            if write_pads && f.length > 0 && !end.is_multiple_of(piece_length) {
                let pad = piece_length - end % piece_length;
                segments.push(Segment {
                    file: None,
                    offset: end,
                    length: pad,
                });
                end += pad;
            }
        }
        let piece_count = u32::try_from(end.div_ceil(piece_length)).map_err(|_| too_large())?;
        Ok(Self {
            piece_length,
            version,
            segments,
            offsets,
            stream_length: end,
            piece_count,
        })
    }
}

/// Results of hashing.
#[derive(Debug, Default)]
pub(crate) struct Hashes {
    /// v1 piece hashes.
    pub(crate) v1: Vec<[u8; 20]>,
    /// `pieces root` per planned file (v2; `None` for empty files and symlinks).
    pub(crate) roots: Vec<Option<[u8; 32]>>,
    /// Piece layer per planned file (v2; only for files longer than one piece).
    pub(crate) layers: Vec<Option<Vec<[u8; 32]>>>,
}

/// Hashes the stream described by `layout`: on `engine` if one was injected, else directly
/// on every core. `progress(bytes_hashed, total)` is called on the caller's thread, with
/// `bytes_hashed` never decreasing and ending at `total` when hashing succeeds.
pub(crate) fn hash(
    files: &[PlannedFile],
    layout: &Layout,
    engine: Option<&dyn HashEngine>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Hashes, CreateError> {
    match engine {
        Some(engine) => batched::hash(files, layout, engine, progress),
        None => {
            let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            direct::hash(files, layout, threads, progress)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use proptest::prelude::*;
    use webtorrent_hash::{BLOCK_SIZE, SingleThreadEngine};

    use super::*;
    use crate::create::Source;

    fn content(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
            .collect()
    }

    fn planned(name: &str, length: u64, source: Source) -> PlannedFile {
        PlannedFile {
            components: vec![name.to_owned()],
            length,
            executable: false,
            hidden: false,
            symlink: None,
            source,
        }
    }

    /// Writes `data` to `dir/name` and plans it with `length` (its real length unless a
    /// test wants a file that changed).
    fn disk(dir: &Path, name: &str, data: &[u8], length: u64) -> PlannedFile {
        let path = dir.join(name);
        std::fs::write(&path, data).expect("write");
        planned(name, length, Source::Disk(path))
    }

    fn direct(
        files: &[PlannedFile],
        layout: &Layout,
        threads: usize,
    ) -> Result<Hashes, CreateError> {
        direct::hash(files, layout, threads, &mut |_, _| {})
    }

    fn batched(files: &[PlannedFile], layout: &Layout) -> Result<Hashes, CreateError> {
        batched::hash(files, layout, &SingleThreadEngine, &mut |_, _| {})
    }

    fn changed_path(result: Result<Hashes, CreateError>) -> PathBuf {
        match result {
            Err(CreateError::FileChanged { path }) => path,
            Err(e) => panic!("expected FileChanged, got {e}"),
            Ok(_) => panic!("expected FileChanged, got hashes"),
        }
    }

    fn io_path(result: Result<Hashes, CreateError>) -> PathBuf {
        match result {
            Err(CreateError::Io { path, .. }) => path,
            Err(e) => panic!("expected Io, got {e}"),
            Ok(_) => panic!("expected Io, got hashes"),
        }
    }

    const VERSIONS: [MetaVersion; 3] = [MetaVersion::V1, MetaVersion::V2, MetaVersion::Hybrid];

    #[test]
    fn a_file_that_shrank_or_grew_is_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = content(5 * BLOCK_SIZE + 7, 1);
        let ok = disk(tmp.path(), "a", &data, data.len() as u64);
        for (name, planned_len) in [("shrank", 6 * BLOCK_SIZE as u64), ("grew", 70_000)] {
            let bad = disk(tmp.path(), name, &data, planned_len);
            let files = [ok.clone(), bad.clone()];
            for version in VERSIONS {
                let layout = Layout::new(&files, 2 * BLOCK_SIZE as u64, version).expect("layout");
                let Source::Disk(path) = &bad.source else {
                    unreachable!("planned on disk above")
                };
                for threads in [1, 3] {
                    assert_eq!(&changed_path(direct(&files, &layout, threads)), path);
                }
                assert_eq!(&changed_path(batched(&files, &layout)), path);
            }
        }
    }

    /// With several workers, the error is the first one in stream order, as with one.
    #[test]
    fn the_first_failure_in_stream_order_is_reported() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let block = BLOCK_SIZE as u64;
        let memory = |name: &str, len: u64| {
            planned(name, len, Source::Memory(content(len as usize, 4).into()))
        };
        let missing = tmp.path().join("missing");
        // With two workers, the first run (4 MiB of 16 KiB pieces) ends with `missing` and
        // the second starts with `missing2`: the second worker fails first.
        let files = [
            memory("a", 255 * block),
            planned("missing", block, Source::Disk(missing.clone())),
            planned("missing2", block, Source::Disk(tmp.path().join("missing2"))),
            memory("b", 1024 * block),
        ];
        for version in VERSIONS {
            let layout = Layout::new(&files, block, version).expect("layout");
            for threads in [1, 2, 4] {
                assert_eq!(io_path(direct(&files, &layout, threads)), missing);
            }
            assert_eq!(io_path(batched(&files, &layout)), missing);
        }
    }

    #[test]
    fn progress_rises_to_the_total() {
        let data: Arc<[u8]> = content(3 << 20, 3).into();
        let files = [
            planned("a", data.len() as u64, Source::Memory(Arc::clone(&data))),
            planned("b", 0, Source::Memory(Arc::new([]))),
            planned("c", 1000, Source::Memory(data[..1000].into())),
        ];
        let total = data.len() as u64 + 1000;
        for version in VERSIONS {
            let layout = Layout::new(&files, BLOCK_SIZE as u64, version).expect("layout");
            let mut calls = Vec::new();
            direct::hash(&files, &layout, 3, &mut |done, all| calls.push((done, all)))
                .expect("hash");
            assert!(calls.len() > 1, "{calls:?}");
            assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "{calls:?}");
            assert!(calls.iter().all(|&(_, all)| all == total));
            assert_eq!(calls.last(), Some(&(total, total)));
        }
    }

    /// Runs of pieces cover every piece once, in order, and shrink near the end.
    #[test]
    fn claims_cover_every_piece_once() {
        for (pieces, max_run, threads) in [(1, 4, 2), (1000, 4, 2), (37, 64, 3), (5, 1, 8)] {
            let claims = direct::Claims::new(pieces, max_run, threads);
            let mut next = 0;
            let mut runs = Vec::new();
            while let Some((first, last)) = claims.next() {
                assert_eq!(first, next);
                assert!(first < last && last <= pieces);
                assert!(last - first <= max_run);
                runs.push(last - first);
                next = last;
            }
            assert_eq!(next, pieces);
            assert_eq!(runs.last(), Some(&1));
            assert!(runs.windows(2).all(|w| w[0] >= w[1]), "{runs:?}");
        }
    }

    /// A file set: (length, on disk) per file.
    fn file_set() -> impl Strategy<Value = Vec<(usize, bool)>> {
        let len = prop_oneof![
            Just(0usize),
            1usize..100,
            Just(BLOCK_SIZE),
            BLOCK_SIZE - 1..BLOCK_SIZE + 2,
            1usize..600_000,
            Just(4 * BLOCK_SIZE),
            Just(8 * BLOCK_SIZE + 1),
        ];
        proptest::collection::vec((len, any::<bool>()), 1..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

        /// The direct path on any number of workers gives what an engine gives.
        #[test]
        fn direct_and_engine_paths_agree(
            set in file_set(),
            version in prop_oneof![Just(MetaVersion::V1), Just(MetaVersion::V2), Just(MetaVersion::Hybrid)],
            // Pieces shorter and longer than a read (8 blocks), and 48 KiB for v1.
            blocks in prop_oneof![Just(1u64), Just(2), Just(16), Just(3)],
            threads in 1usize..5,
        ) {
            // v2 needs a power of two.
            let blocks = if version.has_v2() && blocks == 3 { 8 } else { blocks };
            let piece_length = blocks * BLOCK_SIZE as u64;
            prop_assume!(set.iter().any(|&(len, _)| len > 0));
            let tmp = tempfile::tempdir().expect("tempdir");
            let files: Vec<PlannedFile> = set
                .iter()
                .enumerate()
                .map(|(i, &(len, on_disk))| {
                    let data = content(len, i as u8);
                    let name = format!("f{i}");
                    if on_disk {
                        disk(tmp.path(), &name, &data, len as u64)
                    } else {
                        planned(&name, len as u64, Source::Memory(data.into()))
                    }
                })
                .collect();
            let layout = Layout::new(&files, piece_length, version).expect("layout");
            let want = batched(&files, &layout).expect("engine");
            let got = direct(&files, &layout, threads).expect("direct");
            prop_assert_eq!(got.v1, want.v1);
            prop_assert_eq!(got.roots, want.roots);
            prop_assert_eq!(got.layers, want.layers);
        }
    }
}
