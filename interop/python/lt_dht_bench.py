"""Many libtorrent DHT sessions on 127.0.0.1 in one process, for `cargo xtask bench dht`.

usage: lt_dht_bench.py SESSIONS BOOTSTRAP_HOST:PORT [...]
Session 0 is the one measured; the others bootstrap from the given nodes and from session 0.
Prints {"event": "ready", "ports": [...]} once every session listens. Commands (one JSON
object a line; each reply is one JSON line with the same "cmd"):
  {"cmd": "nodes"}                      -> {"nodes": [N, ...]}  (routing-table size of each)
  {"cmd": "add", "session": I, "ih": HEX} -> {}  (session I adds a torrent by info-hash and
      announces it to the DHT at its listen port)
  {"cmd": "lookup", "ih": HEX, "timeout": S}
      -> {"first_ms": T or null, "done_ms": T, "queries": N, "peers": N}
      (session 0 runs dht_get_peers: time to the first reply carrying peers, time until no
      get_peers lookup is active any more (dht_stats polled every 2 ms), get_peers queries sent (the
      session counter dht.dht_get_peers_out before and after), distinct peers found)
Exits when standard input closes. Works with libtorrent 2.0 bindings.
"""

import json
import sys
import tempfile
import time

import libtorrent as lt

import ltlib


def settings(boot):
    return {
        **ltlib.dht_settings(boot),
        "alert_mask": lt.alert.category_t.dht_notification
        | lt.alert.category_t.dht_operation_notification
        | lt.alert.category_t.stats_notification,
    }


def counter(ses, name, index):
    """One session counter, from a fresh session_stats_alert (None after 2 s)."""
    ses.post_session_stats()
    end = time.time() + 2
    while time.time() < end:
        ses.wait_for_alert(50)
        for a in ses.pop_alerts():
            if isinstance(a, lt.session_stats_alert):
                v = a.values
                return v[name] if isinstance(v, dict) else v[index]
    return None


def main():
    n = int(sys.argv[1])
    boot = ",".join(sys.argv[2:])
    first = lt.session(settings(boot))
    port0 = first.listen_port()
    sessions = [first] + [lt.session(settings(f"{boot},127.0.0.1:{port0}")) for _ in range(n - 1)]
    index = {m.name: m.value_index for m in lt.session_stats_metrics()}
    print(json.dumps({"event": "ready", "ports": [s.listen_port() for s in sessions]}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        c = json.loads(line)
        cmd = c["cmd"]
        reply = {"cmd": cmd}
        for s in sessions[1:]:
            s.pop_alerts()
        if cmd == "nodes":
            reply["nodes"] = [counter(s, "dht.dht_nodes", index["dht.dht_nodes"]) for s in sessions]
        elif cmd == "add":
            atp = lt.add_torrent_params()
            atp.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(c["ih"])))
            atp.save_path = tempfile.mkdtemp(prefix="lt_dht_bench_")
            sessions[c["session"]].add_torrent(atp)
        elif cmd == "lookup":
            ses = first
            ses.pop_alerts()
            name = "dht.dht_get_peers_out"
            before = counter(ses, name, index[name])
            ih = c["ih"]
            start = time.monotonic()
            ses.dht_get_peers(lt.sha1_hash(bytes.fromhex(ih)))
            first_ms = None
            peers = set()
            end = start + c.get("timeout", 30)
            done_ms = None
            while time.monotonic() < end:
                ses.post_dht_stats()
                ses.wait_for_alert(2)
                for a in ses.pop_alerts():
                    if isinstance(a, lt.dht_get_peers_reply_alert) and str(a.info_hash) == ih:
                        if first_ms is None and a.num_peers() > 0:
                            first_ms = (time.monotonic() - start) * 1000
                        peers.update(f"{ip}:{port}" for ip, port in a.peers())
                    elif isinstance(a, lt.dht_stats_alert):
                        # The stats request is queued behind dht_get_peers: the first
                        # stats without a get_peers lookup follow its end.
                        if not any(r["type"] == "get_peers" for r in a.active_requests):
                            done_ms = (time.monotonic() - start) * 1000
                if done_ms is not None:
                    break
                time.sleep(0.002)
            after = counter(ses, name, index[name])
            reply.update({
                "first_ms": first_ms,
                "done_ms": done_ms,
                "queries": after - before if before is not None and after is not None else None,
                "peers": len(peers),
            })
        else:
            reply["error"] = "unknown command"
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
