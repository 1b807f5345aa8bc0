//! `WsTracker` against bittorrent-tracker 11's WebSocket server (interop/node/ws_tracker.mjs)
//! on 127.0.0.1: offers relayed and answers routed back by offer id, swarm counts, scrape,
//! `stopped`, refusals, and reconnection after the tracker restarts.
//!
//! Skipped, with the reason printed, when `node` or `interop/node_modules/bittorrent-tracker`
//! (`npm ci` in `interop/`) is missing.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use webtorrent_tracker::ws::{self, OfferId, ServerMessage, Signal, WsOffer};
use webtorrent_tracker::{Event, TrackerError, WsConfig, WsEvent, WsStats, WsTorrent, WsTracker};
use webtorrent_types::{InfoHashV1, PeerId};

const LIMIT: Duration = Duration::from_secs(20);

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

fn tracker_missing() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node {
        eprintln!("skipped: `node` is not installed");
        return true;
    }
    let package = interop_dir().join("node_modules/bittorrent-tracker/package.json");
    if !package.is_file() {
        eprintln!(
            "skipped: {} is missing (run `npm ci` in interop/)",
            package.display()
        );
        return true;
    }
    false
}

/// Kills the tracker however the test ends.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the tracker on `port` (0: any) and returns it with its port.
fn start(port: u16) -> (Node, u16) {
    let mut child = Command::new("node")
        .arg(interop_dir().join("node/ws_tracker.mjs"))
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("piped");
    let node = Node(child);
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
    (node, port)
}

fn peer_id(n: u8) -> PeerId {
    let mut id = *b"-RW0100-000000000000";
    id[19] = b'0' + n;
    PeerId(id)
}

/// Bytes above 0x7f exercise the one-character-per-byte strings both ways.
const HASH: InfoHashV1 = InfoHashV1([0xc3; 20]);

fn stats(left: u64) -> WsStats {
    WsStats {
        left: Some(left),
        ..WsStats::default()
    }
}

/// The next event `pick` accepts, skipping others.
async fn wait_for<T>(torrent: &mut WsTorrent, mut pick: impl FnMut(&WsEvent) -> Option<T>) -> T {
    tokio::time::timeout(LIMIT, async {
        loop {
            let event = torrent.next_event().await.expect("connection task alive");
            if let Some(t) = pick(&event) {
                return t;
            }
        }
    })
    .await
    .expect("event in time")
}

async fn counts(torrent: &mut WsTorrent) -> (Option<u32>, Option<u32>) {
    wait_for(torrent, |e| match e {
        WsEvent::Announced(r) => Some((r.complete, r.incomplete)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn offers_answers_counts_scrape_and_stopped() {
    if tracker_missing() {
        return;
    }
    let (_node, port) = start(0);
    let url = format!("ws://127.0.0.1:{port}");
    // Two clients, so two connections, as two browsers would have.
    let (a, b) = (
        WsTracker::new(WsConfig::default()).expect("client"),
        WsTracker::new(WsConfig::default()).expect("client"),
    );
    let mut seeder = b.add_torrent(&url, HASH, peer_id(2)).await.expect("add");
    seeder
        .announce(stats(0), Event::Started, Vec::new())
        .expect("announce");
    assert_eq!(counts(&mut seeder).await, (Some(1), Some(0)));

    let mut leecher = a.add_torrent(&url, HASH, peer_id(1)).await.expect("add");
    // The same torrent twice on one connection cannot be told apart: refused.
    assert_eq!(
        a.add_torrent(&url, HASH, peer_id(3)).await.err(),
        Some(TrackerError::AlreadyAnnounced)
    );
    let offer_id = OfferId([0xfe; 20]);
    let offer = Signal::sdp("offer", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n");
    leecher
        .announce(
            stats(100),
            Event::Started,
            vec![WsOffer {
                offer_id,
                offer: offer.clone(),
            }],
        )
        .expect("announce");
    assert_eq!(counts(&mut leecher).await, (Some(1), Some(1)));

    // The tracker relays the offer to the seeder, who answers.
    let (from, id, got) = wait_for(&mut seeder, |e| match e {
        WsEvent::Offer {
            peer_id,
            offer_id,
            offer,
        } => Some((*peer_id, *offer_id, offer.clone())),
        _ => None,
    })
    .await;
    assert_eq!((from, id, &got), (peer_id(1), offer_id, &offer));
    let answer = Signal::sdp("answer", "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n");
    seeder.answer(from, id, answer.clone()).expect("answer");

    // The answer comes back to the leecher, routed by the offer id.
    let (from, id, got) = wait_for(&mut leecher, |e| match e {
        WsEvent::Answer {
            peer_id,
            offer_id,
            answer,
        } => Some((*peer_id, *offer_id, answer.clone())),
        _ => None,
    })
    .await;
    assert_eq!((from, id, got), (peer_id(2), offer_id, answer));

    // Scrape, of one torrent the tracker knows and one it does not.
    let other = InfoHashV1([0x01; 20]);
    let scrape = tokio::time::timeout(LIMIT, a.scrape(&url, &[HASH, other]))
        .await
        .expect("in time")
        .expect("scrape");
    let s = scrape.get(&HASH).expect("our torrent");
    assert_eq!((s.complete, s.incomplete), (1, 1));
    assert_eq!(
        scrape.get(&other).map(|s| s.complete + s.incomplete),
        Some(0)
    );

    // The seeder leaves; the counts follow.
    seeder
        .announce(stats(0), Event::Stopped, Vec::new())
        .expect("stopped");
    assert_eq!(counts(&mut seeder).await, (Some(0), Some(1)));
    let scrape = b.scrape(&url, &[HASH]).await.expect("scrape");
    assert_eq!(
        scrape.get(&HASH).map(|s| (s.complete, s.incomplete)),
        Some((0, 1))
    );

    // The leecher completes; a regular announce after that keeps it a seeder.
    leecher
        .announce(stats(0), Event::Completed, Vec::new())
        .expect("completed");
    assert_eq!(counts(&mut leecher).await, (Some(1), Some(0)));
    leecher
        .announce(stats(0), Event::None, Vec::new())
        .expect("update");
    assert_eq!(counts(&mut leecher).await, (Some(1), Some(0)));
}

#[tokio::test]
async fn refusals_are_failures() {
    if tracker_missing() {
        return;
    }
    let (_node, port) = start(0);
    let url = format!("ws://127.0.0.1:{port}");
    let client = WsTracker::new(WsConfig::default()).expect("client");
    // The test tracker refuses info-hashes starting with 0xff.
    let refused = InfoHashV1([0xff; 20]);
    let mut torrent = client
        .add_torrent(&url, refused, peer_id(1))
        .await
        .expect("add");
    torrent
        .announce(stats(1), Event::Started, Vec::new())
        .expect("announce");
    let error = wait_for(&mut torrent, |e| match e {
        WsEvent::Error(e) => Some(e.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        error,
        TrackerError::Failure {
            reason: "torrent not allowed".into()
        }
    );

    // A request the tracker cannot parse gets a failure naming no torrent; our decoder
    // reads bittorrent-tracker's exact reply.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("TCP");
    let (mut raw, _) = tokio_tungstenite::client_async(url.as_str(), tcp)
        .await
        .expect("raw connection");
    raw.send(Message::text(
        r#"{"action":"announce","info_hash":"short","peer_id":"x"}"#,
    ))
    .await
    .expect("send");
    let reply = tokio::time::timeout(LIMIT, raw.next())
        .await
        .expect("in time")
        .expect("a frame")
        .expect("no error");
    let text = reply.into_text().expect("text");
    assert_eq!(
        ws::decode_server(text.as_str()),
        Ok(ServerMessage::Failure {
            info_hash: None,
            scrape: false,
            reason: "invalid info_hash".into()
        })
    );
}

#[tokio::test]
async fn reconnects_and_reannounces_after_a_tracker_restart() {
    if tracker_missing() {
        return;
    }
    let (node, port) = start(0);
    let url = format!("ws://127.0.0.1:{port}");
    let config = WsConfig::default().with_reconnect(
        Duration::from_millis(100),
        Duration::from_millis(500),
        Duration::from_millis(50),
    );
    let client = WsTracker::new(config).expect("client");
    let mut torrent = client
        .add_torrent(&url, HASH, peer_id(1))
        .await
        .expect("add");
    torrent
        .announce(stats(5), Event::Started, Vec::new())
        .expect("announce");
    assert_eq!(counts(&mut torrent).await, (Some(0), Some(1)));

    drop(node);
    let error = wait_for(&mut torrent, |e| match e {
        WsEvent::Error(e) => Some(e.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(error, TrackerError::Transport { .. }), "{error:?}");

    // The new tracker knows nothing; the client reconnects on its own and announces
    // the torrent again.
    let (_node, again) = start(port);
    assert_eq!(again, port);
    wait_for(&mut torrent, |e| {
        matches!(e, WsEvent::Connected).then_some(())
    })
    .await;
    assert_eq!(counts(&mut torrent).await, (Some(0), Some(1)));
    let scrape = client.scrape(&url, &[HASH]).await.expect("scrape");
    assert_eq!(
        scrape.get(&HASH).map(|s| (s.complete, s.incomplete)),
        Some((0, 1))
    );
}

#[tokio::test]
async fn one_client_on_two_trackers_and_two_torrents() {
    if tracker_missing() {
        return;
    }
    let ((_n1, p1), (_n2, p2)) = (start(0), start(0));
    let (u1, u2) = (
        format!("ws://127.0.0.1:{p1}"),
        format!("ws://127.0.0.1:{p2}"),
    );
    let client = WsTracker::new(WsConfig::default()).expect("client");
    let other = InfoHashV1([0x42; 20]);
    // Two torrents share the first tracker's connection; the first is also on the second.
    let mut a1 = client
        .add_torrent(&u1, HASH, peer_id(1))
        .await
        .expect("add");
    let mut b1 = client
        .add_torrent(&u1, other, peer_id(1))
        .await
        .expect("add");
    let mut a2 = client
        .add_torrent(&u2, HASH, peer_id(1))
        .await
        .expect("add");
    a1.announce(stats(0), Event::Started, Vec::new())
        .expect("announce");
    b1.announce(stats(9), Event::Started, Vec::new())
        .expect("announce");
    a2.announce(stats(9), Event::Started, Vec::new())
        .expect("announce");
    assert_eq!(counts(&mut a1).await, (Some(1), Some(0)));
    assert_eq!(counts(&mut b1).await, (Some(0), Some(1)));
    assert_eq!(counts(&mut a2).await, (Some(0), Some(1)));
    // Each tracker knows only what was announced to it.
    let s1 = client.scrape(&u1, &[HASH, other]).await.expect("scrape");
    let s2 = client.scrape(&u2, &[HASH, other]).await.expect("scrape");
    let pair =
        |s: &webtorrent_tracker::ScrapeResponse, h| s.get(&h).map(|s| (s.complete, s.incomplete));
    assert_eq!(
        (pair(&s1, HASH), pair(&s1, other)),
        (Some((1, 0)), Some((0, 1)))
    );
    assert_eq!(
        (pair(&s2, HASH), pair(&s2, other)),
        (Some((0, 1)), Some((0, 0)))
    );
    // Dropping one torrent leaves the other on the shared connection.
    drop(a1);
    b1.announce(stats(0), Event::Completed, Vec::new())
        .expect("announce");
    assert_eq!(counts(&mut b1).await, (Some(1), Some(0)));
}
