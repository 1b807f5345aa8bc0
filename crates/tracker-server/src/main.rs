//! `webtorrent-tracker`: HTTP, UDP and WebSocket tracker in one process.
//! The same command as `webtorrent tracker`.
#![forbid(unsafe_code)]

use clap::Parser;
use webtorrent_tracker_server::cli::{TrackerArgs, run};

/// A BitTorrent tracker: HTTP and UDP announces and WebTorrent WebSocket
/// signaling over one swarm store.
#[derive(Debug, Parser)]
#[command(name = "webtorrent-tracker", version)]
struct Cli {
    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(flatten)]
    tracker: TrackerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let default = ["warn", "info", "debug", "trace"][usize::from(cli.verbose.min(3))];
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    run(&cli.tracker).await?;
    Ok(())
}
