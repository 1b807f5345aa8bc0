//! Web seeds against an HTTP/1.1 server on loopback, written here by hand so that every
//! answer (good or broken) is under the test's control.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use webtorrent_metainfo::{MemoryFile, MetaVersion, Metainfo, TorrentBuilder};
use webtorrent_storage::Layout;
use webtorrent_webseed::{
    Backoff, BackoffConfig, WebSeed, WebSeedClient, WebSeedConfig, WebSeedError, WebSeedUrl,
};

/// How the server answers a path.
#[derive(Clone, Debug)]
enum Behaviour {
    /// Honour `Range` like a good server.
    Normal,
    /// 404.
    NotFound,
    /// 500.
    ServerError,
    /// 503 with `Retry-After: n`.
    Busy(u64),
    /// 206 with a correct `Content-Range` but one byte short of it.
    Short,
    /// 206 naming other bytes than asked for.
    WrongContentRange,
    /// 200 and the whole file, whatever the `Range`.
    IgnoreRange,
    /// Wait this long before answering.
    Slow(Duration),
    /// Send the headers and half the body, then wait this long.
    Stall(Duration),
    /// 302 to another path.
    Redirect(String),
}

/// What the server saw: the raw request target and the `Range` header.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

#[derive(Default)]
struct Site {
    /// Decoded path → file bytes.
    files: HashMap<String, Vec<u8>>,
    /// Decoded path → behaviour (default [`Behaviour::Normal`]).
    behaviour: HashMap<String, Behaviour>,
    /// BEP 17 script: the torrent's info-hash, its v1 data stream (pad bytes included)
    /// and piece length.
    script: Option<([u8; 20], Vec<u8>, u64)>,
    /// How many BEP 17 requests get a 503 with the wait in the body first.
    script_busy: u32,
}

struct Server {
    base: String,
    log: Log,
}

impl Server {
    async fn start(site: Site) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound");
        let log: Log = Arc::default();
        let site = Arc::new(Mutex::new(site));
        let task_log = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&site), Arc::clone(&task_log)));
            }
        });
        Self {
            base: format!("http://{addr}"),
            log,
        }
    }

    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.log.lock().expect("not poisoned").clone()
    }
}

fn decode(path: &str) -> String {
    String::from_utf8(decode_bytes(path)).expect("paths are UTF-8")
}

fn decode_bytes(path: &str) -> Vec<u8> {
    let b = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = b.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// `bytes=a-b` → a..b+1.
fn parse_range(value: &str) -> Option<Range<u64>> {
    let (a, b) = value.strip_prefix("bytes=")?.split_once('-')?;
    let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some(a..b + 1)
}

async fn serve(stream: TcpStream, site: Arc<Mutex<Site>>, log: Log) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let target = line.split(' ').nth(1).unwrap_or("").to_owned();
        let mut range = None;
        loop {
            let mut h = String::new();
            if read.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("range")
            {
                range = Some(v.trim().to_owned());
            }
        }
        log.lock()
            .expect("not poisoned")
            .push((target.clone(), range.clone()));
        let answer = answer(&site, &target, range.as_deref());
        if let Some(delay) = answer.delay {
            tokio::time::sleep(delay).await;
        }
        let mut head = format!(
            "HTTP/1.1 {}\r\nContent-Length: {}\r\n",
            answer.status,
            answer.content_length.unwrap_or(answer.body.len())
        );
        for (k, v) in &answer.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let (first, rest) = answer
            .body
            .split_at(answer.stall.map_or(0, |_| answer.body.len() / 2));
        if write.write_all(head.as_bytes()).await.is_err() || write.write_all(first).await.is_err()
        {
            return;
        }
        if let Some(stall) = answer.stall {
            let _ = write.flush().await;
            tokio::time::sleep(stall).await;
        }
        if write.write_all(rest).await.is_err() {
            return;
        }
        if answer.close {
            let _ = write.shutdown().await;
            // Drain so the client sees a clean end rather than a reset.
            let mut sink = Vec::new();
            let _ = read.read_to_end(&mut sink).await;
            return;
        }
    }
}

struct Answer {
    status: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    content_length: Option<usize>,
    delay: Option<Duration>,
    stall: Option<Duration>,
    close: bool,
}

fn plain(status: &'static str) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: Vec::new(),
        content_length: None,
        delay: None,
        stall: None,
        close: false,
    }
}

fn answer(site: &Mutex<Site>, target: &str, range: Option<&str>) -> Answer {
    let mut site = site.lock().expect("not poisoned");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // The client must encode everything but unreserved characters and `/`.
    assert!(
        path.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%/".contains(&b)),
        "unencoded request path {path}"
    );
    let path = decode(path);
    if path == "/seed.php" {
        return script(&mut site, query);
    }
    let behaviour = site
        .behaviour
        .get(&path)
        .cloned()
        .unwrap_or(Behaviour::Normal);
    let Some(data) = site.files.get(&path) else {
        return plain("404 Not Found");
    };
    let mut a = plain("206 Partial Content");
    let r = range.and_then(parse_range);
    let slice = |r: &Range<u64>| data[r.start as usize..(r.end as usize).min(data.len())].to_vec();
    match behaviour {
        Behaviour::NotFound => return plain("404 Not Found"),
        Behaviour::ServerError => return plain("500 Internal Server Error"),
        Behaviour::Busy(n) => {
            let mut a = plain("503 Service Unavailable");
            a.headers.push(("Retry-After", n.to_string()));
            return a;
        }
        Behaviour::Redirect(to) => {
            let mut a = plain("302 Found");
            a.headers.push(("Location", to));
            return a;
        }
        Behaviour::IgnoreRange => {
            let mut a = plain("200 OK");
            a.body = data.clone();
            return a;
        }
        Behaviour::Slow(d) => a.delay = Some(d),
        Behaviour::Stall(d) => a.stall = Some(d),
        Behaviour::Short => {
            let Some(r) = r else {
                return plain("400 Bad Request");
            };
            a.headers.push((
                "Content-Range",
                format!("bytes {}-{}/{}", r.start, r.end - 1, data.len()),
            ));
            let mut body = slice(&r);
            body.pop();
            a.body = body;
            a.close = true;
            return a;
        }
        Behaviour::WrongContentRange => {
            let Some(r) = r else {
                return plain("400 Bad Request");
            };
            a.headers.push((
                "Content-Range",
                format!("bytes {}-{}/{}", r.start + 1, r.end, data.len()),
            ));
            a.body = slice(&r);
            return a;
        }
        Behaviour::Normal => {}
    }
    match r {
        Some(r) if r.end <= data.len() as u64 => {
            a.headers.push((
                "Content-Range",
                format!("bytes {}-{}/{}", r.start, r.end - 1, data.len()),
            ));
            a.body = slice(&r);
        }
        Some(_) => return plain("416 Range Not Satisfiable"),
        None => {
            a.status = "200 OK";
            a.body = data.clone();
        }
    }
    a
}

/// A BEP 17 script over the v1 data stream.
fn script(site: &mut Site, query: &str) -> Answer {
    if site.script_busy > 0 {
        site.script_busy -= 1;
        let mut a = plain("503 Service Unavailable");
        a.body = b"7".to_vec();
        return a;
    }
    let Some((hash, stream, piece_length)) = &site.script else {
        return plain("404 Not Found");
    };
    let params: HashMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let piece: u64 = params["piece"].parse().expect("numeric piece");
    if decode_bytes(params["info_hash"]) != hash {
        return plain("404 Not Found");
    }
    let start = piece * piece_length;
    let end = (start + piece_length).min(stream.len() as u64);
    let piece_bytes = &stream[start as usize..end as usize];
    let mut body = Vec::new();
    match params.get("ranges") {
        None => body.extend_from_slice(piece_bytes),
        Some(ranges) => {
            for r in ranges.split(',') {
                let (a, b) = r.split_once('-').expect("a-b");
                let (a, b): (usize, usize) = (a.parse().expect("a"), b.parse().expect("b"));
                body.extend_from_slice(&piece_bytes[a..=b]);
            }
        }
    }
    let mut a = plain("200 OK");
    a.body = body;
    a
}

fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

const PIECE: u64 = 16 * 1024;

/// A multi-file torrent with names that need encoding, and the site serving it under
/// `/pub/`.
fn multi_file(version: MetaVersion) -> (Metainfo, Site) {
    let files = [
        ("a.bin", bytes(1, 10_000)),
        ("sub dir/b #1?.txt", bytes(2, 3)),
        ("empty", Vec::new()),
        ("ünï cødé/c.dat", bytes(3, 40_000)),
        ("d 100%.bin", bytes(4, 5_000)),
    ];
    let torrent = TorrentBuilder::from_memory(
        "my torrent",
        files
            .iter()
            .map(|(p, d)| MemoryFile::new(*p, d.clone()))
            .collect(),
    )
    .meta_version(version)
    .piece_length(Some(PIECE))
    .build()
    .expect("valid torrent");
    let mut site = Site::default();
    for (p, d) in files {
        site.files.insert(format!("/pub/my torrent/{p}"), d);
    }
    (torrent, site)
}

fn client(timeout: Duration) -> WebSeedClient {
    WebSeedClient::new(WebSeedConfig::default().with_timeout(timeout)).expect("client")
}

fn seed(client: &WebSeedClient, url: WebSeedUrl, torrent: &Metainfo) -> (WebSeed, Arc<Layout>) {
    let layout = Arc::new(Layout::from_metainfo(torrent));
    (client.seed(url, Arc::clone(&layout)), layout)
}

async fn fetch_all_verified(seed: &WebSeed, layout: &Layout) {
    for piece in 0..layout.piece_count() {
        let data = seed.fetch_piece(piece).await.expect("piece fetched");
        assert!(
            layout.check_piece(piece, &data).expect("piece has a hash"),
            "piece {piece} does not match its hash"
        );
    }
}

#[tokio::test]
async fn multi_file_v1_pieces_spanning_files() {
    let (torrent, site) = multi_file(MetaVersion::V1);
    let files = site.files.clone();
    let server = Server::start(site).await;
    // No final slash: the folder URL gets one.
    let url = WebSeedUrl::url_list(format!("{}/pub", server.base)).expect("url");
    let (seed, layout) = seed(&client(Duration::from_secs(10)), url, &torrent);
    fetch_all_verified(&seed, &layout).await;
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|(t, _)| t == "/pub/my%20torrent/sub%20dir/b%20%231%3F.txt")
    );
    assert!(
        requests
            .iter()
            .any(|(t, _)| t == "/pub/my%20torrent/%C3%BCn%C3%AF%20c%C3%B8d%C3%A9/c.dat")
    );
    assert!(
        requests
            .iter()
            .any(|(t, _)| t == "/pub/my%20torrent/d%20100%25.bin")
    );
    assert!(!requests.iter().any(|(t, _)| t.ends_with("/empty")));
    assert!(requests.iter().all(|(_, r)| r.is_some()));

    // A block across the end of a.bin (the first file) and the next ones.
    let block = seed.fetch(0, 9_990, 20).await.expect("block");
    assert_eq!(block, v1_stream(&layout, &files)[9_990..10_010]);
}

/// The torrent's v1 data stream: every file in order, pad files as zeros.
fn v1_stream(layout: &Layout, files: &HashMap<String, Vec<u8>>) -> Vec<u8> {
    let mut stream = Vec::new();
    for f in layout.info().files() {
        if f.is_pad() {
            stream.resize(stream.len() + f.length as usize, 0);
        } else {
            let key = format!("/pub/{}", f.path.to_str().expect("utf-8"));
            stream.extend_from_slice(&files[&key]);
        }
    }
    stream
}

#[tokio::test]
async fn piece_spans_in_few_requests() {
    let (torrent, site) = multi_file(MetaVersion::Hybrid);
    let server = Server::start(site).await;
    let url = WebSeedUrl::url_list(format!("{}/pub/", server.base)).expect("url");
    let (seed, layout) = seed(&client(Duration::from_secs(10)), url, &torrent);
    let count = layout.piece_count();
    let pieces = seed.fetch_pieces(0..count).await.expect("all pieces");
    assert_eq!(pieces.len(), count as usize);
    for (piece, data) in (0..count).zip(&pieces) {
        assert!(
            layout.check_piece(piece, data).expect("hash"),
            "piece {piece}"
        );
    }
    // One request per non-empty real file, however many pieces it spans.
    let real = layout
        .info()
        .files()
        .iter()
        .filter(|f| !f.is_pad() && f.length > 0)
        .count();
    assert_eq!(server.requests().len(), real);
}

#[tokio::test]
async fn hybrid_pad_files_never_requested() {
    let (torrent, site) = multi_file(MetaVersion::Hybrid);
    assert!(torrent.info().files().iter().any(|f| f.is_pad()));
    let server = Server::start(site).await;
    let url = WebSeedUrl::url_list(format!("{}/pub/", server.base)).expect("url");
    let (seed, layout) = seed(&client(Duration::from_secs(10)), url, &torrent);
    fetch_all_verified(&seed, &layout).await;
    for (target, range) in server.requests() {
        assert!(!target.contains(".pad"), "pad file requested: {target}");
        assert!(range.is_some());
    }
}

#[tokio::test]
async fn v2_only_torrent() {
    let (torrent, site) = multi_file(MetaVersion::V2);
    let server = Server::start(site).await;
    let url = WebSeedUrl::url_list(format!("{}/pub/", server.base)).expect("url");
    let (seed, layout) = seed(&client(Duration::from_secs(10)), url, &torrent);
    fetch_all_verified(&seed, &layout).await;
}

#[tokio::test]
async fn single_file_torrents() {
    let data = bytes(9, 50_000);
    let torrent = TorrentBuilder::from_memory_file("movie #1 (é).mkv", data.clone())
        .piece_length(Some(PIECE))
        .build()
        .expect("valid torrent");
    let mut site = Site::default();
    site.files
        .insert("/files/movie #1 (é).mkv".into(), data.clone());
    site.files.insert("/direct.mkv".into(), data);
    let server = Server::start(site).await;
    let client = client(Duration::from_secs(10));
    // A folder URL gets the name; a file URL is used as is.
    for url in [
        format!("{}/files/", server.base),
        format!("{}/direct.mkv", server.base),
    ] {
        let (seed, layout) = seed(&client, WebSeedUrl::url_list(url).expect("url"), &torrent);
        fetch_all_verified(&seed, &layout).await;
    }
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|(t, _)| t == "/files/movie%20%231%20%28%C3%A9%29.mkv")
    );
    assert!(requests.iter().any(|(t, _)| t == "/direct.mkv"));
}

#[tokio::test]
async fn whole_small_file_accepts_200() {
    // A server ignoring `Range` is fine when the whole file was asked for.
    let (torrent, mut site) = multi_file(MetaVersion::Hybrid);
    for p in site.files.keys().cloned().collect::<Vec<_>>() {
        site.behaviour.insert(p, Behaviour::IgnoreRange);
    }
    let server = Server::start(site).await;
    let url = WebSeedUrl::url_list(format!("{}/pub/", server.base)).expect("url");
    let (seed, layout) = seed(&client(Duration::from_secs(10)), url, &torrent);
    // Piece 0 of the hybrid torrent is all of a.bin plus padding.
    let data = seed.fetch_piece(0).await.expect("whole file in a 200");
    assert!(layout.check_piece(0, &data).expect("hash"));
    // Piece 2 is part of c.dat: a 200 with the whole file is refused unread.
    let c = layout
        .info()
        .files()
        .iter()
        .position(|f| f.path.ends_with("c.dat"))
        .expect("c.dat");
    let part = layout.info().file_pieces(c).expect("pieces").start;
    assert!(matches!(
        seed.fetch_piece(part).await,
        Err(WebSeedError::RangeIgnored { .. })
    ));
}

async fn failing(behaviour: Behaviour, timeout: Duration) -> WebSeedError {
    failing_with(behaviour, WebSeedConfig::default().with_timeout(timeout)).await
}

async fn failing_with(behaviour: Behaviour, config: WebSeedConfig) -> WebSeedError {
    let (torrent, mut site) = multi_file(MetaVersion::V1);
    site.behaviour
        .insert("/pub/my torrent/a.bin".into(), behaviour);
    let server = Server::start(site).await;
    let url = WebSeedUrl::url_list(format!("{}/pub/", server.base)).expect("url");
    let client = WebSeedClient::new(config).expect("client");
    let (seed, _layout) = seed(&client, url, &torrent);
    seed.fetch(0, 100, 1_000).await.expect_err("must fail")
}

#[tokio::test]
async fn broken_servers_give_typed_errors() {
    let t = Duration::from_secs(10);
    let e = failing(Behaviour::NotFound, t).await;
    assert!(
        matches!(
            e,
            WebSeedError::HttpStatus {
                status: 404,
                retry_after: None,
                ..
            }
        ),
        "{e}"
    );
    let e = failing(Behaviour::ServerError, t).await;
    assert!(
        matches!(e, WebSeedError::HttpStatus { status: 500, .. }),
        "{e}"
    );
    let e = failing(Behaviour::Busy(42), t).await;
    assert_eq!(e.retry_after(), Some(Duration::from_secs(42)), "{e}");
    let e = failing(Behaviour::Short, t).await;
    assert!(
        matches!(
            e,
            WebSeedError::WrongLength {
                expected: 1_000,
                got: 999,
                ..
            }
        ),
        "{e}"
    );
    let e = failing(Behaviour::WrongContentRange, t).await;
    assert!(matches!(e, WebSeedError::BadContentRange { .. }), "{e}");
    let e = failing(Behaviour::IgnoreRange, t).await;
    assert!(matches!(e, WebSeedError::RangeIgnored { .. }), "{e}");
    let e = failing(
        Behaviour::Slow(Duration::from_secs(5)),
        Duration::from_millis(300),
    )
    .await;
    assert!(matches!(e, WebSeedError::Timeout { .. }), "{e}");
    // Headers and half the body, then nothing: the idle timeout gives up.
    let config = WebSeedConfig::default().with_idle_timeout(Duration::from_millis(300));
    let e = failing_with(Behaviour::Stall(Duration::from_secs(5)), config).await;
    assert!(
        matches!(e, WebSeedError::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{e}"
    );
    let e = failing(Behaviour::Redirect("/pub/my%20torrent/a.bin".into()), t).await;
    assert!(matches!(e, WebSeedError::TooManyRedirects { .. }), "{e}");
}

#[tokio::test]
async fn redirects_followed() {
    let (torrent, mut site) = multi_file(MetaVersion::V1);
    let moved = site.files["/pub/my torrent/a.bin"].clone();
    site.files.insert("/moved/a.bin".into(), moved);
    site.behaviour.insert(
        "/pub/my torrent/a.bin".into(),
        Behaviour::Redirect("/moved/a.bin".into()),
    );
    let server = Server::start(site).await;
    let url = WebSeedUrl::url_list(format!("{}/pub/", server.base)).expect("url");
    let (seed, layout) = seed(&client(Duration::from_secs(10)), url, &torrent);
    fetch_all_verified(&seed, &layout).await;
    // The `Range` header survives the redirect.
    assert!(
        server
            .requests()
            .iter()
            .any(|(t, r)| t == "/moved/a.bin" && r.is_some())
    );
}

#[tokio::test]
async fn connection_refused_and_backoff() {
    // A port nobody listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("bound").port()
    };
    let (torrent, _) = multi_file(MetaVersion::V1);
    let url = WebSeedUrl::url_list(format!("http://127.0.0.1:{port}/pub/")).expect("url");
    let (seed, _layout) = seed(&client(Duration::from_secs(10)), url, &torrent);
    let e = seed.fetch_piece(0).await.expect_err("nobody listens");
    assert!(matches!(e, WebSeedError::Connection { .. }), "{e}");

    let now = Instant::now();
    let mut backoff = Backoff::new(
        BackoffConfig::default().with_waits(Duration::from_secs(1), Duration::from_secs(4)),
    );
    let waits: Vec<_> = (0..4)
        .map(|_| backoff.on_failure(now, &e).expect("retried") - now)
        .collect();
    assert_eq!(
        waits.iter().map(Duration::as_secs).collect::<Vec<_>>(),
        [1, 2, 4, 4]
    );
    assert!(!backoff.is_disabled());
}

#[tokio::test]
async fn bep17_script() {
    let (torrent, mut site) = multi_file(MetaVersion::Hybrid);
    // The script serves the v1 stream, pad bytes included.
    let stream = v1_stream(&Layout::from_metainfo(&torrent), &site.files);
    site.script = Some((torrent.info_hashes().wire().0, stream, PIECE));
    site.script_busy = 1;
    let server = Server::start(site).await;
    let url = WebSeedUrl::http_seed(format!("{}/seed.php", server.base)).expect("url");
    let (seed, layout) = seed(&client(Duration::from_secs(10)), url, &torrent);
    // The first answer is busy, with the wait in the body.
    let e = seed.fetch_piece(0).await.expect_err("busy");
    assert!(
        matches!(e, WebSeedError::HttpStatus { status: 503, .. }),
        "{e}"
    );
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    fetch_all_verified(&seed, &layout).await;
    let block = seed.fetch(1, 100, 50).await.expect("block");
    assert_eq!(block, seed.fetch_piece(1).await.expect("piece")[100..150]);
    assert!(
        server
            .requests()
            .iter()
            .any(|(t, _)| t.ends_with("&piece=1&ranges=100-149"))
    );
}

#[tokio::test]
async fn concurrent_requests_limited() {
    let (torrent, mut site) = multi_file(MetaVersion::V1);
    site.behaviour.insert(
        "/pub/my torrent/ünï cødé/c.dat".into(),
        Behaviour::Slow(Duration::from_millis(200)),
    );
    let server = Server::start(site).await;
    let client = WebSeedClient::new(WebSeedConfig::default().with_max_concurrent_requests(1))
        .expect("client");
    let url = WebSeedUrl::url_list(format!("{}/pub/", server.base)).expect("url");
    let (seed, _layout) = seed(&client, url, &torrent);
    // Pieces 1 and 2 each need one request to c.dat; with one request at a time they
    // take two delays.
    let started = Instant::now();
    let (a, b) = tokio::join!(seed.fetch_piece(1), seed.fetch_piece(2));
    a.expect("piece 1");
    b.expect("piece 2");
    assert!(started.elapsed() >= Duration::from_millis(400));
}
