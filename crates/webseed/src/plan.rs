//! Sans-IO planning: which HTTP requests fetch a piece or a block from a web seed.

use std::fmt::Write as _;
use std::ops::Range;

use webtorrent_metainfo::Info;
use webtorrent_storage::Layout;
use webtorrent_types::InfoHashV1;

use crate::WebSeedError;

/// The protocol a web seed speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SeedKind {
    /// BEP 19 (`url-list`, "GetRight style"): a plain web server holding the torrent's
    /// files, read with `Range` requests.
    UrlList,
    /// BEP 17 (`httpseeds`): a script answering `?info_hash=…&piece=…&ranges=…` with
    /// the bytes of a piece.
    HttpSeed,
}

/// A web seed's URL, checked once: `http://` or `https://`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WebSeedUrl {
    kind: SeedKind,
    base: String,
}

/// One HTTP GET of a [`FetchPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRequest {
    /// The full request URL.
    pub url: String,
    /// For BEP 19: the bytes of the file to ask for with a `Range` header, and the
    /// file's length. `None` for BEP 17, where the URL's query names the bytes.
    pub range: Option<FileRange>,
    /// Where the answer's bytes go in the fetched buffer.
    pub buffer_offset: usize,
    /// Number of bytes the answer must have.
    pub length: usize,
}

/// Bytes of one file, for a BEP 19 `Range` request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileRange {
    /// Index of the file in [`Info::files`].
    pub file: usize,
    /// The bytes of the file, end exclusive (never empty).
    pub bytes: Range<u64>,
    /// The file's length in the torrent: a `Content-Range` must name it, and a `200`
    /// answer is accepted only when `bytes` is the whole file.
    pub file_length: u64,
}

impl FileRange {
    /// The `Range` header value: `bytes=first-last` (inclusive).
    #[must_use]
    pub fn header(&self) -> String {
        format!(
            "bytes={}-{}",
            self.bytes.start,
            self.bytes.end.saturating_sub(1)
        )
    }

    /// Whether the range is the whole file, so that a `200` answer with the full body is
    /// as good as a `206`.
    #[must_use]
    pub fn is_whole_file(&self) -> bool {
        self.bytes.start == 0 && self.bytes.end == self.file_length
    }
}

/// The requests that fetch some bytes of the torrent: `length` bytes at `offset` of
/// piece `piece` ([`WebSeedUrl::plan`]), or whole pieces one after another
/// ([`WebSeedUrl::plan_pieces`]). The answers go to their [`HttpRequest::buffer_offset`];
/// bytes no request covers (BEP 47 pad files) are zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchPlan {
    /// The (first) piece.
    pub piece: u32,
    /// Offset of the first byte inside the piece.
    pub offset: u64,
    /// Total number of bytes fetched (the buffer size).
    pub length: usize,
    /// The requests, in buffer order; empty when every byte is padding.
    pub requests: Vec<HttpRequest>,
}

impl WebSeedUrl {
    /// Checks `url` for use as a seed of kind `kind`.
    ///
    /// # Errors
    /// [`WebSeedError::InvalidUrl`] when it is not `http://` or `https://` with a host,
    /// or has a `#fragment` (a fragment would end up in the middle of the request URL).
    pub fn new(kind: SeedKind, url: impl Into<String>) -> Result<Self, WebSeedError> {
        let url = url.into();
        let invalid = |what| WebSeedError::InvalidUrl {
            url: url.clone(),
            what,
        };
        let lower = url.get(..8).unwrap_or(&url).to_ascii_lowercase();
        let rest = if lower.starts_with("http://") {
            &url[7..]
        } else if lower.starts_with("https://") {
            &url[8..]
        } else {
            return Err(invalid("not an http:// or https:// URL"));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(invalid("no host"));
        }
        if url.contains('#') {
            return Err(invalid("a #fragment cannot be part of a request URL"));
        }
        if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(invalid("spaces or control characters"));
        }
        Ok(Self { kind, base: url })
    }

    /// A BEP 19 (`url-list`) seed.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn url_list(url: impl Into<String>) -> Result<Self, WebSeedError> {
        Self::new(SeedKind::UrlList, url)
    }

    /// A BEP 17 (`httpseeds`) seed.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn http_seed(url: impl Into<String>) -> Result<Self, WebSeedError> {
        Self::new(SeedKind::HttpSeed, url)
    }

    /// The protocol.
    #[must_use]
    pub fn kind(&self) -> SeedKind {
        self.kind
    }

    /// The URL as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.base
    }

    /// The requests fetching all of piece `piece`.
    ///
    /// # Errors
    /// [`WebSeedError::Layout`] when the piece is not in the torrent.
    pub fn plan_piece(&self, layout: &Layout, piece: u32) -> Result<FetchPlan, WebSeedError> {
        let size = layout.piece_size(piece)?;
        self.plan(layout, piece, 0, size)
    }

    /// The requests fetching `length` bytes at `offset` of piece `piece`.
    ///
    /// BEP 19: one `Range` request per file run the bytes cover; pad files are never
    /// requested. BEP 17: one request, with a `ranges` parameter unless the bytes are the
    /// whole piece (the script serves pad bytes as the zeros they are).
    ///
    /// # Errors
    /// [`WebSeedError::Layout`] when the bytes are not in the torrent.
    pub fn plan(
        &self,
        layout: &Layout,
        piece: u32,
        offset: u64,
        length: u64,
    ) -> Result<FetchPlan, WebSeedError> {
        let mut plan = FetchPlan {
            piece,
            offset,
            length: 0,
            requests: Vec::new(),
        };
        self.append(layout, piece, offset, length, &mut plan)?;
        Ok(plan)
    }

    /// The requests fetching `spans` (each `(piece, offset, length)` inside one piece), one
    /// after another in the buffer. Spans that continue each other in a file (the end of a
    /// piece and the start of the next, say) share one `Range` request.
    ///
    /// # Errors
    /// [`WebSeedError::Layout`] when a span is not inside its piece; an empty list plans
    /// nothing.
    pub fn plan_spans(
        &self,
        layout: &Layout,
        spans: &[(u32, u64, u64)],
    ) -> Result<FetchPlan, WebSeedError> {
        let (piece, offset) = spans.first().map_or((0, 0), |&(p, o, _)| (p, o));
        let mut plan = FetchPlan {
            piece,
            offset,
            length: 0,
            requests: Vec::new(),
        };
        for &(piece, offset, length) in spans {
            self.append(layout, piece, offset, length, &mut plan)?;
        }
        Ok(plan)
    }

    /// The requests fetching the whole pieces `pieces`, one after another in the buffer.
    ///
    /// BEP 19 recommends few large requests over many small ones: the runs of one file
    /// that follow each other across pieces become a single `Range` request. BEP 17 asks
    /// for one piece per request.
    ///
    /// # Errors
    /// [`WebSeedError::Layout`] when a piece is not in the torrent.
    pub fn plan_pieces(
        &self,
        layout: &Layout,
        pieces: Range<u32>,
    ) -> Result<FetchPlan, WebSeedError> {
        let mut plan = FetchPlan {
            piece: pieces.start,
            offset: 0,
            length: 0,
            requests: Vec::new(),
        };
        for piece in pieces {
            let size = layout.piece_size(piece)?;
            self.append(layout, piece, 0, size, &mut plan)?;
        }
        Ok(plan)
    }

    /// Appends the requests for `length` bytes at `offset` of `piece` to `plan`, whose
    /// buffer grows by `length`.
    fn append(
        &self,
        layout: &Layout,
        piece: u32,
        offset: u64,
        length: u64,
        plan: &mut FetchPlan,
    ) -> Result<(), WebSeedError> {
        let segments = layout.segments(piece, offset, length)?;
        let base = plan.length;
        plan.length = base.saturating_add(to_usize(length));
        match self.kind {
            SeedKind::UrlList => {
                let info = layout.info();
                let mut at = base;
                for seg in segments {
                    let n = to_usize(seg.length);
                    if !seg.pad {
                        let bytes = seg.offset..seg.offset + seg.length;
                        // The run goes on where the previous request of the same file
                        // stops, in the file and in the buffer: make that request longer.
                        if let Some(last) = plan.requests.last_mut()
                            && let Some(range) = last.range.as_mut()
                            && range.file == seg.file
                            && range.bytes.end == bytes.start
                            && last.buffer_offset.saturating_add(last.length) == at
                        {
                            range.bytes.end = bytes.end;
                            last.length = last.length.saturating_add(n);
                        } else {
                            plan.requests.push(HttpRequest {
                                url: self.file_url(info, seg.file),
                                range: Some(FileRange {
                                    file: seg.file,
                                    bytes,
                                    file_length: info.files()[seg.file].length,
                                }),
                                buffer_offset: at,
                                length: n,
                            });
                        }
                    }
                    at = at.saturating_add(n);
                }
            }
            SeedKind::HttpSeed => {
                if length > 0 {
                    let whole = offset == 0 && length == layout.piece_size(piece)?;
                    let range = offset..offset + length;
                    let ranges = if whole {
                        &[][..]
                    } else {
                        std::slice::from_ref(&range)
                    };
                    plan.requests.push(HttpRequest {
                        url: self.http_seed_url(layout.info().info_hashes().wire(), piece, ranges),
                        range: None,
                        buffer_offset: base,
                        length: to_usize(length),
                    });
                }
            }
        }
        Ok(())
    }

    /// BEP 19: the URL of file `file` (an index into [`Info::files`]).
    ///
    /// Single-file torrent: the URL itself, or the URL plus the torrent name when it ends
    /// in `/`. Multi-file torrent: the URL is a folder; the torrent name and the file's
    /// path follow it, each component percent-encoded. A folder URL missing its final
    /// `/` gets one, as libtorrent does, except when the torrent holds a single file
    /// (pad files aside): then, like libtorrent, the URL is taken to be that file.
    ///
    /// # Panics
    /// Never for a `file` below `info.files().len()`; a larger index is a caller bug and
    /// panics.
    #[must_use]
    pub fn file_url(&self, info: &Info, file: usize) -> String {
        let mut url = self.base.clone();
        let one_file = info.files().iter().filter(|f| !f.is_pad()).count() == 1;
        if info.is_multi_file() && one_file && !url.ends_with('/') {
            // A folder of one file and a URL that is not a folder: the URL is the file.
        } else if info.is_multi_file() {
            if !url.ends_with('/') {
                url.push('/');
            }
            // `FileEntry::path` starts with the torrent name for a multi-file torrent.
            let mut first = true;
            for component in info.files()[file].components() {
                if !first {
                    url.push('/');
                }
                first = false;
                percent_encode(component, &mut url);
            }
        } else if url.ends_with('/') {
            percent_encode(info.name(), &mut url);
        }
        url
    }

    /// BEP 17: the URL asking for piece `piece`, the bytes `ranges` of it (relative to
    /// the piece, end exclusive; empty for the whole piece).
    #[must_use]
    pub fn http_seed_url(
        &self,
        info_hash: InfoHashV1,
        piece: u32,
        ranges: &[Range<u64>],
    ) -> String {
        let mut url = self.base.clone();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("info_hash=");
        for b in info_hash.0 {
            push_byte(b, &mut url);
        }
        // Writing to a String cannot fail.
        let _ = write!(url, "&piece={piece}");
        let mut sep = "&ranges=";
        for r in ranges.iter().filter(|r| r.start < r.end) {
            let _ = write!(url, "{sep}{}-{}", r.start, r.end - 1);
            sep = ",";
        }
        url
    }
}

impl std::fmt::Display for WebSeedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base)
    }
}

/// Appends `text` percent-encoded: every byte but the RFC 3986 unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`.
pub fn percent_encode(text: &str, out: &mut String) {
    for b in text.bytes() {
        push_byte(b, out);
    }
}

fn push_byte(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
        out.push(char::from(b));
    } else {
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// Piece and block sizes fit in memory by construction (a piece is held in a buffer);
/// on a 32-bit target a larger one saturates and the fetch fails on the length check.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use webtorrent_metainfo::{MemoryFile, MetaVersion, TorrentBuilder};

    fn layout(name: &str, files: &[(&str, usize)], version: MetaVersion) -> Layout {
        let files = files
            .iter()
            .map(|&(p, n)| MemoryFile::new(p, vec![7u8; n]))
            .collect();
        let t = TorrentBuilder::from_memory(name, files)
            .meta_version(version)
            .piece_length(Some(16 * 1024))
            .build()
            .expect("valid torrent");
        Layout::from_metainfo(&t)
    }

    #[test]
    fn urls_checked() {
        assert!(WebSeedUrl::url_list("http://h/x").is_ok());
        assert!(WebSeedUrl::url_list("HTTPS://h/").is_ok());
        for bad in [
            "ftp://h/x",
            "http://",
            "http:///x",
            "http://h/#f",
            "http://h/a b",
            "h/x",
        ] {
            assert!(
                matches!(
                    WebSeedUrl::url_list(bad),
                    Err(WebSeedError::InvalidUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn single_file_urls() {
        let t = TorrentBuilder::from_memory_file("a b#?é.iso", vec![1u8; 100])
            .build()
            .expect("valid torrent");
        let info = t.info();
        let seed = WebSeedUrl::url_list("http://h/pub/").unwrap();
        assert_eq!(seed.file_url(info, 0), "http://h/pub/a%20b%23%3F%C3%A9.iso");
        let seed = WebSeedUrl::url_list("http://h/pub/file.iso").unwrap();
        assert_eq!(seed.file_url(info, 0), "http://h/pub/file.iso");
    }

    #[test]
    fn multi_file_urls_and_pads() {
        let l = layout(
            "my torrent",
            &[("a dir/x.bin", 10_000), ("b c.txt", 20_000)],
            MetaVersion::Hybrid,
        );
        let info = l.info();
        let with_slash = WebSeedUrl::url_list("http://h/pub/").unwrap();
        let without = WebSeedUrl::url_list("http://h/pub").unwrap();
        let b = info
            .files()
            .iter()
            .position(|f| f.path.ends_with("b c.txt"))
            .unwrap();
        assert_eq!(
            with_slash.file_url(info, b),
            "http://h/pub/my%20torrent/b%20c.txt"
        );
        assert_eq!(without.file_url(info, b), with_slash.file_url(info, b));
        assert_eq!(
            with_slash.file_url(info, 0),
            "http://h/pub/my%20torrent/a%20dir/x.bin"
        );
        // Piece 0 is a.bin and then padding: one request, the padding stays zeros.
        let plan = with_slash.plan_piece(&l, 0).unwrap();
        assert_eq!(plan.length, 16 * 1024);
        assert_eq!(plan.requests.len(), 1);
        let r = &plan.requests[0];
        assert_eq!(r.length, 10_000);
        let range = r.range.as_ref().unwrap();
        assert_eq!(range.header(), "bytes=0-9999");
        assert!(range.is_whole_file());
        // Piece 1 is the first 16 KiB of the second file.
        let plan = with_slash.plan_piece(&l, 1).unwrap();
        let range = plan.requests[0].range.as_ref().unwrap();
        assert_eq!((range.file, range.bytes.clone()), (b, 0..16 * 1024));
        assert!(!range.is_whole_file());
        assert!(matches!(
            with_slash.plan_piece(&l, 99),
            Err(WebSeedError::Layout(_))
        ));
    }

    #[test]
    fn folder_of_one_file() {
        let l = layout("t", &[("only.bin", 100)], MetaVersion::V1);
        assert!(l.info().is_multi_file());
        let file = WebSeedUrl::url_list("http://h/only.bin").unwrap();
        assert_eq!(file.file_url(l.info(), 0), "http://h/only.bin");
        let folder = WebSeedUrl::url_list("http://h/").unwrap();
        assert_eq!(folder.file_url(l.info(), 0), "http://h/t/only.bin");
    }

    #[test]
    fn piece_spanning_files() {
        let l = layout(
            "t",
            &[("a", 1_000), ("b", 0), ("c", 2_000), ("d", 30_000)],
            MetaVersion::V1,
        );
        let seed = WebSeedUrl::url_list("http://h/").unwrap();
        let plan = seed.plan(&l, 0, 500, 4_000).unwrap();
        let got: Vec<_> = plan
            .requests
            .iter()
            .map(|r| {
                (
                    r.url.as_str(),
                    r.buffer_offset,
                    r.length,
                    r.range.clone().unwrap().bytes,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("http://h/t/a", 0, 500, 500..1_000),
                ("http://h/t/c", 500, 2_000, 0..2_000),
                ("http://h/t/d", 2_500, 1_500, 0..1_500),
            ]
        );
    }

    #[test]
    fn spans_merged_across_pieces() {
        // 16 KiB pieces over a (1 000), b (40 000), c (10 000).
        let l = layout(
            "t",
            &[("a", 1_000), ("b", 40_000), ("c", 10_000)],
            MetaVersion::V1,
        );
        let seed = WebSeedUrl::url_list("http://h/").unwrap();
        // The tail of piece 0 and the head of piece 1 follow each other in b.
        let plan = seed
            .plan_spans(&l, &[(0, 8_192, 8_192), (1, 0, 4_000), (2, 0, 100)])
            .unwrap();
        assert_eq!(plan.length, 12_292);
        let got: Vec<_> = plan
            .requests
            .iter()
            .map(|r| {
                (
                    r.url.as_str(),
                    r.buffer_offset,
                    r.range.clone().unwrap().bytes,
                )
            })
            .collect();
        // Piece 2 starts at 32 768, inside b: a second request, for it alone.
        assert_eq!(
            got,
            [
                ("http://h/t/b", 0, 7_192..19_384),
                ("http://h/t/b", 12_192, 31_768..31_868),
            ]
        );
        assert!(seed.plan_spans(&l, &[(0, 16_000, 1_000)]).is_err());
        assert_eq!(seed.plan_spans(&l, &[]).unwrap().length, 0);
    }

    #[test]
    fn runs_merged_across_pieces() {
        let l = layout(
            "t",
            &[("a", 1_000), ("b", 40_000), ("c", 10_000)],
            MetaVersion::V1,
        );
        let seed = WebSeedUrl::url_list("http://h/").unwrap();
        let plan = seed.plan_pieces(&l, 0..4).unwrap();
        assert_eq!(plan.length, 51_000);
        let got: Vec<_> = plan
            .requests
            .iter()
            .map(|r| {
                (
                    r.url.as_str(),
                    r.buffer_offset,
                    r.length,
                    r.range.clone().unwrap().bytes,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("http://h/t/a", 0, 1_000, 0..1_000),
                ("http://h/t/b", 1_000, 40_000, 0..40_000),
                ("http://h/t/c", 41_000, 10_000, 0..10_000),
            ]
        );
        let bep17 = WebSeedUrl::http_seed("http://h/s").unwrap();
        let plan = bep17.plan_pieces(&l, 1..4).unwrap();
        let got: Vec<_> = plan
            .requests
            .iter()
            .map(|r| (r.buffer_offset, r.length))
            .collect();
        assert_eq!(got, [(0, 16_384), (16_384, 16_384), (32_768, 1_848)]);
        assert!(plan.requests[2].url.ends_with("&piece=3"));
        assert!(matches!(
            seed.plan_pieces(&l, 3..5),
            Err(WebSeedError::Layout(_))
        ));
        assert!(seed.plan_pieces(&l, 2..2).unwrap().requests.is_empty());
    }

    #[test]
    fn bep17_urls() {
        let l = layout("t", &[("a", 40_000)], MetaVersion::V1);
        let seed = WebSeedUrl::http_seed("http://h/seed.php").unwrap();
        let hash = l.info().info_hashes().wire();
        let plan = seed.plan_piece(&l, 2).unwrap();
        assert_eq!(plan.requests.len(), 1);
        let url = &plan.requests[0].url;
        assert!(url.starts_with("http://h/seed.php?info_hash=%"), "{url}");
        assert!(url.ends_with("&piece=2"), "{url}");
        assert_eq!(plan.requests[0].length, 40_000 - 32 * 1024);
        let plan = seed.plan(&l, 1, 100, 200).unwrap();
        assert!(plan.requests[0].url.ends_with("&piece=1&ranges=100-299"));
        let q = WebSeedUrl::http_seed("http://h/s?k=v").unwrap();
        let url = q.http_seed_url(hash, 8, &[49_152..131_072, 180_224..262_144]);
        assert!(url.starts_with("http://h/s?k=v&info_hash="));
        assert!(url.ends_with("&piece=8&ranges=49152-131071,180224-262143"));
    }

    fn decode(s: &str) -> Option<Vec<u8>> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn percent_encoding_round_trips(s in any::<String>()) {
            let mut out = String::new();
            percent_encode(&s, &mut out);
            prop_assert!(out.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            prop_assert_eq!(decode(&out), Some(s.into_bytes()));
        }

        #[test]
        fn plans_cover_every_real_byte(
            sizes in proptest::collection::vec(0usize..40_000, 1..5),
            hybrid in any::<bool>(),
            offset in 0u64..16_384,
            length in 0u64..16_384,
        ) {
            let files: Vec<(String, usize)> =
                sizes.iter().enumerate().map(|(i, &n)| (format!("f{i}"), n)).collect();
            prop_assume!(sizes.iter().sum::<usize>() > 0);
            let files: Vec<(&str, usize)> = files.iter().map(|(p, n)| (p.as_str(), *n)).collect();
            let version = if hybrid { MetaVersion::Hybrid } else { MetaVersion::V1 };
            let l = layout("t", &files, version);
            let seed = WebSeedUrl::url_list("http://h/").unwrap();
            for piece in 0..l.piece_count() {
                let size = l.piece_size(piece).unwrap();
                let offset = offset.min(size);
                let length = length.min(size - offset);
                let plan = seed.plan(&l, piece, offset, length).unwrap();
                let segs = l.segments(piece, offset, length).unwrap();
                let real: u64 = segs.iter().filter(|s| !s.pad).map(|s| s.length).sum();
                let asked: usize = plan.requests.iter().map(|r| r.length).sum();
                prop_assert_eq!(asked as u64, real);
                let mut end = 0;
                for r in &plan.requests {
                    prop_assert!(r.buffer_offset >= end);
                    end = r.buffer_offset + r.length;
                    let range = r.range.as_ref().unwrap();
                    prop_assert!(range.bytes.end <= range.file_length);
                    prop_assert!(!l.info().files()[range.file].is_pad());
                }
                prop_assert!(end <= plan.length);
            }
        }
    }
}
