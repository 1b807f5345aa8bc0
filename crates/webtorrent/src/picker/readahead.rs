//! Streaming read-ahead: turns the positions of a torrent's readers into piece deadlines.
//!
//! Each reader of a file ([`crate::session::FileReader`]) is a *stream*: a position in the
//! torrent's data, the end of its file, and the rate it consumes bytes at. [`ReadAhead`]
//! gives the piece under each stream's position a deadline of *now*, and the pieces of the
//! window after it (a window sized to the stream's rate, [`ReadAhead::window`]) deadlines
//! spread by the time the stream will take to reach them. [`ReadAhead::apply`] hands them
//! to a [`PiecePicker`], which requests time-critical pieces before any other, earliest
//! first; the rest of the torrent goes on rarest first. A stream that moves (a seek) or is
//! removed (the reader dropped) takes its deadlines back on the next `apply`; with several
//! streams, a piece takes the earliest of their deadlines.
//!
//! Sans-IO like the picker: time is passed in.
//!
//! ```
//! use std::time::Instant;
//! use webtorrent::picker::{PeerKey, PiecePicker, ReadAhead, StreamId};
//!
//! // 64 pieces of 256 KiB; one peer has them all.
//! let piece = 256 * 1024;
//! let mut picker = PiecePicker::uniform(piece, 64 * u64::from(piece))?;
//! picker.peer_have_all(PeerKey(1));
//! let mut streams = ReadAhead::new(piece.into(), 64 * u64::from(piece));
//!
//! // A reader seeks to the middle: piece 32 comes first, then the pieces after it.
//! let now = Instant::now();
//! streams.set(StreamId(1), 32 * u64::from(piece) + 100, 64 * u64::from(piece), 0);
//! streams.apply(&mut picker, now);
//! let first = picker.pick_blocks(PeerKey(1), 1, now);
//! assert_eq!(first[0].piece, 32);
//!
//! // Dropped: its deadlines go.
//! streams.remove(StreamId(1));
//! streams.apply(&mut picker, now);
//! assert!(streams.applied().is_empty());
//! # Ok::<(), webtorrent::picker::PickerError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use webtorrent_types::PieceIndex;

use super::PiecePicker;

/// The rate assumed for a stream that has not been read long enough to measure one
/// (bytes per second): a fresh stream or one that just seeked.
pub const ASSUMED_RATE: u64 = 1024 * 1024;

/// How many seconds of a stream's rate its read-ahead window covers.
pub const WINDOW_SECONDS: u64 = 10;

/// The smallest read-ahead window, in bytes (at least two pieces are always covered).
pub const MIN_WINDOW: u64 = 2 * 1024 * 1024;

/// The largest read-ahead window, in bytes.
pub const MAX_WINDOW: u64 = 64 * 1024 * 1024;

/// A stream's name: any number unique among a torrent's live streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u64);

#[derive(Debug, Clone, Copy)]
struct Stream {
    /// Position in the torrent's data layout.
    pos: u64,
    /// Where the stream's file ends in the data layout (exclusive).
    end: u64,
    /// Bytes per second the stream consumes; 0 when not measured yet.
    rate: u64,
}

/// The streams of one torrent and the deadlines they gave the picker; see the
/// module documentation.
#[derive(Debug, Clone)]
pub struct ReadAhead {
    piece_length: u64,
    total_length: u64,
    streams: HashMap<StreamId, Stream>,
    applied: BTreeSet<PieceIndex>,
}

impl ReadAhead {
    /// The read-ahead of a torrent of `total_length` bytes (in its data layout, pad files and
    /// v2 piece alignment included) in pieces of `piece_length` bytes.
    pub fn new(piece_length: u64, total_length: u64) -> Self {
        Self {
            piece_length: piece_length.max(1),
            total_length,
            streams: HashMap::new(),
            applied: BTreeSet::new(),
        }
    }

    /// Adds stream `id` or moves it: it reads at `pos` and stops at `end` (both in the data
    /// layout), consuming `rate` bytes per second (0: not known yet).
    pub fn set(&mut self, id: StreamId, pos: u64, end: u64, rate: u64) {
        let end = end.min(self.total_length);
        self.streams.insert(id, Stream { pos, end, rate });
    }

    /// Removes stream `id`; its deadlines go on the next [`apply`](Self::apply).
    pub fn remove(&mut self, id: StreamId) {
        self.streams.remove(&id);
    }

    /// Whether no stream is open.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The pieces that have a deadline from the last [`apply`](Self::apply).
    pub fn applied(&self) -> &BTreeSet<PieceIndex> {
        &self.applied
    }

    /// The read-ahead window of a stream consuming `rate` bytes per second (0: unknown):
    /// [`WINDOW_SECONDS`] of its rate, within [`MIN_WINDOW`] and [`MAX_WINDOW`].
    pub fn window(rate: u64) -> u64 {
        let rate = if rate == 0 { ASSUMED_RATE } else { rate };
        rate.saturating_mul(WINDOW_SECONDS)
            .clamp(MIN_WINDOW, MAX_WINDOW)
    }

    /// The deadline every piece should have now: for each stream, the piece under its
    /// position at `now`, then the pieces of its window, each due when the stream will
    /// reach it at its rate. A piece several streams want takes the earliest deadline.
    pub fn deadlines(&self, now: Instant) -> BTreeMap<PieceIndex, Instant> {
        let mut out: BTreeMap<PieceIndex, Instant> = BTreeMap::new();
        for s in self.streams.values() {
            if s.pos >= s.end {
                continue;
            }
            let rate = if s.rate == 0 { ASSUMED_RATE } else { s.rate };
            let window = Self::window(s.rate).max(2 * self.piece_length);
            let stop = s.end.min(s.pos.saturating_add(window));
            let first = s.pos / self.piece_length;
            let last = (stop - 1) / self.piece_length;
            for piece in first..=last {
                let Ok(index) = PieceIndex::try_from(piece) else {
                    break;
                };
                let start = (piece * self.piece_length).max(s.pos);
                let ahead = start - s.pos;
                // Within u64 ms: `ahead` ≤ 64 MiB, `rate` ≥ 1.
                let due = now + Duration::from_millis(ahead.saturating_mul(1000) / rate);
                out.entry(index)
                    .and_modify(|t| *t = (*t).min(due))
                    .or_insert(due);
            }
        }
        out
    }

    /// Gives `picker` the deadlines of [`deadlines`](Self::deadlines) and clears those it
    /// gave before that no stream wants any more. Deadlines of pieces out of the picker's
    /// range are skipped.
    pub fn apply(&mut self, picker: &mut PiecePicker, now: Instant) {
        let wanted = self.deadlines(now);
        for &piece in &self.applied {
            if !wanted.contains_key(&piece) {
                picker.clear_deadline(piece);
            }
        }
        self.applied.clear();
        for (piece, due) in wanted {
            if picker.set_deadline(piece, due).is_ok() && !picker.have(piece) {
                self.applied.insert(piece);
            }
        }
    }

    /// The pieces under the streams' positions that the picker does not have: the ones a
    /// reader waits on right now.
    pub fn urgent(&self, picker: &PiecePicker) -> Vec<PieceIndex> {
        let mut out: Vec<PieceIndex> = self
            .streams
            .values()
            .filter(|s| s.pos < s.end)
            .filter_map(|s| PieceIndex::try_from(s.pos / self.piece_length).ok())
            .filter(|&p| p < picker.piece_count() && !picker.have(p))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picker::PeerKey;
    use webtorrent_types::BLOCK_SIZE;

    const PIECE: u32 = 4 * BLOCK_SIZE;
    const N: u32 = 400;

    fn setup() -> (PiecePicker, ReadAhead) {
        let total = u64::from(N) * u64::from(PIECE);
        let mut picker = PiecePicker::uniform(PIECE, total).unwrap();
        picker.peer_have_all(PeerKey(1));
        (picker, ReadAhead::new(PIECE.into(), total))
    }

    fn at(piece: u32) -> u64 {
        u64::from(piece) * u64::from(PIECE)
    }

    fn total() -> u64 {
        at(N)
    }

    /// The pieces of `n` blocks picked from the seed, in pick order, each once.
    fn picked_pieces(picker: &mut PiecePicker, n: usize, now: Instant) -> Vec<u32> {
        let mut pieces: Vec<u32> = Vec::new();
        for b in picker.pick_blocks(PeerKey(1), n, now) {
            if pieces.last() != Some(&b.piece) {
                pieces.push(b.piece);
            }
        }
        pieces
    }

    #[test]
    fn window_scales_with_rate_within_bounds() {
        assert_eq!(ReadAhead::window(0), ASSUMED_RATE * WINDOW_SECONDS);
        assert_eq!(ReadAhead::window(1), MIN_WINDOW);
        assert_eq!(ReadAhead::window(1_000_000), 10_000_000);
        assert_eq!(ReadAhead::window(u64::MAX), MAX_WINDOW);
    }

    #[test]
    fn seek_to_the_middle_is_served_first_in_order() {
        let (mut picker, mut streams) = setup();
        let now = Instant::now();
        streams.set(StreamId(7), at(200) + 5, total(), 0);
        streams.apply(&mut picker, now);
        // 10 MiB window at the assumed rate from 5 bytes into piece 200: 161 pieces.
        let window = ReadAhead::window(0).div_ceil(u64::from(PIECE)) as u32;
        assert_eq!(streams.applied().len() as u32, window + 1);
        let got = picked_pieces(&mut picker, 4 * 20, now);
        let expect: Vec<u32> = (200..220).collect();
        assert_eq!(got, expect);
        assert_eq!(streams.urgent(&picker), [200]);
    }

    #[test]
    fn window_stops_at_the_end_of_the_file() {
        let (mut picker, mut streams) = setup();
        let now = Instant::now();
        streams.set(StreamId(1), at(10), at(13) - 1, 0);
        streams.apply(&mut picker, now);
        assert_eq!(
            streams.applied().iter().copied().collect::<Vec<_>>(),
            [10, 11, 12]
        );
        // A stream at its end wants nothing.
        streams.set(StreamId(1), at(13) - 1, at(13) - 1, 0);
        streams.apply(&mut picker, now);
        assert!(streams.applied().is_empty());
    }

    #[test]
    fn deadlines_follow_the_rate() {
        let (_, mut streams) = setup();
        let now = Instant::now();
        // 64 KiB/s: one piece a second.
        streams.set(StreamId(1), at(0), total(), u64::from(PIECE));
        let d = streams.deadlines(now);
        assert_eq!(d[&0], now);
        assert_eq!(d[&1], now + Duration::from_secs(1));
        assert_eq!(d[&5], now + Duration::from_secs(5));
        // The window is at least MIN_WINDOW at so low a rate: 32 pieces.
        assert_eq!(d.len() as u64, MIN_WINDOW / u64::from(PIECE));
    }

    #[test]
    fn seeking_away_releases_the_old_window() {
        let (mut picker, mut streams) = setup();
        let now = Instant::now();
        streams.set(StreamId(1), at(300), total(), 0);
        streams.apply(&mut picker, now);
        assert!(streams.applied().contains(&300));
        streams.set(StreamId(1), at(10), total(), 0);
        streams.apply(&mut picker, now);
        assert!(!streams.applied().contains(&300));
        assert!(streams.applied().contains(&10));
        assert_eq!(picked_pieces(&mut picker, 4, now), [10]);
    }

    #[test]
    fn dropped_stream_leaves_rarest_first() {
        let (mut picker, mut streams) = setup();
        let now = Instant::now();
        // Piece 0 is rarer than the others for peer 1: peer 2 has every piece but 0.
        let mut bits = vec![0xffu8; (N / 8) as usize];
        bits[0] = 0x7f;
        picker.peer_bitfield(PeerKey(2), &bits).unwrap();
        streams.set(StreamId(1), at(250), total(), 0);
        streams.apply(&mut picker, now);
        assert_eq!(picked_pieces(&mut picker, 4, now), [250]);
        streams.remove(StreamId(1));
        streams.apply(&mut picker, now);
        assert!(streams.is_empty());
        assert!(streams.applied().is_empty());
        // Piece 250 is all requested: next comes the rarest piece.
        let next = picked_pieces(&mut picker, 4, now);
        assert_eq!(next, [0]);
    }

    #[test]
    fn two_streams_share_and_take_the_earliest_deadline() {
        let (mut picker, mut streams) = setup();
        let now = Instant::now();
        streams.set(StreamId(1), at(100), total(), u64::from(PIECE));
        streams.set(StreamId(2), at(102), total(), u64::from(PIECE));
        let d = streams.deadlines(now);
        // Piece 102 is due now for stream 2, in 2 s for stream 1.
        assert_eq!(d[&102], now);
        assert_eq!(d[&101], now + Duration::from_secs(1));
        streams.apply(&mut picker, now);
        assert_eq!(streams.urgent(&picker), [100, 102]);
        // Both current pieces come before the rest of either window.
        let got = picked_pieces(&mut picker, 8, now);
        assert_eq!(got.len(), 2);
        assert!(got.contains(&100) && got.contains(&102));
        // One reader leaves: the other keeps its window.
        streams.remove(StreamId(2));
        streams.apply(&mut picker, now);
        assert!(streams.applied().contains(&100));
        assert!(streams.applied().contains(&120));
    }

    #[test]
    fn verified_pieces_get_no_deadline() {
        let (mut picker, mut streams) = setup();
        let now = Instant::now();
        picker.piece_verified(40).unwrap();
        streams.set(StreamId(1), at(40), total(), 0);
        streams.apply(&mut picker, now);
        assert!(!streams.applied().contains(&40));
        assert!(streams.applied().contains(&41));
        assert!(streams.urgent(&picker).is_empty());
        assert_eq!(picked_pieces(&mut picker, 4, now), [41]);
    }
}
