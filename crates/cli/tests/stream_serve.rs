//! `webtorrent stream`, `webtorrent serve` and `webtorrent demo` over loopback.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every wait in these tests is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `webtorrent`, killed when dropped, with its output lines (stdout and stderr
/// mixed) on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(cwd: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_webtorrent"))
            .args(args)
            .current_dir(cwd)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the webtorrent binary starts");
        let lines = common::line_channel(&mut child);
        Self { child, lines }
    }

    /// The first URL printed that holds `part` (at most [`TIMEOUT`] away).
    fn url(&self, part: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no URL with {part:?} in time"));
            if let Some(url) = line
                .split_whitespace()
                .find(|w| w.starts_with("http://") && w.contains(part))
            {
                return url.to_owned();
            }
        }
    }

    /// The rest of the first line holding `prefix`, from it, waiting at most [`TIMEOUT`].
    fn line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line starting with {prefix:?} in time"));
            if let Some(i) = line.find(prefix) {
                return line[i..].to_owned();
            }
        }
    }
}

/// `GET url` with `range`, blocking: (status line, body).
fn get(url: &str, range: Option<&str>) -> (String, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(r) = range {
        head.push_str(&format!("Range: {r}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, raw[split + 4..].to_vec())
}

fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

#[test]
fn stream_prints_a_url_that_serves_ranges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = bytes(3 << 20);
    std::fs::write(dir.path().join("film.webm"), &data).expect("write");
    let seeder = Running::start(
        dir.path(),
        &[
            "seed",
            "film.webm",
            "--listen",
            "127.0.0.1:0",
            "--no-webrtc",
        ],
    );
    // Printed in this order: the address when listening, the link once seeding.
    let addr = seeder.line("listening on ").replace("listening on ", "");
    let magnet = seeder.line("magnet:?");

    let out = tempfile::tempdir().expect("tempdir");
    let out_dir = out.path().to_str().expect("utf-8");
    let streamer = Running::start(
        dir.path(),
        &[
            "stream",
            &magnet,
            "--peer",
            addr.trim(),
            "--http",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
            "--no-webrtc",
            "-o",
            out_dir,
        ],
    );
    let url = streamer.url("/stream/");
    assert!(url.contains("/stream/"), "{url}");
    let (status, body) = get(&url, Some("bytes=2000000-2000999"));
    assert!(status.contains("206"), "{status}");
    assert!(body == data[2_000_000..2_001_000]);
    let (status, body) = get(&url, None);
    assert!(status.contains("200"), "{status}");
    assert!(body == data);
    // The web UI is served next to the stream.
    let base = &url[..url.find("/stream/").expect("a stream URL")];
    let (status, body) = get(&format!("{base}/api/torrents"), None);
    assert!(status.contains("200"), "{status}");
    assert!(String::from_utf8_lossy(&body).contains("film.webm"));
}

#[test]
fn serve_prints_its_url_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Running::start(
        dir.path(),
        &[
            "serve",
            "--http",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
            "--no-webrtc",
        ],
    );
    let url = server.url("http://");
    let (status, body) = get(&format!("{url}api/torrents"), None);
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, b"[]");
    let (status, body) = get(&url, None);
    assert!(status.contains("200"), "{status}");
    assert!(String::from_utf8_lossy(&body).contains("<title>webtorrent</title>"));
}

#[test]
fn serve_refuses_a_bad_torrent_and_a_bad_auth() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bad.torrent"), b"not bencode").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_webtorrent"))
        .args([
            "serve",
            "bad.torrent",
            "--http",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a torrent"));
    let out = Command::new(env!("CARGO_BIN_EXE_webtorrent"))
        .args(["serve", "--auth", "nopassword"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_runs_a_swarm_to_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Running::start(
        dir.path(),
        &[
            "demo",
            "--dir",
            dir.path().to_str().expect("utf-8"),
            "--seconds",
            "3",
            "--rate",
            "8MiB",
            "--http",
            "127.0.0.1:0",
            "--exit-when-done",
        ],
    );
    let ui = demo.line("web UI: http://");
    assert!(ui.starts_with("web UI: http://127.0.0.1:"));
    assert!(demo.line("magnet: ").contains("&tr=http://127.0.0.1:"));
    demo.line("leecher: done");
    let mut demo = demo;
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = demo.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    // The leecher's copy is the seeder's.
    let leech = std::fs::read_dir(dir.path().join("leech"))
        .expect("leech folder")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("sample."))
        .expect("the sample was downloaded");
    let seeded = std::fs::read(dir.path().join("seed").join(leech.file_name())).expect("seed");
    assert!(std::fs::read(leech.path()).expect("read") == seeded);
}
