//! WebTorrent peers end to end: clients that find each other only through a WebSocket
//! tracker (bittorrent-tracker 11, interop/node/ws_tracker.mjs, on 127.0.0.1) and trade
//! pieces over WebRTC data channels.
//!
//! Skipped, with the reason printed, when `node` or the npm packages of interop/ are
//! missing (`cargo xtask setup` installs them).
#![cfg(feature = "webrtc")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use webtorrent::choker::Transport;
use webtorrent::session::{AddOptions, TorrentEvent};

mod common;

const LIMIT: Duration = Duration::from_secs(90);

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// Kills the tracker however the test ends.
struct Tracker(Child, u16);

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Tracker {
    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.1)
    }
}

/// bittorrent-tracker's WebSocket server on a free loopback port; `None` (test skipped)
/// without node or the package.
fn tracker() -> Option<Tracker> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let package = interop_dir().join("node_modules/bittorrent-tracker/package.json");
    if !node || !package.is_file() {
        eprintln!("skipped: node or interop/node_modules missing (run `cargo xtask setup`)");
        return None;
    }
    let mut child = Command::new("node")
        .arg(interop_dir().join("node/ws_tracker.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("piped");
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
    Some(Tracker(child, port))
}

fn with_tracker(url: &str) -> AddOptions {
    let mut options = AddOptions::default();
    options.trackers = vec![url.to_owned()];
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_trade_pieces_over_webrtc_only() {
    common::logs();
    let Some(tracker) = tracker() else { return };
    let files = [
        ("a.bin", common::data(201, 1_500_000)),
        ("sub/b.bin", common::data(202, 333_333)),
    ];
    let metainfo = common::torrent("rtc1", 32 * 1024, &files);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "rtc1", &files);
    let seeder = common::client(seed_dir.path()).await;
    let mut seeding = with_tracker(&tracker.url());
    seeding.seed_mode = true;
    seeder.add(metainfo.clone(), seeding).await.expect("seed");

    let dir = tempfile::tempdir().expect("tempdir");
    let leecher = common::client(dir.path()).await;
    let download = leecher
        .add(metainfo, with_tracker(&tracker.url()))
        .await
        .expect("add");
    let mut events = download.events();
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the download completes over WebRTC");
    common::assert_files(dir.path(), "rtc1", &files);
    let mut transports = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let TorrentEvent::PeerConnected {
            transport, addr, ..
        } = event
        {
            transports.push((transport, addr));
        }
    }
    assert!(
        !transports.is_empty()
            && transports
                .iter()
                .all(|(t, a)| *t == Transport::WebRtc && a.ip().is_unspecified()),
        "peers: {transports:?}"
    );
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// A hostile peer in the swarm of a seeder: hundreds of offers that are not SDP, too
/// large, without a data channel or unusable, garbage answers to the seeder's own offers,
/// answers for offers the seeder never made, a channel that opens and never sends a
/// handshake, and one that sends a handshake for another torrent. The seeder drops each
/// attempt, leaks no socket, and then serves an honest leecher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_signaling_is_dropped_and_the_seeder_still_serves() {
    use webtorrent::rtc::{Rtc, RtcConfig};
    use webtorrent::tracker::ws::{OfferId, Signal, WsOffer};
    use webtorrent::tracker::{Event, WsConfig, WsEvent, WsStats, WsTracker};
    use webtorrent::types::PeerId;

    common::logs();
    let Some(tracker) = tracker() else { return };
    let url = tracker.url();
    let files = [("h.bin", common::data(211, 700_000))];
    let metainfo = common::torrent("rtc-hostile", 32 * 1024, &files);
    let info_hash = metainfo.info_hashes().wire();
    let stats = WsStats {
        left: Some(1),
        ..WsStats::default()
    };
    // Three hostile peers join first (one client each, as one connection announces a
    // torrent once), so that the seeder's first offers are relayed to them.
    let mut hostiles = Vec::new();
    for n in 0..3u8 {
        let ws = WsTracker::new(WsConfig::default()).expect("ws client");
        let mut id = *b"-XX0001-hostilepeer0";
        id[19] = b'0' + n;
        let torrent = ws
            .add_torrent(&url, info_hash, PeerId(id))
            .await
            .expect("add");
        torrent
            .announce(stats, Event::Started, Vec::new())
            .expect("announce");
        hostiles.push((ws, torrent));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "rtc-hostile", &files);
    let seeder = common::client(seed_dir.path()).await;
    let mut seeding = with_tracker(&url);
    seeding.seed_mode = true;
    seeder.add(metainfo.clone(), seeding).await.expect("seed");
    // The seeder's offers are out before the baseline is taken.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = open_fds();
    let rtc = Rtc::new(RtcConfig::loopback());
    let bad_sdps = [
        String::new(),
        "not an sdp at all".to_owned(),
        format!("v=0\r\n{}", "a=x\r\n".repeat(20_000)),
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n".to_owned(),
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000\r\n".to_owned(),
    ];
    let mut sent = 0;
    for round in 0..30u8 {
        let mut offers: Vec<WsOffer> = (0..10u8)
            .map(|i| WsOffer {
                offer_id: OfferId([round.wrapping_mul(10).wrapping_add(i); 20]),
                offer: Signal::sdp("offer", &bad_sdps[usize::from(i) % bad_sdps.len()]),
            })
            .collect();
        // A signal that is not an offer at all.
        offers[0].offer = Signal::sdp("answer", "v=0\r\n");
        sent += offers.len();
        hostiles[0]
            .1
            .announce(stats, Event::None, offers)
            .expect("announce");
        // Answers for offers the seeder never made.
        hostiles[0]
            .1
            .answer(
                PeerId([0; 20]),
                OfferId([round; 20]),
                Signal::sdp("answer", "v=0\r\n"),
            )
            .expect("answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sent, 300);

    // Garbage answers to the seeder's own offers, and a channel that never sends a
    // handshake, and one with a handshake for another torrent.
    let mut stalled = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for (answered, (_, hostile)) in hostiles.iter_mut().enumerate() {
        let (peer_id, offer_id, offer) = loop {
            let event = tokio::time::timeout_at(deadline, hostile.next_event())
                .await
                .expect("the seeder's offers are relayed")
                .expect("tracker connection");
            if let WsEvent::Offer {
                peer_id,
                offer_id,
                offer,
            } = event
            {
                break (peer_id, offer_id, offer);
            }
        };
        let hostile_id = PeerId(*b"-XX0001-hostilepeer9");
        match answered {
            0 => {
                hostile
                    .answer(peer_id, offer_id, Signal::sdp("answer", "v=0\r\ngarbage"))
                    .expect("answer");
            }
            _ => {
                let pending = rtc
                    .accept_offer(offer.sdp_text().expect("sdp"))
                    .await
                    .expect("real offer");
                hostile
                    .answer(peer_id, offer_id, Signal::sdp("answer", pending.sdp()))
                    .expect("answer");
                let mut stream = pending.connect().await.expect("channel opens");
                if answered == 2 {
                    use tokio::io::AsyncWriteExt;
                    let wrong = webtorrent::wire::Handshake::new(
                        webtorrent::wire::Reserved::NONE,
                        webtorrent::types::InfoHashV1([9; 20]),
                        hostile_id,
                    );
                    stream.write_all(&wrong.to_bytes()).await.expect("write");
                }
                stalled.push(stream);
            }
        }
    }

    // An honest leecher still gets the whole torrent from the seeder.
    let dir = tempfile::tempdir().expect("tempdir");
    let leecher = common::client(dir.path()).await;
    let download = leecher
        .add(metainfo, with_tracker(&url))
        .await
        .expect("add");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the honest download completes");
    common::assert_files(dir.path(), "rtc-hostile", &files);
    leecher.shutdown().await.expect("shutdown");

    // The stalled channels are dropped by the seeder (no handshake in time) and
    // everything the hostile attempts opened is closed again.
    drop(stalled);
    drop(hostiles);
    let settle = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = open_fds();
        // The seeder's own fresh offers hold a few sockets each.
        if now <= baseline + 24 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < settle,
            "file descriptors: {now} now, {baseline} before the hostile peer"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    seeder.shutdown().await.expect("shutdown");
}

/// A seeder's first connection to the tracker sends its first announce with its offers, and
/// no second one: a watcher that joined before sees one offer (the tracker relays an
/// announce's offers one per peer) and no more while the interval runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_announce_at_start() {
    use webtorrent::tracker::{Event, WsConfig, WsEvent, WsStats, WsTracker};
    use webtorrent::types::PeerId;

    common::logs();
    let Some(tracker) = tracker() else { return };
    let url = tracker.url();
    let files = [("one.bin", common::data(231, 100_000))];
    let metainfo = common::torrent("rtc-once", 32 * 1024, &files);
    let ws = WsTracker::new(WsConfig::default()).expect("ws client");
    let mut watcher = ws
        .add_torrent(
            &url,
            metainfo.info_hashes().wire(),
            PeerId(*b"-XX0001-watcherpeer0"),
        )
        .await
        .expect("add");
    let stats = WsStats {
        left: Some(1),
        ..WsStats::default()
    };
    watcher
        .announce(stats, Event::Started, Vec::new())
        .expect("announce");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "rtc-once", &files);
    let seeder = common::client(seed_dir.path()).await;
    let mut seeding = with_tracker(&url);
    seeding.seed_mode = true;
    seeder.add(metainfo, seeding).await.expect("seed");
    let mut offers = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(event) = tokio::time::timeout_at(until, watcher.next_event()).await {
        if let Some(WsEvent::Offer { .. }) = event {
            offers += 1;
        }
    }
    assert_eq!(offers, 1, "offers relayed from the seeder's announces");
    seeder.shutdown().await.expect("shutdown");
}
