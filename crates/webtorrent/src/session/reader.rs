//! Reading a torrent's files while they download: [`File`] and [`FileReader`].

use std::future::Future;
use std::io::{self, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use tokio::sync::{broadcast, mpsc, watch};
use webtorrent_storage::{FileStorage, Storage};

use super::torrent::{Command, StreamOrder};
use super::{Torrent, TorrentEvent};

/// The most bytes one read from storage fetches: the rest of a piece, at most this.
const CHUNK: u64 = 256 * 1024;

/// How long a reader reads before its rate is taken as measured.
const RATE_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// Stream ids, unique in the process.
static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);

/// One file of a torrent whose metainfo is known; see [`Torrent::files`].
#[derive(Debug, Clone)]
pub struct File {
    torrent: Torrent,
    index: usize,
    path: std::path::PathBuf,
    length: u64,
    /// Where the file starts in the torrent's data layout.
    offset: u64,
    piece_length: u64,
}

impl File {
    pub(super) fn new(torrent: Torrent, index: usize) -> Option<Self> {
        let meta = torrent.metainfo()?;
        let info = meta.info();
        let entry = info.files().get(index)?;
        Some(Self {
            index,
            path: entry.path.clone(),
            length: entry.length,
            offset: entry.offset,
            piece_length: info.piece_length().max(1),
            torrent,
        })
    }

    /// The torrent the file belongs to.
    pub fn torrent(&self) -> &Torrent {
        &self.torrent
    }

    /// The file's index among the info's files (pad files counted), as
    /// [`Torrent::set_file_priorities`] and BEP 53 selections count them.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The file's path, relative to the download folder (starting with the torrent's
    /// name for a multi-file torrent).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's name: the last component of its path.
    pub fn name(&self) -> &str {
        self.path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    }

    /// The file's length in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The pieces the file overlaps.
    pub fn pieces(&self) -> std::ops::Range<u32> {
        if self.length == 0 {
            let first = u32::try_from(self.offset / self.piece_length).unwrap_or(u32::MAX);
            return first..first;
        }
        let first = u32::try_from(self.offset / self.piece_length).unwrap_or(u32::MAX);
        let last = u32::try_from((self.offset + self.length - 1) / self.piece_length)
            .unwrap_or(u32::MAX - 1);
        first..last + 1
    }

    /// Bytes of the file in verified pieces: what can be read without waiting.
    pub fn downloaded(&self) -> u64 {
        let Some(storage) = self.torrent.storage.borrow().clone() else {
            return 0;
        };
        let verified = storage.verified();
        let end = self.offset + self.length;
        self.pieces()
            .filter(|&p| verified.has(p))
            .map(|p| {
                let start = u64::from(p) * self.piece_length;
                let stop = start + self.piece_length;
                stop.min(end).saturating_sub(start.max(self.offset))
            })
            .sum()
    }

    /// A reader of the file: [`AsyncRead`] + [`AsyncSeek`], each read waiting until the
    /// piece it needs is verified. The torrent fetches the pieces under the reader and a
    /// window after it before any other (see [`ReadAhead`](crate::picker::ReadAhead)); a
    /// seek moves the window, and dropping the reader gives its pieces back to the
    /// torrent's usual order. Several readers may read one torrent at once.
    ///
    /// A file of priority 0 (skipped) is not downloaded: reading it waits until it is
    /// selected again.
    pub fn reader(&self) -> FileReader {
        FileReader {
            tx: self.torrent.tx.clone(),
            events: self.torrent.events.clone(),
            storage: self.torrent.storage.clone(),
            id: NEXT_STREAM.fetch_add(1, Ordering::Relaxed),
            file: self.index,
            offset: self.offset,
            length: self.length,
            piece_length: self.piece_length,
            pos: 0,
            chunk: Vec::new(),
            chunk_at: 0,
            fetch: None,
            told: None,
            since: Instant::now(),
            read_since: 0,
        }
    }
}

type Fetch = Pin<Box<dyn Future<Output = io::Result<Vec<u8>>> + Send>>;

/// Reads one file of a torrent as it downloads; see [`File::reader`].
pub struct FileReader {
    tx: mpsc::Sender<Command>,
    events: broadcast::Sender<TorrentEvent>,
    storage: watch::Receiver<Option<Arc<FileStorage>>>,
    id: u64,
    file: usize,
    offset: u64,
    length: u64,
    piece_length: u64,
    /// The position in the file.
    pos: u64,
    /// Bytes read ahead from storage, starting at file position `chunk_at`.
    chunk: Vec<u8>,
    chunk_at: u64,
    /// The read under way, for the file position it starts at.
    fetch: Option<(u64, Fetch)>,
    /// The piece and rate the torrent was last told of.
    told: Option<(u32, u64)>,
    /// Since when the rate is measured (the reader's start or last seek), and the bytes
    /// read since.
    since: Instant,
    read_since: u64,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("file", &self.file)
            .field("length", &self.length)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the torrent has stopped")
}

impl FileReader {
    /// The file's length.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The position the next read starts at.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The bytes per second this reader consumed since it started or last seeked; 0 until
    /// it has read for a moment.
    fn rate(&self) -> u64 {
        let elapsed = self.since.elapsed();
        if elapsed < RATE_AFTER {
            return 0;
        }
        let rate = u128::from(self.read_since) * 1000 / elapsed.as_millis().max(1);
        u64::try_from(rate).unwrap_or(u64::MAX)
    }

    /// The order telling the torrent where the reader is, when the torrent must hear it:
    /// the reader entered another piece, or its rate changed by half or more.
    fn order(&mut self) -> Option<StreamOrder> {
        if self.pos >= self.length {
            // Past the end: the window it had goes.
            if self.told.is_none_or(|(p, _)| p == u32::MAX) {
                return None;
            }
            self.told = Some((u32::MAX, 0));
            let end = self.offset + self.length;
            return Some(StreamOrder::Set {
                id: self.id,
                pos: end,
                end,
                rate: 0,
            });
        }
        let piece = u32::try_from((self.offset + self.pos) / self.piece_length).ok()?;
        let rate = self.rate();
        let fresh = match self.told {
            Some((p, r)) => p != piece || rate > r + r / 2 || rate < r / 2,
            None => true,
        };
        if !fresh {
            return None;
        }
        self.told = Some((piece, rate));
        Some(StreamOrder::Set {
            id: self.id,
            pos: self.offset + self.pos,
            end: self.offset + self.length,
            rate,
        })
    }

    /// Starts reading at `pos`: tells the torrent if needed, waits for the storage and
    /// the piece, then reads the rest of the piece (at most [`CHUNK`]) on a blocking
    /// thread.
    fn start_fetch(&mut self, pos: u64) -> Fetch {
        let order = self.order();
        let tx = self.tx.clone();
        let events = self.events.clone();
        let mut storage = self.storage.clone();
        let file = self.file;
        let at = self.offset + pos;
        // In range: `pos` < the file's length, so the piece is one of the torrent's.
        let piece = (at / self.piece_length) as u32;
        let piece_end = (at / self.piece_length + 1) * self.piece_length;
        let len = (piece_end - at).min(self.length - pos).min(CHUNK);
        Box::pin(async move {
            // Subscribed first, so that no event slips between a look and the wait.
            let mut news = events.subscribe();
            let storage = loop {
                if let Some(s) = storage.borrow_and_update().clone() {
                    break s;
                }
                tokio::select! {
                    changed = storage.changed() => changed.map_err(|_| stopped())?,
                    event = news.recv() => if let Ok(TorrentEvent::Stopped | TorrentEvent::Failed(_)) = event {
                        return Err(stopped());
                    },
                }
            };
            if let Some(order) = order {
                tx.send(Command::Stream(order))
                    .await
                    .map_err(|_| stopped())?;
            }
            while !storage.verified().has(piece) {
                match news.recv().await {
                    Ok(TorrentEvent::Stopped | TorrentEvent::Failed(_))
                    | Err(broadcast::error::RecvError::Closed) => return Err(stopped()),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                }
            }
            tokio::task::spawn_blocking(move || {
                // At most CHUNK bytes.
                let mut buf = vec![0; len as usize];
                storage
                    .read_file_at(file, pos, &mut buf)
                    .map_err(io::Error::other)?;
                Ok(buf)
            })
            .await
            .map_err(io::Error::other)?
        })
    }

    /// Bytes buffered at the current position.
    fn buffered(&self) -> &[u8] {
        let end = self.chunk_at + self.chunk.len() as u64;
        if self.pos < self.chunk_at || self.pos >= end {
            return &[];
        }
        // Within the chunk, whose length is a usize.
        &self.chunk[(self.pos - self.chunk_at) as usize..]
    }

    /// Tells the torrent now where a seek took the reader, so that the pieces it left lose
    /// their deadlines before its next read (best effort: the read tells again).
    fn tell_now(&mut self) {
        if self.storage.borrow().is_none() {
            return;
        }
        if let Some(order) = self.order()
            && self.tx.try_send(Command::Stream(order)).is_err()
        {
            self.told = None;
        }
    }
}

impl AsyncRead for FileReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.pos >= me.length || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let ready = me.buffered();
            if !ready.is_empty() {
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                me.pos += n as u64;
                me.read_since += n as u64;
                return Poll::Ready(Ok(()));
            }
            if me.fetch.as_ref().is_none_or(|(at, _)| *at != me.pos) {
                let pos = me.pos;
                let fetch = me.start_fetch(pos);
                me.fetch = Some((pos, fetch));
            }
            let Some((at, fetch)) = me.fetch.as_mut() else {
                continue;
            };
            let at = *at;
            match fetch.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    me.fetch = None;
                    me.chunk = result?;
                    me.chunk_at = at;
                    if me.chunk.is_empty() {
                        // Nothing read: the file is shorter than its entry says.
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
            }
        }
    }
}

impl AsyncSeek for FileReader {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let me = self.get_mut();
        let target = match position {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => me.length.checked_add_signed(d),
            SeekFrom::Current(d) => me.pos.checked_add_signed(d),
        };
        let Some(target) = target else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            ));
        };
        if target != me.pos {
            me.pos = target;
            me.since = Instant::now();
            me.read_since = 0;
            me.tell_now();
        }
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.pos))
    }
}

impl Drop for FileReader {
    fn drop(&mut self) {
        if self.told.is_none() {
            return;
        }
        let close = Command::Stream(StreamOrder::Close(self.id));
        if let Err(mpsc::error::TrySendError::Full(close)) = self.tx.try_send(close)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let tx = self.tx.clone();
            runtime.spawn(async move {
                let _ = tx.send(close).await;
            });
        }
    }
}
