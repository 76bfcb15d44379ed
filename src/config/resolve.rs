//! NAME → an elhaz config or an AWS CLI profile. An elhaz config wins. Knows nothing
//! of the terminal: the command layer picks a NAME when none is given.

use super::check::{closest, did_you_mean};
use super::parse::line_of_key;
use super::profiles::{AwsProfile, AwsProfiles};
use super::schema::Config;
use super::store::{Store, validate_name};
use crate::context::SourceContext;
use crate::error::{Error, Result, display_path};
use std::path::PathBuf;

/// What a NAME stands for.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Config(Box<Config>),
    Profile(Box<AwsProfile>),
}

/// Resolves NAME: the config `<dir>/NAME.yaml` if there is one, else the AWS profile
/// of the caller context's files. A config whose Session.profile_name is not a profile
/// of those files is a config error here, before anything asks AWS (the engine calls
/// this first, so it needs no check of its own).
/// The config file is read on a blocking thread: a slow or stuck file system never
/// holds up the daemon's other requests.
pub(crate) async fn resolve(store: &Store, name: &str, caller: &SourceContext) -> Result<Source> {
    let profiles = AwsProfiles::load_in(caller).await?;
    resolve_in(store, name, caller, &profiles).await
}

/// The same, with the caller context's AWS profiles already read.
pub(crate) async fn resolve_in(
    store: &Store,
    name: &str,
    caller: &SourceContext,
    profiles: &AwsProfiles,
) -> Result<Source> {
    let (s, n) = (store.clone(), name.to_string());
    let config = tokio::task::spawn_blocking(move || -> Result<Option<Config>> {
        if validate_name(&n).is_ok() && s.exists(&n)? {
            return s.load(&n).map(Some);
        }
        Ok(None)
    })
    .await
    .map_err(|e| Error::other(format!("reading config {name:?} failed: {e}")))??;
    if let Some(c) = config {
        if let Some(profile) = c.session.as_ref().and_then(|s| s.profile_name.as_deref())
            && let Some(why) = missing_source_profile(profile, profiles, caller)
        {
            return Err(source_profile_error(store, name, &why).await);
        }
        return Ok(Source::Config(Box::new(c)));
    }
    if let Some(p) = profiles.get(name) {
        return Ok(Source::Profile(Box::new(p.clone())));
    }
    if name.is_empty() {
        return Err(Error::config(
            "empty name: give a config or AWS profile name",
        ));
    }
    validate_name(name)?;
    Err(unknown_name(store, profiles, name, caller))
}

/// Why `profile` cannot be a config's source profile (Session.profile_name) for the
/// caller context `caller`, whose AWS files hold `profiles`: where it was looked for (and
/// which file does not exist), and the closest names. None when it is one of them.
pub(crate) fn missing_source_profile(
    profile: &str,
    profiles: &AwsProfiles,
    caller: &SourceContext,
) -> Option<String> {
    if profiles.get(profile).is_some() {
        return None;
    }
    let (config, credentials) = (caller.config_file(), caller.credentials_file());
    let (config_shown, credentials_shown) = (display_path(&config), display_path(&credentials));
    let place = match (config.exists(), credentials.exists()) {
        (true, true) => format!(" in {config_shown} or {credentials_shown}"),
        (true, false) => format!(" in {config_shown}"),
        (false, true) => format!(" in {credentials_shown} (and {config_shown} does not exist)"),
        (false, false) => format!(": there is no AWS config file ({config_shown} does not exist)"),
    };
    let close = closest(profile, profiles.names());
    Some(format!(
        "no AWS profile {profile:?}{place}{}",
        did_you_mean(&close)
    ))
}

/// A config whose Session.profile_name names no profile, met when it is used: the
/// file and line, why, and the command that fixes it.
async fn source_profile_error(store: &Store, name: &str, why: &str) -> Error {
    let (s, n) = (store.clone(), name.to_string());
    let at = tokio::task::spawn_blocking(move || {
        let path = s.path(&n).ok()?;
        let line = s
            .load_text(&n)
            .ok()
            .and_then(|text| line_of_key(&text, "Session.profile_name"))
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        Some(format!("{}{line}", display_path(&path)))
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| format!("config {name}"));
    Error::config(format!("{at}: Session.profile_name: {why}")).with_hint(format!(
        "name a profile that exists: elhaz config update {name} --profile PROFILE (list them: elhaz config list)"
    ))
}

/// "no config or AWS profile named X", with the closest names and the fix; when the
/// caller points AWS_CONFIG_FILE (or AWS_SHARED_CREDENTIALS_FILE) at a file that is not
/// there, that is said first, with how to point it right.
pub(crate) fn unknown_name(
    store: &Store,
    profiles: &AwsProfiles,
    name: &str,
    caller: &SourceContext,
) -> Error {
    let candidates = all_names(store, profiles);
    let close = closest(name, candidates.iter().map(String::as_str));
    let create = format!("elhaz config add {name} --role-arn ARN");
    if let Some((var, path, default)) = missing_aws_file(caller) {
        return Error::config(format!(
            "no config or AWS profile named {name:?}: {var} names {}, which does not exist{}",
            display_path(&path),
            did_you_mean(&close)
        ))
        .with_hint(format!(
            "point {var} at your AWS file, or unset it for {}; or create {name}: {create}",
            display_path(&default)
        ));
    }
    let msg = format!(
        "no config or AWS profile named {name:?}{}",
        did_you_mean(&close)
    );
    Error::config(msg).with_hint(format!(
        "list them: elhaz config list; or create it: {create}"
    ))
}

/// The AWS file the caller named in a variable (not the default place) that does not
/// exist: the variable, the file, and the default the variable replaces.
fn missing_aws_file(caller: &SourceContext) -> Option<(&'static str, PathBuf, PathBuf)> {
    let home = crate::fsutil::home_dir().ok()?.join(".aws");
    [
        ("AWS_CONFIG_FILE", caller.config_file(), home.join("config")),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            caller.credentials_file(),
            home.join("credentials"),
        ),
    ]
    .into_iter()
    .find(|(var, path, default)| caller.get(var).is_some() && path != default && !path.exists())
}

/// Config names then profile names, deduplicated (a config hides a same-named profile).
pub(crate) fn all_names(store: &Store, profiles: &AwsProfiles) -> Vec<String> {
    let mut names = store.names().unwrap_or_default();
    for p in profiles.profiles.values().filter(|p| p.is_name()) {
        if !names.iter().any(|n| n == &p.name) {
            names.push(p.name.clone());
        }
    }
    names
}

/// The names a NAME may be, each with a one-line description (configs first, then
/// the profiles of `caller`'s AWS files that no config hides); an error saying how to
/// make one when there is none.
pub(crate) fn choices(store: &Store, caller: &SourceContext) -> Result<Vec<(String, String)>> {
    let profiles = AwsProfiles::load_sync(caller).unwrap_or_default();
    let mut items: Vec<(String, String)> = Vec::new();
    for n in store.names()? {
        let detail = store
            .load(&n)
            .map(|c| {
                c.description()
                    .or(c.role_arn())
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_else(|e| format!("(invalid: {})", e.message));
        items.push((n, format!("config   {detail}")));
    }
    for p in profiles.profiles.values().filter(|p| p.is_name()) {
        if !items.iter().any(|(n, _)| n == &p.name) {
            items.push((p.name.clone(), format!("profile  {}", p.summary())));
        }
    }
    if items.is_empty() {
        return Err(
            Error::usage("no NAME given, and there are no configs or AWS profiles")
                .with_hint("create one: elhaz config add NAME --role-arn ARN"),
        );
    }
    Ok(items)
}
