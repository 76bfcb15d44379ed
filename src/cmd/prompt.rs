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

/// Asks a yes/no question on the terminal, its line edited as the text prompts'
/// ([`super::line`]): an empty answer is `default`, end of input (Ctrl-D) is no, an
/// answer that is neither yes nor no is asked again; Ctrl-C or Esc ends elhaz (130).
pub(crate) fn confirm(question: &str, default: bool) -> Result<bool> {
    let choices = if default { "[Y/n]" } else { "[y/N]" };
    let label = format!("{question} {choices}");
    let answer = super::line::Line::new(&label)
        .check(|s| {
            yes_or_no(s)
                .map(|_| ())
                .ok_or_else(|| "answer y or n".to_string())
        })
        .at_end_of_input("n")
        .ask()?;
    Ok(yes_or_no(&answer).flatten().unwrap_or(default))
}

/// A yes/no answer: Some(None) when empty (the default), None when it is neither.
fn yes_or_no(s: &str) -> Option<Option<bool>> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" => Some(None),
        "y" | "yes" => Some(Some(true)),
        "n" | "no" => Some(Some(false)),
        _ => None,
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
