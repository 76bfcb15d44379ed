//! The config directory: one `NAME.yaml` per config. Reads are plain; writes are atomic
//! (temp file in the same directory, fsync, rename) and serialised by a lock on the
//! directory, so no reader ever sees half a file and no writer loses another's change.
//! It owns the names and paths of configs; it must not know what a config is used for.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::parse::{parse_config, to_yaml};
use super::schema::Config;
use super::trust;
use crate::error::{Error, Kind, Result, display_path};
use crate::fsutil::ensure_private_dir;
use crate::fsutil::write_atomic;
mod lock;

use lock::{DirLock, LockError, lock_dir};

/// Checks a config name before any path is built from it.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::config(
            "empty config name: use ASCII letters, digits, '_' and '-'",
        ));
    }
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "invalid config name {name:?}: use only ASCII letters, digits, '_' and '-'"
        )))
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Store { dir: dir.into() }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of config NAME; the name is checked first.
    pub(crate) fn path(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        Ok(self.dir.join(format!("{name}.yaml")))
    }

    /// Names of all configs, sorted. A missing directory has none; a directory another
    /// user could write to is refused.
    pub(crate) fn names(&self) -> Result<Vec<String>> {
        trust::check_dir(&self.dir)?;
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.dir_error("cannot read config directory", &e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let file_name = e.file_name().into_string().ok()?;
                let name = file_name.strip_suffix(".yaml")?;
                validate_name(name).ok()?;
                Some(name.to_string())
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Whether config NAME exists. A directory that cannot be searched is an error,
    /// not a "no".
    pub(crate) fn exists(&self, name: &str) -> Result<bool> {
        let path = self.path(name)?;
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.dir_error("cannot read config directory", &e)),
        }
    }

    /// Reads and validates config NAME.
    pub(crate) fn load(&self, name: &str) -> Result<Config> {
        let path = self.path(name)?;
        let (text, mode) = self.read_checked(name, &path)?;
        let config = parse_config(&text, &path).map_err(|e| match e.hint {
            Some(_) => e,
            None => e.with_hint(format!("fix it: elhaz config update {name} --editor")),
        })?;
        trust::warn_readable_secrets(&path, mode, &config);
        Ok(config)
    }

    /// Why config NAME would be refused (owner, mode, not a regular file, size), if it
    /// would be; nothing is read.
    pub(crate) fn refusal(&self, name: &str) -> Option<Error> {
        trust::refusal(&self.path(name).ok()?)
    }

    /// The raw text of config NAME (for the editor).
    pub(crate) fn load_text(&self, name: &str) -> Result<String> {
        let path = self.path(name)?;
        self.read_text(name, &path)
    }

    fn read_text(&self, name: &str, path: &Path) -> Result<String> {
        self.read_checked(name, path).map(|(text, _)| text)
    }

    /// The text of config NAME and its mode bits, after the checks of `trust`.
    fn read_checked(&self, name: &str, path: &Path) -> Result<(String, u32)> {
        trust::check_dir(&self.dir)?;
        match trust::read_config(path) {
            Ok(read) => {
                let read = read?;
                let text = String::from_utf8(read.bytes).map_err(|_| {
                    Error::config(format!("{}: not UTF-8 text", display_path(path)))
                })?;
                Ok((text, read.mode))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::config(format!(
                "no config named {name:?} in {}",
                display_path(&self.dir)
            ))
            .with_hint(format!("create it: elhaz config add {name}"))),
            Err(e) if e.kind() == ErrorKind::IsADirectory => Err(not_a_file(name, path)),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                Err(
                    Error::io(Kind::Config, "cannot read", path, &e).with_hint(format!(
                        "make it yours: chown -R \"$USER\" {0} && chmod 700 {0}",
                        self.dir.display()
                    )),
                )
            }
            Err(e) => Err(Error::io(Kind::Config, "cannot read", path, &e)),
        }
    }

    /// Writes config NAME. Fails when it exists unless `overwrite`.
    pub(crate) fn save(&self, name: &str, config: &Config, overwrite: bool) -> Result<PathBuf> {
        let path = self.path(name)?;
        let _lock = self.lock()?;
        if path.is_dir() {
            return Err(not_a_file(name, &path));
        }
        if !overwrite && self.exists(name)? {
            return Err(Error::config(format!("config {name:?} already exists"))
                .with_hint(format!(
                    "change it: elhaz config update {name}; or replace it: elhaz config add {name} --force"
                )));
        }
        self.write_config(&path, config)?;
        Ok(path)
    }

    /// Reads, changes and writes config NAME under the lock, so that concurrent
    /// updates are applied one after the other.
    pub(crate) fn update(
        &self,
        name: &str,
        change: impl FnOnce(Config) -> Result<Config>,
    ) -> Result<PathBuf> {
        let path = self.path(name)?;
        let _lock = self.lock()?;
        let current = self.load(name)?;
        let updated = change(current)?;
        self.write_config(&path, &updated)?;
        Ok(path)
    }

    /// Replaces config NAME, which must exist, with `config` (the current text need
    /// not be valid: this is how a broken config is fixed).
    pub(crate) fn replace(&self, name: &str, config: &Config) -> Result<PathBuf> {
        let path = self.path(name)?;
        let _lock = self.lock()?;
        if !self.exists(name)? {
            return Err(Error::config(format!(
                "no config named {name:?} in {}",
                display_path(&self.dir)
            ))
            .with_hint(format!("create it: elhaz config add {name}")));
        }
        self.write_config(&path, config)?;
        Ok(path)
    }

    pub(crate) fn remove(&self, name: &str) -> Result<PathBuf> {
        let path = self.path(name)?;
        let _lock = self.lock()?;
        if path.is_dir() {
            return Err(not_a_file(name, &path));
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::config(format!(
                "no config named {name:?} in {}",
                display_path(&self.dir)
            ))),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                Err(self.dir_error("cannot remove a file from config directory", &e))
            }
            Err(e) => Err(Error::io(Kind::Config, "cannot remove", &path, &e)),
        }
    }

    fn write_config(&self, path: &Path, config: &Config) -> Result<()> {
        let problems = config.validate();
        if let Some(first) = problems.first() {
            return Err(Error::config(format!("{}: {first}", display_path(path))));
        }
        let yaml = to_yaml(config)?;
        trust::remove_stale_temps(&self.dir);
        // A config that is a symbolic link (into a dotfiles repository) stays one: the
        // file it points to gets the change, as the loader read it.
        let target = match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::canonicalize(path)
                    .map_err(|e| Error::io(Kind::Config, "cannot follow", path, &e))?;
                // Never a new file in a directory others can write (they could swap it).
                let dir = target.parent().unwrap_or(Path::new("/"));
                let open = fs::metadata(dir).map(|m| {
                    std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o022 != 0
                });
                if open.unwrap_or(true) {
                    return Err(Error::config(format!(
                        "{} points to {}, in a directory others can write: not written",
                        display_path(path),
                        display_path(&target)
                    ))
                    .with_hint(format!("make it private: chmod go-w {}", dir.display())));
                }
                target
            }
            _ => path.to_path_buf(),
        };
        write_atomic(&target, yaml.as_bytes(), Kind::Config)
    }

    /// An exclusive lock on the config directory, held until dropped.
    fn lock(&self) -> Result<DirLock> {
        ensure_private_dir(&self.dir, Kind::Config)?;
        trust::check_dir(&self.dir)?;
        lock_dir(&self.dir).map_err(|e| match e {
            LockError::Open(e) => self.dir_error("cannot open config directory", &e),
            LockError::Lock(errno) => Error::config(format!(
                "cannot lock config directory {}: {}",
                display_path(&self.dir),
                errno.desc()
            )),
        })
    }

    fn dir_error(&self, what: &str, e: &std::io::Error) -> Error {
        let err = Error::io(Kind::Config, what, &self.dir, e);
        match e.kind() {
            ErrorKind::PermissionDenied => err.with_hint(format!(
                "make it yours: chown -R \"$USER\" {0} && chmod 700 {0}",
                self.dir.display()
            )),
            ErrorKind::NotADirectory if self.dir.is_file() => Error::config(format!(
                "config directory {} is a file, not a directory",
                display_path(&self.dir)
            ))
            .with_hint(format!(
                "move it away (mv {0} {0}.bak), or point --config-dir (or ELHAZ_CONFIG_DIR) at a directory",
                self.dir.display()
            )),
            ErrorKind::NotADirectory => {
                err.with_hint("point --config-dir (or ELHAZ_CONFIG_DIR) at a directory".to_string())
            }
            _ => err,
        }
    }
}

/// The error for a `NAME.yaml` that is a directory.
fn not_a_file(name: &str, path: &Path) -> Error {
    Error::config(format!(
        "{}: is a directory, not a config file",
        display_path(path)
    ))
    .with_hint(format!(
        "move it away (mv {0} {0}.bak), then: elhaz config add {name}",
        path.display()
    ))
}
