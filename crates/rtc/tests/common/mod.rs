//! Helpers shared by the loopback tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use webtorrent_rtc::{DataStream, Rtc, RtcConfig};

/// Bound on any single connection setup in the tests.
pub const SETUP: Duration = Duration::from_secs(30);

/// Loopback settings with a short connect timeout.
pub fn config() -> RtcConfig {
    let mut config = RtcConfig::loopback();
    config.connect_timeout = Duration::from_secs(10);
    config
}

/// Connects two peers of `rtc` on loopback: offer, answer, both streams open.
pub async fn pair(rtc: &Rtc) -> (DataStream, DataStream) {
    let connect = async {
        let offer = rtc.create_offer().await.expect("create offer");
        let answer = rtc.accept_offer(offer.sdp()).await.expect("accept offer");
        let answer_sdp = answer.sdp().to_owned();
        tokio::try_join!(offer.accept_answer(&answer_sdp), answer.connect()).expect("connect")
    };
    tokio::time::timeout(SETUP, connect)
        .await
        .expect("connection set up in time")
}

/// Deterministic test bytes: a xorshift stream seeded by `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
