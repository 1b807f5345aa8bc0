//! A remote offerer built on the `webrtc` crate directly, sending messages larger than our
//! own (a JS WebTorrent piece message is 16 KiB of block plus a 13-byte header).

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use common::{SETUP, config, pattern};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use webrtc::data_channel::DataChannelEvent;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCSessionDescription,
};
use webtorrent_rtc::Rtc;

struct Gathered(watch::Sender<bool>);

#[async_trait]
impl PeerConnectionEventHandler for Gathered {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.0.send_replace(true);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_larger_than_ours_are_read_whole() {
    let (tx, mut gathered) = watch::channel(false);
    let pc = PeerConnectionBuilder::new()
        .with_handler(Arc::new(Gathered(tx)))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .expect("peer connection");
    let dc = pc
        .create_data_channel("some-other-label", None)
        .await
        .expect("data channel");
    let offer = pc.create_offer(None).await.expect("offer");
    pc.set_local_description(offer).await.expect("set local");
    tokio::time::timeout(SETUP, gathered.wait_for(|done| *done))
        .await
        .expect("gathered in time")
        .expect("gathering");
    let offer_sdp = pc.local_description().await.expect("local description").sdp;

    let rtc = Rtc::new(config());
    let answer = rtc.accept_offer(&offer_sdp).await.expect("answer");
    pc.set_remote_description(
        RTCSessionDescription::answer(answer.sdp().to_owned()).expect("answer parses"),
    )
    .await
    .expect("set remote");
    let mut stream = tokio::time::timeout(SETUP, answer.connect())
        .await
        .expect("in time")
        .expect("connect");
    loop {
        match tokio::time::timeout(SETUP, dc.poll())
            .await
            .expect("in time")
        {
            Some(DataChannelEvent::OnOpen) => break,
            Some(_) => {}
            None => panic!("channel ended before opening"),
        }
    }

    let piece = pattern(8, 16 * 1024 + 13);
    let big = pattern(9, 60 * 1024);
    dc.send(BytesMut::from(&piece[..])).await.expect("send");
    dc.send(BytesMut::from(&big[..])).await.expect("send");
    let mut got = vec![0u8; piece.len() + big.len()];
    tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut got))
        .await
        .expect("in time")
        .expect("read");
    assert!(got[..piece.len()] == piece[..], "piece message differs");
    assert!(got[piece.len()..] == big[..], "large message differs");

    // And the other way: our messages reach a plain data channel.
    stream.write_all(&big).await.expect("write");
    let mut echoed = Vec::new();
    while echoed.len() < big.len() {
        match tokio::time::timeout(SETUP, dc.poll())
            .await
            .expect("in time")
        {
            Some(DataChannelEvent::OnMessage(message)) => {
                assert!(message.data.len() <= webtorrent_rtc::MAX_MESSAGE_SIZE);
                echoed.extend_from_slice(&message.data);
            }
            Some(_) => {}
            None => panic!("channel ended early"),
        }
    }
    assert!(echoed == big, "bytes to the plain channel differ");
    pc.close().await.expect("close");
}
