//! STS calls as elhaz makes them: the one place where AssumeRole parameters become a
//! request ([`RoleRequest`]), AssumeRoleWithWebIdentity, the client every call starts
//! from (retries, time-outs, the caller context's variables, a CA bundle), and the
//! session name elhaz generates. It knows no config file, profile or daemon.

use crate::duration::now;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sts::types::PolicyDescriptorType;
use time::OffsetDateTime;

use super::sts_error::{StsCall, map_sdk_error, mfa_code_refused, refused_mfa_code};
use super::{Credentials, StsTarget, external};
use crate::config::profiles::AwsProfile;
use crate::config::schema::{AssumeRole, PolicyArn, ProvidedContext, Tag, WebIdentity};
use crate::context::SourceContext;
use crate::duration::Seconds;
use crate::error::{Error, Result};
use crate::sensitive::Sensitive;

/// The region when nothing names one.
pub(crate) const DEFAULT_REGION: &str = "us-east-1";

/// One AssumeRole call, as a config or a role profile asks for it: the single place
/// where its parameters become an STS request.
pub(crate) struct RoleRequest<'a> {
    role_arn: &'a str,
    /// None: a generated `elhaz-<user>-<time>`.
    session_name: Option<&'a str>,
    duration_secs: Option<i32>,
    external_id: Option<&'a str>,
    /// The MFA device's serial and the code for it.
    pub(crate) mfa: Option<(&'a str, Sensitive)>,
    source_identity: Option<&'a str>,
    policy: Option<&'a str>,
    policy_arns: &'a [PolicyArn],
    tags: &'a [Tag],
    transitive_tag_keys: &'a [String],
    provided_contexts: &'a [ProvidedContext],
    /// Where the parameters come from (the config file), for errors about them.
    origin: &'a str,
}

impl<'a> RoleRequest<'a> {
    /// A config's AssumeRole section; `mfa_code` is the code for its SerialNumber.
    pub(crate) fn from_config(
        ar: &'a AssumeRole,
        mfa_code: Option<Sensitive>,
        origin: &'a str,
    ) -> Self {
        RoleRequest {
            role_arn: &ar.role_arn,
            session_name: ar.role_session_name.as_deref(),
            duration_secs: ar.duration_seconds.map(|d| d as i32),
            external_id: ar.external_id.as_deref(),
            mfa: ar.serial_number.as_deref().zip(mfa_code),
            source_identity: ar.source_identity.as_deref(),
            policy: ar.policy.as_deref(),
            policy_arns: ar.policy_arns.as_deref().unwrap_or_default(),
            tags: ar.tags.as_deref().unwrap_or_default(),
            transitive_tag_keys: ar.transitive_tag_keys.as_deref().unwrap_or_default(),
            provided_contexts: ar.provided_contexts.as_deref().unwrap_or_default(),
            origin,
        }
    }

    /// A role profile (`role_arn` with a `source_profile`), without its MFA code.
    pub(crate) fn from_profile(profile: &'a AwsProfile, role_arn: &'a str) -> Result<Self> {
        let duration_secs = match &profile.duration_seconds {
            Some(d) => {
                let secs: Seconds = d.parse().map_err(|e| {
                    Error::config(format!(
                        "profile {}: duration_seconds {d:?}: {e}",
                        profile.name
                    ))
                })?;
                Some(secs.0 as i32)
            }
            None => None,
        };
        Ok(RoleRequest {
            role_arn,
            session_name: profile.role_session_name.as_deref(),
            duration_secs,
            external_id: profile.external_id.as_deref(),
            mfa: None,
            source_identity: None,
            policy: None,
            policy_arns: &[],
            tags: &[],
            transitive_tag_keys: &[],
            provided_contexts: &[],
            origin: &profile.name,
        })
    }

    /// Calls AssumeRole with `source` as the caller; the credentials STS returns.
    pub(crate) async fn send(
        self,
        sdk: &aws_config::SdkConfig,
        target: &StsTarget,
        source: aws_credential_types::Credentials,
    ) -> Result<Credentials> {
        let mut req = sts_client(sdk, target, Some(source))
            .assume_role()
            .role_arn(self.role_arn)
            .role_session_name(
                self.session_name
                    .map(str::to_string)
                    .unwrap_or_else(generated_session_name),
            )
            .set_duration_seconds(self.duration_secs)
            .set_external_id(self.external_id.map(str::to_string))
            .set_source_identity(self.source_identity.map(str::to_string))
            .set_policy(self.policy.map(str::to_string));
        if let Some((serial, code)) = &self.mfa {
            req = req.serial_number(*serial).token_code(code.expose());
        }
        for arn in self.policy_arns {
            req = req.policy_arns(PolicyDescriptorType::builder().arn(arn.arn()).build());
        }
        for tag in self.tags {
            let t = aws_sdk_sts::types::Tag::builder()
                .key(&tag.key)
                .value(&tag.value)
                .build()
                .map_err(|e| Error::config(format!("{}: AssumeRole.Tags: {e}", self.origin)))?;
            req = req.tags(t);
        }
        for k in self.transitive_tag_keys {
            req = req.transitive_tag_keys(k);
        }
        for pc in self.provided_contexts {
            req = req.provided_contexts(
                aws_sdk_sts::types::ProvidedContext::builder()
                    .provider_arn(&pc.provider_arn)
                    .context_assertion(&pc.context_assertion)
                    .build(),
            );
        }
        let issued = now();
        let out = req.send().await.map_err(|e| {
            let refused = refused_mfa_code(&e);
            let err = map_sdk_error(e, StsCall::AssumeRole(self.role_arn), target);
            match (&self.mfa, refused) {
                (Some((serial, _)), Some(reason)) => mfa_code_refused(err, serial, reason),
                _ => err,
            }
        })?;
        convert(out.credentials(), issued, self.role_arn)
    }
}

/// AssumeRoleWithWebIdentity for a config's AssumeRoleWithWebIdentity section.
pub(crate) async fn assume_web_identity(
    web: &WebIdentity,
    sdk: &aws_config::SdkConfig,
    target: &StsTarget,
) -> Result<Credentials> {
    let token = external::read(
        web.web_identity_token_file.as_deref(),
        web.web_identity_token_command.as_ref(),
        &external::WEB_IDENTITY,
    )
    .await?;
    let client = sts_client(sdk, target, None);
    let issued = now();
    let mut req = client
        .assume_role_with_web_identity()
        .role_arn(&web.role_arn)
        .role_session_name(
            web.role_session_name
                .clone()
                .unwrap_or_else(generated_session_name),
        )
        .web_identity_token(token.expose());
    if let Some(d) = web.duration_seconds {
        req = req.duration_seconds(d as i32);
    }
    if let Some(p) = &web.policy {
        req = req.policy(p);
    }
    for arn in web.policy_arns.iter().flatten() {
        req = req.policy_arns(PolicyDescriptorType::builder().arn(arn.arn()).build());
    }
    let out = req
        .send()
        .await
        .map_err(|e| map_sdk_error(e, StsCall::WebIdentity(&web.role_arn), target))?;
    convert(out.credentials(), issued, &web.role_arn)
}

/// Our credentials in the SDK's type, to sign a further call.
pub(crate) fn sdk_credentials(
    c: &Credentials,
    provider: &'static str,
) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key().to_string(),
        Some(c.session_token().to_string()),
        Some(SystemTime::from(c.expiration)),
        provider,
    )
}

/// The loader every STS client starts from: standard retries (3 attempts) and
/// timeouts. ELHAZ_STS_TIMEOUT sets the per-attempt timeout (default 10 s). The SDK sees
/// the caller context's variables, never this process's own (see
/// [`SourceContext::sdk_env`]).
pub(crate) fn base_loader(
    ca_bundle: Option<&str>,
    ctx: &SourceContext,
) -> Result<aws_config::ConfigLoader> {
    let attempt = Seconds::from_env("ELHAZ_STS_TIMEOUT")?
        .map(|s| s.duration())
        .unwrap_or(Duration::from_secs(10));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .env(ctx.sdk_env())
        // The AWS files are ours to read (configparser semantics, [DEFAULT]): regions
        // and endpoints are decided before the loader, which must not read them again.
        .profile_files(no_profile_files())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(attempt.min(Duration::from_secs(5)))
                .operation_attempt_timeout(attempt)
                .operation_timeout(attempt * 3 + Duration::from_secs(5))
                .build(),
        );
    if let Some(path) = ca_bundle {
        loader = loader.http_client(http_client(path)?);
    }
    Ok(loader)
}

/// Empty AWS files for the SDK's loader.
fn no_profile_files() -> aws_runtime::env_config::file::EnvConfigFiles {
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
    EnvConfigFiles::builder()
        .with_contents(EnvConfigFileKind::Config, "")
        .with_contents(EnvConfigFileKind::Credentials, "")
        .build()
}

/// An HTTPS client that trusts only the CA bundle at `path` (STS.verify,
/// AWS_CA_BUNDLE). Like the SDK's own client, it uses no proxy.
fn http_client(path: &str) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(ca_bundle_context(path)?)
        .build_https())
}

/// TLS settings that trust only the CA bundle at `path`.
fn ca_bundle_context(path: &str) -> Result<aws_smithy_http_client::tls::TlsContext> {
    use aws_smithy_http_client::tls::{TlsContext, TrustStore};
    let pem = std::fs::read(path).map_err(|e| {
        Error::io(
            crate::error::Kind::Config,
            "STS.verify: cannot read CA bundle",
            Path::new(path),
            &e,
        )
    })?;
    // The TLS stack parses the bundle lazily and panics on a bad one; check it here.
    let text = String::from_utf8_lossy(&pem);
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(Error::config(format!(
            "STS.verify: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .map_err(|e| Error::config(format!("STS.verify: {path}: {e}")))
}

pub(crate) fn sts_client(
    sdk: &aws_config::SdkConfig,
    target: &StsTarget,
    creds: Option<aws_credential_types::Credentials>,
) -> aws_sdk_sts::Client {
    let mut b = aws_sdk_sts::config::Builder::from(sdk).region(Region::new(target.region.clone()));
    if let Some(url) = &target.endpoint_url {
        b = b.endpoint_url(url);
    }
    if let Some(c) = creds {
        b = b.credentials_provider(c);
    }
    aws_sdk_sts::Client::from_conf(b.build())
}

pub(crate) fn convert(
    c: Option<&aws_sdk_sts::types::Credentials>,
    issued: OffsetDateTime,
    role: &str,
) -> Result<Credentials> {
    let c = c.ok_or_else(|| Error::auth(format!("STS returned no credentials for {role}")))?;
    let expiry = SystemTime::try_from(*c.expiration())
        .map_err(|_| Error::auth(format!("STS returned a bad expiration for {role}")))?;
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        c.session_token(),
        OffsetDateTime::from(expiry),
        issued,
    ))
}

/// `elhaz-<user>-<unix time>`, within STS rules: at most 64 of `[\w+=,.@-]`.
pub(crate) fn generated_session_name() -> String {
    let user = std::env::var("USER")
        .ok()
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "user".into());
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
        .collect();
    let stamp = now().unix_timestamp().to_string();
    let max_user = 64 - "elhaz-".len() - 1 - stamp.len();
    let user: String = user.chars().take(max_user).collect();
    let user = if user.is_empty() { "user".into() } else { user };
    format!("elhaz-{user}-{stamp}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_follow_sts_rules() {
        let n = generated_session_name();
        assert!(n.starts_with("elhaz-"));
        assert!(crate::config::schema::check_session_name(&n).is_ok(), "{n}");
    }
}
