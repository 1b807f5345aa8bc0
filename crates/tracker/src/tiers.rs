//! BEP 12 tracker tiers and announce scheduling, without I/O.

use std::time::{Duration, Instant};

use crate::{AnnounceResponse, Event};

/// Trackers in BEP 12 order.
///
/// Each tier is shuffled once, with the caller's random source. Trackers are
/// tried in order: [`current`](Self::current) is the one to announce to;
/// after [`success`](Self::success) it moves to the front of its tier and
/// the next round starts from the first tier again; after
/// [`failure`](Self::failure) the next tracker of the tier is tried, then
/// the next tier.
///
/// ```
/// use webtorrent_tracker::TierList;
///
/// let tiers = vec![vec!["udp://a".to_owned(), "udp://b".to_owned()], vec!["http://c".to_owned()]];
/// // A "random" source that always picks the last index never swaps: the order stays.
/// let mut list = TierList::new(tiers, |bound| bound - 1);
/// assert_eq!(list.current(), Some("udp://a"));
/// assert!(!list.failure());       // a failed: try b
/// assert_eq!(list.current(), Some("udp://b"));
/// list.success();                 // b answered: b moves to the front of tier 0
/// assert_eq!(list.tiers()[0], ["udp://b", "udp://a"]);
/// assert_eq!(list.current(), Some("udp://b"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierList {
    tiers: Vec<Vec<String>>,
    tier: usize,
    index: usize,
}

impl TierList {
    /// Builds the list, dropping empty tiers and shuffling each tier with
    /// `random(bound)`, which must return a number in `0..bound` (values out
    /// of range are reduced modulo `bound`).
    #[must_use]
    pub fn new(tiers: Vec<Vec<String>>, mut random: impl FnMut(usize) -> usize) -> Self {
        let mut tiers: Vec<Vec<String>> = tiers.into_iter().filter(|t| !t.is_empty()).collect();
        for tier in &mut tiers {
            // Fisher-Yates.
            for i in (1..tier.len()).rev() {
                let j = random(i + 1) % (i + 1);
                tier.swap(i, j);
            }
        }
        Self {
            tiers,
            tier: 0,
            index: 0,
        }
    }

    /// The tiers in their current order.
    #[must_use]
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// Whether there is no tracker at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// The tracker to announce to now.
    #[must_use]
    pub fn current(&self) -> Option<&str> {
        self.tiers
            .get(self.tier)
            .and_then(|t| t.get(self.index))
            .map(String::as_str)
    }

    /// The current tracker answered: it moves to the front of its tier and
    /// the next announce starts from the first tier.
    pub fn success(&mut self) {
        if let Some(tier) = self.tiers.get_mut(self.tier)
            && self.index < tier.len()
        {
            let url = tier.remove(self.index);
            tier.insert(0, url);
        }
        self.tier = 0;
        self.index = 0;
    }

    /// The current tracker failed: move on to the next one. Returns `true`
    /// when that was the last tracker of the last tier, so that every
    /// tracker has failed in this round; the list then starts over from the
    /// first tier.
    pub fn failure(&mut self) -> bool {
        let Some(tier) = self.tiers.get(self.tier) else {
            return true;
        };
        self.index += 1;
        if self.index < tier.len() {
            return false;
        }
        self.index = 0;
        self.tier += 1;
        if self.tier < self.tiers.len() {
            return false;
        }
        self.tier = 0;
        true
    }
}

/// When to announce, and with which event, for one torrent's tracker list.
///
/// The first announce is `started`; `completed` is sent once, when
/// [`completed`](Self::completed) is called on a torrent that was
/// downloading; `stopped` goes out after [`stop`](Self::stop) (only if a
/// `started` was acknowledged). Re-announces follow the tracker's
/// `interval`; early announces ([`announce_soon`](Self::announce_soon))
/// wait for its `min interval`. After a failure the same event is retried
/// with exponential back-off (from 15 s up to 30 min).
///
/// ```
/// use std::time::{Duration, Instant};
/// use webtorrent_tracker::{AnnounceResponse, AnnounceSchedule, Event};
///
/// let t0 = Instant::now();
/// let mut s = AnnounceSchedule::new(t0);
/// assert_eq!(s.poll_announce(t0), Some(Event::Started));
/// let resp = AnnounceResponse { interval: Duration::from_secs(600), min_interval: None,
///     tracker_id: None, complete: None, incomplete: None, peers: vec![], warning: None };
/// s.on_response(t0, &resp);
/// assert_eq!(s.poll_announce(t0), None);
/// assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(600)));
/// assert_eq!(s.poll_announce(t0 + Duration::from_secs(600)), Some(Event::None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceSchedule {
    started: bool,
    completed_pending: bool,
    completed_sent: bool,
    stopping: bool,
    done: bool,
    in_flight: Option<Event>,
    next_at: Instant,
    last_announce: Option<Instant>,
    min_interval: Duration,
    failures: u32,
}

const RETRY_BASE: Duration = Duration::from_secs(15);
const RETRY_MAX: Duration = Duration::from_secs(30 * 60);

impl AnnounceSchedule {
    /// A schedule whose `started` announce is due at `now`.
    #[must_use]
    pub const fn new(now: Instant) -> Self {
        Self {
            started: false,
            completed_pending: false,
            completed_sent: false,
            stopping: false,
            done: false,
            in_flight: None,
            next_at: now,
            last_announce: None,
            min_interval: Duration::ZERO,
            failures: 0,
        }
    }

    fn event(&self) -> Event {
        if self.stopping {
            Event::Stopped
        } else if !self.started {
            Event::Started
        } else if self.completed_pending {
            Event::Completed
        } else {
            Event::None
        }
    }

    /// The event to announce now, if an announce is due and none is in
    /// flight. The caller sends it, then reports
    /// [`on_response`](Self::on_response) or [`on_failure`](Self::on_failure).
    pub fn poll_announce(&mut self, now: Instant) -> Option<Event> {
        if self.done || self.in_flight.is_some() || now < self.next_at {
            return None;
        }
        let event = self.event();
        self.in_flight = Some(event);
        self.last_announce = Some(now);
        Some(event)
    }

    /// When the next announce is due; `None` while one is in flight or
    /// after the `stopped` announce.
    #[must_use]
    pub const fn poll_timeout(&self) -> Option<Instant> {
        if self.done || self.in_flight.is_some() {
            None
        } else {
            Some(self.next_at)
        }
    }

    /// The announce in flight was answered.
    pub fn on_response(&mut self, now: Instant, response: &AnnounceResponse) {
        let Some(event) = self.in_flight.take() else {
            return;
        };
        self.failures = 0;
        // `min interval` counts from the answer: the tracker received the announce before it
        // answered, so the next one reaches it at least that long after, however slow the
        // request was on its way.
        self.last_announce = Some(now);
        self.min_interval = response.min_interval.unwrap_or(Duration::ZERO);
        let interval = response.interval.max(self.min_interval);
        self.next_at = now + interval;
        match event {
            Event::Started => self.started = true,
            Event::Completed => {
                self.completed_pending = false;
                self.completed_sent = true;
            }
            Event::Stopped => self.done = true,
            _ => {}
        }
        if self.stopping && !self.done {
            // stop() came while another announce was in flight.
            self.next_at = now;
        }
    }

    /// The announce in flight failed (every tracker of the list, or the one
    /// tried): retry the same event after a back-off. A failed `stopped`
    /// announce is not retried.
    pub fn on_failure(&mut self, now: Instant) {
        let Some(event) = self.in_flight.take() else {
            return;
        };
        if event == Event::Stopped {
            self.done = true;
            return;
        }
        let backoff = RETRY_BASE
            .saturating_mul(1u32.checked_shl(self.failures.min(16)).unwrap_or(u32::MAX))
            .min(RETRY_MAX);
        self.failures = self.failures.saturating_add(1);
        self.next_at = now + backoff;
    }

    /// The download finished: a `completed` announce becomes due (once per
    /// schedule), as soon as `min interval` allows.
    pub fn completed(&mut self, now: Instant) {
        if self.completed_sent || self.completed_pending || self.stopping {
            return;
        }
        self.completed_pending = true;
        if self.started {
            self.announce_soon(now);
        }
    }

    /// Asks for an early announce (e.g. to find more peers), no sooner than
    /// `min interval` after the last one.
    pub fn announce_soon(&mut self, now: Instant) {
        let earliest = self
            .last_announce
            .map_or(now, |last| (last + self.min_interval).max(now));
        self.next_at = self.next_at.min(earliest);
    }

    /// The torrent stops: a `stopped` announce becomes due at once if a
    /// `started` one was acknowledged; otherwise the schedule is finished.
    pub fn stop(&mut self, now: Instant) {
        if self.stopping || self.done {
            return;
        }
        self.stopping = true;
        if !self.started && self.in_flight.is_none() {
            self.done = true;
            return;
        }
        self.next_at = now;
    }

    /// Whether the schedule has nothing more to announce (after `stopped`).
    #[must_use]
    pub const fn is_finished(&self) -> bool {
        self.done
    }
}
