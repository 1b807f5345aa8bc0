//! The UDP server on loopback, driven by the workspace's own BEP 15 client.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;
use webtorrent_tracker::udp::UdpConfig as ClientConfig;
use webtorrent_tracker::{AnnounceRequest, Event, ScrapeStats, UdpTracker};
use webtorrent_tracker_server::udp::UdpConfig;
use webtorrent_tracker_server::{SharedStore, StoreConfig, SwarmStore, UdpServer};
use webtorrent_types::{InfoHashV1, PeerId};

const HASH: InfoHashV1 = InfoHashV1([0x42; 20]);
/// A bound on every exchange, so that a broken server fails the test
/// instead of hanging it.
const BOUND: Duration = Duration::from_secs(20);

fn store() -> SharedStore {
    Arc::new(Mutex::new(SwarmStore::new(StoreConfig::default(), 3)))
}

fn request(peer: u8, left: u64, port: u16) -> AnnounceRequest {
    let mut r = AnnounceRequest::new(HASH, PeerId([peer; 20]), port);
    r.left = left;
    r.event = Event::Started;
    r
}

async fn swarm_of_two(ip: &str) {
    let shared = store();
    let local: SocketAddr = format!("{ip}:0").parse().unwrap();
    let server = UdpServer::bind(local, shared.clone(), UdpConfig::default())
        .await
        .unwrap();
    let tracker = server.local_addr();
    let client = UdpTracker::bind(local, ClientConfig::default())
        .await
        .unwrap();

    let first = timeout(BOUND, client.announce(tracker, &request(1, 0, 7001)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.complete, first.incomplete), (Some(1), Some(0)));
    assert!(first.peers.is_empty());

    let second = timeout(BOUND, client.announce(tracker, &request(2, 10, 7002)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((second.complete, second.incomplete), (Some(1), Some(1)));
    let expected = SocketAddr::new(local.ip(), 7001);
    assert_eq!(
        second.peers.iter().map(|p| p.addr).collect::<Vec<_>>(),
        vec![expected]
    );

    let scrape = timeout(BOUND, client.scrape(tracker, &[HASH, InfoHashV1([0; 20])]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        scrape.get(&HASH),
        Some(ScrapeStats {
            complete: 1,
            downloaded: 0,
            incomplete: 1
        })
    );
    assert_eq!(
        scrape.get(&InfoHashV1([0; 20])),
        Some(ScrapeStats::default())
    );
    // The store is the caller's, shared with other protocols.
    assert_eq!(shared.lock().unwrap().peer_count(), 2);
}

#[tokio::test]
async fn announce_and_scrape_over_ipv4() {
    swarm_of_two("127.0.0.1").await;
}

#[tokio::test]
async fn announce_and_scrape_over_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine; the IPv6 form is covered by tests/udp.rs");
        return;
    }
    swarm_of_two("[::1]").await;
}

#[tokio::test]
async fn garbage_does_not_disturb_others() {
    let server = UdpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        store(),
        UdpConfig::default(),
    )
    .await
    .unwrap();
    let tracker = server.local_addr();
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for len in [0usize, 1, 15, 16, 97, 98, 2000] {
        raw.send_to(&vec![0xa5; len], tracker).await.unwrap();
    }
    // An announce with a connection id never issued.
    let mut forged = 0x1234_5678_u64.to_be_bytes().to_vec();
    forged.extend_from_slice(&1u32.to_be_bytes());
    forged.extend_from_slice(&[0; 86]);
    raw.send_to(&forged, tracker).await.unwrap();

    let client = UdpTracker::bind("127.0.0.1:0".parse().unwrap(), ClientConfig::default())
        .await
        .unwrap();
    let r = timeout(BOUND, client.announce(tracker, &request(1, 5, 7001)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.incomplete, Some(1));

    // None of the garbage was answered: the next datagram the raw socket
    // gets is the answer to its own connect.
    let mut connect = webtorrent_tracker::udp::PROTOCOL_ID.to_be_bytes().to_vec();
    connect.extend_from_slice(&0u32.to_be_bytes());
    connect.extend_from_slice(&99u32.to_be_bytes());
    raw.send_to(&connect, tracker).await.unwrap();
    let mut buf = [0u8; 64];
    let (len, _) = timeout(BOUND, raw.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(len, 16);
    assert_eq!(&buf[..8], &[0, 0, 0, 0, 0, 0, 0, 99]);
}
