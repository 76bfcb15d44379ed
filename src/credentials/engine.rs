//! The credential engine: NAME → temporary credentials, through STS AssumeRole (elhaz
//! configs and role profiles), AssumeRoleWithWebIdentity, AssumeRoleWithSAML, IAM
//! Identity Center (our `sso` module: token cache, renewal, portal), or aws-config's
//! own profile provider (credential_process, web identity profiles, longer chains).
//! It owns the STS calls and how their parameters are built. It must not know of the
//! daemon, the socket, the terminal (an MFA code it needs and was not given is an
//! `MfaRequired` error, asked for by the command layer), or this process's own
//! environment: every source comes from the caller's context.

use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_sts::types::PolicyDescriptorType;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::sts_error::{StsCall, map_sdk_error, map_source_error, no_source_error};
use super::{Credentials, StsTarget, external, mfa, now};
use crate::config::profiles::{AwsProfile, AwsProfiles};
use crate::config::schema::{
    AssumeRole, Config, PolicyArn, ProvidedContext, Saml, SourceSession, StsClient, Tag, Verify,
    WebIdentity,
};
use crate::config::{Source, Store, resolve};
use crate::context::SourceContext;
use crate::duration::Seconds;
use crate::error::{Error, Result};
use crate::sensitive::Sensitive;

/// The result of one fetch.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub credentials: Credentials,
    /// The region commands should use (config or profile), if it names one.
    pub region: Option<String>,
    /// "config" or "profile".
    pub source: &'static str,
    /// Where GetCallerIdentity goes for these credentials.
    pub sts: StsTarget,
}

/// GetCallerIdentity's answer, with the original's key names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(rename = "UserId")]
    pub user_id: String,
    #[serde(rename = "Account")]
    pub account: String,
    #[serde(rename = "Arn")]
    pub arn: String,
}

/// Turns names into credentials. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    store: Store,
}

const DEFAULT_REGION: &str = "us-east-1";

impl Engine {
    pub(crate) fn new(store: Store) -> Self {
        Engine { store }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Fetches fresh credentials for NAME, with the sources of the caller context
    /// `ctx` and nothing else (never this process's own environment). `token_code` is
    /// an MFA code the caller already has (typed in the client, sent with `daemon add`).
    pub(crate) async fn fetch(
        &self,
        name: &str,
        token_code: Option<&Sensitive>,
        ctx: &SourceContext,
    ) -> Result<Fetched> {
        let source = resolve(&self.store, name, ctx).await?;
        let fetched = match source {
            Source::Config(config) => {
                let path = self.store.path(name)?;
                self.fetch_config(&config, &path, token_code, ctx).await
            }
            Source::Profile(profile) => self.fetch_profile(&profile, token_code, ctx).await,
        }?;
        // Credentials dead on arrival (a skewed clock here, or at the source) are an
        // error, never served: the caller retries after its back-off.
        let at = now();
        if fetched.credentials.remaining_secs(at) <= 0 {
            return Err(Error::auth(format!(
                "the credentials for {name} had already expired when they arrived (expiry {}, this machine's clock says {})",
                super::rfc3339(fetched.credentials.expiration),
                super::rfc3339(at)
            ))
            .with_hint("check this machine's clock: timedatectl status"));
        }
        Ok(fetched)
    }

    async fn fetch_config(
        &self,
        config: &Config,
        path: &Path,
        token_code: Option<&Sensitive>,
        ctx: &SourceContext,
    ) -> Result<Fetched> {
        let shown = crate::error::display_path(path);
        let sts_params = config.sts.clone().unwrap_or_default();
        let session = config.session.clone().unwrap_or_default();
        let ca_bundle = ca_bundle_of(&sts_params, path)?;
        let (sdk, target, profile_region) =
            config_sdk(&sts_params, &session, ca_bundle, ctx).await?;
        // The region commands get: the config's or its source profile's, never the
        // environment's (through the daemon that would be whoever started it).
        let fetched = |credentials, sts| Fetched {
            credentials,
            region: config.region().map(str::to_string).or(profile_region),
            source: "config",
            sts,
        };

        if let Some(web) = &config.web_identity {
            let credentials = assume_web_identity(web, &sdk, &target).await?;
            return Ok(fetched(credentials, target));
        }
        if let Some(saml) = &config.saml {
            let credentials = assume_saml(saml, &sdk, &target).await?;
            return Ok(fetched(credentials, target));
        }
        let Some(ar) = &config.assume_role else {
            return Err(Error::config(format!(
                "{shown}: missing AssumeRole.RoleArn"
            )));
        };
        let source = config_source(&sts_params, &session, &sdk, &target, ctx).await?;
        let mfa_code = match &ar.serial_number {
            Some(serial) => Some(self.mfa_code(config, serial, token_code).await?),
            None => None,
        };
        let credentials = RoleRequest::from_config(ar, mfa_code, &shown)
            .send(&sdk, &target, source)
            .await?;
        Ok(fetched(credentials, target))
    }

    /// The MFA code for a config: the caller's, the config's TokenCode, MFA.command, or
    /// the terminal.
    async fn mfa_code(
        &self,
        config: &Config,
        serial: &str,
        token_code: Option<&Sensitive>,
    ) -> Result<Sensitive> {
        if let Some(c) = token_code {
            return Ok(c.clone());
        }
        if let Some(c) = config
            .assume_role
            .as_ref()
            .and_then(|a| a.token_code.clone())
        {
            return Ok(c);
        }
        let mfa = config.mfa.clone().unwrap_or_default();
        if let Some(cmd) = &mfa.command {
            return mfa::code_from_command(cmd, mfa.timeout).await;
        }
        self.ask_mfa(serial).await
    }

    /// No code at hand: the caller must ask for one (the command layer does, on a
    /// terminal) and fetch again with it.
    async fn ask_mfa(&self, serial: &str) -> Result<Sensitive> {
        Err(mfa::no_tty(serial))
    }

    async fn fetch_profile(
        &self,
        profile: &AwsProfile,
        token_code: Option<&Sensitive>,
        ctx: &SourceContext,
    ) -> Result<Fetched> {
        let profiles = AwsProfiles::load_in(ctx).await?;
        let mut loader = base_loader(None, ctx)?.profile_name(&profile.name);
        if let Some(r) = &profile.region {
            loader = loader.region(Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        let target = StsTarget {
            region: sdk_region(&sdk),
            ..StsTarget::default()
        };

        // A role with a source profile or a credential_source: aws-config ignores
        // mfa_serial and duration_seconds, so elhaz makes the final AssumeRole itself.
        let credentials = match (&profile.role_arn, &profile.source_profile) {
            (Some(role_arn), Some(source_name)) if source_name != &profile.name => {
                let source = match sso_chain(&profiles, source_name) {
                    Some((hops, root)) => sso_chain_source(&hops, root, &sdk, &target, ctx).await?,
                    None => ProfileFileCredentialsProvider::builder()
                        .profile_files(ctx.profile_files())
                        .profile_name(source_name)
                        .build()
                        .provide_credentials()
                        .await
                        .map_err(|e| map_source_error(&e, &profiles, Some(source_name), true))?,
                };
                let request = RoleRequest::from_profile(profile, role_arn)?;
                self.profile_role(request, profile, source_name, token_code)
                    .await?
                    .send(&sdk, &target, source)
                    .await?
            }
            (Some(role_arn), None) if profile.credential_source.is_some() => {
                let named = profile.credential_source.as_deref().unwrap_or_default();
                let source = named_source(named, profile, ctx).await?;
                let request = RoleRequest::from_profile(profile, role_arn)?;
                let from = format!("credential_source {named}");
                self.profile_role(request, profile, &from, token_code)
                    .await?
                    .send(&sdk, &target, source)
                    .await?
            }
            // IAM Identity Center: our token cache, renewal and portal call.
            _ if profile.kind() == "sso" => sso_credentials(profile, ctx).await?,
            // Everything else (credential_process, web identity, credential_source):
            // aws-config's profile provider.
            _ => profile_provider_credentials(profile, &profiles, ctx).await?,
        };
        Ok(Fetched {
            credentials,
            region: profile.region.clone(),
            source: "profile",
            sts: target,
        })
    }

    /// The MFA code, when the profile names an `mfa_serial`, added to its request.
    async fn profile_role<'a>(
        &self,
        mut request: RoleRequest<'a>,
        profile: &'a AwsProfile,
        source: &str,
        token_code: Option<&Sensitive>,
    ) -> Result<RoleRequest<'a>> {
        if let Some(serial) = &profile.mfa_serial {
            let code = self
                .profile_mfa_code(profile, request.role_arn, source, serial, token_code)
                .await?;
            request.mfa = Some((serial, code));
        }
        Ok(request)
    }

    /// The MFA code for a role profile: the caller's, else the terminal's. A profile has
    /// no MFA.command, so a refusal says how to make a config that has one.
    async fn profile_mfa_code(
        &self,
        profile: &AwsProfile,
        role_arn: &str,
        source_name: &str,
        serial: &str,
        token_code: Option<&Sensitive>,
    ) -> Result<Sensitive> {
        if let Some(c) = token_code {
            return Ok(c.clone());
        }
        self.ask_mfa(serial).await.map_err(|e| {
            if e.kind != crate::error::Kind::MfaRequired {
                return e;
            }
            let name = crate::config::store::validate_name(&profile.name)
                .map(|_| profile.name.as_str())
                .unwrap_or("NAME");
            // A config with no Session.profile takes the caller's environment keys, as
            // credential_source Environment does.
            let profile_flag = match source_name.strip_prefix("credential_source ") {
                Some(_) => String::new(),
                None => format!(" --profile {source_name}"),
            };
            e.with_hint(format!(
                "run it from a terminal, or make a config whose MFA.command prints the code: \
                 elhaz config add {name}{profile_flag} --role-arn {role_arn} \
                 --serial-number {serial} --mfa-command 'ykman oath accounts code -s ACCOUNT'"
            ))
        })
    }

    /// STS GetCallerIdentity with `creds` (`ctx`: the caller context the SDK's
    /// settings come from).
    pub(crate) async fn whoami(
        &self,
        creds: &Credentials,
        target: &StsTarget,
        ctx: &SourceContext,
    ) -> Result<Identity> {
        let sdk = base_loader(target.ca_bundle.as_deref(), ctx)?
            .region(Region::new(target.region.clone()))
            .no_credentials()
            .load()
            .await;
        let source = aws_credential_types::Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key().to_string(),
            Some(creds.session_token().to_string()),
            Some(SystemTime::from(creds.expiration)),
            "elhaz",
        );
        let out = sts_client(&sdk, target, Some(source))
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| map_sdk_error(e, StsCall::GetCallerIdentity, target))?;
        Ok(Identity {
            user_id: out.user_id().unwrap_or_default().to_string(),
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }
}

/// One AssumeRole call, as a config or a role profile asks for it: the single place
/// where its parameters become an STS request.
struct RoleRequest<'a> {
    role_arn: &'a str,
    /// None: a generated `elhaz-<user>-<time>`.
    session_name: Option<&'a str>,
    duration_secs: Option<i32>,
    external_id: Option<&'a str>,
    /// The MFA device's serial and the code for it.
    mfa: Option<(&'a str, Sensitive)>,
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
    fn from_config(ar: &'a AssumeRole, mfa_code: Option<Sensitive>, origin: &'a str) -> Self {
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
    fn from_profile(profile: &'a AwsProfile, role_arn: &'a str) -> Result<Self> {
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
    async fn send(
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
        let out = req
            .send()
            .await
            .map_err(|e| map_sdk_error(e, StsCall::AssumeRole(self.role_arn), target))?;
        convert(out.credentials(), issued, self.role_arn)
    }
}

/// STS.verify: a CA bundle path, or nothing; `false` is refused.
fn ca_bundle_of(sts_params: &StsClient, path: &Path) -> Result<Option<String>> {
    match &sts_params.verify {
        Some(Verify::Enabled(false)) => Err(Error::config(format!(
            "{}: STS.verify: false is refused: it would send credentials to any server posing as STS",
            crate::error::display_path(path)
        ))
        .with_hint(format!(
            "remove STS.verify, or set it to a CA bundle path: elhaz config update {} --editor",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("NAME")
        ))),
        Some(Verify::CaBundle(p)) => Ok(Some(p.clone())),
        _ => Ok(None),
    }
}

/// The SDK settings a config's STS client uses, where its STS is, and the region of
/// its Session.profile_name (if it names one).
async fn config_sdk(
    sts_params: &StsClient,
    session: &SourceSession,
    ca_bundle: Option<String>,
    ctx: &SourceContext,
) -> Result<(aws_config::SdkConfig, StsTarget, Option<String>)> {
    let mut loader = base_loader(ca_bundle.as_deref(), ctx)?;
    if let Some(p) = &session.profile_name {
        loader = loader.profile_name(p);
    }
    // STS.region_name, Session.region_name, then Session.profile_name's region: all
    // before the environment's, which may be an outer session's (aws-config's own
    // chain would put AWS_REGION before the profile).
    let profile_region = match &session.profile_name {
        Some(p) => AwsProfiles::load_in(ctx)
            .await
            .ok()
            .and_then(|ps| ps.get(p).and_then(|p| p.region.clone())),
        None => None,
    };
    let explicit_region = sts_params
        .region_name
        .clone()
        .or(session.region_name.clone())
        .or(profile_region.clone());
    if let Some(r) = &explicit_region {
        loader = loader.region(Region::new(r.clone()));
    }
    let sdk = loader.load().await;
    let region = sdk_region(&sdk);
    let endpoint_url = sts_params.endpoint_url.clone().or_else(|| {
        (sts_params.use_ssl == Some(false)).then(|| format!("http://sts.{region}.amazonaws.com"))
    });
    let target = StsTarget {
        region,
        endpoint_url,
        ca_bundle,
    };
    Ok((sdk, target, profile_region))
}

/// The region the SDK settled on, else us-east-1.
fn sdk_region(sdk: &aws_config::SdkConfig) -> String {
    sdk.region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| DEFAULT_REGION.to_string())
}

/// A config's source credentials: STS static keys, Session static keys,
/// Session.profile_name, else the default chain, all in the caller's context.
async fn config_source(
    sts_params: &StsClient,
    session: &SourceSession,
    sdk: &aws_config::SdkConfig,
    target: &StsTarget,
    ctx: &SourceContext,
) -> Result<aws_credential_types::Credentials> {
    let static_keys = match (
        &sts_params.aws_access_key_id,
        &sts_params.aws_secret_access_key,
    ) {
        (Some(id), Some(secret)) => Some((id, secret, sts_params.aws_session_token.as_ref())),
        _ => match (&session.aws_access_key_id, &session.aws_secret_access_key) {
            (Some(id), Some(secret)) => Some((id, secret, session.aws_session_token.as_ref())),
            _ => None,
        },
    };
    if let Some((id, secret, token)) = static_keys {
        return Ok(aws_credential_types::Credentials::new(
            id.clone(),
            secret.expose().to_string(),
            token.map(|t| t.expose().to_string()),
            None,
            "elhaz-config",
        ));
    }
    // A profile whose chain ends at an SSO profile as the source (named, or the
    // caller's profile when no keys are in its environment): our own SSO code, as for
    // the profile itself.
    let profiles = AwsProfiles::load_in(ctx).await.unwrap_or_default();
    let start = match &session.profile_name {
        Some(p) => Some(p.as_str()),
        None if ctx.get("AWS_ACCESS_KEY_ID").is_none() => Some(ctx.profile()),
        None => None,
    };
    if let Some((hops, root)) = start.and_then(|p| sso_chain(&profiles, p)) {
        return sso_chain_source(&hops, root, sdk, target, ctx).await;
    }
    let provider: SharedCredentialsProvider = match &session.profile_name {
        Some(p) => SharedCredentialsProvider::new(
            ProfileFileCredentialsProvider::builder()
                .profile_files(ctx.profile_files())
                .profile_name(p)
                .build(),
        ),
        None => sdk
            .credentials_provider()
            .ok_or_else(|| Error::auth("no source credentials: the default chain is empty"))?,
    };
    let named = session.profile_name.is_some();
    let start = session
        .profile_name
        .clone()
        .unwrap_or_else(|| ctx.profile().to_string());
    provider.provide_credentials().await.map_err(|e| {
        // The default chain found nothing: say what it tried, in the caller's
        // context, never blaming a profile that is not there.
        if !named && matches!(e, CredentialsError::CredentialsNotLoaded(_)) {
            return no_source_error(ctx, &profiles);
        }
        // Nothing in the caller's environment or files, so the error is from the last
        // resorts (container or instance metadata): still say what was tried first.
        let nothing_local = !named
            && profiles.get(&start).is_none()
            && ["AWS_ACCESS_KEY_ID", "AWS_ROLE_ARN"]
                .iter()
                .all(|v| ctx.get(v).is_none());
        if nothing_local {
            let said = crate::error::tidy(&crate::error::chain(&e));
            let mut err = no_source_error(ctx, &profiles);
            err.message = format!(
                "{}; the last resort (container or instance metadata) said: {said}",
                err.message
            );
            return err;
        }
        let start = (named || profiles.get(&start).is_some()).then_some(start.as_str());
        map_source_error(&e, &profiles, start, named)
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
        "Ec2InstanceMetadata" => aws_config::imds::credentials::ImdsCredentialsProvider::builder()
            .build()
            .provide_credentials()
            .await
            .map_err(failed),
        "EcsContainer" => aws_config::ecs::EcsCredentialsProvider::builder()
            .build()
            .provide_credentials()
            .await
            .map_err(failed),
        other => Err(Error::config(format!(
            "profile {}: credential_source {other:?} is not one of Environment, Ec2InstanceMetadata, EcsContainer",
            profile.name
        ))),
    }
}

/// AssumeRoleWithWebIdentity for a config's AssumeRoleWithWebIdentity section.
async fn assume_web_identity(
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

/// An SSO profile's role credentials: a valid access token for its session (renewed
/// silently when it can be; else the typed "log in" error), then the portal's
/// GetRoleCredentials for its account and role.
async fn sso_credentials(profile: &AwsProfile, ctx: &SourceContext) -> Result<Credentials> {
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
    let token = crate::sso::token::access_token(&session).await?;
    let issued = now();
    let rc = crate::sso::portal::role_credentials(&session, &token, account, role).await?;
    Ok(Credentials::new(
        rc.access_key_id,
        rc.secret_access_key.expose_secret(),
        rc.session_token.expose_secret(),
        rc.expiration,
        issued,
    ))
}

/// The profiles from `name` down to the SSO profile its `source_profile` chain ends at,
/// through role profiles only: (the role profiles, `name` first; the SSO profile).
/// None for any other chain (keys, credential_process, credential_source…).
fn sso_chain<'p>(
    profiles: &'p AwsProfiles,
    name: &str,
) -> Option<(Vec<&'p AwsProfile>, &'p AwsProfile)> {
    let mut hops = Vec::new();
    let mut cur = profiles.get(name)?;
    loop {
        if cur.kind() == "sso" {
            return Some((hops, cur));
        }
        if cur.kind() != "role" || cur.credential_source.is_some() || hops.len() >= 16 {
            return None;
        }
        let next = cur.source_profile.as_deref().filter(|s| *s != cur.name)?;
        hops.push(cur);
        cur = profiles.get(next)?;
    }
}

/// The credentials at the top of an [`sso_chain`], every hop made here: the SSO
/// role's credentials (our token cache, renewal and portal call), then one AssumeRole
/// per role profile on the way back up.
async fn sso_chain_source(
    hops: &[&AwsProfile],
    root: &AwsProfile,
    sdk: &aws_config::SdkConfig,
    target: &StsTarget,
    ctx: &SourceContext,
) -> Result<aws_credential_types::Credentials> {
    let mut creds = sdk_credentials(&sso_credentials(root, ctx).await?, "elhaz-sso");
    for p in hops.iter().rev() {
        let role = p.role_arn.as_deref().unwrap_or_default();
        let c = RoleRequest::from_profile(p, role)?
            .send(sdk, target, creds)
            .await?;
        creds = sdk_credentials(&c, "elhaz-chain");
    }
    Ok(creds)
}

/// Our credentials in the SDK's type, to sign a further call.
fn sdk_credentials(c: &Credentials, provider: &'static str) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key().to_string(),
        Some(c.session_token().to_string()),
        Some(SystemTime::from(c.expiration)),
        provider,
    )
}

/// AssumeRoleWithSAML for a config's AssumeRoleWithSAML section: an unsigned call, as
/// the SDKs make it, with an assertion fetched afresh.
async fn assume_saml(
    saml: &Saml,
    sdk: &aws_config::SdkConfig,
    target: &StsTarget,
) -> Result<Credentials> {
    let assertion = external::read(
        saml.assertion_file.as_deref(),
        saml.assertion_command.as_ref(),
        &external::SAML,
    )
    .await?;
    check_assertion(&assertion, saml)?;
    let mut b = aws_sdk_sts::config::Builder::from(sdk).region(Region::new(target.region.clone()));
    b.set_credentials_provider(None);
    if let Some(url) = &target.endpoint_url {
        b = b.endpoint_url(url);
    }
    let client = aws_sdk_sts::Client::from_conf(b.build());
    let issued = now();
    let mut req = client
        .assume_role_with_saml()
        .role_arn(&saml.role_arn)
        .principal_arn(&saml.principal_arn)
        .saml_assertion(assertion.expose());
    if let Some(d) = saml.duration_seconds {
        req = req.duration_seconds(d as i32);
    }
    if let Some(p) = &saml.policy {
        req = req.policy(p);
    }
    for arn in saml.policy_arns.iter().flatten() {
        req = req.policy_arns(PolicyDescriptorType::builder().arn(arn.arn()).build());
    }
    let out = req
        .send()
        .await
        .map_err(|e| map_sdk_error(e, StsCall::Saml(&saml.role_arn), target))?;
    convert(out.credentials(), issued, &saml.role_arn)
}

/// What STS would refuse with a bare 400 (or moto with a 500 page) is said here, naming
/// where the assertion came from: it must be base64 of a SAML Response.
fn check_assertion(assertion: &Sensitive, saml: &Saml) -> Result<()> {
    let from = match (&saml.assertion_file, &saml.assertion_command) {
        (Some(f), _) => format!("SAMLAssertionFile {f}"),
        (None, Some(c)) => format!("SAMLAssertionCommand `{}`", external::shown(c)),
        (None, None) => "the SAML assertion".into(),
    };
    let compact: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
        assertion
            .expose()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    let decoded = aws_smithy_types::base64::decode(compact.as_str())
        .map(zeroize::Zeroizing::new)
        .map_err(|_| {
            Error::auth(format!(
                "{from} did not print a SAML assertion: expected the base64 SAMLResponse"
            ))
        })?;
    let text = String::from_utf8_lossy(&decoded);
    if !(text.contains("Response") && text.contains("Assertion")) {
        return Err(Error::auth(format!(
            "{from} did not print a SAML assertion: the base64 decodes to no SAML Response"
        )));
    }
    Ok(())
}

/// Credentials from aws-config's own profile provider (SSO, credential_process, web
/// identity, credential_source); long-term keys are refused.
async fn profile_provider_credentials(
    profile: &AwsProfile,
    profiles: &AwsProfiles,
    ctx: &SourceContext,
) -> Result<Credentials> {
    let issued = now();
    let creds = ProfileFileCredentialsProvider::builder()
        .profile_files(ctx.profile_files())
        .profile_name(&profile.name)
        .build()
        .provide_credentials()
        .await
        .map_err(|e| map_source_error(&e, profiles, Some(&profile.name), true))?;
    let Some(expiry) = creds.expiry() else {
        return Err(Error::config(format!(
            "profile {:?} gives long-term keys only; elhaz serves temporary credentials",
            profile.name
        ))
        .with_hint(format!(
            "make a role config that uses it: elhaz config add NAME --profile {} --role-arn ARN",
            profile.name
        )));
    };
    let Some(token) = creds.session_token() else {
        return Err(Error::auth(format!(
            "profile {:?} gave credentials without a session token",
            profile.name
        )));
    };
    Ok(Credentials::new(
        creds.access_key_id(),
        creds.secret_access_key(),
        token,
        OffsetDateTime::from(expiry),
        issued,
    ))
}

/// The loader every STS client starts from: standard retries (3 attempts) and
/// timeouts. ELHAZ_STS_TIMEOUT sets the per-attempt timeout (default 10 s). The SDK sees
/// the caller context's variables, never this process's own (see
/// [`SourceContext::sdk_env`]).
fn base_loader(ca_bundle: Option<&str>, ctx: &SourceContext) -> Result<aws_config::ConfigLoader> {
    let attempt = Seconds::from_env("ELHAZ_STS_TIMEOUT")?
        .map(|s| s.duration())
        .unwrap_or(Duration::from_secs(10));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .env(ctx.sdk_env())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(attempt.min(Duration::from_secs(5)))
                .operation_attempt_timeout(attempt)
                .operation_timeout(attempt * 3 + Duration::from_secs(5))
                .build(),
        );
    if let Some(path) = ca_bundle {
        loader = loader.http_client(ca_bundle_client(path)?);
    }
    Ok(loader)
}

/// An HTTPS client that trusts only the CA bundle at `path` (STS.verify).
fn ca_bundle_client(path: &str) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
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
    let ctx = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(pem))
        .build()
        .map_err(|e| Error::config(format!("STS.verify: {path}: {e}")))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(ctx)
        .build_https())
}

fn sts_client(
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

fn convert(
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
