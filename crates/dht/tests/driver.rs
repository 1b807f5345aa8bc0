//! The tokio driver on loopback: a DHT of 30 of our nodes finds peers and stores
//! items; a saved table resumes; IPv6 on ::1 when it can be bound.
#![cfg(feature = "tokio")]

use std::net::SocketAddr;
use std::time::Duration;

use webtorrent_dht::{Dht, DhtConfig, DhtTask, MutableItem, MutableTorrent, NodeId, SigningKey};

const LIMIT: Duration = Duration::from_secs(60);

fn config(bind: &str, bootstrap: Vec<SocketAddr>) -> DhtConfig {
    let mut c = DhtConfig::v4(bind.parse().expect("a valid address"));
    c.node.bootstrap = bootstrap;
    c.node.query_timeout = Duration::from_millis(500);
    c
}

async fn swarm(n: usize) -> Vec<(Dht, DhtTask)> {
    let mut nodes = Vec::new();
    let first = Dht::bind(config("127.0.0.1:0", vec![]))
        .await
        .expect("bind");
    let boot = first.0.local_addr_v4().expect("an IPv4 socket");
    nodes.push(first);
    for _ in 1..n {
        nodes.push(
            Dht::bind(config("127.0.0.1:0", vec![boot]))
                .await
                .expect("bind"),
        );
    }
    for (d, _) in &nodes[1..] {
        d.bootstrap().await.expect("bootstrap");
    }
    // A second round lets early nodes learn about later ones.
    for (d, _) in &nodes {
        d.bootstrap().await.expect("bootstrap");
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_nodes_on_loopback() {
    tokio::time::timeout(LIMIT, async {
        let nodes = swarm(30).await;
        for (d, _) in &nodes {
            let s = d.stats().await.unwrap();
            assert!(s.nodes_v4 >= 8, "a node knows only {} others", s.nodes_v4);
        }
        let ih = NodeId([0x42; 20]);
        let done = nodes[4].0.announce(ih, Some(6881)).await.unwrap();
        assert!(done.stored >= 5, "announced to {}", done.stored);
        let peers = nodes[22].0.get_peers(ih).await.unwrap();
        assert_eq!(peers, vec!["127.0.0.1:6881".parse().unwrap()]);

        let (target, stored) = nodes[9].0.put_immutable(b"5:hello".to_vec()).await.unwrap();
        assert!(stored >= 5);
        assert_eq!(
            nodes[27].0.get_immutable(target).await.unwrap(),
            Some(b"5:hello".to_vec())
        );

        // BEP 46: publish a pointer, resolve it from a magnet link, update it.
        let key = SigningKey::from_bytes(&[3; 32]);
        let torrent = MutableTorrent {
            key: key.verifying_key().to_bytes(),
            salt: b"v".to_vec(),
        };
        let link = torrent.to_magnet().to_uri();
        for (seq, ih) in [(1, [0x01; 20]), (2, [0x02; 20])] {
            let value = webtorrent_dht::encode_pointer(webtorrent_types::InfoHashV1(ih));
            let item = MutableItem::sign(&key, &torrent.salt, seq, value).unwrap();
            assert!(nodes[13].0.put_mutable(item, None).await.unwrap() >= 5);
        }
        let wanted = MutableTorrent::parse(&link).unwrap();
        let item = nodes[2]
            .0
            .get_mutable(wanted.key, &wanted.salt)
            .await
            .unwrap()
            .expect("found");
        assert_eq!(item.seq, 2);
        assert_eq!(
            webtorrent_dht::decode_pointer(&item.value).unwrap().0,
            [0x02; 20]
        );
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "current_thread")]
async fn saved_table_resumes_after_restart() {
    tokio::time::timeout(LIMIT, async {
        let nodes = swarm(10).await;
        let saved = nodes[3].0.save().await.unwrap();
        let id = nodes[3].0.id();
        // A new node with no bootstrap nodes, only the saved table.
        let mut c = config("127.0.0.1:0", vec![]);
        c.saved_table = Some(saved);
        let (d, _task) = Dht::bind(c).await.unwrap();
        assert_eq!(d.id(), id);
        d.bootstrap().await.unwrap();
        assert!(d.stats().await.unwrap().nodes_v4 >= 8);
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "current_thread")]
async fn ipv6_loopback_when_available() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: ::1 cannot be bound here");
        return;
    }
    tokio::time::timeout(LIMIT, async {
        let mk = |boot: Vec<SocketAddr>| {
            let mut c = DhtConfig::v4("127.0.0.1:0".parse().unwrap());
            c.bind_v4 = None;
            c.bind_v6 = Some("[::1]:0".parse().unwrap());
            c.node.bootstrap = boot;
            c.node.query_timeout = Duration::from_millis(500);
            c
        };
        let (first, _t) = Dht::bind(mk(vec![])).await.unwrap();
        let boot = first.local_addr_v6().unwrap();
        let mut rest = Vec::new();
        for _ in 0..10 {
            rest.push(Dht::bind(mk(vec![boot])).await.unwrap());
        }
        for (d, _) in &rest {
            d.bootstrap().await.unwrap();
        }
        let ih = NodeId([0x66; 20]);
        assert!(rest[0].0.announce(ih, Some(7000)).await.unwrap().stored >= 3);
        let peers = rest[7].0.get_peers(ih).await.unwrap();
        assert_eq!(peers, vec!["[::1]:7000".parse().unwrap()]);
        assert!(rest[5].0.stats().await.unwrap().nodes_v6 >= 8);
    })
    .await
    .expect("finished in time");
}
