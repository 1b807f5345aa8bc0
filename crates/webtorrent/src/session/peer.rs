//! The peer task: one wire connection over a TCP stream.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use webtorrent_storage::{Bitfield, FileStorage, Storage};
use webtorrent_types::BlockRef;
use webtorrent_wire::{Config, Connection, Decoder, Event, Geometry, Handshake, Message};

use super::Counters;
use super::torrent::{Command, PeerKey};

/// How many decoded messages the reader may buffer ahead of the peer task.
const READ_QUEUE: usize = 64;

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
    /// Assigned blocks that will not come from this peer.
    Returned {
        blocks: Vec<BlockRef>,
        /// Whether the peer may be asked again (a timeout), or not now (choke, reject).
        retry_here: bool,
    },
    /// A block arrived.
    Block { block: BlockRef, data: Vec<u8> },
    /// The connection is closed.
    Closed,
}

/// What a torrent tells a peer task.
#[derive(Debug)]
pub(super) enum ToPeer {
    /// Tell the peer whether we are interested.
    Interested(bool),
    /// Request these blocks.
    Request(Vec<BlockRef>),
    /// We verified a piece.
    Have(u32),
    /// Close the connection.
    Close,
}

/// Everything a peer task needs.
pub(super) struct Context {
    pub(super) key: PeerKey,
    pub(super) stream: Option<TcpStream>,
    pub(super) handshake: Handshake,
    pub(super) now: Instant,
    pub(super) geometry: Geometry,
    pub(super) ours: Bitfield,
    pub(super) storage: Arc<FileStorage>,
    pub(super) counters: Arc<Counters>,
    pub(super) torrent: mpsc::Sender<Command>,
    pub(super) commands: mpsc::UnboundedReceiver<ToPeer>,
}

/// Runs a connection until either side closes it, then tells the torrent.
pub(super) async fn run(mut cx: Context) {
    let stream = cx.stream.take();
    let torrent = cx.torrent.clone();
    let key = cx.key;
    if let Some(stream) = stream {
        let (read, mut write) = stream.into_split();
        let (frames_tx, frames) = mpsc::channel(READ_QUEUE);
        let decoder = Decoder::for_pieces(cx.geometry.pieces());
        let reader = tokio::spawn(read_loop(read, decoder, frames_tx));
        let _ = drive(cx, frames, &mut write).await;
        reader.abort();
        let _ = write.shutdown().await;
    }
    let _ = torrent.send(Command::Peer(key, PeerEvent::Closed)).await;
}

/// Why a connection ends.
#[derive(Debug)]
enum Ended {
    /// The socket failed or closed.
    Io,
    /// The peer broke the protocol or went idle.
    Protocol,
    /// The torrent closed it or stopped.
    Closed,
}

/// Reads the socket and decodes messages into `frames` until the socket or the
/// channel closes. A malformed stream ends the connection. The decoder's frame limit
/// fits the torrent's bitfield, however many pieces it has.
async fn read_loop(
    mut read: OwnedReadHalf,
    decoder: Decoder,
    frames: mpsc::Sender<Message<'static>>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match read.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        // `at` only advances by what the decoder consumed, so it stays within `buf`.
        let mut at = 0;
        loop {
            match decoder.decode(&buf[at..]) {
                Ok(Some((message, used))) => {
                    at += used;
                    if frames.send(message.into_owned()).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        buf.drain(..at);
    }
}

/// Sends what the connection has queued.
async fn flush(conn: &mut Connection, write: &mut OwnedWriteHalf) -> Result<(), Ended> {
    let mut out = Vec::new();
    while let Some(message) = conn.poll_transmit() {
        message.encode(&mut out);
    }
    if !out.is_empty() {
        write.write_all(&out).await.map_err(|_| Ended::Io)?;
    }
    Ok(())
}

/// The connection's loop: messages in, commands in, timers.
async fn drive(
    mut cx: Context,
    mut frames: mpsc::Receiver<Message<'static>>,
    write: &mut OwnedWriteHalf,
) -> Result<(), Ended> {
    let mut config = Config::default();
    config.reserved = super::RESERVED;
    let mut conn = Connection::new(config, cx.geometry, cx.now);
    conn.handle_handshake(cx.now, &cx.handshake)
        .map_err(|_| Ended::Protocol)?;
    conn.send_bitfield(cx.now, &cx.ours)
        .map_err(|_| Ended::Protocol)?;
    flush(&mut conn, write).await?;
    loop {
        let deadline = tokio::time::Instant::from_std(conn.poll_timeout());
        tokio::select! {
            message = frames.recv() => {
                let message = message.ok_or(Ended::Io)?;
                let now = Instant::now();
                let event = conn.handle_message(now, message).map_err(|_| Ended::Protocol)?;
                if let Some(event) = event {
                    on_event(&mut cx, &mut conn, now, event).await?;
                }
            }
            command = cx.commands.recv() => {
                let command = command.ok_or(Ended::Closed)?;
                on_command(&mut cx, &mut conn, Instant::now(), command).await?;
            }
            () = tokio::time::sleep_until(deadline) => {
                let now = Instant::now();
                let timed_out = conn.handle_timeout(now).map_err(|_| Ended::Protocol)?;
                if !timed_out.is_empty() {
                    for block in &timed_out {
                        conn.cancel(now, *block);
                    }
                    tell(&cx, PeerEvent::Returned { blocks: timed_out, retry_here: true }).await?;
                }
            }
        }
        flush(&mut conn, write).await?;
    }
}

async fn tell(cx: &Context, event: PeerEvent) -> Result<(), Ended> {
    cx.torrent
        .send(Command::Peer(cx.key, event))
        .await
        .map_err(|_| Ended::Closed)
}

async fn on_event(
    cx: &mut Context,
    conn: &mut Connection,
    now: Instant,
    event: Event<'static>,
) -> Result<(), Ended> {
    match event {
        Event::Choked { dropped } => {
            if !dropped.is_empty() {
                let returned = PeerEvent::Returned {
                    blocks: dropped,
                    retry_here: false,
                };
                tell(cx, returned).await?;
            }
            tell(cx, PeerEvent::Choked).await
        }
        Event::Unchoked => tell(cx, PeerEvent::Unchoked).await,
        // Every interested peer is served (the choker is not wired in yet).
        Event::Interested => {
            conn.unchoke(now);
            Ok(())
        }
        Event::Bitfield => tell(cx, PeerEvent::Pieces(conn.peer_pieces().clone())).await,
        Event::Have(piece) => tell(cx, PeerEvent::Have(piece)).await,
        Event::Request(block) => serve(cx, conn, block).await,
        Event::Block { block, data } => {
            let data = data.into_owned();
            tell(cx, PeerEvent::Block { block, data }).await
        }
        Event::Rejected(block) => {
            let returned = PeerEvent::Returned {
                blocks: vec![block],
                retry_here: false,
            };
            tell(cx, returned).await
        }
        _ => Ok(()),
    }
}

/// Answers a request from a verified piece, read on a blocking thread.
async fn serve(cx: &mut Context, conn: &mut Connection, block: BlockRef) -> Result<(), Ended> {
    let now = Instant::now();
    if conn.am_choking() || !cx.ours.has(block.piece) {
        return conn.reject(now, block).map_err(|_| Ended::Protocol);
    }
    let storage = Arc::clone(&cx.storage);
    let data = tokio::task::spawn_blocking(move || {
        storage.read_block(block.piece, block.offset, block.length)
    })
    .await
    .map_err(|_| Ended::Closed)?;
    match data {
        Ok(data) => {
            conn.send_piece(Instant::now(), block, data)
                .map_err(|_| Ended::Protocol)?;
            cx.counters
                .uploaded
                .fetch_add(u64::from(block.length), Ordering::Relaxed);
            Ok(())
        }
        Err(_) => conn.reject(now, block).map_err(|_| Ended::Protocol),
    }
}

async fn on_command(
    cx: &mut Context,
    conn: &mut Connection,
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
                    retry_here: false,
                };
                tell(cx, returned).await?;
            }
        }
        ToPeer::Have(piece) => {
            let _ = cx.ours.set(piece);
            conn.have(now, piece).map_err(|_| Ended::Protocol)?;
        }
        ToPeer::Close => return Err(Ended::Closed),
    }
    Ok(())
}
