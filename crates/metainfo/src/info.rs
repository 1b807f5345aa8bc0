//! The info dictionary: parsing, validation, layout and the piece <-> file mapping.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use webtorrent_bencode::{Dict, List, Value};
use webtorrent_types::{InfoHashV1, InfoHashV2, InfoHashes};

use crate::error::{HybridMismatch, MetainfoError};
use crate::file::{FileAttributes, FileEntry, FileSlice};
use crate::path::{self, PathProblem};
use crate::piece_length::{is_valid_v1_piece_length, is_valid_v2_piece_length};

/// Most real (non-pad) files a torrent may list. Pad files may add as many again.
pub const MAX_FILES: usize = 1_000_000;

/// Prefix of the pad file names written by BitComet before BEP 47 existed; such files are
/// treated as pad files even without `attr: "p"`.
const LEGACY_PAD_PREFIX: &str = "_____padding_file_";

/// Which BitTorrent metadata versions a torrent carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetaVersion {
    /// BEP 3 only: `pieces` (SHA-1), `length` or `files`.
    V1,
    /// BEP 52 only: `meta version` 2, `file tree`, `piece layers`.
    V2,
    /// Both, describing the same files (v1 files padded to piece boundaries).
    Hybrid,
}

impl MetaVersion {
    /// Whether the torrent has v1 metadata (and so a v1 info-hash).
    #[must_use]
    pub fn has_v1(self) -> bool {
        matches!(self, Self::V1 | Self::Hybrid)
    }

    /// Whether the torrent has v2 metadata (and so a v2 info-hash).
    #[must_use]
    pub fn has_v2(self) -> bool {
        matches!(self, Self::V2 | Self::Hybrid)
    }
}

impl fmt::Display for MetaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
            Self::Hybrid => "hybrid",
        })
    }
}

/// A parsed and validated info dictionary.
///
/// It keeps the exact bytes it was parsed from ([`raw`](Self::raw)): the info-hashes are
/// the hashes of those bytes, and writing the torrent again writes them unchanged, unknown
/// keys included.
#[derive(Clone)]
pub struct Info {
    raw: Vec<u8>,
    version: MetaVersion,
    name: String,
    piece_length: u64,
    private: bool,
    multi_file: bool,
    files: Vec<FileEntry>,
    pieces: Vec<u8>,
    total_length: u64,
    data_length: u64,
    piece_count: u32,
    hashes: InfoHashes,
    lossy_names: bool,
}

impl PartialEq for Info {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Info {}

impl fmt::Debug for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Info")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("info_hashes", &self.hashes)
            .field("piece_length", &self.piece_length)
            .field("piece_count", &self.piece_count)
            .field("total_length", &self.total_length)
            .field("files", &self.files.len())
            .field("private", &self.private)
            .finish_non_exhaustive()
    }
}

impl Info {
    /// Parses an info dictionary on its own, as fetched from peers with BEP 9 (magnet links).
    ///
    /// The bytes must be exactly one bencoded dictionary (no trailing bytes): they are what
    /// the info-hash is computed over. v2 piece layers live outside the info dictionary, so
    /// they are not checked here.
    ///
    /// ```
    /// use webtorrent_metainfo::{Info, MetaVersion};
    /// let pieces = [0u8; 20];
    /// let mut bytes = b"d6:lengthi5e4:name5:a.txt12:piece lengthi16384e6:pieces20:".to_vec();
    /// bytes.extend_from_slice(&pieces);
    /// bytes.push(b'e');
    /// let info = Info::from_bytes(&bytes)?;
    /// assert_eq!(info.version(), MetaVersion::V1);
    /// assert_eq!(info.name(), "a.txt");
    /// assert_eq!(info.total_length(), 5);
    /// # Ok::<(), webtorrent_metainfo::MetainfoError>(())
    /// ```
    pub fn from_bytes(info_bytes: &[u8]) -> Result<Self, MetainfoError> {
        let value = webtorrent_bencode::decode(info_bytes)?;
        Self::from_value(&value)
    }

    pub(crate) fn from_value(value: &Value<'_>) -> Result<Self, MetainfoError> {
        let dict = value
            .as_dict()
            .ok_or_else(|| wrong("info", "a dictionary"))?;
        parse_info(dict, value.raw())
    }

    /// Which metadata versions the torrent carries.
    #[must_use]
    pub fn version(&self) -> MetaVersion {
        self.version
    }

    /// The torrent name: the file name of a single-file torrent, the folder name of a
    /// multi-file one. Sanitised like every path component.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes per piece.
    #[must_use]
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// Number of pieces.
    #[must_use]
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Sum of the lengths of the real files (pad files not counted).
    #[must_use]
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Length of the data the pieces cover: the v1 stream (pad files included) for v1 and
    /// hybrid torrents, the end of the last file in the piece-aligned layout for v2.
    #[must_use]
    pub fn data_length(&self) -> u64 {
        self.data_length
    }

    /// Whether the `private` flag (BEP 27) is set.
    #[must_use]
    pub fn private(&self) -> bool {
        self.private
    }

    /// Whether this is a multi-file torrent (a folder), even if it holds one file.
    #[must_use]
    pub fn is_multi_file(&self) -> bool {
        self.multi_file
    }

    /// Every file, in the torrent's order: the v1 `files` list for v1 and hybrid torrents
    /// (pad files included, see [`FileEntry::is_pad`]), the `file tree` order for v2.
    #[must_use]
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// The exact bytes of the info dictionary.
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The info-hashes: SHA-1 of [`raw`](Self::raw) for v1 and hybrid, SHA-256 of it for v2
    /// and hybrid.
    #[must_use]
    pub fn info_hashes(&self) -> InfoHashes {
        self.hashes
    }

    /// Whether some name was not valid UTF-8 and had its invalid bytes replaced by U+FFFD
    /// (only when no `.utf-8` variant of the key was usable).
    #[must_use]
    pub fn has_lossy_names(&self) -> bool {
        self.lossy_names
    }

    /// SHA-1 hash of piece `piece` (v1 and hybrid torrents).
    #[must_use]
    pub fn piece_hash_v1(&self, piece: u32) -> Option<[u8; 20]> {
        let start = usize::try_from(piece).ok()?.checked_mul(20)?;
        let bytes = self.pieces.get(start..start.checked_add(20)?)?;
        bytes.try_into().ok()
    }

    /// Byte range of piece `piece` in the data layout (see [`FileEntry::offset`]). The last
    /// piece may be short; in a v2 torrent the last piece of each file is cut at the file's
    /// end.
    #[must_use]
    pub fn piece_range(&self, piece: u32) -> Option<Range<u64>> {
        if piece >= self.piece_count {
            return None;
        }
        let start = u64::from(piece) * self.piece_length;
        let mut end = start
            .saturating_add(self.piece_length)
            .min(self.data_length);
        if self.version == MetaVersion::V2 {
            let file = self.file_at(start)?;
            end = end.min(self.files[file].end());
        }
        Some(start..end)
    }

    /// Number of bytes in piece `piece` (see [`piece_range`](Self::piece_range)).
    #[must_use]
    pub fn piece_size(&self, piece: u32) -> Option<u64> {
        self.piece_range(piece).map(|r| r.end - r.start)
    }

    /// The parts of files that piece `piece` covers, in order. Pad files are included (their
    /// bytes are zeros); empty files never appear. Nothing for a piece out of range.
    pub fn piece_files(&self, piece: u32) -> impl Iterator<Item = FileSlice> + '_ {
        let range = self.piece_range(piece).unwrap_or(0..0);
        let first = self.files.partition_point(|f| f.end() <= range.start);
        self.files[first..]
            .iter()
            .enumerate()
            .take_while(move |(_, f)| f.offset < range.end)
            .filter(|(_, f)| f.length > 0)
            .map(move |(i, f)| {
                let start = range.start.max(f.offset);
                let end = range.end.min(f.end());
                FileSlice {
                    file: first + i,
                    offset: start - f.offset,
                    length: end - start,
                }
            })
    }

    /// The pieces that file `file` (an index into [`files`](Self::files)) overlaps: an empty
    /// range for an empty file.
    #[must_use]
    pub fn file_pieces(&self, file: usize) -> Option<Range<u32>> {
        let f = self.files.get(file)?;
        let first = u32::try_from(f.offset / self.piece_length).ok()?;
        if f.length == 0 {
            return Some(first..first);
        }
        let last = u32::try_from((f.end() - 1) / self.piece_length).ok()?;
        Some(first..last.checked_add(1)?)
    }

    /// The file holding v2 piece `piece` (v2 and hybrid torrents): in BEP 52 every piece
    /// belongs to exactly one file.
    #[must_use]
    pub fn file_at_piece(&self, piece: u32) -> Option<usize> {
        if !self.version.has_v2() || piece >= self.piece_count {
            return None;
        }
        let i = self.file_at(u64::from(piece) * self.piece_length)?;
        (!self.files[i].is_pad()).then_some(i)
    }

    /// Index of the non-empty file containing byte `pos` of the data layout.
    fn file_at(&self, pos: u64) -> Option<usize> {
        let i = self.files.partition_point(|f| f.end() <= pos);
        let f = self.files.get(i)?;
        (f.offset <= pos).then_some(i)
    }
}

fn wrong(key: impl Into<String>, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType {
        key: key.into(),
        expected,
    }
}

/// A file as read from the metadata, before layout.
struct RawFile {
    /// Full path: the torrent name first for multi-file torrents.
    components: Vec<String>,
    length: u64,
    attr: FileAttributes,
    symlink_target: Option<Vec<String>>,
    pieces_root: Option<[u8; 32]>,
    sha1: Option<[u8; 20]>,
    mtime: Option<i64>,
}

impl RawFile {
    fn path(&self) -> PathBuf {
        path::to_path_buf(&self.components)
    }
}

/// Tracks whether some text had to be decoded lossily.
struct Ctx {
    lossy: bool,
}

impl Ctx {
    fn text(&mut self, bytes: &[u8]) -> String {
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                self.lossy = true;
                String::from_utf8_lossy(bytes).into_owned()
            }
        }
    }
}

fn get_int(
    dict: &Dict<'_>,
    key: &[u8],
    name: impl FnOnce() -> String,
) -> Result<Option<i64>, MetainfoError> {
    match dict.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_int()
            .map(Some)
            .ok_or_else(|| wrong(name(), "an integer")),
    }
}

fn parse_info(dict: &Dict<'_>, raw: &[u8]) -> Result<Info, MetainfoError> {
    let mut ctx = Ctx { lossy: false };

    let has_v2 = match get_int(dict, b"meta version", || "info.meta version".into())? {
        None | Some(1) => false,
        Some(2) => true,
        Some(version) => return Err(MetainfoError::UnsupportedMetaVersion { version }),
    };
    let pieces = match dict.get(b"pieces") {
        None => None,
        Some(v) => Some(
            v.as_bytes()
                .ok_or_else(|| wrong("info.pieces", "a byte string"))?,
        ),
    };
    let version = match (pieces.is_some(), has_v2) {
        (true, true) => MetaVersion::Hybrid,
        (false, true) => MetaVersion::V2,
        (_, false) => MetaVersion::V1,
    };
    let pieces = match (version, pieces) {
        (MetaVersion::V1, None) => return Err(MetainfoError::MissingKey { key: "info.pieces" }),
        (_, p) => p.unwrap_or_default(),
    };

    let piece_length = get_int(dict, b"piece length", || "info.piece length".into())?.ok_or(
        MetainfoError::MissingKey {
            key: "info.piece length",
        },
    )?;
    let valid = u64::try_from(piece_length).is_ok_and(|pl| {
        if has_v2 {
            is_valid_v2_piece_length(pl)
        } else {
            is_valid_v1_piece_length(pl)
        }
    });
    if !valid {
        return Err(MetainfoError::InvalidPieceLength { piece_length });
    }
    // Checked just above: positive.
    let piece_length = piece_length.unsigned_abs();
    if pieces.len() % 20 != 0 {
        return Err(MetainfoError::InvalidPiecesLength { len: pieces.len() });
    }

    let name = preferred_text(&mut ctx, dict, b"name", b"name.utf-8", "info.name")?
        .ok_or(MetainfoError::MissingKey { key: "info.name" })?;
    path::check_components(std::slice::from_ref(&name)).map_err(|problem| {
        MetainfoError::InvalidPath {
            path: name.clone(),
            problem,
        }
    })?;
    let private = get_int(dict, b"private", || "info.private".into())?.unwrap_or(0) != 0;

    let v1 = if version.has_v1() {
        Some(parse_v1_files(&mut ctx, dict, &name)?)
    } else {
        None
    };
    let v2 = if has_v2 {
        let tree = dict
            .get(b"file tree")
            .ok_or(MetainfoError::MissingKey {
                key: "info.file tree",
            })?
            .as_dict()
            .ok_or_else(|| wrong("info.file tree", "a dictionary"))?;
        let mut files = Vec::new();
        // In a tree, folders shared by many files appear once; bound how much the paths
        // spelled out per file may outgrow the input.
        let mut walk = TreeWalk {
            path: Vec::new(),
            path_len: 0,
            budget: (raw.len() as u64)
                .saturating_mul(16)
                .saturating_add(1 << 20),
            out: &mut files,
        };
        walk_tree(&mut ctx, tree, &mut walk)?;
        Some(files)
    } else {
        None
    };

    let (multi_file, mut files, offsets, data_length) = match (v1, v2) {
        (Some((multi, list)), None) => {
            let (offsets, end) = layout_v1(&list)?;
            (multi, list, offsets, end)
        }
        (None, Some(tree)) => {
            let (multi, mut tree) = place_v2_tree(&name, tree, None)?;
            resolve_symlinks(&mut tree, multi)?;
            let (offsets, end) = layout_v2(&tree, piece_length)?;
            (multi, tree, offsets, end)
        }
        (Some((multi, mut list)), Some(tree)) => {
            let (_, mut tree) = place_v2_tree(&name, tree, Some(multi))?;
            resolve_symlinks(&mut list, multi)?;
            resolve_symlinks(&mut tree, multi)?;
            let (offsets, v1_end) = layout_v1(&list)?;
            let end = merge_hybrid(&mut list, &offsets, v1_end, tree, piece_length)?;
            (multi, list, offsets, end)
        }
        // `version` always has v1 or v2.
        (None, None) => return Err(MetainfoError::NoFiles),
    };
    if !version.has_v2() {
        resolve_symlinks(&mut files, multi_file)?;
    }
    if files.iter().all(|f| f.attr.pad) {
        return Err(MetainfoError::NoFiles);
    }
    check_unique(&files)?;
    let total_length = files
        .iter()
        .filter(|f| !f.attr.pad)
        .try_fold(0u64, |acc, f| acc.checked_add(f.length))
        .ok_or(MetainfoError::LengthOverflow)?;
    if data_length == 0 {
        return Err(MetainfoError::NoData);
    }
    let expected_pieces = data_length.div_ceil(piece_length);
    let piece_count = u32::try_from(expected_pieces).map_err(|_| MetainfoError::LengthOverflow)?;
    if version.has_v1() {
        let actual = (pieces.len() / 20) as u64;
        if actual != expected_pieces {
            return Err(MetainfoError::PieceCountMismatch {
                expected: expected_pieces,
                actual,
            });
        }
    }

    let hashes = InfoHashes {
        v1: version
            .has_v1()
            .then(|| InfoHashV1(webtorrent_hash::sha1(raw))),
        v2: version
            .has_v2()
            .then(|| InfoHashV2(webtorrent_hash::sha256(raw))),
    };
    Ok(Info {
        raw: raw.to_vec(),
        version,
        name,
        piece_length,
        private,
        multi_file,
        files: files
            .into_iter()
            .zip(offsets)
            .map(|(f, offset)| finish(f, offset))
            .collect(),
        pieces: pieces.to_vec(),
        total_length,
        data_length,
        piece_count,
        hashes,
        lossy_names: ctx.lossy,
    })
}

/// Reads `key`, preferring `utf8_key` when it holds valid UTF-8.
fn preferred_text(
    ctx: &mut Ctx,
    dict: &Dict<'_>,
    key: &[u8],
    utf8_key: &[u8],
    name: &str,
) -> Result<Option<String>, MetainfoError> {
    if let Some(s) = dict.get(utf8_key).and_then(Value::as_str) {
        return Ok(Some(s.to_owned()));
    }
    match dict.get(key) {
        None => Ok(None),
        Some(v) => {
            let bytes = v.as_bytes().ok_or_else(|| wrong(name, "a byte string"))?;
            Ok(Some(ctx.text(bytes)))
        }
    }
}

/// Reads a list of strings (a path), `None` when some element is not a string.
fn string_list<'a>(list: &List<'a>) -> Option<Vec<&'a [u8]>> {
    list.iter().map(Value::as_bytes).collect()
}

/// Per-file BEP 47 keys shared by v1 entries, the single-file info dict and v2 tree leaves.
struct Extras {
    attr: FileAttributes,
    symlink: Option<Vec<String>>,
    sha1: Option<[u8; 20]>,
    mtime: Option<i64>,
}

fn parse_extras(ctx: &mut Ctx, dict: &Dict<'_>) -> Extras {
    let attr_bytes = dict
        .get(b"attr")
        .and_then(Value::as_bytes)
        .unwrap_or_default();
    let mut attr = FileAttributes {
        pad: attr_bytes.contains(&b'p'),
        executable: attr_bytes.contains(&b'x'),
        hidden: attr_bytes.contains(&b'h'),
        symlink: None,
    };
    // A symlink needs both the `l` attribute and a target; either alone is ignored.
    let symlink = if attr_bytes.contains(&b'l') {
        dict.get(b"symlink path")
            .and_then(Value::as_list)
            .and_then(string_list)
            .map(|parts| parts.iter().map(|p| ctx.text(p)).collect::<Vec<_>>())
    } else {
        None
    };
    if symlink.is_some() {
        // Marked now, resolved once every path is known.
        attr.symlink = Some(PathBuf::new());
    }
    let sha1 = dict
        .get(b"sha1")
        .and_then(Value::as_bytes)
        .and_then(|b| <[u8; 20]>::try_from(b).ok());
    let mtime = dict.get(b"mtime").and_then(Value::as_int);
    Extras {
        attr,
        symlink,
        sha1,
        mtime,
    }
}

fn non_negative(length: i64, path: impl FnOnce() -> String) -> Result<u64, MetainfoError> {
    u64::try_from(length).map_err(|_| MetainfoError::NegativeLength {
        path: path(),
        length,
    })
}

fn check_path(components: &[String]) -> Result<(), MetainfoError> {
    path::check_components(components).map_err(|problem| MetainfoError::InvalidPath {
        path: components.join("/"),
        problem,
    })
}

/// Parses the v1 `files` list (or the single-file keys). Returns (multi-file, files).
fn parse_v1_files(
    ctx: &mut Ctx,
    dict: &Dict<'_>,
    name: &str,
) -> Result<(bool, Vec<RawFile>), MetainfoError> {
    let Some(files) = dict.get(b"files") else {
        let length = get_int(dict, b"length", || "info.length".into())?
            .ok_or(MetainfoError::MissingKey { key: "info.length" })?;
        let length = non_negative(length, || name.to_owned())?;
        let extras = parse_extras(ctx, dict);
        return Ok((
            false,
            vec![RawFile {
                components: vec![name.to_owned()],
                length,
                attr: extras.attr,
                symlink_target: extras.symlink,
                pieces_root: None,
                sha1: extras.sha1,
                mtime: extras.mtime,
            }],
        ));
    };
    let list = files
        .as_list()
        .ok_or_else(|| wrong("info.files", "a list"))?;
    if list.len() > 2 * MAX_FILES + 1 {
        return Err(MetainfoError::TooManyFiles {
            count: list.len(),
            max: MAX_FILES,
        });
    }
    let mut out = Vec::with_capacity(list.len());
    let mut real = 0usize;
    for (i, entry) in list.iter().enumerate() {
        let fd = entry
            .as_dict()
            .ok_or_else(|| wrong(format!("info.files[{i}]"), "a dictionary"))?;
        let length = get_int(fd, b"length", || format!("info.files[{i}].length"))?
            .ok_or_else(|| wrong(format!("info.files[{i}].length"), "an integer"))?;
        let utf8_path = fd
            .get(b"path.utf-8")
            .and_then(Value::as_list)
            .and_then(|l| l.iter().map(Value::as_str).collect::<Option<Vec<_>>>());
        let mut components = Vec::with_capacity(4);
        components.push(name.to_owned());
        if let Some(parts) = utf8_path {
            components.extend(parts.into_iter().map(str::to_owned));
        } else {
            let parts = fd
                .get(b"path")
                .ok_or_else(|| wrong(format!("info.files[{i}].path"), "a list of strings"))?
                .as_list()
                .and_then(string_list)
                .ok_or_else(|| wrong(format!("info.files[{i}].path"), "a list of strings"))?;
            components.extend(parts.into_iter().map(|p| ctx.text(p)));
        }
        let length = non_negative(length, || components.join("/"))?;
        if components.len() == 1 {
            return Err(MetainfoError::InvalidPath {
                path: components.join("/"),
                problem: PathProblem::NoComponents,
            });
        }
        check_path(&components)?;
        let mut extras = parse_extras(ctx, fd);
        if components
            .last()
            .is_some_and(|c| c.starts_with(LEGACY_PAD_PREFIX))
        {
            extras.attr.pad = true;
        }
        if !extras.attr.pad {
            real += 1;
            if real > MAX_FILES {
                return Err(MetainfoError::TooManyFiles {
                    count: real,
                    max: MAX_FILES,
                });
            }
        }
        out.push(RawFile {
            components,
            length,
            attr: extras.attr,
            symlink_target: extras.symlink,
            pieces_root: None,
            sha1: extras.sha1,
            mtime: extras.mtime,
        });
    }
    Ok((true, out))
}

/// State of a `file tree` walk.
struct TreeWalk<'o> {
    /// Components of the current node (without the torrent name).
    path: Vec<String>,
    /// Their length joined with `/`.
    path_len: usize,
    /// Bytes of paths (plus per-component overhead) that may still be spelled out.
    budget: u64,
    out: &'o mut Vec<RawFile>,
}

/// Walks a BEP 52 `file tree`, appending its files to `walk.out` with their components
/// (without the torrent name).
fn walk_tree(ctx: &mut Ctx, node: &Dict<'_>, walk: &mut TreeWalk<'_>) -> Result<(), MetainfoError> {
    let path = &walk.path;
    let out = &mut *walk.out;
    if let Some(leaf) = node.get(b"") {
        if path.is_empty() {
            return Err(MetainfoError::InvalidPath {
                path: String::new(),
                problem: PathProblem::EmptyComponent,
            });
        }
        if node.iter().any(|(k, _)| !k.is_empty()) {
            return Err(MetainfoError::FileIsDirectory {
                path: path::to_path_buf(path),
            });
        }
        if node.len() > 1 {
            return Err(MetainfoError::DuplicatePath {
                path: path::to_path_buf(path),
            });
        }
        let display = || path.join("/");
        let leaf = leaf
            .as_dict()
            .ok_or_else(|| wrong(format!("info.file tree/{}", display()), "a dictionary"))?;
        let extras = parse_extras(ctx, leaf);
        let length = match get_int(leaf, b"length", || {
            format!("info.file tree/{}.length", display())
        })? {
            Some(l) => non_negative(l, display)?,
            None if extras.symlink.is_some() => 0,
            None => {
                return Err(wrong(
                    format!("info.file tree/{}.length", display()),
                    "an integer",
                ));
            }
        };
        let pieces_root = match leaf.get(b"pieces root").and_then(Value::as_bytes) {
            Some(b) => {
                Some(
                    <[u8; 32]>::try_from(b).map_err(|_| MetainfoError::InvalidPiecesRoot {
                        path: path::to_path_buf(path),
                    })?,
                )
            }
            None => None,
        };
        if length > 0 && pieces_root.is_none_or(|r| r == [0; 32]) {
            return Err(MetainfoError::InvalidPiecesRoot {
                path: path::to_path_buf(path),
            });
        }
        if out.len() >= MAX_FILES {
            return Err(MetainfoError::TooManyFiles {
                count: out.len() + 1,
                max: MAX_FILES,
            });
        }
        let cost = (walk.path_len + 32 * path.len()) as u64;
        walk.budget = walk
            .budget
            .checked_sub(cost)
            .ok_or(MetainfoError::PathsTooLarge)?;
        out.push(RawFile {
            components: path.clone(),
            length,
            attr: extras.attr,
            symlink_target: extras.symlink,
            pieces_root: if length > 0 { pieces_root } else { None },
            sha1: extras.sha1,
            mtime: extras.mtime,
        });
        return Ok(());
    }
    for (key, child) in node.iter() {
        let component = ctx.text(key);
        let saved_len = walk.path_len;
        walk.path_len += usize::from(!walk.path.is_empty()) + component.len();
        walk.path.push(component);
        if walk.path_len > path::MAX_PATH_LEN {
            return Err(MetainfoError::InvalidPath {
                path: walk.path.join("/"),
                problem: PathProblem::PathTooLong { len: walk.path_len },
            });
        }
        let child = child.as_dict().ok_or_else(|| {
            wrong(
                format!("info.file tree/{}", walk.path.join("/")),
                "a dictionary",
            )
        })?;
        walk_tree(ctx, child, walk)?;
        walk.path.pop();
        walk.path_len = saved_len;
    }
    Ok(())
}

/// Prefixes the tree's paths with the torrent name and decides single- vs multi-file.
///
/// `shape` is the v1 answer for hybrid torrents. Without it (v2-only), the torrent is
/// single-file when the tree holds exactly one file whose path is the torrent name (BEP 52's
/// single-file form, also libtorrent's rule).
fn place_v2_tree(
    name: &str,
    mut tree: Vec<RawFile>,
    shape: Option<bool>,
) -> Result<(bool, Vec<RawFile>), MetainfoError> {
    let single_form =
        tree.len() == 1 && tree[0].components.len() == 1 && tree[0].components[0] == name;
    let multi = match shape {
        Some(multi) => {
            if !multi && !single_form {
                return Err(MetainfoError::HybridMismatch(HybridMismatch::Shape));
            }
            multi
        }
        None => !single_form,
    };
    if multi {
        for f in &mut tree {
            f.components.insert(0, name.to_owned());
        }
    }
    for f in &tree {
        check_path(&f.components)?;
    }
    Ok((multi, tree))
}

fn finish(raw: RawFile, offset: u64) -> FileEntry {
    FileEntry {
        path: raw.path(),
        length: raw.length,
        offset,
        attr: raw.attr,
        pieces_root: raw.pieces_root,
        sha1: raw.sha1,
        mtime: raw.mtime,
    }
}

/// v1 layout: files back to back, pad files included. Returns the offsets and the end.
fn layout_v1(list: &[RawFile]) -> Result<(Vec<u64>, u64), MetainfoError> {
    let mut end = 0u64;
    let mut offsets = Vec::with_capacity(list.len());
    for f in list {
        offsets.push(end);
        end = end
            .checked_add(f.length)
            .ok_or(MetainfoError::LengthOverflow)?;
    }
    Ok((offsets, end))
}

/// v2 layout: every file starts on a piece boundary; no pad entries are listed. Returns the
/// offsets and the end of the last non-empty file.
fn layout_v2(tree: &[RawFile], piece_length: u64) -> Result<(Vec<u64>, u64), MetainfoError> {
    let mut end = 0u64;
    let mut offsets = Vec::with_capacity(tree.len());
    for f in tree {
        let start = align_up(end, piece_length)?;
        offsets.push(start);
        if f.length > 0 {
            end = start
                .checked_add(f.length)
                .ok_or(MetainfoError::LengthOverflow)?;
        }
    }
    Ok((offsets, end))
}

fn align_up(offset: u64, piece_length: u64) -> Result<u64, MetainfoError> {
    offset
        .checked_next_multiple_of(piece_length)
        .ok_or(MetainfoError::LengthOverflow)
}

/// Hybrid: the v1 list must hold the tree's files, in the same order and with the same
/// paths, lengths and symlink targets, each non-empty one at the piece boundary where v2
/// puts it. The v1 list is kept (pad files included), with the v2 `pieces root`s added.
fn merge_hybrid(
    list: &mut [RawFile],
    v1_offsets: &[u64],
    v1_end: u64,
    tree: Vec<RawFile>,
    piece_length: u64,
) -> Result<u64, MetainfoError> {
    let real = list.iter().filter(|f| !f.attr.pad).count();
    if real != tree.len() {
        return Err(MetainfoError::HybridMismatch(HybridMismatch::FileCount {
            v1: real,
            v2: tree.len(),
        }));
    }
    let (v2_offsets, v2_end) = layout_v2(&tree, piece_length)?;
    let v1_real = list.iter_mut().zip(v1_offsets).filter(|(f, _)| !f.attr.pad);
    for (index, ((f, &v1_offset), (v2, &v2_offset))) in
        v1_real.zip(tree.into_iter().zip(&v2_offsets)).enumerate()
    {
        if f.components != v2.components
            || f.length != v2.length
            || f.attr.symlink != v2.attr.symlink
        {
            return Err(MetainfoError::HybridMismatch(HybridMismatch::File {
                index,
                v1: f.path(),
                v2: v2.path(),
            }));
        }
        if f.length > 0 && v1_offset != v2_offset {
            return Err(MetainfoError::HybridMismatch(HybridMismatch::Offset {
                path: v2.path(),
                v1: v1_offset,
                v2: v2_offset,
            }));
        }
        f.pieces_root = v2.pieces_root;
    }
    // A trailing pad file up to the next piece boundary is allowed (libtorrent writes one).
    if v1_end < v2_end || v1_end > align_up(v2_end, piece_length)? {
        return Err(MetainfoError::HybridMismatch(HybridMismatch::TotalLength {
            v1: v1_end,
            v2: v2_end,
        }));
    }
    Ok(v1_end)
}

/// Resolves symlink targets. BEP 47 says a target is relative to the torrent's root folder;
/// libtorrent's creator writes it relative to the link's own folder. Like libtorrent's
/// loader, the reading that names a file or folder of the torrent wins (root-relative
/// first); otherwise the root-relative reading if it stays inside the torrent, else the
/// link-relative one; a target that leaves the torrent either way is refused.
fn resolve_symlinks(files: &mut [RawFile], multi_file: bool) -> Result<(), MetainfoError> {
    if files.iter().all(|f| f.symlink_target.is_none()) {
        return Ok(());
    }
    let skip = usize::from(multi_file);
    // Every file and folder of the torrent, relative to its root folder. Conflicts are
    // reported later by `check_unique`.
    let mut known = PathTree::default();
    for f in files.iter().filter(|f| !f.attr.pad) {
        let _ = known.insert_file(&f.components[skip.min(f.components.len())..]);
    }
    for f in files.iter_mut() {
        let Some(target) = f.symlink_target.take() else {
            continue;
        };
        let inside: Vec<&str> = f.components.iter().skip(skip).map(String::as_str).collect();
        let parent = &inside[..inside.len().saturating_sub(1)];
        let target_refs: Vec<&str> = target.iter().map(String::as_str).collect();
        let from_root = path::resolve_link(&[], &target_refs);
        let from_link = path::resolve_link(parent, &target_refs);
        let exists = |p: &Option<Vec<&str>>| p.as_ref().is_some_and(|p| known.contains(p));
        let resolved = if exists(&from_root) {
            from_root
        } else if exists(&from_link) {
            from_link
        } else {
            from_root.or(from_link)
        }
        .ok_or_else(|| MetainfoError::SymlinkEscapes {
            path: f.path(),
            target: target.join("/"),
        })?;
        path::check_components(&resolved).map_err(|problem| MetainfoError::InvalidPath {
            path: target.join("/"),
            problem,
        })?;
        f.attr.symlink = Some(path::to_path_buf(&resolved));
    }
    Ok(())
}

/// Refuses duplicate paths and paths that are both a file and a directory (pad files are
/// exempt: they are never written, and libtorrent reuses their names).
fn check_unique(files: &[RawFile]) -> Result<(), MetainfoError> {
    let mut tree = PathTree::default();
    for f in files.iter().filter(|f| !f.attr.pad) {
        match tree.insert_file(&f.components) {
            Ok(()) => {}
            Err(Conflict::Duplicate) => {
                return Err(MetainfoError::DuplicatePath { path: f.path() });
            }
            Err(Conflict::FileIsDirectory(depth)) => {
                return Err(MetainfoError::FileIsDirectory {
                    path: path::to_path_buf(&f.components[..depth]),
                });
            }
        }
    }
    Ok(())
}

/// The files and folders of a torrent as a tree of components, so that checks stay linear in
/// the size of the torrent however deep its paths are.
#[derive(Default)]
struct PathTree {
    /// (parent node, component) -> node; node 0 is the root.
    children: HashMap<(usize, String), usize>,
    /// Whether each node (after the root) is a file.
    is_file: Vec<bool>,
}

/// Why a path cannot be added to a [`PathTree`].
enum Conflict {
    Duplicate,
    /// The first `n` components name a file that would also be a folder.
    FileIsDirectory(usize),
}

impl PathTree {
    /// Components compare byte for byte, except on the case-insensitive file systems usual
    /// on Windows and macOS.
    fn key(component: &str) -> String {
        if cfg!(any(windows, target_os = "macos")) {
            component.to_lowercase()
        } else {
            component.to_owned()
        }
    }

    fn node(&mut self, parent: usize, component: &str, file: bool) -> (usize, Option<bool>) {
        let next = self.is_file.len() + 1;
        match self.children.entry((parent, Self::key(component))) {
            Entry::Occupied(e) => {
                let id = *e.get();
                (id, self.is_file.get(id - 1).copied())
            }
            Entry::Vacant(e) => {
                e.insert(next);
                self.is_file.push(file);
                (next, None)
            }
        }
    }

    fn insert_file(&mut self, components: &[String]) -> Result<(), Conflict> {
        let mut parent = 0;
        let last = components.len().saturating_sub(1);
        for (i, c) in components.iter().enumerate() {
            let (id, existing) = self.node(parent, c, i == last);
            match existing {
                Some(true) if i < last => return Err(Conflict::FileIsDirectory(i + 1)),
                Some(true) => return Err(Conflict::Duplicate),
                Some(false) if i == last => {
                    return Err(Conflict::FileIsDirectory(components.len()));
                }
                _ => {}
            }
            parent = id;
        }
        Ok(())
    }

    fn contains(&self, components: &[&str]) -> bool {
        let mut node = 0;
        for c in components {
            match self.children.get(&(node, Self::key(c))) {
                Some(&id) => node = id,
                None => return false,
            }
        }
        node != 0
    }
}
