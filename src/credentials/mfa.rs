//! MFA codes: from `MFA.command`, the check every code passes, and the error that asks
//! the command layer for one (it prompts; nothing here touches the terminal). Codes are
//! never logged or echoed.

use std::time::Duration;

use super::external;
use crate::config::schema::Command;
use crate::error::{Error, Kind, Result};
use crate::sensitive::Sensitive;

pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 30;

pub(crate) fn check_code(code: &str, from: &str) -> Result<Sensitive> {
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

/// The device a [`no_tty`] error, or the refusal of a code, names (the error may have
/// come from the daemon).
pub(crate) fn serial_of(err: &Error) -> Option<&str> {
    match &err.detail {
        Some(crate::error::Detail::MfaRequired { serial })
        | Some(crate::error::Detail::MfaCodeRefused { serial, .. }) => Some(serial),
        _ => None,
    }
}

/// Why STS refused the MFA code given (AWS's code and message), when it did: a person
/// may type another.
pub(crate) fn refusal_of(err: &Error) -> Option<&str> {
    match &err.detail {
        Some(crate::error::Detail::MfaCodeRefused { reason, .. }) => Some(reason),
        _ => None,
    }
}

const NO_TTY_HEAD: &str = "an MFA code is needed for ";
const NO_TTY_TAIL: &str = ", and there is no terminal to ask on";

/// The error when a code is needed and nobody can be asked: an MFA code is needed for
/// `serial` and this process cannot ask for it.
pub(crate) fn no_tty(serial: &str) -> Error {
    Error::new(
        Kind::MfaRequired,
        format!("{NO_TTY_HEAD}{serial}{NO_TTY_TAIL}"),
    )
    .with_detail(crate::error::Detail::MfaRequired {
        serial: serial.to_string(),
    })
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
