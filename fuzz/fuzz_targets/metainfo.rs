//! `Metainfo::from_bytes` and `Info::from_bytes` on arbitrary bytes never panic; whatever
//! parses writes back to bytes that parse again with the same info-hashes and files.
#![no_main]
use libfuzzer_sys::fuzz_target;
use webtorrent_metainfo::{Info, Metainfo};

fuzz_target!(|data: &[u8]| {
    if let Ok(torrent) = Metainfo::from_bytes(data) {
        let bytes = torrent.to_bytes();
        let again = Metainfo::from_bytes(&bytes).expect("written torrent parses");
        assert_eq!(again.info_hashes(), torrent.info_hashes());
        assert_eq!(again.info().files(), torrent.info().files());
        assert_eq!(again.trackers(), torrent.trackers());
        assert_eq!(again.to_bytes(), bytes, "writing is stable");
        let info = torrent.info();
        // The mapping never panics and covers every piece.
        for piece in 0..info.piece_count().min(64) {
            let _ = info.piece_files(piece).count();
            let _ = torrent.piece_hash_v2(piece);
        }
        for file in 0..info.files().len().min(64) {
            let _ = info.file_pieces(file);
        }
    }
    if let Ok(info) = Info::from_bytes(data) {
        let again = Info::from_bytes(info.raw()).expect("raw info parses");
        assert_eq!(again.info_hashes(), info.info_hashes());
        let torrent = Metainfo::from_info(info);
        let _ = Metainfo::from_bytes(&torrent.to_bytes());
    }
});
