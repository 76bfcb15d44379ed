//! NAME → the SSO session it means, from the caller's AWS config file: an
//! `[sso-session NAME]` section, a profile that names one (`sso_session = NAME`), or a
//! legacy profile with `sso_start_url` and `sso_region`. Errors name the file and line.
//! The picker (several sessions, no NAME) belongs to the command layer.

use std::path::Path;

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

    /// How the user is told about it: `SSO session 'corp'`, or `SSO login of profile
    /// 'legacy'`.
    pub(crate) fn described(&self) -> String {
        match &self.name {
            Some(n) => format!("SSO session '{n}'"),
            None => format!("SSO login of profile '{}'", self.label),
        }
    }

    /// The same session, reached where the caller's context says (its OIDC and portal
    /// endpoint variables), whatever this process's own environment holds.
    pub(crate) fn for_caller(mut self, ctx: &SourceContext) -> Self {
        let ignore = ctx
            .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let pick = |var: &str| {
            (!ignore)
                .then(|| ctx.get(var).or_else(|| ctx.get("AWS_ENDPOINT_URL")))
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

/// Resolves NAME (or the only session when None) from the caller's AWS config file.
pub(crate) fn resolve(name: Option<&str>) -> Result<SsoSession> {
    resolve_blocking(SourceContext::caller(), name)
}

/// [`resolve`] in a given caller context (the engine's, the daemon's). A small file
/// read at once, in or out of a runtime.
pub(crate) fn resolve_blocking(ctx: &SourceContext, name: Option<&str>) -> Result<SsoSession> {
    let text = read_config(ctx)?;
    Sections::parse(&text).resolve(ctx, name)
}

/// Every session a user may name (labels), with what it is: the `[sso-session]`
/// sections, then legacy profiles. Empty when the file has none.
pub(crate) fn labels(ctx: &SourceContext) -> Result<Vec<(String, String)>> {
    let text = read_config(ctx)?;
    let s = Sections::parse(&text);
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, sec) in &s.sessions {
        let url = sec.get("sso_start_url").unwrap_or("(no sso_start_url)");
        out.push((name.clone(), format!("sso-session  {url}")));
    }
    for (name, sec) in &s.profiles {
        if sec.get("sso_session").is_none()
            && let Some(url) = sec.get("sso_start_url")
        {
            out.push((name.clone(), format!("legacy profile  {url}")));
        }
    }
    Ok(out)
}

fn read_config(ctx: &SourceContext) -> Result<String> {
    let path = ctx.config_file();
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::io(
            crate::error::Kind::Config,
            "cannot read",
            &path,
            &e,
        )),
    }
}

/// A section of the config file: its 1-based line and its keys (last one wins).
#[derive(Debug, Default)]
struct Section {
    line: usize,
    keys: Vec<(String, String, usize)>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .rev()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, _)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// The profile and sso-session sections of the AWS config file, with line numbers
/// (the SDK's parser, which the engine uses, keeps none). Only top-level `key = value`
/// lines are read; nested sub-keys (`s3 =` blocks) are skipped.
#[derive(Debug, Default)]
struct Sections {
    profiles: Vec<(String, Section)>,
    sessions: Vec<(String, Section)>,
}

enum Current {
    None,
    Profile(usize),
    Session(usize),
}

impl Sections {
    fn parse(text: &str) -> Sections {
        let mut s = Sections::default();
        let mut cur = Current::None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if let Some(head) = trimmed.strip_prefix('[') {
                let head = head.split(']').next().unwrap_or("").trim();
                let words: Vec<&str> = head.split_whitespace().collect();
                cur = match words.as_slice() {
                    ["default"] => {
                        s.profiles.push(("default".into(), Section::at(line)));
                        Current::Profile(s.profiles.len() - 1)
                    }
                    ["profile", name] => {
                        s.profiles.push(((*name).into(), Section::at(line)));
                        Current::Profile(s.profiles.len() - 1)
                    }
                    ["sso-session", name] => {
                        s.sessions.push(((*name).into(), Section::at(line)));
                        Current::Session(s.sessions.len() - 1)
                    }
                    _ => Current::None,
                };
                continue;
            }
            // Indented lines continue a nested value: not a key of the section.
            if raw.starts_with([' ', '\t']) {
                continue;
            }
            let Some((k, v)) = trimmed.split_once('=') else {
                continue;
            };
            let entry = (k.trim().to_lowercase(), v.trim().to_string(), line);
            match cur {
                Current::Profile(i) => s.profiles[i].1.keys.push(entry),
                Current::Session(i) => s.sessions[i].1.keys.push(entry),
                Current::None => {}
            }
        }
        s
    }

    fn session(&self, name: &str) -> Option<&Section> {
        self.sessions
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }

    fn profile(&self, name: &str) -> Option<&Section> {
        self.profiles
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }

    fn resolve(&self, ctx: &SourceContext, name: Option<&str>) -> Result<SsoSession> {
        let path = ctx.config_file();
        let file = display_path(&path);
        let Some(name) = name else {
            return self.only(&path);
        };
        if let Some(sec) = self.session(name) {
            return session_of(name, sec, &file);
        }
        if let Some(p) = self.profile(name) {
            if let Some(s) = p.get("sso_session") {
                let Some(sec) = self.session(s) else {
                    let at = p.keys.iter().rev().find(|(k, _, _)| k == "sso_session");
                    let line = at.map(|(_, _, l)| *l).unwrap_or(p.line);
                    return Err(Error::config(format!(
                        "{file}:{line}: profile {name} names sso_session {s}, but there is no [sso-session {s}] section"
                    ))
                    .with_hint(format!(
                        "add it: [sso-session {s}] with sso_start_url and sso_region (aws configure sso-session, or edit {file})"
                    )));
                };
                return session_of(s, sec, &file);
            }
            if let Some(url) = p.get("sso_start_url") {
                let Some(region) = p.get("sso_region") else {
                    return Err(Error::config(format!(
                        "{file}:{}: profile {name} has sso_start_url but no sso_region",
                        p.line
                    ))
                    .with_hint(format!(
                        "add sso_region (the region of your IAM Identity Center, e.g. us-east-1) to [profile {name}] in {file}"
                    )));
                };
                return Ok(SsoSession::legacy(name, url, region));
            }
            return Err(Error::config(format!(
                "{file}:{}: profile {name} does not use IAM Identity Center (no sso_session or sso_start_url)",
                p.line
            ))
            .with_hint(self.known_hint(&file)));
        }
        Err(
            Error::config(format!("no SSO session or profile named {name} in {file}"))
                .with_hint(self.known_hint(&file)),
        )
    }

    /// The only session, when NAME is not given.
    fn only(&self, path: &Path) -> Result<SsoSession> {
        let file = display_path(path);
        let mut all: Vec<String> = self.sessions.iter().map(|(n, _)| n.clone()).collect();
        all.dedup();
        for (n, p) in &self.profiles {
            if p.get("sso_session").is_none() && p.get("sso_start_url").is_some() {
                all.push(n.clone());
            }
        }
        match all.as_slice() {
            [] => Err(Error::config(format!("no [sso-session] section in {file}"))
                .with_hint(format!(
                    "add one, e.g.\n  [sso-session corp]\n  sso_start_url = https://corp.awsapps.com/start\n  sso_region = us-east-1\nto {file} (or run: aws configure sso-session)"
                ))),
            [one] => self.resolve_by_file(path, one),
            many => Err(Error::usage(format!(
                "several SSO sessions in {file}; name one: {}",
                many.join(", ")
            ))),
        }
    }

    fn resolve_by_file(&self, path: &Path, name: &str) -> Result<SsoSession> {
        let file = display_path(path);
        if let Some(sec) = self.session(name) {
            return session_of(name, sec, &file);
        }
        let p = self.profile(name).expect("listed above");
        match p.get("sso_region") {
            Some(region) => Ok(SsoSession::legacy(
                name,
                p.get("sso_start_url").unwrap_or_default(),
                region,
            )),
            None => Err(Error::config(format!(
                "{file}:{}: profile {name} has sso_start_url but no sso_region",
                p.line
            ))),
        }
    }

    fn known_hint(&self, file: &str) -> String {
        let names: Vec<&str> = self.sessions.iter().map(|(n, _)| n.as_str()).collect();
        if names.is_empty() {
            format!(
                "add an [sso-session NAME] section with sso_start_url and sso_region to {file} (or run: aws configure sso-session)"
            )
        } else {
            format!("the SSO sessions in {file}: {}", names.join(", "))
        }
    }
}

impl Section {
    fn at(line: usize) -> Section {
        Section {
            line,
            keys: Vec::new(),
        }
    }
}

fn session_of(name: &str, sec: &Section, file: &str) -> Result<SsoSession> {
    let Some(url) = sec.get("sso_start_url") else {
        return Err(Error::config(format!(
            "{file}:{}: [sso-session {name}] has no sso_start_url",
            sec.line
        ))
        .with_hint(format!(
            "add sso_start_url = https://YOUR-PORTAL.awsapps.com/start to [sso-session {name}] in {file}"
        )));
    };
    let Some(region) = sec.get("sso_region") else {
        return Err(Error::config(format!(
            "{file}:{}: [sso-session {name}] has sso_start_url but no sso_region",
            sec.line
        ))
        .with_hint(format!(
            "add sso_region (the region of your IAM Identity Center, e.g. us-east-1) to [sso-session {name}] in {file}"
        )));
    };
    let scopes = sec
        .get("sso_registration_scopes")
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

    fn ctx() -> SourceContext {
        SourceContext::from_lookup(false, |k| {
            (k == "AWS_CONFIG_FILE").then(|| "/home/u/.aws/config".to_string())
        })
    }

    fn resolve(name: Option<&str>) -> Result<SsoSession> {
        Sections::parse(CONFIG).resolve(&ctx(), name)
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
        let s = Sections::parse(text).resolve(&ctx(), None).unwrap();
        assert_eq!(s.label(), "solo");
        let e = Sections::parse("[default]\nregion = x\n")
            .resolve(&ctx(), None)
            .unwrap_err();
        assert_eq!(e.message, "no [sso-session] section in /home/u/.aws/config");
    }
}
