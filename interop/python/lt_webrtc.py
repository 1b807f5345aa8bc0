#!/usr/bin/env python3
"""One libtorrent 2.1 peer of a `cargo xtask interop` `webrtc-libtorrent21-*` scenario.

Run under interop/.venv/bin/python (libtorrent 2.1.1 from PyPI, built with WebTorrent
support, on by default). Adds one torrent, seeding the data found under --save or downloading
into it, and announces to the torrent's trackers: with ws:// trackers only, the peers it meets
are WebRTC peers (offers and answers through the tracker). TCP listens on 127.0.0.1 only; DHT,
LSD, UPnP, NAT-PMP and uTP are off. `webtorrent_stun_server` is --stun (default empty: no STUN
server; libtorrent's own default is Google's, unreachable here). Runs until stdin closes (then
it stops the torrent, which sends `stopped` to the trackers) or --timeout passes (exit 1).

stdout, JSON lines (t: milliseconds since the Unix epoch):
  {"port": N}                              TCP peers on 127.0.0.1:N
  {"event": "peer", "t", "type", "addr"}   a peer connection (peer_connect_alert); type
                                           "webrtc" when libtorrent marks it (RTC)
  {"event": "first-block", "t"}            the first payload byte received
  {"event": "first-upload", "t"}           the first payload byte served
  {"event": "complete", "t", "downloaded", "uploaded"}  every piece verified; printed once
stderr: alerts (tracker, peer, connect, error, status; --verbose adds the torrent and peer
logs) and a status line every second, for the scenario's failure report.
"""

import argparse
import json
import sys
import threading
import time

import libtorrent as lt


def say(obj):
    print(json.dumps({"t": int(time.time() * 1000), **obj}), flush=True)


def log(msg):
    print(f"{time.monotonic():.3f} {msg}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torrent", required=True, help=".torrent file")
    ap.add_argument("--save", required=True, help="save path (the torrent's name goes under it)")
    ap.add_argument("--stun", default="", help="webtorrent_stun_server (default: none)")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--verbose", action="store_true", help="torrent and peer logs on stderr")
    args = ap.parse_args()

    cat = lt.alert.category_t
    mask = (cat.error_notification | cat.tracker_notification | cat.connect_notification
            | cat.status_notification | cat.peer_notification)
    if args.verbose:
        mask |= cat.torrent_log_notification | cat.peer_log_notification
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "stop_tracker_timeout": 1,
        # Trackers on 127.0.0.1 are what the scenarios use.
        "ssrf_mitigation": False,
        "webtorrent_stun_server": args.stun,
        "alert_mask": mask,
    }
    ses = lt.session(settings)
    log(f"libtorrent {lt.__version__}, webtorrent_stun_server={args.stun!r}")
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save
    handle = ses.add_torrent(params)
    say({"port": ses.listen_port()})

    closed = threading.Event()

    def wait_stdin():
        for _ in sys.stdin:
            pass
        closed.set()

    threading.Thread(target=wait_stdin, daemon=True).start()

    deadline = time.monotonic() + args.timeout
    completed = first_byte = first_upload = False
    next_report = 0.0
    while time.monotonic() < deadline:
        for a in ses.pop_alerts():
            if isinstance(a, lt.peer_connect_alert):
                # libtorrent marks WebRTC connections "(RTC)" in the message.
                kind = "webrtc" if "(RTC)" in a.message() else "other"
                say({"event": "peer", "type": kind, "addr": f"{a.ip[0]}:{a.ip[1]}"})
            log(f"{a.what()}: {a.message()}")
        status = handle.status()
        if not first_byte and status.total_payload_download > 0:
            say({"event": "first-block"})
            first_byte = True
        if not first_upload and status.total_payload_upload > 0:
            say({"event": "first-upload"})
            first_upload = True
        if time.monotonic() >= next_report:
            peers = ", ".join(f"{p.ip[0]}:{p.ip[1]} flags={int(p.flags):#x}"
                              for p in handle.get_peer_info())
            log(f"status: {status.state} progress={status.progress:.4f} peers={status.num_peers}"
                f" down={status.all_time_download} up={status.all_time_upload} [{peers}]")
            next_report = time.monotonic() + 1.0
        if status.is_seeding and not completed:
            say({"event": "complete", "downloaded": status.total_payload_download,
                 "uploaded": status.total_payload_upload})
            completed = True
        if closed.is_set():
            handle.pause()
            ses.pause()
            time.sleep(0.2)
            return 0
        time.sleep(0.05)
    status = handle.status()
    say({"event": "timeout", "progress": status.progress, "peers": status.num_peers,
         "state": str(status.state)})
    return 1


if __name__ == "__main__":
    sys.exit(main())
