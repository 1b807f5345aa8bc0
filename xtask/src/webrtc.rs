//! `webrtc-*` scenarios of `cargo xtask interop`: our `webtorrent` binary and real WebRTC
//! peers meeting through a WebSocket tracker (bittorrent-tracker's server,
//! interop/node/rtc_tracker.mjs), with the downloaded bytes compared to the originals.
//!
//! - `webrtc-<peer>-seeds`: the other peer seeds, our `webtorrent download` gets the torrent;
//! - `webrtc-<peer>-seeds-magnet`: the same from a magnet link (the metadata comes over
//!   WebRTC too);
//! - `webrtc-<peer>-leeches`: our `webtorrent seed` serves, the other peer downloads;
//!
//! where `<peer>` is `js` (JS WebTorrent 3 in Node: interop/node/wt_peer.mjs), `chromium`
//! (WebTorrent's browser bundle in headless Chromium: interop/browser/) or `libtorrent21`
//! (libtorrent 2.1.1 from interop/.venv: interop/python/lt_webrtc.py);
//! - `webrtc-bridge-qbittorrent`: qBittorrent seeds over TCP only (HTTP tracker); our
//!   `webtorrent download --seed`, announcing to the HTTP and the WebSocket tracker, downloads
//!   from it and at the same time serves Chromium over WebRTC, which no peer holding the data
//!   could do at the start;
//! - `webrtc-js-to-chromium`: a check of the harness itself (JS WebTorrent in Node seeds,
//!   Chromium downloads; our client is not involved);
//! - `webrtc-off-js-seeds`: JS WebTorrent seeds, `webtorrent download --no-webrtc` must neither
//!   announce to the ws:// tracker nor connect (12 s), then stop on Ctrl-C.
//!
//! The torrent's only tracker is `ws://` (the bridge adds an `http://` one that only
//! qBittorrent and our client use), so the WebRTC peers can only meet over WebRTC. Each
//! scenario runs in its own network namespace with only `lo` ([`netns::Isolated`]): ICE sees
//! loopback candidates only and nothing leaves the machine. Every process is started there and
//! killed when the scenario ends; on failure the tail of each log is printed.
//!
//! Order of events: the seeder starts first and is waited for until the tracker has relayed an
//! announce of it (for JS, Chromium and libtorrent, one carrying offers: JS WebTorrent in Node
//! takes ~5 s to make an offer or an answer, and two JS peers whose offers cross each keep a
//! different connection and close the other), then the downloader starts. Figures are noted: the whole transfer from the
//! downloader's start, the time to the first piece block, and the rate after it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;

use crate::interop::{Ctx, Scenario};
use crate::netns;
use crate::setup::venv_python;
use crate::swarm::peers::{self, Client, Role};
use crate::swarm::procs::{Logs, Proc, wait_until};
use crate::swarm::{MIB, contents, listening_addr};
use crate::util::{on_path, root};

/// The tree's folder name (and torrent name).
pub(crate) const TREE_NAME: &str = "rtc-tree";

/// The tree: nesting, sizes off the 16 KiB block and the piece size (the last piece is short),
/// 3.7 MiB.
const TREE: &[(&str, u64)] = &[
    ("a.bin", MIB + 3),
    ("sub/b.bin", 2 * MIB - 777),
    ("sub/deep/c.txt", 10_001),
    ("z.bin", 700_001),
];

/// Piece length of every torrent (64 KiB: 59 pieces).
pub(crate) const PIECE_LENGTH: &str = "65536";

/// Time limit of one scenario.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Limit of the scripts' own timers (they are killed at the scenario's end anyway).
pub(crate) const SCRIPT_TIMEOUT: &str = "120";

/// The tracker's announce interval for HTTP clients (ms); WebSocket clients are told a fifth:
/// 10 s between announces, so a JS peer's offers (made in ~5 s) never overlap the next ones.
const TRACKER_INTERVAL_MS: &str = "50000";

/// How long `webrtc-off-js-seeds` watches our download: longer than the tracker's WebSocket
/// interval (10 s), so the seeder's offers went out at least once more meanwhile.
const DISABLED_WATCH: Duration = Duration::from_secs(12);

/// Debian's Chromium.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Our download's rate limit in the bridge scenario: the download from qBittorrent lasts ~7 s,
/// so the browser is served while it runs (on loopback it would otherwise end in well under a
/// second, before the WebRTC connection is up).
const BRIDGE_DOWNLOAD_LIMIT: &str = "512KiB";

/// The WebRTC peers the scenarios run against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Other {
    /// JS WebTorrent 3 in Node (node-datachannel).
    Js,
    /// JS WebTorrent 3's browser bundle in headless Chromium.
    Chromium,
    /// libtorrent 2.1.1 (python, PyPI wheel).
    Lt21,
}

impl Other {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Js => "js",
            Self::Chromium => "chromium",
            Self::Lt21 => "libtorrent21",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Js => "JS WebTorrent (Node)",
            Self::Chromium => "Chromium",
            Self::Lt21 => "libtorrent 2.1",
        }
    }
}

/// One scenario.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// The other peer seeds, we download; with `magnet`, from its magnet link (the metadata
    /// then comes over WebRTC too).
    TheySeed { other: Other, magnet: bool },
    /// We seed, the other peer downloads.
    TheyLeech(Other),
    /// qBittorrent seeds over TCP; we download from it and serve Chromium over WebRTC.
    Bridge,
    /// Harness self-check: JS WebTorrent in Node seeds, Chromium downloads.
    JsToChromium,
    /// JS WebTorrent seeds; `webtorrent download --no-webrtc` must not use the ws:// tracker.
    Disabled,
}

impl Kind {
    fn name(self) -> String {
        match self {
            Self::TheySeed { other, magnet } => format!(
                "webrtc-{}-seeds{}",
                other.name(),
                if magnet { "-magnet" } else { "" }
            ),
            Self::TheyLeech(o) => format!("webrtc-{}-leeches", o.name()),
            Self::Bridge => "webrtc-bridge-qbittorrent".to_owned(),
            Self::JsToChromium => "webrtc-js-to-chromium".to_owned(),
            Self::Disabled => "webrtc-off-js-seeds".to_owned(),
        }
    }

    fn all() -> Vec<Self> {
        let mut all = vec![Self::JsToChromium];
        for other in [Other::Js, Other::Chromium, Other::Lt21] {
            all.push(Self::TheySeed {
                other,
                magnet: false,
            });
            all.push(Self::TheyLeech(other));
        }
        for other in [Other::Js, Other::Chromium, Other::Lt21] {
            all.push(Self::TheySeed {
                other,
                magnet: true,
            });
        }
        all.push(Self::Bridge);
        all.push(Self::Disabled);
        all
    }

    /// The WebRTC peers it needs besides ours.
    fn others(self) -> Vec<Other> {
        match self {
            Self::TheySeed { other, .. } | Self::TheyLeech(other) => vec![other],
            Self::Disabled => vec![Other::Js],
            Self::Bridge => vec![Other::Chromium],
            Self::JsToChromium => vec![Other::Js, Other::Chromium],
        }
    }
}

/// Every WebRTC scenario, for `interop::scenarios`.
pub(crate) fn scenarios() -> Vec<Scenario> {
    Kind::all()
        .into_iter()
        .map(|kind| Scenario {
            name: kind.name(),
            timeout: TIMEOUT,
            run: Box::new(move |ctx| {
                let logs = Logs::default();
                let r = run(ctx, kind, &logs);
                if r.is_err() {
                    logs.print_tails(15);
                }
                r
            }),
        })
        .collect()
}

/// Fails, saying how to fix it, when a program a scenario needs is missing.
fn preflight(kind: Kind) -> Result<()> {
    preflight_others(&kind.others())?;
    if kind == Kind::Bridge {
        ensure!(
            on_path("qbittorrent-nox"),
            "qbittorrent-nox is missing: run `cargo xtask ci --only setup`"
        );
    }
    Ok(())
}

/// Fails, saying how to fix it, when node or what runs `others` is missing.
pub(crate) fn preflight_others(others: &[Other]) -> Result<()> {
    ensure!(
        on_path("node"),
        "node is missing: install Node.js (>= 20), then `cargo xtask ci --only setup`"
    );
    for other in others {
        match other {
            Other::Js => {}
            Other::Chromium => ensure!(
                Path::new(CHROMIUM).is_file(),
                "{CHROMIUM} is missing: run `cargo xtask ci --only setup` (Debian's chromium)"
            ),
            Other::Lt21 => ensure!(
                venv_python().is_file(),
                "interop/.venv is missing: run `cargo xtask ci --only setup`"
            ),
        }
    }
    Ok(())
}

fn run(ctx: &Ctx, kind: Kind, logs: &Logs) -> Result<Vec<String>> {
    preflight(kind)?;
    // Declared first, so dropped last: every process below is stopped before the thread
    // leaves the namespace (qBittorrent is asked to quit through its WebUI, in there).
    let _isolated = netns::Isolated::enter()?;
    let dir = ctx.work.join("webrtc").join(kind.name());
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    write_tree(&data)?;
    let tracker = Tracker::start(&dir, kind == Kind::Bridge, 0, logs, ctx.deadline.get())?;
    let s = Setup {
        ctx,
        dir: &dir,
        data: &data,
        tracker: &tracker,
        logs,
    };
    let r = match kind {
        Kind::TheySeed { other, magnet } => they_seed(&s, other, magnet),
        Kind::TheyLeech(other) => they_leech(&s, other),
        Kind::Bridge => bridge(&s),
        Kind::JsToChromium => js_to_chromium(&s),
        Kind::Disabled => disabled(&s),
    };
    r.map_err(|e| anyhow!("{e:#} [tracker: {}]", tracker.summary()))
}

/// What every scenario has.
struct Setup<'a> {
    ctx: &'a Ctx,
    /// The scenario's folder (logs, torrents, downloads).
    dir: &'a Path,
    /// The folder holding the tree (`data/rtc-tree`).
    data: &'a Path,
    tracker: &'a Tracker,
    logs: &'a Logs,
}

impl Setup<'_> {
    fn deadline(&self) -> Option<Instant> {
        self.ctx.deadline.get()
    }

    /// `webtorrent create` of the tree, v1, with `trackers`.
    fn our_torrent(&self, name: &str, trackers: &[String]) -> Result<PathBuf> {
        let torrent = self.dir.join(name);
        let mut c = self.ctx.webtorrent();
        c.arg("create")
            .arg(self.data.join(TREE_NAME))
            .arg("-o")
            .arg(&torrent)
            .args([
                "--meta-version",
                "1",
                "--piece-length",
                PIECE_LENGTH,
                "--no-date",
            ]);
        for t in trackers {
            c.arg("--tracker").arg(t);
        }
        self.ctx.capture(&mut c)?.ok("webtorrent create")?;
        Ok(torrent)
    }

    /// `webtorrent -v <args> --listen 127.0.0.1:0` (WebRTC then binds 127.0.0.1 too).
    fn ours(&self, label: &str, args: &[&OsStr]) -> Result<Proc> {
        let mut c = self.ctx.webtorrent();
        c.arg("-v").args(args).args(["--listen", "127.0.0.1:0"]);
        Proc::spawn(label, &mut c, self.dir, false, self.logs)
    }
}

/// The other peer seeds (JS and Chromium their own torrent, libtorrent one it made), we
/// download the .torrent or, with `magnet`, a magnet link (JS's and Chromium's own; for
/// libtorrent the one `webtorrent info` makes of its torrent: info-hash, name, tracker).
fn they_seed(s: &Setup<'_>, other: Other, magnet: bool) -> Result<Vec<String>> {
    let deadline = s.deadline();
    let ws = s.tracker.ws_url();
    let (mut them, torrent) = match other {
        Other::Js | Other::Chromium => {
            let torrent = s.dir.join(format!("{}.torrent", other.name()));
            let them = Peer::seed_tree(s, other, &ws, &torrent)?;
            (them, torrent)
        }
        Other::Lt21 => {
            let torrent = s.dir.join("libtorrent21.torrent");
            let mut c = Command::new(venv_python());
            c.env("PYTHONDONTWRITEBYTECODE", "1")
                .arg(root().join("interop/python/lt_create.py"))
                .arg(s.data.join(TREE_NAME))
                .arg("-o")
                .arg(&torrent)
                .args(["--flavour", "v1", "--piece-length", PIECE_LENGTH])
                .arg("--tracker")
                .arg(&ws);
            s.ctx.capture(&mut c)?.ok("libtorrent 2.1 create_torrent")?;
            (
                Peer::lt21(
                    s.dir,
                    s.logs,
                    "libtorrent21-seed",
                    &torrent,
                    s.data,
                    SCRIPT_TIMEOUT,
                )?,
                torrent,
            )
        }
    };
    them.wait_event(deadline, other.seed_ready(), "to be seeding")?;
    s.tracker
        .wait_offers(deadline, 1, &format!("{}'s offers", other.label()))?;
    let mut notes = Vec::new();
    let source = if magnet {
        let link = match other {
            Other::Js | Other::Chromium => them
                .event("ready")
                .and_then(|e| e["magnet"].as_str().map(String::from)),
            Other::Lt21 => s.ctx.info(&torrent)?["magnet"].as_str().map(String::from),
        }
        .context("no magnet link")?;
        notes.push(format!("magnet: {link}"));
        link.into()
    } else {
        torrent.as_os_str().to_owned()
    };

    let out = s.dir.join("ours");
    let started = now_ms();
    let mut download = s.ours(
        "webtorrent-download",
        &[
            "download".as_ref(),
            source.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
    )?;
    wait_until(deadline, "webtorrent download to finish", || {
        if let Some(status) = them.proc.exited()? {
            bail!("{} exited ({status})", them.label);
        }
        match download.exited()? {
            Some(status) if status.success() => Ok(true),
            Some(status) => bail!("webtorrent download exited ({status})"),
            None => Ok(false),
        }
    })?;
    let done = now_ms();
    notes.insert(
        0,
        transfer_note(
            &format!("{} -> webtorrent", other.label()),
            started,
            them.event_ms("first-upload"),
            done,
        ),
    );
    compare(&out, true)?;
    notes.push(them.wire_note()?);
    Ok(notes)
}

/// We seed a torrent we made, the other peer downloads.
fn they_leech(s: &Setup<'_>, other: Other) -> Result<Vec<String>> {
    let deadline = s.deadline();
    let torrent = s.our_torrent("ours.torrent", &[s.tracker.ws_url()])?;
    let mut seed = s.ours(
        "webtorrent-seed",
        &[
            "seed".as_ref(),
            torrent.as_os_str(),
            "-d".as_ref(),
            s.data.as_os_str(),
        ],
    )?;
    listening_addr(&mut seed, deadline)?;
    wait_until(deadline, "webtorrent seed's announce", || {
        if let Some(status) = seed.exited()? {
            bail!("webtorrent seed exited ({status})");
        }
        Ok(s.tracker.announces().iter().any(is_ours))
    })?;

    let out = s.dir.join("theirs");
    std::fs::create_dir_all(&out)?;
    let started = now_ms();
    let mut them = match other {
        Other::Js | Other::Chromium => {
            Peer::leech(s.dir, s.logs, other, &torrent, &out, SCRIPT_TIMEOUT)?
        }
        Other::Lt21 => Peer::lt21(
            s.dir,
            s.logs,
            "libtorrent21-leech",
            &torrent,
            &out,
            SCRIPT_TIMEOUT,
        )?,
    };
    let finished = wait_until(
        deadline,
        &format!("{} to finish downloading", other.label()),
        || {
            if let Some(status) = seed.exited()? {
                bail!("webtorrent seed exited ({status})");
            }
            them.leech_done()
        },
    );
    if let Err(e) = finished {
        bail!("{e:#} ({})", them.progress());
    }
    let done = them
        .event_ms(other.leech_done_event())
        .unwrap_or_else(now_ms);
    let mut notes = vec![transfer_note(
        &format!("webtorrent -> {}", other.label()),
        started,
        them.event_ms("first-block"),
        done,
    )];
    compare(&out, false)?;
    notes.push(them.wire_note()?);
    drop(them);
    // Ctrl-C stops the seeder cleanly.
    seed.stop_clean("webtorrent seed")?;
    Ok(notes)
}

/// qBittorrent seeds over TCP (HTTP tracker); Chromium waits on the WebSocket tracker; our
/// download gets the torrent from qBittorrent and serves Chromium meanwhile.
fn bridge(s: &Setup<'_>) -> Result<Vec<String>> {
    let deadline = s.deadline();
    let torrent = s.our_torrent(
        "bridge.torrent",
        &[s.tracker.http_url(), s.tracker.ws_url()],
    )?;
    let job = peers::Job {
        torrent: &torrent,
        save: s.data,
        role: Role::Seed,
        udp_tracker: false,
    };
    let mut qbt = peers::start(Client::Qbittorrent, &job, s.dir, s.logs, deadline)?;
    wait_until(deadline, "qBittorrent to be seeding", || qbt.complete())?;
    wait_until(deadline, "qBittorrent's HTTP announce", || {
        Ok(s.tracker.announces().iter().any(|a| a["type"] == "http"))
    })?;

    // The browser first: when it announces, no WebRTC peer has any of the data.
    let out_browser = s.dir.join("chromium");
    std::fs::create_dir_all(&out_browser)?;
    let mut browser = Peer::leech(
        s.dir,
        s.logs,
        Other::Chromium,
        &torrent,
        &out_browser,
        SCRIPT_TIMEOUT,
    )?;
    wait_until(deadline, "Chromium's announce", || {
        if let Some(status) = browser.proc.exited()? {
            bail!("the Chromium driver exited ({status})");
        }
        Ok(s.tracker.announces().iter().any(|a| a["type"] == "ws"))
    })?;

    let out = s.dir.join("ours");
    let started = now_ms();
    let mut ours = s.ours(
        "webtorrent-download",
        &[
            "download".as_ref(),
            torrent.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--seed".as_ref(),
            "--download-limit".as_ref(),
            BRIDGE_DOWNLOAD_LIMIT.as_ref(),
        ],
    )?;
    let mut ours_done = None;
    let finished = wait_until(deadline, "Chromium to finish downloading", || {
        if let Some(status) = ours.exited()? {
            bail!("webtorrent download --seed exited ({status})");
        }
        if ours_done.is_none() && ours.stdout().contains("downloaded ") {
            ours_done = Some(now_ms());
        }
        browser.leech_done()
    });
    if let Err(e) = finished {
        let qbt_progress = qbt.progress();
        let ours_state = if ours_done.is_some() {
            "our download is complete"
        } else {
            "our download is not complete"
        };
        bail!(
            "{e:#} ({}; {ours_state}; qBittorrent: {qbt_progress})",
            browser.progress()
        );
    }
    wait_until(deadline, "webtorrent download's `downloaded` line", || {
        if ours_done.is_none() && ours.stdout().contains("downloaded ") {
            ours_done = Some(now_ms());
        }
        Ok(ours_done.is_some())
    })?;
    let ours_done = ours_done.context("our download never completed")?;
    let browser_done = browser.event_ms("done").unwrap_or_else(now_ms);
    let first_block = browser.event_ms("first-block");
    let mut notes = vec![
        transfer_note(
            &format!("qBittorrent -> webtorrent (limited to {BRIDGE_DOWNLOAD_LIMIT}/s)"),
            started,
            None,
            ours_done,
        ),
        transfer_note("webtorrent -> Chromium", started, first_block, browser_done),
    ];
    match first_block {
        Some(fb) if fb < ours_done => notes.push(format!(
            "bridged: Chromium's first block came {} before our download completed",
            secs_ms(ours_done - fb)
        )),
        Some(_) => notes.push(
            "not bridged while downloading: Chromium's first block came after our download \
             completed (served as a seeder)"
                .to_owned(),
        ),
        None => {}
    }
    compare(&out, true)?;
    compare(&out_browser, false)?;
    notes.push(browser.wire_note()?);
    drop(browser);
    ours.stop_clean("webtorrent download --seed")?;
    Ok(notes)
}

/// The harness alone: JS WebTorrent in Node seeds, Chromium downloads.
fn js_to_chromium(s: &Setup<'_>) -> Result<Vec<String>> {
    let deadline = s.deadline();
    let torrent = s.dir.join("js.torrent");
    let mut seeder = Peer::seed_tree(s, Other::Js, &s.tracker.ws_url(), &torrent)?;
    seeder.wait_event(deadline, "ready", "to be seeding")?;
    s.tracker
        .wait_offers(deadline, 1, "JS WebTorrent's offers")?;
    let out = s.dir.join("chromium");
    std::fs::create_dir_all(&out)?;
    let started = now_ms();
    let mut browser = Peer::leech(
        s.dir,
        s.logs,
        Other::Chromium,
        &torrent,
        &out,
        SCRIPT_TIMEOUT,
    )?;
    let finished = wait_until(deadline, "Chromium to finish downloading", || {
        if let Some(status) = seeder.proc.exited()? {
            bail!("the JS seeder exited ({status})");
        }
        browser.leech_done()
    });
    if let Err(e) = finished {
        bail!("{e:#} ({})", browser.progress());
    }
    let done = browser.event_ms("done").unwrap_or_else(now_ms);
    let mut notes = vec![transfer_note(
        "JS WebTorrent (Node) -> Chromium",
        started,
        browser.event_ms("first-block"),
        done,
    )];
    compare(&out, false)?;
    notes.push(browser.wire_note()?);
    Ok(notes)
}

/// JS WebTorrent seeds a torrent whose only tracker is ws://; `webtorrent download
/// --no-webrtc` must neither announce there nor get any data, and stop on Ctrl-C (exit 130).
fn disabled(s: &Setup<'_>) -> Result<Vec<String>> {
    let deadline = s.deadline();
    let torrent = s.dir.join("js.torrent");
    let mut seeder = Peer::seed_tree(s, Other::Js, &s.tracker.ws_url(), &torrent)?;
    seeder.wait_event(deadline, "ready", "to be seeding")?;
    s.tracker
        .wait_offers(deadline, 1, "JS WebTorrent's offers")?;
    let out = s.dir.join("ours");
    let mut download = s.ours(
        "webtorrent-download",
        &[
            "download".as_ref(),
            torrent.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--no-webrtc".as_ref(),
        ],
    )?;
    let until = Instant::now() + DISABLED_WATCH;
    while Instant::now() < until {
        if let Some(status) = download.exited()? {
            bail!("webtorrent download --no-webrtc exited ({status}) with only a ws:// tracker");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ours = s.tracker.announces().iter().filter(|a| is_ours(a)).count();
    ensure!(
        ours == 0,
        "webtorrent download --no-webrtc announced {ours} time(s) to the ws:// tracker"
    );
    let wires = seeder
        .events()
        .iter()
        .filter(|e| e["event"] == "wire")
        .count();
    ensure!(
        wires == 0,
        "JS WebTorrent got {wires} connection(s) from webtorrent download --no-webrtc"
    );
    match download.interrupt(Duration::from_secs(5))? {
        Some(status) if status.code() == Some(130) => {}
        Some(status) => bail!("webtorrent download exited with {status} on Ctrl-C, not 130"),
        None => bail!("webtorrent download still runs 5 s after Ctrl-C"),
    }
    Ok(vec![format!(
        "no announce to the ws:// tracker and no connection in {}; Ctrl-C exits 130",
        crate::util::secs(DISABLED_WATCH)
    )])
}

impl Other {
    /// The event a seeder prints once it serves.
    pub(crate) fn seed_ready(self) -> &'static str {
        match self {
            Self::Js | Self::Chromium => "ready",
            Self::Lt21 => "complete",
        }
    }

    /// The event a downloader prints once every piece is verified.
    fn leech_done_event(self) -> &'static str {
        match self {
            Self::Js | Self::Chromium => "done",
            Self::Lt21 => "complete",
        }
    }
}

/// A JS, Chromium or libtorrent peer: a script printing JSON events on stdout, with its stdin
/// a pipe whose end stops it.
pub(crate) struct Peer {
    other: Other,
    label: String,
    pub(crate) proc: Proc,
}

impl Peer {
    /// Starts `c` in `dir` (its logs there), stdin a pipe.
    fn spawn(dir: &Path, logs: &Logs, other: Other, label: &str, c: &mut Command) -> Result<Self> {
        let proc = Proc::spawn(label, c, dir, true, logs)?;
        Ok(Self {
            other,
            label: label.to_owned(),
            proc,
        })
    }

    fn node(script: &str) -> Command {
        let mut c = Command::new("node");
        c.arg(root().join("interop").join(script));
        c
    }

    /// JS or Chromium seeding the tree as a torrent it makes (written to `torrent_out`).
    fn seed_tree(s: &Setup<'_>, other: Other, ws: &str, torrent_out: &Path) -> Result<Self> {
        let tree = s.data.join(TREE_NAME);
        let mut c = match other {
            Other::Js => {
                let mut c = Self::node("node/wt_peer.mjs");
                c.arg("seed").arg("--path").arg(&tree);
                c
            }
            Other::Chromium => {
                let mut c = Self::node("browser/driver.mjs");
                c.arg("seed").arg("--data").arg(&tree);
                c
            }
            Other::Lt21 => bail!("libtorrent seeds a given torrent"),
        };
        c.args(["--announce", ws, "--piece-length", PIECE_LENGTH])
            .arg("--torrent-out")
            .arg(torrent_out)
            .args(["--timeout", SCRIPT_TIMEOUT]);
        Self::spawn(
            s.dir,
            s.logs,
            other,
            &format!("{}-seed", other.name()),
            &mut c,
        )
    }

    /// Which peer it is.
    pub(crate) fn other(&self) -> Other {
        self.other
    }

    /// JS seeding `torrent` from the data under `data`; the script stops after `timeout`
    /// seconds.
    pub(crate) fn js_seed(
        dir: &Path,
        logs: &Logs,
        torrent: &Path,
        data: &Path,
        timeout: &str,
    ) -> Result<Self> {
        let mut c = Self::node("node/wt_peer.mjs");
        c.arg("seed")
            .arg("--torrent")
            .arg(torrent)
            .arg("--dir")
            .arg(data)
            .args(["--timeout", timeout]);
        Self::spawn(dir, logs, Other::Js, "js-seed", &mut c)
    }

    /// JS or Chromium downloading `torrent` into `out`; the script stops after `timeout`
    /// seconds.
    pub(crate) fn leech(
        dir: &Path,
        logs: &Logs,
        other: Other,
        torrent: &Path,
        out: &Path,
        timeout: &str,
    ) -> Result<Self> {
        let mut c = match other {
            Other::Js => Self::node("node/wt_peer.mjs"),
            Other::Chromium => Self::node("browser/driver.mjs"),
            Other::Lt21 => bail!("libtorrent is started with Peer::lt21"),
        };
        c.arg("leech")
            .arg("--torrent")
            .arg(torrent)
            .arg("--out")
            .arg(out)
            .args(["--timeout", timeout]);
        Self::spawn(dir, logs, other, &format!("{}-leech", other.name()), &mut c)
    }

    /// libtorrent 2.1 with `torrent`, its data in `save` (seeding what is there); the script
    /// stops after `timeout` seconds.
    pub(crate) fn lt21(
        dir: &Path,
        logs: &Logs,
        label: &str,
        torrent: &Path,
        save: &Path,
        timeout: &str,
    ) -> Result<Self> {
        let mut c = Command::new(venv_python());
        c.env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(root().join("interop/python/lt_webrtc.py"))
            .arg("--torrent")
            .arg(torrent)
            .arg("--save")
            .arg(save)
            .args(["--timeout", timeout]);
        Self::spawn(dir, logs, Other::Lt21, label, &mut c)
    }

    pub(crate) fn events(&self) -> Vec<Value> {
        json_lines(&self.proc.stdout())
    }

    pub(crate) fn event(&self, name: &str) -> Option<Value> {
        self.events().into_iter().find(|e| e["event"] == name)
    }

    /// When `name` was printed (ms since the Unix epoch).
    pub(crate) fn event_ms(&self, name: &str) -> Option<u64> {
        self.event(name).and_then(|e| e["t"].as_u64())
    }

    /// Waits for the event `name`; fails if the peer exits first.
    pub(crate) fn wait_event(
        &mut self,
        deadline: Option<Instant>,
        name: &str,
        what: &str,
    ) -> Result<()> {
        let label = self.label.clone();
        wait_until(deadline, &format!("{label} {what}"), || {
            if self.event(name).is_some() {
                return Ok(true);
            }
            if let Some(status) = self.proc.exited()? {
                bail!("{label} exited ({status})");
            }
            Ok(false)
        })
    }

    /// Whether a downloader is done: JS and Chromium exit 0 (after closing their files, or
    /// writing them for Chromium), libtorrent prints `complete`.
    pub(crate) fn leech_done(&mut self) -> Result<bool> {
        match self.other {
            Other::Js | Other::Chromium => match self.proc.exited()? {
                Some(status) if status.success() => {
                    ensure!(
                        self.event("done").is_some(),
                        "{} exited 0 without a `done` event",
                        self.label
                    );
                    Ok(true)
                }
                Some(status) => bail!("{} exited ({status})", self.label),
                None => Ok(false),
            },
            Other::Lt21 => {
                if let Some(status) = self.proc.exited()? {
                    bail!("{} exited ({status})", self.label);
                }
                Ok(self.event("complete").is_some())
            }
        }
    }

    /// The last status line the peer printed on stderr, for a timeout message.
    pub(crate) fn progress(&self) -> String {
        let status = self
            .proc
            .stderr()
            .lines()
            .rev()
            .find_map(|l| l.split_once("status: ").map(|(_, s)| s.to_owned()))
            .unwrap_or_else(|| "no status line".to_owned());
        format!("{}: {status}", self.other.label())
    }

    /// Checks that every connection the peer reports is a WebRTC one, and says how many.
    pub(crate) fn wire_note(&self) -> Result<String> {
        let wires: Vec<String> = self
            .events()
            .iter()
            .filter(|e| e["event"] == "wire" || e["event"] == "peer")
            .map(|e| e["type"].as_str().unwrap_or("?").to_owned())
            .collect();
        let label = self.other.label();
        ensure!(!wires.is_empty(), "{label} reported no connection");
        ensure!(
            wires.iter().all(|t| t == "webrtc"),
            "{label} had connections that are not WebRTC: {wires:?}"
        );
        Ok(format!("{label}: {} WebRTC connection(s)", wires.len()))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // The end of stdin stops it (a `stopped` announce; Chromium closed by its driver);
        // killed (by Proc) if it takes longer.
        self.proc.close_stdin();
        let _ = self.proc.wait_for(Duration::from_secs(5));
    }
}

/// bittorrent-tracker on a free port of the namespace: WebSocket, and HTTP with `http`.
pub(crate) struct Tracker {
    proc: Proc,
    port: u16,
}

impl Tracker {
    /// Starts it on `port` (0: any free one).
    pub(crate) fn start(
        dir: &Path,
        http: bool,
        port: u16,
        logs: &Logs,
        deadline: Option<Instant>,
    ) -> Result<Self> {
        let mut c = Command::new("node");
        c.arg(root().join("interop/node/rtc_tracker.mjs"))
            .args(["--interval", TRACKER_INTERVAL_MS])
            .args(["--port", &port.to_string()]);
        if http {
            c.arg("--http");
        }
        let mut proc = Proc::spawn("tracker", &mut c, dir, true, logs)?;
        let mut bound = 0;
        wait_until(deadline, "the tracker's port", || {
            if let Some(status) = proc.exited()? {
                bail!("rtc_tracker.mjs exited ({status})");
            }
            bound = json_lines(&proc.stdout())
                .iter()
                .find_map(|v| v["port"].as_u64())
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0);
            Ok(bound != 0)
        })?;
        Ok(Self { proc, port: bound })
    }

    pub(crate) fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    /// The announces the tracker handled so far.
    pub(crate) fn announces(&self) -> Vec<Value> {
        json_lines(&self.proc.stdout())
            .into_iter()
            .filter(|v| v.get("event").is_some())
            .collect()
    }

    /// What the tracker saw of us and of the others, for a failure message: announces,
    /// offers in them, answers relayed.
    pub(crate) fn summary(&self) -> String {
        let all = self.announces();
        let side = |ours: bool| {
            let of: Vec<&Value> = all.iter().filter(|a| is_ours(a) == ours).collect();
            let answers = of.iter().filter(|a| a["answer"] == true).count();
            let offers: u64 = of.iter().filter_map(|a| a["offers"].as_u64()).sum();
            format!(
                "{} announces with {offers} offers, {answers} answers",
                of.len() - answers
            )
        };
        format!("webtorrent {}; others {}", side(true), side(false))
    }

    /// Waits for `n` announces carrying offers.
    fn wait_offers(&self, deadline: Option<Instant>, n: usize, what: &str) -> Result<()> {
        wait_until(deadline, what, || {
            Ok(self
                .announces()
                .iter()
                .filter(|a| a["offers"].as_u64().unwrap_or(0) > 0)
                .count()
                >= n)
        })
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.proc.close_stdin();
        let _ = self.proc.wait_for(Duration::from_secs(2));
    }
}

/// Hex of `-RW`, the start of our peer ids (`webtorrent_types::OUR_PEER_ID_PREFIX`), as the
/// tracker logs the ids of WebSocket peers.
const OUR_PEER_ID_HEX: &str = "2d5257";

/// Whether a tracker log line is about one of our peer ids.
pub(crate) fn is_ours(announce: &Value) -> bool {
    announce["peer"]
        .as_str()
        .is_some_and(|p| p.starts_with(OUR_PEER_ID_HEX))
}

pub(crate) fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The bytes of a tree file (the generator of interop/python/trees.py).
fn file_bytes(rel: &str, len: u64) -> Vec<u8> {
    contents(&format!("{TREE_NAME}/{rel}"), len)
}

pub(crate) fn write_tree(data: &Path) -> Result<()> {
    for (rel, len) in TREE {
        let path = data.join(TREE_NAME).join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, file_bytes(rel, *len))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Compares `save/rtc-tree` with the tree, file by file. `ours`: no other file may be there.
pub(crate) fn compare(save: &Path, ours: bool) -> Result<()> {
    let root = save.join(TREE_NAME);
    for (rel, len) in TREE {
        let path = root.join(rel);
        let got = std::fs::read(&path)
            .with_context(|| format!("cannot read the downloaded {}", path.display()))?;
        ensure!(
            got.len() as u64 == *len,
            "{rel}: {} bytes downloaded, {len} expected",
            got.len()
        );
        if let Some(at) = got
            .iter()
            .zip(file_bytes(rel, *len))
            .position(|(a, b)| *a != b)
        {
            bail!("{rel}: differs from the original from byte {at} on");
        }
    }
    if ours {
        let extra: Vec<String> = peers::list_files(&root)?
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !TREE.iter().any(|(rel, _)| rel == p))
            .collect();
        ensure!(
            extra.is_empty(),
            "unexpected files in the download: {extra:?}"
        );
    }
    Ok(())
}

/// Milliseconds since the Unix epoch (the clock of the scripts' `t`).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn secs_ms(ms: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // far below 2^52
    let s = ms as f64 / 1000.0;
    format!("{s:.1}s")
}

/// `what: N MiB in T s (R MiB/s)[; first block after F s, then R' MiB/s]`, all from `start`
/// (ms since the epoch).
pub(crate) fn transfer_note(what: &str, start: u64, first_block: Option<u64>, done: u64) -> String {
    let total: u64 = TREE.iter().map(|(_, len)| len).sum();
    #[allow(clippy::cast_precision_loss)] // sizes far below 2^52
    let mib = total as f64 / MIB as f64;
    let rate = |ms: u64| {
        #[allow(clippy::cast_precision_loss)]
        let s = ms.max(1) as f64 / 1000.0;
        mib / s
    };
    let whole = done.saturating_sub(start);
    let mut note = format!(
        "{what}: {mib:.1} MiB in {} ({:.1} MiB/s)",
        secs_ms(whole),
        rate(whole)
    );
    if let Some(first) = first_block {
        let after = done.saturating_sub(first);
        note.push_str(&format!(
            "; first block after {}, then {:.1} MiB/s",
            secs_ms(first.saturating_sub(start)),
            rate(after)
        ));
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_follow_the_pattern() {
        let names: Vec<String> = scenarios().into_iter().map(|s| s.name).collect();
        for expected in [
            "webrtc-js-seeds",
            "webrtc-js-leeches",
            "webrtc-chromium-seeds",
            "webrtc-chromium-leeches",
            "webrtc-libtorrent21-seeds",
            "webrtc-libtorrent21-leeches",
            "webrtc-js-seeds-magnet",
            "webrtc-chromium-seeds-magnet",
            "webrtc-libtorrent21-seeds-magnet",
            "webrtc-bridge-qbittorrent",
            "webrtc-js-to-chromium",
            "webrtc-off-js-seeds",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn tree_has_a_short_last_piece() {
        let total: u64 = TREE.iter().map(|(_, len)| len).sum();
        let piece: u64 = PIECE_LENGTH.parse().expect("number");
        assert_ne!(total % piece, 0);
        assert!(TREE.iter().all(|(_, len)| *len > 0));
        assert!((3 * MIB..5 * MIB).contains(&total));
    }

    #[test]
    fn our_peer_ids_are_recognised() {
        let hex: String = b"-RW".iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, OUR_PEER_ID_HEX);
        assert!(is_ours(
            &serde_json::json!({"peer": "2d5257303130302d6162"})
        ));
        assert!(!is_ours(
            &serde_json::json!({"peer": "2d5757303330302d6162"})
        ));
        assert!(!is_ours(&serde_json::json!({"peer": "127.0.0.1:6881"})));
    }

    #[test]
    fn notes_give_rates_and_first_block() {
        let note = transfer_note("a -> b", 1_000, Some(3_000), 5_000);
        assert!(
            note.starts_with("a -> b: 3.7 MiB in 4.0s (0.9 MiB/s)"),
            "{note}"
        );
        assert!(
            note.ends_with("first block after 2.0s, then 1.8 MiB/s"),
            "{note}"
        );
    }
}
