//! Hashing for creation on an injected [`HashEngine`]: a reader thread fills large buffers
//! with the data stream (files back to back, zeros for padding) while the caller's thread
//! hashes the previous buffer's pieces as one batch with [`HashEngine::run`] (double
//! buffering: I/O and hashing overlap).
//!
//! Memory is bounded by a few buffers of [`CHUNK_TARGET`] bytes (or one piece, if pieces
//! are larger), whatever the file sizes.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::sync::mpsc;

use webtorrent_hash::merkle;
use webtorrent_hash::{Algorithm, BLOCK_SIZE, Digest, HashEngine, Job};

use super::hasher::{Hashes, Layout, Segment};
use super::{CreateError, PlannedFile, Source};

/// Target size of one read buffer.
const CHUNK_TARGET: u64 = 8 * 1024 * 1024;

/// A filled buffer: chunk number and its bytes.
type Filled = Result<(u64, Vec<u8>), CreateError>;

/// Hashes the stream described by `layout` with `engine`.
pub(crate) fn hash(
    files: &[PlannedFile],
    layout: &Layout,
    engine: &dyn HashEngine,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Hashes, CreateError> {
    let pl = layout.piece_length;
    let chunk_size = pl * (CHUNK_TARGET / pl).max(1);
    let chunks = layout.stream_length.div_ceil(chunk_size);
    let buffers = if chunk_size >= 64 * 1024 * 1024 { 2 } else { 3 };
    let total: u64 = files.iter().map(|f| f.length).sum();

    let mut out = Hashes {
        v1: Vec::with_capacity(if layout.version.has_v1() {
            layout.piece_count as usize
        } else {
            0
        }),
        roots: vec![None; files.len()],
        layers: vec![None; files.len()],
    };
    let mut v2_layers: Vec<Vec<[u8; 32]>> = vec![Vec::new(); files.len()];
    // The file owning each piece (v2): every piece starts inside exactly one file.
    let mut owner = PieceOwner::new(files, layout);
    let mut hashed = 0u64;
    let mut counter = RealCounter {
        segments: &layout.segments,
        next: 0,
        pos: 0,
    };

    std::thread::scope(|scope| -> Result<(), CreateError> {
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let (full_tx, full_rx) = mpsc::sync_channel::<Filled>(buffers);
        for _ in 0..buffers.min(chunks.max(1) as usize) {
            // The reader grows each buffer to the chunk size on first use.
            let _ = free_tx.send(Vec::new());
        }
        scope.spawn(move || read_stream(files, layout, chunk_size, chunks, &free_rx, &full_tx));

        for _ in 0..chunks {
            let (chunk, buf) = match full_rx.recv() {
                Ok(filled) => filled?,
                // The reader only stops early after sending an error (or by panicking, which
                // the scope re-raises).
                Err(_) => {
                    return Err(CreateError::Io {
                        path: std::path::PathBuf::new(),
                        source: std::io::Error::other("the reader thread stopped"),
                    });
                }
            };
            let start = chunk * chunk_size;
            let mut jobs: Vec<Job<'_>> = Vec::new();
            let mut v2_targets: Vec<usize> = Vec::new();
            let pieces = (buf.len() as u64).div_ceil(pl);
            if layout.version.has_v1() {
                for p in 0..pieces {
                    let s = (p * pl) as usize;
                    let e = (s + pl as usize).min(buf.len());
                    jobs.push(Job::new(&buf[s..e], Algorithm::Sha1));
                }
            }
            if layout.version.has_v2() {
                for p in 0..pieces {
                    let piece_start = start + p * pl;
                    let Some(file) = owner.file_at(piece_start) else {
                        continue;
                    };
                    let f_end = layout.offsets[file] + files[file].length;
                    let s = (piece_start - start) as usize;
                    let e = ((piece_start + pl).min(f_end) - start) as usize;
                    let width = if files[file].length < pl {
                        // A file of at most one piece: its tree is only as wide as a power
                        // of two of its own blocks.
                        (merkle::leaf_count(files[file].length).next_power_of_two()
                            * BLOCK_SIZE as u64) as usize
                    } else {
                        pl as usize
                    };
                    jobs.push(Job::new(
                        &buf[s..e],
                        Algorithm::MerklePiece {
                            piece_length: width,
                        },
                    ));
                    v2_targets.push(file);
                }
            }
            engine.run(&mut jobs);
            let (v1_jobs, v2_jobs) = if layout.version.has_v1() {
                jobs.split_at(pieces as usize)
            } else {
                jobs.split_at(0)
            };
            for job in v1_jobs {
                out.v1.push(digest20(job.digest));
            }
            for (job, &file) in v2_jobs.iter().zip(&v2_targets) {
                v2_layers[file].push(digest32(job.digest));
            }
            hashed += counter.count(start + buf.len() as u64);
            drop(jobs);
            progress(hashed, total);
            // The reader may already be done; then the buffer is simply dropped.
            let _ = free_tx.send(buf);
        }
        Ok(())
    })?;

    if layout.version.has_v2() {
        for (i, layer) in v2_layers.into_iter().enumerate() {
            match layer.len() {
                0 => {}
                1 => out.roots[i] = layer.first().copied(),
                _ => {
                    out.roots[i] = Some(merkle::root_from_piece_layer(&layer, pl as usize));
                    out.layers[i] = Some(layer);
                }
            }
        }
    }
    Ok(out)
}

fn digest20(d: Option<Digest>) -> [u8; 20] {
    // The engine fills every job's digest; a missing one would be an engine bug, and an
    // all-zero hash makes the torrent fail verification instead of panicking.
    d.and_then(|d| d.sha1()).unwrap_or([0; 20])
}

fn digest32(d: Option<Digest>) -> [u8; 32] {
    d.and_then(|d| d.sha256()).unwrap_or([0; 32])
}

/// Counts bytes of real files in the stream, chunk after chunk.
struct RealCounter<'a> {
    segments: &'a [Segment],
    /// First segment not fully counted.
    next: usize,
    /// Stream position counted up to.
    pos: u64,
}

impl RealCounter<'_> {
    /// Real-file bytes between the previous position and `end`.
    fn count(&mut self, end: u64) -> u64 {
        let mut sum = 0;
        while let Some(seg) = self.segments.get(self.next) {
            let seg_end = seg.offset + seg.length;
            if seg.file.is_some() {
                let a = seg.offset.max(self.pos);
                let b = seg_end.min(end);
                sum += b.saturating_sub(a);
            }
            if seg_end <= end {
                self.next += 1;
            } else {
                break;
            }
        }
        self.pos = end;
        sum
    }
}

/// Finds the file a piece starts in, walking forward (pieces are visited in order).
struct PieceOwner<'a> {
    files: &'a [PlannedFile],
    offsets: &'a [u64],
    next: usize,
}

impl<'a> PieceOwner<'a> {
    fn new(files: &'a [PlannedFile], layout: &'a Layout) -> Self {
        Self {
            files,
            offsets: &layout.offsets,
            next: 0,
        }
    }

    fn file_at(&mut self, pos: u64) -> Option<usize> {
        while self.next < self.files.len() {
            let i = self.next;
            let end = self.offsets[i] + self.files[i].length;
            if end > pos {
                return (self.offsets[i] <= pos && self.files[i].length > 0).then_some(i);
            }
            self.next += 1;
        }
        None
    }
}

/// The reader thread: fills buffers chunk by chunk, in order.
fn read_stream(
    files: &[PlannedFile],
    layout: &Layout,
    chunk_size: u64,
    chunks: u64,
    free: &mpsc::Receiver<Vec<u8>>,
    full: &mpsc::SyncSender<Filled>,
) {
    let mut reader = StreamReader {
        files,
        segments: &layout.segments,
        seg: 0,
        open: None,
    };
    for chunk in 0..chunks {
        let Ok(mut buf) = free.recv() else { return };
        let start = chunk * chunk_size;
        let end = (start + chunk_size).min(layout.stream_length);
        // Every byte is overwritten by `fill`, so the buffer is only zeroed when it grows.
        buf.resize((end - start) as usize, 0);
        let result = reader.fill(start, &mut buf).map(|()| (chunk, buf));
        let failed = result.is_err();
        if full.send(result).is_err() || failed {
            return;
        }
    }
}

struct StreamReader<'a> {
    files: &'a [PlannedFile],
    segments: &'a [Segment],
    seg: usize,
    /// The open file: its index and handle.
    open: Option<(usize, File)>,
}

impl StreamReader<'_> {
    /// Fills `buf` with the stream bytes from `start`: file data, zeros for padding and for
    /// the gaps between piece-aligned files.
    fn fill(&mut self, start: u64, buf: &mut [u8]) -> Result<(), CreateError> {
        let end = start + buf.len() as u64;
        let mut filled = start;
        while let Some(seg) = self.segments.get(self.seg).copied() {
            let seg_end = seg.offset + seg.length;
            if seg.offset >= end {
                break;
            }
            let a = seg.offset.max(start);
            let b = seg_end.min(end);
            if a > filled {
                buf[(filled - start) as usize..(a - start) as usize].fill(0);
            }
            if b > a {
                let dst = &mut buf[(a - start) as usize..(b - start) as usize];
                match seg.file {
                    Some(file) => self.read_file(file, a - seg.offset, dst)?,
                    None => dst.fill(0),
                }
                filled = b;
            }
            if seg_end <= end {
                if let Some(file) = seg.file {
                    self.finish_file(file)?;
                }
                self.seg += 1;
            } else {
                break;
            }
        }
        if end > filled {
            buf[(filled - start) as usize..].fill(0);
        }
        Ok(())
    }

    /// Reads `dst.len()` bytes of file `file` starting at `pos` (reads are sequential).
    fn read_file(&mut self, file: usize, pos: u64, dst: &mut [u8]) -> Result<(), CreateError> {
        let planned = &self.files[file];
        match &planned.source {
            Source::Memory(data) => {
                let s = pos as usize;
                let src = data.get(s..s + dst.len()).ok_or(CreateError::FileChanged {
                    path: planned.components.join("/").into(),
                })?;
                dst.copy_from_slice(src);
                Ok(())
            }
            Source::None => Ok(()),
            Source::Disk(path) => {
                if self.open.as_ref().is_none_or(|(i, _)| *i != file) {
                    let handle = File::open(path).map_err(|source| CreateError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    self.open = Some((file, handle));
                }
                let Some((_, handle)) = self.open.as_mut() else {
                    return Ok(());
                };
                handle.read_exact(dst).map_err(|source| {
                    if source.kind() == ErrorKind::UnexpectedEof {
                        CreateError::FileChanged { path: path.clone() }
                    } else {
                        CreateError::Io {
                            path: path.clone(),
                            source,
                        }
                    }
                })
            }
        }
    }

    /// Done with a file: check it did not grow, then close it.
    fn finish_file(&mut self, file: usize) -> Result<(), CreateError> {
        let Source::Disk(path) = &self.files[file].source else {
            return Ok(());
        };
        if self.files[file].length == 0 {
            return Ok(());
        }
        if let Some((i, mut handle)) = self.open.take()
            && i == file
        {
            let mut probe = [0u8; 1];
            let n = handle.read(&mut probe).map_err(|source| CreateError::Io {
                path: path.clone(),
                source,
            })?;
            if n != 0 {
                return Err(CreateError::FileChanged { path: path.clone() });
            }
        }
        Ok(())
    }
}
