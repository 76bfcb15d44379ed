//! NAME → an elhaz config or an AWS CLI profile. An elhaz config wins. Knows nothing
//! of the terminal: the command layer picks a NAME when none is given.

use super::profiles::{AwsProfile, AwsProfiles};
use super::schema::Config;
use super::store::{Store, validate_name};
use crate::context::SourceContext;
use crate::error::{Error, Result};

/// What a NAME stands for.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Config(Box<Config>),
    Profile(Box<AwsProfile>),
}

/// Resolves NAME: the config `<dir>/NAME.yaml` if there is one, else the AWS profile
/// of the caller context's files.
/// The config file is read on a blocking thread: a slow or stuck file system never
/// holds up the daemon's other requests.
pub(crate) async fn resolve(store: &Store, name: &str, ctx: &SourceContext) -> Result<Source> {
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
        return Ok(Source::Config(Box::new(c)));
    }
    let profiles = AwsProfiles::load_in(ctx).await?;
    if let Some(p) = profiles.get(name) {
        return Ok(Source::Profile(Box::new(p.clone())));
    }
    if name.is_empty() {
        return Err(Error::config(
            "empty name: give a config or AWS profile name",
        ));
    }
    validate_name(name)?;
    Err(unknown_name(store, &profiles, name))
}

/// "no config or AWS profile named X", with the closest names and the fix.
pub(crate) fn unknown_name(store: &Store, profiles: &AwsProfiles, name: &str) -> Error {
    let candidates = all_names(store, profiles);
    let mut scored: Vec<(f64, &String)> = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(s, _)| *s > 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let close: Vec<&str> = scored.iter().take(3).map(|(_, c)| c.as_str()).collect();
    let mut msg = format!("no config or AWS profile named {name:?}");
    if !close.is_empty() {
        msg.push_str(&format!("; did you mean: {}?", close.join(", ")));
    }
    Error::config(msg).with_hint(format!(
        "list them: elhaz config list; or create it: elhaz config add {name} --role-arn ARN"
    ))
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
/// the profiles no config hides); an error saying how to make one when there is none.
pub(crate) fn choices(store: &Store) -> Result<Vec<(String, String)>> {
    let profiles = AwsProfiles::load_blocking().unwrap_or_default();
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
