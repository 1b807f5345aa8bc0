//! Offer/answer handling: hostile SDP, answers that match no offer, configuration.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::{SETUP, config, pair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webtorrent_rtc::{Error, IceServer, MAX_SDP_LEN, OfferId, OfferPool, Rtc, SdpKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_carries_one_data_channel_with_a_random_hex_label() {
    let rtc = Rtc::new(config());
    let offer = rtc.create_offer().await.expect("offer");
    let sdp = offer.sdp();
    assert!(sdp.contains("m=application"), "no data section:\n{sdp}");
    assert!(
        sdp.contains("webrtc-datachannel"),
        "not SCTP data channels:\n{sdp}"
    );
    assert!(
        sdp.lines()
            .any(|l| l.starts_with("a=candidate:") && l.contains("127.0.0.1")),
        "no loopback candidate although gathering completed:\n{sdp}"
    );
    assert_eq!(sdp.matches("m=").count(), 1, "exactly one media section");

    let answer = rtc.accept_offer(sdp).await.expect("answer");
    assert!(answer.sdp().contains("m=application"));
    let answer_sdp = answer.sdp().to_owned();
    let (a, b) = tokio::time::timeout(SETUP, async {
        tokio::try_join!(offer.accept_answer(&answer_sdp), answer.connect())
    })
    .await
    .expect("in time")
    .expect("connect");
    let label = a.label().await.expect("label");
    assert_eq!(label.len(), 40);
    assert!(label.bytes().all(|c| c.is_ascii_hexdigit()), "{label}");
    assert_eq!(b.label().await.as_deref(), Some(label.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_offers_give_typed_errors() {
    let rtc = Rtc::new(config());

    let err = rtc.accept_offer("").await.expect_err("empty offer");
    assert!(
        matches!(
            err,
            Error::InvalidSdp {
                kind: SdpKind::Offer,
                ..
            }
        ),
        "{err:?}"
    );

    let err = rtc
        .accept_offer("not an sdp\r\nat all")
        .await
        .expect_err("garbage");
    assert!(matches!(err, Error::InvalidSdp { .. }), "{err:?}");

    let huge = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_SDP_LEN / 4));
    let err = rtc.accept_offer(&huge).await.expect_err("huge");
    assert!(
        matches!(err, Error::SdpTooLarge { len, .. } if len == huge.len()),
        "{err:?}"
    );

    // Syntactically fine, but audio only: there is no data channel to wait for.
    let audio = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
                 m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
                 a=rtpmap:111 opus/48000/2\r\n";
    let err = rtc.accept_offer(audio).await.expect_err("audio only");
    assert!(matches!(err, Error::NoDataChannel), "{err:?}");

    // A data section without ICE credentials or a DTLS fingerprint cannot be applied.
    let bare = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
                m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
                a=mid:0\r\na=sctp-port:5000\r\n";
    let err = rtc.accept_offer(bare).await.expect_err("no credentials");
    assert!(matches!(err, Error::Rejected { .. }), "{err:?}");

    // Every prefix of a real offer is either refused with an error or answered; none panics.
    let offer = rtc.create_offer().await.expect("offer");
    let sdp = offer.sdp().to_owned();
    for cut in (0..sdp.len()).step_by(sdp.len() / 24 + 1) {
        match rtc.accept_offer(&sdp[..cut]).await {
            Ok(answer) => answer.close().await,
            Err(
                Error::InvalidSdp { .. }
                | Error::Rejected { .. }
                | Error::NoDataChannel
                | Error::Setup(_),
            ) => {}
            Err(other) => panic!("prefix of {cut} bytes: unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_give_typed_errors() {
    let rtc = Rtc::new(config());
    let offer = rtc.create_offer().await.expect("offer");
    let err = offer
        .accept_answer("v=0\r\ngarbage")
        .await
        .expect_err("garbage answer");
    assert!(
        matches!(
            err,
            Error::InvalidSdp {
                kind: SdpKind::Answer,
                ..
            } | Error::Rejected {
                kind: SdpKind::Answer,
                ..
            }
        ),
        "{err:?}"
    );

    let offer = rtc.create_offer().await.expect("offer");
    let huge = "x".repeat(MAX_SDP_LEN + 1);
    let err = offer.accept_answer(&huge).await.expect_err("huge answer");
    assert!(matches!(err, Error::SdpTooLarge { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_match_offers_by_id() {
    let rtc = Rtc::new(config());
    let mut pool = OfferPool::new(4);
    let now = Instant::now();
    let id = pool
        .insert(rtc.create_offer().await.expect("offer"), now)
        .expect("room");
    let other = pool
        .insert(rtc.create_offer().await.expect("offer"), now)
        .expect("room");
    assert_ne!(id, other);
    assert_eq!(pool.len(), 2);

    let unknown = OfferId::random().expect("random");
    assert!(matches!(pool.take(&unknown), Err(Error::UnknownOffer)));
    assert_eq!(pool.len(), 2, "a bad id takes nothing");

    let offer = pool.take(&id).expect("known offer");
    assert!(
        matches!(pool.take(&id), Err(Error::UnknownOffer)),
        "an offer is answered once"
    );

    // The matching answer connects.
    let answer = rtc.accept_offer(offer.sdp()).await.expect("answer");
    let answer_sdp = answer.sdp().to_owned();
    let (mut a, mut b) = tokio::time::timeout(SETUP, async {
        tokio::try_join!(offer.accept_answer(&answer_sdp), answer.connect())
    })
    .await
    .expect("in time")
    .expect("connect");
    a.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    tokio::time::timeout(SETUP, b.read_exact(&mut buf))
        .await
        .expect("read in time")
        .expect("read");
    assert_eq!(&buf, b"ping");

    // Expiry drops old offers only.
    assert_eq!(
        pool.expire(now + Duration::from_secs(1), Duration::from_secs(5)),
        0
    );
    assert_eq!(
        pool.expire(now + Duration::from_secs(10), Duration::from_secs(5)),
        1
    );
    assert!(pool.is_empty());
    assert!(matches!(pool.take(&other), Err(Error::UnknownOffer)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_refuses_offers() {
    let rtc = Rtc::new(config());
    let mut pool = OfferPool::new(1);
    let now = Instant::now();
    pool.insert(rtc.create_offer().await.expect("offer"), now)
        .expect("room");
    let err = pool
        .insert(rtc.create_offer().await.expect("offer"), now)
        .expect_err("full");
    assert!(matches!(err, Error::PoolFull), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_to_another_offer_does_not_connect() {
    let mut cfg = config();
    cfg.connect_timeout = Duration::from_secs(5);
    let rtc = Rtc::new(cfg);
    let first = rtc.create_offer().await.expect("offer");
    let second = rtc.create_offer().await.expect("offer");
    let answer = rtc.accept_offer(first.sdp()).await.expect("answer");
    let answer_sdp = answer.sdp().to_owned();
    // ICE credentials and the DTLS fingerprint belong to the first offer's session.
    let err = second
        .accept_answer(&answer_sdp)
        .await
        .expect_err("mismatched answer");
    assert!(
        matches!(err, Error::ConnectTimeout(_) | Error::ConnectionFailed),
        "{err:?}"
    );
    drop((first, answer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_stun_server_delays_the_offer_but_does_not_stop_it() {
    // A STUN "server" on loopback that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut cfg = config();
    cfg.ice_servers = vec![IceServer::stun(format!(
        "stun:{}",
        silent.local_addr().expect("addr")
    ))];
    cfg.gather_timeout = Duration::from_secs(2);
    let rtc = Rtc::new(cfg);
    let offer = rtc.create_offer().await.expect("offer");
    assert!(
        offer.sdp().contains("127.0.0.1"),
        "host candidate missing:\n{}",
        offer.sdp()
    );
    // It still connects over the host candidates.
    let answer = rtc.accept_offer(offer.sdp()).await.expect("answer");
    let answer_sdp = answer.sdp().to_owned();
    tokio::time::timeout(SETUP, async {
        tokio::try_join!(offer.accept_answer(&answer_sdp), answer.connect())
    })
    .await
    .expect("in time")
    .expect("connect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdns_query_mode_still_connects_on_loopback() {
    let mut cfg = config();
    cfg.mdns = true;
    let rtc = Rtc::new(cfg);
    let (mut a, mut b) = pair(&rtc).await;
    b.write_all(b"pong").await.expect("write");
    let mut buf = [0u8; 4];
    tokio::time::timeout(SETUP, a.read_exact(&mut buf))
        .await
        .expect("read in time")
        .expect("read");
    assert_eq!(&buf, b"pong");
}
