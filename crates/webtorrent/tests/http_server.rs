//! The HTTP server on 127.0.0.1, spoken to with raw HTTP/1.1 requests: Range streaming and
//! its edge cases, the JSON API, metrics, live updates, credentials and hostile input.
#![cfg(feature = "http")]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use webtorrent::http::{Auth, HttpConfig, WebServer};
use webtorrent::metainfo::{MetaVersion, Metainfo};
use webtorrent::session::Client;

mod common;

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(60);

/// An answer: status, headers (names lowercase), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error` of a JSON error answer.
    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an error message")
            .to_owned()
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer.
async fn request(addr: SocketAddr, head: &str, body: &[u8]) -> Answer {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut text = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n");
        if !body.is_empty() {
            text.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        text.push_str("\r\n");
        stream.write_all(text.as_bytes()).await.expect("send");
        stream.write_all(body).await.expect("send body");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(LIMIT, exchange)
        .await
        .expect("an answer in time");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8(raw[..split].to_vec()).expect("a text head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..line]).expect("hex").trim(), 16)
                .expect("chunk size");
        raw = &raw[line + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, &format!("GET {path} HTTP/1.1"), b"").await
}

async fn post_json(addr: SocketAddr, path: &str, json: &Value) -> Answer {
    request(
        addr,
        &format!("POST {path} HTTP/1.1\r\nContent-Type: application/json"),
        json.to_string().as_bytes(),
    )
    .await
}

/// A seeder of one 1 MiB "clip.mp4" (64 KiB pieces) and its torrent.
async fn seeder() -> (Client, Metainfo, Vec<u8>, tempfile::TempDir) {
    let data = common::data(21, 1 << 20);
    let files = [("clip.mp4", data.clone())];
    let metainfo = common::torrent_version("clips", 64 * 1024, &files, MetaVersion::V1);
    let (client, dir) = common::seeder(&metainfo, &files).await;
    (client, metainfo, data, dir)
}

async fn server(dir: &std::path::Path, config: HttpConfig) -> WebServer {
    let client = common::client(dir).await;
    WebServer::start(client, config).await.expect("server")
}

fn loopback() -> HttpConfig {
    let mut config = HttpConfig::default();
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_ranges_and_the_api() {
    common::logs();
    let (seeder, metainfo, data, _seed_dir) = seeder().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let web = server(dir.path(), loopback()).await;
    let addr = web.local_addr();
    let hex = metainfo.info_hashes().wire().to_hex();

    // Added by magnet link, with the seeder as a peer.
    let magnet = format!("magnet:?xt=urn:btih:{hex}");
    let added = post_json(
        addr,
        "/api/torrents",
        &serde_json::json!({ "magnet": magnet, "peers": [seeder.local_addr().to_string()] }),
    )
    .await;
    assert_eq!(
        added.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&added.body)
    );
    assert_eq!(added.json()["info_hash"], hex);
    let again = post_json(
        addr,
        "/api/torrents",
        &serde_json::json!({ "magnet": magnet }),
    )
    .await;
    assert_eq!(again.status, 409);

    // A range in the middle, served as soon as its piece is in.
    let path = format!("/stream/{hex}/0");
    let part = request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nRange: bytes=500000-500099"),
        b"",
    )
    .await;
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some("bytes 500000-500099/1048576")
    );
    assert_eq!(part.header("content-length"), Some("100"));
    assert_eq!(part.header("accept-ranges"), Some("bytes"));
    assert_eq!(part.header("content-type"), Some("video/mp4"));
    assert!(part.body == data[500_000..500_100]);
    let etag = part.header("etag").expect("an etag").to_owned();

    // The whole file.
    let whole = get(addr, &path).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("content-length"), Some("1048576"));
    assert!(whole.body == data);

    let range =
        async |r: &str| request(addr, &format!("GET {path} HTTP/1.1\r\nRange: {r}"), b"").await;
    let tail = range("bytes=-10").await;
    assert_eq!(tail.status, 206);
    assert!(tail.body == data[data.len() - 10..]);
    let open = range("bytes=1048570-").await;
    assert_eq!(
        open.header("content-range"),
        Some("bytes 1048570-1048575/1048576")
    );
    assert!(open.body == data[1_048_570..]);
    let clipped = range("bytes=1048575-99999999").await;
    assert_eq!(clipped.status, 206);
    assert_eq!(clipped.body, data[1_048_575..]);
    for bad in [
        "bytes=1048576-",
        "bytes=5-1",
        "bytes=abc",
        "bytes=-0",
        "bytes=99999999999999999999999-",
    ] {
        let answer = range(bad).await;
        assert_eq!(answer.status, 416, "{bad}");
        assert_eq!(answer.header("content-range"), Some("bytes */1048576"));
        assert!(!answer.error().is_empty());
    }
    // Several ranges, or another unit: the whole file.
    assert_eq!(range("bytes=0-1,5-6").await.status, 200);
    assert_eq!(range("lines=1-2").await.status, 200);
    // If-Range: the range holds for this file's tag only.
    let same = request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nRange: bytes=0-9\r\nIf-Range: {etag}"),
        b"",
    )
    .await;
    assert_eq!(same.status, 206);
    let other = request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nRange: bytes=0-9\r\nIf-Range: \"other\""),
        b"",
    )
    .await;
    assert_eq!(other.status, 200);
    assert_eq!(other.body.len(), data.len());
    // HEAD: the headers, no body.
    let head = request(
        addr,
        &format!("HEAD {path} HTTP/1.1\r\nRange: bytes=0-99"),
        b"",
    )
    .await;
    assert_eq!(head.status, 206);
    assert_eq!(head.header("content-length"), Some("100"));
    assert!(head.body.is_empty());
    // By path.
    let by_path = request(
        addr,
        &format!("GET /files/{hex}/clip.mp4 HTTP/1.1\r\nRange: bytes=10-19"),
        b"",
    )
    .await;
    assert_eq!(by_path.status, 206);
    assert!(by_path.body == data[10..20]);
    let by_full_path = get(addr, &format!("/files/{hex}/clips/clip.mp4")).await;
    assert_eq!(by_full_path.status, 200);

    // The API.
    let list = get(addr, "/api/torrents").await.json();
    assert_eq!(list[0]["info_hash"], hex);
    assert_eq!(list[0]["name"], "clips");
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let one = get(addr, &format!("/api/torrents/{hex}")).await.json();
        if one["state"] == "seeding" {
            assert_eq!(one["progress"], 1.0);
            assert_eq!(one["left"], 0);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not done: {one}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let files = get(addr, &format!("/api/torrents/{hex}/files"))
        .await
        .json();
    assert_eq!(files[0]["path"], "clips/clip.mp4");
    assert_eq!(files[0]["downloaded"], 1 << 20);
    assert_eq!(files[0]["mime"], "video/mp4");
    assert_eq!(files[0]["url"], format!("/stream/{hex}/0"));
    let peers = get(addr, &format!("/api/torrents/{hex}/peers"))
        .await
        .json();
    assert_eq!(peers[0]["transport"], "tcp");
    assert_eq!(peers[0]["addr"], seeder.local_addr().to_string());
    assert_eq!(
        get(addr, &format!("/api/torrents/{hex}/trackers"))
            .await
            .json(),
        serde_json::json!([])
    );
    let set = request(
        addr,
        &format!("PUT /api/torrents/{hex}/files HTTP/1.1\r\nContent-Type: application/json"),
        br#"{"files": {"0": 7}}"#,
    )
    .await;
    assert_eq!(set.status, 204);
    assert_eq!(
        get(addr, &format!("/api/torrents/{hex}/files"))
            .await
            .json()[0]["priority"],
        7
    );
    let bad_priority = request(
        addr,
        &format!("PUT /api/torrents/{hex}/files HTTP/1.1"),
        br#"{"files": {"0": 9}}"#,
    )
    .await;
    assert_eq!(bad_priority.status, 422);
    let limits = request(
        addr,
        "PUT /api/limits HTTP/1.1\r\nContent-Type: application/json",
        br#"{"upload": 1000000, "download": 0}"#,
    )
    .await;
    assert_eq!(limits.status, 200);
    assert_eq!(get(addr, "/api/limits").await.json()["upload"], 1_000_000);

    let metrics = get(addr, "/metrics").await;
    let text = String::from_utf8(metrics.body).expect("text");
    assert!(text.contains("webtorrent_torrents 1\n"), "{text}");
    assert!(text.contains(&format!("webtorrent_torrent_done{{info_hash=\"{hex}\"}} 1")));
    assert!(text.contains("webtorrent_peers{transport=\"tcp\"} 1"));

    // Live updates: the first event lists the torrent.
    let events = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .expect("send");
        let mut seen = Vec::new();
        let mut buf = [0; 4096];
        while !String::from_utf8_lossy(&seen).contains("\"info_hash\"") {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "the event stream ended");
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    };
    let seen = tokio::time::timeout(LIMIT, events)
        .await
        .expect("an event in time");
    assert!(seen.contains("text/event-stream"));
    assert!(seen.contains("event: torrents"));

    // Pause, resume, remove.
    let pause = request(
        addr,
        &format!("POST /api/torrents/{hex}/pause HTTP/1.1"),
        b"",
    )
    .await;
    assert_eq!(pause.status, 204);
    let resume = request(
        addr,
        &format!("POST /api/torrents/{hex}/resume HTTP/1.1"),
        b"",
    )
    .await;
    assert_eq!(resume.status, 204);
    let removed = request(
        addr,
        &format!("DELETE /api/torrents/{hex}?delete_data=true HTTP/1.1"),
        b"",
    )
    .await;
    assert_eq!(removed.status, 204);
    assert_eq!(get(addr, &format!("/api/torrents/{hex}")).await.status, 404);
    assert_eq!(get(addr, &path).await.status, 404);
    assert!(!dir.path().join("clips").exists());

    // Added again from the .torrent's bytes, with the seeder as a peer.
    let upload = request(
        addr,
        &format!(
            "POST /api/torrents?peer={} HTTP/1.1\r\nContent-Type: application/x-bittorrent",
            seeder.local_addr()
        ),
        &metainfo.to_bytes(),
    )
    .await;
    assert_eq!(upload.status, 201);
    assert_eq!(upload.json()["name"], "clips");
    let body = get(addr, &path).await;
    assert!(body.body == data);
    let pieces = get(addr, &format!("/api/torrents/{hex}/pieces"))
        .await
        .json();
    assert_eq!(pieces["pieces"], 16);
    assert_eq!(pieces["verified"], 16);
    assert_eq!(pieces["bitfield"], "ffff");
    let bad_peer = request(addr, "POST /api/torrents?peer=nowhere HTTP/1.1", b"d").await;
    assert_eq!(bad_peer.status, 400);

    web.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_json_errors() {
    common::logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = loopback();
    config.first_byte_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_millis(500);
    config.max_torrent_size = 64 * 1024;
    let web = server(dir.path(), config).await;
    let addr = web.local_addr();
    let unknown = "0123456789abcdef0123456789abcdef01234567";

    let cases: Vec<(Answer, u16)> = vec![
        (get(addr, &format!("/stream/{unknown}/0")).await, 404),
        (get(addr, "/stream/not-a-hash/0").await, 400),
        (get(addr, &format!("/api/torrents/{unknown}")).await, 404),
        (
            get(addr, &format!("/api/torrents/{unknown}/peers")).await,
            404,
        ),
        (get(addr, "/nowhere").await, 404),
        (
            request(
                addr,
                "POST /api/torrents HTTP/1.1",
                b"this is not a torrent",
            )
            .await,
            400,
        ),
        (request(addr, "POST /api/torrents HTTP/1.1", b"").await, 400),
        (
            request(
                addr,
                "POST /api/torrents HTTP/1.1\r\nContent-Type: application/json",
                b"{\"magnet\": ",
            )
            .await,
            400,
        ),
        (
            post_json(
                addr,
                "/api/torrents",
                &serde_json::json!({ "magnet": "magnet:?xt=urn:nothing" }),
            )
            .await,
            400,
        ),
        (
            post_json(
                addr,
                "/api/torrents",
                &serde_json::json!({ "url": "file:///etc/passwd" }),
            )
            .await,
            400,
        ),
        (
            post_json(
                addr,
                "/api/torrents",
                &serde_json::json!({ "url": "http://127.0.0.1:9/x.torrent" }),
            )
            .await,
            502,
        ),
        (
            post_json(
                addr,
                "/api/torrents",
                &serde_json::json!({ "magnet": "a", "url": "b" }),
            )
            .await,
            400,
        ),
        (
            request(addr, "POST /api/torrents HTTP/1.1", &vec![b'd'; 100_000]).await,
            413,
        ),
        (
            request(addr, "PUT /api/limits HTTP/1.1", b"{\"upload\": -1}").await,
            400,
        ),
    ];
    for (i, (answer, status)) in cases.iter().enumerate() {
        assert_eq!(answer.status, *status, "case {i}: {answer:?}");
        assert!(!answer.error().is_empty(), "case {i}");
    }

    // A magnet link nobody serves: its stream gives up with 504, its files are empty.
    let added = post_json(
        addr,
        "/api/torrents",
        &serde_json::json!({ "magnet": format!("magnet:?xt=urn:btih:{unknown}") }),
    )
    .await;
    assert_eq!(added.status, 201);
    assert_eq!(added.json()["state"], "metadata");
    let stalled = get(addr, &format!("/stream/{unknown}/0")).await;
    assert_eq!(stalled.status, 504);
    assert!(stalled.error().contains("metadata"));
    assert_eq!(
        get(addr, &format!("/api/torrents/{unknown}/files"))
            .await
            .json(),
        serde_json::json!([])
    );
    let priorities = request(
        addr,
        &format!("PUT /api/torrents/{unknown}/files HTTP/1.1"),
        br#"{"priorities": [1]}"#,
    )
    .await;
    assert_eq!(priorities.status, 503);
    // Paths that try to leave the torrent find nothing.
    for path in ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%00"] {
        let answer = get(addr, &format!("/files/{unknown}/{path}")).await;
        assert!(
            answer.status == 404 || answer.status == 504,
            "{path}: {answer:?}"
        );
    }
    // A head or a body that never ends: the connection is closed, the body answered 408.
    let slow_head = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x")
            .await
            .expect("send");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        out
    };
    let answer = tokio::time::timeout(LIMIT, slow_head)
        .await
        .expect("closed in time");
    assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"));
    let slow_body = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"POST /api/torrents HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nd8:")
            .await
            .expect("send");
        let mut out = vec![0; 4096];
        let n = stream.read(&mut out).await.expect("an answer");
        String::from_utf8_lossy(&out[..n]).into_owned()
    };
    let answer = tokio::time::timeout(LIMIT, slow_body)
        .await
        .expect("answered in time");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A malformed request line gets a 400 from the HTTP layer, and the server lives on.
    let garbage = {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"\x00\x01garbage\r\n\r\n")
            .await
            .expect("send");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(LIMIT, stream.read_to_end(&mut out)).await;
        out
    };
    assert!(garbage.is_empty() || garbage.starts_with(b"HTTP/1.1 400"));
    assert_eq!(get(addr, "/api/torrents").await.status, 200);
    web.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = loopback();
    config.auth = Some(Auth::Token("s3cret".to_owned()));
    let web = server(dir.path(), config).await;
    let addr = web.local_addr();
    assert_eq!(get(addr, "/api/torrents").await.status, 401);
    assert_eq!(get(addr, "/api/torrents?token=wrong").await.status, 401);
    assert_eq!(get(addr, "/api/torrents?token=s3cret").await.status, 200);
    let bearer = request(
        addr,
        "GET /api/torrents HTTP/1.1\r\nAuthorization: Bearer s3cret",
        b"",
    )
    .await;
    assert_eq!(bearer.status, 200);
    // The page and its assets need no token; what they ask for does.
    assert_eq!(get(addr, "/").await.status, 200);
    assert_eq!(get(addr, "/assets/app.js").await.status, 200);
    assert_eq!(get(addr, "/api/events").await.status, 401);
    assert_eq!(
        get(addr, &format!("/stream/{}/0", "ab".repeat(20)))
            .await
            .status,
        401
    );
    web.shutdown().await.expect("shutdown");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = loopback();
    config.auth = Some(Auth::Basic {
        user: "me".to_owned(),
        password: "pw".to_owned(),
    });
    let web = server(dir.path(), config).await;
    let addr = web.local_addr();
    let refused = get(addr, "/").await;
    assert_eq!(refused.status, 401);
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic"))
    );
    // "me:pw" in base64.
    let ok = request(addr, "GET / HTTP/1.1\r\nAuthorization: Basic bWU6cHc=", b"").await;
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("<title>webtorrent</title>"));
    let wrong = request(addr, "GET / HTTP/1.1\r\nAuthorization: Basic bWU6cHg=", b"").await;
    assert_eq!(wrong.status, 401);
    web.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_and_its_assets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web = server(dir.path(), loopback()).await;
    let addr = web.local_addr();
    let index = get(addr, "/").await;
    assert_eq!(index.status, 200);
    assert!(
        index
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/html"))
    );
    let page = String::from_utf8_lossy(&index.body).into_owned();
    // Everything the page loads comes from this server.
    for remote in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!page.contains(remote), "the page loads {remote}…");
    }
    for asset in ["/assets/app.js", "/assets/style.css"] {
        assert!(page.contains(asset));
        let answer = get(addr, asset).await;
        assert_eq!(answer.status, 200, "{asset}");
        assert!(!answer.body.is_empty());
    }
    assert_eq!(get(addr, "/assets/nothing.js").await.status, 404);
    web.shutdown().await.expect("shutdown");
}
