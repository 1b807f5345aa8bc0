//! `WsTracker` against hostile and broken WebSocket trackers on 127.0.0.1 (a tiny
//! tokio-tungstenite server per test): garbage, wrong types and lengths, an enormous
//! frame, binary junk, a connection cut mid-session, a silent server, nobody listening.
//! Every failure is a typed event, the client reconnects, and once the handles are dropped
//! no task is left.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use webtorrent_tracker::ws::{
    self, ClientMessage, MAX_FRAME_BYTES, OfferId, ServerMessage, Signal, WsAnnounceReply,
    WsDecodeError, WsOffer,
};
use webtorrent_tracker::{Event, TrackerError, WsConfig, WsEvent, WsStats, WsTorrent, WsTracker};
use webtorrent_types::{InfoHashV1, PeerId};

const LIMIT: Duration = Duration::from_secs(20);
const HASH: InfoHashV1 = InfoHashV1([0xab; 20]);

fn fast() -> WsConfig {
    WsConfig::default()
        .with_reconnect(
            Duration::from_millis(50),
            Duration::from_millis(200),
            Duration::from_millis(20),
        )
        .with_scrape_timeout(Duration::from_millis(300))
}

fn stats() -> WsStats {
    WsStats {
        left: Some(10),
        ..WsStats::default()
    }
}

async fn accept(listener: &TcpListener) -> WebSocketStream<TcpStream> {
    let (tcp, _) = listener.accept().await.expect("accept");
    tokio_tungstenite::accept_async(tcp)
        .await
        .expect("handshake")
}

/// The next frame the client sends, decoded.
async fn read_frame(socket: &mut WebSocketStream<TcpStream>) -> ClientMessage {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(t))) => return ws::decode_client(t.as_str()).expect("our frame"),
            Some(Ok(_)) => {}
            other => panic!("client went away: {other:?}"),
        }
    }
}

async fn next(torrent: &mut WsTorrent) -> WsEvent {
    tokio::time::timeout(LIMIT, torrent.next_event())
        .await
        .expect("event in time")
        .expect("connection task alive")
}

/// Waits (bounded) until the runtime runs no task besides the test itself.
async fn no_task_left() {
    let metrics = tokio::runtime::Handle::current().metrics();
    tokio::time::timeout(LIMIT, async {
        while metrics.num_alive_tasks() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} task(s) left", metrics.num_alive_tasks()));
}

#[tokio::test]
async fn garbage_huge_frames_and_cut_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let (closed_tx, closed) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        // 1: junk of every kind, then a frame far above the limit.
        let mut s = accept(&listener).await;
        let first = read_frame(&mut s).await;
        let h = "«".repeat(20);
        for junk in [
            "not json".to_owned(),
            r#"{"action":"announce","info_hash":"short"}"#.to_owned(),
            format!(r#"{{"action":"announce","info_hash":"{h}","complete":"many"}}"#),
            "x".repeat(MAX_FRAME_BYTES * 2),
        ] {
            // The client may hang up while the enormous frame is on its way.
            let _ = s.send(Message::text(junk)).await;
        }
        while let Some(Ok(_)) = s.next().await {}

        // 2: binary junk, then the connection is cut without a close frame.
        let mut s = accept(&listener).await;
        let second = read_frame(&mut s).await;
        s.send(Message::binary(vec![0xff, 0xfe, 0x00]))
            .await
            .expect("send");
        s.flush().await.expect("flush");
        drop(s);

        // 3: a proper reply, then wait for the client to leave.
        let mut s = accept(&listener).await;
        let third = read_frame(&mut s).await;
        let reply = ServerMessage::Announced {
            info_hash: HASH,
            reply: WsAnnounceReply {
                complete: Some(7),
                ..WsAnnounceReply::default()
            },
        };
        s.send(Message::text(ws::encode_server(&reply)))
            .await
            .expect("send");
        while let Some(Ok(m)) = s.next().await {
            if m.is_close() {
                break;
            }
        }
        let _ = closed_tx.send(());
        (first, second, third)
    });

    let client = WsTracker::new(fast()).expect("client");
    let mut torrent = client
        .add_torrent(&url, HASH, PeerId([b'w'; 20]))
        .await
        .expect("add");
    let offer = WsOffer {
        offer_id: OfferId([1; 20]),
        offer: Signal::sdp("offer", "v=0"),
    };
    torrent
        .announce(stats(), Event::Started, vec![offer])
        .expect("announce");

    let mut errors = Vec::new();
    let mut connected = 0;
    loop {
        match next(&mut torrent).await {
            WsEvent::Connected => connected += 1,
            WsEvent::Error(e) => errors.push(e),
            WsEvent::Announced(r) => {
                assert_eq!(r.complete, Some(7));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(connected, 3);
    assert!(
        matches!(errors[0], TrackerError::Frame(WsDecodeError::Json { .. })),
        "{errors:?}"
    );
    assert_eq!(
        errors[1..5],
        [
            TrackerError::Frame(WsDecodeError::WrongLength {
                field: "info_hash",
                chars: 5
            }),
            TrackerError::Frame(WsDecodeError::WrongType {
                field: "complete",
                expected: "a number"
            }),
            TrackerError::ResponseTooLarge {
                limit: MAX_FRAME_BYTES
            },
            TrackerError::Malformed {
                what: "binary WebSocket frame is not UTF-8"
            },
        ],
        "{errors:?}"
    );
    // The cut connection (a reset without a close frame).
    assert!(
        errors.get(6).is_none() && matches!(errors[5], TrackerError::Transport { .. }),
        "{errors:?}"
    );

    drop(torrent);
    drop(client);
    tokio::time::timeout(LIMIT, closed)
        .await
        .expect("client closes in time")
        .expect("server saw the close");
    let (first, second, third) = server.await.expect("server task");
    // The first connection carried the announce with its offer; after each reconnection
    // the torrent was announced again as `started`, without the stale offer.
    let ClientMessage::Announce(first) = first else {
        panic!("{first:?}")
    };
    assert_eq!((first.event, first.offers.len()), (Event::Started, 1));
    for again in [second, third] {
        let ClientMessage::Announce(a) = again else {
            panic!("{again:?}")
        };
        assert_eq!(
            (a.event, a.offers.len(), a.left),
            (Event::Started, 0, Some(10))
        );
    }
    no_task_left().await;
}

#[tokio::test]
async fn nobody_listening_means_errors_retries_and_a_scrape_timeout() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("ws://127.0.0.1:{port}");
    let client = WsTracker::new(fast()).expect("client");
    let mut torrent = client
        .add_torrent(&url, HASH, PeerId([b'w'; 20]))
        .await
        .expect("add");
    torrent
        .announce(stats(), Event::Started, Vec::new())
        .expect("announce");
    // Each attempt fails and is reported; the client keeps trying.
    for _ in 0..3 {
        match next(&mut torrent).await {
            WsEvent::Error(TrackerError::Transport { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let scrape = tokio::time::timeout(LIMIT, client.scrape(&url, &[HASH]))
        .await
        .expect("in time");
    assert!(
        matches!(scrape, Err(TrackerError::Timeout { .. })),
        "{scrape:?}"
    );
    drop(torrent);
    drop(client);
    no_task_left().await;
}

#[tokio::test]
async fn a_server_that_never_completes_the_handshake_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let mut config = fast();
    config.connect_timeout = Duration::from_millis(200);
    let client = WsTracker::new(config).expect("client");
    let mut torrent = client
        .add_torrent(&url, HASH, PeerId([b'w'; 20]))
        .await
        .expect("add");
    // Accepted connections are kept open and never answered.
    let (held, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .expect("in time")
        .expect("accept");
    match next(&mut torrent).await {
        WsEvent::Error(TrackerError::Timeout { .. }) => {}
        other => panic!("unexpected {other:?}"),
    }
    drop(held);
    drop(torrent);
    drop(client);
    no_task_left().await;
}

#[tokio::test]
async fn bad_urls_are_refused() {
    let client = WsTracker::new(WsConfig::default()).expect("client");
    for url in ["http://127.0.0.1:1/announce", "ws://", "not a url"] {
        let got = client.add_torrent(url, HASH, PeerId([b'w'; 20])).await;
        assert!(
            matches!(got, Err(TrackerError::InvalidUrl { .. })),
            "{url}: {got:?}"
        );
    }
    let too_many = vec![HASH; ws::MAX_SCRAPE_HASHES + 1];
    assert!(matches!(
        client.scrape("ws://127.0.0.1:1", &too_many).await,
        Err(TrackerError::TooManyInfoHashes { .. })
    ));
}
