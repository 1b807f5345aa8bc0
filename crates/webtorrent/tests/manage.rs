//! Managing torrents on 127.0.0.1: the peer list, pause and resume, removing with or
//! without the data.

use std::time::Duration;

use webtorrent::choker::Transport;
use webtorrent::metainfo::MetaVersion;
use webtorrent::ratelimit::Limit;
use webtorrent::session::{AddOptions, Client, Torrent};

mod common;

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(60);

/// Waits until `check` holds, polling; panics after [`LIMIT`].
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn peer_count(t: &Torrent) -> usize {
    t.peers().await.expect("peers").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_pause_resume_remove() {
    common::logs();
    let files = [("a.bin", common::data(5, 2 << 20))];
    let metainfo = common::torrent_version("manage", 64 * 1024, &files, MetaVersion::V1);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "manage", &files);
    let mut config = common::config(seed_dir.path());
    // 2 MiB at 256 KiB/s: 8 s, time enough to pause midway.
    config.upload_limit = Limit::bytes_per_second(256 * 1024);
    let seeder = Client::new(config).await.expect("seeder");
    seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");

    let dir = tempfile::tempdir().expect("tempdir");
    let leecher = common::client(dir.path()).await;
    let mut options = AddOptions::default();
    options.peers.push(seeder.local_addr());
    let torrent = leecher
        .add(metainfo.clone(), options.clone())
        .await
        .expect("add");
    until("the seeder connects", async || {
        peer_count(&torrent).await == 1
    })
    .await;
    let peers = torrent.peers().await.expect("peers");
    assert_eq!(peers[0].addr, seeder.local_addr());
    assert_eq!(peers[0].transport, Transport::Tcp);
    assert_eq!(peers[0].peer_id, seeder.peer_id());
    assert!(peers[0].outbound && !peers[0].web_seed);
    assert_eq!(peers[0].transport.to_string(), "tcp");

    torrent.pause().await.expect("pause");
    until("paused", async || torrent.is_paused()).await;
    until("the peer leaves", async || peer_count(&torrent).await == 0).await;
    assert!(!torrent.is_done());
    seeder.set_limits(Limit::Unlimited, Limit::Unlimited);
    torrent.resume().await.expect("resume");
    until("resumed", async || !torrent.is_paused()).await;
    tokio::time::timeout(LIMIT, torrent.wait_done())
        .await
        .expect("done after resuming");
    common::assert_files(dir.path(), "manage", &files);

    // Removed keeping the data: added again, it is complete at once.
    leecher.remove(&torrent, false).await.expect("remove");
    assert!(
        torrent.peers().await.is_err(),
        "a removed torrent has stopped"
    );
    assert!(leecher.remove(&torrent, false).await.is_err());
    let again = leecher
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("add again");
    assert!(again.is_done());
    // Removed with the data: the file and the resume data are gone.
    leecher
        .remove(&again, true)
        .await
        .expect("remove with data");
    assert!(!dir.path().join("manage").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");

    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}
