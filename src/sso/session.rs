//! NAME → the SSO session it means, from the caller's AWS files as
//! [`crate::config::profiles`] reads them: an `[sso-session NAME]` section, a profile
//! that names one (`sso_session = NAME`), or a legacy profile with `sso_start_url` and
//! `sso_region`. Errors name the file and line. The picker (several sessions, no NAME)
//! belongs to the command layer.

use crate::config::profiles::{AwsProfile, AwsProfiles, AwsSection, Origin};
use crate::context::SourceContext;
use crate::error::{Error, Result, display_path};

/// One SSO session: where to log in and what the token cache calls it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SsoSession {
    /// The `[sso-session]` name; None for a legacy profile.
    pub(crate) name: Option<String>,
    pub(crate) start_url: String,
    pub(crate) region: String,
    /// `sso_registration_scopes`, may be empty.
    pub(crate) scopes: Vec<String>,
    /// What a user types to name it (the session name, or the legacy profile's name).
    label: String,
    /// The caller's `AWS_ENDPOINT_URL_SSO_OIDC` and `AWS_ENDPOINT_URL_SSO` (or
    /// `AWS_ENDPOINT_URL`), when a daemon works for a caller whose variables are not
    /// its own; None: this process's environment decides.
    pub(crate) endpoints: Option<(Option<String>, Option<String>)>,
}

impl SsoSession {
    /// A session of an `[sso-session NAME]` section.
    pub(crate) fn named(name: &str, start_url: &str, region: &str, scopes: Vec<String>) -> Self {
        SsoSession {
            name: Some(name.to_string()),
            start_url: start_url.to_string(),
            region: region.to_string(),
            scopes,
            label: name.to_string(),
            endpoints: None,
        }
    }

    /// The session of a legacy profile (`sso_start_url` in the profile itself).
    pub(crate) fn legacy(profile: &str, start_url: &str, region: &str) -> Self {
        SsoSession {
            name: None,
            start_url: start_url.to_string(),
            region: region.to_string(),
            scopes: Vec::new(),
            label: profile.to_string(),
            endpoints: None,
        }
    }

    /// What a user types to name it: the session name, or the legacy profile's name.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// The key of its token cache file: the session name, or the start URL for a
    /// legacy profile (as the AWS CLI keys it).
    pub(crate) fn cache_key(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.start_url)
    }

    /// How the user is told about it: `SSO session 'corp'`, or for a legacy profile its
    /// name and start URL, plainly: `profile 'old' (SSO start URL https://…)`.
    pub(crate) fn described(&self) -> String {
        match &self.name {
            Some(n) => format!("SSO session '{n}'"),
            None => format!(
                "profile '{}' (SSO start URL {})",
                self.label,
                crate::terminal::escape_controls(&self.start_url)
            ),
        }
    }

    /// The same session, reached where the caller's context says (its OIDC and portal
    /// endpoint variables), whatever this process's own environment holds.
    fn for_caller(mut self, source: &SourceContext) -> Self {
        let ignore = source
            .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let pick = |var: &str| {
            (!ignore)
                .then(|| source.get(var).or_else(|| source.get("AWS_ENDPOINT_URL")))
                .flatten()
                .map(|u| u.trim_end_matches('/').to_string())
        };
        self.endpoints = Some((
            pick("AWS_ENDPOINT_URL_SSO_OIDC"),
            pick("AWS_ENDPOINT_URL_SSO"),
        ));
        self
    }

    /// The OIDC endpoint override in force for this session, if any.
    pub(crate) fn oidc_override(&self) -> Option<String> {
        match &self.endpoints {
            Some((oidc, _)) => oidc.clone(),
            None => std::env::var("AWS_ENDPOINT_URL_SSO_OIDC")
                .ok()
                .filter(|u| !u.is_empty()),
        }
    }

    /// The portal endpoint override in force for this session, if any.
    pub(crate) fn portal_override(&self) -> Option<String> {
        match &self.endpoints {
            Some((_, portal)) => portal.clone(),
            None => std::env::var("AWS_ENDPOINT_URL_SSO")
                .ok()
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
                .filter(|u| !u.is_empty()),
        }
    }

    /// The command that logs it in.
    pub(crate) fn login_command(&self) -> String {
        login_command(&self.label)
    }
}

/// The command that logs in the session a user calls `label`.
pub(crate) fn login_command(label: &str) -> String {
    format!("elhaz sso login {label}")
}

/// Resolves NAME (or the only session when None) from the AWS config file of a caller
/// context (the command's, the engine's, the daemon's). Small files read at once, in
/// or out of a runtime.
pub(crate) fn resolve_blocking(source: &SourceContext, name: Option<&str>) -> Result<SsoSession> {
    resolve_in(&AwsProfiles::load_sync(source)?, name).map(|s| s.for_caller(source))
}

/// Every session a user may name (labels), with what it is: the `[sso-session]`
/// sections, then legacy profiles, in file order. Empty when the file has none.
pub(crate) fn labels(source: &SourceContext) -> Result<Vec<(String, String)>> {
    let ps = AwsProfiles::load_sync(source)?;
    let mut out: Vec<(String, String)> = Vec::new();
    for s in ps.sso_sessions() {
        let url = set(s.get("sso_start_url")).unwrap_or("(no sso_start_url)");
        out.push((s.name.clone(), format!("sso-session  {url}")));
    }
    for p in legacy(&ps) {
        let url = set(p.get("sso_start_url")).unwrap_or_default();
        out.push((p.name.clone(), format!("legacy profile  {url}")));
    }
    Ok(out)
}

/// A value, unless it is empty (`key =` sets nothing here).
fn set(v: Option<&str>) -> Option<&str> {
    v.filter(|v| !v.is_empty())
}

/// The profiles that log in themselves (`sso_start_url`, no `sso_session`).
fn legacy(ps: &AwsProfiles) -> impl Iterator<Item = &AwsProfile> {
    ps.in_file_order()
        .filter(|p| set(p.get("sso_session")).is_none() && set(p.get("sso_start_url")).is_some())
}

/// `file:line` of an origin, else the file.
fn at(origin: Option<&Origin>, file: &str) -> String {
    origin.map_or_else(|| file.to_string(), ToString::to_string)
}

fn resolve_in(ps: &AwsProfiles, name: Option<&str>) -> Result<SsoSession> {
    let file = display_path(&ps.config_path);
    let Some(name) = name else {
        return only(ps);
    };
    if let Some(sec) = ps.sso_session(name) {
        return session_of(sec, &file);
    }
    let Some(p) = ps.get(name) else {
        return Err(
            Error::config(format!("no SSO session or profile named {name} in {file}"))
                .with_hint(known_hint(ps, &file)),
        );
    };
    if let Some(s) = set(p.get("sso_session")) {
        let Some(sec) = ps.sso_session(s) else {
            return Err(Error::config(format!(
                "{}: profile {name} names sso_session {s}, but there is no [sso-session {s}] section",
                at(p.origin("sso_session"), &file)
            ))
            .with_hint(format!(
                "add it: [sso-session {s}] with sso_start_url and sso_region (aws configure sso-session, or edit {file})"
            )));
        };
        return session_of(sec, &file);
    }
    if set(p.get("sso_start_url")).is_some() {
        return legacy_of(p, &file);
    }
    Err(Error::config(format!(
        "{}: profile {name} does not use IAM Identity Center (no sso_session or sso_start_url)",
        at(p.defined_at.as_ref(), &file)
    ))
    .with_hint(known_hint(ps, &file)))
}

/// The only session, when NAME is not given.
fn only(ps: &AwsProfiles) -> Result<SsoSession> {
    let file = display_path(&ps.config_path);
    let mut all: Vec<&str> = ps.sso_sessions().map(|s| s.name.as_str()).collect();
    all.extend(legacy(ps).map(|p| p.name.as_str()));
    match all.as_slice() {
        [] => Err(Error::config(format!("no [sso-session] section in {file}"))
            .with_hint(format!(
                "add one, e.g.\n  [sso-session corp]\n  sso_start_url = https://corp.awsapps.com/start\n  sso_region = us-east-1\nto {file} (or run: aws configure sso-session)"
            ))),
        [one] => resolve_in(ps, Some(one)),
        many => Err(Error::usage(format!(
            "several SSO sessions in {file}; name one: {}",
            many.join(", ")
        ))),
    }
}

fn known_hint(ps: &AwsProfiles, file: &str) -> String {
    let names: Vec<&str> = ps.sso_sessions().map(|s| s.name.as_str()).collect();
    if names.is_empty() {
        format!(
            "add an [sso-session NAME] section with sso_start_url and sso_region to {file} (or run: aws configure sso-session)"
        )
    } else {
        format!("the SSO sessions in {file}: {}", names.join(", "))
    }
}

/// The session of a legacy profile: its own `sso_start_url` and `sso_region`.
fn legacy_of(p: &AwsProfile, file: &str) -> Result<SsoSession> {
    let url = set(p.get("sso_start_url")).unwrap_or_default();
    let Some(region) = set(p.get("sso_region")) else {
        return Err(Error::config(format!(
            "{}: profile {} has sso_start_url but no sso_region",
            at(p.defined_at.as_ref(), file),
            p.name
        ))
        .with_hint(format!(
            "add sso_region (the region of your IAM Identity Center, e.g. us-east-1) to [profile {}] in {file}",
            p.name
        )));
    };
    Ok(SsoSession::legacy(&p.name, url, region))
}

fn session_of(sec: &AwsSection, file: &str) -> Result<SsoSession> {
    let name = &sec.name;
    let here = at(sec.defined_at.as_ref(), file);
    let Some(url) = set(sec.get("sso_start_url")) else {
        return Err(Error::config(format!(
            "{here}: [sso-session {name}] has no sso_start_url"
        ))
        .with_hint(format!(
            "add sso_start_url = https://YOUR-PORTAL.awsapps.com/start to [sso-session {name}] in {file}"
        )));
    };
    let Some(region) = set(sec.get("sso_region")) else {
        return Err(Error::config(format!(
            "{here}: [sso-session {name}] has sso_start_url but no sso_region"
        ))
        .with_hint(format!(
            "add sso_region (the region of your IAM Identity Center, e.g. us-east-1) to [sso-session {name}] in {file}"
        )));
    };
    let scopes = set(sec.get("sso_registration_scopes"))
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(SsoSession::named(name, url, region, scopes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CONFIG: &str = "\
[default]
region = eu-west-1

[profile dev]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = Dev

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access, openid

[profile old]
sso_start_url = https://old.awsapps.com/start
sso_region = us-east-1

[profile noregion]
sso_start_url = https://x.awsapps.com/start

[profile dangling]
sso_session = gone

[sso-session half]
sso_start_url = https://half.awsapps.com/start
";

    /// The profiles of a config file at /home/u/.aws/config.
    fn profiles(text: &str) -> AwsProfiles {
        use crate::config::aws_ini::{FileKind, Ini};
        let config = Ini::parse(text, Path::new("/home/u/.aws/config"), FileKind::Config);
        AwsProfiles::from_files(&config.unwrap(), &Ini::default())
    }

    fn resolve(name: Option<&str>) -> Result<SsoSession> {
        resolve_in(&profiles(CONFIG), name)
    }

    #[test]
    fn a_session_a_profile_naming_it_and_a_legacy_profile_resolve() {
        let corp = resolve(Some("corp")).unwrap();
        assert_eq!(corp.name.as_deref(), Some("corp"));
        assert_eq!(corp.start_url, "https://corp.awsapps.com/start");
        assert_eq!(corp.region, "eu-west-1");
        assert_eq!(corp.scopes, ["sso:account:access", "openid"]);
        assert_eq!(corp.label(), "corp");
        assert_eq!(corp.cache_key(), "corp");
        assert_eq!(resolve(Some("dev")).unwrap(), corp);

        let old = resolve(Some("old")).unwrap();
        assert_eq!(old.name, None);
        assert_eq!(old.label(), "old");
        assert_eq!(old.cache_key(), "https://old.awsapps.com/start");
        assert_eq!(old.login_command(), "elhaz sso login old");
    }

    #[test]
    fn bad_names_say_file_line_and_fix() {
        let e = resolve(Some("noregion")).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert_eq!(
            e.message,
            "/home/u/.aws/config:18: profile noregion has sso_start_url but no sso_region"
        );
        let e = resolve(Some("dangling")).unwrap_err();
        assert_eq!(
            e.message,
            "/home/u/.aws/config:22: profile dangling names sso_session gone, but there is no [sso-session gone] section"
        );
        let e = resolve(Some("half")).unwrap_err();
        assert_eq!(
            e.message,
            "/home/u/.aws/config:24: [sso-session half] has sso_start_url but no sso_region"
        );
        let e = resolve(Some("nosuch")).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert_eq!(
            e.message,
            "no SSO session or profile named nosuch in /home/u/.aws/config"
        );
        assert!(e.hint.unwrap().contains("corp, half"));
        // Without NAME, several sessions: name one.
        let e = resolve(None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn the_only_session_is_taken_without_a_name() {
        let text = "[sso-session solo]\nsso_start_url = https://s/start\nsso_region = us-east-2\n";
        let s = resolve_in(&profiles(text), None).unwrap();
        assert_eq!(s.label(), "solo");
        let e = resolve_in(&profiles("[default]\nregion = x\n"), None).unwrap_err();
        assert_eq!(e.message, "no [sso-session] section in /home/u/.aws/config");
    }
}
