//! `UdpServer`: the BEP 15 tracker on one UDP socket, served by its own thread.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::shared::{SharedLimiter, SharedStore};
use crate::udp::{UdpConfig, UdpHandler};

/// How often the connection-id secret is replaced.
const ROTATE_EVERY: Duration = Duration::from_secs(10 * 60);
/// Larger than any request: a full scrape is 16 + 74 × 20 bytes.
const RECV_BUFFER: usize = 2048;
/// The longest the serving thread waits before it checks for a stop.
const STOP_CHECK: Duration = Duration::from_millis(500);

/// The BEP 15 tracker on a UDP socket, served by a thread of its own: each
/// datagram goes through a [`UdpHandler`] and the
/// [`SwarmStore`](crate::SwarmStore) it shares with the other protocols.
/// The thread also rotates the connection-id secret every ten minutes. Peer
/// expiry is the store owner's: see [`StoreExpiry`](crate::StoreExpiry).
/// Dropping the server stops the thread and closes the socket.
///
/// The socket is read with blocking calls rather than through the async
/// runtime: one `recvfrom` and one `sendto` per request, with no readiness
/// polling or task wake-ups in between, is what a UDP tracker's throughput
/// per core comes down to.
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
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
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
        let socket = tokio::net::UdpSocket::bind(local).await?;
        Self::from_socket(socket, store, config)
    }

    /// Serves on a bound socket.
    ///
    /// # Errors
    /// The socket's address error, or no randomness for the secret.
    pub fn from_socket(
        socket: tokio::net::UdpSocket,
        store: SharedStore,
        config: UdpConfig,
    ) -> io::Result<Self> {
        Self::serve(socket, store, config, None)
    }

    /// Serves on a bound socket; `limiter` (possibly shared with the other
    /// servers) drops datagrams from addresses over their rate.
    ///
    /// # Errors
    /// The socket's address error, no randomness for the secret, or no
    /// thread.
    pub fn serve(
        socket: tokio::net::UdpSocket,
        store: SharedStore,
        config: UdpConfig,
        limiter: Option<SharedLimiter>,
    ) -> io::Result<Self> {
        let socket = socket.into_std()?;
        socket.set_nonblocking(false)?;
        // A bound on each wait, so that the thread notices a stop even if
        // the wake-up datagram of `Drop` is lost.
        socket.set_read_timeout(Some(STOP_CHECK))?;
        let local = socket.local_addr()?;
        let handler = UdpHandler::new(Instant::now(), random_secret()?, config);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("udp-tracker".into())
            .spawn({
                let stop = stop.clone();
                move || run(&socket, &store, handler, limiter.as_ref(), &stop)
            })?;
        Ok(Self {
            local,
            stop,
            thread: Some(thread),
        })
    }

    /// The address served on.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // An empty datagram ends the thread's wait at once.
        let target = match self.local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let from: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        if let Ok(waker) = std::net::UdpSocket::bind(from) {
            let _ = waker.send_to(&[], (target, self.local.port()));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    socket: &std::net::UdpSocket,
    store: &SharedStore,
    mut handler: UdpHandler,
    limiter: Option<&SharedLimiter>,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut out = Vec::with_capacity(RECV_BUFFER);
    let mut rotate_at = Instant::now() + ROTATE_EVERY;
    while !stop.load(Ordering::Relaxed) {
        let received = socket.recv_from(&mut buf);
        let now = Instant::now();
        if now >= rotate_at {
            rotate_at = now + ROTATE_EVERY;
            match random_secret() {
                Ok(secret) => {
                    handler.rotate_secret(now, secret);
                }
                Err(e) => tracing::warn!("UDP tracker cannot rotate its secret: {e}"),
            }
        }
        let (len, src) = match received {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                // Errors of earlier sends (ICMP unreachable) surface here;
                // the socket itself stays usable.
                tracing::debug!("UDP tracker receive error: {e}");
                continue;
            }
        };
        if let Some(l) = limiter
            && !l
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .allow(now, src.ip())
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
                if let Err(e) = socket.send_to(&out, src) {
                    tracing::debug!("UDP tracker send to {src} failed: {e}");
                }
            }
            Err(e) => tracing::trace!("UDP tracker dropped a datagram from {src}: {e}"),
        }
    }
}
