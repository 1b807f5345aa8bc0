//! Bad input: exit status 1 (2 for usage errors) with one `error:` line, never a panic.

mod common;

use common::*;

/// A v1 multi-file torrent whose single file has the path components `components`.
fn torrent_with_path(components: &[&[u8]]) -> Vec<u8> {
    let mut path = b"l".to_vec();
    for c in components {
        path.extend_from_slice(format!("{}:", c.len()).as_bytes());
        path.extend_from_slice(c);
    }
    path.push(b'e');
    let mut t = b"d4:infod5:filesld6:lengthi3e4:path".to_vec();
    t.extend_from_slice(&path);
    t.extend_from_slice(b"ee4:name4:test12:piece lengthi16384e6:pieces20:");
    t.extend_from_slice(&[7u8; 20]);
    t.extend_from_slice(b"ee");
    t
}

#[test]
fn the_hand_made_torrent_is_valid() {
    // Guards the hostile-path tests below: with a harmless path the same bytes parse.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("ok.torrent"),
        torrent_with_path(&[b"fine.txt"]),
    )
    .unwrap();
    let v = info_json(tmp.path(), "ok.torrent");
    assert_eq!(v["files"][0]["path"], "test/fine.txt");
}

#[test]
fn hostile_paths_are_refused_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[&[u8]], &str)] = &[
        (&[b"..", b"evil"], ".."),
        (&[b"a", b"..", b"..", b"etc"], ".."),
        (&[b"/etc", b"passwd"], "/etc"),
        (&[b"a/../../b"], "a/../../b"),
    ];
    for (i, (components, shown)) in cases.iter().enumerate() {
        let name = format!("hostile{i}.torrent");
        std::fs::write(tmp.path().join(&name), torrent_with_path(components)).unwrap();
        for args in [vec!["info", &name], vec!["info", "--json", &name]] {
            let line = one_error_line(&webtorrent(tmp.path(), &args));
            assert!(line.contains(&name), "the file is named: {line}");
            assert!(line.contains(shown), "the path {shown:?} is named: {line}");
        }
    }
}

#[test]
fn missing_and_unreadable_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("garbage.torrent"), b"this is not bencode").unwrap();
    std::fs::write(tmp.path().join("empty.torrent"), b"").unwrap();
    std::fs::write(tmp.path().join("list.torrent"), b"li1ei2ee").unwrap();
    let truncated = torrent_with_path(&[b"fine.txt"]);
    std::fs::write(
        tmp.path().join("truncated.torrent"),
        &truncated[..truncated.len() / 2],
    )
    .unwrap();
    std::fs::create_dir(tmp.path().join("folder")).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["info", "does-not-exist.torrent"],
            "does-not-exist.torrent",
        ),
        (&["info", "garbage.torrent"], "garbage.torrent"),
        (&["info", "empty.torrent"], "empty.torrent"),
        (&["info", "list.torrent"], "list.torrent"),
        (
            &["info", "--json", "truncated.torrent"],
            "truncated.torrent",
        ),
        (&["info", "folder"], "folder"),
        (&["info", "magnet:?xt=urn:btih:zzzz"], "magnet"),
        (&["info", "magnet:?dn=no-hash"], "magnet"),
        (&["create", "does-not-exist"], "does-not-exist"),
        (
            &["create", "folder", "--tracker", "ftp://x.example/"],
            "ftp://x.example/",
        ),
        (
            &["create", "folder", "--webseed", "udp://x.example/"],
            "udp://x.example/",
        ),
    ];
    for (args, named) in cases {
        let line = one_error_line(&webtorrent(tmp.path(), args));
        assert!(line.contains(named), "{args:?}: {line}");
    }
}

#[test]
fn empty_folder_cannot_be_shared() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("nothing")).unwrap();
    let out = webtorrent(tmp.path(), &["create", "nothing", "-o", "n.torrent"]);
    one_error_line(&out);
    assert!(!tmp.path().join("n.torrent").exists());
}

#[test]
fn output_into_a_missing_folder_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f.bin"), b"data").unwrap();
    let line = one_error_line(&webtorrent(
        tmp.path(),
        &["create", "f.bin", "-o", "no/such/dir/f.torrent"],
    ));
    assert!(line.contains("no/such/dir/f.torrent"), "{line}");
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        vec!["create"],
        vec!["create", "x", "--piece-length", "1000"],
        vec!["create", "x", "--piece-length", "8KiB"],
        vec!["create", "x", "--piece-length", "lots"],
        vec!["create", "x", "--meta-version", "3"],
        vec!["create", "x", "--created-by", "a", "--no-created-by"],
        vec!["info"],
        vec!["frobnicate"],
    ] {
        let out = webtorrent(tmp.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("error: "), "{args:?}");
        assert!(!stderr(&out).contains("panicked"));
    }
}

#[test]
fn help_and_version() {
    let tmp = tempfile::tempdir().unwrap();
    let help = ok(&webtorrent(tmp.path(), &["create", "--help"]));
    assert!(help.contains("--piece-length"), "{help}");
    let version = ok(&webtorrent(tmp.path(), &["--version"]));
    assert!(version.starts_with("webtorrent "), "{version}");
}
