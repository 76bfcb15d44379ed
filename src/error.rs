//! The one error type. Each error knows its exit code and, where there is one, the
//! command or step that fixes it; the tidying of error texts (I/O reasons, source
//! chains) lives here too. It is the bottom layer: it imports nothing from the crate.

use std::error::Error as StdError;
use std::fmt;
use std::path::Path;

/// What kind of failure this is; decides the exit code (see README, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Anything not covered below.
    Other,
    /// Bad command line, or a feature not available in this context.
    Usage,
    /// A config file or name is wrong, missing or unreadable.
    Config,
    /// The daemon could not be reached, started or understood.
    Daemon,
    /// AWS refused or could not be reached: STS, SSO, MFA, expired sessions.
    Auth,
    /// An MFA code is needed and this process cannot ask for one (the daemon).
    MfaRequired,
    /// An SSO session must be logged in again, and this process cannot do it (the
    /// daemon, or a caller without a terminal).
    SsoLoginRequired,
    /// The user pressed Ctrl-C at a prompt or during a wait (an SSO login): exit 130,
    /// as a shell reports SIGINT, and nothing more is said.
    Interrupted,
    /// The command to run exists but cannot be executed.
    NotExecutable,
    /// The command to run was not found.
    NotFound,
}

impl Kind {
    /// The name used on the wire (inside `error`, for our own client).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Other => "other",
            Kind::Usage => "usage",
            Kind::Config => "config",
            Kind::Daemon => "daemon",
            Kind::Auth => "auth",
            Kind::MfaRequired => "mfa_required",
            Kind::SsoLoginRequired => "sso_login_required",
            Kind::Interrupted => "interrupted",
            Kind::NotExecutable => "not_executable",
            Kind::NotFound => "not_found",
        }
    }

    /// The kind a wire name stands for: the inverse of [`Kind::as_str`]; a name this
    /// version does not know is `Other`.
    pub(crate) fn parse(s: &str) -> Kind {
        match s {
            "usage" => Kind::Usage,
            "config" => Kind::Config,
            "daemon" => Kind::Daemon,
            "auth" => Kind::Auth,
            "mfa_required" => Kind::MfaRequired,
            "sso_login_required" => Kind::SsoLoginRequired,
            "interrupted" => Kind::Interrupted,
            "not_executable" => Kind::NotExecutable,
            "not_found" => Kind::NotFound,
            _ => Kind::Other,
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Other => 1,
            Kind::Usage => 2,
            Kind::Config => 3,
            Kind::Daemon => 4,
            Kind::Auth | Kind::MfaRequired | Kind::SsoLoginRequired => 5,
            Kind::Interrupted => 130,
            Kind::NotExecutable => 126,
            Kind::NotFound => 127,
        }
    }
}

/// What a caller may act on, carried as data beside the message (and over the
/// daemon's extended error), never read back out of the text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Detail {
    /// An MFA code for this device is needed.
    MfaRequired { serial: String },
    /// This SSO session (as a user names it: `elhaz sso login SESSION`) must log in.
    SsoLoginRequired { session: String },
    /// The caller's context holds no source credentials.
    NoSource,
    /// AWS refused with this error code (`AccessDenied`, `ExpiredToken`, ...).
    Aws { code: String },
    /// STS refused the MFA code given for this device (a typo, or a code already
    /// used): a person may type another. `reason` is AWS's code and message.
    MfaCodeRefused { serial: String, reason: String },
}

/// A user-facing error: one line saying what failed, and an optional hint.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
    /// What a caller may act on, as data.
    pub detail: Option<Detail>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
            detail: None,
        }
    }
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(Kind::Config, message)
    }
    pub(crate) fn daemon(message: impl Into<String>) -> Self {
        Self::new(Kind::Daemon, message)
    }
    pub(crate) fn auth(message: impl Into<String>) -> Self {
        Self::new(Kind::Auth, message)
    }
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self::new(Kind::Other, message)
    }
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub(crate) fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = Some(detail);
        self
    }
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }

    /// An I/O failure on `path`, phrased for people (no `Os { code: .. }`).
    pub(crate) fn io(kind: Kind, what: &str, path: &Path, err: &std::io::Error) -> Self {
        Self::new(
            kind,
            format!("{what} {}: {}", display_path(path), io_reason(err)),
        )
    }
}

/// An error as a user reads it: its message, then its hint on a line of its own. Both
/// may carry text from outside (an STS or portal message, a socket's answer), so
/// whatever a terminal would obey in them is escaped.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::terminal::escape_controls(&self.message))?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {}", crate::terminal::escape_controls(hint))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// The human reason of an I/O error, without Rust's debug decoration.
pub(crate) fn io_reason(err: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match err.kind() {
        K::NotFound => "no such file or directory".into(),
        K::PermissionDenied => "permission denied".into(),
        K::AlreadyExists => "already exists".into(),
        K::IsADirectory => "is a directory".into(),
        K::NotADirectory => "a path component is not a directory".into(),
        K::ReadOnlyFilesystem => "read-only file system".into(),
        K::StorageFull => "no space left on device".into(),
        K::QuotaExceeded => "disk quota exceeded".into(),
        K::FileTooLarge => "file too large".into(),
        K::TimedOut => "timed out".into(),
        K::ConnectionRefused => "connection refused".into(),
        K::BrokenPipe => "broken pipe (the reader has gone)".into(),
        _ => {
            // std formats raw OS errors as "msg (os error N)"; keep just the message.
            let s = err.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// A path as the user would type it: `~/...` under HOME.
pub(crate) fn display_path(path: &Path) -> String {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
        && let Ok(rest) = path.strip_prefix(Path::new(&home))
    {
        if rest.as_os_str().is_empty() {
            return "~".into();
        }
        return format!("~/{}", rest.display());
    }
    path.display().to_string()
}

/// Drops std's " (os error N)" suffixes and folds a multi-line text onto one line.
pub(crate) fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(" (os error ") {
        out.push_str(&rest[..i]);
        rest = match rest[i..].find(')') {
            Some(j) => &rest[i + j + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The whole source() chain of an error, joined with ": ", duplicates dropped.
pub(crate) fn chain<'a>(err: &'a (dyn StdError + 'a)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&'a dyn StdError> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        // Some SDK errors expose their cause only through the deprecated cause().
        #[allow(deprecated)]
        let next: Option<&'a dyn StdError> = match e.source() {
            Some(s) => Some(s),
            None => e.cause(),
        };
        cur = next;
    }
    parts.join(": ")
}

/// Why a connection failed, in a few words, from the hyper/rustls error chain
/// ("dispatch failure: io error: client error (Connect): tcp connect error: ...").
pub(crate) fn connect_reason(chain: &str) -> String {
    let lower = chain.to_lowercase();
    if lower.contains("connection refused") {
        "connection refused".into()
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        "cannot resolve the host name".into()
    } else if lower.contains("network is unreachable") {
        "network is unreachable".into()
    } else if lower.contains("certificate") || lower.contains("invalidcertificate") {
        format!("TLS certificate not trusted ({})", tidy(chain))
    } else {
        tidy(chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_survives_the_wire_and_keeps_its_exit_code() {
        let all = [
            Kind::Other,
            Kind::Usage,
            Kind::Config,
            Kind::Daemon,
            Kind::Auth,
            Kind::MfaRequired,
            Kind::SsoLoginRequired,
            Kind::Interrupted,
            Kind::NotExecutable,
            Kind::NotFound,
        ];
        for k in all {
            assert_eq!(Kind::parse(k.as_str()), k, "{}", k.as_str());
        }
        assert_eq!(Kind::parse("from-a-newer-daemon"), Kind::Other);
    }
}
