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
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sts::types::PolicyDescriptorType;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::chain::{Got, Hop, Walk};
use super::sources::{self, Use};
use super::sts_error::{StsCall, map_sdk_error};
use super::{Credentials, StsTarget, external, mfa, now};
use crate::config::profiles::{AwsProfile, AwsProfiles};
use crate::config::resolve::resolve_in;
use crate::config::schema::{
    AssumeRole, Config, PolicyArn, ProvidedContext, Saml, SourceSession, StsClient, Tag, Verify,
    WebIdentity,
};
use crate::config::{Source, Store};
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
    /// The intermediate hops' credentials, for the next refresh of the same session.
    pub hops: Vec<Hop>,
    /// What helpers said on stderr while these were fetched in the daemon.
    pub notes: Vec<String>,
    /// The start URL of the IAM Identity Center login they come from, if any.
    pub sso: Option<String>,
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

pub(crate) const DEFAULT_REGION: &str = "us-east-1";

impl Engine {
    pub(crate) fn new(store: Store) -> Self {
        Engine { store }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Fetches fresh credentials for NAME, with the sources of the caller context
    /// `ctx` and nothing else (never this process's own environment). `token_code` is
    /// an MFA code the caller already has (typed in the client, sent with `daemon add`);
    /// `reuse`, the intermediate hops of the session's last fetch.
    pub(crate) async fn fetch(
        &self,
        name: &str,
        token_code: Option<&Sensitive>,
        ctx: &SourceContext,
        reuse: &[Hop],
    ) -> Result<Fetched> {
        if let Some(e) = external::loop_of(name) {
            return Err(e);
        }
        let mut names = external::inherited_names();
        names.push(name.to_string());
        external::RESOLVING
            .scope(names, self.fetch_inner(name, token_code, ctx, reuse))
            .await
    }

    async fn fetch_inner(
        &self,
        name: &str,
        token_code: Option<&Sensitive>,
        ctx: &SourceContext,
        reuse: &[Hop],
    ) -> Result<Fetched> {
        let profiles = AwsProfiles::load_in(ctx).await?;
        let source = resolve_in(&self.store, name, ctx, &profiles).await?;
        let fetched = match source {
            Source::Config(config) => {
                let path = self.store.path(name)?;
                self.fetch_config(&config, &path, token_code, ctx, &profiles, reuse)
                    .await
            }
            Source::Profile(profile) => {
                fetch_profile(&profile, token_code, ctx, &profiles, reuse).await
            }
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

    /// The bytes that decide which identity NAME gives this caller (see
    /// [`sources::describe`]): the config file as it is now and the plan of its source,
    /// or the profile's plan, plus where STS is and its partition. Two callers with the
    /// same bytes get the same identity; a changed file gives other bytes.
    pub(crate) async fn identity(&self, name: &str, ctx: &SourceContext) -> Result<Vec<u8>> {
        let mut out: Vec<u8> = Vec::with_capacity(512);
        let profiles = AwsProfiles::load_in(ctx).await?;
        let source = resolve_in(&self.store, name, ctx, &profiles).await?;
        let region = match source {
            Source::Config(config) => {
                out.extend_from_slice(b"config\0");
                let text = serde_json::to_vec(&config)
                    .map_err(|e| Error::other(format!("config {name}: {e}")))?;
                out.extend_from_slice(&text);
                let session = config.session.clone().unwrap_or_default();
                let sts_keys = config
                    .sts
                    .as_ref()
                    .is_some_and(|s| s.aws_access_key_id.is_some());
                let uses_source = config.assume_role.is_some()
                    && !sts_keys
                    && session.aws_access_key_id.is_none();
                if uses_source {
                    match &session.profile_name {
                        Some(p) => {
                            let chain = sources::plan(&profiles, p, Use::Source)
                                .map_err(|e| in_config(e, &self.store, name))?;
                            sources::describe(&chain, ctx, &mut out);
                        }
                        None => {
                            let d = sources::default_source(&profiles, ctx)?;
                            sources::describe_default(&d, ctx, &mut out);
                        }
                    }
                }
                config.region().map(str::to_string)
            }
            Source::Profile(p) => {
                out.extend_from_slice(b"profile\0");
                let chain = sources::plan(&profiles, name, Use::Name)?;
                sources::describe(&chain, ctx, &mut out);
                p.region.clone()
            }
        };
        let region = region
            .as_deref()
            .or(ctx.get("AWS_REGION"))
            .or(ctx.get("AWS_DEFAULT_REGION"));
        out.extend_from_slice(sources::partition(region).as_bytes());
        for var in crate::context::VARS
            .iter()
            .skip(crate::context::CARRIED.len())
        {
            if var.starts_with("AWS_CONTAINER") || var.starts_with("AWS_EC2") {
                continue;
            }
            out.push(0);
            out.extend_from_slice(var.as_bytes());
            out.push(b'=');
            out.extend_from_slice(ctx.get(var).unwrap_or("").as_bytes());
        }
        Ok(out)
    }

    async fn fetch_config(
        &self,
        config: &Config,
        path: &Path,
        token_code: Option<&Sensitive>,
        ctx: &SourceContext,
        profiles: &AwsProfiles,
        reuse: &[Hop],
    ) -> Result<Fetched> {
        let shown = crate::error::display_path(path);
        let sts_params = config.sts.clone().unwrap_or_default();
        let session = config.session.clone().unwrap_or_default();
        let ca_bundle = ca_bundle_of(&sts_params, path)?.or_else(|| ctx_ca_bundle(ctx, None));
        let (sdk, target, profile_region) =
            config_sdk(&sts_params, &session, ca_bundle.clone(), ctx, profiles).await?;
        // The region commands get: the config's or its source profile's, never the
        // environment's (through the daemon that would be whoever started it).
        let region = config.region().map(str::to_string).or(profile_region);
        let mut walk = Walk {
            ctx,
            profiles,
            sdk: &sdk,
            ca_bundle,
            region: region.clone(),
            token_code: None,
            reuse,
            made: Vec::new(),
            sso: None,
        };
        let credentials = if let Some(web) = &config.web_identity {
            assume_web_identity(web, &sdk, &target).await?
        } else if let Some(saml) = &config.saml {
            assume_saml(saml, &sdk, &target).await?
        } else {
            let Some(ar) = &config.assume_role else {
                return Err(Error::config(format!(
                    "{shown}: missing AssumeRole.RoleArn"
                )));
            };
            let source = config_source(&sts_params, &session, &mut walk, &self.store, path).await?;
            let mfa_code = match &ar.serial_number {
                Some(serial) => Some(self.mfa_code(config, serial, token_code).await?),
                None => None,
            };
            RoleRequest::from_config(ar, mfa_code, &shown)
                .send(&sdk, &target, source)
                .await?
        };
        Ok(Fetched {
            credentials,
            region,
            source: "config",
            sts: target,
            hops: walk.made,
            notes: Vec::new(),
            sso: walk.sso,
        })
    }

    /// The MFA code for a config: the caller's, the config's TokenCode, MFA.command, or
    /// the typed "ask for one" error (the command layer asks on a terminal).
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
        Err(mfa::no_tty(serial))
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
        let source = sdk_credentials(creds, "elhaz");
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

/// An error about a config's `Session.profile_name`, with the config file named.
fn in_config(mut e: Error, store: &Store, name: &str) -> Error {
    if e.kind == crate::error::Kind::Config
        && let Ok(path) = store.path(name)
    {
        e.message = format!(
            "{}: Session.profile_name: {}",
            crate::error::display_path(&path),
            e.message
        );
    }
    e
}

/// A profile as NAME: its plan, every hop made here.
async fn fetch_profile(
    profile: &AwsProfile,
    token_code: Option<&Sensitive>,
    ctx: &SourceContext,
    profiles: &AwsProfiles,
    reuse: &[Hop],
) -> Result<Fetched> {
    let chain = sources::plan(profiles, &profile.name, Use::Name)?;
    if let Some(call) = chain.served_by_elhaz() {
        return Err(served_name_error(profile, &call));
    }
    let ca_bundle = ctx_ca_bundle(ctx, Some(profile));
    let sdk = base_loader(ca_bundle.as_deref(), ctx)?.load().await;
    let mut walk = Walk {
        ctx,
        profiles,
        sdk: &sdk,
        ca_bundle,
        region: profile.region.clone(),
        token_code,
        reuse,
        made: Vec::new(),
        sso: None,
    };
    let target = walk.target(Some(profile));
    let credentials = match walk.run(&chain, true).await? {
        Got::Temporary(c) => c,
        Got::LongTerm(_) => {
            return Err(Error::config(format!(
                "profile {:?} gives long-term keys only; elhaz serves temporary credentials",
                profile.name
            ))
            .with_hint(format!(
                "make a role config that uses it: elhaz config add NAME --profile {} --role-arn ARN",
                profile.name
            )));
        }
    };
    Ok(Fetched {
        credentials,
        region: profile.region.clone(),
        source: "profile",
        sts: target,
        hops: walk.made,
        notes: Vec::new(),
        sso: walk.sso,
    })
}

/// A profile NAME whose `credential_process` runs elhaz: itself (a loop), or another
/// NAME (use that one).
fn served_name_error(profile: &AwsProfile, call: &sources::ElhazCall) -> Error {
    let at = match profile.origin("credential_process") {
        Some(o) => format!("profile {} ({o})", profile.name),
        None => format!("profile {}", profile.name),
    };
    match call.name.as_deref() {
        Some(n) if n == profile.name => Error::config(format!(
            "{at} loops: its credential_process asks elhaz for {n}, which is this profile"
        ))
        .with_hint(format!(
            "make a config named {n} (elhaz config add {n} --role-arn ARN), which wins over the profile, or remove the credential_process line"
        )),
        Some(n) => Error::config(format!(
            "{at} only passes on what elhaz serves for {n}"
        ))
        .with_hint(format!("use {n} directly: elhaz exec {n} -- ...")),
        None => Error::config(format!(
            "{at} loops: its credential_process runs elhaz without a NAME"
        ))
        .with_hint("name what it should serve: credential_process = elhaz export NAME -f credential-process"),
    }
}

/// The CA bundle the caller's context names (AWS_CA_BUNDLE, else the profile's
/// `ca_bundle`).
fn ctx_ca_bundle(ctx: &SourceContext, profile: Option<&AwsProfile>) -> Option<String> {
    ctx.get("AWS_CA_BUNDLE")
        .map(str::to_string)
        .or_else(|| profile.and_then(|p| p.get("ca_bundle")).map(str::to_string))
}

/// One AssumeRole call, as a config or a role profile asks for it: the single place
/// where its parameters become an STS request.
pub(super) struct RoleRequest<'a> {
    role_arn: &'a str,
    /// None: a generated `elhaz-<user>-<time>`.
    session_name: Option<&'a str>,
    duration_secs: Option<i32>,
    external_id: Option<&'a str>,
    /// The MFA device's serial and the code for it.
    pub(super) mfa: Option<(&'a str, Sensitive)>,
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
    pub(super) fn from_profile(profile: &'a AwsProfile, role_arn: &'a str) -> Result<Self> {
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
    pub(super) async fn send(
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
    profiles: &AwsProfiles,
) -> Result<(aws_config::SdkConfig, StsTarget, Option<String>)> {
    // STS.region_name, Session.region_name, then Session.profile_name's region: all
    // before the environment's, which may be an outer session's; then the caller's
    // region, then the selected profile's (as the SDKs would).
    let named = session
        .profile_name
        .as_deref()
        .and_then(|p| profiles.get(p));
    let profile_region = named.and_then(|p| p.region.clone());
    let selected = profiles.get(ctx.profile());
    let region = sts_params
        .region_name
        .clone()
        .or(session.region_name.clone())
        .or(profile_region.clone())
        .or_else(|| ctx.get("AWS_REGION").map(str::to_string))
        .or_else(|| ctx.get("AWS_DEFAULT_REGION").map(str::to_string))
        .or_else(|| selected.and_then(|p| p.region.clone()))
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    let sdk = base_loader(ca_bundle.as_deref(), ctx)?
        .region(Region::new(region.clone()))
        .load()
        .await;
    let endpoint_url = sts_params
        .endpoint_url
        .clone()
        .or_else(|| {
            (sts_params.use_ssl == Some(false))
                .then(|| format!("http://sts.{region}.amazonaws.com"))
        })
        .or_else(|| sources::sts_endpoint(ctx, profiles, named.or(selected)));
    let target = StsTarget {
        region,
        endpoint_url,
        ca_bundle,
    };
    Ok((sdk, target, profile_region))
}

/// A config's source credentials: STS static keys, Session static keys,
/// Session.profile_name, else the default chain, all in the caller's context.
async fn config_source(
    sts_params: &StsClient,
    session: &SourceSession,
    walk: &mut Walk<'_>,
    store: &Store,
    path: &Path,
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
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("NAME");
    let got = match &session.profile_name {
        Some(p) => {
            let chain = sources::plan(walk.profiles, p, Use::Source)
                .map_err(|e| in_config(e, store, name))?;
            if let Some(call) = chain.served_by_elhaz() {
                return Err(in_config(
                    sources::served_source_error(&chain, &call),
                    store,
                    name,
                ));
            }
            walk.run(&chain, false).await?
        }
        None => {
            let d = sources::default_source(walk.profiles, walk.ctx)?;
            walk.default_chain(&d).await?
        }
    };
    Ok(got.signer())
}

/// AssumeRoleWithWebIdentity for a config's AssumeRoleWithWebIdentity section.
pub(super) async fn assume_web_identity(
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
pub(super) fn sdk_credentials(
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

/// The loader every STS client starts from: standard retries (3 attempts) and
/// timeouts. ELHAZ_STS_TIMEOUT sets the per-attempt timeout (default 10 s). The SDK sees
/// the caller context's variables, never this process's own (see
/// [`SourceContext::sdk_env`]).
pub(super) fn base_loader(
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
