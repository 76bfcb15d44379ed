//! STS and source-credential failures, turned into errors that say what failed and
//! the command that fixes it. AWS's own code and message are kept. It knows the SDK's
//! error types and the AWS CLI profiles; it must not know the engine or the config
//! store.

use std::error::Error as StdError;

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use super::StsTarget;
use crate::config::profiles::AwsProfiles;
use crate::context::SourceContext;
use crate::error::{Error, chain, connect_reason, tidy};

/// Which STS call failed, for the message.
pub(crate) enum StsCall<'a> {
    AssumeRole(&'a str),
    WebIdentity(&'a str),
    Saml(&'a str),
    GetCallerIdentity,
}

impl StsCall<'_> {
    fn describe(&self) -> String {
        match self {
            StsCall::AssumeRole(r) => format!("AssumeRole {r}"),
            StsCall::WebIdentity(r) => format!("AssumeRoleWithWebIdentity {r}"),
            StsCall::Saml(r) => format!("AssumeRoleWithSAML {r}"),
            StsCall::GetCallerIdentity => "GetCallerIdentity".into(),
        }
    }
}

fn endpoint(target: &StsTarget) -> String {
    target
        .endpoint_url
        .clone()
        .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", target.region))
}

/// Maps an STS SdkError.
pub(crate) fn map_sdk_error<E, R>(
    err: SdkError<E, R>,
    call: StsCall<'_>,
    target: &StsTarget,
) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let what = call.describe();
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown");
            let message = e.message().unwrap_or("no message");
            let err = Error::auth(format!("{what} failed: {code}: {message}")).with_detail(
                crate::error::Detail::Aws {
                    code: code.to_string(),
                },
            );
            match code {
                "ExpiredToken" | "ExpiredTokenException" => err.with_hint(
                    "the source credentials have expired: renew them (elhaz sso login NAME, or new keys) and retry",
                ),
                "AccessDenied" | "AccessDeniedException" => err.with_hint(
                    "check the role's trust policy and the source identity: aws sts get-caller-identity",
                ),
                "RegionDisabledException" => err.with_hint(format!(
                    "STS is not enabled in {}; enable it in IAM, or set STS.region_name",
                    target.region
                )),
                "InvalidClientTokenId" | "SignatureDoesNotMatch" => err.with_hint(
                    "the source credentials are not valid: check them with aws sts get-caller-identity",
                ),
                c if c.contains("Throttl") || c == "RequestLimitExceeded" => {
                    err.with_hint("STS is throttling; retried 3 times, try again shortly")
                }
                _ => err,
            }
        }
        SdkError::TimeoutError(_) => Error::auth(format!(
            "{what} failed: STS at {} did not answer in time (3 attempts)",
            endpoint(target)
        ))
        .with_hint("check the network, or raise ELHAZ_STS_TIMEOUT (per attempt, default 10s)"),
        SdkError::DispatchFailure(d) => {
            if d.is_timeout() {
                Error::auth(format!(
                    "{what} failed: STS at {} did not answer in time (3 attempts)",
                    endpoint(target)
                ))
            } else if d.is_user() || d.is_other() {
                Error::auth(format!("{what} failed: {}", chain(&err)))
            } else {
                Error::auth(format!(
                    "{what} failed: cannot reach STS at {}: {}",
                    endpoint(target),
                    connect_reason(&chain(&err))
                ))
                .with_hint("check the network, STS.endpoint_url and AWS_ENDPOINT_URL_STS")
            }
        }
        // Never the raw response's Debug form: it is Rust syntax, not a reason.
        SdkError::ResponseError(_) => Error::auth(format!(
            "{what} failed: STS at {} sent a response elhaz cannot read: {}",
            endpoint(target),
            tidy(&chain(&err))
        ))
        .with_hint(
            "check STS.endpoint_url and AWS_ENDPOINT_URL_STS: they must name an STS endpoint",
        ),
        _ => Error::auth(format!("{what} failed: {}", chain(&err))),
    }
}

/// Whether STS refused the MFA code a call carried: AccessDenied with
/// `MultiFactorAuthentication failed ...` (a wrong code, or one already used); AWS's
/// code and message when it did.
pub(crate) fn refused_mfa_code<E, R>(err: &SdkError<E, R>) -> Option<String>
where
    E: ProvideErrorMetadata,
{
    let SdkError::ServiceError(se) = err else {
        return None;
    };
    let (code, message) = (se.err().code()?, se.err().message()?);
    (code == "AccessDenied" && message.starts_with("MultiFactorAuthentication failed")).then(|| {
        let message = crate::terminal::escape_controls(message.trim().trim_end_matches('.'));
        format!("{code}: {message}")
    })
}

/// `err`, the refusal of the MFA code for `serial`, as data a caller that asked a
/// person for the code acts on (it asks again), with what to do when it cannot.
pub(crate) fn mfa_code_refused(err: Error, serial: &str, reason: String) -> Error {
    err.with_detail(crate::error::Detail::MfaCodeRefused {
        serial: serial.to_string(),
        reason,
    })
    .with_hint(format!(
        "each code is taken once, within its 30 seconds: run the command again with the next one; \
         if every code is refused, check that {serial} is the source identity's device: aws iam list-mfa-devices"
    ))
}

/// Inside a session made from source keys, without them: neither the shell
/// integration passed them nor a running daemon holds them.
pub(crate) fn session_keys_not_here() -> Error {
    Error::auth(
        "no source credentials found in the caller's environment: this elhaz session was made from source keys, which a session never exports; only the daemon that served the session holds them, and it was not asked (--no-daemon) or no longer has them (restarted, or the session removed)",
    )
    .with_detail(crate::error::Detail::NoSource)
    .with_hint("run it at the session's shell prompt, where the shell integration hands elhaz the keys it keeps, or outside the session")
}

/// No source credentials at all in the caller's context: what was tried there, and
/// how to give one.
pub(crate) fn no_source_error(ctx: &SourceContext, profiles: &AwsProfiles) -> Error {
    use super::sources::{Use, plan};
    use crate::context::SelectedProfile;
    let exists = profiles.get(ctx.profile()).is_some();
    let selected = if !exists {
        SelectedProfile::Missing
    } else if plan(profiles, ctx.profile(), Use::Source)
        .ok()
        .and_then(|chain| chain.served_by_elhaz())
        .is_some()
    {
        SelectedProfile::ServedByElhaz
    } else {
        SelectedProfile::GivesNone
    };
    let tried = ctx.describe_sources(selected);
    let fix = if ctx.profile_named() && !exists {
        format!(
            "add profile {} (aws configure --profile {}), or export AWS_PROFILE with one that exists; or set Session.profile_name: elhaz config update NAME --profile P",
            ctx.profile(),
            ctx.profile()
        )
    } else {
        "export AWS_PROFILE=P (or source keys: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), set Session.profile_name: elhaz config update NAME --profile P, or run: aws configure".to_string()
    };
    Error::auth(format!(
        "no source credentials found in the caller's environment: {}",
        tried.join("; ")
    ))
    .with_detail(crate::error::Detail::NoSource)
    .with_hint(fix)
}
