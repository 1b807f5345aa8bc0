//! `webtorrent seed` and `webtorrent download` against each other over loopback TCP.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::content;

/// Every wait in these tests is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(60);

fn spawn(cwd: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_webtorrent"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the webtorrent binary starts")
}

/// A running seeder, killed when dropped.
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

/// Starts `webtorrent seed ARGS --listen 127.0.0.1:0` and reads the magnet link (stdout)
/// and the listening address (stderr).
fn seed(cwd: &Path, args: &[&str]) -> Seeder {
    serve(cwd, args, "magnet:?")
}

/// Starts `webtorrent ARGS --listen 127.0.0.1:0` and waits for a stdout line starting with
/// `stdout_prefix` (kept in `magnet`) and the listening address (stderr).
fn serve(cwd: &Path, args: &[&str], stdout_prefix: &str) -> Seeder {
    let mut all = args.to_vec();
    all.extend(["--listen", "127.0.0.1:0"]);
    let mut child = spawn(cwd, &all);
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
        if line.starts_with(stdout_prefix) {
            seeder.magnet = line;
        } else if let Some(addr) = line.strip_prefix("listening on ") {
            seeder.addr = addr.to_owned();
        } else {
            assert!(!line.starts_with("error"), "seeder failed: {line}");
        }
    }
    seeder
}

/// Waits for `child` at most `TIMEOUT`, killing it if it takes longer.
fn wait(mut child: Child) -> (ExitStatus, String, String) {
    use std::io::Read;
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
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out).expect("stdout is UTF-8");
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut err).expect("stderr is UTF-8");
    }
    (status, out, err)
}

fn download(cwd: &Path, torrent: &str, dir: &str, peer: &str) -> (ExitStatus, String, String) {
    wait(spawn(
        cwd,
        &[
            "download",
            torrent,
            "-o",
            dir,
            "--peer",
            peer,
            "--listen",
            "127.0.0.1:0",
        ],
    ))
}

fn assert_same_file(a: &Path, b: &Path) {
    let (x, y) = (
        std::fs::read(a).expect("read a"),
        std::fs::read(b).expect("read b"),
    );
    assert!(x == y, "{} and {} differ", a.display(), b.display());
}

#[test]
fn seed_a_folder_then_its_torrent_and_download_both() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let data = root.join("src").join("share");
    std::fs::create_dir_all(data.join("sub")).expect("mkdir");
    // Sizes that end mid-block and mid-piece, and an empty file.
    std::fs::write(data.join("big.bin"), content(1, 700_001)).expect("write");
    std::fs::write(data.join("sub").join("small.txt"), content(2, 1234)).expect("write");
    std::fs::write(data.join("empty"), b"").expect("write");

    // 1. Seed the folder; the created torrent is written for the downloader.
    let seeder = seed(root, &["seed", "src/share", "--torrent", "share.torrent"]);
    assert!(seeder.magnet.contains("&dn=share"), "{}", seeder.magnet);
    assert!(root.join("share.torrent").is_file());
    let (status, out, err) = download(root, "share.torrent", "dst", &seeder.addr);
    assert!(status.success(), "download failed ({status}): {err}");
    assert!(out.starts_with("downloaded share: "), "{out:?}");
    for f in ["big.bin", "sub/small.txt", "empty"] {
        assert_same_file(&data.join(f), &root.join("dst").join("share").join(f));
    }
    drop(seeder);

    // 2. Seed the .torrent from the downloaded copy (rechecked on add), download again.
    let seeder = seed(root, &["seed", "share.torrent", "--dir", "dst"]);
    let (status, _, err) = download(root, "share.torrent", "dst2", &seeder.addr);
    assert!(status.success(), "second download failed ({status}): {err}");
    assert_same_file(
        &data.join("big.bin"),
        &root.join("dst2").join("share").join("big.bin"),
    );
}

#[test]
fn seeding_a_torrent_without_its_data_warns() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    std::fs::write(root.join("f.bin"), content(5, 40_000)).expect("write");
    common::ok(&common::webtorrent(
        root,
        &["create", "f.bin", "-o", "f.torrent"],
    ));
    std::fs::create_dir(root.join("empty")).expect("mkdir");
    let mut all = vec![
        "seed",
        "f.torrent",
        "--dir",
        "empty",
        "--listen",
        "127.0.0.1:0",
    ];
    let mut child = spawn(root, &all);
    let err = BufReader::new(child.stderr.take().expect("stderr is piped"));
    let lines: Vec<String> = err.lines().map_while(Result::ok).take(2).collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines[0].starts_with("listening on 127.0.0.1:"), "{lines:?}");
    assert!(
        lines[1].starts_with("warning: only 0/3 pieces of f.bin are in empty"),
        "{lines:?}"
    );
    // --torrent and --dir each belong to one kind of input.
    all.extend(["--torrent", "x.torrent"]);
    let line = common::one_error_line(&common::webtorrent(root, &all));
    assert!(line.contains("--torrent"), "{line}");
    let line = common::one_error_line(&common::webtorrent(root, &["seed", "f.bin", "-d", "x"]));
    assert!(line.contains("--dir"), "{line}");
}

#[test]
fn download_by_magnet_link_from_a_seeder() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    std::fs::create_dir_all(root.join("src").join("album")).expect("mkdir");
    std::fs::write(root.join("src/album/a.bin"), content(7, 250_000)).expect("write");
    std::fs::write(root.join("src/album/b.txt"), content(8, 1_000)).expect("write");
    // The seeder prints the magnet link; the downloader gets only that and an address.
    let seeder = seed(root, &["seed", "src/album"]);
    let (status, out, err) = download(root, &seeder.magnet, "dst", &seeder.addr);
    assert!(status.success(), "magnet download failed ({status}): {err}");
    assert!(out.starts_with("downloaded album: "), "{out}");
    // "fetching the metadata from peers" is printed only if it had not arrived already.
    for file in ["a.bin", "b.txt"] {
        assert_same_file(
            &root.join("src/album").join(file),
            &root.join("dst/album").join(file),
        );
    }
}

#[test]
fn download_by_v2_only_magnet_link_from_a_seeder() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    std::fs::create_dir_all(root.join("src").join("album")).expect("mkdir");
    // 16 pieces of 16 KiB and a bit: the piece layer comes by BEP 52 hash requests.
    std::fs::write(root.join("src/album/a.bin"), content(9, 16 * 16_384 + 10)).expect("write");
    std::fs::write(root.join("src/album/b.txt"), content(10, 1_000)).expect("write");
    let o = common::webtorrent(
        root,
        &[
            "create",
            "src/album",
            "--meta-version",
            "2",
            "--piece-length",
            "16KiB",
            "-o",
            "v2.torrent",
        ],
    );
    common::ok(&o);
    let seeder = seed(root, &["seed", "v2.torrent", "-d", "src"]);
    assert!(
        seeder.magnet.contains("xt=urn:btmh:") && !seeder.magnet.contains("btih"),
        "{}",
        seeder.magnet
    );
    let (status, out, err) = download(root, &seeder.magnet, "dst", &seeder.addr);
    assert!(
        status.success(),
        "v2 magnet download failed ({status}): {err}"
    );
    assert!(out.starts_with("downloaded album: "), "{out}");
    for file in ["a.bin", "b.txt"] {
        assert_same_file(
            &root.join("src/album").join(file),
            &root.join("dst/album").join(file),
        );
    }
}

#[test]
fn an_invalid_magnet_link_is_one_error_line() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let o = common::webtorrent(tmp.path(), &["download", "magnet:?xt=urn:btih:nothex"]);
    let line = common::one_error_line(&o);
    assert!(line.contains("invalid magnet link"), "{line}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_download_with_status_130() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    std::fs::write(root.join("f.bin"), content(3, 50_000)).expect("write");
    let o = common::webtorrent(root, &["create", "f.bin", "-o", "f.torrent"]);
    common::ok(&o);
    // No peers: the download waits until interrupted.
    let mut child = spawn(
        root,
        &[
            "download",
            "f.torrent",
            "-o",
            "dst",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    // Wait until it listens (the torrent is added right after), then give it time to
    // start waiting for Ctrl-C.
    let mut err = BufReader::new(child.stderr.take().expect("stderr is piped"));
    let mut first = String::new();
    err.read_line(&mut first).expect("stderr is UTF-8");
    assert!(first.starts_with("listening on "), "{first:?}");
    std::thread::sleep(Duration::from_secs(1));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let (status, out, _) = wait(child);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).expect("stderr is UTF-8");
    assert_eq!(status.code(), Some(130), "stderr: {rest}");
    assert!(out.is_empty(), "{out:?}");
    assert!(rest.starts_with("interrupted: 0/"), "{rest:?}");
    // The resume data was saved on the way out.
    let saved = std::fs::read_dir(root.join("dst"))
        .expect("dst exists")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".resume"));
    assert!(saved, "no resume data in dst");
}

#[cfg(unix)]
#[test]
fn download_with_seed_serves_after_completion_until_ctrl_c() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    std::fs::create_dir(root.join("src")).expect("mkdir");
    std::fs::write(root.join("src").join("f.bin"), content(4, 200_000)).expect("write");
    let origin = seed(root, &["seed", "src/f.bin", "--torrent", "f.torrent"]);
    // A downloads from the origin, then keeps seeding.
    let mut a = serve(
        root,
        &[
            "download",
            "f.torrent",
            "-o",
            "a",
            "--peer",
            &origin.addr,
            "--seed",
        ],
        "downloaded f.bin: ",
    );
    drop(origin);
    // B downloads from A alone.
    let (status, _, err) = download(root, "f.torrent", "b", &a.addr);
    assert!(
        status.success(),
        "download from the --seed peer failed ({status}): {err}"
    );
    assert_same_file(
        &root.join("src").join("f.bin"),
        &root.join("b").join("f.bin"),
    );
    // Ctrl-C ends A's seeding normally.
    let killed = Command::new("kill")
        .args(["-INT", &a.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = a.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "--seed did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn seed_peer_dials_a_leecher_that_cannot_reach_the_seeder() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    std::fs::create_dir(root.join("src")).expect("mkdir");
    std::fs::write(root.join("src").join("f.bin"), content(5, 300_000)).expect("write");
    let o = common::webtorrent(root, &["create", "src/f.bin", "-o", "f.torrent"]);
    common::ok(&o);
    // The leecher knows no peer: it only listens.
    let mut leecher = spawn(
        root,
        &[
            "download",
            "f.torrent",
            "-o",
            "dst",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let mut err = BufReader::new(leecher.stderr.take().expect("stderr is piped"));
    let mut first = String::new();
    err.read_line(&mut first).expect("stderr is UTF-8");
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    // The seeder dials it.
    let _seeder = seed(
        root,
        &["seed", "f.torrent", "-d", "src", "--peer", addr.as_str()],
    );
    let (status, out, _) = wait(leecher);
    assert!(status.success(), "the download failed ({status}): {out}");
    assert_same_file(
        &root.join("src").join("f.bin"),
        &root.join("dst").join("f.bin"),
    );
}

#[test]
fn select_downloads_only_the_chosen_files() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let data = root.join("src").join("set");
    std::fs::create_dir_all(&data).expect("mkdir");
    // v1 with 32 KiB pieces: b.bin shares its first and last pieces with a.bin and c.bin.
    std::fs::write(data.join("a.bin"), content(21, 50_000)).expect("write");
    std::fs::write(data.join("b.bin"), content(22, 70_000)).expect("write");
    std::fs::write(data.join("c.bin"), content(23, 30_000)).expect("write");
    common::ok(&common::webtorrent(
        root,
        &[
            "create",
            "src/set",
            "-o",
            "set.torrent",
            "--meta-version",
            "v1",
            "--piece-length",
            "32KiB",
        ],
    ));
    let listing = common::ok(&common::webtorrent(root, &["info", "set.torrent"]));
    assert!(listing.contains("  1  70000  set/b.bin"), "{listing}");
    let seeder = seed(root, &["seed", "set.torrent", "--dir", "src"]);

    let (status, out, err) = wait(spawn(
        root,
        &[
            "download",
            "set.torrent",
            "-o",
            "dst",
            "--peer",
            &seeder.addr,
            "--listen",
            "127.0.0.1:0",
            "--select",
            "1",
        ],
    ));
    assert!(status.success(), "download failed ({status}): {err}");
    assert!(err.contains("selected 1 of 3 files:"), "{err}");
    assert!(out.contains("of the selected files complete"), "{out}");
    assert_same_file(&data.join("b.bin"), &root.join("dst/set/b.bin"));
    assert!(!root.join("dst/set/a.bin").exists());
    assert!(!root.join("dst/set/c.bin").exists());

    // A magnet link's so= does the same; --select overrides it.
    let magnet = format!("{}&so=0,2", seeder.magnet);
    let (status, _, err) = download(root, &magnet, "dst2", &seeder.addr);
    assert!(status.success(), "magnet download failed ({status}): {err}");
    assert!(err.contains("selected 2 of 3 files:"), "{err}");
    assert_same_file(&data.join("a.bin"), &root.join("dst2/set/a.bin"));
    assert_same_file(&data.join("c.bin"), &root.join("dst2/set/c.bin"));
    assert!(!root.join("dst2/set/b.bin").exists());

    // Nothing chosen, or not a list: one error line each.
    let o = common::webtorrent(
        root,
        &["download", "set.torrent", "-o", "dst3", "--select", "7-9"],
    );
    let line = common::one_error_line(&o);
    assert!(line.contains("names none of the torrent's"), "{line}");
    let o = common::webtorrent(root, &["download", "set.torrent", "--select", "a-b"]);
    assert_eq!(o.status.code(), Some(2), "usage error");
}
