//! Downloading the info dictionary from peers (BEP 9), for magnet links.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use webtorrent_types::InfoHashes;

use super::codec::{METADATA_PIECE_SIZE, MetadataMessage, piece_count};
use crate::error::{FetchError, PeerRefused};
use crate::handshake::ExtHandshake;
use crate::registry::UT_METADATA;

/// Settings of a [`MetadataFetcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetcherConfig {
    /// Peers announcing a larger `metadata_size` are refused. Default 16 MiB; real info
    /// dictionaries are rarely above a few MiB.
    pub max_metadata_size: u64,
    /// A request unanswered for this long is given to another peer. Default 20 s.
    pub request_timeout: Duration,
    /// After a reject, the peer is not asked again for this long. Default 30 s.
    pub reject_backoff: Duration,
    /// Requests outstanding at one peer at a time. Default 4.
    pub max_requests_per_peer: usize,
    /// After this many failures in a row (a timed-out request, or a reject that starts
    /// a back-off), a peer is no longer asked. Default 3.
    pub max_failures: u32,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        Self {
            max_metadata_size: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(20),
            reject_backoff: Duration::from_secs(30),
            max_requests_per_peer: 4,
            max_failures: 3,
        }
    }
}

/// A request the driver should send: `MetadataMessage::Request { piece }` to `peer`
/// (encode it with [`crate::Registry::ut_metadata`] on that peer's connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PieceRequest<P> {
    /// The peer to ask.
    pub peer: P,
    /// The metadata piece to ask for.
    pub piece: u32,
}

impl<P> PieceRequest<P> {
    /// The message to send.
    #[must_use]
    pub const fn message(&self) -> MetadataMessage<'static> {
        MetadataMessage::Request { piece: self.piece }
    }
}

/// What a [`MetadataFetcher`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchEvent<P> {
    /// The info dictionary, verified against every expected info-hash. The fetcher is
    /// done; it makes no more requests.
    Complete(Vec<u8>),
    /// Assembled metadata did not hash to the info-hash and was discarded. The pieces
    /// came from these peers (one of them, at least, lied). When there was more than
    /// one, the fetcher now takes every piece of an attempt from a single peer, so that
    /// the next mismatch names the liar alone.
    HashMismatch {
        /// The peers that sent pieces of the discarded metadata.
        contributors: Vec<P>,
    },
    /// The peer alone sent metadata that failed verification: the fetcher will not use
    /// it again. The driver may want to disconnect it.
    PeerBanned(P),
}

#[derive(Debug)]
struct PeerState {
    /// The size the peer announced.
    size: u64,
    outstanding: usize,
    blocked_until: Option<Instant>,
    /// Timeouts and rejects in a row.
    failures: u32,
    /// Sent data that did not fit (wrong size or length): not asked again.
    broken: bool,
    /// Contributed to metadata that failed verification along with others.
    suspect: bool,
}

#[derive(Debug, Clone, Copy)]
enum Piece<P> {
    Missing,
    Requested { peer: P, at: Instant },
    Received { from: P },
}

#[derive(Debug)]
struct Attempt<P> {
    size: u64,
    buffer: Vec<u8>,
    pieces: Vec<Piece<P>>,
    /// In single-source mode, the one peer asked.
    source: Option<P>,
}

/// Fetches the info dictionary of a torrent from the peers of a swarm (BEP 9), the way
/// a magnet link is resolved.
///
/// `P` names a peer connection in the driver (an address, a connection id, …). The
/// fetcher never does I/O: the driver
/// 1. calls [`add_peer`](Self::add_peer) with each peer's extension handshake (and again
///    when the peer sends an update handshake), [`remove_peer`](Self::remove_peer) when
///    a connection closes;
/// 2. drains [`poll_request`](Self::poll_request) and sends each request to its peer;
/// 3. passes every `ut_metadata` answer to [`handle_message`](Self::handle_message);
/// 4. drains [`poll_event`](Self::poll_event) for the verified bytes and for peers that
///    lied;
/// 5. calls `poll_request` again by [`poll_timeout`](Self::poll_timeout) (timed-out
///    requests go to other peers).
///
/// Pieces are spread over every peer that announced the chosen size, up to
/// [`FetcherConfig::max_requests_per_peer`] at a time. The assembled bytes must hash to
/// every info-hash given: SHA-1 for v1, SHA-256 for v2, both for a hybrid torrent.
///
/// ```
/// use std::time::Instant;
/// use webtorrent_extensions::{
///     ExtHandshake, FetchEvent, FetcherConfig, MetadataFetcher, MetadataMessage,
/// };
/// use webtorrent_types::{InfoHashV1, InfoHashes};
///
/// let info = b"d6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:xxxxxxxxxxxxxxxxxxxxe";
/// let hashes = InfoHashes::from_v1(InfoHashV1(webtorrent_hash::sha1(info)));
/// let mut fetcher = MetadataFetcher::new(hashes, FetcherConfig::default());
///
/// // A peer's handshake announced ut_metadata and the size.
/// let mut theirs = ExtHandshake::default();
/// theirs.m.insert("ut_metadata".into(), 3);
/// theirs.metadata_size = Some(info.len() as u64);
/// fetcher.add_peer("peer A", &theirs)?;
///
/// let now = Instant::now();
/// let request = fetcher.poll_request(now).expect("a piece to ask for");
/// assert_eq!((request.peer, request.piece), ("peer A", 0));
///
/// // The peer answers.
/// let answer = MetadataMessage::Data { piece: 0, total_size: Some(info.len() as u64), data: info };
/// fetcher.handle_message(now, &"peer A", &answer)?;
/// assert_eq!(fetcher.poll_event(), Some(FetchEvent::Complete(info.to_vec())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MetadataFetcher<P> {
    hashes: InfoHashes,
    config: FetcherConfig,
    peers: BTreeMap<P, PeerState>,
    banned: BTreeSet<P>,
    attempt: Option<Attempt<P>>,
    /// After a mismatch with several contributors: take each attempt from one peer.
    single_source: bool,
    events: VecDeque<FetchEvent<P>>,
    complete: bool,
}

impl<P: Clone + Ord> MetadataFetcher<P> {
    /// A fetcher for the torrent with these info-hashes.
    #[must_use]
    pub fn new(hashes: InfoHashes, config: FetcherConfig) -> Self {
        Self {
            hashes,
            config,
            peers: BTreeMap::new(),
            banned: BTreeSet::new(),
            attempt: None,
            single_source: false,
            events: VecDeque::new(),
            complete: false,
        }
    }

    /// The info-hashes the metadata must match.
    #[must_use]
    pub const fn info_hashes(&self) -> &InfoHashes {
        &self.hashes
    }

    /// Whether the metadata has been fetched and verified.
    #[must_use]
    pub const fn is_complete(&self) -> bool {
        self.complete
    }

    /// How many peers the fetcher may ask.
    #[must_use]
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Adds a peer, or updates it after an update handshake, from its extension
    /// handshake.
    ///
    /// # Errors
    /// [`PeerRefused`] when the peer does not enable `ut_metadata`, announces no
    /// `metadata_size` or a size above the limit, or was banned; such a peer is
    /// removed if it was known.
    pub fn add_peer(&mut self, peer: P, handshake: &ExtHandshake) -> Result<(), PeerRefused> {
        let checked = self.check_peer(&peer, handshake);
        let size = match checked {
            Ok(size) => size,
            Err(e) => {
                self.remove_peer(&peer);
                return Err(e);
            }
        };
        if let Some(state) = self.peers.get(&peer) {
            if state.size == size {
                return Ok(());
            }
            // A new size: forget the old state and any pieces it was asked for.
            self.remove_peer(&peer);
        }
        self.peers.insert(
            peer,
            PeerState {
                size,
                outstanding: 0,
                blocked_until: None,
                failures: 0,
                broken: false,
                suspect: false,
            },
        );
        Ok(())
    }

    fn check_peer(&self, peer: &P, handshake: &ExtHandshake) -> Result<u64, PeerRefused> {
        if self.banned.contains(peer) {
            return Err(PeerRefused::Banned);
        }
        if handshake.extension_id(UT_METADATA).is_none() {
            return Err(PeerRefused::NoUtMetadata);
        }
        let size = handshake
            .metadata_size
            .filter(|&s| s > 0)
            .ok_or(PeerRefused::NoMetadataSize)?;
        if size > self.config.max_metadata_size {
            return Err(PeerRefused::TooLarge {
                size,
                max: self.config.max_metadata_size,
            });
        }
        Ok(size)
    }

    /// Forgets a peer (its connection closed); pieces asked of it go to others.
    pub fn remove_peer(&mut self, peer: &P) {
        if self.peers.remove(peer).is_none() {
            return;
        }
        if let Some(attempt) = &mut self.attempt {
            if attempt.source.as_ref() == Some(peer) {
                self.abandon_attempt();
                return;
            }
            for piece in &mut attempt.pieces {
                if matches!(piece, Piece::Requested { peer: p, .. } if p == peer) {
                    *piece = Piece::Missing;
                }
            }
        }
    }

    /// Handles a `ut_metadata` message from `peer`: data is stored (and the metadata
    /// verified once complete), a reject frees the piece for another peer.
    ///
    /// # Errors
    /// [`FetchError`] for messages the fetcher cannot use; they change nothing, except
    /// that a peer sending data of the wrong size or length is no longer asked.
    pub fn handle_message(
        &mut self,
        now: Instant,
        peer: &P,
        message: &MetadataMessage<'_>,
    ) -> Result<(), FetchError> {
        if !self.peers.contains_key(peer) {
            return Err(FetchError::UnknownPeer);
        }
        let piece = message.piece();
        let Some(attempt) = self.attempt.as_mut() else {
            return Err(FetchError::Unrequested(piece));
        };
        let index = usize::try_from(piece).unwrap_or(usize::MAX);
        let requested_here = matches!(
            attempt.pieces.get(index),
            Some(Piece::Requested { peer: p, .. }) if p == peer
        );
        match *message {
            MetadataMessage::Request { .. } => Err(FetchError::NotAnAnswer),
            _ if !requested_here => Err(FetchError::Unrequested(piece)),
            // From here on `index` is a valid piece: `requested_here` looked it up.
            MetadataMessage::Reject { .. } => {
                attempt.pieces[index] = Piece::Missing;
                let single = attempt.source.is_some();
                if let Some(state) = self.peers.get_mut(peer) {
                    state.outstanding = state.outstanding.saturating_sub(1);
                    // Rejects of requests sent together count once.
                    if state.blocked_until.is_none() {
                        state.failures += 1;
                    }
                    state.blocked_until = Some(now + self.config.reject_backoff);
                }
                if single {
                    self.abandon_attempt();
                }
                Ok(())
            }
            MetadataMessage::Data {
                total_size, data, ..
            } => {
                let expected = piece_len(attempt.size, index);
                let error = if total_size != Some(attempt.size) {
                    Some(FetchError::WrongTotalSize {
                        got: total_size,
                        expected: attempt.size,
                    })
                } else if data.len() != expected {
                    Some(FetchError::WrongPieceLength {
                        piece,
                        got: data.len(),
                        expected,
                    })
                } else {
                    None
                };
                let state = self.peers.get_mut(peer);
                if let Some(error) = error {
                    // The peer is not asked again: free every piece it holds.
                    for p in &mut attempt.pieces {
                        if matches!(p, Piece::Requested { peer: holder, .. } if holder == peer) {
                            *p = Piece::Missing;
                        }
                    }
                    let single = attempt.source.is_some();
                    if let Some(state) = state {
                        state.outstanding = 0;
                        state.broken = true;
                    }
                    if single {
                        self.abandon_attempt();
                    }
                    return Err(error);
                }
                if let Some(state) = state {
                    state.outstanding = state.outstanding.saturating_sub(1);
                    // Failures count while in a row: a peer that serves is not dead.
                    state.failures = 0;
                }
                // The buffer holds `size` bytes and `piece_len` keeps within them.
                let start = index * METADATA_PIECE_SIZE;
                attempt.buffer[start..start + expected].copy_from_slice(data);
                attempt.pieces[index] = Piece::Received { from: peer.clone() };
                if attempt
                    .pieces
                    .iter()
                    .all(|p| matches!(p, Piece::Received { .. }))
                {
                    self.finish_attempt();
                }
                Ok(())
            }
        }
    }

    /// Drops the attempt and the pieces it got; nothing is outstanding any more, and
    /// late answers to its requests are refused as unrequested.
    fn abandon_attempt(&mut self) {
        self.attempt = None;
        for state in self.peers.values_mut() {
            state.outstanding = 0;
        }
    }

    fn finish_attempt(&mut self) {
        let Some(attempt) = self.attempt.take() else {
            return;
        };
        if self.verify(&attempt.buffer) {
            self.complete = true;
            self.peers.clear();
            self.events.push_back(FetchEvent::Complete(attempt.buffer));
            return;
        }
        let contributors: BTreeSet<P> = attempt
            .pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Received { from } => Some(from.clone()),
                _ => None,
            })
            .collect();
        let contributors: Vec<P> = contributors.into_iter().collect();
        if let [liar] = contributors.as_slice() {
            self.peers.remove(liar);
            self.banned.insert(liar.clone());
            self.events.push_back(FetchEvent::PeerBanned(liar.clone()));
        } else {
            self.single_source = true;
            for p in &contributors {
                if let Some(state) = self.peers.get_mut(p) {
                    state.suspect = true;
                }
            }
        }
        self.events
            .push_back(FetchEvent::HashMismatch { contributors });
    }

    fn verify(&self, bytes: &[u8]) -> bool {
        let v1_ok = self
            .hashes
            .v1
            .is_none_or(|v1| webtorrent_hash::sha1(bytes) == v1.0);
        let v2_ok = self
            .hashes
            .v2
            .is_none_or(|v2| webtorrent_hash::sha256(bytes) == v2.0);
        (self.hashes.v1.is_some() || self.hashes.v2.is_some()) && v1_ok && v2_ok
    }

    /// Expires requests unanswered for [`FetcherConfig::request_timeout`]; their pieces
    /// go to other peers. [`poll_request`](Self::poll_request) calls this itself.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        let mut abandon = false;
        for piece in &mut attempt.pieces {
            if let Piece::Requested { peer, at } = piece
                && now.saturating_duration_since(*at) >= self.config.request_timeout
            {
                if let Some(state) = self.peers.get_mut(peer) {
                    state.outstanding = state.outstanding.saturating_sub(1);
                    state.failures += 1;
                }
                abandon |= attempt.source.is_some();
                *piece = Piece::Missing;
            }
        }
        if abandon {
            self.abandon_attempt();
        }
    }

    /// When [`poll_request`](Self::poll_request) next has work that depends on time:
    /// the earliest request timeout or end of a reject back-off. `None` when nothing
    /// waits on time.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.complete {
            return None;
        }
        let timeouts = self.attempt.iter().flat_map(|a| {
            a.pieces.iter().filter_map(|p| match p {
                Piece::Requested { at, .. } => Some(*at + self.config.request_timeout),
                _ => None,
            })
        });
        let backoffs = self.peers.values().filter_map(|s| s.blocked_until);
        timeouts.chain(backoffs).min()
    }

    /// The next request to send, if a piece is missing and a peer can be asked.
    /// Call it until `None`, after every input.
    pub fn poll_request(&mut self, now: Instant) -> Option<PieceRequest<P>> {
        if self.complete {
            return None;
        }
        self.handle_timeout(now);
        for state in self.peers.values_mut() {
            if state.blocked_until.is_some_and(|t| t <= now) {
                state.blocked_until = None;
            }
        }
        // An attempt nobody left can serve (every peer of its size gone or given up)
        // makes way for one of another size.
        if let Some(attempt) = &self.attempt {
            let servable = self.peers.values().any(|s| {
                s.size == attempt.size && !s.broken && s.failures < self.config.max_failures
            });
            if !servable {
                self.abandon_attempt();
            }
        }
        if self.attempt.is_none() {
            self.attempt = self.start_attempt();
        }
        let attempt = self.attempt.as_mut()?;
        let index = attempt
            .pieces
            .iter()
            .position(|p| matches!(p, Piece::Missing))?;
        let config = &self.config;
        let can_ask = |(p, s): &(&P, &PeerState)| {
            s.size == attempt.size
                && usable(config, s)
                && s.outstanding < config.max_requests_per_peer
                && attempt.source.as_ref().is_none_or(|src| src == *p)
        };
        let (peer, _) = self
            .peers
            .iter()
            .filter(can_ask)
            // Peers that failed lately come after those that did not.
            .min_by_key(|(_, s)| s.outstanding.saturating_add(s.failures as usize))?;
        let peer = peer.clone();
        if let Some(state) = self.peers.get_mut(&peer) {
            state.outstanding += 1;
        }
        attempt.pieces[index] = Piece::Requested {
            peer: peer.clone(),
            at: now,
        };
        // `index` indexes a piece list built from a u32 piece count.
        let piece = u32::try_from(index).unwrap_or(u32::MAX);
        Some(PieceRequest { peer, piece })
    }

    fn start_attempt(&self) -> Option<Attempt<P>> {
        let usable: Vec<(&P, &PeerState)> = self
            .peers
            .iter()
            .filter(|(_, s)| usable(&self.config, s))
            .collect();
        let (size, source) = if self.single_source {
            // Peers not yet caught in a mismatch first, then those whose pieces were.
            let (p, s) = usable
                .iter()
                .filter(|(_, s)| s.outstanding == 0)
                .min_by_key(|(_, s)| s.suspect)?;
            (s.size, Some((*p).clone()))
        } else {
            // The size most peers agree on.
            let mut votes: BTreeMap<u64, usize> = BTreeMap::new();
            for (_, s) in &usable {
                *votes.entry(s.size).or_default() += 1;
            }
            let (&size, _) = votes.iter().max_by_key(|(_, n)| **n)?;
            (size, None)
        };
        let count = usize::try_from(piece_count(size)).ok()?;
        // The size was checked against the configured limit when the peer was added.
        let len = usize::try_from(size).ok()?;
        Some(Attempt {
            size,
            buffer: vec![0; len],
            pieces: vec![Piece::Missing; count],
            source,
        })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<FetchEvent<P>> {
        self.events.pop_front()
    }
}

fn usable(config: &FetcherConfig, state: &PeerState) -> bool {
    !state.broken && state.blocked_until.is_none() && state.failures < config.max_failures
}

/// The length of metadata piece `index` of `size` bytes.
fn piece_len(size: u64, index: usize) -> usize {
    let start = (index as u64).saturating_mul(METADATA_PIECE_SIZE as u64);
    // At most METADATA_PIECE_SIZE, so it fits.
    usize::try_from(size.saturating_sub(start).min(METADATA_PIECE_SIZE as u64)).unwrap_or(0)
}
