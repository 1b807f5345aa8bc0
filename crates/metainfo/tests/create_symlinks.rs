//! Symlinks when creating: stored as BEP 47 symlinks by default, followed on request, checked
//! against libtorrent 2.0 and 2.1 (`testdata/lt/`, written by `testdata/lt/make.py`).
#![cfg(all(feature = "create", unix))]

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use webtorrent_metainfo::{CreateError, MetaVersion, Metainfo, TorrentBuilder};

fn fixture(name: &str) -> Metainfo {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/lt")
        .join(name);
    Metainfo::from_bytes(&std::fs::read(path).expect("fixture")).expect("parse fixture")
}

/// The tree described in `testdata/lt/make.py`.
fn build(parent: &Path) -> PathBuf {
    let root = parent.join("links");
    std::fs::create_dir_all(root.join("d/sub")).expect("mkdir");
    let real: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let inner: Vec<u8> = (0..20000u32).map(|i| ((i * 7) % 256) as u8).collect();
    std::fs::write(root.join("d/real"), real).expect("write");
    std::fs::write(root.join("d/sub/inner"), inner).expect("write");
    std::fs::write(root.join("top.txt"), b"hello").expect("write");
    for p in ["d/real", "d/sub/inner", "top.txt"] {
        std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    symlink("d/real", root.join("link_file")).expect("symlink");
    symlink("d", root.join("link_dir")).expect("symlink");
    symlink("../real", root.join("d/sub/up")).expect("symlink");
    root
}

fn flavours() -> [(MetaVersion, &'static str); 3] {
    [
        (MetaVersion::V1, "v1"),
        (MetaVersion::V2, "v2"),
        (MetaVersion::Hybrid, "hybrid"),
    ]
}

#[test]
fn following_symlinks_matches_libtorrent_default() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = build(tmp.path());
    for (version, flavour) in flavours() {
        let ours = TorrentBuilder::new(&root)
            .meta_version(version)
            .piece_length(Some(16384))
            .follow_symlinks(true)
            .build()
            .expect("build");
        let lt = fixture(&format!("links.follow.{flavour}.lt20.torrent"));
        assert_eq!(ours.info().raw(), lt.info().raw(), "{flavour}");
        // libtorrent 2.1 takes `x` from the target, not the link: same files otherwise.
        let lt21 = fixture(&format!("links.follow.{flavour}.lt21.torrent"));
        let strip = |t: &Metainfo| -> Vec<(PathBuf, u64)> {
            t.info()
                .files()
                .iter()
                .map(|f| (f.path.clone(), f.length))
                .collect()
        };
        assert_eq!(strip(&ours), strip(&lt21), "{flavour}");
    }
}

#[test]
fn stored_symlinks_match_libtorrent_21() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = build(tmp.path());
    for (version, flavour) in flavours().into_iter().skip(1) {
        let ours = TorrentBuilder::new(&root)
            .meta_version(version)
            .piece_length(Some(16384))
            .build()
            .expect("build");
        // libtorrent 2.1 writes targets relative to the torrent root, as BEP 47 and we do.
        let lt21 = fixture(&format!("links.symlinks.{flavour}.lt21.torrent"));
        assert_eq!(ours.info().raw(), lt21.info().raw(), "{flavour}");
        // libtorrent 2.0 writes the nested link's target relative to its folder (`../real`):
        // other bytes, but the same files, attributes and resolved targets.
        let lt20 = fixture(&format!("links.symlinks.{flavour}.lt20.torrent"));
        assert_ne!(ours.info().raw(), lt20.info().raw(), "{flavour}");
        assert_eq!(ours.info().files(), lt20.info().files(), "{flavour}");
        let link = ours
            .info()
            .files()
            .iter()
            .find(|f| f.path == Path::new("links/d/sub/up"))
            .expect("nested link");
        assert_eq!(link.attr.symlink.as_deref(), Some(Path::new("d/real")));
        assert!(
            link.attr.executable,
            "libtorrent marks links x (lstat mode 0777)"
        );
        assert_eq!(link.length, 0);
    }
}

#[test]
fn top_level_symlinks_match_libtorrent_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = build(tmp.path());
    std::fs::remove_file(root.join("d/sub/up")).expect("rm");
    let ours = TorrentBuilder::new(&root)
        .meta_version(MetaVersion::V1)
        .piece_length(Some(16384))
        .build()
        .expect("build");
    let text = String::from_utf8_lossy(ours.info().raw()).into_owned();
    assert!(text.contains("4:attr2:xl6:lengthi0e4:pathl9:link_filee12:symlink pathl1:d4:realee"));
}

#[test]
fn symlinks_leaving_the_folder_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = build(tmp.path());
    symlink("/etc/hostname", root.join("abs")).expect("symlink");
    let e = TorrentBuilder::new(&root)
        .build()
        .expect_err("absolute target");
    assert!(
        matches!(e, CreateError::SymlinkOutsideTorrent { ref path, .. } if path.ends_with("abs")),
        "{e}"
    );
    std::fs::remove_file(root.join("abs")).expect("rm");

    symlink("../../outside", root.join("d/up2")).expect("symlink");
    let e = TorrentBuilder::new(&root)
        .build()
        .expect_err("escaping target");
    assert!(
        matches!(e, CreateError::SymlinkOutsideTorrent { .. }),
        "{e}"
    );
    std::fs::remove_file(root.join("d/up2")).expect("rm");

    // An absolute target inside the shared folder is made relative.
    symlink(root.join("top.txt"), root.join("abs_inside")).expect("symlink");
    let t = TorrentBuilder::new(&root).build().expect("inside");
    let link = t
        .info()
        .files()
        .iter()
        .find(|f| f.path.ends_with("abs_inside"))
        .expect("link");
    assert_eq!(link.attr.symlink.as_deref(), Some(Path::new("top.txt")));
}

#[test]
fn following_skips_dangling_links_and_stops_loops() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = build(tmp.path());
    symlink("missing", root.join("dangling")).expect("symlink");
    let t = TorrentBuilder::new(&root)
        .follow_symlinks(true)
        .build()
        .expect("dangling skipped");
    assert!(
        !t.info()
            .files()
            .iter()
            .any(|f| f.path.ends_with("dangling"))
    );
    // Stored as a symlink by default.
    let t = TorrentBuilder::new(&root).build().expect("dangling stored");
    assert!(
        t.info()
            .files()
            .iter()
            .any(|f| f.path.ends_with("dangling"))
    );

    symlink("..", root.join("d/loop")).expect("symlink");
    let e = TorrentBuilder::new(&root)
        .follow_symlinks(true)
        .build()
        .expect_err("loop");
    assert!(matches!(e, CreateError::SymlinkLoop { .. }), "{e}");
}
