//! The TCP listener at the byte level: plain announces and scrapes (the
//! fast path) with keep-alive, `Connection: close`, HTTP/1.0, pipelining
//! and slow heads, and the hand-over of a connection to the general path
//! (statistics, WebSocket upgrades) after fast requests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use webtorrent_tracker_server::http::HttpConfig;
use webtorrent_tracker_server::{HttpServer, SharedStore, StoreConfig, SwarmStore};

const BOUND: Duration = Duration::from_secs(20);
const HASH: &str = "%24%24%24%24%24%24%24%24%24%24%24%24%24%24%24%24%24%24%24%24";

fn store() -> SharedStore {
    Arc::new(Mutex::new(SwarmStore::new(StoreConfig::default(), 3)))
}

async fn server() -> HttpServer {
    HttpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        store(),
        HttpConfig::default(),
    )
    .await
    .unwrap()
}

fn announce(peer: u8, port: u16, version: &str, extra: &str) -> String {
    format!(
        "GET /announce?info_hash={HASH}&peer_id={}&port={port}&left=0&compact=1 {version}\r\n\
         Host: t\r\n{extra}\r\n",
        format!("{peer:02x}").repeat(10)
    )
}

/// Reads one response (head and `content-length` body) from `stream`,
/// keeping what follows in `pending`.
async fn response(stream: &mut TcpStream, pending: &mut Vec<u8>) -> (String, Vec<u8>) {
    loop {
        if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..i + 4].to_vec()).unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if pending.len() >= i + 4 + len {
                let body = pending[i + 4..i + 4 + len].to_vec();
                pending.drain(..i + 4 + len);
                return (head, body);
            }
        }
        let mut buf = [0u8; 4096];
        let n = timeout(BOUND, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed before a whole response");
        pending.extend_from_slice(&buf[..n]);
    }
}

async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        timeout(BOUND, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn keep_alive_then_close() {
    let server = server().await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut pending = Vec::new();
    s.write_all(announce(1, 7001, "HTTP/1.1", "").as_bytes())
        .await
        .unwrap();
    let (head, body) = response(&mut s, &mut pending).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert!(
        body.starts_with(b"d8:completei1e"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // The same connection, a second peer: it gets the first.
    let leecher =
        announce(2, 7002, "HTTP/1.1", "Connection: close\r\n").replace("left=0", "left=5");
    s.write_all(leecher.as_bytes()).await.unwrap();
    let (head, body) = response(&mut s, &mut pending).await;
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(body.contains("8:completei1e10:incompletei1e"), "{body}");
    assert!(
        body.contains("5:peers6:\x7f\x00\x00\x01\x1b\x59"),
        "{body:?}"
    );
    assert!(closed(&mut s).await);
}

#[tokio::test]
async fn http_1_0_pipelined_and_slow_heads() {
    let server = server().await;
    // HTTP/1.0 closes after the answer.
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(announce(1, 7001, "HTTP/1.0", "").as_bytes())
        .await
        .unwrap();
    let (head, _) = response(&mut s, &mut Vec::new()).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(closed(&mut s).await);

    // Two requests in one write get two answers, in order.
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let two = format!(
        "{}GET /scrape?info_hash={HASH} HTTP/1.1\r\nConnection: close\r\n\r\n",
        announce(2, 7002, "HTTP/1.1", "")
    );
    s.write_all(two.as_bytes()).await.unwrap();
    let mut pending = Vec::new();
    let (_, first) = response(&mut s, &mut pending).await;
    assert!(first.starts_with(b"d8:complete"), "{first:?}");
    let (_, second) = response(&mut s, &mut pending).await;
    assert!(
        second.starts_with(b"d5:filesd20:$$$$"),
        "{:?}",
        String::from_utf8_lossy(&second)
    );
    assert!(closed(&mut s).await);

    // A head sent a few bytes at a time.
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    for chunk in announce(3, 7003, "HTTP/1.1", "Connection: close\r\n")
        .as_bytes()
        .chunks(7)
    {
        s.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (_, body) = response(&mut s, &mut Vec::new()).await;
    assert!(
        String::from_utf8_lossy(&body).contains("8:completei3e"),
        "{body:?}"
    );
}

#[tokio::test]
async fn other_requests_on_the_same_connection_reach_the_general_path() {
    let server = server().await;
    let addr: SocketAddr = server.local_addr();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut pending = Vec::new();
    s.write_all(announce(1, 7001, "HTTP/1.1", "").as_bytes())
        .await
        .unwrap();
    response(&mut s, &mut pending).await;
    s.write_all(b"GET /stats.json HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = response(&mut s, &mut pending).await;
    assert!(head.contains("application/json"), "{head}");
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["torrents"], 1, "{stats}");
    // A POST to /announce is not served.
    s.write_all(b"POST /announce HTTP/1.1\r\nContent-Length: 2\r\n\r\nab")
        .await
        .unwrap();
    let (head, _) = response(&mut s, &mut pending).await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // A WebSocket upgrade after an announce on the same connection.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut pending = Vec::new();
    s.write_all(announce(2, 7002, "HTTP/1.1", "").as_bytes())
        .await
        .unwrap();
    response(&mut s, &mut pending).await;
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, _) = response(&mut s, &mut pending).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
}

#[tokio::test]
async fn oversized_and_garbage_heads() {
    let server = server().await;
    // A head over the fast path's limit goes to the general path, which
    // still serves it (16 KiB heads by default).
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let padding = format!("X-Pad: {}\r\n", "a".repeat(6000));
    s.write_all(
        announce(
            1,
            7001,
            "HTTP/1.1",
            &format!("{padding}Connection: close\r\n"),
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (head, body) = response(&mut s, &mut Vec::new()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.starts_with(b"d8:complete"), "{body:?}");
    // Garbage gets an error from the general path, not a hang.
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(b"\x00\x01garbage\r\n\r\n").await.unwrap();
    let mut all = Vec::new();
    let _ = timeout(BOUND, s.read_to_end(&mut all)).await.unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(all.is_empty() || text.starts_with("HTTP/1.1 400"), "{text}");
}
