//! AWS CLI profiles (`~/.aws/config` and `~/.aws/credentials`, honouring
//! AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE) as botocore sees them, read with
//! [`super::aws_ini`]: `[DEFAULT]` inherited, the credentials file's keys over the
//! config file's, every value with the file and line it came from; also the
//! `[sso-session]` and `[services]` sections. It reads the caller context's files; it
//! must not know of STS, SSO or the engine.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::aws_ini::{Effective, FileKind, Ini};
use crate::context::SourceContext;
use crate::error::{Result, display_path};
use crate::sensitive::Sensitive;

/// Where a setting (or a section) is: a file and a 1-based line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Origin {
    pub path: PathBuf,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", display_path(&self.path), self.line)
    }
}

/// A setting's value; a secret's Debug form is `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Plain(String),
    Secret(Sensitive),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    value: Value,
    origin: Origin,
}

/// Every effective key of a profile or section, with its value and origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Settings(BTreeMap<String, Setting>);

impl Settings {
    /// The settings of an effective section of the file at `path`.
    fn of(e: &Effective<'_>, path: &Path) -> Settings {
        let mut s = Settings::default();
        s.merge(e, path);
        s
    }

    /// Adds (over the present ones) the settings of an effective section.
    fn merge(&mut self, e: &Effective<'_>, path: &Path) {
        for (key, entry) in &e.settings {
            let value = if entry.is_secret() {
                Value::Secret(Sensitive::new(entry.value.clone()))
            } else {
                Value::Plain(entry.value.clone())
            };
            let origin = Origin {
                path: path.to_path_buf(),
                line: entry.first_line,
            };
            self.0.insert(key.to_string(), Setting { value, origin });
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|s| match &s.value {
            Value::Plain(v) => v.as_str(),
            Value::Secret(v) => v.expose(),
        })
    }

    fn origin(&self, key: &str) -> Option<&Origin> {
        self.0.get(key).map(|s| &s.origin)
    }
}

/// Long-term (or session) keys written in a profile.
#[allow(dead_code)] // part of the reader's API: not every item has a caller yet
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: Sensitive,
    pub session_token: Option<Sensitive>,
}

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
    /// The section header that defines it: the config file's, else the credentials
    /// file's.
    pub defined_at: Option<Origin>,
    settings: Settings,
}

impl AwsProfile {
    /// A profile of these settings, its fields taken from them.
    fn new(name: &str, defined_at: Origin, settings: Settings) -> AwsProfile {
        let mut p = AwsProfile {
            name: name.to_string(),
            defined_at: Some(defined_at),
            settings,
            ..AwsProfile::default()
        };
        p.refresh();
        p
    }

    /// Sets the fields from the settings.
    fn refresh(&mut self) {
        let get = |k: &str| self.settings.get(k).map(str::to_string);
        self.role_arn = get("role_arn");
        self.source_profile = get("source_profile");
        self.credential_source = get("credential_source");
        self.mfa_serial = get("mfa_serial");
        self.duration_seconds = get("duration_seconds");
        self.external_id = get("external_id");
        self.role_session_name = get("role_session_name");
        self.region = get("region");
        self.sso_session = get("sso_session");
        self.sso_start_url = get("sso_start_url");
        self.sso_account_id = get("sso_account_id");
        self.sso_role_name = get("sso_role_name");
        self.credential_process = get("credential_process");
        self.web_identity_token_file = get("web_identity_token_file");
        self.has_static_keys = self.settings.get("aws_access_key_id").is_some();
    }

    /// Any setting of the profile (after `[DEFAULT]` and the credentials file), e.g.
    /// `endpoint_url`, `ca_bundle`, `services`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key)
    }

    /// Where a setting's value came from.
    pub(crate) fn origin(&self, key: &str) -> Option<&Origin> {
        self.settings.origin(key)
    }

    /// Every setting and its value, in key order (secrets included: for hashing only,
    /// never for display).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings
            .0
            .keys()
            .filter_map(|k| Some((k.as_str(), self.settings.get(k)?)))
    }

    /// The keys written in the profile: None unless both `aws_access_key_id` and
    /// `aws_secret_access_key` are there.
    pub(crate) fn static_keys(&self) -> Option<StaticKeys> {
        let secret = |k: &str| self.get(k).map(Sensitive::new);
        Some(StaticKeys {
            access_key_id: self.get("aws_access_key_id")?.to_string(),
            secret_access_key: secret("aws_secret_access_key")?,
            session_token: secret("aws_session_token"),
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
}

/// A section of the config file that is not a profile (`[sso-session NAME]`,
/// `[services NAME]`), merged over `[DEFAULT]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AwsSection {
    pub name: String,
    /// Its (first) header.
    pub defined_at: Option<Origin>,
    settings: Settings,
}

impl AwsSection {
    fn new(e: &Effective<'_>, path: &Path) -> AwsSection {
        AwsSection {
            name: e.name.clone(),
            defined_at: Some(Origin {
                path: path.to_path_buf(),
                line: e.line,
            }),
            settings: Settings::of(e, path),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key)
    }

    #[allow(dead_code)] // part of the reader's API: not every item has a caller yet
    pub(crate) fn origin(&self, key: &str) -> Option<&Origin> {
        self.settings.origin(key)
    }

    /// Every key and its raw value (a nested one starts with `\n`).
    #[allow(dead_code)] // part of the reader's API: not every item has a caller yet
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings
            .0
            .keys()
            .filter_map(|k| Some((k.as_str(), self.settings.get(k)?)))
    }
}

/// Every profile of the shared config and credentials files, and the config file's
/// `[sso-session]` and `[services]` sections.
#[derive(Debug, Clone, Default)]
pub(crate) struct AwsProfiles {
    pub profiles: BTreeMap<String, AwsProfile>,
    /// Whether the config file exists (a missing one reads as empty).
    pub config_exists: bool,
    pub config_path: PathBuf,
    #[allow(dead_code)] // part of the reader's API: not every item has a caller yet
    pub credentials_path: PathBuf,
    /// Profile names in the order the files define them (config file first).
    order: Vec<String>,
    /// In file order.
    sso_sessions: Vec<AwsSection>,
    services: Vec<AwsSection>,
}

impl AwsProfiles {
    /// Loads the files a caller context names (AWS_CONFIG_FILE,
    /// AWS_SHARED_CREDENTIALS_FILE, else the defaults under HOME), on a blocking
    /// thread: a slow file system never holds up a runtime's other tasks.
    pub(crate) async fn load_in(source: &SourceContext) -> Result<AwsProfiles> {
        let source = source.clone();
        tokio::task::spawn_blocking(move || Self::load_sync(&source))
            .await
            .map_err(|e| {
                crate::error::Error::other(format!("reading the AWS CLI files failed: {e}"))
            })?
    }

    /// [`Self::load_in`], for code outside a runtime (or that may block). Missing
    /// files count as empty.
    pub(crate) fn load_sync(source: &SourceContext) -> Result<AwsProfiles> {
        let config = Ini::load(&source.config_file(), FileKind::Config)?;
        let credentials = Ini::load(&source.credentials_file(), FileKind::Credentials)?;
        Ok(Self::from_files(&config, &credentials))
    }

    /// The profiles of two parsed files: the credentials file's keys override the
    /// config file's for the same profile, as botocore merges them.
    pub(crate) fn from_files(config: &Ini, credentials: &Ini) -> AwsProfiles {
        let mut out = AwsProfiles {
            config_exists: config.exists,
            config_path: config.path.clone(),
            credentials_path: credentials.path.clone(),
            ..AwsProfiles::default()
        };
        let gathered = config.gather();
        for e in &gathered.profiles {
            out.add(e, &config.path);
        }
        for e in &credentials.gather().profiles {
            match out.profiles.get_mut(&e.name) {
                Some(p) => {
                    p.settings.merge(e, &credentials.path);
                    p.refresh();
                }
                None => out.add(e, &credentials.path),
            }
        }
        let section = |e: &Effective<'_>| AwsSection::new(e, &config.path);
        out.sso_sessions = gathered.sso_sessions.iter().map(section).collect();
        out.services = gathered.services.iter().map(section).collect();
        out
    }

    fn add(&mut self, e: &Effective<'_>, path: &Path) {
        let at = Origin {
            path: path.to_path_buf(),
            line: e.line,
        };
        let p = AwsProfile::new(&e.name, at, Settings::of(e, path));
        self.order.push(e.name.clone());
        self.profiles.insert(e.name.clone(), p);
    }

    pub(crate) fn get(&self, name: &str) -> Option<&AwsProfile> {
        self.profiles.get(name)
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    /// The profiles in the order the files define them (config file first).
    pub(crate) fn in_file_order(&self) -> impl Iterator<Item = &AwsProfile> {
        self.order.iter().filter_map(|n| self.profiles.get(n))
    }

    /// The `[sso-session NAME]` section.
    pub(crate) fn sso_session(&self, name: &str) -> Option<&AwsSection> {
        self.sso_sessions.iter().find(|s| s.name == name)
    }

    /// Every `[sso-session]` section, in file order.
    pub(crate) fn sso_sessions(&self) -> impl Iterator<Item = &AwsSection> {
        self.sso_sessions.iter()
    }

    /// The `[services NAME]` section: its raw entries, e.g. `sts` →
    /// `"\nendpoint_url = …"`.
    pub(crate) fn services(&self, name: &str) -> Option<&AwsSection> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The `endpoint_url` that the `[services NAME]` section gives `service` (its
    /// nested `endpoint_url = …`).
    pub(crate) fn service_endpoint(&self, services: &str, service: &str) -> Option<String> {
        let nested = self.services(services)?.get(service)?;
        nested.lines().find_map(|l| {
            let (k, v) = super::aws_ini::key_value(l)?;
            (k == "endpoint_url" && !v.is_empty()).then(|| v.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(config: &str, credentials: &str) -> AwsProfiles {
        let c = Ini::parse(config, Path::new("/u/.aws/config"), FileKind::Config).unwrap();
        let k = Ini::parse(
            credentials,
            Path::new("/u/.aws/credentials"),
            FileKind::Credentials,
        )
        .unwrap();
        AwsProfiles::from_files(&c, &k)
    }

    #[test]
    fn default_section_and_the_credentials_file_shape_a_profile_as_botocore_does() {
        let ps = load(
            "[DEFAULT]\nregion = eu-west-2\nsource_profile = base\n\n[profile dev]\nrole_arn = arn:aws:iam::1:role/Dev\n\n[profile both]\nregion = us-east-1\noutput = json\n",
            "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = SECRETBASE\n[both]\nregion = ap-south-1\n",
        );
        let dev = ps.get("dev").unwrap();
        assert_eq!(dev.kind(), "role");
        assert!(dev.is_name());
        assert_eq!(dev.region.as_deref(), Some("eu-west-2"));
        assert_eq!(dev.source_profile.as_deref(), Some("base"));
        assert_eq!(
            dev.origin("region").unwrap().to_string(),
            "/u/.aws/config:2"
        );
        assert_eq!(
            dev.defined_at.as_ref().unwrap().to_string(),
            "/u/.aws/config:5"
        );
        // The config file's [DEFAULT] is not the credentials file's.
        let base = ps.get("base").unwrap();
        assert_eq!(base.kind(), "keys");
        assert_eq!(base.region, None);
        assert_eq!(base.defined_at.as_ref().unwrap().line, 1);
        let keys = base.static_keys().unwrap();
        assert_eq!(keys.access_key_id, "AKIABASE");
        assert_eq!(keys.secret_access_key.expose(), "SECRETBASE");
        assert_eq!(keys.session_token, None);
        assert_eq!(dev.static_keys(), None);
        // The credentials file's keys win; the profile is still defined in the config.
        let both = ps.get("both").unwrap();
        assert_eq!(both.region.as_deref(), Some("ap-south-1"));
        assert_eq!(both.get("output"), Some("json"));
        assert_eq!(
            both.origin("region").unwrap().to_string(),
            "/u/.aws/credentials:5"
        );
        assert_eq!(
            both.defined_at.as_ref().unwrap().to_string(),
            "/u/.aws/config:8"
        );
        let order: Vec<&str> = ps.in_file_order().map(|p| p.name.as_str()).collect();
        assert_eq!(order, ["dev", "both", "base"]);
        assert!(ps.config_exists);
    }

    #[test]
    fn sso_sessions_and_services_by_name() {
        let ps = load(
            "[sso-session corp]\nsso_start_url = https://corp/start\nsso_region = eu-west-1\n\
             [services local]\nsts =\n  endpoint_url = http://localhost:5000\n\
             [profile p]\nservices = local\n",
            "",
        );
        let corp = ps.sso_session("corp").unwrap();
        assert_eq!(corp.get("sso_region"), Some("eu-west-1"));
        assert_eq!(corp.origin("sso_region").unwrap().line, 3);
        assert_eq!(corp.defined_at.as_ref().unwrap().line, 1);
        assert!(ps.sso_session("nope").is_none());
        let local = ps.services("local").unwrap();
        let entries: Vec<(&str, &str)> = local.entries().collect();
        assert_eq!(entries, [("sts", "\nendpoint_url = http://localhost:5000")]);
        assert_eq!(ps.get("p").unwrap().get("services"), Some("local"));
        assert_eq!(ps.sso_sessions().count(), 1);
    }

    #[test]
    fn secrets_never_appear_in_debug() {
        let ps = load(
            "[default]\naws_secret_access_key = CONFIGSECRET\n",
            "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = CREDSECRET\naws_session_token = TOKENSECRET\naws_security_token = OLDSECRET\n",
        );
        let p = ps.get("default").unwrap();
        assert_eq!(p.get("aws_secret_access_key"), Some("CREDSECRET"));
        assert_eq!(
            p.static_keys().unwrap().session_token.unwrap().expose(),
            "TOKENSECRET"
        );
        let shown = format!("{ps:?} {p:?} {:?}", p.static_keys());
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("AKIA1"), "{shown}");
    }
}
