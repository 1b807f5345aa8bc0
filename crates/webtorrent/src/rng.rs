//! SplitMix64: a small, fast, deterministic generator for tie-breaks, shuffles and keys. Not
//! for secrets; no global state.

use std::hash::{BuildHasher, Hasher};

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator that repeats its sequence for the same seed.
    pub(crate) const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator seeded from the process's hash keys and the time: different per run.
    pub(crate) fn seeded() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Self(hasher.finish())
    }

    /// The next number.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        match u64::try_from(bound) {
            // The remainder is below `bound`, so it fits in usize.
            Ok(b) if b > 0 => usize::try_from(self.next_u64() % b).unwrap_or(0),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn repeats_for_a_seed_and_stays_below_the_bound() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        for bound in [0usize, 1, 2, 3, 10, 1000] {
            let (x, y) = (a.below(bound), b.below(bound));
            assert_eq!(x, y);
            assert!(x < bound.max(1));
        }
        // The published first output of SplitMix64 seeded with 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}
