//! MFA codes: from `MFA.command`, or typed on the controlling terminal. Codes are never
//! logged or echoed. Knows nothing of what else the command layer shows on the
//! terminal: it keeps that out of the prompt's way through [`set_prompt_guard`].

use std::time::Duration;

use super::external;
use crate::config::schema::Command;
use crate::error::{Error, Kind, Result};
use crate::sensitive::Sensitive;

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

/// Runs `command` (a string through `sh -c`, or an argv list) and returns the code it
/// prints. Its stderr goes to ours, so a prompt from e.g. `ykman` reaches the terminal.
pub(crate) async fn code_from_command(
    command: &Command,
    timeout: Option<u64>,
) -> Result<Sensitive> {
    let secs = timeout.unwrap_or(DEFAULT_TIMEOUT_SECS);
    let run = external::Run {
        label: "MFA.command",
        timeout: Duration::from_secs(secs),
        max_output: 4096,
        timeout_hint: Some("raise MFA.timeout, or check that the command does not wait for input"),
    };
    let out = run.output(command).await?;
    check_code(
        &String::from_utf8_lossy(&out),
        &format!("MFA.command `{}`", external::shown(command)),
    )
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
/// The device a [`no_tty`] error names (the error may have come from the daemon).
pub(crate) fn serial_of(err: &Error) -> Option<&str> {
    err.message
        .strip_prefix(NO_TTY_HEAD)?
        .strip_suffix(NO_TTY_TAIL)
}

const NO_TTY_HEAD: &str = "an MFA code is needed for ";
const NO_TTY_TAIL: &str = ", and there is no terminal to ask on";

/// An MFA code is needed for `serial` and this process cannot ask for it.
pub(crate) fn no_tty(serial: &str) -> Error {
    Error::new(
        Kind::MfaRequired,
        format!("{NO_TTY_HEAD}{serial}{NO_TTY_TAIL}"),
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
