//! Writing to stdout and reporting errors.

use std::io::{self, Write};

/// Collapses whitespace runs (newlines included) so a message stays on one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `error: <message>: <cause>: <cause>` on one stderr line.
pub(crate) fn print_error(e: &anyhow::Error) {
    eprintln!("error: {}", one_line(&format!("{e:#}")));
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
