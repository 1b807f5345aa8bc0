//! File selection ranges from `so` parameters (BEP 53).

use std::fmt;
use std::str::FromStr;

use crate::MagnetError;

/// An inclusive range of file indices from an `so` parameter: `4` or `4-6`.
///
/// File indices count the torrent's files in their metainfo order, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileRange {
    /// The first selected index.
    pub first: u32,
    /// The last selected index; not less than `first`.
    pub last: u32,
}

impl FileRange {
    /// A range holding one index.
    pub const fn single(index: u32) -> Self {
        Self {
            first: index,
            last: index,
        }
    }

    /// The range `first..=last`, or `None` if `first > last`.
    pub const fn new(first: u32, last: u32) -> Option<Self> {
        if first <= last {
            Some(Self { first, last })
        } else {
            None
        }
    }

    /// Whether `index` is in the range.
    pub const fn contains(&self, index: u32) -> bool {
        self.first <= index && index <= self.last
    }

    /// Parses a comma-separated list such as `0,2,4-6`.
    ///
    /// # Errors
    /// [`MagnetError::InvalidSelectOnly`] for an empty item, a non-decimal index, an
    /// index above `u32::MAX` or a range whose first index exceeds its last.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, MagnetError> {
        list.split(',')
            .map(|item| {
                item.parse().map_err(|_| MagnetError::InvalidSelectOnly {
                    value: list.to_owned(),
                })
            })
            .collect()
    }
}

fn index(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl FromStr for FileRange {
    type Err = MagnetError;

    fn from_str(text: &str) -> Result<Self, MagnetError> {
        let range = match text.split_once('-') {
            None => index(text).map(Self::single),
            Some((first, last)) => index(first)
                .zip(index(last))
                .and_then(|(first, last)| Self::new(first, last)),
        };
        range.ok_or_else(|| MagnetError::InvalidSelectOnly {
            value: text.to_owned(),
        })
    }
}

impl fmt::Display for FileRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bep53_example() {
        let list = FileRange::parse_list("0,2,4,6-8").unwrap();
        assert_eq!(
            list,
            [
                FileRange::single(0),
                FileRange::single(2),
                FileRange::single(4),
                FileRange::new(6, 8).unwrap(),
            ]
        );
        assert!(list[3].contains(7));
        assert!(!list[3].contains(9));
        assert_eq!(
            FileRange::parse_list("5-5").unwrap(),
            [FileRange::single(5)]
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "1,",
            ",1",
            "1,,2",
            "a",
            "-1",
            "1-",
            "3-2",
            "4294967296",
            "1 ",
            "+1",
            "1-2-3",
        ] {
            assert_eq!(
                FileRange::parse_list(bad),
                Err(MagnetError::InvalidSelectOnly { value: bad.into() }),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trip(a in any::<u32>(), b in any::<u32>()) {
            let range = FileRange::new(a.min(b), a.max(b)).unwrap();
            prop_assert_eq!(range.to_string().parse::<FileRange>().unwrap(), range);
        }

        #[test]
        fn never_panics(text in "[0-9,\\- ]{0,20}") {
            let _ = FileRange::parse_list(&text);
        }
    }
}
