//! `cargo xtask bench webrtc`: one torrent moved over WebRTC data channels only, by several
//! seeder → leecher pairs in the same run: ours (`webtorrent`), JS WebTorrent 3 in Node
//! (node-datachannel), JS WebTorrent 3's browser bundle in headless Chromium, and libtorrent
//! 2.1 (PyPI wheel).
//!
//! Method (docs/benchmarks/webrtc.md has the details and the figures):
//! - the tree of `bench download` (same layout and contents, 256 MiB by default) is generated
//!   once under `<target>/bench-webrtc/seed/`; the v1 .torrent is made by `webtorrent
//!   create`, its only tracker `ws://127.0.0.1:8000`;
//! - each run has a network namespace of its own with only `lo` (`netns::Isolated`), where
//!   bittorrent-tracker's server (interop/node/rtc_tracker.mjs) listens on that port: the
//!   peers can meet only through it, over WebRTC, with loopback ICE candidates;
//! - the seeder starts first and is waited for until the tracker has seen its announce (with
//!   offers), then the leecher starts; a browser leecher is started first instead and the
//!   seeder after it, so that the time from the seeder's first announce to the browser's first
//!   verified piece is what a page waiting for a seeder sees;
//! - times come from the tracker's and the peers' own clocks (ms since the epoch, one
//!   machine): `connect` runs from the second process's start to the first answer the tracker
//!   relays (an answer is the end of signaling; JS WebTorrent in Node takes ~5 s to make an
//!   offer or an answer), `transfer` from that answer to the leecher's "every piece verified"
//!   (ours: its exit, polled every 10 ms);
//! - every run's files are compared with the originals; our peers must report WebRTC
//!   connections only (`-v` logs a `peer connected` line with the transport).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use super::download::{generate_tree, layout, warm};
use super::median;
use super::webseed::same_file;
use crate::netns;
use crate::swarm::procs::{Logs, Proc, wait_until, wait_until_every};
use crate::util;
use crate::webrtc::{self as rtc, Other, Peer, Tracker, is_ours, now_ms};

/// Options of `cargo xtask bench webrtc`.
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

/// How often the leecher is looked at while the transfer runs.
const POLL: Duration = Duration::from_millis(10);

/// The tracker's port in every run's namespace (each has its own, so it is always free).
const TRACKER_PORT: u16 = 8000;

/// One peer of a pair.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Node {
    /// `webtorrent seed` / `webtorrent download`.
    Ours,
    /// One of the scripts of `cargo xtask interop webrtc`.
    Them(Other),
}

impl Node {
    fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Them(Other::Lt21) => "lt21",
            Self::Them(o) => o.name(),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Ours => "webtorrent",
            Self::Them(Other::Js) => "JS (Node)",
            Self::Them(Other::Chromium) => "Chromium",
            Self::Them(Other::Lt21) => "libtorrent 2.1",
        }
    }
}

const OURS: Node = Node::Ours;
const JS: Node = Node::Them(Other::Js);
const CHROMIUM: Node = Node::Them(Other::Chromium);
const LT21: Node = Node::Them(Other::Lt21);

/// A seeder → leecher pair.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Pair {
    seeder: Node,
    leecher: Node,
}

/// Every pair, in the order they run and are reported.
const PAIRS: [Pair; 7] = [
    Pair {
        seeder: OURS,
        leecher: OURS,
    },
    Pair {
        seeder: JS,
        leecher: JS,
    },
    Pair {
        seeder: OURS,
        leecher: JS,
    },
    Pair {
        seeder: OURS,
        leecher: CHROMIUM,
    },
    Pair {
        seeder: JS,
        leecher: CHROMIUM,
    },
    Pair {
        seeder: LT21,
        leecher: OURS,
    },
    Pair {
        seeder: OURS,
        leecher: LT21,
    },
];

/// The goals: (pair, baseline, the ratio of their rates to reach).
const GOALS: [(Pair, Pair, f64); 2] = [(PAIRS[0], PAIRS[1], 3.0), (PAIRS[3], PAIRS[4], 2.0)];

/// The goal for the time from the seeder's first announce to the browser's first verified
/// piece (us → Chromium), seconds.
const FIRST_PIECE_GOAL: f64 = 5.0;

impl Pair {
    fn name(self) -> String {
        format!("{}-{}", self.seeder.name(), self.leecher.name())
    }

    fn label(self) -> String {
        format!("{} -> {}", self.seeder.label(), self.leecher.label())
    }

    /// Whether the leecher starts first (a browser waiting for a seeder).
    fn leecher_first(self) -> bool {
        self.leecher == CHROMIUM
    }

    fn others(self) -> Vec<Other> {
        [self.seeder, self.leecher]
            .into_iter()
            .filter_map(|n| match n {
                Node::Them(o) => Some(o),
                Node::Ours => None,
            })
            .collect()
    }
}

/// The pairs `filters` name (by name or number from 1), plus the baselines of the goals they
/// take part in; every pair when empty.
fn select(filters: &[String]) -> Result<Vec<Pair>> {
    if filters.is_empty() {
        return Ok(PAIRS.to_vec());
    }
    let mut chosen = Vec::new();
    for f in filters {
        let f = f.trim();
        let pair = match f.parse::<usize>() {
            Ok(n) if (1..=PAIRS.len()).contains(&n) => PAIRS[n - 1],
            _ => *PAIRS.iter().find(|p| p.name() == f).with_context(|| {
                let names: Vec<String> = PAIRS.iter().map(|p| p.name()).collect();
                format!("unknown pair {f:?}: one of {}", names.join(", "))
            })?,
        };
        chosen.push(pair);
        for (goal, base, _) in GOALS {
            if goal == pair {
                chosen.push(base);
            }
        }
    }
    Ok(PAIRS.into_iter().filter(|p| chosen.contains(p)).collect())
}

/// One transfer's figures, in seconds.
#[derive(Clone, Copy, Debug)]
struct Run {
    /// From the second process's start to the first answer relayed.
    connect: f64,
    /// From that answer to the leecher's completion.
    transfer: f64,
    /// From the second process's start to the leecher's completion.
    total: f64,
    /// From the seeder's first announce to the leecher's first verified piece (browser
    /// leechers, which wait for the seeder).
    first_piece: Option<f64>,
}

/// What every run shares.
struct Env {
    webtorrent: PathBuf,
    work: PathBuf,
    seed: PathBuf,
    torrent: PathBuf,
    layout: Vec<(String, u64)>,
    timeout: Duration,
}

impl Env {
    fn ours(&self, dir: &Path, label: &str, args: &[&OsStr], logs: &Logs) -> Result<Proc> {
        let mut c = Command::new(&self.webtorrent);
        c.env_remove("RUST_LOG")
            .arg("-v")
            .args(args)
            .args(["--listen", "127.0.0.1:0"]);
        Proc::spawn(label, &mut c, dir, false, logs)
    }

    fn script_timeout(&self) -> String {
        (self.timeout.as_secs() + 30).to_string()
    }
}

/// A running seeder or leecher.
enum Running {
    Ours(Proc),
    Them(Peer),
}

impl Running {
    fn start(env: &Env, node: Node, seeder: bool, dir: &Path, logs: &Logs) -> Result<Self> {
        let timeout = env.script_timeout();
        let out = dir.join("out");
        Ok(match (node, seeder) {
            (Node::Ours, true) => Self::Ours(env.ours(
                dir,
                "webtorrent-seed",
                &[
                    "seed".as_ref(),
                    env.torrent.as_os_str(),
                    "-d".as_ref(),
                    env.seed.as_os_str(),
                ],
                logs,
            )?),
            (Node::Ours, false) => Self::Ours(env.ours(
                dir,
                "webtorrent-download",
                &[
                    "download".as_ref(),
                    env.torrent.as_os_str(),
                    "-o".as_ref(),
                    out.as_os_str(),
                ],
                logs,
            )?),
            (Node::Them(Other::Js), true) => {
                Self::Them(Peer::js_seed(dir, logs, &env.torrent, &env.seed, &timeout)?)
            }
            (Node::Them(Other::Chromium), true) => bail!("Chromium only leeches here"),
            (Node::Them(other @ (Other::Js | Other::Chromium)), false) => {
                std::fs::create_dir_all(&out)?;
                Self::Them(Peer::leech(dir, logs, other, &env.torrent, &out, &timeout)?)
            }
            (Node::Them(Other::Lt21), true) => Self::Them(Peer::lt21(
                dir,
                logs,
                "libtorrent21-seed",
                &env.torrent,
                &env.seed,
                &timeout,
            )?),
            (Node::Them(Other::Lt21), false) => {
                std::fs::create_dir_all(&out)?;
                Self::Them(Peer::lt21(
                    dir,
                    logs,
                    "libtorrent21-leech",
                    &env.torrent,
                    &out,
                    &timeout,
                )?)
            }
        })
    }

    fn proc(&mut self) -> &mut Proc {
        match self {
            Self::Ours(p) => p,
            Self::Them(p) => &mut p.proc,
        }
    }

    /// Fails if it exited.
    fn alive(&mut self, what: &str) -> Result<()> {
        if let Some(status) = self.proc().exited()? {
            bail!("the {what} exited ({status})");
        }
        Ok(())
    }

    /// The time (ms since the epoch) it completed, once it did.
    fn done_at(&mut self) -> Result<Option<u64>> {
        match self {
            Self::Ours(p) => match p.exited()? {
                Some(status) if status.success() => Ok(Some(now_ms())),
                Some(status) => bail!("webtorrent download exited ({status})"),
                None => Ok(None),
            },
            Self::Them(peer) => {
                if peer.leech_done()? {
                    let event = match peer.other() {
                        Other::Lt21 => "complete",
                        Other::Js | Other::Chromium => "done",
                    };
                    Ok(Some(peer.event_ms(event).unwrap_or_else(now_ms)))
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Checks that every connection it reported is a WebRTC one.
    fn check_transport(&self) -> Result<()> {
        match self {
            Self::Ours(p) => {
                let err = p.stderr();
                let connected: Vec<&str> = err
                    .lines()
                    .filter(|l| l.contains("peer connected"))
                    .collect();
                ensure!(!connected.is_empty(), "webtorrent logged no connection");
                ensure!(
                    connected.iter().all(|l| l.contains("transport=webrtc")),
                    "webtorrent had connections that are not WebRTC: {connected:?}"
                );
                Ok(())
            }
            Self::Them(peer) => peer.wire_note().map(drop),
        }
    }
}

/// One run of `pair` in a namespace of its own.
fn run_pair(env: &Env, pair: Pair, n: usize) -> Result<Run> {
    let _isolated = netns::Isolated::enter()?;
    let dir = env.work.join("runs").join(format!("{}-{n}", pair.name()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let logs = Logs::default();
    let r = run_in(env, pair, &dir, &logs);
    if r.is_err() {
        logs.print_tails(15);
    } else {
        std::fs::remove_dir_all(dir.join("out"))?;
    }
    r
}

fn run_in(env: &Env, pair: Pair, dir: &Path, logs: &Logs) -> Result<Run> {
    let deadline = Some(Instant::now() + env.timeout);
    let tracker = Tracker::start(dir, false, TRACKER_PORT, logs, deadline)?;
    ensure!(
        tracker.ws_url() == format!("ws://127.0.0.1:{TRACKER_PORT}"),
        "the tracker did not get port {TRACKER_PORT}"
    );
    let peers_of = |t: &Tracker| -> Vec<String> {
        t.announces()
            .iter()
            .filter_map(|a| a["peer"].as_str().map(String::from))
            .collect()
    };
    // The first process: it waits on the tracker.
    let first_node = if pair.leecher_first() {
        pair.leecher
    } else {
        pair.seeder
    };
    let mut first = Running::start(env, first_node, !pair.leecher_first(), dir, logs)?;
    let first_what = if pair.leecher_first() {
        "leecher"
    } else {
        "seeder"
    };
    wait_until(deadline, &format!("the {first_what}'s announce"), || {
        first.alive(first_what)?;
        if let Running::Them(peer) = &first
            && !pair.leecher_first()
            && peer.event(peer.other().seed_ready()).is_none()
        {
            return Ok(false);
        }
        // A seeder is ready once it offers (its data checked); a leecher once it announced.
        Ok(tracker.announces().iter().any(|a| {
            a["answer"] != true && (pair.leecher_first() || a["offers"].as_u64().unwrap_or(0) > 0)
        }))
    })?;
    let before = peers_of(&tracker);

    let started = now_ms();
    let second_node = if pair.leecher_first() {
        pair.seeder
    } else {
        pair.leecher
    };
    let mut second = Running::start(env, second_node, pair.leecher_first(), dir, logs)?;
    let (seeder, leecher) = if pair.leecher_first() {
        (&mut second, &mut first)
    } else {
        (&mut first, &mut second)
    };
    let mut done = None;
    let finished = wait_until_every(POLL, deadline, "the leecher to complete", || {
        seeder.alive("seeder")?;
        done = leecher.done_at()?;
        Ok(done.is_some())
    });
    if let Err(e) = finished {
        let progress = match leecher {
            Running::Them(p) => p.progress(),
            Running::Ours(p) => util::last_lines(&p.stderr(), 2),
        };
        bail!("{e:#} ({progress}) [tracker: {}]", tracker.summary());
    }
    let done = done.context("no completion time")?;
    let announces = tracker.announces();
    let answered = announces
        .iter()
        .find(|a| a["answer"] == true)
        .and_then(|a| a["t"].as_u64())
        .context("the tracker relayed no answer")?;
    let seeder_announce = announces
        .iter()
        .find(|a| {
            a["peer"]
                .as_str()
                .is_some_and(|p| !pair.leecher_first() || !before.iter().any(|b| b == p))
        })
        .and_then(|a| a["t"].as_u64())
        .context("no announce of the seeder")?;
    // Only a leecher that waited for the seeder gives a figure about the seeder.
    let first_piece = match leecher {
        Running::Them(p) if pair.leecher_first() => p.event_ms("first-piece"),
        _ => None,
    };
    for (rel, len) in &env.layout {
        let got = dir.join("out").join(TREE).join(rel);
        ensure!(
            same_file(&got, &env.seed.join(TREE).join(rel), *len)?,
            "{} ({}) differs from the original",
            got.display(),
            pair.label()
        );
    }
    seeder.check_transport()?;
    leecher.check_transport()?;
    if pair.seeder == OURS || pair.leecher == OURS {
        ensure!(
            announces.iter().any(is_ours),
            "the tracker saw no announce of ours"
        );
    }
    Ok(Run {
        connect: secs(answered.saturating_sub(started)),
        transfer: secs(done.saturating_sub(answered)),
        total: secs(done.saturating_sub(started)),
        first_piece: first_piece.map(|t| secs(t.saturating_sub(seeder_announce))),
    })
}

fn secs(ms: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)] // far below 2^52
    let s = ms as f64 / 1000.0;
    s
}

/// The medians of one pair's runs.
#[derive(Clone, Copy, Debug)]
struct Summary {
    connect: f64,
    transfer: f64,
    total: f64,
    /// MiB/s over `transfer`.
    rate: f64,
    /// MiB/s over `total`.
    total_rate: f64,
    first_piece: Option<f64>,
}

fn summarize(runs: &[Run], size: u64) -> Summary {
    #[allow(clippy::cast_precision_loss)] // sizes far below 2^52
    let mib = size as f64 / f64::from(1 << 20);
    let pieces: Vec<f64> = runs.iter().filter_map(|r| r.first_piece).collect();
    Summary {
        connect: median(runs.iter().map(|r| r.connect).collect()),
        transfer: median(runs.iter().map(|r| r.transfer).collect()),
        total: median(runs.iter().map(|r| r.total).collect()),
        rate: median(runs.iter().map(|r| mib / r.transfer.max(1e-3)).collect()),
        total_rate: median(runs.iter().map(|r| mib / r.total.max(1e-3)).collect()),
        first_piece: (!pieces.is_empty()).then(|| median(pieces)),
    }
}

pub(crate) fn webrtc(o: &Options) -> Result<()> {
    ensure!(o.runs > 0, "--runs must be at least 1");
    let pairs = select(&o.pairs)?;
    let mut others: Vec<Other> = pairs.iter().flat_map(|p| p.others()).collect();
    others.dedup();
    rtc::preflight_others(&others)?;
    let size = o.size_mib << 20;
    let layout = layout(size)?;
    let webtorrent = match &o.webtorrent {
        Some(path) => {
            ensure!(path.is_file(), "no webtorrent binary at {}", path.display());
            std::fs::canonicalize(path)?
        }
        None => util::build_webtorrent("release")?,
    };
    let work = o.dir.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| util::root().join("target"))
            .join("bench-webrtc")
    });
    std::fs::create_dir_all(work.join("seed").join(TREE))?;
    let work = std::fs::canonicalize(&work)?;
    let seed = work.join("seed");
    generate_tree(&seed.join(TREE), &layout)?;
    // Made anew each time (a second or two): it always matches the tree.
    let torrent = work.join("bench-webrtc.torrent");
    {
        let mut c = Command::new(&webtorrent);
        c.arg("create")
            .arg(seed.join(TREE))
            .arg("-o")
            .arg(&torrent)
            .args([
                "--meta-version",
                "1",
                "--no-date",
                "--force",
                "--piece-length",
            ])
            .arg(o.piece_length.to_string())
            .args(["--tracker", &format!("ws://127.0.0.1:{TRACKER_PORT}")]);
        util::capture(&mut c, None)?.ok("webtorrent create")?;
    }
    let env = Env {
        webtorrent,
        work,
        seed,
        torrent,
        layout,
        timeout: o.timeout,
    };

    eprintln!(
        "{} MiB, {} KiB pieces, {} run(s) per pair, over WebRTC only",
        o.size_mib,
        o.piece_length >> 10,
        o.runs
    );
    let mut results: Vec<(Pair, Vec<Run>)> = pairs.iter().map(|p| (*p, Vec::new())).collect();
    for n in 1..=o.runs {
        for (pair, runs) in &mut results {
            warm(&env.seed.join(TREE), &env.layout)?;
            let run =
                run_pair(&env, *pair, n).with_context(|| format!("{} (run {n})", pair.label()))?;
            eprintln!(
                "  {:<34} run {n}: connect {:.1} s, transfer {:.2} s, total {:.2} s{}",
                pair.label(),
                run.connect,
                run.transfer,
                run.total,
                run.first_piece
                    .map(|s| format!(", first piece {s:.2} s after the seeder's announce"))
                    .unwrap_or_default()
            );
            runs.push(run);
        }
    }
    let summaries: Vec<(Pair, Summary)> = results
        .iter()
        .map(|(p, runs)| (*p, summarize(runs, size)))
        .collect();
    println!("{}", table(&summaries));
    for line in verdicts(&summaries) {
        println!("{line}");
    }
    if let Some(path) = &o.json {
        let doc = json!({
            "size_mib": o.size_mib,
            "piece_length": o.piece_length,
            "runs": o.runs,
            "pairs": results.iter().map(|(p, runs)| {
                let s = summarize(runs, size);
                json!({
                    "pair": p.name(),
                    "label": p.label(),
                    "runs": runs.iter().map(|r| json!({
                        "connect_s": r.connect,
                        "transfer_s": r.transfer,
                        "total_s": r.total,
                        "first_piece_s": r.first_piece,
                    })).collect::<Vec<Value>>(),
                    "median": {
                        "connect_s": s.connect,
                        "transfer_s": s.transfer,
                        "total_s": s.total,
                        "mib_per_s": s.rate,
                        "total_mib_per_s": s.total_rate,
                        "first_piece_s": s.first_piece,
                    },
                })
            }).collect::<Vec<Value>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn table(summaries: &[(Pair, Summary)]) -> String {
    let mut t = format!(
        "{:<34} {:>10} {:>11} {:>9} {:>13} {:>11} {:>12}\n",
        "seeder -> leecher",
        "connect s",
        "transfer s",
        "total s",
        "MiB/s (conn.)",
        "MiB/s (all)",
        "first piece"
    );
    for (pair, s) in summaries {
        t.push_str(&format!(
            "{:<34} {:>10.1} {:>11.2} {:>9.2} {:>13.1} {:>11.1} {:>12}\n",
            pair.label(),
            s.connect,
            s.transfer,
            s.total,
            s.rate,
            s.total_rate,
            s.first_piece
                .map(|f| format!("{f:.2} s"))
                .unwrap_or_else(|| "-".to_owned())
        ));
    }
    t
}

/// The goals' ratios and verdicts, for the pairs that ran.
fn verdicts(summaries: &[(Pair, Summary)]) -> Vec<String> {
    let of = |p: Pair| summaries.iter().find(|(q, _)| *q == p).map(|(_, s)| *s);
    let mut lines = Vec::new();
    for (goal, base, want) in GOALS {
        let (Some(g), Some(b)) = (of(goal), of(base)) else {
            continue;
        };
        let ratio = g.rate / b.rate;
        lines.push(format!(
            "{} / {}: {ratio:.2}x once connected ({:.2}x over the whole transfer); goal >= {want}x: {}",
            goal.label(),
            base.label(),
            g.total_rate / b.total_rate,
            if ratio >= want { "met" } else { "NOT met" }
        ));
    }
    for pair in [PAIRS[3], PAIRS[4]] {
        if let Some(first) = of(pair).and_then(|s| s.first_piece) {
            let goal = if pair == PAIRS[3] {
                format!(
                    "; goal < {FIRST_PIECE_GOAL} s: {}",
                    if first < FIRST_PIECE_GOAL {
                        "met"
                    } else {
                        "NOT met"
                    }
                )
            } else {
                String::new()
            };
            lines.push(format!(
                "{}: the browser's first verified piece {first:.2} s after the seeder's first announce{goal}",
                pair.label()
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_have_unique_names_and_goals_name_pairs() {
        let names: Vec<String> = PAIRS.iter().map(|p| p.name()).collect();
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names[0], "ours-ours");
        assert_eq!(names[1], "js-js");
        assert_eq!(names[3], "ours-chromium");
        assert_eq!(names[4], "js-chromium");
        assert_eq!(names[5], "lt21-ours");
    }

    #[test]
    fn selection_adds_the_baselines() {
        let picked = select(&["ours-chromium".to_owned()]).unwrap();
        assert_eq!(picked, vec![PAIRS[3], PAIRS[4]]);
        let picked = select(&["1".to_owned(), "lt21-ours".to_owned()]).unwrap();
        assert_eq!(picked, vec![PAIRS[0], PAIRS[1], PAIRS[5]]);
        assert!(select(&["ours-nobody".to_owned()]).is_err());
        assert_eq!(select(&[]).unwrap().len(), PAIRS.len());
    }

    #[test]
    fn summaries_are_medians_and_rates() {
        let runs = [
            Run {
                connect: 1.0,
                transfer: 2.0,
                total: 3.0,
                first_piece: Some(0.5),
            },
            Run {
                connect: 2.0,
                transfer: 4.0,
                total: 6.0,
                first_piece: None,
            },
            Run {
                connect: 3.0,
                transfer: 8.0,
                total: 11.0,
                first_piece: Some(1.5),
            },
        ];
        let s = summarize(&runs, 256 << 20);
        assert!((s.connect - 2.0).abs() < 1e-9);
        assert!((s.rate - 64.0).abs() < 1e-9);
        assert!((s.total_rate - 256.0 / 6.0).abs() < 1e-9);
        assert_eq!(s.first_piece, Some(1.0));
        let lines = verdicts(&[(PAIRS[0], s), (PAIRS[1], summarize(&runs[2..], 256 << 20))]);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("2.00x once connected"), "{}", lines[0]);
        assert!(lines[0].ends_with("NOT met"), "{}", lines[0]);
    }
}
