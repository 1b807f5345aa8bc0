//! `cargo xtask bench tracker`: announces per second of our tracker against
//! bittorrent-tracker's server, with aquatic's load generators (UDP and WebSocket), and our
//! memory with 100 000 swarms of 10 peers (1 000 000 peers).
//!
//! opentracker (Debian) is built whitelist-only, and aquatic's load generator draws random
//! info-hashes at start, so it cannot be whitelisted: opentracker would answer errors only.
//! bittorrent-tracker's server takes its place on UDP, as on WebSocket.
//!
//! aquatic_ws_load_test 0.9 speaks only TLS (wss://); neither tracker does, so each is put
//! behind the same local nginx (one worker, TLS with a self-signed certificate, WebSocket
//! proxying): the WebSocket figures include that proxy.
//!
//! Everything runs on 127.0.0.1; the load generator and the tracker share the machine's cores,
//! so the figures are those of this machine with one load worker, not of the tracker alone.
//! Each tracker's CPU time is read from /proc, to give responses per CPU-second too.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::bench::procfs;
use crate::swarm::procs::{Logs, Proc, free_port, wait_until};
use crate::util::{self, cargo, root, run};

/// Pinned versions of aquatic's load generators.
const AQUATIC_VERSION: &str = "0.9.0";

/// Options of `cargo xtask bench tracker`.
pub(crate) struct Options {
    /// Seconds of load per run.
    pub(crate) seconds: u64,
    /// Skip the 1M-peer memory measurement.
    pub(crate) skip_rss: bool,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn tools() -> PathBuf {
    target_dir().join("tools")
}

/// The load generator `name`, installed into target/tools with `cargo install` if missing.
fn load_tester(name: &str) -> Result<PathBuf> {
    let bin = tools().join("bin").join(name);
    if !bin.is_file() {
        eprintln!(
            "installing {name} {AQUATIC_VERSION} into {}",
            tools().display()
        );
        run(Command::new("cargo")
            .args(["install", "--locked", "--root"])
            .arg(tools())
            .arg(format!("{name}@{AQUATIC_VERSION}"))
            .env_remove("CARGO_TARGET_DIR"))?;
    }
    Ok(bin)
}

fn our_tracker_binary() -> Result<PathBuf> {
    run(cargo().args([
        "build",
        "--locked",
        "--release",
        "-p",
        "webtorrent-tracker-server",
        "--features",
        "cli",
        "--bin",
        "webtorrent-tracker",
    ]))?;
    Ok(target_dir().join("release/webtorrent-tracker"))
}

/// A tracker under load.
struct Tracker {
    label: &'static str,
    proc: Proc,
    port: u16,
}

impl Tracker {
    fn ours(bin: &Path, dir: &Path, logs: &Logs, config: &str) -> Result<Self> {
        let port = free_port(true)?;
        let file = dir.join("ours.toml");
        std::fs::write(
            &file,
            format!("listen = \"127.0.0.1:{port}\"\nenable_stats = true\n{config}"),
        )?;
        let mut c = Command::new(bin);
        c.arg("--config").arg(&file);
        let mut proc = Proc::spawn("ours", &mut c, dir, false, logs)?;
        wait_until(
            Some(Instant::now() + Duration::from_secs(10)),
            "our tracker",
            || {
                if let Some(s) = proc.exited()? {
                    bail!("webtorrent-tracker exited ({s})");
                }
                Ok(proc.stdout().contains("stats:"))
            },
        )?;
        Ok(Self {
            label: "webtorrent-tracker",
            proc,
            port,
        })
    }

    fn bittorrent_tracker(dir: &Path, logs: &Logs) -> Result<Self> {
        let port = free_port(true)?;
        let mut c = Command::new("node");
        c.arg(root().join("interop/bench/bt_tracker.mjs"))
            .args(["--port", &port.to_string()]);
        let mut proc = Proc::spawn("bittorrent-tracker", &mut c, dir, true, logs)?;
        wait_until(
            Some(Instant::now() + Duration::from_secs(10)),
            "bittorrent-tracker",
            || {
                if let Some(s) = proc.exited()? {
                    bail!("bt_tracker.mjs exited ({s})");
                }
                Ok(proc.stdout().contains("port"))
            },
        )?;
        Ok(Self {
            label: "bittorrent-tracker",
            proc,
            port,
        })
    }

    fn cpu_ticks(&self) -> Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.proc.id()))?;
        Ok(procfs::parse_stat(&stat)?.ticks.own)
    }

    fn rss_kib(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.id()))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .with_context(|| format!("no {name} in /proc/<pid>/status"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

/// Clock ticks per second (`getconf CLK_TCK`).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100)
}

/// The figure of the line `Average responses per second: N` that ends an aquatic load
/// test report.
fn responses_per_second(report: &str) -> Option<f64> {
    report.lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix("Average responses per second:")?
            .trim()
            .parse()
            .ok()
    })
}

/// The sub-figure `  - <kind> responses: N` of the final report (e.g. `Error`).
fn responses_of(report: &str, kind: &str) -> f64 {
    let tail = report
        .rfind("Average responses per second:")
        .map_or(report, |i| &report[i..]);
    tail.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("- {kind} responses:"))?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Runs `tester` with `config` against `tracker` and returns (responses/s, tracker CPU s, the
/// report).
fn load(
    tester: &Path,
    config: &str,
    tracker: &Tracker,
    dir: &Path,
    seconds: u64,
) -> Result<(f64, f64, String)> {
    let file = dir.join(format!(
        "{}-{}.toml",
        tester.file_name().unwrap_or_default().to_string_lossy(),
        tracker.label
    ));
    std::fs::write(&file, config)?;
    let before = tracker.cpu_ticks()?;
    let out = util::capture(
        Command::new(tester).arg("-c").arg(&file),
        Some(Instant::now() + Duration::from_secs(seconds + 30)),
    )?;
    let after = tracker.cpu_ticks()?;
    let report = format!("{}{}", out.stdout, out.stderr);
    let rate = responses_per_second(&report)
        .with_context(|| format!("no responses/second in the report:\n{report}"))?;
    #[allow(clippy::cast_precision_loss)]
    let cpu = (after - before) as f64 / clock_ticks() as f64;
    Ok((rate, cpu, report))
}

fn udp_config(port: u16, seconds: u64) -> String {
    format!(
        "server_address = \"127.0.0.1:{port}\"\nlog_level = \"error\"\nworkers = 1\n\
         duration = {seconds}\nsummarize_last = 0\nextra_statistics = false\n\
         [network]\nmultiple_client_ipv4s = false\nsockets_per_worker = 4\nrecv_buffer = 4000000\n\
         [requests]\nnumber_of_torrents = 10000\nnumber_of_peers = 100000\nscrape_max_torrents = 10\n\
         announce_peers_wanted = 30\nweight_connect = 50\nweight_announce = 50\nweight_scrape = 1\n\
         peer_seeder_probability = 0.75\n"
    )
}

/// Fills `tracker` over UDP with `swarms` swarms of `per_swarm` peers each (distinct peer
/// ids, ports as the peer's index), waiting for every answer in windows of 128 requests (what the default socket buffer holds).
fn fill(port: u16, swarms: u32, per_swarm: u32) -> Result<Duration> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let mut buf = [0u8; 2048];
    let connect = |buf: &mut [u8]| -> Result<u64> {
        let mut req = Vec::with_capacity(16);
        req.extend_from_slice(&0x0417_2710_1980_u64.to_be_bytes());
        req.extend_from_slice(&0u32.to_be_bytes());
        req.extend_from_slice(&7u32.to_be_bytes());
        for _ in 0..5 {
            sock.send_to(&req, server)?;
            if let Ok((n, _)) = sock.recv_from(buf)
                && n >= 16
            {
                return Ok(u64::from_be_bytes(buf[8..16].try_into()?));
            }
        }
        bail!("no connect answer from the tracker")
    };
    let started = Instant::now();
    let mut conn = connect(&mut buf)?;
    let mut conn_at = Instant::now();
    let total = u64::from(swarms) * u64::from(per_swarm);
    let mut sent = 0u64;
    while sent < total {
        if conn_at.elapsed() > Duration::from_secs(60) {
            conn = connect(&mut buf)?;
            conn_at = Instant::now();
        }
        let window = (total - sent).min(128);
        for i in sent..sent + window {
            let swarm = u32::try_from(i / u64::from(per_swarm))?;
            let mut req = Vec::with_capacity(98);
            req.extend_from_slice(&conn.to_be_bytes());
            req.extend_from_slice(&1u32.to_be_bytes());
            req.extend_from_slice(&u32::try_from(i & 0xffff_ffff)?.to_be_bytes());
            let mut hash = [0u8; 20];
            hash[..4].copy_from_slice(&swarm.to_be_bytes());
            req.extend_from_slice(&hash);
            let mut peer = [0x2du8; 20];
            peer[12..20].copy_from_slice(&i.to_be_bytes());
            req.extend_from_slice(&peer);
            req.extend_from_slice(&0u64.to_be_bytes()); // downloaded
            req.extend_from_slice(&u64::from(i % 4 != 0).to_be_bytes()); // left: 3 in 4 leech
            req.extend_from_slice(&0u64.to_be_bytes()); // uploaded
            req.extend_from_slice(&2u32.to_be_bytes()); // started
            req.extend_from_slice(&0u32.to_be_bytes()); // ip
            req.extend_from_slice(&0u32.to_be_bytes()); // key
            req.extend_from_slice(&0i32.to_be_bytes()); // num_want 0
            req.extend_from_slice(&u16::try_from(1024 + i % 60_000)?.to_be_bytes());
            sock.send_to(&req, server)?;
        }
        // Answers only pace the sender: what comes back soon is read, the rest is lost.
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut got = 0;
        while got < window {
            if sock.recv_from(&mut buf).is_err() {
                break;
            }
            got += 1;
        }
        sock.set_read_timeout(Some(Duration::from_millis(500)))?;
        sent += window;
    }
    Ok(started.elapsed())
}

fn stats(port: u16) -> Result<Value> {
    let body = crate::swarm::procs::curl(&format!("http://127.0.0.1:{port}/stats.json"), &[])?;
    serde_json::from_str(&body).context("/stats.json")
}

pub(crate) fn tracker(opts: &Options) -> Result<()> {
    ensure!(
        util::on_path("node"),
        "node is missing: run `cargo xtask ci --only setup`"
    );
    let udp_tester = load_tester("aquatic_udp_load_test")?;
    let ws_tester = load_tester("aquatic_ws_load_test")?;
    let ours_bin = our_tracker_binary()?;
    let dir = root().join("target/bench-tracker");
    std::fs::create_dir_all(&dir)?;
    let logs = Logs::default();
    let mut results = Vec::new();
    // aquatic's WebSocket generator announces every connection in hundreds of its 10 000
    // torrents, beyond the default of 1024 swarms per connection (meant for browsers).
    let big = "[store]\nmax_swarms = 1000000\nmax_peers = 2000000\n\
               [websocket]\nmax_swarms_per_connection = 100000\n";

    for (proto, tester) in [("udp", &udp_tester), ("ws", &ws_tester)] {
        for which in ["ours", "bittorrent-tracker"] {
            let tracker = if which == "ours" {
                Tracker::ours(&ours_bin, &dir, &logs, big)?
            } else {
                Tracker::bittorrent_tracker(&dir, &logs)?
            };
            let proxy = if proto == "ws" {
                Some(TlsProxy::start(&dir, &logs, tracker.port)?)
            } else {
                None
            };
            let config = match &proxy {
                None => udp_config(tracker.port, opts.seconds),
                Some(p) => ws_config(p.port, opts.seconds),
            };
            let (rate, cpu, report) = load(tester, &config, &tracker, &dir, opts.seconds)?;
            let errors = responses_of(&report, "Error");
            std::fs::write(dir.join(format!("{proto}-{which}.report")), &report)?;
            drop(proxy);
            #[allow(clippy::cast_precision_loss)]
            let per_cpu = rate * opts.seconds as f64 / cpu.max(0.001);
            eprintln!(
                "{proto:<4} {:<20} {rate:>10.0} responses/s ({errors:.0} errors/s)   tracker CPU {cpu:>5.1} s   {per_cpu:>10.0} responses per CPU-second",
                tracker.label
            );
            results.push(json!({
                "protocol": proto, "tracker": tracker.label, "responses_per_second": rate,
                "tracker_cpu_seconds": cpu, "error_responses_per_second": errors, "responses_per_cpu_second": per_cpu,
                "seconds": opts.seconds,
            }));
        }
    }

    if !opts.skip_rss {
        let tracker = Tracker::ours(
            &ours_bin,
            &dir,
            &logs,
            "[store]\nmax_swarms = 100000\nmax_peers = 1000000\n",
        )?;
        let (idle_rss, _) = tracker.rss_kib()?;
        let took = fill(tracker.port, 100_000, 10)?;
        let st = stats(tracker.port)?;
        let (rss, hwm) = tracker.rss_kib()?;
        eprintln!(
            "rss  {} swarms, {} peers: RSS {} MiB (peak {} MiB, idle {} MiB), filled in {}",
            st["torrents"],
            st["peersAll"],
            rss / 1024,
            hwm / 1024,
            idle_rss / 1024,
            util::secs(took)
        );
        results.push(json!({
            "rss": true, "torrents": st["torrents"], "peers": st["peersAll"],
            "rss_kib": rss, "peak_rss_kib": hwm, "idle_rss_kib": idle_rss,
            "fill_seconds": took.as_secs_f64(),
        }));
    }
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    eprintln!("results: {}", path.display());
    Ok(())
}

/// nginx terminating TLS on a free port and proxying WebSockets to `upstream`.
struct TlsProxy {
    proc: Proc,
    port: u16,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        // SIGINT is nginx's fast shutdown: the master stops its workers (a kill of the master
        // alone would leave them running).
        let _ = self.proc.interrupt(Duration::from_secs(5));
    }
}

impl TlsProxy {
    fn start(dir: &Path, logs: &Logs, upstream: u16) -> Result<Self> {
        ensure!(
            Path::new("/usr/sbin/nginx").is_file() || util::on_path("nginx"),
            "nginx is missing: run `cargo xtask ci --only setup`"
        );
        let dir = dir.join(format!("nginx-{upstream}"));
        std::fs::create_dir_all(dir.join("logs"))?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        if !cert.is_file() {
            let out = util::capture(
                Command::new("openssl")
                    .args([
                        "req",
                        "-x509",
                        "-newkey",
                        "rsa:2048",
                        "-nodes",
                        "-days",
                        "2",
                        "-subj",
                        "/CN=example.com",
                        "-keyout",
                    ])
                    .arg(&key)
                    .arg("-out")
                    .arg(&cert),
                Some(Instant::now() + Duration::from_secs(30)),
            )?;
            out.ok("openssl req")?;
        }
        let port = free_port(false)?;
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "worker_processes 1;\ndaemon off;\npid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log warn;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n\
                 map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
                 server {{\n    listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {cert};\n    ssl_certificate_key {key};\n\
                 location / {{\n      proxy_pass http://127.0.0.1:{upstream};\n\
                 proxy_http_version 1.1;\n      proxy_set_header Upgrade $http_upgrade;\n\
                 proxy_set_header Connection $connection_upgrade;\n\
                 proxy_read_timeout 600s;\n      proxy_buffering off;\n    }}\n  }}\n}}\n",
                dir = dir.display(),
                cert = cert.display(),
                key = key.display(),
            ),
        )?;
        let mut c = Command::new("nginx");
        c.arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .arg("-c")
            .arg(&conf);
        let mut proc = Proc::spawn(&format!("nginx-{upstream}"), &mut c, &dir, false, logs)?;
        wait_until(
            Some(Instant::now() + Duration::from_secs(10)),
            "nginx",
            || {
                if let Some(s) = proc.exited()? {
                    bail!("nginx exited ({s}): {}", proc.stderr());
                }
                Ok(crate::swarm::procs::accepts(SocketAddr::from((
                    [127, 0, 0, 1],
                    port,
                ))))
            },
        )?;
        Ok(Self { proc, port })
    }
}

fn ws_config(port: u16, seconds: u64) -> String {
    format!(
        "server_address = \"127.0.0.1:{port}\"\nlog_level = \"error\"\nnum_workers = 1\n\
         num_connections_per_worker = 16\nconnection_creation_interval_ms = 10\n\
         duration = {seconds}\nmeasure_after_max_connections_reached = true\n\
         [torrents]\nnumber_of_torrents = 10000\noffers_per_request = 2\n\
         peer_seeder_probability = 0.25\nweight_announce = 5\nweight_scrape = 0\n"
    )
}
