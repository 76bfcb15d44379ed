//! MFA codes: from `MFA.command`, or typed on the controlling terminal. Codes are never
//! logged or echoed. Knows nothing of what else the command layer shows on the
//! terminal: it keeps that out of the prompt's way through [`set_prompt_guard`].

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::config::schema::{Command, Sensitive};
use crate::error::{Error, Kind, Result};

pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 30;

fn check_code(code: &str, from: &str) -> Result<Sensitive> {
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Sensitive::new(code))
    } else {
        Err(Error::auth(format!(
            "{from} did not give a 6-digit MFA code (got {} characters{})",
            code.chars().count(),
            if code.bytes().all(|b| b.is_ascii_digit()) {
                ""
            } else {
                ", not all digits"
            }
        )))
    }
}

fn describe(cmd: &Command) -> String {
    match cmd {
        Command::Shell(s) => s.clone(),
        Command::Argv(v) => v.join(" "),
    }
}

/// Runs `command` (a string through `sh -c`, or an argv list) and returns the code it
/// prints. Its stderr goes to ours, so a prompt from e.g. `ykman` reaches the terminal.
pub(crate) async fn code_from_command(
    command: &Command,
    timeout: Option<u64>,
) -> Result<Sensitive> {
    let secs = timeout.unwrap_or(DEFAULT_TIMEOUT_SECS);
    let mut cmd = match command {
        Command::Shell(s) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(s);
            c
        }
        Command::Argv(argv) => {
            let Some((prog, args)) = argv.split_first() else {
                return Err(Error::config("MFA.command is an empty list"));
            };
            let mut c = tokio::process::Command::new(prog);
            c.args(args);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let shown = describe(command);
    let mut child = cmd.spawn().map_err(|e| {
        Error::config(format!(
            "cannot run MFA.command `{shown}`: {}",
            crate::error::io_reason(&e)
        ))
    })?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let pid = child.id();
    let run = async {
        let mut out = Vec::new();
        // Read at most 4 KiB: a code is 6 digits.
        let _ = (&mut stdout).take(4096).read_to_end(&mut out).await;
        let status = child.wait().await;
        (out, status)
    };
    let (out, status) = tokio::time::timeout(Duration::from_secs(secs), run)
        .await
        .map_err(|_| {
            // `sh -c` forks: killing the shell alone would leave e.g. a `sleep` or a
            // `ykman` waiting for a touch, holding our stderr open after we gave up.
            if let Some(pid) = pid {
                kill_tree(pid);
            }
            Error::auth(format!("MFA.command `{shown}` timed out after {secs}s"))
                .with_hint("raise MFA.timeout, or check that the command does not wait for input")
        })?;
    let status = status.map_err(|e| {
        Error::auth(format!(
            "MFA.command `{shown}`: {}",
            crate::error::io_reason(&e)
        ))
    })?;
    if !status.success() {
        let how = match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".to_string(),
        };
        return Err(Error::auth(format!("MFA.command `{shown}` {how}")));
    }
    let mut out = out;
    let result = check_code(
        &String::from_utf8_lossy(&out),
        &format!("MFA.command `{shown}`"),
    );
    zeroize::Zeroize::zeroize(&mut out);
    result
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

/// Runs a prompt with whatever the command layer shows on the terminal (a spinner)
/// out of its way.
pub(crate) type PromptGuard = fn(&mut dyn FnMut());

static PROMPT_GUARD: std::sync::OnceLock<PromptGuard> = std::sync::OnceLock::new();

/// Sets the [`PromptGuard`] every terminal prompt runs under (once per process).
pub(crate) fn set_prompt_guard(guard: PromptGuard) {
    let _ = PROMPT_GUARD.set(guard);
}

/// Runs `f` under the prompt guard, if one is set.
fn guarded<T>(f: impl FnOnce() -> T) -> T {
    let mut f = Some(f);
    let mut out = None;
    let mut run = || {
        if let Some(f) = f.take() {
            out = Some(f());
        }
    };
    match PROMPT_GUARD.get() {
        Some(guard) => guard(&mut run),
        None => run(),
    }
    // A guard that did not run the prompt: run it here.
    match out {
        Some(v) => v,
        None => {
            let f = f.take().expect("the prompt ran or is still here");
            f()
        }
    }
}

/// Asks for the code on the controlling terminal, masked.
pub(crate) fn code_from_tty(serial: &str) -> Result<Sensitive> {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_err()
    {
        return Err(no_tty(serial));
    }
    let code = guarded(|| rpassword::prompt_password(format!("MFA code for {serial}: "))).map_err(
        |e| {
            Error::auth(format!(
                "cannot read the MFA code: {}",
                crate::error::io_reason(&e)
            ))
        },
    )?;
    check_code(&code, "the MFA code typed")
}

/// The error when a code is needed and nobody can be asked.
pub(crate) fn no_tty(serial: &str) -> Error {
    Error::new(
        Kind::MfaRequired,
        format!("an MFA code is needed for {serial}, and there is no terminal to ask on"),
    )
    .with_hint(
        "set MFA.command in the config (e.g. ykman oath accounts code -s NAME), or run the command from a terminal",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(check_code(" 123456\n", "x").unwrap().expose(), "123456");
        assert!(check_code("12345", "x").is_err());
        assert!(check_code("abcdef", "x").is_err());
        let e = check_code("abcdef", "x").unwrap_err();
        assert!(!e.message.contains("abcdef"), "the output is not echoed");
    }
}
