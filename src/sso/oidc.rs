//! The SSO OIDC API (aws-sdk-ssooidc): RegisterClient, StartDeviceAuthorization and
//! CreateToken, at `oidc.<region>.amazonaws.com` or `AWS_ENDPOINT_URL_SSO_OIDC`.
//! Secrets come in and go out as secrecy types; errors never carry them.

use std::time::Duration;

use aws_sdk_ssooidc::error::{ProvideErrorMetadata, SdkError};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use super::SsoSession;
use super::cache::Registration;
use crate::error::{Error, Result};

/// The device-code grant type, as OIDC names it.
pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// What elhaz calls itself when it registers.
const CLIENT_NAME: &str = "elhaz";

/// The OIDC endpoint: AWS_ENDPOINT_URL_SSO_OIDC, else the region's.
pub(crate) fn endpoint(session: &SsoSession) -> String {
    match session.oidc_override() {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("https://oidc.{}.amazonaws.com", session.region),
    }
}

fn client(session: &SsoSession) -> aws_sdk_ssooidc::Client {
    aws_sdk_ssooidc::Client::new(&super::sdk_config(session, endpoint(session)))
}

/// A token CreateToken issued.
pub(crate) struct Token {
    pub(crate) access_token: SecretString,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) refresh_token: Option<SecretString>,
}

/// Why CreateToken did not give a token (the device flow polls on the first two).
pub(crate) enum TokenError {
    Pending,
    SlowDown,
    Failed(Error),
}

/// RegisterClient for `grant_types` (and, for PKCE, the loopback redirect URI and the
/// start URL as issuer).
pub(crate) async fn register(
    session: &SsoSession,
    grant_types: &[&str],
    redirect_uri: Option<&str>,
) -> Result<Registration> {
    let mut req = client(session)
        .register_client()
        .client_name(CLIENT_NAME)
        .client_type("public")
        .set_scopes(Some(session.scopes.clone()).filter(|s| !s.is_empty()));
    // Legacy profiles register as the AWS CLI does for them: no grant types.
    if session.name.is_some() {
        for g in grant_types {
            req = req.grant_types(*g);
        }
    }
    if let Some(uri) = redirect_uri {
        req = req.redirect_uris(uri).issuer_url(&session.start_url);
    }
    let out = req
        .send()
        .await
        .map_err(|e| failed("RegisterClient", session, e))?;
    let (Some(id), Some(secret)) = (out.client_id(), out.client_secret()) else {
        return Err(Error::auth(format!(
            "SSO OIDC RegisterClient at {} gave no client id or secret",
            endpoint(session)
        )));
    };
    let expires_at = OffsetDateTime::from_unix_timestamp(out.client_secret_expires_at())
        .unwrap_or_else(|_| crate::duration::now() + Duration::from_secs(86_400));
    Ok(Registration {
        client_id: id.to_string(),
        client_secret: SecretString::from(secret.to_string()),
        expires_at,
    })
}

/// What StartDeviceAuthorization gave.
pub(crate) struct Device {
    pub(crate) device_code: SecretString,
    pub(crate) user_code: String,
    pub(crate) verification_uri: String,
    pub(crate) verification_uri_complete: Option<String>,
    pub(crate) expires_in: Duration,
    pub(crate) interval: Duration,
}

pub(crate) async fn start_device(session: &SsoSession, reg: &Registration) -> Result<Device> {
    let out = client(session)
        .start_device_authorization()
        .client_id(&reg.client_id)
        .client_secret(reg.client_secret.expose_secret())
        .start_url(&session.start_url)
        .send()
        .await
        .map_err(|e| failed("StartDeviceAuthorization", session, e))?;
    let (Some(code), Some(user), Some(uri)) =
        (out.device_code(), out.user_code(), out.verification_uri())
    else {
        return Err(Error::auth(format!(
            "SSO OIDC StartDeviceAuthorization at {} gave no device code, user code or URL",
            endpoint(session)
        )));
    };
    let secs = |n: i32, default: u64| {
        if n > 0 {
            Duration::from_secs(n as u64)
        } else {
            Duration::from_secs(default)
        }
    };
    Ok(Device {
        device_code: SecretString::from(code.to_string()),
        user_code: user.to_string(),
        verification_uri: uri.to_string(),
        verification_uri_complete: out.verification_uri_complete().map(str::to_string),
        expires_in: secs(out.expires_in(), 600),
        interval: secs(out.interval(), 5),
    })
}

/// The grant CreateToken is asked for.
pub(crate) enum Grant<'a> {
    Device(&'a SecretString),
    Code {
        code: &'a SecretString,
        verifier: &'a SecretString,
        redirect_uri: &'a str,
    },
    Refresh(&'a SecretString),
}

pub(crate) async fn create_token(
    session: &SsoSession,
    reg: &Registration,
    grant: Grant<'_>,
) -> Result<Token, TokenError> {
    let req = client(session)
        .create_token()
        .client_id(&reg.client_id)
        .client_secret(reg.client_secret.expose_secret());
    let req = match grant {
        Grant::Device(code) => req
            .grant_type(DEVICE_GRANT)
            .device_code(code.expose_secret()),
        Grant::Code {
            code,
            verifier,
            redirect_uri,
        } => req
            .grant_type("authorization_code")
            .code(code.expose_secret())
            .code_verifier(verifier.expose_secret())
            .redirect_uri(redirect_uri),
        Grant::Refresh(rt) => req
            .grant_type("refresh_token")
            .refresh_token(rt.expose_secret()),
    };
    let issued = crate::duration::now();
    match req.send().await {
        Ok(out) => {
            let Some(at) = out.access_token() else {
                return Err(TokenError::Failed(Error::auth(format!(
                    "SSO OIDC CreateToken at {} gave no access token",
                    endpoint(session)
                ))));
            };
            Ok(Token {
                access_token: SecretString::from(at.to_string()),
                expires_at: issued + Duration::from_secs(out.expires_in().max(0) as u64),
                refresh_token: out
                    .refresh_token()
                    .map(|s| SecretString::from(s.to_string())),
            })
        }
        Err(SdkError::ServiceError(e)) if e.err().is_authorization_pending_exception() => {
            Err(TokenError::Pending)
        }
        Err(SdkError::ServiceError(e)) if e.err().is_slow_down_exception() => {
            Err(TokenError::SlowDown)
        }
        Err(e) => Err(TokenError::Failed(failed("CreateToken", session, e))),
    }
}

fn failed<E, R>(call: &str, session: &SsoSession, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    super::call_failed(
        "SSO OIDC",
        call,
        &endpoint(session),
        "AWS_ENDPOINT_URL_SSO_OIDC",
        err,
    )
}
