//! `webtorrent download` and `webtorrent seed`, on the session engine.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::broadcast;
use webtorrent::magnet::FileRange;
use webtorrent::magnet::Magnet;
use webtorrent::metainfo::Metainfo;
use webtorrent::ratelimit::Limit;
use webtorrent::session::{AddOptions, Client, ClientConfig, Torrent, TorrentEvent, TorrentStats};

use crate::args::{
    CreateArgs, DHT_ROUTERS, DhtArgs, DownloadArgs, LimitArgs, MetaVersionArg, PublishArgs,
    SeedArgs, WebRtcArgs,
};
use crate::output::print_stdout;
use crate::units::human;

/// The exit status after Ctrl-C (128 + SIGINT), as shells report it.
pub(crate) const INTERRUPTED: u8 = 130;

/// How often the progress line is refreshed.
const TICK: Duration = Duration::from_millis(500);

/// What `download` was given.
enum Source {
    Torrent(Metainfo),
    Magnet(Magnet),
}

pub(crate) fn download(args: &DownloadArgs) -> Result<ExitCode> {
    let source = if args.torrent.trim_start().starts_with("magnet:") {
        let magnet = Magnet::parse(args.torrent.trim()).context("invalid magnet link")?;
        Source::Magnet(magnet)
    } else {
        let meta = load_torrent(Path::new(&args.torrent))?;
        if let Some(select) = &args.select
            && chosen_files(meta.info(), &select.0).is_empty()
        {
            bail!(
                "the file selection names none of the torrent's {} files",
                meta.info().files().len()
            );
        }
        Source::Torrent(meta)
    };
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    runtime()?.block_on(download_async(args, source))
}

pub(crate) fn seed(args: &SeedArgs) -> Result<ExitCode> {
    seed_and_publish(args, None)
}

/// `webtorrent publish`: seed, and point a BEP 46 mutable item at the torrent.
pub(crate) fn publish(args: &PublishArgs) -> Result<ExitCode> {
    if args.seed.dht.no_dht {
        bail!("publishing needs the DHT: --no-dht cannot be used");
    }
    seed_and_publish(&args.seed, Some(args))
}

fn seed_and_publish(args: &SeedArgs, publish: Option<&PublishArgs>) -> Result<ExitCode> {
    let created = !is_torrent_path(&args.input);
    let (meta, dir) = if !created {
        if args.torrent.is_some() {
            bail!("--torrent writes a created torrent: it cannot be used when seeding a .torrent");
        }
        let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
        (load_torrent(&args.input)?, dir)
    } else {
        if args.dir.is_some() {
            bail!("--dir is for seeding a .torrent: the data of a PATH is the path itself");
        }
        create_for(args)?
    };
    runtime()?.block_on(seed_async(args, meta, &dir, created, publish))
}

/// A path taken as a torrent file rather than data to share.
fn is_torrent_path(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("torrent"))
        && path.is_file()
}

fn load_torrent(path: &Path) -> Result<Metainfo> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Metainfo::from_bytes(&bytes).with_context(|| format!("{} is not a torrent", path.display()))
}

/// Creates the torrent of `args.input` as `webtorrent create` would (hybrid), writes it to
/// `--torrent` if given, and returns it with the folder holding the input.
fn create_for(args: &SeedArgs) -> Result<(Metainfo, PathBuf)> {
    let path = std::fs::canonicalize(&args.input)
        .with_context(|| format!("cannot open {}", args.input.display()))?;
    let Some(dir) = path.parent() else {
        bail!("cannot share {}: it has no parent folder", path.display());
    };
    if let Some(out) = &args.torrent {
        crate::create::refuse_overwrite(out, args.force)?;
    }
    let create = CreateArgs {
        path: path.clone(),
        output: args.torrent.clone(),
        force: args.force,
        meta_version: MetaVersionArg::Hybrid,
        piece_length: None,
        trackers: args.trackers.clone(),
        web_seeds: Vec::new(),
        private: false,
        comment: None,
        name: None,
        created_by: None,
        no_created_by: false,
        no_date: false,
        follow_symlinks: false,
    };
    let builder = crate::create::builder(&create, &path)?;
    let meta = crate::create::build(builder, std::io::stderr().is_terminal())?;
    if let Some(out) = &args.torrent {
        crate::create::write_torrent(out, &meta.to_bytes(), args.force)?;
    }
    Ok((meta, dir.to_path_buf()))
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) async fn start(
    dir: &Path,
    listen: SocketAddr,
    limits: LimitArgs,
    webrtc: &WebRtcArgs,
    dht: &DhtArgs,
) -> Result<Client> {
    let mut config = ClientConfig::new(dir);
    config.dht = !dht.no_dht;
    // A node bound to loopback cannot reach the public routers: it starts from what it is
    // given, the peers it meets and PORT messages.
    config.dht_bootstrap = if dht.dht_bootstrap.is_empty() && !listen.ip().is_loopback() {
        DHT_ROUTERS.iter().map(|r| (*r).to_owned()).collect()
    } else {
        dht.dht_bootstrap.clone()
    };
    config.listen = listen;
    config.webrtc = !webrtc.no_webrtc;
    config.stun.clone_from(&webrtc.stun);
    config.upload_limit = Limit::bytes_per_second(limits.upload_limit);
    config.download_limit = Limit::bytes_per_second(limits.download_limit);
    let client = Client::new(config).await?;
    eprintln!("listening on {}", client.local_addr());
    Ok(client)
}

async fn download_async(args: &DownloadArgs, source: Source) -> Result<ExitCode> {
    let client = start(
        &args.output,
        args.listen.addr(),
        args.limits,
        &args.webrtc,
        &args.dht,
    )
    .await?;
    let mut options = AddOptions::default();
    options.peers.clone_from(&args.peers);
    options.trackers.clone_from(&args.trackers);
    options.select = args.select.clone().map(|s| s.0);
    let select = match (&options.select, &source) {
        (Some(ranges), _) => Some(ranges.clone()),
        (None, Source::Magnet(m)) if !m.select_only.is_empty() => Some(m.select_only.clone()),
        _ => None,
    };
    let (added, what) = match source {
        Source::Torrent(meta) => {
            let name = meta.info().name().to_owned();
            (client.add(meta, options).await, name)
        }
        Source::Magnet(magnet) if magnet.info_hashes().is_none() && (args.follow || args.seed) => {
            return follow_async(args, &client, &magnet).await;
        }
        Source::Magnet(mut magnet) => {
            if magnet.info_hashes().is_none() {
                // BEP 46: the link names a publisher's key; the DHT holds the info-hash.
                match resolve_mutable(&client, &magnet).await {
                    Ok(info_hash) => magnet.v1 = Some(info_hash),
                    Err(e) => {
                        let _ = client.shutdown().await;
                        return Err(e);
                    }
                }
            }
            let name = magnet
                .display_name
                .clone()
                .unwrap_or_else(|| "the magnet link".to_owned());
            (client.add_magnet(&magnet, options).await, name)
        }
    };
    let torrent = match added {
        Ok(t) => t,
        Err(e) => {
            // The torrent is not running; nothing else to save.
            let _ = client.shutdown().await;
            return Err(e).context(format!("cannot add {what}"));
        }
    };
    let started = Instant::now();
    let mut events = torrent.events();
    let meta = match wait_for_metadata(&torrent, &mut events).await {
        Ok(Some(meta)) => meta,
        Ok(None) => {
            client.shutdown().await.context("cannot stop")?;
            eprintln!("interrupted before the metadata arrived");
            return Ok(ExitCode::from(INTERRUPTED));
        }
        Err(e) => {
            let _ = client.shutdown().await;
            return Err(e.context(format!("cannot download {what}")));
        }
    };
    let name = meta.info().name().to_owned();
    if let Some(ranges) = &select {
        list_selection(meta.info(), ranges);
    }
    let mut stats = torrent.stats();
    // A magnet's task may still be opening the files: its size is known once it runs.
    while stats.wanted == 0 && !torrent.is_done() {
        tokio::select! {
            e = failure(&mut events) => {
                let _ = client.shutdown().await;
                return Err(e.context(format!("cannot download {name}")));
            }
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        stats = torrent.stats();
    }
    let bar = std::io::stdout()
        .is_terminal()
        .then(|| progress_bar(stats.wanted));
    let mut progress = Progress::new(started, Snapshot::from(stats));
    let mut tick = tokio::time::interval(TICK);
    // One listener for the whole download: a fresh one each turn could miss a Ctrl-C that
    // arrives between two turns.
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let outcome = loop {
        tokio::select! {
            () = torrent.wait_done() => break Outcome::Done,
            r = &mut ctrl_c => {
                r.context("cannot wait for Ctrl-C")?;
                break Outcome::Interrupted;
            }
            e = failure(&mut events) => {
                let _ = client.shutdown().await;
                return Err(e.context(format!("cannot download {name}")));
            }
            _ = tick.tick() => {
                let stats = Snapshot::from(torrent.stats());
                let line = progress.update(Instant::now(), stats);
                if let Some(bar) = &bar {
                    bar.set_position(line.bytes_done);
                    bar.set_message(line.message());
                }
            }
        }
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let stats = torrent.stats();
    match outcome {
        Outcome::Interrupted => {
            client.shutdown().await.context("cannot save resume data")?;
            eprintln!(
                "interrupted: {}/{} pieces verified, resume data saved",
                stats.verified_pieces, stats.total_pieces
            );
            return Ok(ExitCode::from(INTERRUPTED));
        }
        Outcome::Done if !torrent.is_done() => {
            let _ = client.shutdown().await;
            bail!(
                "{name}: the torrent stopped with {}/{} pieces verified",
                stats.verified_pieces,
                stats.total_pieces
            );
        }
        Outcome::Done => {}
    }
    let elapsed = started.elapsed();
    let complete = if select.is_some() {
        format!("{} of the selected files", human(stats.wanted))
    } else {
        human(meta.info().total_length())
    };
    print_stdout(&format!(
        "downloaded {name}: {complete} complete, {} received in {:.1} s ({}/s), {} pieces verified\n",
        human(stats.downloaded),
        elapsed.as_secs_f64(),
        human(rate(stats.downloaded, elapsed)),
        stats.verified_pieces,
    ))?;
    if args.seed {
        eprintln!("seeding {name}; press Ctrl-C to stop");
        serve_until_ctrl_c(&torrent).await?;
    }
    client.shutdown().await.context("cannot save resume data")?;
    Ok(ExitCode::SUCCESS)
}

async fn seed_async(
    args: &SeedArgs,
    meta: Metainfo,
    dir: &Path,
    created: bool,
    publish: Option<&PublishArgs>,
) -> Result<ExitCode> {
    let name = meta.info().name().to_owned();
    let info_hash = meta.info_hashes().wire();
    let magnet = webtorrent::magnet_link(&meta);
    let client = start(
        dir,
        args.listen.addr(),
        args.limits,
        &args.webrtc,
        &args.dht,
    )
    .await?;
    let mut options = AddOptions::default();
    options.peers.clone_from(&args.peers);
    if created {
        // Made from the data a moment ago: no need to hash it again.
        options.seed_mode = true;
    } else {
        options.trackers.clone_from(&args.trackers);
    }
    let torrent = match client.add(meta, options).await {
        Ok(t) => t,
        Err(e) => {
            let _ = client.shutdown().await;
            return Err(e).context(format!("cannot add {name}"));
        }
    };
    let stats = torrent.stats();
    if !torrent.is_done() {
        eprintln!(
            "warning: only {}/{} pieces of {name} are in {}: serving those",
            stats.verified_pieces,
            stats.total_pieces,
            dir.display()
        );
    }
    print_stdout(&format!("{magnet}\n"))?;
    if let Some(publish) = publish {
        let dht = client
            .dht()
            .context("the DHT could not be started")?
            .clone();
        let link = start_publishing(dht, publish, info_hash).await?;
        print_stdout(&format!("{link}\n"))?;
    }
    eprintln!("seeding {name}; press Ctrl-C to stop");
    serve_until_ctrl_c(&torrent).await?;
    client.shutdown().await.context("cannot save resume data")?;
    Ok(ExitCode::SUCCESS)
}

/// The torrent's metainfo: at once for a .torrent, once fetched from peers for a magnet
/// link; `None` on Ctrl-C first.
async fn wait_for_metadata(
    torrent: &Torrent,
    events: &mut broadcast::Receiver<TorrentEvent>,
) -> Result<Option<Arc<Metainfo>>> {
    if let Some(meta) = torrent.metainfo() {
        return Ok(Some(meta));
    }
    eprintln!("fetching the metadata from peers");
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            r.context("cannot wait for Ctrl-C")?;
            Ok(None)
        }
        e = failure(events) => Err(e),
        meta = torrent.wait_metadata() => match meta {
            Some(meta) => Ok(Some(meta)),
            None => bail!("the torrent stopped before its metadata arrived"),
        },
    }
}

/// Waits for an event that stops the torrent, and returns it as an error.
async fn failure(events: &mut broadcast::Receiver<TorrentEvent>) -> anyhow::Error {
    loop {
        match events.recv().await {
            Ok(TorrentEvent::Failed(why)) => return anyhow::anyhow!("{why}"),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            // No event will come: the torrent's end is seen elsewhere.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// The files (not pad files) a selection picks.
fn chosen_files(info: &webtorrent::metainfo::Info, ranges: &[FileRange]) -> Vec<usize> {
    let files = info.files();
    (0..files.len())
        .filter(|&i| !files[i].is_pad())
        .filter(|&i| u32::try_from(i).is_ok_and(|i| ranges.iter().any(|r| r.contains(i))))
        .collect()
}

/// Lists the files a selection picks, on stderr.
fn list_selection(info: &webtorrent::metainfo::Info, ranges: &[FileRange]) {
    let files = info.files();
    let chosen = chosen_files(info, ranges);
    if chosen.is_empty() {
        // The engine refuses the torrent: its error says why.
        return;
    }
    let real = files.iter().filter(|f| !f.is_pad()).count();
    eprintln!("selected {} of {real} files:", chosen.len());
    for i in chosen {
        eprintln!(
            "  {i}  {}  {}",
            human(files[i].length),
            crate::info::clean(&files[i].path.to_string_lossy())
        );
    }
}

/// Serves until Ctrl-C, then prints what was uploaded.
async fn serve_until_ctrl_c(torrent: &Torrent) -> Result<()> {
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    eprintln!("stopping: uploaded {}", human(torrent.stats().uploaded));
    Ok(())
}

enum Outcome {
    Done,
    Interrupted,
}

fn progress_bar(total_length: u64) -> ProgressBar {
    let bar = ProgressBar::new(total_length);
    // The template is a constant that parses; fall back to the default style otherwise.
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:20} {percent:>3}% {binary_bytes}/{binary_total_bytes} {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// The counters of [`TorrentStats`] the progress line uses.
#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    downloaded: u64,
    uploaded: u64,
    left: u64,
    wanted: u64,
    peers: usize,
}

impl From<TorrentStats> for Snapshot {
    fn from(s: TorrentStats) -> Self {
        Self {
            downloaded: s.downloaded,
            uploaded: s.uploaded,
            left: s.left,
            wanted: s.wanted,
            peers: s.peers,
        }
    }
}

/// Speeds from the deltas between two snapshots of the stats.
#[derive(Debug)]
struct Progress {
    at: Instant,
    last: Snapshot,
}

/// One refresh of the progress line.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    bytes_done: u64,
    down_per_sec: u64,
    up_per_sec: u64,
    peers: usize,
    eta: Option<Duration>,
}

impl Line {
    fn message(&self) -> String {
        let eta = self
            .eta
            .map_or_else(|| "-".to_owned(), |d| format_eta(d.as_secs()));
        format!(
            "down {}/s up {}/s peers {} eta {eta}",
            human(self.down_per_sec),
            human(self.up_per_sec),
            self.peers
        )
    }
}

impl Progress {
    fn new(at: Instant, stats: Snapshot) -> Self {
        Self { at, last: stats }
    }

    fn update(&mut self, now: Instant, stats: Snapshot) -> Line {
        let elapsed = now.saturating_duration_since(self.at);
        let down = rate(
            stats.downloaded.saturating_sub(self.last.downloaded),
            elapsed,
        );
        let up = rate(stats.uploaded.saturating_sub(self.last.uploaded), elapsed);
        self.at = now;
        self.last = stats;
        let bytes_done = stats.wanted.saturating_sub(stats.left);
        let left = stats.wanted - bytes_done;
        let eta = (down > 0).then(|| Duration::from_secs(left.div_ceil(down)));
        Line {
            bytes_done,
            down_per_sec: down,
            up_per_sec: up,
            peers: stats.peers,
            eta,
        }
    }
}

/// Bytes per second over `elapsed` (0 for no time).
fn rate(bytes: u64, elapsed: Duration) -> u64 {
    let ms = elapsed.as_millis();
    if ms == 0 {
        return 0;
    }
    u64::try_from(u128::from(bytes) * 1000 / ms).unwrap_or(u64::MAX)
}

/// `1h02m03s`, `2m03s` or `3s`.
fn format_eta(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Bootstraps the client's DHT node until a node answers: the client resolves and adds
/// the bootstrap nodes in the background, so the first tries may find none. False after
/// about 10 seconds without an answer.
async fn joined(dht: &webtorrent::dht::Dht) -> Result<bool> {
    for _ in 0..20 {
        if dht.bootstrap().await?.responses > 0 {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(false)
}

/// How often a published pointer is put again (BEP 44 nodes keep items about 2 hours).
const REPUBLISH: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Puts the BEP 46 pointer `{ih: info_hash}` signed with the key file (seq: the stored
/// one + 1), keeps putting it while seeding, and returns the `xs=urn:btpk:` magnet link.
async fn start_publishing(
    dht: webtorrent::dht::Dht,
    args: &PublishArgs,
    info_hash: webtorrent::types::InfoHashV1,
) -> Result<String> {
    use webtorrent::dht::{MutableItem, MutableTorrent, encode_pointer};
    let key = crate::dht::load_or_create_key(&args.key)?;
    let public = key.verifying_key().to_bytes();
    let salt = args.salt.as_bytes().to_vec();
    if !joined(&dht).await? {
        bail!("no DHT node answered: nothing to publish to (see --dht-bootstrap)");
    }
    let seq = dht
        .get_mutable(public, &salt)
        .await?
        .map_or(1, |item| item.seq + 1);
    let item = MutableItem::sign(&key, &salt, seq, encode_pointer(info_hash))
        .context("cannot sign the pointer")?;
    let stored = dht.put_mutable(item.clone(), None).await?;
    if stored == 0 {
        bail!("no DHT node stored the pointer");
    }
    eprintln!("published {info_hash} as seq {seq} on {stored} DHT nodes");
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(REPUBLISH).await;
            if let Err(e) = dht.put_mutable(item.clone(), None).await {
                tracing::warn!("cannot publish the pointer again: {e}");
                return;
            }
        }
    });
    Ok(MutableTorrent { key: public, salt }.to_magnet().to_uri())
}

/// Follows a BEP 46 link until Ctrl-C: each new version the publisher's pointer names
/// is downloaded (in place of the previous one, whose files stay) and then seeded.
async fn follow_async(args: &DownloadArgs, client: &Client, magnet: &Magnet) -> Result<ExitCode> {
    use webtorrent::dht::MutableTorrent;
    use webtorrent::session::FollowOptions;
    let result = async {
        let target =
            MutableTorrent::from_magnet(magnet).context("the magnet link has no info-hash")?;
        let dht = client
            .dht()
            .context("the link is a mutable torrent (BEP 46): it needs the DHT")?;
        if !joined(dht).await? {
            bail!("no DHT node answered: the link cannot be resolved (see --dht-bootstrap)");
        }
        let mut options = FollowOptions::default();
        options.interval = Duration::from_secs(args.follow_interval.max(1));
        options.add.peers.clone_from(&args.peers);
        options.add.trackers.clone_from(&args.trackers);
        options.add.select = args.select.clone().map(|s| s.0);
        let mut follower = client.follow_mutable(target, options);
        eprintln!("following the link; press Ctrl-C to stop");
        let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
        loop {
            tokio::select! {
                version = follower.next() => {
                    let version = version.context("cannot follow the link")?;
                    eprintln!(
                        "the link points at {} (seq {}): downloading",
                        version.info_hash, version.seq
                    );
                    let torrent = version.torrent;
                    tokio::spawn(async move {
                        torrent.wait_done().await;
                        if torrent.is_done() {
                            let name = torrent
                                .metainfo()
                                .map_or_else(String::new, |m| m.info().name().to_owned());
                            let _ = print_stdout(&format!(
                                "downloaded {name} (seq {}, {})\n",
                                version.seq, version.info_hash
                            ));
                        }
                    });
                }
                r = &mut ctrl_c => {
                    r.context("cannot wait for Ctrl-C")?;
                    return Ok(ExitCode::from(INTERRUPTED));
                }
            }
        }
    }
    .await;
    client.shutdown().await.context("cannot save resume data")?;
    result
}

/// The info-hash a BEP 46 link (`xs=urn:btpk:`, `s`) currently points at.
async fn resolve_mutable(
    client: &Client,
    magnet: &Magnet,
) -> Result<webtorrent::types::InfoHashV1> {
    use webtorrent::dht::{MutableTorrent, decode_pointer};
    let wanted = MutableTorrent::from_magnet(magnet).context("the magnet link has no info-hash")?;
    let dht = client
        .dht()
        .context("the link is a mutable torrent (BEP 46): it needs the DHT")?;
    if !joined(dht).await? {
        bail!("no DHT node answered: the link cannot be resolved (see --dht-bootstrap)");
    }
    let item = dht
        .get_mutable(wanted.key, &wanted.salt)
        .await?
        .context("the DHT holds no pointer for this link's key and salt")?;
    let info_hash = decode_pointer(&item.value).context("the DHT item is not a torrent pointer")?;
    eprintln!("the link points at {info_hash} (seq {})", item.seq);
    Ok(info_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(rate(1000, Duration::from_millis(500)), 2000);
        assert_eq!(rate(1000, Duration::ZERO), 0);
        assert_eq!(rate(u64::MAX, Duration::from_millis(1)), u64::MAX);
    }

    #[test]
    fn progress_from_deltas() {
        let t0 = Instant::now();
        let start = Snapshot {
            downloaded: 1000,
            uploaded: 50,
            left: 8500,
            wanted: 9500,
            peers: 0,
        };
        let mut p = Progress::new(t0, start);
        // 2 pieces of 1000 bytes in 2 s: 1000 B/s, 6500 bytes left of 9500.
        let later = Snapshot {
            downloaded: 3000,
            uploaded: 250,
            left: 6500,
            peers: 2,
            ..start
        };
        let line = p.update(t0 + Duration::from_secs(2), later);
        assert_eq!(
            line,
            Line {
                bytes_done: 3000,
                down_per_sec: 1000,
                up_per_sec: 100,
                peers: 2,
                eta: Some(Duration::from_secs(7)),
            }
        );
        assert_eq!(line.message(), "down 1000 B/s up 100 B/s peers 2 eta 7s");
        // No progress since: no rate, no ETA.
        let line = p.update(t0 + Duration::from_secs(3), later);
        assert_eq!((line.down_per_sec, line.eta), (0, None));
        let done = Snapshot { left: 0, ..later };
        assert_eq!(p.update(t0 + Duration::from_secs(4), done).bytes_done, 9500);
        // A clock that does not move, counters that shrink, and more left than wanted (the
        // size not known yet) do not panic.
        let line = p.update(t0, start);
        assert_eq!((line.down_per_sec, line.up_per_sec), (0, 0));
        let odd = Snapshot {
            left: 10,
            wanted: 0,
            ..start
        };
        assert_eq!(p.update(t0, odd).bytes_done, 0);
    }

    #[test]
    fn etas() {
        assert_eq!(format_eta(3), "3s");
        assert_eq!(format_eta(123), "2m03s");
        assert_eq!(format_eta(3723), "1h02m03s");
    }

    #[test]
    fn torrent_paths() {
        let dir = tempfile::tempdir().expect("temp dir");
        let t = dir.path().join("a.TORRENT");
        std::fs::write(&t, b"x").expect("write");
        assert!(is_torrent_path(&t));
        assert!(!is_torrent_path(dir.path()));
        assert!(!is_torrent_path(&dir.path().join("missing.torrent")));
    }
}
