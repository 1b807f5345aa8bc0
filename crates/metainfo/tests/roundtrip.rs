//! Property tests: torrents created from random file sets parse back to the same files and
//! hashes, the hashes agree with an independent computation, and writing a parsed torrent
//! keeps it unchanged.
#![cfg(feature = "create")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;
use webtorrent_hash::{SingleThreadEngine, merkle};
use webtorrent_metainfo::{Info, MemoryFile, MetaVersion, Metainfo, TorrentBuilder};

const NAMES: &[&str] = &["a", "b", "dir", "x.txt", "Ωmega", "z-z", ".hid", "日本"];

#[derive(Clone, Debug)]
struct Spec {
    files: Vec<(Vec<String>, usize, u8, bool)>,
    version: MetaVersion,
    piece_length: Option<u64>,
    trackers: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
    private: bool,
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        1usize..100,
        Just(16384usize),
        16300usize..16500,
        1usize..70_000,
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let file = (
        prop::collection::vec(prop::sample::select(NAMES), 1..=3),
        size(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(parts, len, seed, exec)| {
            (
                parts.into_iter().map(str::to_owned).collect(),
                len,
                seed,
                exec,
            )
        });
    (
        prop::collection::vec(file, 1..10),
        prop::sample::select(vec![MetaVersion::V1, MetaVersion::V2, MetaVersion::Hybrid]),
        prop::sample::select(vec![None, Some(16384u64), Some(32768)]),
        prop::collection::vec(prop::collection::vec("[a-z]{1,8}", 1..3), 0..3),
        prop::collection::vec("[a-z]{1,8}", 0..3),
        prop::option::of("[ -~]{0,20}"),
        prop::option::of("[a-z]{1,10}"),
        prop::option::of(any::<i64>()),
        any::<bool>(),
    )
        .prop_map(
            |(
                files,
                version,
                piece_length,
                trackers,
                seeds,
                comment,
                created_by,
                date,
                private,
            )| {
                Spec {
                    files: without_conflicts(files),
                    version,
                    piece_length,
                    trackers: trackers
                        .into_iter()
                        .map(|t| {
                            t.into_iter()
                                .map(|h| format!("udp://{h}/announce"))
                                .collect()
                        })
                        .collect(),
                    web_seeds: seeds.into_iter().map(|h| format!("http://{h}/")).collect(),
                    comment,
                    created_by,
                    creation_date: date,
                    private,
                }
            },
        )
        .prop_filter("needs data", |s| s.files.iter().any(|f| f.1 > 0))
}

/// Drops files whose path repeats another's or is a folder of another.
fn without_conflicts(
    mut files: Vec<(Vec<String>, usize, u8, bool)>,
) -> Vec<(Vec<String>, usize, u8, bool)> {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Vec<String>, usize, u8, bool)> = Vec::new();
    for f in files {
        if out
            .iter()
            .any(|o| f.0.starts_with(&o.0) || o.0.starts_with(&f.0))
        {
            continue;
        }
        out.push(f);
    }
    out
}

fn build(spec: &Spec, single_threaded: bool) -> Metainfo {
    let files = spec
        .files
        .iter()
        .map(|(parts, len, seed, exec)| {
            MemoryFile::new(parts.join("/"), content(*len, *seed)).executable(*exec)
        })
        .collect();
    let mut b = TorrentBuilder::from_memory("root", files)
        .meta_version(spec.version)
        .piece_length(spec.piece_length)
        .trackers(spec.trackers.clone())
        .private(spec.private)
        .creation_date(spec.creation_date);
    for s in &spec.web_seeds {
        b = b.web_seed(s.clone());
    }
    if let Some(c) = &spec.comment {
        b = b.comment(c.clone());
    }
    if let Some(c) = &spec.created_by {
        b = b.created_by(c.clone());
    }
    if single_threaded {
        b = b.engine(Arc::new(SingleThreadEngine));
    }
    b.build().expect("build")
}

/// Checks every hash against a computation that does not use the creator.
fn check_hashes(spec: &Spec, t: &Metainfo) {
    let info = t.info();
    let pl = info.piece_length();
    let data: BTreeMap<PathBuf, Vec<u8>> = spec
        .files
        .iter()
        .map(|(parts, len, seed, _)| {
            let mut p = PathBuf::from("root");
            p.extend(parts);
            (p, content(*len, *seed))
        })
        .collect();
    if info.version().has_v1() {
        let mut stream = Vec::new();
        for f in info.files() {
            assert_eq!(stream.len() as u64, f.offset);
            if f.is_pad() {
                stream.resize(stream.len() + f.length as usize, 0);
            } else {
                stream.extend_from_slice(&data[&f.path]);
            }
        }
        let chunks: Vec<&[u8]> = stream.chunks(pl as usize).collect();
        assert_eq!(chunks.len(), info.piece_count() as usize);
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(info.piece_hash_v1(i as u32), Some(webtorrent_hash::sha1(c)));
        }
    }
    if info.version().has_v2() {
        for (i, f) in info.files().iter().enumerate().filter(|(_, f)| !f.is_pad()) {
            let bytes = &data[&f.path];
            assert_eq!(
                f.pieces_root,
                merkle::file_root(bytes, pl as usize),
                "{:?}",
                f.path
            );
            assert_eq!(f.offset % pl, 0);
            let layer = merkle::piece_layer(bytes, pl as usize);
            assert_eq!(t.piece_layer(i).unwrap_or_default(), layer.as_slice());
        }
    }
}

fn check_mapping(info: &Info) {
    let mut covered = vec![0u64; info.files().len()];
    for piece in 0..info.piece_count() {
        let mut sum = 0;
        for s in info.piece_files(piece) {
            assert_eq!(s.offset, covered[s.file]);
            covered[s.file] += s.length;
            sum += s.length;
            assert!(info.file_pieces(s.file).expect("file").contains(&piece));
        }
        assert_eq!(Some(sum), info.piece_size(piece));
    }
    for (f, c) in info.files().iter().zip(covered) {
        assert_eq!(f.length, c);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn created_torrents_round_trip(spec in spec()) {
        let t = build(&spec, false);
        let info = t.info();
        prop_assert_eq!(info.version(), spec.version);
        if let Some(pl) = spec.piece_length {
            prop_assert_eq!(info.piece_length(), pl);
        }
        // Same real files, sorted by path.
        let want: Vec<(PathBuf, u64, bool)> = spec
            .files
            .iter()
            .map(|(parts, len, _, exec)| {
                let mut p = PathBuf::from("root");
                p.extend(parts);
                (p, *len as u64, *exec)
            })
            .collect();
        let got: Vec<(PathBuf, u64, bool)> = info
            .files()
            .iter()
            .filter(|f| !f.is_pad())
            .map(|f| (f.path.clone(), f.length, f.attr.executable))
            .collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(info.private(), spec.private);

        // Fields.
        let tiers: Vec<Vec<String>> = {
            let mut seen = std::collections::HashSet::new();
            spec.trackers
                .iter()
                .map(|t| t.iter().filter(|u| seen.insert((*u).clone())).cloned().collect::<Vec<_>>())
                .filter(|t| !t.is_empty())
                .collect()
        };
        prop_assert_eq!(t.trackers(), tiers.as_slice());
        prop_assert_eq!(t.web_seeds(), spec.web_seeds.as_slice());
        prop_assert_eq!(t.comment(), spec.comment.as_deref());
        prop_assert_eq!(t.created_by(), spec.created_by.as_deref());
        prop_assert_eq!(t.creation_date(), spec.creation_date);

        check_hashes(&spec, &t);
        check_mapping(info);

        // Bytes -> parse -> bytes is stable, and the info dictionary parses alone.
        let bytes = t.to_bytes();
        let again = Metainfo::from_bytes(&bytes).expect("re-parse");
        prop_assert_eq!(&again, &t);
        prop_assert_eq!(again.to_bytes(), bytes);
        prop_assert_eq!(Info::from_bytes(info.raw()).expect("info").info_hashes(), t.info_hashes());

        // The engine does not change the result.
        prop_assert_eq!(build(&spec, true), t);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// The same files on disk give the same torrent as in memory.
    #[test]
    fn disk_and_memory_agree(spec in spec()) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        for (parts, len, seed, exec) in &spec.files {
            let mut p = root.clone();
            p.extend(parts);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, content(*len, *seed)).expect("write");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = if *exec { 0o755 } else { 0o644 };
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            }
        }
        let disk = TorrentBuilder::new(&root)
            .meta_version(spec.version)
            .piece_length(spec.piece_length)
            .build()
            .expect("disk");
        let mut mem_spec = spec.clone();
        if !cfg!(unix) {
            for f in &mut mem_spec.files {
                f.3 = false;
            }
        }
        mem_spec.trackers.clear();
        mem_spec.web_seeds.clear();
        mem_spec.comment = None;
        mem_spec.created_by = None;
        mem_spec.creation_date = None;
        mem_spec.private = false;
        let mem = build(&mem_spec, false);
        prop_assert_eq!(disk.info().raw(), mem.info().raw());
    }
}

#[test]
fn single_file_torrents() {
    for version in [MetaVersion::V1, MetaVersion::V2, MetaVersion::Hybrid] {
        let data = content(50_001, 7);
        let t = TorrentBuilder::from_memory_file("one.bin", data.clone())
            .meta_version(version)
            .build()
            .expect("single");
        let info = t.info();
        assert!(!info.is_multi_file());
        assert_eq!(info.files().len(), 1);
        assert_eq!(info.files()[0].path, PathBuf::from("one.bin"));
        assert_eq!(info.total_length(), 50_001);
        if version.has_v2() {
            assert_eq!(info.files()[0].pieces_root, merkle::file_root(&data, 16384));
        }
    }
}

#[test]
fn builder_errors() {
    use webtorrent_metainfo::{CreateError, PathProblem};
    let e = TorrentBuilder::from_memory("r", vec![MemoryFile::new("a", vec![])])
        .build()
        .expect_err("empty");
    assert!(matches!(e, CreateError::EmptyTorrent), "{e}");
    let e = TorrentBuilder::from_memory("r", vec![])
        .build()
        .expect_err("no files");
    assert!(matches!(e, CreateError::NoFiles { .. }), "{e}");
    let e = TorrentBuilder::from_memory("r", vec![MemoryFile::new("a/../b", vec![1])])
        .build()
        .expect_err("dotdot");
    assert!(
        matches!(
            e,
            CreateError::InvalidPath {
                problem: PathProblem::ParentDir,
                ..
            }
        ),
        "{e}"
    );
    let e = TorrentBuilder::from_memory(
        "r",
        vec![
            MemoryFile::new("a", vec![1]),
            MemoryFile::new("a/b", vec![1]),
        ],
    )
    .build()
    .expect_err("conflict");
    assert!(matches!(e, CreateError::Metainfo(_)), "{e}");
    let e = TorrentBuilder::from_memory(
        "r",
        vec![MemoryFile::new("a", vec![1]), MemoryFile::new("a", vec![2])],
    )
    .build()
    .expect_err("duplicate");
    assert!(matches!(e, CreateError::Metainfo(_)), "{e}");
    let e = TorrentBuilder::from_memory_file("..", vec![1])
        .build()
        .expect_err("name");
    assert!(matches!(e, CreateError::InvalidName { .. }), "{e}");
    for (version, pl) in [
        (MetaVersion::V2, 3 * 16384),
        (MetaVersion::Hybrid, 8192),
        (MetaVersion::V1, 1000),
        (MetaVersion::V1, 0),
        (MetaVersion::V1, 1 << 30),
    ] {
        let e = TorrentBuilder::from_memory_file("f", vec![1])
            .meta_version(version)
            .piece_length(Some(pl))
            .build()
            .expect_err("piece length");
        assert!(matches!(e, CreateError::InvalidPieceLength { .. }), "{e}");
    }
    // v1 allows a multiple of 16 KiB that is not a power of two, as libtorrent does.
    TorrentBuilder::from_memory_file("f", vec![1; 100_000])
        .meta_version(MetaVersion::V1)
        .piece_length(Some(3 * 16384))
        .build()
        .expect("48 KiB v1");
}

#[cfg(unix)]
#[test]
fn disk_errors() {
    use webtorrent_metainfo::CreateError;
    let tmp = tempfile::tempdir().expect("tempdir");
    let e = TorrentBuilder::new(tmp.path().join("missing"))
        .build()
        .expect_err("missing");
    assert!(matches!(e, CreateError::Io { .. }), "{e}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("sub")).expect("mkdir");
    let e = TorrentBuilder::new(&empty).build().expect_err("no files");
    assert!(matches!(e, CreateError::NoFiles { .. }), "{e}");
    // A file name with a backslash is legal on Linux but not in a torrent.
    std::fs::write(empty.join("a\\b"), b"x").expect("write");
    let e = TorrentBuilder::new(&empty).build().expect_err("backslash");
    assert!(matches!(e, CreateError::InvalidPath { .. }), "{e}");
    std::fs::remove_file(empty.join("a\\b")).expect("rm");
    // Non-UTF-8 names are refused.
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"bad\xff");
        if std::fs::write(empty.join(name), b"x").is_ok() {
            let e = TorrentBuilder::new(&empty).build().expect_err("non-utf8");
            assert!(matches!(e, CreateError::NonUtf8Path { .. }), "{e}");
            std::fs::remove_file(empty.join(name)).expect("rm");
        }
    }
    // Empty folders are skipped, hidden files kept.
    std::fs::write(empty.join(".hidden"), b"x").expect("write");
    let t = TorrentBuilder::new(&empty).build().expect("hidden");
    assert_eq!(t.info().files().len(), 1);
}
