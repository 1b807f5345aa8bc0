//! Web seeds end to end: a torrent whose only source is an HTTP server with Range support
//! (a small one in this file, on 127.0.0.1), and a web seed that answers 404.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use webtorrent::metainfo::{MemoryFile, MetaVersion, Metainfo, TorrentBuilder};
use webtorrent::session::{AddOptions, Client, TorrentEvent};

mod common;

const LIMIT: Duration = Duration::from_secs(60);

/// What a test server answered.
#[derive(Default)]
struct Served {
    requests: AtomicUsize,
    /// Body bytes of its `206` answers.
    bytes: AtomicUsize,
}

/// Serves `files` (URL path → bytes) over HTTP/1.1 with single `Range` requests; every
/// other path is a 404. Counts the requests it answered and the body bytes it sent.
///
/// Paths under `/site/` are served as they are; the same paths under other first folders
/// misbehave: `/err/…` answers 500, `/corrupt/…` sends the range with every byte flipped,
/// `/shifted/…` sends the range one byte later than asked (its `content-range` says so),
/// and `/short/…` promises the range but closes after half of it.
async fn http_server(files: HashMap<String, Vec<u8>>) -> (SocketAddr, Arc<Served>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let files = Arc::new(files);
    let served = Arc::new(Served::default());
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let files = Arc::clone(&files);
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read);
                loop {
                    let mut request = String::new();
                    if lines.read_line(&mut request).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let mut range = None;
                    loop {
                        let mut header = String::new();
                        if lines.read_line(&mut header).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some(value) =
                            header.to_ascii_lowercase().strip_prefix("range: bytes=")
                        {
                            let (a, b) = value.split_once('-').unwrap_or(("0", ""));
                            range =
                                Some((a.parse::<usize>().unwrap_or(0), b.parse::<usize>().ok()));
                        }
                    }
                    count.requests.fetch_add(1, Ordering::Relaxed);
                    let (mode, rest) = path[1..].split_once('/').unwrap_or(("", ""));
                    let body = files.get(&format!("/site/{rest}"));
                    let answer = match (mode, body) {
                        ("err", Some(_)) => {
                            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"
                                .to_vec()
                        }
                        ("site" | "corrupt" | "shifted" | "short", Some(body)) => {
                            let (a, b) = range.unwrap_or((0, None));
                            let b = b.unwrap_or(body.len() - 1).min(body.len() - 1);
                            let (a, b) = if mode == "shifted" && b + 1 < body.len() {
                                (a + 1, b + 1)
                            } else {
                                (a, b)
                            };
                            let mut out = format!(
                                "HTTP/1.1 206 Partial Content\r\ncontent-range: bytes {a}-{b}/{}\r\ncontent-length: {}\r\n\r\n",
                                body.len(),
                                b + 1 - a
                            )
                            .into_bytes();
                            let mut data = body[a..=b].to_vec();
                            if mode == "corrupt" {
                                data.iter_mut().for_each(|x| *x = !*x);
                            }
                            if mode == "short" {
                                data.truncate(data.len() / 2);
                            }
                            count.bytes.fetch_add(data.len(), Ordering::Relaxed);
                            out.extend_from_slice(&data);
                            if mode == "short" {
                                let _ = write.write_all(&out).await;
                                return;
                            }
                            out
                        }
                        _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
                    };
                    if write.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, served)
}

fn torrent(name: &str, files: &[(&'static str, Vec<u8>)], web_seeds: &[String]) -> Metainfo {
    let memory = files
        .iter()
        .map(|(path, bytes)| MemoryFile::new(*path, bytes.clone()))
        .collect();
    let mut builder = TorrentBuilder::from_memory(name, memory)
        .piece_length(Some(32 * 1024))
        .meta_version(MetaVersion::Hybrid);
    for url in web_seeds {
        builder = builder.web_seed(url.clone());
    }
    builder.build().expect("torrent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_seed_alone_completes_a_download() {
    common::logs();
    let files = [
        ("a.bin", common::data(81, 300_001)),
        ("sub dir/b c.bin", common::data(82, 70_000)),
        ("z.txt", common::data(83, 5)),
    ];
    let served: HashMap<String, Vec<u8>> = [
        ("/site/ws/a.bin", &files[0].1),
        ("/site/ws/sub%20dir/b%20c.bin", &files[1].1),
        ("/site/ws/z.txt", &files[2].1),
    ]
    .into_iter()
    .map(|(path, bytes)| (path.to_owned(), bytes.clone()))
    .collect();
    let (addr, requests) = http_server(served).await;
    // A second seed that answers 404 for everything: backed off, never fatal.
    let seeds = [
        format!("http://{addr}/site/"),
        format!("http://{addr}/missing/"),
    ];
    let metainfo = torrent("ws", &files, &seeds);

    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("client");
    let download = client
        .add(metainfo, AddOptions::default())
        .await
        .expect("add");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the web seed completes the download");
    common::assert_files(dir.path(), "ws", &files);
    assert!(requests.requests.load(Ordering::Relaxed) > 0);
    client.shutdown().await.expect("shutdown");
}

/// Web seeds that fail (500), lie about the bytes (corrupt, shifted range) or about the
/// length (close half-way), next to one honest seed: they are backed off or dropped, and
/// the download completes with the right bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_web_seeds_give_way_to_an_honest_one() {
    common::logs();
    let files = [
        ("a.bin", common::data(91, 400_000)),
        ("b.bin", common::data(92, 90_001)),
    ];
    let served: HashMap<String, Vec<u8>> = files
        .iter()
        .map(|(path, bytes)| (format!("/site/ws2/{path}"), bytes.clone()))
        .collect();
    let (addr, _) = http_server(served).await;
    let seeds: Vec<String> = ["err", "corrupt", "shifted", "short", "site"]
        .iter()
        .map(|mode| format!("http://{addr}/{mode}/"))
        .collect();
    let metainfo = torrent("ws2", &files, &seeds);
    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("client");
    let download = client
        .add(metainfo, AddOptions::default())
        .await
        .expect("add");
    let mut events = download.events();
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the honest web seed completes the download");
    common::assert_files(dir.path(), "ws2", &files);
    // Pieces from the corrupt seed failed their check, and it was banned.
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    let banned = seen
        .iter()
        .filter(|e| matches!(e, TorrentEvent::PeerBanned { .. }))
        .count();
    let failed = seen
        .iter()
        .any(|e| matches!(e, TorrentEvent::PieceFailed(_)));
    // The corrupt seed is banned once a piece it sent fails; the shifted one too if it
    // got a whole piece in before the range check stopped it.
    assert!(banned <= 2, "{seen:?}");
    assert_eq!(failed, banned > 0, "{seen:?}");
    assert!(
        seen.iter()
            .all(|e| !matches!(e, TorrentEvent::StorageError(_))),
        "{seen:?}"
    );
    client.shutdown().await.expect("shutdown");
}

/// Two honest web seeds of a torrent far smaller than a web seed's pipeline: each is given
/// its share of the blocks, rather than the first one taking the torrent whole and the
/// second one, in endgame, fetching it all again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_seeds_share_a_small_torrent() {
    common::logs();
    let size = 1_000_000;
    let files = [("one.bin", common::data(95, size))];
    let served: HashMap<String, Vec<u8>> = files
        .iter()
        .map(|(path, bytes)| (format!("/site/ws3/{path}"), bytes.clone()))
        .collect();
    let (first, first_served) = http_server(served.clone()).await;
    let (second, second_served) = http_server(served).await;
    let seeds = [
        format!("http://{first}/site/"),
        format!("http://{second}/site/"),
    ];
    let metainfo = torrent("ws3", &files, &seeds);
    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client::new(common::config(dir.path()))
        .await
        .expect("client");
    let download = client
        .add(metainfo, AddOptions::default())
        .await
        .expect("add");
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the web seeds complete the download");
    common::assert_files(dir.path(), "ws3", &files);
    let bytes = [&first_served, &second_served].map(|s| s.bytes.load(Ordering::Relaxed));
    assert!(bytes.iter().all(|&b| b > 0), "bytes per seed: {bytes:?}");
    // Endgame may ask both for the last blocks, not for half the torrent.
    assert!(
        bytes.iter().sum::<usize>() < size + size / 2,
        "bytes per seed: {bytes:?}"
    );
    client.shutdown().await.expect("shutdown");
}
