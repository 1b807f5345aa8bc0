//! What the interop tests share: a small DHT of our nodes on loopback, and a node of
//! another implementation driven through a script that reads JSON commands on its
//! standard input and answers each with one JSON line.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use webtorrent_dht::{Dht, DhtConfig, DhtTask, NodeId};

/// Bound on a whole interop test.
pub const LIMIT: Duration = Duration::from_secs(90);

/// The repository's `interop/` folder.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// `n` of our nodes on 127.0.0.1, all bootstrapped from the first.
pub async fn our_nodes(n: usize) -> Vec<(Dht, DhtTask)> {
    let config = |bootstrap: Vec<SocketAddr>| {
        let mut c = DhtConfig::v4("127.0.0.1:0".parse().expect("an address"));
        c.node.bootstrap = bootstrap;
        c.node.query_timeout = Duration::from_millis(800);
        c
    };
    let mut ours = vec![Dht::bind(config(vec![])).await.expect("bind")];
    let boot = ours[0].0.local_addr_v4().expect("an IPv4 socket");
    for _ in 1..n {
        ours.push(Dht::bind(config(vec![boot])).await.expect("bind"));
    }
    for (dht, _) in &ours[1..] {
        dht.bootstrap().await.expect("bootstrap");
    }
    ours
}

/// A node of another implementation, run by `program script BOOTSTRAP`. The script prints
/// `{"port": N}` once listening, then answers each command line with a line.
pub struct ScriptNode {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    port: u16,
}

impl ScriptNode {
    pub async fn spawn(program: &str, script: &str, bootstrap: SocketAddr) -> Self {
        let mut child = Command::new(program)
            .arg(interop_dir().join(script))
            .arg(bootstrap.to_string())
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{program} {script} starts: {e}"));
        let stdin = child.stdin.take().expect("piped");
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = lines
            .next_line()
            .await
            .expect("readable")
            .expect("a ready line");
        let ready: Value = serde_json::from_str(&first).expect("JSON");
        let port = u16::try_from(ready["port"].as_u64().expect("a port")).expect("a port");
        Self {
            _child: child,
            stdin,
            lines,
            port,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Sends one command and returns its answer, which must not be an error.
    pub async fn call(&mut self, cmd: Value) -> Value {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.expect("write");
        let answer = self
            .lines
            .next_line()
            .await
            .expect("read")
            .expect("an answer");
        let reply: Value = serde_json::from_str(&answer).expect("JSON");
        assert!(reply.get("error").is_none(), "{cmd} → {reply}");
        reply
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex20(s: &str) -> NodeId {
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).expect("hex");
    }
    NodeId(out)
}
