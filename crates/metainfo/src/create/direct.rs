//! Hashing for creation with the built-in software hashes.
//!
//! `threads` workers claim runs of consecutive pieces (about [`CLAIM_BYTES`]) from a shared
//! counter. Each worker reads its run with positioned reads (`pread`), [`CHUNK`] bytes at a
//! time into its own reusable buffer, and hashes each chunk block by block while it is in
//! cache: SHA-1 for v1, 16 KiB SHA-256 leaves for v2, the leaves becoming the piece's Merkle
//! root when the piece ends. The caller's thread only collects the digests and reports
//! progress, so no worker ever waits for another (no per-batch barrier, no reader thread
//! handing buffers over) and file data is copied once, from the page cache into a buffer
//! that stays in L2. Files are not mapped: that needs `unsafe`, and a mapped file that
//! shrinks kills the process with `SIGBUS` instead of returning an error.
//!
//! Memory is bounded by one [`CHUNK`] buffer and one piece's leaf hashes per worker, plus
//! the digests (20 + 32 bytes per piece), whatever the file or piece sizes.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use webtorrent_hash::merkle::{self, Node};
use webtorrent_hash::{BLOCK_SIZE, Sha1, sha256};

use super::hasher::{Hashes, Layout};
use super::{CreateError, PlannedFile, Source};

/// Bytes read at once: small enough to stay in L2 between the read, the SHA-1 and the
/// SHA-256 leaves; a multiple of [`BLOCK_SIZE`], so leaves never straddle two reads.
const CHUNK: usize = 128 * 1024;

/// Pieces are claimed in runs of about this many bytes (at least one piece): long enough
/// for sequential reads (and readahead) and few progress messages, short enough that the
/// workers finish together (runs also shrink near the end).
const CLAIM_BYTES: u64 = 4 * 1024 * 1024;

/// Zeros fed to SHA-1 for pad files.
static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// Digests of one piece.
struct PieceDigest {
    index: u32,
    v1: [u8; 20],
    v2: Node,
}

/// What a worker tells the collecting thread.
enum Report {
    /// A run of pieces is hashed; `bytes` of real files were read.
    Done {
        pieces: Vec<PieceDigest>,
        bytes: u64,
    },
    /// Hashing the run starting at `piece` failed.
    Failed { piece: u32, error: CreateError },
}

/// Hashes the stream described by `layout` on `threads` workers.
pub(crate) fn hash(
    files: &[PlannedFile],
    layout: &Layout,
    threads: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Hashes, CreateError> {
    let total: u64 = files.iter().map(|f| f.length).sum();
    let pieces = u64::from(layout.piece_count);
    let max_run = (CLAIM_BYTES / layout.piece_length).max(1);
    let threads = threads
        .min(usize::try_from(pieces).unwrap_or(usize::MAX))
        .max(1);
    let claims = Claims::new(pieces, max_run, threads as u64);
    let stop = AtomicBool::new(false);

    let has_v1 = layout.version.has_v1();
    let has_v2 = layout.version.has_v2();
    let count = layout.piece_count as usize;
    let mut v1 = vec![[0u8; 20]; if has_v1 { count } else { 0 }];
    let mut v2 = vec![[0u8; 32]; if has_v2 { count } else { 0 }];
    let mut failure: Option<(u32, CreateError)> = None;

    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Report>();
        for _ in 0..threads {
            let tx = tx.clone();
            let (claims, stop) = (&claims, &stop);
            scope.spawn(move || {
                let mut worker = Worker::new(files, layout);
                while !stop.load(Ordering::Relaxed) {
                    let Some((first, last)) = claims.next() else {
                        break;
                    };
                    // Piece indices fit in u32: `piece_count` is one.
                    let report = match worker.hash_run(first as u32, last as u32) {
                        Ok((pieces, bytes)) => Report::Done { pieces, bytes },
                        Err(error) => {
                            stop.store(true, Ordering::Relaxed);
                            Report::Failed {
                                piece: first as u32,
                                error,
                            }
                        }
                    };
                    if tx.send(report).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut hashed = 0u64;
        // Ends when every worker has finished (or panicked: the scope then re-raises it).
        for report in rx {
            match report {
                Report::Done { pieces, bytes } => {
                    for p in pieces {
                        let i = p.index as usize;
                        if has_v1 {
                            v1[i] = p.v1;
                        }
                        if has_v2 {
                            v2[i] = p.v2;
                        }
                    }
                    hashed += bytes;
                    if failure.is_none() {
                        progress(hashed, total);
                    }
                }
                Report::Failed { piece, error } => {
                    // Runs are claimed in order and every run before the failed one is
                    // finished, so keeping the first failure in stream order reports the
                    // same error as a sequential pass would.
                    if failure.as_ref().is_none_or(|(p, _)| piece < *p) {
                        failure = Some((piece, error));
                    }
                }
            }
        }
    });
    if let Some((_, error)) = failure {
        return Err(error);
    }

    let mut out = Hashes {
        v1,
        roots: vec![None; files.len()],
        layers: vec![None; files.len()],
    };
    if has_v2 {
        let pl = layout.piece_length;
        for (i, f) in files.iter().enumerate() {
            if f.length == 0 {
                continue;
            }
            let first = (layout.offsets[i] / pl) as usize;
            let last = (layout.offsets[i] + f.length).div_ceil(pl) as usize;
            let layer = &v2[first..last];
            if let [root] = layer {
                out.roots[i] = Some(*root);
            } else {
                out.roots[i] = Some(merkle::root_from_piece_layer(layer, pl as usize));
                out.layers[i] = Some(layer.to_vec());
            }
        }
    }
    Ok(out)
}

/// The shared counter workers claim runs of pieces from.
pub(super) struct Claims {
    /// First piece not claimed yet.
    next: AtomicU64,
    pieces: u64,
    /// Pieces in a run ([`CLAIM_BYTES`] worth, at least one).
    max_run: u64,
    threads: u64,
}

impl Claims {
    pub(super) fn new(pieces: u64, max_run: u64, threads: u64) -> Self {
        Self {
            next: AtomicU64::new(0),
            pieces,
            max_run: max_run.max(1),
            threads: threads.max(1),
        }
    }

    /// Claims the next run of pieces, `first..last`: `max_run` pieces, fewer near the end
    /// (a share of what is left) so that the workers finish at about the same time.
    pub(super) fn next(&self) -> Option<(u64, u64)> {
        let run = |first: u64| ((self.pieces - first) / (2 * self.threads)).clamp(1, self.max_run);
        let first = self
            .next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |first| {
                (first < self.pieces).then(|| first + run(first))
            })
            .ok()?;
        Some((first, first + run(first)))
    }
}

/// One worker's state: its read buffer, the file it has open and its piece hasher.
struct Worker<'a> {
    files: &'a [PlannedFile],
    layout: &'a Layout,
    buf: Vec<u8>,
    /// The open file: its index and handle.
    open: Option<(usize, File)>,
    pieces: PieceHasher<'a>,
}

impl<'a> Worker<'a> {
    fn new(files: &'a [PlannedFile], layout: &'a Layout) -> Self {
        Self {
            files,
            layout,
            buf: Vec::new(),
            open: None,
            pieces: PieceHasher::new(files, layout),
        }
    }

    /// Hashes pieces `first..last`: their digests and the real-file bytes read.
    fn hash_run(&mut self, first: u32, last: u32) -> Result<(Vec<PieceDigest>, u64), CreateError> {
        let layout = self.layout;
        let pl = layout.piece_length;
        let start = u64::from(first) * pl;
        let end = (u64::from(last) * pl).min(layout.stream_length);
        self.pieces.start(first);
        let mut bytes = 0;
        let mut pos = start;
        let segments = &layout.segments;
        let mut seg = segments.partition_point(|s| s.offset + s.length <= start);
        while pos < end {
            let Some(s) = segments.get(seg).filter(|s| s.offset < end) else {
                // Past the last segment: not part of any file.
                self.pieces.zeros(end - pos);
                break;
            };
            if s.offset > pos {
                // The gap before a piece-aligned file (v2 only): not part of any file.
                self.pieces.zeros(s.offset - pos);
                pos = s.offset;
            }
            let run_end = (s.offset + s.length).min(end);
            match s.file {
                None => self.pieces.zeros(run_end - pos),
                // Empty files (and symlinks) have no bytes to hash.
                Some(_) if run_end == pos => {}
                Some(file) => {
                    self.hash_file_range(file, pos - s.offset, run_end - pos)?;
                    bytes += run_end - pos;
                }
            }
            pos = run_end;
            seg += 1;
        }
        Ok((std::mem::take(&mut self.pieces.done), bytes))
    }

    /// Hashes `len` bytes of `file` from `pos`, reading [`CHUNK`] bytes at a time.
    fn hash_file_range(&mut self, file: usize, pos: u64, len: u64) -> Result<(), CreateError> {
        let planned = &self.files[file];
        let path = match &planned.source {
            Source::Disk(path) => path,
            Source::Memory(data) => {
                let range = usize::try_from(pos)
                    .ok()
                    .zip(usize::try_from(pos + len).ok())
                    .and_then(|(a, b)| data.get(a..b));
                let data = range.ok_or_else(|| CreateError::FileChanged {
                    path: planned.components.join("/").into(),
                })?;
                self.pieces.feed(file, data);
                return Ok(());
            }
            // A symlink has no data (and a length of 0, so this is not reached).
            Source::None => {
                self.pieces.zeros(len);
                return Ok(());
            }
        };
        let io_error = |source: std::io::Error| CreateError::Io {
            path: path.clone(),
            source,
        };
        let handle = match &mut self.open {
            Some((i, handle)) if *i == file => handle,
            open => &mut open.insert((file, File::open(path).map_err(io_error)?)).1,
        };
        if self.buf.len() < CHUNK {
            self.buf.resize(CHUNK, 0);
        }
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            let buf = &mut self.buf[..n];
            read_at(handle, buf, pos + done).map_err(|source| {
                if source.kind() == std::io::ErrorKind::UnexpectedEof {
                    CreateError::FileChanged { path: path.clone() }
                } else {
                    io_error(source)
                }
            })?;
            self.pieces.feed(file, buf);
            done += n as u64;
        }
        // Just read the file's last byte: check that the file did not grow.
        if pos + len == planned.length {
            let mut probe = [0u8; 1];
            if read_some_at(handle, &mut probe, planned.length).map_err(io_error)? != 0 {
                return Err(CreateError::FileChanged { path: path.clone() });
            }
        }
        Ok(())
    }
}

/// Hashes consecutive pieces from the bytes fed to it, finishing each piece at its end.
struct PieceHasher<'a> {
    files: &'a [PlannedFile],
    piece_length: u64,
    stream_length: u64,
    has_v1: bool,
    has_v2: bool,
    /// The piece being hashed, where it ends, and how far it is fed.
    index: u32,
    end: u64,
    pos: u64,
    sha1: Sha1,
    /// Its leaf hashes (v2), from `v2_file`: with v2 every piece lies in one file.
    leaves: Vec<Node>,
    v2_file: Option<usize>,
    /// Digests of the finished pieces.
    done: Vec<PieceDigest>,
}

impl<'a> PieceHasher<'a> {
    fn new(files: &'a [PlannedFile], layout: &Layout) -> Self {
        Self {
            files,
            piece_length: layout.piece_length,
            stream_length: layout.stream_length,
            has_v1: layout.version.has_v1(),
            has_v2: layout.version.has_v2(),
            index: 0,
            end: 0,
            pos: 0,
            sha1: Sha1::new(),
            leaves: Vec::new(),
            v2_file: None,
            done: Vec::new(),
        }
    }

    /// Starts at piece `index`.
    fn start(&mut self, index: u32) {
        self.index = index;
        self.pos = u64::from(index) * self.piece_length;
        self.end = (self.pos + self.piece_length).min(self.stream_length);
        self.sha1 = Sha1::new();
        self.leaves.clear();
        self.v2_file = None;
    }

    /// Hashes the next bytes of the stream, from `file`.
    fn feed(&mut self, file: usize, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (self.end - self.pos).min(data.len() as u64) as usize;
            let (now, rest) = data.split_at(take);
            // Block by block, so that SHA-256 reads what SHA-1 just brought into L1. Pieces
            // of a v2 file start at a piece boundary of the file, so blocks are its leaves.
            for block in now.chunks(BLOCK_SIZE) {
                if self.has_v1 {
                    self.sha1.update(block);
                }
                if self.has_v2 {
                    self.leaves.push(sha256(block));
                }
            }
            self.v2_file = Some(file);
            data = rest;
            if !self.advance(take as u64) {
                break;
            }
        }
    }

    /// Hashes `len` zeros that belong to no file: pad files (v1 hashes only).
    fn zeros(&mut self, mut len: u64) {
        while len > 0 {
            let take = (self.end - self.pos).min(len);
            if self.has_v1 {
                feed_zeros(&mut self.sha1, take);
            }
            len -= take;
            if !self.advance(take) {
                break;
            }
        }
    }

    /// Moves `n` bytes on, finishing the piece at its end; `false` past the stream's end
    /// (which callers never feed).
    fn advance(&mut self, n: u64) -> bool {
        self.pos += n;
        if self.pos < self.end {
            return true;
        }
        let v2 = match self.v2_file.filter(|_| self.has_v2) {
            Some(file) if self.files[file].length > self.piece_length => merkle::root_padded(
                &self.leaves,
                merkle::leaves_per_piece(self.piece_length as usize),
                [0; 32],
            ),
            // A file of at most one piece: its tree is only as wide as a power of two of
            // its own leaves.
            Some(_) => merkle::root_from_leaves(&self.leaves),
            None => [0; 32],
        };
        let sha1 = std::mem::take(&mut self.sha1);
        let v1 = if self.has_v1 {
            sha1.finalize()
        } else {
            [0; 20]
        };
        self.done.push(PieceDigest {
            index: self.index,
            v1,
            v2,
        });
        if self.end >= self.stream_length {
            return false;
        }
        self.start(self.index + 1);
        true
    }
}

fn feed_zeros(sha1: &mut Sha1, mut len: u64) {
    while len > 0 {
        let n = len.min(CHUNK as u64) as usize;
        sha1.update(&ZEROS[..n]);
        len -= n as u64;
    }
}

/// Fills `buf` from `offset`; `UnexpectedEof` if the file ends first.
#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Reads up to `buf.len()` bytes at `offset`.
#[cfg(unix)]
fn read_some_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

/// Fills `buf` from `offset`; `UnexpectedEof` if the file ends first.
#[cfg(not(unix))]
fn read_at(mut file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// Reads up to `buf.len()` bytes at `offset`.
#[cfg(not(unix))]
fn read_some_at(mut file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read(buf)
}
