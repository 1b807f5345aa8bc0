//! Interop over loopback TCP with libtorrent (Debian's python3-libtorrent, driven by
//! interop/python/lt_peer.py): it seeds and we download, we seed and it downloads.
//! Skipped, with the reason printed, when `/usr/bin/python3` cannot import libtorrent.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::sync::mpsc;
use webtorrent::metainfo::{MemoryFile, Metainfo, TorrentBuilder};
use webtorrent::session::{AddOptions, Client, ClientConfig};

const PYTHON: &str = "/usr/bin/python3";
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

fn data(seed: u32, len: usize) -> Vec<u8> {
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

fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a.bin", data(11, 1_500_007)),
        ("dir/b.bin", data(12, 17)),
        ("dir/c.bin", data(13, 900_001)),
    ]
}

fn torrent(files: &[(&'static str, Vec<u8>)]) -> Metainfo {
    let memory = files
        .iter()
        .map(|(path, bytes)| MemoryFile::new(*path, bytes.clone()))
        .collect();
    TorrentBuilder::from_memory("interop", memory)
        .piece_length(Some(64 * 1024))
        .build()
        .expect("valid torrent")
}

fn write_files(root: &Path, files: &[(&'static str, Vec<u8>)]) {
    for (path, bytes) in files {
        let path = root.join("interop").join(path);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
}

fn config(dir: &Path) -> ClientConfig {
    let mut config = ClientConfig::new(dir);
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    config
}

/// A running libtorrent peer and its stdout, line by line.
struct LtPeer {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl LtPeer {
    fn start(torrent_file: &Path, save: &Path, extra: &[String]) -> Self {
        let mut child = Command::new(PYTHON)
            .arg(driver())
            .arg("--torrent")
            .arg(torrent_file)
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
async fn libtorrent_seeds_we_download() {
    if let Some(reason) = libtorrent_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let files = files();
    let metainfo = torrent(&files);
    let lt_dir = tempfile::tempdir().expect("tempdir");
    write_files(lt_dir.path(), &files);
    let torrent_file = lt_dir.path().join("interop.torrent");
    std::fs::write(&torrent_file, metainfo.to_bytes()).expect("write torrent");
    let mut lt = LtPeer::start(&torrent_file, lt_dir.path(), &["--seed".to_owned()]);
    let port = lt.port().await;
    lt.expect("seeding").await;

    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::new(config(dir.path())).await.expect("client");
    let mut options = AddOptions::default();
    options
        .peers
        .push(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let download = client.add(metainfo, options).await.expect("add");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("download from libtorrent finishes in time");
    client.shutdown().await.expect("shutdown");
    for (path, bytes) in &files {
        let got = std::fs::read(dir.path().join("interop").join(path)).expect("read");
        assert!(got == *bytes, "{path} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_seed_libtorrent_downloads() {
    if let Some(reason) = libtorrent_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let files = files();
    let metainfo = torrent(&files);
    let dir = tempfile::tempdir().expect("tempdir");
    write_files(dir.path(), &files);
    let client = Client::new(config(dir.path())).await.expect("client");
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
    for (path, bytes) in &files {
        let got = std::fs::read(lt_dir.path().join("interop").join(path)).expect("read");
        assert!(got == *bytes, "{path} differs");
    }
}
