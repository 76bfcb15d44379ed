//! AWS CLI profiles (`~/.aws/config` and `~/.aws/credentials`, honouring
//! AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE), read with the SDK's own parser.
//! It reads the caller context's files; it must not know of STS or the engine.

use std::collections::BTreeMap;

use aws_types::os_shim_internal::Fs;

use crate::context::SourceContext;
use crate::error::{Error, Result};
use crate::sensitive::Sensitive;

/// What elhaz needs to know of one profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AwsProfile {
    pub name: String,
    pub role_arn: Option<String>,
    pub source_profile: Option<String>,
    pub credential_source: Option<String>,
    pub mfa_serial: Option<String>,
    pub duration_seconds: Option<String>,
    pub external_id: Option<String>,
    pub role_session_name: Option<String>,
    pub region: Option<String>,
    pub sso_session: Option<String>,
    pub sso_start_url: Option<String>,
    pub sso_account_id: Option<String>,
    pub sso_role_name: Option<String>,
    pub credential_process: Option<String>,
    pub web_identity_token_file: Option<String>,
    pub has_static_keys: bool,
    /// The section header that defines it.
    pub defined_at: Option<Origin>,
    /// Every effective key with its value (secrets redacted in Debug).
    keys: BTreeMap<String, (Sensitive, Option<Origin>)>,
}

/// Where a profile or one of its keys is written: a file and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub path: std::path::PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}",
            crate::error::display_path(&self.path),
            self.line
        )
    }
}

/// A profile's static keys.
#[derive(Debug, Clone)]
pub(crate) struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: Sensitive,
    pub session_token: Option<Sensitive>,
}

impl AwsProfile {
    /// Any key of the profile.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(|(v, _)| v.expose())
    }

    /// Where a key's value is written.
    pub(crate) fn origin(&self, key: &str) -> Option<&Origin> {
        self.keys.get(key).and_then(|(_, o)| o.as_ref())
    }

    /// Every effective key and value, in key order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.keys.iter().map(|(k, (v, _))| (k.as_str(), v.expose()))
    }

    /// aws_access_key_id and aws_secret_access_key (and aws_session_token), when both
    /// of the first two are there.
    pub(crate) fn static_keys(&self) -> Option<StaticKeys> {
        Some(StaticKeys {
            access_key_id: self.get("aws_access_key_id")?.to_string(),
            secret_access_key: Sensitive::new(self.get("aws_secret_access_key")?),
            session_token: self.get("aws_session_token").map(Sensitive::new),
        })
    }

    /// A one-word description of how the profile gets credentials.
    pub(crate) fn kind(&self) -> &'static str {
        if self.role_arn.is_some() && self.web_identity_token_file.is_some() {
            "web-identity"
        } else if self.role_arn.is_some() {
            "role"
        } else if self.sso_session.is_some() || self.sso_start_url.is_some() {
            "sso"
        } else if self.credential_process.is_some() {
            "process"
        } else if self.has_static_keys {
            "keys"
        } else {
            "other"
        }
    }

    /// Whether elhaz serves this profile as a NAME: one that yields temporary
    /// credentials (a role, SSO, a credential_process, web identity). A profile with
    /// long-term keys only is a source for others, never a NAME.
    pub(crate) fn is_name(&self) -> bool {
        matches!(self.kind(), "role" | "sso" | "process" | "web-identity")
    }

    /// What a picker or a listing shows next to the name.
    pub(crate) fn summary(&self) -> String {
        match (&self.role_arn, &self.sso_account_id, &self.sso_role_name) {
            (Some(arn), _, _) => arn.clone(),
            (None, Some(acct), Some(role)) => format!("sso {acct}/{role}"),
            _ => self.kind().to_string(),
        }
    }

    /// The command that logs this profile's SSO session in, if it uses SSO directly.
    pub(crate) fn sso_login_command(&self) -> Option<String> {
        if let Some(s) = &self.sso_session {
            Some(format!("elhaz sso login {s}"))
        } else if self.sso_start_url.is_some() {
            Some(format!("elhaz sso login {}", self.name))
        } else {
            None
        }
    }
}

/// Every profile of the shared config and credentials files.
#[derive(Debug, Clone, Default)]
pub(crate) struct AwsProfiles {
    pub profiles: BTreeMap<String, AwsProfile>,
    /// Whether the config file exists.
    pub config_exists: bool,
    pub config_path: std::path::PathBuf,
}

impl AwsProfiles {
    /// Loads the files of this process's caller context (missing files count as
    /// empty).
    pub(crate) async fn load() -> Result<AwsProfiles> {
        Self::load_in(SourceContext::caller()).await
    }

    /// Loads the files a caller context names (AWS_CONFIG_FILE,
    /// AWS_SHARED_CREDENTIALS_FILE, else the defaults under HOME).
    pub(crate) async fn load_in(ctx: &SourceContext) -> Result<AwsProfiles> {
        let set =
            aws_config::profile::load(&Fs::real(), &ctx.sdk_env(), &ctx.profile_files(), None)
                .await
                .map_err(|e| {
                    // Display only: DisplayErrorContext appends the error's Debug form.
                    let why = crate::error::tidy(&crate::error::chain(&e))
                        .replace("could not parse profile file: ", "");
                    Error::config(format!("cannot read the AWS CLI config: {why}")).with_hint(
                        format!(
                            "fix {} (or point AWS_CONFIG_FILE at another file)",
                            ctx.get("AWS_CONFIG_FILE").unwrap_or("~/.aws/config")
                        ),
                    )
                })?;
        let mut profiles = BTreeMap::new();
        for name in set.profiles() {
            let Some(p) = set.get_profile(name) else {
                continue;
            };
            let get = |k: &str| p.get(k).map(str::to_string);
            let keys = KNOWN
                .iter()
                .filter_map(|k| Some((k.to_string(), (Sensitive::new(p.get(k)?), None))))
                .collect();
            profiles.insert(
                name.to_string(),
                AwsProfile {
                    name: name.to_string(),
                    role_arn: get("role_arn"),
                    source_profile: get("source_profile"),
                    credential_source: get("credential_source"),
                    mfa_serial: get("mfa_serial"),
                    duration_seconds: get("duration_seconds"),
                    external_id: get("external_id"),
                    role_session_name: get("role_session_name"),
                    region: get("region"),
                    sso_session: get("sso_session"),
                    sso_start_url: get("sso_start_url"),
                    sso_account_id: get("sso_account_id"),
                    sso_role_name: get("sso_role_name"),
                    credential_process: get("credential_process"),
                    web_identity_token_file: get("web_identity_token_file"),
                    has_static_keys: p.get("aws_access_key_id").is_some(),
                    defined_at: None,
                    keys,
                },
            );
        }
        let config_path = ctx.config_file();
        Ok(AwsProfiles {
            profiles,
            config_exists: config_path.exists(),
            config_path,
        })
    }

    /// The same, for code without a runtime.
    pub(crate) fn load_blocking() -> Result<AwsProfiles> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| Error::other(format!("cannot start a runtime: {e}")))?
            .block_on(Self::load())
    }

    /// The `endpoint_url` of `service` in the `[services NAME]` section.
    pub(crate) fn service_endpoint(&self, _services: &str, _service: &str) -> Option<String> {
        None
    }

    pub(crate) fn get(&self, name: &str) -> Option<&AwsProfile> {
        self.profiles.get(name)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }
}

const KNOWN: &[&str] = &[
    "role_arn",
    "source_profile",
    "credential_source",
    "mfa_serial",
    "duration_seconds",
    "external_id",
    "role_session_name",
    "region",
    "sso_session",
    "sso_start_url",
    "sso_region",
    "sso_account_id",
    "sso_role_name",
    "credential_process",
    "web_identity_token_file",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "endpoint_url",
    "services",
    "ca_bundle",
    "source_identity",
];
