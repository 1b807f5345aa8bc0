//! `webtorrent metadata`: a magnet link's metadata fetched from a `webtorrent seed` over
//! loopback TCP and written as a .torrent.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::content;

/// Every wait in these tests is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `webtorrent seed`, killed when dropped.
struct Seeder {
    child: Child,
    magnet: String,
    addr: String,
}

impl Drop for Seeder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seed(cwd: &Path, args: &[&str]) -> Seeder {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webtorrent"))
        .arg("seed")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the webtorrent binary starts");
    let rx = common::line_channel(&mut child);
    let mut seeder = Seeder {
        child,
        magnet: String::new(),
        addr: String::new(),
    };
    let deadline = Instant::now() + TIMEOUT;
    while seeder.magnet.is_empty() || seeder.addr.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the seeder prints its magnet link and address in time");
        if line.starts_with("magnet:?") {
            seeder.magnet = line;
        } else if let Some(addr) = line.strip_prefix("listening on ") {
            seeder.addr = addr.to_owned();
        } else {
            assert!(!line.starts_with("error"), "seeder failed: {line}");
        }
    }
    seeder
}

/// Runs `webtorrent ARGS` with TMPDIR set to `tmp`, bounded by `TIMEOUT`.
fn run(cwd: &Path, tmp: &Path, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webtorrent"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the webtorrent binary starts");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("webtorrent did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out).expect("stdout is UTF-8");
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut err).expect("stderr is UTF-8");
    }
    (status, out, err)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn a_magnets_metadata_is_written_as_a_torrent_and_nothing_else_is_left() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let album = root.join("src/album");
    std::fs::create_dir_all(album.join("disc 2")).expect("mkdir");
    std::fs::write(album.join("01.flac"), content(1, 200_000)).expect("write");
    std::fs::write(album.join("disc 2/02.flac"), content(2, 70_001)).expect("write");
    std::fs::write(album.join("cover.jpg"), content(3, 5_000)).expect("write");
    let scratch = root.join("tmp");
    std::fs::create_dir_all(&scratch).expect("mkdir");
    let work = root.join("work");
    std::fs::create_dir_all(&work).expect("mkdir");

    // A v1 torrent: a hybrid one's .torrent would need the v2 piece layers, which are not
    // part of the metadata a magnet link fetches (see the next test).
    common::ok(&common::webtorrent(
        root,
        &[
            "create",
            "src/album",
            "-o",
            "album.torrent",
            "--meta-version",
            "1",
        ],
    ));
    let seeder = seed(root, &["album.torrent", "-d", "src"]);
    let tracker = "http://127.0.0.1:9/announce";
    let link = format!(
        "{}&x.pe={}&tr={}",
        seeder.magnet,
        seeder.addr,
        tracker.replace(':', "%3A").replace('/', "%2F")
    );
    let (status, out, err) = run(
        &work,
        &scratch,
        &[
            "metadata",
            &link,
            "-o",
            "got.torrent",
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--timeout",
            "50",
        ],
    );
    assert!(status.success(), "metadata failed ({status}): {err}");
    let v = json(&out);
    assert_eq!(v["name"], "album");
    assert_eq!(v["files"], 3);
    assert_eq!(v["total_length"], 275_001);
    assert!(v["metadata_bytes"].as_u64().unwrap_or(0) > 0, "{v}");
    assert!(v["seconds"].as_f64().is_some(), "{v}");
    let btih = seeder
        .magnet
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("xt=urn:btih:"))
        .expect("the seeder's magnet has a btih");
    assert_eq!(v["info_hash"].as_str(), Some(btih));

    // The .torrent has the same info-hash (the info dictionary is kept byte for byte) and
    // the link's tracker.
    let info = common::ok(&common::webtorrent(
        &work,
        &["info", "--json", "got.torrent"],
    ));
    let info = json(&info);
    assert_eq!(info["info_hash_v1"].as_str(), Some(btih));
    assert_eq!(info["name"], "album");
    assert_eq!(info["trackers"], serde_json::json!([[tracker]]));

    // No data: the work folder holds only the .torrent, the scratch folder is gone.
    let left: Vec<String> = std::fs::read_dir(&work)
        .expect("work")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["got.torrent"]);
    assert_eq!(
        std::fs::read_dir(&scratch).expect("scratch").count(),
        0,
        "the temporary folder was left behind"
    );

    // The text output names the torrent and the file written.
    let (status, out, err) = run(
        &work,
        &scratch,
        &[
            "metadata",
            &link,
            "-o",
            "again.torrent",
            "--listen",
            "127.0.0.1:0",
            "--timeout",
            "50",
        ],
    );
    assert!(status.success(), "metadata failed ({status}): {err}");
    assert!(out.contains("name       album\n"), "{out}");
    assert!(out.contains(&format!("info-hash  {btih}\n")), "{out}");
    assert!(out.contains("torrent    again.torrent\n"), "{out}");
    assert_eq!(
        std::fs::read(work.join("again.torrent")).expect("again"),
        std::fs::read(work.join("got.torrent")).expect("got")
    );
}

#[test]
fn a_hybrid_magnets_metadata_is_fetched_and_described() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    std::fs::write(root.join("src/one.bin"), content(9, 300_000)).expect("write");
    let seeder = seed(root, &["src/one.bin"]);
    assert!(seeder.magnet.contains("xt=urn:btmh:"), "{}", seeder.magnet);
    let link = format!("{}&x.pe={}", seeder.magnet, seeder.addr);
    let (status, out, err) = run(
        root,
        root,
        &[
            "metadata",
            &link,
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--timeout",
            "50",
        ],
    );
    assert!(status.success(), "metadata failed ({status}): {err}");
    let v = json(&out);
    assert_eq!(v["name"], "one.bin");
    assert_eq!(v["files"], 1);
    assert_eq!(v["total_length"], 300_000);
    assert_eq!(v["torrent"], serde_json::Value::Null);

    // Written, with a warning that its v2 piece layers are missing.
    let (status, _, err) = run(
        root,
        root,
        &[
            "metadata",
            &link,
            "-o",
            "one.torrent",
            "--listen",
            "127.0.0.1:0",
            "--timeout",
            "50",
        ],
    );
    assert!(status.success(), "metadata failed ({status}): {err}");
    assert!(
        err.contains("note: one.torrent has no v2 piece layers"),
        "{err}"
    );
    assert!(root.join("one.torrent").is_file());
    // It loads: the v1 hashes verify it.
    let info = common::ok(&common::webtorrent(root, &["info", "one.torrent"]));
    assert!(info.contains("meta version:  hybrid"), "{info}");
}

#[test]
fn no_peer_within_the_timeout_is_one_error_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (status, out, err) = run(
        dir.path(),
        dir.path(),
        &[
            "metadata",
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&x.pe=127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
            "--timeout",
            "1",
        ],
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(out.is_empty(), "{out}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: no peer sent the metadata within 1.0 s"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[test]
fn bad_arguments_fail_before_any_network() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("x.torrent"), b"keep").expect("write");
    let magnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";
    for (args, expected) in [
        (vec!["metadata", magnet, "-o", "x.torrent"], "exists"),
        (
            vec!["metadata", "magnet:?dn=nothing"],
            "invalid magnet link",
        ),
        (vec!["metadata", magnet, "--timeout", "0"], "--timeout"),
    ] {
        let line = common::one_error_line(&common::webtorrent(dir.path(), &args));
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    assert_eq!(
        std::fs::read(dir.path().join("x.torrent")).expect("read"),
        b"keep"
    );
}
