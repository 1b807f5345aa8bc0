//! The [`Storage`] trait: blocks and pieces in, blocks and pieces out.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::{Bitfield, Layout, StorageError};

/// Where a torrent's data lives.
///
/// Implementations are thread-safe: every method takes `&self`, so an async engine can share
/// one store between tasks and call it from blocking threads. Implementors provide file-level
/// I/O ([`read_file_at`](Self::read_file_at), [`write_file_at`](Self::write_file_at)) and the
/// verified set; block and piece access, which map onto files through the [`Layout`], are
/// provided. Pad files are never passed to the file-level methods: their bytes read as zeros
/// and writes to them are dropped.
pub trait Storage: Send + Sync {
    /// The torrent's layout.
    fn layout(&self) -> &Layout;

    /// Fills `buf` with the bytes of file `file` (an index into the info's files) starting
    /// at `offset`. A file that is missing or too short gives
    /// [`StorageError::FileMissing`] / [`StorageError::ShortFile`].
    fn read_file_at(&self, file: usize, offset: u64, buf: &mut [u8]) -> Result<(), StorageError>;

    /// Writes `data` into file `file` at `offset`, creating the file as needed.
    fn write_file_at(&self, file: usize, offset: u64, data: &[u8]) -> Result<(), StorageError>;

    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), StorageError>;

    /// The pieces verified so far.
    fn verified(&self) -> Bitfield;

    /// Marks `piece` verified or not (out-of-range pieces are ignored).
    fn set_verified(&self, piece: u32, verified: bool);

    /// Replaces the whole verified set (after a recheck or loading resume data).
    fn replace_verified(&self, verified: Bitfield) -> Result<(), StorageError>;

    /// Reads `buf.len()` bytes at `offset` inside piece `piece`.
    fn read_block_into(&self, piece: u32, offset: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        let segments = self
            .layout()
            .segments(piece, offset.into(), buf.len() as u64)?;
        let mut pos = 0usize;
        for s in segments {
            // Segments are cut from a range of `buf.len()` bytes, so they fit in `buf`.
            let len = s.length as usize;
            let part = &mut buf[pos..pos + len];
            if s.pad {
                part.fill(0);
            } else {
                self.read_file_at(s.file, s.offset, part)?;
            }
            pos += len;
        }
        Ok(())
    }

    /// Reads `length` bytes at `offset` inside piece `piece`.
    fn read_block(&self, piece: u32, offset: u32, length: u32) -> Result<Vec<u8>, StorageError> {
        let size = self.layout().piece_size(piece)?;
        if u64::from(offset) + u64::from(length) > size {
            return Err(StorageError::BlockOutOfRange {
                piece,
                offset: offset.into(),
                length: length.into(),
                piece_size: size,
            });
        }
        let mut buf = vec![0; length as usize];
        self.read_block_into(piece, offset, &mut buf)?;
        Ok(buf)
    }

    /// Writes `data` at `offset` inside piece `piece`. Bytes falling in pad files are
    /// dropped (they are zeros by definition; [`verify_piece`](Self::verify_piece) catches a
    /// peer that sent anything else).
    fn write_block(&self, piece: u32, offset: u32, data: &[u8]) -> Result<(), StorageError> {
        let segments = self
            .layout()
            .segments(piece, offset.into(), data.len() as u64)?;
        let mut pos = 0usize;
        for s in segments {
            // Segments are cut from a range of `data.len()` bytes, so they fit in `data`.
            let len = s.length as usize;
            if !s.pad {
                self.write_file_at(s.file, s.offset, &data[pos..pos + len])?;
            }
            pos += len;
        }
        Ok(())
    }

    /// Reads a whole piece.
    fn read_piece(&self, piece: u32) -> Result<Vec<u8>, StorageError> {
        let size = self.layout().piece_size(piece)?;
        let mut buf = vec![0; usize::try_from(size).unwrap_or(usize::MAX)];
        self.read_block_into(piece, 0, &mut buf)?;
        Ok(buf)
    }

    /// Reads piece `piece`, checks it against the torrent's hashes (see
    /// [`Layout::piece_checks`]) and records the outcome in the verified set. A piece whose
    /// data is missing is not verified (`Ok(false)`); one without any known hash is an error.
    fn verify_piece(&self, piece: u32) -> Result<bool, StorageError> {
        let ok = match self.read_piece(piece) {
            Ok(data) => self.layout().check_piece(piece, &data)?,
            Err(e) if e.is_missing_data() => false,
            Err(e) => return Err(e),
        };
        self.set_verified(piece, ok);
        Ok(ok)
    }
}

/// The verified set behind a mutex, shared by the stores of this crate.
#[derive(Debug)]
pub(crate) struct VerifiedSet(Mutex<Bitfield>);

impl VerifiedSet {
    pub(crate) fn new(pieces: u32) -> Self {
        Self(Mutex::new(Bitfield::new(pieces)))
    }

    fn lock(&self) -> MutexGuard<'_, Bitfield> {
        // A panic while holding the lock cannot leave a bitfield half-updated.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self) -> Bitfield {
        self.lock().clone()
    }

    pub(crate) fn set(&self, piece: u32, value: bool) {
        // Pieces past the end are not in the set: nothing to record for them.
        let _ = self.lock().set_to(piece, value);
    }

    pub(crate) fn replace(&self, new: Bitfield) -> Result<(), StorageError> {
        let mut cur = self.lock();
        if new.len() != cur.len() {
            return Err(StorageError::BitfieldLength {
                expected: cur.len(),
                actual: new.len(),
            });
        }
        *cur = new;
        Ok(())
    }
}

/// Checks that `length` bytes at `offset` lie inside file `file`.
pub(crate) fn check_file_range(
    layout: &Layout,
    file: usize,
    offset: u64,
    length: u64,
) -> Result<(), StorageError> {
    let files = layout.info().files();
    let entry = files.get(file).ok_or(StorageError::FileOutOfRange {
        file,
        file_count: files.len(),
    })?;
    if offset
        .checked_add(length)
        .is_none_or(|end| end > entry.length)
    {
        return Err(StorageError::FileRangeOutOfRange {
            file,
            offset,
            length,
            file_length: entry.length,
        });
    }
    Ok(())
}
