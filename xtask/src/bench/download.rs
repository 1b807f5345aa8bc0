//! `cargo xtask bench download`: a multi-file torrent moved over loopback TCP by several
//! seeder → leecher pairs (ours, libtorrent, qBittorrent) in the same run.
//!
//! Method (docs/benchmarks/download.md has the details and the figures):
//! - the tree is generated once under `<target>/bench-download/seed/` and reused; the v1
//!   .torrent is made by libtorrent (sorted files, no pad files);
//! - before each transfer the seed files are read once (page cache warm) and the leecher's
//!   folder is empty;
//! - the seeder starts and checks its data (not measured); the leecher starts and dials it;
//! - time runs from the leecher's "session up" report to its "every piece verified" report;
//! - CPU: utime + stime (+ children) from `/proc/<pid>/stat`, for the seeder between its
//!   "ready" report and the leecher's completion, for the leecher between its two reports;
//! - peak RSS: `VmHWM` of `/proc/<pid>/status`, read before the processes are stopped.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::procfs;
use super::report::{Client, Pair, PairResult, Report, Run, select};
use crate::setup::SYSTEM_PYTHON;
use crate::util::{self, capture, cmd, on_path, root};

/// Options of `cargo xtask bench download`.
pub(crate) struct Options {
    pub(crate) size_mib: u64,
    pub(crate) runs: usize,
    pub(crate) piece_length: u64,
    pub(crate) pairs: Vec<String>,
    pub(crate) json: Option<PathBuf>,
    pub(crate) timeout: Duration,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) webtorrent: Option<PathBuf>,
}

/// Name of the torrent's top folder.
const TREE: &str = "bench-tree";

/// The files of the tree: (path inside it, length) for a total of `size` bytes. Odd lengths,
/// so pieces straddle file boundaries; two small files in folders; the rest in big files.
pub(crate) fn layout(size: u64) -> Result<Vec<(String, u64)>> {
    ensure!(size >= 16 << 20, "the tree needs at least 16 MiB");
    let mut files = vec![
        ("a/small-1.txt".to_owned(), 1_000),
        ("a/small-2.bin".to_owned(), 100_003),
        ("b/c/odd.bin".to_owned(), (3 << 20) + 7),
        ("big-1.bin".to_owned(), size / 8 * 3 + 12_345),
        ("big-2.bin".to_owned(), size / 4 - 999),
        ("mid.bin".to_owned(), size / 8 + 16_383),
    ];
    let used: u64 = files.iter().map(|f| f.1).sum();
    files.push(("z-last.bin".to_owned(), size - used));
    Ok(files)
}

/// The bytes of a tree file: the generator of interop/python/trees.py (FNV-1a-64 of the path
/// seeds a xorshift64 stream, little-endian words).
fn write_content(path: &Path, rel: &str, len: u64) -> Result<()> {
    let mut state: u64 = 0xCBF2_9CE4_8422_2325;
    for b in rel.bytes() {
        state ^= u64::from(b);
        state = state.wrapping_mul(0x0100_0000_01B3);
    }
    if state == 0 {
        state = 1;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64);
        // n <= 1 MiB fits usize.
        w.write_all(&chunk[..n as usize])?;
        left -= n;
    }
    w.flush()?;
    Ok(())
}

/// Writes the files of `layout` under `dir` that are missing or have another length.
/// Returns whether any was written.
pub(super) fn generate_tree(dir: &Path, layout: &[(String, u64)]) -> Result<bool> {
    let mut wrote = false;
    for (rel, len) in layout {
        let path = dir.join(rel);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == *len) {
            continue;
        }
        eprintln!("generating {} ({} bytes)", path.display(), len);
        write_content(&path, rel, *len)?;
        wrote = true;
    }
    Ok(wrote)
}

/// Reads every file once so that the seeders find them in the page cache.
pub(super) fn warm(dir: &Path, layout: &[(String, u64)]) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    for (rel, _) in layout {
        let mut f = File::open(dir.join(rel))?;
        while f.read(&mut buf)? > 0 {}
    }
    Ok(())
}

/// The size of every file under `dir`, summed.
fn tree_bytes(dir: &Path) -> Result<u64> {
    let mut sum = 0;
    if !dir.exists() {
        return Ok(0);
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            sum += tree_bytes(&entry.path())?;
        } else if !entry.file_name().to_string_lossy().starts_with('.') {
            sum += meta.len();
        }
    }
    Ok(sum)
}

/// Which output stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// One line a child printed, with the time it was read.
struct Line {
    at: Instant,
    stream: Stream,
    text: String,
}

/// A child process whose output lines are read as they come.
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    log: Vec<String>,
}

impl Proc {
    fn spawn(name: &str, mut c: Command) -> Result<Self> {
        let shown = util::display(&c);
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{shown}`"))?;
        let (tx, rx) = mpsc::channel();
        for (stream, r) in [
            (
                Stream::Out,
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            ),
            (
                Stream::Err,
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            ),
        ] {
            let Some(r) = r else { continue };
            let tx = tx.clone();
            thread::spawn(move || {
                for text in BufReader::new(r).lines() {
                    let Ok(text) = text else { break };
                    let line = Line {
                        at: Instant::now(),
                        stream,
                        text,
                    };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Self {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines: rx,
            log: Vec::new(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the first line for which `pick` returns a value.
    fn wait_for<T>(
        &mut self,
        deadline: Instant,
        what: &str,
        mut pick: impl FnMut(Stream, &str) -> Option<T>,
    ) -> Result<(Instant, T)> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = pick(line.stream, &line.text);
                    self.log.push(line.text);
                    if let Some(v) = found {
                        return Ok((line.at, v));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let tail = self.tail();
                    bail!("{}: timed out waiting for {what}; {tail}", self.name)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    let tail = self.tail();
                    bail!(
                        "{} exited ({}) before {what}; {tail}",
                        self.name,
                        status.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                    )
                }
            }
        }
    }

    fn tail(&mut self) -> String {
        // Lines printed since the last wait.
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line.text);
        }
        format!("last output: {}", util::last_lines(&self.log.join("\n"), 4))
    }

    /// SIGINT, like Ctrl-C.
    fn interrupt(&self) -> Result<()> {
        let ok = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()?
            .success();
        ensure!(ok, "cannot send SIGINT to {}", self.name);
        Ok(())
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits up to `grace` for the process to exit, then kills it.
    fn finish(&mut self, grace: Duration) -> Result<ExitStatus> {
        let end = Instant::now() + grace;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("{} did not exit within {grace:?}; killed", self.name);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Only the child we started; a no-op once it has exited.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free loopback TCP port (bound then released; fine on a machine that is not busy).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// What the drivers need to know.
struct Env {
    webtorrent: PathBuf,
    lt_script: PathBuf,
    torrent: PathBuf,
    seed_dir: PathBuf,
    leech_dir: PathBuf,
    work: PathBuf,
    timeout: Duration,
}

/// A seeder that is ready to serve.
struct Seeder {
    client: Client,
    proc: Proc,
    port: u16,
    webui: Option<u16>,
}

fn lt_json(stream: Stream, text: &str, key: &str) -> Option<Value> {
    if stream != Stream::Out {
        return None;
    }
    let v: Value = serde_json::from_str(text).ok()?;
    v.get(key).is_some().then_some(v)
}

fn listening_port(stream: Stream, text: &str) -> Option<u16> {
    if stream != Stream::Err {
        return None;
    }
    text.strip_prefix("listening on ")?
        .trim()
        .rsplit(':')
        .next()?
        .parse()
        .ok()
}

fn curl(url: &str, form: &[String], deadline: Instant) -> Result<String> {
    let mut c = cmd("curl", &["-sS", "--fail", "--max-time", "10", url]);
    for f in form {
        c.args(["-F", f]);
    }
    let out = capture(&mut c, Some(deadline))?.ok("WebUI request")?;
    Ok(out.stdout)
}

fn qbt_config(profile: &Path, port: u16, webui: u16) -> Result<()> {
    let dir = profile.join("qBittorrent/config");
    std::fs::create_dir_all(&dir)?;
    let conf = format!(
        "[LegalNotice]\nAccepted=true\n\n\
         [BitTorrent]\n\
         Session\\Port={port}\n\
         Session\\Interface=lo\n\
         Session\\InterfaceName=lo\n\
         Session\\InterfaceAddress=127.0.0.1\n\
         Session\\BTProtocol=TCP\n\
         Session\\MultiConnectionsPerIp=true\n\
         Session\\DHTEnabled=false\n\
         Session\\LSDEnabled=false\n\
         Session\\PeXEnabled=false\n\
         Session\\QueueingSystemEnabled=false\n\
         Session\\GlobalMaxRatio=-1\n\n\
         [Network]\nPortForwardingEnabled=false\n\n\
         [Preferences]\n\
         WebUI\\Address=127.0.0.1\n\
         WebUI\\Port={webui}\n\
         WebUI\\LocalHostAuth=false\n\
         WebUI\\CSRFProtection=false\n\
         WebUI\\HostHeaderValidation=false\n\
         WebUI\\UseUPnP=false\n"
    );
    std::fs::write(dir.join("qBittorrent.conf"), conf)?;
    Ok(())
}

/// Starts a seeder and waits until it serves its checked data.
fn start_seeder(client: Client, env: &Env) -> Result<Seeder> {
    let deadline = Instant::now() + env.timeout;
    match client {
        Client::Ours => {
            let mut c = Command::new(&env.webtorrent);
            c.arg("seed")
                .arg(&env.torrent)
                .arg("-d")
                .arg(&env.seed_dir)
                .args(["--listen", "127.0.0.1:0"]);
            let mut proc = Proc::spawn("our seeder", c)?;
            let (_, port) = proc.wait_for(deadline, "its address", listening_port)?;
            proc.wait_for(deadline, "seeding", |s, t| {
                (s == Stream::Err && t.starts_with("seeding ")).then_some(())
            })?;
            Ok(Seeder {
                client,
                proc,
                port,
                webui: None,
            })
        }
        Client::Libtorrent => {
            let mut c = cmd(SYSTEM_PYTHON, &[&env.lt_script]);
            c.arg("--torrent")
                .arg(&env.torrent)
                .arg("--save")
                .arg(&env.seed_dir)
                .arg("--seed")
                .args(["--timeout", &env.timeout.as_secs().to_string()]);
            let mut proc = Proc::spawn("libtorrent seeder", c)?;
            let (_, v) = proc.wait_for(deadline, "its port", |s, t| lt_json(s, t, "listening"))?;
            let port = v["listening"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .context("lt_throughput.py printed no port")?;
            proc.wait_for(deadline, "ready", |s, t| lt_json(s, t, "ready"))?;
            Ok(Seeder {
                client,
                proc,
                port,
                webui: None,
            })
        }
        Client::Qbittorrent => {
            let profile = env.work.join("qbt-profile");
            let _ = std::fs::remove_dir_all(&profile);
            let port = free_port()?;
            let webui = free_port()?;
            qbt_config(&profile, port, webui)?;
            let mut c = Command::new("qbittorrent-nox");
            c.arg(format!("--profile={}", profile.display()))
                .arg(format!("--webui-port={webui}"));
            let proc = Proc::spawn("qBittorrent seeder", c)?;
            let base = format!("http://127.0.0.1:{webui}/api/v2");
            // The WebUI answers once the session is up.
            loop {
                if curl(&format!("{base}/app/version"), &[], deadline).is_ok() {
                    break;
                }
                ensure!(
                    Instant::now() < deadline,
                    "qBittorrent's WebUI did not answer on port {webui}"
                );
                thread::sleep(Duration::from_millis(100));
            }
            curl(
                &format!("{base}/torrents/add"),
                &[
                    format!("torrents=@{}", env.torrent.display()),
                    format!("savepath={}", env.seed_dir.display()),
                    "skip_checking=true".to_owned(),
                    "paused=false".to_owned(),
                ],
                deadline,
            )?;
            let mut seeder = Seeder {
                client,
                proc,
                port,
                webui: Some(webui),
            };
            loop {
                let info = curl(&format!("{base}/torrents/info"), &[], deadline)?;
                let v: Value = serde_json::from_str(&info).context("torrents/info")?;
                let state = v[0]["state"].as_str().unwrap_or("").to_owned();
                let progress = v[0]["progress"].as_f64().unwrap_or(0.0);
                if progress >= 1.0 && matches!(state.as_str(), "stalledUP" | "uploading") {
                    break;
                }
                if state == "error" || state == "missingFiles" {
                    bail!("qBittorrent cannot seed the data: state {state}");
                }
                if Instant::now() >= deadline {
                    bail!("qBittorrent did not start seeding (state {state:?})");
                }
                thread::sleep(Duration::from_millis(50));
            }
            seeder.proc.log.push("seeding".to_owned());
            Ok(seeder)
        }
    }
}

fn stop_seeder(s: &mut Seeder) -> Result<()> {
    let grace = Duration::from_secs(20);
    match s.client {
        Client::Ours => {
            s.proc.interrupt()?;
            let status = s.proc.finish(grace)?;
            ensure!(status.success(), "our seeder exited with {status}");
        }
        Client::Libtorrent => {
            s.proc.close_stdin();
            s.proc.finish(grace)?;
        }
        Client::Qbittorrent => {
            if let Some(webui) = s.webui {
                let url = format!("http://127.0.0.1:{webui}/api/v2/app/shutdown");
                let _ = curl(&url, &["x=1".to_owned()], Instant::now() + grace);
            }
            s.proc.finish(grace)?;
        }
    }
    Ok(())
}

/// Recognises one line a driver prints.
type LineTest = fn(Stream, &str) -> Option<()>;

/// A leecher started and its session up.
struct Leecher {
    client: Client,
    proc: Proc,
    up_at: Instant,
    up_ticks: u64,
}

fn start_leecher(client: Client, env: &Env, seeder_port: u16) -> Result<Leecher> {
    let deadline = Instant::now() + env.timeout;
    let peer = format!("127.0.0.1:{seeder_port}");
    let (mut proc, is_up): (Proc, LineTest) = match client {
        Client::Ours => {
            let mut c = Command::new(&env.webtorrent);
            c.arg("download")
                .arg(&env.torrent)
                .arg("-o")
                .arg(&env.leech_dir)
                .args(["--listen", "127.0.0.1:0", "--peer", &peer, "--seed"]);
            (Proc::spawn("our leecher", c)?, |s, t| {
                listening_port(s, t).map(|_| ())
            })
        }
        Client::Libtorrent => {
            let mut c = cmd(SYSTEM_PYTHON, &[&env.lt_script]);
            c.arg("--torrent")
                .arg(&env.torrent)
                .arg("--save")
                .arg(&env.leech_dir)
                .args(["--peer", &peer])
                .args(["--timeout", &env.timeout.as_secs().to_string()]);
            (Proc::spawn("libtorrent leecher", c)?, |s, t| {
                lt_json(s, t, "listening").map(|_| ())
            })
        }
        Client::Qbittorrent => bail!("qBittorrent is only benchmarked as a seeder"),
    };
    let (up_at, ()) = proc.wait_for(deadline, "its session", is_up)?;
    let up_ticks = procfs::cpu_ticks(proc.pid())?;
    Ok(Leecher {
        client,
        proc,
        up_at,
        up_ticks,
    })
}

fn wait_done(l: &mut Leecher, deadline: Instant) -> Result<Instant> {
    let (at, ()) = match l.client {
        Client::Ours => l.proc.wait_for(deadline, "the download's end", |s, t| {
            (s == Stream::Out && t.starts_with("downloaded ")).then_some(())
        })?,
        _ => l.proc.wait_for(deadline, "the download's end", |s, t| {
            lt_json(s, t, "done").map(|_| ())
        })?,
    };
    Ok(at)
}

fn stop_leecher(l: &mut Leecher) -> Result<()> {
    let grace = Duration::from_secs(20);
    match l.client {
        Client::Ours => {
            l.proc.interrupt()?;
            l.proc.finish(grace)?;
        }
        _ => {
            l.proc.close_stdin();
            l.proc.finish(grace)?;
        }
    }
    Ok(())
}

/// One transfer of `pair`: seeder up, leecher up, done, figures, both stopped.
fn transfer(pair: &Pair, env: &Env, size: u64, ticks: f64) -> Result<Run> {
    if env.leech_dir.exists() {
        std::fs::remove_dir_all(&env.leech_dir)?;
    }
    std::fs::create_dir_all(&env.leech_dir)?;
    let mut seeder = start_seeder(pair.seeder, env)?;
    let seeder_pid = seeder.proc.pid();
    let seeder_t0 = procfs::cpu_ticks(seeder_pid)?;
    let mut leecher = start_leecher(pair.leecher, env, seeder.port)?;
    let done_at = wait_done(&mut leecher, Instant::now() + env.timeout)?;
    let leecher_t1 = procfs::cpu_ticks(leecher.proc.pid())?;
    let seeder_t1 = procfs::cpu_ticks(seeder_pid)?;
    let leecher_rss = procfs::vm_hwm_kib(leecher.proc.pid())?;
    let seeder_rss = procfs::vm_hwm_kib(seeder_pid)?;
    let run = Run {
        secs: done_at.duration_since(leecher.up_at).as_secs_f64(),
        seeder_cpu: seeder_t1.saturating_sub(seeder_t0) as f64 / ticks,
        leecher_cpu: leecher_t1.saturating_sub(leecher.up_ticks) as f64 / ticks,
        seeder_rss_kib: seeder_rss,
        leecher_rss_kib: leecher_rss,
    };
    let stopped_leecher = stop_leecher(&mut leecher);
    let stopped_seeder = stop_seeder(&mut seeder);
    stopped_leecher?;
    stopped_seeder?;
    let got = tree_bytes(&env.leech_dir.join(TREE))?;
    ensure!(
        got == size,
        "the leecher reported completion with {got} of {size} bytes on disk"
    );
    std::fs::remove_dir_all(&env.leech_dir)?;
    Ok(run)
}

/// Why qBittorrent pairs cannot run, if they cannot.
fn qbt_missing() -> Option<String> {
    (!on_path("qbittorrent-nox")).then(|| "qbittorrent-nox is not installed".to_owned())
}

fn version_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn bench_dir(o: &Options) -> PathBuf {
    o.dir.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"))
            .join("bench-download")
    })
}

pub(crate) fn download(o: &Options) -> Result<()> {
    ensure!(o.runs > 0, "--runs must be at least 1");
    ensure!(
        o.piece_length.is_power_of_two() && o.piece_length >= 16 << 10,
        "--piece-length must be a power of two of at least 16 KiB"
    );
    let pairs = select(&o.pairs)?;
    ensure!(
        Path::new(SYSTEM_PYTHON).is_file(),
        "{SYSTEM_PYTHON} (with python3-libtorrent) is needed: run `cargo xtask ci --only setup`"
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
    let seed_dir = work.join("seed");
    std::fs::create_dir_all(&seed_dir)?;
    // Absolute: qBittorrent resolves a relative save path against its own folders.
    let work = std::fs::canonicalize(&work)
        .with_context(|| format!("cannot resolve {}", work.display()))?;
    let seed_dir = work.join("seed");
    let tree = seed_dir.join(TREE);
    let torrent = work.join(format!(
        "bench-{}MiB-{}.torrent",
        o.size_mib, o.piece_length
    ));
    let lt_script = root().join("interop/bench/lt_throughput.py");
    if generate_tree(&tree, &layout)? || !torrent.is_file() {
        // New data: the old torrent and our seeder's resume data no longer apply.
        for entry in std::fs::read_dir(&seed_dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().ends_with(".resume") {
                std::fs::remove_file(entry.path())?;
            }
        }
        let mut c = cmd(SYSTEM_PYTHON, &[&lt_script]);
        c.arg("--create")
            .arg(&tree)
            .arg("--out")
            .arg(&torrent)
            .args(["--piece-length", &o.piece_length.to_string()]);
        eprintln!("$ {}", util::display(&c));
        capture(&mut c, None)?.ok("creating the torrent with libtorrent")?;
    }
    let env = Env {
        webtorrent,
        lt_script,
        torrent,
        leech_dir: work.join("leech"),
        seed_dir,
        work: work.clone(),
        timeout: o.timeout,
    };
    let ticks = procfs::ticks_per_second() as f64;
    let lt_version = version_of(
        SYSTEM_PYTHON,
        &["-c", "import libtorrent; print(libtorrent.__version__)"],
    )
    .unwrap_or_else(|| "?".to_owned());
    let mut versions = vec![("libtorrent".to_owned(), lt_version)];
    let qbt_skip = qbt_missing();
    if qbt_skip.is_none() && pairs.iter().any(|p| p.uses(Client::Qbittorrent)) {
        let v = version_of("qbittorrent-nox", &["--version"]).unwrap_or_else(|| "?".to_owned());
        versions.push((
            "qbittorrent-nox".to_owned(),
            v.trim_start_matches("qBittorrent ").to_owned(),
        ));
    }
    let mut results: Vec<PairResult> = pairs
        .iter()
        .map(|p| PairResult {
            pair: *p,
            runs: Vec::new(),
            failures: Vec::new(),
            skipped: if p.uses(Client::Qbittorrent) {
                qbt_skip.clone()
            } else {
                None
            },
        })
        .collect();
    for r in &results {
        if let Some(why) = &r.skipped {
            eprintln!("skipping pair {} ({}): {why}", r.pair.id, r.pair.name());
        }
    }
    for i in 0..o.runs {
        for r in results.iter_mut().filter(|r| r.skipped.is_none()) {
            warm(&tree, &layout)?;
            let pair = r.pair;
            match transfer(&pair, &env, size, ticks) {
                Ok(run) => {
                    eprintln!(
                        "run {}: pair {} {:<28} {:>6.2} s {:>7.1} MiB/s, CPU s seeder {:.2} \
                         leecher {:.2}, peak RSS MiB seeder {:.1} leecher {:.1}",
                        i + 1,
                        pair.id,
                        pair.name(),
                        run.secs,
                        size as f64 / (1 << 20) as f64 / run.secs,
                        run.seeder_cpu,
                        run.leecher_cpu,
                        run.seeder_rss_kib as f64 / 1024.0,
                        run.leecher_rss_kib as f64 / 1024.0,
                    );
                    r.runs.push(run);
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    eprintln!(
                        "run {}: pair {} {} FAILED: {msg}",
                        i + 1,
                        pair.id,
                        pair.name()
                    );
                    r.failures.push(msg);
                }
            }
            let _ = std::fs::remove_dir_all(&env.leech_dir);
        }
    }
    let report = Report {
        size_bytes: size,
        piece_length: o.piece_length,
        files: layout.len(),
        runs: o.runs,
        versions,
        results,
    };
    print!("{}", report.table());
    if let Some(path) = &o.json {
        let text = serde_json::to_string_pretty(&report.json())?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_adds_up_and_has_odd_boundaries() {
        for mib in [16, 100, 1024] {
            let l = layout(mib << 20).unwrap();
            assert_eq!(l.iter().map(|f| f.1).sum::<u64>(), mib << 20);
            assert!(l.iter().all(|f| f.1 > 0));
            assert!(l.iter().any(|f| f.1 % (16 << 10) != 0));
        }
        assert!(layout(1 << 20).is_err());
    }

    #[test]
    fn content_matches_the_trees_py_generator() {
        // trees.py: content("a.bin", 20)[:20] starts from FNV-1a-64("a.bin").
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x/a.bin");
        write_content(&p, "a.bin", 20).unwrap();
        let got = std::fs::read(&p).unwrap();
        let mut state: u64 = 0xCBF2_9CE4_8422_2325;
        for b in b"a.bin" {
            state = (state ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3);
        }
        let mut want = Vec::new();
        for _ in 0..3 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            want.extend_from_slice(&state.to_le_bytes());
        }
        assert_eq!(got, want[..20]);
    }

    #[test]
    fn tree_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let l = vec![("a/b.bin".to_owned(), 5), ("c.bin".to_owned(), 70_000)];
        assert!(generate_tree(dir.path(), &l).unwrap());
        assert!(!generate_tree(dir.path(), &l).unwrap());
        assert_eq!(tree_bytes(dir.path()).unwrap(), 70_005);
        warm(dir.path(), &l).unwrap();
    }

    #[test]
    fn driver_lines_are_recognised() {
        assert_eq!(
            listening_port(Stream::Err, "listening on 127.0.0.1:40123"),
            Some(40123)
        );
        assert_eq!(
            listening_port(Stream::Out, "listening on 127.0.0.1:1"),
            None
        );
        assert_eq!(listening_port(Stream::Err, "seeding x"), None);
        assert!(lt_json(Stream::Out, r#"{"ready": true}"#, "ready").is_some());
        assert!(lt_json(Stream::Out, r#"{"done": true}"#, "ready").is_none());
        assert!(lt_json(Stream::Out, "not json", "ready").is_none());
        assert!(lt_json(Stream::Err, r#"{"ready": true}"#, "ready").is_none());
    }
}
