//! Every account and role an SSO session can use: the portal's ListAccounts, then
//! ListAccountRoles for each account, every page of each, a few accounts at a time.
//! It knows the portal's API and nothing of the terminal or the config file.

use std::error::Error as StdError;
use std::sync::Arc;

use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::session::SsoSession;
use crate::error::{Error, Result, chain, tidy};

/// How many accounts' roles are asked for at once: enough to list a large organisation
/// quickly, few enough to stay under the portal's rate limit (the SDK retries a 429).
const IN_FLIGHT: usize = 4;

/// One role the user can assume, in one account.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(crate) struct AccountRole {
    pub(crate) account_name: String,
    pub(crate) account_id: String,
    pub(crate) role_name: String,
}

/// Every (account, role) the token may use, sorted by account name, account id and
/// role name (the portal's own order is not stable).
pub(crate) async fn list(
    session: &SsoSession,
    client: &aws_sdk_sso::Client,
    token: &SecretString,
) -> Result<Vec<AccountRole>> {
    let accounts = client
        .list_accounts()
        .access_token(token.expose_secret())
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| portal_error(session, "ListAccounts", e))?;

    let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for account in accounts {
        let Some(id) = account.account_id().map(str::to_string) else {
            continue;
        };
        let name = account
            .account_name()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(&id)
            .to_string();
        let (client, token, limit, session) = (
            client.clone(),
            token.clone(),
            limit.clone(),
            session.clone(),
        );
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let roles = client
                .list_account_roles()
                .access_token(token.expose_secret())
                .account_id(&id)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| portal_error(&session, &format!("ListAccountRoles {id}"), e))?;
            Ok::<_, Error>(
                roles
                    .into_iter()
                    .filter_map(|r| r.role_name().map(str::to_string))
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
        let roles = joined.map_err(|e| Error::other(format!("listing roles failed: {e}")))??;
        all.extend(roles);
    }
    all.sort();
    all.dedup();
    Ok(all)
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

/// The message of an expired or revoked session, with the command that renews it.
pub(crate) fn expired(session: &SsoSession) -> Error {
    let label = session.label();
    Error::auth(format!(
        "SSO session '{label}' has expired; run: elhaz sso login {label}"
    ))
}

/// A portal failure: 401 is an expired or revoked session; anything else names the
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
                return expired(session);
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
                err.with_hint("the portal is throttling; retried 3 times, try again shortly")
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
