//! Runs a plan of [`sources`](super::sources): the root's credentials (keys, SSO, a
//! `credential_process`, web identity, a `credential_source`), then one AssumeRole per
//! hop, each signed by the credentials below it, in the hop's own region, with its
//! own MFA device, duration, external id and session name. Intermediate credentials
//! are kept ([`Hop`]) so that a refresh of the top role need not ask for an MFA code
//! again while the hop that needed it is still valid. Also the caller's default
//! chain. It must not know of the daemon or the terminal.

use crate::duration::now;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::provider::error::CredentialsError;

use super::sources::{Chain, DefaultSource, Root, sts_endpoint};
use super::sts::{RoleRequest, sdk_credentials};
use super::{Credentials, StsTarget, external, mfa};
use crate::config::profiles::{AwsProfile, AwsProfiles};
use crate::context::SourceContext;
use crate::error::{Error, Kind, Result};
use crate::sensitive::Sensitive;

/// The credentials one intermediate hop gave, kept for the next refresh.
#[derive(Debug, Clone)]
pub(crate) struct Hop {
    /// The profile and the role it assumed.
    pub(crate) key: String,
    pub(crate) credentials: Credentials,
}

/// Intermediate credentials are reused while more than this is left.
const REUSE_MIN_SECS: i64 = 300;

/// What a root gave: temporary credentials, or keys without an expiry.
pub(crate) enum Got {
    Temporary(Credentials),
    LongTerm(aws_credential_types::Credentials),
}

impl Got {
    pub(crate) fn signer(&self) -> aws_credential_types::Credentials {
        match self {
            Got::Temporary(c) => sdk_credentials(c, "elhaz-chain"),
            Got::LongTerm(c) => c.clone(),
        }
    }
}

/// One fetch's walk along a chain.
pub(crate) struct Walk<'a> {
    pub(crate) ctx: &'a SourceContext,
    pub(crate) profiles: &'a AwsProfiles,
    pub(crate) sdk: &'a aws_config::SdkConfig,
    /// The CA bundle every STS call of this fetch trusts (STS.verify, AWS_CA_BUNDLE).
    pub(crate) ca_bundle: Option<String>,
    /// The region of the NAME, for hops whose profile names none.
    pub(crate) region: Option<String>,
    /// An MFA code the caller typed: for the first hop with an MFA device.
    pub(crate) token_code: Option<&'a Sensitive>,
    pub(crate) reuse: &'a [Hop],
    /// The intermediate credentials made or reused so far.
    pub(crate) made: Vec<Hop>,
    /// The start URL of the SSO login at the root, once used.
    pub(crate) sso: Option<String>,
}

impl Walk<'_> {
    /// Where STS is for a call made for `profile`.
    pub(crate) fn target(&self, profile: Option<&AwsProfile>) -> StsTarget {
        target_for(
            self.ctx,
            self.profiles,
            profile,
            self.region.clone(),
            self.ca_bundle.clone(),
        )
    }

    /// The credentials at the top of `chain`. `last_is_final`: its top hop is the
    /// session being made (never reused).
    pub(crate) async fn run(&mut self, chain: &Chain<'_>, last_is_final: bool) -> Result<Got> {
        let mut got = self.root(chain.root).await?;
        for (i, hop) in chain.hops.iter().enumerate() {
            let role = hop.role_arn.as_deref().unwrap_or_default();
            let key = format!("{}\u{0}{role}", hop.name);
            let is_final = last_is_final && i + 1 == chain.hops.len();
            if !is_final
                && let Some(h) = self
                    .reuse
                    .iter()
                    .find(|h| h.key == key && h.credentials.remaining_secs(now()) > REUSE_MIN_SECS)
            {
                tracing::debug!(profile = %hop.name, "reusing the hop's credentials");
                self.made.push(h.clone());
                got = Got::Temporary(h.credentials.clone());
                continue;
            }
            let mut request = RoleRequest::from_profile(hop, role)?;
            if let Some(serial) = &hop.mfa_serial {
                let code = self.mfa_code(hop, role, serial)?;
                request.mfa = Some((serial, code));
            }
            let target = self.target(Some(hop));
            let c = request.send(self.sdk, &target, got.signer()).await?;
            if !is_final {
                self.made.push(Hop {
                    key,
                    credentials: c.clone(),
                });
            }
            got = Got::Temporary(c);
        }
        Ok(got)
    }

    /// The caller's code, once; else the typed "ask for one" error.
    fn mfa_code(&mut self, hop: &AwsProfile, role: &str, serial: &str) -> Result<Sensitive> {
        if let Some(c) = self.token_code.take() {
            return Ok(c.clone());
        }
        let name = crate::config::store::validate_name(&hop.name)
            .map(|_| hop.name.as_str())
            .unwrap_or("NAME");
        // A config with no Session.profile takes the caller's environment keys, as
        // credential_source Environment does.
        let profile_flag = match (&hop.credential_source, &hop.source_profile) {
            (Some(_), _) => String::new(),
            (None, Some(s)) => format!(" --profile {s}"),
            (None, None) => " --profile SRC".into(),
        };
        Err(mfa::no_tty(serial).with_hint(format!(
            "run it from a terminal, or make a config whose MFA.command prints the code: \
             elhaz config add {name}{profile_flag} --role-arn {role} \
             --serial-number {serial} --mfa-command 'ykman oath accounts code -s ACCOUNT'"
        )))
    }

    async fn root(&mut self, root: Root<'_>) -> Result<Got> {
        match root {
            Root::Keys(p) => {
                let k = p.static_keys().ok_or_else(|| {
                    Error::config(format!("profile {} holds no complete key pair", p.name))
                })?;
                Ok(Got::LongTerm(aws_credential_types::Credentials::new(
                    k.access_key_id,
                    k.secret_access_key.expose().to_string(),
                    k.session_token.map(|t| t.expose().to_string()),
                    None,
                    "profile-keys",
                )))
            }
            Root::Sso(p) => {
                let (c, start_url) = sso_credentials(p, self.ctx).await?;
                self.sso = Some(start_url);
                Ok(Got::Temporary(c))
            }
            Root::Process(p) => credential_process(p, self.ctx).await,
            Root::WebIdentity(p) => {
                let target = self.target(Some(p));
                web_identity_profile(p, self.sdk, &target)
                    .await
                    .map(Got::Temporary)
            }
            Root::Named(p) => {
                let named = p.credential_source.as_deref().unwrap_or_default();
                named_source(named, p, self.ctx).await.map(Got::LongTerm)
            }
        }
    }

    /// The caller's default chain.
    pub(crate) async fn default_chain(&mut self, source: &DefaultSource<'_>) -> Result<Got> {
        let ctx = self.ctx;
        match source {
            DefaultSource::EnvKeys => Ok(Got::LongTerm(aws_credential_types::Credentials::new(
                ctx.get("AWS_ACCESS_KEY_ID").unwrap_or_default(),
                ctx.get("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
                ctx.get("AWS_SESSION_TOKEN").map(str::to_string),
                None,
                "Environment",
            ))),
            DefaultSource::Profile(chain) => self.run(chain, false).await,
            DefaultSource::WebIdentity => {
                let target = self.target(None);
                let web = crate::config::schema::WebIdentity {
                    role_arn: ctx.get("AWS_ROLE_ARN").unwrap_or_default().to_string(),
                    web_identity_token_file: ctx
                        .get("AWS_WEB_IDENTITY_TOKEN_FILE")
                        .map(str::to_string),
                    role_session_name: ctx.get("AWS_ROLE_SESSION_NAME").map(str::to_string),
                    ..Default::default()
                };
                super::sts::assume_web_identity(&web, self.sdk, &target)
                    .await
                    .map(Got::Temporary)
            }
            DefaultSource::LastResort => last_resort(ctx, self.profiles).await.map(Got::LongTerm),
        }
    }
}

/// What the SDK's default chain finds in the caller's context with no AWS files and
/// without the variables `without`: the container endpoint, then instance metadata.
async fn sdk_chain(
    ctx: &SourceContext,
    without: &[&str],
) -> std::result::Result<aws_credential_types::Credentials, CredentialsError> {
    let sdk = super::sts::base_loader(None, ctx)
        .map_err(|e| CredentialsError::not_loaded(e.message))?
        .env(ctx.sdk_env_without(without))
        .load()
        .await;
    match sdk.credentials_provider() {
        Some(p) => p.provide_credentials().await,
        None => Err(CredentialsError::not_loaded("no provider")),
    }
}

/// Every variable that would give the default chain a source before its last resorts.
const NOT_LAST: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
];

/// The container endpoint, then instance metadata, as the caller's variables set them.
async fn last_resort(
    ctx: &SourceContext,
    profiles: &AwsProfiles,
) -> Result<aws_credential_types::Credentials> {
    sdk_chain(ctx, NOT_LAST).await.map_err(|e| {
        let mut err = super::sts_error::no_source_error(ctx, profiles);
        if !matches!(e, CredentialsError::CredentialsNotLoaded(_)) {
            let said = crate::error::tidy(&crate::error::chain(&e));
            err.message = format!(
                "{}; the last resort (container or instance metadata) said: {said}",
                err.message
            );
        }
        err
    })
}

/// The credentials a profile's `credential_source` names: the caller's environment
/// keys, the instance metadata service or the container endpoint.
async fn named_source(
    named: &str,
    profile: &AwsProfile,
    ctx: &SourceContext,
) -> Result<aws_credential_types::Credentials> {
    let failed = |e: CredentialsError| {
        Error::auth(format!(
            "profile {}: credential_source {named} gave no credentials: {}",
            profile.name,
            crate::error::chain(&e)
        ))
    };
    match named {
        "Environment" => {
            let (Some(id), Some(secret)) = (
                ctx.get("AWS_ACCESS_KEY_ID"),
                ctx.get("AWS_SECRET_ACCESS_KEY"),
            ) else {
                return Err(Error::auth(format!(
                    "profile {}: credential_source Environment, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
                    profile.name
                ))
                .with_hint("export the source keys, or name a source_profile instead"));
            };
            Ok(aws_credential_types::Credentials::new(
                id,
                secret,
                ctx.get("AWS_SESSION_TOKEN").map(str::to_string),
                None,
                "Environment",
            ))
        }
        "Ec2InstanceMetadata" => {
            let mut without = NOT_LAST.to_vec();
            without.extend([
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            ]);
            sdk_chain(ctx, &without).await.map_err(failed)
        }
        "EcsContainer" => sdk_chain(ctx, NOT_LAST).await.map_err(failed),
        other => Err(Error::config(format!(
            "profile {}: credential_source {other:?} is not one of Environment, Ec2InstanceMetadata, EcsContainer",
            profile.name
        ))),
    }
}

/// A web identity profile (`role_arn` + `web_identity_token_file`).
async fn web_identity_profile(
    p: &AwsProfile,
    sdk: &aws_config::SdkConfig,
    target: &StsTarget,
) -> Result<Credentials> {
    let web = crate::config::schema::WebIdentity {
        role_arn: p.role_arn.clone().unwrap_or_default(),
        web_identity_token_file: p.web_identity_token_file.clone(),
        role_session_name: p.role_session_name.clone(),
        ..Default::default()
    };
    super::sts::assume_web_identity(&web, sdk, target).await
}

/// An SSO profile's role credentials: a valid access token for its session (renewed
/// silently when it can be; else the typed "log in" error), then the portal's
/// GetRoleCredentials for its account and role.
pub(crate) async fn sso_credentials(
    profile: &AwsProfile,
    ctx: &SourceContext,
) -> Result<(Credentials, String)> {
    use secrecy::ExposeSecret;
    let session = crate::sso::session::resolve_blocking(ctx, Some(&profile.name))?;
    let (Some(account), Some(role)) = (&profile.sso_account_id, &profile.sso_role_name) else {
        return Err(Error::config(format!(
            "profile {} uses IAM Identity Center but lacks sso_account_id or sso_role_name",
            profile.name
        ))
        .with_hint(format!(
            "add both to [profile {}], or generate profiles: elhaz sso sync {}",
            profile.name,
            session.label()
        )));
    };
    let issued = now();
    let rc = crate::sso::token::with_token(&session, |token| {
        let session = &session;
        async move { crate::sso::portal::role_credentials(session, &token, account, role).await }
    })
    .await?;
    let c = Credentials::new(
        rc.access_key_id,
        rc.secret_access_key.expose_secret(),
        rc.session_token.expose_secret(),
        rc.expiration,
        issued,
    );
    Ok((c, session.start_url))
}

/// The largest answer read from a `credential_process`.
const PROCESS_MAX_OUTPUT: u64 = 64 * 1024;

/// Runs a profile's `credential_process` as the SDKs do (through `sh -c`, with the
/// caller's environment, AWS_PROFILE included) and reads its JSON answer.
async fn credential_process(p: &AwsProfile, ctx: &SourceContext) -> Result<Got> {
    let cmd = p.credential_process.clone().unwrap_or_default();
    let origin = match p.origin("credential_process") {
        Some(o) => format!("profile {} ({o})", p.name),
        None => format!("profile {}", p.name),
    };
    let run = external::Run {
        label: "credential_process",
        timeout: std::time::Duration::from_secs(120),
        max_output: PROCESS_MAX_OUTPUT,
        timeout_hint: Some("check that the command does not wait for input"),
    };
    let out = run
        .output_with(&crate::config::schema::Command::Shell(cmd), Some(ctx))
        .await
        .map_err(|e| {
            let mut e = e;
            e.message = format!("{origin}: {}", e.message);
            e
        })?;
    parse_process_output(&out, &origin)
}

/// The `credential_process` answer: `{"Version": 1, "AccessKeyId", "SecretAccessKey",
/// "SessionToken", "Expiration"}`, the last two optional.
pub(crate) fn parse_process_output(out: &[u8], origin: &str) -> Result<Got> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        version: Option<i64>,
        access_key_id: Option<String>,
        secret_access_key: Option<Sensitive>,
        session_token: Option<Sensitive>,
        expiration: Option<String>,
    }
    let bad = |why: String| {
        Error::new(
            Kind::Auth,
            format!("{origin}: credential_process printed {why}"),
        )
    };
    let a: Answer = serde_json::from_slice(out)
        .map_err(|e| bad(format!("no credential JSON ({})", e.classify_name())))?;
    if a.version != Some(1) {
        return Err(bad("a Version other than 1".into()));
    }
    let (Some(id), Some(secret)) = (a.access_key_id, a.secret_access_key) else {
        return Err(bad("no AccessKeyId or SecretAccessKey".into()));
    };
    let Some(exp) = a.expiration else {
        return Ok(Got::LongTerm(aws_credential_types::Credentials::new(
            id,
            secret.expose().to_string(),
            a.session_token.map(|t| t.expose().to_string()),
            None,
            "credential_process",
        )));
    };
    let expiry = crate::times::parse(&exp)
        .ok_or_else(|| bad(format!("an Expiration that is not RFC 3339 ({exp:?})")))?;
    let Some(token) = a.session_token else {
        return Err(bad("an Expiration without a SessionToken".into()));
    };
    Ok(Got::Temporary(Credentials::new(
        id,
        secret.expose(),
        token.expose(),
        expiry,
        now(),
    )))
}

/// Used by the serde error above: a kind, never the input (which may hold a secret).
trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "wrong fields",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

/// Where STS is for a hop of `profile` (None: the default chain's), in `ctx`: the
/// profile's region, else `region`, else the caller's.
pub(crate) fn target_for(
    ctx: &SourceContext,
    profiles: &AwsProfiles,
    profile: Option<&AwsProfile>,
    region: Option<String>,
    ca_bundle: Option<String>,
) -> StsTarget {
    let region = profile
        .and_then(|p| p.region.clone())
        .or(region)
        .or_else(|| ctx.get("AWS_REGION").map(str::to_string))
        .or_else(|| ctx.get("AWS_DEFAULT_REGION").map(str::to_string))
        .unwrap_or_else(|| super::sts::DEFAULT_REGION.to_string());
    StsTarget {
        region,
        endpoint_url: sts_endpoint(ctx, profiles, profile),
        ca_bundle,
    }
}
