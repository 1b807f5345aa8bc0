#!/usr/bin/env python3
"""A libtorrent peer on loopback TCP, for the ut_metadata interop runs (run.sh).

  lt_peer.py seed v1|v2|hybrid OUT_DIR   seeds a 600-file torrent (metadata of several
                                         16 KiB pieces), writes OUT_DIR/expected-<flavour>.bin
                                         (the info dictionary), prints {"port", "hashes"} as
                                         JSON and seeds until stdin closes
  lt_peer.py fetch PORT MAGNET FILE      resolves the magnet from 127.0.0.1:PORT and exits 0
                                         when the metadata equals FILE
  lt_peer.py want                        leeches a new v1 torrent it has no data of, with no
                                         peer; prints {"port", "hashes"} and waits (for peers
                                         to come by PEX) until stdin closes
Works with libtorrent 2.0 and 2.1 bindings.
"""
import json
import os
import sys
import tempfile
import time
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import libtorrent as lt  # noqa: E402

SETTINGS = {
    "listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
    "enable_upnp": False, "enable_natpmp": False, "enable_outgoing_utp": False,
    "enable_incoming_utp": False, "alert_mask": 0,
    # Every peer here is 127.0.0.1.
    "allow_multiple_connections_per_ip": True,
}


def seed(flavour, out_dir):
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
    entry = ct.generate()
    ti = lt.torrent_info(entry)
    ses = lt.session(SETTINGS)
    params = lt.add_torrent_params()
    params.ti = ti
    params.save_path = tmp
    handle = ses.add_torrent(params)
    while not handle.status().is_seeding:
        time.sleep(0.05)
    ih = ti.info_hashes()
    hashes = []
    if ih.has_v1():
        hashes.append(str(ih.v1))
    if ih.has_v2():
        hashes.append(str(ih.v2))
    with open(os.path.join(out_dir, f"expected-{flavour}.bin"), "wb") as f:
        f.write(lt.bencode(entry[b"info"]))
    print(json.dumps({"port": ses.listen_port(), "hashes": hashes}), flush=True)
    sys.stdin.read()
    return 0


def fetch(port, uri, expected):
    ses = lt.session(SETTINGS)
    params = lt.parse_magnet_uri(uri)
    params.save_path = tempfile.mkdtemp()
    handle = ses.add_torrent(params)
    handle.connect_peer(("127.0.0.1", port))
    deadline = time.monotonic() + 30
    while not handle.status().has_metadata:
        if time.monotonic() > deadline:
            print("no metadata within 30 s", file=sys.stderr)
            return 1
        time.sleep(0.1)
    got = bytes(handle.torrent_file().info_section())
    with open(expected, "rb") as f:
        same = got == f.read()
    print("identical" if same else "DIFFERENT")
    return 0 if same else 1


def want():
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "wanted.bin"), "wb") as f:
        f.write(os.urandom(64 * 1024))
    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(tmp, "wanted.bin"))
    ct = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, tmp)
    ti = lt.torrent_info(ct.generate())
    ses = lt.session(SETTINGS)
    params = lt.add_torrent_params()
    params.ti = ti
    params.save_path = tempfile.mkdtemp()
    handle = ses.add_torrent(params)
    # Connections are refused until the (empty) files are checked and the torrent runs.
    while handle.status().state != lt.torrent_status.downloading:
        time.sleep(0.05)
    time.sleep(1)
    print(json.dumps({"port": ses.listen_port(), "hashes": [str(ti.info_hashes().v1)]}), flush=True)
    sys.stdin.read()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "want":
        sys.exit(want())
    if len(sys.argv) == 4 and sys.argv[1] == "seed":
        sys.exit(seed(sys.argv[2], sys.argv[3]))
    if len(sys.argv) == 5 and sys.argv[1] == "fetch":
        sys.exit(fetch(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
