//! `UdpServer`: the BEP 15 tracker on one tokio UDP socket.

use std::io;
use std::net::SocketAddr;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::shared::{SharedLimiter, SharedStore};
use crate::udp::{UdpConfig, UdpHandler};

/// How often the connection-id secret is replaced.
const ROTATE_EVERY: Duration = Duration::from_secs(10 * 60);
/// Larger than any request: a full scrape is 16 + 74 × 20 bytes.
const RECV_BUFFER: usize = 2048;

/// The BEP 15 tracker on a tokio UDP socket, driven by a task spawned on
/// the current runtime: each datagram goes through a [`UdpHandler`] and
/// the [`SwarmStore`](crate::SwarmStore) it shares with the other
/// protocols. The task also rotates the connection-id secret every ten
/// minutes. Peer expiry is the store owner's: see
/// [`StoreExpiry`](crate::StoreExpiry). Dropping the server stops the task.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use std::sync::{Arc, Mutex};
/// use webtorrent_tracker_server::{StoreConfig, SwarmStore, UdpServer, udp::UdpConfig};
///
/// let store = Arc::new(Mutex::new(SwarmStore::new(StoreConfig::default(), 1)));
/// let server = UdpServer::bind("0.0.0.0:6969".parse().unwrap(), store, UdpConfig::default()).await?;
/// println!("UDP tracker on {}", server.local_addr());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct UdpServer {
    local: SocketAddr,
    task: JoinHandle<()>,
}

fn random_secret() -> io::Result<[u8; 32]> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(secret)
}

impl UdpServer {
    /// Binds `local` and starts serving.
    ///
    /// # Errors
    /// The socket's bind error, or no randomness for the secret.
    pub async fn bind(
        local: SocketAddr,
        store: SharedStore,
        config: UdpConfig,
    ) -> io::Result<Self> {
        let socket = UdpSocket::bind(local).await?;
        Self::from_socket(socket, store, config)
    }

    /// Serves on a bound socket.
    ///
    /// # Errors
    /// The socket's address error, or no randomness for the secret.
    pub fn from_socket(
        socket: UdpSocket,
        store: SharedStore,
        config: UdpConfig,
    ) -> io::Result<Self> {
        Self::serve(socket, store, config, None)
    }

    /// Serves on a bound socket; `limiter` (possibly shared with the other
    /// servers) drops datagrams from addresses over their rate.
    ///
    /// # Errors
    /// The socket's address error, or no randomness for the secret.
    pub fn serve(
        socket: UdpSocket,
        store: SharedStore,
        config: UdpConfig,
        limiter: Option<SharedLimiter>,
    ) -> io::Result<Self> {
        let local = socket.local_addr()?;
        let handler = UdpHandler::new(Instant::now(), random_secret()?, config);
        let task = tokio::spawn(run(socket, store, handler, limiter));
        Ok(Self { local, task })
    }

    /// The address served on.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    socket: UdpSocket,
    store: SharedStore,
    mut handler: UdpHandler,
    limiter: Option<SharedLimiter>,
) {
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut out = Vec::with_capacity(RECV_BUFFER);
    let mut rotate = tokio::time::interval(ROTATE_EVERY);
    // The first ticks are immediate; the secret is fresh already.
    rotate.tick().await;
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (len, src) = match received {
                    Ok(r) => r,
                    Err(e) => {
                        // Errors of earlier sends may surface here; the
                        // socket itself stays usable.
                        tracing::debug!("UDP tracker receive error: {e}");
                        continue;
                    }
                };
                let now = Instant::now();
                if let Some(l) = &limiter
                    && !l.lock().unwrap_or_else(PoisonError::into_inner).allow(now, src.ip())
                {
                    tracing::trace!("UDP tracker dropped a datagram from {src}: rate limit");
                    continue;
                }
                out.clear();
                let result = {
                    let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
                    handler.handle(&mut store, now, src, &buf[..len], &mut out)
                };
                match result {
                    Ok(()) => {
                        if let Err(e) = socket.send_to(&out, src).await {
                            tracing::debug!("UDP tracker send to {src} failed: {e}");
                        }
                    }
                    Err(e) => tracing::trace!("UDP tracker dropped a datagram from {src}: {e}"),
                }
            }
            _ = rotate.tick() => {
                match random_secret() {
                    Ok(secret) => {
                        handler.rotate_secret(Instant::now(), secret);
                    }
                    Err(e) => tracing::warn!("UDP tracker cannot rotate its secret: {e}"),
                }
            }
        }
    }
}
