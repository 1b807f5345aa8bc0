//! End-to-end: our seeder and our leecher over real TCP sockets on 127.0.0.1.

use std::time::Duration;

use webtorrent::session::{AddOptions, Client};

mod common;

/// The torrent's name, so its folder under a download directory.
const NAME: &str = "multi";
const PIECE_LENGTH: u64 = 32 * 1024;
const LIMIT: Duration = Duration::from_secs(60);

fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a.bin", common::data(1, 1_234_567)),
        ("sub/b.bin", common::data(2, 3)),
        ("sub/c.bin", common::data(3, 2_000_001)),
        ("d.txt", common::data(4, 65_537)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeder_to_leecher_multi_file() {
    let files = files();
    let metainfo = common::torrent(NAME, PIECE_LENGTH, &files);
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();

    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), NAME, &files);
    let seeder = Client::new(common::config(seed_dir.path()))
        .await
        .expect("seeder");
    let seeding = seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("add to seeder");
    assert!(seeding.is_done(), "the recheck finds every piece");
    let pieces = seeding.stats().total_pieces;
    assert_eq!(seeding.stats().verified_pieces, pieces);

    let leech_dir = tempfile::tempdir().expect("tempdir");
    let leecher = Client::new(common::config(leech_dir.path()))
        .await
        .expect("leecher");
    let mut options = AddOptions::default();
    options.peers.push(seeder.local_addr());
    let download = leecher
        .add(metainfo.clone(), options)
        .await
        .expect("add to leecher");
    assert!(!download.is_done());
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("download finishes in time");

    let stats = download.stats();
    assert_eq!(stats.verified_pieces, pieces);
    // Pad files count in the pieces: at least the files' bytes were downloaded.
    assert!(stats.downloaded >= total, "{stats:?}");
    assert!(seeding.stats().uploaded >= total);

    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
    common::assert_files(leech_dir.path(), "multi", &files);

    // Added again, the torrent is complete at once (resume data or recheck).
    let again = Client::new(common::config(leech_dir.path()))
        .await
        .expect("again");
    let seeding = again
        .add(metainfo, AddOptions::default())
        .await
        .expect("add");
    assert!(seeding.is_done());
    assert_eq!(seeding.stats().downloaded, 0);
    again.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leecher_connects_to_seeder_that_dials_it() {
    // The seeder dials the leecher: inbound connections on the leecher's side download too.
    let files = vec![("only.bin", common::data(9, 300_001))];
    let metainfo = common::torrent(NAME, PIECE_LENGTH, &files);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), NAME, &files);
    let seeder = Client::new(common::config(seed_dir.path()))
        .await
        .expect("seeder");
    let seeding = seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("add");

    let leech_dir = tempfile::tempdir().expect("tempdir");
    let leecher = Client::new(common::config(leech_dir.path()))
        .await
        .expect("leecher");
    let download = leecher
        .add(metainfo, AddOptions::default())
        .await
        .expect("add");
    seeding.add_peer(leecher.local_addr()).await.expect("dial");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("download finishes in time");
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
    let got = std::fs::read(leech_dir.path().join("multi/only.bin")).expect("read");
    assert!(got == files[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_twice_is_refused() {
    let files = vec![("x.bin", common::data(5, 1000))];
    let metainfo = common::torrent(NAME, PIECE_LENGTH, &files);
    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("client");
    client
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("first");
    assert!(client.add(metainfo, AddOptions::default()).await.is_err());
    client.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_sending_bad_data_is_banned() {
    let files = vec![("x.bin", common::data(7, 200_000))];
    let metainfo = common::torrent(NAME, PIECE_LENGTH, &files);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), NAME, &files);
    let seeder = Client::new(common::config(seed_dir.path()))
        .await
        .expect("seeder");
    let seeding = seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("add");
    assert!(seeding.is_done());
    // The data changes on disk after the check: the seeder now serves corrupt pieces.
    std::fs::write(
        seed_dir.path().join("multi/x.bin"),
        common::data(8, 200_000),
    )
    .expect("write");

    let leech_dir = tempfile::tempdir().expect("tempdir");
    let leecher = Client::new(common::config(leech_dir.path()))
        .await
        .expect("leecher");
    let mut options = AddOptions::default();
    options.peers.push(seeder.local_addr());
    let download = leecher.add(metainfo, options).await.expect("add");
    // The first failed piece bans the seeder; nothing unverified counts as downloaded.
    tokio::time::timeout(LIMIT, async {
        while seeding.stats().uploaded == 0 || download.stats().peers > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the bad peer is dropped");
    let stats = download.stats();
    assert_eq!(stats.verified_pieces, 0);
    assert_eq!(stats.downloaded, 0);
    // Banned: dialing it again does not connect.
    download
        .add_peer(seeder.local_addr())
        .await
        .expect("torrent runs");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(download.stats().peers, 0);
    assert_eq!(seeding.stats().peers, 0);
    assert!(!download.is_done());
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_of_one_seeder_and_two_leechers() {
    let files = files();
    let metainfo = common::torrent(NAME, PIECE_LENGTH, &files);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), NAME, &files);
    let seeder = Client::new(common::config(seed_dir.path()))
        .await
        .expect("seeder");
    seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("add");

    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let a = Client::new(common::config(dir_a.path())).await.expect("a");
    let b = Client::new(common::config(dir_b.path())).await.expect("b");
    let mut options = AddOptions::default();
    options.peers.push(seeder.local_addr());
    let download_a = a.add(metainfo.clone(), options).await.expect("add a");
    let mut options = AddOptions::default();
    options.peers.extend([seeder.local_addr(), a.local_addr()]);
    let download_b = b.add(metainfo, options).await.expect("add b");
    tokio::time::timeout(LIMIT, async {
        download_a.wait_done().await;
        download_b.wait_done().await;
    })
    .await
    .expect("both finish in time");
    // Leechers connected to each other as well as to the seeder.
    assert!(download_b.stats().peers >= 1);
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
    for dir in [dir_a.path(), dir_b.path()] {
        common::assert_files(dir, "multi", &files);
    }
}
