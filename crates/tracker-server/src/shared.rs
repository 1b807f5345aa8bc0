//! What the servers of every protocol share: the store and its upkeep.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::limits::RateLimiter;
use crate::store::SwarmStore;

/// A swarm store shared by the servers of every protocol. Each request
/// holds the lock only while the store handles it.
pub type SharedStore = Arc<Mutex<SwarmStore>>;

/// A rate limiter shared by the servers of every protocol, so that one
/// client address has one budget of requests.
pub type SharedLimiter = Arc<Mutex<RateLimiter>>;

/// Runs [`SwarmStore::expire`] on a shared store at a fixed period, from a
/// task spawned on the current runtime; dropping it stops the task.
#[derive(Debug)]
pub struct StoreExpiry {
    task: JoinHandle<()>,
}

impl StoreExpiry {
    /// Expires `store` every `period` (the first time one period from now).
    #[must_use]
    pub fn spawn(store: SharedStore, period: Duration) -> Self {
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            // The first tick is immediate; the store is fresh.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let dropped = store
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .expire(Instant::now());
                if dropped > 0 {
                    tracing::debug!("tracker expired {dropped} peers");
                }
            }
        });
        Self { task }
    }
}

impl Drop for StoreExpiry {
    fn drop(&mut self) {
        self.task.abort();
    }
}
