//! [`FileStorage`]: a torrent's files on disk.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use crate::parts::Parts;
use crate::resume::FileState;
use crate::storage::{VerifiedSet, check_file_range};
use crate::{Bitfield, Layout, Storage, StorageError};

/// Default bound of [`FileStorage`]'s open-file cache.
pub const DEFAULT_MAX_OPEN_FILES: usize = 64;

/// A store writing each file of the torrent under a download root.
///
/// - Each file goes to `root/<FileEntry::path>`: the sanitised relative path of the
///   metainfo (which starts with the torrent name for a multi-file torrent). Every path is
///   checked again here: it must be made of plain components only, and no folder on the
///   way nor the file itself may be a symbolic link, so a link planted inside the download
///   folder cannot redirect writes outside it. (The check runs when a file is opened; a
///   link swapped in between the check and the open is not detected.)
/// - Files are created on their first write, with their folders, and set to their full
///   length at once: sparse where the filesystem allows, zeros are never written. Empty
///   files are created by [`new`](Self::new). Pad files are never created. Symbolic-link
///   entries (BEP 47 `l`) are not created yet.
/// - I/O is positional (`pread`/`pwrite` on Unix, `seek_read`/`seek_write` on Windows), so
///   threads do not serialise on a file cursor. At most `max_open_files` handles stay open.
/// - A file longer on disk than in the torrent is left as it is.
/// - Files can be skipped ([`set_skipped`](Self::set_skipped)): the bytes of a skipped file
///   that share a piece with a wanted one are kept in a part file per piece and file, in the
///   hidden folder `.<info-hash>.parts` of the root, so the skipped file itself is never
///   created. Reads of a skipped file come from the part files, else from the file if it is
///   there. A file wanted again, now or when a later store opens the folder, gets those
///   bytes moved into it.
#[derive(Debug)]
pub struct FileStorage {
    layout: Layout,
    root: PathBuf,
    paths: Vec<PathBuf>,
    cache: Mutex<HandleCache>,
    verified: VerifiedSet,
    /// Which files are skipped. Writes hold it for reading, so that a change of selection
    /// (which moves bytes between part files and files) never runs under a write.
    skipped: RwLock<Vec<bool>>,
    parts: Mutex<Parts>,
}

#[derive(Debug)]
struct Handle {
    file: Arc<File>,
    writable: bool,
    last_used: u64,
}

#[derive(Debug)]
struct HandleCache {
    open: HashMap<usize, Handle>,
    dirty: HashSet<usize>,
    tick: u64,
    max: usize,
}

impl FileStorage {
    /// A store for `layout` under `root` (created if missing), with the default bound on
    /// open files. Creates the torrent's empty files.
    pub fn new(layout: Layout, root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        Self::with_max_open_files(layout, root, DEFAULT_MAX_OPEN_FILES)
    }

    /// Like [`new`](Self::new), with the files of `skipped` skipped from the start (see
    /// [`set_skipped`](Self::set_skipped)): skipped empty files are not created either.
    pub fn with_skipped(
        layout: Layout,
        root: impl Into<PathBuf>,
        skipped: &[bool],
    ) -> Result<Self, StorageError> {
        Self::open(layout, root.into(), DEFAULT_MAX_OPEN_FILES, Some(skipped))
    }

    /// Like [`new`](Self::new), keeping at most `max_open_files` (at least 1) files open.
    pub fn with_max_open_files(
        layout: Layout,
        root: impl Into<PathBuf>,
        max_open_files: usize,
    ) -> Result<Self, StorageError> {
        Self::open(layout, root.into(), max_open_files, None)
    }

    fn open(
        layout: Layout,
        root: PathBuf,
        max_open_files: usize,
        skipped: Option<&[bool]>,
    ) -> Result<Self, StorageError> {
        fs::create_dir_all(&root).map_err(|e| StorageError::io(&root, e))?;
        let paths = layout
            .info()
            .files()
            .iter()
            .map(|f| {
                if f.path.as_os_str().is_empty()
                    || !f
                        .path
                        .components()
                        .all(|c| matches!(c, Component::Normal(_)))
                {
                    return Err(StorageError::UnsafePath {
                        path: f.path.clone(),
                        reason: "not a plain relative path",
                    });
                }
                Ok(root.join(&f.path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let verified = VerifiedSet::new(layout.piece_count());
        let parts = Parts::new(root.join(format!(".{}.parts", layout.info().info_hashes().wire())));
        let skipped = match skipped {
            Some(s) if s.len() == paths.len() => s.to_vec(),
            Some(s) => {
                return Err(StorageError::FileCountMismatch {
                    expected: paths.len(),
                    actual: s.len(),
                });
            }
            None => vec![false; paths.len()],
        };
        let skipped = RwLock::new(skipped);
        let store = Self {
            layout,
            root,
            paths,
            skipped,
            parts: Mutex::new(parts),
            cache: Mutex::new(HandleCache {
                open: HashMap::new(),
                dirty: HashSet::new(),
                tick: 0,
                max: max_open_files.max(1),
            }),
            verified,
        };
        store.create_empty_files()?;
        // Part files left for files wanted now (by an earlier selection) go into them.
        store.unpark(&store.skipped())?;
        Ok(store)
    }

    /// The download root.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where file `file` is (or will be) stored, `None` when out of range.
    #[must_use]
    pub fn path(&self, file: usize) -> Option<&Path> {
        self.paths.get(file).map(PathBuf::as_path)
    }

    /// Size and modification time of every file as it is on disk now (`None` for a
    /// missing file, and always for pad files), for [`ResumeData`](crate::ResumeData).
    pub fn file_states(&self) -> Result<Vec<Option<FileState>>, StorageError> {
        self.layout
            .info()
            .files()
            .iter()
            .zip(&self.paths)
            .map(|(entry, path)| {
                if entry.is_pad() {
                    return Ok(None);
                }
                match fs::metadata(path) {
                    Ok(m) => Ok(Some(FileState::from_metadata(&m))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(StorageError::io(path, e)),
                }
            })
            .collect()
    }

    /// Which files are skipped (see [`set_skipped`](Self::set_skipped)), by index into the
    /// info's files.
    #[must_use]
    pub fn skipped(&self) -> Vec<bool> {
        self.skipped_read().clone()
    }

    /// The folder holding the part files of skipped files' bytes (it exists only while it
    /// holds some).
    #[must_use]
    pub fn parts_dir(&self) -> PathBuf {
        self.lock_parts().dir().to_path_buf()
    }

    /// Sets which files are skipped, one flag per file of the info (pad files included; their
    /// flag is ignored). The bytes of a skipped file are written to part files from now on;
    /// a file no longer skipped gets the bytes kept for it in part files written into it, and
    /// part files nothing skipped needs any more are removed. Data already in a file that
    /// becomes skipped stays where it is.
    pub fn set_skipped(&self, skipped: &[bool]) -> Result<(), StorageError> {
        let mut current = self.skipped.write().unwrap_or_else(PoisonError::into_inner);
        if skipped.len() != current.len() {
            return Err(StorageError::FileCountMismatch {
                expected: current.len(),
                actual: skipped.len(),
            });
        }
        current.copy_from_slice(skipped);
        self.unpark(&current)
    }

    /// Moves the part files of the files not skipped into those files (with the selection
    /// locked for writing).
    fn unpark(&self, skipped: &[bool]) -> Result<(), StorageError> {
        let mut parts = self.lock_parts();
        for (piece, file) in parts.list()? {
            if skipped.get(file).is_none_or(|&s| s) {
                continue;
            }
            let (start, length) = self.run_in_piece(file, piece);
            // A part file shorter than its run was never complete: its piece was not
            // verified, so its bytes are not worth keeping.
            if length > 0 && parts.len(piece, file)?.is_some_and(|n| n >= length) {
                let mut buf = vec![0; usize::try_from(length).unwrap_or(usize::MAX)];
                if parts.read(piece, file, 0, &mut buf)? {
                    let handle = self.handle(file, true)?;
                    let path = &self.paths[file];
                    pio::write_all_at(&handle, &buf, start)
                        .and_then(|()| handle.sync_data())
                        .map_err(|e| StorageError::io(path, e))?;
                }
            }
            parts.remove(piece, file)?;
        }
        Ok(())
    }

    /// Where file `file` meets piece `piece`: its offset inside the file and its length
    /// (0 when they do not meet).
    fn run_in_piece(&self, file: usize, piece: u32) -> (u64, u64) {
        let info = self.layout.info();
        let Some(entry) = info.files().get(file) else {
            return (0, 0);
        };
        let piece_start = u64::from(piece) * info.piece_length();
        let piece_end = piece_start + info.piece_length();
        let start = piece_start.max(entry.offset);
        let end = piece_end.min(entry.end());
        if start >= end {
            return (0, 0);
        }
        (start - entry.offset, end - start)
    }

    /// The pieces `length` bytes at `offset` of file `file` fall in: `(piece, offset inside
    /// the file's run in that piece, offset inside the bytes, length)` for each.
    fn piece_runs(&self, file: usize, offset: u64, length: u64) -> Vec<(u32, u64, usize, usize)> {
        let info = self.layout.info();
        let piece_length = info.piece_length().max(1);
        let file_start = info.files()[file].offset;
        let mut global = file_start + offset;
        let end = global + length;
        let mut out = Vec::new();
        let mut pos = 0usize;
        while global < end {
            let piece = global / piece_length;
            let piece_start = piece * piece_length;
            let run_start = piece_start.max(file_start);
            let n = (piece_start + piece_length - global).min(end - global);
            let n_usize = usize::try_from(n).unwrap_or(usize::MAX);
            out.push((
                u32::try_from(piece).unwrap_or(u32::MAX),
                global - run_start,
                pos,
                n_usize,
            ));
            pos += n_usize;
            global += n;
        }
        out
    }

    fn skipped_read(&self) -> std::sync::RwLockReadGuard<'_, Vec<bool>> {
        // The flags are plain booleans: a panic cannot leave them half-updated.
        self.skipped.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_parts(&self) -> MutexGuard<'_, Parts> {
        self.parts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads bytes of a skipped file: from its part files, else from the file itself.
    fn read_skipped(&self, file: usize, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        for (piece, in_run, pos, len) in self.piece_runs(file, offset, buf.len() as u64) {
            let part = &mut buf[pos..pos + len];
            if !self.lock_parts().read(piece, file, in_run, part)? {
                self.read_file(file, offset + pos as u64, part)?;
            }
        }
        Ok(())
    }

    /// Number of files currently open (for tests and statistics).
    #[must_use]
    pub fn open_files(&self) -> usize {
        self.lock().open.len()
    }

    fn create_empty_files(&self) -> Result<(), StorageError> {
        let skipped = self.skipped();
        for (i, entry) in self.layout.info().files().iter().enumerate() {
            if entry.length == 0 && !entry.is_pad() && entry.attr.symlink.is_none() && !skipped[i] {
                let path = &self.paths[i];
                self.check_path(i)?;
                create_parent(path)?;
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
                    .map_err(|e| StorageError::io(path, e))?;
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, HandleCache> {
        // The cache holds no invariant a panic could break half-way.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses a path when a folder on the way or the file itself is a symbolic link.
    fn check_path(&self, file: usize) -> Result<(), StorageError> {
        let rel = &self.layout.info().files()[file].path;
        let mut cur = self.root.clone();
        for comp in rel.components() {
            cur.push(comp);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(StorageError::UnsafePath {
                        path: cur,
                        reason: "a symbolic link is in the way",
                    });
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(StorageError::io(cur, e)),
            }
        }
        Ok(())
    }

    /// An open handle on file `file`, writable when `write` (then created and sized).
    fn handle(&self, file: usize, write: bool) -> Result<Arc<File>, StorageError> {
        let mut cache = self.lock();
        cache.tick += 1;
        let tick = cache.tick;
        if let Some(h) = cache.open.get_mut(&file)
            && (h.writable || !write)
        {
            h.last_used = tick;
            return Ok(Arc::clone(&h.file));
        }
        self.check_path(file)?;
        let path = &self.paths[file];
        let handle = if write {
            create_parent(path)?;
            self.check_path(file)?;
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|e| StorageError::io(path, e))?;
            let want = self.layout.info().files()[file].length;
            let have = f.metadata().map_err(|e| StorageError::io(path, e))?.len();
            if have < want {
                // Sparse: the filesystem records the size without writing zeros.
                f.set_len(want).map_err(|e| StorageError::io(path, e))?;
            }
            f
        } else {
            File::open(path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => StorageError::FileMissing {
                    file,
                    path: path.clone(),
                },
                _ => StorageError::io(path, e),
            })?
        };
        let handle = Arc::new(handle);
        cache.open.insert(
            file,
            Handle {
                file: Arc::clone(&handle),
                writable: write,
                last_used: tick,
            },
        );
        while cache.open.len() > cache.max {
            let Some(oldest) = cache
                .open
                .iter()
                .filter(|(k, _)| **k != file)
                .min_by_key(|(_, h)| h.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            // A dirty file closed here is synced by the next `flush`, which reopens it.
            cache.open.remove(&oldest);
        }
        Ok(handle)
    }
}

impl Storage for FileStorage {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn read_file_at(&self, file: usize, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        check_file_range(&self.layout, file, offset, buf.len() as u64)?;
        if buf.is_empty() {
            return Ok(());
        }
        if self.skipped_read()[file] {
            return self.read_skipped(file, offset, buf);
        }
        self.read_file(file, offset, buf)
    }

    fn write_file_at(&self, file: usize, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        check_file_range(&self.layout, file, offset, data.len() as u64)?;
        if data.is_empty() {
            return Ok(());
        }
        let skipped = self.skipped_read();
        if skipped[file] {
            let mut parts = self.lock_parts();
            for (piece, in_run, pos, len) in self.piece_runs(file, offset, data.len() as u64) {
                parts.write(piece, file, in_run, &data[pos..pos + len])?;
            }
            return Ok(());
        }
        let handle = self.handle(file, true)?;
        let written = pio::write_all_at(&handle, data, offset)
            .map_err(|e| StorageError::io(&self.paths[file], e));
        // Marked once written, so that a `flush` that starts after this write returns syncs
        // it. Even a failed write may have changed part of the file.
        self.lock().dirty.insert(file);
        drop(skipped);
        written
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.flush_files()?;
        self.lock_parts().flush()
    }

    fn verified(&self) -> Bitfield {
        self.verified.get()
    }

    fn set_verified(&self, piece: u32, verified: bool) {
        self.verified.set(piece, verified);
    }

    fn replace_verified(&self, verified: Bitfield) -> Result<(), StorageError> {
        self.verified.replace(verified)
    }
}

impl FileStorage {
    /// Reads bytes of file `file` from the file itself.
    fn read_file(&self, file: usize, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let handle = self.handle(file, false)?;
        let path = &self.paths[file];
        match pio::read_exact_at(&handle, buf, offset) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(StorageError::ShortFile {
                file,
                path: path.clone(),
                needed: offset + buf.len() as u64,
                actual: handle.metadata().map(|m| m.len()).unwrap_or(0),
            }),
            Err(e) => Err(StorageError::io(path, e)),
        }
    }

    /// Syncs the files written since the last flush.
    fn flush_files(&self) -> Result<(), StorageError> {
        let dirty: Vec<usize> = self.lock().dirty.drain().collect();
        for (n, &file) in dirty.iter().enumerate() {
            let synced = self.handle(file, true).and_then(|h| {
                h.sync_data()
                    .map_err(|e| StorageError::io(&self.paths[file], e))
            });
            if let Err(e) = synced {
                // Keep the files not synced yet for the next attempt.
                self.lock().dirty.extend(&dirty[n..]);
                return Err(e);
            }
        }
        Ok(())
    }
}

fn create_parent(path: &Path) -> Result<(), StorageError> {
    match path.parent() {
        Some(dir) => fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e)),
        None => Ok(()),
    }
}

/// Positional I/O.
pub(crate) mod pio {
    use std::fs::File;
    use std::io;

    #[cfg(unix)]
    pub(crate) fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
    }

    #[cfg(unix)]
    pub(crate) fn write_all_at(f: &File, data: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(f, data, offset)
    }

    #[cfg(windows)]
    pub(crate) fn read_exact_at(f: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match f.seek_read(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    #[cfg(windows)]
    pub(crate) fn write_all_at(f: &File, mut data: &[u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !data.is_empty() {
            match f.seek_write(data, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    data = &data[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Elsewhere: seek then read or write, one call at a time.
    #[cfg(not(any(unix, windows)))]
    static CURSOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[cfg(not(any(unix, windows)))]
    pub(crate) fn read_exact_at(mut f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let _guard = CURSOR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }

    #[cfg(not(any(unix, windows)))]
    pub(crate) fn write_all_at(mut f: &File, data: &[u8], offset: u64) -> io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let _guard = CURSOR
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(data)
    }
}
