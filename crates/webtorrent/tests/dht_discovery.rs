//! Discovery through the DHT on loopback: a magnet link with no tracker and no peer
//! address downloads from a seeder found through a small DHT; the clients trade `PORT`
//! messages; a private torrent is never announced.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use webtorrent::dht::{Dht, DhtConfig, DhtTask, NodeId};
use webtorrent::session::{AddOptions, Client, ClientConfig};

mod common;

const LIMIT: Duration = Duration::from_secs(60);

/// A DHT of `n` plain nodes on 127.0.0.1, bootstrapped from the first.
async fn dht_nodes(n: usize) -> Vec<(Dht, DhtTask)> {
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut c = DhtConfig::v4(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        if i > 0 {
            let first: &(Dht, DhtTask) = &nodes[0];
            c.node.bootstrap = vec![first.0.local_addr_v4().expect("IPv4")];
        }
        nodes.push(Dht::bind(c).await.expect("bind"));
    }
    for (d, _) in &nodes[1..] {
        d.bootstrap().await.expect("bootstrap");
    }
    nodes
}

fn config(dir: &std::path::Path, bootstrap: SocketAddr) -> ClientConfig {
    let mut c = common::config(dir);
    c.dht = true;
    c.dht_bootstrap = vec![bootstrap.to_string()];
    c
}

async fn stored_peers(nodes: &[(Dht, DhtTask)]) -> usize {
    let mut n = 0;
    for (d, _) in nodes {
        n += d.stats().await.expect("running").peers;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_without_peers_downloads_through_the_dht() {
    common::logs();
    tokio::time::timeout(LIMIT, async {
        let nodes = dht_nodes(8).await;
        let boot = nodes[0].0.local_addr_v4().expect("IPv4");

        let files = [
            ("d/one.bin", common::data(81, 150_000)),
            ("d/two.bin", common::data(82, 7)),
        ];
        let metainfo = common::torrent("dht-found", 32 * 1024, &files);
        let seed_dir = tempfile::tempdir().expect("tempdir");
        common::write_files(seed_dir.path(), "dht-found", &files);
        let seeder = Client::new(config(seed_dir.path(), boot))
            .await
            .expect("seeder");
        assert!(seeder.dht().is_some(), "the seeder's DHT runs");
        seeder
            .add(metainfo.clone(), AddOptions::default())
            .await
            .expect("seed");
        // The seeder's announce reaches the DHT.
        while stored_peers(&nodes).await == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let magnet = webtorrent::magnet::Magnet::parse(&format!(
            "magnet:?xt=urn:btih:{}",
            metainfo.info_hashes().wire().to_hex()
        ))
        .expect("magnet");
        let dst = tempfile::tempdir().expect("tempdir");
        let leecher = Client::new(config(dst.path(), boot))
            .await
            .expect("leecher");
        let download = leecher
            .add_magnet(&magnet, AddOptions::default())
            .await
            .expect("add magnet");
        download.wait_done().await;
        common::assert_files(dst.path(), "dht-found", &files);

        // The two clients traded PORT messages: each DHT node pinged the other.
        let seeder_dht = seeder.dht().expect("runs").local_addr_v4().expect("IPv4");
        let leecher_dht = leecher.dht().expect("runs");
        let near = leecher_dht
            .find_node(seeder.dht().expect("runs").id())
            .await
            .expect("lookup");
        assert!(
            near.closest.iter().any(|n| n.addr == seeder_dht),
            "{near:?}"
        );

        leecher.shutdown().await.expect("shutdown");
        seeder.shutdown().await.expect("shutdown");
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_torrent_stays_off_the_dht() {
    common::logs();
    tokio::time::timeout(LIMIT, async {
        let nodes = dht_nodes(4).await;
        let boot = nodes[0].0.local_addr_v4().expect("IPv4");
        let files = [("p.bin", common::data(83, 40_000))];
        let metainfo = webtorrent::metainfo::TorrentBuilder::from_memory(
            "private-one",
            vec![webtorrent::metainfo::MemoryFile::new(
                "p.bin",
                files[0].1.clone(),
            )],
        )
        .piece_length(Some(16 * 1024))
        .private(true)
        .build()
        .expect("torrent");
        let dir = tempfile::tempdir().expect("tempdir");
        common::write_files(dir.path(), "private-one", &files);
        let client = Client::new(config(dir.path(), boot)).await.expect("client");
        client
            .add(metainfo.clone(), AddOptions::default())
            .await
            .expect("seed");
        // A public torrent added after it is announced; the private one never is.
        let public = common::torrent("public-one", 16 * 1024, &files);
        common::write_files(dir.path(), "public-one", &files);
        client
            .add(public.clone(), AddOptions::default())
            .await
            .expect("seed");
        while stored_peers(&nodes).await == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let private_hash = NodeId(metainfo.info_hashes().wire().0);
        let found = nodes[2].0.get_peers(private_hash).await.expect("lookup");
        assert!(
            found.is_empty(),
            "a private torrent was announced: {found:?}"
        );
        let public_hash = NodeId(public.info_hashes().wire().0);
        assert_eq!(
            nodes[3].0.get_peers(public_hash).await.expect("lookup"),
            vec![client.local_addr()]
        );
        client.shutdown().await.expect("shutdown");
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_client_finds_peers_through_its_saved_table() {
    common::logs();
    tokio::time::timeout(LIMIT, async {
        let nodes = dht_nodes(8).await;
        let boot = nodes[0].0.local_addr_v4().expect("IPv4");
        let files = [("r.bin", common::data(84, 90_000))];
        let metainfo = common::torrent("dht-restored", 16 * 1024, &files);
        let seed_dir = tempfile::tempdir().expect("tempdir");
        common::write_files(seed_dir.path(), "dht-restored", &files);
        let seeder = Client::new(config(seed_dir.path(), boot))
            .await
            .expect("seeder");
        seeder
            .add(metainfo.clone(), AddOptions::default())
            .await
            .expect("seed");
        while stored_peers(&nodes).await == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // A first session joins the DHT through the bootstrap node, then stops.
        let dst = tempfile::tempdir().expect("tempdir");
        let first = Client::new(config(dst.path(), boot)).await.expect("client");
        let dht = first.dht().expect("runs").clone();
        while dht.stats().await.expect("running").nodes_v4 < 4 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(dht);
        first.shutdown().await.expect("shutdown");
        drop(first);
        assert!(
            dst.path().join(".dht-table").is_file(),
            "the table is saved"
        );

        // The next one has no bootstrap node at all: the saved table is enough.
        let mut c = common::config(dst.path());
        c.dht = true;
        let second = Client::new(c).await.expect("client");
        let magnet = webtorrent::magnet::Magnet::parse(&format!(
            "magnet:?xt=urn:btih:{}",
            metainfo.info_hashes().wire().to_hex()
        ))
        .expect("magnet");
        let download = second
            .add_magnet(&magnet, AddOptions::default())
            .await
            .expect("add magnet");
        download.wait_done().await;
        common::assert_files(dst.path(), "dht-restored", &files);
        second.shutdown().await.expect("shutdown");
        seeder.shutdown().await.expect("shutdown");
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutable_torrent_follower_downloads_each_new_version() {
    use webtorrent::dht::{MutableItem, MutableTorrent, SigningKey, encode_pointer};
    use webtorrent::session::FollowOptions;
    common::logs();
    tokio::time::timeout(LIMIT, async {
        let nodes = dht_nodes(8).await;
        let boot = nodes[0].0.local_addr_v4().expect("IPv4");
        let v1_files = [("site.bin", common::data(85, 70_000))];
        let v2_files = [("site.bin", common::data(86, 90_000))];
        let v1 = common::torrent("mutable-v1", 16 * 1024, &v1_files);
        let v2 = common::torrent("mutable-v2", 16 * 1024, &v2_files);
        let seed_dir = tempfile::tempdir().expect("tempdir");
        common::write_files(seed_dir.path(), "mutable-v1", &v1_files);
        common::write_files(seed_dir.path(), "mutable-v2", &v2_files);
        let seeder = Client::new(config(seed_dir.path(), boot))
            .await
            .expect("seeder");
        for meta in [&v1, &v2] {
            seeder
                .add(meta.clone(), AddOptions::default())
                .await
                .expect("seed");
            let hash = NodeId(meta.info_hashes().wire().0);
            while nodes[5].0.get_peers(hash).await.expect("lookup").is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        let key = SigningKey::from_bytes(&[9; 32]);
        let salt = b"site".to_vec();
        let publish = |seq: i64, meta: &webtorrent::metainfo::Metainfo| {
            MutableItem::sign(&key, &salt, seq, encode_pointer(meta.info_hashes().wire()))
                .expect("sign")
        };
        let publisher = &nodes[1].0;
        assert!(
            publisher
                .put_mutable(publish(1, &v1), None)
                .await
                .expect("put")
                > 0
        );

        let dst = tempfile::tempdir().expect("tempdir");
        let subscriber = Client::new(config(dst.path(), boot))
            .await
            .expect("subscriber");
        let target = MutableTorrent {
            key: key.verifying_key().to_bytes(),
            salt: salt.clone(),
        };
        let mut options = FollowOptions::default();
        options.interval = Duration::from_millis(200);
        let mut follower = subscriber.follow_mutable(target, options);
        let first = follower.next().await.expect("v1");
        assert_eq!((first.seq, first.info_hash), (1, v1.info_hashes().wire()));
        first.torrent.wait_done().await;
        common::assert_files(dst.path(), "mutable-v1", &v1_files);

        assert!(
            publisher
                .put_mutable(publish(2, &v2), None)
                .await
                .expect("put")
                > 0
        );
        let second = follower.next().await.expect("v2");
        assert_eq!((second.seq, second.info_hash), (2, v2.info_hashes().wire()));
        second.torrent.wait_done().await;
        common::assert_files(dst.path(), "mutable-v2", &v2_files);
        // The old version left the session, not the disk.
        common::assert_files(dst.path(), "mutable-v1", &v1_files);

        // A rollback to seq 1 (the nodes refuse it; one that kept it would be ignored).
        let _ = publisher.put_mutable(publish(1, &v1), None).await;
        assert!(
            tokio::time::timeout(Duration::from_secs(1), follower.next())
                .await
                .is_err(),
            "a rollback is no new version"
        );
        subscriber.shutdown().await.expect("shutdown");
        seeder.shutdown().await.expect("shutdown");
    })
    .await
    .expect("finished in time");
}
