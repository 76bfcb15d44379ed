//! The SSO portal (aws-sdk-sso) at `portal.sso.<region>.amazonaws.com` or
//! `AWS_ENDPOINT_URL_SSO`: GetRoleCredentials (a token → one account-role's
//! credentials) and Logout. The account listing lives in `accounts`.

use aws_sdk_sso::error::{ProvideErrorMetadata, SdkError};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use super::SsoSession;
use crate::error::{Error, Result};

/// The portal endpoint: AWS_ENDPOINT_URL_SSO, else the region's.
pub(crate) fn endpoint(session: &SsoSession) -> String {
    match session.portal_override() {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("https://portal.sso.{}.amazonaws.com", session.region),
    }
}

/// A portal client for the session's region (and the endpoint override).
pub(crate) fn client(session: &SsoSession) -> aws_sdk_sso::Client {
    aws_sdk_sso::Client::new(&super::sdk_config(session, endpoint(session)))
}

/// One account-role's credentials from the portal.
pub(crate) struct RoleCredentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: SecretString,
    pub(crate) session_token: SecretString,
    pub(crate) expiration: OffsetDateTime,
}

/// GetRoleCredentials for `account`/`role` with `token`. A token the portal refuses
/// is a login the user must make again (the [`super::token::login_required`] error).
pub(crate) async fn role_credentials(
    session: &SsoSession,
    token: &SecretString,
    account: &str,
    role: &str,
) -> Result<RoleCredentials> {
    let out = client(session)
        .get_role_credentials()
        .access_token(token.expose_secret())
        .account_id(account)
        .role_name(role)
        .send()
        .await
        .map_err(|e| {
            if let SdkError::ServiceError(se) = &e
                && se.err().is_unauthorized_exception()
            {
                return super::token::login_required(session);
            }
            failed(
                &format!("GetRoleCredentials for {account}/{role}"),
                session,
                e,
            )
        })?;
    let Some(c) = out.role_credentials() else {
        return Err(Error::auth(format!(
            "the SSO portal gave no credentials for {account}/{role}"
        )));
    };
    let (Some(id), Some(secret), Some(st)) =
        (c.access_key_id(), c.secret_access_key(), c.session_token())
    else {
        return Err(Error::auth(format!(
            "the SSO portal gave incomplete credentials for {account}/{role}"
        )));
    };
    // roleCredentials.expiration is in milliseconds since the epoch.
    let expiration = OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(c.expiration()) * 1_000_000,
    )
    .map_err(|_| {
        Error::auth(format!(
            "the SSO portal gave a bad expiration for {account}/{role}: {}",
            c.expiration()
        ))
    })?;
    Ok(RoleCredentials {
        access_key_id: id.to_string(),
        secret_access_key: SecretString::from(secret.to_string()),
        session_token: SecretString::from(st.to_string()),
        expiration,
    })
}

/// The portal's Logout: the token and the sessions it opened end on the AWS side.
pub(crate) async fn logout(session: &SsoSession, token: &SecretString) -> Result<()> {
    client(session)
        .logout()
        .access_token(token.expose_secret())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| failed("Logout", session, e))
}

fn failed<E, R>(call: &str, session: &SsoSession, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    super::call_failed(
        "SSO portal",
        call,
        &endpoint(session),
        "AWS_ENDPOINT_URL_SSO",
        err,
    )
}
