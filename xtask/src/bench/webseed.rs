//! `cargo xtask bench webseed`: a multi-file torrent downloaded from web seeds only (BEP 19
//! `url-list`) served by a local nginx, by our CLI and by aria2 (with the same .torrent, and
//! with the plain file URLs).
//!
//! Method (docs/benchmarks/webseed.md has the details and the figures):
//! - the tree of `bench download` (same layout and contents) is generated once under
//!   `<target>/bench-webseed/www/good/` and served by nginx (2 workers, sendfile) on a free
//!   loopback port; the v1 .torrent (made by `webtorrent create`) lists `http://…/good/` as
//!   its only source;
//! - before each download the tree is read once (page cache warm) and the output folder is
//!   empty; a download is timed from the client's start to its exit (it exits when done);
//! - CPU: the client's user + system time from our own `cutime + cstime` (it is our waited
//!   child), nginx's from `/proc` (master and workers) over the same span; peak RSS: the last
//!   `VmHWM` read while the client ran (polled every 20 ms);
//! - HTTP connections and requests: the distinct connection numbers and the lines in nginx's
//!   access log for the run;
//! - every run's files are compared with the originals before they are deleted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::download::{generate_tree, layout, warm};
use super::{median, procfs};
use crate::swarm::procs::Logs;
use crate::util::{self, capture, on_path, root};
use crate::webseed::Nginx;

/// Options of `cargo xtask bench webseed`.
pub(crate) struct Options {
    pub(crate) size_mib: u64,
    pub(crate) runs: usize,
    pub(crate) piece_length: u64,
    /// HTTP connections aria2 opens per server (`-x`, `-s`).
    pub(crate) connections: u32,
    pub(crate) timeout: Duration,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) webtorrent: Option<PathBuf>,
}

/// Name of the torrent's top folder.
const TREE: &str = "bench-tree";

/// The downloaders compared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    /// `webtorrent download X.torrent`.
    Ours,
    /// `aria2c X.torrent` (web seeds of the torrent, pieces checked).
    Aria2Torrent,
    /// `aria2c -i urls.txt` (the files' URLs, nothing checked).
    Aria2Urls,
}

impl Tool {
    const ALL: [Self; 3] = [Self::Ours, Self::Aria2Torrent, Self::Aria2Urls];

    fn label(self) -> &'static str {
        match self {
            Self::Ours => "webtorrent (ours)",
            Self::Aria2Torrent => "aria2c, the .torrent",
            Self::Aria2Urls => "aria2c, plain URLs",
        }
    }
}

/// One download's figures.
#[derive(Clone, Copy, Debug)]
struct Run {
    secs: f64,
    cpu: f64,
    server_cpu: f64,
    rss_kib: u64,
    connections: usize,
    requests: usize,
}

struct Env {
    webtorrent: PathBuf,
    torrent: PathBuf,
    urls: PathBuf,
    out: PathBuf,
    tree: PathBuf,
    layout: Vec<(String, u64)>,
    connections: u32,
    timeout: Duration,
}

fn bench_dir(o: &Options) -> PathBuf {
    o.dir.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"))
            .join("bench-webseed")
    })
}

/// Our waited-for children's CPU ticks so far.
fn children_ticks() -> Result<u64> {
    let line = std::fs::read_to_string("/proc/self/stat").context("cannot read /proc/self/stat")?;
    Ok(procfs::parse_stat(&line)?.ticks.waited_children)
}

fn command(tool: Tool, env: &Env) -> Command {
    let aria2 = |c: &mut Command| {
        c.args([
            "--console-log-level=warn",
            "--summary-interval=0",
            "--download-result=hide",
            "--file-allocation=none",
            "--allow-overwrite=true",
            "--auto-file-renaming=false",
            "--interface=127.0.0.1",
        ])
        .arg(format!("--max-connection-per-server={}", env.connections))
        .arg(format!("--split={}", env.connections))
        .arg("--min-split-size=1M")
        .arg("--dir")
        .arg(&env.out);
    };
    match tool {
        Tool::Ours => {
            let mut c = Command::new(&env.webtorrent);
            c.env_remove("RUST_LOG")
                .arg("download")
                .arg(&env.torrent)
                .arg("-o")
                .arg(&env.out)
                .args(["--listen", "127.0.0.1:0"]);
            c
        }
        Tool::Aria2Torrent => {
            let mut c = Command::new("aria2c");
            aria2(&mut c);
            c.args([
                "--seed-time=0",
                "--enable-dht=false",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--follow-torrent=mem",
            ])
            .arg(&env.torrent);
            c
        }
        Tool::Aria2Urls => {
            let mut c = Command::new("aria2c");
            aria2(&mut c);
            c.arg(format!("--max-concurrent-downloads={}", env.layout.len()))
                .arg("--input-file")
                .arg(&env.urls);
            c
        }
    }
}

/// Distinct connection numbers in the access log lines (format `conn`: address, connection
/// number, request, status, bytes).
fn connections(log: &str) -> usize {
    let mut seen: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

fn one_run(tool: Tool, env: &Env, nginx: &Nginx, ticks: f64) -> Result<Run> {
    if env.out.exists() {
        std::fs::remove_dir_all(&env.out)?;
    }
    std::fs::create_dir_all(&env.out)?;
    warm(&env.tree, &env.layout)?;
    let log_before = nginx.access_log().len();
    let mine_before = children_ticks()?;
    let server_before = procfs::cpu_ticks(nginx.pid())?;
    let mut c = command(tool, env);
    let shown = util::display(&c);
    let started = Instant::now();
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let stderr = child.stderr.take().map(|mut r| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut r, &mut s);
            s
        })
    });
    let mut rss_kib = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Ok(kib) = procfs::vm_hwm_kib(child.id()) {
            rss_kib = kib;
        }
        if started.elapsed() > env.timeout {
            // Only the child we started is killed.
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{shown}` did not finish in {}", util::secs(env.timeout));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = started.elapsed().as_secs_f64();
    let server_after = procfs::cpu_ticks(nginx.pid())?;
    let mine_after = children_ticks()?;
    let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    ensure!(
        status.success(),
        "`{shown}` failed ({status}): {}",
        util::last_lines(&err, 5)
    );
    let log = nginx.access_log();
    let this_run = log.get(log_before..).unwrap_or_default();
    let conns = connections(this_run);
    let requests = this_run.lines().count();
    for (rel, len) in &env.layout {
        let got = env.out.join(TREE).join(rel);
        ensure!(
            same_file(&got, &env.tree.join(rel), *len)?,
            "{} ({}) differs from the original",
            got.display(),
            tool.label()
        );
    }
    std::fs::remove_dir_all(&env.out)?;
    #[allow(clippy::cast_precision_loss)] // tick counts far below 2^52
    Ok(Run {
        secs,
        cpu: mine_after.saturating_sub(mine_before) as f64 / ticks,
        server_cpu: server_after.saturating_sub(server_before) as f64 / ticks,
        rss_kib,
        connections: conns,
        requests,
    })
}

/// Whether `got` has `len` bytes equal to `want`'s.
pub(super) fn same_file(got: &Path, want: &Path, len: u64) -> Result<bool> {
    use std::io::Read;
    let mut a =
        std::fs::File::open(got).with_context(|| format!("cannot open {}", got.display()))?;
    let mut b = std::fs::File::open(want)?;
    if a.metadata()?.len() != len {
        return Ok(false);
    }
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(b.read(&mut y)? == 0);
        }
        b.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

fn version_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines().next().map(|l| l.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

pub(crate) fn webseed(o: &Options) -> Result<()> {
    ensure!(o.runs > 0, "--runs must be at least 1");
    ensure!(
        (1..=16).contains(&o.connections),
        "--connections must be between 1 and 16 (aria2's limit)"
    );
    ensure!(
        on_path("aria2c"),
        "aria2c is missing: run `cargo xtask ci --only setup`"
    );
    let size = o.size_mib << 20;
    let layout = layout(size)?;
    let webtorrent = match &o.webtorrent {
        Some(path) => {
            ensure!(path.is_file(), "no webtorrent binary at {}", path.display());
            path.clone()
        }
        None => util::build_webtorrent("release")?,
    };
    let work = bench_dir(o);
    let www = work.join("www");
    let tree = www.join("good").join(TREE);
    std::fs::create_dir_all(&tree)?;
    let work = std::fs::canonicalize(&work)?;
    let www = work.join("www");
    let tree = www.join("good").join(TREE);
    generate_tree(&tree, &layout)?;

    let logs = Logs::default();
    let nginx_dir = work.join("nginx");
    if nginx_dir.exists() {
        std::fs::remove_dir_all(&nginx_dir)?;
    }
    let nginx = Nginx::start(
        &nginx_dir,
        &www,
        2,
        &logs,
        Some(Instant::now() + Duration::from_secs(30)),
    )?;
    let base = format!("http://127.0.0.1:{}/good/", nginx.port);

    // The torrent names the server's port: made anew for each invocation.
    let torrent = work.join("bench-webseed.torrent");
    let mut c = Command::new(&webtorrent);
    c.arg("create")
        .arg(&tree)
        .arg("-o")
        .arg(&torrent)
        .args(["--meta-version", "1", "--no-date", "--force"])
        .arg("--piece-length")
        .arg(o.piece_length.to_string())
        .arg("--webseed")
        .arg(&base);
    eprintln!("$ {}", util::display(&c));
    capture(&mut c, None)?.ok("webtorrent create")?;
    let urls = work.join("urls.txt");
    let mut list = String::new();
    for (rel, _) in &layout {
        list.push_str(&format!("{base}{TREE}/{rel}\n  out={TREE}/{rel}\n"));
    }
    std::fs::write(&urls, list)?;

    let env = Env {
        webtorrent,
        torrent,
        urls,
        out: work.join("out"),
        tree,
        layout,
        connections: o.connections,
        timeout: o.timeout,
    };
    #[allow(clippy::cast_precision_loss)] // a small integer
    let ticks = procfs::ticks_per_second() as f64;
    #[allow(clippy::cast_precision_loss)] // sizes far below 2^52
    let mb = size as f64 / 1e6;
    let mut results: Vec<(Tool, Vec<Run>)> = Tool::ALL.iter().map(|&t| (t, Vec::new())).collect();
    for i in 0..o.runs {
        for (tool, runs) in &mut results {
            match one_run(*tool, &env, &nginx, ticks) {
                Ok(run) => {
                    eprintln!(
                        "run {}: {:<22} {:>6.2} s {:>7.1} MB/s, CPU s {:.2} (nginx {:.2}), \
                         peak RSS {:.1} MiB, {} connections, {} requests",
                        i + 1,
                        tool.label(),
                        run.secs,
                        mb / run.secs,
                        run.cpu,
                        run.server_cpu,
                        run.rss_kib as f64 / 1024.0,
                        run.connections,
                        run.requests
                    );
                    runs.push(run);
                }
                Err(e) => {
                    logs.print_tails(10);
                    eprintln!("run {}: {} failed: {e:#}", i + 1, tool.label());
                }
            }
        }
    }
    drop(nginx);

    println!(
        "web seed download, {} MiB in {} files, piece length {}, nginx {}, aria2 {} \
         (-x/-s {}), median of {} runs",
        o.size_mib,
        env.layout.len(),
        o.piece_length,
        version_of("nginx", &["-v"]).trim_start_matches("nginx version: "),
        version_of("aria2c", &["--version"]).trim_start_matches("aria2 version "),
        o.connections,
        o.runs
    );
    println!(
        "  {:<22} {:>5} {:>9} {:>8} {:>9} {:>9} {:>9} {:>6} {:>9}",
        "tool", "runs", "MB/s", "s", "CPU s", "nginx s", "RSS MiB", "conns", "requests"
    );
    let ours = results
        .iter()
        .find(|(t, _)| *t == Tool::Ours)
        .map(|(_, r)| median(r.iter().map(|r| r.secs).collect()));
    for (tool, runs) in &results {
        if runs.is_empty() {
            println!("  {:<22} no successful run", tool.label());
            continue;
        }
        let secs = median(runs.iter().map(|r| r.secs).collect());
        let ratio = match (tool, ours) {
            (Tool::Ours, _) | (_, None) => String::new(),
            (_, Some(o)) => format!("   throughput ours/this {:.2}x", secs / o),
        };
        println!(
            "  {:<22} {:>5} {:>9.1} {:>8.2} {:>9.2} {:>9.2} {:>9.1} {:>6} {:>9}{ratio}",
            tool.label(),
            runs.len(),
            mb / secs,
            secs,
            median(runs.iter().map(|r| r.cpu).collect()),
            median(runs.iter().map(|r| r.server_cpu).collect()),
            median(runs.iter().map(|r| r.rss_kib as f64 / 1024.0).collect()),
            median(runs.iter().map(|r| r.connections as f64).collect()),
            median(runs.iter().map(|r| r.requests as f64).collect()),
        );
    }
    if results.iter().any(|(_, r)| r.len() < o.runs) {
        bail!("some downloads failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_once_each() {
        let log = "127.0.0.1 5 \"GET /a HTTP/1.1\" 206 10\n\
                   127.0.0.1 7 \"GET /b HTTP/1.1\" 206 10\n\
                   127.0.0.1 5 \"GET /c HTTP/1.1\" 206 10\n";
        assert_eq!(connections(log), 2);
        assert_eq!(connections(""), 0);
    }

    #[test]
    fn files_are_compared_by_length_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, vec![7u8; 3 << 20]).unwrap();
        std::fs::write(&b, vec![7u8; 3 << 20]).unwrap();
        assert!(same_file(&a, &b, 3 << 20).unwrap());
        assert!(!same_file(&a, &b, 5).unwrap());
        let mut other = vec![7u8; 3 << 20];
        other[(2 << 20) + 1] = 0;
        std::fs::write(&b, other).unwrap();
        assert!(!same_file(&a, &b, 3 << 20).unwrap());
    }
}
