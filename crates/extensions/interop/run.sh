#!/usr/bin/env bash
# ut_metadata both ways, and ut_pex, over loopback TCP against real clients:
#   libtorrent 2.0.8 (Debian's /usr/bin/python3): v1, v2 and hybrid torrents;
#   libtorrent 2.1.1 (interop/.venv, if present): v1, v2 and hybrid torrents;
#   JS WebTorrent 3 (interop/node_modules, if present): v1 torrents.
# For each: the fetch_metadata example resolves the info dictionary from the client
# seeding, and the client resolves a magnet link from the serve_metadata example; then
# the pex_announce example names a listening address in a PEX message, and the client
# must dial it.
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

# name | command prefix that takes `seed FLAVOUR DIR` or `fetch PORT MAGNET FILE` | flavours
clients=("libtorrent $(/usr/bin/python3 -c 'import libtorrent as lt; print(lt.__version__)')|/usr/bin/python3 $here/lt_peer.py|v1 v2 hybrid")
if [ -x "$root/interop/.venv/bin/python" ]; then
    venv="$root/interop/.venv/bin/python"
    clients+=("libtorrent $("$venv" -c 'import libtorrent as lt; print(lt.__version__)')|$venv $here/lt_peer.py|v1 v2 hybrid")
fi
if command -v node > /dev/null && [ -d "$root/interop/node_modules/webtorrent" ]; then
    clients+=("WebTorrent (node)|node $here/wt_peer.mjs|v1")
fi

failed=0
for entry in "${clients[@]}"; do
    IFS='|' read -r name command flavours <<< "$entry"
    for flavour in $flavours; do
        # 1. We fetch from the client.
        rm -f "$work/seed.json" "$work/stdin"
        mkfifo "$work/stdin"
        $command seed "$flavour" "$work" < "$work/stdin" > "$work/seed.json" 2> "$work/seed.log" &
        pids+=($!)
        exec 7> "$work/stdin"
        for _ in $(seq 300); do [ -s "$work/seed.json" ] && break; sleep 0.1; done
        port=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['port'])" "$work/seed.json")
        hashes=$(python3 -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['hashes']))" "$work/seed.json")
        expected="$work/expected-$flavour.bin"
        if timeout 60 "$target/debug/examples/fetch_metadata" "127.0.0.1:$port" $hashes \
            > "$work/got.bin" 2> "$work/fetch.log" && cmp -s "$work/got.bin" "$expected"; then
            echo "ok   $name $flavour: fetched from it"
        else
            echo "FAIL $name $flavour: fetch (log below)"; cat "$work/fetch.log"; failed=1
        fi
        exec 7>&-

        # 2. The client fetches from us.
        rm -f "$work/serve.addr"
        "$target/debug/examples/serve_metadata" "$expected" > "$work/serve.addr" 2> "$work/serve.log" &
        server=$!
        pids+=("$server")
        for _ in $(seq 50); do [ -s "$work/serve.addr" ] && break; sleep 0.1; done
        port=$(cut -d: -f2 "$work/serve.addr")
        uri=$(python3 - "$expected" "$flavour" <<'PY'
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
        if timeout 60 $command fetch "$port" "$uri" "$expected" > /dev/null 2> "$work/client.log"; then
            echo "ok   $name $flavour: served to it"
        else
            echo "FAIL $name $flavour: serve (logs below)"; cat "$work/serve.log" "$work/client.log"; failed=1
        fi
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    done

    # 3. The client dials a peer we name over PEX.
    rm -f "$work/want.json" "$work/stdin"
    mkfifo "$work/stdin"
    $command want < "$work/stdin" > "$work/want.json" 2> "$work/want.log" &
    pids+=($!)
    exec 7> "$work/stdin"
    for _ in $(seq 300); do [ -s "$work/want.json" ] && break; sleep 0.1; done
    port=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['port'])" "$work/want.json")
    hash=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['hashes'][0])" "$work/want.json")
    if timeout 60 "$target/debug/examples/pex_announce" "127.0.0.1:$port" "$hash" 2> "$work/pex.log"; then
        echo "ok   $name: dialed the peer we sent by PEX"
    else
        echo "FAIL $name: PEX (log below)"; cat "$work/pex.log"; failed=1
    fi
    exec 7>&-
done
exit $failed
