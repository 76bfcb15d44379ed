//! `elhaz sso roles [NAME] [--json]`: every account and role the SSO session can use,
//! as a table or JSON.

use std::process::ExitCode;

use crate::cli::RolesArgs;
use crate::context::SourceContext;
use crate::error::Result;
use crate::sso::accounts::{self, AccountRole};
use crate::sso::polite::Polite;
use crate::sso::session::SsoSession;
use crate::sso::token;

/// The session's accounts and roles, with a spinner on a terminal (and, when it has
/// expired, the login offered for it in `source`'s AWS config file).
pub(crate) fn fetch(session: &SsoSession, source: &SourceContext) -> Result<Vec<AccountRole>> {
    let asked = std::time::SystemTime::now();
    match fetch_once(session) {
        // An expired session: on a terminal, the login is offered, as for credentials.
        Err(e) if e.kind == crate::error::Kind::SsoLoginRequired => {
            super::offer_login(e, asked, source)?;
            fetch_once(session)
        }
        r => r,
    }
}

fn fetch_once(session: &SsoSession) -> Result<Vec<AccountRole>> {
    let label = session.label();
    let polite = Polite::from_env()?;
    crate::cmd::spinner::spin(
        &format!("listing the accounts and roles of {label}"),
        || {
            crate::broker::runtime()?.block_on(async {
                let token = token::access_token(session).await?;
                let client = accounts::client(session);
                accounts::list(session, &client, &token, &polite).await
            })
        },
    )
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
    let roles = fetch(&session, source)?;
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
