//! Creates a torrent and prints its info-hashes and the time taken.
//!
//! `cargo run --release -p webtorrent-metainfo --example create -- PATH [v1|v2|hybrid] [OUT]`

use std::time::Instant;

use webtorrent_metainfo::{MetaVersion, TorrentBuilder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: create PATH [v1|v2|hybrid] [OUT]")?;
    let version = match args.next().as_deref() {
        Some("v1") => MetaVersion::V1,
        Some("v2") => MetaVersion::V2,
        _ => MetaVersion::Hybrid,
    };
    let out = args.next();
    let start = Instant::now();
    let torrent = TorrentBuilder::new(path).meta_version(version).build()?;
    let elapsed = start.elapsed();
    let hashes = torrent.info_hashes();
    println!(
        "{version} piece length {} in {:.3}s v1 {} v2 {}",
        torrent.info().piece_length(),
        elapsed.as_secs_f64(),
        hashes.v1.map(|h| h.to_hex()).unwrap_or_default(),
        hashes.v2.map(|h| h.to_hex()).unwrap_or_default(),
    );
    if let Some(out) = out {
        std::fs::write(out, torrent.to_bytes())?;
    }
    Ok(())
}
