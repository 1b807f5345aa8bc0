//! Path sanitising: which file names a torrent may contain.
//!
//! Every path that comes out of a torrent is checked component by component before it is
//! turned into a [`PathBuf`], so that a hostile torrent can never make a client write outside
//! its download folder. The same checks run when a torrent is created, so everything this
//! crate writes parses again.
//!
//! Rules applied on every platform:
//!
//! - a path has at least one component and a component is never empty, `.` or `..`;
//! - a component contains no NUL byte, no `/` and no `\` (a `\` is a separator on Windows,
//!   and a torrent that is safe on one platform should be safe on every platform);
//! - a component is at most [`MAX_COMPONENT_LEN`] bytes (the limit of ext4, XFS, Btrfs, APFS
//!   and NTFS) and a whole path at most [`MAX_PATH_LEN`] bytes (Linux `PATH_MAX`).
//!
//! Windows adds rules that only apply when the crate is compiled for Windows (there such
//! names cannot be created, or would mean a device; on Linux they are ordinary file names):
//! reserved device names (`CON`, `PRN`, `AUX`, `NUL`, `COM1`..`COM9`, `LPT1`..`LPT9`, also
//! with an extension), the characters `< > : " | ? *` and control characters, and a trailing
//! dot or space. [`windows_problem`] holds these rules and is tested on every platform.

use std::fmt;
use std::path::PathBuf;

/// Longest file name component accepted, in bytes.
pub const MAX_COMPONENT_LEN: usize = 255;

/// Longest relative path accepted (components joined with `/`), in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathProblem {
    /// The path has no components at all.
    NoComponents,
    /// A component is the empty string.
    EmptyComponent,
    /// A component is `.`.
    CurrentDir,
    /// A component is `..`.
    ParentDir,
    /// The path is absolute: a component starts with `/` or `\`, or (Windows) with a drive
    /// prefix such as `C:`.
    Absolute,
    /// A component contains a NUL byte.
    NulByte,
    /// A component contains `/` or `\`.
    Separator,
    /// A component is longer than [`MAX_COMPONENT_LEN`] bytes.
    ComponentTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The whole path is longer than [`MAX_PATH_LEN`] bytes.
    PathTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// (Windows) a reserved device name such as `CON` or `lpt1.txt`.
    ReservedName,
    /// (Windows) a character that file names cannot contain.
    InvalidCharacter(char),
    /// (Windows) a component ending with a dot or a space.
    TrailingDotOrSpace,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoComponents => f.write_str("the path is empty"),
            Self::EmptyComponent => f.write_str("a path component is empty"),
            Self::CurrentDir => f.write_str("a path component is `.`"),
            Self::ParentDir => f.write_str("a path component is `..`"),
            Self::Absolute => f.write_str("the path is absolute"),
            Self::NulByte => f.write_str("a path component contains a NUL byte"),
            Self::Separator => f.write_str("a path component contains `/` or `\\`"),
            Self::ComponentTooLong { len } => write!(
                f,
                "a path component is {len} bytes long (at most {MAX_COMPONENT_LEN})"
            ),
            Self::PathTooLong { len } => {
                write!(f, "the path is {len} bytes long (at most {MAX_PATH_LEN})")
            }
            Self::ReservedName => f.write_str("a path component is a reserved device name"),
            Self::InvalidCharacter(c) => {
                write!(f, "a path component contains the character {c:?}")
            }
            Self::TrailingDotOrSpace => f.write_str("a path component ends with a dot or space"),
        }
    }
}

/// Checks one component.
///
/// A component starting with a separator is reported as [`PathProblem::Absolute`] wherever
/// it is: joining such a component to a path replaces the path.
pub(crate) fn check_component(component: &str) -> Result<(), PathProblem> {
    match component {
        "" => return Err(PathProblem::EmptyComponent),
        "." => return Err(PathProblem::CurrentDir),
        ".." => return Err(PathProblem::ParentDir),
        _ => {}
    }
    if component.starts_with('/') || component.starts_with('\\') {
        return Err(PathProblem::Absolute);
    }
    if component.contains('\0') {
        return Err(PathProblem::NulByte);
    }
    if component.contains(['/', '\\']) {
        return Err(PathProblem::Separator);
    }
    if component.len() > MAX_COMPONENT_LEN {
        return Err(PathProblem::ComponentTooLong {
            len: component.len(),
        });
    }
    if cfg!(windows)
        && let Some(problem) = windows_problem(component)
    {
        return Err(problem);
    }
    Ok(())
}

/// The Windows-only rules (see the module documentation). Compiled and tested everywhere,
/// applied only on Windows.
pub(crate) fn windows_problem(component: &str) -> Option<PathProblem> {
    let bytes = component.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Some(PathProblem::Absolute);
    }
    if let Some(c) = component
        .chars()
        .find(|c| matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') || c.is_ascii_control())
    {
        return Some(PathProblem::InvalidCharacter(c));
    }
    if component.ends_with(['.', ' ']) {
        return Some(PathProblem::TrailingDotOrSpace);
    }
    // A device name is reserved with any extension ("nul.txt") and in any case.
    let stem = component.split('.').next().unwrap_or(component);
    let stem = stem.trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    let reserved = matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && matches!(upper.as_bytes()[3], b'1'..=b'9'));
    reserved.then_some(PathProblem::ReservedName)
}

/// Checks a whole relative path given as components.
pub(crate) fn check_components<S: AsRef<str>>(components: &[S]) -> Result<(), PathProblem> {
    if components.is_empty() {
        return Err(PathProblem::NoComponents);
    }
    let mut len = components.len() - 1;
    for c in components {
        let c = c.as_ref();
        check_component(c)?;
        len += c.len();
    }
    if len > MAX_PATH_LEN {
        return Err(PathProblem::PathTooLong { len });
    }
    Ok(())
}

/// Joins components (already checked) into a relative [`PathBuf`].
pub(crate) fn to_path_buf<S: AsRef<str>>(components: &[S]) -> PathBuf {
    components.iter().map(AsRef::as_ref).collect()
}

/// Normalises a symlink target given as components relative to `base` (a directory inside
/// the torrent, as components): `.` and empty components are dropped, `..` goes up one level.
/// Returns `None` when the target leaves the torrent root.
pub(crate) fn resolve_link<'a>(base: &[&'a str], target: &[&'a str]) -> Option<Vec<&'a str>> {
    let mut out: Vec<&str> = base.to_vec();
    for &c in target {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "a",
            "file.txt",
            ".hidden",
            "...",
            "日本語.txt",
            "emoji-🎉",
            "with space",
            "a..b",
        ] {
            assert_eq!(check_component(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(check_components(&["dir", "sub", "f"]), Ok(()));
    }

    #[test]
    fn refuses_each_hostile_component() {
        let cases: &[(&str, PathProblem)] = &[
            ("", PathProblem::EmptyComponent),
            (".", PathProblem::CurrentDir),
            ("..", PathProblem::ParentDir),
            ("a\0b", PathProblem::NulByte),
            ("a/b", PathProblem::Separator),
            ("a\\b", PathProblem::Separator),
        ];
        for (c, want) in cases {
            assert_eq!(check_component(c), Err(*want), "{c:?}");
        }
        assert_eq!(check_component("/etc"), Err(PathProblem::Absolute));
        assert_eq!(check_component("\\etc"), Err(PathProblem::Absolute));
        let long = "x".repeat(256);
        assert_eq!(
            check_component(&long),
            Err(PathProblem::ComponentTooLong { len: 256 })
        );
        assert_eq!(check_component(&"x".repeat(255)), Ok(()));
    }

    #[test]
    fn refuses_empty_and_long_paths() {
        let none: [&str; 0] = [];
        assert_eq!(check_components(&none), Err(PathProblem::NoComponents));
        let part = "y".repeat(200);
        let many: Vec<&str> = std::iter::repeat_n(part.as_str(), 21).collect();
        assert_eq!(
            check_components(&many),
            Err(PathProblem::PathTooLong { len: 21 * 200 + 20 })
        );
        assert_eq!(check_components(&["ok", ".."]), Err(PathProblem::ParentDir));
    }

    #[test]
    fn windows_rules() {
        for reserved in ["CON", "con", "nul.txt", "Com1", "lpt9.tar.gz", "AUX .txt"] {
            assert_eq!(
                windows_problem(reserved),
                Some(PathProblem::ReservedName),
                "{reserved:?}"
            );
        }
        for fine in ["console", "com10", "lpt0", "CONFIG.SYS", "a.b"] {
            assert_eq!(windows_problem(fine), None, "{fine:?}");
        }
        assert_eq!(
            windows_problem("ab:c"),
            Some(PathProblem::InvalidCharacter(':'))
        );
        assert_eq!(windows_problem("C:"), Some(PathProblem::Absolute));
        assert_eq!(windows_problem("a:b"), Some(PathProblem::Absolute));
        assert_eq!(
            windows_problem("x?"),
            Some(PathProblem::InvalidCharacter('?'))
        );
        assert_eq!(
            windows_problem("tab\t"),
            Some(PathProblem::InvalidCharacter('\t'))
        );
        assert_eq!(
            windows_problem("trailing."),
            Some(PathProblem::TrailingDotOrSpace)
        );
        assert_eq!(
            windows_problem("trailing "),
            Some(PathProblem::TrailingDotOrSpace)
        );
    }

    #[test]
    fn link_resolution() {
        assert_eq!(resolve_link(&["d"], &["..", "x"]), Some(vec!["x"]));
        assert_eq!(
            resolve_link(&[], &[".", "a", "", "b"]),
            Some(vec!["a", "b"])
        );
        assert_eq!(resolve_link(&[], &["..", "x"]), None);
        assert_eq!(resolve_link(&["a"], &["..", "..", "x"]), None);
        assert_eq!(resolve_link(&["a", "b"], &["c"]), Some(vec!["a", "b", "c"]));
    }
}
