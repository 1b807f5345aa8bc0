//! WebRTC data-channel transport for WebTorrent peers, on the `webrtc` crate (0.21).
//!
//! A WebTorrent peer wire runs over one reliable, ordered data channel that the offering
//! peer creates; offers and answers travel through a WebSocket tracker as SDP strings,
//! complete with candidates (no trickle ICE). This crate provides:
//!
//! - [`Rtc`]: creates offers ahead of time ([`Rtc::create_offer`]), answers remote offers
//!   ([`Rtc::accept_offer`]), and accepts answers ([`PendingOffer::accept_answer`]);
//! - [`DataStream`]: the data channel as a byte stream implementing tokio's `AsyncRead` and
//!   `AsyncWrite`, so the peer-wire state machine runs over it as over TCP. Writes become
//!   messages of at most 16 KiB; the send buffer is bounded through the channel's buffered
//!   amount; received messages wait in a bounded queue;
//! - [`OfferPool`]: offers sent with announces, matched to answers by offer id;
//! - 4 MiB UDP socket buffers ([`RtcConfig::udp_buffer_size`]), through a wrapper of the
//!   crate's tokio runtime that sees every UDP socket before it is used.
//!
//! ICE servers are none by default (host candidates only) and STUN or TURN when
//! configured. Browser `.local` (mDNS) candidates are resolved when [`RtcConfig::mdns`] is
//! set. Binding `0.0.0.0` skips loopback: name `127.0.0.1` to connect on loopback.
//!
//! # Example
//!
//! Two peers on loopback; in WebTorrent the SDP strings travel through the tracker.
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use webtorrent_rtc::{Rtc, RtcConfig};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rtc = Rtc::new(RtcConfig::loopback());
//! let offer = rtc.create_offer().await?;
//! let answer = rtc.accept_offer(offer.sdp()).await?;
//! let answer_sdp = answer.sdp().to_owned();
//! let (mut a, mut b) = tokio::try_join!(offer.accept_answer(&answer_sdp), answer.connect())?;
//!
//! a.write_all(b"\x13BitTorrent protocol").await?;
//! let mut buf = [0u8; 20];
//! b.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"\x13BitTorrent protocol");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod connect;
mod runtime;
mod stream;

pub use connect::{
    ICE_CHECK_WINDOW, IceServer, LOOPBACK_SCTP_MTU, MAX_SDP_LEN, OfferId, OfferPool, PendingAnswer,
    PendingOffer, Rtc, RtcConfig,
};
pub use stream::{DataStream, MAX_MESSAGE_SIZE};

/// The two SDP types of WebTorrent signaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdpKind {
    /// `{"type": "offer"}`.
    Offer,
    /// `{"type": "answer"}`.
    Answer,
}

impl SdpKind {
    /// The `type` string of the JSON session description.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Answer => "answer",
        }
    }
}

impl std::fmt::Display for SdpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of connection setup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The remote SDP is longer than [`MAX_SDP_LEN`].
    #[error("{kind} SDP of {len} bytes is too large")]
    SdpTooLarge {
        /// Offer or answer.
        kind: SdpKind,
        /// Its length in bytes.
        len: usize,
    },
    /// The remote SDP does not parse.
    #[error("invalid {kind} SDP")]
    InvalidSdp {
        /// Offer or answer.
        kind: SdpKind,
        /// The parser's error.
        #[source]
        source: webrtc::error::Error,
    },
    /// The remote SDP parses but the connection cannot apply it.
    #[error("{kind} SDP rejected")]
    Rejected {
        /// Offer or answer.
        kind: SdpKind,
        /// Why the connection rejected it.
        #[source]
        source: webrtc::error::Error,
    },
    /// The remote offer has no data channel (`m=application`) section.
    #[error("the offer has no data channel")]
    NoDataChannel,
    /// An answer names an offer id that is not waiting (never sent, answered or expired).
    #[error("answer for an unknown offer")]
    UnknownOffer,
    /// The offer pool is full.
    #[error("too many offers waiting for answers")]
    PoolFull,
    /// Creating the local connection, channel or description failed.
    #[error("WebRTC setup failed")]
    Setup(#[source] webrtc::error::Error),
    /// The connection failed or closed before the data channel opened.
    #[error("the connection failed before the data channel opened")]
    ConnectionFailed,
    /// The data channel did not open in time.
    #[error("the data channel did not open within {0:?}")]
    ConnectTimeout(std::time::Duration),
    /// The connection was closed during setup.
    #[error("the connection is closed")]
    Closed,
    /// The system random source failed.
    #[error("no random bytes available")]
    Random,
}

#[cfg(test)]
mod tests {
    /// The stream moves between tasks and splits like a TCP stream.
    #[test]
    fn stream_is_send_unpin_static() {
        fn check<T: Send + Unpin + 'static + tokio::io::AsyncRead + tokio::io::AsyncWrite>() {}
        check::<super::DataStream>();
    }
}
