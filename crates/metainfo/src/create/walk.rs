//! Listing the files to share.

use std::fs::{self, Metadata};
use std::path::{Component, Path, PathBuf};

use super::{CreateError, PlannedFile, Source};
use crate::info::MAX_FILES;
use crate::path;

/// Lists `root`: (default torrent name, multi-file, files in directory-read order).
pub(super) fn walk(
    root: &Path,
    follow: bool,
) -> Result<(String, bool, Vec<PlannedFile>), CreateError> {
    let io = |source| CreateError::Io {
        path: root.to_owned(),
        source,
    };
    let meta = fs::metadata(root).map_err(io)?;
    let name = match root.file_name() {
        Some(n) => n.to_owned(),
        // ".", "..", "/": name the torrent after the folder it really is.
        None => fs::canonicalize(root)
            .map_err(io)?
            .file_name()
            .map(ToOwned::to_owned)
            .unwrap_or_default(),
    };
    let name = name
        .to_str()
        .ok_or_else(|| CreateError::NonUtf8Path {
            path: root.to_owned(),
        })?
        .to_owned();

    if meta.is_file() {
        // Attributes come from the path itself, not a symlink's target (as in libtorrent).
        let lmeta = fs::symlink_metadata(root).map_err(io)?;
        let file = PlannedFile {
            components: Vec::new(),
            length: meta.len(),
            executable: is_executable(&lmeta),
            hidden: is_hidden(&lmeta),
            symlink: None,
            source: Source::Disk(root.to_owned()),
        };
        return Ok((name, false, vec![file]));
    }
    if !meta.is_dir() {
        return Err(CreateError::UnsupportedFileType {
            path: root.to_owned(),
        });
    }

    let mut bases = Vec::new();
    if let Ok(abs) = std::path::absolute(root) {
        bases.push(abs);
    }
    if let Ok(canonical) = fs::canonicalize(root) {
        bases.push(canonical);
    }
    let mut walker = Walker {
        follow,
        bases,
        out: Vec::new(),
        stack: Vec::new(),
    };
    walker.enter(root, &mut Vec::new())?;
    if walker.out.is_empty() {
        return Err(CreateError::NoFiles {
            path: root.to_owned(),
        });
    }
    Ok((name, true, walker.out))
}

struct Walker {
    follow: bool,
    /// The shared folder as absolute paths (as given, and canonical): an absolute symlink
    /// target under one of them points inside the torrent.
    bases: Vec<PathBuf>,
    out: Vec<PlannedFile>,
    /// Canonical paths of the folders being walked (loop detection when following links).
    stack: Vec<PathBuf>,
}

impl Walker {
    fn enter(&mut self, dir: &Path, components: &mut Vec<String>) -> Result<(), CreateError> {
        if self.follow {
            let canonical = fs::canonicalize(dir).map_err(|source| CreateError::Io {
                path: dir.to_owned(),
                source,
            })?;
            if self.stack.contains(&canonical) {
                return Err(CreateError::SymlinkLoop {
                    path: dir.to_owned(),
                });
            }
            self.stack.push(canonical);
            let result = self.list(dir, components);
            self.stack.pop();
            result
        } else {
            self.list(dir, components)
        }
    }

    fn list(&mut self, dir: &Path, components: &mut Vec<String>) -> Result<(), CreateError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CreateError::Io { path, source }
        };
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            let name = entry
                .file_name()
                .to_str()
                .ok_or_else(|| CreateError::NonUtf8Path { path: path.clone() })?
                .to_owned();
            components.push(name);
            let result = self.entry(&entry, &path, components);
            components.pop();
            result?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        entry: &fs::DirEntry,
        path: &Path,
        components: &mut Vec<String>,
    ) -> Result<(), CreateError> {
        let io = |source| CreateError::Io {
            path: path.to_owned(),
            source,
        };
        path::check_components(components).map_err(|problem| CreateError::InvalidPath {
            path: path.to_owned(),
            problem,
        })?;
        // `DirEntry::metadata` does not follow symlinks.
        let lmeta = entry.metadata().map_err(io)?;
        let file_type = lmeta.file_type();
        if file_type.is_symlink() {
            if !self.follow {
                let target = fs::read_link(path).map_err(io)?;
                let parent = &components[..components.len() - 1];
                let resolved = self.link_target(path, parent, &target)?;
                return self.push(PlannedFile {
                    components: components.clone(),
                    length: 0,
                    executable: is_executable(&lmeta),
                    hidden: is_hidden(&lmeta),
                    symlink: Some(resolved),
                    source: Source::None,
                });
            }
            // Dangling or unresolvable links are skipped, as libtorrent does.
            let Ok(meta) = fs::metadata(path) else {
                return Ok(());
            };
            if meta.is_dir() {
                return self.enter(path, components);
            }
            if meta.is_file() {
                return self.push(PlannedFile {
                    components: components.clone(),
                    length: meta.len(),
                    executable: is_executable(&lmeta),
                    hidden: is_hidden(&lmeta),
                    symlink: None,
                    source: Source::Disk(path.to_owned()),
                });
            }
            return Err(CreateError::UnsupportedFileType {
                path: path.to_owned(),
            });
        }
        if file_type.is_dir() {
            return self.enter(path, components);
        }
        if file_type.is_file() {
            return self.push(PlannedFile {
                components: components.clone(),
                length: lmeta.len(),
                executable: is_executable(&lmeta),
                hidden: is_hidden(&lmeta),
                symlink: None,
                source: Source::Disk(path.to_owned()),
            });
        }
        Err(CreateError::UnsupportedFileType {
            path: path.to_owned(),
        })
    }

    fn push(&mut self, file: PlannedFile) -> Result<(), CreateError> {
        if self.out.len() >= MAX_FILES {
            return Err(CreateError::TooManyFiles {
                count: self.out.len() + 1,
            });
        }
        self.out.push(file);
        Ok(())
    }

    /// A symlink's target as components relative to the shared folder (BEP 47).
    fn link_target(
        &self,
        link: &Path,
        parent: &[String],
        target: &Path,
    ) -> Result<Vec<String>, CreateError> {
        let outside = || CreateError::SymlinkOutsideTorrent {
            path: link.to_owned(),
            target: target.to_owned(),
        };
        let (base, rest): (Vec<&str>, &Path) = if target.is_absolute() {
            let rest = self
                .bases
                .iter()
                .find_map(|b| target.strip_prefix(b).ok())
                .ok_or_else(outside)?;
            (Vec::new(), rest)
        } else {
            (parent.iter().map(String::as_str).collect(), target)
        };
        let mut parts = Vec::new();
        for c in rest.components() {
            match c {
                Component::Normal(s) => {
                    parts.push(s.to_str().ok_or_else(|| CreateError::NonUtf8Path {
                        path: link.to_owned(),
                    })?)
                }
                Component::CurDir => {}
                Component::ParentDir => parts.push(".."),
                Component::RootDir | Component::Prefix(_) => return Err(outside()),
            }
        }
        let resolved = path::resolve_link(&base, &parts).ok_or_else(outside)?;
        if resolved.is_empty() {
            return Err(outside());
        }
        path::check_components(&resolved).map_err(|problem| CreateError::InvalidPath {
            path: link.to_owned(),
            problem,
        })?;
        Ok(resolved.into_iter().map(str::to_owned).collect())
    }
}

#[cfg(unix)]
fn is_executable(meta: &Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o100 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &Metadata) -> bool {
    false
}

#[cfg(windows)]
fn is_hidden(meta: &Metadata) -> bool {
    use std::os::windows::fs::MetadataExt;
    const FILE_ATTRIBUTE_HIDDEN: u32 = 0x2;
    meta.file_attributes() & FILE_ATTRIBUTE_HIDDEN != 0
}

#[cfg(not(windows))]
fn is_hidden(_meta: &Metadata) -> bool {
    false
}
