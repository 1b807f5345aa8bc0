//! The async clients against tiny HTTP and UDP trackers on 127.0.0.1.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use webtorrent_tracker::udp::{AddressFamily, UdpConfig, UdpRequest, UdpResponse};
use webtorrent_tracker::{
    AnnounceRequest, AnnounceResponse, Event, HttpConfig, HttpTracker, Peer, ScrapeResponse,
    ScrapeStats, TrackerError, UdpTracker, http,
};
use webtorrent_types::{InfoHashV1, PeerId};

const LIMIT: Duration = Duration::from_secs(20);

fn request() -> AnnounceRequest {
    let mut r = AnnounceRequest::new(
        InfoHashV1([0xab; 20]),
        PeerId(*b"-RW0100-123456789012"),
        6881,
    );
    r.event = Event::Started;
    r.left = 100;
    r
}

/// Serves `count` HTTP requests on 127.0.0.1, answering each with what
/// `answer(request_line)` returns; returns the address and the request heads.
async fn http_tracker(
    count: usize,
    answer: impl Fn(&str) -> (u16, Vec<u8>) + Send + 'static,
) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut heads = Vec::new();
        for _ in 0..count {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.expect("read");
                assert!(n > 0, "client closed early");
                head.extend_from_slice(&buf[..n]);
            }
            let head = String::from_utf8(head).expect("ascii head");
            let line = head.lines().next().unwrap_or_default().to_owned();
            let (status, body) = answer(&line);
            let mut resp = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            resp.extend_from_slice(&body);
            stream.write_all(&resp).await.expect("write");
            heads.push(head);
        }
        heads
    });
    (addr, task)
}

fn canned() -> AnnounceResponse {
    AnnounceResponse {
        interval: Duration::from_secs(1800),
        min_interval: Some(Duration::from_secs(60)),
        tracker_id: Some(b"tid".to_vec()),
        complete: Some(3),
        incomplete: Some(4),
        peers: vec![
            Peer::from("10.0.0.1:6881".parse::<SocketAddr>().expect("addr")),
            Peer::from("[2001:db8::2]:51413".parse::<SocketAddr>().expect("addr")),
        ],
        warning: None,
    }
}

#[tokio::test]
async fn http_announce_and_scrape() {
    let (addr, server) = http_tracker(3, |line| {
        if line.starts_with("GET /scrape") {
            let files = ScrapeResponse {
                files: vec![(
                    InfoHashV1([0xab; 20]),
                    ScrapeStats {
                        complete: 1,
                        downloaded: 2,
                        incomplete: 3,
                    },
                )],
            };
            (200, http::encode_scrape_response(&files))
        } else if line.contains("passkey=bad") {
            (403, http::encode_failure("unknown passkey"))
        } else {
            (200, http::encode_announce_response(&canned(), true))
        }
    })
    .await;
    let client = HttpTracker::new(HttpConfig::default()).expect("client");
    let base = format!("http://{addr}/announce?passkey=good");
    let resp = tokio::time::timeout(LIMIT, client.announce(&base, &request()))
        .await
        .expect("in time")
        .expect("announce");
    assert_eq!(resp, canned());
    let scrape = tokio::time::timeout(LIMIT, client.scrape(&base, &[InfoHashV1([0xab; 20])]))
        .await
        .expect("in time")
        .expect("scrape");
    assert_eq!(
        scrape.get(&InfoHashV1([0xab; 20])).map(|s| s.downloaded),
        Some(2)
    );
    let refused = client
        .announce(&format!("http://{addr}/announce?passkey=bad"), &request())
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        TrackerError::Failure {
            reason: "unknown passkey".into()
        }
    );

    let heads = server.await.expect("server");
    let first = &heads[0];
    assert!(
        first.starts_with("GET /announce?passkey=good&info_hash=%AB%AB"),
        "{first}"
    );
    assert!(first.contains("&event=started"), "{first}");
    let agent = format!("user-agent: webtorrent-rs/{}", env!("CARGO_PKG_VERSION"));
    assert!(first.to_ascii_lowercase().contains(&agent), "{first}");
    assert!(heads[1].starts_with(&format!(
        "GET /scrape?passkey=good&info_hash={}",
        "%AB".repeat(20)
    )));
}

#[tokio::test]
async fn http_errors_status_size_timeout_url() {
    let (addr, server) = http_tracker(2, |line| {
        if line.contains("/big") {
            (200, vec![b'x'; 2000])
        } else {
            (500, b"oops".to_vec())
        }
    })
    .await;
    let client =
        HttpTracker::new(HttpConfig::default().with_max_response_bytes(1000)).expect("client");
    let status = client
        .announce(&format!("http://{addr}/announce"), &request())
        .await
        .unwrap_err();
    assert_eq!(status, TrackerError::HttpStatus { status: 500 });
    let big = client
        .announce(&format!("http://{addr}/big"), &request())
        .await
        .unwrap_err();
    assert_eq!(big, TrackerError::ResponseTooLarge { limit: 1000 });
    server.await.expect("server");

    assert!(matches!(
        client
            .announce("udp://t.example:1/announce", &request())
            .await,
        Err(TrackerError::InvalidUrl { .. })
    ));
    assert!(matches!(
        client.scrape("http://t.example/a", &[]).await,
        Err(TrackerError::InvalidUrl { .. })
    ));

    // A tracker that accepts but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let (_stream, _) = silent.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let quick = HttpTracker::new(HttpConfig::default().with_timeout(Duration::from_millis(300)))
        .expect("client");
    let err = quick
        .announce(&format!("http://{silent_addr}/announce"), &request())
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::Timeout { .. }), "{err:?}");
    hold.abort();
}

/// A BEP 15 tracker on 127.0.0.1 that drops the first `drop_first` datagrams.
async fn udp_tracker(drop_first: usize) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        let mut seen = 0;
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            seen += 1;
            if seen <= drop_first {
                continue;
            }
            let response = match UdpRequest::decode(&buf[..n]) {
                Ok(UdpRequest::Connect { transaction_id }) => UdpResponse::Connect {
                    transaction_id,
                    connection_id: 0x5eed,
                },
                Ok(UdpRequest::Announce {
                    connection_id,
                    transaction_id,
                    announce,
                }) => {
                    if connection_id != 0x5eed {
                        UdpResponse::Error {
                            transaction_id,
                            message: "bad connection id".into(),
                        }
                    } else if announce.port == 1 {
                        UdpResponse::Error {
                            transaction_id,
                            message: "port 1 is not welcome".into(),
                        }
                    } else {
                        UdpResponse::Announce {
                            transaction_id,
                            interval: 900,
                            leechers: 2,
                            seeders: 1,
                            peers: vec![SocketAddr::from(([10, 0, 0, 9], announce.port))],
                        }
                    }
                }
                Ok(UdpRequest::Scrape {
                    transaction_id,
                    info_hashes,
                    ..
                }) => UdpResponse::Scrape {
                    transaction_id,
                    stats: info_hashes
                        .iter()
                        .map(|h| ScrapeStats {
                            complete: u32::from(h.as_bytes()[0]),
                            downloaded: 0,
                            incomplete: 1,
                        })
                        .collect(),
                },
                _ => continue,
            };
            let mut out = Vec::new();
            response.encode(&mut out);
            let _ = socket.send_to(&out, from).await;
        }
    });
    (addr, task)
}

#[tokio::test]
async fn udp_announce_scrape_and_errors() {
    let (addr, server) = udp_tracker(0).await;
    let config = UdpConfig::default().with_base_timeout(Duration::from_millis(200));
    let client = UdpTracker::bind("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("bind");
    let resp = tokio::time::timeout(LIMIT, client.announce(addr, &request()))
        .await
        .expect("in time")
        .expect("announce");
    assert_eq!(resp.interval, Duration::from_secs(900));
    assert_eq!((resp.complete, resp.incomplete), (Some(1), Some(2)));
    assert_eq!(
        resp.peers,
        [Peer::from(SocketAddr::from(([10, 0, 0, 9], 6881)))]
    );

    let url = format!("udp://{addr}/announce");
    assert_eq!(client.resolve(&url).await.expect("resolves"), addr);
    let again = client
        .announce_url(&url, &request())
        .await
        .expect("announce by URL");
    assert_eq!(again, resp);

    let hashes = [InfoHashV1([5; 20]), InfoHashV1([7; 20])];
    let scrape = client.scrape(addr, &hashes).await.expect("scrape");
    assert_eq!(scrape.get(&hashes[1]).map(|s| s.complete), Some(7));

    let mut refused = request();
    refused.port = 1;
    assert_eq!(
        client.announce(addr, &refused).await.unwrap_err(),
        TrackerError::Failure {
            reason: "port 1 is not welcome".into()
        }
    );
    assert!(matches!(
        client.resolve("http://x:1/").await,
        Err(TrackerError::InvalidUrl { .. })
    ));
    assert!(matches!(
        client.resolve("udp://x/announce").await,
        Err(TrackerError::InvalidUrl { .. })
    ));

    // Concurrent announces over the one socket.
    let req = request();
    let (a, b) = tokio::join!(client.announce(addr, &req), client.scrape(addr, &hashes));
    assert!(a.is_ok() && b.is_ok());
    server.abort();
}

#[tokio::test]
async fn udp_retransmits_then_times_out() {
    // Drops the first two datagrams: the third transmission gets through.
    let (addr, server) = udp_tracker(2).await;
    let config = UdpConfig::default().with_base_timeout(Duration::from_millis(50));
    let client = UdpTracker::bind("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("bind");
    let resp = tokio::time::timeout(LIMIT, client.announce(addr, &request()))
        .await
        .expect("in time")
        .expect("announce after retransmissions");
    assert_eq!(resp.peers.len(), 1);
    server.abort();

    // Nobody listens: 50+100+200 ms, then a timeout.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let config = UdpConfig::default()
        .with_base_timeout(Duration::from_millis(50))
        .with_max_retransmits(2);
    let client = UdpTracker::bind("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("bind");
    let err = tokio::time::timeout(LIMIT, client.announce(silent_addr, &request()))
        .await
        .expect("in time")
        .unwrap_err();
    assert!(
        matches!(err, TrackerError::Timeout { attempts: 3, .. }),
        "{err:?}"
    );
    let mut buf = [0u8; 64];
    let (n, _) = silent
        .recv_from(&mut buf)
        .await
        .expect("the connects arrived");
    assert!(matches!(
        UdpRequest::decode(&buf[..n]),
        Ok(UdpRequest::Connect { .. })
    ));
    assert_eq!(AddressFamily::of(&silent_addr), AddressFamily::V4);
}

#[tokio::test]
async fn http_transport_errors_leave_the_url_out() {
    // Nobody listens on the port of a socket just closed: the connection is refused.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let client = HttpTracker::new(HttpConfig::default()).expect("client");
    let err = client
        .announce(
            &format!("http://127.0.0.1:{port}/announce?passkey=secret0123456789"),
            &request(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::Transport { .. }), "{err}");
    let text = err.to_string();
    assert!(!text.contains("secret0123456789"), "{text}");
    assert!(!text.contains("info_hash"), "{text}");
}
