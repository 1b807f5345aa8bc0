//! `webtorrent serve` and `webtorrent stream`: the client behind the HTTP server (JSON API,
//! file streaming, web UI).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use webtorrent::http::{Auth, HttpConfig, WebServer};
use webtorrent::magnet::Magnet;
use webtorrent::metainfo::Metainfo;
use webtorrent::session::{AddOptions, Torrent};

use crate::args::{LimitArgs, ListenArgs, WebRtcArgs};

/// How the HTTP server is reached.
#[derive(Args, Debug, Clone)]
pub(crate) struct HttpArgs {
    /// Where the HTTP server (API, streams, web UI) listens. Bound elsewhere than
    /// loopback, give it --auth or --token.
    #[arg(long = "http", value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub(crate) http: SocketAddr,
    /// Ask for HTTP basic credentials, USER:PASSWORD.
    #[arg(long, value_name = "USER:PASSWORD", value_parser = parse_basic, conflicts_with = "token")]
    pub(crate) auth: Option<(String, String)>,
    /// Ask for this token (`Authorization: Bearer TOKEN` or `?token=TOKEN`).
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
}

fn parse_basic(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((user, password)) if !user.is_empty() && !password.is_empty() => {
            Ok((user.to_owned(), password.to_owned()))
        }
        _ => Err(format!("`{text}` is not USER:PASSWORD")),
    }
}

impl HttpArgs {
    pub(crate) fn config(&self) -> HttpConfig {
        let mut config = HttpConfig::default();
        config.bind = self.http;
        config.auth = match (&self.auth, &self.token) {
            (Some((user, password)), _) => Some(Auth::Basic {
                user: user.clone(),
                password: password.clone(),
            }),
            (None, Some(token)) => Some(Auth::Token(token.clone())),
            (None, None) => None,
        };
        config
    }
}

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Torrents to start with: .torrent files or magnet links.
    #[arg(value_name = "TORRENT|MAGNET")]
    pub(crate) torrents: Vec<String>,
    /// The folder torrents are saved in.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub(crate) output: PathBuf,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
    #[command(flatten)]
    pub(crate) listen: ListenArgs,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    #[command(flatten)]
    pub(crate) webrtc: WebRtcArgs,
    #[command(flatten)]
    pub(crate) dht: crate::args::DhtArgs,
}

#[derive(Args, Debug)]
pub(crate) struct StreamArgs {
    /// The .torrent file or magnet link.
    #[arg(value_name = "TORRENT|MAGNET")]
    pub(crate) torrent: String,
    /// The file to stream, by index (`webtorrent info` lists them) [default: the largest].
    #[arg(long, value_name = "N")]
    pub(crate) file: Option<usize>,
    /// The folder the torrent is saved in [default: a `webtorrent` folder in the system's
    /// temporary folder].
    #[arg(short, long, value_name = "DIR")]
    pub(crate) output: Option<PathBuf>,
    /// A peer to download from (repeatable).
    #[arg(long = "peer", value_name = "IP:PORT")]
    pub(crate) peers: Vec<SocketAddr>,
    /// A tracker to announce to besides the torrent's own (repeatable).
    #[arg(short, long = "tracker", value_name = "URL")]
    pub(crate) trackers: Vec<String>,
    /// Play the stream in mpv; exit when it closes.
    #[arg(long, conflicts_with = "vlc")]
    pub(crate) mpv: bool,
    /// Play the stream in VLC; exit when it closes.
    #[arg(long)]
    pub(crate) vlc: bool,
    #[command(flatten)]
    pub(crate) http: HttpArgs,
    #[command(flatten)]
    pub(crate) listen: ListenArgs,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    #[command(flatten)]
    pub(crate) webrtc: WebRtcArgs,
    #[command(flatten)]
    pub(crate) dht: crate::args::DhtArgs,
}

/// Adds a .torrent file or a magnet link to the server's client.
pub(crate) async fn add(server: &WebServer, what: &str, options: AddOptions) -> Result<Torrent> {
    let torrent = if what.trim_start().starts_with("magnet:") {
        let magnet = Magnet::parse(what.trim()).context("invalid magnet link")?;
        server.client().add_magnet(&magnet, options).await?
    } else {
        let path = Path::new(what);
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let meta = Metainfo::from_bytes(&bytes)
            .with_context(|| format!("{} is not a torrent", path.display()))?;
        server.client().add(meta, options).await?
    };
    server.track(torrent.clone());
    Ok(torrent)
}

pub(crate) fn serve(args: &ServeArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    crate::session::runtime()?.block_on(async {
        let client = crate::session::start(
            &args.output,
            args.listen.addr(),
            args.limits,
            &args.webrtc,
            &args.dht,
        )
        .await?;
        let server = WebServer::start(client, args.http.config()).await?;
        for what in &args.torrents {
            if let Err(e) = add(&server, what, AddOptions::default()).await {
                let _ = server.shutdown().await;
                return Err(e);
            }
        }
        println!("{}", server.url());
        eprintln!(
            "serving the web UI and API at {} until Ctrl-C",
            server.url()
        );
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("stopping");
        server.shutdown().await?;
        Ok(ExitCode::from(crate::session::INTERRUPTED))
    })
}

pub(crate) fn stream(args: &StreamArgs) -> Result<ExitCode> {
    let dir = args
        .output
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("webtorrent"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    crate::session::runtime()?.block_on(async {
        let client = crate::session::start(
            &dir,
            args.listen.addr(),
            args.limits,
            &args.webrtc,
            &args.dht,
        )
        .await?;
        let server = WebServer::start(client, args.http.config()).await?;
        let result = stream_async(args, &server).await;
        server.shutdown().await?;
        result
    })
}

async fn stream_async(args: &StreamArgs, server: &WebServer) -> Result<ExitCode> {
    let mut options = AddOptions::default();
    options.peers.clone_from(&args.peers);
    options.trackers.clone_from(&args.trackers);
    let torrent = add(server, &args.torrent, options).await?;
    eprintln!("fetching the torrent's metadata");
    let meta = tokio::select! {
        meta = torrent.wait_metadata() => meta.context("the torrent stopped")?,
        _ = tokio::signal::ctrl_c() => return Ok(ExitCode::from(crate::session::INTERRUPTED)),
    };
    let files = meta.info().files();
    let index = match args.file {
        Some(n) if n < files.len() && !files[n].is_pad() => n,
        Some(n) => bail!("the torrent has no file {n} (it has {})", files.len()),
        None => (0..files.len())
            .filter(|&i| !files[i].is_pad())
            .max_by_key(|&i| files[i].length)
            .context("the torrent has no file")?,
    };
    let url = server.stream_url(&torrent, index);
    eprintln!(
        "streaming {} ({}); web UI at {}",
        files[index].path.display(),
        crate::units::human(files[index].length),
        server.url()
    );
    println!("{url}");
    let player = if args.mpv {
        Some("mpv")
    } else if args.vlc {
        Some("vlc")
    } else {
        None
    };
    if let Some(player) = player {
        let mut child = tokio::process::Command::new(player)
            .arg(&url)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {player}"))?;
        tokio::select! {
            status = child.wait() => {
                let status = status.with_context(|| format!("{player} failed"))?;
                eprintln!("{player} exited ({status})");
                return Ok(ExitCode::SUCCESS);
            }
            _ = tokio::signal::ctrl_c() => {}
        }
    } else {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let s = torrent.stats();
                    tracing::info!(
                        verified = s.verified_pieces,
                        pieces = s.total_pieces,
                        peers = s.peers,
                        rate = s.download_rate,
                        "progress"
                    );
                }
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    }
    Ok(ExitCode::from(crate::session::INTERRUPTED))
}
