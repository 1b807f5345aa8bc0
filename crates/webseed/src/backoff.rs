//! Sans-IO retry policy for one web seed: time is passed in.

use std::time::{Duration, Instant};

use crate::WebSeedError;

/// Settings of [`Backoff`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// Wait after the first failure (BEP 17's reference client waits 30 s).
    pub initial: Duration,
    /// The wait doubles with each further failure in a row, up to this.
    pub max: Duration,
    /// Longest wait accepted from a server (`Retry-After`, BEP 17 503 body): a larger
    /// one is cut to this.
    pub max_retry_after: Duration,
    /// Pieces that may fail their hash check before the seed is dropped for good.
    /// BEP 19 says to drop it at the first; the default allows none.
    pub hash_failures_allowed: u32,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(30 * 60),
            max_retry_after: Duration::from_secs(60 * 60),
            hash_failures_allowed: 0,
        }
    }
}

impl BackoffConfig {
    /// The same settings with other waits.
    #[must_use]
    pub const fn with_waits(mut self, initial: Duration, max: Duration) -> Self {
        self.initial = initial;
        self.max = max;
        self
    }

    /// The same settings with another hash failure allowance.
    #[must_use]
    pub const fn with_hash_failures_allowed(mut self, n: u32) -> Self {
        self.hash_failures_allowed = n;
        self
    }
}

/// When a web seed may be used: exponential back-off after failures, capped, honouring a
/// server's requested wait; dropped for good after an unusable URL or bad data.
///
/// It never reads a clock: the caller passes `now`. A failing seed only waits, so a bad
/// seed never fails the torrent.
///
/// ```
/// use std::time::{Duration, Instant};
/// use webtorrent_webseed::{Backoff, BackoffConfig, WebSeedError};
///
/// let now = Instant::now();
/// let mut b = Backoff::new(BackoffConfig::default());
/// assert!(b.is_ready(now));
/// let busy = WebSeedError::HttpStatus {
///     url: "http://h/f".into(),
///     status: 503,
///     retry_after: Some(Duration::from_secs(120)),
/// };
/// assert_eq!(b.on_failure(now, &busy), Some(now + Duration::from_secs(120)));
/// assert!(!b.is_ready(now + Duration::from_secs(119)));
/// assert!(b.is_ready(now + Duration::from_secs(120)));
/// b.on_success();
/// assert_eq!(b.failures(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
    hash_failures: u32,
    retry_at: Option<Instant>,
    disabled: bool,
}

impl Backoff {
    /// A seed with no failures yet.
    #[must_use]
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            failures: 0,
            hash_failures: 0,
            retry_at: None,
            disabled: false,
        }
    }

    /// Whether the seed may be asked for data at `now`.
    #[must_use]
    pub fn is_ready(&self, now: Instant) -> bool {
        !self.disabled && self.retry_at.is_none_or(|at| now >= at)
    }

    /// When the seed may be used again: `None` when it may be now, or never
    /// ([`is_disabled`](Self::is_disabled)).
    #[must_use]
    pub fn retry_at(&self) -> Option<Instant> {
        if self.disabled { None } else { self.retry_at }
    }

    /// Whether the seed is dropped for good.
    #[must_use]
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Failures in a row so far.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A request succeeded: the failure count starts again.
    pub fn on_success(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    /// A request failed at `now`: returns when to try again, `None` if never.
    ///
    /// The wait is the server's (`Retry-After`, capped by
    /// [`BackoffConfig::max_retry_after`]) when it gave one, else `initial · 2^(n-1)` for
    /// the `n`th failure in a row, capped by [`BackoffConfig::max`]. A permanent error
    /// ([`WebSeedError::is_permanent`]) drops the seed.
    pub fn on_failure(&mut self, now: Instant, error: &WebSeedError) -> Option<Instant> {
        if error.is_permanent() {
            self.disabled = true;
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        let wait = match error.retry_after() {
            Some(wait) => wait.min(self.config.max_retry_after),
            None => self.exponential(),
        };
        self.wait(now, wait)
    }

    /// A piece from this seed failed its hash check at `now`: the seed is dropped once
    /// more than [`BackoffConfig::hash_failures_allowed`] pieces failed, else it backs
    /// off like after any failure. Returns when to try again, `None` if never.
    pub fn on_hash_failure(&mut self, now: Instant) -> Option<Instant> {
        self.hash_failures = self.hash_failures.saturating_add(1);
        if self.hash_failures > self.config.hash_failures_allowed {
            self.disabled = true;
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        let wait = self.exponential();
        self.wait(now, wait)
    }

    fn exponential(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(31);
        self.config
            .initial
            .saturating_mul(1u32 << doublings)
            .min(self.config.max)
    }

    fn wait(&mut self, now: Instant, wait: Duration) -> Option<Instant> {
        // An `Instant` too far in the future to represent waits as long as possible.
        let at = now
            .checked_add(wait)
            .or_else(|| now.checked_add(self.config.max))
            .unwrap_or(now);
        self.retry_at = Some(at);
        Some(at)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(BackoffConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn status(status: u16, retry_after: Option<u64>) -> WebSeedError {
        WebSeedError::HttpStatus {
            url: "http://h/".into(),
            status,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn exponential_and_capped() {
        let now = Instant::now();
        let cfg =
            BackoffConfig::default().with_waits(Duration::from_secs(1), Duration::from_secs(10));
        let mut b = Backoff::new(cfg);
        let waits: Vec<u64> = (0..6)
            .map(|_| (b.on_failure(now, &status(500, None)).unwrap() - now).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert!(!b.is_ready(now + Duration::from_secs(9)));
        assert!(b.is_ready(now + Duration::from_secs(10)));
        b.on_success();
        assert!(b.is_ready(now));
        assert_eq!(
            b.on_failure(now, &status(404, None)),
            Some(now + Duration::from_secs(1))
        );
    }

    #[test]
    fn retry_after_honoured_and_capped() {
        let now = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(
            b.on_failure(now, &status(503, Some(5))),
            Some(now + Duration::from_secs(5))
        );
        assert_eq!(
            b.on_failure(now, &status(503, Some(1 << 40))),
            Some(now + Duration::from_secs(3600))
        );
    }

    #[test]
    fn permanent_and_hash_failures_disable() {
        let now = Instant::now();
        let mut b = Backoff::default();
        let bad = WebSeedError::InvalidUrl {
            url: "ftp://x".into(),
            what: "not http",
        };
        assert_eq!(b.on_failure(now, &bad), None);
        assert!(b.is_disabled() && !b.is_ready(now + Duration::from_secs(1 << 30)));
        assert_eq!(b.retry_at(), None);

        let mut b = Backoff::new(BackoffConfig::default().with_hash_failures_allowed(1));
        assert!(b.on_hash_failure(now).is_some());
        assert!(!b.is_disabled());
        assert_eq!(b.on_hash_failure(now), None);
        assert!(b.is_disabled());
    }

    proptest! {
        #[test]
        fn waits_never_shrink_and_stay_capped(n in 1usize..100, initial in 1u64..100, max in 1u64..10_000) {
            let now = Instant::now();
            let cfg = BackoffConfig::default()
                .with_waits(Duration::from_secs(initial), Duration::from_secs(max));
            let mut b = Backoff::new(cfg);
            let mut last = Duration::ZERO;
            for _ in 0..n {
                let at = b.on_failure(now, &status(500, None)).unwrap();
                let wait = at - now;
                prop_assert!(wait >= last);
                prop_assert!(wait <= Duration::from_secs(max.max(1)));
                last = wait;
            }
        }
    }
}
