//! A remote offerer built on the `webrtc` crate directly: one sending messages larger than
//! our own (a JS WebTorrent piece message is 16 KiB of block plus a 13-byte header), and
//! one whose network silently vanishes.

mod common;

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
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
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
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

/// The `webrtc` crate's tokio runtime with a switch that makes every UDP socket it wraps
/// silently drop all traffic, as a peer whose network vanished.
#[derive(Debug, Clone, Default)]
struct Vanishing {
    cut: Arc<AtomicBool>,
}

#[derive(Debug)]
struct CutSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    cut: Arc<AtomicBool>,
}

impl AsyncUdpSocket for CutSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        if self.cut.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(transmit.contents.len()));
        }
        self.inner.poll_send(cx, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(_)) if self.cut.load(Ordering::Relaxed) => continue,
                other => return other,
            }
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime for Vanishing {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(CutSocket {
            inner: TokioRuntime.wrap_udp_socket(socket)?,
            cut: self.cut.clone(),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        TokioRuntime.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        TokioRuntime.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        TokioRuntime.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        TokioRuntime.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TokioRuntime.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TokioRuntime.block_on(future);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_vanishes_ends_the_stream() {
    let vanishing = Vanishing::default();
    let (tx, mut gathered) = watch::channel(false);
    let pc = PeerConnectionBuilder::new()
        .with_handler(Arc::new(Gathered(tx)))
        .with_runtime(Arc::new(vanishing.clone()))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .expect("peer connection");
    let dc = pc
        .create_data_channel("wire", None)
        .await
        .expect("data channel");
    let offer = pc.create_offer(None).await.expect("offer");
    pc.set_local_description(offer).await.expect("set local");
    tokio::time::timeout(SETUP, gathered.wait_for(|done| *done))
        .await
        .expect("gathered in time")
        .expect("gathering");
    let offer_sdp = pc.local_description().await.expect("local description").sdp;

    let mut cfg = config();
    cfg.ice_disconnected_timeout = Some(Duration::from_secs(1));
    cfg.ice_failed_timeout = Some(Duration::from_secs(2));
    let rtc = Rtc::new(cfg);
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
    dc.send(BytesMut::from(&b"hello"[..])).await.expect("send");
    let mut buf = [0u8; 5];
    tokio::time::timeout(SETUP, stream.read_exact(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(&buf, b"hello");

    // The remote goes silent: no close, no reset, nothing.
    vanishing.cut.store(true, Ordering::Relaxed);
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut rest))
        .await
        .expect("EOF once ICE gives up")
        .expect("read");
    assert_eq!(n, 0);
    let err = stream
        .write_all(b"anyone?")
        .await
        .expect_err("write to a vanished peer");
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    pc.close().await.expect("close");
}
