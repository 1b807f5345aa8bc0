//! Hostile datagrams: rejected with a typed error, never a panic, never an event.

use std::net::SocketAddr;
use std::time::Instant;

use webtorrent_lsd::{
    Announce, Config, DecodeError, Header, Lsd, MAX_DATAGRAM_LEN, MAX_HEADERS, MAX_INFO_HASHES,
    Output, Received,
};
use webtorrent_types::InfoHashV1;

const HASH: &str = "0123456789abcdef0123456789abcdef01234567";

fn ours() -> InfoHashV1 {
    InfoHashV1::from_hex(HASH).expect("40 hex digits")
}

/// A state machine with our torrent, that never rate limits.
fn lsd() -> Lsd {
    let mut config = Config::new(6881, 7);
    config.source_refill = std::time::Duration::ZERO;
    let mut lsd = Lsd::new(config);
    lsd.add_torrent(ours());
    lsd
}

fn no_events(lsd: &mut Lsd) {
    let mut buf = Vec::new();
    loop {
        match lsd.poll_output(Instant::now(), &mut buf) {
            Output::Event(e) => panic!("unexpected event {e:?}"),
            Output::Transmit(_) => {}
            _ => return,
        }
    }
}

fn reject(data: &[u8]) -> DecodeError {
    let mut lsd = lsd();
    let source: SocketAddr = "10.0.0.9:6771".parse().expect("valid");
    let Received::Malformed(e) = lsd.handle_datagram(Instant::now(), source, data) else {
        panic!("accepted {:?}", String::from_utf8_lossy(data))
    };
    no_events(&mut lsd);
    e
}

#[test]
fn huge_datagram() {
    let mut data = format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: {HASH}\r\n").into_bytes();
    data.resize(64 * 1024, b' ');
    assert_eq!(
        reject(&data),
        DecodeError::TooLong {
            len: 64 * 1024,
            max: MAX_DATAGRAM_LEN
        }
    );
}

#[test]
fn binary_garbage() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1400).collect();
    assert_eq!(reject(&data), DecodeError::NotBtSearch);
    assert_eq!(reject(&[0xff; 100]), DecodeError::NotBtSearch);
    assert_eq!(reject(b"\r\n\r\n"), DecodeError::BadRequestLine);
    // A NUL inside a value.
    let data =
        format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: {HASH}\r\ncookie: a\0b\r\n\r\n");
    assert_eq!(
        reject(data.as_bytes()),
        DecodeError::InvalidValue {
            header: Header::Cookie,
            line: 4
        }
    );
    // Non-UTF-8 in an unknown header is skipped, in a known one refused.
    let mut data =
        format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: {HASH}\r\nX: ").into_bytes();
    data.extend_from_slice(&[0xc3, 0x28, b'\r', b'\n', b'\r', b'\n']);
    assert!(Announce::decode(&data).is_ok());
    let mut data = b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nHost: \xc3\x28\r\n".to_vec();
    data.extend_from_slice(format!("Infohash: {HASH}\r\n\r\n").as_bytes());
    assert_eq!(
        reject(&data),
        DecodeError::InvalidValue {
            header: Header::Host,
            line: 3
        }
    );
}

#[test]
fn missing_headers() {
    assert_eq!(
        reject(b"BT-SEARCH * HTTP/1.1\r\n\r\n\r\n"),
        DecodeError::MissingHeader {
            header: Header::Port
        }
    );
    assert_eq!(
        reject(b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 80\r\n\r\n"),
        DecodeError::MissingHeader {
            header: Header::Infohash
        }
    );
    assert_eq!(
        reject(b"BT-SEARCH * HTTP/1.1"),
        DecodeError::MissingHeader {
            header: Header::Port
        }
    );
}

#[test]
fn a_thousand_info_hash_lines() {
    let mut data = b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n".to_vec();
    for _ in 0..1000 {
        data.extend_from_slice(format!("Infohash: {HASH}\r\n").as_bytes());
    }
    // Too long before anything else.
    assert!(matches!(reject(&data), DecodeError::TooLong { .. }));
    // Within the size limit, the count limit holds (short lines, no blanks).
    let mut data = b"BT-SEARCH * HTTP/1.1\nPort:1\n".to_vec();
    for _ in 0..=MAX_INFO_HASHES {
        data.extend_from_slice(format!("infohash:{HASH}\n").as_bytes());
    }
    assert!(data.len() <= MAX_DATAGRAM_LEN);
    assert_eq!(
        reject(&data),
        DecodeError::TooManyInfoHashes {
            max: MAX_INFO_HASHES
        }
    );
}

#[test]
fn many_unknown_headers() {
    let mut data = format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: {HASH}\r\n").into_bytes();
    for _ in 0..100 {
        data.extend_from_slice(b"x:\n");
    }
    assert_eq!(
        reject(&data),
        DecodeError::TooManyHeaders { max: MAX_HEADERS }
    );
}

#[test]
fn header_injection_and_smuggling() {
    // A second Port in a folded line is a malformed header (no colon) or a duplicate.
    let data = format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nPort: 2\r\nInfohash: {HASH}\r\n\r\n");
    assert_eq!(
        reject(data.as_bytes()),
        DecodeError::DuplicateHeader {
            header: Header::Port,
            line: 3
        }
    );
    let data = format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n 2\r\nInfohash: {HASH}\r\n\r\n");
    assert!(matches!(
        reject(data.as_bytes()),
        DecodeError::MalformedHeader { line: 3, .. }
    ));
    // A body after the headers.
    let data =
        format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: {HASH}\r\n\r\nInfohash: {HASH}\r\n");
    assert!(matches!(
        reject(data.as_bytes()),
        DecodeError::TrailingBytes { .. }
    ));
    // Signs, spaces and overflow in the port.
    for port in ["-1", "1 2", "99999", "0x50", ""] {
        let data = format!("BT-SEARCH * HTTP/1.1\r\nPort: {port}\r\nInfohash: {HASH}\r\n\r\n");
        assert_eq!(
            reject(data.as_bytes()),
            DecodeError::InvalidValue {
                header: Header::Port,
                line: 2
            },
            "{port:?}"
        );
    }
}

#[test]
fn a_flood_from_one_source_is_cut_off_and_others_still_heard() {
    let mut lsd = Lsd::new(Config::new(6881, 7));
    lsd.add_torrent(ours());
    let now = Instant::now();
    let good = format!("BT-SEARCH * HTTP/1.1\r\nPort: 5\r\nInfohash: {HASH}\r\n\r\n");
    let flooder: SocketAddr = "10.0.0.66:6771".parse().expect("valid");
    let mut accepted = 0;
    for _ in 0..10_000 {
        if lsd.handle_datagram(now, flooder, good.as_bytes()) != Received::RateLimited {
            accepted += 1;
        }
    }
    assert_eq!(accepted, Config::new(1, 1).source_burst);
    let neighbour: SocketAddr = "10.0.0.5:6771".parse().expect("valid");
    assert_eq!(
        lsd.handle_datagram(now, neighbour, good.as_bytes()),
        Received::Accepted { peers: 1 }
    );
    assert_eq!(lsd.stats().rate_limited, 10_000 - u64::from(accepted));
}
