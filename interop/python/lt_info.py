#!/usr/bin/env python3
"""Print what libtorrent reports about .torrent files (one JSON object per line)."""

import json
import sys

import ltlib


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: lt_info.py TORRENT...", file=sys.stderr)
        return 2
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            data = f.read()
        json.dump(ltlib.describe(data), sys.stdout, ensure_ascii=False)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
