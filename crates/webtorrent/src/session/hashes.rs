//! BEP 52 hash requests: answering them for a torrent whose piece layers we hold, and the
//! conversions between the wire's requests and the hash crate's ranges.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use webtorrent_hash::exchange::{HashRange, PieceTree, ServeError};
use webtorrent_metainfo::Metainfo;
use webtorrent_wire::HashRequest;

/// A wire request as a range of the hash crate.
pub(super) fn range(request: &HashRequest) -> HashRange {
    HashRange {
        pieces_root: request.pieces_root,
        base_layer: request.base_layer,
        index: request.index,
        length: request.length,
        proof_layers: request.proof_layers,
    }
}

/// A range of the hash crate as a wire request.
pub(super) fn request(range: &HashRange) -> HashRequest {
    HashRequest {
        pieces_root: range.pieces_root,
        base_layer: range.base_layer,
        index: range.index,
        length: range.length,
        proof_layers: range.proof_layers,
    }
}

/// One file with a piece layer, and its tree once a request needed it.
struct Layer {
    file: usize,
    tree: OnceLock<Option<PieceTree>>,
}

/// Answers hash requests for one torrent from the piece layers of its metainfo.
///
/// Each file's tree (the levels above its piece layer, about twice the layer) is built
/// on the first request for that file and kept; an answer then costs a few copies.
pub(super) struct HashServer {
    metainfo: Arc<Metainfo>,
    piece_length: usize,
    layers: HashMap<[u8; 32], Layer>,
}

/// Why a request is refused.
#[derive(Debug)]
pub(super) enum Refusal {
    /// No file of ours has this root, or we hold no layer for it.
    UnknownRoot,
    /// The range is not in the file's tree, too long, or below the piece layer.
    Invalid(ServeError),
}

impl HashServer {
    /// A server for `metainfo`'s piece layers (none for v1 torrents, or when unknown).
    pub(super) fn new(metainfo: Arc<Metainfo>) -> Self {
        let info = metainfo.info();
        let piece_length = usize::try_from(info.piece_length()).unwrap_or(usize::MAX);
        let mut layers = HashMap::new();
        if info.version().has_v2() {
            for (index, file) in info.files().iter().enumerate() {
                if let (Some(root), Some(_)) = (file.pieces_root, metainfo.piece_layer(index)) {
                    layers.entry(root).or_insert_with(|| Layer {
                        file: index,
                        tree: OnceLock::new(),
                    });
                }
            }
        }
        Self {
            piece_length,
            layers,
            metainfo,
        }
    }

    /// The `hashes` answering `request`: the nodes, then the uncles.
    pub(super) fn answer(&self, request: &HashRequest) -> Result<Vec<[u8; 32]>, Refusal> {
        let layer = self
            .layers
            .get(&request.pieces_root)
            .ok_or(Refusal::UnknownRoot)?;
        let tree = layer.tree.get_or_init(|| {
            let nodes = self.metainfo.piece_layer(layer.file)?.to_vec();
            PieceTree::new(nodes, self.piece_length, &request.pieces_root).ok()
        });
        let tree = tree.as_ref().ok_or(Refusal::UnknownRoot)?;
        tree.answer(&range(request)).map_err(Refusal::Invalid)
    }
}
