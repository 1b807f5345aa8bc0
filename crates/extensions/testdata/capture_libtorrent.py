#!/usr/bin/python3
"""Captures what libtorrent sends on the extension protocol, for the decoding tests.

Run with Debian's interpreter (python3-libtorrent): `/usr/bin/python3 capture_libtorrent.py`.
It seeds a small v1 torrent on loopback, dials it with a raw TCP handshake that sets the
extension bit, sends our extension handshake (ut_metadata as id 3) and a ut_metadata request
for piece 0 (under libtorrent's id for it), and writes the payloads (after the extended id byte) it gets back:
  libtorrent-<version>-ext-handshake.bin    libtorrent's extension handshake
  libtorrent-<version>-ut-metadata-data.bin its answer to the request (dict + piece bytes)
  libtorrent-<version>-info.bin             the torrent's info dict, to check the answer
"""

import os
import socket
import struct
import sys
import tempfile
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


def main() -> int:
    tmp = tempfile.mkdtemp()
    data_path = os.path.join(tmp, "capture.bin")
    with open(data_path, "wb") as f:
        f.write(bytes(range(256)) * 300)  # 76800 bytes
    fs = lt.file_storage()
    lt.add_files(fs, data_path)
    ct = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, tmp)
    ti = lt.torrent_info(ct.generate())
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False, "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "alert_mask": 0,
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
    reserved = bytearray(8)
    reserved[5] |= 0x10
    sock = socket.create_connection(("127.0.0.1", ses.listen_port()), timeout=10)
    sock.sendall(b"\x13BitTorrent protocol" + bytes(reserved) + info_hash + b"-RW0100-capture00000")
    read_exact(sock, 68)
    ours = b"d1:md11:ut_metadatai3ee1:v19:webtorrent-rs 0.1.0e"
    sock.sendall(struct.pack(">IBB", 2 + len(ours), 20, 0) + ours)
    version = lt.__version__.rsplit(".", 1)[0] if lt.__version__.count(".") > 2 else lt.__version__
    got_handshake = got_data = False
    while not (got_handshake and got_data):
        (length,) = struct.unpack(">I", read_exact(sock, 4))
        if length == 0:
            continue
        body = read_exact(sock, length)
        if body[0] != 20:
            continue
        if body[1] == 0:
            with open(os.path.join(HERE, f"libtorrent-{version}-ext-handshake.bin"), "wb") as f:
                f.write(body[2:])
            got_handshake = True
            their_id = lt.bdecode(body[2:])[b"m"][b"ut_metadata"]
            request = b"d8:msg_typei0e5:piecei0ee"
            sock.sendall(struct.pack(">IBB", 2 + len(request), 20, their_id) + request)
        elif body[1] == 3:
            with open(os.path.join(HERE, f"libtorrent-{version}-ut-metadata-data.bin"), "wb") as f:
                f.write(body[2:])
            got_data = True
    with open(os.path.join(HERE, f"libtorrent-{version}-info.bin"), "wb") as f:
        f.write(lt.bencode(ct.generate()[b"info"]))
    print("captured", version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
