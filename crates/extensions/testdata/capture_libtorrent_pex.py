#!/usr/bin/python3
"""Captures a ut_pex message from libtorrent, for the decoding tests.

Run with Debian's interpreter (python3-libtorrent): `/usr/bin/python3 capture_libtorrent_pex.py`.
A libtorrent seeder S runs on loopback. A first raw TCP peer connects to it as a leecher
that listens on port 7777 (its extension handshake says `p`: 7777) and stays connected. A
second raw peer connects with ut_pex as id 1 and writes the first ut_pex payload S sends
(about a minute later; it names the first peer) to libtorrent-<version>-ut-pex.bin.
"""

import os
import socket
import struct
import sys
import tempfile
import threading
import time

import libtorrent as lt

HERE = os.path.dirname(os.path.abspath(__file__))


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed")
        buf += chunk
    return buf


def connect(port, info_hash, peer_id, ext_handshake):
    reserved = bytearray(8)
    reserved[5] |= 0x10
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(b"\x13BitTorrent protocol" + bytes(reserved) + info_hash + peer_id)
    read_exact(sock, 68)
    sock.sendall(struct.pack(">IBB", 2 + len(ext_handshake), 20, 0) + ext_handshake)
    return sock


def drain(sock):
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def main() -> int:
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "pex.bin")
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * 256)
    fs = lt.file_storage()
    lt.add_files(fs, path)
    ct = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, tmp)
    ti = lt.torrent_info(ct.generate())
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False, "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True, "alert_mask": 0,
    })
    params = lt.add_torrent_params()
    params.ti = ti
    params.save_path = tmp
    handle = ses.add_torrent(params)
    deadline = time.monotonic() + 20
    while not handle.status().is_seeding:
        if time.monotonic() > deadline:
            print("seeder never became ready", file=sys.stderr)
            return 1
        time.sleep(0.05)
    info_hash = bytes.fromhex(str(ti.info_hashes().v1))
    leecher = connect(ses.listen_port(), info_hash, b"-RW0100-pexleecher00",
                      b"d1:md6:ut_pexi1ee1:pi7777e1:v19:webtorrent-rs 0.1.0e")
    threading.Thread(target=drain, args=(leecher,), daemon=True).start()
    sock = connect(ses.listen_port(), info_hash, b"-RW0100-pexcapture00",
                   b"d1:md6:ut_pexi1ee1:pi6881e1:v19:webtorrent-rs 0.1.0e")
    version = lt.__version__.rsplit(".", 1)[0] if lt.__version__.count(".") > 2 else lt.__version__
    while True:
        (length,) = struct.unpack(">I", read_exact(sock, 4))
        if length == 0:
            continue
        body = read_exact(sock, length)
        if body[0] == 20 and body[1] == 1:
            with open(os.path.join(HERE, f"libtorrent-{version}-ut-pex.bin"), "wb") as f:
                f.write(body[2:])
            print("captured", version)
            return 0


if __name__ == "__main__":
    sys.exit(main())
