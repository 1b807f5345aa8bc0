//! Interop against opentracker over HTTP and UDP on 127.0.0.1. Ignored by default: it
//! needs `/usr/bin/opentracker` (Debian's package, built whitelist-only; the test writes
//! its own whitelist). Run with
//! `cargo test -p webtorrent-tracker --test interop_opentracker -- --ignored`.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use webtorrent_tracker::udp::UdpConfig;
use webtorrent_tracker::{AnnounceRequest, Event, HttpConfig, HttpTracker, UdpTracker};
use webtorrent_types::{InfoHashV1, PeerId};

const LIMIT: Duration = Duration::from_secs(20);
const HASH: InfoHashV1 = InfoHashV1([0xc3; 20]);

struct Tracker {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 (opentracker uses one of each).
fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

fn start() -> (Tracker, u16) {
    let dir = std::env::temp_dir().join(format!("webtorrent-opentracker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("whitelist.txt"), format!("{}\n", HASH.to_hex())).expect("whitelist");
    let port = free_port();
    let child = Command::new("opentracker")
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            &port.to_string(),
        ])
        .arg("-d")
        .arg(&dir)
        .args(["-w", "whitelist.txt", "-u", "nobody"])
        .stdout(Stdio::null())
        .spawn()
        .expect("opentracker runs");
    let tracker = Tracker { child, dir };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "opentracker did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (tracker, port)
}

fn peer(n: u8, port: u16, left: u64) -> AnnounceRequest {
    let mut id = *b"-RW0100-000000000000";
    id[19] = b'0' + n;
    let mut r = AnnounceRequest::new(HASH, PeerId(id), port);
    r.event = Event::Started;
    r.left = left;
    r
}

#[tokio::test]
#[ignore = "needs /usr/bin/opentracker (apt-get install opentracker)"]
async fn http_and_udp_against_opentracker() {
    let (_tracker, port) = start();
    let http = HttpTracker::new(HttpConfig::default()).expect("client");
    let url = format!("http://127.0.0.1:{port}/announce");
    let seeder = tokio::time::timeout(LIMIT, http.announce(&url, &peer(1, 7001, 0)))
        .await
        .expect("in time")
        .expect("HTTP announce");
    assert!(seeder.min_interval.is_some());

    let udp = UdpTracker::bind("127.0.0.1:0".parse().expect("addr"), UdpConfig::default())
        .await
        .expect("bind");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let leecher = tokio::time::timeout(LIMIT, udp.announce(addr, &peer(2, 7002, 100)))
        .await
        .expect("in time")
        .expect("UDP announce");
    assert_eq!((leecher.complete, leecher.incomplete), (Some(1), Some(1)));
    let seeder_addr: SocketAddr = "127.0.0.1:7001".parse().expect("addr");
    assert!(
        leecher.peers.iter().any(|p| p.addr == seeder_addr),
        "{leecher:?}"
    );

    let scrape = http.scrape(&url, &[HASH]).await.expect("HTTP scrape");
    assert_eq!(
        scrape.get(&HASH).map(|s| (s.complete, s.incomplete)),
        Some((1, 1))
    );
    let scrape = udp.scrape(addr, &[HASH]).await.expect("UDP scrape");
    assert_eq!(
        scrape.get(&HASH).map(|s| (s.complete, s.incomplete)),
        Some((1, 1))
    );

    // Not whitelisted: a failure reason over HTTP; over UDP opentracker answers with a
    // bare 8-byte announce header (action 1 and the transaction id), which is malformed.
    let mut other = peer(3, 7003, 1);
    other.info_hash = InfoHashV1([0x11; 20]);
    assert!(matches!(
        http.announce(&url, &other).await,
        Err(webtorrent_tracker::TrackerError::Failure { .. })
    ));
    let refused = udp.announce(addr, &other).await;
    assert!(
        matches!(
            refused,
            Err(webtorrent_tracker::TrackerError::Malformed { .. })
        ),
        "{refused:?}"
    );

    let mut stop = peer(2, 7002, 100);
    stop.event = Event::Stopped;
    udp.announce(addr, &stop).await.expect("UDP stopped");
    let scrape = http.scrape(&url, &[HASH]).await.expect("HTTP scrape");
    assert_eq!(scrape.get(&HASH).map(|s| s.incomplete), Some(0));
}
