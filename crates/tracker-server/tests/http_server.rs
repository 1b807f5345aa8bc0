//! The HTTP server on loopback, driven by the workspace's own HTTP tracker
//! client, sharing its store with the UDP server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use webtorrent_tracker::udp::UdpConfig as ClientUdpConfig;
use webtorrent_tracker::{
    AnnounceRequest, Event, HttpConfig as ClientConfig, HttpTracker, ScrapeStats, TrackerError,
    UdpTracker,
};
use webtorrent_tracker_server::http::HttpConfig;
use webtorrent_tracker_server::udp::UdpConfig;
use webtorrent_tracker_server::{
    HttpServer, PeerAddr, PeerAnnounce, PeerKind, SharedStore, StoreConfig, StoreExpiry,
    SwarmStore, UdpServer,
};
use webtorrent_types::{InfoHashV1, PeerId};

const HASH: InfoHashV1 = InfoHashV1([0x24; 20]);
/// A bound on every exchange, so that a broken server fails the test
/// instead of hanging it.
const BOUND: Duration = Duration::from_secs(20);

fn store(config: StoreConfig) -> SharedStore {
    Arc::new(Mutex::new(SwarmStore::new(config, 3)))
}

fn request(peer: u8, left: u64, port: u16) -> AnnounceRequest {
    let mut r = AnnounceRequest::new(HASH, PeerId([peer; 20]), port);
    r.left = left;
    r.event = Event::Started;
    r
}

#[tokio::test]
async fn http_and_udp_share_one_swarm() {
    let shared = store(StoreConfig::default());
    let local = "127.0.0.1:0".parse().unwrap();
    let http = HttpServer::bind(local, shared.clone(), HttpConfig::default())
        .await
        .unwrap();
    let udp = UdpServer::bind(local, shared.clone(), UdpConfig::default())
        .await
        .unwrap();
    let url = format!("http://{}/announce", http.local_addr());

    let udp_client = UdpTracker::bind(local, ClientUdpConfig::default())
        .await
        .unwrap();
    timeout(
        BOUND,
        udp_client.announce(udp.local_addr(), &request(1, 0, 7001)),
    )
    .await
    .unwrap()
    .unwrap();

    let client = HttpTracker::new(ClientConfig::default()).unwrap();
    let r = timeout(BOUND, client.announce(&url, &request(2, 9, 7002)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.complete, r.incomplete), (Some(1), Some(1)));
    assert_eq!(
        r.peers.iter().map(|p| p.addr).collect::<Vec<_>>(),
        vec!["127.0.0.1:7001".parse().unwrap()]
    );

    let mut dict = request(3, 9, 7003);
    dict.compact = false;
    let r = timeout(BOUND, client.announce(&url, &dict))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.peers.len(), 2);
    assert!(r.peers.iter().all(|p| p.peer_id.is_some()));

    let s = timeout(BOUND, client.scrape(&url, &[HASH]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.get(&HASH),
        Some(ScrapeStats {
            complete: 1,
            downloaded: 0,
            incomplete: 2
        })
    );
}

#[tokio::test]
async fn refusals_and_unknown_paths() {
    let mut config = StoreConfig::default();
    config.max_swarms = 0;
    let http = HttpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        store(config),
        HttpConfig::default(),
    )
    .await
    .unwrap();
    let url = format!("http://{}/announce", http.local_addr());
    let client = HttpTracker::new(ClientConfig::default()).unwrap();
    let e = timeout(BOUND, client.announce(&url, &request(1, 0, 7001)))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e,
        TrackerError::Failure {
            reason: "tracker is full: 0 torrents".into()
        }
    );

    // A raw request for another path: 404, and the server goes on.
    let mut tcp = TcpStream::connect(http.local_addr()).await.unwrap();
    tcp.write_all(b"GET /other HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    timeout(BOUND, tcp.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 404"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    let e = timeout(BOUND, client.announce(&url, &request(1, 0, 7001)))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, TrackerError::Failure { .. }));
}

#[tokio::test(start_paused = true)]
async fn expiry_runs_periodically() {
    let mut config = StoreConfig::default();
    config.peer_ttl = Duration::ZERO;
    let shared = store(config);
    let announce = PeerAnnounce {
        peer_id: PeerId([1; 20]),
        addr: PeerAddr::Socket("192.0.2.1:6881".parse().unwrap()),
        left: 0,
        event: Event::Started,
        numwant: None,
    };
    // Seen a second ago: older than the zero lifetime.
    let seen = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
    shared
        .lock()
        .unwrap()
        .announce(seen, HASH, &announce, PeerKind::Socket)
        .unwrap();
    let _expiry = StoreExpiry::spawn(shared.clone(), Duration::from_secs(60));
    // Paused time: each sleep advances the clock as soon as all is idle.
    for _ in 0..120 {
        if shared.lock().unwrap().peer_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(shared.lock().unwrap().swarm_count(), 0);
}
