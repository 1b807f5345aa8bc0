#!/usr/bin/env python3
"""Create a .torrent with libtorrent and print what libtorrent reports about it (JSON).

Run with the interpreter whose libtorrent you want: /usr/bin/python3 (Debian, 2.0) or
interop/.venv/bin/python (PyPI wheel, 2.1).
"""

import argparse
import json
import sys

import ltlib


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="file or folder to share")
    ap.add_argument("-o", "--out", required=True, help="where to write the .torrent")
    ap.add_argument("--flavour", choices=sorted(ltlib.FLAVOURS), default="hybrid")
    ap.add_argument("--piece-length", type=int, default=0, help="0 = libtorrent's choice")
    ap.add_argument("--tracker", action="append", default=[], help="one tier per tracker")
    ap.add_argument("--web-seed", action="append", default=[])
    ap.add_argument("--comment")
    ap.add_argument("--creator")
    ap.add_argument("--private", action="store_true")
    ap.add_argument("--symlinks", action="store_true", help="record symlinks, do not follow")
    args = ap.parse_args()
    data = ltlib.create(
        args.path,
        args.flavour,
        args.piece_length,
        trackers=args.tracker,
        web_seeds=args.web_seed,
        comment=args.comment,
        creator=args.creator,
        private=args.private,
        symlinks=args.symlinks,
    )
    with open(args.out, "wb") as f:
        f.write(data)
    try:
        described = ltlib.describe(data)
    except RuntimeError as e:
        # libtorrent wrote a torrent that it refuses to load itself (it happens: see
        # interop/README.md). The file is kept for inspection.
        json.dump({"libtorrent": ltlib.version(), "error": str(e)}, sys.stdout)
        print()
        return 3
    json.dump(described, sys.stdout, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
