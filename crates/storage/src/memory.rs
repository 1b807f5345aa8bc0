//! [`MemoryStorage`]: a torrent held in memory.

use std::sync::{Mutex, PoisonError};

use crate::storage::{VerifiedSet, check_file_range};
use crate::{Bitfield, Layout, Storage, StorageError};

/// A store keeping every file in memory: for tests, and for streaming torrents that need
/// not touch the disk.
///
/// A file's buffer is allocated (zero-filled, full length) on its first write; reading a
/// file never written gives [`StorageError::FileMissing`], like a file store would.
#[derive(Debug)]
pub struct MemoryStorage {
    layout: Layout,
    files: Vec<Mutex<Option<Vec<u8>>>>,
    verified: VerifiedSet,
}

impl MemoryStorage {
    /// An empty store for `layout`.
    #[must_use]
    pub fn new(layout: Layout) -> Self {
        let files = layout
            .info()
            .files()
            .iter()
            .map(|_| Mutex::new(None))
            .collect();
        let verified = VerifiedSet::new(layout.piece_count());
        Self {
            layout,
            files,
            verified,
        }
    }

    fn file(&self, file: usize) -> std::sync::MutexGuard<'_, Option<Vec<u8>>> {
        // `check_file_range` ran first, so `file` is in range. A poisoned buffer holds
        // bytes a writer was copying: at worst a torn block, which verification catches.
        self.files[file]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryStorage {
    fn short(&self, file: usize, offset: u64, len: usize, have: usize) -> StorageError {
        StorageError::ShortFile {
            file,
            path: self.layout.info().files()[file].path.clone(),
            needed: offset.saturating_add(len as u64),
            actual: have as u64,
        }
    }
}

impl Storage for MemoryStorage {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn read_file_at(&self, file: usize, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        check_file_range(&self.layout, file, offset, buf.len() as u64)?;
        let guard = self.file(file);
        let data = guard.as_ref().ok_or_else(|| StorageError::FileMissing {
            file,
            path: self.layout.info().files()[file].path.clone(),
        })?;
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| data.get(start..start.checked_add(buf.len())?))
            .ok_or_else(|| self.short(file, offset, buf.len(), data.len()))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_file_at(&self, file: usize, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        check_file_range(&self.layout, file, offset, data.len() as u64)?;
        let length = self.layout.info().files()[file].length;
        let mut guard = self.file(file);
        // A file too big for this machine's address space gets an empty buffer, and the
        // range lookup below reports it short.
        let buf = guard.get_or_insert_with(|| vec![0; usize::try_from(length).unwrap_or(0)]);
        let have = buf.len();
        let dst = usize::try_from(offset)
            .ok()
            .and_then(|start| buf.get_mut(start..start.checked_add(data.len())?))
            .ok_or_else(|| self.short(file, offset, data.len(), have))?;
        dst.copy_from_slice(data);
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
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
