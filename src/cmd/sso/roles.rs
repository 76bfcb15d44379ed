//! `elhaz sso roles [NAME] [--json]`: every account and role the SSO session can use,
//! as a table or JSON.

use std::process::ExitCode;

use crate::cli::RolesArgs;
use crate::context::SourceContext;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::{Error, Kind, Result};
use crate::sso::accounts::{self, AccountRole, Progress};
use crate::sso::listing;
use crate::sso::polite::Polite;
use crate::sso::session::SsoSession;
use crate::sso::token;

/// The session's accounts and roles: the list an earlier run cached when it is younger
/// than `max_age` seconds and `refresh` is not asked, else the portal's, with a spinner
/// on a terminal (and, when the session has expired, the login offered for it in
/// `source`'s AWS config file), cached for the next run.
pub(crate) fn fetch(
    session: &SsoSession,
    source: &SourceContext,
    max_age: u64,
    refresh: bool,
) -> Result<Vec<AccountRole>> {
    if !refresh && let Some(roles) = listing::read(session, max_age) {
        return Ok(roles);
    }
    let asked = std::time::SystemTime::now();
    let roles = match fetch_once(session) {
        // An expired session: on a terminal, the login is offered, as for credentials.
        Err(e) if e.kind == crate::error::Kind::SsoLoginRequired => {
            super::offer_login(e, asked, source)?;
            fetch_once(session)
        }
        r => r,
    }?;
    if let Err(e) = listing::write(session, &roles) {
        eprintln!(
            "elhaz: warning: the account list is not cached: {}",
            e.message
        );
    }
    Ok(roles)
}

/// The portal's list, with a progress bar on a terminal (cleared when done, and when
/// Ctrl-C ends the listing: exit 130).
fn fetch_once(session: &SsoSession) -> Result<Vec<AccountRole>> {
    let polite = Polite::from_env()?;
    let progress = Arc::new(Progress::default());
    let seen = Arc::clone(&progress);
    let label = session.label().to_string();
    let status = move || {
        let line = seen.line();
        if !seen.counted.load(Ordering::Relaxed) {
            return (0, 0, format!("listing the accounts of {label}: {line}"));
        }
        let done = seen.listed.load(Ordering::Relaxed) as u64;
        (done, seen.accounts.load(Ordering::Relaxed) as u64, line)
    };
    crate::cmd::spinner::watch(status, || {
        crate::broker::runtime()?.block_on(async {
            let client = accounts::client(session);
            let listing = token::with_token(session, |token| {
                let (client, polite, progress) = (&client, &polite, &progress);
                async move { accounts::list(session, client, &token, polite, progress).await }
            });
            tokio::select! {
                listed = listing => listed,
                _ = tokio::signal::ctrl_c() => Err(Error::new(Kind::Interrupted, "")),
            }
        })
    })
}

/// `text` with what a terminal would obey shown as `?` (keeping the table's columns).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if crate::terminal::is_unsafe_char(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

pub(crate) fn run(args: &RolesArgs, source: &SourceContext) -> Result<ExitCode> {
    let session = super::pick(args.name.as_deref(), source)?;
    let roles = fetch(&session, source, args.max_age.0, args.refresh)?;
    if args.json {
        crate::cmd::print_json(&serde_json::to_value(&roles).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    if roles.is_empty() {
        eprintln!(
            "elhaz: SSO session '{}' has no accounts or roles assigned",
            session.label()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Names come from the portal: no control character reaches the terminal.
    let roles: Vec<AccountRole> = roles
        .into_iter()
        .map(|r| AccountRole {
            account_name: printable(&r.account_name),
            account_id: printable(&r.account_id),
            role_name: printable(&r.role_name),
        })
        .collect();
    let mut rows = vec![vec!["ACCOUNT", "ACCOUNT ID", "ROLE"]];
    rows.extend(
        roles
            .iter()
            .map(|r| vec![r.account_name.as_str(), &r.account_id, &r.role_name]),
    );
    for line in crate::cmd::table::columns(&rows) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
