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

/// The variable that tells an elhaz started by a helper which NAMEs the elhaz that
/// runs the helper is resolving: asked for one of them, it is a loop and says so at
/// once, instead of waiting on a daemon that waits on it.
pub(crate) const RESOLVING_VAR: &str = "ELHAZ_RESOLVING";

tokio::task_local! {
    /// The NAMEs the current fetch resolves (outermost first), for [`RESOLVING_VAR`].
    pub(crate) static RESOLVING: Vec<String>;
    /// What helpers of the current fetch said on stderr, when it is captured.
    pub(crate) static NOTES: std::cell::RefCell<Vec<String>>;
}

/// In the daemon, a helper's stderr reaches no terminal: it is captured, logged and
/// relayed to the caller instead.
static CAPTURE_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Capture helpers' stderr from now on (the daemon calls it at boot).
pub(crate) fn capture_stderr() {
    CAPTURE_STDERR.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The most of a helper's stderr relayed.
const MAX_STDERR: u64 = 4096;

/// The NAMEs this process was started to resolve, by an elhaz that runs it as a helper.
pub(crate) fn inherited_names() -> Vec<String> {
    std::env::var(RESOLVING_VAR)
        .map(|v| {
            v.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The loop error when `name` is one that the elhaz running this process as a helper
/// is resolving.
pub(crate) fn loop_of(name: &str) -> Option<Error> {
    loop_in(&inherited_names(), name)
}

/// The NAMEs being resolved around this fetch: those of the request the daemon
/// answers (its caller's chain), else those this process was started to resolve.
pub(crate) fn resolving_now() -> Vec<String> {
    RESOLVING
        .try_with(Vec::clone)
        .unwrap_or_else(|_| inherited_names())
}

/// The loop error when `name` is among `names`, the NAMEs being resolved.
pub(crate) fn loop_in(names: &[String], name: &str) -> Option<Error> {
    names.iter().any(|n| n == name).then(|| {
        Error::config(format!(
            "{name} loops: its source runs elhaz for {name} again (resolving {})",
            names.join(" → ")
        ))
        .with_hint("credentials elhaz serves are never a source: point the credential_process or source at the keys, SSO or helper that the NAME uses")
    })
}

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
        self.output_with(command, None).await
    }

    /// The same, with the caller context's variables (set or removed) in the
    /// command's environment, as an SDK running a `credential_process` gives it.
    pub(crate) async fn output_with(
        &self,
        command: &Command,
        ctx: Option<&crate::context::SourceContext>,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
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
        helper_env(&mut cmd, ctx);
        // Not `output()`: tokio's pipes stderr too, and a helper's prompt must reach
        // the terminal (in the daemon, there is none: captured and relayed).
        let capture = CAPTURE_STDERR.load(std::sync::atomic::Ordering::Relaxed);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if capture {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            Error::config(format!("cannot run {label} `{shown}`: {}", io_reason(&e)))
        })?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take();
        let pid = child.id();
        let said = tokio::spawn(async move {
            let mut text = Vec::new();
            if let Some(mut e) = stderr {
                let _ = (&mut e).take(MAX_STDERR).read_to_end(&mut text).await;
                // Drain the rest, so the helper never blocks on a full pipe.
                let _ = tokio::io::copy(&mut e, &mut tokio::io::sink()).await;
            }
            text
        });
        let run = async {
            let mut out = zeroize::Zeroizing::new(Vec::new());
            let _ = (&mut stdout)
                .take(self.max_output)
                .read_to_end(&mut out)
                .await;
            let status = child.wait().await;
            (out, status)
        };
        let relay = |said: Vec<u8>| relay_stderr(label, &shown, &said);
        let finished = tokio::time::timeout(self.timeout, run).await;
        if finished.is_err()
            && let Some(pid) = pid
        {
            // `sh -c` forks: killing the shell alone would leave e.g. a `sleep` or
            // a `ykman` waiting for a touch, holding our stderr open.
            kill_tree(pid);
        }
        let note = relay(said.await.unwrap_or_default());
        let with_note = |e: Error| match &note {
            Some(n) => {
                let mut e = e;
                e.message = format!("{}; it said: {n}", e.message);
                e
            }
            None => e,
        };
        let (out, status) = finished.map_err(|_| {
            let e = Error::auth(format!(
                "{label} `{shown}` timed out after {}s",
                self.timeout.as_secs()
            ));
            with_note(match self.timeout_hint {
                Some(h) => e.with_hint(h),
                None => e,
            })
        })?;
        let status =
            status.map_err(|e| Error::auth(format!("{label} `{shown}`: {}", io_reason(&e))))?;
        if !status.success() {
            let how = match status.code() {
                Some(c) => format!("exited with status {c}"),
                None => "was killed by a signal".to_string(),
            };
            return Err(with_note(Error::auth(format!("{label} `{shown}` {how}"))));
        }
        Ok(out)
    }
}

/// A helper's environment: the caller context's variables where one is given, never
/// a kept source key (`ELHAZ_SOURCE_*` secrets), and the NAMEs being resolved.
fn helper_env(cmd: &mut tokio::process::Command, ctx: Option<&crate::context::SourceContext>) {
    use crate::context;
    for k in context::SECRET {
        cmd.env_remove(context::source_var(k));
    }
    if let Some(ctx) = ctx {
        for v in context::VARS {
            match ctx.get(v) {
                Some(val) => cmd.env(v, val),
                None => cmd.env_remove(v),
            };
        }
    }
    match RESOLVING.try_with(|n| n.join("\n")) {
        Ok(names) => cmd.env(RESOLVING_VAR, names),
        Err(_) => cmd.env_remove(RESOLVING_VAR),
    };
}

/// What a helper said on stderr (captured in the daemon): logged, kept for the
/// caller, control characters escaped; None when it said nothing.
fn relay_stderr(label: &str, shown: &str, said: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(said);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let text = crate::terminal::escape_controls(text).into_owned();
    tracing::info!(helper = %label, command = %shown, stderr = %text, "a helper wrote on stderr");
    let note = format!("{label} `{shown}`: {text}");
    let _ = NOTES.try_with(|n| n.borrow_mut().push(note));
    Some(text)
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

/// SIGKILLs `pid` and every process below it (see [`crate::sys::process_tree`]).
fn kill_tree(pid: u32) {
    for p in crate::sys::process_tree(pid) {
        if let Ok(p) = i32::try_from(p) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
