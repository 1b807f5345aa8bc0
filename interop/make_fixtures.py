#!/usr/bin/env python3
"""Regenerate crates/metainfo/testdata/real/: .torrent files made by real creators.

Creators: libtorrent 2.0 (Debian's python3-libtorrent, run by /usr/bin/python3), libtorrent
2.1 (PyPI wheel in interop/.venv), transmission-create (Debian's transmission-cli) and the JS
create-torrent (interop/node_modules, `npm ci` first). `cargo xtask ci` installs all of them.

Every expected value in expected.json comes from the creator's own tooling (libtorrent's
info_hashes(), parse-torrent, transmission-show), never from this project's code. Creation
dates change on every run; info-hashes do not.

usage: python3 interop/make_fixtures.py [--out DIR]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "python"))
import trees  # noqa: E402

DEFAULT_OUT = os.path.join(ROOT, "crates", "metainfo", "testdata", "real")
LT20 = "/usr/bin/python3"
LT21 = os.path.join(HERE, ".venv", "bin", "python")
PIECE = 16384

# ASCII ids for file names; the torrent name is the tree name.
IDS = {"single.bin": "single", "multi": "multi", "nested": "nested", "ünïcødé": "unicode",
       "attrs": "attrs"}
TRACKERS = ["udp://tracker.example:6969/announce", "wss://tracker.example/announce"]
TRACKERS_TRANSMISSION = ["udp://tracker.example:6969/announce", "http://tracker.example/announce"]
WEB_SEED = "https://seed.example/files/"
COMMENT = "webtorrent-rs fixture"


def run(cmd, ok=(0,), **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode not in ok:
        raise SystemExit(f"{cmd} failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def libtorrent(python, tree_path, out, flavour, private):
    cmd = [python, os.path.join(HERE, "python", "lt_create.py"), tree_path, "-o", out,
           "--flavour", flavour, "--piece-length", str(PIECE), "--web-seed", WEB_SEED,
           "--comment", COMMENT]
    for t in TRACKERS:
        cmd += ["--tracker", t]
    if private:
        cmd.append("--private")
    d = json.loads(run(cmd, ok=(0, 3)))
    return f"libtorrent {d['libtorrent']}", d


def js(tree_path, out):
    cmd = ["node", os.path.join(HERE, "node", "create.mjs"), tree_path, out,
           "--piece-length", str(PIECE), "--comment", COMMENT, "--web-seed", WEB_SEED]
    for t in TRACKERS:
        cmd += ["--tracker", t]
    d = json.loads(run(cmd, cwd=HERE))
    with open(os.path.join(HERE, "node_modules", "create-torrent", "package.json")) as f:
        version = json.load(f)["version"]
    return f"create-torrent {version}", d


def transmission(tree_path, out):
    cmd = ["transmission-create", "-o", out, "-s", str(PIECE // 1024), "-c", COMMENT]
    # transmission-create refuses WebSocket trackers (and still exits 0).
    for t in TRACKERS_TRANSMISSION:
        cmd += ["-t", t]
    run(cmd + [tree_path])
    if not os.path.exists(out):
        raise SystemExit(f"transmission-create wrote no {out}")
    show = run(["transmission-show", "-u", out])
    v = subprocess.run(["transmission-create", "-V"], capture_output=True, text=True)
    version = v.stdout + v.stderr
    m = re.search(r"^\s*Hash: ([0-9a-f]{40})$", show, re.M)
    name = re.search(r"^\s*Name: (.*)$", show, re.M).group(1)
    size = re.search(r"^\s*Piece Size: ([0-9.]+) KiB$", show, re.M)
    files_section = show.split("\nFILES\n", 1)[1]
    parent = os.path.dirname(tree_path)
    files = []
    for line in files_section.splitlines():
        fm = re.match(r"^  (.*) \([0-9.]+ [kMGT]?B\)$", line)
        if fm:
            path = fm.group(1)
            # transmission-show prints rounded sizes: take the exact length from the file
            # it lists.
            files.append([path, os.path.getsize(os.path.join(parent, *path.split("/")))])
    # "transmission-create 3.00 (bb6b5a062e)"
    return f"transmission-create {version.split()[1]}", {
        "v1": m.group(1),
        "v2": None,
        "name": name,
        "piece_length": int(float(size.group(1)) * 1024),
        "files": files,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for f in os.listdir(args.out):
        if f.endswith(".torrent"):
            os.remove(os.path.join(args.out, f))
    expected = []
    invalid = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, entries in trees.TREES.items():
            tree_path = trees.write_tree(tmp, name, entries)
            tid = IDS[name]
            jobs = []
            for flavour in ("v1", "v2", "hybrid"):
                for label, python in (("lt20", LT20), ("lt21", LT21)):
                    private = tid == "attrs" and flavour == "hybrid"
                    jobs.append((f"{tid}.{label}.{flavour}.torrent",
                                 lambda out, p=python, fl=flavour, pr=private:
                                 libtorrent(p, tree_path, out, fl, pr)))
            jobs.append((f"{tid}.transmission.v1.torrent",
                         lambda out: transmission(tree_path, out)))
            jobs.append((f"{tid}.create-torrent.v1.torrent", lambda out: js(tree_path, out)))
            for file_name, job in jobs:
                out = os.path.join(args.out, file_name)
                creator, d = job(out)
                if "error" in d:
                    others = {}
                    for label, python in (("libtorrent 2.0", LT20), ("libtorrent 2.1", LT21)):
                        r = subprocess.run([python, os.path.join(HERE, "python", "lt_info.py"),
                                            out], capture_output=True, text=True)
                        others[label] = "loads" if r.returncode == 0 else \
                            r.stderr.strip().splitlines()[-1]
                    invalid.append({"file": file_name, "creator": creator,
                                    "error": d["error"], "loaded_by": others})
                    continue
                files = [[f[0], f[1]] for f in d["files"]
                         if not re.search(r"(^|/)\.pad/[0-9]+$", f[0])]
                expected.append({
                    "file": file_name,
                    "creator": creator,
                    "v1": d["v1"],
                    "v2": d["v2"],
                    "name": d["name"],
                    "piece_length": d["piece_length"],
                    "files": files,
                })
                # Cross-check with libtorrent 2.1 (an independent parser) for creators whose
                # own tools report less.
                if d["v2"] is None:
                    check = json.loads(run([LT21, os.path.join(HERE, "python", "lt_info.py"),
                                            out]))
                    if check["v1"] != d["v1"]:
                        raise SystemExit(f"{file_name}: libtorrent disagrees on the v1 hash")
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "expected-invalid.json"), "w", encoding="utf-8") as f:
        json.dump(invalid, f, ensure_ascii=False, indent=1)
        f.write("\n")
    manifest = {n: [[p, l, x] for p, l, x in e] for n, e in trees.TREES.items()}
    with open(os.path.join(args.out, "trees.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"{len(expected)} fixtures written to {args.out} ({total} bytes)")
    shutil.rmtree(os.path.join(args.out, "__pycache__"), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
