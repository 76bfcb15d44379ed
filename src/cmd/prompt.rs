//! Questions on the terminal: which NAME (a picker) and an MFA code the daemon needs,
//! and the broker wrapped so that commands get answers, not outcomes. Knows nothing of
//! the wire protocol or of how credentials are fetched.

use std::io::IsTerminal;

use crate::config::Store;
use crate::context::SourceContext;
use crate::credentials::mfa;
use crate::error::{Error, Kind, Result};
use crate::sensitive::Sensitive;

/// NAME from the command line, or a picker on a terminal, or an error listing names
/// (the configs and the profiles of `source`'s AWS files).
pub(crate) fn name_or_pick(
    store: &Store,
    name: Option<&str>,
    source: &SourceContext,
) -> Result<String> {
    if let Some(n) = name {
        return Ok(n.to_string());
    }
    let mut items = crate::config::resolve::choices(store, source)?;
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        let names: Vec<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Error::usage(format!(
            "no NAME given; choose one of: {}",
            names.join(", ")
        )));
    }
    let idx = pick_one("Which session?", &items, "no NAME chosen")?;
    Ok(items.swap_remove(idx).0)
}

/// A picker over `(name, what it is)` items, shown in two columns; the index chosen.
/// Ctrl-C and Esc are the quiet 130 (`none` says what not choosing means, for an
/// error of the terminal itself).
pub(crate) fn pick_one(question: &str, items: &[(String, String)], none: &str) -> Result<usize> {
    let rows: Vec<[&str; 2]> = items
        .iter()
        .map(|(n, d)| [n.as_str(), d.as_str()])
        .collect();
    let labels = super::table::columns(&rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>());
    let choice = inquire::Select::new(question, labels.clone())
        .with_page_size(15)
        .prompt()
        .map_err(|e| prompt_error(e, none))?;
    Ok(labels.iter().position(|l| *l == choice).unwrap_or(0))
}

/// What a failed prompt means: Ctrl-C and Esc (and Ctrl-D, which inquire takes as
/// Esc) end elhaz quietly with 130, as shells expect, and as the text prompts
/// ([`super::line`]) do; a terminal that cannot be used is an error followed by
/// `what` (its consequence).
pub(crate) fn prompt_error(e: inquire::InquireError, what: &str) -> Error {
    match e {
        inquire::InquireError::OperationInterrupted | inquire::InquireError::OperationCanceled => {
            Error::new(Kind::Interrupted, "")
        }
        e => Error::usage(format!("cannot prompt: {e}; {what}")),
    }
}

/// Asks a yes/no question on the terminal (/dev/tty, whatever stdin is), in the
/// terminal's own line editing: Ctrl-U, Ctrl-W and Backspace edit, Ctrl-C ends elhaz
/// (130). An empty answer is `default`; end of input is no.
pub(crate) fn confirm(question: &str, default: bool) -> Result<bool> {
    use std::io::{BufRead, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| Error::usage(format!("cannot open the terminal to ask: {e}")))?;
    let choices = if default { "[Y/n]" } else { "[y/N]" };
    let mut reader = std::io::BufReader::new(&tty);
    loop {
        let mut w = &tty;
        let _ = write!(w, "{question} {choices} ");
        let _ = w.flush();
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Error::usage(format!("cannot read the answer: {e}")))?;
        if n == 0 {
            let _ = writeln!(w);
            return Ok(false);
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "" => return Ok(default),
            "y" | "yes" => return Ok(true),
            "n" | "no" => return Ok(false),
            _ => {
                let _ = writeln!(w, "elhaz: answer y or n");
            }
        }
    }
}

/// An MFA code typed on the terminal, masked, with the spinner out of the way: anything
/// but 6 digits is refused at the prompt, with the reason, and asked again. Ctrl-C
/// (or Esc) restores the terminal and ends elhaz quietly with 130.
pub(super) fn typed_code(label: &str) -> Result<Sensitive> {
    let question = format!("MFA code for {label}:");
    let typed = crate::cmd::spinner::suspend(|| {
        super::line::Line::new(&question)
            .masked()
            .check(|s| {
                mfa::check_code(s, "the code typed")
                    .map(|_| ())
                    .map_err(|_| "an MFA code is 6 digits".to_string())
            })
            .ask()
    })?;
    mfa::check_code(&typed, "the MFA code typed")
}

/// Whether there is a terminal to ask an MFA code on.
pub(super) fn tty_available() -> bool {
    std::fs::File::open("/dev/tty").is_ok()
}
