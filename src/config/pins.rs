//! Project pins: a `.elhaz.yaml` at a project's root names one of the user's own NAMEs
//! (and a region) for the tree below it. A pin never defines a role, a source, a
//! helper or an endpoint: it only chooses. Found by walking up from the working
//! directory to `/` or the home directory, whichever comes first; read as configs are
//! (regular file, small, the user's or root's, writable by no one else). Whether the
//! user trusts it is `allowed`'s. Nothing here prints.

pub(crate) mod allowed;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::trust::{Subject, check_private_file};
use crate::error::{Error, Result, display_path};

/// The pin file's name.
pub(crate) const PIN_FILE: &str = ".elhaz.yaml";

/// The largest pin file elhaz reads: two short keys need far less.
pub(crate) const MAX_PIN_BYTES: u64 = 64 * 1024;

/// The pin files, for the ownership and mode checks' messages.
pub(crate) const PINS: Subject = Subject {
    dir: "the pin's directory",
    above: "a directory above the pin",
    file: "the pin file",
    why: "elhaz will not follow a pin another user could have written",
};

/// What a pin file holds. Any other key is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PinFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A pin read and parsed: where it is, what it names, and the bytes it was read from
/// (which trust is about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pin {
    /// The pin file as found (under the working directory as the shell names it).
    pub path: PathBuf,
    /// The same file with every symbolic link resolved: what the allow list records.
    pub real: PathBuf,
    pub name: String,
    pub region: Option<String>,
    /// The line of `name:` (1-based), for messages.
    pub name_line: usize,
    pub bytes: Vec<u8>,
}

/// The nearest `.elhaz.yaml` at or above `start`, stopping after `/` or `home`
/// (whichever comes first). Anything at that name counts (a FIFO, a directory): the
/// read refuses it with a reason rather than the walk skipping it silently.
pub(crate) fn find(start: &Path, home: Option<&Path>) -> Option<PathBuf> {
    let mut dir = start;
    loop {
        let candidate = dir.join(PIN_FILE);
        if fs::symlink_metadata(&candidate).is_ok() {
            return Some(candidate);
        }
        if home == Some(dir) {
            return None;
        }
        dir = dir.parent()?;
    }
}

/// The working directory as the shell names it ($PWD when it is the same directory as
/// ".", so that a pin reached through a symbolic link is named as the user sees it).
pub(crate) fn working_dir() -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let physical = std::env::current_dir()
        .map_err(|e| Error::usage(format!("cannot read the working directory: {e}")))?;
    let logical = std::env::var_os("PWD")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let same = |a: &Path, b: &Path| match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    Ok(match logical {
        Some(l) if same(&l, &physical) => l,
        _ => physical,
    })
}

/// The nearest pin for `dir`, with the home directory as the walk's stop.
pub(crate) fn find_from(dir: &Path) -> Option<PathBuf> {
    let home = crate::fsutil::home_dir().ok();
    find(dir, home.as_deref())
}

/// Reads and parses pin `path`: refused when it is not a regular file, larger than
/// [`MAX_PIN_BYTES`], another user's or writable by others, not YAML, holds another
/// key than `name` and `region`, or has no `name`. Errors name the file and line.
pub(crate) fn read(path: &Path) -> Result<Pin> {
    use crate::fsutil::Unread;
    let shown = display_path(path);
    let hint = format!("fix it, or move it away: mv {0} {0}.bak", path.display());
    let bytes = match crate::fsutil::read_regular(path, MAX_PIN_BYTES, |m| {
        check_private_file(path, m, &PINS)
    }) {
        Ok((bytes, _)) => bytes,
        Err(Unread::Refused(e)) => return Err(e),
        Err(Unread::NotRegular { kind, .. }) => {
            return Err(
                Error::config(format!("{shown}: the pin is {kind}, not a regular file"))
                    .with_hint(hint),
            );
        }
        Err(Unread::TooLarge) => {
            return Err(Error::config(format!(
                "{shown}: larger than {} KiB, which no pin is",
                MAX_PIN_BYTES / 1024
            ))
            .with_hint(hint));
        }
        Err(Unread::Io(e)) => {
            return Err(Error::config(format!("{shown}: cannot read the pin: {e}")));
        }
    };
    let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Error::config(format!("{shown}: the pin is not UTF-8 text")).with_hint(hint.clone())
    })?;
    let file = parse(text, path).map_err(|e| e.with_hint(hint.clone()))?;
    let line = super::parse::line_of_key(text, "name").unwrap_or(1);
    let Some(name) = file.name.filter(|n| !n.is_empty()) else {
        return Err(Error::config(format!(
            "{shown}:{line}: the pin has no name: it names one of your configs or profiles (name: NAME)"
        ))
        .with_hint(format!("write it here: elhaz pin NAME (in {})", shown_dir(path))));
    };
    let region = file.region.filter(|r| !r.is_empty());
    if let Some(r) = &region
        && let Err(why) = super::check::region(r)
    {
        let at = super::parse::line_of_key(text, "region").unwrap_or(1);
        return Err(Error::config(format!("{shown}:{at}: region: {why}")).with_hint(hint));
    }
    Ok(Pin {
        path: path.to_path_buf(),
        real,
        name,
        region,
        name_line: line,
        bytes,
    })
}

fn shown_dir(path: &Path) -> String {
    display_path(path.parent().unwrap_or(Path::new("/")))
}

/// The pin's text as its two keys; an error names the file, line and column.
fn parse(text: &str, path: &Path) -> Result<PinFile> {
    if text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    }) {
        return Ok(PinFile::default());
    }
    serde_saphyr::from_str::<PinFile>(text).map_err(|e| {
        let position = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        let first = e.to_string();
        let first = first.lines().next().unwrap_or_default();
        let what = if first.contains("unknown field") {
            format!("{first} (a pin holds only name and region)")
        } else {
            first.to_string()
        };
        Error::config(format!("{}{position}: {what}", display_path(path)))
    })
}

/// The text `elhaz pin` writes.
pub(crate) fn render(name: &str, region: Option<&str>) -> Result<String> {
    let file = PinFile {
        name: Some(name.to_string()),
        region: region.map(str::to_string),
    };
    let body = serde_saphyr::to_string(&file)
        .map_err(|e| Error::other(format!("cannot write the pin as YAML: {e}")))?;
    Ok(format!(
        "# elhaz project pin: commands and shells in this tree use this NAME.\n{body}"
    ))
}

#[cfg(test)]
mod tests;
