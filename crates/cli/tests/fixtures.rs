//! Every torrent from a real creator (crates/metainfo/testdata/real) reads back with the
//! info-hashes, name, piece length and files its creator reported.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../metainfo/testdata/real")
}

#[test]
fn real_creators() {
    let dir = fixtures();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let expected = expected.as_array().unwrap();
    assert!(expected.len() >= 30, "fixtures are missing");
    for e in expected {
        let file = e["file"].as_str().unwrap();
        let v = info_json(&dir, file);
        assert_eq!(v["info_hash_v1"], e["v1"], "{file} ({})", e["creator"]);
        assert_eq!(v["info_hash_v2"], e["v2"], "{file} ({})", e["creator"]);
        assert_eq!(v["name"], e["name"], "{file}");
        assert_eq!(v["piece_length"], e["piece_length"], "{file}");
        let files: Vec<Value> = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| serde_json::json!([f["path"], f["length"]]))
            .collect();
        assert_eq!(Value::from(files), e["files"], "{file}");
    }
}

#[test]
fn torrents_their_creator_cannot_load_are_refused() {
    let dir = fixtures();
    let invalid: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected-invalid.json")).unwrap()).unwrap();
    for e in invalid.as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let line = one_error_line(&webtorrent(&dir, &["info", file]));
        assert!(line.contains(file), "{line}");
    }
}
