//! A tokio runtime for the WebRTC stack whose UDP sockets get large kernel buffers.
//!
//! The `webrtc` crate binds its UDP sockets itself and then hands each one to
//! [`Runtime::wrap_udp_socket`]. That call is the one place where a caller sees the socket
//! before it is used, so [`BufferedRuntime`] delegates everything to the crate's tokio
//! runtime and only sets `SO_RCVBUF`/`SO_SNDBUF` there. SCTP bursts a full congestion window
//! at once; with the kernel's default buffers (about 200 KiB) the receiver drops datagrams
//! even on loopback and every loss costs a retransmission timeout.
//!
//! The same call also tells how large a datagram the connection's driver can read: it reads
//! into buffers sized for UDP GRO where the socket has it, and into 2000-byte buffers
//! otherwise (the sizes of `webrtc` 0.21.1, which the workspace pins exactly).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

/// Boxed future type the runtime trait returns.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Bytes the driver reads a datagram into on a socket without GRO.
const PLAIN_RECV_LEN: usize = 2000;

/// Bytes per coalesced datagram the driver reserves on a socket with GRO, up to
/// [`MAX_GRO_SEGMENTS`] of them.
const GRO_SEGMENT_LEN: usize = 1500;

/// Most datagrams the driver sizes a GRO receive buffer for.
const MAX_GRO_SEGMENTS: usize = 64;

/// The crate's tokio runtime, with fixed kernel buffer sizes for every UDP socket it wraps.
#[derive(Debug, Clone)]
pub(crate) struct BufferedRuntime {
    /// Requested `SO_RCVBUF` and `SO_SNDBUF` in bytes; `None` keeps the system's.
    buffer_size: Option<usize>,
    /// The smallest receive buffer of the sockets wrapped so far (`usize::MAX`: none yet).
    recv_capacity: Arc<AtomicUsize>,
}

impl BufferedRuntime {
    pub(crate) fn new(buffer_size: Option<usize>) -> Self {
        Self {
            buffer_size,
            recv_capacity: Arc::new(AtomicUsize::new(usize::MAX)),
        }
    }

    /// The largest datagram every socket wrapped so far reads whole; `None` before the
    /// first one.
    pub(crate) fn max_datagram(&self) -> Option<usize> {
        match self.recv_capacity.load(Ordering::Acquire) {
            usize::MAX => None,
            n => Some(n),
        }
    }
}

/// The driver's receive buffer for a socket coalescing up to `max_gro` datagrams.
fn recv_capacity(max_gro: usize) -> usize {
    if max_gro > 1 {
        max_gro.min(MAX_GRO_SEGMENTS) * GRO_SEGMENT_LEN
    } else {
        PLAIN_RECV_LEN
    }
}

/// Asks the kernel for `size`-byte receive and send buffers on `socket`.
///
/// Linux caps the request at `net.core.rmem_max` / `wmem_max` without an error, so the sizes
/// actually granted are read back and logged at debug level. A refusal is logged and
/// ignored: the socket still works, only slower.
pub(crate) fn set_buffers(socket: &std::net::UdpSocket, size: usize) {
    let sock = socket2::SockRef::from(socket);
    if let Err(error) = sock.set_recv_buffer_size(size) {
        tracing::debug!(%error, size, "SO_RCVBUF refused");
    }
    if let Err(error) = sock.set_send_buffer_size(size) {
        tracing::debug!(%error, size, "SO_SNDBUF refused");
    }
    tracing::debug!(
        requested = size,
        recv = ?sock.recv_buffer_size().ok(),
        send = ?sock.send_buffer_size().ok(),
        local = ?socket.local_addr().ok(),
        "UDP socket buffers"
    );
}

impl Runtime for BufferedRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        if let Some(size) = self.buffer_size {
            set_buffers(&socket, size);
        }
        let wrapped = TokioRuntime.wrap_udp_socket(socket)?;
        let capacity = recv_capacity(wrapped.max_gro_segments());
        self.recv_capacity.fetch_min(capacity, Ordering::AcqRel);
        Ok(wrapped)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        TokioRuntime.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        TokioRuntime.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        TokioRuntime.resolve_host(host)
    }

    fn now(&self) -> Instant {
        TokioRuntime.now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        TokioRuntime.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TokioRuntime.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TokioRuntime.block_on(future);
    }

    fn yield_now(&self) -> BoxFuture<'static, ()> {
        TokioRuntime.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio (large UDP buffers)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wrapped_sockets_get_larger_buffers() {
        let plain = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        let default = socket2::SockRef::from(&plain)
            .recv_buffer_size()
            .expect("read SO_RCVBUF");

        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        let probe = socket.try_clone().expect("dup socket");
        let runtime = BufferedRuntime::new(Some(4 << 20));
        assert_eq!(runtime.max_datagram(), None);
        let wrapped = runtime.wrap_udp_socket(socket).expect("wrap");
        assert_eq!(
            wrapped.local_addr().expect("local addr"),
            probe.local_addr().expect("local addr")
        );
        let granted = socket2::SockRef::from(&probe)
            .recv_buffer_size()
            .expect("read SO_RCVBUF");
        // The kernel caps the request at rmem_max; it must still exceed the default unless
        // the default already is the cap.
        assert!(
            granted > default || default >= 4 << 20,
            "granted {granted}, default {default}"
        );
        let capacity = runtime.max_datagram().expect("a socket was wrapped");
        assert!(capacity >= PLAIN_RECV_LEN, "{capacity}");
    }

    #[test]
    fn receive_capacity_follows_gro() {
        assert_eq!(recv_capacity(1), PLAIN_RECV_LEN);
        assert_eq!(recv_capacity(64), 96_000);
        assert_eq!(recv_capacity(1000), 96_000);
    }
}
