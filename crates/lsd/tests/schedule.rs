//! Property tests of the announce schedule under random adds, removes and waits, with
//! a caller that polls at every timeout.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use webtorrent_lsd::{ANNOUNCE_INTERVAL, Announce, Config, Lsd, MIN_SEND_INTERVAL, Output};
use webtorrent_types::InfoHashV1;

#[derive(Clone, Debug)]
enum Step {
    Add(u8),
    Remove(u8),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..60).prop_map(Step::Add),
        (0u8..60).prop_map(Step::Remove),
        (0u64..900).prop_map(Step::Wait),
    ]
}

/// The simulated caller: a clock, the state machine, and what was sent when.
struct Sim {
    lsd: Lsd,
    now: Instant,
    timeout: Option<Instant>,
    sends: Vec<Instant>,
    /// Per torrent: when it was added or last announced.
    last: HashMap<InfoHashV1, Instant>,
    /// Per torrent: when it was last announced.
    announced: HashMap<InfoHashV1, Instant>,
    /// The longest a present torrent waited between announces (or since being added).
    longest_wait: Duration,
}

impl Sim {
    fn drain(&mut self) -> Result<(), TestCaseError> {
        let mut buf = Vec::new();
        loop {
            match self.lsd.poll_output(self.now, &mut buf) {
                Output::Transmit(t) => {
                    let announce = Announce::decode(&buf[..t.len])?;
                    if let Some(previous) = self.sends.last() {
                        prop_assert!(self.now - *previous >= MIN_SEND_INTERVAL);
                    }
                    self.sends.push(self.now);
                    for hash in announce.info_hashes {
                        let since = self.last.insert(hash, self.now);
                        let since = since.ok_or_else(|| {
                            TestCaseError::fail(format!("{hash} announced but never added"))
                        })?;
                        self.longest_wait = self.longest_wait.max(self.now - since);
                        if let Some(previous) = self.announced.insert(hash, self.now) {
                            prop_assert!(
                                self.now - previous >= ANNOUNCE_INTERVAL,
                                "{hash} announced twice within the interval"
                            );
                        }
                    }
                }
                Output::Timeout(at) => {
                    prop_assert!(at > self.now);
                    self.timeout = Some(at);
                    return Ok(());
                }
                Output::Idle => {
                    self.timeout = None;
                    return Ok(());
                }
                Output::Event(e) => prop_assert!(false, "no datagram was given: {e:?}"),
                _ => prop_assert!(false, "unknown output"),
            }
        }
    }

    /// Advances the clock by `d`, waking at every timeout on the way.
    fn wait(&mut self, d: Duration) -> Result<(), TestCaseError> {
        let end = self.now + d;
        while let Some(at) = self.timeout.filter(|at| *at <= end) {
            self.now = at;
            self.drain()?;
        }
        self.now = end;
        Ok(())
    }
}

proptest! {
    #[test]
    fn limits_hold_and_every_torrent_is_announced(
        steps in prop::collection::vec(step(), 1..80),
        per_announce in 1usize..=24,
    ) {
        let mut config = Config::new(6881, 1);
        config.max_info_hashes_per_announce = per_announce;
        let mut sim = Sim {
            lsd: Lsd::new(config),
            now: Instant::now(),
            timeout: None,
            sends: Vec::new(),
            last: HashMap::new(),
            announced: HashMap::new(),
            longest_wait: Duration::ZERO,
        };
        let mut most = 0usize;
        for step in steps {
            match step {
                Step::Add(b) => {
                    let hash = InfoHashV1([b; 20]);
                    if sim.lsd.add_torrent(hash) {
                        sim.last.insert(hash, sim.now);
                    }
                }
                Step::Remove(b) => {
                    let hash = InfoHashV1([b; 20]);
                    sim.lsd.remove_torrent(&hash);
                    sim.last.remove(&hash);
                    sim.announced.remove(&hash);
                }
                Step::Wait(secs) => sim.wait(Duration::from_secs(secs))?,
            }
            most = most.max(sim.last.len());
            sim.drain()?;
        }
        // Then an hour of timeouts only: every torrent keeps being announced, never
        // later than its interval plus the datagrams ahead of it in the queue.
        sim.wait(Duration::from_secs(3600))?;
        let batches = u32::try_from(most.div_ceil(per_announce)).unwrap_or(u32::MAX);
        let bound = ANNOUNCE_INTERVAL + MIN_SEND_INTERVAL * batches;
        prop_assert!(sim.longest_wait <= bound, "waited {:?} > {bound:?}", sim.longest_wait);
        for (hash, at) in &sim.last {
            prop_assert!(sim.now - *at <= bound, "{hash} starved");
        }
    }
}
