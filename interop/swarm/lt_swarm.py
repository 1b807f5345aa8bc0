#!/usr/bin/env python3
"""One libtorrent peer of a `cargo xtask interop` swarm, magnet or pex scenario, on loopback TCP.

Adds one torrent (seeding the data found under --save, or downloading into it) and announces
to the torrent's trackers, if any. The torrent is a .torrent file (--torrent) or a magnet link
(--magnet: the metadata is fetched from peers over ut_metadata, e.g. the magnet's x.pe peers
or the ones dialed with `connect`). Options: --no-pex leaves out the ut_pex extension (the
peer neither sends nor reads peer exchange messages); --download-limit caps the torrent's
download rate; --peer-log adds the extension handshakes and PEX messages peers send to the
stderr log. Runs until stdin closes (then it stops the torrent, which sends `stopped` to the
trackers) or --timeout passes (exit 1).

stdin, one command per line:
  connect HOST:PORT          dial a peer (once the data is checked)
stdout, JSON lines:
  {"port": N}                listening for peers on 127.0.0.1:N
  {"complete": true, ...}    every piece is verified (seeding); printed once
stderr: tracker, peer and error alerts and a status line every second, for the scenario's
failure report.
"""

import argparse
import json
import queue
import sys
import threading
import time

import libtorrent as lt


def say(obj):
    print(json.dumps(obj), flush=True)


def log(msg):
    print(f"{time.monotonic():.3f} {msg}", file=sys.stderr, flush=True)


def read_commands(commands, closed):
    for line in sys.stdin:
        line = line.strip()
        if line:
            commands.put(line)
    closed.set()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--torrent", help=".torrent file")
    source.add_argument("--magnet", help="magnet link (the metadata comes from peers)")
    ap.add_argument("--save", required=True, help="save path (the torrent's name goes under it)")
    ap.add_argument("--port", type=int, default=0, help="peer port on 127.0.0.1 (0: any)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--no-pex", action="store_true", help="without the ut_pex extension")
    ap.add_argument("--peer-log", action="store_true",
                    help="log the extension handshakes and PEX messages peers send (stderr)")
    ap.add_argument("--download-limit", type=int, default=0,
                    help="the torrent's download rate limit in bytes/s (0: none)")
    args = ap.parse_args()

    cat = lt.alert.category_t
    settings = {
        "listen_interfaces": f"127.0.0.1:{args.port}",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "stop_tracker_timeout": 1,
        # Trackers on 127.0.0.1 are what the scenarios use.
        "ssrf_mitigation": False,
        "alert_mask": cat.error_notification | cat.tracker_notification
        | cat.connect_notification | cat.status_notification,
    }
    if args.peer_log:
        settings["alert_mask"] |= cat.peer_log_notification
    if args.no_pex:
        # The default plugins but ut_pex.
        ses = lt.session(settings, 0)
        ses.add_extension("ut_metadata")
        ses.add_extension("smart_ban")
    else:
        ses = lt.session(settings)
    if args.magnet:
        params = lt.parse_magnet_uri(args.magnet)
    else:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    handle = ses.add_torrent(params)
    if args.download_limit > 0:
        # A torrent's own limit applies to loopback peers too (the session's does not).
        handle.set_download_limit(args.download_limit)
    say({"port": ses.listen_port()})

    commands = queue.Queue()
    closed = threading.Event()
    threading.Thread(target=read_commands, args=(commands, closed), daemon=True).start()

    deadline = time.monotonic() + args.timeout
    pending = []
    completed = False
    next_report = 0.0
    while time.monotonic() < deadline:
        for a in ses.pop_alerts():
            if isinstance(a, lt.peer_log_alert):
                # Only what peers send about extensions: the rest is noise here.
                msg = a.message()
                if "EXTENDED_HANDSHAKE" not in msg and "PEX" not in msg:
                    continue
            log(f"{a.what()}: {a.message()}")
        while not commands.empty():
            pending.append(commands.get())
        status = handle.status()
        checking = status.state in (lt.torrent_status.checking_files,
                                    lt.torrent_status.checking_resume_data)
        if not checking:
            for command in pending:
                verb, _, arg = command.partition(" ")
                if verb == "connect":
                    host, port = arg.rsplit(":", 1)
                    log(f"dialing {host}:{port}")
                    handle.connect_peer((host, int(port)))
                else:
                    log(f"unknown command {command!r}")
            pending.clear()
        if time.monotonic() >= next_report:
            log(f"status: {status.state} progress={status.progress:.4f} peers={status.num_peers}"
                f" down={status.all_time_download} up={status.all_time_upload}")
            next_report = time.monotonic() + 1.0
        if status.is_seeding and not completed:
            say({"complete": True, "downloaded": status.all_time_download,
                 "uploaded": status.all_time_upload})
            completed = True
        if closed.is_set():
            handle.pause()
            ses.pause()
            time.sleep(0.2)
            return 0
        time.sleep(0.05)
    status = handle.status()
    say({"timeout": True, "progress": status.progress, "peers": status.num_peers,
         "state": str(status.state)})
    return 1


if __name__ == "__main__":
    sys.exit(main())
