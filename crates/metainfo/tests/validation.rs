//! Every way a torrent is refused, each with a hand-made torrent, and the real-world quirks
//! that must still parse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use webtorrent_bencode::OwnedValue;
use webtorrent_hash::merkle;
use webtorrent_metainfo::{
    HybridMismatch, Info, MetaVersion, Metainfo, MetainfoError, PathProblem,
};

const PL: i64 = 16384;

fn d(pairs: Vec<(&str, OwnedValue)>) -> OwnedValue {
    OwnedValue::Dict(
        pairs
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

fn s(text: &str) -> OwnedValue {
    OwnedValue::from(text)
}

fn bytes(b: &[u8]) -> OwnedValue {
    OwnedValue::Bytes(b.to_vec())
}

fn i(n: i64) -> OwnedValue {
    OwnedValue::Int(n)
}

fn path(parts: &[&str]) -> OwnedValue {
    OwnedValue::List(parts.iter().map(|p| s(p)).collect())
}

fn pieces(total: i64) -> OwnedValue {
    let n = (total + PL - 1) / PL;
    OwnedValue::Bytes(vec![9u8; n as usize * 20])
}

fn v1_file(parts: &[&str], length: i64) -> OwnedValue {
    d(vec![("length", i(length)), ("path", path(parts))])
}

/// A v1 multi-file torrent of `files` (v1 file dicts), pieces sized to `total`.
fn v1_multi(files: Vec<OwnedValue>, total: i64) -> Vec<u8> {
    torrent(d(vec![
        ("name", s("t")),
        ("piece length", i(PL)),
        ("pieces", pieces(total)),
        ("files", OwnedValue::List(files)),
    ]))
}

fn torrent(info: OwnedValue) -> Vec<u8> {
    d(vec![("info", info)]).encode()
}

fn err(bytes: &[u8]) -> MetainfoError {
    Metainfo::from_bytes(bytes).expect_err("must be refused")
}

fn assert_path_refused(parts: &[&str], want: PathProblem, shown: &str) {
    let e = err(&v1_multi(vec![v1_file(parts, 10)], 10));
    match &e {
        MetainfoError::InvalidPath { path, problem } => {
            assert_eq!(*problem, want, "{parts:?}");
            assert_eq!(path, shown, "the error names the path");
        }
        other => panic!("{parts:?}: {other}"),
    }
    assert!(e.to_string().contains(&format!("{shown:?}")), "{e}");
}

#[test]
fn hostile_paths_are_refused_and_named() {
    assert_path_refused(
        &["..", "etc", "passwd"],
        PathProblem::ParentDir,
        "t/../etc/passwd",
    );
    assert_path_refused(
        &["a", "..", "..", "x"],
        PathProblem::ParentDir,
        "t/a/../../x",
    );
    assert_path_refused(&["/etc", "passwd"], PathProblem::Absolute, "t//etc/passwd");
    assert_path_refused(&["ok", "/abs"], PathProblem::Absolute, "t/ok//abs");
    assert_path_refused(&["\\windows"], PathProblem::Absolute, "t/\\windows");
    assert_path_refused(&["a", "", "b"], PathProblem::EmptyComponent, "t/a//b");
    assert_path_refused(&["a", "."], PathProblem::CurrentDir, "t/a/.");
    assert_path_refused(&["nul\0byte"], PathProblem::NulByte, "t/nul\0byte");
    assert_path_refused(&["a/b"], PathProblem::Separator, "t/a/b");
    assert_path_refused(&["a\\..\\b"], PathProblem::Separator, "t/a\\..\\b");
    let long = "n".repeat(256);
    assert_path_refused(
        &[long.as_str()],
        PathProblem::ComponentTooLong { len: 256 },
        &format!("t/{long}"),
    );
    let e = err(&v1_multi(vec![v1_file(&[], 10)], 10));
    assert!(
        matches!(
            e,
            MetainfoError::InvalidPath {
                problem: PathProblem::NoComponents,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn hostile_names_are_refused() {
    for (name, want) in [
        ("..", PathProblem::ParentDir),
        ("", PathProblem::EmptyComponent),
        ("/tmp", PathProblem::Absolute),
        ("a/b", PathProblem::Separator),
    ] {
        let bytes = torrent(d(vec![
            ("name", s(name)),
            ("piece length", i(PL)),
            ("pieces", pieces(1)),
            ("length", i(1)),
        ]));
        match err(&bytes) {
            MetainfoError::InvalidPath { path, problem } => {
                assert_eq!(problem, want);
                assert_eq!(path, name);
            }
            other => panic!("{name:?}: {other}"),
        }
    }
}

#[test]
fn hostile_v2_tree_keys_are_refused() {
    for (key, want) in [
        ("..", PathProblem::ParentDir),
        ("/abs", PathProblem::Absolute),
        ("a/b", PathProblem::Separator),
        (".", PathProblem::CurrentDir),
    ] {
        let tree = d(vec![(key, d(vec![("", d(vec![("length", i(0))]))]))]);
        let bytes = torrent(d(vec![
            ("name", s("t")),
            ("piece length", i(PL)),
            ("meta version", i(2)),
            ("file tree", tree),
        ]));
        match err(&bytes) {
            MetainfoError::InvalidPath { path, problem } => {
                assert_eq!(problem, want, "{key:?}");
                assert_eq!(path, format!("t/{key}"));
            }
            other => panic!("{key:?}: {other}"),
        }
    }
}

#[test]
fn duplicates_and_file_directory_conflicts() {
    let e = err(&v1_multi(vec![v1_file(&["a"], 1), v1_file(&["a"], 1)], 2));
    assert!(
        matches!(e, MetainfoError::DuplicatePath { ref path } if path == Path::new("t/a")),
        "{e}"
    );
    // Case matters on Linux: these are two files.
    #[cfg(target_os = "linux")]
    Metainfo::from_bytes(&v1_multi(vec![v1_file(&["a"], 1), v1_file(&["A"], 1)], 2))
        .expect("case-sensitive");
    let e = err(&v1_multi(
        vec![v1_file(&["a"], 1), v1_file(&["a", "b"], 1)],
        2,
    ));
    assert!(
        matches!(e, MetainfoError::FileIsDirectory { ref path } if path == Path::new("t/a")),
        "{e}"
    );
    let e = err(&v1_multi(
        vec![v1_file(&["x", "y", "z"], 1), v1_file(&["x", "y"], 1)],
        2,
    ));
    assert!(
        matches!(e, MetainfoError::FileIsDirectory { ref path } if path == Path::new("t/x/y")),
        "{e}"
    );
    // v2: a tree node that is a file and a directory at once.
    let tree = d(vec![(
        "a",
        d(vec![
            ("", d(vec![("length", i(0))])),
            ("b", d(vec![("", d(vec![("length", i(0))]))])),
        ]),
    )]);
    let bytes = torrent(d(vec![
        ("name", s("t")),
        ("piece length", i(PL)),
        ("meta version", i(2)),
        ("file tree", tree),
    ]));
    assert!(matches!(err(&bytes), MetainfoError::FileIsDirectory { .. }));
    // Pad files may repeat (libtorrent reuses `.pad/<n>` names).
    let pad = d(vec![
        ("attr", s("p")),
        ("length", i(PL - 1)),
        ("path", path(&[".pad", "16383"])),
    ]);
    Metainfo::from_bytes(&v1_multi(
        vec![
            v1_file(&["a"], 1),
            pad.clone(),
            v1_file(&["b"], 1),
            pad,
            v1_file(&["c"], 1),
        ],
        2 * PL + 1,
    ))
    .expect("repeated pad names");
}

#[test]
fn piece_length_and_pieces_checks() {
    for pl in [0, -16384, 1 << 40] {
        let t = torrent(d(vec![
            ("name", s("t")),
            ("piece length", i(pl)),
            ("pieces", bytes(&[0; 20])),
            ("length", i(1)),
        ]));
        assert!(
            matches!(err(&t), MetainfoError::InvalidPieceLength { piece_length } if piece_length == pl)
        );
    }
    // v2 needs a power of two of at least 16 KiB.
    for pl in [8192, 3 * 16384] {
        let tree = d(vec![("f", d(vec![("", d(vec![("length", i(0))]))]))]);
        let t = torrent(d(vec![
            ("name", s("t")),
            ("piece length", i(pl)),
            ("meta version", i(2)),
            ("file tree", tree),
        ]));
        assert!(matches!(err(&t), MetainfoError::InvalidPieceLength { .. }));
    }
    // A v1 torrent may use an odd piece length.
    let ok = torrent(d(vec![
        ("name", s("t")),
        ("piece length", i(1000)),
        ("pieces", bytes(&[1; 40])),
        ("length", i(1500)),
    ]));
    assert_eq!(
        Metainfo::from_bytes(&ok)
            .expect("odd v1")
            .info()
            .piece_count(),
        2
    );

    let t = torrent(d(vec![
        ("name", s("t")),
        ("piece length", i(PL)),
        ("pieces", bytes(&[0; 21])),
        ("length", i(1)),
    ]));
    assert!(matches!(
        err(&t),
        MetainfoError::InvalidPiecesLength { len: 21 }
    ));
    let t = torrent(d(vec![
        ("name", s("t")),
        ("piece length", i(PL)),
        ("pieces", bytes(&[0; 40])),
        ("length", i(PL)),
    ]));
    assert!(matches!(
        err(&t),
        MetainfoError::PieceCountMismatch {
            expected: 1,
            actual: 2
        }
    ));
}

#[test]
fn lengths_are_checked() {
    let e = err(&v1_multi(vec![v1_file(&["neg"], -5)], 1));
    assert!(
        matches!(e, MetainfoError::NegativeLength { ref path, length: -5 } if path == "t/neg"),
        "{e}"
    );
    let e = err(&v1_multi(
        vec![
            v1_file(&["a"], i64::MAX),
            v1_file(&["b"], i64::MAX),
            v1_file(&["c"], i64::MAX),
        ],
        1,
    ));
    assert!(matches!(e, MetainfoError::LengthOverflow), "{e}");
    // Fits in u64 but needs more than u32::MAX pieces.
    let e = err(&v1_multi(vec![v1_file(&["a"], i64::MAX)], 1));
    assert!(matches!(e, MetainfoError::LengthOverflow), "{e}");
    let e = err(&v1_multi(vec![v1_file(&["a"], 0)], 0));
    assert!(matches!(e, MetainfoError::NoData), "{e}");
    let e = err(&v1_multi(vec![], 0));
    assert!(matches!(e, MetainfoError::NoFiles), "{e}");
}

#[test]
fn structure_errors() {
    assert!(matches!(
        Metainfo::from_bytes(b"i3e"),
        Err(MetainfoError::WrongType { .. })
    ));
    assert!(matches!(
        Metainfo::from_bytes(b"de"),
        Err(MetainfoError::MissingKey { key: "info" })
    ));
    assert!(matches!(
        Metainfo::from_bytes(b"d4:infoi1ee"),
        Err(MetainfoError::WrongType { .. })
    ));
    assert!(matches!(
        Metainfo::from_bytes(b"d4:inf"),
        Err(MetainfoError::Bencode(_))
    ));
    let no_name = torrent(d(vec![
        ("piece length", i(PL)),
        ("pieces", pieces(1)),
        ("length", i(1)),
    ]));
    assert!(matches!(
        err(&no_name),
        MetainfoError::MissingKey { key: "info.name" }
    ));
    let no_pieces = torrent(d(vec![
        ("name", s("t")),
        ("piece length", i(PL)),
        ("length", i(1)),
    ]));
    assert!(matches!(
        err(&no_pieces),
        MetainfoError::MissingKey { key: "info.pieces" }
    ));
    let v3 = torrent(d(vec![
        ("name", s("t")),
        ("piece length", i(PL)),
        ("meta version", i(3)),
        ("pieces", pieces(1)),
        ("length", i(1)),
    ]));
    assert!(matches!(
        err(&v3),
        MetainfoError::UnsupportedMetaVersion { version: 3 }
    ));
    // Info::from_bytes takes exactly one dictionary.
    assert!(Info::from_bytes(b"d4:name1:ae trailing").is_err());
}

// ----- v2 and hybrid -----

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

struct V2File {
    parts: Vec<&'static str>,
    data: Vec<u8>,
}

fn tree_of(files: &[V2File]) -> OwnedValue {
    let mut root: BTreeMap<Vec<u8>, OwnedValue> = BTreeMap::new();
    for f in files {
        let mut leaf = vec![("length", i(f.data.len() as i64))];
        if let Some(r) = merkle::file_root(&f.data, PL as usize) {
            leaf.push(("pieces root", bytes(&r)));
        }
        insert(&mut root, &f.parts, d(vec![("", d(leaf))]));
    }
    OwnedValue::Dict(root)
}

fn insert(tree: &mut BTreeMap<Vec<u8>, OwnedValue>, parts: &[&str], leaf: OwnedValue) {
    match parts {
        [] => {}
        [last] => {
            tree.insert(last.as_bytes().to_vec(), leaf);
        }
        [first, rest @ ..] => {
            let node = tree
                .entry(first.as_bytes().to_vec())
                .or_insert_with(|| OwnedValue::Dict(BTreeMap::new()));
            if let OwnedValue::Dict(child) = node {
                insert(child, rest, leaf);
            }
        }
    }
}

fn layers_of(files: &[V2File]) -> OwnedValue {
    let mut layers = BTreeMap::new();
    for f in files {
        if f.data.len() > PL as usize {
            let root = merkle::file_root(&f.data, PL as usize).expect("root");
            layers.insert(
                root.to_vec(),
                OwnedValue::Bytes(merkle::piece_layer(&f.data, PL as usize).concat()),
            );
        }
    }
    OwnedValue::Dict(layers)
}

fn v2_torrent(files: &[V2File], layers: OwnedValue) -> Vec<u8> {
    d(vec![
        (
            "info",
            d(vec![
                ("name", s("t")),
                ("piece length", i(PL)),
                ("meta version", i(2)),
                ("file tree", tree_of(files)),
            ]),
        ),
        ("piece layers", layers),
    ])
    .encode()
}

fn sample_v2() -> Vec<V2File> {
    vec![
        V2File {
            parts: vec!["big.bin"],
            data: data(3 * PL as usize + 100, 1),
        },
        V2File {
            parts: vec!["dir", "small.txt"],
            data: data(100, 2),
        },
        V2File {
            parts: vec!["empty"],
            data: Vec::new(),
        },
    ]
}

#[test]
fn v2_torrent_parses_with_layout_and_layers() {
    let files = sample_v2();
    let t = Metainfo::from_bytes(&v2_torrent(&files, layers_of(&files))).expect("v2");
    let info = t.info();
    assert_eq!(info.version(), MetaVersion::V2);
    assert!(info.info_hashes().v1.is_none());
    let got: Vec<(PathBuf, u64, u64)> = info
        .files()
        .iter()
        .map(|f| (f.path.clone(), f.length, f.offset))
        .collect();
    assert_eq!(
        got,
        [
            (PathBuf::from("t/big.bin"), 3 * 16384 + 100, 0),
            (PathBuf::from("t/dir/small.txt"), 100, 4 * 16384),
            (PathBuf::from("t/empty"), 0, 5 * 16384),
        ]
    );
    assert_eq!(info.piece_count(), 5);
    assert_eq!(info.piece_size(3), Some(100));
    assert_eq!(info.piece_size(4), Some(100));
    assert_eq!(info.file_at_piece(3), Some(0));
    assert_eq!(info.file_at_piece(4), Some(1));
    assert_eq!(t.piece_layer(0).map(<[_]>::len), Some(4));
    assert_eq!(
        t.piece_hash_v2(1),
        Some(merkle::piece_hash(&files[0].data[16384..32768], 16384))
    );
    assert_eq!(t.piece_hash_v2(4), merkle::file_root(&files[1].data, 16384));
    // Round trip keeps everything.
    assert_eq!(Metainfo::from_bytes(&t.to_bytes()).expect("again"), t);
    // The info dictionary alone parses without layers.
    Info::from_bytes(info.raw()).expect("info alone");
}

#[test]
fn piece_layer_errors() {
    let files = sample_v2();
    let e = err(&v2_torrent(&files, d(vec![])));
    assert!(
        matches!(e, MetainfoError::MissingPieceLayer { ref path } if path == Path::new("t/big.bin")),
        "{e}"
    );

    let root = merkle::file_root(&files[0].data, PL as usize).expect("root");
    let mut short = BTreeMap::new();
    short.insert(root.to_vec(), OwnedValue::Bytes(vec![1; 96]));
    let e = err(&v2_torrent(&files, OwnedValue::Dict(short)));
    assert!(
        matches!(
            e,
            MetainfoError::PieceLayerLength {
                expected: 128,
                actual: 96,
                ..
            }
        ),
        "{e}"
    );

    let mut wrong = BTreeMap::new();
    wrong.insert(root.to_vec(), OwnedValue::Bytes(vec![1; 128]));
    let e = err(&v2_torrent(&files, OwnedValue::Dict(wrong)));
    assert!(matches!(e, MetainfoError::PieceLayerRoot { .. }), "{e}");

    // A non-empty file without a pieces root.
    let tree = d(vec![("f", d(vec![("", d(vec![("length", i(5))]))]))]);
    let bytes = torrent(d(vec![
        ("name", s("t")),
        ("piece length", i(PL)),
        ("meta version", i(2)),
        ("file tree", tree),
    ]));
    assert!(matches!(
        err(&bytes),
        MetainfoError::InvalidPiecesRoot { .. }
    ));
}

/// Builds a hybrid torrent from a v1 file list and the v2 files.
fn hybrid(v1: Vec<OwnedValue>, v1_total: i64, files: &[V2File]) -> Vec<u8> {
    d(vec![
        (
            "info",
            d(vec![
                ("name", s("t")),
                ("piece length", i(PL)),
                ("meta version", i(2)),
                ("file tree", tree_of(files)),
                ("files", OwnedValue::List(v1)),
                ("pieces", pieces(v1_total)),
            ]),
        ),
        ("piece layers", layers_of(files)),
    ])
    .encode()
}

fn pad(len: i64) -> OwnedValue {
    d(vec![
        ("attr", s("p")),
        ("length", i(len)),
        ("path", path(&[".pad", &len.to_string()])),
    ])
}

#[test]
fn hybrid_consistency() {
    let files = sample_v2();
    let big = 3 * PL + 100;
    let good = vec![
        v1_file(&["big.bin"], big),
        pad(PL - 100),
        v1_file(&["dir", "small.txt"], 100),
        pad(PL - 100),
        v1_file(&["empty"], 0),
    ];
    let t = Metainfo::from_bytes(&hybrid(good.clone(), 5 * PL, &files)).expect("hybrid");
    assert_eq!(t.info().version(), MetaVersion::Hybrid);
    assert!(t.info().files()[0].pieces_root.is_some());
    assert_eq!(t.info().files()[2].offset, 4 * PL as u64);
    // Without the trailing pad file it is still consistent.
    let mut no_tail = good.clone();
    no_tail.remove(3);
    Metainfo::from_bytes(&hybrid(no_tail, 4 * PL + 100, &files)).expect("no tail pad");

    // A missing pad file shifts the next file off its piece boundary.
    let mut no_pad = good.clone();
    no_pad.remove(1);
    let e = err(&hybrid(no_pad, 4 * PL, &files));
    assert!(
        matches!(e, MetainfoError::HybridMismatch(HybridMismatch::Offset { ref path, .. }) if path == Path::new("t/dir/small.txt")),
        "{e}"
    );
    // A different file name.
    let mut renamed = good.clone();
    renamed[2] = v1_file(&["dir", "other.txt"], 100);
    let e = err(&hybrid(renamed, 5 * PL, &files));
    assert!(
        matches!(
            e,
            MetainfoError::HybridMismatch(HybridMismatch::File { index: 1, .. })
        ),
        "{e}"
    );
    // A different length.
    let mut longer = good.clone();
    longer[2] = v1_file(&["dir", "small.txt"], 101);
    let e = err(&hybrid(longer, 5 * PL, &files));
    assert!(
        matches!(
            e,
            MetainfoError::HybridMismatch(HybridMismatch::File { .. })
        ),
        "{e}"
    );
    // A file missing from v1.
    let mut fewer = good.clone();
    fewer.pop();
    let e = err(&hybrid(fewer, 5 * PL, &files));
    assert!(
        matches!(
            e,
            MetainfoError::HybridMismatch(HybridMismatch::FileCount { v1: 2, v2: 3 })
        ),
        "{e}"
    );
    // Too much v1 data at the end.
    let mut extra = good;
    extra.push(pad(2 * PL));
    let e = err(&hybrid(extra, 7 * PL, &files));
    assert!(
        matches!(
            e,
            MetainfoError::HybridMismatch(HybridMismatch::TotalLength { .. })
        ),
        "{e}"
    );
}

// ----- symlinks -----

fn with_link(target: &[&str], link: &[&str]) -> Vec<u8> {
    v1_multi(
        vec![
            v1_file(&["d", "real"], 10),
            d(vec![
                ("attr", s("xl")),
                ("length", i(0)),
                ("path", path(link)),
                ("symlink path", path(target)),
            ]),
        ],
        10,
    )
}

#[test]
fn symlinks() {
    let t = Metainfo::from_bytes(&with_link(&["d", "real"], &["link"])).expect("link");
    let link = &t.info().files()[1];
    assert_eq!(link.attr.symlink.as_deref(), Some(Path::new("d/real")));
    assert!(link.attr.executable);
    // libtorrent writes targets relative to the link's folder: accepted too.
    let t =
        Metainfo::from_bytes(&with_link(&["..", "d", "real"], &["d", "link"])).expect("relative");
    assert_eq!(
        t.info().files()[1].attr.symlink.as_deref(),
        Some(Path::new("d/real"))
    );
    // Leaving the torrent is refused and named.
    let e = err(&with_link(&["..", "..", "etc", "passwd"], &["d", "link"]));
    assert!(
        matches!(e, MetainfoError::SymlinkEscapes { ref path, ref target } if path == Path::new("t/d/link") && target == "../../etc/passwd"),
        "{e}"
    );
    let e = err(&with_link(&["a\0"], &["link"]));
    assert!(
        matches!(
            e,
            MetainfoError::InvalidPath {
                problem: PathProblem::NulByte,
                ..
            }
        ),
        "{e}"
    );
    // `l` without a target is an ordinary (empty) file.
    let plain = v1_multi(
        vec![
            v1_file(&["a"], 1),
            d(vec![
                ("attr", s("l")),
                ("length", i(0)),
                ("path", path(&["b"])),
            ]),
        ],
        1,
    );
    let t = Metainfo::from_bytes(&plain).expect("l alone");
    assert!(t.info().files()[1].attr.symlink.is_none());
}

// ----- real-world quirks -----

#[test]
fn unsorted_keys_hash_the_original_bytes() {
    // Keys out of order at both levels, and an unknown key inside info.
    let mut info = b"d6:pieces20:".to_vec();
    info.extend_from_slice(&[3; 20]);
    info.extend_from_slice(b"4:name3:abc6:lengthi7e12:piece lengthi16384e1:zi1e1:a0:e");
    let mut bytes = b"d8:announce5:http:4:info".to_vec();
    bytes.extend_from_slice(&info);
    bytes.extend_from_slice(b"7:comment2:hie");
    let t = Metainfo::from_bytes(&bytes).expect("unsorted");
    assert_eq!(t.info().raw(), info.as_slice());
    assert_eq!(
        t.info_hashes().v1.expect("v1").0,
        webtorrent_hash::sha1(&info)
    );
    let out = t.to_bytes();
    let again = Metainfo::from_bytes(&out).expect("again");
    assert_eq!(again.info_hashes(), t.info_hashes());
    assert_eq!(again.info().raw(), info.as_slice(), "info kept verbatim");
    assert_eq!(again.comment(), Some("hi"));
}

#[test]
fn real_world_quirks_parse() {
    // announce only; url-list as a string; negative creation date; `encoding`; md5sum; sha1;
    // name.utf-8 preferred over a non-UTF-8 name; path.utf-8 preferred; unknown keys kept.
    let info = d(vec![
        ("name", bytes(b"caf\xe9")),
        ("name.utf-8", s("café")),
        ("piece length", i(PL)),
        ("pieces", pieces(15)),
        (
            "files",
            OwnedValue::List(vec![
                d(vec![
                    ("length", i(10)),
                    ("path", OwnedValue::List(vec![bytes(b"\xff\xfe.txt")])),
                    ("path.utf-8", path(&["ÿþ.txt"])),
                    ("md5sum", s("0123456789abcdef0123456789abcdef")),
                    ("sha1", bytes(&[7; 20])),
                ]),
                d(vec![
                    ("length", i(5)),
                    ("path", OwnedValue::List(vec![bytes(b"raw\xff")])),
                ]),
            ]),
        ),
        ("x-unknown", s("kept")),
    ]);
    let top = d(vec![
        ("announce", s("http://tracker/announce")),
        ("url-list", s("http://seed/")),
        ("creation date", i(-1)),
        ("encoding", s("latin-1")),
        ("x-top", i(42)),
        ("info", info),
    ]);
    let t = Metainfo::from_bytes(&top.encode()).expect("quirks");
    assert_eq!(t.info().name(), "café");
    assert_eq!(t.trackers(), [vec!["http://tracker/announce".to_string()]]);
    assert_eq!(t.web_seeds(), ["http://seed/"]);
    assert_eq!(t.creation_date(), Some(-1));
    let files = t.info().files();
    assert_eq!(files[0].path, Path::new("café/ÿþ.txt"));
    assert_eq!(files[0].sha1, Some([7; 20]));
    assert_eq!(files[1].path, Path::new("café/raw\u{fffd}"));
    assert!(t.info().has_lossy_names());
    assert_eq!(
        t.extra_fields().get(b"x-top".as_slice()),
        Some(&OwnedValue::Int(42))
    );
    let again = Metainfo::from_bytes(&t.to_bytes()).expect("again");
    assert_eq!(again, t);

    // announce-list only, with an empty tier, a flat string tier and a repeated URL; a huge
    // creation date; url-list as a list.
    let top = d(vec![
        (
            "announce-list",
            OwnedValue::List(vec![
                OwnedValue::List(vec![s("udp://a/"), s("udp://b/")]),
                OwnedValue::List(vec![]),
                s("udp://c/"),
                OwnedValue::List(vec![s("udp://a/")]),
            ]),
        ),
        ("announce", s("udp://ignored/")),
        ("creation date", i(i64::MAX)),
        (
            "url-list",
            OwnedValue::List(vec![s("http://1/"), s(""), s("http://2/")]),
        ),
        (
            "info",
            d(vec![
                ("name", s("f")),
                ("piece length", i(PL)),
                ("pieces", pieces(1)),
                ("length", i(1)),
            ]),
        ),
    ]);
    let t = Metainfo::from_bytes(&top.encode()).expect("announce-list");
    assert_eq!(
        t.trackers(),
        [
            vec!["udp://a/".to_string(), "udp://b/".to_string()],
            vec!["udp://c/".to_string()]
        ]
    );
    assert_eq!(t.web_seeds(), ["http://1/", "http://2/"]);
    assert_eq!(t.creation_date(), Some(i64::MAX));
    // Trailing bytes after the torrent are ignored.
    let mut trailing = top.encode();
    trailing.extend_from_slice(b"\r\n");
    Metainfo::from_bytes(&trailing).expect("trailing newline");
}

#[test]
fn bitcomet_padding_files_are_pads() {
    let bytes = v1_multi(
        vec![
            v1_file(&["a"], 10),
            v1_file(
                &[
                    "_____padding_file_0_if you see this file, please update to BitComet 0.85 or above____",
                ],
                PL - 10,
            ),
            v1_file(&["b"], 10),
        ],
        PL + 10,
    );
    let t = Metainfo::from_bytes(&bytes).expect("bitcomet");
    assert!(t.info().files()[1].is_pad());
    assert_eq!(t.info().total_length(), 20);
}

#[test]
fn deep_shared_folders_cannot_blow_up_memory() {
    // 200 nested folders holding 20 000 files: each file's path spelled out takes 400 bytes
    // plus 200 strings, hundreds of MB in all, from a 500 KB torrent.
    let mut files = BTreeMap::new();
    for n in 0..20_000 {
        files.insert(
            format!("f{n}").into_bytes(),
            d(vec![("", d(vec![("length", i(0))]))]),
        );
    }
    let mut node = OwnedValue::Dict(files);
    for _ in 0..200 {
        node = d(vec![("a", node)]);
    }
    let bytes = torrent(d(vec![
        ("name", s("t")),
        ("piece length", i(PL)),
        ("meta version", i(2)),
        ("file tree", node),
    ]));
    let start = std::time::Instant::now();
    let e = err(&bytes);
    assert!(matches!(e, MetainfoError::PathsTooLarge), "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));

    // Paths deeper than 4096 bytes are refused while walking.
    let mut node = d(vec![("", d(vec![("length", i(0))]))]);
    for _ in 0..200 {
        node = d(vec![("0123456789abcdefghij", node)]);
    }
    let bytes = torrent(d(vec![
        ("name", s("t")),
        ("piece length", i(PL)),
        ("meta version", i(2)),
        ("file tree", node),
    ]));
    let e = err(&bytes);
    assert!(
        matches!(
            e,
            MetainfoError::InvalidPath {
                problem: PathProblem::PathTooLong { .. },
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn many_deep_v1_paths_are_checked_in_linear_time() {
    // 300 files whose paths are 2000 one-letter folders deep.
    let deep: Vec<&str> = std::iter::repeat_n("a", 1999).collect();
    let files: Vec<OwnedValue> = (0..300)
        .map(|n| {
            let mut parts = vec![if n % 2 == 0 { "x" } else { "y" }];
            parts.extend_from_slice(&deep);
            let last = format!("{n}");
            let mut p: Vec<OwnedValue> = parts.iter().map(|c| s(c)).collect();
            p.push(s(&last));
            d(vec![("length", i(1)), ("path", OwnedValue::List(p))])
        })
        .collect();
    let start = std::time::Instant::now();
    let t = Metainfo::from_bytes(&v1_multi(files, 300)).expect("deep paths");
    assert_eq!(t.info().files().len(), 300);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}
