"""Seeds a 600-file torrent (metadata of several 16 KiB pieces) with libtorrent on loopback.

Usage: lt_seed.py v1|v2|hybrid OUT_DIR. Writes OUT_DIR/expected-<flavour>.bin (the info
dictionary), prints {"port", "hashes", "size"} as JSON, and seeds until stdin closes.
"""
import json, os, sys, tempfile, time, warnings
warnings.simplefilter("ignore")
import libtorrent as lt
flavour, out_dir = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp()
root = os.path.join(tmp, "tree")
os.makedirs(root)
for i in range(600):
    with open(os.path.join(root, f"file-{i:04}.txt"), "wb") as f:
        f.write(os.urandom(1000 + i))
fs = lt.file_storage()
lt.add_files(fs, root)
flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}[flavour]
ct = lt.create_torrent(fs, 16384, flags=flags)
lt.set_piece_hashes(ct, tmp)
ti = lt.torrent_info(ct.generate())
ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                  "enable_upnp": False, "enable_natpmp": False, "enable_outgoing_utp": False,
                  "enable_incoming_utp": False, "alert_mask": 0})
p = lt.add_torrent_params(); p.ti = ti; p.save_path = tmp
h = ses.add_torrent(p)
while not h.status().is_seeding:
    time.sleep(0.05)
ih = ti.info_hashes()
hashes = []
if ih.has_v1(): hashes.append(str(ih.v1))
if ih.has_v2(): hashes.append(str(ih.v2))
info = lt.bencode(ct.generate()[b"info"])
with open(os.path.join(out_dir, f"expected-{flavour}.bin"), "wb") as f:
    f.write(info)
print(json.dumps({"port": ses.listen_port(), "hashes": hashes, "size": len(info)}), flush=True)
sys.stdin.read()
