//! `webtorrent info`: text and JSON descriptions of torrents and magnet links.

use std::fmt::Write as _;
use std::io::Read;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use webtorrent::magnet::Magnet;
use webtorrent::metainfo::{FileEntry, MetaVersion, Metainfo};

use crate::args::InfoArgs;
use crate::output::print_stdout;
use crate::units::{human, utc};

/// Version of the `--json` layout (docs/cli.md). Bumped only for incompatible changes;
/// new keys may be added without a bump.
pub(crate) const JSON_SCHEMA: u64 = 1;

/// Largest .torrent file read. Real ones are far smaller (a few MiB for huge v1 torrents);
/// this only bounds memory on a hostile or mistaken input.
const MAX_TORRENT_FILE: u64 = 64 * 1024 * 1024;

pub(crate) fn meta_version_str(v: MetaVersion) -> &'static str {
    match v {
        MetaVersion::V1 => "v1",
        MetaVersion::V2 => "v2",
        MetaVersion::Hybrid => "hybrid",
        // MetaVersion is non-exhaustive: a future format prints as such until taught here.
        _ => "unknown",
    }
}

/// A file's path with `/` separators (components are UTF-8: the parser guarantees it).
fn file_path(f: &FileEntry) -> String {
    f.components().collect::<Vec<_>>().join("/")
}

fn read_input(input: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if input == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_TORRENT_FILE + 1)
            .read_to_end(&mut bytes)
            .context("cannot read stdin")?;
    } else {
        let file = std::fs::File::open(input).with_context(|| format!("cannot open {input}"))?;
        file.take(MAX_TORRENT_FILE + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {input}"))?;
    }
    if bytes.len() as u64 > MAX_TORRENT_FILE {
        bail!(
            "{input} is larger than {}: not a .torrent file",
            human(MAX_TORRENT_FILE)
        );
    }
    Ok(bytes)
}

pub(crate) fn run(args: &InfoArgs) -> Result<()> {
    let text = if looks_like_magnet(&args.input) {
        let magnet =
            Magnet::parse(args.input.trim()).with_context(|| "invalid magnet link".to_owned())?;
        if args.json {
            json_text(&magnet_json(&magnet))?
        } else {
            magnet_text(&magnet)
        }
    } else {
        let bytes = read_input(&args.input)?;
        let meta = Metainfo::from_bytes(&bytes).with_context(|| {
            let shown = if args.input == "-" {
                "stdin"
            } else {
                &args.input
            };
            format!("{shown} is not a valid torrent")
        })?;
        if args.json {
            json_text(&torrent_json(&meta))?
        } else {
            torrent_text(&meta, args.show_pad_files)
        }
    };
    print_stdout(&text)?;
    Ok(())
}

fn looks_like_magnet(input: &str) -> bool {
    input
        .trim_start()
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"))
}

fn json_text(v: &Value) -> Result<String> {
    let mut s = serde_json::to_string_pretty(v).context("cannot format JSON")?;
    s.push('\n');
    Ok(s)
}

/// The `--json` object for a torrent (schema in docs/cli.md).
pub(crate) fn torrent_json(meta: &Metainfo) -> Value {
    let info = meta.info();
    let hashes = meta.info_hashes();
    let files: Vec<Value> = info
        .files()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.is_pad())
        .map(|(index, f)| {
            json!({
                "index": index,
                "path": file_path(f),
                "length": f.length,
                "offset": f.offset,
                "executable": f.attr.executable,
                "hidden": f.attr.hidden,
                "symlink": f.attr.symlink.as_ref().map(|t| {
                    t.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                }),
                "pieces_root": f.pieces_root.map(hex),
            })
        })
        .collect();
    let pad_files = info.files().iter().filter(|f| f.is_pad()).count();
    json!({
        "schema": JSON_SCHEMA,
        "source": "torrent",
        "name": info.name(),
        "info_hash_v1": hashes.v1.map(|h| h.to_hex()),
        "info_hash_v2": hashes.v2.map(|h| h.to_hex()),
        "meta_version": meta_version_str(info.version()),
        "piece_length": info.piece_length(),
        "piece_count": info.piece_count(),
        "total_size": info.total_length(),
        "private": info.private(),
        "files": files,
        "pad_files": pad_files,
        "trackers": meta.trackers(),
        "web_seeds": meta.web_seeds(),
        "comment": meta.comment(),
        "created_by": meta.created_by(),
        "creation_date": meta.creation_date(),
        "magnet": webtorrent::magnet_link(meta).to_string(),
        "magnet_params": Value::Null,
    })
}

/// The `--json` object for a magnet link: the same keys, null where a magnet cannot know.
pub(crate) fn magnet_json(m: &Magnet) -> Value {
    json!({
        "schema": JSON_SCHEMA,
        "source": "magnet",
        "name": m.display_name,
        "info_hash_v1": m.v1.map(|h| h.to_hex()),
        "info_hash_v2": m.v2.map(|h| h.to_hex()),
        "meta_version": match (m.v1.is_some(), m.v2.is_some()) {
            (true, true) => Some("hybrid"),
            (true, false) => Some("v1"),
            (false, true) => Some("v2"),
            (false, false) => None,
        },
        "piece_length": Value::Null,
        "piece_count": Value::Null,
        "total_size": m.exact_length,
        "private": Value::Null,
        "files": Value::Null,
        "pad_files": Value::Null,
        "trackers": m.trackers.iter().map(|t| vec![t]).collect::<Vec<_>>(),
        "web_seeds": m.web_seeds,
        "comment": Value::Null,
        "created_by": Value::Null,
        "creation_date": Value::Null,
        "magnet": m.to_string(),
        "magnet_params": {
            "peers": m.peers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "exact_sources": m.exact_sources,
            "acceptable_sources": m.acceptable_sources,
            "select_only": if m.select_only.is_empty() {
                Value::Null
            } else {
                Value::from(
                    m.select_only.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                )
            },
            "public_key": m.public_key().map(hex),
            "extra": m.extra.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        },
    })
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Keeps control characters from a torrent out of the terminal.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

fn row(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "{:<15}{}", format!("{label}:"), clean(value));
}

fn torrent_text(meta: &Metainfo, show_pad_files: bool) -> String {
    let info = meta.info();
    let hashes = meta.info_hashes();
    let mut out = String::new();
    row(&mut out, "name", info.name());
    if let Some(h) = hashes.v1 {
        row(&mut out, "info-hash v1", &h.to_hex());
    }
    if let Some(h) = hashes.v2 {
        row(&mut out, "info-hash v2", &h.to_hex());
    }
    row(&mut out, "meta version", meta_version_str(info.version()));
    row(
        &mut out,
        "piece length",
        &format!("{} ({})", human(info.piece_length()), info.piece_length()),
    );
    row(&mut out, "pieces", &info.piece_count().to_string());
    row(
        &mut out,
        "total size",
        &format!(
            "{} ({} bytes)",
            human(info.total_length()),
            info.total_length()
        ),
    );
    row(
        &mut out,
        "private",
        if info.private() { "yes" } else { "no" },
    );
    if let Some(c) = meta.comment() {
        row(&mut out, "comment", c);
    }
    if let Some(c) = meta.created_by() {
        row(&mut out, "created by", c);
    }
    if let Some(d) = meta.creation_date() {
        row(&mut out, "creation date", &format!("{} ({d})", utc(d)));
    }
    if !meta.trackers().is_empty() {
        let _ = writeln!(out, "trackers:");
        for (i, tier) in meta.trackers().iter().enumerate() {
            for (j, url) in tier.iter().enumerate() {
                let label = if j == 0 {
                    format!("tier {}:", i + 1)
                } else {
                    String::new()
                };
                let _ = writeln!(out, "  {label:<9}{}", clean(url));
            }
        }
    }
    if !meta.web_seeds().is_empty() {
        let _ = writeln!(out, "web seeds:");
        for url in meta.web_seeds() {
            let _ = writeln!(out, "  {}", clean(url));
        }
    }
    let real = info.files().iter().filter(|f| !f.is_pad()).count();
    let pads = info.files().len() - real;
    let _ = write!(out, "files ({real}");
    if pads > 0 {
        let _ = write!(
            out,
            ", plus {pads} pad file{}{}",
            if pads == 1 { "" } else { "s" },
            if show_pad_files { "" } else { " not shown" }
        );
    }
    let _ = writeln!(out, "):");
    let width = info
        .files()
        .iter()
        .map(|f| f.length.to_string().len())
        .max()
        .unwrap_or(1);
    let index_width = info.files().len().saturating_sub(1).to_string().len();
    for (index, f) in info.files().iter().enumerate() {
        if f.is_pad() && !show_pad_files {
            continue;
        }
        let mut flags = String::new();
        if f.is_pad() {
            flags.push_str(" [pad]");
        }
        if f.attr.executable {
            flags.push_str(" [executable]");
        }
        if f.attr.hidden {
            flags.push_str(" [hidden]");
        }
        if let Some(t) = &f.attr.symlink {
            flags.push_str(&format!(" -> {}", t.display()));
        }
        let _ = writeln!(
            out,
            "  {index:>index_width$}  {:>width$}  {}{}",
            f.length,
            clean(&file_path(f)),
            clean(&flags)
        );
    }
    row(
        &mut out,
        "magnet",
        &webtorrent::magnet_link(meta).to_string(),
    );
    out
}

fn magnet_text(m: &Magnet) -> String {
    let mut out = String::new();
    if let Some(n) = &m.display_name {
        row(&mut out, "name", n);
    }
    if let Some(h) = m.v1 {
        row(&mut out, "info-hash v1", &h.to_hex());
    }
    if let Some(h) = m.v2 {
        row(&mut out, "info-hash v2", &h.to_hex());
    }
    if let Some(l) = m.exact_length {
        row(&mut out, "total size", &format!("{} ({l} bytes)", human(l)));
    }
    if let Some(k) = m.public_key() {
        row(&mut out, "public key", &hex(k));
    }
    let lists: [(&str, Vec<String>); 5] = [
        ("trackers", m.trackers.clone()),
        ("web seeds", m.web_seeds.clone()),
        ("peers", m.peers.iter().map(ToString::to_string).collect()),
        ("exact sources", m.exact_sources.clone()),
        ("acceptable sources", m.acceptable_sources.clone()),
    ];
    for (label, items) in lists {
        if !items.is_empty() {
            let _ = writeln!(out, "{label}:");
            for i in items {
                let _ = writeln!(out, "  {}", clean(&i));
            }
        }
    }
    if !m.select_only.is_empty() {
        let so: Vec<String> = m.select_only.iter().map(ToString::to_string).collect();
        row(&mut out, "select only", &so.join(","));
    }
    for (k, v) in &m.extra {
        row(&mut out, &format!("param {k}"), v);
    }
    if m.v1.is_none() && m.v2.is_none() {
        let _ = writeln!(
            out,
            "(no info-hash: the torrent is found through its public key)"
        );
    }
    row(&mut out, "magnet", &m.to_string());
    out
}
