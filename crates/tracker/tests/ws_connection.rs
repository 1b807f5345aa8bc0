//! `WsConnection`, the sans-IO state of one WebSocket tracker connection, on a virtual
//! clock: queued announces, routing of offers and answers, scrapes in order, timeouts,
//! failures, disconnection, back-off and re-announce.

use std::time::{Duration, Instant};

use webtorrent_tracker::ws::{
    self, ClientMessage, OfferId, ServerMessage, Signal, WsAnnounce, WsAnnounceReply, WsAnswer,
    WsConfig, WsConnection, WsEvent, WsOffer, WsOutput,
};
use webtorrent_tracker::{Event, ScrapeResponse, ScrapeStats, TrackerError};
use webtorrent_types::{InfoHashV1, PeerId};

const A: InfoHashV1 = InfoHashV1([0xaa; 20]);
const B: InfoHashV1 = InfoHashV1([0xbb; 20]);
const ME: PeerId = PeerId([b'm'; 20]);
const THEM: PeerId = PeerId([b't'; 20]);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config() -> WsConfig {
    WsConfig::default().with_reconnect(secs(10), secs(60), secs(5))
}

/// Everything the machine wants done, split into frames sent and other outputs.
fn drain(c: &mut WsConnection) -> (Vec<ClientMessage>, Vec<WsOutput>) {
    let (mut sent, mut other) = (Vec::new(), Vec::new());
    while let Some(o) = c.poll_output() {
        match o {
            WsOutput::Send(frame) => sent.push(ws::decode_client(&frame).expect("our frame")),
            o => other.push(o),
        }
    }
    (sent, other)
}

fn announce(h: InfoHashV1, event: Event, offers: &[u8]) -> WsAnnounce {
    let mut a = WsAnnounce::new(h, ME);
    a.event = event;
    a.left = Some(1);
    a.offers = offers
        .iter()
        .map(|&b| WsOffer {
            offer_id: OfferId([b; 20]),
            offer: Signal::sdp("offer", "o"),
        })
        .collect();
    a
}

fn frame(m: &ServerMessage) -> String {
    ws::encode_server(m)
}

fn relayed_answer(h: InfoHashV1, from: PeerId, offer: u8) -> String {
    frame(&ServerMessage::Answer {
        info_hash: h,
        peer_id: from,
        offer_id: OfferId([offer; 20]),
        answer: Signal::sdp("answer", "a"),
    })
}

/// A connection carrying A and B, connected at `t0`, outputs drained.
fn connected(t0: Instant) -> WsConnection {
    let mut c = WsConnection::new(config());
    c.add_torrent(A, ME).expect("add A");
    c.add_torrent(B, ME).expect("add B");
    c.on_connected(t0);
    drain(&mut c);
    c
}

#[test]
fn announces_wait_for_the_connection_and_the_latest_wins() {
    let t0 = Instant::now();
    let mut c = WsConnection::new(config());
    // Nothing to serve: no reason to connect.
    assert!(!c.wants_connect(t0));
    c.add_torrent(A, ME).expect("add");
    assert_eq!(c.add_torrent(A, THEM), Err(TrackerError::AlreadyAnnounced));
    assert!(c.wants_connect(t0));
    c.announce(t0, announce(A, Event::Started, &[1]));
    c.announce(t0, announce(A, Event::Started, &[2]));
    // An answer without a connection has no offer to answer any more.
    c.answer(WsAnswer {
        info_hash: A,
        peer_id: ME,
        to_peer_id: THEM,
        offer_id: OfferId([9; 20]),
        answer: Signal::sdp("answer", "a"),
        trackerid: None,
    });
    assert_eq!(drain(&mut c), (vec![], vec![]));
    c.on_connected(t0);
    let (sent, other) = drain(&mut c);
    assert_eq!(other, [WsOutput::Event(A, WsEvent::Connected)]);
    assert_eq!(
        sent,
        [ClientMessage::Announce(announce(A, Event::Started, &[2]))]
    );
}

#[test]
fn offers_and_answers_are_routed() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.announce(t0, announce(A, Event::Started, &[1, 2]));
    drain(&mut c);

    // An offer for B from another peer goes to B; one for an unknown torrent and
    // an echo of our own peer id go nowhere.
    let offer = |h, from| {
        frame(&ServerMessage::Offer {
            info_hash: h,
            peer_id: from,
            offer_id: OfferId([7; 20]),
            offer: Signal::sdp("offer", "x"),
        })
    };
    c.on_frame(t0, &offer(B, THEM));
    c.on_frame(t0, &offer(InfoHashV1([0xcc; 20]), THEM));
    c.on_frame(t0, &offer(A, ME));
    let (_, out) = drain(&mut c);
    assert_eq!(
        out,
        [WsOutput::Event(
            B,
            WsEvent::Offer {
                peer_id: THEM,
                offer_id: OfferId([7; 20]),
                offer: Signal::sdp("offer", "x"),
            }
        )]
    );

    // Answers: by offer id, to the torrent that made the offer, once.
    c.on_frame(t0, &relayed_answer(B, THEM, 1)); // offer 1 is A's
    c.on_frame(t0, &relayed_answer(A, THEM, 3)); // no such offer
    c.on_frame(t0, &relayed_answer(A, THEM, 1));
    c.on_frame(t0, &relayed_answer(A, THEM, 1)); // already answered
    let (_, out) = drain(&mut c);
    assert_eq!(
        out,
        [WsOutput::Event(
            A,
            WsEvent::Answer {
                peer_id: THEM,
                offer_id: OfferId([1; 20]),
                answer: Signal::sdp("answer", "a"),
            }
        )]
    );

    // Offer 2 expires after the offer timeout: a late answer is dropped.
    assert_eq!(c.poll_timeout(), Some(t0 + secs(50)));
    c.handle_timeout(t0 + secs(50));
    assert_eq!(c.poll_timeout(), None);
    c.on_frame(t0 + secs(51), &relayed_answer(A, THEM, 2));
    assert_eq!(drain(&mut c), (vec![], vec![]));
}

#[test]
fn answers_carry_the_tracker_id_and_replies_go_to_their_torrent() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    let reply = WsAnnounceReply {
        interval: Some(secs(120)),
        complete: Some(3),
        incomplete: Some(4),
        tracker_id: Some("tid".into()),
        ..WsAnnounceReply::default()
    };
    c.on_frame(
        t0,
        &frame(&ServerMessage::Announced {
            info_hash: B,
            reply: reply.clone(),
        }),
    );
    assert_eq!(
        drain(&mut c).1,
        [WsOutput::Event(B, WsEvent::Announced(reply))]
    );
    c.announce(t0, announce(B, Event::None, &[]));
    c.answer(WsAnswer {
        info_hash: B,
        peer_id: ME,
        to_peer_id: THEM,
        offer_id: OfferId([5; 20]),
        answer: Signal::sdp("answer", "a"),
        trackerid: None,
    });
    let (sent, _) = drain(&mut c);
    let ids: Vec<_> = sent
        .iter()
        .map(|m| match m {
            ClientMessage::Announce(a) => a.trackerid.clone(),
            ClientMessage::Answer(a) => a.trackerid.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [Some("tid".to_owned()), Some("tid".to_owned())]);
}

#[test]
fn failures_go_to_their_torrent_or_to_all() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    let failure = |info_hash| {
        frame(&ServerMessage::Failure {
            info_hash,
            scrape: false,
            reason: "no".into(),
        })
    };
    let no = || {
        WsEvent::Error(TrackerError::Failure {
            reason: "no".into(),
        })
    };
    c.on_frame(t0, &failure(Some(B)));
    assert_eq!(drain(&mut c).1, [WsOutput::Event(B, no())]);
    c.on_frame(t0, &failure(None));
    assert_eq!(
        drain(&mut c).1,
        [WsOutput::Event(A, no()), WsOutput::Event(B, no())]
    );
    // A frame that does not decode: every torrent hears of it, the connection stays.
    c.on_frame(t0, r#"{"action":"announce","info_hash":"short"}"#);
    let (_, out) = drain(&mut c);
    assert_eq!(out.len(), 2);
    assert!(
        out.iter().all(|o| matches!(
            o,
            WsOutput::Event(_, WsEvent::Error(TrackerError::Frame(_)))
        )),
        "{out:?}"
    );
    assert!(c.is_connected());
}

#[test]
fn scrapes_are_answered_in_order_and_time_out() {
    let t0 = Instant::now();
    let mut c = WsConnection::new(config().with_scrape_timeout(secs(15)));
    // Asked before the connection: sent when it comes up.
    let first = c.scrape(t0, vec![A]).expect("scrape");
    assert!(c.wants_connect(t0));
    assert_eq!(drain(&mut c), (vec![], vec![]));
    c.on_connected(t0 + secs(1));
    let second = c.scrape(t0 + secs(1), vec![A, B]).expect("scrape");
    let third = c.scrape(t0 + secs(2), vec![B]).expect("scrape");
    let (sent, _) = drain(&mut c);
    assert_eq!(
        sent,
        [
            ClientMessage::Scrape(vec![A]),
            ClientMessage::Scrape(vec![A, B]),
            ClientMessage::Scrape(vec![B])
        ]
    );
    let files = ScrapeResponse {
        files: vec![(A, ScrapeStats::default())],
    };
    c.on_frame(t0 + secs(3), &frame(&ServerMessage::Scraped(files.clone())));
    c.on_frame(
        t0 + secs(3),
        &frame(&ServerMessage::Failure {
            info_hash: None,
            scrape: true,
            reason: "busy".into(),
        }),
    );
    assert_eq!(
        drain(&mut c).1,
        [
            WsOutput::Scraped(first, Ok(files)),
            WsOutput::Scraped(
                second,
                Err(TrackerError::Failure {
                    reason: "busy".into()
                })
            )
        ]
    );
    // The third is never answered.
    assert_eq!(c.poll_timeout(), Some(t0 + secs(17)));
    c.handle_timeout(t0 + secs(17));
    assert_eq!(
        drain(&mut c).1,
        [WsOutput::Scraped(
            third,
            Err(TrackerError::Timeout {
                attempts: 1,
                waited: secs(15)
            })
        )]
    );
    assert!(c.is_idle());
    assert_eq!(
        c.scrape(t0, vec![A; ws::MAX_SCRAPE_HASHES + 1]),
        Err(TrackerError::TooManyInfoHashes {
            count: ws::MAX_SCRAPE_HASHES + 1,
            limit: ws::MAX_SCRAPE_HASHES
        })
    );
}

#[test]
fn disconnection_backs_off_and_reconnection_reannounces() {
    let t0 = Instant::now();
    let mut c = connected(t0);
    c.announce(t0, announce(A, Event::Started, &[1]));
    c.announce(t0, announce(B, Event::Stopped, &[]));
    let scrape = c.scrape(t0, vec![A]).expect("scrape");
    drain(&mut c);

    let lost = TrackerError::Transport {
        message: "gone".into(),
    };
    c.on_disconnected(t0, &lost, 0);
    assert_eq!(
        drain(&mut c).1,
        [
            WsOutput::Event(A, WsEvent::Error(lost.clone())),
            WsOutput::Event(B, WsEvent::Error(lost.clone())),
            WsOutput::Scraped(scrape, Err(lost.clone())),
        ]
    );
    // 10 s, then 20 s, then 40 s between attempts (no jitter drawn).
    assert!(!c.wants_connect(t0 + secs(9)));
    assert_eq!(c.poll_timeout(), Some(t0 + secs(10)));
    assert!(c.wants_connect(t0 + secs(10)));
    c.on_disconnected(t0 + secs(10), &lost, 0);
    assert_eq!(c.poll_timeout(), Some(t0 + secs(30)));
    c.on_disconnected(t0 + secs(30), &lost, u64::MAX);
    // 40 s and the whole 5 s of jitter.
    assert_eq!(c.poll_timeout(), Some(t0 + secs(75)));
    drain(&mut c);

    // Back: A is announced again as `started` without its stale offer; B had stopped.
    c.on_connected(t0 + secs(75));
    let (sent, out) = drain(&mut c);
    assert_eq!(
        out,
        [
            WsOutput::Event(A, WsEvent::Connected),
            WsOutput::Event(B, WsEvent::Connected)
        ]
    );
    assert_eq!(
        sent,
        [ClientMessage::Announce(announce(A, Event::Started, &[]))]
    );
    // The old offer's answer no longer routes.
    c.on_frame(t0 + secs(76), &relayed_answer(A, THEM, 1));
    // That valid frame resets the back-off: the next failure waits 10 s again.
    c.on_disconnected(t0 + secs(80), &lost, 0);
    assert_eq!(c.poll_timeout(), Some(t0 + secs(90)));
    assert!(
        !drain(&mut c)
            .1
            .iter()
            .any(|o| matches!(o, WsOutput::Event(_, WsEvent::Answer { .. })))
    );

    // Removing the torrents leaves nothing to connect for.
    c.remove_torrent(A);
    c.remove_torrent(B);
    assert!(c.is_idle() && !c.wants_connect(t0 + secs(100)));
}
