//! Project automation: `cargo xtask ci | interop | fuzz | bench`.
//!
//! `cargo xtask ci` is the one command that runs every test; see `--help` of each subcommand.

mod bench;
mod ci;
mod dht;
mod fuzz;
mod interop;
mod netns;
mod setup;
mod swarm;
mod swarm4;
mod tracker;
mod ui;
mod util;
mod webrtc;
mod webseed;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project automation for webtorrent-rs")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the tests need, then run every check: fmt, clippy, tests, doctests,
    /// cargo-deny, interop, fuzz smoke.
    Ci {
        /// Skip a step (repeatable): setup, fmt, clippy, test, doctest, deny, interop, fuzz.
        #[arg(long, value_name = "STEP")]
        skip: Vec<String>,
        /// Run only these steps (repeatable).
        #[arg(long, value_name = "STEP")]
        only: Vec<String>,
        /// Stop at the first failing step.
        #[arg(long)]
        fail_fast: bool,
    },
    /// Run interop scenarios against libtorrent 2.0/2.1, Transmission and JS WebTorrent tools.
    Interop {
        /// Run only the scenarios whose name contains one of these strings.
        filters: Vec<String>,
        /// List the scenario names and exit.
        #[arg(long)]
        list: bool,
        /// Cargo profile for the webtorrent binary (default: dev, the tests' profile).
        #[arg(long)]
        profile: Option<String>,
        /// Keep the work folder (trees, torrents) for inspection.
        #[arg(long)]
        keep: bool,
    },
    /// Run the cargo-fuzz targets of fuzz/ (nightly); fails on a crash.
    Fuzz {
        /// Bounded run: 30 s per target.
        #[arg(long)]
        smoke: bool,
        /// Seconds per target (default 600, or 30 with --smoke).
        #[arg(long)]
        seconds: Option<u64>,
        /// One target (bencode, metainfo, magnet); default: all.
        target: Option<String>,
    },
    /// Benchmarks: `create` (webtorrent create vs libtorrent), `download` (1 GiB over loopback
    /// by seeder -> leecher pairs of ours, libtorrent and qBittorrent), `webseed` (1 GiB from
    /// a local nginx web seed: ours vs aria2), `magnet` (magnet -> metadata time, ours vs
    /// libtorrent), `webrtc` (256 MiB over WebRTC by pairs of ours, JS WebTorrent, Chromium
    /// and libtorrent 2.1), `stream` (HTTP streaming from a seeder at 4 MiB/s: seek -> first
    /// byte, fresh stream vs JS WebTorrent's createServer), `tracker` (UDP and WebSocket
    /// announces/s, ours vs bittorrent-tracker, with aquatic's load generators; our RSS with
    /// 1M peers), `dht` (get_peers lookups on a loopback DHT of our nodes and libtorrent
    /// sessions: latency and queries, ours vs libtorrent; heap per stored peer) or `hash`
    /// (cargo bench).
    Bench {
        #[arg(value_enum, default_value = "create")]
        what: BenchWhat,
        /// Size of the generated file (create, stream) or tree (download, webseed, webrtc),
        /// MiB [default: 1024; webrtc 256].
        #[arg(long)]
        size_mib: Option<u64>,
        /// Runs of each tool or pair; the median is reported [default: create 5, download 3,
        /// webseed 5, magnet 25, webrtc 3, stream 5; dht: lookups by each side, 50].
        #[arg(long)]
        runs: Option<usize>,
        /// create: v1, v2 or hybrid (download always uses v1).
        #[arg(long, default_value = "hybrid")]
        flavour: String,
        /// Piece length in bytes, the same for every tool.
        #[arg(long, default_value_t = 1 << 20)]
        piece_length: u64,
        /// download: only these pairs, by number (1-6) or name (lt-ours, lt-lt, qbt-ours,
        /// qbt-lt, ours-lt, ours-ours); webrtc: by number (1-7) or name (ours-ours, js-js,
        /// ours-js, ours-chromium, js-chromium, lt21-ours, ours-lt21). The pairs they are
        /// compared with are added.
        #[arg(long, value_delimiter = ',', value_name = "PAIR")]
        pairs: Vec<String>,
        /// dht: our nodes in the DHT.
        #[arg(long, default_value_t = 120)]
        dht_ours: usize,
        /// dht: libtorrent sessions in the DHT.
        #[arg(long, default_value_t = 40)]
        dht_libtorrent: usize,
        /// dht: JS bittorrent-dht nodes in the DHT (0 when interop/node_modules lacks it).
        #[arg(long, default_value_t = 40)]
        dht_js: usize,
        /// dht: torrents announced (half by our nodes, half by libtorrent sessions).
        #[arg(long, default_value_t = 40)]
        dht_torrents: usize,
        /// download, webrtc, dht: also write the figures to FILE as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<std::path::PathBuf>,
        /// magnet: files of the torrent with the big info dictionary.
        #[arg(long, default_value_t = 8000)]
        files: usize,
        /// webseed: HTTP connections aria2 opens per server (`-x`, `-s`; 1-16).
        #[arg(long, default_value_t = 16)]
        connections: u32,
        /// download, webseed, magnet, webrtc, stream: seconds a seeder may take to get ready,
        /// and a transfer to finish.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// download, webseed, magnet, webrtc, stream: folder for the generated data
        /// [default: <target dir>/bench-download, bench-webseed, bench-magnet, bench-webrtc or
        /// bench-stream].
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
        /// download, webseed, magnet, webrtc, stream: this `webtorrent` binary instead of a
        /// release build of the work tree.
        #[arg(long, value_name = "PATH")]
        webtorrent: Option<std::path::PathBuf>,
        /// tracker: seconds of load per run.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// tracker: skip the memory measurement with 1M peers.
        #[arg(long)]
        skip_rss: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchWhat {
    Create,
    Download,
    Hash,
    Webseed,
    Magnet,
    Webrtc,
    Stream,
    Tracker,
    Dht,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Ci {
            skip,
            only,
            fail_fast,
        } => ci::run_ci(&ci::Options {
            skip,
            only,
            fail_fast,
        }),
        Cmd::Interop {
            filters,
            list,
            profile,
            keep,
        } => interop::run_interop(&interop::Options {
            filters,
            list,
            profile,
            keep,
        }),
        Cmd::Fuzz {
            smoke,
            seconds,
            target,
        } => fuzz::run_fuzz(&fuzz::Options {
            smoke,
            seconds,
            target,
        }),
        Cmd::Bench {
            what,
            dht_ours,
            dht_libtorrent,
            dht_js,
            dht_torrents,
            size_mib,
            runs,
            flavour,
            piece_length,
            pairs,
            json,
            connections,
            files,
            timeout,
            dir,
            webtorrent,
            seconds,
            skip_rss,
        } => match what {
            BenchWhat::Tracker => bench::tracker(&bench::TrackerOptions { seconds, skip_rss }),
            BenchWhat::Hash => bench::hash(),
            BenchWhat::Create => bench::create(&bench::CreateOptions {
                size_mib: size_mib.unwrap_or(1024),
                runs: runs.unwrap_or(5),
                flavour,
                piece_length,
            }),
            BenchWhat::Download => bench::download(&bench::DownloadOptions {
                size_mib: size_mib.unwrap_or(1024),
                runs: runs.unwrap_or(3),
                piece_length,
                pairs,
                json,
                timeout: std::time::Duration::from_secs(timeout),
                dir,
                webtorrent,
            }),
            BenchWhat::Webseed => bench::webseed(&bench::WebseedOptions {
                size_mib: size_mib.unwrap_or(1024),
                runs: runs.unwrap_or(5),
                piece_length,
                connections,
                timeout: std::time::Duration::from_secs(timeout),
                dir,
                webtorrent,
            }),
            BenchWhat::Webrtc => bench::webrtc(&bench::WebrtcOptions {
                size_mib: size_mib.unwrap_or(256),
                runs: runs.unwrap_or(3),
                piece_length,
                pairs,
                json,
                timeout: std::time::Duration::from_secs(timeout),
                dir,
                webtorrent,
            }),
            BenchWhat::Magnet => bench::magnet(&bench::MagnetOptions {
                runs: runs.unwrap_or(25),
                files,
                timeout: std::time::Duration::from_secs(timeout),
                dir,
                webtorrent,
            }),
            BenchWhat::Dht => bench::dht(&bench::DhtOptions {
                ours: dht_ours,
                libtorrent: dht_libtorrent,
                js: dht_js,
                torrents: dht_torrents,
                lookups: runs.unwrap_or(50),
                timeout: std::time::Duration::from_secs(timeout.max(1800)),
                json,
            }),
            BenchWhat::Stream => bench::stream(&bench::StreamOptions {
                size_mib: size_mib.unwrap_or(1024),
                runs: runs.unwrap_or(5),
                seeks: 50,
                rate: "4MiB".to_owned(),
                timeout: std::time::Duration::from_secs(timeout),
                dir,
                webtorrent,
            }),
        },
    }
}
