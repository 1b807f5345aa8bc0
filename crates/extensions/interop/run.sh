#!/usr/bin/env bash
# ut_metadata both ways against libtorrent 2.0.8 (Debian's /usr/bin/python3) and 2.1.1
# (interop/.venv, if present), for v1, v2 and hybrid torrents, over loopback TCP:
#   1. the fetch_metadata example resolves the info dictionary from a libtorrent seeder;
#   2. libtorrent resolves a magnet link from the serve_metadata example.
# Usage: crates/extensions/interop/run.sh (from anywhere). Exits non-zero on a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cargo build -q -p webtorrent-extensions --examples --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
pythons=(/usr/bin/python3)
[ -x "$root/interop/.venv/bin/python" ] && pythons+=("$root/interop/.venv/bin/python")
failed=0
for py in "${pythons[@]}"; do
    version=$("$py" -c 'import libtorrent as lt; print(lt.__version__)')
    for flavour in v1 v2 hybrid; do
        # 1. We fetch from libtorrent.
        mkfifo "$work/stdin-$flavour"
        "$py" "$here/lt_seed.py" "$flavour" "$work" < "$work/stdin-$flavour" > "$work/seed.json" &
        pids+=($!)
        exec 7> "$work/stdin-$flavour"
        for _ in $(seq 300); do [ -s "$work/seed.json" ] && break; sleep 0.1; done
        port=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['port'])" "$work/seed.json")
        hashes=$(python3 -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['hashes']))" "$work/seed.json")
        if timeout 60 "$target/debug/examples/fetch_metadata" "127.0.0.1:$port" $hashes \
            > "$work/got.bin" 2> "$work/fetch.log" \
            && cmp -s "$work/got.bin" "$work/expected-$flavour.bin"; then
            echo "ok   libtorrent $version $flavour: fetched from libtorrent"
        else
            echo "FAIL libtorrent $version $flavour: fetch (log below)"; cat "$work/fetch.log"; failed=1
        fi
        exec 7>&-
        rm -f "$work/stdin-$flavour" "$work/seed.json"

        # 2. libtorrent fetches from us.
        "$target/debug/examples/serve_metadata" "$work/expected-$flavour.bin" \
            > "$work/serve.addr" 2> "$work/serve.log" &
        server=$!
        pids+=("$server")
        for _ in $(seq 50); do [ -s "$work/serve.addr" ] && break; sleep 0.1; done
        port=$(cut -d: -f2 "$work/serve.addr")
        uri=$(python3 - "$work/expected-$flavour.bin" "$flavour" <<'PY'
import hashlib, sys
info = open(sys.argv[1], "rb").read()
parts = []
if sys.argv[2] != "v2":
    parts.append("xt=urn:btih:" + hashlib.sha1(info).hexdigest())
if sys.argv[2] != "v1":
    parts.append("xt=urn:btmh:1220" + hashlib.sha256(info).hexdigest())
print("magnet:?" + "&".join(parts))
PY
)
        if timeout 60 "$py" "$here/lt_magnet.py" "$port" "$uri" "$work/expected-$flavour.bin" > /dev/null; then
            echo "ok   libtorrent $version $flavour: served to libtorrent"
        else
            echo "FAIL libtorrent $version $flavour: serve (log below)"; cat "$work/serve.log"; failed=1
        fi
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        rm -f "$work/serve.addr"
    done
done
exit $failed
