#!/usr/bin/env python3
"""Time libtorrent's create_torrent + set_piece_hashes + generate on one path, in process.

Prints {"libtorrent": version, "seconds": [...]} (one entry per run; interpreter start-up and
import are not counted).
"""

import argparse
import json
import os
import sys
import time

import ltlib
import libtorrent as lt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--flavour", choices=sorted(ltlib.FLAVOURS), default="hybrid")
    ap.add_argument("--piece-length", type=int, default=0)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    path = os.path.abspath(args.path)
    seconds = []
    for _ in range(args.runs):
        start = time.perf_counter()
        fs = lt.file_storage()
        lt.add_files(fs, path)
        ct = lt.create_torrent(fs, args.piece_length, flags=ltlib.FLAVOURS[args.flavour])
        lt.set_piece_hashes(ct, os.path.dirname(path))
        lt.bencode(ct.generate())
        seconds.append(time.perf_counter() - start)
    json.dump({"libtorrent": lt.__version__, "seconds": seconds}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
