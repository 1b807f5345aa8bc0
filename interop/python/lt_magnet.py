#!/usr/bin/env python3
"""Print what libtorrent's parse_magnet_uri reads from a magnet link (JSON)."""

import json
import sys
import warnings

import libtorrent as lt

warnings.simplefilter("ignore", DeprecationWarning)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: lt_magnet.py MAGNET", file=sys.stderr)
        return 2
    p = lt.parse_magnet_uri(sys.argv[1])
    ih = p.info_hashes
    json.dump({
        "libtorrent": lt.__version__,
        "v1": str(ih.v1) if ih.has_v1() else None,
        "v2": str(ih.v2) if ih.has_v2() else None,
        "name": p.name or None,
        "trackers": list(p.trackers),
        "web_seeds": list(p.url_seeds),
    }, sys.stdout, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
