//! Every account and role an SSO session can use: the portal's ListAccounts, then
//! ListAccountRoles for each account, every page of each (100 items a page, the most
//! the portal allows), every call through one [`Polite`] (a shared rate limit, a
//! window of calls in flight that follows the portal, retries when it throttles), with
//! its [`Progress`] for whoever shows it. It knows the portal's API and nothing of the
//! terminal or the config file.

use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::polite::Polite;
use super::session::SsoSession;
use crate::error::{Error, Kind, Result, chain, tidy};

/// Items asked for a page: the most the portal accepts.
const PAGE: i32 = 100;

/// One role the user can assume, in one account.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct AccountRole {
    pub(crate) account_name: String,
    pub(crate) account_id: String,
    pub(crate) role_name: String,
}

/// How far a listing got, as it goes.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Accounts found so far (all of them once `listed` counts).
    pub(crate) accounts: AtomicUsize,
    /// Whether every page of accounts has come.
    pub(crate) counted: std::sync::atomic::AtomicBool,
    /// Accounts whose roles are all listed.
    pub(crate) listed: AtomicUsize,
    /// Roles listed so far.
    pub(crate) roles: AtomicUsize,
}

impl Progress {
    /// `accounts 340/1,000, roles 812` (`accounts 300…` while they are being counted).
    pub(crate) fn line(&self) -> String {
        let accounts = self.accounts.load(Ordering::Relaxed);
        if !self.counted.load(Ordering::Relaxed) {
            return format!("accounts {}…", count(accounts));
        }
        format!(
            "accounts {}/{}, roles {}",
            count(self.listed.load(Ordering::Relaxed)),
            count(accounts),
            count(self.roles.load(Ordering::Relaxed))
        )
    }
}

/// A portal client for listing: no retries of the SDK's own, as [`Polite`] makes them
/// (each attempt waiting its turn at the rate limit).
pub(crate) fn client(session: &SsoSession) -> aws_sdk_sso::Client {
    let shared = super::sdk_config(session, super::portal::endpoint(session));
    let conf = aws_sdk_sso::config::Builder::from(&shared)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sso::Client::from_conf(conf)
}

/// Every (account, role) the token may use, sorted by account name, account id and
/// role name (the portal's own order is not stable). A failure that is not a login
/// to make again says how far the listing got.
pub(crate) async fn list(
    session: &SsoSession,
    client: &aws_sdk_sso::Client,
    token: &SecretString,
    polite: &Polite,
    progress: &Arc<Progress>,
) -> Result<Vec<AccountRole>> {
    let accounts = list_accounts(session, client, token, polite, progress).await?;
    progress.counted.store(true, Ordering::Relaxed);
    let total = accounts.len();
    // Every account at once: the window and the rate limit decide how many calls go.
    let mut tasks = tokio::task::JoinSet::new();
    for (id, name) in accounts {
        let (client, token, session, polite, progress) = (
            client.clone(),
            token.clone(),
            session.clone(),
            polite.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            let roles = account_roles(&session, &client, &token, &polite, &id).await?;
            progress.roles.fetch_add(roles.len(), Ordering::Relaxed);
            progress.listed.fetch_add(1, Ordering::Relaxed);
            Ok::<_, Error>(
                roles
                    .into_iter()
                    .map(|role_name| AccountRole {
                        account_name: name.clone(),
                        account_id: id.clone(),
                        role_name,
                    })
                    .collect::<Vec<_>>(),
            )
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let roles = joined
            .map_err(|e| Error::other(format!("listing roles failed: {e}")))
            .and_then(|r| r)
            .map_err(|e| {
                let done = progress.listed.load(Ordering::Relaxed);
                stopped(
                    e,
                    &format!("listed {} of {} accounts", count(done), count(total)),
                )
            })?;
        all.extend(roles);
    }
    tracing::debug!(
        accounts = total,
        roles = all.len(),
        window = polite.window(),
        "listed the portal's accounts and roles"
    );
    all.sort();
    all.dedup();
    Ok(all)
}

/// Every (account id, account name) of ListAccounts, page after page.
async fn list_accounts(
    session: &SsoSession,
    client: &aws_sdk_sso::Client,
    token: &SecretString,
    polite: &Polite,
    progress: &Progress,
) -> Result<Vec<(String, String)>> {
    let mut accounts = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = polite
            .call(|| {
                client
                    .list_accounts()
                    .access_token(token.expose_secret())
                    .max_results(PAGE)
                    .set_next_token(next.clone())
                    .send()
            })
            .await
            .map_err(|e| {
                let so_far = format!("found {} accounts", count(accounts.len()));
                stopped(portal_error(session, "ListAccounts", e), &so_far)
            })?;
        for a in out.account_list() {
            let Some(id) = a.account_id() else { continue };
            let name = a
                .account_name()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(id);
            accounts.push((id.to_string(), name.to_string()));
        }
        progress.accounts.store(accounts.len(), Ordering::Relaxed);
        next = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if next.is_none() {
            return Ok(accounts);
        }
    }
}

/// Every role name of ListAccountRoles for account `id`, page after page.
async fn account_roles(
    session: &SsoSession,
    client: &aws_sdk_sso::Client,
    token: &SecretString,
    polite: &Polite,
    id: &str,
) -> Result<Vec<String>> {
    let mut roles = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = polite
            .call(|| {
                client
                    .list_account_roles()
                    .access_token(token.expose_secret())
                    .account_id(id)
                    .max_results(PAGE)
                    .set_next_token(next.clone())
                    .send()
            })
            .await
            .map_err(|e| portal_error(session, &format!("ListAccountRoles {id}"), e))?;
        roles.extend(
            out.role_list()
                .iter()
                .filter_map(|r| r.role_name().map(str::to_string)),
        );
        next = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if next.is_none() {
            return Ok(roles);
        }
    }
}

/// A listing cut off by `err`: a login to make again stays that; anything else says
/// how far the listing got (`so_far`).
fn stopped(err: Error, so_far: &str) -> Error {
    if err.kind == Kind::SsoLoginRequired {
        return err;
    }
    Error {
        message: format!("{}; {so_far}", err.message),
        ..err
    }
}

/// `n` with thousands separated by commas, as people read counts: 1,000.
pub(crate) fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The portal's URL, for messages.
fn endpoint(session: &SsoSession) -> String {
    session
        .portal_override()
        .unwrap_or_else(|| format!("https://portal.sso.{}.amazonaws.com", session.region))
}

/// Why a connection failed, in a few words where the error chain says it plainly.
fn unreachable_reason(chain: &str) -> String {
    let lower = chain.to_lowercase();
    if lower.contains("connection refused") {
        "connection refused".into()
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        "cannot resolve the host name".into()
    } else if lower.contains("timed out") || lower.contains("timeout") {
        "no answer in time".into()
    } else {
        tidy(chain)
    }
}

/// A portal failure: 401 is a token the portal refuses (expired or revoked); anything else names the
/// call, the portal and its answer.
fn portal_error<E>(session: &SsoSession, call: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let at = endpoint(session);
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or_default();
            if code == "UnauthorizedException" || code == "ExpiredTokenException" {
                return super::token::login_required(session);
            }
            let status = Some(format!("HTTP {}", se.raw().status().as_u16()));
            let what = match (code, e.message(), status) {
                ("", None, Some(s)) => s,
                ("", Some(m), Some(s)) => format!("{s}: {m}"),
                (c, Some(m), _) => format!("{c}: {m}"),
                (c, None, Some(s)) if !c.is_empty() => format!("{s} {c}"),
                _ => tidy(&chain(&err)),
            };
            let err = Error::auth(format!(
                "{call} failed: the IAM Identity Center portal at {at} answered {what}"
            ));
            if code == "TooManyRequestsException" {
                err.with_hint(format!(
                    "the portal is throttling; asked {} times, try again shortly or set ELHAZ_SSO_RATE lower",
                    super::polite::ATTEMPTS
                ))
            } else {
                err.with_hint("try again later; check AWS_ENDPOINT_URL_SSO if it is set")
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Error::auth(format!(
            "{call} failed: cannot reach the IAM Identity Center portal at {at}: {}",
            unreachable_reason(&chain(&err))
        ))
        .with_hint("check the network, the session's sso_region and AWS_ENDPOINT_URL_SSO"),
        _ => Error::auth(format!(
            "{call} failed at the IAM Identity Center portal {at}: {}",
            tidy(&chain(&err))
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_read_with_thousands_separated() {
        for (n, s) in [
            (0, "0"),
            (640, "640"),
            (1000, "1,000"),
            (1234567, "1,234,567"),
        ] {
            assert_eq!(super::count(n), s);
        }
    }
}
