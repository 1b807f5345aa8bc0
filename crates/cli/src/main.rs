//! `webtorrent`: create and inspect torrents (v1, v2 and hybrid) and magnet links, download
//! and seed them, stream them over HTTP with a web UI.
//!
//! Errors are printed as one line on stderr (`error: ...` with its causes) and exit with
//! status 1; usage errors exit with status 2; a download stopped by Ctrl-C exits with 130.
#![forbid(unsafe_code)]

mod args;
mod create;
mod demo;
mod dht;
mod info;
mod metadata;
mod output;
mod serve;
mod session;
mod units;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    install_panic_hook();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Create(a) => create::run(&a).map(|()| ExitCode::SUCCESS),
        Command::Info(a) => info::run(&a).map(|()| ExitCode::SUCCESS),
        Command::Download(a) => session::download(&a),
        Command::Seed(a) => session::seed(&a),
        Command::Metadata(a) => metadata::run(&a),
        Command::Serve(a) => serve::serve(&a),
        Command::Stream(a) => serve::stream(&a),
        Command::Demo(a) => demo::run(&a),
        Command::Dht(c) => dht::run(&c),
        Command::Publish(a) => session::publish(&a),
        Command::Tracker(a) => session::runtime().and_then(|rt| {
            rt.block_on(webtorrent_tracker_server::cli::run(&a))?;
            Ok(ExitCode::SUCCESS)
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; quiet unless `-v` or `RUST_LOG` asks for more.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => EnvFilter::try_new(s),
        _ => EnvFilter::try_new(default),
    }
    .unwrap_or_else(|_| EnvFilter::new(default));
    // Fails only if a global subscriber is already set, which cannot happen here.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A panic is a bug; still report it as one line, without a backtrace dump.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error (please report this bug): {}{at}",
            output::one_line(&msg)
        );
    }));
}
