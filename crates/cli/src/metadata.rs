//! `webtorrent metadata`: fetch a magnet link's info dictionary from peers (BEP 9), write it
//! as a .torrent, and exit.
//!
//! The session downloads into a temporary folder that is deleted on exit, so nothing but the
//! .torrent is left behind even if a few pieces arrive before the client stops.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use webtorrent::bencode::OwnedValue;
use webtorrent::magnet::Magnet;
use webtorrent::metainfo::{MetaVersion, Metainfo};
use webtorrent::session::{AddOptions, Client, ClientConfig};

use crate::args::ListenArgs;
use crate::output::print_stdout;
use crate::units::human;

/// The exit status after Ctrl-C (128 + SIGINT).
const INTERRUPTED: u8 = 130;

#[derive(Args, Debug)]
pub(crate) struct MetadataArgs {
    /// The magnet link (v1 or hybrid).
    #[arg(value_name = "MAGNET")]
    pub(crate) magnet: String,
    /// A peer to fetch from (repeatable), besides the link's `x.pe` peers.
    #[arg(long = "peer", value_name = "IP:PORT")]
    pub(crate) peers: Vec<std::net::SocketAddr>,
    /// A tracker to ask for peers (repeatable), besides the link's `tr` trackers; also
    /// recorded in the .torrent.
    #[arg(short, long = "tracker", value_name = "URL")]
    pub(crate) trackers: Vec<String>,
    /// Write the .torrent (the info dictionary, the trackers and web seeds of the link) to
    /// FILE.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Give up after this many seconds [default: wait until Ctrl-C].
    #[arg(long, value_name = "SECS")]
    pub(crate) timeout: Option<f64>,
    /// Print JSON (name, info_hash, files, total_length, metadata_bytes, seconds, torrent)
    /// instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) listen: ListenArgs,
}

pub(crate) fn run(args: &MetadataArgs) -> Result<ExitCode> {
    let magnet = Magnet::parse(args.magnet.trim()).context("invalid magnet link")?;
    if magnet.v1.is_none() {
        bail!("the magnet link has no v1 info-hash (btih): v2-only links are not supported yet");
    }
    if let Some(out) = &args.output {
        crate::create::refuse_overwrite(out, args.force)?;
    }
    let timeout = match args.timeout {
        Some(s) if !(s.is_finite() && s > 0.0) => bail!("--timeout must be a positive number"),
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let Some((meta, took)) = runtime.block_on(fetch(args, &magnet, timeout))? else {
        eprintln!("interrupted before the metadata arrived");
        return Ok(ExitCode::from(INTERRUPTED));
    };
    let mut trackers = magnet.trackers.clone();
    for t in &args.trackers {
        if !trackers.contains(t) {
            trackers.push(t.clone());
        }
    }
    let bytes = torrent_bytes(&meta, &trackers, &magnet.web_seeds);
    let info = meta.info();
    if let Some(out) = &args.output {
        crate::create::write_torrent(out, &bytes, args.force)?;
        if info.version() == MetaVersion::Hybrid
            && info.files().iter().any(|f| f.length > info.piece_length())
        {
            eprintln!(
                "note: {} has no v2 piece layers (they are not part of a magnet link's \
                 metadata): its v1 hashes verify it",
                out.display()
            );
        }
    }
    let hash = magnet.v1.map(|h| h.to_hex()).unwrap_or_default();
    if args.json {
        let v = serde_json::json!({
            "name": info.name(),
            "info_hash": hash,
            "files": info.files().iter().filter(|f| !f.is_pad()).count(),
            "total_length": info.total_length(),
            "metadata_bytes": info.raw().len(),
            "seconds": took.as_secs_f64(),
            "torrent": args.output.as_ref().map(|p| p.display().to_string()),
        });
        print_stdout(&format!("{v}\n"))?;
    } else {
        let mut text = format!(
            "name       {}\ninfo-hash  {hash}\nfiles      {} ({})\nmetadata   {} bytes in {:.3} s\n",
            info.name(),
            info.files().iter().filter(|f| !f.is_pad()).count(),
            human(info.total_length()),
            info.raw().len(),
            took.as_secs_f64(),
        );
        if let Some(out) = &args.output {
            text.push_str(&format!("torrent    {}\n", out.display()));
        }
        print_stdout(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a client in a temporary folder until the metadata is verified; returns it with the
/// time from adding the link, or `None` on Ctrl-C.
async fn fetch(
    args: &MetadataArgs,
    magnet: &Magnet,
    timeout: Option<Duration>,
) -> Result<Option<(std::sync::Arc<Metainfo>, Duration)>> {
    let scratch = tempfile::Builder::new()
        .prefix("webtorrent-metadata-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let mut config = ClientConfig::new(scratch.path());
    config.listen = args.listen.addr();
    let client = Client::new(config).await?;
    let mut options = AddOptions::default();
    options.peers.clone_from(&args.peers);
    options.trackers.clone_from(&args.trackers);
    let started = Instant::now();
    let torrent = match client.add_magnet(magnet, options).await {
        Ok(t) => t,
        Err(e) => {
            let _ = client.shutdown().await;
            return Err(e).context("cannot add the magnet link");
        }
    };
    let limit = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        meta = torrent.wait_metadata() => meta.map(|m| (m, started.elapsed())),
        r = tokio::signal::ctrl_c() => {
            r.context("cannot wait for Ctrl-C")?;
            client.shutdown().await.context("cannot stop the client")?;
            return Ok(None);
        }
        () = limit => {
            client.shutdown().await.context("cannot stop the client")?;
            bail!(
                "no peer sent the metadata within {:.1} s",
                timeout.unwrap_or_default().as_secs_f64()
            );
        }
    };
    // Whatever data arrived went to the scratch folder, removed here.
    client.shutdown().await.context("cannot stop the client")?;
    remove_scratch(scratch).await;
    match outcome {
        Some(found) => Ok(Some(found)),
        None => bail!("the torrent stopped before its metadata arrived"),
    }
}

/// Removes the scratch folder. The torrent's files may still be closing in it just after
/// the client stopped (a removal then fails with a file created meanwhile), so a failed
/// removal is tried again for up to a second before it is reported.
async fn remove_scratch(scratch: tempfile::TempDir) {
    let path = scratch.keep();
    let mut attempts = 0;
    loop {
        match std::fs::remove_dir_all(&path) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if attempts >= 20 => {
                tracing::warn!(path = %path.display(), "cannot remove the temporary folder: {e}");
                return;
            }
            Err(_) => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A .torrent of a fetched info dictionary (kept byte for byte, so the info-hash is the
/// link's) with the link's trackers (one tier each) and web seeds.
fn torrent_bytes(meta: &Metainfo, trackers: &[String], web_seeds: &[String]) -> Vec<u8> {
    let mut top = std::collections::BTreeMap::new();
    top.insert(
        b"info".to_vec(),
        OwnedValue::Raw(meta.info().raw().to_vec()),
    );
    if let Some(first) = trackers.first() {
        top.insert(
            b"announce".to_vec(),
            OwnedValue::Bytes(first.as_bytes().to_vec()),
        );
    }
    if trackers.len() > 1 {
        let tiers = trackers
            .iter()
            .map(|t| OwnedValue::List(vec![OwnedValue::Bytes(t.as_bytes().to_vec())]))
            .collect();
        top.insert(b"announce-list".to_vec(), OwnedValue::List(tiers));
    }
    if !web_seeds.is_empty() {
        let seeds = web_seeds
            .iter()
            .map(|u| OwnedValue::Bytes(u.as_bytes().to_vec()))
            .collect();
        top.insert(b"url-list".to_vec(), OwnedValue::List(seeds));
    }
    OwnedValue::Dict(top).encode()
}
