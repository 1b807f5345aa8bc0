//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::units::parse_size;

/// Create, inspect, download and seed BitTorrent v1, v2 and hybrid torrents.
#[derive(Parser, Debug)]
#[command(name = "webtorrent", version, about, max_term_width = 100)]
pub(crate) struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create a .torrent from a file or folder and print its magnet link.
    Create(CreateArgs),
    /// Show what a .torrent file or a magnet link holds.
    Info(InfoArgs),
    /// Download a torrent from the peers of its trackers, the DHT, the local network and
    /// the given peers.
    Download(DownloadArgs),
    /// Share a file or folder (or the data of a .torrent) until Ctrl-C, announcing to the
    /// torrent's trackers.
    Seed(SeedArgs),
    /// Fetch a magnet link's metadata from peers, print what the torrent holds, optionally
    /// write it as a .torrent, and exit (no data is kept).
    Metadata(crate::metadata::MetadataArgs),
    /// Run the client with its HTTP server until Ctrl-C: the web UI, the JSON API and file
    /// streams (see docs/http.md).
    Serve(crate::serve::ServeArgs),
    /// Stream a file of a torrent over HTTP while it downloads: prints the URL, optionally
    /// opens it in mpv or VLC.
    Stream(crate::serve::StreamArgs),
    /// Run a whole swarm on this machine: a local tracker, a seeder of a generated sample
    /// video, and a leecher with the web UI streaming it.
    Demo(crate::demo::DemoArgs),
    /// Store or read BEP 44 items in the DHT.
    #[command(subcommand)]
    Dht(crate::dht::DhtCommand),
    /// Seed a file or folder like `seed`, and publish it as a BEP 46 mutable torrent: a
    /// DHT item signed with --key pointing at it; prints its magnet:?xs=urn:btpk: link.
    /// Publishing a new version with the same key moves the link to it.
    Publish(PublishArgs),
    /// Run a tracker until Ctrl-C: HTTP and WebSocket on TCP and UDP, on one port number by
    /// default (127.0.0.1:8000); prints its announce URLs.
    Tracker(webtorrent_tracker_server::cli::TrackerArgs),
}

#[derive(Args, Debug)]
pub(crate) struct PublishArgs {
    #[command(flatten)]
    pub(crate) seed: SeedArgs,
    /// The ed25519 key file signing the pointer (64 hex digits; created if missing).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// The salt: one key can publish several torrents under different salts.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub(crate) salt: String,
}

/// Where the session listens for peers.
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct ListenArgs {
    /// Listen for peers on 0.0.0.0:N (0: any free port; the address is printed on stderr).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) port: u16,
    /// Listen for peers on this address instead (e.g. 127.0.0.1:6881).
    #[arg(long, value_name = "ADDR", conflicts_with = "port")]
    pub(crate) listen: Option<SocketAddr>,
}

/// WebTorrent peers (WebRTC, signaled through the ws:// and wss:// trackers).
#[derive(Args, Debug, Clone)]
pub(crate) struct WebRtcArgs {
    /// No WebRTC peers: ws:// and wss:// trackers are not used.
    #[arg(long)]
    pub(crate) no_webrtc: bool,
    /// A STUN server for WebRTC, e.g. stun:stun.example.org:3478 (repeatable; none by
    /// default: only this machine's own addresses are offered).
    #[arg(long, value_name = "URL", value_parser = parse_stun, conflicts_with = "no_webrtc")]
    pub(crate) stun: Vec<String>,
}

/// The DHT (BEP 5): peers of public torrents found without trackers.
#[derive(Args, Debug, Clone)]
pub(crate) struct DhtArgs {
    /// No DHT: peers come from trackers, peer exchange, the local network and --peer only.
    #[arg(long)]
    pub(crate) no_dht: bool,
    /// A DHT node to bootstrap from (repeatable; default: router.bittorrent.com:6881,
    /// dht.transmissionbt.com:6881 and router.utorrent.com:6881, none when --listen is a
    /// loopback address, which cannot reach them).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port, conflicts_with = "no_dht")]
    pub(crate) dht_bootstrap: Vec<String>,
}

/// The public DHT routers bootstrapped from when no `--dht-bootstrap` is given.
pub(crate) const DHT_ROUTERS: [&str; 3] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
];

fn parse_host_port(text: &str) -> Result<String, String> {
    let bad = || format!("`{text}` is not HOST:PORT (e.g. 127.0.0.1:6881 or [::1]:6881)");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    Ok(text.to_owned())
}

fn parse_stun(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("stun:")
        .or_else(|| text.strip_prefix("stuns:"))
        .ok_or_else(|| format!("`{text}` is not a STUN URL such as stun:host:3478"))?;
    if rest.is_empty() || rest.contains('/') {
        return Err(format!("`{text}` is not a STUN URL such as stun:host:3478"));
    }
    Ok(text.to_owned())
}

/// Rate limits of a session.
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct LimitArgs {
    /// Upload at most this many bytes per second (e.g. 500KiB, 2MiB; 0: no limit).
    #[arg(long, value_name = "RATE", value_parser = parse_size, default_value = "0")]
    pub(crate) upload_limit: u64,
    /// Download at most this many bytes per second (e.g. 500KiB, 2MiB; 0: no limit).
    #[arg(long, value_name = "RATE", value_parser = parse_size, default_value = "0")]
    pub(crate) download_limit: u64,
}

impl ListenArgs {
    /// The address to bind.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], self.port)))
    }
}

#[derive(Args, Debug)]
pub(crate) struct DownloadArgs {
    /// The .torrent file, or a magnet link (v1 or hybrid: the metadata comes from peers).
    #[arg(value_name = "TORRENT|MAGNET")]
    pub(crate) torrent: String,
    /// The folder the torrent's file or folder is saved in.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub(crate) output: PathBuf,
    /// A peer to download from (repeatable).
    #[arg(long = "peer", value_name = "IP:PORT")]
    pub(crate) peers: Vec<SocketAddr>,
    /// A tracker to announce to besides the torrent's own (repeatable).
    #[arg(short, long = "tracker", value_name = "URL")]
    pub(crate) trackers: Vec<String>,
    #[command(flatten)]
    pub(crate) listen: ListenArgs,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    #[command(flatten)]
    pub(crate) webrtc: WebRtcArgs,
    #[command(flatten)]
    pub(crate) dht: DhtArgs,
    /// Keep seeding after the download completes, until Ctrl-C. With a mutable link
    /// (`xs=urn:btpk:`, BEP 46) this follows the link as --follow does.
    #[arg(long)]
    pub(crate) seed: bool,
    /// With a mutable link (`xs=urn:btpk:`, BEP 46): keep running until Ctrl-C, read the
    /// publisher's pointer again every few minutes and download each new version.
    #[arg(long)]
    pub(crate) follow: bool,
    /// How often --follow reads the pointer again, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300, hide = true)]
    pub(crate) follow_interval: u64,
    /// Download only these files: indexes from 0 in the torrent's order, as `webtorrent
    /// info` lists them, e.g. `0,2-4` (BEP 53). A magnet link's own `so=` applies when this
    /// is not given.
    #[arg(long, value_name = "LIST", value_parser = parse_selection)]
    pub(crate) select: Option<Selection>,
}

/// A file selection: BEP 53 ranges of file indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selection(pub(crate) Vec<webtorrent::magnet::FileRange>);

fn parse_selection(text: &str) -> Result<Selection, String> {
    webtorrent::magnet::FileRange::parse_list(text.trim())
        .map(Selection)
        .map_err(|_| format!("`{text}` is not a list of file indexes such as 0,2-4"))
}

#[derive(Args, Debug)]
pub(crate) struct SeedArgs {
    /// A file or folder to share (a torrent is created for it), or a .torrent file whose
    /// data is in --dir (a path ending in `.torrent` is taken as a torrent).
    #[arg(value_name = "PATH|TORRENT")]
    pub(crate) input: PathBuf,
    /// Write the created .torrent to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) torrent: Option<PathBuf>,
    /// Overwrite the --torrent file if it exists.
    #[arg(short, long)]
    pub(crate) force: bool,
    /// With a .torrent: the folder holding its file or folder [default: the current folder].
    #[arg(short = 'd', long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// A tracker to announce to (repeatable); recorded in the torrent created for a PATH.
    #[arg(short, long = "tracker", value_name = "URL")]
    pub(crate) trackers: Vec<String>,
    /// A peer to connect to and serve (repeatable), e.g. one that cannot reach us first.
    #[arg(long = "peer", value_name = "IP:PORT")]
    pub(crate) peers: Vec<SocketAddr>,
    #[command(flatten)]
    pub(crate) listen: ListenArgs,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    #[command(flatten)]
    pub(crate) webrtc: WebRtcArgs,
    #[command(flatten)]
    pub(crate) dht: DhtArgs,
}

/// Which info-hashes the torrent gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum MetaVersionArg {
    /// BitTorrent v1 (SHA-1 pieces, BEP 3).
    #[value(name = "1", alias = "v1")]
    V1,
    /// BitTorrent v2 (SHA-256 Merkle trees, BEP 52).
    #[value(name = "2", alias = "v2")]
    V2,
    /// Both: v1 and v2 peers can join (pad files align files to pieces).
    #[value(name = "hybrid")]
    Hybrid,
}

#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// The file or folder to share.
    pub(crate) path: PathBuf,
    /// Where to write the .torrent [default: <name>.torrent in the current folder].
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Torrent format.
    #[arg(long, value_enum, default_value = "hybrid")]
    pub(crate) meta_version: MetaVersionArg,
    /// Piece length: a power of two of at least 16 KiB (16384, 16KiB, 1MiB)
    /// [default: chosen from the total size, like libtorrent].
    #[arg(long, value_name = "BYTES", value_parser = parse_piece_length)]
    pub(crate) piece_length: Option<u64>,
    /// Tracker announce URL (http, https, udp, ws, wss); each one is its own tier.
    #[arg(short, long = "tracker", value_name = "URL")]
    pub(crate) trackers: Vec<String>,
    /// Web seed URL (BEP 19, http or https).
    #[arg(short = 'w', long = "webseed", alias = "web-seed", value_name = "URL")]
    pub(crate) web_seeds: Vec<String>,
    /// Mark the torrent private (BEP 27): peers only from its trackers.
    #[arg(long)]
    pub(crate) private: bool,
    /// A comment stored in the torrent.
    #[arg(long, value_name = "TEXT")]
    pub(crate) comment: Option<String>,
    /// Torrent name [default: the file or folder name].
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// The "created by" text [default: webtorrent-rs/<version>].
    #[arg(long, value_name = "TEXT", conflicts_with = "no_created_by")]
    pub(crate) created_by: Option<String>,
    /// Leave out "created by".
    #[arg(long)]
    pub(crate) no_created_by: bool,
    /// Leave out the creation date.
    #[arg(long)]
    pub(crate) no_date: bool,
    /// Share the files symbolic links point to, instead of recording the links.
    #[arg(long)]
    pub(crate) follow_symlinks: bool,
}

#[derive(Args, Debug)]
pub(crate) struct InfoArgs {
    /// A .torrent file (`-` for stdin) or a magnet link.
    #[arg(value_name = "TORRENT|MAGNET")]
    pub(crate) input: String,
    /// Print JSON (stable schema, see docs/cli.md) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// List pad files too (text output).
    #[arg(long)]
    pub(crate) show_pad_files: bool,
}

/// Smallest piece length we create: one 16 KiB block (BEP 52's minimum).
pub(crate) const MIN_PIECE_LENGTH: u64 = 16 * 1024;

fn parse_piece_length(text: &str) -> Result<u64, String> {
    let n = parse_size(text).map_err(|e| e.to_string())?;
    let max = webtorrent::metainfo::MAX_PIECE_LENGTH;
    if !n.is_power_of_two() || n < MIN_PIECE_LENGTH || n > max {
        return Err(format!(
            "{n} is not a power of two between 16 KiB and {} MiB",
            max >> 20
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_lengths() {
        assert_eq!(parse_piece_length("16384"), Ok(16384));
        assert_eq!(parse_piece_length("16KiB"), Ok(16384));
        assert_eq!(parse_piece_length("1MiB"), Ok(1 << 20));
        assert!(parse_piece_length("8KiB").is_err());
        assert!(parse_piece_length("24KiB").is_err());
        assert!(parse_piece_length("0").is_err());
        assert!(parse_piece_length("1GiB").is_err());
        assert!(parse_piece_length("lots").is_err());
    }

    #[test]
    fn meta_version_spellings() {
        for (text, v) in [
            ("1", MetaVersionArg::V1),
            ("v1", MetaVersionArg::V1),
            ("2", MetaVersionArg::V2),
            ("v2", MetaVersionArg::V2),
            ("hybrid", MetaVersionArg::Hybrid),
        ] {
            let cli = Cli::try_parse_from(["webtorrent", "create", "x", "--meta-version", text])
                .expect("valid arguments");
            match cli.command {
                Command::Create(a) => assert_eq!(a.meta_version, v),
                other => panic!("parsed as {other:?}"),
            }
        }
        assert!(Cli::try_parse_from(["webtorrent", "create", "x", "--meta-version", "3"]).is_err());
    }

    #[test]
    fn listen_addresses() {
        let cli = Cli::try_parse_from(["webtorrent", "download", "a.torrent", "--port", "6881"])
            .expect("valid arguments");
        let Command::Download(a) = cli.command else {
            panic!("not parsed as download")
        };
        assert_eq!(
            a.listen.addr(),
            "0.0.0.0:6881"
                .parse::<std::net::SocketAddr>()
                .expect("address")
        );
        assert_eq!(a.output, PathBuf::from("."));
        let cli = Cli::try_parse_from([
            "webtorrent",
            "seed",
            "dir",
            "--listen",
            "127.0.0.1:7000",
            "--tracker",
            "udp://t.example:1/announce",
        ])
        .expect("valid arguments");
        let Command::Seed(a) = cli.command else {
            panic!("not parsed as seed")
        };
        assert_eq!(
            a.listen.addr(),
            "127.0.0.1:7000"
                .parse::<std::net::SocketAddr>()
                .expect("address")
        );
        assert_eq!(a.trackers.len(), 1);
        assert!(
            Cli::try_parse_from([
                "webtorrent",
                "seed",
                "d",
                "--port",
                "1",
                "--listen",
                "127.0.0.1:2"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["webtorrent", "download", "a", "--peer", "nope"]).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
