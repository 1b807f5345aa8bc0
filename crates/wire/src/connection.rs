//! The per-peer state machine: choke and interest, request queues both ways, BEP 6
//! rejects and allowed-fast pieces, keep-alive and timeouts.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use webtorrent_types::{BLOCK_SIZE, BlockRef, PieceIndex};

use crate::error::{ProtocolError, UsageError};
use crate::handshake::{Handshake, Reserved};
use crate::message::{HashRequest, Message, id};
use webtorrent_types::Bitfield;

/// The piece layout of a torrent: what requests are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    pieces: u32,
    piece_length: u32,
    last_piece_length: u32,
}

impl Geometry {
    /// The layout of `total_length` bytes cut in pieces of `piece_length` bytes, or
    /// `None` if either is zero or there would be more than `u32::MAX` pieces.
    pub fn new(total_length: u64, piece_length: u32) -> Option<Self> {
        if total_length == 0 || piece_length == 0 {
            return None;
        }
        let pieces = u32::try_from(total_length.div_ceil(u64::from(piece_length))).ok()?;
        let last = total_length - u64::from(pieces - 1) * u64::from(piece_length);
        Some(Self {
            pieces,
            piece_length,
            // At most `piece_length`, so it fits.
            last_piece_length: last as u32,
        })
    }

    /// The number of pieces.
    pub const fn pieces(&self) -> u32 {
        self.pieces
    }

    /// The nominal piece length.
    pub const fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// The size of `piece`, shorter for the last one; `None` past the end.
    pub const fn piece_size(&self, piece: PieceIndex) -> Option<u32> {
        if piece >= self.pieces {
            None
        } else if piece == self.pieces - 1 {
            Some(self.last_piece_length)
        } else {
            Some(self.piece_length)
        }
    }

    /// Whether `block` is a non-empty range inside its piece, at most `max_len` long.
    pub fn valid_block(&self, block: BlockRef, max_len: u32) -> bool {
        block.length <= max_len
            && self
                .piece_size(block.piece)
                .is_some_and(|size| block.fits_in(size))
    }
}

/// Limits and timers of a [`Connection`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The reserved bits of our handshake: extensions are used when both sides set them.
    pub reserved: Reserved,
    /// How long a request of ours may stay unanswered before it is reported as timed out.
    pub request_timeout: Duration,
    /// A keep-alive is sent after this long without sending anything.
    pub keep_alive_interval: Duration,
    /// The peer is dropped after this long without receiving anything.
    pub idle_timeout: Duration,
    /// The longest block the peer may request. 16 KiB is what every client sends;
    /// BEP 3 mentions up to 128 KiB, which some old clients used.
    pub max_request_len: u32,
    /// How many requests of the peer may be queued, waiting for our answer.
    pub max_peer_requests: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            reserved: Reserved::OURS,
            request_timeout: Duration::from_secs(60),
            keep_alive_interval: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(180),
            max_request_len: BLOCK_SIZE,
            max_peer_requests: 500,
        }
    }
}

/// What a message from the peer means for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The peer chokes us. `dropped` are our requests it will not answer (without the
    /// fast extension, every outstanding one): request them elsewhere. With the fast
    /// extension, unanswered requests come back one by one as [`Event::Rejected`].
    Choked {
        /// Requests the peer discarded.
        dropped: Vec<BlockRef>,
    },
    /// The peer unchokes us: requests may be sent.
    Unchoked,
    /// The peer is interested in our pieces.
    Interested,
    /// The peer is no longer interested.
    NotInterested,
    /// The peer announced a piece it did not have before.
    Have(PieceIndex),
    /// The peer's initial piece set arrived (`bitfield`, `have all` or `have none`);
    /// see [`Connection::peer_pieces`].
    Bitfield,
    /// A valid request the session should answer with [`Connection::send_piece`] or
    /// [`Connection::reject`].
    Request(BlockRef),
    /// The peer withdrew a queued request; do not send it.
    Cancel(BlockRef),
    /// A block we requested (or requested and then cancelled or lost to a choke).
    Block {
        /// The block.
        block: BlockRef,
        /// Its bytes, `block.length` of them.
        data: Cow<'a, [u8]>,
    },
    /// BEP 6: the peer will not answer this request of ours.
    Rejected(BlockRef),
    /// BEP 6: the peer suggests this piece.
    Suggest(PieceIndex),
    /// BEP 6: we may request this piece even while choked.
    AllowedFast(PieceIndex),
    /// BEP 5: the peer's DHT port.
    Port(u16),
    /// BEP 10: an extension message for the extensions layer.
    Extended {
        /// The extended message id.
        id: u8,
        /// Its payload.
        payload: Cow<'a, [u8]>,
    },
    /// BEP 52: the peer asks for Merkle hashes.
    HashRequest(HashRequest),
    /// BEP 52: hashes the peer sends.
    Hashes {
        /// The request they answer.
        request: HashRequest,
        /// The hashes, then the proof.
        hashes: Cow<'a, [[u8; 32]]>,
    },
    /// BEP 52: the peer will not answer this hash request.
    HashReject(HashRequest),
}

/// One of our requests in flight.
#[derive(Debug, Clone, Copy)]
struct Sent {
    at: Instant,
    timed_out: bool,
}

/// The state of one peer connection, after the transport is up.
///
/// Sans-IO: the caller decodes the peer's bytes with [`Handshake::decode`] and
/// [`Decoder`](crate::Decoder), feeds them in with [`Connection::handle_handshake`] and
/// [`Connection::handle_message`], sends what [`Connection::poll_transmit`] yields, and
/// calls [`Connection::handle_timeout`] when the instant from
/// [`Connection::poll_timeout`] is reached. Messages are taken as sent at the `now` of
/// the call that queued them.
///
/// ```
/// use std::time::{Duration, Instant};
/// use webtorrent_types::{BlockRef, InfoHashV1, PeerId};
/// use webtorrent_wire::{Config, Connection, Event, Geometry, Handshake, Message, Reserved};
///
/// let start = Instant::now();
/// let geometry = Geometry::new(100_000, 32_768).expect("non-empty torrent");
/// let mut peer = Connection::new(Config::default(), geometry, start);
/// let theirs = Handshake::new(Reserved::OURS, InfoHashV1([0; 20]), PeerId([1; 20]));
/// peer.handle_handshake(start, &theirs)?;
///
/// assert_eq!(peer.handle_message(start, Message::HaveAll)?, Some(Event::Bitfield));
/// assert_eq!(peer.handle_message(start, Message::Unchoke)?, Some(Event::Unchoked));
/// peer.interested(start);
/// let block = BlockRef::new(3, 0, 1_696); // the short last piece
/// peer.request(start, block).expect("peer unchoked us and has the piece");
/// assert_eq!(peer.poll_transmit(), Some(Message::Interested));
/// assert_eq!(peer.poll_transmit(), Some(Message::Request(block)));
///
/// // Nothing arrives: the request times out, then the peer is idle for too long.
/// let later = start + Duration::from_secs(61);
/// assert_eq!(peer.handle_timeout(later)?, vec![block]);
/// assert!(peer.handle_timeout(start + Duration::from_secs(180)).is_err());
/// # Ok::<(), webtorrent_wire::ProtocolError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Connection {
    config: Config,
    geometry: Geometry,
    /// The extensions both sides announced, once the peer's handshake is in.
    negotiated: Option<Reserved>,
    /// Whether a message other than a keep-alive or an extended message went to the peer.
    sent_any: bool,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    peer_pieces: Bitfield,
    /// Our requests awaiting a block (or a reject).
    requested: BTreeMap<BlockRef, Sent>,
    /// Requests we cancelled or the peer dropped when choking, since when: a block for
    /// them may still be on its way.
    stale: BTreeMap<BlockRef, Instant>,
    /// The peer's requests awaiting our answer, oldest first.
    peer_requests: VecDeque<BlockRef>,
    /// Pieces we may request while choked.
    allowed_fast_in: BTreeSet<PieceIndex>,
    /// Pieces the peer may request while we choke it.
    allowed_fast_out: BTreeSet<PieceIndex>,
    last_received: Instant,
    last_sent: Instant,
    outbox: VecDeque<Message<'static>>,
}

impl Connection {
    /// A connection to a peer of a torrent with this `geometry`, its transport up at
    /// `now`. Our handshake is the caller's to send.
    pub fn new(config: Config, geometry: Geometry, now: Instant) -> Self {
        Self {
            config,
            geometry,
            negotiated: None,
            sent_any: false,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            peer_pieces: Bitfield::new(geometry.pieces()),
            requested: BTreeMap::new(),
            stale: BTreeMap::new(),
            peer_requests: VecDeque::new(),
            allowed_fast_in: BTreeSet::new(),
            allowed_fast_out: BTreeSet::new(),
            last_received: now,
            last_sent: now,
            outbox: VecDeque::new(),
        }
    }

    /// Whether we choke the peer (initially true).
    pub const fn am_choking(&self) -> bool {
        self.am_choking
    }

    /// Whether we told the peer we are interested.
    pub const fn am_interested(&self) -> bool {
        self.am_interested
    }

    /// Whether the peer chokes us (initially true).
    pub const fn peer_choking(&self) -> bool {
        self.peer_choking
    }

    /// Whether the peer is interested in our pieces.
    pub const fn peer_interested(&self) -> bool {
        self.peer_interested
    }

    /// The extensions both sides announced, once the peer's handshake is in.
    pub const fn negotiated(&self) -> Option<Reserved> {
        self.negotiated
    }

    fn fast(&self) -> bool {
        self.negotiated.is_some_and(|r| r.fast())
    }

    /// The pieces the peer announced.
    pub const fn peer_pieces(&self) -> &Bitfield {
        &self.peer_pieces
    }

    /// Our requests awaiting an answer, with whether each has timed out.
    pub fn requests(&self) -> impl Iterator<Item = (BlockRef, bool)> + '_ {
        self.requested.iter().map(|(b, s)| (*b, s.timed_out))
    }

    /// The peer's requests awaiting our answer, oldest first.
    pub fn peer_requests(&self) -> impl Iterator<Item = BlockRef> + '_ {
        self.peer_requests.iter().copied()
    }

    /// Pieces the peer allows us to request while it chokes us.
    pub const fn allowed_fast(&self) -> &BTreeSet<PieceIndex> {
        &self.allowed_fast_in
    }

    /// The next message to send, oldest first.
    pub fn poll_transmit(&mut self) -> Option<Message<'static>> {
        self.outbox.pop_front()
    }

    fn send(&mut self, now: Instant, message: Message<'static>) {
        if !may_precede_piece_set(&message) {
            self.sent_any = true;
        }
        self.last_sent = now;
        self.outbox.push_back(message);
    }

    /// Takes in the peer's handshake. The caller has checked its info-hash.
    pub fn handle_handshake(
        &mut self,
        now: Instant,
        theirs: &Handshake,
    ) -> Result<(), ProtocolError> {
        if self.negotiated.is_some() {
            return Err(ProtocolError::DuplicateHandshake);
        }
        let (a, b) = (self.config.reserved, theirs.reserved);
        self.negotiated = Some(
            Reserved::NONE
                .with_fast(a.fast() && b.fast())
                .with_extended(a.extended() && b.extended())
                .with_dht(a.dht() && b.dht())
                .with_v2(a.v2() && b.v2()),
        );
        self.last_received = now;
        Ok(())
    }

    /// Takes in one message from the peer. An error means the peer broke the protocol
    /// and the connection should be closed.
    pub fn handle_message<'a>(
        &mut self,
        now: Instant,
        message: Message<'a>,
    ) -> Result<Option<Event<'a>>, ProtocolError> {
        let Some(negotiated) = self.negotiated else {
            return Err(ProtocolError::BeforeHandshake);
        };
        self.last_received = now;
        let Some(message_id) = message.id() else {
            return Ok(None);
        };
        let needs = |on: bool| {
            if on {
                Ok(())
            } else {
                Err(ProtocolError::NotNegotiated { id: message_id })
            }
        };
        let pieces = self.geometry.pieces();
        Ok(match message {
            Message::KeepAlive => None,
            // BEP 3 sends the piece set first only, but aria2 1.36 sends a bitfield later
            // when it is shorter than the `have`s it stands for: a later piece set
            // replaces the peer's.
            Message::Bitfield(bytes) => {
                self.peer_pieces = Bitfield::from_bytes(&bytes, pieces)?;
                Some(Event::Bitfield)
            }
            Message::HaveAll => {
                needs(negotiated.fast())?;
                self.peer_pieces = Bitfield::full(pieces);
                Some(Event::Bitfield)
            }
            Message::HaveNone => {
                needs(negotiated.fast())?;
                self.peer_pieces = Bitfield::new(pieces);
                Some(Event::Bitfield)
            }
            Message::Have(piece) => match self.peer_pieces.set(piece) {
                Ok(true) => Some(Event::Have(piece)),
                Ok(false) => None,
                Err(_) => return Err(ProtocolError::HaveOutOfRange { piece, pieces }),
            },
            Message::Choke => {
                self.peer_choking = true;
                let mut dropped = Vec::new();
                if !negotiated.fast() {
                    for (block, _) in std::mem::take(&mut self.requested) {
                        self.stale.insert(block, now);
                        dropped.push(block);
                    }
                }
                Some(Event::Choked { dropped })
            }
            Message::Unchoke => {
                self.peer_choking = false;
                Some(Event::Unchoked)
            }
            Message::Interested => {
                self.peer_interested = true;
                Some(Event::Interested)
            }
            Message::NotInterested => {
                self.peer_interested = false;
                Some(Event::NotInterested)
            }
            Message::Request(block) => self.peer_request(now, block)?,
            Message::Cancel(block) => {
                let Some(at) = self.peer_requests.iter().position(|b| *b == block) else {
                    return Ok(None);
                };
                self.peer_requests.remove(at);
                if negotiated.fast() {
                    // BEP 6: every request gets an answer, a cancelled one a reject.
                    self.send(now, Message::Reject(block));
                }
                Some(Event::Cancel(block))
            }
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                // The decoder's frame limit keeps blocks far below 4 GiB.
                let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
                let block = BlockRef::new(piece, offset, length);
                if self.requested.remove(&block).is_none() && self.stale.remove(&block).is_none() {
                    return Err(ProtocolError::UnrequestedBlock { block });
                }
                Some(Event::Block { block, data })
            }
            Message::Reject(block) => {
                needs(negotiated.fast())?;
                if self.requested.remove(&block).is_some() {
                    Some(Event::Rejected(block))
                } else {
                    // The answer to a cancel, or to nothing: nothing to do.
                    self.stale.remove(&block);
                    None
                }
            }
            Message::AllowedFast(piece) => {
                needs(negotiated.fast())?;
                (piece < pieces && self.allowed_fast_in.insert(piece))
                    .then_some(Event::AllowedFast(piece))
            }
            Message::Suggest(piece) => {
                needs(negotiated.fast())?;
                (piece < pieces).then_some(Event::Suggest(piece))
            }
            Message::Port(port) => Some(Event::Port(port)),
            Message::Extended { id, payload } => {
                needs(negotiated.extended())?;
                Some(Event::Extended { id, payload })
            }
            Message::HashRequest(r) => Some(Event::HashRequest(r)),
            Message::Hashes { request, hashes } => Some(Event::Hashes { request, hashes }),
            Message::HashReject(r) => Some(Event::HashReject(r)),
            // BEP 3: unknown messages are ignored.
            Message::Unknown { .. } => None,
        })
    }

    fn peer_request(
        &mut self,
        now: Instant,
        block: BlockRef,
    ) -> Result<Option<Event<'static>>, ProtocolError> {
        if !self
            .geometry
            .valid_block(block, self.config.max_request_len)
        {
            return Err(ProtocolError::InvalidRequest { block });
        }
        let fast = self.fast();
        if self.am_choking && !self.allowed_fast_out.contains(&block.piece) {
            // BEP 6: rejected, not silently dropped, when the peer can tell.
            if fast {
                self.send(now, Message::Reject(block));
            }
            return Ok(None);
        }
        if self.peer_requests.contains(&block) {
            return Ok(None);
        }
        if self.peer_requests.len() >= self.config.max_peer_requests {
            if fast {
                self.send(now, Message::Reject(block));
                return Ok(None);
            }
            return Err(ProtocolError::TooManyRequests {
                limit: self.config.max_peer_requests,
            });
        }
        self.peer_requests.push_back(block);
        Ok(Some(Event::Request(block)))
    }

    /// The instant at which [`Connection::handle_timeout`] has work: a keep-alive to
    /// send, the peer's idle limit, or a request's timeout.
    pub fn poll_timeout(&self) -> Instant {
        let timeout = self.config.request_timeout;
        let requests = self
            .requested
            .values()
            .filter(|s| !s.timed_out)
            .map(|s| s.at + timeout);
        let stale = self.stale.values().map(|at| *at + timeout);
        requests
            .chain(stale)
            .chain([
                self.last_sent + self.config.keep_alive_interval,
                self.last_received + self.config.idle_timeout,
            ])
            .min()
            // The array above is never empty.
            .unwrap_or(self.last_received)
    }

    /// Runs the timers due at `now`: queues a keep-alive if we have been silent for
    /// [`Config::keep_alive_interval`], and returns our requests that have just passed
    /// [`Config::request_timeout`] (they stay outstanding: a late block is still
    /// accepted; [`Connection::cancel`] them to re-request elsewhere). An error means the
    /// peer has been silent for [`Config::idle_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) -> Result<Vec<BlockRef>, ProtocolError> {
        let silent = now.saturating_duration_since(self.last_received);
        if silent >= self.config.idle_timeout {
            return Err(ProtocolError::Idle { silent });
        }
        let timeout = self.config.request_timeout;
        let mut timed_out = Vec::new();
        for (block, sent) in &mut self.requested {
            if !sent.timed_out && now.saturating_duration_since(sent.at) >= timeout {
                sent.timed_out = true;
                timed_out.push(*block);
            }
        }
        self.stale
            .retain(|_, at| now.saturating_duration_since(*at) < timeout);
        if now.saturating_duration_since(self.last_sent) >= self.config.keep_alive_interval {
            self.send(now, Message::KeepAlive);
        }
        Ok(timed_out)
    }

    /// Chokes the peer. Returns its queued requests that will not be answered: without
    /// the fast extension they are dropped silently, with it each is rejected, except
    /// those for allowed-fast pieces, which stay queued.
    pub fn choke(&mut self, now: Instant) -> Vec<BlockRef> {
        if self.am_choking {
            return Vec::new();
        }
        self.am_choking = true;
        self.send(now, Message::Choke);
        let fast = self.fast();
        let mut drop = Vec::new();
        let allowed = &self.allowed_fast_out;
        self.peer_requests.retain(|b| {
            let keep = fast && allowed.contains(&b.piece);
            if !keep {
                drop.push(*b);
            }
            keep
        });
        if fast {
            for block in &drop {
                self.send(now, Message::Reject(*block));
            }
        }
        drop
    }

    /// Unchokes the peer.
    pub fn unchoke(&mut self, now: Instant) {
        if self.am_choking {
            self.am_choking = false;
            self.send(now, Message::Unchoke);
        }
    }

    /// Tells the peer we want pieces it has.
    pub fn interested(&mut self, now: Instant) {
        if !self.am_interested {
            self.am_interested = true;
            self.send(now, Message::Interested);
        }
    }

    /// Tells the peer we want nothing from it.
    pub fn not_interested(&mut self, now: Instant) {
        if self.am_interested {
            self.am_interested = false;
            self.send(now, Message::NotInterested);
        }
    }

    /// Sends our piece set; it must be the first message. With the fast extension an
    /// empty or full set goes out as `have none` or `have all`.
    pub fn send_bitfield(&mut self, now: Instant, ours: &Bitfield) -> Result<(), UsageError> {
        if self.negotiated.is_none() {
            return Err(UsageError::NoHandshake);
        }
        if self.sent_any {
            return Err(UsageError::NotFirst);
        }
        if ours.len() != self.geometry.pieces() {
            return Err(UsageError::BitfieldLength {
                expected: self.geometry.pieces(),
                actual: ours.len(),
            });
        }
        let message = match (self.fast(), ours.count()) {
            (true, 0) => Message::HaveNone,
            (true, _) if ours.is_full() => Message::HaveAll,
            _ => Message::Bitfield(Cow::Owned(ours.as_bytes().to_vec())),
        };
        self.send(now, message);
        Ok(())
    }

    /// Announces a piece we completed.
    pub fn have(&mut self, now: Instant, piece: PieceIndex) -> Result<(), UsageError> {
        if piece >= self.geometry.pieces() {
            return Err(UsageError::PieceOutOfRange {
                piece,
                pieces: self.geometry.pieces(),
            });
        }
        self.send(now, Message::Have(piece));
        Ok(())
    }

    /// Requests a block. Refused when the peer chokes us (unless the piece is allowed
    /// fast), lacks the piece, or the block is invalid or already requested.
    pub fn request(&mut self, now: Instant, block: BlockRef) -> Result<(), UsageError> {
        if self.negotiated.is_none() {
            return Err(UsageError::NoHandshake);
        }
        if !self
            .geometry
            .valid_block(block, self.config.max_request_len)
        {
            return Err(UsageError::InvalidBlock { block });
        }
        if self.peer_choking && !self.allowed_fast_in.contains(&block.piece) {
            return Err(UsageError::Choked);
        }
        if !self.peer_pieces.has(block.piece) {
            return Err(UsageError::PeerLacksPiece { piece: block.piece });
        }
        if self.requested.contains_key(&block) {
            return Err(UsageError::AlreadyRequested { block });
        }
        self.requested.insert(
            block,
            Sent {
                at: now,
                timed_out: false,
            },
        );
        self.send(now, Message::Request(block));
        Ok(())
    }

    /// Cancels an outstanding request. Returns whether it was outstanding. A block for
    /// it that is already on its way is still accepted for a while.
    pub fn cancel(&mut self, now: Instant, block: BlockRef) -> bool {
        if self.requested.remove(&block).is_none() {
            return false;
        }
        self.stale.insert(block, now);
        self.send(now, Message::Cancel(block));
        true
    }

    /// Answers a queued request of the peer with the block's `data`.
    pub fn send_piece(
        &mut self,
        now: Instant,
        block: BlockRef,
        data: Vec<u8>,
    ) -> Result<(), UsageError> {
        if data.len() != block.length as usize {
            return Err(UsageError::DataLength {
                expected: block.length,
                actual: data.len(),
            });
        }
        self.take_peer_request(block)?;
        self.send(
            now,
            Message::Piece {
                piece: block.piece,
                offset: block.offset,
                data: Cow::Owned(data),
            },
        );
        Ok(())
    }

    /// Declines a queued request of the peer: a `reject` with the fast extension,
    /// silently dropped without it.
    pub fn reject(&mut self, now: Instant, block: BlockRef) -> Result<(), UsageError> {
        self.take_peer_request(block)?;
        if self.fast() {
            self.send(now, Message::Reject(block));
        }
        Ok(())
    }

    fn take_peer_request(&mut self, block: BlockRef) -> Result<(), UsageError> {
        let at = self
            .peer_requests
            .iter()
            .position(|b| *b == block)
            .ok_or(UsageError::NotRequested { block })?;
        self.peer_requests.remove(at);
        Ok(())
    }

    /// BEP 6: lets the peer request `piece` while we choke it.
    pub fn allow_fast(&mut self, now: Instant, piece: PieceIndex) -> Result<(), UsageError> {
        if !self.fast() {
            return Err(UsageError::NotNegotiated);
        }
        if piece >= self.geometry.pieces() {
            return Err(UsageError::PieceOutOfRange {
                piece,
                pieces: self.geometry.pieces(),
            });
        }
        if self.allowed_fast_out.insert(piece) {
            self.send(now, Message::AllowedFast(piece));
        }
        Ok(())
    }

    /// Sends a message whose state the connection does not track: `port`, `suggest`,
    /// extended and BEP 52 hash messages. Others have their own methods and are refused.
    pub fn send_message(&mut self, now: Instant, message: Message<'_>) -> Result<(), UsageError> {
        let negotiated = self.negotiated.ok_or(UsageError::NoHandshake)?;
        let allowed = match &message {
            Message::Port(_) | Message::KeepAlive => true,
            Message::HashRequest(_) | Message::Hashes { .. } | Message::HashReject(_) => true,
            Message::Suggest(_) => negotiated.fast(),
            Message::Extended { .. } => negotiated.extended(),
            other => {
                return Err(UsageError::Stateful {
                    id: other.id().unwrap_or(id::CHOKE),
                });
            }
        };
        if !allowed {
            return Err(UsageError::NotNegotiated);
        }
        self.send(now, message.into_owned());
        Ok(())
    }
}

/// Messages that may come before the piece set: keep-alives, and BEP 10 extended messages,
/// since clients (libtorrent among them) send their extension handshake before the bitfield.
fn may_precede_piece_set(message: &Message<'_>) -> bool {
    matches!(message, Message::KeepAlive | Message::Extended { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use webtorrent_types::{InfoHashV1, PeerId};

    const PIECE: u32 = 32_768;

    /// A torrent of 10 pieces, the last one 1,000 bytes.
    fn geometry() -> Geometry {
        Geometry::new(9 * u64::from(PIECE) + 1_000, PIECE).expect("non-empty")
    }

    /// A connection whose handshake is done, with or without the fast extension on the
    /// peer's side.
    fn connected(fast: bool) -> (Connection, Instant) {
        let now = Instant::now();
        let mut c = Connection::new(Config::default(), geometry(), now);
        let theirs = Handshake::new(
            Reserved::NONE.with_fast(fast).with_extended(true),
            InfoHashV1([0; 20]),
            PeerId([7; 20]),
        );
        c.handle_handshake(now, &theirs).expect("first handshake");
        (c, now)
    }

    fn sent(c: &mut Connection) -> Vec<Message<'static>> {
        std::iter::from_fn(|| c.poll_transmit()).collect()
    }

    fn block(piece: u32, n: u32) -> BlockRef {
        BlockRef::new(piece, n * BLOCK_SIZE, BLOCK_SIZE)
    }

    /// The peer has every piece and unchoked us.
    fn downloading(fast: bool) -> (Connection, Instant) {
        let (mut c, now) = connected(fast);
        let bits = Message::Bitfield(Cow::Owned(Bitfield::full(10).as_bytes().to_vec()));
        assert_eq!(c.handle_message(now, bits), Ok(Some(Event::Bitfield)));
        assert_eq!(
            c.handle_message(now, Message::Unchoke),
            Ok(Some(Event::Unchoked))
        );
        (c, now)
    }

    #[test]
    fn geometry_bounds() {
        let g = geometry();
        assert_eq!(g.pieces(), 10);
        assert_eq!(g.piece_size(8), Some(PIECE));
        assert_eq!(g.piece_size(9), Some(1_000));
        assert_eq!(g.piece_size(10), None);
        assert_eq!(g.piece_size(u32::MAX), None);
        assert!(!g.valid_block(BlockRef::new(u32::MAX, 0, 1), BLOCK_SIZE));
        assert!(g.valid_block(BlockRef::new(9, 0, 1_000), BLOCK_SIZE));
        assert!(!g.valid_block(BlockRef::new(9, 1, 1_000), BLOCK_SIZE));
        assert!(!g.valid_block(BlockRef::new(0, 0, 0), BLOCK_SIZE));
        assert!(!g.valid_block(BlockRef::new(0, 0, PIECE), BLOCK_SIZE));
        assert!(g.valid_block(BlockRef::new(0, 0, PIECE), PIECE));
        assert!(!g.valid_block(BlockRef::new(0, u32::MAX, 2), BLOCK_SIZE));
        assert_eq!(Geometry::new(0, 1), None);
        assert_eq!(Geometry::new(1, 0), None);
        assert_eq!(Geometry::new(u64::MAX, 1), None);
        assert_eq!(
            Geometry::new(PIECE.into(), PIECE).map(|g| g.piece_size(0)),
            Some(Some(PIECE))
        );
    }

    #[test]
    fn handshake_first_and_once() {
        let now = Instant::now();
        let mut c = Connection::new(Config::default(), geometry(), now);
        assert_eq!(
            c.handle_message(now, Message::Unchoke),
            Err(ProtocolError::BeforeHandshake)
        );
        assert_eq!(c.request(now, block(0, 0)), Err(UsageError::NoHandshake));
        let theirs = Handshake::new(
            Reserved(*b"\0\0\0\0\0\x10\0\x15"),
            InfoHashV1([0; 20]),
            PeerId([0; 20]),
        );
        assert_eq!(c.handle_handshake(now, &theirs), Ok(()));
        // v2 is not in our bits; the rest is common.
        assert_eq!(c.negotiated(), Some(Reserved::OURS));
        assert_eq!(
            c.handle_handshake(now, &theirs),
            Err(ProtocolError::DuplicateHandshake)
        );
    }

    #[test]
    fn piece_set_messages() {
        let (mut c, now) = connected(false);
        // Keep-alives do not count as a first message.
        assert_eq!(c.handle_message(now, Message::KeepAlive), Ok(None));
        assert_eq!(
            c.handle_message(now, Message::Bitfield(Cow::Borrowed(&[0xff, 0xe0]))),
            Err(ProtocolError::Bitfield(crate::BitfieldError::SpareBits))
        );
        let (mut c, now) = connected(false);
        assert_eq!(
            c.handle_message(now, Message::HaveAll),
            Err(ProtocolError::NotNegotiated { id: id::HAVE_ALL })
        );
        let (mut c, now) = connected(false);
        assert_eq!(
            c.handle_message(now, Message::Have(3)),
            Ok(Some(Event::Have(3)))
        );
        assert_eq!(c.handle_message(now, Message::Have(3)), Ok(None));
        assert_eq!(
            c.handle_message(now, Message::Have(10)),
            Err(ProtocolError::HaveOutOfRange {
                piece: 10,
                pieces: 10
            })
        );
        assert_eq!(c.peer_pieces().iter().collect::<Vec<_>>(), [3]);
        // A later bitfield replaces the piece set (aria2 sends one after `have`s).
        assert_eq!(
            c.handle_message(now, Message::Bitfield(Cow::Borrowed(&[0b0100_0000, 0]))),
            Ok(Some(Event::Bitfield))
        );
        assert_eq!(c.peer_pieces().iter().collect::<Vec<_>>(), [1]);

        let (mut c, now) = connected(true);
        assert_eq!(
            c.handle_message(now, Message::HaveAll),
            Ok(Some(Event::Bitfield))
        );
        assert!(c.peer_pieces().is_full());
        assert_eq!(
            c.handle_message(now, Message::HaveNone),
            Ok(Some(Event::Bitfield))
        );
        assert_eq!(c.peer_pieces().count(), 0);
    }

    #[test]
    fn extension_handshake_may_come_before_the_piece_set() {
        // libtorrent sends its BEP 10 handshake first, then its bitfield.
        let (mut c, now) = connected(true);
        let ext = Message::Extended {
            id: 0,
            payload: Cow::Borrowed(b"de"),
        };
        assert!(c.handle_message(now, ext).is_ok());
        assert_eq!(
            c.handle_message(now, Message::HaveAll),
            Ok(Some(Event::Bitfield))
        );
        assert!(c.peer_pieces().is_full());
    }

    #[test]
    fn requests_need_unchoke_and_the_piece() {
        let (mut c, now) = connected(true);
        c.handle_message(now, Message::HaveNone)
            .expect("first message");
        assert_eq!(c.request(now, block(0, 0)), Err(UsageError::Choked));
        assert_eq!(
            c.handle_message(now, Message::AllowedFast(0)),
            Ok(Some(Event::AllowedFast(0)))
        );
        assert_eq!(c.handle_message(now, Message::AllowedFast(99)), Ok(None));
        assert_eq!(
            c.request(now, block(0, 0)),
            Err(UsageError::PeerLacksPiece { piece: 0 })
        );
        c.handle_message(now, Message::Have(0)).expect("valid have");
        // Allowed fast: requests go out while choked.
        assert_eq!(c.request(now, block(0, 0)), Ok(()));
        assert_eq!(
            c.request(now, block(0, 0)),
            Err(UsageError::AlreadyRequested { block: block(0, 0) })
        );
        assert_eq!(
            c.request(now, BlockRef::new(0, 0, 2 * BLOCK_SIZE)),
            Err(UsageError::InvalidBlock {
                block: BlockRef::new(0, 0, 2 * BLOCK_SIZE)
            })
        );
        assert_eq!(c.request(now, block(1, 0)), Err(UsageError::Choked));
        assert_eq!(sent(&mut c), [Message::Request(block(0, 0))]);
    }

    #[test]
    fn choke_without_fast_drops_requests() {
        let (mut c, now) = downloading(false);
        for b in [block(1, 0), block(1, 1), block(2, 0)] {
            c.request(now, b).expect("unchoked");
        }
        let data = vec![0u8; BLOCK_SIZE as usize];
        let piece = |b: BlockRef| Message::Piece {
            piece: b.piece,
            offset: b.offset,
            data: Cow::Owned(data.clone()),
        };
        assert!(matches!(
            c.handle_message(now, piece(block(1, 0))),
            Ok(Some(Event::Block { block: b, .. })) if b == block(1, 0)
        ));
        assert_eq!(
            c.handle_message(now, Message::Choke),
            Ok(Some(Event::Choked {
                dropped: vec![block(1, 1), block(2, 0)]
            }))
        );
        assert_eq!(c.requests().count(), 0);
        assert_eq!(c.request(now, block(3, 0)), Err(UsageError::Choked));
        // A block the peer dropped that still arrives is taken; one never asked for is not.
        assert!(c.handle_message(now, piece(block(2, 0))).is_ok());
        assert_eq!(
            c.handle_message(now, piece(block(2, 0))),
            Err(ProtocolError::UnrequestedBlock { block: block(2, 0) })
        );
        // Without the fast extension, rejects are a violation.
        assert_eq!(
            c.handle_message(now, Message::Reject(block(1, 1))),
            Err(ProtocolError::NotNegotiated { id: id::REJECT })
        );
    }

    #[test]
    fn choke_with_fast_waits_for_rejects() {
        let (mut c, now) = downloading(true);
        c.request(now, block(1, 0)).expect("unchoked");
        c.request(now, block(1, 1)).expect("unchoked");
        assert_eq!(
            c.handle_message(now, Message::Choke),
            Ok(Some(Event::Choked { dropped: vec![] }))
        );
        assert_eq!(c.requests().count(), 2);
        assert_eq!(
            c.handle_message(now, Message::Reject(block(1, 0))),
            Ok(Some(Event::Rejected(block(1, 0))))
        );
        // A reject for nothing outstanding is ignored.
        assert_eq!(
            c.handle_message(now, Message::Reject(block(1, 0))),
            Ok(None)
        );
        // Cancelled, then rejected: nothing to report.
        assert!(c.cancel(now, block(1, 1)));
        assert!(!c.cancel(now, block(1, 1)));
        assert_eq!(
            c.handle_message(now, Message::Reject(block(1, 1))),
            Ok(None)
        );
        assert_eq!(
            sent(&mut c),
            [
                Message::Request(block(1, 0)),
                Message::Request(block(1, 1)),
                Message::Cancel(block(1, 1)),
            ]
        );
    }

    #[test]
    fn serving_requests_without_fast() {
        let (mut c, now) = connected(false);
        // Choked peers' requests are dropped silently.
        assert_eq!(
            c.handle_message(now, Message::Request(block(0, 0))),
            Ok(None)
        );
        c.unchoke(now);
        c.unchoke(now);
        assert_eq!(
            c.handle_message(now, Message::Request(block(0, 0))),
            Ok(Some(Event::Request(block(0, 0))))
        );
        assert_eq!(
            c.handle_message(now, Message::Request(block(0, 0))),
            Ok(None)
        );
        c.handle_message(now, Message::Request(block(0, 1)))
            .expect("valid");
        c.handle_message(now, Message::Request(block(1, 0)))
            .expect("valid");
        assert_eq!(
            c.handle_message(now, Message::Cancel(block(0, 1))),
            Ok(Some(Event::Cancel(block(0, 1))))
        );
        assert_eq!(
            c.handle_message(now, Message::Cancel(block(0, 1))),
            Ok(None)
        );
        assert_eq!(
            c.send_piece(now, block(0, 0), vec![1; 10]),
            Err(UsageError::DataLength {
                expected: BLOCK_SIZE,
                actual: 10
            })
        );
        assert_eq!(
            c.send_piece(now, block(0, 0), vec![1; BLOCK_SIZE as usize]),
            Ok(())
        );
        assert_eq!(
            c.send_piece(now, block(0, 0), vec![1; BLOCK_SIZE as usize]),
            Err(UsageError::NotRequested { block: block(0, 0) })
        );
        assert_eq!(c.peer_requests().collect::<Vec<_>>(), [block(1, 0)]);
        assert_eq!(c.choke(now), [block(1, 0)]);
        assert_eq!(c.choke(now), []);
        let out = sent(&mut c);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Message::Unchoke);
        assert!(
            matches!(&out[1], Message::Piece { piece: 0, offset: 0, data } if data.len() == BLOCK_SIZE as usize)
        );
        assert_eq!(out[2], Message::Choke);
    }

    #[test]
    fn serving_requests_with_fast() {
        let (mut c, now) = connected(true);
        c.allow_fast(now, 5).expect("fast negotiated");
        // Choked: rejected, except allowed-fast pieces.
        assert_eq!(
            c.handle_message(now, Message::Request(block(0, 0))),
            Ok(None)
        );
        assert_eq!(
            c.handle_message(now, Message::Request(block(5, 0))),
            Ok(Some(Event::Request(block(5, 0))))
        );
        c.unchoke(now);
        c.handle_message(now, Message::Request(block(1, 0)))
            .expect("valid");
        c.handle_message(now, Message::Request(block(2, 0)))
            .expect("valid");
        c.handle_message(now, Message::Cancel(block(2, 0)))
            .expect("valid");
        assert_eq!(c.reject(now, block(1, 0)), Ok(()));
        c.handle_message(now, Message::Request(block(3, 0)))
            .expect("valid");
        assert_eq!(c.choke(now), [block(3, 0)]);
        assert_eq!(c.peer_requests().collect::<Vec<_>>(), [block(5, 0)]);
        assert_eq!(
            sent(&mut c),
            [
                Message::AllowedFast(5),
                Message::Reject(block(0, 0)),
                Message::Unchoke,
                Message::Reject(block(2, 0)),
                Message::Reject(block(1, 0)),
                Message::Choke,
                Message::Reject(block(3, 0)),
            ]
        );
    }

    #[test]
    fn invalid_and_excess_requests() {
        let (mut c, now) = connected(false);
        c.unchoke(now);
        for bad in [
            BlockRef::new(10, 0, BLOCK_SIZE),
            BlockRef::new(u32::MAX, 0, BLOCK_SIZE),
            BlockRef::new(9, 0, 1_001),
            BlockRef::new(9, 1_000, 1),
            BlockRef::new(0, 0, 0),
            BlockRef::new(0, 0, BLOCK_SIZE + 1),
            BlockRef::new(0, u32::MAX, BLOCK_SIZE),
        ] {
            assert_eq!(
                c.handle_message(now, Message::Request(bad)),
                Err(ProtocolError::InvalidRequest { block: bad })
            );
        }
        assert!(
            c.handle_message(now, Message::Request(BlockRef::new(9, 0, 1_000)))
                .is_ok()
        );

        let config = Config {
            max_peer_requests: 2,
            ..Config::default()
        };
        for fast in [false, true] {
            let (mut c, now) = connected(fast);
            c.config = config.clone();
            c.unchoke(now);
            c.handle_message(now, Message::Request(block(0, 0)))
                .expect("valid");
            c.handle_message(now, Message::Request(block(0, 1)))
                .expect("valid");
            let third = c.handle_message(now, Message::Request(block(1, 0)));
            if fast {
                assert_eq!(third, Ok(None));
                assert_eq!(sent(&mut c).last(), Some(&Message::Reject(block(1, 0))));
            } else {
                assert_eq!(third, Err(ProtocolError::TooManyRequests { limit: 2 }));
            }
        }
    }

    #[test]
    fn timers_on_a_virtual_clock() {
        let (mut c, t0) = downloading(true);
        let s = Duration::from_secs;
        // Nothing sent or requested: the keep-alive interval comes first.
        assert_eq!(c.poll_timeout(), t0 + s(120));
        c.request(t0 + s(10), block(0, 0)).expect("unchoked");
        c.request(t0 + s(20), block(0, 1)).expect("unchoked");
        assert_eq!(c.poll_timeout(), t0 + s(70));
        assert_eq!(c.handle_timeout(t0 + s(69)), Ok(vec![]));
        assert_eq!(c.handle_timeout(t0 + s(70)), Ok(vec![block(0, 0)]));
        // Reported once; the next deadline is the second request's.
        assert_eq!(c.handle_timeout(t0 + s(70)), Ok(vec![]));
        assert_eq!(c.poll_timeout(), t0 + s(80));
        assert_eq!(c.handle_timeout(t0 + s(80)), Ok(vec![block(0, 1)]));
        // A late block for a timed-out request is still welcome.
        let late = Message::Piece {
            piece: 0,
            offset: 0,
            data: Cow::Owned(vec![0; BLOCK_SIZE as usize]),
        };
        assert!(matches!(
            c.handle_message(t0 + s(90), late),
            Ok(Some(Event::Block { .. }))
        ));
        // Last sent at 20 s: a keep-alive at 140 s.
        assert_eq!(c.poll_timeout(), t0 + s(140));
        sent(&mut c);
        assert_eq!(c.handle_timeout(t0 + s(140)), Ok(vec![]));
        assert_eq!(sent(&mut c), [Message::KeepAlive]);
        // Last received at 90 s: idle at 270 s, before the next keep-alive at 260 s + ...
        assert_eq!(c.poll_timeout(), t0 + s(260));
        assert_eq!(c.handle_timeout(t0 + s(260)), Ok(vec![]));
        assert_eq!(c.poll_timeout(), t0 + s(270));
        assert_eq!(
            c.handle_timeout(t0 + s(270)),
            Err(ProtocolError::Idle { silent: s(180) })
        );
        // Anything from the peer, keep-alives too, resets the idle timer.
        c.handle_message(t0 + s(270), Message::KeepAlive)
            .expect("keep-alive");
        assert_eq!(c.handle_timeout(t0 + s(300)), Ok(vec![]));
    }

    #[test]
    fn cancelled_blocks_expire() {
        let (mut c, t0) = downloading(false);
        let s = Duration::from_secs;
        c.request(t0, block(0, 0)).expect("unchoked");
        assert!(c.cancel(t0 + s(5), block(0, 0)));
        assert_eq!(c.poll_timeout(), t0 + s(65));
        assert_eq!(c.handle_timeout(t0 + s(65)), Ok(vec![]));
        let late = Message::Piece {
            piece: 0,
            offset: 0,
            data: Cow::Owned(vec![0; BLOCK_SIZE as usize]),
        };
        assert_eq!(
            c.handle_message(t0 + s(66), late),
            Err(ProtocolError::UnrequestedBlock { block: block(0, 0) })
        );
    }

    #[test]
    fn our_bitfield_goes_first() {
        let (mut c, now) = connected(true);
        assert_eq!(
            c.send_bitfield(now, &Bitfield::new(9)),
            Err(UsageError::BitfieldLength {
                expected: 10,
                actual: 9
            })
        );
        assert_eq!(c.send_bitfield(now, &Bitfield::full(10)), Ok(()));
        assert_eq!(
            c.send_bitfield(now, &Bitfield::full(10)),
            Err(UsageError::NotFirst)
        );
        assert_eq!(sent(&mut c), [Message::HaveAll]);

        let (mut c, now) = connected(false);
        let mut ours = Bitfield::new(10);
        ours.set(9).expect("in range");
        assert_eq!(c.send_bitfield(now, &ours), Ok(()));
        assert_eq!(sent(&mut c), [Message::Bitfield(Cow::Owned(vec![0, 0x40]))]);
        assert_eq!(
            c.have(now, 10),
            Err(UsageError::PieceOutOfRange {
                piece: 10,
                pieces: 10
            })
        );
    }

    #[test]
    fn extension_messages() {
        let (mut c, now) = connected(false);
        assert_eq!(
            c.handle_message(
                now,
                Message::Extended {
                    id: 0,
                    payload: Cow::Borrowed(b"de")
                }
            ),
            Ok(Some(Event::Extended {
                id: 0,
                payload: Cow::Borrowed(&b"de"[..])
            }))
        );
        assert_eq!(
            c.handle_message(now, Message::Suggest(1)),
            Err(ProtocolError::NotNegotiated { id: id::SUGGEST })
        );
        assert_eq!(
            c.handle_message(
                now,
                Message::Unknown {
                    id: 77,
                    payload: Cow::Borrowed(b"")
                }
            ),
            Ok(None)
        );
        assert_eq!(
            c.handle_message(now, Message::Port(6881)),
            Ok(Some(Event::Port(6881)))
        );
        assert_eq!(
            c.send_message(now, Message::Suggest(1)),
            Err(UsageError::NotNegotiated)
        );
        assert_eq!(c.allow_fast(now, 1), Err(UsageError::NotNegotiated));
        let (mut fast, now) = connected(true);
        assert_eq!(
            fast.allow_fast(now, 10),
            Err(UsageError::PieceOutOfRange {
                piece: 10,
                pieces: 10
            })
        );
        assert_eq!(
            c.send_message(now, Message::Request(block(0, 0))),
            Err(UsageError::Stateful { id: id::REQUEST })
        );
        assert_eq!(
            c.send_message(
                now,
                Message::Extended {
                    id: 1,
                    payload: Cow::Borrowed(b"x")
                }
            ),
            Ok(())
        );
        assert_eq!(
            sent(&mut c),
            [Message::Extended {
                id: 1,
                payload: Cow::Owned(b"x".to_vec())
            }]
        );
    }

    mod sequences {
        use super::*;
        use proptest::prelude::*;

        fn small_block() -> impl Strategy<Value = BlockRef> {
            (
                0u32..12,
                0u32..3,
                prop_oneof![Just(BLOCK_SIZE), Just(1_000), 0u32..40_000],
            )
                .prop_map(|(p, n, len)| BlockRef::new(p, n * BLOCK_SIZE, len))
        }

        #[derive(Debug, Clone)]
        enum Step {
            Peer(Message<'static>),
            Request(BlockRef),
            Cancel(BlockRef),
            Serve(BlockRef),
            Choke,
            Unchoke,
            AllowFast(u32),
            Wait(u64),
        }

        fn step() -> impl Strategy<Value = Step> {
            let peer = prop_oneof![
                Just(Message::KeepAlive),
                Just(Message::Choke),
                Just(Message::Unchoke),
                Just(Message::Interested),
                Just(Message::HaveAll),
                Just(Message::HaveNone),
                (0u32..12).prop_map(Message::Have),
                (0u32..12).prop_map(Message::AllowedFast),
                small_block().prop_map(Message::Request),
                small_block().prop_map(Message::Cancel),
                small_block().prop_map(Message::Reject),
                small_block().prop_map(|b| Message::Piece {
                    piece: b.piece,
                    offset: b.offset,
                    data: Cow::Owned(vec![0; b.length as usize]),
                }),
                proptest::collection::vec(any::<u8>(), 0..3)
                    .prop_map(|b| Message::Bitfield(Cow::Owned(b))),
            ];
            prop_oneof![
                peer.prop_map(Step::Peer),
                small_block().prop_map(Step::Request),
                small_block().prop_map(Step::Cancel),
                small_block().prop_map(Step::Serve),
                Just(Step::Choke),
                Just(Step::Unchoke),
                (0u32..12).prop_map(Step::AllowFast),
                (0u64..100).prop_map(Step::Wait),
            ]
        }

        proptest! {
            /// Whatever the peer sends and we do, nothing panics, every error is typed,
            /// and the queues keep their invariants.
            #[test]
            fn invariants(fast: bool, steps in proptest::collection::vec(step(), 0..60)) {
                let (mut c, mut now) = connected(fast);
                for step in steps {
                    match step {
                        Step::Peer(m) => {
                            let was_choked = c.am_choking();
                            if let Ok(Some(Event::Request(b))) = c.handle_message(now, m) {
                                prop_assert!(geometry().valid_block(b, BLOCK_SIZE));
                                prop_assert!(!was_choked || c.allowed_fast_out.contains(&b.piece));
                            }
                        }
                        Step::Request(b) => {
                            if c.request(now, b).is_ok() {
                                prop_assert!(c.peer_pieces().has(b.piece));
                            }
                        }
                        Step::Cancel(b) => {
                            c.cancel(now, b);
                        }
                        Step::Serve(b) => {
                            let _ = c.send_piece(now, b, vec![0; b.length as usize]);
                        }
                        Step::Choke => {
                            c.choke(now);
                        }
                        Step::Unchoke => c.unchoke(now),
                        Step::AllowFast(p) => {
                            let _ = c.allow_fast(now, p);
                        }
                        Step::Wait(secs) => {
                            now += Duration::from_secs(secs);
                            if c.handle_timeout(now).is_err() {
                                break;
                            }
                            // Everything due has been handled.
                            prop_assert!(c.poll_timeout() > now);
                        }
                    }
                    prop_assert!(c.peer_requests.len() <= c.config.max_peer_requests);
                    prop_assert!(c.requested.keys().all(|b| !c.stale.contains_key(b)));
                    if c.am_choking() {
                        prop_assert!(c.peer_requests().all(|b| c.allowed_fast_out.contains(&b.piece)));
                    }
                    while let Some(m) = c.poll_transmit() {
                        let bytes = m.to_vec();
                        prop_assert_eq!(crate::Decoder::new().decode(&bytes), Ok(Some((m, bytes.len()))));
                    }
                }
            }
        }
    }
}
