//! `cargo xtask bench magnet`: magnet link → verified metadata over loopback, ours
//! (`webtorrent metadata`) against libtorrent, from one libtorrent seeder.
//!
//! Method (docs/benchmarks/magnet.md has the details and the figures):
//! - two v1 torrents made by `webtorrent create` (piece length 16 KiB): `many`, with
//!   `--files` small files under long names (an info dictionary of several hundred KiB), and
//!   `small`, one 1 MiB file; their data is generated once under `<target>/bench-magnet/`;
//! - `interop/bench/lt_metadata.py` seeds both with Debian's libtorrent 2.0 and, on command,
//!   times a fresh libtorrent session fetching a magnet (add_torrent → metadata_received_alert),
//!   once with libtorrent's default tick (500 ms) and once with a 20 ms tick;
//! - ours: `webtorrent metadata LINK --json`, one process per fetch; the time it reports
//!   runs from adding the link to the verified metadata (polled every 5 ms); the process's
//!   whole wall time (start, runtime, listener, exit) is reported too;
//! - the link is `magnet:?xt=urn:btih:HEX&x.pe=127.0.0.1:PORT`: no tracker, no name;
//! - the three fetchers take turns in each repetition, in a rotating order.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::median;
use crate::setup::SYSTEM_PYTHON;
use crate::swarm::contents;
use crate::swarm::procs::{Logs, Proc, wait_until};
use crate::util::{self, capture, root};

/// Options of `cargo xtask bench magnet`.
pub(crate) struct Options {
    pub(crate) runs: usize,
    pub(crate) files: usize,
    pub(crate) timeout: Duration,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) webtorrent: Option<PathBuf>,
}

/// The fetchers compared.
const FETCHERS: [&str; 3] = ["ours", "libtorrent", "libtorrent, 20 ms tick"];

fn bench_dir(o: &Options) -> PathBuf {
    o.dir.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"))
            .join("bench-magnet")
    })
}

/// The `many` tree's files: 100 folders, long names, 1000-1006 bytes each.
fn many_layout(files: usize) -> Vec<(String, u64)> {
    (0..files)
        .map(|i| {
            (
                format!(
                    "folder-{:02}/a-rather-long-file-name-to-make-the-info-dictionary-big-{i:05}.dat",
                    i % 100
                ),
                1000 + (i % 7) as u64,
            )
        })
        .collect()
}

/// Writes the tree under `dir` unless a stamp says it is there already.
fn generate(dir: &Path, layout: &[(String, u64)]) -> Result<()> {
    let stamp = dir.join(format!(".generated-{}", layout.len()));
    if stamp.is_file() {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    eprintln!("generating {} ({} files)", dir.display(), layout.len());
    for (rel, len) in layout {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents(rel, *len))?;
    }
    std::fs::write(stamp, b"")?;
    Ok(())
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

/// The libtorrent seeder and fetcher process.
struct Lt {
    proc: Proc,
    port: u16,
    lines_read: usize,
}

impl Lt {
    /// The next JSON line it prints, within `limit`.
    fn next(&mut self, limit: Duration) -> Result<Value> {
        let mut found = None;
        let skip = self.lines_read;
        wait_until(
            Some(Instant::now() + limit),
            "lt_metadata.py's answer",
            || {
                if let Some(status) = self.proc.exited()? {
                    bail!("lt_metadata.py exited ({status})");
                }
                let out = self.proc.stdout();
                // A line is complete once its newline is there.
                let complete: Vec<&str> = out.split_inclusive('\n').collect();
                if let Some(line) = complete.get(skip).filter(|l| l.ends_with('\n')) {
                    found = Some(line.trim().to_owned());
                }
                Ok(found.is_some())
            },
        )?;
        self.lines_read += 1;
        let line = found.context("no line")?;
        serde_json::from_str(&line).with_context(|| format!("lt_metadata.py printed {line:?}"))
    }
}

/// One fetch by libtorrent (`tick_ms` 0: its default tick): seconds and metadata size.
fn lt_fetch(lt: &mut Lt, link: &str, tick_ms: u32, limit: Duration) -> Result<(f64, u64)> {
    lt.proc.send_line(&format!("fetch {tick_ms} {link}"))?;
    let v = lt.next(limit + Duration::from_secs(10))?;
    if let Some(e) = v.get("error") {
        bail!("libtorrent: {e}");
    }
    Ok((
        v["seconds"].as_f64().context("no seconds")?,
        v["metadata_bytes"].as_u64().unwrap_or(0),
    ))
}

/// One fetch by ours: (reported seconds, process wall seconds, metadata size).
fn ours_fetch(
    webtorrent: &Path,
    link: &str,
    info_hash: &str,
    limit: Duration,
) -> Result<(f64, f64, u64)> {
    let mut c = Command::new(webtorrent);
    c.env_remove("RUST_LOG")
        .arg("metadata")
        .arg(link)
        .args(["--json", "--listen", "127.0.0.1:0", "--timeout"])
        .arg(limit.as_secs().to_string());
    let started = Instant::now();
    let out = capture(&mut c, Some(started + limit + Duration::from_secs(10)))?;
    let wall = started.elapsed().as_secs_f64();
    let out = out.ok("webtorrent metadata")?;
    let v: Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("webtorrent metadata printed {:?}", out.stdout))?;
    ensure!(
        v["info_hash"].as_str() == Some(info_hash),
        "webtorrent metadata fetched {} instead of {info_hash}",
        v["info_hash"]
    );
    Ok((
        v["seconds"].as_f64().context("no seconds")?,
        wall,
        v["metadata_bytes"].as_u64().unwrap_or(0),
    ))
}

/// Times of one torrent, per fetcher (ours, lt, lt tuned) plus ours' wall times.
#[derive(Default)]
struct Times {
    fetchers: [Vec<f64>; 3],
    ours_wall: Vec<f64>,
    metadata_bytes: u64,
}

pub(crate) fn magnet(o: &Options) -> Result<()> {
    ensure!(o.runs > 0, "--runs must be at least 1");
    ensure!(o.files > 0, "--files must be at least 1");
    ensure!(
        Path::new(SYSTEM_PYTHON).is_file(),
        "{SYSTEM_PYTHON} (with python3-libtorrent) is needed: run `cargo xtask ci --only setup`"
    );
    let webtorrent = match &o.webtorrent {
        Some(path) => {
            ensure!(path.is_file(), "no webtorrent binary at {}", path.display());
            path.clone()
        }
        None => util::build_webtorrent("release")?,
    };
    let work = bench_dir(o);
    std::fs::create_dir_all(&work)?;
    let work = std::fs::canonicalize(&work)?;
    let data = work.join("data");
    generate(&data.join("many"), &many_layout(o.files))?;
    generate(&data.join("small"), &[("small.bin".to_owned(), 1 << 20)])?;

    let mut torrents = Vec::new();
    for name in ["small", "many"] {
        let torrent = work.join(format!("{name}.torrent"));
        let mut c = Command::new(&webtorrent);
        c.arg("create")
            .arg(data.join(name))
            .arg("-o")
            .arg(&torrent)
            .args([
                "--meta-version",
                "1",
                "--piece-length",
                "16384",
                "--no-date",
                "--force",
            ]);
        capture(&mut c, None)?.ok("webtorrent create")?;
        let out = capture(
            Command::new(&webtorrent)
                .args(["info", "--json"])
                .arg(&torrent),
            None,
        )?
        .ok("webtorrent info")?;
        let info: Value = serde_json::from_str(&out.stdout)?;
        let hash = info["info_hash_v1"]
            .as_str()
            .context("no v1 info-hash")?
            .to_owned();
        torrents.push((name, torrent, hash));
    }

    let logs = Logs::default();
    let mut c = Command::new(SYSTEM_PYTHON);
    c.env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(root().join("interop/bench/lt_metadata.py"))
        .arg("--save")
        .arg(&data)
        .arg("--timeout")
        .arg(o.timeout.as_secs().to_string());
    for (_, t, _) in &torrents {
        c.arg("--torrent").arg(t);
    }
    let proc = Proc::spawn("lt_metadata", &mut c, &work, true, &logs)?;
    let mut lt = Lt {
        proc,
        port: 0,
        lines_read: 0,
    };
    let run = (|| -> Result<Vec<Times>> {
        let first = lt.next(o.timeout)?;
        lt.port = first["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .context("lt_metadata.py printed no port")?;
        let ready = lt.next(o.timeout)?;
        ensure!(ready["ready"] == true, "the seeder is not ready: {ready}");
        let mut all = Vec::new();
        for (name, _, hash) in &torrents {
            let link = format!("magnet:?xt=urn:btih:{hash}&x.pe=127.0.0.1:{}", lt.port);
            let mut times = Times::default();
            for i in 0..o.runs {
                let mut line = format!("{name} run {:>2}:", i + 1);
                for k in 0..3 {
                    let which = (i + k) % 3;
                    let (secs, size) = match which {
                        0 => {
                            let (secs, wall, size) =
                                ours_fetch(&webtorrent, &link, hash, o.timeout)?;
                            times.ours_wall.push(wall);
                            (secs, size)
                        }
                        1 => lt_fetch(&mut lt, &link, 0, o.timeout)?,
                        _ => lt_fetch(&mut lt, &link, 20, o.timeout)?,
                    };
                    if times.metadata_bytes == 0 {
                        times.metadata_bytes = size;
                    }
                    ensure!(
                        size == times.metadata_bytes,
                        "{} fetched {size} bytes of metadata, another fetcher {}",
                        FETCHERS[which],
                        times.metadata_bytes
                    );
                    times.fetchers[which].push(secs);
                    line.push_str(&format!(" {} {:.1} ms,", FETCHERS[which], secs * 1e3));
                }
                eprintln!("{}", line.trim_end_matches(','));
            }
            all.push(times);
        }
        Ok(all)
    })();
    lt.proc.close_stdin();
    let _ = lt.proc.wait_for(Duration::from_secs(10));
    let all = match run {
        Ok(all) => all,
        Err(e) => {
            logs.print_tails(10);
            return Err(e);
        }
    };

    let lt_version = Command::new(SYSTEM_PYTHON)
        .args(["-c", "import libtorrent; print(libtorrent.__version__)"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "magnet -> metadata over loopback, libtorrent {lt_version} seeding, {} runs each \
         (times in ms)",
        o.runs
    );
    println!(
        "  {:<8} {:>9}  {:<24} {:>8} {:>8} {:>8}  {:>13}",
        "torrent", "metadata", "fetcher", "median", "p95", "min", "time ours/this"
    );
    for ((name, _, _), times) in torrents.iter().zip(&all) {
        let ours = median(times.fetchers[0].clone());
        let mut rows: Vec<(String, &Vec<f64>)> = FETCHERS
            .iter()
            .map(|f| (*f).to_owned())
            .zip(times.fetchers.iter())
            .collect();
        rows.insert(1, ("ours, process wall time".to_owned(), &times.ours_wall));
        for (i, (label, v)) in rows.iter().enumerate() {
            let m = median((*v).clone());
            let ratio = if i >= 2 {
                format!("{:.3}x", ours / m)
            } else {
                String::new()
            };
            println!(
                "  {:<8} {:>9}  {label:<24} {:>8.1} {:>8.1} {:>8.1}  {ratio:>13}",
                if i == 0 { *name } else { "" },
                if i == 0 {
                    format!("{} B", times.metadata_bytes)
                } else {
                    String::new()
                },
                m * 1e3,
                percentile((*v).clone(), 95.0) * 1e3,
                percentile((*v).clone(), 0.0) * 1e3,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(v.clone(), 95.0), 19.0);
        assert_eq!(percentile(v.clone(), 50.0), 10.0);
        assert_eq!(percentile(v.clone(), 0.0), 1.0);
        assert_eq!(percentile(v, 100.0), 20.0);
        assert!(percentile(Vec::new(), 95.0).is_nan());
    }

    #[test]
    fn the_many_layout_has_long_distinct_names() {
        let l = many_layout(250);
        assert_eq!(l.len(), 250);
        let mut names: Vec<&str> = l.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 250);
        assert!(
            l.iter()
                .all(|(n, len)| n.len() > 70 && (1000..1007).contains(len))
        );
    }
}
