//! The file model: one entry per file of a torrent.

use std::path::{Path, PathBuf};

/// BEP 47 file attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct FileAttributes {
    /// `p`: a padding file. Its content is all zeros; it is never written to disk.
    pub pad: bool,
    /// `x`: the file is executable.
    pub executable: bool,
    /// `h`: the file is hidden.
    pub hidden: bool,
    /// `l` with `symlink path`: the entry is a symbolic link to this target, given relative
    /// to the torrent's root folder (the folder named after the torrent), already sanitised
    /// and normalised so that it stays inside the torrent.
    pub symlink: Option<PathBuf>,
}

impl FileAttributes {
    /// The BEP 47 `attr` string (`p`, `h`, `x`, `l` in libtorrent's order), empty when no
    /// attribute is set.
    #[must_use]
    pub fn to_attr_string(&self) -> String {
        let mut s = String::new();
        if self.pad {
            s.push('p');
        }
        if self.hidden {
            s.push('h');
        }
        if self.executable {
            s.push('x');
        }
        if self.symlink.is_some() {
            s.push('l');
        }
        s
    }
}

/// One file of a torrent.
///
/// `path` is relative and sanitised (see [`crate::PathProblem`]). Following libtorrent's
/// convention it starts with the torrent name for a multi-file torrent (`name/dir/file`),
/// and is just the name for a single-file torrent: joining it to a download folder gives
/// where the file goes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileEntry {
    /// Relative path, starting with the torrent name for multi-file torrents.
    pub path: PathBuf,
    /// Length in bytes (0 for symlinks).
    pub length: u64,
    /// Byte offset of the file's first byte: in the v1 data stream (all files concatenated,
    /// pad files included) for v1 and hybrid torrents; for v2-only torrents in the
    /// piece-aligned layout where every file starts on a piece boundary.
    pub offset: u64,
    /// BEP 47 attributes.
    pub attr: FileAttributes,
    /// BEP 52 `pieces root` (v2 and hybrid torrents, non-empty files).
    pub pieces_root: Option<[u8; 32]>,
    /// Optional per-file SHA-1 (`sha1` key, BEP 47). A hint only.
    pub sha1: Option<[u8; 20]>,
    /// Optional modification time (`mtime` key, seconds since the Unix epoch).
    pub mtime: Option<i64>,
}

impl FileEntry {
    /// Whether this is a BEP 47 padding file.
    #[must_use]
    pub fn is_pad(&self) -> bool {
        self.attr.pad
    }

    /// The path's components as strings (they are always valid UTF-8).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        path_components(&self.path)
    }

    /// Offset just past the file's last byte (see [`offset`](Self::offset)).
    #[must_use]
    pub fn end(&self) -> u64 {
        self.offset + self.length
    }
}

pub(crate) fn path_components(path: &Path) -> impl Iterator<Item = &str> {
    // Paths are built from checked UTF-8 components, so `to_str` never fails; a component
    // that somehow were not UTF-8 is skipped rather than reported wrongly.
    path.components().filter_map(|c| c.as_os_str().to_str())
}

/// Part of a file covered by a piece: `length` bytes starting at byte `offset` of file
/// number `file` (an index into [`crate::Info::files`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileSlice {
    /// Index into [`crate::Info::files`].
    pub file: usize,
    /// Offset inside the file.
    pub offset: u64,
    /// Number of bytes.
    pub length: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_string_order() {
        let mut a = FileAttributes::default();
        assert_eq!(a.to_attr_string(), "");
        a.executable = true;
        a.symlink = Some(PathBuf::from("t"));
        assert_eq!(a.to_attr_string(), "xl");
        a.pad = true;
        a.hidden = true;
        assert_eq!(a.to_attr_string(), "phxl");
    }
}
