//! The AWS files a `--server` child sees. SDKs read the shared files (and the web
//! identity variables) before they reach the container endpoint, so a `[default]`
//! profile with keys, `credential_process`, `role_arn` or `sso_*` would win over the
//! role the child was started as. The child gets instead an empty credentials file and
//! a copy of the user's config whose `[default]`, `[profile default]` and `[DEFAULT]`
//! (whose keys `[default]` inherits) have no credential settings; the rest (region,
//! `s3`, `cli_pager`, other profiles, `sso-session` sections) is kept, and no profile
//! of the copy holds a secret. The copy is made of the config reader's
//! ([`crate::config::aws_ini`]) entries and lines, so what it drops is what the SDKs
//! would read. Both files live in a fresh private directory that is removed when the
//! child has exited.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::aws_ini::{self, FileKind, Ini, Named};
use crate::error::{Error, Kind, Result, display_path};

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
        Some(p) => sanitize(&read_config(p)?, p)?,
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
    write_private(&config, &text)?;
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
    aws_ini::read_text(path)
        .map(Option::unwrap_or_default)
        .map_err(|why| {
            Error::config(format!(
                "cannot read the AWS config file {}: {why}; its [default] profile may hold a credential setting (credential_process, role_arn, sso_session, keys) that would win over the endpoint, so the command would not run as the role",
                display_path(path)
            ))
            .with_hint(format!(
                "make it a readable regular file (chmod u+r {}), or point AWS_CONFIG_FILE at the one you use",
                display_path(path)
            ))
        })
}

/// Whether an SDK takes a section for the default profile, or botocore gives its keys
/// to it (`[DEFAULT]`). Case is ignored: broader than any SDK, never narrower.
pub fn feeds_default(header: &str) -> bool {
    header.eq_ignore_ascii_case("default")
        || matches!(aws_ini::named(header, FileKind::Config),
            Named::Profile(n) if n.eq_ignore_ascii_case("default"))
}

/// Whether a key makes a profile a credential source (and so may not stay in
/// `[default]`).
pub fn is_credential_key(key: &str) -> bool {
    CREDENTIAL_KEYS.contains(&key) || key.starts_with("sso_") || key.contains("credential")
}

/// Whether a key holds a secret (and so may stay in no profile).
pub fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.contains(&key)
}

/// The config text with no credential setting in `[default]`, `[profile default]` or
/// `[DEFAULT]`, and no secret anywhere, read with the config reader: a setting goes
/// with its continuation lines. A continuation line is dropped too when another SDK
/// could read it as a key it must not see (the JS SDK takes an indented
/// `credential_process` under `[default]` for a key of `[default]`) or as a section
/// header. Comments are dropped (one may hold an old key); everything else is kept
/// byte for byte. A file the reader refuses is refused (the error names its line).
pub fn sanitize(text: &str, path: &Path) -> Result<String> {
    let ini = Ini::parse(text, path, FileKind::Config)?;
    let lines = aws_ini::split_lines(text);
    let mut keep: Vec<bool> = lines
        .iter()
        .map(|l| aws_ini::content(l).trim().is_empty())
        .collect();
    for section in &ini.sections {
        keep[section.line - 1] = true;
        let default = feeds_default(&section.header);
        let dropped = |key: &str| is_secret_key(key) || (default && is_credential_key(key));
        for entry in section.entries.iter().filter(|e| !dropped(&e.key)) {
            for &n in &entry.lines {
                let line = aws_ini::content(lines[n - 1]);
                keep[n - 1] = n == entry.first_line
                    || !(aws_ini::header_of(line).is_some()
                        || aws_ini::key_value(line).is_some_and(|(k, _)| dropped(&k)));
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    for (line, kept) in lines.into_iter().zip(keep) {
        // After a line ended by a lone CR, an LF-only blank line would join it into
        // one CRLF line: it is left out (a blank line, changing nothing).
        let joins = out.ends_with('\r') && line.starts_with('\n');
        if kept && !joins {
            out.push_str(line);
        }
    }
    Ok(out)
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
        let got = sanitize(text, Path::new("/u/.aws/config")).unwrap();
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

    fn clean(text: &str) -> String {
        sanitize(text, Path::new("/u/.aws/config")).unwrap()
    }

    #[test]
    fn default_section_keys_go_too_as_botocore_gives_them_to_default() {
        let text = "[DEFAULT]\ncredential_process = /bin/evil\n    --flag\nregion = eu-west-3\n\
                    [ default ]\noutput = json\n[profile Default]\nrole_arn = x\nregion = y\n";
        assert_eq!(
            clean(text),
            "[DEFAULT]\nregion = eu-west-3\n[ default ]\noutput = json\n[profile Default]\nregion = y\n"
        );
    }

    #[test]
    fn indented_credential_lines_under_default_go_whatever_they_continue() {
        let text = "[default]\nregion = eu-west-3\n  credential_process = /bin/evil\n  Role_Arn: arn\n\
                    s3 =\n    max_concurrent_requests = 3\n    sso_session = x\n\
                    [profile other]\nregion = a\n  aws_secret_access_key = S\n  credential_process = kept\n\
                    cli_pager =\n  [default]\n";
        assert_eq!(
            clean(text),
            "[default]\nregion = eu-west-3\ns3 =\n    max_concurrent_requests = 3\n\
             [profile other]\nregion = a\n  credential_process = kept\ncli_pager =\n"
        );
    }

    #[test]
    fn line_breaks_are_python_s_and_kept_as_they_were() {
        let text = "[default]\r\nregion = x\rcredential_process = evil\r\noutput = json";
        assert_eq!(clean(text), "[default]\r\nregion = x\routput = json");
        // A blank line that would join a CR-ended line once the line between is gone.
        let text = "[default]\nregion = x\rcredential_process = evil\n\n\noutput = json\n";
        assert_eq!(clean(text), "[default]\nregion = x\routput = json\n");
    }

    #[test]
    fn a_file_the_reader_refuses_is_refused_with_its_line() {
        let e = sanitize("[default]\nregion = x\nnot a setting\n", Path::new("/u/c")).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.message.starts_with("/u/c:3: "), "{}", e.message);
    }

    #[test]
    fn which_sections_feed_default() {
        for h in [
            "default",
            "DEFAULT",
            "Default",
            "profile default",
            "profile  'default'",
        ] {
            assert!(feeds_default(h), "{h}");
        }
        for h in [
            "profiledefault",
            "sso-session default",
            "profile x",
            "services default",
        ] {
            assert!(!feeds_default(h), "{h}");
        }
    }
}
