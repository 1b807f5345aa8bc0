//! `Range: bytes=…` requests (RFC 9110 §14), one range at a time.

/// What a `Range` header asks of a resource of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ByteRange {
    /// The whole resource (no header, a unit other than `bytes`, or several ranges, which
    /// the server answers with the whole resource as RFC 9110 allows).
    Full,
    /// Bytes `start..=end`, within the resource.
    Part {
        /// First byte.
        start: u64,
        /// Last byte, included.
        end: u64,
    },
    /// A malformed range, or one that starts past the end: `416 Range Not Satisfiable`.
    Unsatisfiable,
}

/// Parses a `Range` header value against a resource of `length` bytes: `bytes=a-b`,
/// `bytes=a-`, `bytes=-n` (the last `n` bytes). A last byte past the end is cut to it.
pub fn parse_range(header: &str, length: u64) -> ByteRange {
    let header = header.trim();
    let Some((unit, spec)) = header.split_once('=') else {
        return ByteRange::Unsatisfiable;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return ByteRange::Full;
    }
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Unsatisfiable;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match number(last) {
            Some(n) if n > 0 && length > 0 => ByteRange::Part {
                start: length.saturating_sub(n),
                end: length - 1,
            },
            _ => ByteRange::Unsatisfiable,
        },
        (false, true) => match number(first) {
            Some(start) if start < length => ByteRange::Part {
                start,
                end: length - 1,
            },
            _ => ByteRange::Unsatisfiable,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end && start < length => ByteRange::Part {
                start,
                end: end.min(length - 1),
            },
            _ => ByteRange::Unsatisfiable,
        },
        (true, true) => ByteRange::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> ByteRange {
        ByteRange::Part { start, end }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), part(0, 99));
        assert_eq!(parse_range("bytes=500-", 1000), part(500, 999));
        assert_eq!(parse_range("bytes=-100", 1000), part(900, 999));
        assert_eq!(parse_range("bytes=-5000", 1000), part(0, 999));
        assert_eq!(parse_range("bytes=990-5000", 1000), part(990, 999));
        assert_eq!(parse_range(" Bytes = 1-1 ", 1000), part(1, 1));
        assert_eq!(parse_range("bytes=999-999", 1000), part(999, 999));
    }

    #[test]
    fn the_whole_resource() {
        assert_eq!(parse_range("items=0-5", 1000), ByteRange::Full);
        assert_eq!(parse_range("bytes=0-1,5-9", 1000), ByteRange::Full);
    }

    #[test]
    fn unsatisfiable() {
        for bad in [
            "bytes=1000-",
            "bytes=1000-2000",
            "bytes=5-1",
            "bytes=-0",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=0x10-",
            "bytes=99999999999999999999999-",
            "bytes=1",
            "bytes",
            "",
            "bytes=1-2-3",
        ] {
            assert_eq!(parse_range(bad, 1000), ByteRange::Unsatisfiable, "{bad}");
        }
        assert_eq!(parse_range("bytes=0-", 0), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=-1", 0), ByteRange::Unsatisfiable);
    }
}
