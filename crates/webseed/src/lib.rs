//! Web seeds: torrent data from plain HTTP(S) servers.
//!
//! - [BEP 19] (`url-list`, "GetRight style"): the server holds the torrent's files. A piece
//!   becomes one `Range: bytes=a-b` request per file it covers ([`WebSeedUrl::plan`]);
//!   BEP 47 pad files are never requested, their bytes are zeros.
//! - [BEP 17] (`httpseeds`): a script answers `?info_hash=…&piece=…&ranges=…` with the
//!   bytes of a piece.
//!
//! The crate has a sans-IO half and an async half:
//!
//! - [`web_seeds`] lists the seeds a torrent names; [`WebSeedUrl`] plans requests ([`FetchPlan`], [`HttpRequest`]) and [`Backoff`] says
//!   when a seed may be used again (exponential, capped, honouring `Retry-After` and the
//!   BEP 17 503 body; a seed serving bad data is dropped). Neither reads a clock.
//! - [`WebSeedClient`] (reqwest, rustls with *ring*) runs plans and checks every answer:
//!   status (`206`, or `200` only with the whole file when the whole file was asked for),
//!   `Content-Range`, body length; redirects are followed up to a limit, requests time out.
//!   [`WebSeed`] is one seed of one torrent, with a limit on its concurrent requests.
//!
//! Failures are typed ([`WebSeedError`]): a failing seed backs off and never fails the
//! torrent.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use webtorrent_metainfo::{MemoryFile, TorrentBuilder};
//! use webtorrent_storage::Layout;
//! use webtorrent_webseed::{Backoff, BackoffConfig, WebSeedError, WebSeedUrl};
//!
//! let torrent = TorrentBuilder::from_memory(
//!     "my files",
//!     vec![
//!         MemoryFile::new("a.bin", vec![1u8; 10_000]),
//!         MemoryFile::new("docs/read me.txt", vec![2u8; 30_000]),
//!     ],
//! )
//! .piece_length(Some(16 * 1024))
//! .build()?;
//! let layout = Layout::from_metainfo(&torrent);
//!
//! // The seed is a folder: name and path follow it, percent-encoded.
//! let seed = WebSeedUrl::url_list("https://mirror.example/pub/")?;
//! let plan = seed.plan_piece(&layout, 1)?;
//! let request = &plan.requests[0];
//! assert_eq!(request.url, "https://mirror.example/pub/my%20files/docs/read%20me.txt");
//! assert_eq!(request.range.as_ref().map(|r| r.header()).as_deref(), Some("bytes=0-16383"));
//!
//! // A seed that fails waits longer each time; it is never the torrent's failure.
//! let now = Instant::now();
//! let mut backoff = Backoff::new(BackoffConfig::default());
//! let error = WebSeedError::HttpStatus { url: request.url.clone(), status: 500, retry_after: None };
//! let again = backoff.on_failure(now, &error).expect("a 500 is not permanent");
//! assert_eq!(again - now, Duration::from_secs(30));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An engine drives a seed like this:
//!
//! ```no_run
//! # async fn run(layout: std::sync::Arc<webtorrent_storage::Layout>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Instant;
//! use webtorrent_webseed::{Backoff, WebSeedClient, WebSeedConfig, WebSeedUrl};
//!
//! let client = WebSeedClient::new(WebSeedConfig::default())?;
//! let seed = client.seed(WebSeedUrl::url_list("https://mirror.example/pub/")?, layout.clone());
//! let mut backoff = Backoff::default();
//! for piece in 0..layout.piece_count() {
//!     if !backoff.is_ready(Instant::now()) {
//!         break; // hand the piece to peers; come back at `backoff.retry_at()`
//!     }
//!     match seed.fetch_piece(piece).await {
//!         Ok(data) if layout.check_piece(piece, &data)? => backoff.on_success(),
//!         Ok(_) => { backoff.on_hash_failure(Instant::now()); }
//!         Err(e) => { backoff.on_failure(Instant::now(), &e); }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! [BEP 19]: https://www.bittorrent.org/beps/bep_0019.html
//! [BEP 17]: https://www.bittorrent.org/beps/bep_0017.html
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backoff;
mod client;
mod error;
mod plan;
mod seeds;

pub use backoff::{Backoff, BackoffConfig};
pub use client::{WebSeed, WebSeedClient, WebSeedConfig};
pub use error::WebSeedError;
pub use plan::{FetchPlan, FileRange, HttpRequest, SeedKind, WebSeedUrl, percent_encode};
pub use seeds::web_seeds;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
