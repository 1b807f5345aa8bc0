//! WebSocket signaling, HTTP and statistics on one loopback TCP port.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use webtorrent_tracker::{AnnounceRequest, Event, HttpConfig as ClientConfig, HttpTracker};
use webtorrent_tracker_server::limits::RateLimiter;
use webtorrent_tracker_server::{HttpServer, SharedStore, StoreConfig, SwarmStore, TcpOptions};
use webtorrent_types::{InfoHashV1, PeerId};

const BOUND: Duration = Duration::from_secs(20);

type Ws = WebSocketStream<TcpStream>;

fn store() -> SharedStore {
    Arc::new(Mutex::new(SwarmStore::new(StoreConfig::default(), 3)))
}

fn bin(b: u8) -> String {
    char::from(b).to_string().repeat(20)
}

async fn server(options: TcpOptions, limiter: Option<RateLimiter>) -> (HttpServer, SharedStore) {
    let shared = store();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = HttpServer::serve(
        listener,
        shared.clone(),
        options,
        limiter.map(|l| Arc::new(Mutex::new(l))),
    )
    .unwrap();
    (server, shared)
}

async fn connect(server: &HttpServer, path: &str, origin: Option<&str>) -> Result<Ws, String> {
    let mut req = format!("ws://{}{path}", server.local_addr())
        .into_client_request()
        .unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    timeout(BOUND, tokio_tungstenite::client_async(req, tcp))
        .await
        .unwrap()
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

async fn send(ws: &mut Ws, frame: &Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match timeout(BOUND, ws.next()).await.unwrap().unwrap().unwrap() {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn announce(peer: u8, left: u64, offers: usize) -> Value {
    let mut f = json!({
        "action": "announce", "info_hash": bin(1), "peer_id": bin(peer),
        "uploaded": 0, "downloaded": 0, "left": left, "event": "started", "numwant": offers,
    });
    if offers > 0 {
        f["offers"] = (0..offers)
            .map(|i| json!({"offer_id": bin(u8::try_from(i).unwrap() + 100), "offer": {"type": "offer", "sdp": "v=0"}}))
            .collect();
    }
    f
}

async fn http_get(server: &HttpServer, path: &str) -> String {
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    timeout(BOUND, s.read_to_string(&mut body))
        .await
        .unwrap()
        .unwrap();
    body
}

#[tokio::test]
async fn offer_answer_and_close_over_real_sockets() {
    let (server, shared) = server(TcpOptions::default(), None).await;
    let mut seeder = connect(&server, "/", None).await.unwrap();
    let mut leecher = connect(&server, "/announce", Some("https://any.example"))
        .await
        .unwrap();

    send(&mut seeder, &announce(b's', 0, 0)).await;
    let r = recv(&mut seeder).await;
    assert_eq!(
        (r["complete"].clone(), r["interval"].clone()),
        (json!(1), json!(120))
    );

    send(&mut leecher, &announce(b'l', 9, 2)).await;
    let r = recv(&mut leecher).await;
    assert_eq!(
        (r["complete"].clone(), r["incomplete"].clone()),
        (json!(1), json!(1))
    );
    let offer = recv(&mut seeder).await;
    assert_eq!(offer["peer_id"], bin(b'l'));
    assert_eq!(offer["offer"]["sdp"], "v=0");

    send(
        &mut seeder,
        &json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(b's'),
            "to_peer_id": bin(b'l'), "offer_id": offer["offer_id"], "answer": {"type": "answer", "sdp": "ok"}}),
    )
    .await;
    let answer = recv(&mut leecher).await;
    assert_eq!(answer["peer_id"], bin(b's'));
    assert_eq!(answer["offer_id"], offer["offer_id"]);
    assert_eq!(answer["answer"]["sdp"], "ok");

    // A TCP client of the same torrent is counted with the browsers.
    let client = HttpTracker::new(ClientConfig::default()).unwrap();
    let mut req = AnnounceRequest::new(InfoHashV1([1; 20]), PeerId([b't'; 20]), 6881);
    req.event = Event::Started;
    req.left = 5;
    let url = format!("http://{}/announce", server.local_addr());
    let r = timeout(BOUND, client.announce(&url, &req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.complete, r.incomplete), (Some(1), Some(2)));
    assert!(r.peers.is_empty(), "browsers have no address to hand out");

    let stats: Value = {
        let body = http_get(&server, "/stats.json").await;
        serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    };
    assert_eq!(stats["torrents"], 1);
    assert_eq!(stats["peersAll"], 3);
    assert_eq!(stats["peersWebRTC"], 2);
    assert_eq!(stats["wsConnections"], 2);
    let metrics = http_get(&server, "/metrics").await;
    assert!(
        metrics.contains("tracker_peers{kind=\"webrtc\"} 2"),
        "{metrics}"
    );

    drop(seeder);
    leecher.close(None).await.unwrap();
    timeout(BOUND, async {
        while shared.lock().unwrap().peer_count() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("closed sockets leave their swarms");
}

#[tokio::test]
async fn origin_allowlist_and_frame_limit() {
    let mut options = TcpOptions::default();
    options.origins = vec!["https://good.example".to_owned()];
    options.ws_config.max_message_bytes = 4096;
    let (server, _) = server(options, None).await;
    let refused = connect(&server, "/", Some("https://evil.example")).await;
    assert!(refused.unwrap_err().contains("403"));
    let mut ok = connect(&server, "/", Some("https://good.example"))
        .await
        .unwrap();
    let mut no_origin = connect(&server, "/", None).await.unwrap();

    // An enormous frame ends that connection only.
    let _ = ok.send(Message::text("x".repeat(100_000))).await;
    let ended = timeout(BOUND, async {
        loop {
            match ok.next().await {
                None | Some(Err(_) | Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok());
    send(&mut no_origin, &announce(b'a', 0, 0)).await;
    assert_eq!(recv(&mut no_origin).await["complete"], 1);
}

#[tokio::test]
async fn rate_limit_and_connection_cap() {
    let mut options = TcpOptions::default();
    options.max_connections_per_ip = 2;
    let (server, _) = server(options, Some(RateLimiter::new(1, 2, 100))).await;
    let mut ws = connect(&server, "/", None).await.unwrap();
    for _ in 0..2 {
        send(&mut ws, &announce(b'a', 0, 0)).await;
        assert_eq!(recv(&mut ws).await["complete"], 1);
    }
    send(&mut ws, &announce(b'a', 0, 0)).await;
    assert_eq!(recv(&mut ws).await["failure reason"], "rate limit exceeded");
    let _second = connect(&server, "/", None).await.unwrap();
    // Two connections from 127.0.0.1 are open: a third is closed at once.
    assert!(connect(&server, "/", None).await.is_err());
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let mut options = TcpOptions::default();
    options.header_timeout = Duration::from_millis(300);
    let (server, _) = server(options, None).await;
    let mut slow = TcpStream::connect(server.local_addr()).await.unwrap();
    slow.write_all(b"GET /announce?").await.unwrap();
    let mut buf = Vec::new();
    // The server closes (possibly after a 408) instead of waiting forever.
    timeout(BOUND, slow.read_to_end(&mut buf))
        .await
        .expect("closed")
        .ok();
    let body = http_get(&server, "/nothing").await;
    assert!(body.starts_with("HTTP/1.1 404"));
}
