//! A fixed-size set of piece indices, one bit per piece.

use webtorrent_types::PieceIndex;

/// One bit per piece, with a running count of set bits.
#[derive(Debug, Clone, Default)]
pub(crate) struct PieceBits {
    words: Vec<u64>,
    len: u32,
    ones: u32,
}

impl PieceBits {
    /// An empty set able to hold `len` pieces.
    pub(crate) fn new(len: u32) -> Self {
        Self {
            words: vec![0; len.div_ceil(64) as usize],
            len,
            ones: 0,
        }
    }

    /// Makes room for `len` pieces if the set is smaller.
    pub(crate) fn grow(&mut self, len: u32) {
        if self.len < len {
            self.words.resize(len.div_ceil(64) as usize, 0);
            self.len = len;
        }
    }

    /// Whether `piece` is in the set; `false` beyond the end.
    pub(crate) fn get(&self, piece: PieceIndex) -> bool {
        self.words
            .get((piece / 64) as usize)
            .is_some_and(|w| w & (1 << (piece % 64)) != 0)
    }

    /// Adds `piece`; returns whether it was absent. Ignores pieces beyond the end.
    pub(crate) fn insert(&mut self, piece: PieceIndex) -> bool {
        if piece >= self.len {
            return false;
        }
        let Some(w) = self.words.get_mut((piece / 64) as usize) else {
            return false;
        };
        let mask = 1 << (piece % 64);
        let added = *w & mask == 0;
        *w |= mask;
        self.ones += u32::from(added);
        added
    }

    /// Removes `piece`; returns whether it was present.
    pub(crate) fn remove(&mut self, piece: PieceIndex) -> bool {
        let Some(w) = self.words.get_mut((piece / 64) as usize) else {
            return false;
        };
        let mask = 1 << (piece % 64);
        let removed = *w & mask != 0;
        *w &= !mask;
        self.ones -= u32::from(removed);
        removed
    }

    /// Number of pieces in the set.
    pub(crate) fn count(&self) -> u32 {
        self.ones
    }

    /// The pieces in the set, ascending; skips empty words.
    pub(crate) fn iter(&self) -> impl Iterator<Item = PieceIndex> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let base = i as u32 * 64;
            let mut rest = w;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                Some(base + bit)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn behaves_like_a_set(len in 0u32..300, ops in proptest::collection::vec((any::<bool>(), 0u32..320), 0..200)) {
            let mut bits = PieceBits::new(len);
            let mut model = std::collections::BTreeSet::new();
            for (add, p) in ops {
                if add {
                    prop_assert_eq!(bits.insert(p), p < len && model.insert(p));
                } else {
                    prop_assert_eq!(bits.remove(p), model.remove(&p));
                }
                prop_assert_eq!(bits.get(p), model.contains(&p));
            }
            prop_assert_eq!(bits.count() as usize, model.len());
            prop_assert_eq!(bits.iter().collect::<Vec<_>>(), model.into_iter().collect::<Vec<_>>());
        }
    }
}
