#!/usr/bin/env python3
"""Deterministic test trees shared by the fixture generator and `cargo xtask interop`.

Every tree is described by a manifest (see TREES) and its file contents come from a tiny
documented generator, so that any language can rebuild byte-identical trees:

    state = FNV-1a-64(UTF-8 bytes of the file's path inside its tree, '/'-separated)
    if state == 0: state = 1
    repeat: state ^= state << 13; state ^= state >> 7; state ^= state << 17   (all mod 2**64)
            emit the 8 bytes of state, little-endian
    the file is the first `length` bytes emitted

Usage:
    trees.py OUT_DIR [--only NAME ...]   write the trees under OUT_DIR/<tree name>
    trees.py --manifest                  print the manifest as JSON
"""

import argparse
import json
import os
import stat
import sys

MASK = (1 << 64) - 1

# name -> list of (path inside the tree, length, executable). A tree whose only entry has the
# path "" is a single file named after the tree.
TREES = {
    "single.bin": [("", 50_001, False)],
    "multi": [
        ("a.bin", 1, False),
        ("b.bin", 16_384, False),
        ("c.bin", 16_385, False),
        ("empty-1.txt", 0, False),
        ("d.bin", 40_000, False),
        ("e.txt", 5, False),
        ("zz-empty", 0, False),
    ],
    "nested": [
        ("a/b/c/deep.bin", 20_000, False),
        ("dir/x.txt", 300, False),
        ("dir-x", 100, False),
        ("dir.txt", 10, False),
        ("top.bin", 2 * 16_384 + 7, False),
    ],
    "ünïcødé": [
        ("日本語.txt", 1_234, False),
        ("emoji-🎉.bin", 17_000, False),
        ("Ωmega/файл.dat", 999, False),
        ("café/naïve.txt", 50, False),
    ],
    "attrs": [
        ("run.sh", 200, True),
        (".hidden", 100, False),
        ("data.bin", 3_000, False),
        ("bin/tool", 18_000, True),
    ],
}

# Trees only used by `cargo xtask interop` (not committed as fixtures): bigger files, so that
# larger piece lengths and many pieces per file are exercised too.
INTEROP_ONLY = {
    "big": [
        ("one.bin", 1_500_000, False),
        ("two.bin", 1_048_576, False),
        ("small.txt", 777, False),
    ],
}


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & MASK
    return h


def content(path: str, length: int) -> bytes:
    """The bytes of a file at `path` ('/'-separated, relative to its tree) of `length` bytes."""
    state = fnv1a64(path.encode("utf-8")) or 1
    out = bytearray()
    words = (length + 7) // 8
    for _ in range(words):
        state ^= (state << 13) & MASK
        state ^= state >> 7
        state ^= (state << 17) & MASK
        out += state.to_bytes(8, "little")
    return bytes(out[:length])


def all_trees():
    trees = dict(TREES)
    trees.update(INTEROP_ONLY)
    return trees


def write_tree(out_dir: str, name: str, entries) -> str:
    """Writes one tree and returns its path (a file for single-file trees)."""
    root = os.path.join(out_dir, name)
    for rel, length, executable in entries:
        path = root if rel == "" else os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content(rel if rel else name, length))
        mode = 0o755 if executable else 0o644
        os.chmod(path, mode)
    return root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--manifest", action="store_true")
    args = ap.parse_args()
    trees = all_trees()
    if args.manifest:
        json.dump(
            {n: [[p, l, x] for p, l, x in e] for n, e in trees.items()},
            sys.stdout,
            ensure_ascii=False,
            indent=1,
        )
        print()
        return 0
    if not args.out_dir:
        ap.error("OUT_DIR is required")
    for name, entries in trees.items():
        if args.only and name not in args.only:
            continue
        write_tree(args.out_dir, name, entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
