//! One reliable, ordered data channel as a byte stream ([`AsyncRead`] + [`AsyncWrite`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};

/// Largest message the stream sends: browsers reject larger data-channel messages.
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024;

/// How long a writer waiting for send capacity sleeps before it re-reads the buffered
/// amount without a low-water event. The event normally wakes it first; the re-check covers
/// the case where the event sits behind unread messages in the channel's single event queue.
const CAPACITY_RECHECK: Duration = Duration::from_millis(50);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Flow-control settings of one stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Messages the receive queue holds before the channel stops being read.
    pub(crate) read_queue: usize,
    /// Outstanding send bytes at which writes wait.
    pub(crate) high_water: usize,
    /// Outstanding send bytes at which waiting writes resume (the low-water event).
    pub(crate) low_water: usize,
}

/// Messages accepted by `poll_write` and not yet handed to the channel by the writer task.
const WRITE_QUEUE: usize = 4;

/// State shared between the stream, its event pump and its writer.
#[derive(Debug, Default)]
struct Shared {
    /// Woken on every buffered-amount-low event and when the channel ends.
    low_water: Notify,
    /// Set once the channel or its connection has ended.
    ended: AtomicBool,
    /// Set when the channel refused a message: later writes fail.
    write_failed: AtomicBool,
}

/// Closes the peer connection when the last holder goes away.
///
/// The driver task of a `webrtc` peer connection runs until the connection is closed, so
/// every path that gives one up must end here.
pub(crate) struct ConnectionGuard {
    pc: Option<Arc<dyn PeerConnection>>,
}

impl std::fmt::Debug for ConnectionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionGuard")
            .field("open", &self.pc.is_some())
            .finish()
    }
}

impl ConnectionGuard {
    pub(crate) fn new(pc: Arc<dyn PeerConnection>) -> Self {
        Self { pc: Some(pc) }
    }

    pub(crate) fn pc(&self) -> Option<&Arc<dyn PeerConnection>> {
        self.pc.as_ref()
    }

    /// Closes the connection now and waits for its driver to stop.
    pub(crate) async fn close(mut self) {
        if let Some(pc) = self.pc.take()
            && let Err(error) = pc.close().await
        {
            tracing::debug!(%error, "closing peer connection");
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let Some(pc) = self.pc.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(error) = pc.close().await {
                        tracing::debug!(%error, "closing dropped peer connection");
                    }
                });
            }
            // Outside a runtime the driver's runtime is gone or going; its tasks end with it.
            Err(_) => tracing::debug!("peer connection dropped outside a tokio runtime"),
        }
    }
}

/// A reliable, ordered WebRTC data channel as a byte stream.
///
/// - Writes are cut into messages of at most [`MAX_MESSAGE_SIZE`] bytes. A write waits while
///   the channel's outstanding send bytes are at the high-water mark, and resumes on the
///   channel's buffered-amount-low event, so the send buffer stays bounded.
/// - Reads come from a bounded queue of received messages. When it is full the channel is
///   no longer read, the SCTP receive window closes and the remote writer waits.
/// - [`AsyncWrite::poll_shutdown`] waits until the peer has acknowledged every byte written,
///   then closes the data channel. A data channel has no half-close, so this ends both
///   directions, as closing a WebTorrent wire does. The remote reader sees EOF after the
///   data sent before the close; later local writes fail with `BrokenPipe`.
/// - The remote closing the channel, or the connection failing, gives EOF to reads and
///   `BrokenPipe` to writes.
/// - Dropping the stream closes the channel and its peer connection at once; bytes not yet
///   delivered are lost (shut down first to deliver them).
///
/// A write that returned `Ok(n)` has queued its bytes for a task of the stream that hands
/// them to the WebRTC stack in order, whether or not the stream is polled again (as with a
/// TCP socket, no flush is needed); an error from the hand-off surfaces on the next write,
/// flush or shutdown.
pub struct DataStream {
    dc: Arc<dyn DataChannel>,
    shared: Arc<Shared>,
    limits: Limits,
    incoming: mpsc::Receiver<Bytes>,
    /// Unread rest of the message at the head of the queue.
    partial: Bytes,
    /// The writer task's queue; taken by `poll_shutdown`.
    outgoing: Option<mpsc::Sender<BytesMut>>,
    /// A wait for room in the writer's queue.
    reserving: Option<BoxFuture<Result<mpsc::OwnedPermit<BytesMut>, ()>>>,
    /// The task that hands queued messages to the channel.
    writer: Option<tokio::task::JoinHandle<()>>,
    /// A wait for send capacity.
    capacity: Option<BoxFuture<io::Result<()>>>,
    /// The data-channel close started by `poll_shutdown`.
    closing: Option<BoxFuture<()>>,
    /// The close started by `poll_shutdown` has finished.
    shut_down: bool,
    write_closed: bool,
    pump: tokio::task::JoinHandle<()>,
    /// Kept for its `Drop`: closes the connection with the stream.
    _connection: ConnectionGuard,
}

impl std::fmt::Debug for DataStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataStream")
            .field("id", &self.dc.id())
            .field("limits", &self.limits)
            .field("write_closed", &self.write_closed)
            .field("ended", &self.shared.ended.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl DataStream {
    /// Wraps an open data channel. Must run inside a tokio runtime: it spawns the task
    /// that moves received messages into the read queue.
    pub(crate) async fn new(
        dc: Arc<dyn DataChannel>,
        connection: ConnectionGuard,
        state: watch::Receiver<RTCPeerConnectionState>,
        limits: Limits,
    ) -> Result<Self, webrtc::error::Error> {
        let low = u32::try_from(limits.low_water).unwrap_or(u32::MAX);
        dc.set_buffered_amount_low_threshold(low).await?;
        let shared = Arc::new(Shared::default());
        let (tx, incoming) = mpsc::channel(limits.read_queue.max(1));
        let pump = tokio::spawn(pump(dc.clone(), tx, shared.clone(), state));
        let (outgoing, queue) = mpsc::channel(WRITE_QUEUE);
        let writer = tokio::spawn(writer(dc.clone(), queue, shared.clone()));
        Ok(Self {
            dc,
            shared,
            limits,
            incoming,
            partial: Bytes::new(),
            outgoing: Some(outgoing),
            reserving: None,
            writer: Some(writer),
            capacity: None,
            closing: None,
            shut_down: false,
            write_closed: false,
            pump,
            _connection: connection,
        })
    }

    /// The data channel's label.
    pub async fn label(&self) -> Option<String> {
        self.dc.label().await.ok()
    }

    /// Bytes handed to the channel that SCTP has not released yet.
    pub async fn outstanding_bytes(&self) -> usize {
        self.dc.outstanding_bytes().await.unwrap_or(0)
    }

    /// `BrokenPipe` once the channel has refused a message.
    fn write_error(&mut self) -> io::Result<()> {
        if self.shared.write_failed.load(Ordering::Acquire) {
            self.write_closed = true;
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        Ok(())
    }
}

/// Hands queued messages to the channel in order. Ends when the stream stops writing (its
/// queue closes) or the channel refuses a message.
async fn writer(
    dc: Arc<dyn DataChannel>,
    mut queue: mpsc::Receiver<BytesMut>,
    shared: Arc<Shared>,
) {
    while let Some(data) = queue.recv().await {
        if let Err(error) = dc.send(data).await {
            tracing::debug!(%error, "data channel send failed");
            shared.write_failed.store(true, Ordering::Release);
            break;
        }
    }
}

/// Moves channel events into the stream: messages to the read queue, low-water events to
/// waiting writers. Ends when the channel closes, the connection fails or closes, or the
/// stream is dropped.
async fn pump(
    dc: Arc<dyn DataChannel>,
    tx: mpsc::Sender<Bytes>,
    shared: Arc<Shared>,
    mut state: watch::Receiver<RTCPeerConnectionState>,
) {
    loop {
        let event = tokio::select! {
            event = dc.poll() => event,
            changed = state.wait_for(|s| matches!(s, RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed)) => {
                if changed.is_ok() {
                    tracing::debug!("peer connection ended");
                }
                break;
            }
        };
        match event {
            Some(DataChannelEvent::OnMessage(message)) => {
                if message.data.is_empty() {
                    continue;
                }
                // Waits while the queue is full: that is the receive-side back-pressure.
                if tx.send(message.data.freeze()).await.is_err() {
                    break;
                }
            }
            Some(DataChannelEvent::OnBufferedAmountLow) => shared.low_water.notify_one(),
            Some(DataChannelEvent::OnClose) | None => break,
            Some(DataChannelEvent::OnError) => tracing::debug!("data channel error event"),
            Some(_) => {}
        }
    }
    shared.ended.store(true, Ordering::Release);
    shared.low_water.notify_one();
}

/// Waits until the channel's outstanding send bytes are below `high`.
async fn wait_capacity(
    dc: Arc<dyn DataChannel>,
    shared: Arc<Shared>,
    high: usize,
) -> io::Result<()> {
    loop {
        if shared.ended.load(Ordering::Acquire) {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let outstanding = dc.outstanding_bytes().await.map_err(broken)?;
        if outstanding < high {
            return Ok(());
        }
        tracing::trace!(outstanding, high, "data channel send buffer full");
        let _ = tokio::time::timeout(CAPACITY_RECHECK, shared.low_water.notified()).await;
    }
}

/// Waits until every byte sent has been acknowledged, or the channel has ended.
async fn drain(dc: &dyn DataChannel, shared: &Shared) {
    if dc.set_buffered_amount_low_threshold(0).await.is_err() {
        return;
    }
    while !shared.ended.load(Ordering::Acquire) {
        match dc.outstanding_bytes().await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let _ = tokio::time::timeout(CAPACITY_RECHECK, shared.low_water.notified()).await;
            }
        }
    }
}

fn broken(error: webrtc::error::Error) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, error)
}

impl AsyncRead for DataStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if self.partial.is_empty() {
            match ready!(self.incoming.poll_recv(cx)) {
                Some(message) => self.partial = message,
                // The pump has ended: EOF.
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.partial.len().min(buf.remaining());
        let chunk = self.partial.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for DataStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.write_error()?;
        if self.capacity.is_none() && self.reserving.is_none() {
            let wait = wait_capacity(self.dc.clone(), self.shared.clone(), self.limits.high_water);
            self.capacity = Some(Box::pin(wait));
        }
        if let Some(fut) = self.capacity.as_mut() {
            let result = ready!(fut.as_mut().poll(cx));
            self.capacity = None;
            if let Err(error) = result {
                self.write_closed = true;
                return Poll::Ready(Err(error));
            }
        }
        if self.reserving.is_none() {
            let Some(outgoing) = self.outgoing.clone() else {
                self.write_closed = true;
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            };
            self.reserving = Some(Box::pin(async move {
                outgoing.reserve_owned().await.map_err(|_| ())
            }));
        }
        let Some(fut) = self.reserving.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        };
        let reserved = ready!(fut.as_mut().poll(cx));
        self.reserving = None;
        let Ok(permit) = reserved else {
            // The writer has stopped: the channel refused a message.
            self.write_closed = true;
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        };
        let n = buf.len().min(MAX_MESSAGE_SIZE);
        permit.send(BytesMut::from(&buf[..n]));
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.write_error())
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shut_down {
            return Poll::Ready(Ok(()));
        }
        if self.closing.is_none() {
            self.write_closed = true;
            // The writer sends what is queued, then ends.
            self.outgoing = None;
            self.reserving = None;
            let writer = self.writer.take();
            let dc = self.dc.clone();
            let shared = self.shared.clone();
            self.closing = Some(Box::pin(async move {
                if let Some(writer) = writer {
                    let _ = writer.await;
                }
                // Closing resets the SCTP stream at once, discarding what is not yet
                // delivered, so first wait until the peer has acknowledged every byte.
                drain(&*dc, &shared).await;
                if let Err(error) = dc.close().await {
                    tracing::debug!(%error, "closing data channel");
                }
            }));
        }
        if let Some(fut) = self.closing.as_mut() {
            ready!(fut.as_mut().poll(cx));
            self.closing = None;
            self.shut_down = true;
        }
        Poll::Ready(self.write_error())
    }
}

impl Drop for DataStream {
    fn drop(&mut self) {
        // The pump ends by itself once the connection guard has closed the connection;
        // aborting it here frees its queue at once.
        self.pump.abort();
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
    }
}
