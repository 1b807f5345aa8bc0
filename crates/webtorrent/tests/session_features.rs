//! The engine's features end to end on 127.0.0.1: `Client::seed`, the event stream, rate
//! limits, a swarm in which leechers trade pieces, and trackers.

use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use webtorrent::metainfo::MetaVersion;
use webtorrent::ratelimit::Limit;
use webtorrent::session::{AddOptions, Client, TorrentEvent};

mod common;

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(60);

/// Collects events until `until` matches one (or the time runs out).
async fn events_until(
    rx: &mut broadcast::Receiver<TorrentEvent>,
    until: impl Fn(&TorrentEvent) -> bool,
) -> Vec<TorrentEvent> {
    let mut seen = Vec::new();
    let collect = async {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    let stop = until(&event);
                    seen.push(event);
                    if stop {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    };
    let _ = tokio::time::timeout(LIMIT, collect).await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_a_folder_then_download_it_with_events() {
    let files = [
        ("x/one.bin", common::data(11, 300_000)),
        ("x/deep/two.bin", common::data(12, 70_001)),
    ];
    let src = tempfile::tempdir().expect("tempdir");
    for (path, bytes) in &files {
        let path = src.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
    let seeder = Client::new(common::config(src.path()))
        .await
        .expect("seeder");
    let seeding = seeder
        .seed(src.path().join("x"))
        .await
        .expect("seed a folder");
    assert!(seeding.is_done(), "created from the data: complete at once");
    let metainfo = (*seeding.metainfo().expect("known when seeding")).clone();
    assert_eq!(metainfo.info().name(), "x");
    // The resume data saved next to the data lets a later start skip the recheck.
    let resume = src
        .path()
        .join(format!(".{}.resume", seeding.info_hash().to_hex()));
    assert!(resume.is_file(), "no resume data at {}", resume.display());

    let dst = tempfile::tempdir().expect("tempdir");
    let leecher = Client::new(common::config(dst.path()))
        .await
        .expect("leecher");
    let download = leecher
        .add(metainfo, AddOptions::default())
        .await
        .expect("add");
    let mut events = download.events();
    download
        .add_peer(seeder.local_addr())
        .await
        .expect("add peer");
    let seen = events_until(&mut events, |e| *e == TorrentEvent::Completed).await;
    assert!(download.is_done(), "events: {seen:?}");
    let connected = seen
        .iter()
        .filter(|e| matches!(e, TorrentEvent::PeerConnected { outbound: true, .. }))
        .count();
    assert_eq!(connected, 1, "{seen:?}");
    let verified = seen
        .iter()
        .filter(|e| matches!(e, TorrentEvent::PieceVerified(_)))
        .count();
    assert_eq!(verified as u32, download.stats().total_pieces, "{seen:?}");
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, TorrentEvent::PieceFailed(_))),
        "{seen:?}"
    );
    let stats = download.stats();
    assert_eq!(stats.left, 0);
    for (path, bytes) in &files {
        let got = std::fs::read(dst.path().join(path)).expect("downloaded file");
        assert!(got == *bytes, "{path} differs");
    }
    leecher.shutdown().await.expect("leecher shutdown");
    seeder.shutdown().await.expect("seeder shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_limit_holds() {
    let files = [("f.bin", common::data(21, 640 * 1024))];
    let metainfo = common::torrent("limited", 64 * 1024, &files);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "limited", &files);
    let mut config = common::config(seed_dir.path());
    // 128 KiB/s with a burst of one second: 640 KiB take at least (640 - 128) / 128 = 4 s.
    config.upload_limit = Limit::bytes_per_second(128 * 1024);
    let seeder = Client::new(config).await.expect("seeder");
    seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");

    let dst = tempfile::tempdir().expect("tempdir");
    let leecher = Client::new(common::config(dst.path()))
        .await
        .expect("leecher");
    let mut options = AddOptions::default();
    options.peers.push(seeder.local_addr());
    let started = Instant::now();
    let download = leecher.add(metainfo, options).await.expect("add");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the download completes");
    let took = started.elapsed();
    // A lower bound only: slower is never a failure.
    assert!(
        took >= Duration::from_millis(3_500),
        "640 KiB at 128 KiB/s came in {took:?}"
    );
    let got = std::fs::read(dst.path().join("limited").join("f.bin")).expect("file");
    assert!(got == files[0].1);
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_torrent_download_limit_holds() {
    let files = [("g.bin", common::data(31, 512 * 1024))];
    let metainfo = common::torrent("slow", 32 * 1024, &files);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "slow", &files);
    let seeder = Client::new(common::config(seed_dir.path()))
        .await
        .expect("seeder");
    seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");

    let dst = tempfile::tempdir().expect("tempdir");
    let leecher = Client::new(common::config(dst.path()))
        .await
        .expect("leecher");
    let mut options = AddOptions::default();
    options.peers.push(seeder.local_addr());
    // 128 KiB/s: 512 KiB take at least (512 - 128) / 128 = 3 s.
    options.download_limit = Limit::bytes_per_second(128 * 1024);
    let started = Instant::now();
    let download = leecher.add(metainfo, options).await.expect("add");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the download completes");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2_500),
        "512 KiB at 128 KiB/s came in {took:?}"
    );
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leechers_trade_pieces_while_the_seeder_is_slow() {
    // A seeder limited to 256 KiB/s and three leechers connected to it and to each other:
    // each leecher gets about a third of the pieces from the seeder and the rest from the
    // others (rarest first spreads them), so every leecher uploads.
    let files = [("s.bin", common::data(41, 3 * 512 * 1024))];
    let metainfo = common::torrent("swarm", 32 * 1024, &files);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "swarm", &files);
    let mut config = common::config(seed_dir.path());
    config.upload_limit = Limit::bytes_per_second(256 * 1024);
    let seeder = Client::new(config).await.expect("seeder");
    seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");

    let mut leechers = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = Client::new(common::config(dir.path()))
            .await
            .expect("leecher");
        dirs.push(dir);
        leechers.push(client);
    }
    let addrs: Vec<_> = leechers.iter().map(Client::local_addr).collect();
    let mut torrents = Vec::new();
    for (i, client) in leechers.iter().enumerate() {
        let mut options = AddOptions::default();
        options.peers.push(seeder.local_addr());
        // Each dials the leechers before it; the others dial it.
        options.peers.extend(addrs[..i].iter().copied());
        torrents.push(client.add(metainfo.clone(), options).await.expect("add"));
    }
    for torrent in &torrents {
        tokio::time::timeout(LIMIT, torrent.wait_done())
            .await
            .expect("every leecher completes");
    }
    let uploaded: Vec<u64> = torrents.iter().map(|t| t.stats().uploaded).collect();
    assert!(
        uploaded.iter().filter(|&&u| u > 0).count() >= 2,
        "leechers should serve each other: uploaded {uploaded:?}"
    );
    for dir in &dirs {
        let got = std::fs::read(dir.path().join("swarm").join("s.bin")).expect("file");
        assert!(got == files[0].1);
    }
    for client in leechers {
        client.shutdown().await.expect("shutdown");
    }
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_only_torrent_between_our_clients() {
    // Every file of a v2 torrent starts a piece; the tails are padding on the wire.
    let files = [
        ("a.bin", common::data(51, 100_000)),
        ("b/c.bin", common::data(52, 3)),
        ("b/d.bin", common::data(53, 40_000)),
    ];
    let metainfo = common::torrent_version("v2", 32 * 1024, &files, MetaVersion::V2);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "v2", &files);
    let seeder = Client::new(common::config(seed_dir.path()))
        .await
        .expect("seeder");
    let seeding = seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");
    assert!(seeding.is_done(), "the recheck finds every v2 piece");

    let dst = tempfile::tempdir().expect("tempdir");
    let leecher = Client::new(common::config(dst.path()))
        .await
        .expect("leecher");
    let mut options = AddOptions::default();
    options.peers.push(seeder.local_addr());
    let download = leecher.add(metainfo, options).await.expect("add");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the download completes");
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(download.stats().downloaded, total, "padding is not counted");
    for (path, bytes) in &files {
        let got = std::fs::read(dst.path().join("v2").join(path)).expect("file");
        assert!(got == *bytes, "{path} differs");
        // Padding is never written: each file has its own length.
        assert_eq!(got.len(), bytes.len());
    }
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pipelined_request_is_answered() {
    // A leecher that sends hundreds of requests in one burst, as libtorrent and qBittorrent
    // do: every one gets its block (none is lost between batches of messages).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use webtorrent::types::{BlockRef, PeerId};
    use webtorrent::wire::{Decoder, Handshake, Message, Reserved};

    const BLOCK: u32 = 16 * 1024;
    let files = [("p.bin", common::data(61, 40 * 64 * 1024))];
    let metainfo = common::torrent("pipelined", 64 * 1024, &files);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "pipelined", &files);
    let seeder = Client::new(common::config(seed_dir.path()))
        .await
        .expect("seeder");
    let seeding = seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");
    let pieces = seeding.stats().total_pieces;

    let talk = async {
        let mut stream = tokio::net::TcpStream::connect(seeder.local_addr())
            .await
            .expect("connect");
        let ours = Handshake::new(
            Reserved::NONE.with_fast(true),
            seeding.info_hash(),
            PeerId(*b"-XX0001-pipelinetest"),
        );
        stream.write_all(&ours.to_bytes()).await.expect("handshake");
        let mut out = Vec::new();
        Message::HaveNone.encode(&mut out);
        Message::Interested.encode(&mut out);
        stream.write_all(&out).await.expect("interested");
        let decoder = Decoder::for_pieces(pieces);
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut handshake_done = false;
        let mut sent = false;
        let mut answered = 0usize;
        let wanted = (pieces * 4) as usize;
        while answered < wanted {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the seeder closed after {answered} blocks");
            buf.extend_from_slice(&chunk[..n]);
            if !handshake_done {
                if buf.len() < 68 {
                    continue;
                }
                buf.drain(..68);
                handshake_done = true;
            }
            let mut at = 0;
            while let Some((message, used)) = decoder.decode(&buf[at..]).expect("valid frames") {
                at += used;
                match message {
                    Message::Unchoke if !sent => {
                        // Every block of the torrent in one write.
                        let mut burst = Vec::new();
                        for piece in 0..pieces {
                            for i in 0..4 {
                                Message::Request(BlockRef::new(piece, i * BLOCK, BLOCK))
                                    .encode(&mut burst);
                            }
                        }
                        stream.write_all(&burst).await.expect("requests");
                        sent = true;
                    }
                    Message::Piece { .. } => answered += 1,
                    Message::Reject(block) => panic!("{block:?} rejected"),
                    _ => {}
                }
            }
            buf.drain(..at);
        }
        answered
    };
    let answered = tokio::time::timeout(LIMIT, talk)
        .await
        .expect("every request is answered in time");
    assert_eq!(answered, (pieces * 4) as usize);
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnet_download_fetches_the_metadata_from_a_peer() {
    common::logs();
    let files = [
        ("m/one.bin", common::data(71, 200_000)),
        ("m/two.bin", common::data(72, 33)),
    ];
    let metainfo = common::torrent("magnetic", 32 * 1024, &files);
    let (seeder, _seed_dir) = common::seeder(&metainfo, &files).await;

    // Only the info-hash and the seeder's address: no tracker, no .torrent.
    let magnet = common::magnet(&metainfo, seeder.local_addr());
    let dst = tempfile::tempdir().expect("tempdir");
    let leecher = common::client(dst.path()).await;
    let download = leecher
        .add_magnet(&magnet, AddOptions::default())
        .await
        .expect("add magnet");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the download completes");
    let fetched = download.metainfo().expect("the metadata is in");
    assert_eq!(fetched.info().raw(), metainfo.info().raw());
    common::assert_files(dst.path(), "magnetic", &files);
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_only_magnet_download_fetches_the_piece_layers() {
    common::logs();
    // A file of 530 pieces (two hash requests of at most 512), one of a few pieces and its
    // copy (one root, one layer for both), and one of less than a piece (checked against
    // its root alone).
    let files = [
        ("v/big.bin", common::data(81, 530 * 16 * 1024 - 999)),
        ("v/mid.bin", common::data(82, 70_000)),
        ("v/mid-copy.bin", common::data(82, 70_000)),
        ("v/small.bin", common::data(83, 5_000)),
    ];
    let metainfo = common::torrent_version(
        "v2only",
        16 * 1024,
        &files,
        webtorrent::metainfo::MetaVersion::V2,
    );
    let hashes = metainfo.info_hashes();
    assert!(hashes.v1.is_none());
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "v2only", &files);
    let seeder = Client::new(common::config(seed_dir.path()))
        .await
        .expect("seeder");
    seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");

    let magnet = common::magnet_v2(&metainfo, seeder.local_addr());
    let dst = tempfile::tempdir().expect("tempdir");
    let leecher = Client::new(common::config(dst.path()))
        .await
        .expect("leecher");
    let download = leecher
        .add_magnet(&magnet, AddOptions::default())
        .await
        .expect("a v2-only magnet is taken");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the download completes");
    let fetched = download.metainfo().expect("the metadata is in");
    assert_eq!(fetched.info().raw(), metainfo.info().raw());
    // The fetched layers are the torrent's: the leecher can serve them and export them.
    assert!(fetched.has_all_piece_layers());
    for file in 0..metainfo.info().files().len() {
        assert_eq!(fetched.piece_layer(file), metainfo.piece_layer(file));
    }
    let exported = webtorrent::metainfo::Metainfo::from_bytes(&fetched.to_bytes()).expect("export");
    assert_eq!(exported.info_hashes(), hashes);
    common::assert_files(dst.path(), "v2only", &files);

    // A third client fetches everything from the leecher alone, hashes included.
    seeder.shutdown().await.expect("shutdown");
    let magnet = common::magnet_v2(&metainfo, leecher.local_addr());
    let third_dir = tempfile::tempdir().expect("tempdir");
    let third = Client::new(common::config(third_dir.path()))
        .await
        .expect("third");
    let again = third
        .add_magnet(&magnet, AddOptions::default())
        .await
        .expect("add magnet");
    tokio::time::timeout(LIMIT, again.wait_done())
        .await
        .expect("the download from the leecher completes");
    common::assert_files(third_dir.path(), "v2only", &files);
    third.shutdown().await.expect("shutdown");
    leecher.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_find_each_other_by_local_service_discovery() {
    // No tracker, no address given: the BEP 14 multicast group on the loopback interface.
    let files = [("lsd.bin", common::data(91, 150_000))];
    let metainfo = common::torrent("lsd", 32 * 1024, &files);
    let lsd = |dir: &std::path::Path| {
        let mut config = common::config(dir);
        config.lsd = true;
        config.lsd_interface = std::net::Ipv4Addr::LOCALHOST;
        config
    };
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "lsd", &files);
    let seeder = Client::new(lsd(seed_dir.path())).await.expect("seeder");
    seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");
    let dst = tempfile::tempdir().expect("tempdir");
    let leecher = Client::new(lsd(dst.path())).await.expect("leecher");
    let download = leecher
        .add(metainfo, AddOptions::default())
        .await
        .expect("add");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the peers find each other on the local network");
    let got = std::fs::read(dst.path().join("lsd").join("lsd.bin")).expect("file");
    assert!(got == files[0].1);
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_torrent_answers_to_its_v2_magnet_link() {
    common::logs();
    let files = [
        ("h/one.bin", common::data(75, 150_000)),
        ("h/two.bin", common::data(76, 40_000)),
    ];
    let metainfo = common::torrent("hybrid-by-v2", 16 * 1024, &files);
    let (seeder, _seed_dir) = common::seeder(&metainfo, &files).await;
    // Only the v2 info-hash: peers are met under its truncated form.
    let v2 = metainfo
        .info_hashes()
        .v2
        .expect("a hybrid torrent has a v2 hash");
    let magnet = common::magnet_v2(&metainfo, seeder.local_addr());
    let dst = tempfile::tempdir().expect("tempdir");
    let leecher = common::client(dst.path()).await;
    let download = leecher
        .add_magnet(&magnet, AddOptions::default())
        .await
        .expect("add magnet");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the download completes");
    common::assert_files(dst.path(), "hybrid-by-v2", &files);
    // The seeder is registered under both hashes: adding it again by either is refused.
    let again = webtorrent::magnet::Magnet::parse(&format!(
        "magnet:?xt=urn:btmh:{}",
        v2.to_multihash_hex()
    ))
    .expect("magnet");
    assert!(matches!(
        seeder.add_magnet(&again, AddOptions::default()).await,
        Err(webtorrent::session::SessionError::Duplicate(_))
    ));
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}
