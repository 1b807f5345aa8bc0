//! Web seeds against a real HTTP server: Werkzeug (Flask's static files, which honour
//! `Range`), when a Python with Flask is installed. Skipped otherwise.
//!
//! The interpreter is `python3` on `PATH`, or `WEBSEED_TEST_PYTHON`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use webtorrent_metainfo::{MemoryFile, MetaVersion, Metainfo, TorrentBuilder};
use webtorrent_storage::Layout;
use webtorrent_webseed::{WebSeedClient, WebSeedConfig, WebSeedUrl};

const SERVER: &str = r#"
import sys
from flask import Flask
from werkzeug.serving import make_server
app = Flask(__name__, static_folder=sys.argv[1], static_url_path="")
server = make_server("127.0.0.1", 0, app, threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
"#;

/// The server process, stopped when dropped.
struct Werkzeug(Child);

impl Drop for Werkzeug {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> String {
    std::env::var("WEBSEED_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn has_flask() -> bool {
    Command::new(python())
        .args(["-c", "import flask"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start(root: &Path) -> (Werkzeug, u16) {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(SERVER)
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let server = Werkzeug(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints its port");
    let port = line.trim().parse().expect("a port number");
    (server, port)
}

fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(17).wrapping_add(seed))
        .collect()
}

fn write_files(root: &Path, files: &[(&str, Vec<u8>)]) {
    for (path, data) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(p, data).expect("write");
    }
}

async fn fetch_all(client: &WebSeedClient, url: WebSeedUrl, torrent: &Metainfo) {
    let layout = Arc::new(Layout::from_metainfo(torrent));
    let seed = client.seed(url, Arc::clone(&layout));
    for piece in 0..layout.piece_count() {
        let data = seed.fetch_piece(piece).await.expect("piece fetched");
        assert!(
            layout.check_piece(piece, &data).expect("hash known"),
            "piece {piece}"
        );
    }
}

#[tokio::test]
async fn werkzeug_serves_torrents() {
    if !has_flask() {
        eprintln!("skipped: no `{}` with Flask", python());
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let files = [
        ("a.bin", bytes(1, 70_000)),
        ("sub dir/b #1?.txt", bytes(2, 5)),
        ("ünï cødé/c.dat", bytes(3, 40_000)),
    ];
    let tree: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(p, d)| (format!("pub/my torrent/{p}"), d.clone()))
        .collect();
    let tree: Vec<(&str, Vec<u8>)> = tree.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    write_files(dir.path(), &tree);
    let single = bytes(4, 50_000);
    write_files(dir.path(), &[("files/movie (1).mkv", single.clone())]);
    let (_server, port) = start(dir.path());
    let base = format!("http://127.0.0.1:{port}");
    let client = WebSeedClient::new(WebSeedConfig::default().with_timeout(Duration::from_secs(20)))
        .expect("client");

    for version in [MetaVersion::V1, MetaVersion::Hybrid, MetaVersion::V2] {
        let torrent = TorrentBuilder::from_memory(
            "my torrent",
            files
                .iter()
                .map(|(p, d)| MemoryFile::new(*p, d.clone()))
                .collect(),
        )
        .meta_version(version)
        .piece_length(Some(16 * 1024))
        .build()
        .expect("valid torrent");
        let url = WebSeedUrl::url_list(format!("{base}/pub/")).expect("url");
        fetch_all(&client, url, &torrent).await;
    }

    let torrent = TorrentBuilder::from_memory_file("movie (1).mkv", single)
        .piece_length(Some(16 * 1024))
        .build()
        .expect("valid torrent");
    let url = WebSeedUrl::url_list(format!("{base}/files/")).expect("url");
    fetch_all(&client, url, &torrent).await;
}
