//! Resume data: the verified set saved next to the download, with what it was checked against.
//!
//! # Format (version 1)
//!
//! All integers big-endian.
//!
//! ```text
//! magic        8  "WTRESUME"
//! version      1  1
//! flags        1  bit 0: v1 info-hash follows, bit 1: v2 info-hash follows; others zero
//! v1 hash     20  (if flagged)
//! v2 hash     32  (if flagged)
//! piece count  4
//! file count   4
//! per file:    1  0 = missing, 1 = present, then (present only)
//!              8  length, 8 mtime seconds since the Unix epoch,
//!              4  mtime nanoseconds (0xffffffff: unknown)
//! bitfield     ceil(piece count / 8) bytes, BEP 3 layout, spare bits zero
//! checksum    20  SHA-1 of everything before it
//! ```

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use webtorrent_metainfo::{InfoHashV1, InfoHashV2, InfoHashes, MAX_FILES};

use crate::{Bitfield, FileStorage, Layout, Storage, StorageError};

const MAGIC: &[u8; 8] = b"WTRESUME";
const VERSION: u8 = 1;
const UNKNOWN_NANOS: u32 = u32::MAX;
/// Resume files larger than this are refused without being read.
pub const MAX_RESUME_LEN: u64 = 64 * 1024 * 1024;

/// What a file looked like on disk when the resume data was saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct FileState {
    /// Length in bytes.
    pub length: u64,
    /// Modification time since the Unix epoch, when known.
    pub modified: Option<Duration>,
}

impl FileState {
    /// A state from its parts.
    #[must_use]
    pub fn new(length: u64, modified: Option<Duration>) -> Self {
        Self { length, modified }
    }

    /// The state a file's metadata describes.
    #[must_use]
    pub fn from_metadata(m: &Metadata) -> Self {
        let modified = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        Self {
            length: m.len(),
            modified,
        }
    }
}

/// An error loading, checking or saving resume data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The data does not start with the resume magic.
    #[error("not resume data (bad magic)")]
    BadMagic,
    /// A format version this code does not know.
    #[error("unsupported resume data version {0}")]
    UnsupportedVersion(u8),
    /// The data is malformed at `offset`.
    #[error("malformed resume data at byte {offset}: {reason}")]
    Malformed {
        /// Where the problem is.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The checksum does not match: the data is damaged.
    #[error("resume data checksum mismatch")]
    Checksum,
    /// The resume file is larger than [`MAX_RESUME_LEN`].
    #[error("resume file of {0} bytes is too large")]
    TooLarge(u64),
    /// The resume data belongs to another torrent.
    #[error("resume data is for another torrent ({found:?}, expected {expected:?})")]
    OtherTorrent {
        /// The torrent's info-hashes.
        expected: InfoHashes,
        /// The info-hashes in the resume data.
        found: InfoHashes,
    },
    /// The piece or file count does not match the torrent.
    #[error("resume data has {found} {what}, the torrent has {expected}")]
    CountMismatch {
        /// `"pieces"` or `"files"`.
        what: &'static str,
        /// The torrent's count.
        expected: usize,
        /// The count in the resume data.
        found: usize,
    },
    /// An I/O error reading or writing the resume file.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path, source: io::Error) -> ResumeError {
    ResumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The verified pieces of a torrent, with the info-hashes and the file states they were
/// verified against. Loaded data is checked with [`validate`](Self::validate) before any of
/// it is trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResumeData {
    /// The torrent's info-hashes.
    pub info_hashes: InfoHashes,
    /// State of each file (in the order of the info's files; `None`: missing or pad).
    pub files: Vec<Option<FileState>>,
    /// The verified pieces; its length is the torrent's piece count.
    pub verified: Bitfield,
}

impl ResumeData {
    /// Resume data from its parts.
    #[must_use]
    pub fn new(info_hashes: InfoHashes, files: Vec<Option<FileState>>, verified: Bitfield) -> Self {
        Self {
            info_hashes,
            files,
            verified,
        }
    }

    /// The resume data of a file store as it is now: its verified set and the state of its
    /// files on disk. Call it after [`Storage::flush`], so that no
    /// later write of data already written changes a file's time.
    pub fn capture(store: &FileStorage) -> Result<Self, StorageError> {
        Ok(Self::new(
            store.layout().info().info_hashes(),
            store.file_states()?,
            store.verified(),
        ))
    }

    /// Encodes the data (see the [module docs](self) for the format).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(96 + self.files.len() * 21 + self.verified.as_bytes().len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        let flags = u8::from(self.info_hashes.v1.is_some())
            | (u8::from(self.info_hashes.v2.is_some()) << 1);
        out.push(flags);
        if let Some(h) = self.info_hashes.v1 {
            out.extend_from_slice(&h.0);
        }
        if let Some(h) = self.info_hashes.v2 {
            out.extend_from_slice(&h.0);
        }
        out.extend_from_slice(&self.verified.len().to_be_bytes());
        // The file count of a torrent is bounded by MAX_FILES, far below u32::MAX.
        out.extend_from_slice(
            &u32::try_from(self.files.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for f in &self.files {
            match f {
                None => out.push(0),
                Some(s) => {
                    out.push(1);
                    out.extend_from_slice(&s.length.to_be_bytes());
                    let (secs, nanos) = s
                        .modified
                        .map_or((0, UNKNOWN_NANOS), |d| (d.as_secs(), d.subsec_nanos()));
                    out.extend_from_slice(&secs.to_be_bytes());
                    out.extend_from_slice(&nanos.to_be_bytes());
                }
            }
        }
        out.extend_from_slice(self.verified.as_bytes());
        let sum = webtorrent_hash::sha1(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Decodes resume data, checking its structure and checksum (not yet whether it fits
    /// a torrent: see [`validate`](Self::validate)).
    pub fn decode(bytes: &[u8]) -> Result<Self, ResumeError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ResumeError::BadMagic);
        }
        let body_len = bytes.len().checked_sub(20).ok_or(ResumeError::Malformed {
            offset: bytes.len(),
            reason: "too short",
        })?;
        let mut r = Reader {
            data: &bytes[..body_len],
            pos: MAGIC.len(),
        };
        let version = r.u8()?;
        if version != VERSION {
            return Err(ResumeError::UnsupportedVersion(version));
        }
        if webtorrent_hash::sha1(&bytes[..body_len]) != bytes[body_len..] {
            return Err(ResumeError::Checksum);
        }
        let flags = r.u8()?;
        if flags & !0b11 != 0 {
            return Err(r.malformed("unknown flags"));
        }
        let v1 = if flags & 1 != 0 {
            Some(InfoHashV1(r.array()?))
        } else {
            None
        };
        let v2 = if flags & 2 != 0 {
            Some(InfoHashV2(r.array()?))
        } else {
            None
        };
        if v1.is_none() && v2.is_none() {
            return Err(r.malformed("no info-hash"));
        }
        let piece_count = r.u32()?;
        let file_count = r.u32()? as usize;
        // Each file takes at least one byte: a count beyond what is left is a lie.
        if file_count > MAX_FILES || file_count > r.remaining() {
            return Err(r.malformed("file count exceeds the data"));
        }
        let mut files = Vec::with_capacity(file_count);
        for _ in 0..file_count {
            files.push(match r.u8()? {
                0 => None,
                1 => {
                    let length = r.u64()?;
                    let secs = r.u64()?;
                    let nanos = r.u32()?;
                    let modified = match nanos {
                        UNKNOWN_NANOS => None,
                        n if n < 1_000_000_000 => Some(Duration::new(secs, n)),
                        _ => return Err(r.malformed("nanoseconds out of range")),
                    };
                    Some(FileState { length, modified })
                }
                _ => return Err(r.malformed("bad file tag")),
            });
        }
        let bits = r.rest();
        let verified =
            Bitfield::from_bytes(bits, piece_count).map_err(|_| ResumeError::Malformed {
                offset: r.pos,
                reason: "bitfield does not match the piece count",
            })?;
        Ok(Self {
            info_hashes: InfoHashes { v1, v2 },
            files,
            verified,
        })
    }

    /// Checks loaded data against the torrent and the files as they are now, and returns the
    /// pieces that can be trusted: another torrent or other piece or file counts are
    /// errors; a file whose length or modification time changed since the save (or that
    /// vanished or appeared) takes every piece touching it out of the verified set.
    pub fn validate(
        &self,
        layout: &Layout,
        current: &[Option<FileState>],
    ) -> Result<Bitfield, ResumeError> {
        let info = layout.info();
        let expected = info.info_hashes();
        if self.info_hashes != expected {
            return Err(ResumeError::OtherTorrent {
                expected,
                found: self.info_hashes,
            });
        }
        let count = |what, expected: usize, found: usize| {
            if expected == found {
                Ok(())
            } else {
                Err(ResumeError::CountMismatch {
                    what,
                    expected,
                    found,
                })
            }
        };
        count(
            "pieces",
            info.piece_count() as usize,
            self.verified.len() as usize,
        )?;
        count("files", info.files().len(), self.files.len())?;
        count("files", info.files().len(), current.len())?;
        let mut verified = self.verified.clone();
        for (file, (saved, now)) in self.files.iter().zip(current).enumerate() {
            if saved != now
                && let Some(pieces) = info.file_pieces(file)
            {
                for p in pieces {
                    // `p` is below the piece count, checked equal to the bitfield's above.
                    let _ = verified.clear(p);
                }
            }
        }
        Ok(verified)
    }

    /// Writes the data to `path` atomically: into a temporary file in the same folder,
    /// synced, renamed over `path`, then the folder synced. A crash at any point leaves
    /// either the old file or the new one; a left-over temporary file is never read.
    pub fn save(&self, path: &Path) -> Result<(), ResumeError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().ok_or_else(|| {
            io_err(
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
            )
        })?;
        let mut tmp_name = name.to_os_string();
        tmp_name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = dir.join(tmp_name);
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(&self.encode())?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if let Err(e) = written {
            // Best effort: the temporary file is useless now.
            let _ = fs::remove_file(&tmp);
            return Err(io_err(path, e));
        }
        sync_dir(dir).map_err(|e| io_err(dir, e))
    }

    /// Loads resume data from `path`: `Ok(None)` when there is no such file.
    pub fn load(path: &Path) -> Result<Option<Self>, ResumeError> {
        let f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path, e)),
        };
        let len = f.metadata().map_err(|e| io_err(path, e))?.len();
        if len > MAX_RESUME_LEN {
            return Err(ResumeError::TooLarge(len));
        }
        let mut bytes = Vec::new();
        f.take(MAX_RESUME_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_err(path, e))?;
        Self::decode(&bytes).map(Some)
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Folders cannot be opened for syncing here; the rename is as durable as the OS makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn malformed(&self, reason: &'static str) -> ResumeError {
        ResumeError::Malformed {
            offset: self.pos,
            reason,
        }
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ResumeError> {
        let bytes = self
            .data
            .get(self.pos..self.pos.saturating_add(N))
            .ok_or_else(|| self.malformed("truncated"))?;
        self.pos += N;
        // `bytes` has exactly N bytes.
        Ok(bytes.try_into().unwrap_or([0; N]))
    }

    fn u8(&mut self) -> Result<u8, ResumeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, ResumeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ResumeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn rest(&mut self) -> &[u8] {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        self.pos = self.data.len();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> ResumeData {
        let mut verified = Bitfield::new(11);
        verified.set(0).unwrap();
        verified.set(10).unwrap();
        ResumeData::new(
            InfoHashes {
                v1: Some(InfoHashV1([1; 20])),
                v2: None,
            },
            vec![
                Some(FileState::new(5, Some(Duration::new(1_700_000_000, 123)))),
                None,
                Some(FileState::new(0, None)),
            ],
            verified,
        )
    }

    #[test]
    fn layout_of_version_1() {
        let bytes = sample().encode();
        let mut want = b"WTRESUME\x01\x01".to_vec();
        want.extend_from_slice(&[1; 20]);
        want.extend_from_slice(&11u32.to_be_bytes());
        want.extend_from_slice(&3u32.to_be_bytes());
        want.push(1);
        want.extend_from_slice(&5u64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        want.extend_from_slice(&123u32.to_be_bytes());
        want.push(0);
        want.push(1);
        want.extend_from_slice(&0u64.to_be_bytes());
        want.extend_from_slice(&0u64.to_be_bytes());
        want.extend_from_slice(&u32::MAX.to_be_bytes());
        want.extend_from_slice(&[0x80, 0x20]);
        let sum = webtorrent_hash::sha1(&want);
        want.extend_from_slice(&sum);
        assert_eq!(bytes, want);
        assert_eq!(ResumeData::decode(&bytes).unwrap(), sample());
    }

    /// Re-signs a hand-made body so that only the structure is tested.
    fn signed(mut body: Vec<u8>) -> Vec<u8> {
        let sum = webtorrent_hash::sha1(&body);
        body.extend_from_slice(&sum);
        body
    }

    #[test]
    fn structural_errors() {
        let good = sample().encode();
        let body = &good[..good.len() - 20];
        assert!(matches!(
            ResumeData::decode(b"WTRES"),
            Err(ResumeError::BadMagic)
        ));
        assert!(matches!(
            ResumeData::decode(b"WTRESUME"),
            Err(ResumeError::Malformed { .. })
        ));
        let mut v2 = body.to_vec();
        v2[8] = 2;
        assert!(matches!(
            ResumeData::decode(&signed(v2)),
            Err(ResumeError::UnsupportedVersion(2))
        ));
        let mut flags = body.to_vec();
        flags[9] = 0b101;
        assert!(matches!(
            ResumeData::decode(&signed(flags)),
            Err(ResumeError::Malformed {
                reason: "unknown flags",
                ..
            })
        ));
        let mut no_hash = b"WTRESUME\x01\x00".to_vec();
        no_hash.extend_from_slice(&[0; 8]);
        assert!(matches!(
            ResumeData::decode(&signed(no_hash)),
            Err(ResumeError::Malformed {
                reason: "no info-hash",
                ..
            })
        ));
        // A huge file count is refused before anything is allocated.
        let mut huge = b"WTRESUME\x01\x01".to_vec();
        huge.extend_from_slice(&[1; 20]);
        huge.extend_from_slice(&0u32.to_be_bytes());
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            ResumeData::decode(&signed(huge)),
            Err(ResumeError::Malformed {
                reason: "file count exceeds the data",
                ..
            })
        ));
        // A spare bit set in the bitfield.
        let mut spare = body.to_vec();
        *spare.last_mut().unwrap() |= 1;
        assert!(matches!(
            ResumeData::decode(&signed(spare)),
            Err(ResumeError::Malformed { .. })
        ));
        let mut bad_sum = good.clone();
        *bad_sum.last_mut().unwrap() ^= 1;
        assert!(matches!(
            ResumeData::decode(&bad_sum),
            Err(ResumeError::Checksum)
        ));
    }

    fn arb_state() -> impl Strategy<Value = Option<FileState>> {
        proptest::option::of(
            (
                any::<u64>(),
                proptest::option::of((any::<u64>(), 0u32..1_000_000_000)),
            )
                .prop_map(|(length, t)| {
                    FileState::new(length, t.map(|(s, n)| Duration::new(s, n)))
                }),
        )
    }

    proptest! {
        #[test]
        fn round_trip(
            v1 in proptest::option::of(any::<[u8; 20]>()),
            v2 in proptest::option::of(any::<[u8; 32]>()),
            files in proptest::collection::vec(arb_state(), 0..20),
            pieces in 0u32..300,
            set in proptest::collection::vec(any::<u32>(), 0..40),
        ) {
            prop_assume!(v1.is_some() || v2.is_some());
            let mut verified = Bitfield::new(pieces);
            for s in set {
                if pieces > 0 {
                    verified.set(s % pieces).unwrap();
                }
            }
            let data = ResumeData::new(
                InfoHashes { v1: v1.map(InfoHashV1), v2: v2.map(InfoHashV2) },
                files,
                verified,
            );
            prop_assert_eq!(ResumeData::decode(&data.encode()).unwrap(), data);
        }

        #[test]
        fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = ResumeData::decode(&bytes);
            let mut with_magic = MAGIC.to_vec();
            with_magic.push(VERSION);
            with_magic.extend_from_slice(&bytes);
            let _ = ResumeData::decode(&signed(with_magic));
        }
    }
}
