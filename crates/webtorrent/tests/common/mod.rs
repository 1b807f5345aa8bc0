//! Fixtures shared by the engine's end-to-end tests.

// Each test file uses some of them.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use webtorrent::metainfo::{MemoryFile, MetaVersion, Metainfo, TorrentBuilder};
use webtorrent::session::ClientConfig;

/// Bytes that differ from file to file and offset to offset.
pub(crate) fn data(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A multi-file hybrid torrent named `name` over `files` (paths relative to the torrent's
/// folder).
pub(crate) fn torrent(
    name: &str,
    piece_length: u64,
    files: &[(&'static str, Vec<u8>)],
) -> Metainfo {
    torrent_version(name, piece_length, files, MetaVersion::Hybrid)
}

/// Like [`torrent`], v1, v2 or hybrid.
pub(crate) fn torrent_version(
    name: &str,
    piece_length: u64,
    files: &[(&'static str, Vec<u8>)],
    version: MetaVersion,
) -> Metainfo {
    let memory = files
        .iter()
        .map(|(path, bytes)| MemoryFile::new(*path, bytes.clone()))
        .collect();
    TorrentBuilder::from_memory(name, memory)
        .piece_length(Some(piece_length))
        .meta_version(version)
        .build()
        .expect("valid torrent")
}

/// Writes `files` under `root/name`, as a download of the torrent would lay them out.
pub(crate) fn write_files(root: &Path, name: &str, files: &[(&'static str, Vec<u8>)]) {
    for (path, bytes) in files {
        let path = root.join(name).join(path);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
}

/// A client configuration for `dir`, listening on 127.0.0.1 only.
pub(crate) fn config(dir: &Path) -> ClientConfig {
    let mut config = ClientConfig::new(dir);
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    // Tests run side by side with the same torrents: each sees only the peers it is given.
    config.lsd = false;
    // Likewise no DHT, unless a test turns it on.
    config.dht = false;
    config
}

/// Logs of the engine on the test's output when `RUST_LOG` is set (e.g.
/// `RUST_LOG=webtorrent=debug cargo test ... -- --nocapture`).
pub(crate) fn logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Checks that `root/name` holds `files` (paths relative to the torrent's folder) byte for
/// byte.
pub(crate) fn assert_files(root: &Path, name: &str, files: &[(&'static str, Vec<u8>)]) {
    for (path, bytes) in files {
        let got = std::fs::read(root.join(name).join(path))
            .unwrap_or_else(|e| panic!("cannot read the downloaded {path}: {e}"));
        assert!(got == *bytes, "{path} differs");
    }
}

/// A client of [`config`] for `dir`.
pub(crate) async fn client(dir: &Path) -> webtorrent::session::Client {
    webtorrent::session::Client::new(config(dir))
        .await
        .expect("the client starts")
}

/// A client seeding `metainfo` from `files`, written under a fresh folder (kept alive by
/// the returned guard).
pub(crate) async fn seeder(
    metainfo: &Metainfo,
    files: &[(&'static str, Vec<u8>)],
) -> (webtorrent::session::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_files(dir.path(), metainfo.info().name(), files);
    let client = client(dir.path()).await;
    client
        .add(metainfo.clone(), webtorrent::session::AddOptions::default())
        .await
        .expect("seed");
    (client, dir)
}

/// The bare magnet link of `metainfo` (its wire info-hash, v1 or truncated v2, as `btih`)
/// naming `peer` in `x.pe`.
pub(crate) fn magnet(metainfo: &Metainfo, peer: SocketAddr) -> webtorrent::magnet::Magnet {
    webtorrent::magnet::Magnet::parse(&format!(
        "magnet:?xt=urn:btih:{}&x.pe={peer}",
        metainfo.info_hashes().wire().to_hex()
    ))
    .expect("magnet")
}

/// The bare v2 magnet link of `metainfo` (only its `btmh` info-hash) naming `peer` in
/// `x.pe`.
pub(crate) fn magnet_v2(metainfo: &Metainfo, peer: SocketAddr) -> webtorrent::magnet::Magnet {
    let v2 = metainfo.info_hashes().v2.expect("a torrent with a v2 hash");
    webtorrent::magnet::Magnet::parse(&format!(
        "magnet:?xt=urn:btmh:{}&x.pe={peer}",
        v2.to_multihash_hex()
    ))
    .expect("magnet")
}
