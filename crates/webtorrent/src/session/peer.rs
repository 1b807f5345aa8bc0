//! The peer task: one wire connection over a TCP stream or a WebRTC data channel.
//!
//! A reader task decodes the socket's read half into a bounded channel of messages; the
//! peer task feeds them to a [`Connection`], reports what matters to the torrent task,
//! carries out the torrent's orders (interest, requests, choking, `have`), and serves the
//! peer's requests from verified pieces. Both directions pass through the client's rate
//! limiters.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use webtorrent_extensions::{
    Builtin, DontHave, ExtHandshake, Incoming, MetadataServer, PexConfig, PexPeer, PexState,
    Registry, ServerConfig,
};
use webtorrent_storage::{Bitfield, FileStorage};
use webtorrent_types::{BlockRef, InfoHashV1};
use webtorrent_wire::{
    Config, Connection, DecodeError, Decoder, Event, Geometry, Handshake, Message, UsageError,
};

use super::hashes::{HashServer, Refusal};
use super::stream::PeerStream;
use super::torrent::{Command, PeerKey};
use super::{Counters, ExtensionFactory, ExtensionWaker, PeerInfo, REQUEST_TIMEOUT};
use crate::ratelimit::{Grant, Limit, RateLimits};

/// How many decoded messages the reader may buffer ahead of the peer task.
const READ_QUEUE: usize = 256;

/// How many messages the peer task handles before it hands their blocks to the torrent
/// and flushes the socket.
const BATCH: usize = 64;

/// The most blocks read from disk in one go to answer queued requests (1 MiB).
const SERVE_BATCH: usize = 64;

/// The most requested blocks read at once under an upload limit: 128 KiB, so that a
/// peer's cancels and newer requests (a streaming reader that seeked) are heard between
/// batches instead of after a second of queued blocks.
const LIMITED_BATCH: usize = 8;

/// How many buffers (a batch of served blocks each, at most) may wait for the socket.
const WRITE_QUEUE: usize = 4;

/// The most bytes the writer gathers from queued buffers into one write.
const COALESCE: usize = 256 * 1024;

/// `hashes` or `hash reject` messages we never asked for (this phase asks for none) after
/// which the connection is closed.
const MAX_UNSOLICITED_HASHES: u32 = 3;

/// How long a closing connection may take to send what it has queued.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The client's rate limiters, keyed by torrent.
pub(super) type Limits = Arc<Mutex<RateLimits<InfoHashV1>>>;

/// What a peer task tells its torrent.
#[derive(Debug)]
pub(super) enum PeerEvent {
    /// The peer's initial piece set.
    Pieces(Bitfield),
    /// The peer has a new piece.
    Have(u32),
    /// The peer unchoked us.
    Unchoked,
    /// The peer choked us.
    Choked,
    /// The peer is (or no longer is) interested in our pieces.
    Interested(bool),
    /// BEP 6: we may request this piece while choked.
    AllowedFast(u32),
    /// BEP 6: the peer suggests this piece.
    Suggest(u32),
    /// BEP 10: the peer's extension handshake.
    Extensions {
        /// How many requests it queues (`reqq`).
        reqq: Option<u32>,
        /// The port it listens on (`p`).
        listen_port: Option<u16>,
        /// Its client name (`v`).
        client: Option<String>,
    },
    /// `ut_pex`: peers it is connected to (checked and capped).
    Pex(Vec<SocketAddr>),
    /// `lt_donthave`: the peer lost a piece.
    DontHave(u32),
    /// Assigned blocks that will not come from this peer.
    Returned {
        blocks: Vec<BlockRef>,
        /// Why: a timeout (the peer may be slow, not gone) or a choke or reject.
        timed_out: bool,
    },
    /// Blocks arrived, in order.
    Blocks(Vec<(BlockRef, Vec<u8>)>),
    /// The connection is closed, and why.
    Closed(Ended),
}

/// What a torrent tells a peer task.
#[derive(Debug)]
pub(super) enum ToPeer {
    /// Tell the peer whether we are interested.
    Interested(bool),
    /// Request these blocks.
    Request(Vec<BlockRef>),
    /// Withdraw a request (another peer sent the block first).
    Cancel(BlockRef),
    /// Stop (`true`) or start serving the peer.
    Choke(bool),
    /// We verified a piece.
    Have(u32),
    /// Our connected peers, for `ut_pex` (sent at most once a minute).
    Pex(Arc<[PexPeer]>),
    /// Close the connection.
    Close,
}

/// Everything a peer task needs.
pub(super) struct Context {
    pub(super) key: PeerKey,
    pub(super) handshake: Handshake,
    pub(super) geometry: Geometry,
    pub(super) ours: Bitfield,
    pub(super) storage: Arc<FileStorage>,
    pub(super) counters: Arc<Counters>,
    /// Bytes of blocks sent to this peer, read by the choker.
    pub(super) uploaded: Arc<AtomicU64>,
    pub(super) limits: Limits,
    pub(super) info_hash: InfoHashV1,
    /// The info dictionary, served over `ut_metadata`.
    pub(super) info: Arc<[u8]>,
    /// The v2 piece layers, served to BEP 52 hash requests.
    pub(super) hashes: Arc<HashServer>,
    /// Our listen port, named in the extension handshake.
    pub(super) listen_port: u16,
    /// Whether peer exchange is allowed (not for private torrents).
    pub(super) pex: bool,
    /// The client's DHT node and its UDP port, when it runs and the peer is reached over
    /// TCP: the handshake then sets the DHT bit, and `PORT` messages are traded.
    pub(super) dht: Option<(webtorrent_dht::Dht, u16)>,
    /// The application's extensions.
    pub(super) extensions: Arc<[ExtensionFactory]>,
    /// The peer's address.
    pub(super) addr: SocketAddr,
    pub(super) torrent: mpsc::Sender<Command>,
    pub(super) commands: mpsc::UnboundedReceiver<ToPeer>,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ended {
    /// The socket failed or the peer closed it.
    Io,
    /// The peer sent bytes that are not the protocol.
    Decode(DecodeError),
    /// The peer broke the protocol, or went idle.
    Protocol(String),
    /// The torrent closed it or stopped.
    Closed,
}

impl Ended {
    /// Whether the peer misbehaved (as opposed to leaving or being let go).
    pub(super) fn is_misbehaviour(&self) -> bool {
        matches!(self, Self::Decode(_) | Self::Protocol(_))
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io => f.write_str("connection closed"),
            Self::Decode(e) => write!(f, "undecodable stream: {e}"),
            Self::Protocol(e) => write!(f, "protocol violation: {e}"),
            Self::Closed => f.write_str("closed by us"),
        }
    }
}

/// Runs a connection until either side closes it, then tells the torrent why.
pub(super) async fn run(cx: Context, stream: PeerStream) {
    match stream {
        // A TCP stream splits without a lock between its halves.
        PeerStream::Tcp(tcp) => {
            let (read, write) = tcp.into_split();
            run_halves(cx, read, write).await;
        }
        #[cfg(feature = "webrtc")]
        rtc @ PeerStream::Rtc(_) => {
            let (read, write) = tokio::io::split(rtc);
            run_halves(cx, read, write).await;
        }
    }
}

async fn run_halves<R, W>(cx: Context, read: R, write: W)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let torrent = cx.torrent.clone();
    let key = cx.key;
    // Writes run on their own task, so that the next blocks are read from disk while the
    // previous ones go out: the socket never waits for the disk.
    let (out, outgoing) = mpsc::channel(WRITE_QUEUE);
    let mut writer = tokio::spawn(write_loop(write, outgoing));
    let (frames_tx, frames) = mpsc::channel(READ_QUEUE);
    let decoder = Decoder::for_pieces(cx.geometry.pieces());
    let reader = tokio::spawn(read_loop(
        read,
        decoder,
        frames_tx,
        Arc::clone(&cx.limits),
        cx.info_hash,
    ));
    let ended = match drive(cx, frames, &out).await {
        Ok(()) => Ended::Closed,
        Err(e) => e,
    };
    reader.abort();
    // What was queued (a last reject, say) goes out, then the socket closes; a peer that
    // does not read gets a few seconds.
    drop(out);
    if tokio::time::timeout(CLOSE_GRACE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    let _ = torrent
        .send(Command::Peer(key, PeerEvent::Closed(ended)))
        .await;
}

/// Reads the socket and decodes messages into `frames` until the socket or the channel
/// closes. A malformed stream is passed on as an error, then the loop ends. The decoder's
/// frame limit fits the torrent's bitfield, however many pieces it has. Bytes read spend
/// from the download limits: a reader over its limit stops reading, and TCP slows the
/// sender down.
async fn read_loop(
    mut read: impl AsyncRead + Unpin,
    decoder: Decoder,
    frames: mpsc::Sender<Result<Message<'static>, DecodeError>>,
    limits: Limits,
    info_hash: InfoHashV1,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match read.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        throttle(&limits, &info_hash, n, Direction::Down).await;
        // `at` only advances by what the decoder consumed, so it stays within `buf`.
        let mut at = 0;
        loop {
            match decoder.decode(&buf[at..]) {
                Ok(Some((message, used))) => {
                    at += used;
                    if frames.send(Ok(message.into_owned())).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = frames.send(Err(e)).await;
                    return;
                }
            }
        }
        buf.drain(..at);
    }
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Up,
    Down,
}

/// Waits until the limits let `bytes` bytes of this torrent go in `direction`.
async fn throttle(limits: &Limits, info_hash: &InfoHashV1, bytes: usize, direction: Direction) {
    let mut left = bytes;
    while left > 0 {
        let grant = {
            let mut limits = limits.lock().unwrap_or_else(PoisonError::into_inner);
            let limiter = match direction {
                Direction::Up => &mut limits.upload,
                Direction::Down => &mut limits.download,
            };
            limiter.request(info_hash, left, Instant::now())
        };
        match grant {
            Grant::Now(n) => left -= n.clamp(1, left),
            Grant::Later { bytes, at } => {
                tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                left -= bytes.clamp(1, left);
            }
        }
    }
}

/// Hands what the connection has queued to the writer (waiting while it is
/// [`WRITE_QUEUE`] buffers behind).
async fn flush(conn: &mut Connection, out: &mpsc::Sender<Vec<u8>>) -> Result<(), Ended> {
    let mut buf = Vec::new();
    while let Some(message) = conn.poll_transmit() {
        message.encode(&mut buf);
    }
    if !buf.is_empty() {
        out.send(buf).await.map_err(|_| Ended::Io)?;
    }
    Ok(())
}

/// Writes buffers to the socket until the channel closes or the socket fails, then shuts
/// the socket down.
async fn write_loop(mut write: impl AsyncWrite + Unpin, mut buffers: mpsc::Receiver<Vec<u8>>) {
    while let Some(mut buf) = buffers.recv().await {
        // What else is queued goes in the same write: fewer system calls on TCP, and full
        // 16 KiB messages on a WebRTC channel (a lone 16 KiB block with its 13-byte header
        // would take two).
        while buf.len() < COALESCE {
            match buffers.try_recv() {
                Ok(more) => buf.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if write.write_all(&buf).await.is_err() {
            return;
        }
    }
    let _ = write.shutdown().await;
}

fn protocol(e: impl std::fmt::Display) -> Ended {
    Ended::Protocol(e.to_string())
}

/// The connection's loop: messages in, commands in, timers.
async fn drive(
    mut cx: Context,
    mut frames: mpsc::Receiver<Result<Message<'static>, DecodeError>>,
    write: &mpsc::Sender<Vec<u8>>,
) -> Result<(), Ended> {
    let now = Instant::now();
    let mut config = Config::default();
    config.reserved = super::RESERVED.with_dht(cx.dht.is_some());
    config.request_timeout = REQUEST_TIMEOUT;
    let mut conn = Connection::new(config, cx.geometry, now);
    conn.handle_handshake(now, &cx.handshake)
        .map_err(protocol)?;
    let waker = ExtensionWaker::default();
    let mut ext = Extensions::new(&cx, &waker);
    if conn.negotiated().is_some_and(|r| r.extended()) {
        // BEP 10: the extension handshake goes first.
        conn.send_message(now, ext.handshake(&cx))
            .map_err(protocol)?;
    }
    conn.send_bitfield(now, &cx.ours).map_err(protocol)?;
    if let Some((_, port)) = &cx.dht
        && conn.negotiated().is_some_and(|r| r.dht())
    {
        // BEP 5: tell a DHT-capable peer where our node listens.
        conn.send_message(now, Message::Port(*port))
            .map_err(protocol)?;
    }
    flush(&mut conn, write).await?;
    let mut blocks = Vec::new();
    let mut unsolicited = 0u32;
    // Under an upload limit: serve in small batches.
    let mut limited = false;
    loop {
        let deadline = tokio::time::Instant::from_std(conn.poll_timeout());
        tokio::select! {
            message = frames.recv() => {
                let mut next = message;
                let mut handled = 0;
                loop {
                    let message = next.take().ok_or(Ended::Io)?.map_err(Ended::Decode)?;
                    let now = Instant::now();
                    let event = conn.handle_message(now, message).map_err(protocol)?;
                    match event {
                        Some(Event::Extended { id, payload }) => {
                            send_blocks(&cx, &mut blocks).await?;
                            ext.handle(&cx, &mut conn, now, id, &payload).await?;
                        }
                        Some(Event::HashRequest(request)) => {
                            answer_hashes(&cx, &mut conn, now, request)?;
                        }
                        Some(Event::Hashes { .. } | Event::HashReject(_)) => {
                            // The torrent asks for no hashes once running.
                            unsolicited += 1;
                            if unsolicited >= MAX_UNSOLICITED_HASHES {
                                return Err(Ended::Protocol("hashes that were never asked for".into()));
                            }
                        }
                        Some(event) => on_event(&mut cx, &conn, event, &mut blocks).await?,
                        None => {}
                    }
                    handled += 1;
                    // Only take another message when it will be handled in this batch.
                    if handled == BATCH {
                        break;
                    }
                    match frames.try_recv() {
                        Ok(message) => next = Some(message),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => next = None,
                    }
                }
                send_blocks(&cx, &mut blocks).await?;
                serve(&mut cx, &mut conn, write, &mut limited).await?;
            }
            // Requests left over by a batch under an upload limit, once the peer was heard.
            () = std::future::ready(()), if limited && conn.peer_requests().next().is_some() => {
                serve(&mut cx, &mut conn, write, &mut limited).await?;
            }
            command = cx.commands.recv() => {
                let command = command.ok_or(Ended::Closed)?;
                on_command(&mut cx, &mut conn, &mut ext, Instant::now(), command).await?;
                while let Ok(command) = cx.commands.try_recv() {
                    on_command(&mut cx, &mut conn, &mut ext, Instant::now(), command).await?;
                }
                serve(&mut cx, &mut conn, write, &mut limited).await?;
            }
            () = tokio::time::sleep_until(deadline) => {
                let now = Instant::now();
                let timed_out = conn.handle_timeout(now).map_err(protocol)?;
                if !timed_out.is_empty() {
                    for block in &timed_out {
                        conn.cancel(now, *block);
                    }
                    tell(&cx, PeerEvent::Returned { blocks: timed_out, timed_out: true }).await?;
                }
            }
            () = waker.woken() => {}
        }
        ext.transmit(&mut conn, Instant::now())?;
        flush(&mut conn, write).await?;
    }
}

/// Answers a BEP 52 hash request from our piece layers, or rejects it.
fn answer_hashes(
    cx: &Context,
    conn: &mut Connection,
    now: Instant,
    request: webtorrent_wire::HashRequest,
) -> Result<(), Ended> {
    let message = match cx.hashes.answer(&request) {
        Ok(hashes) => Message::Hashes {
            request,
            hashes: hashes.into(),
        },
        Err(why) => {
            match why {
                Refusal::UnknownRoot => {
                    tracing::debug!(addr = %cx.addr, "hash request for a root we hold no layer of");
                }
                Refusal::Invalid(e) => {
                    tracing::debug!(addr = %cx.addr, "hash request refused: {e}");
                }
            }
            Message::HashReject(request)
        }
    };
    conn.send_message(now, message).map_err(protocol)
}

async fn tell(cx: &Context, event: PeerEvent) -> Result<(), Ended> {
    cx.torrent
        .send(Command::Peer(cx.key, event))
        .await
        .map_err(|_| Ended::Closed)
}

/// Hands the blocks received so far to the torrent.
async fn send_blocks(cx: &Context, blocks: &mut Vec<(BlockRef, Vec<u8>)>) -> Result<(), Ended> {
    if blocks.is_empty() {
        return Ok(());
    }
    tell(cx, PeerEvent::Blocks(std::mem::take(blocks))).await
}

async fn on_event(
    cx: &mut Context,
    conn: &Connection,
    event: Event<'static>,
    blocks: &mut Vec<(BlockRef, Vec<u8>)>,
) -> Result<(), Ended> {
    let report = match event {
        Event::Block { block, data } => {
            blocks.push((block, data.into_owned()));
            return Ok(());
        }
        // Queued in the connection; served after the batch.
        Event::Request(_) | Event::Cancel(_) => return Ok(()),
        Event::Choked { dropped } => {
            send_blocks(cx, blocks).await?;
            if !dropped.is_empty() {
                let returned = PeerEvent::Returned {
                    blocks: dropped,
                    timed_out: false,
                };
                tell(cx, returned).await?;
            }
            PeerEvent::Choked
        }
        Event::Unchoked => PeerEvent::Unchoked,
        Event::Interested => PeerEvent::Interested(true),
        Event::NotInterested => PeerEvent::Interested(false),
        Event::Bitfield => PeerEvent::Pieces(conn.peer_pieces().clone()),
        Event::Have(piece) => PeerEvent::Have(piece),
        Event::Rejected(block) => PeerEvent::Returned {
            blocks: vec![block],
            timed_out: false,
        },
        Event::AllowedFast(piece) => PeerEvent::AllowedFast(piece),
        Event::Suggest(piece) => PeerEvent::Suggest(piece),
        Event::Port(port) => {
            if let Some((dht, _)) = &cx.dht
                && port != 0
            {
                // The peer's DHT node joins our table if it answers a ping.
                dht.ping(SocketAddr::new(cx.addr.ip(), port));
            }
            return Ok(());
        }
        _ => return Ok(()),
    };
    send_blocks(cx, blocks).await?;
    tell(cx, report).await
}

/// Answers the peer's queued requests from verified pieces, batches read on a blocking
/// thread, within the upload limits. Without a limit, every queued request; under one
/// (`limited`, set here for the run loop), one batch of [`LIMITED_BATCH`] blocks: the run
/// loop hears the peer (its cancels, its newer requests), then comes back for the rest.
async fn serve(
    cx: &mut Context,
    conn: &mut Connection,
    write: &mpsc::Sender<Vec<u8>>,
    limited: &mut bool,
) -> Result<(), Ended> {
    *limited = {
        let limits = cx.limits.lock().unwrap_or_else(PoisonError::into_inner);
        limits.upload.global_limit() != Limit::Unlimited
            || limits.upload.torrent_limit(&cx.info_hash) != Limit::Unlimited
    };
    loop {
        let batch = if *limited { LIMITED_BATCH } else { SERVE_BATCH };
        let queued: Vec<BlockRef> = conn.peer_requests().take(batch).collect();
        if queued.is_empty() {
            return Ok(());
        }
        tracing::trace!(addr = %cx.addr, blocks = queued.len(), "serving");
        serve_batch(cx, conn, queued).await?;
        flush(conn, write).await?;
        if *limited {
            return Ok(());
        }
    }
}

/// Answers `queued`, requests of the peer. Blocks cancelled while the limits held them
/// back give their bytes back to the limits.
async fn serve_batch(
    cx: &mut Context,
    conn: &mut Connection,
    queued: Vec<BlockRef>,
) -> Result<(), Ended> {
    let now = Instant::now();
    let mut wanted = Vec::with_capacity(queued.len());
    for block in queued {
        if cx.ours.has(block.piece) {
            wanted.push(block);
        } else {
            // Never claimed: the peer asks for what we do not have.
            conn.reject(now, block).map_err(protocol)?;
        }
    }
    let bytes: usize = wanted.iter().map(|b| b.length as usize).sum();
    throttle(&cx.limits, &cx.info_hash, bytes, Direction::Up).await;
    let storage = Arc::clone(&cx.storage);
    let read = tokio::task::spawn_blocking(move || {
        wanted
            .into_iter()
            .map(|b| (b, super::read_padded(&storage, b)))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|_| Ended::Closed)?;
    let now = Instant::now();
    let mut unsent = 0usize;
    for (block, data) in read {
        let sent = match data {
            Ok(data) => conn.send_piece(now, block, data),
            Err(e) => {
                tracing::warn!(piece = block.piece, "cannot read a block to upload: {e}");
                conn.reject(now, block)
            }
        };
        match sent {
            Ok(()) => {
                cx.counters
                    .uploaded
                    .fetch_add(u64::from(block.length), Ordering::Relaxed);
                cx.uploaded
                    .fetch_add(u64::from(block.length), Ordering::Relaxed);
            }
            // Cancelled meanwhile.
            Err(UsageError::NotRequested { .. }) => unsent += block.length as usize,
            Err(e) => return Err(protocol(e)),
        }
    }
    if unsent > 0 {
        let mut limits = cx.limits.lock().unwrap_or_else(PoisonError::into_inner);
        limits.upload.refund(&cx.info_hash, unsent, Instant::now());
    }
    Ok(())
}

async fn on_command(
    cx: &mut Context,
    conn: &mut Connection,
    ext: &mut Extensions,
    now: Instant,
    command: ToPeer,
) -> Result<(), Ended> {
    match command {
        ToPeer::Interested(true) => conn.interested(now),
        ToPeer::Interested(false) => conn.not_interested(now),
        ToPeer::Request(blocks) => {
            let refused: Vec<BlockRef> = blocks
                .into_iter()
                .filter(|block| conn.request(now, *block).is_err())
                .collect();
            if !refused.is_empty() {
                let returned = PeerEvent::Returned {
                    blocks: refused,
                    timed_out: false,
                };
                tell(cx, returned).await?;
            }
        }
        ToPeer::Cancel(block) => {
            conn.cancel(now, block);
        }
        ToPeer::Choke(true) => {
            conn.choke(now);
        }
        ToPeer::Choke(false) => conn.unchoke(now),
        ToPeer::Have(piece) => {
            let _ = cx.ours.set(piece);
            conn.have(now, piece).map_err(protocol)?;
        }
        ToPeer::Pex(peers) => {
            if let Some(message) = ext.pex_message(now, &peers) {
                conn.send_message(now, message).map_err(protocol)?;
            }
        }
        ToPeer::Close => return Err(Ended::Closed),
    }
    Ok(())
}

/// The BEP 10 side of a connection: the registry of extensions both sides use, the
/// `ut_metadata` server and the `ut_pex` state.
struct Extensions {
    registry: Registry,
    metadata: MetadataServer,
    pex: PexState,
}

impl Extensions {
    fn new(cx: &Context, waker: &ExtensionWaker) -> Self {
        let mut registry = if cx.pex {
            Registry::with_builtins()
        } else {
            // A private torrent (BEP 27) does not even offer peer exchange.
            let mut registry = Registry::new();
            for builtin in [Builtin::UtMetadata, Builtin::LtDonthave] {
                // Two distinct names on an empty registry cannot fail.
                let _ = registry.add_builtin(builtin);
            }
            registry
        };
        let peer = PeerInfo {
            info_hash: cx.info_hash,
            private: !cx.pex,
            addr: cx.addr,
            peer_id: cx.handshake.peer_id,
            waker: waker.clone(),
        };
        for factory in cx.extensions.iter() {
            if let Some(extension) = factory.make(&peer)
                && let Err(e) = registry.add(extension)
            {
                tracing::debug!(addr = %cx.addr, "application extension left out: {e}");
            }
        }
        Self {
            registry,
            metadata: MetadataServer::new(Arc::clone(&cx.info), ServerConfig::default()),
            pex: PexState::new(cx.addr, PexConfig::default()),
        }
    }

    /// Our extension handshake.
    fn handshake(&mut self, cx: &Context) -> Message<'static> {
        let mut ours = ExtHandshake::ours();
        ours.listen_port = Some(cx.listen_port);
        ours.your_ip = Some(cx.addr.ip());
        ours.reqq = u32::try_from(Config::default().max_peer_requests).ok();
        ours.metadata_size = Some(self.metadata.metadata_size());
        self.registry.handshake(ours)
    }

    /// Handles an extended message from the peer.
    async fn handle(
        &mut self,
        cx: &Context,
        conn: &mut Connection,
        now: Instant,
        id: u8,
        payload: &[u8],
    ) -> Result<(), Ended> {
        let incoming = self.registry.handle(id, payload).map_err(protocol)?;
        match incoming {
            Incoming::Handshake(theirs) => {
                let event = PeerEvent::Extensions {
                    reqq: theirs.reqq,
                    listen_port: theirs.listen_port,
                    client: theirs.client.clone(),
                };
                tell(cx, event).await?;
            }
            Incoming::Metadata(message) => {
                if let Some(answer) = self.metadata.handle(now, &message)
                    && let Some(frame) = self.registry.ut_metadata(&answer)
                {
                    conn.send_message(now, frame).map_err(protocol)?;
                }
            }
            Incoming::Pex(message) if cx.pex => {
                let update = self.pex.handle_message(now, &message);
                if !update.added.is_empty() {
                    let peers = update.added.iter().map(|p| p.addr).collect();
                    tell(cx, PeerEvent::Pex(peers)).await?;
                }
            }
            Incoming::DontHave(DontHave(piece)) => {
                tell(cx, PeerEvent::DontHave(piece)).await?;
            }
            // PEX on a private torrent, or an application's extension: not ours to use.
            _ => {}
        }
        self.transmit(conn, now)
    }

    /// Sends what the extensions queued.
    fn transmit(&mut self, conn: &mut Connection, now: Instant) -> Result<(), Ended> {
        while let Some(frame) = self.registry.poll_transmit() {
            conn.send_message(now, frame).map_err(protocol)?;
        }
        Ok(())
    }

    /// The `ut_pex` message due now, if the peer takes them and one is due.
    fn pex_message(&mut self, now: Instant, peers: &[PexPeer]) -> Option<Message<'static>> {
        self.registry.peer_id("ut_pex")?;
        let message = self.pex.poll_message(now, peers.iter().copied())?;
        self.registry.ut_pex(&message)
    }
}
