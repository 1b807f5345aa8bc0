//! `cargo xtask bench stream`: streaming over HTTP on loopback from a seeder limited to a
//! realistic rate, ours against JS WebTorrent's `createServer`.
//!
//! Method (docs/benchmarks/stream.md has the details and the figures):
//! - one generated file of `--size-mib` MiB, its v1 torrent made by `webtorrent create` with
//!   the piece length libtorrent would pick (512 KiB for 1 GiB); data under
//!   `<target>/bench-stream/`;
//! - the seeder is `webtorrent seed --upload-limit 4MiB` (`--rate`), on 127.0.0.1;
//! - ours: `webtorrent serve`; a run adds the .torrent with `POST /api/torrents?peer=SEEDER`
//!   and sends `GET /stream/{info_hash}/0` with `Range: bytes=0-`: its *time to first byte*
//!   runs from the POST to the first body byte. The torrent is then removed with its data;
//! - JS WebTorrent 3 (`interop/bench/wt_stream.mjs`): a client with `createServer()`; a run
//!   adds the .torrent, adds the seeder as a peer, and on `ready` sends the same request to
//!   `/webtorrent/{info_hash}/{path}`; the time runs from `client.add` to the first body byte;
//! - the two take turns (ours, JS, ours, …), `--runs` times each;
//! - seeks: after ours' last run, `--seeks` requests (50) to random offsets whose piece and the
//!   next are not verified yet (`GET …/pieces`), one after the other; each times the request
//!   to the first body byte and closes the connection (the reader goes, its window with it).
//!   The same for JS WebTorrent (it picks offsets from its own bitfield).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::median;
use crate::util::{self, capture, on_path, root};

/// Options of `cargo xtask bench stream`.
pub(crate) struct Options {
    pub(crate) size_mib: u64,
    pub(crate) runs: usize,
    pub(crate) seeks: usize,
    pub(crate) rate: String,
    pub(crate) timeout: Duration,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) webtorrent: Option<PathBuf>,
}

/// The goal for the median seek → first byte, milliseconds.
const SEEK_GOAL_MS: f64 = 200.0;

fn bench_dir(o: &Options) -> PathBuf {
    o.dir.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"))
            .join("bench-stream")
    })
}

/// A process killed when dropped, its output lines on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    what: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(what: &str, command: &mut Command) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let (tx, lines) = mpsc::channel();
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for pipe in pipes.into_iter().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Ok(Self {
            child,
            lines,
            what: what.to_owned(),
        })
    }

    /// The first output word after `prefix`, within `limit`.
    fn after(&self, prefix: &str, limit: Duration) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .with_context(|| format!("{} printed no {prefix:?} in time", self.what))?;
            if let Some(i) = line.find(prefix) {
                let rest = &line[i + prefix.len()..];
                return Ok(rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned());
            }
        }
    }
}

/// An HTTP/1.1 exchange on a fresh connection: (status, body).
fn http(addr: SocketAddr, head: &str, body: &[u8], limit: Duration) -> Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(limit))?;
    let mut text = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n");
    text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(text.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("an HTTP answer without a head")?;
    let status = String::from_utf8_lossy(&raw[..split])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("an HTTP answer without a status")?;
    Ok((status, raw[split + 4..].to_vec()))
}

/// Sends a range request from `offset` and returns the milliseconds from `start` to the
/// first body byte; the connection is closed then.
fn first_byte(
    addr: SocketAddr,
    path: &str,
    offset: u64,
    start: Instant,
    limit: Duration,
) -> Result<f64> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(limit))?;
    s.set_nodelay(true)?;
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nRange: bytes={offset}-\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf).context("reading the answer")?;
        ensure!(n > 0, "the answer to {path} ended before its body");
        raw.extend_from_slice(&buf[..n]);
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let status = String::from_utf8_lossy(&raw[..split]).into_owned();
            ensure!(
                status.starts_with("HTTP/1.1 206"),
                "{path} from {offset}: {}",
                status.lines().next().unwrap_or_default()
            );
            if raw.len() > split + 4 {
                return Ok(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
}

/// Whether piece `p` is set in a hex bitfield (high bit first).
fn has(bitfield: &[u8], p: u64) -> bool {
    usize::try_from(p / 8)
        .ok()
        .and_then(|i| bitfield.get(i))
        .is_some_and(|b| b & (0x80 >> (p % 8)) != 0)
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// The nearest-rank percentile `p` (0-100) of `v`.
fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )] // a small positive rank
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// A tiny generator for seek offsets (xorshift), seeded per run.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

pub(crate) fn stream(o: &Options) -> Result<()> {
    ensure!(o.runs > 0, "--runs must be at least 1");
    ensure!(
        on_path("node") && root().join("interop/node_modules/webtorrent").is_dir(),
        "node and interop/node_modules are needed: run `cargo xtask ci --only setup`"
    );
    let webtorrent = match &o.webtorrent {
        Some(path) => path.clone(),
        None => util::build_webtorrent("release")?,
    };
    let dir = bench_dir(o);
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir)?;
    let data = seed_dir.join(format!("movie-{}MiB.bin", o.size_mib));
    super::generate(&data, o.size_mib << 20)?;
    let torrent = dir.join(format!("movie-{}MiB.torrent", o.size_mib));
    if !torrent.is_file() {
        let mut c = Command::new(&webtorrent);
        c.arg("create")
            .arg(&data)
            .args(["--meta-version", "1", "-o"])
            .arg(&torrent);
        capture(&mut c, None)?.ok("webtorrent create")?;
    }
    let mut info = Command::new(&webtorrent);
    info.arg("info").arg(&torrent).arg("--json");
    let info: Value =
        serde_json::from_str(&capture(&mut info, None)?.ok("webtorrent info")?.stdout)?;
    let piece_length = info["piece_length"]
        .as_u64()
        .context("info: piece_length")?;
    let length = o.size_mib << 20;
    eprintln!(
        "{} MiB in pieces of {} KiB, seeder limited to {}/s",
        o.size_mib,
        piece_length >> 10,
        o.rate
    );
    let torrent_bytes = std::fs::read(&torrent)?;

    let mut seed = Command::new(&webtorrent);
    seed.arg("seed")
        .arg(&torrent)
        .arg("-d")
        .arg(&seed_dir)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-webrtc",
            "--upload-limit",
            &o.rate,
        ])
        .env_remove("RUST_LOG");
    let seeder = Running::start("the seeder", &mut seed)?;
    let seeder_addr = seeder.after("listening on ", o.timeout)?;
    seeder.after("magnet:", o.timeout)?;

    let ours_dir = dir.join("ours");
    let js_dir = dir.join("js");
    for d in [&ours_dir, &js_dir] {
        if d.exists() {
            std::fs::remove_dir_all(d)?;
        }
        std::fs::create_dir_all(d)?;
    }
    let mut serve = Command::new(&webtorrent);
    serve
        .arg("serve")
        .arg("-o")
        .arg(&ours_dir)
        .args([
            "--http",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
            "--no-webrtc",
        ])
        .env_remove("RUST_LOG");
    let server = Running::start("webtorrent serve", &mut serve)?;
    let url = server.after("http://", o.timeout)?;
    let api: SocketAddr = url
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("webtorrent serve printed {url:?}"))?;

    let limit = o.timeout;
    let mut ours_ttfb = Vec::new();
    let mut seeks = Vec::new();
    let mut js_ttfb = Vec::new();
    let mut js_seeks = Vec::new();
    for run in 0..o.runs {
        let last = run + 1 == o.runs;
        // Ours, then JS: each run of ours follows one of JS (a run of ours right after
        // another would meet the seeder still closing the previous connection of the same
        // peer id, and wait for the retry).
        for ours in [true, false] {
            if ours {
                let start = Instant::now();
                let (status, body) = http(
                    api,
                    &format!(
                        "POST /api/torrents?peer={seeder_addr} HTTP/1.1\r\nContent-Type: application/x-bittorrent"
                    ),
                    &torrent_bytes,
                    limit,
                )?;
                ensure!(
                    status == 201,
                    "adding the torrent: {}",
                    String::from_utf8_lossy(&body)
                );
                let added: Value = serde_json::from_slice(&body)?;
                let hash = added["info_hash"].as_str().context("info_hash")?.to_owned();
                let path = format!("/stream/{hash}/0");
                let ms = first_byte(api, &path, 0, start, limit)?;
                eprintln!("ours  run {run}: first byte after {ms:.1} ms");
                ours_ttfb.push(ms);
                if last && o.seeks > 0 {
                    seeks = our_seeks(api, &hash, &path, length, piece_length, o.seeks, limit)?;
                }
                let (status, _) = http(
                    api,
                    &format!("DELETE /api/torrents/{hash}?delete_data=true HTTP/1.1"),
                    b"",
                    limit,
                )?;
                ensure!(status == 204, "removing the torrent: {status}");
            } else {
                let mut node = Command::new("node");
                node.arg(root().join("interop/bench/wt_stream.mjs"))
                    .arg("--torrent")
                    .arg(&torrent)
                    .args(["--peer", &seeder_addr, "--runs", "1"])
                    .args(["--seeks", &(if last { o.seeks } else { 0 }).to_string()])
                    .arg("--out")
                    .arg(&js_dir)
                    .args(["--timeout", &limit.as_secs().to_string()]);
                let out = capture(&mut node, Some(Instant::now() + limit))?;
                let events: Vec<Value> = out
                    .stdout
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
                if let Some(e) = events.iter().find(|e| e["event"] == "error") {
                    bail!("JS WebTorrent: {}", e["message"]);
                }
                ensure!(out.status.success(), "JS WebTorrent failed: {}", out.stderr);
                for e in &events {
                    match e["event"].as_str() {
                        Some("ttfb") => {
                            let ms = e["ms"].as_f64().unwrap_or(f64::NAN);
                            eprintln!("js    run {run}: first byte after {ms:.1} ms");
                            js_ttfb.push(ms);
                        }
                        Some("seek") => js_seeks.push(e["ms"].as_f64().unwrap_or(f64::NAN)),
                        _ => {}
                    }
                }
            }
        }
    }
    drop(server);
    drop(seeder);

    println!();
    println!(
        "stream: {} MiB, {} KiB pieces, seeder at {}/s, loopback",
        o.size_mib,
        piece_length >> 10,
        o.rate
    );
    println!("| | ours | JS WebTorrent 3 |");
    println!("|---|---|---|");
    println!(
        "| fresh stream, add → first byte, median of {} | {:.0} ms | {:.0} ms |",
        o.runs,
        median(ours_ttfb.clone()),
        median(js_ttfb.clone())
    );
    println!(
        "| seek → first byte, median ({} seeks) | {:.0} ms | {:.0} ms ({} seeks) |",
        seeks.len(),
        median(seeks.clone()),
        median(js_seeks.clone()),
        js_seeks.len()
    );
    println!(
        "| seek → first byte, p95 | {:.0} ms | {:.0} ms |",
        percentile(seeks.clone(), 95.0),
        percentile(js_seeks.clone(), 95.0)
    );
    println!(
        "| seek → first byte, min / max | {:.0} / {:.0} ms | {:.0} / {:.0} ms |",
        percentile(seeks.clone(), 0.0),
        percentile(seeks.clone(), 100.0),
        percentile(js_seeks.clone(), 0.0),
        percentile(js_seeks.clone(), 100.0)
    );
    let seek_median = median(seeks);
    let ttfb = (median(ours_ttfb), median(js_ttfb));
    println!(
        "goals: seek median < {SEEK_GOAL_MS:.0} ms: {}; fresh stream faster than JS WebTorrent: {}",
        if seek_median < SEEK_GOAL_MS {
            "met"
        } else {
            "missed"
        },
        if ttfb.0 < ttfb.1 { "met" } else { "missed" }
    );
    Ok(())
}

/// `count` seeks to random offsets whose piece and the next are not verified, one after
/// the other: the milliseconds from each request to its first body byte.
fn our_seeks(
    api: SocketAddr,
    hash: &str,
    path: &str,
    length: u64,
    piece_length: u64,
    count: usize,
    limit: Duration,
) -> Result<Vec<f64>> {
    let mut rng = Xorshift(0x5eed_5eed_1234_5678);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let (status, body) = http(
            api,
            &format!("GET /api/torrents/{hash}/pieces HTTP/1.1"),
            b"",
            limit,
        )?;
        ensure!(status == 200, "pieces: {status}");
        let pieces: Value = serde_json::from_slice(&body)?;
        let bits = hex_bytes(pieces["bitfield"].as_str().unwrap_or_default());
        let offset = (0..10_000)
            .map(|_| rng.below(length))
            .find(|&at| {
                let p = at / piece_length;
                !has(&bits, p) && !has(&bits, p + 1)
            })
            .context("no piece left to seek to: use a larger --size-mib")?;
        let ms = first_byte(api, path, offset, Instant::now(), limit)?;
        out.push(ms);
    }
    eprintln!(
        "ours: {} seeks, median {:.1} ms",
        out.len(),
        median(out.clone())
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfields_and_percentiles() {
        let bits = hex_bytes("a001");
        assert!(has(&bits, 0) && !has(&bits, 1) && has(&bits, 2));
        assert!(has(&bits, 15) && !has(&bits, 14) && !has(&bits, 16));
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(v.clone(), 95.0), 95.0);
        assert_eq!(percentile(v, 0.0), 1.0);
    }
}
