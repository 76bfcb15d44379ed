//! IAM Identity Center (SSO): which session a NAME means, the AWS CLI's token cache
//! (shared with the AWS CLI v2 and botocore, so either tool's login serves both), the
//! OIDC API that logs in and renews, the portal that turns a token into role
//! credentials, and the account listing and profile sync. It sits above config and
//! below credentials: the engine asks it for role credentials; the command layer runs
//! its logins and prompts. It never touches a terminal itself.

pub(crate) mod accounts;
pub(crate) mod cache;
pub(crate) mod login;
pub(crate) mod oidc;
pub(crate) mod portal;
pub(crate) mod session;
pub(crate) mod sync;
pub(crate) mod token;

pub(crate) use session::SsoSession;

/// Now, in UTC (one clock for the module).
pub(crate) fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
