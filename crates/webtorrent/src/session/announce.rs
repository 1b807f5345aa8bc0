//! Tracker announces for the session engine.
//!
//! [`Trackers`] holds the tracker clients every torrent of a client shares: one HTTP(S)
//! client and one UDP socket per address family, each made on first use. An
//! [`Announcer`] is one torrent's announce task:
//!
//! - every BEP 12 tier is announced to in parallel; within a tier the trackers are shuffled
//!   once and tried in order until one answers, and the one that answered moves to the
//!   front ([`TierList`]);
//! - each tier has its own [`AnnounceSchedule`]: `started` first, `completed` once when the
//!   download finishes, re-announces after the tracker's `interval` (clamped to
//!   [`TrackersConfig::min_interval`]..[`TrackersConfig::max_interval`]), early announces
//!   when peers are wanted, no sooner than the tracker's `min interval`, and exponential
//!   back-off once every tracker of the tier failed;
//! - peers from an answer are deduplicated, stripped of our own address and of addresses
//!   that cannot be dialled, then handed to [`AnnounceSetup::on_peers`];
//! - [`Announcer::stop`] sends `stopped` to every tracker that answered an announce, in
//!   parallel, and returns within the time it is given.
//!
//! Every outcome, success or typed [`TrackerError`], is kept per tracker in
//! [`Announcer::status`]. A tracker's failure is logged once (`warn`) when it changes, not at
//! every retry; a tracker's `warning message` likewise (`info`).

use crate::rng::SplitMix64;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OnceCell};
use tokio::task::{self, JoinError, JoinHandle, JoinSet};
use webtorrent_tracker::udp::UdpConfig;
use webtorrent_tracker::{
    AnnounceRequest, AnnounceResponse, AnnounceSchedule, Event, HttpConfig, HttpTracker, Peer,
    TierList, TrackerError, UdpTracker,
};
use webtorrent_types::{InfoHashV1, PeerId};

/// Peers asked for in each announce but `stopped` (which asks for none).
const NUMWANT: u32 = 50;

/// The longest [`Announcer::stop`] waits, whatever it is given (keeps deadline arithmetic
/// far from overflow).
const MAX_STOP_WAIT: Duration = Duration::from_secs(3600);

/// Settings shared by every announcer of a [`Trackers`].
#[derive(Debug, Clone)]
pub(crate) struct TrackersConfig {
    /// The HTTP(S) client's settings (request timeout, response size cap, user agent).
    pub(crate) http: HttpConfig,
    /// The UDP client's retransmission timing.
    pub(crate) udp: UdpConfig,
    /// The shortest re-announce interval: a tracker's `interval` below it is raised to it,
    /// and early announces ([`Announcer::want_peers`]) come no sooner than this after the
    /// previous announce of their tier.
    pub(crate) min_interval: Duration,
    /// The longest re-announce interval: a tracker's `interval` above it is lowered to it.
    pub(crate) max_interval: Duration,
    /// The most one announce may take, whatever the protocol's own timeouts say.
    pub(crate) announce_timeout: Duration,
}

impl Default for TrackersConfig {
    fn default() -> Self {
        Self {
            http: HttpConfig::default().with_timeout(Duration::from_secs(20)),
            // 5 s, 10 s, 20 s: a dead UDP tracker is given up on after 35 s.
            udp: UdpConfig::default()
                .with_base_timeout(Duration::from_secs(5))
                .with_max_retransmits(2),
            min_interval: Duration::from_secs(60),
            max_interval: Duration::from_secs(3 * 3600),
            announce_timeout: Duration::from_secs(45),
        }
    }
}

/// The tracker clients shared by every torrent of a client: one HTTP(S) client (reqwest,
/// rustls) and one UDP socket per address family, each created on first use (a failed
/// creation is retried at the next announce).
#[derive(Debug)]
pub(crate) struct Trackers {
    config: TrackersConfig,
    http: Mutex<Option<HttpTracker>>,
    udp_v4: OnceCell<UdpTracker>,
    udp_v6: OnceCell<UdpTracker>,
    /// Our addresses on the default routes, found once.
    default_route_ips: OnceLock<Vec<IpAddr>>,
}

impl Default for Trackers {
    fn default() -> Self {
        Self::new()
    }
}

impl Trackers {
    /// Tracker clients with the default settings.
    pub(crate) fn new() -> Self {
        Self::with_config(TrackersConfig::default())
    }

    /// Tracker clients with these settings.
    pub(crate) fn with_config(config: TrackersConfig) -> Self {
        Self {
            config,
            http: Mutex::new(None),
            udp_v4: OnceCell::new(),
            udp_v6: OnceCell::new(),
            default_route_ips: OnceLock::new(),
        }
    }

    fn http(&self) -> Result<HttpTracker, TrackerError> {
        let mut slot = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = HttpTracker::new(self.config.http.clone())?;
        *slot = Some(client.clone());
        Ok(client)
    }

    async fn udp(&self, v6: bool) -> Result<&UdpTracker, TrackerError> {
        let (cell, local) = if v6 {
            (&self.udp_v6, SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)))
        } else {
            (&self.udp_v4, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
        };
        cell.get_or_try_init(|| UdpTracker::bind(local, self.config.udp))
            .await
    }

    /// The UDP client and address for a `udp://` URL: IPv4 when the host has an IPv4
    /// address, IPv6 otherwise.
    async fn resolve_udp(&self, url: &str) -> Result<(&UdpTracker, SocketAddr), TrackerError> {
        let v4 = self.udp(false).await?;
        match v4.resolve(url).await {
            Ok(addr) => Ok((v4, addr)),
            Err(v4_error) => {
                // The host may have IPv6 addresses only; if not, the IPv4 error says why.
                let Ok(v6) = self.udp(true).await else {
                    return Err(v4_error);
                };
                v6.resolve(url)
                    .await
                    .map(|addr| (v6, addr))
                    .map_err(|_| v4_error)
            }
        }
    }

    /// Announces to one tracker. Returns the answer and, when the tracker's address is
    /// known, our address on the route to it.
    async fn announce(
        &self,
        url: &str,
        request: &AnnounceRequest,
    ) -> Result<(AnnounceResponse, Option<IpAddr>), TrackerError> {
        match Scheme::of(url) {
            Some(Scheme::Http) => {
                let response = self.http()?.announce(url, request).await?;
                Ok((response, http_host_ip(url).and_then(route_ip)))
            }
            Some(Scheme::Udp) => {
                let (client, addr) = self.resolve_udp(url).await?;
                let response = client.announce(addr, request).await?;
                Ok((response, route_ip(addr.ip())))
            }
            None => Err(TrackerError::InvalidUrl {
                url: url.to_owned(),
                what: "not an http://, https:// or udp:// URL",
            }),
        }
    }

    /// Our addresses on the default IPv4 and IPv6 routes, as far as the system tells.
    fn default_route_ips(&self) -> &[IpAddr] {
        self.default_route_ips.get_or_init(|| {
            // Documentation addresses (RFC 5737, RFC 3849): never reached, only routed.
            [
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            ]
            .into_iter()
            .filter_map(route_ip)
            .collect()
        })
    }
}

/// The announce protocols this module speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Udp,
}

impl Scheme {
    fn of(url: &str) -> Option<Self> {
        let starts = |prefix: &str| {
            url.get(..prefix.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(prefix))
        };
        if starts("http://") || starts("https://") {
            Some(Self::Http)
        } else if starts("udp://") {
            Some(Self::Udp)
        } else {
            None
        }
    }
}

/// The host of an `http(s)://` URL when it is an IP address literal.
fn http_host_ip(url: &str) -> Option<IpAddr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split_once(']')?.0.parse().ok();
    }
    host_port.split(':').next()?.parse().ok()
}

/// Our address on the route to `ip`: a UDP socket "connected" there (no packet is sent)
/// has it as its local address.
fn route_ip(ip: IpAddr) -> Option<IpAddr> {
    let local = match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let socket = StdUdpSocket::bind((local, 0)).ok()?;
    socket.connect((ip, 9)).ok()?;
    let ours = socket.local_addr().ok()?.ip().to_canonical();
    (!ours.is_unspecified()).then_some(ours)
}

/// What a torrent tells its trackers about its progress (read at every announce).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Bytes uploaded this session.
    pub(crate) uploaded: u64,
    /// Bytes downloaded this session.
    pub(crate) downloaded: u64,
    /// Bytes still missing.
    pub(crate) left: u64,
}

/// What an announcer starts with.
pub(crate) struct AnnounceSetup {
    /// The shared tracker clients.
    pub(crate) trackers: Arc<Trackers>,
    /// BEP 12 tiers (the `announce-list`, or `[[announce]]`). `http://`, `https://` and
    /// `udp://` URLs are used; others (`wss://`) and repeated URLs are skipped.
    pub(crate) tiers: Vec<Vec<String>>,
    /// The torrent's wire info-hash.
    pub(crate) info_hash: InfoHashV1,
    /// Our peer id.
    pub(crate) peer_id: PeerId,
    /// Our listen port.
    pub(crate) port: u16,
    /// The torrent's progress, read at every announce. When `left` is 0 at start, the torrent
    /// is seeding and [`Announcer::completed`] is ignored.
    pub(crate) progress: Box<dyn Fn() -> Progress + Send + Sync>,
    /// Receives the new peers of each answer (never empty, never with our own address).
    pub(crate) on_peers: Box<dyn FnMut(Vec<SocketAddr>) + Send>,
    /// The torrent's WebSocket trackers (WebRTC signaling), run beside the others.
    #[cfg(feature = "webrtc")]
    pub(crate) signaler: Option<super::webrtc::Signaler>,
}

impl std::fmt::Debug for AnnounceSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnounceSetup")
            .field("tiers", &self.tiers)
            .field("info_hash", &self.info_hash)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// A tracker URL as logs show it: private trackers put a passkey in the query or in a
/// long path segment, and logs get shared, so the query becomes `?…` and every path
/// segment of 16 characters or more `…`.
fn for_logs(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, _)) => (head, "?…"),
        None => (url, ""),
    };
    let (scheme, rest) = head.split_once("://").unwrap_or(("", head));
    let mut parts = rest.split('/');
    let authority = parts.next().unwrap_or_default();
    let mut out = if scheme.is_empty() {
        authority.to_owned()
    } else {
        format!("{scheme}://{authority}")
    };
    for segment in parts {
        out.push('/');
        out.push_str(if segment.len() >= 16 { "…" } else { segment });
    }
    out.push_str(query);
    out
}

/// A tracker's successful answer, summed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrackerAnswer {
    /// Peers in the answer, before our own address and duplicates are removed.
    pub(crate) peers: usize,
    /// Seeders, if the tracker said.
    pub(crate) seeders: Option<u32>,
    /// Leechers, if the tracker said.
    pub(crate) leechers: Option<u32>,
    /// When the answer came.
    pub(crate) at: Instant,
}

/// One tracker of an announcer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackerStatus {
    /// The announce URL.
    pub(crate) url: String,
    /// Its tier, 0 first (among the usable tiers).
    pub(crate) tier: usize,
    /// The last announce's outcome; `None` before the first one ended.
    pub(crate) last: Option<Result<TrackerAnswer, TrackerError>>,
    /// The `warning message` of the last successful answer.
    pub(crate) warning: Option<String>,
    /// When this tracker is announced to next; `None` while an announce is in flight, or
    /// when another tracker of the tier is the one in use.
    pub(crate) next_announce: Option<Instant>,
    /// Whether an announce to it is in flight.
    pub(crate) updating: bool,
    /// Failed announces since its last success.
    pub(crate) failures: u32,
}

/// What the handle and the task share.
#[derive(Debug)]
struct Shared {
    status: Mutex<Vec<TrackerStatus>>,
    completed: AtomicBool,
    want_peers: AtomicBool,
    stop: Mutex<Option<Instant>>,
    wake: Notify,
}

impl Shared {
    fn stop_deadline(&self) -> Option<Instant> {
        *self.stop.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running announcer (a tokio task). Dropping it without [`stop`](Self::stop) aborts it
/// silently, with the announces in flight.
#[derive(Debug)]
pub(crate) struct Announcer {
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
    #[cfg(feature = "webrtc")]
    signaler: Option<super::webrtc::Signaler>,
}

impl Drop for Announcer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Announcer {
    /// Starts the announce task; `started` goes to every tier at once.
    ///
    /// # Panics
    /// Outside a tokio runtime (the task is spawned).
    pub(crate) fn start(setup: AnnounceSetup) -> Self {
        let now = Instant::now();
        let mut random = SplitMix64::seeded();
        let mut entries = Vec::new();
        let mut tiers = Vec::new();
        for (tier, urls) in usable_tiers(setup.tiers).into_iter().enumerate() {
            entries.extend(urls.iter().map(|url| Entry::new(url.clone(), tier)));
            tiers.push(Tier {
                list: TierList::new(vec![urls], |bound| random.below(bound)),
                schedule: AnnounceSchedule::new(now),
                want_at: None,
                last_sent: None,
                backing_off: false,
            });
        }
        let shared = Arc::new(Shared {
            status: Mutex::new(Vec::new()),
            completed: AtomicBool::new(false),
            want_peers: AtomicBool::new(false),
            stop: Mutex::new(None),
            wake: Notify::new(),
        });
        let complete_at_start = (setup.progress)().left == 0;
        let mut task = Task {
            shared: Arc::clone(&shared),
            trackers: setup.trackers,
            entries,
            tiers,
            info_hash: setup.info_hash,
            peer_id: setup.peer_id,
            port: setup.port,
            // Truncation intended: any 32 random bits make a key.
            key: random.next_u64() as u32,
            progress: setup.progress,
            on_peers: setup.on_peers,
            complete_at_start,
            completed_requested: false,
            running: JoinSet::new(),
            flights: HashMap::new(),
        };
        task.publish();
        Self {
            shared,
            task: Some(tokio::spawn(task.run())),
            #[cfg(feature = "webrtc")]
            signaler: setup.signaler,
        }
    }

    /// The torrent finished downloading: `completed` goes to each tier once, as soon as its
    /// tracker's `min interval` allows (after its `started` was answered). Ignored for a
    /// torrent that had nothing left to download when the announcer started.
    pub(crate) fn completed(&self) {
        self.shared.completed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        #[cfg(feature = "webrtc")]
        if let Some(signaler) = &self.signaler {
            signaler.completed();
        }
    }

    /// Asks every tier for peers soon: no sooner than [`TrackersConfig::min_interval`] and
    /// the tracker's `min interval` after the tier's previous announce. A tier whose
    /// trackers all failed keeps its back-off.
    pub(crate) fn want_peers(&self) {
        self.shared.want_peers.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        #[cfg(feature = "webrtc")]
        if let Some(signaler) = &self.signaler {
            signaler.want_peers();
        }
    }

    /// Fresh WebRTC offers to the WebSocket trackers now (see
    /// [`Signaler::renew_offers`](super::webrtc::Signaler::renew_offers)).
    #[cfg(feature = "webrtc")]
    pub(crate) fn renew_offers(&self) {
        if let Some(signaler) = &self.signaler {
            signaler.renew_offers();
        }
    }

    /// Every tracker: URL, tier, last outcome, warning, next announce.
    pub(crate) fn status(&self) -> Vec<TrackerStatus> {
        #[allow(unused_mut)] // without the `webrtc` feature
        let mut status = self
            .shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        #[cfg(feature = "webrtc")]
        if let Some(signaler) = &self.signaler {
            status.extend(signaler.status());
        }
        status
    }

    /// Stops: the announces in flight are dropped, `stopped` goes to every tracker that
    /// answered an announce, all in parallel, and the task ends. Returns once the trackers
    /// answered or `within` passed, whichever comes first.
    pub(crate) async fn stop(mut self, within: Duration) {
        #[cfg(feature = "webrtc")]
        let signaler = self
            .signaler
            .take()
            .map(|s| tokio::spawn(s.stop(within.min(MAX_STOP_WAIT))));
        let deadline = Instant::now() + within.min(MAX_STOP_WAIT);
        *self
            .shared
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(deadline);
        self.shared.wake.notify_one();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline.into(), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        #[cfg(feature = "webrtc")]
        if let Some(signaler) = signaler {
            let _ = signaler.await;
        }
    }
}

/// The usable tiers of an announce list: `http(s)://` and `udp://` URLs, each once (its
/// first place wins), in non-empty tiers.
fn usable_tiers(tiers: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let mut seen = HashSet::new();
    tiers
        .into_iter()
        .map(|tier| {
            tier.into_iter()
                .filter(|url| {
                    let usable = Scheme::of(url).is_some();
                    if !usable {
                        tracing::debug!(tracker = %url, "tracker protocol not supported, skipped");
                    }
                    usable && seen.insert(url.clone())
                })
                .collect::<Vec<_>>()
        })
        .filter(|tier| !tier.is_empty())
        .collect()
}

/// The peers worth dialling from an answer: each once, without our own address (our port
/// on a loopback address or one of `own`) and without addresses that cannot be dialled
/// (port 0, unspecified, multicast or broadcast). IPv4-mapped IPv6 addresses become IPv4.
fn usable_peers(peers: &[Peer], port: u16, own: &[IpAddr]) -> Vec<SocketAddr> {
    let mut seen = HashSet::with_capacity(peers.len());
    peers
        .iter()
        .filter_map(|peer| {
            let ip = peer.addr.ip().to_canonical();
            let addr = SocketAddr::new(ip, peer.addr.port());
            let dialable = addr.port() != 0
                && !ip.is_unspecified()
                && !ip.is_multicast()
                && ip != IpAddr::V4(Ipv4Addr::BROADCAST);
            let ours = addr.port() == port && (ip.is_loopback() || own.contains(&ip));
            (dialable && !ours && seen.insert(addr)).then_some(addr)
        })
        .collect()
}

/// A tracker's `interval` within `min..=max`, and its `min interval` no longer than `max`.
fn clamp_intervals(response: &mut AnnounceResponse, min: Duration, max: Duration) {
    response.interval = response.interval.max(min).min(max);
    response.min_interval = response.min_interval.map(|m| m.min(max));
}

/// One tracker as the task keeps it.
#[derive(Debug)]
struct Entry {
    /// The `tracker id` it gave, sent back in later announces.
    tracker_id: Option<Vec<u8>>,
    /// Whether it answered an announce (it gets a `stopped` then).
    acknowledged: bool,
    status: TrackerStatus,
}

impl Entry {
    fn new(url: String, tier: usize) -> Self {
        Self {
            tracker_id: None,
            acknowledged: false,
            status: TrackerStatus {
                url,
                tier,
                last: None,
                warning: None,
                next_announce: None,
                updating: false,
                failures: 0,
            },
        }
    }
}

/// One BEP 12 tier.
#[derive(Debug)]
struct Tier {
    /// The tier's trackers in the order they are tried.
    list: TierList,
    schedule: AnnounceSchedule,
    /// When to ask the schedule for an early announce.
    want_at: Option<Instant>,
    /// When its last announce was sent.
    last_sent: Option<Instant>,
    /// Whether every tracker of the tier failed its last round (the schedule backs off;
    /// early announces wait for it).
    backing_off: bool,
}

/// An announce in flight.
#[derive(Debug, Clone, Copy)]
struct Flight {
    tier: usize,
    entry: usize,
    event: Event,
}

type Outcome = Result<(AnnounceResponse, Option<IpAddr>), TrackerError>;

struct Task {
    shared: Arc<Shared>,
    trackers: Arc<Trackers>,
    entries: Vec<Entry>,
    tiers: Vec<Tier>,
    info_hash: InfoHashV1,
    peer_id: PeerId,
    port: u16,
    key: u32,
    progress: Box<dyn Fn() -> Progress + Send + Sync>,
    on_peers: Box<dyn FnMut(Vec<SocketAddr>) + Send>,
    complete_at_start: bool,
    completed_requested: bool,
    /// The announces in flight (at most one per tier); dropping the set aborts them.
    running: JoinSet<Outcome>,
    flights: HashMap<task::Id, Flight>,
}

impl Task {
    async fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        loop {
            let now = Instant::now();
            if let Some(deadline) = shared.stop_deadline() {
                self.stop(deadline).await;
                return;
            }
            if shared.completed.swap(false, Ordering::AcqRel) {
                self.on_completed(now);
            }
            if shared.want_peers.swap(false, Ordering::AcqRel) {
                self.on_want_peers(now);
            }
            self.start_due(now);
            self.publish();
            let wake = self.next_wake();
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let joined = tokio::select! {
                () = shared.wake.notified() => None,
                Some(joined) = self.running.join_next_with_id() => Some(joined),
                () = sleep => None,
            };
            if let Some(joined) = joined {
                self.finished(joined);
            }
        }
    }

    fn on_completed(&mut self, now: Instant) {
        if self.complete_at_start || self.completed_requested {
            return;
        }
        self.completed_requested = true;
        for tier in &mut self.tiers {
            tier.schedule.completed(now);
        }
    }

    fn on_want_peers(&mut self, now: Instant) {
        let min = self.trackers.config.min_interval;
        for tier in &mut self.tiers {
            if tier.schedule.is_finished() || tier.backing_off {
                continue;
            }
            let earliest = tier.last_sent.map_or(now, |last| (last + min).max(now));
            tier.want_at = Some(tier.want_at.map_or(earliest, |at| at.min(earliest)));
        }
    }

    /// Sends the announces that are due.
    fn start_due(&mut self, now: Instant) {
        for t in 0..self.tiers.len() {
            let tier = &mut self.tiers[t];
            if let Some(at) = tier.want_at
                && at <= now
            {
                tier.want_at = None;
                tier.schedule.announce_soon(now);
            }
            if let Some(event) = tier.schedule.poll_announce(now) {
                self.launch(t, event, now);
            }
        }
    }

    /// Announces `event` to tier `t`'s current tracker.
    fn launch(&mut self, t: usize, event: Event, now: Instant) {
        let tier = &mut self.tiers[t];
        let Some(entry) = tier.list.current().and_then(|url| {
            self.entries
                .iter()
                .position(|e| e.status.tier == t && e.status.url == url)
        }) else {
            // Tiers are never empty and hold only known URLs; give the event back anyway.
            tier.schedule.on_failure(now);
            return;
        };
        tier.last_sent = Some(now);
        let request = self.request(event, entry);
        let trackers = Arc::clone(&self.trackers);
        let url = self.entries[entry].status.url.clone();
        let id = self
            .running
            .spawn(async move { announce_bounded(&trackers, &url, &request).await })
            .id();
        self.flights.insert(
            id,
            Flight {
                tier: t,
                entry,
                event,
            },
        );
        tracing::debug!(tracker = %self.entries[entry].status.url, ?event, "announcing");
    }

    fn request(&self, event: Event, entry: usize) -> AnnounceRequest {
        let progress = (self.progress)();
        let mut request = AnnounceRequest::new(self.info_hash, self.peer_id, self.port);
        request.uploaded = progress.uploaded;
        request.downloaded = progress.downloaded;
        request.left = progress.left;
        request.event = event;
        request.numwant = Some(if event == Event::Stopped { 0 } else { NUMWANT });
        request.compact = true;
        request.key = Some(self.key);
        request
            .trackerid
            .clone_from(&self.entries[entry].tracker_id);
        request
    }

    fn finished(&mut self, joined: Result<(task::Id, Outcome), JoinError>) {
        let now = Instant::now();
        let (id, outcome) = match joined {
            Ok((id, outcome)) => (id, outcome),
            Err(e) => (
                e.id(),
                Err(TrackerError::Transport {
                    message: format!("announce task failed: {e}"),
                }),
            ),
        };
        let Some(flight) = self.flights.remove(&id) else {
            return;
        };
        match outcome {
            Ok((response, route)) => self.succeeded(flight, response, route, now),
            Err(error) => self.failed(flight, error, now),
        }
    }

    fn succeeded(
        &mut self,
        flight: Flight,
        mut response: AnnounceResponse,
        route: Option<IpAddr>,
        now: Instant,
    ) {
        let config = &self.trackers.config;
        clamp_intervals(&mut response, config.min_interval, config.max_interval);
        let entry = &mut self.entries[flight.entry];
        let url = &entry.status.url;
        entry.acknowledged = true;
        if response.tracker_id.is_some() {
            entry.tracker_id.clone_from(&response.tracker_id);
        }
        if matches!(entry.status.last, Some(Err(_))) {
            tracing::info!(tracker = %for_logs(url), "tracker answers again");
        }
        if response.warning != entry.status.warning
            && let Some(warning) = &response.warning
        {
            tracing::info!(tracker = %for_logs(url), %warning, "tracker warning");
        }
        tracing::debug!(
            tracker = %for_logs(url),
            peers = response.peers.len(),
            interval = ?response.interval,
            "tracker answered"
        );
        entry.status.warning.clone_from(&response.warning);
        entry.status.last = Some(Ok(TrackerAnswer {
            peers: response.peers.len(),
            seeders: response.complete,
            leechers: response.incomplete,
            at: now,
        }));
        entry.status.failures = 0;
        let tier = &mut self.tiers[flight.tier];
        tier.backing_off = false;
        tier.list.success();
        tier.schedule.on_response(now, &response);
        if flight.event == Event::Started && self.completed_requested {
            // The download finished while `started` was in flight: `completed` is pending.
            tier.schedule.announce_soon(now);
        }
        let mut own = self.trackers.default_route_ips().to_vec();
        own.extend(route);
        let peers = usable_peers(&response.peers, self.port, &own);
        if !peers.is_empty() {
            (self.on_peers)(peers);
        }
    }

    fn failed(&mut self, flight: Flight, error: TrackerError, now: Instant) {
        let entry = &mut self.entries[flight.entry];
        let url = &entry.status.url;
        if let Some(Err(last)) = &entry.status.last
            && same_kind(last, &error)
        {
            tracing::debug!(tracker = %for_logs(url), %error, "tracker announce failed again");
        } else {
            tracing::warn!(tracker = %for_logs(url), %error, "tracker announce failed");
        }
        entry.status.last = Some(Err(error));
        entry.status.failures = entry.status.failures.saturating_add(1);
        let tier = &mut self.tiers[flight.tier];
        if tier.list.failure() {
            // Every tracker of the tier failed: back off.
            tier.backing_off = true;
            tier.schedule.on_failure(now);
        } else {
            // The same event to the tier's next tracker, at once.
            self.launch(flight.tier, flight.event, now);
        }
    }

    /// The earliest time something is due.
    fn next_wake(&self) -> Option<Instant> {
        self.tiers
            .iter()
            .flat_map(|t| [t.schedule.poll_timeout(), t.want_at])
            .flatten()
            .min()
    }

    /// Copies every tracker's status where [`Announcer::status`] reads it.
    fn publish(&mut self) {
        let updating: HashSet<usize> = self.flights.values().map(|f| f.entry).collect();
        for (i, entry) in self.entries.iter_mut().enumerate() {
            let tier = &self.tiers[entry.status.tier];
            entry.status.updating = updating.contains(&i);
            entry.status.next_announce = if tier.list.current() == Some(&*entry.status.url) {
                let due = tier.schedule.poll_timeout();
                match (due, tier.want_at) {
                    (Some(due), Some(want)) => Some(due.min(want)),
                    (due, _) => due,
                }
            } else {
                None
            };
        }
        let status = self.entries.iter().map(|e| e.status.clone()).collect();
        *self
            .shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = status;
    }

    /// Drops the announces in flight and sends `stopped` to every tracker that answered,
    /// in parallel, until `deadline`.
    async fn stop(mut self, deadline: Instant) {
        drop(std::mem::take(&mut self.running));
        self.flights.clear();
        let mut stops = JoinSet::new();
        for (i, entry) in self.entries.iter().enumerate() {
            if !entry.acknowledged {
                continue;
            }
            let request = self.request(Event::Stopped, i);
            let trackers = Arc::clone(&self.trackers);
            let url = entry.status.url.clone();
            stops.spawn(async move {
                let result = announce_bounded(&trackers, &url, &request).await;
                (url, result)
            });
        }
        let all = async {
            while let Some(joined) = stops.join_next().await {
                if let Ok((url, result)) = joined {
                    match result {
                        Ok(_) => tracing::debug!(tracker = %url, "stopped announced"),
                        Err(error) => {
                            tracing::debug!(tracker = %url, %error, "stopped announce failed");
                        }
                    }
                }
            }
        };
        if tokio::time::timeout_at(deadline.into(), all).await.is_err() {
            tracing::debug!("stopped announces cut short");
        }
        // Dropping `stops` aborts what is left.
    }
}

/// Whether two errors tell the same story, for logging changes only: transport errors
/// differ in their text at every retry (it holds the announce URL and its counters).
fn same_kind(a: &TrackerError, b: &TrackerError) -> bool {
    match (a, b) {
        (TrackerError::Failure { reason: x }, TrackerError::Failure { reason: y }) => x == y,
        (TrackerError::HttpStatus { status: x }, TrackerError::HttpStatus { status: y }) => x == y,
        (TrackerError::Malformed { what: x }, TrackerError::Malformed { what: y }) => x == y,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// One announce, bounded by [`TrackersConfig::announce_timeout`].
async fn announce_bounded(trackers: &Trackers, url: &str, request: &AnnounceRequest) -> Outcome {
    let limit = trackers.config.announce_timeout;
    tokio::time::timeout(limit, trackers.announce(url, request))
        .await
        .unwrap_or(Err(TrackerError::Timeout {
            attempts: 1,
            waited: limit,
        }))
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Mutex as StdMutex;

    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, UdpSocket};
    use webtorrent_tracker::http::{encode_announce_response, encode_failure};
    use webtorrent_tracker::udp::{AddressFamily, UdpRequest, UdpResponse};

    use super::*;

    /// The listen port the announcers claim (nothing listens: the trackers are fakes).
    const OUR_PORT: u16 = 45_001;

    /// An announce as a fake tracker received it.
    #[derive(Debug, Clone)]
    struct Seen {
        event: Event,
        left: u64,
        numwant: Option<i64>,
        key: Option<u32>,
        port: u16,
        trackerid: Option<String>,
        at: Instant,
    }

    type Log = Arc<StdMutex<Vec<Seen>>>;

    fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn events(log: &Log) -> Vec<Event> {
        lock(log).iter().map(|s| s.event).collect()
    }

    /// Runs a test body, failing it if it takes longer than 30 s.
    async fn bounded(body: impl Future<Output = ()>) {
        tokio::time::timeout(Duration::from_secs(30), body)
            .await
            .expect("test timed out");
    }

    /// Waits (up to 10 s) until `cond` holds.
    async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn answer(interval: u64, peers: &[&str]) -> AnnounceResponse {
        AnnounceResponse {
            interval: Duration::from_secs(interval),
            min_interval: None,
            tracker_id: None,
            complete: Some(3),
            incomplete: Some(4),
            peers: peers
                .iter()
                .map(|p| Peer::from(p.parse::<SocketAddr>().expect("test address")))
                .collect(),
            warning: None,
        }
    }

    /// What the fake HTTP tracker does with an announce.
    enum HttpReply {
        /// A 200 answer with this body.
        Body(Vec<u8>),
        /// The same, after a delay.
        Delayed(Duration, Vec<u8>),
        /// Keeps the connection open without answering.
        Hang,
    }

    /// A fake HTTP tracker on loopback; `reply` gets each announce and how many came before.
    async fn http_tracker(
        reply: impl Fn(&Seen, usize) -> HttpReply + Send + Sync + 'static,
    ) -> (String, Log) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/announce",
            listener.local_addr().expect("local address")
        );
        let log: Log = Arc::default();
        let reply = Arc::new(reply);
        let seen_log = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let log = Arc::clone(&seen_log);
                let reply = Arc::clone(&reply);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16_384 {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let Some(seen) = parse_http_announce(&buf) else {
                        return;
                    };
                    let index = {
                        let mut log = lock(&log);
                        log.push(seen.clone());
                        log.len() - 1
                    };
                    let body = match reply(&seen, index) {
                        HttpReply::Body(body) => body,
                        HttpReply::Delayed(delay, body) => {
                            tokio::time::sleep(delay).await;
                            body
                        }
                        HttpReply::Hang => std::future::pending::<Vec<u8>>().await,
                    };
                    {
                        {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            );
                            let _ = stream.write_all(head.as_bytes()).await;
                            let _ = stream.write_all(&body).await;
                            let _ = stream.shutdown().await;
                        }
                    }
                });
            }
        });
        (url, log)
    }

    fn parse_http_announce(request: &[u8]) -> Option<Seen> {
        let text = std::str::from_utf8(request).ok()?;
        let target = text.strip_prefix("GET ")?.split(' ').next()?;
        let query = target.split_once('?')?.1;
        let params: HashMap<&str, &str> =
            query.split('&').filter_map(|p| p.split_once('=')).collect();
        Some(Seen {
            event: match params.get("event").copied() {
                None => Event::None,
                Some("started") => Event::Started,
                Some("completed") => Event::Completed,
                Some("stopped") => Event::Stopped,
                Some(_) => return None,
            },
            left: params.get("left")?.parse().ok()?,
            numwant: params.get("numwant").and_then(|n| n.parse().ok()),
            key: params
                .get("key")
                .and_then(|k| u32::from_str_radix(k, 16).ok()),
            port: params.get("port")?.parse().ok()?,
            trackerid: params.get("trackerid").map(|t| (*t).to_owned()),
            at: Instant::now(),
        })
    }

    /// What the fake UDP tracker does with an announce.
    enum UdpReply {
        Announce {
            interval: u32,
            peers: Vec<SocketAddr>,
        },
        Error(&'static str),
        Ignore,
    }

    /// A fake BEP 15 tracker on loopback; `reply` gets each announce and how many came
    /// before. Connect requests are always answered.
    async fn udp_tracker(
        reply: impl Fn(&Seen, usize) -> UdpReply + Send + Sync + 'static,
    ) -> (String, Log) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "udp://{}/announce",
            socket.local_addr().expect("local address")
        );
        let log: Log = Arc::default();
        let seen_log = Arc::clone(&log);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let answer = match UdpRequest::decode(&buf[..len]) {
                    Ok(UdpRequest::Connect { transaction_id }) => UdpResponse::Connect {
                        transaction_id,
                        connection_id: 0x5eed,
                    },
                    Ok(UdpRequest::Announce {
                        transaction_id,
                        announce,
                        ..
                    }) => {
                        let seen = Seen {
                            event: announce.event,
                            left: announce.left,
                            numwant: Some(i64::from(announce.num_want)),
                            key: Some(announce.key),
                            port: announce.port,
                            trackerid: None,
                            at: Instant::now(),
                        };
                        let index = {
                            let mut log = lock(&seen_log);
                            log.push(seen.clone());
                            log.len() - 1
                        };
                        match reply(&seen, index) {
                            UdpReply::Announce { interval, peers } => UdpResponse::Announce {
                                transaction_id,
                                interval,
                                leechers: 4,
                                seeders: 3,
                                peers,
                            },
                            UdpReply::Error(message) => UdpResponse::Error {
                                transaction_id,
                                message: message.to_owned(),
                            },
                            UdpReply::Ignore => continue,
                        }
                    }
                    _ => continue,
                };
                let mut out = Vec::new();
                answer.encode(&mut out);
                let _ = socket.send_to(&out, from).await;
            }
        });
        (url, log)
    }

    /// Short timeouts, a 1 s interval floor.
    fn fast_config() -> TrackersConfig {
        TrackersConfig {
            http: HttpConfig::default().with_timeout(Duration::from_millis(700)),
            udp: UdpConfig::default()
                .with_base_timeout(Duration::from_millis(100))
                .with_max_retransmits(1),
            min_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(3 * 3600),
            announce_timeout: Duration::from_secs(3),
        }
    }

    /// An announcer under test, with what it delivered.
    struct Harness {
        trackers: Arc<Trackers>,
        announcer: Announcer,
        peers: Arc<StdMutex<Vec<Vec<SocketAddr>>>>,
        progress: Arc<StdMutex<Progress>>,
    }

    fn start(tiers: Vec<Vec<String>>, left: u64) -> Harness {
        let trackers = Arc::new(Trackers::with_config(fast_config()));
        let peers: Arc<StdMutex<Vec<Vec<SocketAddr>>>> = Arc::default();
        let progress = Arc::new(StdMutex::new(Progress {
            uploaded: 0,
            downloaded: 0,
            left,
        }));
        let (delivered, read) = (Arc::clone(&peers), Arc::clone(&progress));
        let announcer = Announcer::start(AnnounceSetup {
            trackers: Arc::clone(&trackers),
            tiers,
            info_hash: InfoHashV1([0x42; 20]),
            peer_id: PeerId::ours([7; 12]),
            port: OUR_PORT,
            progress: Box::new(move || *lock(&read)),
            on_peers: Box::new(move |p| lock(&delivered).push(p)),
            #[cfg(feature = "webrtc")]
            signaler: None,
        });
        Harness {
            trackers,
            announcer,
            peers,
            progress,
        }
    }

    fn status_of(h: &Harness, url: &str) -> TrackerStatus {
        h.announcer
            .status()
            .into_iter()
            .find(|s| s.url == url)
            .expect("tracker in status")
    }

    #[tokio::test]
    async fn http_started_completed_stopped() {
        bounded(async {
            let (url, log) = http_tracker(|seen, _| {
                let mut a = answer(600, &["10.0.0.1:6881"]);
                if seen.event == Event::Started {
                    a.tracker_id = Some(b"tid-1".to_vec());
                }
                HttpReply::Body(encode_announce_response(&a, true))
            })
            .await;
            let h = start(vec![vec![url.clone()]], 1000);
            wait_until("started answered", || {
                status_of(&h, &url).last.is_some_and(|l| l.is_ok())
            })
            .await;
            let status = status_of(&h, &url);
            assert_eq!(status.tier, 0);
            let Some(Ok(got)) = status.last else {
                panic!("no answer: {status:?}")
            };
            assert_eq!(
                (got.peers, got.seeders, got.leechers),
                (1, Some(3), Some(4))
            );
            let next = status.next_announce.expect("next announce scheduled");
            assert!(next > Instant::now() + Duration::from_secs(590));
            assert_eq!(
                *lock(&h.peers),
                [vec![
                    "10.0.0.1:6881".parse::<SocketAddr>().expect("address")
                ]]
            );

            lock(&h.progress).left = 0;
            h.announcer.completed();
            h.announcer.completed(); // once only
            wait_until("completed", || lock(&log).len() == 2).await;
            let start = Instant::now();
            h.announcer.stop(Duration::from_secs(5)).await;
            assert!(start.elapsed() < Duration::from_secs(2));
            assert_eq!(
                events(&log),
                [Event::Started, Event::Completed, Event::Stopped]
            );
            let seen = lock(&log).clone();
            assert_eq!(seen[0].left, 1000);
            assert_eq!(seen[1].left, 0);
            assert!(seen.iter().all(|s| s.port == OUR_PORT));
            assert_eq!(seen[0].numwant, Some(50));
            assert_eq!(seen[1].numwant, Some(50));
            assert_eq!(seen[2].numwant, Some(0));
            assert!(seen[0].key.is_some());
            assert!(seen.iter().all(|s| s.key == seen[0].key));
            assert_eq!(seen[0].trackerid, None);
            assert_eq!(seen[1].trackerid.as_deref(), Some("tid-1"));
            assert_eq!(seen[2].trackerid.as_deref(), Some("tid-1"));
            // Every task has ended: nothing holds the shared clients but us.
            wait_until("tasks ended", || Arc::strong_count(&h.trackers) == 1).await;
        })
        .await;
    }

    #[tokio::test]
    async fn udp_started_completed_stopped_and_peers_without_ours() {
        bounded(async {
            let ours = format!("127.0.0.1:{OUR_PORT}");
            let peers: Vec<SocketAddr> = [
                ours.as_str(),
                "10.1.2.3:6881",
                "10.1.2.3:6881",
                "127.0.0.1:6882",
                "0.0.0.0:6883",
                "10.1.2.4:0",
                ours.as_str(),
            ]
            .iter()
            .map(|p| p.parse().expect("address"))
            .collect();
            let (url, log) = udp_tracker(move |_, _| UdpReply::Announce {
                interval: 600,
                peers: peers.clone(),
            })
            .await;
            let h = start(vec![vec![url.clone()]], 1000);
            wait_until("peers", || !lock(&h.peers).is_empty()).await;
            assert_eq!(
                *lock(&h.peers),
                [vec![
                    "10.1.2.3:6881".parse::<SocketAddr>().expect("address"),
                    "127.0.0.1:6882".parse().expect("address"),
                ]]
            );
            let Some(Ok(got)) = status_of(&h, &url).last else {
                panic!("no answer")
            };
            assert_eq!(
                (got.peers, got.seeders, got.leechers),
                (7, Some(3), Some(4))
            );

            h.announcer.completed();
            wait_until("completed", || lock(&log).len() == 2).await;
            h.announcer.stop(Duration::from_secs(5)).await;
            assert_eq!(
                events(&log),
                [Event::Started, Event::Completed, Event::Stopped]
            );
            let seen = lock(&log).clone();
            assert_eq!(
                seen.iter().map(|s| s.numwant).collect::<Vec<_>>(),
                [Some(50), Some(50), Some(0)]
            );
            assert!(
                seen.iter()
                    .all(|s| s.port == OUR_PORT && s.key == seen[0].key)
            );
            wait_until("tasks ended", || Arc::strong_count(&h.trackers) == 1).await;
        })
        .await;
    }

    #[tokio::test]
    async fn failures_are_kept_per_tracker_and_other_tiers_still_used() {
        bounded(async {
            let (refusing, refusing_log) =
                http_tracker(|_, _| HttpReply::Body(encode_failure("torrent not registered")))
                    .await;
            let (banning, banning_log) = udp_tracker(|_, _| UdpReply::Error("banned")).await;
            let (good, good_log) = http_tracker(|_, _| {
                let mut a = answer(600, &["10.0.0.9:7000"]);
                a.warning = Some("be nice".to_owned());
                HttpReply::Body(encode_announce_response(&a, true))
            })
            .await;
            let h = start(
                vec![
                    vec![refusing.clone(), banning.clone()],
                    vec![good.clone(), "wss://tracker.example/announce".to_owned()],
                ],
                1000,
            );
            wait_until("every tracker tried", || {
                h.announcer.status().iter().all(|s| s.last.is_some())
            })
            .await;
            let status = h.announcer.status();
            assert_eq!(status.len(), 3, "wss:// is skipped: {status:?}");
            let refused = status_of(&h, &refusing);
            assert_eq!(
                refused.last,
                Some(Err(TrackerError::Failure {
                    reason: "torrent not registered".to_owned()
                }))
            );
            assert_eq!((refused.tier, refused.failures), (0, 1));
            let banned = status_of(&h, &banning);
            assert_eq!(
                banned.last,
                Some(Err(TrackerError::Failure {
                    reason: "banned".to_owned()
                }))
            );
            let ok = status_of(&h, &good);
            assert_eq!(ok.tier, 1);
            assert!(matches!(ok.last, Some(Ok(_))));
            assert_eq!(ok.warning.as_deref(), Some("be nice"));
            assert_eq!(
                *lock(&h.peers),
                [vec![
                    "10.0.0.9:7000".parse::<SocketAddr>().expect("address")
                ]]
            );
            // The failing tier backs off (15 s first) instead of retrying at once.
            let retry = [&refused, &banned]
                .iter()
                .find_map(|s| s.next_announce)
                .expect("the failing tier has a next announce");
            assert!(retry > Instant::now() + Duration::from_secs(10));
            // Asking for peers re-announces to the working tier after the 1 s floor, and
            // leaves the failing tier to its back-off.
            h.announcer.want_peers();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert_eq!(lock(&refusing_log).len(), 1);
            assert_eq!(lock(&banning_log).len(), 1);
            assert_eq!(events(&good_log), [Event::Started, Event::None]);
            // Only the tracker that answered is told `stopped`.
            h.announcer.stop(Duration::from_secs(5)).await;
            assert_eq!(
                events(&good_log),
                [Event::Started, Event::None, Event::Stopped]
            );
            assert_eq!(events(&refusing_log), [Event::Started]);
            assert_eq!(events(&banning_log), [Event::Started]);
        })
        .await;
    }

    #[tokio::test]
    async fn a_tier_fails_over_to_its_next_tracker() {
        bounded(async {
            let (refusing, refusing_log) =
                http_tracker(|_, _| HttpReply::Body(encode_failure("go away"))).await;
            let (good, good_log) = http_tracker(|_, _| {
                HttpReply::Body(encode_announce_response(&answer(600, &[]), true))
            })
            .await;
            let h = start(vec![vec![refusing.clone(), good.clone()]], 1000);
            wait_until("an answer", || {
                matches!(status_of(&h, &good).last, Some(Ok(_)))
            })
            .await;
            // Whichever the shuffle put first, the answering tracker is the one in use.
            let (refused, ok) = (status_of(&h, &refusing), status_of(&h, &good));
            assert!(ok.next_announce.is_some());
            assert_eq!(refused.next_announce, None);
            assert!(matches!(
                refused.last,
                None | Some(Err(TrackerError::Failure { .. }))
            ));
            assert!(lock(&refusing_log).len() <= 1);
            assert_eq!(events(&good_log), [Event::Started]);
            assert!(lock(&h.peers).is_empty(), "empty answers deliver nothing");
            drop(h.announcer);
            wait_until("tasks ended", || Arc::strong_count(&h.trackers) == 1).await;
        })
        .await;
    }

    #[tokio::test]
    async fn timeouts_and_garbage_are_typed_errors() {
        bounded(async {
            let (garbage, _) =
                http_tracker(|_, _| HttpReply::Body(b"<html>not a tracker</html>".to_vec())).await;
            let (hanging, _) = http_tracker(|_, _| HttpReply::Hang).await;
            let (silent, silent_log) = udp_tracker(|_, _| UdpReply::Ignore).await;
            let h = start(
                vec![
                    vec![garbage.clone()],
                    vec![hanging.clone()],
                    vec![silent.clone()],
                    vec!["udp://127.0.0.1/no-port".to_owned()],
                ],
                1000,
            );
            wait_until("every tracker failed", || {
                h.announcer
                    .status()
                    .iter()
                    .all(|s| matches!(s.last, Some(Err(_))))
            })
            .await;
            assert!(matches!(
                status_of(&h, &garbage).last,
                Some(Err(TrackerError::Bencode(_)))
            ));
            assert!(matches!(
                status_of(&h, &hanging).last,
                Some(Err(TrackerError::Timeout { .. }))
            ));
            assert!(matches!(
                status_of(&h, &silent).last,
                Some(Err(TrackerError::Timeout { .. }))
            ));
            assert!(matches!(
                status_of(&h, "udp://127.0.0.1/no-port").last,
                Some(Err(TrackerError::InvalidUrl { .. }))
            ));
            // No tracker acknowledged an announce: nobody is told `stopped`.
            let start = Instant::now();
            h.announcer.stop(Duration::from_secs(5)).await;
            assert!(start.elapsed() < Duration::from_millis(500));
            assert_eq!(events(&silent_log), [Event::Started, Event::Started]);
        })
        .await;
    }

    #[tokio::test]
    async fn stop_is_bounded_when_trackers_never_answer_it() {
        bounded(async {
            let (http_url, http_log) = http_tracker(|seen, _| {
                if seen.event == Event::Stopped {
                    HttpReply::Hang
                } else {
                    HttpReply::Body(encode_announce_response(&answer(600, &[]), true))
                }
            })
            .await;
            let (udp_url, udp_log) = udp_tracker(|seen, _| {
                if seen.event == Event::Stopped {
                    UdpReply::Ignore
                } else {
                    UdpReply::Announce {
                        interval: 600,
                        peers: vec![],
                    }
                }
            })
            .await;
            let h = start(vec![vec![http_url.clone()], vec![udp_url.clone()]], 1000);
            wait_until("both answered", || {
                h.announcer
                    .status()
                    .iter()
                    .all(|s| matches!(s.last, Some(Ok(_))))
            })
            .await;
            let start = Instant::now();
            h.announcer.stop(Duration::from_millis(300)).await;
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(250), "{took:?}");
            assert!(took < Duration::from_millis(900), "{took:?}");
            assert_eq!(events(&http_log), [Event::Started, Event::Stopped]);
            // The UDP client retransmits the unanswered `stopped`.
            let udp_events = events(&udp_log);
            assert_eq!(udp_events[..2], [Event::Started, Event::Stopped]);
            assert!(udp_events[2..].iter().all(|e| *e == Event::Stopped));
            wait_until("tasks ended", || Arc::strong_count(&h.trackers) == 1).await;
        })
        .await;
    }

    #[tokio::test]
    async fn reannounces_follow_short_intervals_clamped_to_the_floor() {
        bounded(async {
            // One tracker asks for 1 s, the other for 0 s, which the 1 s floor raises.
            let (one, one_log) = http_tracker(|_, _| {
                HttpReply::Body(encode_announce_response(&answer(1, &[]), true))
            })
            .await;
            let (zero, zero_log) = udp_tracker(|_, _| UdpReply::Announce {
                interval: 0,
                peers: vec![],
            })
            .await;
            let h = start(vec![vec![one], vec![zero]], 1000);
            wait_until("three announces each", || {
                lock(&one_log).len() >= 3 && lock(&zero_log).len() >= 3
            })
            .await;
            for log in [&one_log, &zero_log] {
                let seen = lock(log).clone();
                assert_eq!(
                    seen.iter().take(3).map(|s| s.event).collect::<Vec<_>>(),
                    [Event::Started, Event::None, Event::None]
                );
                for pair in seen.windows(2) {
                    let gap = pair[1].at - pair[0].at;
                    assert!(gap >= Duration::from_millis(900), "{gap:?}");
                }
            }
            h.announcer.stop(Duration::from_secs(2)).await;
        })
        .await;
    }

    #[test]
    fn passkeys_stay_out_of_logs() {
        assert_eq!(
            for_logs("http://t.example:8080/announce"),
            "http://t.example:8080/announce"
        );
        assert_eq!(
            for_logs("https://t.example/announce.php?passkey=0123456789abcdef&x=1"),
            "https://t.example/announce.php?…"
        );
        assert_eq!(
            for_logs("http://t.example/0123456789abcdef0123456789abcdef/announce"),
            "http://t.example/…/announce"
        );
        assert_eq!(for_logs("udp://t.example:6969"), "udp://t.example:6969");
        assert_eq!(for_logs("not a url"), "not a url");
    }

    #[tokio::test]
    async fn want_peers_waits_for_the_min_interval() {
        bounded(async {
            let (url, log) = http_tracker(|_, _| {
                let mut a = answer(600, &["10.0.0.1:6881"]);
                a.min_interval = Some(Duration::from_secs(2));
                HttpReply::Body(encode_announce_response(&a, true))
            })
            .await;
            let h = start(vec![vec![url.clone()]], 1000);
            wait_until("started answered", || {
                matches!(status_of(&h, &url).last, Some(Ok(_)))
            })
            .await;
            let started = lock(&log)[0].at;
            for _ in 0..5 {
                h.announcer.want_peers();
            }
            wait_until("early announce", || lock(&log).len() == 2).await;
            let early = lock(&log)[1].clone();
            assert_eq!(early.event, Event::None);
            let gap = early.at - started;
            assert!(gap >= Duration::from_millis(1900), "{gap:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(lock(&log).len(), 2, "one early announce for many calls");
            assert_eq!(lock(&h.peers).len(), 2);
            h.announcer.stop(Duration::from_secs(2)).await;
        })
        .await;
    }

    #[tokio::test]
    async fn a_torrent_seeding_from_the_start_never_sends_completed() {
        bounded(async {
            let (url, log) = http_tracker(|_, _| {
                HttpReply::Body(encode_announce_response(&answer(600, &[]), true))
            })
            .await;
            let h = start(vec![vec![url.clone()]], 0);
            wait_until("started answered", || {
                matches!(status_of(&h, &url).last, Some(Ok(_)))
            })
            .await;
            h.announcer.completed();
            tokio::time::sleep(Duration::from_millis(300)).await;
            h.announcer.stop(Duration::from_secs(2)).await;
            assert_eq!(events(&log), [Event::Started, Event::Stopped]);
            assert_eq!(lock(&log)[0].left, 0);
        })
        .await;
    }

    #[tokio::test]
    async fn completed_before_started_is_answered_follows_it() {
        bounded(async {
            let (url, log) = http_tracker(|seen, _| {
                let body = encode_announce_response(&answer(600, &[]), true);
                if seen.event == Event::Started {
                    // Slow enough for `completed()` to come while `started` is in flight.
                    HttpReply::Delayed(Duration::from_millis(300), body)
                } else {
                    HttpReply::Body(body)
                }
            })
            .await;
            let h = start(vec![vec![url.clone()]], 1000);
            wait_until("started sent", || lock(&log).len() == 1).await;
            h.announcer.completed();
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(status_of(&h, &url).last, None, "started still in flight");
            assert!(status_of(&h, &url).updating);
            wait_until("completed", || lock(&log).len() == 2).await;
            assert_eq!(events(&log), [Event::Started, Event::Completed]);
            let seen = lock(&log).clone();
            let gap = seen[1].at - seen[0].at;
            assert!(gap >= Duration::from_millis(300), "{gap:?}");
            h.announcer.stop(Duration::from_secs(2)).await;
        })
        .await;
    }

    #[tokio::test]
    async fn no_tracker_at_all() {
        bounded(async {
            let h = start(vec![vec!["wss://only.example".to_owned()], vec![]], 1000);
            assert!(h.announcer.status().is_empty());
            h.announcer.want_peers();
            h.announcer.completed();
            let start = Instant::now();
            h.announcer.stop(Duration::from_secs(5)).await;
            assert!(start.elapsed() < Duration::from_millis(200));
        })
        .await;
    }

    #[test]
    fn usable_tiers_keep_known_schemes_once() {
        let s = |v: &[&str]| v.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
        let tiers = vec![
            s(&["wss://a", "udp://b:1", "HTTP://c/announce"]),
            s(&["wss://d"]),
            vec![],
            s(&[
                "udp://b:1",
                "https://e/announce",
                "magnet:?x",
                "http://c/announce",
            ]),
        ];
        assert_eq!(
            usable_tiers(tiers),
            [
                s(&["udp://b:1", "HTTP://c/announce"]),
                s(&["https://e/announce", "http://c/announce"])
            ]
        );
    }

    #[test]
    fn peers_lose_duplicates_ours_and_undialable() {
        let addr = |s: &str| Peer::from(s.parse::<SocketAddr>().expect("address"));
        let lan: IpAddr = "192.168.1.20".parse().expect("address");
        let peers = [
            addr("127.0.0.1:6881"),
            addr("[::1]:6881"),
            addr("192.168.1.20:6881"),
            addr("[::ffff:192.168.1.20]:6881"),
            addr("192.168.1.20:6882"),
            addr("[::ffff:10.0.0.1]:5000"),
            addr("10.0.0.1:5000"),
            addr("[2001:db8::1]:6881"),
            addr("224.0.0.1:5000"),
            addr("255.255.255.255:5000"),
            addr("[::]:5000"),
            addr("10.0.0.2:0"),
        ];
        assert_eq!(
            usable_peers(&peers, 6881, &[lan]),
            [
                "192.168.1.20:6882".parse::<SocketAddr>().expect("address"),
                "10.0.0.1:5000".parse().expect("address"),
                "[2001:db8::1]:6881".parse().expect("address"),
            ]
        );
    }

    proptest! {
        #[test]
        fn usable_peers_are_unique_dialable_and_not_ours(
            raw in proptest::collection::vec((any::<[u8; 4]>(), 6880u16..6884), 0..40),
            port in 6880u16..6884,
        ) {
            let own: IpAddr = "10.0.0.1".parse().expect("address");
            let peers: Vec<Peer> = raw
                .iter()
                .map(|(ip, p)| Peer::from(SocketAddr::from((*ip, *p))))
                .collect();
            let out = usable_peers(&peers, port, &[own]);
            let unique: HashSet<_> = out.iter().collect();
            prop_assert_eq!(unique.len(), out.len());
            for a in &out {
                prop_assert!(peers.iter().any(|p| p.addr == *a));
                prop_assert!(a.port() != 0 && !a.ip().is_unspecified());
                prop_assert!(!(a.port() == port && (a.ip().is_loopback() || a.ip() == own)));
            }
            // Every distinct dialable peer that is not ours is kept.
            let expected: HashSet<_> = peers
                .iter()
                .map(|p| p.addr)
                .filter(|a| {
                    let ip = a.ip();
                    a.port() != 0
                        && !ip.is_unspecified()
                        && !ip.is_multicast()
                        && ip != IpAddr::V4(Ipv4Addr::BROADCAST)
                        && !(a.port() == port && (ip.is_loopback() || ip == own))
                })
                .collect();
            prop_assert_eq!(unique.len(), expected.len());
        }

        #[test]
        fn below_stays_in_range(seed: u64, bound in 0usize..1000) {
            let mut random = SplitMix64::new(seed);
            let n = random.below(bound);
            prop_assert!(n < bound.max(1));
        }
    }

    #[test]
    fn intervals_are_clamped_so_schedules_cannot_spin_or_overflow() {
        let (min, max) = (Duration::from_secs(60), Duration::from_secs(3 * 3600));
        let mut zero = answer(0, &[]);
        clamp_intervals(&mut zero, min, max);
        assert_eq!(zero.interval, min);
        let mut huge = answer(u64::MAX, &[]);
        huge.min_interval = Some(Duration::from_secs(u64::MAX));
        clamp_intervals(&mut huge, min, max);
        assert_eq!((huge.interval, huge.min_interval), (max, Some(max)));
        // The schedule then computes deadlines without overflow.
        let now = Instant::now();
        let mut schedule = AnnounceSchedule::new(now);
        assert_eq!(schedule.poll_announce(now), Some(Event::Started));
        schedule.on_response(now, &huge);
        assert_eq!(schedule.poll_timeout(), Some(now + max));
        // The schedule itself does not clamp: an interval of 0 would be due at once.
        let mut raw = AnnounceSchedule::new(now);
        assert_eq!(raw.poll_announce(now), Some(Event::Started));
        raw.on_response(now, &answer(0, &[]));
        assert_eq!(raw.poll_timeout(), Some(now));
        // The default floor is a minute, the ceiling three hours.
        let config = TrackersConfig::default();
        assert_eq!((config.min_interval, config.max_interval), (min, max));
    }

    #[test]
    fn host_ips_of_http_urls() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert_eq!(
            http_host_ip("http://127.0.0.1:8000/announce"),
            ip("127.0.0.1")
        );
        assert_eq!(http_host_ip("https://[::1]:443/a?b"), ip("::1"));
        assert_eq!(http_host_ip("http://user:pw@10.0.0.1/x"), ip("10.0.0.1"));
        assert_eq!(http_host_ip("http://10.0.0.2?x=1"), ip("10.0.0.2"));
        assert_eq!(http_host_ip("http://tracker.example/announce"), None);
        assert_eq!(http_host_ip("no scheme"), None);
    }

    #[test]
    fn errors_of_the_same_kind() {
        let transport = |m: &str| TrackerError::Transport {
            message: m.to_owned(),
        };
        let failure = |r: &str| TrackerError::Failure {
            reason: r.to_owned(),
        };
        assert!(same_kind(&transport("left=1"), &transport("left=2")));
        assert!(same_kind(&failure("a"), &failure("a")));
        assert!(!same_kind(&failure("a"), &failure("b")));
        assert!(!same_kind(&failure("a"), &transport("a")));
        assert!(!same_kind(
            &TrackerError::HttpStatus { status: 404 },
            &TrackerError::HttpStatus { status: 500 }
        ));
    }

    #[test]
    fn schemes() {
        assert_eq!(Scheme::of("HTTPS://x"), Some(Scheme::Http));
        assert_eq!(Scheme::of("http://x"), Some(Scheme::Http));
        assert_eq!(Scheme::of("Udp://x:1"), Some(Scheme::Udp));
        assert_eq!(Scheme::of("wss://x"), None);
        assert_eq!(Scheme::of("ud"), None);
    }

    #[test]
    fn the_route_to_loopback_starts_at_loopback() {
        assert_eq!(
            route_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            AddressFamily::of(&"127.0.0.1:1".parse().expect("address")),
            AddressFamily::V4
        );
    }
}
