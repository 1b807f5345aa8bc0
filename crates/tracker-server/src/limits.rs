//! Limits per client address, sans-IO: a token bucket of requests per IP
//! and a count of open connections per IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The address a limit is kept for: IPv4-mapped IPv6 as IPv4, and IPv6
/// by its /64 (one host usually holds a whole /64).
#[must_use]
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Requests per second per client address, as a token bucket: `burst`
/// requests at once, then `per_second`. Memory is bounded: at most
/// `max_clients` addresses are tracked; past that, buckets that have
/// refilled are forgotten, and if none has, new addresses pass unmetered
/// until some have (a flood of distinct addresses is not stopped by
/// per-address limits anyway).
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    max_clients: usize,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// A limiter; `per_second` of 0 disables it.
    #[must_use]
    pub fn new(per_second: u32, burst: u32, max_clients: usize) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            max_clients,
            buckets: HashMap::new(),
        }
    }

    /// Whether one more request from `ip` at `now` is allowed (and counts
    /// it if so).
    pub fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        if self.per_second <= 0.0 {
            return true;
        }
        let key = limit_key(ip);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_clients {
            self.sweep(now);
            if self.buckets.len() >= self.max_clients {
                return true;
            }
        }
        let (rate, burst) = (self.per_second, self.burst);
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets buckets that are full again (their clients are within the
    /// limit). Call it now and then; [`allow`](Self::allow) calls it when
    /// the table is full.
    pub fn sweep(&mut self, now: Instant) {
        let (rate, burst) = (self.per_second, self.burst);
        let refill = Duration::from_secs_f64(burst / rate.max(f64::MIN_POSITIVE));
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.at) < refill);
    }

    /// Addresses tracked.
    #[must_use]
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no address is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// Open connections per client address, capped.
#[derive(Debug)]
pub struct ConnectionCounter {
    per_ip: usize,
    total: usize,
    open: usize,
    counts: HashMap<IpAddr, usize>,
}

impl ConnectionCounter {
    /// At most `per_ip` connections from one address and `total` in all.
    #[must_use]
    pub fn new(per_ip: usize, total: usize) -> Self {
        Self {
            per_ip,
            total,
            open: 0,
            counts: HashMap::new(),
        }
    }

    /// Counts a new connection from `ip`, or refuses it (false) when a cap
    /// is reached. Every `true` must be matched by one
    /// [`close`](Self::close).
    pub fn open(&mut self, ip: IpAddr) -> bool {
        if self.open >= self.total {
            return false;
        }
        let n = self.counts.entry(limit_key(ip)).or_insert(0);
        if *n >= self.per_ip {
            return false;
        }
        *n += 1;
        self.open += 1;
        true
    }

    /// A connection from `ip` counted by [`open`](Self::open) closed.
    pub fn close(&mut self, ip: IpAddr) {
        let key = limit_key(ip);
        if let Some(n) = self.counts.get_mut(&key) {
            *n -= 1;
            self.open -= 1;
            if *n == 0 {
                self.counts.remove(&key);
            }
        }
    }

    /// Connections open.
    #[must_use]
    pub const fn open_count(&self) -> usize {
        self.open
    }
}
