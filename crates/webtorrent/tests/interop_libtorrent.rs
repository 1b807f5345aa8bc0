//! Interop over loopback TCP with libtorrent (Debian's python3-libtorrent, driven by
//! interop/python/lt_peer.py): it seeds and we download, we seed and it downloads, with
//! v1, v2 and hybrid torrents, and by magnet link (v1, hybrid and v2-only: the piece layers
//! then travel in BEP 52 hash requests).
//! Skipped, with the reason printed, when `/usr/bin/python3` cannot import libtorrent.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;
use webtorrent::metainfo::MetaVersion;
use webtorrent::session::{AddOptions, Client};

mod common;

const PYTHON: &str = "/usr/bin/python3";
/// The torrent's name, so its folder under a download directory.
const NAME: &str = "interop";
const PIECE_LENGTH: u64 = 64 * 1024;
const LIMIT: Duration = Duration::from_secs(60);

fn libtorrent_missing() -> Option<String> {
    match Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => None,
        Ok(_) => Some(format!(
            "{PYTHON} cannot import libtorrent (python3-libtorrent)"
        )),
        Err(e) => Some(format!("{PYTHON} does not run: {e}")),
    }
}

fn driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/python/lt_peer.py")
}

fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a.bin", common::data(11, 1_500_007)),
        ("dir/b.bin", common::data(12, 17)),
        ("dir/c.bin", common::data(13, 900_001)),
    ]
}

/// A running libtorrent peer and its stdout, line by line.
struct LtPeer {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl LtPeer {
    fn start(torrent_file: &Path, save: &Path, extra: &[String]) -> Self {
        Self::start_with(
            &["--torrent".as_ref(), torrent_file.as_os_str()],
            save,
            extra,
        )
    }

    /// Like [`start`](Self::start), with the torrent given by `source` arguments.
    fn start_with(source: &[&std::ffi::OsStr], save: &Path, extra: &[String]) -> Self {
        let mut child = Command::new(PYTHON)
            .arg(driver())
            .args(source)
            .arg("--save")
            .arg(save)
            .args(["--timeout", "90"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for a line containing `needle`; returns it.
    async fn expect(&mut self, needle: &str) -> String {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(needle) {
                    return line;
                }
                assert!(!line.contains("timeout"), "libtorrent: {line}");
            }
            panic!("libtorrent exited before {needle}");
        };
        tokio::time::timeout(LIMIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no {needle} from libtorrent in time"))
    }

    async fn port(&mut self) -> u16 {
        let line = self.expect("\"port\"").await;
        line.trim_start_matches("{\"port\": ")
            .trim_end_matches('}')
            .parse()
            .expect("a port number")
    }
}

impl Drop for LtPeer {
    fn drop(&mut self) {
        // Closing stdin stops a seeder; kill covers everything else.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_seeds_we_download_v1() {
    libtorrent_seeds_we_download(MetaVersion::V1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_seeds_we_download_v2() {
    libtorrent_seeds_we_download(MetaVersion::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_seeds_we_download_hybrid() {
    libtorrent_seeds_we_download(MetaVersion::Hybrid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_seed_libtorrent_downloads_v1() {
    we_seed_libtorrent_downloads(MetaVersion::V1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_seed_libtorrent_downloads_v2() {
    we_seed_libtorrent_downloads(MetaVersion::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_seed_libtorrent_downloads_hybrid() {
    we_seed_libtorrent_downloads(MetaVersion::Hybrid).await;
}

async fn libtorrent_seeds_we_download(version: MetaVersion) {
    common::logs();
    if let Some(reason) = libtorrent_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let files = files();
    let metainfo = common::torrent_version(NAME, PIECE_LENGTH, &files, version);
    let lt_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(lt_dir.path(), NAME, &files);
    let torrent_file = lt_dir.path().join("interop.torrent");
    std::fs::write(&torrent_file, metainfo.to_bytes()).expect("write torrent");
    let mut lt = LtPeer::start(&torrent_file, lt_dir.path(), &["--seed".to_owned()]);
    let port = lt.port().await;
    lt.expect("seeding").await;

    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("client");
    let mut options = AddOptions::default();
    options
        .peers
        .push(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let download = client.add(metainfo, options).await.expect("add");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("download from libtorrent finishes in time");
    client.shutdown().await.expect("shutdown");
    common::assert_files(dir.path(), "interop", &files);
}

async fn we_seed_libtorrent_downloads(version: MetaVersion) {
    common::logs();
    if let Some(reason) = libtorrent_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let files = files();
    let metainfo = common::torrent_version(NAME, PIECE_LENGTH, &files, version);
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_files(dir.path(), NAME, &files);
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("client");
    let seeding = client
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("add");
    assert!(seeding.is_done());

    let lt_dir = tempfile::tempdir().expect("tempdir");
    let torrent_file = lt_dir.path().join("interop.torrent");
    std::fs::write(&torrent_file, metainfo.to_bytes()).expect("write torrent");
    let peer = format!("--peer=127.0.0.1:{}", client.local_addr().port());
    let mut lt = LtPeer::start(&torrent_file, lt_dir.path(), &[peer]);
    lt.port().await;
    lt.expect("\"done\"").await;
    assert!(seeding.stats().uploaded > 0);
    client.shutdown().await.expect("shutdown");
    common::assert_files(lt_dir.path(), "interop", &files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_seeds_we_download_by_magnet() {
    common::logs();
    if let Some(reason) = libtorrent_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let files = files();
    let metainfo = common::torrent_version(NAME, PIECE_LENGTH, &files, MetaVersion::Hybrid);
    let lt_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(lt_dir.path(), NAME, &files);
    let torrent_file = lt_dir.path().join("interop.torrent");
    std::fs::write(&torrent_file, metainfo.to_bytes()).expect("write torrent");
    let mut lt = LtPeer::start(&torrent_file, lt_dir.path(), &["--seed".to_owned()]);
    let port = lt.port().await;
    lt.expect("seeding").await;

    let magnet = webtorrent::magnet::Magnet::parse(&format!(
        "magnet:?xt=urn:btih:{}&x.pe=127.0.0.1:{port}",
        metainfo.info_hashes().wire().to_hex()
    ))
    .expect("magnet");
    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("client");
    let download = client
        .add_magnet(&magnet, AddOptions::default())
        .await
        .expect("add magnet");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("metadata and data from libtorrent in time");
    let fetched = download.metainfo().expect("metadata");
    assert_eq!(fetched.info().raw(), metainfo.info().raw());
    client.shutdown().await.expect("shutdown");
    common::assert_files(dir.path(), "interop", &files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_from_us_by_magnet() {
    common::logs();
    if let Some(reason) = libtorrent_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let files = files();
    let metainfo = common::torrent_version(NAME, PIECE_LENGTH, &files, MetaVersion::V1);
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_files(dir.path(), NAME, &files);
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("client");
    let seeding = client
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("add");
    assert!(seeding.is_done());

    // libtorrent knows the info-hash only: the metadata comes from us (ut_metadata).
    let magnet = format!(
        "magnet:?xt=urn:btih:{}",
        metainfo.info_hashes().wire().to_hex()
    );
    let lt_dir = tempfile::tempdir().expect("tempdir");
    let peer = format!("--peer=127.0.0.1:{}", client.local_addr().port());
    let mut lt = LtPeer::start_with(
        &["--magnet".as_ref(), magnet.as_ref()],
        lt_dir.path(),
        &[peer],
    );
    lt.port().await;
    lt.expect("\"done\"").await;
    client.shutdown().await.expect("shutdown");
    common::assert_files(lt_dir.path(), "interop", &files);
}

/// Files for the v2 magnet tests, in 16 KiB pieces: one file of 513 pieces (so its layer
/// takes a request of 512 hashes and one of a single hash), one of 55 pieces, one of less
/// than a piece.
fn v2_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("big.bin", common::data(21, 513 * 16 * 1024 - 100)),
        ("dir/b.bin", common::data(22, 17)),
        ("dir/c.bin", common::data(23, 900_001)),
    ]
}

fn v2_magnet(metainfo: &webtorrent::metainfo::Metainfo) -> String {
    let v2 = metainfo.info_hashes().v2.expect("a v2 torrent");
    format!("magnet:?xt=urn:btmh:{}", v2.to_multihash_hex())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_seeds_we_download_by_v2_magnet() {
    common::logs();
    if let Some(reason) = libtorrent_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let files = v2_files();
    let metainfo = common::torrent_version(NAME, 16 * 1024, &files, MetaVersion::V2);
    let lt_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(lt_dir.path(), NAME, &files);
    let torrent_file = lt_dir.path().join("interop.torrent");
    std::fs::write(&torrent_file, metainfo.to_bytes()).expect("write torrent");
    let mut lt = LtPeer::start(&torrent_file, lt_dir.path(), &["--seed".to_owned()]);
    let port = lt.port().await;
    lt.expect("seeding").await;

    // The info dictionary, then the piece layers (BEP 52 hash requests), then the data.
    let magnet = webtorrent::magnet::Magnet::parse(&format!(
        "{}&x.pe=127.0.0.1:{port}",
        v2_magnet(&metainfo)
    ))
    .expect("magnet");
    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("client");
    let download = client
        .add_magnet(&magnet, AddOptions::default())
        .await
        .expect("add magnet");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("metadata, hashes and data from libtorrent in time");
    let fetched = download.metainfo().expect("metadata");
    assert_eq!(fetched.info().raw(), metainfo.info().raw());
    for file in 0..metainfo.info().files().len() {
        assert_eq!(fetched.piece_layer(file), metainfo.piece_layer(file));
    }
    client.shutdown().await.expect("shutdown");
    common::assert_files(dir.path(), "interop", &files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_from_us_by_v2_magnet() {
    common::logs();
    if let Some(reason) = libtorrent_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let files = v2_files();
    let metainfo = common::torrent_version(NAME, 16 * 1024, &files, MetaVersion::V2);
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_files(dir.path(), NAME, &files);
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("client");
    let seeding = client
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("add");
    assert!(seeding.is_done());

    // libtorrent knows the v2 info-hash only: the metadata and the piece layers come from
    // us (ut_metadata, then BEP 52 hash requests).
    let magnet = v2_magnet(&metainfo);
    let lt_dir = tempfile::tempdir().expect("tempdir");
    let peer = format!("--peer=127.0.0.1:{}", client.local_addr().port());
    let mut lt = LtPeer::start_with(
        &["--magnet".as_ref(), magnet.as_ref()],
        lt_dir.path(),
        &[peer],
    );
    lt.port().await;
    lt.expect("\"done\"").await;
    client.shutdown().await.expect("shutdown");
    common::assert_files(lt_dir.path(), "interop", &files);
}
