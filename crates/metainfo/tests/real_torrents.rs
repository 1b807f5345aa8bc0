//! Parses the `.torrent` files written by real creators (libtorrent 2.0 and 2.1,
//! transmission-create, WebTorrent's create-torrent) in `testdata/real/` and compares with
//! what each creator's own tooling reports (`expected.json`).

use std::path::{Path, PathBuf};

use webtorrent_metainfo::{HybridMismatch, Info, MetaVersion, Metainfo, MetainfoError};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/real")
}

fn json(name: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir().join(name)).expect("fixture json");
    serde_json::from_str(&text).expect("valid json")
}

fn opt_str(v: &serde_json::Value) -> Option<&str> {
    v.as_str()
}

#[test]
fn every_real_torrent_parses_with_the_creators_info_hashes() {
    let expected = json("expected.json");
    assert!(expected.len() >= 30, "fixtures missing");
    for e in &expected {
        let file = e["file"].as_str().expect("file");
        let bytes = std::fs::read(dir().join(file)).expect("torrent");
        let torrent = Metainfo::from_bytes(&bytes).unwrap_or_else(|err| panic!("{file}: {err}"));
        let info = torrent.info();
        let hashes = torrent.info_hashes();
        assert_eq!(
            hashes.v1.map(|h| h.to_hex()).as_deref(),
            opt_str(&e["v1"]),
            "{file}: v1 info-hash"
        );
        assert_eq!(
            hashes.v2.map(|h| h.to_hex()).as_deref(),
            opt_str(&e["v2"]),
            "{file}: v2 info-hash"
        );
        let version = match (e["v1"].is_string(), e["v2"].is_string()) {
            (true, true) => MetaVersion::Hybrid,
            (false, true) => MetaVersion::V2,
            _ => MetaVersion::V1,
        };
        assert_eq!(info.version(), version, "{file}");
        assert_eq!(info.name(), e["name"].as_str().expect("name"), "{file}");
        assert_eq!(
            Some(info.piece_length()),
            e["piece_length"].as_u64(),
            "{file}"
        );

        let want: Vec<(String, u64)> = e["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| {
                (
                    f[0].as_str().expect("path").to_owned(),
                    f[1].as_u64().expect("length"),
                )
            })
            .collect();
        let got: Vec<(String, u64)> = info
            .files()
            .iter()
            .filter(|f| !f.is_pad())
            .map(|f| (f.components().collect::<Vec<_>>().join("/"), f.length))
            .collect();
        assert_eq!(got, want, "{file}: files");
        assert_eq!(
            info.total_length(),
            want.iter().map(|f| f.1).sum::<u64>(),
            "{file}"
        );

        // The info dictionary alone (BEP 9) gives the same result.
        let alone = Info::from_bytes(info.raw()).expect("info alone");
        assert_eq!(alone.info_hashes(), hashes, "{file}");

        // Writing the torrent again keeps its info-hashes, trackers and piece layers.
        let again = Metainfo::from_bytes(&torrent.to_bytes()).expect("re-parse");
        assert_eq!(again, torrent, "{file}: round trip");

        if file.contains(".lt2") {
            // The fixture generator gives libtorrent two tracker tiers, a web seed and a
            // comment.
            assert_eq!(torrent.trackers().len(), 2, "{file}: tracker tiers");
            assert_eq!(torrent.web_seeds().len(), 1, "{file}: web seeds");
            assert!(torrent.comment().is_some(), "{file}: comment");
            assert_eq!(
                info.private(),
                file.starts_with("attrs.") && file.contains("hybrid")
            );
        }
        check_mapping(file, &torrent);
    }
}

/// Every byte of every real file is covered by exactly one piece, in order, and each v2 piece
/// has a hash.
fn check_mapping(file: &str, torrent: &Metainfo) {
    let info = torrent.info();
    let mut covered = vec![0u64; info.files().len()];
    for piece in 0..info.piece_count() {
        let size = info.piece_size(piece).expect("piece in range");
        let slices: Vec<_> = info.piece_files(piece).collect();
        assert_eq!(
            slices.iter().map(|s| s.length).sum::<u64>(),
            size,
            "{file}: piece {piece} size"
        );
        for s in &slices {
            assert_eq!(s.offset, covered[s.file], "{file}: piece {piece} order");
            covered[s.file] += s.length;
            let range = info.file_pieces(s.file).expect("file in range");
            assert!(range.contains(&piece), "{file}: file_pieces");
        }
        if info.version().has_v1() {
            assert!(info.piece_hash_v1(piece).is_some());
        }
        if info.version().has_v2() {
            assert!(
                torrent.piece_hash_v2(piece).is_some(),
                "{file}: v2 hash {piece}"
            );
        }
    }
    for (f, c) in info.files().iter().zip(&covered) {
        assert_eq!(f.length, *c, "{file}: {:?} fully covered", f.path);
    }
    assert!(info.piece_size(info.piece_count()).is_none());
}

#[test]
fn libtorrent_21_inconsistent_hybrid_is_refused() {
    for e in json("expected-invalid.json") {
        let file = e["file"].as_str().expect("file");
        let bytes = std::fs::read(dir().join(file)).expect("torrent");
        let err = Metainfo::from_bytes(&bytes).expect_err(file);
        assert!(
            matches!(
                err,
                MetainfoError::HybridMismatch(HybridMismatch::File { .. })
            ),
            "{file}: {err}"
        );
    }
}

#[test]
fn attributes_are_read() {
    let bytes = std::fs::read(dir().join("attrs.lt20.hybrid.torrent")).expect("torrent");
    let torrent = Metainfo::from_bytes(&bytes).expect("parse");
    let exec: Vec<String> = torrent
        .info()
        .files()
        .iter()
        .filter(|f| f.attr.executable)
        .map(|f| f.components().collect::<Vec<_>>().join("/"))
        .collect();
    assert_eq!(exec, ["attrs/bin/tool", "attrs/run.sh"]);
    let pads = torrent.info().files().iter().filter(|f| f.is_pad()).count();
    assert!(pads > 0);
}
