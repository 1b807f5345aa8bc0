//! Torrent creation (feature `create`): walk files, hash them, write the metadata.
//!
//! The layout rules follow libtorrent 2.0 so that the same files give the same info-hashes
//! (see `docs/metainfo.md`):
//!
//! - files are sorted by path, component by component, byte-wise (the BEP 52 file tree
//!   order), for every flavour;
//! - hidden files and empty files are kept, empty folders are not;
//! - a hybrid multi-file torrent follows every non-empty file that does not end on a piece
//!   boundary with a pad file `.pad/<length>` (`attr` `p`), the last file included; a
//!   single-file torrent (or a folder with one file) gets no padding; v1-only torrents get
//!   none;
//! - `attr` `x` marks files whose owner-execute bit is set (checked on the link itself for
//!   symlinks, as libtorrent 2.0 does); `h` is never set on Unix;
//! - the automatic piece length is [`crate::auto_piece_length`] of the real files' total.

mod batched;
mod direct;
mod hasher;
mod walk;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use webtorrent_bencode::OwnedValue;
use webtorrent_hash::HashEngine;

use crate::error::MetainfoError;
use crate::info::{MAX_FILES, MetaVersion};
use crate::metainfo::Metainfo;
use crate::path::{self, PathProblem};
use crate::piece_length::{
    auto_piece_length, is_valid_v1_create_piece_length, is_valid_v2_piece_length,
};

/// Why a torrent could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// Reading the filesystem failed.
    #[error("{path:?}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The folder holds no file.
    #[error("no files to share in {path:?}")]
    NoFiles {
        /// The folder.
        path: PathBuf,
    },
    /// Every file is empty.
    #[error("all files are empty: a torrent needs at least one byte")]
    EmptyTorrent,
    /// The piece length is not valid for the chosen version.
    #[error("piece length {piece_length} is not valid for a {version} torrent")]
    InvalidPieceLength {
        /// The requested piece length.
        piece_length: u64,
        /// The requested version.
        version: MetaVersion,
    },
    /// The torrent name cannot be used.
    #[error("invalid torrent name {name:?}: {problem}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// A file name cannot be stored in a torrent (this crate would refuse to parse it).
    #[error("cannot share {path:?}: {problem}")]
    InvalidPath {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// A file name is not valid UTF-8.
    #[error("file name is not valid UTF-8: {path:?}")]
    NonUtf8Path {
        /// The file.
        path: PathBuf,
    },
    /// A symlink (not followed) points outside the shared folder.
    #[error(
        "symlink {path:?} points outside the torrent ({target:?}); follow symlinks to share its target"
    )]
    SymlinkOutsideTorrent {
        /// The symlink.
        path: PathBuf,
        /// Its target.
        target: PathBuf,
    },
    /// Following symlinks leads back into a folder being walked.
    #[error("symlink loop at {path:?}")]
    SymlinkLoop {
        /// Where the loop was found.
        path: PathBuf,
    },
    /// Neither a regular file, a folder nor a symlink (a FIFO, socket or device).
    #[error("not a regular file: {path:?}")]
    UnsupportedFileType {
        /// The file.
        path: PathBuf,
    },
    /// A file changed size while it was being hashed.
    #[error("{path:?} changed while it was being hashed")]
    FileChanged {
        /// The file.
        path: PathBuf,
    },
    /// More files than a torrent may hold ([`crate::MAX_FILES`]).
    #[error("too many files ({count})")]
    TooManyFiles {
        /// Files found.
        count: usize,
    },
    /// The data is too large for the piece length (more than `u32::MAX` pieces, or more
    /// than `u64::MAX` bytes).
    #[error("too much data for piece length {piece_length}")]
    TooLarge {
        /// The piece length.
        piece_length: u64,
    },
    /// The created torrent did not parse back (e.g. two in-memory files with one path).
    #[error("the created torrent is invalid: {0}")]
    Metainfo(#[from] MetainfoError),
}

/// A file given in memory to [`TorrentBuilder::from_memory`].
#[derive(Clone, PartialEq, Eq)]
pub struct MemoryFile {
    path: PathBuf,
    data: Arc<[u8]>,
    executable: bool,
}

impl std::fmt::Debug for MemoryFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryFile")
            .field("path", &self.path)
            .field("length", &self.data.len())
            .field("executable", &self.executable)
            .finish()
    }
}

impl MemoryFile {
    /// A file at `path` (relative, inside the torrent's folder, `/`-separated components)
    /// holding `data`.
    pub fn new(path: impl Into<PathBuf>, data: impl Into<Arc<[u8]>>) -> Self {
        Self {
            path: path.into(),
            data: data.into(),
            executable: false,
        }
    }

    /// Marks the file executable (`attr` `x`).
    #[must_use]
    pub fn executable(mut self, yes: bool) -> Self {
        self.executable = yes;
        self
    }
}

/// Where the files come from.
#[derive(Clone)]
enum Input {
    Disk(PathBuf),
    MemorySingle {
        name: String,
        data: Arc<[u8]>,
    },
    MemoryDir {
        name: String,
        files: Vec<MemoryFile>,
    },
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Disk(path) => f.debug_tuple("Disk").field(path).finish(),
            Self::MemorySingle { name, data } => f
                .debug_struct("MemorySingle")
                .field("name", name)
                .field("length", &data.len())
                .finish(),
            Self::MemoryDir { name, files } => f
                .debug_struct("MemoryDir")
                .field("name", name)
                .field("files", files)
                .finish(),
        }
    }
}

/// Where a planned file's bytes come from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    Disk(PathBuf),
    Memory(Arc<[u8]>),
    /// A symlink: no data.
    None,
}

/// One file to put in the torrent.
#[derive(Clone, Debug)]
pub(crate) struct PlannedFile {
    /// Path inside the torrent's folder; empty for a single-file torrent.
    pub(crate) components: Vec<String>,
    pub(crate) length: u64,
    pub(crate) executable: bool,
    pub(crate) hidden: bool,
    /// Symlink target relative to the torrent's folder.
    pub(crate) symlink: Option<Vec<String>>,
    pub(crate) source: Source,
}

/// Creates torrents.
///
/// Defaults follow libtorrent 2.0's `create_torrent`: hybrid (v1 + v2), automatic piece
/// length, files sorted by path. Symlinks are not followed: they are stored as BEP 47
/// symlink entries, unless [`follow_symlinks`](Self::follow_symlinks) is set.
///
/// ```
/// use webtorrent_metainfo::{MemoryFile, MetaVersion, TorrentBuilder};
///
/// let torrent = TorrentBuilder::from_memory(
///     "photos",
///     vec![
///         MemoryFile::new("b.jpg", vec![1u8; 40_000]),
///         MemoryFile::new("a/readme.txt", b"hello".to_vec()),
///     ],
/// )
/// .tracker("udp://tracker.example:1337/announce".into())
/// .creation_date(Some(1_700_000_000))
/// .build()?;
///
/// let info = torrent.info();
/// assert_eq!(info.version(), MetaVersion::Hybrid);
/// assert_eq!(info.piece_length(), 16384);
/// let real: Vec<_> = info.files().iter().filter(|f| !f.is_pad()).map(|f| &f.path).collect();
/// assert_eq!(real, ["photos/a/readme.txt", "photos/b.jpg"].map(std::path::Path::new));
/// # Ok::<(), webtorrent_metainfo::CreateError>(())
/// ```
#[derive(Clone)]
pub struct TorrentBuilder {
    input: Input,
    version: MetaVersion,
    piece_length: Option<u64>,
    trackers: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    private: bool,
    comment: Option<String>,
    name: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
    follow_symlinks: bool,
    engine: Option<Arc<dyn HashEngine>>,
}

impl std::fmt::Debug for TorrentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorrentBuilder")
            .field("input", &self.input)
            .field("version", &self.version)
            .field("piece_length", &self.piece_length)
            .field("trackers", &self.trackers)
            .field("web_seeds", &self.web_seeds)
            .field("private", &self.private)
            .field("name", &self.name)
            .field("follow_symlinks", &self.follow_symlinks)
            .finish_non_exhaustive()
    }
}

impl TorrentBuilder {
    fn with_input(input: Input) -> Self {
        Self {
            input,
            version: MetaVersion::Hybrid,
            piece_length: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            private: false,
            comment: None,
            name: None,
            created_by: None,
            creation_date: None,
            follow_symlinks: false,
            engine: None,
        }
    }

    /// A torrent of `path`: a single-file torrent for a file, a multi-file torrent for a
    /// folder (even if it holds one file). The torrent name defaults to the last path
    /// component. `path` itself is followed if it is a symlink.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_input(Input::Disk(path.into()))
    }

    /// A multi-file torrent named `name` of files held in memory. Their order does not
    /// matter: files are sorted as for a folder.
    pub fn from_memory(name: impl Into<String>, files: Vec<MemoryFile>) -> Self {
        Self::with_input(Input::MemoryDir {
            name: name.into(),
            files,
        })
    }

    /// A single-file torrent named `name` holding `data`.
    pub fn from_memory_file(name: impl Into<String>, data: impl Into<Arc<[u8]>>) -> Self {
        Self::with_input(Input::MemorySingle {
            name: name.into(),
            data: data.into(),
        })
    }

    /// The file or folder the torrent is built from, when it is on disk.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match &self.input {
            Input::Disk(path) => Some(path),
            _ => None,
        }
    }

    /// Which metadata to write (default [`MetaVersion::Hybrid`], libtorrent 2's default).
    #[must_use]
    pub fn meta_version(mut self, version: MetaVersion) -> Self {
        self.version = version;
        self
    }

    /// Bytes per piece; `None` (the default) picks [`crate::auto_piece_length`] of the
    /// total size. v2 and hybrid need a power of two of at least 16 KiB; v1 a multiple of
    /// 16 KiB or a power of two; at most [`crate::MAX_PIECE_LENGTH`].
    #[must_use]
    pub fn piece_length(mut self, piece_length: Option<u64>) -> Self {
        self.piece_length = piece_length;
        self
    }

    /// Adds a tracker as a new tier (each call is one tier, tried in order, like
    /// `transmission-create` and WebTorrent's `create-torrent`).
    #[must_use]
    pub fn tracker(mut self, url: String) -> Self {
        self.trackers.push(vec![url]);
        self
    }

    /// Replaces all trackers with these tiers.
    #[must_use]
    pub fn trackers(mut self, tiers: Vec<Vec<String>>) -> Self {
        self.trackers = tiers;
        self
    }

    /// Adds a web seed (BEP 19 `url-list`).
    #[must_use]
    pub fn web_seed(mut self, url: String) -> Self {
        self.web_seeds.push(url);
        self
    }

    /// Sets the private flag (BEP 27). It is part of the info dictionary, so it changes the
    /// info-hash.
    #[must_use]
    pub fn private(mut self, yes: bool) -> Self {
        self.private = yes;
        self
    }

    /// Sets the comment.
    #[must_use]
    pub fn comment(mut self, comment: String) -> Self {
        self.comment = Some(comment);
        self
    }

    /// Overrides the torrent name (default: the file or folder name).
    #[must_use]
    pub fn name(mut self, name: String) -> Self {
        self.name = Some(name);
        self
    }

    /// Sets `created by`.
    #[must_use]
    pub fn created_by(mut self, created_by: String) -> Self {
        self.created_by = Some(created_by);
        self
    }

    /// Sets `creation date` (seconds since the Unix epoch); `None` (the default) writes
    /// none. The caller passes the time: the builder never reads the clock.
    #[must_use]
    pub fn creation_date(mut self, date: Option<i64>) -> Self {
        self.creation_date = date;
        self
    }

    /// Follows symlinks (share what they point to, libtorrent's default) instead of storing
    /// them as BEP 47 symlinks (this crate's default). Dangling symlinks are then skipped.
    #[must_use]
    pub fn follow_symlinks(mut self, yes: bool) -> Self {
        self.follow_symlinks = yes;
        self
    }

    /// Hashes the pieces with `engine` instead of the built-in hashing.
    ///
    /// By default the builder hashes with `webtorrent-hash`'s SHA-1 and SHA-256 on one
    /// thread per core, each thread reading the pieces it hashes. An engine set here is given
    /// every piece through [`HashEngine::run`] instead, in batches of a few MiB read ahead by
    /// one thread: use it to hash elsewhere (hardware, WebCrypto) or on chosen threads (a
    /// [`MultiCoreEngine`](webtorrent_hash::MultiCoreEngine) of `n` threads,
    /// [`SingleThreadEngine`](webtorrent_hash::SingleThreadEngine)). The torrent is the same
    /// either way; the default is the fastest.
    #[must_use]
    pub fn engine(mut self, engine: Arc<dyn HashEngine>) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Reads and hashes the files and returns the torrent.
    pub fn build(self) -> Result<Metainfo, CreateError> {
        self.build_with_progress(|_, _| {})
    }

    /// Like [`build`](Self::build), calling `progress(bytes_hashed, total_bytes)` after
    /// every chunk of data (a few MiB) is hashed.
    pub fn build_with_progress(
        self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Metainfo, CreateError> {
        let (default_name, multi_file, mut files) = self.plan()?;
        let name = self.name.clone().unwrap_or(default_name);
        path::check_components(std::slice::from_ref(&name)).map_err(|problem| {
            CreateError::InvalidName {
                name: name.clone(),
                problem,
            }
        })?;
        if files.len() > MAX_FILES {
            return Err(CreateError::TooManyFiles { count: files.len() });
        }
        files.sort_by(|a, b| a.components.cmp(&b.components));
        check_conflicts(&name, multi_file, &files)?;

        let total = files
            .iter()
            .try_fold(0u64, |acc, f| acc.checked_add(f.length))
            .ok_or(CreateError::TooLarge { piece_length: 0 })?;
        if total == 0 {
            return Err(CreateError::EmptyTorrent);
        }
        let piece_length = self
            .piece_length
            .unwrap_or_else(|| auto_piece_length(total));
        let valid = if self.version.has_v2() {
            is_valid_v2_piece_length(piece_length)
        } else {
            is_valid_v1_create_piece_length(piece_length)
        };
        if !valid {
            return Err(CreateError::InvalidPieceLength {
                piece_length,
                version: self.version,
            });
        }

        let layout = hasher::Layout::new(&files, piece_length, self.version)?;
        let engine = self.engine.as_deref();
        let hashes = hasher::hash(&files, &layout, engine, &mut progress)?;

        let info = assemble_info(&name, multi_file, &files, &layout, &hashes, self.private);
        let mut top = BTreeMap::new();
        self.top_level_fields(&mut top);
        top.insert(b"info".to_vec(), OwnedValue::Raw(info.encode()));
        if self.version.has_v2() {
            let mut layers = BTreeMap::new();
            for (root, layer) in hashes.roots.iter().zip(&hashes.layers) {
                if let (Some(root), Some(layer)) = (root, layer) {
                    layers.insert(root.to_vec(), OwnedValue::Bytes(layer.concat()));
                }
            }
            top.insert(b"piece layers".to_vec(), OwnedValue::Dict(layers));
        }
        let bytes = OwnedValue::Dict(top).encode();
        Ok(Metainfo::from_bytes(&bytes)?)
    }

    /// Lists the files: (default name, multi-file, files).
    fn plan(&self) -> Result<(String, bool, Vec<PlannedFile>), CreateError> {
        match &self.input {
            Input::Disk(root) => walk::walk(root, self.follow_symlinks),
            Input::MemorySingle { name, data } => Ok((
                name.clone(),
                false,
                vec![PlannedFile {
                    components: Vec::new(),
                    length: data.len() as u64,
                    executable: false,
                    hidden: false,
                    symlink: None,
                    source: Source::Memory(Arc::clone(data)),
                }],
            )),
            Input::MemoryDir { name, files } => {
                if files.is_empty() {
                    return Err(CreateError::NoFiles {
                        path: PathBuf::from(name),
                    });
                }
                let planned = files
                    .iter()
                    .map(|f| {
                        let components = memory_components(&f.path)?;
                        Ok(PlannedFile {
                            components,
                            length: f.data.len() as u64,
                            executable: f.executable,
                            hidden: false,
                            symlink: None,
                            source: Source::Memory(Arc::clone(&f.data)),
                        })
                    })
                    .collect::<Result<Vec<_>, CreateError>>()?;
                Ok((name.clone(), true, planned))
            }
        }
    }

    /// `announce`, `announce-list`, `comment`, `created by`, `creation date`, `url-list`,
    /// written the way libtorrent writes them.
    fn top_level_fields(&self, top: &mut BTreeMap<Vec<u8>, OwnedValue>) {
        let tiers: Vec<Vec<String>> = self
            .trackers
            .iter()
            .map(|t| {
                t.iter()
                    .filter(|u| !u.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .filter(|t| !t.is_empty())
            .collect();
        if let Some(first) = tiers.first().and_then(|t| t.first()) {
            top.insert(b"announce".to_vec(), first.as_str().into());
        }
        if tiers.iter().map(Vec::len).sum::<usize>() > 1 {
            let list = tiers
                .iter()
                .map(|t| OwnedValue::List(t.iter().map(|u| u.as_str().into()).collect()))
                .collect();
            top.insert(b"announce-list".to_vec(), OwnedValue::List(list));
        }
        if let Some(c) = &self.comment {
            top.insert(b"comment".to_vec(), c.as_str().into());
        }
        if let Some(c) = &self.created_by {
            top.insert(b"created by".to_vec(), c.as_str().into());
        }
        if let Some(d) = self.creation_date {
            top.insert(b"creation date".to_vec(), d.into());
        }
        let seeds: Vec<&String> = self.web_seeds.iter().filter(|u| !u.is_empty()).collect();
        match seeds.as_slice() {
            [] => {}
            [one] => {
                top.insert(b"url-list".to_vec(), one.as_str().into());
            }
            many => {
                let list = many.iter().map(|u| u.as_str().into()).collect();
                top.insert(b"url-list".to_vec(), OwnedValue::List(list));
            }
        }
    }
}

/// Refuses two files with one path, or a file that is also a folder (possible with
/// in-memory files). `files` is sorted, so a conflict is between neighbours.
fn check_conflicts(name: &str, multi_file: bool, files: &[PlannedFile]) -> Result<(), CreateError> {
    let full = |f: &PlannedFile| -> PathBuf {
        let mut p = PathBuf::from(name);
        if multi_file {
            p.extend(&f.components);
        }
        p
    };
    for pair in files.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.components == b.components {
            return Err(MetainfoError::DuplicatePath { path: full(b) }.into());
        }
        if b.components.starts_with(&a.components) {
            return Err(MetainfoError::FileIsDirectory { path: full(a) }.into());
        }
    }
    Ok(())
}

/// Splits and checks an in-memory file path.
fn memory_components(path: &Path) -> Result<Vec<String>, CreateError> {
    let text = path.to_str().ok_or_else(|| CreateError::NonUtf8Path {
        path: path.to_owned(),
    })?;
    let components: Vec<String> = text.split('/').map(str::to_owned).collect();
    path::check_components(&components).map_err(|problem| CreateError::InvalidPath {
        path: path.to_owned(),
        problem,
    })?;
    Ok(components)
}

/// Builds the info dictionary.
fn assemble_info(
    name: &str,
    multi_file: bool,
    files: &[PlannedFile],
    layout: &hasher::Layout,
    hashes: &hasher::Hashes,
    private: bool,
) -> OwnedValue {
    let mut info: BTreeMap<Vec<u8>, OwnedValue> = BTreeMap::new();
    info.insert(b"name".to_vec(), name.into());
    info.insert(
        b"piece length".to_vec(),
        OwnedValue::Int(i64::try_from(layout.piece_length).unwrap_or(i64::MAX)),
    );
    if private {
        info.insert(b"private".to_vec(), OwnedValue::Int(1));
    }
    let version = layout.version;
    if version.has_v1() {
        if multi_file {
            let mut list = Vec::with_capacity(layout.segments.len());
            for seg in &layout.segments {
                let entry = match seg.file {
                    Some(i) => v1_file_entry(&files[i]),
                    None => pad_entry(seg.length),
                };
                list.push(entry);
            }
            info.insert(b"files".to_vec(), OwnedValue::List(list));
        } else {
            // Checked by the caller: a single-file torrent has exactly one file.
            let file = &files[0];
            info.insert(b"length".to_vec(), length_value(file.length));
            let attr = attr_string(file, false);
            if !attr.is_empty() {
                info.insert(b"attr".to_vec(), attr.as_str().into());
            }
        }
        info.insert(b"pieces".to_vec(), OwnedValue::Bytes(hashes.v1.concat()));
    }
    if version.has_v2() {
        info.insert(b"meta version".to_vec(), OwnedValue::Int(2));
        let mut tree: BTreeMap<Vec<u8>, OwnedValue> = BTreeMap::new();
        for (i, file) in files.iter().enumerate() {
            let leaf = v2_leaf(file, hashes.roots[i]);
            let components: Vec<&str> = if multi_file {
                file.components.iter().map(String::as_str).collect()
            } else {
                vec![name]
            };
            insert_tree(&mut tree, &components, leaf);
        }
        info.insert(b"file tree".to_vec(), OwnedValue::Dict(tree));
    }
    OwnedValue::Dict(info)
}

fn length_value(length: u64) -> OwnedValue {
    // Lengths were summed into a u64 total and come from file sizes, far below i64::MAX.
    OwnedValue::Int(i64::try_from(length).unwrap_or(i64::MAX))
}

/// BEP 47 `attr` for a created file, in libtorrent's letter order.
fn attr_string(file: &PlannedFile, pad: bool) -> String {
    let mut s = String::new();
    if pad {
        s.push('p');
    }
    if file.hidden {
        s.push('h');
    }
    if file.executable {
        s.push('x');
    }
    if file.symlink.is_some() {
        s.push('l');
    }
    s
}

fn string_list(parts: &[String]) -> OwnedValue {
    OwnedValue::List(parts.iter().map(|p| p.as_str().into()).collect())
}

fn v1_file_entry(file: &PlannedFile) -> OwnedValue {
    let mut d: BTreeMap<Vec<u8>, OwnedValue> = BTreeMap::new();
    d.insert(b"length".to_vec(), length_value(file.length));
    d.insert(b"path".to_vec(), string_list(&file.components));
    let attr = attr_string(file, false);
    if !attr.is_empty() {
        d.insert(b"attr".to_vec(), attr.as_str().into());
    }
    if let Some(target) = &file.symlink {
        d.insert(b"symlink path".to_vec(), string_list(target));
    }
    OwnedValue::Dict(d)
}

fn pad_entry(length: u64) -> OwnedValue {
    let mut d: BTreeMap<Vec<u8>, OwnedValue> = BTreeMap::new();
    d.insert(b"attr".to_vec(), "p".into());
    d.insert(b"length".to_vec(), length_value(length));
    d.insert(
        b"path".to_vec(),
        OwnedValue::List(vec![".pad".into(), length.to_string().into()]),
    );
    OwnedValue::Dict(d)
}

/// A `file tree` leaf: `{"": {attr, length, pieces root}}` or for a symlink
/// `{"": {attr, symlink path}}` (libtorrent writes no length there).
fn v2_leaf(file: &PlannedFile, root: Option<[u8; 32]>) -> OwnedValue {
    let mut d: BTreeMap<Vec<u8>, OwnedValue> = BTreeMap::new();
    let attr = attr_string(file, false);
    if !attr.is_empty() {
        d.insert(b"attr".to_vec(), attr.as_str().into());
    }
    if let Some(target) = &file.symlink {
        d.insert(b"symlink path".to_vec(), string_list(target));
    } else {
        d.insert(b"length".to_vec(), length_value(file.length));
        if let Some(root) = root {
            d.insert(b"pieces root".to_vec(), OwnedValue::Bytes(root.to_vec()));
        }
    }
    let mut leaf = BTreeMap::new();
    leaf.insert(Vec::new(), OwnedValue::Dict(d));
    OwnedValue::Dict(leaf)
}

fn insert_tree(tree: &mut BTreeMap<Vec<u8>, OwnedValue>, components: &[&str], leaf: OwnedValue) {
    match components {
        [] => {}
        [last] => {
            tree.insert(last.as_bytes().to_vec(), leaf);
        }
        [first, rest @ ..] => {
            let node = tree
                .entry(first.as_bytes().to_vec())
                .or_insert_with(|| OwnedValue::Dict(BTreeMap::new()));
            if let OwnedValue::Dict(child) = node {
                insert_tree(child, rest, leaf);
            }
        }
    }
}
