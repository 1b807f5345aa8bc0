//! A tokio runtime for the WebRTC stack whose UDP sockets get large kernel buffers.
//!
//! The `webrtc` crate binds its UDP sockets itself and then hands each one to
//! [`Runtime::wrap_udp_socket`]. That call is the one place where a caller sees the socket
//! before it is used, so [`BufferedRuntime`] delegates everything to the crate's tokio
//! runtime and only sets `SO_RCVBUF`/`SO_SNDBUF` there. SCTP bursts a full congestion window
//! at once; with the kernel's default buffers (about 200 KiB) the receiver drops datagrams
//! even on loopback and every loss costs a retransmission timeout.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

/// Boxed future type the runtime trait returns.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The crate's tokio runtime, with fixed kernel buffer sizes for every UDP socket it wraps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BufferedRuntime {
    /// Requested `SO_RCVBUF` and `SO_SNDBUF` in bytes.
    buffer_size: usize,
}

impl BufferedRuntime {
    pub(crate) fn new(buffer_size: usize) -> Self {
        Self { buffer_size }
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
        set_buffers(&socket, self.buffer_size);
        TokioRuntime.wrap_udp_socket(socket)
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
        let runtime = BufferedRuntime::new(4 << 20);
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
    }
}
