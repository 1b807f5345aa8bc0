//! Helpers for running the built `webtorrent` binary.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

/// Runs `webtorrent` with `args` in `cwd`, stdin closed, RUST_LOG unset.
pub fn webtorrent(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webtorrent"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the webtorrent binary runs")
}

/// Runs `webtorrent` with `stdin` as its standard input.
pub fn webtorrent_stdin(cwd: &Path, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_webtorrent"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the webtorrent binary starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .expect("stdin accepts the input");
    child
        .wait_with_output()
        .expect("the webtorrent binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

/// Asserts success and returns stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "webtorrent failed ({}): {}",
        o.status,
        stderr(o)
    );
    stdout(o)
}

/// Asserts the bad-input contract: exit status 1, nothing on stdout, exactly one stderr
/// line `error: ...`, no panic. Returns that line.
pub fn one_error_line(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit status; stderr: {err}");
    assert!(o.stdout.is_empty(), "stdout should be empty: {}", stdout(o));
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got {err:?}");
    assert!(lines[0].starts_with("error: "), "{err:?}");
    assert!(!err.contains("panicked"), "{err:?}");
    lines[0].to_owned()
}

/// Deterministic bytes (xorshift64), so that trees are the same on every run.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A folder `root/name` with files of odd sizes, an empty file, nesting and unicode names.
pub fn make_tree(root: &Path, name: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    let files: &[(&str, usize)] = &[
        ("a.bin", 1),
        ("b.bin", 16_384),
        ("c.bin", 40_000),
        ("empty.txt", 0),
        ("sub/deeper/d.bin", 20_001),
        ("ünï/日本.txt", 777),
    ];
    for (i, (path, len)) in files.iter().enumerate() {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(&p, content(i as u64 + 1, *len)).expect("write");
    }
    dir
}

/// The JSON printed by `webtorrent info --json`.
pub fn info_json(cwd: &Path, input: &str) -> serde_json::Value {
    let out = ok(&webtorrent(cwd, &["info", "--json", input]));
    serde_json::from_str(&out).expect("info --json prints JSON")
}

/// Takes the piped stdout and stderr of `child` and sends their lines, as they come, to one
/// channel (a reader thread each).
pub fn line_channel(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout is piped");
    let err = child.stderr.take().expect("stderr is piped");
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(line);
        }
    });
    rx
}
