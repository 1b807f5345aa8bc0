"""A libtorrent DHT node on 127.0.0.1 driven by JSON lines on standard input, for the dht
crate's interop tests.

usage: lt_dht.py BOOTSTRAP_HOST:PORT [...]
Prints {"event": "ready", "port": N} once the DHT runs. Commands (one JSON object a line; each
reply is one JSON line with the same "cmd"):
  {"cmd": "wait_nodes", "min": N}                  -> {"nodes": N}  (waits up to 20 s)
  {"cmd": "add", "ih": HEX}                        -> {"port": N}  (adds a torrent by info-hash,
      which libtorrent announces to the DHT at its listen port; the Python bindings of 2.0
      cannot call dht_announce, whose flags type they do not export)
  {"cmd": "seed", "torrent": PATH, "save": DIR}   -> {"port": N}  (once checked and seeding;
      announced to the DHT at the listen port N)
  {"cmd": "download", "magnet": URI, "save": DIR}  -> {"done": true, "peers": [...]}  (when
      complete; the peers it was connected to)
  {"cmd": "get_peers", "ih": HEX}                  -> {"peers": ["ip:port", ...]}
  {"cmd": "put", "v": TEXT}                        -> {"target": HEX, "stored": N}  (immutable)
  {"cmd": "put", "v": TEXT, "seed": HEX, "k": HEX, "salt": TEXT}  -> {"stored": N}  (mutable;
      libtorrent picks seq = the current one + 1)
  {"cmd": "get", "target": HEX}                    -> {"v": TEXT or null}  (immutable)
  {"cmd": "get", "k": HEX, "salt": TEXT}           -> {"v": TEXT or null, "seq": N}  (mutable)
Exits when standard input closes. Works with libtorrent 2.0 bindings.
"""

import hashlib
import json
import os
import sys
import tempfile
import time

import libtorrent as lt

import ltlib

TIMEOUT = 30
DEBUG = bool(os.environ.get("LT_DHT_DEBUG"))


def secret_key(seed: bytes) -> bytes:
    """The 64-byte ed25519 secret key libtorrent signs with: SHA-512 of the seed, clamped."""
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return bytes(h)


def text(item):
    """The string value of an item alert's entry (the bindings give {"key", "value"} or bytes)."""
    if isinstance(item, dict) and "value" in item:
        item = item["value"]
    return item.decode() if isinstance(item, bytes) else item


def main():
    boot = ",".join(sys.argv[1:])
    ses = lt.session({
        **ltlib.dht_settings(boot),
        "alert_mask": lt.alert.category_t.dht_notification
        | lt.alert.category_t.dht_operation_notification
        | lt.alert.category_t.error_notification
        | (lt.alert.category_t.dht_log_notification if DEBUG else 0),
    })

    def wait_for(pred):
        end = time.time() + TIMEOUT
        while time.time() < end:
            ses.wait_for_alert(200)
            for a in ses.pop_alerts():
                if DEBUG:
                    print(f"lt_dht: {type(a).__name__}: {a.message()}", file=sys.stderr)
                r = pred(a)
                if r is not None:
                    return r
        return None

    def node_count():
        ses.post_dht_stats()

        def pred(a):
            if isinstance(a, lt.dht_stats_alert):
                return sum(b["num_nodes"] for b in a.routing_table)
            return None
        return wait_for(pred) or 0

    print(json.dumps({"event": "ready", "port": ses.listen_port()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        c = json.loads(line)
        cmd = c["cmd"]
        reply = {"cmd": cmd}
        if cmd == "wait_nodes":
            end = time.time() + 20
            n = node_count()
            while n < c["min"] and time.time() < end:
                time.sleep(0.3)
                n = node_count()
            reply["nodes"] = n
        elif cmd == "add":
            atp = lt.add_torrent_params()
            atp.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(c["ih"])))
            atp.save_path = tempfile.mkdtemp(prefix="lt_dht_")
            ses.add_torrent(atp)
            reply["port"] = ses.listen_port()
        elif cmd == "seed":
            atp = lt.add_torrent_params()
            atp.ti = lt.torrent_info(c["torrent"])
            atp.save_path = c["save"]
            h = ses.add_torrent(atp)
            end = time.time() + TIMEOUT
            while time.time() < end and not h.status().is_seeding:
                time.sleep(0.1)
            reply["port"] = ses.listen_port() if h.status().is_seeding else None
        elif cmd == "download":
            atp = lt.parse_magnet_uri(c["magnet"])
            atp.save_path = c["save"]
            h = ses.add_torrent(atp)
            end = time.time() + c.get("timeout", TIMEOUT)
            peers = set()
            while time.time() < end and not h.status().is_seeding:
                for p in h.get_peer_info():
                    peers.add(f"{p.ip[0]}:{p.ip[1]}")
                time.sleep(0.1)
            for p in h.get_peer_info():
                peers.add(f"{p.ip[0]}:{p.ip[1]}")
            reply["done"] = h.status().is_seeding
            reply["peers"] = sorted(peers)
        elif cmd == "get_peers":
            ih = lt.sha1_hash(bytes.fromhex(c["ih"]))
            ses.dht_get_peers(ih)
            peers = wait_for(lambda a: a.peers() if isinstance(a, lt.dht_get_peers_reply_alert)
                             and str(a.info_hash) == c["ih"] else None)
            reply["peers"] = [f"{ip}:{port}" for ip, port in (peers or [])]
        elif cmd == "put" and "seed" not in c:
            v = c["v"].encode()
            target = ses.dht_put_immutable_item(v)
            n = wait_for(lambda a: a.num_success if isinstance(a, lt.dht_put_alert) else None)
            reply["target"] = str(target)
            reply["stored"] = n or 0
        elif cmd == "put":
            sk = secret_key(bytes.fromhex(c["seed"]))
            pk = bytes.fromhex(c["k"])
            ses.dht_put_mutable_item(sk, pk, c["v"].encode(), c.get("salt", "").encode())
            n = wait_for(lambda a: a.num_success if isinstance(a, lt.dht_put_alert) else None)
            reply["stored"] = n or 0
        elif cmd == "get" and "k" not in c:
            ses.dht_get_immutable_item(lt.sha1_hash(bytes.fromhex(c["target"])))
            item = wait_for(lambda a: a if isinstance(a, lt.dht_immutable_item_alert) else None)
            reply["v"] = text(item.item) if item is not None else None
        elif cmd == "get":
            ses.dht_get_mutable_item(bytes.fromhex(c["k"]), c.get("salt", "").encode())
            item = wait_for(lambda a: a if isinstance(a, lt.dht_mutable_item_alert)
                            and a.authoritative else None)
            reply["v"] = text(item.item) if item is not None else None
            reply["seq"] = item.seq if item is not None else None
        else:
            reply["error"] = "unknown command"
        print(json.dumps(reply, default=str), flush=True)


if __name__ == "__main__":
    main()
