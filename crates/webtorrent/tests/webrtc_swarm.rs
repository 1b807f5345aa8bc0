//! WebTorrent peers end to end: clients that find each other only through a WebSocket
//! tracker (bittorrent-tracker 11, interop/node/ws_tracker.mjs, on 127.0.0.1) and trade
//! pieces over WebRTC data channels.
//!
//! Skipped, with the reason printed, when `node` or the npm packages of interop/ are
//! missing (`cargo xtask setup` installs them).
#![cfg(feature = "webrtc")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use webtorrent::choker::Transport;
use webtorrent::session::{AddOptions, TorrentEvent};

mod common;

const LIMIT: Duration = Duration::from_secs(90);

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// Kills the tracker however the test ends.
struct Tracker(Child, u16);

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Tracker {
    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.1)
    }
}

/// bittorrent-tracker's WebSocket server on a free loopback port; `None` (test skipped)
/// without node or the package.
fn tracker() -> Option<Tracker> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let package = interop_dir().join("node_modules/bittorrent-tracker/package.json");
    if !node || !package.is_file() {
        eprintln!("skipped: node or interop/node_modules missing (run `cargo xtask setup`)");
        return None;
    }
    let mut child = Command::new("node")
        .arg(interop_dir().join("node/ws_tracker.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("port line");
    let port = line
        .split("\"port\":")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .find(|s| !s.is_empty())
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Some(Tracker(child, port))
}

fn with_tracker(url: &str) -> AddOptions {
    let mut options = AddOptions::default();
    options.trackers = vec![url.to_owned()];
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_trade_pieces_over_webrtc_only() {
    common::logs();
    let Some(tracker) = tracker() else { return };
    let files = [
        ("a.bin", common::data(201, 1_500_000)),
        ("sub/b.bin", common::data(202, 333_333)),
    ];
    let metainfo = common::torrent("rtc1", 32 * 1024, &files);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "rtc1", &files);
    let seeder = common::client(seed_dir.path()).await;
    let mut seeding = with_tracker(&tracker.url());
    seeding.seed_mode = true;
    seeder.add(metainfo.clone(), seeding).await.expect("seed");

    let dir = tempfile::tempdir().expect("tempdir");
    let leecher = common::client(dir.path()).await;
    let download = leecher
        .add(metainfo, with_tracker(&tracker.url()))
        .await
        .expect("add");
    let mut events = download.events();
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the download completes over WebRTC");
    common::assert_files(dir.path(), "rtc1", &files);
    let mut transports = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let TorrentEvent::PeerConnected {
            transport, addr, ..
        } = event
        {
            transports.push((transport, addr));
        }
    }
    assert!(
        !transports.is_empty()
            && transports
                .iter()
                .all(|(t, a)| *t == Transport::WebRtc && a.ip().is_unspecified()),
        "peers: {transports:?}"
    );
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}
