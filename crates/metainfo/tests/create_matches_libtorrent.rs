//! Creates torrents of the fixture trees (`testdata/real/trees.json`, contents generated as
//! documented in `testdata/real/README.md`) and checks that they have exactly the
//! info-hashes libtorrent 2.0 and 2.1 gave the same files at the same piece length.
#![cfg(feature = "create")]

use std::path::{Path, PathBuf};

use webtorrent_metainfo::{MetaVersion, Metainfo, TorrentBuilder};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/real")
}

fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn content(path: &str, length: u64) -> Vec<u8> {
    let mut state = fnv1a64(path.as_bytes());
    if state == 0 {
        state = 1;
    }
    let mut out = Vec::with_capacity(length as usize + 8);
    while (out.len() as u64) < length {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(length as usize);
    out
}

/// Writes every tree under `out` and returns (tree name, path to share).
fn write_trees(out: &Path) -> Vec<(String, PathBuf)> {
    let text = std::fs::read_to_string(dir().join("trees.json")).expect("trees.json");
    let trees: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).expect("json");
    let mut roots = Vec::new();
    for (name, entries) in &trees {
        let root = out.join(name);
        for e in entries.as_array().expect("entries") {
            let rel = e[0].as_str().expect("path");
            let length = e[1].as_u64().expect("length");
            let exec = e[2].as_bool().expect("exec");
            let path = if rel.is_empty() {
                root.clone()
            } else {
                rel.split('/').fold(root.clone(), |p, c| p.join(c))
            };
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(
                &path,
                content(if rel.is_empty() { name } else { rel }, length),
            )
            .expect("write");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = if exec { 0o755 } else { 0o644 };
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .expect("chmod");
            }
            #[cfg(not(unix))]
            let _ = exec;
        }
        roots.push((name.clone(), root));
    }
    roots
}

#[test]
fn same_info_hashes_as_libtorrent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let roots = write_trees(tmp.path());
    let text = std::fs::read_to_string(dir().join("expected.json")).expect("expected.json");
    let expected: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
    let mut checked = 0;
    for e in &expected {
        let file = e["file"].as_str().expect("file");
        if !file.contains(".lt2") {
            // Transmission and create-torrent skip hidden or empty files and keep
            // directory order: other rules, not ours.
            continue;
        }
        let version = match file.rsplit('.').nth(1) {
            Some("v1") => MetaVersion::V1,
            Some("v2") => MetaVersion::V2,
            _ => MetaVersion::Hybrid,
        };
        let name = e["name"].as_str().expect("name");
        let root = &roots.iter().find(|(n, _)| n == name).expect("tree").1;
        let fixture =
            Metainfo::from_bytes(&std::fs::read(dir().join(file)).expect("read")).expect("parse");
        let ours = TorrentBuilder::new(root)
            .meta_version(version)
            .piece_length(Some(16384))
            .private(fixture.info().private())
            .build()
            .unwrap_or_else(|err| panic!("{file}: {err}"));
        assert_eq!(ours.info_hashes(), fixture.info_hashes(), "{file}");
        assert_eq!(
            ours.info().raw(),
            fixture.info().raw(),
            "{file}: info bytes"
        );
        for i in 0..ours.info().files().len() {
            assert_eq!(
                ours.piece_layer(i),
                fixture.piece_layer(i),
                "{file}: layer {i}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} fixtures checked");
}

/// The fixture trees at automatic piece length parse back with libtorrent's choice.
#[test]
fn automatic_piece_length_and_progress() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (_, root) in write_trees(tmp.path()) {
        let mut calls = Vec::new();
        let t = TorrentBuilder::new(&root)
            .build_with_progress(|done, total| calls.push((done, total)))
            .expect("build");
        assert_eq!(t.info().piece_length(), 16384);
        let total = t.info().total_length();
        assert_eq!(calls.last().copied(), Some((total, total)));
        assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}
