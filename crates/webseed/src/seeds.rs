//! The web seeds a torrent names.

use webtorrent_bencode::OwnedValue;
use webtorrent_metainfo::Metainfo;

use crate::{SeedKind, WebSeedUrl};

/// Every usable web seed `torrent` names: its BEP 19 `url-list`, then its BEP 17
/// `httpseeds` (a list of strings, or one string). URLs this crate cannot use (`ftp://`,
/// say) are left out, as BEP 19 asks, and so are repeats.
#[must_use]
pub fn web_seeds(torrent: &Metainfo) -> Vec<WebSeedUrl> {
    let mut out: Vec<WebSeedUrl> = Vec::new();
    let url_list = torrent
        .web_seeds()
        .iter()
        .map(|u| (SeedKind::UrlList, u.trim().to_owned()));
    let http_seeds = http_seed_strings(torrent)
        .into_iter()
        .map(|u| (SeedKind::HttpSeed, u));
    for (kind, url) in url_list.chain(http_seeds) {
        match WebSeedUrl::new(kind, url) {
            Ok(seed) if !out.contains(&seed) => out.push(seed),
            Ok(_) => {}
            Err(e) => tracing::debug!(%e, "web seed left out"),
        }
    }
    out
}

fn http_seed_strings(torrent: &Metainfo) -> Vec<String> {
    let text = |v: &OwnedValue| match v {
        OwnedValue::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        _ => None,
    };
    match torrent.extra_fields().get(b"httpseeds".as_slice()) {
        Some(OwnedValue::List(items)) => items.iter().filter_map(text).collect(),
        Some(v) => text(v).into_iter().collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torrent(extra: &str) -> Metainfo {
        let mut bytes =
            format!("d{extra}4:infod6:lengthi5e4:name5:a.txt12:piece lengthi16384e6:pieces20:")
                .into_bytes();
        bytes.extend_from_slice(&[0; 20]);
        bytes.extend_from_slice(b"ee");
        Metainfo::from_bytes(&bytes).expect("valid torrent")
    }

    #[test]
    fn both_kinds_read() {
        let t = torrent(
            "9:httpseedsl19:http://h/seed.php?a19:http://h/seed.php?a6:ftp://e\
             8:url-listl9:http://m/6:ftp://9:http://m/e",
        );
        let seeds = web_seeds(&t);
        let got: Vec<_> = seeds.iter().map(|s| (s.kind(), s.as_str())).collect();
        assert_eq!(
            got,
            [
                (SeedKind::UrlList, "http://m/"),
                (SeedKind::HttpSeed, "http://h/seed.php?a"),
            ]
        );
        let t = torrent("9:httpseeds9:http://h/");
        assert_eq!(web_seeds(&t).len(), 1);
        assert!(web_seeds(&torrent("")).is_empty());
    }
}
