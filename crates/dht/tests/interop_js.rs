//! Interop with the JS `bittorrent-dht` package (interop/node/dht_peer.mjs) on
//! loopback: a DHT of our nodes and JS nodes; each side finds the peers the other
//! announced and reads the BEP 44 items (immutable and mutable) the other put.
//!
//! Skipped, with the reason printed, when `node` or the package is missing.
#![cfg(feature = "tokio")]

use std::net::SocketAddr;
use std::process::Stdio;

use webtorrent_dht::{MutableItem, NodeId, SigningKey};

mod common;

use common::{LIMIT, ScriptNode, hex, interop_dir, our_nodes, unhex20};

fn missing() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node {
        eprintln!("skipped: `node` is not installed");
        return true;
    }
    if !interop_dir()
        .join("node_modules/bittorrent-dht/package.json")
        .exists()
    {
        eprintln!("skipped: interop/node_modules/bittorrent-dht is missing (npm ci in interop/)");
        return true;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bittorrent_dht_and_we_share_peers_and_items() {
    if missing() {
        return;
    }
    tokio::time::timeout(LIMIT, async {
        let ours = our_nodes(8).await;
        let boot = ours[0].0.local_addr_v4().unwrap();
        let mut js = Vec::new();
        for _ in 0..3 {
            js.push(ScriptNode::spawn("node", "node/dht_peer.mjs", boot).await);
        }
        for j in &mut js {
            let r = j.call(serde_json::json!({"cmd": "bootstrap"})).await;
            assert!(r["nodes"].as_u64().unwrap() >= 3, "JS table: {r}");
        }
        for (d, _) in &ours {
            d.bootstrap().await.unwrap();
        }
        let js_addrs: Vec<SocketAddr> = js.iter().map(ScriptNode::addr).collect();
        let known = ours[0].0.find_node(NodeId([0; 20])).await.unwrap();
        eprintln!("our node 0 sees {} of its closest from JS", known.closest.iter().filter(|n| js_addrs.contains(&n.addr)).count());

        // JS announces; we find it.
        let ih1 = [0x11u8; 20];
        js[0].call(serde_json::json!({"cmd": "announce", "ih": hex(&ih1), "port": 7001})).await;
        let peers = ours[5].0.get_peers(NodeId(ih1)).await.unwrap();
        assert!(peers.contains(&"127.0.0.1:7001".parse().unwrap()), "{peers:?}");

        // We announce; JS finds us.
        let ih2 = [0x22u8; 20];
        assert!(ours[3].0.announce(NodeId(ih2), Some(7002)).await.unwrap().stored >= 3);
        let r = js[1].call(serde_json::json!({"cmd": "lookup", "ih": hex(&ih2)})).await;
        assert!(r["peers"].as_array().unwrap().iter().any(|p| p == "127.0.0.1:7002"), "{r}");

        // Immutable items both ways.
        let r = js[2].call(serde_json::json!({"cmd": "put", "v": "hello from js"})).await;
        assert!(r["stored"].as_u64().unwrap() >= 1, "{r}");
        let target = unhex20(r["target"].as_str().unwrap());
        assert_eq!(ours[6].0.get_immutable(target).await.unwrap(), Some(b"13:hello from js".to_vec()));
        let (target, stored) = ours[2].0.put_immutable(b"15:hello from rust".to_vec()).await.unwrap();
        assert!(stored >= 3);
        let r = js[0].call(serde_json::json!({"cmd": "get", "target": hex(&target.0)})).await;
        assert_eq!(r["v"], "hello from rust");

        // Mutable items both ways, with salt.
        let seed = [0x5au8; 32];
        let r = js[1]
            .call(serde_json::json!({"cmd": "put", "v": "mutable js", "seed": hex(&seed), "seq": 4, "salt": "s1"}))
            .await;
        assert!(r["stored"].as_u64().unwrap() >= 1, "{r}");
        let key = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let item = ours[7].0.get_mutable(key, b"s1").await.unwrap().expect("the JS item");
        assert_eq!((item.seq, item.value.as_slice()), (4, &b"10:mutable js"[..]));

        let signer = SigningKey::from_bytes(&[0x6b; 32]);
        let item = MutableItem::sign(&signer, b"s2", 9, b"12:mutable rust".to_vec()).unwrap();
        let target = item.target();
        assert!(ours[4].0.put_mutable(item, None).await.unwrap() >= 3);
        let r = js[2].call(serde_json::json!({"cmd": "get", "target": hex(&target.0), "salt": "s2"})).await;
        assert_eq!((r["v"].as_str(), r["seq"].as_i64()), (Some("mutable rust"), Some(9)), "{r}");
    })
    .await
    .expect("finished in time");
}
