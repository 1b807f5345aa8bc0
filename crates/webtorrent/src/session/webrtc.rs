//! WebTorrent peers: WebRTC data channels signaled through WebSocket trackers.
//!
//! A [`Signaler`] runs one task per `ws://`/`wss://` tracker of a torrent. Each task
//! announces with a few offers made ahead of time (their SDP complete with candidates,
//! since WebTorrent does not trickle), answers the offers the tracker relays from other
//! peers, and completes its own offers with the answers that come back, matched by offer
//! id. Every data channel that opens exchanges BitTorrent handshakes like a TCP
//! connection, then joins the torrent as a peer of its own: the same picker, choker,
//! rate limits and connection limits as TCP peers. WebRTC peers have no address to share,
//! so they never appear in `ut_pex`.
//!
//! Hostile input stays contained: an SDP that does not parse or apply, an answer for an
//! offer we never made (or that expired), a channel that never opens or sends no
//! handshake, each ends that one attempt; at most [`MAX_SETUPS`] attempts run at once per
//! tracker, and the tracker connection itself reconnects with back-off.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use webtorrent_rtc::{DataStream, OfferPool, PendingOffer, Rtc};
use webtorrent_tracker::ws::{OfferId, Signal, WsOffer};
use webtorrent_tracker::{Event, WsEvent, WsStats, WsTracker};
use webtorrent_types::{InfoHashV1, PeerId};
use webtorrent_wire::Handshake;

use super::announce::{Progress, TrackerAnswer, TrackerStatus};
use super::stream::PeerStream;
use super::torrent::Command;
use super::{HANDSHAKE_TIMEOUT, RESERVED, Shared, read_handshake};

/// Offers sent with each announce (bittorrent-tracker relays each to one peer).
const OFFERS: usize = 5;

/// Connection attempts (answers and answered offers) under way at once, per tracker.
const MAX_SETUPS: usize = 16;

/// Offers waiting for an answer, per tracker: two announces' worth.
const POOL: usize = 2 * OFFERS;

/// How long an offer waits for its answer (bittorrent-tracker's client keeps 50 s).
const OFFER_TIMEOUT: Duration = Duration::from_secs(50);

/// The re-announce interval until a tracker gives one (bittorrent-tracker's is 120 s).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(120);

/// Bounds on a tracker's interval.
const MIN_INTERVAL: Duration = Duration::from_secs(30);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// The shortest gap between two announces with offers when peers are wanted early.
const WANT_GAP: Duration = Duration::from_secs(15);

/// The WebRTC side of a client, made when the first torrent with a WebSocket tracker
/// starts.
#[derive(Debug, Clone)]
pub(super) struct RtcContext {
    pub(super) rtc: Rtc,
    pub(super) ws: WsTracker,
}

/// What every tracker task of a torrent reads: set by the [`Signaler`] handle.
#[derive(Debug, Clone, Copy, Default)]
struct Signals {
    /// Bumped when the torrent wants peers soon.
    want: u64,
    /// Bumped when fresh offers must go out now.
    renew: u64,
    completed: bool,
    stop: bool,
}

/// What a signaler starts with.
pub(super) struct SignalSetup {
    pub(super) context: RtcContext,
    pub(super) shared: Arc<Shared>,
    /// The torrent's `ws://` and `wss://` trackers.
    pub(super) urls: Vec<String>,
    pub(super) info_hash: InfoHashV1,
    pub(super) progress: Arc<dyn Fn() -> Progress + Send + Sync>,
    pub(super) torrent: mpsc::WeakSender<Command>,
}

/// Everything a tracker task needs; shared by the tasks of one torrent.
struct TaskContext {
    context: RtcContext,
    shared: Arc<Shared>,
    info_hash: InfoHashV1,
    progress: Arc<dyn Fn() -> Progress + Send + Sync>,
    torrent: mpsc::WeakSender<Command>,
    status: Mutex<Vec<TrackerStatus>>,
}

impl TaskContext {
    fn update_status(&self, index: usize, update: impl FnOnce(&mut TrackerStatus)) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = status.get_mut(index) {
            update(entry);
        }
    }

    fn stats(&self, numwant: usize) -> WsStats {
        let progress = (self.progress)();
        WsStats {
            uploaded: progress.uploaded,
            downloaded: progress.downloaded,
            left: Some(progress.left),
            numwant: u32::try_from(numwant).ok(),
        }
    }
}

/// A torrent's WebSocket trackers: one task each. Dropping it aborts the tasks.
pub(super) struct Signaler {
    signals: watch::Sender<Signals>,
    context: Arc<TaskContext>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Signaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signaler")
            .field("trackers", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Signaler {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Signaler {
    /// Starts announcing to `setup.urls`; `None` when there are none.
    pub(super) fn start(setup: SignalSetup) -> Option<Self> {
        if setup.urls.is_empty() {
            return None;
        }
        let status = setup
            .urls
            .iter()
            .map(|url| TrackerStatus {
                url: url.clone(),
                tier: 0,
                last: None,
                warning: None,
                next_announce: None,
                updating: true,
                failures: 0,
            })
            .collect();
        let context = Arc::new(TaskContext {
            context: setup.context,
            shared: setup.shared,
            info_hash: setup.info_hash,
            progress: setup.progress,
            torrent: setup.torrent,
            status: Mutex::new(status),
        });
        let (signals, watcher) = watch::channel(Signals::default());
        let tasks = setup
            .urls
            .into_iter()
            .enumerate()
            .map(|(index, url)| {
                tokio::spawn(run_tracker(
                    index,
                    url,
                    Arc::clone(&context),
                    watcher.clone(),
                ))
            })
            .collect();
        Some(Self {
            signals,
            context,
            tasks,
        })
    }

    /// The download finished: `completed` goes to every tracker.
    pub(super) fn completed(&self) {
        self.signals.send_modify(|s| s.completed = true);
    }

    /// Fresh offers soon.
    pub(super) fn want_peers(&self) {
        self.signals.send_modify(|s| s.want += 1);
    }

    /// Fresh offers now: the WebRTC peers of a magnet's metadata phase were let go when
    /// the torrent started, and are best found again at once.
    pub(super) fn renew_offers(&self) {
        self.signals.send_modify(|s| s.renew += 1);
    }

    /// Every WebSocket tracker's state.
    pub(super) fn status(&self) -> Vec<TrackerStatus> {
        self.context
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends `stopped` to every tracker and waits for the tasks, at most `within`.
    pub(super) async fn stop(mut self, within: Duration) {
        self.signals.send_modify(|s| s.stop = true);
        let deadline = tokio::time::Instant::now() + within;
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// One tracker of one torrent, until the torrent stops.
async fn run_tracker(
    index: usize,
    url: String,
    cx: Arc<TaskContext>,
    mut signals: watch::Receiver<Signals>,
) {
    let peer_id = cx.shared.peer_id;
    let mut tracker = match cx.context.ws.add_torrent(&url, cx.info_hash, peer_id).await {
        Ok(tracker) => tracker,
        Err(e) => {
            tracing::warn!(url = %url, "WebSocket tracker not used: {e}");
            cx.update_status(index, |s| {
                s.last = Some(Err(e));
                s.updating = false;
            });
            return;
        }
    };
    let complete_at_start = (cx.progress)().left == 0;
    let mut pool = OfferPool::new(POOL);
    let mut setups: JoinSet<()> = JoinSet::new();
    let (answers_tx, mut answers) = mpsc::channel::<(PeerId, OfferId, String)>(MAX_SETUPS);
    let mut making: Option<JoinHandle<Vec<PendingOffer>>> = None;
    let mut next_event = Event::Started;
    let mut next_announce = tokio::time::Instant::now();
    let mut interval = DEFAULT_INTERVAL;
    let mut last_sent: Option<tokio::time::Instant> = None;
    let mut completed_sent = complete_at_start;
    let mut want_seen = 0;
    let mut renew_seen = 0;
    // Whether the connection was up before, or failed since the last announce: only then does
    // a connection call for fresh offers (the first one sends the queued announce as it is).
    let mut connected_before = false;
    let mut failed = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_announce), if making.is_none() => {
                let count = if cx.shared.has_room() { OFFERS } else { 0 };
                let rtc = cx.context.rtc.clone();
                making = Some(tokio::spawn(make_offers(rtc, count)));
                next_announce = tokio::time::Instant::now() + MAX_INTERVAL;
            }
            made = async { making.as_mut().expect("guarded").await }, if making.is_some() => {
                making = None;
                let now = Instant::now();
                pool.expire(now, OFFER_TIMEOUT);
                let mut offers = Vec::new();
                for offer in made.unwrap_or_default() {
                    let sdp = offer.sdp().to_owned();
                    match pool.insert(offer, now) {
                        Ok(id) => offers.push(WsOffer { offer_id: OfferId(id.0), offer: Signal::sdp("offer", &sdp) }),
                        Err(_) => break,
                    }
                }
                let event = std::mem::take(&mut next_event);
                let count = offers.len();
                if tracker.announce(cx.stats(count.max(1)), event, offers).is_err() {
                    break;
                }
                tracing::debug!(url = %url, offers = count, ?event, "WebSocket announce");
                let sent = tokio::time::Instant::now();
                last_sent = Some(sent);
                next_announce = sent + interval;
                cx.update_status(index, |s| {
                    s.updating = true;
                    s.next_announce = Some(next_announce.into_std());
                });
            }
            event = tracker.next_event() => {
                let Some(event) = event else { break };
                match event {
                    // A reconnection: fresh offers now.
                    WsEvent::Connected => {
                        if (connected_before || failed) && last_sent.is_some() && making.is_none() {
                            next_announce = tokio::time::Instant::now();
                        }
                        connected_before = true;
                        failed = false;
                    }
                    WsEvent::Announced(reply) => {
                        if let Some(given) = reply.interval {
                            interval = given.clamp(MIN_INTERVAL, MAX_INTERVAL);
                        }
                        cx.update_status(index, |s| {
                            s.last = Some(Ok(TrackerAnswer {
                                peers: 0,
                                seeders: reply.complete,
                                leechers: reply.incomplete,
                                at: Instant::now(),
                            }));
                            s.warning.clone_from(&reply.warning);
                            s.updating = false;
                            s.failures = 0;
                        });
                    }
                    WsEvent::Offer { peer_id: from, offer_id, offer } => {
                        if from == peer_id || setups.len() >= MAX_SETUPS || !cx.shared.has_room() {
                            continue;
                        }
                        let Some(sdp) = offer.sdp_text().filter(|_| offer.kind() == Some("offer")) else {
                            tracing::debug!(url = %url, "an offer without SDP ignored");
                            continue;
                        };
                        setups.spawn(answer_offer(
                            Arc::clone(&cx),
                            from,
                            offer_id,
                            sdp.to_owned(),
                            answers_tx.clone(),
                        ));
                    }
                    WsEvent::Answer { peer_id: from, offer_id, answer } => {
                        let Ok(offer) = pool.take(&webtorrent_rtc::OfferId(offer_id.0)) else {
                            tracing::debug!(url = %url, "an answer for no offer of ours ignored");
                            continue;
                        };
                        let Some(sdp) = answer.sdp_text().filter(|_| answer.kind() == Some("answer")) else {
                            continue;
                        };
                        if setups.len() >= MAX_SETUPS {
                            continue;
                        }
                        setups.spawn(complete_offer(Arc::clone(&cx), from, offer, sdp.to_owned()));
                    }
                    WsEvent::Error(e) => {
                        failed = true;
                        tracing::debug!(url = %url, "WebSocket tracker: {e}");
                        cx.update_status(index, |s| {
                            s.failures += 1;
                            s.updating = false;
                            s.last = Some(Err(e));
                        });
                    }
                    _ => {}
                }
            }
            Some((to, offer_id, sdp)) = answers.recv() => {
                if tracker.answer(to, offer_id, Signal::sdp("answer", &sdp)).is_err() {
                    break;
                }
            }
            Some(_) = setups.join_next(), if !setups.is_empty() => {}
            changed = signals.changed() => {
                let now = signals.borrow_and_update().to_owned();
                if changed.is_err() || now.stop {
                    if last_sent.is_some() {
                        let _ = tracker.announce(cx.stats(0), Event::Stopped, Vec::new());
                    }
                    break;
                }
                if now.completed && !completed_sent {
                    completed_sent = true;
                    if last_sent.is_some() {
                        let _ = tracker.announce(cx.stats(0), Event::Completed, Vec::new());
                    } else {
                        next_event = Event::Completed;
                    }
                }
                if now.renew != renew_seen {
                    renew_seen = now.renew;
                    if making.is_none() {
                        next_announce = tokio::time::Instant::now();
                    }
                }
                if now.want != want_seen {
                    want_seen = now.want;
                    let soonest = last_sent.map_or_else(tokio::time::Instant::now, |at| at + WANT_GAP);
                    if making.is_none() && soonest < next_announce {
                        next_announce = soonest;
                    }
                }
            }
        }
    }
    setups.abort_all();
    if let Some(making) = making {
        making.abort();
    }
}

/// Makes `count` offers at once; those that fail are left out.
async fn make_offers(rtc: Rtc, count: usize) -> Vec<PendingOffer> {
    let mut set = JoinSet::new();
    for _ in 0..count {
        let rtc = rtc.clone();
        set.spawn(async move { rtc.create_offer().await });
    }
    let mut offers = Vec::with_capacity(count);
    while let Some(made) = set.join_next().await {
        match made {
            Ok(Ok(offer)) => offers.push(offer),
            Ok(Err(e)) => tracing::debug!("WebRTC offer not made: {e}"),
            Err(_) => {}
        }
    }
    offers
}

/// Answers a remote offer, hands the answer to the tracker task, and waits for the
/// channel.
async fn answer_offer(
    cx: Arc<TaskContext>,
    from: PeerId,
    offer_id: OfferId,
    sdp: String,
    answers: mpsc::Sender<(PeerId, OfferId, String)>,
) {
    let pending = match cx.context.rtc.accept_offer(&sdp).await {
        Ok(pending) => pending,
        Err(e) => {
            tracing::debug!(peer = %from, "WebRTC offer refused: {e}");
            return;
        }
    };
    if answers
        .send((from, offer_id, pending.sdp().to_owned()))
        .await
        .is_err()
    {
        return;
    }
    match pending.connect().await {
        Ok(stream) => join(&cx, stream, from, false).await,
        Err(e) => tracing::debug!(peer = %from, "WebRTC connection (answered) failed: {e}"),
    }
}

/// Completes one of our offers with its answer.
async fn complete_offer(cx: Arc<TaskContext>, from: PeerId, offer: PendingOffer, sdp: String) {
    match offer.accept_answer(&sdp).await {
        Ok(stream) => join(&cx, stream, from, true).await,
        Err(e) => tracing::debug!(peer = %from, "WebRTC connection (offered) failed: {e}"),
    }
}

/// Exchanges BitTorrent handshakes over an open channel, then gives the peer to the
/// torrent with a connection slot.
async fn join(cx: &TaskContext, mut stream: DataStream, from: PeerId, offered: bool) {
    let ours = Handshake::new(RESERVED, cx.info_hash, cx.shared.peer_id);
    let exchange = async {
        stream.write_all(&ours.to_bytes()).await.ok()?;
        read_handshake(&mut stream).await
    };
    let theirs = match tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange).await {
        Ok(Some(theirs)) if theirs.info_hash == cx.info_hash => theirs,
        Ok(Some(_)) => {
            tracing::debug!(peer = %from, "WebRTC peer refused: a handshake for another torrent");
            return;
        }
        _ => {
            tracing::debug!(peer = %from, "WebRTC peer refused: no handshake in time");
            return;
        }
    };
    let Some(torrent) = cx.torrent.upgrade() else {
        return;
    };
    if !cx.shared.reserve_connection() {
        tracing::debug!(peer = %from, "WebRTC peer refused: the client has its fill of peers");
        return;
    }
    tracing::debug!(peer = %theirs.peer_id, offered, "WebRTC peer connected");
    let command = Command::Connected {
        stream: PeerStream::Rtc(Box::new(stream)),
        // A data channel has no address of its own to show or share.
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        handshake: theirs,
        outbound: offered,
    };
    if torrent.send(command).await.is_err() {
        cx.shared.release_connection();
    }
}

/// The `ws://` and `wss://` URLs of announce tiers, each once, in order.
pub(super) fn ws_urls(tiers: &[Vec<String>]) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for url in tiers.iter().flatten() {
        let lower = url.to_ascii_lowercase();
        if (lower.starts_with("ws://") || lower.starts_with("wss://")) && !urls.contains(url) {
            urls.push(url.clone());
        }
    }
    urls
}

/// The WebRTC settings of a client listening on `listen`: a loopback listener binds
/// WebRTC to the same address, so that loopback candidates are gathered (binding every
/// interface leaves loopback out); a specific address binds that one.
pub(super) fn rtc_config(listen: SocketAddr, stun: &[String]) -> webtorrent_rtc::RtcConfig {
    let mut config = if listen.ip().is_loopback() {
        webtorrent_rtc::RtcConfig::loopback()
    } else {
        webtorrent_rtc::RtcConfig::default()
    };
    if !listen.ip().is_unspecified() {
        config.bind_addrs = vec![SocketAddr::new(listen.ip(), 0)];
    }
    config.ice_servers = stun
        .iter()
        .map(|url| webtorrent_rtc::IceServer::stun(url.clone()))
        .collect();
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls_are_the_websocket_trackers_once_in_order() {
        let tiers = vec![
            vec!["udp://a:1".to_owned(), "wss://b/".to_owned()],
            vec!["WS://c:8000".to_owned(), "wss://b/".to_owned()],
            vec!["http://d/announce".to_owned()],
        ];
        assert_eq!(ws_urls(&tiers), ["wss://b/", "WS://c:8000"]);
    }

    #[test]
    fn rtc_binds_the_listen_address_when_it_is_specific() {
        let loopback = rtc_config("127.0.0.1:6881".parse().expect("addr"), &[]);
        let expected: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        assert_eq!(loopback.bind_addrs, [expected]);
        assert!(!loopback.mdns);
        let any = rtc_config(
            "0.0.0.0:6881".parse().expect("addr"),
            &["stun:s:3478".to_owned()],
        );
        assert_eq!(
            any.bind_addrs,
            webtorrent_rtc::RtcConfig::default().bind_addrs
        );
        assert_eq!(any.ice_servers.len(), 1);
    }
}
