"""LSD peer for the interop test: libtorrent 2.0 listening on 127.0.0.1 with LSD on.

Usage: lt_lsd.py INFO_HASH_HEX SAVE_DIR SECONDS
Prints "port N" once listening, then "lsd-peer IP:PORT" for each peer LSD reports for
the torrent (from libtorrent's log), and exits after SECONDS.
"""
import re
import sys
import time

import libtorrent as lt

info_hash, save, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_lsd": True,
    "enable_dht": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "alert_mask": lt.alert_category.all,
})
deadline = time.time() + 10
while ses.listen_port() == 0 and time.time() < deadline:
    time.sleep(0.05)
print("port", ses.listen_port(), flush=True)
params = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + info_hash)
params.save_path = save
ses.add_torrent(params)
# libtorrent logs "<== LSD: 127.0.0.1:6881 ih: <hex>" for every peer it accepts.
peer = re.compile(r"<== LSD: (\S+) ih: ([0-9a-f]{40})")
end = time.time() + seconds
while time.time() < end:
    ses.wait_for_alert(200)
    for alert in ses.pop_alerts():
        m = peer.search(alert.message())
        if m and m.group(2) == info_hash:
            print("lsd-peer", m.group(1), flush=True)
