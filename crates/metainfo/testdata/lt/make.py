#!/usr/bin/env python3
"""Writes the libtorrent fixtures of this folder (symlink trees, which testdata/real lacks).

Run from this folder with libtorrent 2.0 (Debian python3-libtorrent) and 2.1 (PyPI wheel):
    /usr/bin/python3 make.py
    /path/to/venv-with-libtorrent-2.1/bin/python make.py
The tree is rebuilt by tests/create_symlinks.rs in a temporary folder:

    links/d/real        1000 bytes: byte i is i % 251
    links/d/sub/inner   20000 bytes: byte i is (i * 7) % 256
    links/top.txt       5 bytes "hello"
    links/link_file  -> d/real
    links/link_dir   -> d
    links/d/sub/up   -> ../real         (relative to its folder: links/d/real)

Outputs links.<mode>.<flavour>.<lt20|lt21>.torrent with mode "symlinks" (create_torrent.symlinks: links
stored as BEP 47 symlinks; v2 and hybrid only) or "follow" (libtorrent's default: links
followed), flavour v1 (files handed to libtorrent sorted per path component), v2 or hybrid,
16 KiB pieces.
"""

import os
import shutil
import tempfile

import warnings

import libtorrent as lt

warnings.simplefilter("ignore", DeprecationWarning)

FLAVOURS = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}


def build(root):
    os.makedirs(os.path.join(root, "d", "sub"))
    with open(os.path.join(root, "d", "real"), "wb") as f:
        f.write(bytes(i % 251 for i in range(1000)))
    with open(os.path.join(root, "d", "sub", "inner"), "wb") as f:
        f.write(bytes((i * 7) % 256 for i in range(20000)))
    with open(os.path.join(root, "top.txt"), "wb") as f:
        f.write(b"hello")
    for p in ("d/real", "d/sub/inner", "top.txt"):
        os.chmod(os.path.join(root, p), 0o644)
    os.symlink("d/real", os.path.join(root, "link_file"))
    os.symlink("d", os.path.join(root, "link_dir"))
    os.symlink("../real", os.path.join(root, "d", "sub", "up"))


def key(path):
    return [c.encode() for c in path.split(os.sep)]


def main():
    tmp = tempfile.mkdtemp()
    try:
        root = os.path.join(tmp, "links")
        build(root)
        for mode in ("symlinks", "follow"):
            for flavour, flags in FLAVOURS.items():
                if mode == "symlinks" and flavour == "v1":
                    # Re-adding entries in sorted order (below) would pass libtorrent its
                    # own internal symlink form (prefixed with the torrent name), which is
                    # not what its creator writes: no v1 fixture for stored symlinks.
                    continue
                fs = lt.file_storage()
                extra = lt.create_torrent.symlinks if mode == "symlinks" else 0
                lt.add_files(fs, root, flags=extra)
                if flavour == "v1":
                    entries = sorted(
                        ((fs.file_path(i), fs.file_size(i), fs.file_flags(i), fs.symlink(i))
                         for i in range(fs.num_files())),
                        key=lambda e: key(e[0]))
                    fs = lt.file_storage()
                    for p, size, fl, link in entries:
                        fs.add_file(p, size, fl, 0, link)
                ct = lt.create_torrent(fs, 16384, flags=flags | extra)
                lt.set_piece_hashes(ct, tmp)
                tag = "lt" + "".join(lt.__version__.split(".")[:2])
                with open(f"links.{mode}.{flavour}.{tag}.torrent", "wb") as f:
                    f.write(lt.bencode(ct.generate()))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
