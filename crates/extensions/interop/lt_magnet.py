"""Resolves a magnet link with libtorrent from one peer on loopback.

Usage: lt_magnet.py PORT MAGNET EXPECTED_INFO_FILE. Exits 0 when the metadata libtorrent
received is byte for byte the expected info dictionary.
"""
import sys, tempfile, time, warnings
warnings.simplefilter("ignore")
import libtorrent as lt
port, uri, expected = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                  "enable_upnp": False, "enable_natpmp": False, "enable_outgoing_utp": False,
                  "enable_incoming_utp": False, "alert_mask": 0})
p = lt.parse_magnet_uri(uri)
p.save_path = tempfile.mkdtemp()
h = ses.add_torrent(p)
h.connect_peer(("127.0.0.1", port))
deadline = time.monotonic() + 30
while not h.status().has_metadata:
    if time.monotonic() > deadline:
        print("no metadata"); sys.exit(1)
    time.sleep(0.1)
ti = h.torrent_file()
got = ti.info_section()
with open(expected, "rb") as f:
    ok = bytes(got) == f.read()
print("has_metadata", len(got), "identical" if ok else "DIFFERENT")
sys.exit(0 if ok else 1)
