//! Connection setup for WebTorrent signaling: non-trickle offers and answers as SDP strings.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState, RTCSessionDescription,
    SettingEngineBuilder,
};

use crate::runtime::BufferedRuntime;
use crate::stream::{ConnectionGuard, DataStream, Limits};
use crate::{Error, SdpKind};

/// Largest SDP accepted from a peer. Real offers and answers are a few KiB.
pub const MAX_SDP_LEN: usize = 64 * 1024;

/// SCTP packet size towards a peer of this crate when the path is loopback (see
/// [`RtcConfig::loopback_sctp_mtu`]). Within the 16 KiB a DTLS record may carry.
pub const LOOPBACK_SCTP_MTU: u32 = 16_000;

/// The session attribute with which this crate's descriptions state the largest datagram
/// their sender reads whole. Other implementations ignore it.
const MAX_DATAGRAM_ATTR: &str = "a=x-webtorrent-rs-max-datagram:";

/// How long ICE keeps checking a candidate pair that does not answer (the stack's 7 checks
/// 200 ms apart).
pub const ICE_CHECK_WINDOW: Duration = Duration::from_millis(1400);

/// Bytes a DTLS record and its UDP datagram add to an SCTP packet, with room to spare
/// (AES-GCM records add 29).
const DTLS_OVERHEAD: u32 = 64;

/// An ICE server (STUN, or TURN with credentials).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port` URLs.
    pub urls: Vec<String>,
    /// TURN user name; empty for STUN.
    pub username: String,
    /// TURN password; empty for STUN.
    pub credential: String,
}

impl IceServer {
    /// A STUN server, e.g. `stun:stun.example.org:3478`.
    pub fn stun(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            ..Self::default()
        }
    }
}

/// Settings of the WebRTC transport.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RtcConfig {
    /// ICE servers. None by default: only host candidates are gathered and nothing is sent
    /// to a public server.
    pub ice_servers: Vec<IceServer>,
    /// Local UDP addresses to bind, one socket each (port 0 picks one). `0.0.0.0:0` means
    /// every non-loopback interface; loopback must be named (`127.0.0.1:0`).
    pub bind_addrs: Vec<SocketAddr>,
    /// `SO_RCVBUF` / `SO_SNDBUF` for the UDP sockets (the kernel caps it at `rmem_max` /
    /// `wmem_max`). `None` keeps the system default, which loses packets under load.
    pub udp_buffer_size: Option<usize>,
    /// Resolve remote `.local` (mDNS) host candidates, as browsers send them. Binds a
    /// shared multicast socket on port 5353 per connection.
    pub mdns: bool,
    /// How long to wait for ICE gathering before sending what has been gathered.
    pub gather_timeout: Duration,
    /// How long to wait for the data channel to open once both descriptions are set.
    pub connect_timeout: Duration,
    /// Silence after which ICE considers the peer disconnected (`None`: the stack's 5 s).
    pub ice_disconnected_timeout: Option<Duration>,
    /// Further silence after which the connection fails and its streams end (`None`: the
    /// stack's 25 s).
    pub ice_failed_timeout: Option<Duration>,
    /// Time between ICE connectivity checks (the stack's default is 200 ms; browsers check
    /// about every 50 ms). A candidate pair is given up after [`ICE_CHECK_WINDOW`] without
    /// an answer whatever the interval, so a shorter one only finds a path sooner.
    pub ice_check_interval: Duration,
    /// Received messages queued per stream before the channel stops being read.
    pub read_queue_messages: usize,
    /// Outstanding send bytes at which a write waits.
    pub send_high_water: usize,
    /// Outstanding send bytes at which a waiting write resumes.
    pub send_low_water: usize,
    /// SCTP packet size when answering a peer of this crate over loopback; `None` keeps
    /// the stack's 1191 bytes everywhere.
    ///
    /// The standard size fits a TURN-relayed IPv6 path. Loopback carries 64 KiB datagrams,
    /// but browsers and libdatachannel drop datagrams above about 4 KiB, so larger packets
    /// are sent only when the path and the receiver are both known: every local address is
    /// loopback, every candidate of the remote offer is a loopback address, and the offer
    /// states (in an SDP attribute that only this crate writes) that its sender reads
    /// datagrams of that size. An offerer has sent its description before it learns who
    /// answers, so it keeps the standard size.
    pub loopback_sctp_mtu: Option<u32>,
}

impl Default for RtcConfig {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            bind_addrs: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            udp_buffer_size: Some(4 << 20),
            mdns: true,
            gather_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(30),
            ice_disconnected_timeout: None,
            ice_failed_timeout: None,
            ice_check_interval: Duration::from_millis(50),
            read_queue_messages: 64,
            send_high_water: 1 << 20,
            send_low_water: 256 << 10,
            loopback_sctp_mtu: Some(LOOPBACK_SCTP_MTU),
        }
    }
}

impl RtcConfig {
    /// Loopback only: binds `127.0.0.1:0`, no mDNS.
    pub fn loopback() -> Self {
        Self {
            bind_addrs: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            mdns: false,
            ..Self::default()
        }
    }

    fn limits(&self) -> Limits {
        let high_water = self.send_high_water.max(crate::MAX_MESSAGE_SIZE);
        Limits {
            read_queue: self.read_queue_messages.max(1),
            high_water,
            low_water: self.send_low_water.min(high_water / 2),
        }
    }
}

/// Events the driver reports, forwarded to the tasks that wait on them.
struct Signals {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    channels: mpsc::Sender<Arc<dyn DataChannel>>,
}

#[async_trait]
impl PeerConnectionEventHandler for Signals {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, "peer connection state");
        self.state.send_replace(state);
    }

    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        // The first channel the remote opens is the wire; any further one is dropped.
        if self.channels.try_send(dc).is_err() {
            tracing::debug!("ignoring an extra data channel");
        }
    }
}

/// Receivers matching [`Signals`].
struct Waiters {
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
    channels: mpsc::Receiver<Arc<dyn DataChannel>>,
}

/// Creates WebRTC connections for WebTorrent peers. Cheap to clone.
///
/// Must be used inside a tokio runtime. Each connection runs a driver task until it is
/// closed; every type here closes its connection when dropped.
#[derive(Debug, Clone)]
pub struct Rtc {
    config: Arc<RtcConfig>,
}

impl Rtc {
    /// A transport with these settings.
    pub fn new(config: RtcConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &RtcConfig {
        &self.config
    }

    /// Whether every local address is loopback, so every path is.
    fn loopback_only(&self) -> bool {
        !self.config.bind_addrs.is_empty()
            && self.config.bind_addrs.iter().all(|a| a.ip().is_loopback())
    }

    /// A connection sending SCTP packets of `sctp_mtu` bytes (`None`: the stack's size).
    async fn build(&self, sctp_mtu: Option<u32>) -> Result<Built, Error> {
        let config = &self.config;
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (channels_tx, channels) = mpsc::channel(1);
        let signals = Signals {
            gathered: gathered_tx,
            state: state_tx,
            channels: channels_tx,
        };
        let ice_servers = config
            .ice_servers
            .iter()
            .map(|server| RTCIceServer {
                urls: server.urls.clone(),
                username: server.username.clone(),
                credential: server.credential.clone(),
            })
            .collect();
        let mdns = if config.mdns {
            rtc::ice::mdns::MulticastDnsMode::QueryOnly
        } else {
            rtc::ice::mdns::MulticastDnsMode::Disabled
        };
        let loopback = config.bind_addrs.iter().any(|a| a.ip().is_loopback());
        let mut settings = SettingEngineBuilder::new();
        if let Some(mtu) = sctp_mtu {
            settings = settings.with_sctp_mtu(mtu);
        }
        let interval = config.ice_check_interval.max(Duration::from_millis(5));
        let checks = ICE_CHECK_WINDOW
            .as_millis()
            .div_ceil(interval.as_millis())
            .max(1);
        let settings = settings
            .with_ice_connection_attempts(
                Some(interval),
                Some(u16::try_from(checks).unwrap_or(u16::MAX)),
            )
            .with_multicast_dns_mode(mdns)
            .with_include_loopback_candidate(loopback)
            .with_ice_timeouts(
                config.ice_disconnected_timeout,
                config.ice_failed_timeout,
                None,
            )
            .build();
        let mut builder = PeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::default()
                    .with_ice_servers(ice_servers)
                    .build(),
            )
            .with_setting_engine(settings)
            .with_handler(Arc::new(signals))
            .with_udp_addrs(config.bind_addrs.clone())
            // A second bound under our own high-water mark: `send` itself waits past it.
            .with_data_channel_send_buffer_limit(
                config.limits().high_water + 2 * crate::MAX_MESSAGE_SIZE,
            );
        let runtime = BufferedRuntime::new(config.udp_buffer_size);
        builder = builder.with_runtime(Arc::new(runtime.clone()));
        let pc = builder.build().await.map_err(Error::Setup)?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        // The sockets are bound by now; over loopback, say how large a datagram they take.
        let max_datagram = if self.loopback_only() && config.loopback_sctp_mtu.is_some() {
            runtime.max_datagram()
        } else {
            None
        };
        Ok(Built {
            guard: ConnectionGuard::new(pc),
            waiters: Waiters {
                gathered,
                state,
                channels,
            },
            max_datagram,
        })
    }

    /// The SCTP packet size for answering `offer`: larger than the stack's only on a
    /// loopback path to a receiver that has said it reads such datagrams.
    fn answer_sctp_mtu(&self, offer: &str) -> Option<u32> {
        let wanted = self.config.loopback_sctp_mtu?;
        if !self.loopback_only() || !loopback_candidates_only(offer) {
            return None;
        }
        let readable = stated_max_datagram(offer)?.saturating_sub(DTLS_OVERHEAD);
        let mtu = wanted.min(readable);
        // Below the stack's own size there is nothing to gain.
        (mtu > 1200).then_some(mtu)
    }

    /// Creates an offer ahead of time, as WebTorrent announces carry them.
    ///
    /// Opens the one data channel the offerer creates (ordered, reliable, random 40-hex-digit
    /// label, no protocol, as simple-peer does), then waits for ICE gathering to complete
    /// (at most [`RtcConfig::gather_timeout`]) so the SDP carries every candidate.
    pub async fn create_offer(&self) -> Result<PendingOffer, Error> {
        let Built {
            guard,
            mut waiters,
            max_datagram,
        } = self.build(None).await?;
        let pc = connection(&guard)?;
        let label = channel_label()?;
        let dc = pc
            .create_data_channel(&label, None)
            .await
            .map_err(Error::Setup)?;
        let offer = pc.create_offer(None).await.map_err(Error::Setup)?;
        pc.set_local_description(offer)
            .await
            .map_err(Error::Setup)?;
        let sdp = local_sdp(&**pc, &mut waiters.gathered, self.config.gather_timeout).await?;
        let sdp = state_max_datagram(sdp, max_datagram);
        Ok(PendingOffer {
            sdp,
            dc,
            guard,
            waiters,
            config: self.config.clone(),
        })
    }

    /// Answers a remote offer. The answer SDP is complete (gathering waited for); send it,
    /// then call [`PendingAnswer::connect`].
    pub async fn accept_offer(&self, offer_sdp: &str) -> Result<PendingAnswer, Error> {
        let offer = parse_sdp(offer_sdp, SdpKind::Offer)?;
        let has_channel = offer
            .unmarshal()
            .map(|parsed| {
                parsed
                    .media_descriptions
                    .iter()
                    .any(|m| m.media_name.media == "application")
            })
            .unwrap_or(false);
        if !has_channel {
            return Err(Error::NoDataChannel);
        }
        let sctp_mtu = self.answer_sctp_mtu(offer_sdp);
        let Built {
            guard,
            mut waiters,
            max_datagram,
        } = self.build(sctp_mtu).await?;
        let pc = connection(&guard)?;
        pc.set_remote_description(offer)
            .await
            .map_err(|source| Error::Rejected {
                kind: SdpKind::Offer,
                source,
            })?;
        let answer = pc.create_answer(None).await.map_err(Error::Setup)?;
        pc.set_local_description(answer)
            .await
            .map_err(Error::Setup)?;
        let sdp = local_sdp(&**pc, &mut waiters.gathered, self.config.gather_timeout).await?;
        let sdp = state_max_datagram(sdp, max_datagram);
        if let Some(mtu) = sctp_mtu {
            tracing::debug!(mtu, "loopback peer reads large datagrams");
        }
        Ok(PendingAnswer {
            sdp,
            sctp_mtu,
            guard,
            waiters,
            config: self.config.clone(),
        })
    }
}

/// A new connection, before any description is set.
struct Built {
    guard: ConnectionGuard,
    waiters: Waiters,
    /// The largest datagram its sockets read whole, when it may be stated to the peer.
    max_datagram: Option<usize>,
}

/// Adds the [`MAX_DATAGRAM_ATTR`] session attribute to a local description.
fn state_max_datagram(sdp: String, max_datagram: Option<usize>) -> String {
    let Some(n) = max_datagram else {
        return sdp;
    };
    // Session attributes come before the first media section.
    let Some(at) = sdp.find("\r\nm=") else {
        return sdp;
    };
    let n = n.min(usize::from(u16::MAX));
    let mut out = String::with_capacity(sdp.len() + MAX_DATAGRAM_ATTR.len() + 8);
    out.push_str(&sdp[..at + 2]);
    out.push_str(MAX_DATAGRAM_ATTR);
    out.push_str(&n.to_string());
    out.push_str("\r\n");
    out.push_str(&sdp[at + 2..]);
    out
}

/// The datagram size a remote description states with [`MAX_DATAGRAM_ATTR`].
fn stated_max_datagram(sdp: &str) -> Option<u32> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix(MAX_DATAGRAM_ATTR))
        .and_then(|n| n.parse().ok())
}

/// Whether a remote description has candidates and every one is a loopback IP address
/// (not a LAN address, not an mDNS `.local` name).
fn loopback_candidates_only(sdp: &str) -> bool {
    let mut any = false;
    for line in sdp.lines() {
        let Some(candidate) = line.trim_end().strip_prefix("a=candidate:") else {
            continue;
        };
        // foundation component transport priority address port typ type ...
        let address = candidate.split_ascii_whitespace().nth(4);
        match address.and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
            Some(ip) if ip.is_loopback() => any = true,
            _ => return false,
        }
    }
    any
}

fn connection(guard: &ConnectionGuard) -> Result<&Arc<dyn PeerConnection>, Error> {
    guard.pc().ok_or(Error::Closed)
}

/// A random data-channel label: 20 random bytes in hex, like simple-peer's.
fn channel_label() -> Result<String, Error> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|_| Error::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks size and syntax of a remote SDP.
fn parse_sdp(sdp: &str, kind: SdpKind) -> Result<RTCSessionDescription, Error> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(Error::SdpTooLarge {
            kind,
            len: sdp.len(),
        });
    }
    let owned = sdp.to_owned();
    let parsed = match kind {
        SdpKind::Offer => RTCSessionDescription::offer(owned),
        SdpKind::Answer => RTCSessionDescription::answer(owned),
    };
    parsed.map_err(|source| Error::InvalidSdp { kind, source })
}

/// Waits for ICE gathering to end (or the timeout), then returns the local SDP.
async fn local_sdp(
    pc: &dyn PeerConnection,
    gathered: &mut watch::Receiver<bool>,
    timeout: Duration,
) -> Result<String, Error> {
    match tokio::time::timeout(timeout, gathered.wait_for(|done| *done)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return Err(Error::Closed),
        Err(_) => tracing::debug!(?timeout, "ICE gathering incomplete; sending what we have"),
    }
    pc.local_description()
        .await
        .map(|desc| desc.sdp)
        .ok_or(Error::Closed)
}

/// Waits for `fut` unless the connection fails first or the time runs out.
async fn until_connected<T>(
    state: &mut watch::Receiver<RTCPeerConnectionState>,
    timeout: Duration,
    fut: impl std::future::Future<Output = Option<T>>,
) -> Result<T, Error> {
    let failed = async {
        let _ = state
            .wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                )
            })
            .await;
    };
    let raced = async {
        tokio::select! {
            value = fut => value.ok_or(Error::ConnectionFailed),
            () = failed => Err(Error::ConnectionFailed),
        }
    };
    tokio::time::timeout(timeout, raced)
        .await
        .map_err(|_| Error::ConnectTimeout(timeout))?
}

/// An offer whose SDP has been created, waiting for the remote answer.
///
/// Dropping it closes the connection.
pub struct PendingOffer {
    sdp: String,
    dc: Arc<dyn DataChannel>,
    guard: ConnectionGuard,
    waiters: Waiters,
    config: Arc<RtcConfig>,
}

impl std::fmt::Debug for PendingOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingOffer")
            .field("sdp_len", &self.sdp.len())
            .finish_non_exhaustive()
    }
}

impl PendingOffer {
    /// The offer SDP (type `offer`), with all gathered candidates.
    pub fn sdp(&self) -> &str {
        &self.sdp
    }

    /// Applies the remote answer and waits for the data channel to open.
    pub async fn accept_answer(mut self, answer_sdp: &str) -> Result<DataStream, Error> {
        let answer = parse_sdp(answer_sdp, SdpKind::Answer)?;
        let pc = connection(&self.guard)?;
        pc.set_remote_description(answer)
            .await
            .map_err(|source| Error::Rejected {
                kind: SdpKind::Answer,
                source,
            })?;
        let dc = self.dc.clone();
        let opened = async {
            loop {
                match dc.poll().await {
                    Some(DataChannelEvent::OnOpen) => return Some(()),
                    Some(DataChannelEvent::OnClose) | None => return None,
                    Some(_) => {}
                }
            }
        };
        until_connected(&mut self.waiters.state, self.config.connect_timeout, opened).await?;
        let limits = self.config.limits();
        DataStream::new(self.dc, self.guard, self.waiters.state, limits)
            .await
            .map_err(Error::Setup)
    }

    /// Closes the connection now, waiting for its driver to stop.
    pub async fn close(self) {
        self.guard.close().await;
    }
}

/// An answer whose SDP has been created; the data channel opens once the offerer has it.
///
/// Dropping it closes the connection.
pub struct PendingAnswer {
    sdp: String,
    sctp_mtu: Option<u32>,
    guard: ConnectionGuard,
    waiters: Waiters,
    config: Arc<RtcConfig>,
}

impl std::fmt::Debug for PendingAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAnswer")
            .field("sdp_len", &self.sdp.len())
            .finish_non_exhaustive()
    }
}

impl PendingAnswer {
    /// The answer SDP (type `answer`), with all gathered candidates.
    pub fn sdp(&self) -> &str {
        &self.sdp
    }

    /// The SCTP packet size this side sends, when larger than the stack's (see
    /// [`RtcConfig::loopback_sctp_mtu`]).
    pub fn sctp_mtu(&self) -> Option<u32> {
        self.sctp_mtu
    }

    /// Waits for the offerer's data channel to open.
    pub async fn connect(mut self) -> Result<DataStream, Error> {
        let channels = &mut self.waiters.channels;
        let dc = until_connected(
            &mut self.waiters.state,
            self.config.connect_timeout,
            channels.recv(),
        )
        .await?;
        let limits = self.config.limits();
        DataStream::new(dc, self.guard, self.waiters.state, limits)
            .await
            .map_err(Error::Setup)
    }

    /// Closes the connection now, waiting for its driver to stop.
    pub async fn close(self) {
        self.guard.close().await;
    }
}

/// Identifies an offer in a WebTorrent announce (`offer_id`, 20 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OfferId(pub [u8; 20]);

impl OfferId {
    /// A random id.
    pub fn random() -> Result<Self, Error> {
        let mut bytes = [0u8; 20];
        getrandom::fill(&mut bytes).map_err(|_| Error::Random)?;
        Ok(Self(bytes))
    }
}

/// Offers sent with announces, waiting for answers relayed by the tracker.
///
/// An answer is matched to its offer by id; an id the pool does not hold (never sent,
/// already answered, expired) is rejected. Dropping an offer closes its connection.
#[derive(Debug)]
pub struct OfferPool {
    offers: HashMap<OfferId, (PendingOffer, Instant)>,
    capacity: usize,
}

impl OfferPool {
    /// A pool holding at most `capacity` offers.
    pub fn new(capacity: usize) -> Self {
        Self {
            offers: HashMap::new(),
            capacity,
        }
    }

    /// Adds an offer created at `now` under a fresh random id.
    pub fn insert(&mut self, offer: PendingOffer, now: Instant) -> Result<OfferId, Error> {
        if self.offers.len() >= self.capacity {
            return Err(Error::PoolFull);
        }
        let mut id = OfferId::random()?;
        while self.offers.contains_key(&id) {
            id = OfferId::random()?;
        }
        self.offers.insert(id, (offer, now));
        Ok(id)
    }

    /// Takes the offer an answer is for.
    pub fn take(&mut self, id: &OfferId) -> Result<PendingOffer, Error> {
        self.offers
            .remove(id)
            .map(|(offer, _)| offer)
            .ok_or(Error::UnknownOffer)
    }

    /// Drops (and so closes) offers created more than `max_age` before `now`; returns how
    /// many.
    pub fn expire(&mut self, now: Instant, max_age: Duration) -> usize {
        let before = self.offers.len();
        self.offers
            .retain(|_, (_, created)| now.saturating_duration_since(*created) <= max_age);
        before - self.offers.len()
    }

    /// Number of offers waiting.
    pub fn len(&self) -> usize {
        self.offers.len()
    }

    /// Whether no offer is waiting.
    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
    }
}
