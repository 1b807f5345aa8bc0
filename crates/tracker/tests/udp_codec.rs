//! BEP 15 packet codec and the sans-IO machine on a virtual clock.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use webtorrent_tracker::udp::{
    AddressFamily, MAX_SCRAPE_HASHES, OpId, PROTOCOL_ID, UdpAnnounce, UdpConfig, UdpDecodeError,
    UdpEvent, UdpRequest, UdpResponse, UdpTrackerMachine,
};
use webtorrent_tracker::{AnnounceRequest, Event, ScrapeStats, TrackerError};
use webtorrent_types::{InfoHashV1, PeerId};

#[test]
fn connect_request_bytes() {
    let mut out = Vec::new();
    UdpRequest::Connect {
        transaction_id: 0x0102_0304,
    }
    .encode(&mut out);
    assert_eq!(
        out,
        [
            0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4
        ]
    );
    assert_eq!(PROTOCOL_ID, 0x41727101980);
}

#[test]
fn announce_request_layout() {
    let mut req = AnnounceRequest::new(InfoHashV1([1; 20]), PeerId([2; 20]), 0x1ae1);
    req.downloaded = 3;
    req.left = 4;
    req.uploaded = 5;
    req.event = Event::Started;
    req.key = Some(9);
    req.ip = Some("10.0.0.1".parse().expect("ip"));
    let packet = UdpRequest::Announce {
        connection_id: 0x1122_3344_5566_7788,
        transaction_id: 7,
        announce: UdpAnnounce::from(&req),
    };
    let mut out = Vec::new();
    packet.encode(&mut out);
    assert_eq!(out.len(), 98);
    assert_eq!(&out[..8], &0x1122_3344_5566_7788u64.to_be_bytes());
    assert_eq!(&out[8..16], &[0, 0, 0, 1, 0, 0, 0, 7]);
    assert_eq!(&out[16..36], &[1; 20]);
    assert_eq!(&out[36..56], &[2; 20]);
    assert_eq!(&out[56..64], &3u64.to_be_bytes());
    assert_eq!(&out[64..72], &4u64.to_be_bytes());
    assert_eq!(&out[72..80], &5u64.to_be_bytes());
    assert_eq!(&out[80..84], &2u32.to_be_bytes());
    assert_eq!(&out[84..88], &[10, 0, 0, 1]);
    assert_eq!(&out[88..92], &9u32.to_be_bytes());
    assert_eq!(&out[92..96], &(-1i32).to_be_bytes());
    assert_eq!(&out[96..98], &[0x1a, 0xe1]);
    assert_eq!(UdpRequest::decode(&out), Ok(packet));
}

#[test]
fn response_peer_size_follows_the_family() {
    let mut packet = vec![0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 60, 0, 0, 0, 1, 0, 0, 0, 2];
    packet.extend_from_slice(&[0u8; 18]);
    let v6 = UdpResponse::decode(&packet, AddressFamily::V6).expect("one v6 peer");
    let UdpResponse::Announce { peers, .. } = v6 else {
        panic!("announce expected")
    };
    assert_eq!(peers.len(), 1);
    assert!(peers[0].is_ipv6());
    let v4 = UdpResponse::decode(&packet, AddressFamily::V4).expect("three v4 peers");
    let UdpResponse::Announce { peers, .. } = v4 else {
        panic!("announce expected")
    };
    assert_eq!(peers.len(), 3);
    packet.push(0);
    assert_eq!(
        UdpResponse::decode(&packet, AddressFamily::V4),
        Err(UdpDecodeError::TrailingBytes { extra: 1 })
    );
}

#[test]
fn bad_packets() {
    assert_eq!(
        UdpResponse::decode(&[0; 7], AddressFamily::V4),
        Err(UdpDecodeError::TooShort { len: 7 })
    );
    assert_eq!(
        UdpResponse::decode(&[0, 0, 0, 9, 0, 0, 0, 0], AddressFamily::V4),
        Err(UdpDecodeError::UnknownAction { action: 9 })
    );
    assert_eq!(
        UdpResponse::decode(
            &[0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            AddressFamily::V4
        ),
        Err(UdpDecodeError::TrailingBytes { extra: 1 })
    );
    assert_eq!(
        UdpRequest::decode(&[0; 16]),
        Err(UdpDecodeError::WrongProtocolId { id: 0 })
    );
    let mut scrape = vec![0; 8];
    scrape.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0]);
    assert_eq!(
        UdpRequest::decode(&scrape),
        Err(UdpDecodeError::BadScrapeCount { count: 0 })
    );
    scrape.extend(std::iter::repeat_n(1u8, 20 * (MAX_SCRAPE_HASHES + 1)));
    assert_eq!(
        UdpRequest::decode(&scrape),
        Err(UdpDecodeError::BadScrapeCount {
            count: MAX_SCRAPE_HASHES + 1
        })
    );
    let err = UdpResponse::decode(b"\0\0\0\x03\0\0\0\x01bad \xffthing", AddressFamily::V4)
        .expect("error packet");
    assert_eq!(
        err,
        UdpResponse::Error {
            transaction_id: 1,
            message: "bad \u{fffd}thing".into()
        }
    );
}

/// A machine whose transaction ids count up from 1, and the counter.
fn machine(config: UdpConfig) -> (UdpTrackerMachine, Arc<AtomicU32>) {
    let counter = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&counter);
    let m = UdpTrackerMachine::new(
        AddressFamily::V4,
        config,
        Box::new(move || c.fetch_add(1, Ordering::Relaxed) + 1),
    );
    (m, counter)
}

fn sent(m: &mut UdpTrackerMachine) -> UdpRequest {
    let mut out = Vec::new();
    assert!(m.poll_transmit(&mut out), "a transmit was expected");
    UdpRequest::decode(&out).expect("our own packet")
}

fn answer(m: &mut UdpTrackerMachine, now: Instant, r: &UdpResponse) -> bool {
    let mut out = Vec::new();
    r.encode(&mut out);
    m.handle_input(now, &out)
}

fn req() -> AnnounceRequest {
    AnnounceRequest::new(InfoHashV1([3; 20]), PeerId([4; 20]), 6881)
}

#[test]
fn retransmits_with_exponential_timeouts_then_gives_up() {
    let (mut m, _) = machine(UdpConfig::default());
    let t0 = Instant::now();
    let op = m.announce(t0, &req());
    let mut now = t0;
    let mut waits = Vec::new();
    loop {
        let UdpRequest::Connect { .. } = sent(&mut m) else {
            panic!("connect expected")
        };
        let Some(deadline) = m.poll_timeout() else {
            break;
        };
        waits.push((deadline - now).as_secs());
        m.handle_timeout(deadline - Duration::from_millis(1));
        let mut out = Vec::new();
        assert!(!m.poll_transmit(&mut out), "nothing before the deadline");
        now = deadline;
        m.handle_timeout(now);
        if let Some(ev) = m.poll_event() {
            assert_eq!(
                ev,
                UdpEvent::Failed {
                    op,
                    error: TrackerError::Timeout {
                        attempts: 9,
                        waited: now - t0
                    }
                }
            );
            break;
        }
    }
    assert_eq!(waits, [15, 30, 60, 120, 240, 480, 960, 1920, 3840]);
    assert_eq!((now - t0).as_secs(), 7665);
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.pending(), 0);
}

#[test]
fn connection_id_is_reused_for_60_seconds() {
    let (mut m, _) = machine(UdpConfig::default());
    let t0 = Instant::now();
    let first = m.announce(t0, &req());
    let UdpRequest::Connect { transaction_id } = sent(&mut m) else {
        panic!("connect")
    };
    assert!(answer(
        &mut m,
        t0,
        &UdpResponse::Connect {
            transaction_id,
            connection_id: 77
        }
    ));
    let UdpRequest::Announce {
        connection_id,
        transaction_id,
        announce,
    } = sent(&mut m)
    else {
        panic!("announce")
    };
    assert_eq!(connection_id, 77);
    assert_eq!(announce.port, 6881);
    let reply = UdpResponse::Announce {
        transaction_id,
        interval: 1800,
        leechers: 4,
        seeders: 5,
        peers: vec![SocketAddr::from((Ipv4Addr::new(10, 1, 2, 3), 51413))],
    };
    assert!(answer(&mut m, t0, &reply));
    let Some(UdpEvent::Announced { op, response }) = m.poll_event() else {
        panic!("announced")
    };
    assert_eq!(op, first);
    assert_eq!((response.complete, response.incomplete), (Some(5), Some(4)));
    assert_eq!(response.interval, Duration::from_secs(1800));

    // 59 s later: straight to the scrape.
    let t1 = t0 + Duration::from_secs(59);
    let op = m.scrape(t1, &[InfoHashV1([3; 20])]).expect("one hash");
    let UdpRequest::Scrape {
        connection_id: 77,
        transaction_id,
        info_hashes,
    } = sent(&mut m)
    else {
        panic!("scrape")
    };
    assert_eq!(info_hashes, [InfoHashV1([3; 20])]);
    let stats = ScrapeStats {
        complete: 1,
        downloaded: 2,
        incomplete: 3,
    };
    assert!(answer(
        &mut m,
        t1,
        &UdpResponse::Scrape {
            transaction_id,
            stats: vec![stats]
        }
    ));
    let Some(UdpEvent::Scraped { op: o, response }) = m.poll_event() else {
        panic!("scraped")
    };
    assert_eq!(o, op);
    assert_eq!(response.get(&InfoHashV1([3; 20])), Some(stats));

    assert!(!m.is_idle(t1), "the connection id is still valid");
    // 60 s after the connect: connect again.
    let t2 = t0 + Duration::from_secs(60);
    assert!(m.is_idle(t2));
    m.announce(t2, &req());
    assert!(matches!(sent(&mut m), UdpRequest::Connect { .. }));
}

#[test]
fn expired_connection_during_retransmits_reconnects() {
    let (mut m, _) = machine(UdpConfig::default());
    let t0 = Instant::now();
    m.announce(t0, &req());
    let UdpRequest::Connect { transaction_id } = sent(&mut m) else {
        panic!("connect")
    };
    answer(
        &mut m,
        t0,
        &UdpResponse::Connect {
            transaction_id,
            connection_id: 1,
        },
    );
    assert!(matches!(sent(&mut m), UdpRequest::Announce { .. }));
    let d1 = m.poll_timeout().expect("waiting"); // t0+15 s
    m.handle_timeout(d1);
    assert!(
        matches!(sent(&mut m), UdpRequest::Announce { .. }),
        "still within 60 s"
    );
    let d2 = m.poll_timeout().expect("waiting"); // t0+45 s
    m.handle_timeout(d2);
    assert!(matches!(sent(&mut m), UdpRequest::Announce { .. }));
    let d3 = m.poll_timeout().expect("waiting"); // t0+105 s
    assert_eq!(d3 - t0, Duration::from_secs(105));
    m.handle_timeout(d3);
    assert!(
        matches!(sent(&mut m), UdpRequest::Connect { .. }),
        "connection id expired"
    );
}

#[test]
fn mismatched_transaction_or_action_and_error_packets() {
    let (mut m, _) = machine(UdpConfig::default());
    let t0 = Instant::now();
    let op = m.announce(t0, &req());
    let UdpRequest::Connect { transaction_id } = sent(&mut m) else {
        panic!("connect")
    };
    // Wrong transaction id: ignored.
    assert!(!answer(
        &mut m,
        t0,
        &UdpResponse::Connect {
            transaction_id: transaction_id + 100,
            connection_id: 1
        }
    ));
    assert!(!m.handle_input(t0, &[1, 2, 3]));
    assert_eq!(m.poll_event(), None);
    // Right id, wrong action: the operation fails.
    assert!(answer(
        &mut m,
        t0,
        &UdpResponse::Scrape {
            transaction_id,
            stats: vec![]
        }
    ));
    assert!(
        matches!(m.poll_event(), Some(UdpEvent::Failed { op: o, error: TrackerError::Malformed { .. } }) if o == op)
    );

    let op = m.announce(t0, &req());
    let UdpRequest::Connect { transaction_id } = sent(&mut m) else {
        panic!("connect")
    };
    assert!(answer(
        &mut m,
        t0,
        &UdpResponse::Error {
            transaction_id,
            message: "go away".into()
        }
    ));
    assert_eq!(
        m.poll_event(),
        Some(UdpEvent::Failed {
            op,
            error: TrackerError::Failure {
                reason: "go away".into()
            }
        })
    );
}

#[test]
fn operations_queue_and_cancel() {
    let (mut m, _) = machine(UdpConfig::default().with_base_timeout(Duration::from_secs(1)));
    let t0 = Instant::now();
    let a = m.announce(t0, &req());
    let b = m.scrape(t0, &[InfoHashV1([1; 20])]).expect("ok");
    assert_eq!(m.pending(), 2);
    assert!(matches!(
        m.scrape(t0, &[]),
        Err(TrackerError::TooManyInfoHashes { count: 0, .. })
    ));
    assert!(matches!(
        m.scrape(t0, &vec![InfoHashV1([1; 20]); MAX_SCRAPE_HASHES + 1]),
        Err(TrackerError::TooManyInfoHashes { .. })
    ));
    assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    m.cancel_all();
    assert_eq!(
        m.poll_event(),
        Some(UdpEvent::Failed {
            op: a,
            error: TrackerError::Shutdown
        })
    );
    assert_eq!(
        m.poll_event(),
        Some(UdpEvent::Failed {
            op: b,
            error: TrackerError::Shutdown
        })
    );
    assert_eq!(m.pending(), 0);
    assert_eq!(m.poll_timeout(), None);
    assert_ne!(a, OpId(u64::MAX));
}

fn arb_announce() -> impl Strategy<Value = UdpAnnounce> {
    (
        any::<[u8; 20]>(),
        any::<[u8; 20]>(),
        any::<(u64, u64, u64)>(),
        0u32..4,
        any::<[u8; 4]>(),
        any::<(u32, i32, u16)>(),
    )
        .prop_map(
            |(h, p, (d, l, u), e, ip, (key, num_want, port))| UdpAnnounce {
                info_hash: InfoHashV1(h),
                peer_id: PeerId(p),
                downloaded: d,
                left: l,
                uploaded: u,
                event: Event::from_udp_code(e).expect("0..4"),
                ip: Ipv4Addr::from(ip),
                key,
                num_want,
                port,
            },
        )
}

fn arb_request() -> impl Strategy<Value = UdpRequest> {
    prop_oneof![
        any::<u32>().prop_map(|transaction_id| UdpRequest::Connect { transaction_id }),
        (any::<u64>(), any::<u32>(), arb_announce()).prop_map(
            |(connection_id, transaction_id, announce)| {
                UdpRequest::Announce {
                    connection_id,
                    transaction_id,
                    announce,
                }
            }
        ),
        (
            any::<u64>(),
            any::<u32>(),
            proptest::collection::vec(any::<[u8; 20]>(), 1..=MAX_SCRAPE_HASHES)
        )
            .prop_map(|(connection_id, transaction_id, h)| UdpRequest::Scrape {
                connection_id,
                transaction_id,
                info_hashes: h.into_iter().map(InfoHashV1).collect(),
            }),
    ]
}

fn arb_response(family: AddressFamily) -> impl Strategy<Value = UdpResponse> {
    let addr = match family {
        AddressFamily::V4 => (any::<[u8; 4]>(), any::<u16>())
            .prop_map(SocketAddr::from)
            .boxed(),
        _ => (any::<[u8; 16]>(), any::<u16>())
            .prop_map(SocketAddr::from)
            .boxed(),
    };
    prop_oneof![
        any::<(u32, u64)>().prop_map(|(transaction_id, connection_id)| UdpResponse::Connect {
            transaction_id,
            connection_id
        }),
        (
            any::<(u32, u32, u32, u32)>(),
            proptest::collection::vec(addr, 0..50)
        )
            .prop_map(|((transaction_id, interval, leechers, seeders), peers)| {
                UdpResponse::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                }
            }),
        (
            any::<u32>(),
            proptest::collection::vec(any::<(u32, u32, u32)>(), 0..MAX_SCRAPE_HASHES)
        )
            .prop_map(|(transaction_id, s)| {
                UdpResponse::Scrape {
                    transaction_id,
                    stats: s
                        .into_iter()
                        .map(|(complete, downloaded, incomplete)| ScrapeStats {
                            complete,
                            downloaded,
                            incomplete,
                        })
                        .collect(),
                }
            }),
        (any::<u32>(), "[ -~]{0,40}").prop_map(|(transaction_id, message)| UdpResponse::Error {
            transaction_id,
            message
        }),
    ]
}

proptest! {
    #[test]
    fn request_round_trip(r in arb_request()) {
        let mut out = Vec::new();
        r.encode(&mut out);
        prop_assert_eq!(UdpRequest::decode(&out), Ok(r));
    }

    #[test]
    fn response_round_trip_v4(r in arb_response(AddressFamily::V4)) {
        let mut out = Vec::new();
        r.encode(&mut out);
        prop_assert_eq!(UdpResponse::decode(&out, AddressFamily::V4), Ok(r));
    }

    #[test]
    fn response_round_trip_v6(r in arb_response(AddressFamily::V6)) {
        let mut out = Vec::new();
        r.encode(&mut out);
        prop_assert_eq!(UdpResponse::decode(&out, AddressFamily::V6), Ok(r));
    }

    #[test]
    fn machine_survives_any_datagram(data in proptest::collection::vec(any::<u8>(), 0..120), tid_matches in any::<bool>()) {
        let (mut m, counter) = machine(UdpConfig::default());
        let now = Instant::now();
        m.announce(now, &req());
        let mut data = data;
        if tid_matches && data.len() >= 8 {
            data[4..8].copy_from_slice(&counter.load(Ordering::Relaxed).to_be_bytes());
        }
        let _ = m.handle_input(now, &data);
        let _ = UdpRequest::decode(&data);
        prop_assert!(m.pending() <= 1);
    }
}
