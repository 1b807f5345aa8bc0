//! `dht-*` scenarios of `cargo xtask interop`: torrents found through the DHT alone (a bare
//! magnet link, no tracker, no peer address), with libtorrent 2.0 on the other side.
//!
//! A libtorrent session with no torrent (`interop/python/lt_dht.py`) is the DHT's bootstrap
//! node; every other node bootstraps from it.
//!
//! - `dht-libtorrent-seeder`: libtorrent seeds and announces; `webtorrent download` of the
//!   bare magnet finds it through the DHT and downloads the file;
//! - `dht-libtorrent-leecher`: `webtorrent seed` announces; libtorrent, given the bare
//!   magnet, finds it through the DHT and downloads the file from it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::interop::{Ctx, Scenario};
use crate::setup::SYSTEM_PYTHON;
use crate::swarm::contents;
use crate::swarm::procs::{Logs, Proc, wait_until};
use crate::util::{self, root};

/// Time limit of one scenario.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The shared file.
const FILE: (&str, u64) = ("dht-shared.bin", 2 * 1024 * 1024 + 4_321);

#[derive(Clone, Copy)]
enum Kind {
    Seeder,
    Leecher,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Seeder => "dht-libtorrent-seeder",
            Self::Leecher => "dht-libtorrent-leecher",
        }
    }
}

/// Every DHT scenario, for `interop::scenarios`.
pub(crate) fn scenarios() -> Vec<Scenario> {
    [Kind::Seeder, Kind::Leecher]
        .into_iter()
        .map(|kind| Scenario {
            name: kind.name().to_owned(),
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

/// A libtorrent DHT session driven by JSON lines; `bootstrap` is `None` for the first one.
struct LtDht {
    proc: Proc,
    /// Replies already read from stdout.
    read: usize,
}

impl LtDht {
    fn start(label: &str, dir: &Path, bootstrap: Option<u16>, logs: &Logs) -> Result<(Self, u16)> {
        let mut c = util::cmd(SYSTEM_PYTHON, &[root().join("interop/python/lt_dht.py")]);
        c.env("PYTHONDONTWRITEBYTECODE", "1");
        if let Some(port) = bootstrap {
            c.arg(format!("127.0.0.1:{port}"));
        }
        let mut this = Self {
            proc: Proc::spawn(label, &mut c, dir, true, logs)?,
            read: 0,
        };
        let ready = this.next(Instant::now() + Duration::from_secs(20))?;
        let port = ready["port"]
            .as_u64()
            .context("no port in the ready line")?;
        Ok((this, u16::try_from(port)?))
    }

    /// The next JSON line on stdout.
    fn next(&mut self, deadline: Instant) -> Result<Value> {
        let mut line = None;
        wait_until(Some(deadline), "a reply from lt_dht.py", || {
            if let Some(status) = self.proc.exited()? {
                bail!("lt_dht.py exited ({status})");
            }
            line = self.proc.stdout().lines().nth(self.read).map(str::to_owned);
            Ok(line.is_some())
        })?;
        self.read += 1;
        let line = line.context("no line")?;
        serde_json::from_str(&line).with_context(|| format!("lt_dht.py printed `{line}`"))
    }

    fn call(&mut self, cmd: &Value, deadline: Instant) -> Result<Value> {
        self.proc.send_line(&cmd.to_string())?;
        let reply = self.next(deadline)?;
        ensure!(reply.get("error").is_none(), "lt_dht.py: {cmd} → {reply}");
        Ok(reply)
    }
}

fn run(ctx: &Ctx, kind: Kind, logs: &Logs) -> Result<Vec<String>> {
    let deadline = ctx
        .deadline
        .get()
        .unwrap_or_else(|| Instant::now() + TIMEOUT);
    let dir = ctx.work.join("dht").join(kind.name());
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir)?;
    let bytes = contents(FILE.0, FILE.1);
    std::fs::write(data_dir.join(FILE.0), &bytes)?;
    let torrent = dir.join("shared.torrent");
    ctx.capture(
        ctx.webtorrent()
            .arg("create")
            .arg(data_dir.join(FILE.0))
            .arg("-o")
            .arg(&torrent)
            .args(["--meta-version", "1", "--no-date"]),
    )?
    .ok("webtorrent create")?;
    let info = ctx.info(&torrent)?;
    let hash = info["info_hash_v1"]
        .as_str()
        .context("no info-hash in webtorrent info")?
        .to_owned();
    let magnet = format!("magnet:?xt=urn:btih:{hash}");

    let (_boot, boot_port) = LtDht::start("lt-bootstrap", &dir, None, logs)?;
    let bootstrap = format!("127.0.0.1:{boot_port}");
    let started = Instant::now();
    let note = match kind {
        Kind::Seeder => {
            let (mut seeder, _) = LtDht::start("lt-seeder", &dir, Some(boot_port), logs)?;
            let r = seeder.call(
                &serde_json::json!({"cmd": "seed", "torrent": torrent, "save": data_dir}),
                deadline,
            )?;
            ensure!(r["port"].is_u64(), "libtorrent does not seed: {r}");
            let out = dir.join("download");
            std::fs::create_dir_all(&out)?;
            let mut leech = Proc::spawn(
                "webtorrent-download",
                ctx.webtorrent()
                    .arg("-v")
                    .arg("download")
                    .arg(&magnet)
                    .arg("-o")
                    .arg(&out)
                    .args(["--listen", "127.0.0.1:0", "--dht-bootstrap", &bootstrap]),
                &dir,
                false,
                logs,
            )?;
            match leech.wait_for(deadline.saturating_duration_since(Instant::now()))? {
                Some(status) if status.success() => {}
                Some(status) => bail!("webtorrent download exited with {status}"),
                None => bail!("webtorrent download did not finish in time"),
            }
            let got = std::fs::read(out.join(FILE.0)).context("the downloaded file")?;
            ensure!(
                got == bytes,
                "the downloaded file differs from the original"
            );
            format!(
                "found libtorrent through the DHT and downloaded in {}",
                util::secs(started.elapsed())
            )
        }
        Kind::Leecher => {
            let mut seed = Proc::spawn(
                "webtorrent-seed",
                ctx.webtorrent()
                    .arg("-v")
                    .arg("seed")
                    .arg(&torrent)
                    .arg("-d")
                    .arg(&data_dir)
                    .args(["--listen", "127.0.0.1:0", "--dht-bootstrap", &bootstrap]),
                &dir,
                false,
                logs,
            )?;
            let ours = crate::swarm::listening_addr(&mut seed, Some(deadline))?;
            let (mut leecher, _) = LtDht::start("lt-leecher", &dir, Some(boot_port), logs)?;
            let out = dir.join("lt-download");
            std::fs::create_dir_all(&out)?;
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
                - 2.0;
            let r = leecher.call(
                &serde_json::json!({"cmd": "download", "magnet": magnet, "save": out, "timeout": left}),
                deadline,
            )?;
            ensure!(r["done"] == true, "libtorrent did not complete: {r}");
            let got = std::fs::read(out.join(FILE.0)).context("libtorrent's download")?;
            ensure!(
                got == bytes,
                "libtorrent's download differs from the original"
            );
            // Our seed is the only source there is; its log names the libtorrent peer.
            ensure!(
                seed.stderr().contains("peer=-LT"),
                "our seed at {ours} logged no libtorrent peer (libtorrent saw {})",
                r["peers"]
            );
            seed.stop_clean("webtorrent seed")?;
            format!(
                "libtorrent found us through the DHT and downloaded in {}",
                util::secs(started.elapsed())
            )
        }
    };
    Ok(vec![note])
}
