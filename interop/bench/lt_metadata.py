#!/usr/bin/env python3
"""Seed torrents with libtorrent on loopback and time libtorrent fetching their metadata.

Used by `cargo xtask bench magnet` (docs/benchmarks/magnet.md). One libtorrent session seeds
every --torrent (its data under --save) on 127.0.0.1, TCP only, DHT/LSD/UPnP/NAT-PMP off.
Prints JSON lines on stdout:
  {"port": N}                       once listening;
  {"ready": true}                   once every torrent is checked and seeding;
then reads commands from stdin, one a line:
  fetch TICK_MS MAGNET              a fresh libtorrent session (the leecher) adds MAGNET and
                                    waits for metadata_received_alert; prints
                                    {"seconds": S, "metadata_bytes": N} (S from add_torrent
                                    to the alert) or {"error": ...}. TICK_MS > 0 sets the
                                    leecher's tick_interval (default 500 ms: libtorrent dials
                                    new peers on its ticks);
and exits at the end of stdin.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time

import libtorrent as lt


def say(obj):
    print(json.dumps(obj), flush=True)


def settings(extra_mask=0, tick_ms=0):
    s = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "alert_mask": extra_mask,
    }
    if tick_ms > 0:
        s["tick_interval"] = tick_ms
    return s


def fetch(magnet, tick_ms, timeout):
    ses = lt.session(settings(lt.alert.category_t.status_notification
                              | lt.alert.category_t.error_notification, tick_ms))
    scratch = tempfile.mkdtemp(prefix="lt-metadata-")
    params = lt.parse_magnet_uri(magnet)
    params.save_path = scratch
    # Metadata only: no piece is requested once it arrives.
    params.flags |= lt.torrent_flags.upload_mode
    started = time.monotonic()
    handle = ses.add_torrent(params)
    deadline = started + timeout
    result = None
    while result is None and time.monotonic() < deadline:
        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            if isinstance(a, lt.metadata_received_alert):
                took = time.monotonic() - started
                ti = handle.torrent_file()
                size = len(ti.info_section()) if ti is not None else 0
                result = {"seconds": took, "metadata_bytes": size}
                break
            if isinstance(a, lt.metadata_failed_alert):
                result = {"error": a.message()}
                break
    if result is None:
        result = {"error": "timed out", "peers": handle.status().num_peers}
    ses.remove_torrent(handle)
    # The session's disk threads may still create the torrent's files: the folder goes
    # once the session is gone.
    del handle
    del ses
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torrent", action="append", required=True, help=".torrent to seed")
    ap.add_argument("--save", required=True, help="the folder holding the torrents' data")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds for each step")
    args = ap.parse_args()

    ses = lt.session(settings())
    handles = []
    for path in args.torrent:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(path)
        params.save_path = args.save
        handles.append(ses.add_torrent(params))
    say({"port": ses.listen_port()})
    deadline = time.monotonic() + args.timeout
    while not all(h.status().is_seeding for h in handles):
        if time.monotonic() > deadline:
            say({"error": "the seeder's data did not check complete",
                 "progress": [h.status().progress for h in handles]})
            return 1
        time.sleep(0.05)
    say({"ready": True})

    for line in sys.stdin:
        words = line.split(maxsplit=2)
        if len(words) == 3 and words[0] == "fetch" and words[1].isdigit():
            say(fetch(words[2].strip(), int(words[1]), args.timeout))
        elif words:
            say({"error": "unknown command " + words[0]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
