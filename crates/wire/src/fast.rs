//! The BEP 6 canonical allowed-fast set.

use std::net::Ipv4Addr;

use sha1::Digest as _;
use webtorrent_types::{InfoHashV1, PieceIndex};

/// The `k` pieces a peer at `ip` may request from a torrent of `pieces` pieces while
/// choked, as BEP 6 derives them: from the peer's /24 network and the info-hash, so
/// that every client grants the same set and a peer gains nothing by reconnecting from
/// other addresses of its network. Fewer than `k` if the torrent has fewer pieces.
pub fn allowed_fast_set(
    ip: Ipv4Addr,
    info_hash: &InfoHashV1,
    pieces: u32,
    k: usize,
) -> Vec<PieceIndex> {
    let k = k.min(pieces as usize);
    let mut set = Vec::with_capacity(k);
    let mut x = Vec::with_capacity(24);
    x.extend_from_slice(&(u32::from(ip) & 0xffff_ff00).to_be_bytes());
    x.extend_from_slice(info_hash.as_bytes());
    while set.len() < k {
        let digest: [u8; 20] = sha1::Sha1::digest(&x).into();
        for word in digest.chunks_exact(4) {
            if set.len() == k {
                break;
            }
            let index = u32::from_be_bytes([word[0], word[1], word[2], word[3]]) % pieces;
            if !set.contains(&index) {
                set.push(index);
            }
        }
        x = digest.to_vec();
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bep6_vectors() {
        let ip = Ipv4Addr::new(80, 4, 4, 200);
        let ih = InfoHashV1([0xaa; 20]);
        assert_eq!(
            allowed_fast_set(ip, &ih, 1313, 7),
            [1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(ip, &ih, 1313, 9),
            [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
        // Only the /24 network counts.
        assert_eq!(
            allowed_fast_set(Ipv4Addr::new(80, 4, 4, 1), &ih, 1313, 9),
            allowed_fast_set(ip, &ih, 1313, 9)
        );
    }

    proptest! {
        #[test]
        fn small_torrents_terminate(ip: u32, ih: [u8; 20], pieces in 0u32..12, k in 0usize..20) {
            let set = allowed_fast_set(Ipv4Addr::from(ip), &InfoHashV1(ih), pieces, k);
            prop_assert_eq!(set.len(), k.min(pieces as usize));
            let mut sorted = set.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), set.len());
            prop_assert!(set.iter().all(|&p| p < pieces));
        }
    }
}
