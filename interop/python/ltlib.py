"""Helpers shared by the libtorrent drivers; works with libtorrent 2.0 and 2.1 bindings."""

import os
import warnings

import libtorrent as lt

# The file_storage/create_torrent constructors used here are deprecated in 2.1 but still the
# only API that exists in both 2.0 and 2.1.
warnings.simplefilter("ignore", DeprecationWarning)

FLAVOURS = {
    "v1": lt.create_torrent.v1_only,
    "v2": lt.create_torrent.v2_only,
    "hybrid": 0,
}


def version() -> str:
    return lt.__version__


def _component_key(path: str):
    return [c.encode("utf-8") for c in path.split(os.sep)]


def create(path, flavour, piece_length, trackers=(), web_seeds=(), comment=None,
           creator=None, private=False, symlinks=False):
    """Creates a torrent of `path` (a file or a folder) the way a libtorrent user does.

    v2 and hybrid torrents are canonical in libtorrent (files sorted). A v1-only torrent lists
    files in directory-read order, which is not reproducible, so for v1 the files are handed to
    libtorrent sorted component by component (the v2 file-tree order), without pad files.
    Returns the .torrent bytes.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    fs = lt.file_storage()
    if symlinks:
        lt.add_files(fs, path, flags=lt.create_torrent.symlinks)
    else:
        lt.add_files(fs, path)
    if flavour == "v1":
        entries = []
        for i in range(fs.num_files()):
            entries.append((fs.file_path(i), fs.file_size(i), fs.file_flags(i), fs.symlink(i)))
        entries.sort(key=lambda e: _component_key(e[0]))
        fs = lt.file_storage()
        for p, size, flags, link in entries:
            fs.add_file(p, size, flags, 0, link)
    flags = FLAVOURS[flavour]
    if symlinks:
        flags |= lt.create_torrent.symlinks
    ct = lt.create_torrent(fs, piece_length, flags=flags)
    for tier, url in enumerate(trackers):
        ct.add_tracker(url, tier)
    for url in web_seeds:
        ct.add_url_seed(url)
    if comment is not None:
        ct.set_comment(comment)
    if creator is not None:
        ct.set_creator(creator)
    if private:
        ct.set_priv(True)
    lt.set_piece_hashes(ct, parent)
    return lt.bencode(ct.generate())


def describe(torrent_bytes):
    """What libtorrent itself reports about a .torrent: info-hashes, name, files, ..."""
    ti = lt.torrent_info(lt.bdecode(torrent_bytes))
    ih = ti.info_hashes()
    fs = ti.files()
    files = []
    pads = 0
    for i in range(fs.num_files()):
        flags = fs.file_flags(i)
        if flags & lt.file_storage.flag_pad_file:
            pads += 1
            continue
        attr = ""
        if flags & lt.file_storage.flag_executable:
            attr += "x"
        if flags & lt.file_storage.flag_hidden:
            attr += "h"
        if flags & lt.file_storage.flag_symlink:
            attr += "l"
        files.append([fs.file_path(i).replace(os.sep, "/"), fs.file_size(i), attr])
    return {
        "libtorrent": lt.__version__,
        "v1": str(ih.v1) if ih.has_v1() else None,
        "v2": str(ih.v2) if ih.has_v2() else None,
        "name": ti.name(),
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "total_size": sum(f[1] for f in files),
        "pad_files": pads,
        "files": files,
        "trackers": [[t.url, t.tier] for t in ti.trackers()],
        "web_seeds": [w["url"] for w in ti.web_seeds()],
        "private": ti.priv(),
        "comment": ti.comment() or None,
        "creator": ti.creator() or None,
    }


def dht_settings(bootstrap: str) -> dict:
    """Session settings of a DHT-only node on a loopback test DHT, bootstrapping from
    `bootstrap` (comma-separated HOST:PORT); callers add their `alert_mask`."""
    return {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": bootstrap,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        # Every node of the test DHT sends from 127.0.0.1: libtorrent's per-IP limit (5
        # packets a second, then a ban) would cut them all off.
        "dht_block_ratelimit": 1000000,
    }
