//! `magnet-*` and `pex-*` scenarios of `cargo xtask interop`: magnet links (BEP 9
//! `ut_metadata`) and peer exchange (BEP 11 `ut_pex`) against qBittorrent-nox and libtorrent 2.0
//! (python), with the swarm scenarios' drivers, processes and tree.
//!
//! - `magnet-<client>-seeds[-hybrid]`: the other client seeds; our `webtorrent download` gets
//!   only a bare magnet link (`xt` plus `x.pe=` the seeder's address), so the seeder is the only
//!   source of the metadata.
//! - `magnet-<client>-leeches[-hybrid]`: our `webtorrent seed` serves; the other client gets only the
//!   magnet link and our address, and must fetch the metadata from us.
//! - `pex-libtorrent`: a libtorrent seeder S, our downloader A told only S's address, and a
//!   libtorrent leecher L connected only to S with `ut_pex` off (so it never learns of A). A's
//!   only way to learn L's address is a `ut_pex` message from S; A's debug log must show an
//!   outgoing connection to L's listening address.
//! - `pex-private-libtorrent`: the same three peers on a private torrent (BEP 27): A must not
//!   offer `ut_pex` to S (libtorrent's log of A's extension handshake), and never connects to L.
//! - `magnet-v2-<client>-seeds` / `magnet-v2-<client>-leeches`: the same with a v2-only
//!   magnet link (`xt=urn:btmh:` alone): after the info dictionary, the downloader fetches each
//!   file's piece layer with BEP 52 hash requests (qBittorrent 4.5 runs on libtorrent 2.0).
//! - `magnet-select-<client>-seeds`: the other client seeds the v1 torrent; our `webtorrent download`
//!   gets the bare magnet link with `so=` naming two files (whose pieces are shared with files
//!   not chosen). The chosen files must be whole, the others absent, and a second download of
//!   the .torrent with `--select` overriding nothing (every file) must complete from the same
//!   folder, so the bytes kept aside are found again.
//!
//! The tree (the swarm scenarios' one) and the torrents are made once per run in their own
//! folder of the interop work folder.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::interop::{Ctx, Scenario};
use crate::swarm::peers::{self, Remote};
use crate::swarm::procs::{Logs, Proc, wait_until};
use crate::swarm::{PIECE_LENGTH, TREE, TREE_NAME, contents, listening_addr, rate_note};

/// Time limit of one scenario.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The `pex-*` scenarios' limit: libtorrent sends its first `ut_pex` message about a second
/// after the extension handshake, so these take about as long as the rate-limited download.
const PEX_TIMEOUT: Duration = Duration::from_secs(60);

/// Our downloader's rate limit in the `pex-*` scenarios: slow enough (about 10 s for the
/// tree) that it still runs when the first `ut_pex` message comes.
const PEX_DOWNLOAD_LIMIT: &str = "2MiB";

/// The libtorrent leecher's rate limit (bytes/s) in the `pex-*` scenarios: it must not finish
/// (two seeds drop their connection) before our downloader hears of it.
const PEX_LEECHER_LIMIT: &str = "500000";

/// What the CLI prints when it starts from a magnet link.
const FETCHING: &str = "fetching the metadata from peers";

/// A torrent of the fixture.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    V1,
    Hybrid,
    V2,
    /// v1, private (BEP 27).
    Private,
}

impl Kind {
    const ALL: [Self; 4] = [Self::V1, Self::Hybrid, Self::V2, Self::Private];

    fn name(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::Hybrid => "hybrid",
            Self::V2 => "v2",
            Self::Private => "private",
        }
    }
}

/// One torrent of the fixture.
struct Made {
    kind: Kind,
    path: PathBuf,
    /// The v1 info-hash (hex), if it has one.
    v1: Option<String>,
    /// The v2 info-hash (hex), if it has one.
    v2: Option<String>,
}

impl Made {
    /// The magnet link naming only its info-hashes (`xt`), plus `x.pe=peer` if given.
    fn magnet(&self, peer: Option<SocketAddr>) -> String {
        let mut xts = Vec::new();
        if let Some(h) = &self.v1 {
            xts.push(format!("xt=urn:btih:{h}"));
        }
        if let Some(h) = &self.v2 {
            // Multihash: 0x12 (SHA-256), 0x20 (32 bytes).
            xts.push(format!("xt=urn:btmh:1220{h}"));
        }
        if let Some(p) = peer {
            xts.push(format!("x.pe={p}"));
        }
        format!("magnet:?{}", xts.join("&"))
    }
}

/// The tree and its torrents, made once per run.
struct Fixture {
    /// The folder holding `TREE_NAME/` (the seeders' data folder).
    data: PathBuf,
    torrents: Vec<Made>,
}

impl Fixture {
    fn get(&self, kind: Kind) -> Result<&Made> {
        self.torrents
            .iter()
            .find(|m| m.kind == kind)
            .with_context(|| format!("no {} torrent", kind.name()))
    }
}

type Shared = Rc<RefCell<Option<Rc<Fixture>>>>;

type Run = fn(&Ctx, &Fixture, &Path, &Logs) -> Result<Vec<String>>;

/// Every scenario of this module, for `interop::scenarios`.
pub(crate) fn scenarios() -> Vec<Scenario> {
    let shared: Shared = Rc::default();
    let list: [(&str, Duration, Run); 15] = [
        ("magnet-qbittorrent-seeds", TIMEOUT, |c, f, d, l| {
            their_seed(c, f, d, l, Other::Qbittorrent, Kind::V1)
        }),
        ("magnet-qbittorrent-seeds-hybrid", TIMEOUT, |c, f, d, l| {
            their_seed(c, f, d, l, Other::Qbittorrent, Kind::Hybrid)
        }),
        ("magnet-libtorrent-seeds", TIMEOUT, |c, f, d, l| {
            their_seed(c, f, d, l, Other::Libtorrent, Kind::V1)
        }),
        ("magnet-libtorrent-seeds-hybrid", TIMEOUT, |c, f, d, l| {
            their_seed(c, f, d, l, Other::Libtorrent, Kind::Hybrid)
        }),
        ("magnet-libtorrent-leeches", TIMEOUT, |c, f, d, l| {
            their_leech(c, f, d, l, Other::Libtorrent, Kind::V1)
        }),
        ("magnet-libtorrent-leeches-hybrid", TIMEOUT, |c, f, d, l| {
            their_leech(c, f, d, l, Other::Libtorrent, Kind::Hybrid)
        }),
        ("magnet-qbittorrent-leeches", TIMEOUT, |c, f, d, l| {
            their_leech(c, f, d, l, Other::Qbittorrent, Kind::V1)
        }),
        ("magnet-v2-libtorrent-seeds", TIMEOUT, |c, f, d, l| {
            their_seed(c, f, d, l, Other::Libtorrent, Kind::V2)
        }),
        ("magnet-v2-libtorrent-leeches", TIMEOUT, |c, f, d, l| {
            their_leech(c, f, d, l, Other::Libtorrent, Kind::V2)
        }),
        ("magnet-v2-qbittorrent-seeds", TIMEOUT, |c, f, d, l| {
            their_seed(c, f, d, l, Other::Qbittorrent, Kind::V2)
        }),
        ("magnet-v2-qbittorrent-leeches", TIMEOUT, |c, f, d, l| {
            their_leech(c, f, d, l, Other::Qbittorrent, Kind::V2)
        }),
        ("pex-libtorrent", PEX_TIMEOUT, |c, f, d, l| {
            pex(c, f, d, l, false)
        }),
        ("pex-private-libtorrent", PEX_TIMEOUT, |c, f, d, l| {
            pex(c, f, d, l, true)
        }),
        ("magnet-select-libtorrent-seeds", TIMEOUT, |c, f, d, l| {
            select(c, f, d, l, Other::Libtorrent)
        }),
        ("magnet-select-qbittorrent-seeds", TIMEOUT, |c, f, d, l| {
            select(c, f, d, l, Other::Qbittorrent)
        }),
    ];
    list.into_iter()
        .map(|(name, timeout, run)| {
            let shared = Rc::clone(&shared);
            Scenario {
                name: name.to_owned(),
                timeout,
                run: Box::new(move |ctx| {
                    let fixture = fixture(ctx, &shared)?;
                    let dir = ctx.work.join("swarm4").join(name);
                    if dir.exists() {
                        std::fs::remove_dir_all(&dir)?;
                    }
                    std::fs::create_dir_all(&dir)?;
                    let logs = Logs::default();
                    let r = run(ctx, &fixture, &dir, &logs);
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
    let f = Rc::new(prepare(ctx).context("preparing the magnet tree and torrents")?);
    *shared.borrow_mut() = Some(Rc::clone(&f));
    Ok(f)
}

fn prepare(ctx: &Ctx) -> Result<Fixture> {
    let base = ctx.work.join("swarm4");
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
    let dir = base.join("torrents");
    std::fs::create_dir_all(&dir)?;
    let mut torrents = Vec::new();
    for kind in Kind::ALL {
        let path = dir.join(format!("{}.torrent", kind.name()));
        let version = match kind {
            Kind::V1 | Kind::Private => "v1",
            Kind::Hybrid => "hybrid",
            Kind::V2 => "v2",
        };
        let mut c = ctx.webtorrent();
        c.arg("create").arg(&tree).arg("-o").arg(&path).args([
            "--meta-version",
            version,
            "--piece-length",
            PIECE_LENGTH,
            "--no-date",
            // A retry after a failed preparation overwrites what it left.
            "--force",
        ]);
        if kind == Kind::Private {
            c.arg("--private");
        }
        ctx.capture(&mut c)?.ok("webtorrent create")?;
        let info = ctx.info(&path)?;
        let hash = |key: &str| info[key].as_str().map(str::to_owned);
        let made = Made {
            kind,
            v1: hash("info_hash_v1"),
            v2: hash("info_hash_v2"),
            path,
        };
        ensure!(
            made.v1.is_some() == (kind != Kind::V2)
                && made.v2.is_some() == matches!(kind, Kind::Hybrid | Kind::V2),
            "the {} torrent has unexpected info-hashes: v1 {:?}, v2 {:?}",
            kind.name(),
            made.v1,
            made.v2
        );
        ensure!(
            (info["private"] == true) == (kind == Kind::Private),
            "the {} torrent's private flag is {}",
            kind.name(),
            info["private"]
        );
        torrents.push(made);
    }
    Ok(Fixture { data, torrents })
}

/// The other clients of these scenarios.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Other {
    Qbittorrent,
    Libtorrent,
}

impl Other {
    fn name(self) -> &'static str {
        match self {
            Self::Qbittorrent => "qBittorrent",
            Self::Libtorrent => "libtorrent",
        }
    }
}

/// `webtorrent <-v..> <args> --listen 127.0.0.1:0`.
fn ours(
    ctx: &Ctx,
    label: &str,
    verbose: &str,
    args: &[&OsStr],
    dir: &Path,
    logs: &Logs,
) -> Result<Proc> {
    let mut c = ctx.webtorrent();
    c.arg(verbose).args(args).args(["--listen", "127.0.0.1:0"]);
    Proc::spawn(label, &mut c, dir, false, logs)
}

/// Waits for our `download` to exit 0.
fn finish(p: &mut Proc, deadline: Option<Instant>) -> Result<()> {
    wait_until(deadline, "webtorrent download to finish", || {
        match p.exited()? {
            Some(status) if status.success() => Ok(true),
            Some(status) => bail!("webtorrent download exited ({status})"),
            None => Ok(false),
        }
    })
}

/// Waits for `them` to have every piece; on a timeout, says how far it got.
fn wait_complete(
    them: &mut dyn Remote,
    who: &str,
    what: &str,
    deadline: Option<Instant>,
    mut check: impl FnMut() -> Result<()>,
) -> Result<()> {
    let r = wait_until(deadline, &format!("{who} to {what}"), || {
        check()?;
        them.complete()
    });
    if let Err(e) = r {
        let progress = them.progress();
        if progress.is_empty() {
            return Err(e);
        }
        bail!("{e:#} ({who}: {progress})");
    }
    Ok(())
}

/// The other client seeds from the .torrent; we download from the bare magnet link.
fn their_seed(
    ctx: &Ctx,
    fx: &Fixture,
    dir: &Path,
    logs: &Logs,
    other: Other,
    kind: Kind,
) -> Result<Vec<String>> {
    let deadline = ctx.deadline.get();
    let made = fx.get(kind)?;
    let client = match other {
        Other::Qbittorrent => peers::Client::Qbittorrent,
        Other::Libtorrent => peers::Client::Libtorrent,
    };
    let job = peers::Job {
        torrent: &made.path,
        save: &fx.data,
        role: peers::Role::Seed,
        udp_tracker: false,
    };
    let mut them = peers::start(client, &job, dir, logs, deadline)?;
    wait_complete(&mut *them, other.name(), "be seeding", deadline, || Ok(()))?;
    let magnet = made.magnet(Some(them.addr()));
    let out = dir.join("ours");
    let started = Instant::now();
    let mut download = ours(
        ctx,
        "webtorrent-download",
        "-v",
        &[
            "download".as_ref(),
            magnet.as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
        dir,
        logs,
    )?;
    finish(&mut download, deadline)?;
    let elapsed = started.elapsed();
    ensure!(
        download.stderr().contains(FETCHING),
        "webtorrent download did not say `{FETCHING}`"
    );
    let mut notes = vec![
        format!("magnet: {magnet}"),
        rate_note(
            &format!("{} -> webtorrent (metadata, then data)", other.name()),
            elapsed,
        ),
    ];
    notes.extend(compare(&out, true)?);
    Ok(notes)
}

/// We seed from the .torrent; the other client gets the bare magnet link, then our address.
fn their_leech(
    ctx: &Ctx,
    fx: &Fixture,
    dir: &Path,
    logs: &Logs,
    other: Other,
    kind: Kind,
) -> Result<Vec<String>> {
    let deadline = ctx.deadline.get();
    let made = fx.get(kind)?;
    let mut seed = ours(
        ctx,
        "webtorrent-seed",
        "-v",
        &[
            "seed".as_ref(),
            made.path.as_os_str(),
            "-d".as_ref(),
            fx.data.as_os_str(),
        ],
        dir,
        logs,
    )?;
    let addr = listening_addr(&mut seed, deadline)?;
    let magnet = made.magnet(None);
    let out = dir.join("theirs");
    std::fs::create_dir_all(&out)?;
    let started = Instant::now();
    let mut them = match other {
        Other::Qbittorrent => peers::qbittorrent_magnet(&magnet, &out, dir, logs, deadline)?,
        Other::Libtorrent => peers::libtorrent(
            &["--magnet".as_ref(), magnet.as_ref()],
            &out,
            dir,
            logs,
            deadline,
        )?,
    };
    them.dial(addr)?;
    wait_complete(
        &mut *them,
        other.name(),
        "fetch the metadata and the data from us",
        deadline,
        || match seed.exited()? {
            Some(status) => bail!("webtorrent seed exited ({status})"),
            None => Ok(()),
        },
    )?;
    let mut notes = vec![
        format!("magnet: {magnet}, then our address {addr}"),
        rate_note(
            &format!("webtorrent -> {} (metadata, then data)", other.name()),
            started.elapsed(),
        ),
    ];
    notes.extend(compare(&out, false)?);
    seed.stop_clean("webtorrent seed")?;
    Ok(notes)
}

/// The files of [`TREE`] the `select-*` scenarios choose, by index in the v1 torrent (the
/// tree's order): `docs/readme.txt` (which shares a piece with the files around it) and
/// `media/clip.dat`.
const SELECTED: [usize; 2] = [2, 4];

/// The other client seeds; we download two files by a magnet link with `so=`, then the rest.
fn select(ctx: &Ctx, fx: &Fixture, dir: &Path, logs: &Logs, other: Other) -> Result<Vec<String>> {
    let deadline = ctx.deadline.get();
    let made = fx.get(Kind::V1)?;
    let info = ctx.info(&made.path)?;
    let listed: Vec<&str> = info["files"]
        .as_array()
        .context("no file list")?
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    let expected: Vec<String> = TREE
        .iter()
        .map(|(rel, _)| format!("{TREE_NAME}/{rel}"))
        .collect();
    ensure!(
        listed == expected,
        "the v1 torrent lists its files in another order: {listed:?}"
    );
    let client = match other {
        Other::Qbittorrent => peers::Client::Qbittorrent,
        Other::Libtorrent => peers::Client::Libtorrent,
    };
    let job = peers::Job {
        torrent: &made.path,
        save: &fx.data,
        role: peers::Role::Seed,
        udp_tracker: false,
    };
    let mut them = peers::start(client, &job, dir, logs, deadline)?;
    wait_complete(&mut *them, other.name(), "be seeding", deadline, || Ok(()))?;
    let so = SELECTED.map(|i| i.to_string()).join(",");
    let magnet = format!("{}&so={so}", made.magnet(Some(them.addr())));
    let out = dir.join("ours");
    let started = Instant::now();
    let mut download = ours(
        ctx,
        "webtorrent-download-select",
        "-v",
        &[
            "download".as_ref(),
            magnet.as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
        dir,
        logs,
    )?;
    finish(&mut download, deadline)?;
    let elapsed = started.elapsed();
    ensure!(
        download.stderr().contains("selected 2 of 6 files:"),
        "webtorrent download did not list the 2 chosen files"
    );
    let root = out.join(TREE_NAME);
    for (i, (rel, len)) in TREE.iter().enumerate() {
        let path = root.join(rel);
        if SELECTED.contains(&i) {
            let got = std::fs::read(&path)
                .with_context(|| format!("cannot read the chosen {}", path.display()))?;
            ensure!(
                got == contents(rel, *len),
                "{rel}: the chosen file differs from the source"
            );
        } else {
            ensure!(!path.exists(), "{rel} was not chosen, yet it is on disk");
        }
    }
    let mut notes = vec![
        format!("magnet: {magnet}"),
        format!(
            "{} -> webtorrent: metadata, then 2 of 6 files ({:.1} MiB) in {:.1}s",
            other.name(),
            SELECTED.iter().map(|&i| TREE[i].1).sum::<u64>() as f64 / (1024.0 * 1024.0),
            elapsed.as_secs_f64()
        ),
    ];
    // Every file now, from the same folder: the pieces verified before (their bytes of
    // files not chosen kept aside) are found again by the recheck.
    let mut rest = ours(
        ctx,
        "webtorrent-download-rest",
        "-v",
        &[
            "download".as_ref(),
            made.path.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--peer".as_ref(),
            them.addr().to_string().as_ref(),
        ],
        dir,
        logs,
    )?;
    finish(&mut rest, deadline)?;
    notes.extend(compare(&out, true)?);
    let parts: Vec<_> = std::fs::read_dir(&out)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parts"))
        .collect();
    ensure!(
        parts.is_empty(),
        "part files left after the whole download: {parts:?}"
    );
    Ok(notes)
}

/// The number after ` <key>=` in a status line of lt_swarm.py.
fn status_field(status: &str, key: &str) -> Option<u64> {
    let rest = status.split_once(&format!(" {key}="))?.1;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Whether our `-vv` log shows an outgoing connection to `addr`.
fn dialed(log: &str, addr: SocketAddr) -> bool {
    let field = format!("addr={addr} ");
    log.lines()
        .any(|l| l.contains("peer connected") && l.contains(&field) && l.contains("outbound=true"))
}

/// Our extension handshake as libtorrent's peer log (`lt_swarm.py --peer-log`) shows it: the
/// dictionary after `<== EXTENDED_HANDSHAKE` on the line naming our client.
fn our_handshake(lt_log: &str) -> Option<&str> {
    lt_log.lines().find_map(|l| {
        let (_, dict) = l.split_once("<== EXTENDED_HANDSHAKE ")?;
        dict.contains("'v': 'webtorrent-rs").then_some(dict)
    })
}

/// Whether a logged extension handshake gives `ut_pex` a non-zero id (0 disables it).
fn offers_pex(handshake: &str) -> bool {
    handshake
        .split_once("'ut_pex': ")
        .and_then(|(_, rest)| {
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse::<u32>().ok()
        })
        .is_some_and(|id| id != 0)
}

/// Three peers: libtorrent seeder S, libtorrent leecher L (no `ut_pex`, connected only to S),
/// our downloader A told only S's address. On a public torrent A must reach L (which only S's
/// `ut_pex` can have named); on a private one A must not offer `ut_pex` and never reach L.
fn pex(ctx: &Ctx, fx: &Fixture, dir: &Path, logs: &Logs, private: bool) -> Result<Vec<String>> {
    let deadline = ctx.deadline.get();
    let made = fx.get(if private { Kind::Private } else { Kind::V1 })?;
    let torrent = made.path.as_os_str();
    let s_dir = dir.join("S");
    let l_dir = dir.join("L");
    let l_save = l_dir.join("data");
    std::fs::create_dir_all(&l_save)?;
    // S logs the extension handshakes and PEX messages it receives.
    let mut s = peers::libtorrent(
        &["--torrent".as_ref(), torrent, "--peer-log".as_ref()],
        &fx.data,
        &s_dir,
        logs,
        deadline,
    )?;
    let mut l = peers::libtorrent(
        &[
            "--torrent".as_ref(),
            torrent,
            "--no-pex".as_ref(),
            "--download-limit".as_ref(),
            PEX_LEECHER_LIMIT.as_ref(),
        ],
        &l_save,
        &l_dir,
        logs,
        deadline,
    )?;
    wait_complete(&mut *s, "libtorrent S", "be seeding", deadline, || Ok(()))?;
    let (s_addr, l_addr) = (s.addr(), l.addr());
    l.dial(s_addr)?;
    // S names in its ut_pex messages only peers past their handshakes whose listening port
    // it knows (from their extension handshake): L is, once it downloads from S.
    wait_until(deadline, "libtorrent L to download from S", || {
        Ok(status_field(&l.progress(), "down").unwrap_or(0) > 0)
    })?;
    let out = dir.join("ours");
    let started = Instant::now();
    let mut a = ours(
        ctx,
        "webtorrent-download",
        "-vv",
        &[
            "download".as_ref(),
            torrent,
            "-o".as_ref(),
            out.as_os_str(),
            "--peer".as_ref(),
            s_addr.to_string().as_ref(),
            "--download-limit".as_ref(),
            PEX_DOWNLOAD_LIMIT.as_ref(),
        ],
        dir,
        logs,
    )?;
    finish(&mut a, deadline)?;
    let elapsed = started.elapsed();
    let log = a.stderr();
    ensure!(
        dialed(&log, s_addr),
        "our client's log shows no outgoing connection to S ({s_addr})"
    );
    let mut notes = vec![format!(
        "S {s_addr}, L {l_addr}; {}",
        rate_note("S (+L) -> webtorrent", elapsed)
    )];
    let s_log = std::fs::read_to_string(s_dir.join("libtorrent/libtorrent.err"))
        .context("cannot read libtorrent S's log")?;
    if private {
        ensure!(
            !dialed(&log, l_addr),
            "on a private torrent our client connected to L ({l_addr}), an address only \
             ut_pex could have given"
        );
        let handshake = our_handshake(&s_log)
            .context("libtorrent S logged no extension handshake from our client")?;
        ensure!(
            !offers_pex(handshake),
            "on a private torrent our extension handshake offers ut_pex: {handshake}"
        );
        notes.push(format!(
            "libtorrent S got our extension handshake without ut_pex: {handshake}"
        ));
    } else {
        ensure!(
            dialed(&log, l_addr),
            "our client never connected to L ({l_addr}): it did not use S's ut_pex message"
        );
        notes.push(format!(
            "our client connected to L ({l_addr}), named only by S's ut_pex message"
        ));
        // L has no ut_pex: a PEX message S received came from our client.
        let sent = s_log
            .lines()
            .find_map(|l| l.split_once("<== PEX ").map(|(_, m)| m.trim()))
            .context("libtorrent S received no ut_pex message from our client")?;
        notes.push(format!("libtorrent S received our ut_pex message: {sent}"));
    }
    notes.extend(compare(&out, true)?);
    Ok(notes)
}

/// Compares `save/TREE_NAME` with the tree, file by file. `ours`: our client downloaded, so
/// the empty file must exist and no other file may; the other clients' habits there are noted
/// instead, and their files may still be settling for a few seconds after they report
/// completion.
fn compare(save: &Path, ours: bool) -> Result<Vec<String>> {
    let settle = Instant::now() + Duration::from_secs(if ours { 0 } else { 5 });
    loop {
        match compare_once(save, ours) {
            Ok(notes) => return Ok(notes),
            Err(e) if Instant::now() >= settle => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn compare_once(save: &Path, ours: bool) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let root = save.join(TREE_NAME);
    for (rel, len) in TREE {
        let path = root.join(rel);
        if *len == 0 && !ours && !path.exists() {
            notes.push(format!("the empty file {rel} was not created"));
            continue;
        }
        let got = std::fs::read(&path)
            .with_context(|| format!("cannot read the downloaded {}", path.display()))?;
        let want = contents(rel, *len);
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
    let extra: Vec<String> = peers::list_files(&root)?
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

    fn made(kind: Kind, v1: Option<&str>, v2: Option<&str>) -> Made {
        Made {
            kind,
            path: PathBuf::new(),
            v1: v1.map(str::to_owned),
            v2: v2.map(str::to_owned),
        }
    }

    #[test]
    fn magnets_name_only_the_hashes_and_the_peer() {
        let peer = SocketAddr::from(([127, 0, 0, 1], 6881));
        let v1 = made(Kind::V1, Some("ab"), None);
        assert_eq!(v1.magnet(None), "magnet:?xt=urn:btih:ab");
        assert_eq!(
            v1.magnet(Some(peer)),
            "magnet:?xt=urn:btih:ab&x.pe=127.0.0.1:6881"
        );
        let hybrid = made(Kind::Hybrid, Some("ab"), Some("cd"));
        assert_eq!(
            hybrid.magnet(None),
            "magnet:?xt=urn:btih:ab&xt=urn:btmh:1220cd"
        );
        let v2 = made(Kind::V2, None, Some("cd"));
        assert_eq!(v2.magnet(None), "magnet:?xt=urn:btmh:1220cd");
    }

    #[test]
    fn our_debug_log_is_read_for_outgoing_connections() {
        let log = "2026-11-21T17:16:01Z DEBUG webtorrent::session::torrent: peer connected \
                   addr=127.0.0.1:45385 peer=-LT2080-x outbound=true\n\
                   2026-11-21T17:16:02Z DEBUG webtorrent::session::torrent: peer connected \
                   addr=127.0.0.1:4538 peer=-LT2080-y outbound=false\n";
        assert!(dialed(log, SocketAddr::from(([127, 0, 0, 1], 45385))));
        // A prefix of another port, and an incoming connection, do not count.
        assert!(!dialed(log, SocketAddr::from(([127, 0, 0, 1], 4538))));
        assert!(!dialed(log, SocketAddr::from(([127, 0, 0, 1], 4539))));
    }

    #[test]
    fn our_handshake_is_found_in_libtorrents_peer_log() {
        let log = "1.0 peer_log: t peer [ 127.0.0.1:1 ] ==> EXTENDED_HANDSHAKE [ { 'm': { \
                   'ut_pex': 1 }, 'v': 'libtorrent/2.0.8.0' } ]\n\
                   1.1 peer_log: t peer [ 127.0.0.1:1 ] <== EXTENDED_HANDSHAKE [ { 'm': { \
                   'lt_donthave': 3, 'ut_metadata': 1, 'ut_pex': 2 }, 'p': 1, \
                   'v': 'webtorrent-rs 0.1.0' } ]\n";
        let ours = our_handshake(log).expect("our line");
        assert!(ours.contains("'ut_metadata': 1"));
        assert!(offers_pex(ours));
        assert!(!offers_pex("{ 'm': { 'ut_metadata': 1, 'ut_pex': 0 } }"));
        assert!(!offers_pex("{ 'm': { 'ut_metadata': 1 } }"));
        assert_eq!(our_handshake("1.0 status: seeding peers=1"), None);
    }

    #[test]
    fn lt_status_lines_give_the_peer_count() {
        let line = "status: downloading progress=0.2455 peers=2 down=44 up=8";
        assert_eq!(status_field(line, "peers"), Some(2));
        assert_eq!(status_field(line, "down"), Some(44));
        assert_eq!(status_field(line, "up"), Some(8));
        assert_eq!(status_field("status: seeding peers=0", "peers"), Some(0));
        assert_eq!(status_field("", "down"), None);
    }

    #[test]
    fn names_are_unique_and_grouped() {
        let names: Vec<String> = scenarios().into_iter().map(|s| s.name).collect();
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("magnet-") || n.starts_with("pex-"))
        );
    }
}
