//! Drivers of the other clients: qBittorrent-nox (WebUI API), libtorrent 2.0 (python),
//! Transmission (transmission-daemon + transmission-remote) and aria2c.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::procs::{Logs, Proc, accepts, curl, free_port, wait_until};
use crate::setup::SYSTEM_PYTHON;
use crate::util::{self, capture, on_path, root};

/// The clients the swarm scenarios run against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Client {
    Qbittorrent,
    Libtorrent,
    Transmission,
    Aria2,
}

impl Client {
    pub(super) const ALL: [Self; 4] = [
        Self::Qbittorrent,
        Self::Libtorrent,
        Self::Transmission,
        Self::Aria2,
    ];

    /// The name used in scenario names.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Qbittorrent => "qbittorrent",
            Self::Libtorrent => "libtorrent",
            Self::Transmission => "transmission",
            Self::Aria2 => "aria2",
        }
    }

    /// Whether the client can be told to dial a peer address.
    pub(super) fn can_dial(self) -> bool {
        matches!(self, Self::Qbittorrent | Self::Libtorrent)
    }
}

/// What a peer of a scenario does with the torrent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    /// Serves the data already in its folder.
    Seed,
    /// Downloads into an empty folder.
    Leech,
}

/// One running client with one torrent.
pub(crate) trait Remote {
    /// Where it accepts peers.
    fn addr(&self) -> SocketAddr;
    /// Makes it dial `peer` (only for clients whose [`Client::can_dial`]).
    fn dial(&mut self, peer: SocketAddr) -> Result<()>;
    /// Whether it has every piece verified (a seeder: ready to serve).
    fn complete(&mut self) -> Result<bool>;
    /// Its progress in its own words, for a timeout message (empty if it cannot say).
    fn progress(&mut self) -> String;
}

/// What a client is started for.
pub(crate) struct Job<'a> {
    /// The .torrent file.
    pub(crate) torrent: &'a Path,
    /// Its data folder (the folder holding the torrent's folder).
    pub(crate) save: &'a Path,
    pub(crate) role: Role,
    /// Whether the torrent's tracker is a `udp://` one.
    pub(crate) udp_tracker: bool,
}

/// Starts `client` on `job`; its config, logs and state go in `dir/<client>`.
pub(crate) fn start(
    client: Client,
    job: &Job<'_>,
    dir: &Path,
    logs: &Logs,
    deadline: Option<Instant>,
) -> Result<Box<dyn Remote>> {
    let program = match client {
        Client::Qbittorrent => "qbittorrent-nox",
        Client::Libtorrent => SYSTEM_PYTHON,
        Client::Transmission => "transmission-daemon",
        Client::Aria2 => "aria2c",
    };
    ensure!(
        Path::new(program).is_file() || on_path(program),
        "{program} is missing: run `cargo xtask ci --only setup`"
    );
    let dir = dir.join(client.name());
    std::fs::create_dir_all(&dir)?;
    let (torrent, save, role) = (job.torrent, job.save, job.role);
    Ok(match client {
        Client::Qbittorrent => Box::new(Qbittorrent::start(
            &dir,
            ["-F", &format!("torrents=@{}", torrent.display())],
            save,
            role,
            logs,
            deadline,
        )?),
        Client::Libtorrent => Box::new(Libtorrent::start(
            &dir,
            &["--torrent".as_ref(), torrent.as_os_str()],
            save,
            logs,
            deadline,
        )?),
        Client::Transmission => Box::new(Transmission::start(&dir, torrent, save, logs, deadline)?),
        Client::Aria2 => Box::new(Aria2::start(&dir, job, logs)?),
    })
}

/// qBittorrent-nox downloading a magnet link (added through the WebUI `urls=` field) into
/// `save`; its config, logs and state go in `dir/qbittorrent`.
pub(crate) fn qbittorrent_magnet(
    magnet: &str,
    save: &Path,
    dir: &Path,
    logs: &Logs,
    deadline: Option<Instant>,
) -> Result<Box<dyn Remote>> {
    ensure!(
        on_path("qbittorrent-nox"),
        "qbittorrent-nox is missing: run `cargo xtask ci --only setup`"
    );
    let dir = dir.join(Client::Qbittorrent.name());
    std::fs::create_dir_all(&dir)?;
    let field = format!("urls={magnet}");
    Ok(Box::new(Qbittorrent::start(
        &dir,
        ["--form-string", &field],
        save,
        Role::Leech,
        logs,
        deadline,
    )?))
}

/// libtorrent 2.0 (interop/swarm/lt_swarm.py) with `args` (`--torrent FILE` or `--magnet URI`,
/// plus options such as `--no-pex`), its data in `save`; its logs go in `dir/libtorrent`.
pub(crate) fn libtorrent(
    args: &[&OsStr],
    save: &Path,
    dir: &Path,
    logs: &Logs,
    deadline: Option<Instant>,
) -> Result<Box<dyn Remote>> {
    ensure!(
        Path::new(SYSTEM_PYTHON).is_file(),
        "{SYSTEM_PYTHON} is missing: run `cargo xtask ci --only setup`"
    );
    let dir = dir.join(Client::Libtorrent.name());
    std::fs::create_dir_all(&dir)?;
    Ok(Box::new(Libtorrent::start(
        &dir, args, save, logs, deadline,
    )?))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// qBittorrent-nox with its own profile folder, driven through the WebUI API.
struct Qbittorrent {
    proc: Proc,
    api: String,
    port: u16,
    hash: String,
}

impl Qbittorrent {
    /// `source`: the curl form option naming the torrent (`-F torrents=@FILE` or
    /// `--form-string urls=MAGNET`).
    fn start(
        dir: &Path,
        source: [&str; 2],
        save: &Path,
        role: Role,
        logs: &Logs,
        deadline: Option<Instant>,
    ) -> Result<Self> {
        let port = free_port(false)?;
        let webui = free_port(false)?;
        let config = dir.join("profile/qBittorrent/config");
        std::fs::create_dir_all(&config)?;
        // Loopback only, no discovery but the torrent's trackers, no limits.
        let conf = format!(
            "[LegalNotice]\nAccepted=true\n\n\
             [BitTorrent]\n\
             Session\\Port={port}\n\
             Session\\Interface=lo\n\
             Session\\InterfaceName=lo\n\
             Session\\InterfaceAddress=127.0.0.1\n\
             Session\\DHTEnabled=false\n\
             Session\\LSDEnabled=false\n\
             Session\\PeXEnabled=false\n\
             Session\\BTProtocol=TCP\n\
             Session\\MultiConnectionsPerIp=true\n\
             Session\\QueueingSystemEnabled=false\n\
             Session\\SSRFMitigation=false\n\
             Session\\AnnounceToAllTrackers=true\n\
             Session\\AnnounceToAllTiers=true\n\
             Session\\DefaultSavePath={save}\n\n\
             [Network]\nPortForwardingEnabled=false\n\n\
             [Preferences]\n\
             Connection\\UPnP=false\n\
             WebUI\\Address=127.0.0.1\n\
             WebUI\\Port={webui}\n\
             WebUI\\LocalHostAuth=false\n\
             WebUI\\CSRFProtection=false\n\
             WebUI\\HostHeaderValidation=false\n\
             WebUI\\ClickjackingProtection=false\n",
            save = save.display(),
        );
        std::fs::write(config.join("qBittorrent.conf"), conf)?;
        let proc = Proc::spawn(
            "qbittorrent",
            Command::new("qbittorrent-nox")
                .arg(format!("--profile={}", dir.join("profile").display()))
                .arg(format!("--webui-port={webui}")),
            dir,
            false,
            logs,
        )?;
        let api = format!("http://127.0.0.1:{webui}/api/v2");
        wait_until(deadline, "qBittorrent's WebUI", || {
            Ok(curl(&format!("{api}/app/version"), &[]).is_ok())
        })?;
        let mut add = vec![format!("savepath={}", save.display())];
        if role == Role::Seed {
            add.push("skip_checking=true".to_owned());
        }
        let mut form: Vec<&str> = source.to_vec();
        form.extend(add.iter().flat_map(|f| ["-F", f.as_str()]));
        let reply = curl(&format!("{api}/torrents/add"), &form)?;
        ensure!(
            reply.trim() == "Ok.",
            "qBittorrent refused the torrent: {reply}"
        );
        let mut hash = String::new();
        wait_until(deadline, "the torrent in qBittorrent's list", || {
            let list: Value = serde_json::from_str(&curl(&format!("{api}/torrents/info"), &[])?)
                .context("qBittorrent's torrent list is not JSON")?;
            if let Some(h) = list[0]["hash"].as_str() {
                hash = h.to_owned();
            }
            Ok(!hash.is_empty())
        })?;
        Ok(Self {
            proc,
            api,
            port,
            hash,
        })
    }
}

impl Remote for Qbittorrent {
    fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    fn dial(&mut self, peer: SocketAddr) -> Result<()> {
        curl(
            &format!("{}/torrents/addPeers", self.api),
            &["--data", &format!("hashes={}&peers={peer}", self.hash)],
        )
        .map(drop)
    }

    fn complete(&mut self) -> Result<bool> {
        let list: Value = serde_json::from_str(&curl(
            &format!("{}/torrents/info?hashes={}", self.api, self.hash),
            &[],
        )?)
        .context("qBittorrent's torrent list is not JSON")?;
        let t = &list[0];
        let state = t["state"].as_str().unwrap_or_default();
        if state == "error" || state == "missingFiles" {
            bail!("qBittorrent reports the torrent in state {state}");
        }
        Ok(t["progress"].as_f64() == Some(1.0)
            && matches!(state, "uploading" | "stalledUP" | "forcedUP" | "queuedUP"))
    }

    fn progress(&mut self) -> String {
        let list: Value = curl(
            &format!("{}/torrents/info?hashes={}", self.api, self.hash),
            &[],
        )
        .ok()
        .and_then(|body| serde_json::from_str(&body).ok())
        .unwrap_or_default();
        let t = &list[0];
        format!(
            "progress {}, state {}, {} seeds and {} leechers connected, {} bytes downloaded",
            t["progress"], t["state"], t["num_seeds"], t["num_leechs"], t["downloaded"]
        )
    }
}

impl Drop for Qbittorrent {
    fn drop(&mut self) {
        // A clean shutdown announces `stopped`; killed (by Proc) if it takes longer.
        if curl(&format!("{}/app/shutdown", self.api), &["-X", "POST"]).is_ok() {
            let _ = self.proc.wait_for(Duration::from_secs(5));
        }
    }
}

/// Debian's libtorrent 2.0 through interop/swarm/lt_swarm.py.
struct Libtorrent {
    proc: Proc,
    port: u16,
}

impl Libtorrent {
    /// `args`: `--torrent FILE` or `--magnet URI`, and options.
    fn start(
        dir: &Path,
        args: &[&OsStr],
        save: &Path,
        logs: &Logs,
        deadline: Option<Instant>,
    ) -> Result<Self> {
        let mut c = Command::new(SYSTEM_PYTHON);
        c.env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(root().join("interop/swarm/lt_swarm.py"))
            .args(args)
            .arg("--save")
            .arg(save);
        let mut proc = Proc::spawn("libtorrent", &mut c, dir, true, logs)?;
        let mut port = 0;
        wait_until(deadline, "libtorrent's listening port", || {
            if let Some(status) = proc.exited()? {
                bail!("lt_swarm.py exited ({status})");
            }
            port = json_lines(&proc.stdout())
                .iter()
                .find_map(|v| v["port"].as_u64())
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0);
            Ok(port != 0)
        })?;
        Ok(Self { proc, port })
    }
}

impl Remote for Libtorrent {
    fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    fn dial(&mut self, peer: SocketAddr) -> Result<()> {
        self.proc.send_line(&format!("connect {peer}"))
    }

    fn complete(&mut self) -> Result<bool> {
        if let Some(status) = self.proc.exited()? {
            bail!("lt_swarm.py exited ({status})");
        }
        Ok(json_lines(&self.proc.stdout())
            .iter()
            .any(|v| v["complete"] == true))
    }

    fn progress(&mut self) -> String {
        self.proc
            .stderr()
            .lines()
            .rev()
            .find_map(|l| l.split_once("status: ").map(|(_, s)| s.to_owned()))
            .unwrap_or_default()
    }
}

impl Drop for Libtorrent {
    fn drop(&mut self) {
        // Closing stdin stops it (a `stopped` announce); killed (by Proc) if it takes longer.
        self.proc.close_stdin();
        let _ = self.proc.wait_for(Duration::from_secs(3));
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// transmission-daemon in the foreground with its own config folder, driven with
/// transmission-remote.
struct Transmission {
    proc: Proc,
    rpc: String,
    port: u16,
}

impl Transmission {
    fn start(
        dir: &Path,
        torrent: &Path,
        save: &Path,
        logs: &Logs,
        deadline: Option<Instant>,
    ) -> Result<Self> {
        let port = free_port(false)?;
        let rpc_port = free_port(false)?;
        let config = dir.join("config");
        std::fs::create_dir_all(&config)?;
        let settings = serde_json::json!({
            "bind-address-ipv4": "127.0.0.1",
            "bind-address-ipv6": "::1",
            "peer-port": port,
            "peer-port-random-on-start": false,
            "port-forwarding-enabled": false,
            "dht-enabled": false,
            "lpd-enabled": false,
            "pex-enabled": false,
            "utp-enabled": false,
            "rpc-enabled": true,
            "rpc-bind-address": "127.0.0.1",
            "rpc-port": rpc_port,
            "rpc-authentication-required": false,
            "rpc-whitelist-enabled": false,
            "rpc-host-whitelist-enabled": false,
            "download-dir": save,
            "incomplete-dir-enabled": false,
            "rename-partial-files": false,
            "start-added-torrents": true,
            "download-queue-enabled": false,
            "seed-queue-enabled": false,
            "queue-stalled-enabled": false,
            "ratio-limit-enabled": false,
            "idle-seeding-limit-enabled": false,
            "speed-limit-up-enabled": false,
            "speed-limit-down-enabled": false,
            "alt-speed-enabled": false,
            "watch-dir-enabled": false,
            "blocklist-enabled": false,
            "message-level": 2,
        });
        std::fs::write(
            config.join("settings.json"),
            serde_json::to_vec_pretty(&settings)?,
        )?;
        let proc = Proc::spawn(
            "transmission",
            Command::new("transmission-daemon")
                .args(["--foreground", "--config-dir"])
                .arg(&config)
                .arg("--log-info"),
            dir,
            false,
            logs,
        )?;
        let rpc = format!("127.0.0.1:{rpc_port}");
        let mut this = Self { proc, rpc, port };
        wait_until(deadline, "transmission-daemon's RPC port", || {
            if let Some(status) = this.proc.exited()? {
                bail!("transmission-daemon exited ({status})");
            }
            Ok(accepts(loopback(rpc_port)))
        })?;
        this.remote(&[
            "--add".as_ref(),
            torrent.as_os_str(),
            "--download-dir".as_ref(),
            save.as_os_str(),
        ])?;
        Ok(this)
    }

    /// Runs transmission-remote with `args`; its stdout.
    fn remote(&self, args: &[&std::ffi::OsStr]) -> Result<String> {
        let mut c = Command::new("transmission-remote");
        c.arg(&self.rpc).args(args);
        let out = capture(&mut c, Some(Instant::now() + Duration::from_secs(10)))?;
        Ok(out.ok(&util::display(&c))?.stdout)
    }
}

impl Remote for Transmission {
    fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    fn dial(&mut self, _peer: SocketAddr) -> Result<()> {
        bail!("transmission-remote cannot add a peer address")
    }

    fn complete(&mut self) -> Result<bool> {
        let info = self.remote(&["-t".as_ref(), "all".as_ref(), "--info".as_ref()])?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        if let Some(error) = info.lines().find_map(|l| l.trim().strip_prefix("Error:")) {
            bail!("Transmission reports an error: {}", error.trim());
        }
        Ok(field("Percent Done:") == "100%"
            && matches!(field("State:").as_str(), "Seeding" | "Idle"))
    }

    fn progress(&mut self) -> String {
        self.remote(&["-t".as_ref(), "all".as_ref(), "--info".as_ref()])
            .map(|info| {
                info.lines()
                    .map(str::trim)
                    .filter(|l| {
                        ["State:", "Percent Done:", "Downloaded:", "Peers:"]
                            .iter()
                            .any(|k| l.starts_with(k))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }
}

impl Drop for Transmission {
    fn drop(&mut self) {
        // A clean exit announces `stopped`; killed (by Proc) if it takes longer.
        if self.remote(&["--exit".as_ref()]).is_ok() {
            let _ = self.proc.wait_for(Duration::from_secs(5));
        }
    }
}

/// aria2c: a leecher exits 0 once done (`--seed-time=0`); a seeder serves until killed.
struct Aria2 {
    proc: Proc,
    port: u16,
    role: Role,
}

impl Aria2 {
    fn start(dir: &Path, job: &Job<'_>, logs: &Logs) -> Result<Self> {
        let port = free_port(false)?;
        let mut c = Command::new("aria2c");
        c.arg(format!("--dir={}", job.save.display()))
            .arg(format!("--listen-port={port}"))
            .arg(format!("--log={}", dir.join("aria2.log").display()))
            .args([
                "--log-level=info",
                "--console-log-level=notice",
                "--summary-interval=0",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--interface=127.0.0.1",
                "--disable-ipv6=true",
                "--file-allocation=none",
                "--auto-file-renaming=false",
                "--allow-overwrite=true",
            ]);
        if job.udp_tracker {
            // aria2 talks to UDP trackers only through its DHT socket; with no bootstrap node
            // and no saved nodes its DHT stays empty.
            c.arg("--enable-dht=true")
                .arg(format!("--dht-listen-port={}", free_port(true)?))
                .arg(format!("--dht-file-path={}", dir.join("dht.dat").display()));
        } else {
            c.arg("--enable-dht=false");
        }
        match job.role {
            Role::Seed => c.args([
                "--bt-seed-unverified=true",
                "--check-integrity=false",
                "--seed-ratio=0.0",
            ]),
            Role::Leech => c.arg("--seed-time=0"),
        };
        c.arg(job.torrent);
        let proc = Proc::spawn("aria2", &mut c, dir, false, logs)?;
        logs.add("aria2 log", dir.join("aria2.log"));
        Ok(Self {
            proc,
            port,
            role: job.role,
        })
    }
}

impl Remote for Aria2 {
    fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    fn dial(&mut self, _peer: SocketAddr) -> Result<()> {
        bail!("aria2c cannot be told a peer address")
    }

    fn complete(&mut self) -> Result<bool> {
        match (self.role, self.proc.exited()?) {
            (Role::Leech, Some(status)) if status.success() => Ok(true),
            (_, Some(status)) => bail!("aria2c exited ({status})"),
            // A seeder is ready once it listens.
            (Role::Seed, None) => Ok(accepts(self.addr())),
            (Role::Leech, None) => Ok(false),
        }
    }

    fn progress(&mut self) -> String {
        String::new()
    }
}

/// Paths of `dir`'s files, relative to it, sorted.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}
