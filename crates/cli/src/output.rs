//! Writing to stdout and reporting errors.

use std::io::{self, Write};

/// Collapses whitespace runs (newlines included) so a message stays on one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `error: <message>: <cause>: <cause>` on one stderr line.
pub(crate) fn print_error(e: &anyhow::Error) {
    eprintln!("error: {}", error_line(e));
}

/// The cause chain joined with `: `. Many error types also print their source in their own
/// message; a cause already contained in the text before it is not repeated.
pub(crate) fn error_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = one_line(&cause.to_string());
        if text.is_empty() || parts.last().is_some_and(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// Whether the error is stdout being closed under us (`webtorrent info x | head -1`).
pub(crate) fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Writes `text` to stdout; an error (e.g. a closed pipe) is returned, not panicked on.
pub(crate) fn print_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("unexpected byte 'g'")
        }
    }
    impl std::error::Error for Inner {}

    #[derive(Debug)]
    struct Outer(Inner);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "invalid bencode: {}", self.0)
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn causes_are_not_repeated() {
        let e = anyhow::Error::new(Outer(Inner)).context("x.torrent is not a valid torrent");
        assert_eq!(
            error_line(&e),
            "x.torrent is not a valid torrent: invalid bencode: unexpected byte 'g'"
        );
    }

    #[test]
    fn messages_stay_on_one_line() {
        let e = anyhow::anyhow!("two\nlines").context("outer\tpart");
        assert_eq!(error_line(&e), "outer part: two lines");
    }

    #[test]
    fn broken_pipe_is_recognised() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
