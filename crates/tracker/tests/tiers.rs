//! BEP 12 tiers and announce scheduling on a virtual clock.

use std::time::{Duration, Instant};

use webtorrent_tracker::{AnnounceResponse, AnnounceSchedule, Event, TierList};

fn tiers() -> Vec<Vec<String>> {
    vec![
        vec!["a1".into(), "a2".into(), "a3".into()],
        vec![],
        vec!["b1".into()],
    ]
}

#[test]
fn shuffles_each_tier_with_the_callers_rng() {
    // Always pick index 0: Fisher-Yates rotates [a1 a2 a3] to [a2 a3 a1].
    let list = TierList::new(tiers(), |_| 0);
    assert_eq!(list.tiers(), [vec!["a2", "a3", "a1"], vec!["b1"]]);
    // Picking `bound - 1` is the identity; out-of-range values are reduced.
    let list = TierList::new(tiers(), |bound| bound - 1 + bound * 7);
    assert_eq!(list.tiers(), [vec!["a1", "a2", "a3"], vec!["b1"]]);
}

#[test]
fn failures_walk_tiers_and_success_promotes() {
    let mut list = TierList::new(tiers(), |b| b - 1);
    let mut tried = Vec::new();
    loop {
        tried.push(list.current().expect("tracker").to_owned());
        if list.failure() {
            break;
        }
    }
    assert_eq!(tried, ["a1", "a2", "a3", "b1"]);
    assert_eq!(list.current(), Some("a1"), "a new round starts over");
    assert!(!list.failure());
    assert!(!list.failure());
    assert_eq!(list.current(), Some("a3"));
    list.success();
    assert_eq!(list.tiers()[0], ["a3", "a1", "a2"]);
    assert_eq!(list.current(), Some("a3"));
    // A success in a later tier promotes within that tier only.
    for _ in 0..3 {
        assert!(!list.failure());
    }
    assert_eq!(list.current(), Some("b1"));
    list.success();
    assert_eq!(list.tiers()[0], ["a3", "a1", "a2"]);
    assert_eq!(list.current(), Some("a3"));

    let mut empty = TierList::new(vec![vec![]], |_| 0);
    assert!(empty.is_empty());
    assert_eq!(empty.current(), None);
    assert!(empty.failure());
    empty.success();
}

fn response(interval: u64, min: Option<u64>) -> AnnounceResponse {
    AnnounceResponse {
        interval: Duration::from_secs(interval),
        min_interval: min.map(Duration::from_secs),
        tracker_id: None,
        complete: None,
        incomplete: None,
        peers: vec![],
        warning: None,
    }
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn event_sequence_started_completed_stopped() {
    let t0 = Instant::now();
    let mut s = AnnounceSchedule::new(t0);
    assert_eq!(s.poll_announce(t0), Some(Event::Started));
    assert_eq!(s.poll_announce(t0), None, "one in flight at a time");
    assert_eq!(s.poll_timeout(), None);
    s.on_response(t0, &response(1800, Some(300)));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(1800)));

    // Completion at 100 s: due at the min interval (300 s after the last).
    s.completed(t0 + secs(100));
    assert_eq!(s.poll_announce(t0 + secs(100)), None);
    assert_eq!(s.poll_timeout(), Some(t0 + secs(300)));
    assert_eq!(s.poll_announce(t0 + secs(300)), Some(Event::Completed));
    s.on_response(t0 + secs(300), &response(1800, None));
    s.completed(t0 + secs(301));
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + secs(2100)),
        "completed is sent once"
    );
    assert_eq!(s.poll_announce(t0 + secs(2100)), Some(Event::None));
    s.on_response(t0 + secs(2100), &response(1800, None));

    s.stop(t0 + secs(2200));
    assert_eq!(s.poll_announce(t0 + secs(2200)), Some(Event::Stopped));
    s.on_response(t0 + secs(2200), &response(1800, None));
    assert!(s.is_finished());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.poll_announce(t0 + secs(9999)), None);
}

#[test]
fn failures_back_off_and_keep_the_event() {
    let t0 = Instant::now();
    let mut s = AnnounceSchedule::new(t0);
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..10 {
        assert_eq!(s.poll_announce(now), Some(Event::Started));
        s.on_failure(now);
        let next = s.poll_timeout().expect("retry");
        waits.push((next - now).as_secs());
        now = next;
    }
    assert_eq!(waits, [15, 30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
    assert_eq!(s.poll_announce(now), Some(Event::Started));
    s.on_response(now, &response(60, None));
    assert_eq!(s.poll_timeout(), Some(now + secs(60)));
}

#[test]
fn stop_before_started_or_during_flight() {
    let t0 = Instant::now();
    let mut s = AnnounceSchedule::new(t0);
    s.stop(t0);
    assert!(s.is_finished());
    assert_eq!(s.poll_announce(t0), None);

    let mut s = AnnounceSchedule::new(t0);
    assert_eq!(s.poll_announce(t0), Some(Event::Started));
    s.stop(t0 + secs(1));
    s.on_response(t0 + secs(2), &response(1800, None));
    assert_eq!(s.poll_announce(t0 + secs(2)), Some(Event::Stopped));
    s.on_failure(t0 + secs(3));
    assert!(s.is_finished(), "a failed stopped is not retried");
}

#[test]
fn announce_soon_respects_min_interval_and_interval_floor() {
    let t0 = Instant::now();
    let mut s = AnnounceSchedule::new(t0);
    s.poll_announce(t0);
    // An interval below the min interval is raised to it.
    s.on_response(t0, &response(10, Some(120)));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(120)));
    s.announce_soon(t0 + secs(5));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(120)));
    s.poll_announce(t0 + secs(120));
    s.on_response(t0 + secs(120), &response(1800, Some(60)));
    s.announce_soon(t0 + secs(130));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(180)));
    s.announce_soon(t0 + secs(500));
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + secs(180)),
        "never later than already due"
    );
}

#[test]
fn min_interval_counts_from_the_answer() {
    let t0 = Instant::now();
    let mut s = AnnounceSchedule::new(t0);
    assert_eq!(s.poll_announce(t0), Some(Event::Started));
    // A slow tracker: the answer comes 3 s after the request left.
    s.on_response(t0 + secs(3), &response(1800, Some(10)));
    s.announce_soon(t0 + secs(5));
    assert_eq!(s.poll_timeout(), Some(t0 + secs(13)));
}
