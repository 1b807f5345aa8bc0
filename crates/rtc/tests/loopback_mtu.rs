//! Larger SCTP packets between two peers of this crate on loopback, and only there.

mod common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webtorrent_rtc::{LOOPBACK_SCTP_MTU, Rtc};

const ATTR: &str = "a=x-webtorrent-rs-max-datagram:";

/// Answers `offer_sdp` (possibly edited) with a fresh connection of `rtc`, returning the
/// SCTP packet size the answer chose.
async fn answer_mtu(rtc: &Rtc, offer_sdp: &str) -> Option<u32> {
    let answer = rtc.accept_offer(offer_sdp).await.expect("accept offer");
    let mtu = answer.sctp_mtu();
    answer.close().await;
    mtu
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_answers_send_large_packets_and_bytes_arrive_intact() {
    let rtc = Rtc::new(common::config());
    let offer = rtc.create_offer().await.expect("create offer");
    assert!(offer.sdp().contains(ATTR), "{}", offer.sdp());
    let answer = rtc.accept_offer(offer.sdp()).await.expect("accept offer");
    assert_eq!(answer.sctp_mtu(), Some(LOOPBACK_SCTP_MTU));
    assert!(answer.sdp().contains(ATTR));
    let answer_sdp = answer.sdp().to_owned();
    let (mut offerer, mut answerer) = tokio::time::timeout(common::SETUP, async {
        tokio::try_join!(offer.accept_answer(&answer_sdp), answer.connect())
    })
    .await
    .expect("connected in time")
    .expect("connect");

    // The answerer sends with large packets, the offerer with the standard ones.
    let down = common::pattern(7, 8 << 20);
    let up = common::pattern(9, 1 << 20);
    let (down2, up2) = (down.clone(), up.clone());
    let send = tokio::spawn(async move {
        answerer.write_all(&down2).await.expect("write down");
        let mut got = vec![0u8; up2.len()];
        answerer.read_exact(&mut got).await.expect("read up");
        assert!(got == up2, "upload corrupted");
        answerer.shutdown().await.expect("shutdown");
        answerer
    });
    offerer.write_all(&up).await.expect("write up");
    let mut got = vec![0u8; down.len()];
    tokio::time::timeout(common::SETUP, offerer.read_exact(&mut got))
        .await
        .expect("download in time")
        .expect("read down");
    assert!(got == down, "download corrupted");
    let _answerer = send.await.expect("answerer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_packets_unless_path_and_receiver_are_known() {
    let rtc = Rtc::new(common::config());
    let offer = rtc.create_offer().await.expect("create offer");
    let sdp = offer.sdp().to_owned();
    let stated: String = sdp
        .lines()
        .find(|l| l.starts_with(ATTR))
        .expect("attribute stated")
        .to_owned();

    // A receiver that says nothing (a browser, libdatachannel) gets standard packets.
    let silent: String = sdp.replace(&format!("{stated}\r\n"), "");
    assert!(!silent.contains(ATTR));
    assert_eq!(answer_mtu(&rtc, &silent).await, None);

    // A receiver reading only small datagrams gets standard packets.
    let small = sdp.replace(&stated, &format!("{ATTR}1100"));
    assert_eq!(answer_mtu(&rtc, &small).await, None);

    // A receiver reading mid-size datagrams gets packets that fit them.
    let mid = sdp.replace(&stated, &format!("{ATTR}4000"));
    assert_eq!(answer_mtu(&rtc, &mid).await, Some(4000 - 64));

    // One candidate off loopback: the path may not be loopback.
    let lan = sdp.replacen(
        "a=candidate:",
        "a=candidate:9 1 udp 2130706431 192.168.1.20 50000 typ host\r\na=candidate:",
        1,
    );
    assert_eq!(answer_mtu(&rtc, &lan).await, None);
    let mdns = sdp.replacen(
        "a=candidate:",
        "a=candidate:9 1 udp 2130706431 4b1f6a2c-1c6e-4f39-9d1e-2f5e3c1a7b90.local 50000 typ host\r\na=candidate:",
        1,
    );
    assert_eq!(answer_mtu(&rtc, &mdns).await, None);

    // Turned off: nothing stated, standard packets.
    let mut config = common::config();
    config.loopback_sctp_mtu = None;
    let off = Rtc::new(config);
    let plain = off.create_offer().await.expect("create offer");
    assert!(!plain.sdp().contains(ATTR));
    assert_eq!(answer_mtu(&off, &sdp).await, None);
    plain.close().await;
    offer.close().await;
}
