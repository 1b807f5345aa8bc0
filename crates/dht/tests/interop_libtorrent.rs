//! Interop with libtorrent 2.0 (Debian's python3-libtorrent, driven by
//! interop/python/lt_dht.py) on loopback: a DHT of our nodes and libtorrent sessions;
//! each side finds the peers the other announced and reads the BEP 44 items
//! (immutable and mutable) the other put.
//!
//! Skipped, with the reason printed, when `/usr/bin/python3` cannot import libtorrent.
#![cfg(feature = "tokio")]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use webtorrent_dht::{MutableItem, NodeId, SigningKey};

mod common;

use common::{LIMIT, ScriptNode, hex, our_nodes, unhex20};

const PYTHON: &str = "/usr/bin/python3";

fn missing() -> bool {
    let ok = std::process::Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: {PYTHON} cannot import libtorrent (python3-libtorrent)");
    }
    !ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_and_we_share_peers_and_items() {
    if missing() {
        return;
    }
    tokio::time::timeout(LIMIT, async {
        let ours = our_nodes(8).await;
        let boot = ours[0].0.local_addr_v4().unwrap();
        let mut lt = Vec::new();
        for _ in 0..2 {
            lt.push(ScriptNode::spawn(PYTHON, "python/lt_dht.py", boot).await);
        }
        for l in &mut lt {
            let r = l.call(serde_json::json!({"cmd": "wait_nodes", "min": 4})).await;
            assert!(r["nodes"].as_u64().unwrap() >= 4, "libtorrent table: {r}");
        }
        for (d, _) in &ours {
            d.bootstrap().await.unwrap();
        }
        let lt_addrs: Vec<SocketAddr> = lt.iter().map(ScriptNode::addr).collect();
        let known = ours[0].0.find_node(NodeId([0; 20])).await.unwrap();
        eprintln!(
            "our node 0 sees {} libtorrent nodes among its closest",
            known.closest.iter().filter(|n| lt_addrs.contains(&n.addr)).count()
        );

        // libtorrent announces a torrent it has; we find it.
        let ih1 = [0x31u8; 20];
        let r = lt[0].call(serde_json::json!({"cmd": "add", "ih": hex(&ih1)})).await;
        let lt_peer = SocketAddr::from(([127, 0, 0, 1], r["port"].as_u64().unwrap() as u16));
        let mut found = false;
        for _ in 0..20 {
            if ours[5].0.get_peers(NodeId(ih1)).await.unwrap().contains(&lt_peer) {
                found = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(found, "libtorrent's announce of {lt_peer} not found");

        // We announce; libtorrent finds us.
        let ih2 = [0x32u8; 20];
        assert!(ours[3].0.announce(NodeId(ih2), Some(7102)).await.unwrap().stored >= 3);
        let r = lt[1].call(serde_json::json!({"cmd": "get_peers", "ih": hex(&ih2)})).await;
        assert!(r["peers"].as_array().unwrap().iter().any(|p| p == "127.0.0.1:7102"), "{r}");

        // Immutable items both ways.
        let r = lt[0].call(serde_json::json!({"cmd": "put", "v": "hello from lt"})).await;
        assert!(r["stored"].as_u64().unwrap() >= 1, "{r}");
        let target = unhex20(r["target"].as_str().unwrap());
        assert_eq!(ours[6].0.get_immutable(target).await.unwrap(), Some(b"13:hello from lt".to_vec()));
        let (target, stored) = ours[2].0.put_immutable(b"15:hello from rust".to_vec()).await.unwrap();
        assert!(stored >= 3);
        let r = lt[1].call(serde_json::json!({"cmd": "get", "target": hex(&target.0)})).await;
        assert_eq!(r["v"], "hello from rust");

        // Mutable items both ways, with salt.
        let seed = [0x4du8; 32];
        let key = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let r = lt[1]
            .call(serde_json::json!({"cmd": "put", "v": "mutable lt", "seed": hex(&seed), "k": hex(&key), "salt": "s1"}))
            .await;
        assert!(r["stored"].as_u64().unwrap() >= 1, "{r}");
        let item = ours[7].0.get_mutable(key, b"s1").await.unwrap().expect("the libtorrent item");
        assert_eq!(item.value, b"10:mutable lt");
        assert!(item.seq >= 1);

        let signer = SigningKey::from_bytes(&[0x7c; 32]);
        let item = MutableItem::sign(&signer, b"s2", 9, b"12:mutable rust".to_vec()).unwrap();
        assert!(ours[4].0.put_mutable(item, None).await.unwrap() >= 3);
        let k = signer.verifying_key().to_bytes();
        let r = lt[0].call(serde_json::json!({"cmd": "get", "k": hex(&k), "salt": "s2"})).await;
        assert_eq!((r["v"].as_str(), r["seq"].as_i64()), (Some("mutable rust"), Some(9)), "{r}");
    })
    .await
    .expect("finished in time");
}
