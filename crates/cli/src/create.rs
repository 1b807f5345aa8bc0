//! `webtorrent create`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use webtorrent::metainfo::{MetaVersion, Metainfo, TorrentBuilder};

use crate::args::{CreateArgs, MetaVersionArg};
use crate::output::print_stdout;
use crate::units::human;

/// The default "created by".
pub(crate) fn default_created_by() -> String {
    format!("webtorrent-rs/{}", env!("CARGO_PKG_VERSION"))
}

/// Accepts the URL schemes a tracker (or, with `web`, a web seed) can use.
fn check_url(url: &str, what: &str, web: bool) -> Result<()> {
    let schemes: &[&str] = if web {
        &["http", "https"]
    } else {
        &["http", "https", "udp", "ws", "wss"]
    };
    let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) || host.is_empty() {
        bail!(
            "invalid {what} URL {url:?}: expected {}://host/...",
            schemes.join("|")
        );
    }
    if url.chars().any(char::is_whitespace) {
        bail!("invalid {what} URL {url:?}: contains whitespace");
    }
    Ok(())
}

/// The name the torrent will get: `--name`, else the last component of the path.
fn torrent_name(args: &CreateArgs, path: &Path) -> Option<String> {
    if let Some(n) = &args.name {
        return Some(n.clone());
    }
    path.file_name().map(|n| n.to_string_lossy().into_owned())
}

pub(crate) fn run(args: &CreateArgs) -> Result<()> {
    // Canonical, so that `.` or `dir/..` get a real name.
    let path = std::fs::canonicalize(&args.path)
        .with_context(|| format!("cannot open {}", args.path.display()))?;
    let builder = builder(args, &path)?;
    // Fail before hashing when the output obviously exists.
    let planned = args
        .output
        .clone()
        .or_else(|| torrent_name(args, &path).map(|n| PathBuf::from(format!("{n}.torrent"))));
    if let Some(out) = &planned {
        refuse_overwrite(out, args.force)?;
    }

    let interactive = std::io::stdout().is_terminal();
    let meta = build(builder, interactive)?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.torrent", meta.info().name())));
    write_torrent(&out, &meta.to_bytes(), args.force)?;
    if interactive {
        let info = meta.info();
        eprintln!(
            "wrote {} ({}, {} pieces of {}, {})",
            out.display(),
            version_name(info.version()),
            info.piece_count(),
            human(info.piece_length()),
            human(info.total_length()),
        );
    }
    print_stdout(&format!("{}\n", webtorrent::magnet_link(&meta)))?;
    Ok(())
}

/// The builder `args` describe for the (canonical) `path`; URLs are checked first.
pub(crate) fn builder(args: &CreateArgs, path: &Path) -> Result<TorrentBuilder> {
    for t in &args.trackers {
        check_url(t, "tracker", false)?;
    }
    for w in &args.web_seeds {
        check_url(w, "web seed", true)?;
    }
    let version = match args.meta_version {
        MetaVersionArg::V1 => MetaVersion::V1,
        MetaVersionArg::V2 => MetaVersion::V2,
        MetaVersionArg::Hybrid => MetaVersion::Hybrid,
    };
    let mut builder = TorrentBuilder::new(path)
        .meta_version(version)
        .piece_length(args.piece_length)
        .private(args.private)
        .follow_symlinks(args.follow_symlinks);
    for t in &args.trackers {
        builder = builder.tracker(t.clone());
    }
    for w in &args.web_seeds {
        builder = builder.web_seed(w.clone());
    }
    if let Some(c) = &args.comment {
        builder = builder.comment(c.clone());
    }
    if let Some(n) = &args.name {
        builder = builder.name(n.clone());
    }
    if !args.no_created_by {
        builder = builder.created_by(args.created_by.clone().unwrap_or_else(default_created_by));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    Ok(builder.creation_date(if args.no_date { None } else { now }))
}

/// Hashes the files, with a progress bar on stderr when `interactive`.
pub(crate) fn build(builder: TorrentBuilder, interactive: bool) -> Result<Metainfo> {
    if interactive {
        build_with_bar(builder)?
    } else {
        builder.build()
    }
    .context("cannot create the torrent")
}

fn version_name(v: MetaVersion) -> &'static str {
    crate::info::meta_version_str(v)
}

pub(crate) fn refuse_overwrite(out: &Path, force: bool) -> Result<()> {
    if !force && out.exists() {
        bail!(
            "{} already exists (use --force to overwrite it)",
            out.display()
        );
    }
    Ok(())
}

/// Writes the file; without `force` an existing file is never replaced (even one that
/// appeared while we were hashing). A failed write removes what it wrote.
pub(crate) fn write_torrent(out: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(out).with_context(|| {
        if out.exists() && !force {
            format!(
                "{} already exists (use --force to overwrite it)",
                out.display()
            )
        } else {
            format!("cannot write {}", out.display())
        }
    })?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(out);
        return Err(e).with_context(|| format!("cannot write {}", out.display()));
    }
    Ok(())
}

/// Builds with a progress bar on stderr.
fn build_with_bar(
    builder: TorrentBuilder,
) -> Result<Result<Metainfo, webtorrent::metainfo::CreateError>> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "hashing {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .context("progress bar template")?,
    );
    let result = builder.build_with_progress(|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("udp://tracker.example:6969/announce", "tracker", false).is_ok());
        assert!(check_url("wss://tracker.example", "tracker", false).is_ok());
        assert!(check_url("HTTPS://t.example/a", "tracker", false).is_ok());
        assert!(check_url("ftp://t.example/a", "tracker", false).is_err());
        assert!(check_url("udp://", "tracker", false).is_err());
        assert!(check_url("tracker.example", "tracker", false).is_err());
        assert!(check_url("http://a b/", "tracker", false).is_err());
        assert!(check_url("https://seed.example/f/", "web seed", true).is_ok());
        assert!(check_url("udp://seed.example/f/", "web seed", true).is_err());
    }
}
