//! The AWS CLI's INI files (`~/.aws/config`, `~/.aws/credentials`): the one reader
//! every part of elhaz that reads them itself goes through (profiles, SSO sessions,
//! `sso sync`, the `--server` child's copy of the config).
//!
//! It reads them as botocore does (Python's configparser) where that decides who the
//! caller is, and at least as broadly as any SDK where that matters to the copy:
//! - sections `[name]`: the header is the text between the `[` and the closing `]`,
//!   trimmed, once a comment after it is dropped; nothing else may follow the `]`;
//! - full-line comments start with `#` or `;`; a comment preceded by whitespace after
//!   a value is dropped from it;
//! - `key = value` or `key: value` (the first `=` or `:` splits), the key trimmed and
//!   lowercased, the value trimmed;
//! - a line indented deeper than its key line continues that key's value (joined with
//!   `\n`; blank and comment lines in between do not end it): nested values such as
//!   `s3 =` with indented sub-keys;
//! - lines end at `\n`, `\r\n` or a lone `\r` (Python's universal newlines);
//! - `[DEFAULT]` (exactly that) gives its keys to every other section of the same file,
//!   which may override them; sections of the same name merge, later keys winning;
//! - a setting before any section, or a line that is none of these, is an error naming
//!   the file and line.
//!
//! It also says what a header names (a profile, an `sso-session`, a `services`
//! section), which differs between the config and the credentials file. It reads only
//! regular files, at most 1 MiB, never blocking. It must not know what a setting means
//! (no profile kinds, no STS, no SSO), except which values are secrets, which no Debug
//! form shows.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, display_path};

/// The largest AWS file read (no real one comes near it).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Settings whose values are secrets: never shown in a Debug form.
pub const SECRET_KEYS: &[&str] = &[
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
];

/// Which of the two files a text is: they name their profiles differently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileKind {
    /// `~/.aws/config`: `[default]`, `[profile NAME]`, `[sso-session NAME]`, …
    #[default]
    Config,
    /// `~/.aws/credentials`: every section is a profile.
    Credentials,
}

impl FileKind {
    /// The variable that moves the file elsewhere.
    pub fn variable(self) -> &'static str {
        match self {
            FileKind::Config => "AWS_CONFIG_FILE",
            FileKind::Credentials => "AWS_SHARED_CREDENTIALS_FILE",
        }
    }
}

/// What a section header names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Named {
    /// `[DEFAULT]`: its keys are every other section's too.
    Defaults,
    /// A profile: `[default]`, `[profile NAME]`, or any section of the credentials file.
    Profile(String),
    /// `[sso-session NAME]` (config file).
    SsoSession(String),
    /// `[services NAME]` (config file).
    Services(String),
    /// Anything else (`[preview]`, `[profile]`, `[profile a b]`, …): no SDK reads it.
    Other,
}

/// One setting: its key, its value (continuation lines joined with `\n`) and the lines
/// it spans.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lowercased.
    pub key: String,
    pub value: String,
    /// The key's line (1-based).
    pub first_line: usize,
    /// Its last continuation line, or the key's line.
    pub last_line: usize,
    /// The key's line and each continuation line (blank and comment lines between
    /// them are not the entry's).
    pub lines: Vec<usize>,
}

impl Entry {
    /// Whether its value is a secret.
    pub fn is_secret(&self) -> bool {
        SECRET_KEYS.contains(&self.key.as_str())
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value: &dyn fmt::Debug = if self.is_secret() {
            &"***"
        } else {
            &self.value
        };
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("value", value)
            .field("lines", &(self.first_line..=self.last_line))
            .finish()
    }
}

/// One section header of the file and the entries under it, in file order (a header
/// that occurs twice is two sections here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The text between `[` and `]`, trimmed.
    pub header: String,
    /// The header's line (1-based).
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// A section as the SDKs see it: `[DEFAULT]`'s entries, then those of every section of
/// the same name in file order, each key's last one winning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective<'a> {
    pub name: String,
    /// The line of its first header (of the one that wins, for `[profile default]`).
    pub line: usize,
    pub settings: BTreeMap<&'a str, &'a Entry>,
}

/// The profiles, SSO sessions and services sections of a file, each merged, in the
/// order they first appear.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gathered<'a> {
    pub profiles: Vec<Effective<'a>>,
    pub sso_sessions: Vec<Effective<'a>>,
    pub services: Vec<Effective<'a>>,
}

/// One parsed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ini {
    pub path: PathBuf,
    pub kind: FileKind,
    /// False for a missing file (read as an empty one).
    pub exists: bool,
    pub sections: Vec<Section>,
}

/// The lines of `text`, each with its line break (`\n`, `\r\n` or a lone `\r`, as
/// Python's universal newlines split them); the last may have none.
pub fn split_lines(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push(&text[start..=i]);
                start = i + 1;
            }
            b'\r' => {
                let end = if bytes.get(i + 1) == Some(&b'\n') {
                    i + 1
                } else {
                    i
                };
                out.push(&text[start..=end]);
                i = end;
                start = end + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        out.push(&text[start..]);
    }
    out
}

/// A line without its line break.
pub fn content(line: &str) -> &str {
    line.trim_end_matches(['\n', '\r'])
}

/// Whitespace as Python's `str.strip` and `\S` know it (Unicode whitespace and the
/// four ASCII separators).
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// How deep a line is indented, in characters (as configparser counts).
fn indent(line: &str) -> usize {
    line.chars().take_while(|c| is_space(*c)).count()
}

/// `s` up to a comment: `#` or `;` after whitespace (as the SDKs strip it from a
/// value; one at the very start is not a comment here).
pub fn strip_comment(s: &str) -> &str {
    let mut prev_space = false;
    for (i, c) in s.char_indices() {
        if prev_space && (c == '#' || c == ';') {
            return &s[..i];
        }
        prev_space = is_space(c);
    }
    s
}

/// A line's `key` and `value` if it reads as `key = value` or `key: value` (the first
/// `=` or `:` splits); the key trimmed and lowercased, the value trimmed with any
/// comment after whitespace dropped. None when there is no `=` or `:`, or no key.
pub fn key_value(line: &str) -> Option<(String, &str)> {
    let t = trim(line);
    let at = t.find(['=', ':'])?;
    let key = trim(&t[..at]).to_lowercase();
    if key.is_empty() {
        return None;
    }
    Some((key, trim(strip_comment(&t[at + 1..]))))
}

/// A line's section header (trimmed), if it is a `[…]` line.
pub fn header_of(line: &str) -> Option<&str> {
    let t = trim(strip_comment(trim(line)));
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    Some(trim(inner))
}

/// Whether a line is a full-line comment.
fn is_comment(t: &str) -> bool {
    t.starts_with('#') || t.starts_with(';')
}

/// `NAME` of `PREFIX NAME` (whitespace between; quotes around NAME dropped, as
/// botocore's shlex does); None when the header is not that, or NAME is empty or holds
/// whitespace.
fn prefixed(header: &str, prefix: &str) -> Option<String> {
    let rest = header.strip_prefix(prefix)?;
    if !rest.starts_with(is_space) {
        return None;
    }
    let name = trim(rest);
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| name.strip_prefix(*q)?.strip_suffix(*q))
        .filter(|n| !n.is_empty());
    match unquoted {
        Some(n) => Some(n.to_string()),
        None if name.is_empty() || name.contains(is_space) => None,
        None => Some(name.to_string()),
    }
}

/// What a header names in a file of `kind`.
pub fn named(header: &str, kind: FileKind) -> Named {
    if header == "DEFAULT" {
        return Named::Defaults;
    }
    if kind == FileKind::Credentials {
        return Named::Profile(header.to_string());
    }
    if header == "default" {
        return Named::Profile(header.to_string());
    }
    if let Some(n) = prefixed(header, "profile") {
        return Named::Profile(n);
    }
    if let Some(n) = prefixed(header, "sso-session") {
        return Named::SsoSession(n);
    }
    match prefixed(header, "services") {
        Some(n) => Named::Services(n),
        None => Named::Other,
    }
}

/// The state of a parse: the current section and entry.
struct Parser<'p> {
    path: &'p Path,
    kind: FileKind,
    sections: Vec<Section>,
    /// The indent of the current key (or header) line.
    level: usize,
    /// Whether the last key line's entry may take continuation lines.
    open: bool,
    /// Blank lines since the entry's last line, kept if another continuation comes.
    blanks: usize,
}

impl Parser<'_> {
    fn error(&self, line: usize, what: &str) -> Error {
        let file = display_path(self.path);
        Error::config(format!("{file}:{line}: {what}")).with_hint(format!(
            "fix line {line} of {file} (or point {} at another file)",
            self.kind.variable()
        ))
    }

    fn line(&mut self, n: usize, raw: &str) -> Result<()> {
        let t = trim(raw);
        if t.is_empty() {
            self.blanks += 1;
            return Ok(());
        }
        if is_comment(t) {
            return Ok(());
        }
        let level = indent(raw);
        if self.open && level > self.level {
            let blanks = std::mem::take(&mut self.blanks);
            let entry = self.current_entry();
            for _ in 0..=blanks {
                entry.value.push('\n');
            }
            entry.value.push_str(trim(strip_comment(t)));
            entry.last_line = n;
            entry.lines.push(n);
            return Ok(());
        }
        self.level = level;
        self.blanks = 0;
        self.open = false;
        if t.starts_with('[') {
            return self.header(n, t);
        }
        let Some((key, value)) = key_value(t) else {
            return Err(self.error(
                n,
                "neither a [section] header, a `key = value` setting nor a comment",
            ));
        };
        let Some(section) = self.sections.last_mut() else {
            return Err(self.error(n, &format!("`{key}` is set before any [section] header")));
        };
        section.entries.push(Entry {
            key,
            value: value.to_string(),
            first_line: n,
            last_line: n,
            lines: vec![n],
        });
        self.open = true;
        Ok(())
    }

    fn header(&mut self, n: usize, t: &str) -> Result<()> {
        match header_of(t) {
            Some("") => Err(self.error(n, "an empty section header")),
            Some(h) => {
                self.sections.push(Section {
                    header: h.to_string(),
                    line: n,
                    entries: Vec::new(),
                });
                Ok(())
            }
            None => Err(self.error(
                n,
                "a section header must end with ']' (and nothing but a comment after it)",
            )),
        }
    }

    fn current_entry(&mut self) -> &mut Entry {
        self.sections
            .last_mut()
            .and_then(|s| s.entries.last_mut())
            .expect("an open entry")
    }
}

impl Ini {
    /// Parses the text of the file at `path` (used in messages only).
    pub fn parse(text: &str, path: &Path, kind: FileKind) -> Result<Ini> {
        let mut p = Parser {
            path,
            kind,
            sections: Vec::new(),
            level: 0,
            open: false,
            blanks: 0,
        };
        for (i, line) in split_lines(text).into_iter().enumerate() {
            p.line(i + 1, content(line))?;
        }
        Ok(Ini {
            path: path.to_path_buf(),
            kind,
            exists: true,
            sections: p.sections,
        })
    }

    /// Reads and parses the file at `path`; a missing file is an empty one.
    pub fn load(path: &Path, kind: FileKind) -> Result<Ini> {
        match load_text(path, kind)? {
            Some(text) => Ini::parse(&text, path, kind),
            None => Ok(Ini {
                path: path.to_path_buf(),
                kind,
                exists: false,
                sections: Vec::new(),
            }),
        }
    }

    /// What the header of `section` names in this file.
    pub fn named(&self, section: &Section) -> Named {
        named(&section.header, self.kind)
    }

    /// Every profile, SSO session and services section, merged over `[DEFAULT]`. When
    /// both `[default]` and `[profile default]` are there, `[profile default]` wins
    /// and `[default]` is not read.
    pub fn gather(&self) -> Gathered<'_> {
        let defaults: Vec<&Entry> = self
            .sections
            .iter()
            .filter(|s| self.named(s) == Named::Defaults)
            .flat_map(|s| &s.entries)
            .collect();
        let profile_default = self
            .sections
            .iter()
            .any(|s| s.header != "default" && self.named(s) == Named::Profile("default".into()));
        let mut out = Gathered::default();
        for s in &self.sections {
            let (list, name) = match self.named(s) {
                Named::Profile(n) => (&mut out.profiles, n),
                Named::SsoSession(n) => (&mut out.sso_sessions, n),
                Named::Services(n) => (&mut out.services, n),
                Named::Defaults | Named::Other => continue,
            };
            if profile_default && s.header == "default" && self.kind == FileKind::Config {
                continue;
            }
            let at = match list.iter().position(|e| e.name == name) {
                Some(i) => i,
                None => {
                    let settings = defaults.iter().map(|e| (e.key.as_str(), *e)).collect();
                    list.push(Effective {
                        name,
                        line: s.line,
                        settings,
                    });
                    list.len() - 1
                }
            };
            for e in &s.entries {
                list[at].settings.insert(e.key.as_str(), e);
            }
        }
        out
    }
}

/// The text of the file at `path`: None when it does not exist. Only a regular file
/// is read, at most 1 MiB, never blocking. The error is the reason alone ("permission
/// denied", "a FIFO, not a regular file", …), for the caller's own message.
pub fn read_text(path: &Path) -> std::result::Result<Option<String>, String> {
    use crate::fsutil::Unread;
    match crate::fsutil::read_regular(path, MAX_FILE_BYTES, |_| Ok(())) {
        Ok((bytes, _)) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| "not UTF-8 text".to_string()),
        Err(Unread::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(Unread::Io(e)) => Err(crate::error::io_reason(&e)),
        Err(Unread::NotRegular { kind, .. }) => Err(format!("{kind}, not a regular file")),
        Err(Unread::TooLarge) => Err("larger than 1 MiB".to_string()),
        Err(Unread::Refused(e)) => Err(e.message),
    }
}

/// [`read_text`], its failure an error naming the file.
pub fn load_text(path: &Path, kind: FileKind) -> Result<Option<String>> {
    read_text(path).map_err(|why| {
        Error::config(format!("cannot read {}: {why}", display_path(path))).with_hint(format!(
            "make it a readable regular file (or point {} at another file)",
            kind.variable()
        ))
    })
}

#[cfg(test)]
mod tests;
