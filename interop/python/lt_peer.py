#!/usr/bin/env python3
"""Run one libtorrent peer of a torrent on loopback TCP, for the engine's interop tests.

Prints JSON lines on stdout:
  {"port": N}                  once listening (the port other peers dial);
  {"seeding": true}            when the data is checked and complete (with --seed);
  {"done": true, ...}          when a download completes (without --seed), then exits 0.
With --seed it keeps seeding until stdin closes or --timeout passes. Exits 1 on timeout.
"""

import argparse
import json
import sys
import threading
import time

import libtorrent as lt


def say(obj):
    print(json.dumps(obj), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--torrent", help=".torrent file")
    source.add_argument("--magnet", help="magnet link: the metadata comes from peers (BEP 9)")
    ap.add_argument("--save", required=True, help="save path (the torrent's name goes under it)")
    ap.add_argument("--peer", action="append", default=[], help="HOST:PORT to dial")
    ap.add_argument("--seed", action="store_true", help="seed existing data")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "alert_mask": 0,
    })
    if args.magnet:
        params = lt.parse_magnet_uri(args.magnet)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    handle = ses.add_torrent(params)
    say({"port": ses.listen_port()})

    stdin_closed = threading.Event()
    if args.seed:
        def watch_stdin():
            sys.stdin.read()
            stdin_closed.set()
        threading.Thread(target=watch_stdin, daemon=True).start()

    deadline = time.monotonic() + args.timeout
    dialed = False
    announced_seeding = False
    while time.monotonic() < deadline:
        status = handle.status()
        checking = status.state in (lt.torrent_status.checking_files,
                                    lt.torrent_status.checking_resume_data)
        if not checking and not dialed:
            for peer in args.peer:
                host, port = peer.rsplit(":", 1)
                handle.connect_peer((host, int(port)))
            dialed = True
        if args.seed:
            if status.is_seeding and not announced_seeding:
                say({"seeding": True})
                announced_seeding = True
            if stdin_closed.is_set():
                say({"uploaded": status.all_time_upload})
                return 0
        elif status.is_seeding:
            say({"done": True, "downloaded": status.all_time_download,
                 "pieces": status.num_pieces})
            return 0
        time.sleep(0.05)
    status = handle.status()
    say({"timeout": True, "progress": status.progress, "peers": status.num_peers,
         "state": str(status.state)})
    return 1


if __name__ == "__main__":
    sys.exit(main())
