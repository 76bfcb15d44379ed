//! The AWS files a `--server` child sees. SDKs read the shared files (and the web
//! identity variables) before they reach the container endpoint, so a `[default]`
//! profile with keys, `credential_process`, `role_arn` or `sso_*` would win over the
//! role the child was started as. The child gets instead an empty credentials file and
//! a copy of the user's config whose `[default]` has no credential settings; the rest
//! (region, `s3`, `cli_pager`, other profiles, `sso-session` sections) is kept, and no
//! profile of the copy holds a secret. Both live in a fresh private directory that is
//! removed when the child has exited.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Kind, Result, display_path};

/// The largest config file copied (SDKs read no larger ones in practice).
const MAX_CONFIG: u64 = 1024 * 1024;

/// Settings that make a profile a credential source; none stays in `[default]`.
const CREDENTIAL_KEYS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
    "aws_credential_expiration",
    "credential_process",
    "credential_source",
    "role_arn",
    "source_profile",
    "role_session_name",
    "external_id",
    "mfa_serial",
    "duration_seconds",
    "web_identity_token_file",
    "login_session",
];

/// Secret values: removed from every profile of the copy.
const SECRET_KEYS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
];

/// The child's private AWS files; dropping it removes them.
pub struct ChainFiles {
    dir: tempfile::TempDir,
    pub config: PathBuf,
    pub credentials: PathBuf,
}

impl ChainFiles {
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The user's config file as the caller's SDK would find it.
pub(crate) fn user_config_path() -> Option<PathBuf> {
    let given = std::env::var_os("ELHAZ_SOURCE_AWS_CONFIG_FILE")
        .or_else(|| std::env::var_os("AWS_CONFIG_FILE"))
        .filter(|p| !p.is_empty());
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match given {
        Some(p) => {
            let s = p.to_string_lossy();
            match (s.strip_prefix("~/"), &home) {
                (Some(rest), Some(h)) => Some(Path::new(h).join(rest)),
                _ => Some(PathBuf::from(p)),
            }
        }
        None => home.map(|h| Path::new(&h).join(".aws/config")),
    }
}

/// Writes the child's files: the sanitized copy of `source` (if it exists) and an
/// empty credentials file, 0600 in a fresh 0700 directory.
pub(crate) fn prepare(source: Option<&Path>) -> Result<ChainFiles> {
    let text = match source {
        Some(p) => read_config(p)?,
        None => String::new(),
    };
    let base = runtime_dir();
    let dir = tempfile::Builder::new()
        .prefix("elhaz-aws-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(|e| Error::io(Kind::Other, "cannot create a directory in", &base, &e))?;
    let config = dir.path().join("config");
    let credentials = dir.path().join("credentials");
    write_private(&config, &sanitize(&text))?;
    write_private(&credentials, "")?;
    Ok(ChainFiles {
        dir,
        config,
        credentials,
    })
}

/// XDG_RUNTIME_DIR when it is ours and private, else the temp directory.
fn runtime_dir() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .filter(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                m.is_dir() && m.uid() == nix::unistd::getuid().as_raw() && m.mode() & 0o022 == 0
            })
        })
        .unwrap_or_else(std::env::temp_dir)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let fail = |e: std::io::Error| Error::io(Kind::Other, "cannot write", path, &e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)
}

/// The config file's text; a missing file is an empty one. One that exists but cannot
/// be read is refused: its `[default]` could hold the setting that would win.
fn read_config(path: &Path) -> Result<String> {
    let refuse = |why: String| {
        Error::config(format!(
            "cannot read the AWS config file {}: {why}; its [default] profile may hold a credential setting (credential_process, role_arn, sso_session, keys) that would win over the endpoint, so the command would not run as the role",
            display_path(path)
        ))
        .with_hint(format!(
            "make it a readable regular file (chmod u+r {}), or point AWS_CONFIG_FILE at the one you use",
            display_path(path)
        ))
    };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(refuse(crate::error::io_reason(&e))),
    };
    let meta = file
        .metadata()
        .map_err(|e| refuse(crate::error::io_reason(&e)))?;
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(crate::error::io_reason(&e)))?;
    if bytes.len() as u64 > MAX_CONFIG {
        return Err(refuse("larger than 1 MiB".into()));
    }
    String::from_utf8(bytes).map_err(|_| refuse("not UTF-8 text".into()))
}

/// The profile a section header names (`[default]`, `[profile x]`), if it is one.
fn profile_of(header: &str) -> Option<String> {
    let h = header.trim();
    if h == "default" {
        return Some(h.into());
    }
    let rest = h.strip_prefix("profile")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(rest.trim().trim_matches(['"', '\'']).to_string())
}

/// The config text with no credential setting in `[default]` and no secret anywhere.
/// Reads the file as the SDKs' INI parser does: comments are whole lines starting
/// with `#` or `;`; a line indented deeper than the option above it continues that
/// option (nested `s3` keys); an option's name is before its first `=` or `:`, case
/// does not matter. Comments are dropped (one may hold an old key).
pub(crate) fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_default = false;
    // The indent of the current option line, and whether it (with its continuation
    // lines) is dropped; None after a header.
    let mut option: Option<(usize, bool)> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim();
        if trimmed.is_empty() {
            out.push_str(line);
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indent = body.len() - body.trim_start().len();
        if let Some((level, dropped)) = option
            && indent > level
        {
            if !dropped {
                out.push_str(line);
            }
            continue;
        }
        if trimmed.starts_with('[')
            && let Some(end) = trimmed.rfind(']')
        {
            in_default = profile_of(&trimmed[1..end]).as_deref() == Some("default");
            option = None;
            out.push_str(line);
            continue;
        }
        let Some(at) = trimmed.find(['=', ':']) else {
            // Not INI: the SDKs would refuse the whole file; drop the line.
            option = Some((indent, true));
            continue;
        };
        let key = trimmed[..at].trim().to_ascii_lowercase();
        let dropped = SECRET_KEYS.contains(&key.as_str())
            || (in_default
                && (CREDENTIAL_KEYS.contains(&key.as_str())
                    || key.starts_with("sso_")
                    || key.contains("credential")));
        option = Some((indent, dropped));
        if !dropped {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_loses_its_credential_settings_and_keeps_the_rest() {
        let text = "\
# my keys: aws_secret_access_key = OLDSECRET
[default]
region = eu-west-3
Credential_Process = /bin/echo hi
role_arn: arn:aws:iam::1:role/x
source_profile = src
sso_session = corp
sso_account_id = 1
s3 =
    max_concurrent_requests = 3
    addressing_style = path
cli_pager =
aws_secret_access_key = SECRET1
  continued-secret-line
[profile src]
aws_access_key_id = AKIASRC
aws_secret_access_key = SECRET2
region = us-west-2
role_arn = arn:aws:iam::1:role/kept
[sso-session corp]
sso_start_url = https://x
sso_region = us-east-1
[profile default]
credential_process = evil
output = json
";
        let got = sanitize(text);
        let want = "\
[default]
region = eu-west-3
s3 =
    max_concurrent_requests = 3
    addressing_style = path
cli_pager =
[profile src]
region = us-west-2
role_arn = arn:aws:iam::1:role/kept
[sso-session corp]
sso_start_url = https://x
sso_region = us-east-1
[profile default]
output = json
";
        assert_eq!(got, want);
    }

    #[test]
    fn profile_names() {
        assert_eq!(profile_of("default").as_deref(), Some("default"));
        assert_eq!(profile_of("profile  default ").as_deref(), Some("default"));
        assert_eq!(profile_of("profile \"a b\"").as_deref(), Some("a b"));
        assert_eq!(profile_of("profiledefault"), None);
        assert_eq!(profile_of("sso-session default"), None);
    }
}
