//! Secrets a config gets from outside, afresh at each fetch: a web identity token or a
//! SAML assertion, read from a file or printed by a command. The command's stderr goes
//! to ours (an IdP helper may ask something there); its output is held as
//! [`Sensitive`] and never logged. Knows nothing of STS.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::config::schema::Command;
use crate::error::{Error, Kind, Result, io_reason};
use crate::sensitive::Sensitive;

/// How long a token or assertion command may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The most a token or assertion command may print (assertions run to tens of KiB).
const MAX_OUTPUT: u64 = 1 << 20;

/// The names a section gives its two sources, for messages.
pub(crate) struct Names {
    /// `AssumeRoleWithWebIdentity`
    pub(crate) section: &'static str,
    /// `WebIdentityTokenFile`
    pub(crate) file_key: &'static str,
    /// `WebIdentityTokenCommand`
    pub(crate) command_key: &'static str,
    /// `token`: what the command prints.
    pub(crate) what: &'static str,
}

pub(crate) const WEB_IDENTITY: Names = Names {
    section: "AssumeRoleWithWebIdentity",
    file_key: "WebIdentityTokenFile",
    command_key: "WebIdentityTokenCommand",
    what: "token",
};

pub(crate) const SAML: Names = Names {
    section: "AssumeRoleWithSAML",
    file_key: "SAMLAssertionFile",
    command_key: "SAMLAssertionCommand",
    what: "SAML assertion",
};

/// The secret from `file`, else from `command`; trimmed, never empty.
pub(crate) async fn read(
    file: Option<&str>,
    command: Option<&Command>,
    names: &Names,
) -> Result<Sensitive> {
    if let Some(path) = file {
        return read_file(path, names).await;
    }
    let Some(cmd) = command else {
        return Err(Error::config(format!(
            "{} needs {} or {}",
            names.section, names.file_key, names.command_key
        )));
    };
    run(cmd, names).await
}

async fn read_file(path: &str, names: &Names) -> Result<Sensitive> {
    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
        Error::io(
            Kind::Config,
            &format!("{}: cannot read {}", names.section, names.file_key),
            Path::new(path),
            &e,
        )
    })?;
    let value = Sensitive::new(text.trim());
    drop(zeroize::Zeroizing::new(text));
    if value.expose().is_empty() {
        return Err(Error::config(format!(
            "{}: {} {path} is empty",
            names.section, names.file_key
        )));
    }
    Ok(value)
}

/// How a command is shown in messages: its text, or its argv joined.
pub(crate) fn shown(cmd: &Command) -> String {
    match cmd {
        Command::Shell(s) => s.clone(),
        Command::Argv(v) => v.join(" "),
    }
}

/// How to run a command that prints a secret, and what to call it in messages.
pub(crate) struct Run {
    /// The config key that names the command: `MFA.command`, `SAMLAssertionCommand`.
    pub(crate) label: &'static str,
    pub(crate) timeout: Duration,
    /// Bytes of output kept; the rest is not read.
    pub(crate) max_output: u64,
    pub(crate) timeout_hint: Option<&'static str>,
}

impl Run {
    /// Runs `command` (a string through `sh -c`, or an argv list) with no stdin and
    /// our stderr, and returns what it printed if it succeeded in time. On time-out the
    /// command and everything it started are killed.
    pub(crate) async fn output(&self, command: &Command) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let (label, shown) = (self.label, shown(command));
        let mut cmd = match command {
            Command::Shell(s) => {
                let mut c = tokio::process::Command::new("sh");
                c.arg("-c").arg(s);
                c
            }
            Command::Argv(argv) => {
                let Some((prog, args)) = argv.split_first() else {
                    return Err(Error::config(format!("{label} is an empty list")));
                };
                let mut c = tokio::process::Command::new(prog);
                c.args(args);
                c
            }
        };
        // Not `output()`: tokio's pipes stderr too, and a helper's prompt must reach
        // the terminal.
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            Error::config(format!("cannot run {label} `{shown}`: {}", io_reason(&e)))
        })?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let pid = child.id();
        let run = async {
            let mut out = zeroize::Zeroizing::new(Vec::new());
            let _ = (&mut stdout)
                .take(self.max_output)
                .read_to_end(&mut out)
                .await;
            let status = child.wait().await;
            (out, status)
        };
        let (out, status) = tokio::time::timeout(self.timeout, run).await.map_err(|_| {
            // `sh -c` forks: killing the shell alone would leave e.g. a `sleep` or
            // a `ykman` waiting for a touch, holding our stderr open.
            if let Some(pid) = pid {
                kill_tree(pid);
            }
            let e = Error::auth(format!(
                "{label} `{shown}` timed out after {}s",
                self.timeout.as_secs()
            ));
            match self.timeout_hint {
                Some(h) => e.with_hint(h),
                None => e,
            }
        })?;
        let status =
            status.map_err(|e| Error::auth(format!("{label} `{shown}`: {}", io_reason(&e))))?;
        if !status.success() {
            let how = match status.code() {
                Some(c) => format!("exited with status {c}"),
                None => "was killed by a signal".to_string(),
            };
            return Err(Error::auth(format!("{label} `{shown}` {how}")));
        }
        Ok(out)
    }
}

async fn run(cmd: &Command, names: &Names) -> Result<Sensitive> {
    let run = Run {
        label: names.command_key,
        timeout: TIMEOUT,
        max_output: MAX_OUTPUT,
        timeout_hint: None,
    };
    let out = run.output(cmd).await?;
    let value = Sensitive::new(String::from_utf8_lossy(&out).trim());
    if value.expose().is_empty() {
        return Err(Error::auth(format!(
            "{} `{}` printed no {}",
            names.command_key,
            shown(cmd),
            names.what
        )));
    }
    Ok(value)
}

/// SIGKILLs `pid` and every process below it (found through /proc; where there is
/// none, only `pid`). The tree is listed before anything is killed, so orphans cannot
/// escape by being re-parented.
fn kill_tree(pid: u32) {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let ppid = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
        if let Some(ppid) = ppid {
            parents.push((p, ppid));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for (p, pp) in &parents {
            if *pp == parent && !tree.contains(p) {
                tree.push(*p);
            }
        }
        i += 1;
    }
    for p in tree {
        if let Ok(p) = i32::try_from(p) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
