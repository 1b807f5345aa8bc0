//! The part store: bytes of files the user did not select that share a piece with a file
//! they did.
//!
//! Such a piece must be downloaded whole to be verified, but writing its bytes into the
//! unselected file would leave that file on disk (at its full length, as files are sized
//! on their first write). They go instead to one small file per piece and file in a hidden
//! folder of the download root, `.<info-hash>.parts/<piece>-<file>`, holding the file's run
//! of bytes inside the piece. Each part file belongs to one file, so it needs no index and
//! moving it back into its file never touches another file's bytes.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::StorageError;

/// The part files of one torrent.
#[derive(Debug)]
pub(crate) struct Parts {
    dir: PathBuf,
    /// Part files written since the last flush.
    dirty: HashSet<(u32, usize)>,
    /// Whether the folder was created since the last flush (its entry must be synced).
    created: bool,
}

impl Parts {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            dirty: HashSet::new(),
            created: false,
        }
    }

    /// The folder holding the part files.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, piece: u32, file: usize) -> PathBuf {
        self.dir.join(format!("{piece}-{file}"))
    }

    /// Every part file there is, as `(piece, file)`.
    pub(crate) fn list(&self) -> Result<Vec<(u32, usize)>, StorageError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StorageError::io(&self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(&self.dir, e))?;
            let name = entry.file_name();
            // Anything else in the folder is not ours to read.
            if let Some((piece, file)) = name.to_str().and_then(|n| n.split_once('-'))
                && let (Ok(piece), Ok(file)) = (piece.parse(), file.parse())
            {
                out.push((piece, file));
            }
        }
        Ok(out)
    }

    /// Writes `data` at `offset` of file `file`'s run in piece `piece`.
    pub(crate) fn write(
        &mut self,
        piece: u32,
        file: usize,
        offset: u64,
        data: &[u8],
    ) -> Result<(), StorageError> {
        if !self.dir.exists() {
            fs::create_dir_all(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
            self.created = true;
        }
        let path = self.path(piece, file);
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        self.dirty.insert((piece, file));
        crate::file::pio::write_all_at(&f, data, offset).map_err(|e| StorageError::io(&path, e))
    }

    /// Reads `buf.len()` bytes at `offset` of file `file`'s run in piece `piece`: `Ok(false)`
    /// when the part file does not hold them.
    pub(crate) fn read(
        &self,
        piece: u32,
        file: usize,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<bool, StorageError> {
        let path = self.path(piece, file);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StorageError::io(&path, e)),
        };
        match crate::file::pio::read_exact_at(&f, buf, offset) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(StorageError::io(&path, e)),
        }
    }

    /// The length of a part file, `None` when there is none.
    pub(crate) fn len(&self, piece: u32, file: usize) -> Result<Option<u64>, StorageError> {
        let path = self.path(piece, file);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(&path, e)),
        }
    }

    /// Removes a part file, and the folder once empty.
    pub(crate) fn remove(&mut self, piece: u32, file: usize) -> Result<(), StorageError> {
        let path = self.path(piece, file);
        self.dirty.remove(&(piece, file));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(&path, e)),
        }
        // Fails while other part files remain: the folder stays.
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }

    /// Syncs the part files written since the last flush, and the folder if created.
    pub(crate) fn flush(&mut self) -> Result<(), StorageError> {
        let dirty: Vec<(u32, usize)> = self.dirty.drain().collect();
        for (n, &(piece, file)) in dirty.iter().enumerate() {
            let path = self.path(piece, file);
            let synced = match File::options().write(true).open(&path) {
                Ok(f) => f.sync_data(),
                // Removed since written: its bytes moved to the file they belong to.
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = synced {
                self.dirty.extend(&dirty[n..]);
                return Err(StorageError::io(&path, e));
            }
        }
        if self.created {
            sync_dir(&self.dir)?;
            if let Some(parent) = self.dir.parent() {
                sync_dir(parent)?;
            }
            self.created = false;
        }
        Ok(())
    }
}
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    match File::open(dir) {
        Ok(f) => f.sync_all().map_err(|e| StorageError::io(dir, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(dir, e)),
    }
}

/// Folders cannot be opened for syncing elsewhere; their entries are made durable by the
/// filesystem.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), StorageError> {
    Ok(())
}
