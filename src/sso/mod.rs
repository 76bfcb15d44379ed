//! IAM Identity Center (SSO): which session a NAME means, the AWS CLI's token cache
//! (shared with the AWS CLI v2 and botocore, so either tool's login serves both), the
//! OIDC API that logs in and renews, the portal that turns a token into role
//! credentials, and the account listing and profile sync. It sits above config and
//! below credentials: the engine asks it for role credentials; the command layer runs
//! its logins and prompts. It never touches a terminal itself.

pub(crate) mod accounts;
pub mod cache;
pub(crate) mod listing;
pub(crate) mod login;
pub(crate) mod oidc;
pub(crate) mod polite;
pub(crate) mod portal;
pub(crate) mod session;
pub(crate) mod sync;
pub(crate) mod token;

pub(crate) use session::SsoSession;

/// What both SSO clients (OIDC and portal) share: the session's region, `endpoint`,
/// three attempts, and the time-outs of elhaz's STS calls.
pub(crate) fn sdk_config(session: &SsoSession, endpoint: String) -> aws_types::SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use std::time::Duration;
    aws_types::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(session.region.clone()))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(35))
                .build(),
        )
        .build()
}

/// An SSO API call's failure as a user reads it: which API and call, where, and what
/// it said; `endpoint_var` is the variable that moves the endpoint.
pub(crate) fn call_failed<E, R>(
    api: &str,
    call: &str,
    at: &str,
    endpoint_var: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> crate::error::Error
where
    E: aws_sdk_sso::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use crate::error::Error;
    use aws_smithy_runtime_api::client::result::SdkError;
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown");
            let msg = e.message().map(|m| format!(": {m}")).unwrap_or_default();
            Error::auth(format!("{api} {call} at {at} failed: {code}{msg}")).with_detail(
                crate::error::Detail::Aws {
                    code: code.to_string(),
                },
            )
        }
        _ => Error::auth(format!(
            "{api} {call} at {at} failed: {}",
            crate::error::tidy(&crate::error::chain(&err))
        ))
        .with_hint(format!(
            "check the network, the session's sso_region, and {endpoint_var}"
        )),
    }
}
