//! `tracker-*` scenarios of `cargo xtask interop`: our tracker (`webtorrent tracker`, HTTP,
//! WebSocket and UDP on one port number) against real clients and against bittorrent-tracker's
//! own server.
//!
//! - `tracker-js-client-<http|udp|ws>`: bittorrent-tracker's npm `Client`
//!   (interop/node/tracker_client.mjs): a seeder and a leecher announce, the leecher is told
//!   the seeder's address (HTTP, UDP), scrapes, completes; the seeder stops; the counts of
//!   every reply are checked;
//! - `tracker-ws-parity`: a fixed script of WebSocket frames over four connections
//!   (interop/node/ws_parity.mjs) sent to ours and to bittorrent-tracker's server
//!   (interop/node/rtc_tracker.mjs); every frame each connection receives must be the same
//!   JSON, field by field, but for the differences listed in [`ALLOWED`];
//! - `tracker-ws-js-webtorrent`: two JS WebTorrent 3 peers in Node (node-datachannel) meet
//!   through our WebSocket tracker only and transfer the tree over WebRTC, in a network
//!   namespace with only `lo`;
//! - `tracker-qbittorrent-seeds-libtorrent-<http|udp>`: qBittorrent seeds, libtorrent 2.0
//!   (python) downloads, both told only our tracker.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::interop::{Ctx, Scenario};
use crate::netns;
use crate::swarm::peers::{self, Client, Job, Role};
use crate::swarm::procs::{Logs, Proc, curl, free_port, wait_until};
use crate::swarm::{self, contents};
use crate::util::root;
use crate::webrtc::{self, Peer, json_lines, now_ms, transfer_note};

/// Time limit of one scenario.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Differences from bittorrent-tracker that the parity check accepts, and why.
const ALLOWED: &[&str] = &[
    "scrape `downloaded`: bittorrent-tracker reports its `complete` count there (a lower bound, \
     marked TODO in its source); ours counts `completed` events",
    "the text of the refusal of a frame that is not JSON: JavaScript's JSON.parse message there",
];

/// Every tracker scenario, for `interop::scenarios`.
pub(crate) fn scenarios() -> Vec<Scenario> {
    let mut all = Vec::new();
    for proto in ["http", "udp", "ws"] {
        all.push(scenario(
            &format!("tracker-js-client-{proto}"),
            move |ctx, logs| js_client(ctx, logs, proto),
        ));
    }
    all.push(scenario("tracker-ws-parity", parity));
    all.push(scenario("tracker-ws-js-webtorrent", |ctx, logs| {
        js_webtorrent(ctx, logs, webrtc::Other::Js)
    }));
    all.push(scenario("tracker-ws-js-to-chromium", |ctx, logs| {
        js_webtorrent(ctx, logs, webrtc::Other::Chromium)
    }));
    for udp in [false, true] {
        let name = format!(
            "tracker-qbittorrent-seeds-libtorrent-{}",
            if udp { "udp" } else { "http" }
        );
        all.push(scenario(&name, move |ctx, logs| {
            qbittorrent_libtorrent(ctx, logs, udp)
        }));
    }
    all
}

fn scenario(name: &str, f: impl Fn(&Ctx, &Logs) -> Result<Vec<String>> + 'static) -> Scenario {
    Scenario {
        name: name.to_owned(),
        timeout: TIMEOUT,
        run: Box::new(move |ctx| {
            let logs = Logs::default();
            let r = f(ctx, &logs);
            if r.is_err() {
                logs.print_tails(15);
            }
            r
        }),
    }
}

fn scenario_dir(ctx: &Ctx, name: &str) -> Result<PathBuf> {
    let dir = ctx.work.join("tracker").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `webtorrent tracker --listen 127.0.0.1:PORT`, with its announce URLs.
struct OurTracker {
    proc: Proc,
    http: String,
    udp: String,
    ws: String,
    stats: String,
}

impl OurTracker {
    fn start(ctx: &Ctx, dir: &Path, logs: &Logs, port: u16) -> Result<Self> {
        Self::start_with(ctx, dir, logs, port, &[])
    }

    fn start_with(ctx: &Ctx, dir: &Path, logs: &Logs, port: u16, args: &[&str]) -> Result<Self> {
        let mut c = ctx.webtorrent();
        c.args(["tracker", "--listen", &format!("127.0.0.1:{port}")])
            .args(args);
        let mut proc = Proc::spawn("our-tracker", &mut c, dir, false, logs)?;
        let mut urls = Vec::new();
        wait_until(ctx.deadline.get(), "webtorrent tracker's URLs", || {
            if let Some(status) = proc.exited()? {
                bail!("webtorrent tracker exited ({status})");
            }
            urls = proc.stdout().lines().map(str::to_owned).collect();
            Ok(urls.iter().any(|u| u.starts_with("stats:")))
        })?;
        let find = |prefix: &str| {
            urls.iter()
                .find(|u| u.starts_with(prefix))
                .cloned()
                .with_context(|| format!("webtorrent tracker printed no {prefix} URL"))
        };
        let http = find("http://")?;
        let stats = http.replace("/announce", "/stats.json");
        Ok(Self {
            http,
            udp: find("udp://")?,
            ws: find("ws://")?,
            stats,
            proc,
        })
    }

    fn stats(&self) -> Result<Value> {
        serde_json::from_str(&curl(&self.stats, &[])?).context("/stats.json is not JSON")
    }

    /// Ctrl-C must stop it at once with status 0.
    fn stop(mut self) -> Result<()> {
        self.proc.stop_clean("webtorrent tracker")
    }
}

fn node(script: &str) -> Command {
    let mut c = Command::new("node");
    c.arg(root().join("interop/node").join(script));
    c
}

fn step<'a>(lines: &'a [Value], name: &str) -> Result<&'a Value> {
    lines
        .iter()
        .find(|l| l["step"] == name)
        .with_context(|| format!("tracker_client.mjs printed no `{name}` step"))
}

fn counts(v: &Value) -> (i64, i64) {
    (
        v["complete"].as_i64().unwrap_or(-1),
        v["incomplete"].as_i64().unwrap_or(-1),
    )
}

fn js_client(ctx: &Ctx, logs: &Logs, proto: &str) -> Result<Vec<String>> {
    let dir = scenario_dir(ctx, &format!("js-client-{proto}"))?;
    let tracker = OurTracker::start(ctx, &dir, logs, 0)?;
    let url = match proto {
        "http" => &tracker.http,
        "udp" => &tracker.udp,
        _ => &tracker.ws,
    };
    let mut c = node("tracker_client.mjs");
    c.args(["--announce", url, "--timeout", "40"]);
    let out = ctx.capture(&mut c)?;
    let lines = json_lines(&out.stdout);
    let ok = out.ok("tracker_client.mjs");
    if let Err(e) = ok {
        bail!("{e:#}; it printed {lines:?}");
    }
    ensure!(
        counts(step(&lines, "seeder-started")?) == (1, 0),
        "seeder's announce: {lines:?}"
    );
    let leecher = step(&lines, "leecher-started")?;
    ensure!(counts(leecher) == (1, 1), "leecher's announce: {leecher}");
    if proto != "ws" {
        ensure!(
            leecher["peers"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p == "127.0.0.1:7001")),
            "the leecher was not told the seeder's address: {leecher}"
        );
    }
    let scrape = step(&lines, "scrape")?;
    ensure!(counts(scrape) == (1, 1), "scrape: {scrape}");
    let completed = step(&lines, "leecher-completed")?;
    ensure!(counts(completed) == (2, 0), "completed: {completed}");
    let after = step(&lines, "scrape-after-stop")?;
    ensure!(
        counts(after) == (1, 0) && after["downloaded"] == 1,
        "scrape after the seeder stopped: {after}"
    );
    step(&lines, "done")?;
    let stats = tracker.stats()?;
    ensure!(
        stats["announces"].as_u64().unwrap_or(0) >= 5,
        "stats: {stats}"
    );
    tracker.stop()?;
    Ok(vec![format!(
        "bittorrent-tracker's Client over {proto}: announce, peers, scrape, completed, stopped \
         as expected ({} announces)",
        stats["announces"]
    )])
}

/// bittorrent-tracker's server (WebSocket only) on a free port, with the interval that makes
/// it tell WebSocket clients 120 s, as ours does.
fn their_tracker(ctx: &Ctx, dir: &Path, logs: &Logs) -> Result<(Proc, String)> {
    let mut c = node("rtc_tracker.mjs");
    c.args(["--interval", "600000", "--port", "0"]);
    let mut proc = Proc::spawn("bittorrent-tracker", &mut c, dir, true, logs)?;
    let mut port = 0;
    wait_until(ctx.deadline.get(), "bittorrent-tracker's port", || {
        if let Some(status) = proc.exited()? {
            bail!("rtc_tracker.mjs exited ({status})");
        }
        port = json_lines(&proc.stdout())
            .iter()
            .find_map(|v| v["port"].as_u64())
            .unwrap_or(0);
        Ok(port != 0)
    })?;
    Ok((proc, format!("ws://127.0.0.1:{port}")))
}

/// The frames each connection received, in order: (step, frame).
fn frames_by_connection(ctx: &Ctx, url: &str) -> Result<Vec<Vec<(u64, Value)>>> {
    let mut c = node("ws_parity.mjs");
    c.args(["--url", url]);
    let out = ctx.capture(&mut c)?.ok("ws_parity.mjs")?;
    let lines = json_lines(&out.stdout);
    ensure!(
        lines.iter().any(|l| l["done"] == true),
        "ws_parity.mjs did not finish against {url}"
    );
    let mut by = vec![Vec::new(); 4];
    for l in lines.iter().filter(|l| l.get("conn").is_some()) {
        let conn = usize::try_from(l["conn"].as_u64().unwrap_or(9)).unwrap_or(9);
        let slot = by
            .get_mut(conn)
            .context("a frame on an unknown connection")?;
        slot.push((l["step"].as_u64().unwrap_or(u64::MAX), l["frame"].clone()));
    }
    Ok(by)
}

/// Removes what [`ALLOWED`] lets differ; returns what it removed, for the notes.
fn normalize(frame: &mut Value, not_json_step: bool) -> Vec<String> {
    let mut removed = Vec::new();
    if let Some(files) = frame.get_mut("files").and_then(Value::as_object_mut) {
        for stats in files.values_mut() {
            if let Some(d) = stats.as_object_mut().and_then(|s| s.remove("downloaded")) {
                removed.push(format!("downloaded {d}"));
            }
        }
    }
    if not_json_step && let Some(reason) = frame.get_mut("failure reason") {
        *reason = Value::String("(JSON error)".to_owned());
    }
    removed
}

fn parity(ctx: &Ctx, logs: &Logs) -> Result<Vec<String>> {
    let dir = scenario_dir(ctx, "ws-parity")?;
    let ours = OurTracker::start(ctx, &dir, logs, 0)?;
    let (mut theirs, their_url) = their_tracker(ctx, &dir, logs)?;
    let got = frames_by_connection(ctx, &ours.ws)?;
    let want = frames_by_connection(ctx, &their_url)?;
    theirs.close_stdin();
    // The script's step 12 sends text that is not JSON.
    const NOT_JSON_STEP: u64 = 12;
    let mut compared = 0;
    let mut downloaded = Vec::new();
    for (conn, (g, w)) in got.iter().zip(&want).enumerate() {
        ensure!(
            g.len() == w.len(),
            "connection {conn}: ours sent {} frames, bittorrent-tracker {}:\nours: {g:?}\ntheirs: {w:?}",
            g.len(),
            w.len()
        );
        for ((gs, gf), (ws, wf)) in g.iter().zip(w) {
            ensure!(
                gs == ws,
                "connection {conn}: a frame after step {gs} from ours, after step {ws} from \
                 bittorrent-tracker ({gf} vs {wf})"
            );
            let (mut gf, mut wf) = (gf.clone(), wf.clone());
            let gd = normalize(&mut gf, *gs == NOT_JSON_STEP);
            let wd = normalize(&mut wf, *ws == NOT_JSON_STEP);
            if gd != wd {
                downloaded.push(format!("step {gs}: ours {gd:?}, theirs {wd:?}"));
            }
            ensure!(
                gf == wf,
                "connection {conn}, step {gs}: ours sent\n  {gf}\nbittorrent-tracker sent\n  {wf}"
            );
            compared += 1;
        }
    }
    ours.stop()?;
    let mut notes = vec![format!(
        "{compared} frames on 4 connections identical field by field to bittorrent-tracker 11's"
    )];
    notes.extend(ALLOWED.iter().map(|a| format!("allowed difference: {a}")));
    notes.extend(downloaded.into_iter().map(|d| format!("scrape {d}")));
    Ok(notes)
}

/// JS WebTorrent in Node seeds; `leecher` (JS in Node, or WebTorrent's browser bundle in
/// headless Chromium) downloads; they meet through our WebSocket tracker only.
fn js_webtorrent(ctx: &Ctx, logs: &Logs, leecher: webrtc::Other) -> Result<Vec<String>> {
    webrtc::preflight_others(&[webrtc::Other::Js, leecher])?;
    // Declared first, so dropped last: every process is stopped inside the namespace.
    let _isolated = netns::Isolated::enter()?;
    let dir = scenario_dir(ctx, &format!("ws-js-to-{}", leecher.name()))?;
    let deadline = ctx.deadline.get();
    let data = dir.join("data");
    webrtc::write_tree(&data)?;
    // Browsers re-announce every 10 s, as the webrtc-* scenarios have bittorrent-tracker tell
    // them: the seeder's fresh offers then reach the leecher soon after it joins.
    let tracker = OurTracker::start_with(ctx, &dir, logs, 0, &["--ws-interval", "10"])?;
    let torrent = dir.join("tree.torrent");
    let mut c = ctx.webtorrent();
    c.arg("create")
        .arg(data.join(webrtc::TREE_NAME))
        .arg("-o")
        .arg(&torrent)
        .args([
            "--meta-version",
            "1",
            "--piece-length",
            webrtc::PIECE_LENGTH,
            "--no-date",
            "--tracker",
            &tracker.ws,
        ]);
    ctx.capture(&mut c)?.ok("webtorrent create")?;
    let mut seed = Peer::js_seed(&dir, logs, &torrent, &data, webrtc::SCRIPT_TIMEOUT)?;
    seed.wait_event(deadline, "ready", "to seed")?;
    // JS WebTorrent in Node announces at once without offers, then again with the offers
    // it took ~5 s to make. The leecher starts after the second, so that the two sets of
    // offers do not cross: when they do, JS WebTorrent and the browser can each drop one of
    // the two connections and neither survives (with bittorrent-tracker's server as well).
    wait_until(deadline, "the seeder's announce with offers", || {
        Ok(tracker.stats()?["announces"].as_u64().unwrap_or(0) >= 2)
    })?;
    let out = dir.join("theirs");
    std::fs::create_dir_all(&out)?;
    let started = now_ms();
    let mut leech = Peer::leech(&dir, logs, leecher, &torrent, &out, webrtc::SCRIPT_TIMEOUT)?;
    let finished = wait_until(
        deadline,
        &format!("{} to finish downloading", leecher.label()),
        || leech.leech_done(),
    );
    if let Err(e) = finished {
        bail!("{e:#} ({}; tracker {})", leech.progress(), tracker.stats()?);
    }
    let done = leech.event_ms("done").unwrap_or_else(now_ms);
    webrtc::compare(&out, false)?;
    let stats = tracker.stats()?;
    let notes = vec![
        transfer_note(
            &format!(
                "JS WebTorrent -> {} through our WebSocket tracker",
                leecher.label()
            ),
            started,
            leech.event_ms("first-block"),
            done,
        ),
        leech.wire_note()?,
        format!(
            "tracker: {} announces, {} WebRTC peers",
            stats["announces"], stats["peersWebRTC"]
        ),
    ];
    drop(leech);
    drop(seed);
    tracker.stop()?;
    Ok(notes)
}

fn qbittorrent_libtorrent(ctx: &Ctx, logs: &Logs, udp: bool) -> Result<Vec<String>> {
    let name = format!("qbt-lt-{}", if udp { "udp" } else { "http" });
    let dir = scenario_dir(ctx, &name)?;
    let deadline = ctx.deadline.get();
    let data = dir.join("data");
    let tree = data.join(swarm::TREE_NAME);
    for (rel, len) in swarm::TREE {
        let path = tree.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents(rel, *len))?;
    }
    let port = free_port(true)?;
    let tracker = OurTracker::start(ctx, &dir, logs, port)?;
    let url = if udp { &tracker.udp } else { &tracker.http };
    let torrent = dir.join("tree.torrent");
    let mut c = ctx.webtorrent();
    c.arg("create").arg(&tree).arg("-o").arg(&torrent).args([
        "--meta-version",
        "1",
        "--piece-length",
        swarm::PIECE_LENGTH,
        "--no-date",
        "--tracker",
        url,
    ]);
    ctx.capture(&mut c)?.ok("webtorrent create")?;

    let seed_job = Job {
        torrent: &torrent,
        save: &data,
        role: Role::Seed,
        udp_tracker: udp,
    };
    let mut seeder = peers::start(Client::Qbittorrent, &seed_job, &dir, logs, deadline)?;
    wait_until(deadline, "qBittorrent to seed", || seeder.complete())?;
    let save = dir.join("download");
    std::fs::create_dir_all(&save)?;
    let leech_job = Job {
        torrent: &torrent,
        save: &save,
        role: Role::Leech,
        udp_tracker: udp,
    };
    let started = std::time::Instant::now();
    let mut leecher = peers::start(Client::Libtorrent, &leech_job, &dir, logs, deadline)?;
    let done = wait_until(deadline, "libtorrent to finish downloading", || {
        leecher.complete()
    });
    if let Err(e) = done {
        bail!(
            "{e:#} (libtorrent: {}; qBittorrent: {}; tracker {})",
            leecher.progress(),
            seeder.progress(),
            tracker.stats()?
        );
    }
    let took = started.elapsed();
    for (rel, len) in swarm::TREE {
        let got = std::fs::read(save.join(swarm::TREE_NAME).join(rel))
            .with_context(|| format!("libtorrent's {rel}"))?;
        ensure!(got == contents(rel, *len), "libtorrent's {rel} differs");
    }
    let stats = tracker.stats()?;
    ensure!(
        stats["peersAll"].as_u64() == Some(2),
        "the tracker should hold both peers: {stats}"
    );
    drop(leecher);
    drop(seeder);
    tracker.stop()?;
    Ok(vec![format!(
        "qBittorrent -> libtorrent 2.0 through our {} tracker: {} MiB in {} ({} peers held)",
        if udp { "UDP" } else { "HTTP" },
        swarm::TREE.iter().map(|(_, l)| l).sum::<u64>() / swarm::MIB,
        crate::util::secs(took),
        stats["peersAll"]
    )])
}
