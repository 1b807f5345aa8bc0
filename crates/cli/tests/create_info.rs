//! `webtorrent create` and `webtorrent info` on generated trees.

mod common;

use common::*;
use serde_json::json;

#[test]
fn create_then_info_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = make_tree(tmp.path(), "tree");
    let out = ok(&webtorrent(
        tmp.path(),
        &[
            "create",
            tree.to_str().unwrap(),
            "-o",
            "t.torrent",
            "--piece-length",
            "16KiB",
            "--tracker",
            "udp://tracker.example:6969/announce",
            "--tracker",
            "wss://tracker.example/announce",
            "--webseed",
            "https://seed.example/files/",
            "--comment",
            "hello",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "create prints only the magnet link: {out:?}"
    );
    let magnet = lines[0];
    assert!(magnet.starts_with("magnet:?xt=urn:btih:"), "{magnet}");
    assert!(magnet.contains("xt=urn:btmh:1220"), "{magnet}");

    let v = info_json(tmp.path(), "t.torrent");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["source"], "torrent");
    assert_eq!(v["name"], "tree");
    assert_eq!(v["meta_version"], "hybrid");
    assert_eq!(v["piece_length"], 16384);
    assert_eq!(v["private"], false);
    assert_eq!(v["comment"], "hello");
    assert!(
        v["created_by"]
            .as_str()
            .unwrap()
            .starts_with("webtorrent-rs/")
    );
    assert!(v["creation_date"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(v["info_hash_v1"].as_str().unwrap().len(), 40);
    assert_eq!(v["info_hash_v2"].as_str().unwrap().len(), 64);
    assert_eq!(
        v["trackers"],
        json!([
            ["udp://tracker.example:6969/announce"],
            ["wss://tracker.example/announce"]
        ])
    );
    assert_eq!(v["web_seeds"], json!(["https://seed.example/files/"]));
    assert_eq!(v["magnet"], magnet);

    let files: Vec<(String, u64)> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["length"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut expected = vec![
        ("tree/a.bin".to_owned(), 1),
        ("tree/b.bin".to_owned(), 16_384),
        ("tree/c.bin".to_owned(), 40_000),
        ("tree/empty.txt".to_owned(), 0),
        ("tree/sub/deeper/d.bin".to_owned(), 20_001),
        ("tree/ünï/日本.txt".to_owned(), 777),
    ];
    expected.sort();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert_eq!(v["total_size"], 1 + 16_384 + 40_000 + 20_001 + 777);
    // Hybrid: files after the first are piece-aligned, so pad files exist.
    assert!(v["pad_files"].as_u64().unwrap() > 0);
    for f in v["files"].as_array().unwrap() {
        if f["length"].as_u64().unwrap() > 0 {
            assert_eq!(f["pieces_root"].as_str().unwrap().len(), 64, "{f}");
        }
    }
}

#[test]
fn json_schema_has_every_key() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = make_tree(tmp.path(), "tree");
    ok(&webtorrent(
        tmp.path(),
        &["create", tree.to_str().unwrap(), "-o", "t.torrent"],
    ));
    let magnet = info_json(tmp.path(), "t.torrent")["magnet"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys = [
        "schema",
        "source",
        "name",
        "info_hash_v1",
        "info_hash_v2",
        "meta_version",
        "piece_length",
        "piece_count",
        "total_size",
        "private",
        "files",
        "pad_files",
        "trackers",
        "web_seeds",
        "comment",
        "created_by",
        "creation_date",
        "magnet",
        "magnet_params",
    ];
    for input in ["t.torrent", magnet.as_str()] {
        let v = info_json(tmp.path(), input);
        let obj = v.as_object().unwrap();
        for k in keys {
            assert!(obj.contains_key(k), "{input}: missing key {k}");
        }
        assert_eq!(obj.len(), keys.len(), "{input}: unexpected keys in {v}");
    }
    let torrent = info_json(tmp.path(), "t.torrent");
    for f in torrent["files"].as_array().unwrap() {
        let obj = f.as_object().unwrap();
        for k in [
            "path",
            "length",
            "offset",
            "executable",
            "hidden",
            "symlink",
            "pieces_root",
        ] {
            assert!(obj.contains_key(k), "file entry without {k}: {f}");
        }
    }
}

#[test]
fn meta_versions_give_the_right_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = make_tree(tmp.path(), "tree");
    let tree = tree.to_str().unwrap();
    let mut seen = Vec::new();
    for (flag, v1, v2, name) in [
        ("1", true, false, "v1"),
        ("v2", false, true, "v2"),
        ("hybrid", true, true, "hybrid"),
    ] {
        let out = format!("{name}.torrent");
        ok(&webtorrent(
            tmp.path(),
            &["create", tree, "-o", &out, "--meta-version", flag],
        ));
        let v = info_json(tmp.path(), &out);
        assert_eq!(v["meta_version"], name);
        assert_eq!(v["info_hash_v1"].is_string(), v1, "{v}");
        assert_eq!(v["info_hash_v2"].is_string(), v2, "{v}");
        seen.push(v);
    }
    // Hybrid's v1 hash differs from v1-only (pad files, v2 keys in the info dict).
    assert_ne!(seen[0]["info_hash_v1"], seen[2]["info_hash_v1"]);
}

#[test]
fn same_input_same_bytes_without_date() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = make_tree(tmp.path(), "tree");
    let tree = tree.to_str().unwrap();
    for out in ["a.torrent", "b.torrent"] {
        ok(&webtorrent(
            tmp.path(),
            &["create", tree, "-o", out, "--no-date", "--no-created-by"],
        ));
    }
    let a = std::fs::read(tmp.path().join("a.torrent")).unwrap();
    let b = std::fs::read(tmp.path().join("b.torrent")).unwrap();
    assert_eq!(a, b);
    let v = info_json(tmp.path(), "a.torrent");
    assert_eq!(v["creation_date"], serde_json::Value::Null);
    assert_eq!(v["created_by"], serde_json::Value::Null);
}

#[test]
fn default_output_is_name_dot_torrent_and_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("movie.mkv");
    std::fs::write(&data, content(9, 100_000)).unwrap();
    let first = ok(&webtorrent(tmp.path(), &["create", "movie.mkv"]));
    assert!(tmp.path().join("movie.mkv.torrent").is_file());
    let v = info_json(tmp.path(), "movie.mkv.torrent");
    assert_eq!(v["name"], "movie.mkv");
    assert_eq!(
        v["files"],
        json!([{"index": 0, "path": "movie.mkv", "length": 100_000, "offset": 0,
        "executable": false, "hidden": false, "symlink": null,
        "pieces_root": v["files"][0]["pieces_root"]}])
    );

    let again = webtorrent(tmp.path(), &["create", "movie.mkv"]);
    let line = one_error_line(&again);
    assert!(line.contains("already exists"), "{line}");
    let forced = ok(&webtorrent(
        tmp.path(),
        &["create", "movie.mkv", "--force", "--created-by", "me"],
    ));
    assert_eq!(first.lines().count(), 1);
    assert_eq!(forced.lines().count(), 1);
    assert_eq!(
        info_json(tmp.path(), "movie.mkv.torrent")["created_by"],
        "me"
    );
}

#[test]
fn name_private_and_custom_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = make_tree(tmp.path(), "tree");
    ok(&webtorrent(
        tmp.path(),
        &[
            "create",
            tree.to_str().unwrap(),
            "--name",
            "renamed",
            "--private",
            "--meta-version",
            "2",
            "--piece-length",
            "32768",
        ],
    ));
    let v = info_json(tmp.path(), "renamed.torrent");
    assert_eq!(v["name"], "renamed");
    assert_eq!(v["private"], true);
    assert_eq!(v["piece_length"], 32768);
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["path"].as_str().unwrap().starts_with("renamed/"))
    );
}

#[test]
fn info_reads_stdin_and_prints_text() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = make_tree(tmp.path(), "tree");
    ok(&webtorrent(
        tmp.path(),
        &[
            "create",
            tree.to_str().unwrap(),
            "-o",
            "t.torrent",
            "--tracker",
            "http://tracker.example/announce",
        ],
    ));
    let bytes = std::fs::read(tmp.path().join("t.torrent")).unwrap();
    let text = ok(&webtorrent_stdin(tmp.path(), &["info", "-"], &bytes));
    let v = info_json(tmp.path(), "t.torrent");
    for needle in [
        "name:          tree",
        &format!("info-hash v1:  {}", v["info_hash_v1"].as_str().unwrap()),
        &format!("info-hash v2:  {}", v["info_hash_v2"].as_str().unwrap()),
        "meta version:  hybrid",
        "tier 1:  http://tracker.example/announce",
        "tree/sub/deeper/d.bin",
        "pad files not shown",
        &format!("magnet:        {}", v["magnet"].as_str().unwrap()),
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    assert!(!text.contains(".pad/"), "{text}");
    let with_pads = ok(&webtorrent(
        tmp.path(),
        &["info", "t.torrent", "--show-pad-files"],
    ));
    assert!(with_pads.contains("[pad]"), "{with_pads}");
}

#[test]
fn info_of_a_magnet() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    let v2 = "caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";
    let uri = format!(
        "magnet:?xt=urn:btih:{v1}&xt=urn:btmh:1220{v2}&dn=My+Files&tr=udp%3A%2F%2Ft.example%3A1%2Fa&ws=https%3A%2F%2Fw.example%2F&xl=12345"
    );
    let v = info_json(tmp.path(), &uri);
    assert_eq!(v["source"], "magnet");
    assert_eq!(v["info_hash_v1"], v1);
    assert_eq!(v["info_hash_v2"], v2);
    assert_eq!(v["meta_version"], "hybrid");
    assert_eq!(v["name"], "My Files");
    assert_eq!(v["total_size"], 12345);
    assert_eq!(v["trackers"], json!([["udp://t.example:1/a"]]));
    assert_eq!(v["web_seeds"], json!(["https://w.example/"]));
    assert_eq!(v["files"], serde_json::Value::Null);
    let text = ok(&webtorrent(tmp.path(), &["info", &uri]));
    assert!(text.contains(&format!("info-hash v1:  {v1}")), "{text}");
    assert!(text.contains("name:          My Files"), "{text}");
}

#[cfg(unix)]
#[test]
fn executable_files_are_marked() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tools");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("data.txt"), b"data").unwrap();
    ok(&webtorrent(
        tmp.path(),
        &["create", dir.to_str().unwrap(), "-o", "t.torrent"],
    ));
    let v = info_json(tmp.path(), "t.torrent");
    let files = v["files"].as_array().unwrap();
    let run = files.iter().find(|f| f["path"] == "tools/run.sh").unwrap();
    let data = files
        .iter()
        .find(|f| f["path"] == "tools/data.txt")
        .unwrap();
    assert_eq!(run["executable"], true);
    assert_eq!(data["executable"], false);
}
