#!/usr/bin/env python3
"""A libtorrent peer tuned for throughput, driven by `cargo xtask bench download`.

Loopback TCP only (no uTP, DHT, LSD, UPnP, NAT-PMP), libtorrent's `high_performance_seed`
preset (3 MiB send buffer watermark, 7 MiB of queued disk bytes, deep request queues), no
rate limits, several connections per IP allowed, one hashing thread per core.

Prints JSON lines on stdout, in this order:
  {"listening": PORT}        the session is up (the torrent is not added yet);
  {"ready": true}            seeder (--seed): the data is checked and complete;
  {"done": true, ...}        leecher: every piece is downloaded and verified.
Then it keeps running (a leecher keeps seeding) until stdin closes, prints
{"bye": true, "uploaded": N, "downloaded": N} and exits 0. Exits 1 after --timeout seconds
without reaching "ready"/"done".

Also `lt_throughput.py --create TREE --out X.torrent --piece-length N`: writes a v1 torrent of the
folder TREE (files sorted like the v2 file tree, no pad files) and exits.
"""

import argparse
import json
import os
import sys
import threading
import time

import libtorrent as lt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import ltlib  # noqa: E402  (shared helpers of the interop drivers)


def say(obj):
    print(json.dumps(obj), flush=True)


def settings(overrides):
    s = dict(lt.high_performance_seed())
    s.update({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": 0,
        "download_rate_limit": 0,
        "hashing_threads": max(1, os.cpu_count() or 1),
        "alert_mask": lt.alert.category_t.status_notification
        | lt.alert.category_t.error_notification,
    })
    for item in overrides:
        key, _, value = item.partition("=")
        old = s.get(key, lt.default_settings().get(key))
        if isinstance(old, bool):
            s[key] = value.lower() in ("1", "true", "yes")
        elif isinstance(old, int):
            s[key] = int(value)
        else:
            s[key] = value
    return s


def run_peer(args) -> int:
    ses = lt.session(settings(args.setting))
    say({"listening": ses.listen_port()})

    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    # Not queued behind other torrents, not paused: start at once.
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    handle = ses.add_torrent(params)

    stdin_closed = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stdin_closed.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    deadline = time.monotonic() + args.timeout
    checked = False
    dialed = False
    reached = False
    while not stdin_closed.is_set():
        ses.wait_for_alert(20)
        for a in ses.pop_alerts():
            if isinstance(a, lt.torrent_checked_alert):
                checked = True
            elif isinstance(a, lt.torrent_error_alert):
                say({"error": a.message()})
        if not checked:
            st = handle.status()
            checked = st.state not in (lt.torrent_status.checking_files,
                                       lt.torrent_status.checking_resume_data)
        if checked and not reached:
            st = handle.status()
            if args.seed:
                if st.is_seeding:
                    say({"ready": True})
                    reached = True
            else:
                if not dialed:
                    for peer in args.peer:
                        host, port = peer.rsplit(":", 1)
                        handle.connect_peer((host, int(port)))
                    dialed = True
                if st.is_seeding:
                    say({"done": True, "pieces": st.num_pieces,
                         "downloaded": st.total_payload_download})
                    reached = True
        if not reached and time.monotonic() > deadline:
            st = handle.status()
            say({"timeout": True, "progress": st.progress, "peers": st.num_peers,
                 "state": str(st.state)})
            return 1
    st = handle.status()
    say({"bye": True, "uploaded": st.total_payload_upload,
         "downloaded": st.total_payload_download})
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torrent", help=".torrent file")
    ap.add_argument("--save", help="save path (the torrent's name goes under it)")
    ap.add_argument("--peer", action="append", default=[], help="HOST:PORT to dial")
    ap.add_argument("--seed", action="store_true", help="seed existing data")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                    help="override one libtorrent setting (for experiments)")
    ap.add_argument("--create", metavar="TREE", help="create a v1 torrent of TREE and exit")
    ap.add_argument("--out", help="with --create: the .torrent to write")
    ap.add_argument("--piece-length", type=int, default=1 << 20)
    args = ap.parse_args()
    if args.create:
        if not args.out:
            ap.error("--create needs --out")
        data = ltlib.create(args.create, "v1", args.piece_length)
        with open(args.out, "wb") as f:
            f.write(data)
        say({"created": args.out, "libtorrent": ltlib.version()})
        return 0
    if not args.torrent or not args.save:
        ap.error("--torrent and --save are required")
    return run_peer(args)


if __name__ == "__main__":
    sys.exit(main())
