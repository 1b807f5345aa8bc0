//! A whole `.torrent` file: the info dictionary plus trackers, web seeds, v2 piece layers and
//! descriptive fields.

use std::collections::BTreeMap;

use webtorrent_bencode::{Dict, OwnedValue, Value};
use webtorrent_types::InfoHashes;

use crate::error::MetainfoError;
use crate::info::Info;

/// A parsed or created `.torrent` file.
///
/// Parsing keeps every top-level key, known or not, and the info dictionary's exact bytes,
/// so [`to_bytes`](Self::to_bytes) writes a torrent with the same info-hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metainfo {
    info: Info,
    trackers: Vec<Vec<String>>,
    web_seeds: Vec<String>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,
    /// Piece layer of each file of `info.files()` (same index); `None` for files without
    /// one (pad files, files of at most one piece, or layers not known).
    piece_layers: Vec<Option<Vec<[u8; 32]>>>,
    /// Every top-level key except `info` and `piece layers`, as read.
    fields: BTreeMap<Vec<u8>, OwnedValue>,
}

impl Metainfo {
    /// Parses a `.torrent` file.
    ///
    /// The top level must be a dictionary with an `info` dictionary; bytes after the
    /// top-level dictionary are ignored. For v2 and hybrid torrents the `piece layers` are
    /// checked against every file's `pieces root`.
    ///
    /// ```
    /// use webtorrent_metainfo::Metainfo;
    /// let mut bytes = b"d8:announce14:http://t/a/ann4:infod6:lengthi5e4:name1:a".to_vec();
    /// bytes.extend_from_slice(b"12:piece lengthi16384e6:pieces20:");
    /// bytes.extend_from_slice(&[7u8; 20]);
    /// bytes.extend_from_slice(b"ee");
    /// let torrent = Metainfo::from_bytes(&bytes)?;
    /// assert_eq!(torrent.trackers(), [vec!["http://t/a/ann".to_string()]]);
    /// assert_eq!(torrent.info().name(), "a");
    /// assert!(torrent.info_hashes().v1.is_some());
    /// # Ok::<(), webtorrent_metainfo::MetainfoError>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetainfoError> {
        let (value, _) = webtorrent_bencode::decode_prefix(bytes)?;
        let top = value
            .as_dict()
            .ok_or_else(|| wrong("the torrent", "a dictionary"))?;
        let info_value = top
            .get(b"info")
            .ok_or(MetainfoError::MissingKey { key: "info" })?;
        let info = Info::from_value(info_value)?;
        let piece_layers = if info.version().has_v2() {
            parse_piece_layers(top, &info)?
        } else {
            vec![None; info.files().len()]
        };
        let mut fields = BTreeMap::new();
        for (key, v) in top.iter() {
            if key == b"info" || key == b"piece layers" {
                continue;
            }
            // The first of duplicate keys wins, as in `Dict::get`.
            fields.entry(key.to_vec()).or_insert_with(|| v.to_owned());
        }
        let mut torrent = Self {
            info,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            comment: None,
            created_by: None,
            creation_date: None,
            piece_layers,
            fields,
        };
        torrent.read_fields(top);
        Ok(torrent)
    }

    /// A torrent made of an info dictionary alone, e.g. fetched from peers with BEP 9. It
    /// has no trackers, web seeds or v2 piece layers.
    #[must_use]
    pub fn from_info(info: Info) -> Self {
        let piece_layers = vec![None; info.files().len()];
        Self {
            info,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            comment: None,
            created_by: None,
            creation_date: None,
            piece_layers,
            fields: BTreeMap::new(),
        }
    }

    fn read_fields(&mut self, top: &Dict<'_>) {
        self.trackers = parse_trackers(top);
        self.web_seeds = parse_web_seeds(top);
        self.comment = text(top, b"comment.utf-8").or_else(|| text(top, b"comment"));
        self.created_by = text(top, b"created by.utf-8").or_else(|| text(top, b"created by"));
        self.creation_date = top.get(b"creation date").and_then(Value::as_int);
    }

    /// Encodes the torrent. The info dictionary is written byte for byte as parsed (or as
    /// created), so the info-hashes do not change; the other keys are written in canonical
    /// order.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut top = self.fields.clone();
        top.insert(b"info".to_vec(), OwnedValue::Raw(self.info.raw().to_vec()));
        if self.info.version().has_v2() && self.has_all_piece_layers() {
            let mut layers = BTreeMap::new();
            for (file, layer) in self.info.files().iter().zip(&self.piece_layers) {
                if let (Some(root), Some(layer)) = (file.pieces_root, layer) {
                    layers.insert(root.to_vec(), OwnedValue::Bytes(layer.concat()));
                }
            }
            top.insert(b"piece layers".to_vec(), OwnedValue::Dict(layers));
        }
        OwnedValue::Dict(top).encode()
    }

    /// Sets the v2 piece layer of file `file` (an index into [`Info::files`]), e.g. one
    /// fetched from peers with BEP 52 hash requests. The layer is checked like one read
    /// from a `.torrent`: its length against the file's, its root against `pieces root`.
    pub fn set_piece_layer(
        &mut self,
        file: usize,
        layer: Vec<[u8; 32]>,
    ) -> Result<(), MetainfoError> {
        let pl = self.info.piece_length();
        let entry = self
            .info
            .files()
            .get(file)
            .filter(|f| self.info.version().has_v2() && !f.is_pad() && f.length > pl)
            .ok_or(MetainfoError::NoPieceLayer { index: file })?;
        let root = entry
            .pieces_root
            .ok_or(MetainfoError::NoPieceLayer { index: file })?;
        let expected = entry.length.div_ceil(pl) * 32;
        if layer.len() as u64 * 32 != expected {
            return Err(MetainfoError::PieceLayerLength {
                path: entry.path.clone(),
                expected,
                actual: layer.len() as u64 * 32,
            });
        }
        let pl_usize = usize::try_from(pl).unwrap_or(usize::MAX);
        if !webtorrent_hash::merkle::verify_piece_layer(&layer, pl_usize, &root) {
            return Err(MetainfoError::PieceLayerRoot {
                path: entry.path.clone(),
            });
        }
        if let Some(slot) = self.piece_layers.get_mut(file) {
            *slot = Some(layer);
        }
        Ok(())
    }

    /// Whether every file that needs a v2 piece layer has one (always for v1 torrents).
    #[must_use]
    pub fn has_all_piece_layers(&self) -> bool {
        if !self.info.version().has_v2() {
            return true;
        }
        let pl = self.info.piece_length();
        self.info
            .files()
            .iter()
            .zip(&self.piece_layers)
            .all(|(f, layer)| f.is_pad() || f.length <= pl || layer.is_some())
    }

    /// The info dictionary.
    #[must_use]
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The info-hashes (see [`Info::info_hashes`]).
    #[must_use]
    pub fn info_hashes(&self) -> InfoHashes {
        self.info.info_hashes()
    }

    /// Tracker tiers: `announce-list` (BEP 12) when it has any URL, else `[[announce]]`,
    /// else nothing. Empty tiers, non-text entries and repeated URLs are skipped.
    #[must_use]
    pub fn trackers(&self) -> &[Vec<String>] {
        &self.trackers
    }

    /// Web seed URLs (BEP 19 `url-list`, a string or a list).
    #[must_use]
    pub fn web_seeds(&self) -> &[String] {
        &self.web_seeds
    }

    /// `comment` (its `.utf-8` variant when present).
    #[must_use]
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// `created by`.
    #[must_use]
    pub fn created_by(&self) -> Option<&str> {
        self.created_by.as_deref()
    }

    /// `creation date`, seconds since the Unix epoch as written (may be negative or far in
    /// the future in real torrents).
    #[must_use]
    pub fn creation_date(&self) -> Option<i64> {
        self.creation_date
    }

    /// The v2 piece layer of file `file` (an index into [`Info::files`]): one SHA-256
    /// Merkle hash per piece. `None` for pad files, files of at most one piece (their
    /// `pieces root` is the only hash), v1 torrents, or torrents built from an info
    /// dictionary alone.
    #[must_use]
    pub fn piece_layer(&self, file: usize) -> Option<&[[u8; 32]]> {
        self.piece_layers.get(file)?.as_deref()
    }

    /// The v2 hash of piece `piece`: the entry of its file's piece layer, or for a file of
    /// at most one piece its `pieces root` (a Merkle root over the file's 16 KiB blocks
    /// padded to a power of two of blocks, not to a whole piece). `None` when unknown.
    #[must_use]
    pub fn piece_hash_v2(&self, piece: u32) -> Option<[u8; 32]> {
        let file = self.info.file_at_piece(piece)?;
        let entry = &self.info.files()[file];
        if entry.length <= self.info.piece_length() {
            return entry.pieces_root;
        }
        let first = self.info.file_pieces(file)?.start;
        let index = usize::try_from(piece - first).ok()?;
        self.piece_layer(file)?.get(index).copied()
    }

    /// Top-level keys other than `info` and `piece layers`, as read (known ones included).
    #[must_use]
    pub fn extra_fields(&self) -> &BTreeMap<Vec<u8>, OwnedValue> {
        &self.fields
    }
}

fn wrong(key: &str, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType {
        key: key.to_owned(),
        expected,
    }
}

/// A text value; invalid UTF-8 is replaced (these fields are informative only).
fn text(dict: &Dict<'_>, key: &[u8]) -> Option<String> {
    let bytes = dict.get(key)?.as_bytes()?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

fn url(v: &Value<'_>) -> Option<String> {
    let s = v.as_str()?.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn parse_trackers(top: &Dict<'_>) -> Vec<Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let mut tiers = Vec::new();
    if let Some(list) = top.get(b"announce-list").and_then(Value::as_list) {
        for tier in list.iter() {
            // Some creators write a flat list of URLs: each becomes its own tier.
            let urls: Vec<String> = match tier.as_list() {
                Some(inner) => inner.iter().filter_map(url).collect(),
                None => url(tier).into_iter().collect(),
            };
            let urls: Vec<String> = urls
                .into_iter()
                .filter(|u| seen.insert(u.clone()))
                .collect();
            if !urls.is_empty() {
                tiers.push(urls);
            }
        }
    }
    if tiers.is_empty()
        && let Some(announce) = top.get(b"announce").and_then(url)
    {
        tiers.push(vec![announce]);
    }
    tiers
}

fn parse_web_seeds(top: &Dict<'_>) -> Vec<String> {
    match top.get(b"url-list") {
        Some(v) => match v.as_list() {
            Some(list) => list.iter().filter_map(url).collect(),
            None => url(v).into_iter().collect(),
        },
        None => Vec::new(),
    }
}

/// Reads `piece layers` and checks it against the files (BEP 52): every file longer than a
/// piece needs a layer of `32 * ceil(length / piece length)` bytes whose Merkle root is the
/// file's `pieces root`. Layers for unknown roots are ignored. A hybrid torrent may lack
/// layers (one made from a magnet link's metadata has none): its v1 hashes verify every
/// piece, and a layer it has must still be right.
fn parse_piece_layers(
    top: &Dict<'_>,
    info: &Info,
) -> Result<Vec<Option<Vec<[u8; 32]>>>, MetainfoError> {
    let layers = match top.get(b"piece layers") {
        None => None,
        Some(v) => Some(
            v.as_dict()
                .ok_or_else(|| wrong("piece layers", "a dictionary"))?,
        ),
    };
    let pl = info.piece_length();
    // Checked by `Info`: a v2 piece length is a power of two of at most 512 MiB.
    let pl_usize = usize::try_from(pl).map_err(|_| MetainfoError::InvalidPieceLength {
        piece_length: i64::try_from(pl).unwrap_or(i64::MAX),
    })?;
    let mut out = Vec::with_capacity(info.files().len());
    for file in info.files() {
        let root = match file.pieces_root {
            Some(root) if !file.is_pad() && file.length > pl => root,
            _ => {
                out.push(None);
                continue;
            }
        };
        let Some(bytes) = layers.and_then(|l| l.get(&root)).and_then(Value::as_bytes) else {
            if info.version().has_v1() {
                out.push(None);
                continue;
            }
            return Err(MetainfoError::MissingPieceLayer {
                path: file.path.clone(),
            });
        };
        let expected = file.length.div_ceil(pl) * 32;
        if bytes.len() as u64 != expected {
            return Err(MetainfoError::PieceLayerLength {
                path: file.path.clone(),
                expected,
                actual: bytes.len() as u64,
            });
        }
        let layer: Vec<[u8; 32]> = bytes
            .chunks_exact(32)
            .filter_map(|c| <[u8; 32]>::try_from(c).ok())
            .collect();
        if !webtorrent_hash::merkle::verify_piece_layer(&layer, pl_usize, &root) {
            return Err(MetainfoError::PieceLayerRoot {
                path: file.path.clone(),
            });
        }
        out.push(Some(layer));
    }
    Ok(out)
}
