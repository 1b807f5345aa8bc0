//! `swarm-*` scenarios of `cargo xtask interop`: our `webtorrent` binary downloads a multi-file
//! torrent from, and seeds it to, qBittorrent-nox, libtorrent 2.0 (python), Transmission and
//! aria2, once by direct address and once through a local opentracker (HTTP, then UDP).
//!
//! Names: `swarm-<client>-<seeds|leeches>-<direct|http|udp>[-hybrid|-magnet]`, where the verb
//! is what the other client does (`swarm-aria2-seeds-http`: aria2 seeds, we download, both find
//! each other through the HTTP tracker). In `-magnet` scenarios our download is given only a
//! magnet link with the info-hash and the tracker (`tr=`): the tracker names the seeder, which
//! is then the only source of the metadata. The tree and its torrents are made once per run, the
//! tracker and the clients once per scenario, in the interop work folder; every process is
//! killed when its scenario ends, and on failure the tail of each log is printed.
//!
//! Clients that cannot reach us are reached by us: aria2 and Transmission cannot be given a
//! peer address, so in `direct` scenarios where they download, our seeder dials them
//! (`seed --peer`); Transmission never dials loopback peers it learns from a tracker, so every
//! tracker scenario where the other client downloads starts it first and lets our seeder,
//! which announces later, dial it (the same order for all four clients).

pub(crate) mod peers;
pub(crate) mod procs;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::interop::{Ctx, Scenario};
use crate::util;
use peers::{Client, Role};
use procs::{Logs, Proc, free_port, wait_until};

/// The shared tree's folder name (and torrent name).
pub(crate) const TREE_NAME: &str = "swarm-tree";

pub(crate) const MIB: u64 = 1024 * 1024;

/// The shared tree: nested folders, an empty file, sizes that are not multiples of 16 KiB,
/// about 23 MiB in all.
pub(crate) const TREE: &[(&str, u64)] = &[
    ("a-first.bin", 3 * MIB + 1),
    ("docs/deep/nested/big.bin", 9 * MIB + 12_345),
    ("docs/readme.txt", 4_321),
    ("empty.txt", 0),
    ("media/clip.dat", 7 * MIB - 999),
    ("z-tail.bin", 4 * MIB + 16_383),
];

/// Piece length of the torrents (256 KiB: about 90 pieces).
pub(crate) const PIECE_LENGTH: &str = "262144";

/// Time limit of one scenario.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How peers find each other.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Discovery {
    /// Given each other's address.
    Direct,
    /// Through the tracker over HTTP.
    Http,
    /// Through the tracker over UDP (BEP 15).
    Udp,
}

impl Discovery {
    fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Http => "http",
            Self::Udp => "udp",
        }
    }
}

/// Which info-hashes the torrent has.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Meta {
    V1,
    Hybrid,
}

impl Meta {
    fn name(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::Hybrid => "hybrid",
        }
    }
}

/// One scenario: the other client, what it does, how the peers meet, which torrent.
#[derive(Clone, Copy, Debug)]
struct Spec {
    client: Client,
    /// What the other client does.
    role: Role,
    discovery: Discovery,
    meta: Meta,
    /// Our download gets a magnet link naming the tracker, not the .torrent.
    magnet: bool,
}

impl Spec {
    fn name(self) -> String {
        let verb = match self.role {
            Role::Seed => "seeds",
            Role::Leech => "leeches",
        };
        let suffix = match (self.meta, self.magnet) {
            (_, true) => "-magnet",
            (Meta::V1, false) => "",
            (Meta::Hybrid, false) => "-hybrid",
        };
        format!(
            "swarm-{}-{verb}-{}{suffix}",
            self.client.name(),
            self.discovery.name()
        )
    }
}

/// The torrents (one per way of meeting, plus a hybrid one) and the tree, made once per run.
struct Fixture {
    /// The folder holding `TREE_NAME/` (the seeders' data folder).
    data: PathBuf,
    /// The port of the tracker URLs in the torrents (TCP and UDP).
    tracker_port: u16,
    /// The v1 info-hash (hex) of every v1 torrent (trackers do not change it).
    info_hash: String,
    torrents: Vec<((Meta, Discovery), PathBuf)>,
}

impl Fixture {
    fn torrent(&self, meta: Meta, discovery: Discovery) -> Result<&Path> {
        self.torrents
            .iter()
            .find(|(k, _)| *k == (meta, discovery))
            .map(|(_, p)| p.as_path())
            .with_context(|| format!("no {} torrent for {}", meta.name(), discovery.name()))
    }
}

/// Made by the first scenario that runs, then shared.
type Shared = Rc<RefCell<Option<Rc<Fixture>>>>;

/// Every swarm scenario, for `interop::scenarios`.
pub(crate) fn scenarios() -> Vec<Scenario> {
    let shared: Shared = Rc::default();
    let mut specs = Vec::new();
    for client in Client::ALL {
        for role in [Role::Seed, Role::Leech] {
            for discovery in [Discovery::Direct, Discovery::Http, Discovery::Udp] {
                specs.push(Spec {
                    client,
                    role,
                    discovery,
                    meta: Meta::V1,
                    magnet: false,
                });
            }
        }
    }
    // Transmission 3 and aria2 only understand v1; the libtorrent 2 based clients take a
    // hybrid torrent (with its pad files) too.
    for client in [Client::Qbittorrent, Client::Libtorrent] {
        for role in [Role::Seed, Role::Leech] {
            specs.push(Spec {
                client,
                role,
                discovery: Discovery::Direct,
                meta: Meta::Hybrid,
                magnet: false,
            });
        }
        // A magnet link whose only hint is the tracker.
        for discovery in [Discovery::Http, Discovery::Udp] {
            specs.push(Spec {
                client,
                role: Role::Seed,
                discovery,
                meta: Meta::V1,
                magnet: true,
            });
        }
    }
    specs
        .into_iter()
        .map(|spec| {
            let shared = Rc::clone(&shared);
            Scenario {
                name: spec.name(),
                timeout: TIMEOUT,
                run: Box::new(move |ctx| {
                    let fixture = fixture(ctx, &shared)?;
                    let logs = Logs::default();
                    let r = run(ctx, &fixture, spec, &logs);
                    if r.is_err() {
                        logs.print_tails(15);
                    }
                    r
                }),
            }
        })
        .collect()
}

fn fixture(ctx: &Ctx, shared: &Shared) -> Result<Rc<Fixture>> {
    if let Some(f) = shared.borrow().as_ref() {
        return Ok(Rc::clone(f));
    }
    let f = Rc::new(prepare(ctx).context("preparing the swarm tree and torrents")?);
    *shared.borrow_mut() = Some(Rc::clone(&f));
    Ok(f)
}

/// The bytes of a tree file: the generator of interop/python/trees.py (xorshift64 seeded with
/// the FNV-1a-64 hash of the path).
pub(crate) fn contents(path: &str, len: u64) -> Vec<u8> {
    let mut state = path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    if state == 0 {
        state = 1;
    }
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn prepare(ctx: &Ctx) -> Result<Fixture> {
    let base = ctx.work.join("swarm");
    let data = base.join("data");
    let tree = data.join(TREE_NAME);
    for (rel, len) in TREE {
        let path = tree.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents(rel, *len))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let tracker_port = free_port(true)?;
    let torrents_dir = base.join("torrents");
    std::fs::create_dir_all(&torrents_dir)?;
    let mut torrents = Vec::new();
    let mut info_hash = None;
    for (meta, discovery) in [
        (Meta::V1, Discovery::Direct),
        (Meta::V1, Discovery::Http),
        (Meta::V1, Discovery::Udp),
        (Meta::Hybrid, Discovery::Direct),
    ] {
        let path = torrents_dir.join(format!("{}-{}.torrent", meta.name(), discovery.name()));
        let mut c = ctx.webtorrent();
        c.arg("create").arg(&tree).arg("-o").arg(&path).args([
            "--meta-version",
            meta.name(),
            "--piece-length",
            PIECE_LENGTH,
            "--no-date",
        ]);
        match discovery {
            Discovery::Direct => {}
            Discovery::Http => {
                c.arg("--tracker")
                    .arg(format!("http://127.0.0.1:{tracker_port}/announce"));
            }
            Discovery::Udp => {
                c.arg("--tracker")
                    .arg(format!("udp://127.0.0.1:{tracker_port}"));
            }
        }
        ctx.capture(&mut c)?.ok("webtorrent create")?;
        if meta == Meta::V1 {
            let info = ctx.info(&path)?;
            let hash = info["info_hash_v1"]
                .as_str()
                .context("a v1 torrent without a v1 info-hash")?
                .to_owned();
            if let Some(first) = &info_hash {
                ensure!(
                    *first == hash,
                    "the tracker URL changed the info-hash ({first} vs {hash})"
                );
            }
            info_hash = Some(hash);
        }
        torrents.push(((meta, discovery), path));
    }
    Ok(Fixture {
        data,
        tracker_port,
        info_hash: info_hash.context("no v1 torrent was made")?,
        torrents,
    })
}

/// opentracker on the fixture's port (HTTP on TCP, UDP), listing only the torrent.
struct Tracker {
    proc: Proc,
    port: u16,
    info_hash: Vec<u8>,
}

impl Tracker {
    fn start(dir: &Path, fx: &Fixture, logs: &Logs, deadline: Option<Instant>) -> Result<Self> {
        ensure!(
            util::on_path("opentracker"),
            "opentracker is missing: run `cargo xtask ci --only setup`"
        );
        let dir = dir.join("tracker");
        std::fs::create_dir_all(&dir)?;
        // Debian's opentracker serves only the info-hashes of its whitelist; as root it
        // chroots into -d, so the whitelist is named relative to it.
        std::fs::write(dir.join("whitelist"), format!("{}\n", fx.info_hash))?;
        let port = fx.tracker_port.to_string();
        let proc = Proc::spawn(
            "opentracker",
            Command::new("opentracker")
                .args(["-i", "127.0.0.1", "-p", &port, "-P", &port])
                .args(["-w", "whitelist", "-d"])
                .arg(&dir),
            &dir,
            false,
            logs,
        )?;
        let mut this = Self {
            proc,
            port: fx.tracker_port,
            info_hash: procs::from_hex(&fx.info_hash).context("info-hash is not hex")?,
        };
        wait_until(deadline, "opentracker to answer scrapes", || {
            if let Some(status) = this.proc.exited()? {
                bail!("opentracker exited ({status})");
            }
            Ok(this.scrape().is_ok())
        })?;
        Ok(this)
    }

    /// (seeders, leechers) the tracker knows of.
    fn scrape(&self) -> Result<(i64, i64)> {
        let body = procs::curl(
            &format!(
                "http://127.0.0.1:{}/scrape?info_hash={}",
                self.port,
                procs::percent_encode(&self.info_hash)
            ),
            &[],
        )?;
        let complete = procs::bencoded_int(body.as_bytes(), "complete");
        let incomplete = procs::bencoded_int(body.as_bytes(), "incomplete");
        match (complete, incomplete) {
            (Some(c), Some(i)) => Ok((c, i)),
            // A torrent nobody announced yet is left out of the reply.
            _ if body.starts_with("d5:filesd") => Ok((0, 0)),
            _ => bail!("unexpected scrape reply {body:?}"),
        }
    }
}

/// `webtorrent -v <args> --listen 127.0.0.1:0 --peer ...`.
fn ours(
    ctx: &Ctx,
    label: &str,
    dir: &Path,
    args: &[&std::ffi::OsStr],
    peers: &[SocketAddr],
    logs: &Logs,
) -> Result<Proc> {
    let mut c = ctx.webtorrent();
    c.arg("-v").args(args).args(["--listen", "127.0.0.1:0"]);
    for p in peers {
        c.arg("--peer").arg(p.to_string());
    }
    Proc::spawn(label, &mut c, dir, false, logs)
}

/// The address our process printed as `listening on ADDR`.
pub(crate) fn listening_addr(p: &mut Proc, deadline: Option<Instant>) -> Result<SocketAddr> {
    let mut addr = None;
    wait_until(deadline, "webtorrent's `listening on` line", || {
        if let Some(status) = p.exited()? {
            bail!("webtorrent exited ({status})");
        }
        addr = p
            .stderr()
            .lines()
            .find_map(|l| l.strip_prefix("listening on "))
            .and_then(|a| a.trim().parse().ok());
        Ok(addr.is_some())
    })?;
    addr.context("no address")
}

pub(crate) fn rate_note(what: &str, elapsed: Duration) -> String {
    let total: u64 = TREE.iter().map(|(_, len)| len).sum();
    #[allow(clippy::cast_precision_loss)] // sizes far below 2^52
    let mib = total as f64 / MIB as f64;
    format!(
        "{what}: {mib:.1} MiB in {} ({:.1} MiB/s)",
        util::secs(elapsed),
        mib / elapsed.as_secs_f64().max(0.001)
    )
}

fn run(ctx: &Ctx, fx: &Fixture, spec: Spec, logs: &Logs) -> Result<Vec<String>> {
    let deadline = ctx.deadline.get();
    let dir = ctx.work.join("swarm").join(spec.name());
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let torrent = fx.torrent(spec.meta, spec.discovery)?;
    let client = spec.client.name();
    let tracker = match spec.discovery {
        Discovery::Direct => None,
        Discovery::Http | Discovery::Udp => Some(Tracker::start(&dir, fx, logs, deadline)?),
    };
    let mut notes = Vec::new();
    if spec.client == Client::Aria2 && spec.discovery == Discovery::Udp {
        notes.push(
            "aria2 sends UDP tracker requests through its DHT socket only: DHT on, without nodes"
                .to_owned(),
        );
    }
    match spec.role {
        Role::Seed => {
            let job = peers::Job {
                torrent,
                save: &fx.data,
                role: Role::Seed,
                udp_tracker: spec.discovery == Discovery::Udp,
            };
            let mut them = peers::start(spec.client, &job, &dir, logs, deadline)?;
            wait_until(deadline, &format!("{client} to be seeding"), || {
                them.complete()
            })?;
            if let Some(tracker) = &tracker {
                wait_until(
                    deadline,
                    &format!("{client}'s announce as a seeder"),
                    || Ok(tracker.scrape()?.0 >= 1),
                )?;
            }
            let out = dir.join("ours");
            let peers = match spec.discovery {
                Discovery::Direct => vec![them.addr()],
                Discovery::Http | Discovery::Udp => vec![],
            };
            let source = if spec.magnet {
                let tracker = match spec.discovery {
                    Discovery::Udp => format!("udp://127.0.0.1:{}", fx.tracker_port),
                    _ => format!("http://127.0.0.1:{}/announce", fx.tracker_port),
                };
                let link = format!(
                    "magnet:?xt=urn:btih:{}&tr={}",
                    fx.info_hash,
                    procs::percent_encode(tracker.as_bytes())
                );
                notes.push(format!("magnet: {link}"));
                link.into()
            } else {
                torrent.as_os_str().to_owned()
            };
            let started = Instant::now();
            let mut download = ours(
                ctx,
                "webtorrent-download",
                &dir,
                &[
                    "download".as_ref(),
                    source.as_os_str(),
                    "-o".as_ref(),
                    out.as_os_str(),
                ],
                &peers,
                logs,
            )?;
            wait_until(
                deadline,
                "webtorrent download to finish",
                || match download.exited()? {
                    Some(status) if status.success() => Ok(true),
                    Some(status) => bail!("webtorrent download exited ({status})"),
                    None => Ok(false),
                },
            )?;
            notes.push(rate_note(
                &format!("{client} -> webtorrent"),
                started.elapsed(),
            ));
            notes.extend(compare(fx, &out, true)?);
        }
        Role::Leech => {
            let out = dir.join("theirs");
            std::fs::create_dir_all(&out)?;
            let job = peers::Job {
                torrent,
                save: &out,
                role: Role::Leech,
                udp_tracker: spec.discovery == Discovery::Udp,
            };
            let mut them = peers::start(spec.client, &job, &dir, logs, deadline)?;
            // Our seeder dials once: the other client must be listening by then.
            let them_addr = them.addr();
            wait_until(
                deadline,
                &format!("{client} to listen on {them_addr}"),
                || Ok(procs::accepts(them_addr)),
            )?;
            if let Some(tracker) = &tracker {
                wait_until(
                    deadline,
                    &format!("{client}'s announce as a leecher"),
                    || Ok(tracker.scrape()?.1 >= 1),
                )?;
            }
            let direct = spec.discovery == Discovery::Direct;
            // Clients that cannot be told our address are dialed by our seeder.
            let dial_them = direct && !spec.client.can_dial();
            let peers = if dial_them { vec![them.addr()] } else { vec![] };
            if dial_them {
                notes.push(format!(
                    "{client} cannot be told a peer address: our seeder dialed it (seed --peer)"
                ));
            }
            if !direct && spec.client == Client::Transmission {
                notes.push(
                    "Transmission never dials loopback peers from a tracker: it announced first, \
                     our seeder learned its address from the tracker and dialed it"
                        .to_owned(),
                );
            }
            let started = Instant::now();
            let mut seed = ours(
                ctx,
                "webtorrent-seed",
                &dir,
                &[
                    "seed".as_ref(),
                    torrent.as_os_str(),
                    "-d".as_ref(),
                    fx.data.as_os_str(),
                ],
                &peers,
                logs,
            )?;
            let addr = listening_addr(&mut seed, deadline)?;
            if direct && spec.client.can_dial() {
                them.dial(addr)?;
            }
            let finished = wait_until(deadline, &format!("{client} to finish downloading"), || {
                if let Some(status) = seed.exited()? {
                    bail!("webtorrent seed exited ({status})");
                }
                them.complete()
            });
            if let Err(e) = finished {
                let progress = them.progress();
                if progress.is_empty() {
                    return Err(e);
                }
                bail!("{e:#} ({client}: {progress})");
            }
            notes.push(rate_note(
                &format!("webtorrent -> {client}"),
                started.elapsed(),
            ));
            notes.extend(compare(fx, &out, false)?);
            // Ctrl-C stops the seeder cleanly.
            seed.stop_clean("webtorrent seed")?;
        }
    }
    Ok(notes)
}

/// Compares the downloaded `save/TREE_NAME` with the source tree, file by file. `ours`: our
/// client downloaded, so an empty file must exist too and no other file may; the other
/// clients' habits there are noted instead. Their files may still be settling (write caches
/// flushed after they report completion), so a mismatch is retried for a few seconds.
fn compare(fx: &Fixture, save: &Path, ours: bool) -> Result<Vec<String>> {
    let settle = Instant::now() + Duration::from_secs(if ours { 0 } else { 5 });
    loop {
        match compare_once(fx, save, ours) {
            Ok(notes) => return Ok(notes),
            Err(e) if Instant::now() >= settle => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn compare_once(fx: &Fixture, save: &Path, ours: bool) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let got_root = save.join(TREE_NAME);
    let want_root = fx.data.join(TREE_NAME);
    for (rel, len) in TREE {
        let got_path = got_root.join(rel);
        if *len == 0 && !ours && !got_path.exists() {
            notes.push(format!("the empty file {rel} was not created"));
            continue;
        }
        let got = std::fs::read(&got_path)
            .with_context(|| format!("cannot read the downloaded {}", got_path.display()))?;
        let want = std::fs::read(want_root.join(rel))?;
        ensure!(
            got.len() == want.len(),
            "{rel}: {} bytes downloaded, {} expected",
            got.len(),
            want.len()
        );
        if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
            bail!("{rel}: differs from the source from byte {at} on");
        }
    }
    let extra: Vec<String> = peers::list_files(&got_root)?
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !TREE.iter().any(|(rel, _)| rel == p))
        .collect();
    if !extra.is_empty() {
        ensure!(!ours, "unexpected files in the download: {extra:?}");
        notes.push(format!("extra files in the download: {extra:?}"));
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_follow_the_trees_py_generator() {
        // Bytes printed by interop/python/trees.py's `content(path, length)`.
        assert_eq!(
            contents("a.bin", 12),
            [150, 114, 161, 107, 14, 80, 37, 117, 243, 85, 158, 26]
        );
        assert_eq!(contents("docs/deep/nested/big.bin", 4), [124, 189, 18, 33]);
        assert_eq!(contents("a.bin", 5), contents("a.bin", 12)[..5]);
        assert!(contents("empty.txt", 0).is_empty());
    }

    #[test]
    fn names_follow_the_pattern() {
        let spec = Spec {
            client: Client::Aria2,
            role: Role::Leech,
            discovery: Discovery::Udp,
            meta: Meta::V1,
            magnet: false,
        };
        assert_eq!(spec.name(), "swarm-aria2-leeches-udp");
        let spec = Spec {
            client: Client::Libtorrent,
            role: Role::Seed,
            discovery: Discovery::Direct,
            meta: Meta::Hybrid,
            magnet: false,
        };
        assert_eq!(spec.name(), "swarm-libtorrent-seeds-direct-hybrid");
        let spec = Spec {
            discovery: Discovery::Udp,
            meta: Meta::V1,
            magnet: true,
            ..spec
        };
        assert_eq!(spec.name(), "swarm-libtorrent-seeds-udp-magnet");
        let names: Vec<String> = scenarios().into_iter().map(|s| s.name).collect();
        assert_eq!(names.len(), 32);
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn tree_has_the_promised_shapes() {
        assert!(TREE.iter().any(|(_, len)| *len == 0));
        assert!(TREE.iter().any(|(_, len)| !len.is_multiple_of(16_384)));
        assert!(TREE.iter().any(|(p, _)| p.matches('/').count() >= 2));
        let total: u64 = TREE.iter().map(|(_, len)| len).sum();
        assert!((20 * MIB..28 * MIB).contains(&total));
    }
}
