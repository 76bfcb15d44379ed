//! The credential engine: NAME → temporary credentials, through STS AssumeRole (elhaz
//! configs and role profiles), AssumeRoleWithWebIdentity, AssumeRoleWithSAML, IAM
//! Identity Center (our `sso` module: token cache, renewal, portal), or aws-config's
//! own profile provider (credential_process, web identity profiles, longer chains).
//! It owns the STS calls and how their parameters are built. It must not know of the
//! daemon, the socket, the terminal (an MFA code it needs and was not given is an
//! `MfaRequired` error, asked for by the command layer), or this process's own
//! environment: every source comes from the caller's context.

use crate::duration::now;
use std::path::Path;

use aws_config::Region;
use serde::{Deserialize, Serialize};

use super::chain::{Got, Hop, Walk, target_for};
use super::saml::assume_saml;
use super::sources::{self, Use};
use super::sts::{
    DEFAULT_REGION, RoleRequest, assume_web_identity, base_loader, sdk_credentials, sts_client,
};
use super::sts_error::{StsCall, map_sdk_error};
use super::{Credentials, StsTarget, external, mfa};
use crate::config::profiles::{AwsProfile, AwsProfiles};
use crate::config::resolve::resolve_in;
use crate::config::schema::{Config, SourceSession, StsClient, Verify};
use crate::config::{Source, Store};
use crate::context::SourceContext;
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
        let mut names = external::resolving_now();
        if let Some(e) = external::loop_in(&names, name) {
            return Err(e);
        }
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
                crate::times::zulu(fetched.credentials.expiration),
                crate::times::zulu(at)
            ))
            .with_hint("check this machine's clock: timedatectl status"));
        }
        Ok(fetched)
    }

    /// Where NAME's STS is for this caller (the same target its fetch signs for and
    /// whoami asks), read from the config or profile without calling anyone.
    pub(crate) async fn sts_target(&self, name: &str, ctx: &SourceContext) -> Result<StsTarget> {
        let profiles = AwsProfiles::load_in(ctx).await?;
        match resolve_in(&self.store, name, ctx, &profiles).await? {
            Source::Config(config) => {
                let path = self.store.path(name)?;
                let sts_params = config.sts.clone().unwrap_or_default();
                let session = config.session.clone().unwrap_or_default();
                let ca_bundle =
                    ca_bundle_of(&sts_params, &path)?.or_else(|| ctx_ca_bundle(ctx, None));
                Ok(config_target(&sts_params, &session, ca_bundle, ctx, &profiles).0)
            }
            Source::Profile(profile) => {
                let ca_bundle = ctx_ca_bundle(ctx, Some(&profile));
                Ok(target_for(ctx, &profiles, Some(&profile), None, ca_bundle))
            }
        }
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
        // A code the caller typed is for the config's own device; without one, for the
        // first profile of its source chain that names a device (else that profile
        // would ask for a code, and get none, for ever).
        let own_device = config
            .assume_role
            .as_ref()
            .is_some_and(|a| a.serial_number.is_some());
        let mut walk = Walk {
            ctx,
            profiles,
            sdk: &sdk,
            ca_bundle,
            region: region.clone(),
            token_code: token_code.filter(|_| !own_device),
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
        // The profile itself runs elhaz, or a role profile's source (at any depth)
        // does: that one is named, at its line.
        return Err(if chain.hops.is_empty() {
            served_name_error(profile, &call)
        } else {
            sources::served_source_error(&chain, &call)
        });
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

/// Whether NAME's source credentials come from a `credential_process` helper other
/// than elhaz. The SDKs run a helper with the environment of the process that needs
/// it, and a helper may read any of it (`OP_ACCOUNT`, `VAULT_ADDR`, `PATH`); the
/// daemon's environment is whoever started it. The broker answers such a NAME in the
/// caller's process, so the daemon never gives a different answer.
pub(crate) fn runs_helper(store: &Store, name: &str, ctx: &SourceContext) -> bool {
    // On every request (`export`, the hook's refresh): files that name no helper (most
    // users' files) are read, not parsed. Keys are case-insensitive, as botocore reads.
    let names_helper = |p: std::path::PathBuf| {
        std::fs::read(p).is_ok_and(|mut b| {
            b.make_ascii_lowercase();
            b.windows(18).any(|w| w == b"credential_process")
        })
    };
    if !names_helper(ctx.config_file()) && !names_helper(ctx.credentials_file()) {
        return false;
    }
    let Ok(profiles) = AwsProfiles::load_sync(ctx) else {
        return false;
    };
    let helper = |chain: &sources::Chain| {
        matches!(chain.root, sources::Root::Process(_)) && chain.served_by_elhaz().is_none()
    };
    // A config of the name wins over a profile, as everywhere; its source is decided
    // as the engine decides it.
    if let Ok(config) = store.load(name) {
        if config.web_identity.is_some() || config.saml.is_some() {
            return false;
        }
        let sts = config.sts.clone().unwrap_or_default();
        let session = config.session.clone().unwrap_or_default();
        return match plan_config_source(&sts, &session, &profiles, ctx, store, name) {
            Ok(
                ConfigSource::Profile(c)
                | ConfigSource::Default(sources::DefaultSource::Profile(c)),
            ) => helper(&c),
            _ => false,
        };
    }
    sources::plan(&profiles, name, Use::Name).is_ok_and(|c| helper(&c))
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
    let (target, profile_region) =
        config_target(sts_params, session, ca_bundle.clone(), ctx, profiles);
    let sdk = base_loader(ca_bundle.as_deref(), ctx)?
        .region(Region::new(target.region.clone()))
        .load()
        .await;
    Ok((sdk, target, profile_region))
}

/// Where a config's STS is, and the region of its Session.profile_name (if it names
/// one).
fn config_target(
    sts_params: &StsClient,
    session: &SourceSession,
    ca_bundle: Option<String>,
    ctx: &SourceContext,
    profiles: &AwsProfiles,
) -> (StsTarget, Option<String>) {
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
    (target, profile_region)
}

/// A config's source credentials: STS static keys, Session static keys,
/// Session.profile_name, else the default chain, all in the caller's context.
/// Where a config's source credentials come from, decided without a call: `STS` or
/// `Session` static keys, `Session.profile_name`'s chain, else the caller's default
/// chain.
enum ConfigSource<'c, 'p> {
    Keys(&'c String, &'c Sensitive, Option<&'c Sensitive>),
    Profile(sources::Chain<'p>),
    Default(sources::DefaultSource<'p>),
}

/// The [`ConfigSource`] of config `name`; a profile whose credentials elhaz serves is
/// refused (never a source).
fn plan_config_source<'c, 'p>(
    sts_params: &'c StsClient,
    session: &'c SourceSession,
    profiles: &'p AwsProfiles,
    ctx: &SourceContext,
    store: &Store,
    name: &str,
) -> Result<ConfigSource<'c, 'p>> {
    let keys = |id: &'c Option<String>, secret: &'c Option<Sensitive>, token| match (id, secret) {
        (Some(id), Some(secret)) => Some(ConfigSource::Keys(id, secret, token)),
        _ => None,
    };
    if let Some(k) = keys(
        &sts_params.aws_access_key_id,
        &sts_params.aws_secret_access_key,
        sts_params.aws_session_token.as_ref(),
    )
    .or_else(|| {
        keys(
            &session.aws_access_key_id,
            &session.aws_secret_access_key,
            session.aws_session_token.as_ref(),
        )
    }) {
        return Ok(k);
    }
    match &session.profile_name {
        Some(p) => {
            let chain =
                sources::plan(profiles, p, Use::Source).map_err(|e| in_config(e, store, name))?;
            if let Some(call) = chain.served_by_elhaz() {
                return Err(in_config(
                    sources::served_source_error(&chain, &call),
                    store,
                    name,
                ));
            }
            Ok(ConfigSource::Profile(chain))
        }
        None => Ok(ConfigSource::Default(sources::default_source(
            profiles, ctx,
        )?)),
    }
}

async fn config_source(
    sts_params: &StsClient,
    session: &SourceSession,
    walk: &mut Walk<'_>,
    store: &Store,
    path: &Path,
) -> Result<aws_credential_types::Credentials> {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("NAME");
    let got = match plan_config_source(sts_params, session, walk.profiles, walk.ctx, store, name)? {
        ConfigSource::Keys(id, secret, token) => {
            return Ok(aws_credential_types::Credentials::new(
                id.clone(),
                secret.expose().to_string(),
                token.map(|t| t.expose().to_string()),
                None,
                "elhaz-config",
            ));
        }
        ConfigSource::Profile(chain) => walk.run(&chain, false).await?,
        ConfigSource::Default(d) => walk.default_chain(&d).await?,
    };
    Ok(got.signer())
}
