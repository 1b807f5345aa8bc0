//! Interop against bittorrent-tracker (the JavaScript tracker WebTorrent uses), over
//! HTTP and UDP on 127.0.0.1. Ignored by default: it needs `node` and the npm packages of
//! `interop/` (`npm ci` there). Run with
//! `cargo test -p webtorrent-tracker --test interop_bittorrent_tracker -- --ignored`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use webtorrent_tracker::udp::UdpConfig;
use webtorrent_tracker::{AnnounceRequest, Event, HttpConfig, HttpTracker, UdpTracker};
use webtorrent_types::{InfoHashV1, PeerId};

const LIMIT: Duration = Duration::from_secs(20);

const SERVER: &str = r"
import { Server } from 'bittorrent-tracker'
const server = new Server({ http: true, udp: true, ws: false, stats: false })
server.on('error', e => { console.error(String(e)); process.exit(1) })
server.on('warning', e => console.error(String(e)))
server.listen({ http: 0, udp: 0 }, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' }, () => {
  console.log(JSON.stringify({ http: server.http.address().port, udp: server.udp4.address().port }))
})
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
";

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start() -> (Node, u16, u16) {
    let interop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop");
    let mut child = Command::new("node")
        .args(["--input-type=module", "-e", SERVER])
        .current_dir(&interop)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("piped");
    let node = Node(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ports line");
    let port = |key: &str| -> u16 {
        let rest = line.split(&format!("\"{key}\":")).nth(1).expect("key");
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .expect("port")
    };
    let (http, udp) = (port("http"), port("udp"));
    (node, http, udp)
}

fn peer(n: u8, port: u16, left: u64) -> AnnounceRequest {
    let mut id = *b"-RW0100-000000000000";
    id[19] = b'0' + n;
    // Bytes above 0x7f in the hash exercise byte-wise escaping and the scrape keys.
    let mut r = AnnounceRequest::new(InfoHashV1([0xc3; 20]), PeerId(id), port);
    r.event = Event::Started;
    r.left = left;
    r
}

#[tokio::test]
#[ignore = "needs node and interop/node_modules (npm ci in interop/)"]
async fn http_and_udp_against_bittorrent_tracker() {
    let (_node, http_port, udp_port) = start();

    let http = HttpTracker::new(HttpConfig::default()).expect("client");
    let url = format!("http://127.0.0.1:{http_port}/announce");
    let seeder = tokio::time::timeout(LIMIT, http.announce(&url, &peer(1, 7001, 0)))
        .await
        .expect("in time")
        .expect("HTTP announce");
    assert!(seeder.interval > Duration::ZERO);

    let udp = UdpTracker::bind("127.0.0.1:0".parse().expect("addr"), UdpConfig::default())
        .await
        .expect("bind");
    let tracker: SocketAddr = format!("127.0.0.1:{udp_port}").parse().expect("addr");
    let leecher = tokio::time::timeout(LIMIT, udp.announce(tracker, &peer(2, 7002, 100)))
        .await
        .expect("in time")
        .expect("UDP announce");
    assert_eq!((leecher.complete, leecher.incomplete), (Some(1), Some(1)));
    let seeder_addr: SocketAddr = "127.0.0.1:7001".parse().expect("addr");
    assert!(
        leecher.peers.iter().any(|p| p.addr == seeder_addr),
        "{leecher:?}"
    );

    // The seeder sees the leecher over HTTP, in both peer models.
    let mut again = peer(1, 7001, 0);
    again.event = Event::None;
    let compact = http.announce(&url, &again).await.expect("HTTP re-announce");
    let leecher_addr: SocketAddr = "127.0.0.1:7002".parse().expect("addr");
    assert!(
        compact.peers.iter().any(|p| p.addr == leecher_addr),
        "{compact:?}"
    );
    again.compact = false;
    let dict = http
        .announce(&url, &again)
        .await
        .expect("HTTP dictionary announce");
    let found = dict
        .peers
        .iter()
        .find(|p| p.addr == leecher_addr)
        .expect("leecher listed");
    assert_eq!(found.peer_id, Some(peer(2, 7002, 100).peer_id));

    let hash = InfoHashV1([0xc3; 20]);
    let scrape = http.scrape(&url, &[hash]).await.expect("HTTP scrape");
    let stats = scrape.get(&hash).expect("our torrent");
    assert_eq!((stats.complete, stats.incomplete), (1, 1));
    let scrape = udp.scrape(tracker, &[hash]).await.expect("UDP scrape");
    assert_eq!(
        scrape.get(&hash).map(|s| (s.complete, s.incomplete)),
        Some((1, 1))
    );

    let mut stop = peer(2, 7002, 100);
    stop.event = Event::Stopped;
    udp.announce(tracker, &stop).await.expect("UDP stopped");
    let scrape = http.scrape(&url, &[hash]).await.expect("HTTP scrape");
    assert_eq!(scrape.get(&hash).map(|s| s.incomplete), Some(0));
}
