//! The byte stream a peer wire runs over: a TCP connection or a WebRTC data channel.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::choker::Transport;

/// A peer's connection, after the BitTorrent handshake.
#[derive(Debug)]
pub(super) enum PeerStream {
    /// BitTorrent over TCP.
    Tcp(TcpStream),
    /// WebTorrent over a WebRTC data channel.
    #[cfg(feature = "webrtc")]
    Rtc(Box<webtorrent_rtc::DataStream>),
}

impl PeerStream {
    pub(super) fn transport(&self) -> Transport {
        match self {
            Self::Tcp(_) => Transport::Tcp,
            #[cfg(feature = "webrtc")]
            Self::Rtc(_) => Transport::WebRtc,
        }
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "webrtc")]
            Self::Rtc(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "webrtc")]
            Self::Rtc(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "webrtc")]
            Self::Rtc(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "webrtc")]
            Self::Rtc(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
