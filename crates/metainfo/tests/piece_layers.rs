//! Piece layers set after the fact (as fetched from peers for a magnet link) make the same
//! torrent as the original `.torrent`.
#![cfg(feature = "create")]

use webtorrent_metainfo::{Info, MemoryFile, MetaVersion, Metainfo, MetainfoError, TorrentBuilder};

fn torrent(version: MetaVersion) -> Metainfo {
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    TorrentBuilder::from_memory(
        "t",
        vec![
            MemoryFile::new("big", big),
            MemoryFile::new("small", b"tiny".to_vec()),
        ],
    )
    .meta_version(version)
    .piece_length(Some(16384))
    .build()
    .unwrap()
}

#[test]
fn set_layers_rebuild_the_original_torrent() {
    let original = torrent(MetaVersion::V2);
    let info = Info::from_bytes(original.info().raw()).unwrap();
    let mut fetched = Metainfo::from_info(info);
    assert!(!fetched.has_all_piece_layers());
    let big = original
        .info()
        .files()
        .iter()
        .position(|f| f.path.ends_with("big"))
        .unwrap();
    let small = 1 - big;
    let layer = original.piece_layer(big).unwrap().to_vec();
    assert_eq!(layer.len(), 7);

    // Wrong lengths, wrong hashes and files that take no layer are refused.
    assert!(matches!(
        fetched.set_piece_layer(big, layer[..6].to_vec()),
        Err(MetainfoError::PieceLayerLength { .. })
    ));
    let mut wrong = layer.clone();
    wrong[2][5] ^= 1;
    assert!(matches!(
        fetched.set_piece_layer(big, wrong),
        Err(MetainfoError::PieceLayerRoot { .. })
    ));
    assert!(matches!(
        fetched.set_piece_layer(small, layer.clone()),
        Err(MetainfoError::NoPieceLayer { .. })
    ));
    assert!(matches!(
        fetched.set_piece_layer(7, layer.clone()),
        Err(MetainfoError::NoPieceLayer { index: 7 })
    ));
    assert!(!fetched.has_all_piece_layers());

    fetched.set_piece_layer(big, layer).unwrap();
    assert!(fetched.has_all_piece_layers());
    for piece in 0..original.info().piece_count() {
        assert_eq!(fetched.piece_hash_v2(piece), original.piece_hash_v2(piece));
    }
    let reparsed = Metainfo::from_bytes(&fetched.to_bytes()).unwrap();
    assert_eq!(reparsed.piece_layer(big), original.piece_layer(big));
}

#[test]
fn v1_torrents_take_no_layer() {
    let v1 = torrent(MetaVersion::V1);
    assert!(v1.has_all_piece_layers());
    let mut v1 = v1;
    assert!(matches!(
        v1.set_piece_layer(0, vec![[0; 32]; 7]),
        Err(MetainfoError::NoPieceLayer { index: 0 })
    ));
}

#[test]
fn a_hybrid_torrent_without_layers_loads_and_a_v2_one_does_not() {
    for version in [MetaVersion::Hybrid, MetaVersion::V2] {
        let original = torrent(version);
        // What a .torrent made from a magnet link's metadata holds: the info dictionary
        // and nothing of the layers.
        let bare = Metainfo::from_info(Info::from_bytes(original.info().raw()).unwrap());
        let loaded = Metainfo::from_bytes(&bare.to_bytes());
        match version {
            MetaVersion::Hybrid => {
                let loaded = loaded.expect("the v1 hashes are enough");
                assert_eq!(loaded.info_hashes(), original.info_hashes());
                assert!(!loaded.has_all_piece_layers());
                assert_eq!(loaded.piece_layer(0), None);
            }
            _ => assert!(
                matches!(loaded, Err(MetainfoError::MissingPieceLayer { .. })),
                "{loaded:?}"
            ),
        }
    }
}
