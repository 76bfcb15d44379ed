//! Where source credentials come from, hop by hop, as botocore and the AWS CLI find
//! them: a profile's plan (its root, then one AssumeRole per `role_arn` profile on
//! the way up, each with that profile's own region, MFA device, duration, external id
//! and session name), and the caller's default chain (environment keys, the selected
//! profile, web identity, the container endpoint, instance metadata). The same plan
//! is what names a session in the daemon's cache ([`describe`]), so a session is shared
//! exactly by the callers whose sources are the same, and a changed file makes a new
//! one.
//!
//! Credentials elhaz itself serves are never a source: a profile whose
//! `credential_process` runs elhaz is skipped when only the caller's selector points
//! at it (the chain goes on as the SDKs would without it), and refused when something
//! names it explicitly. It owns no STS client: the engine makes the calls.

use std::path::Path;

use crate::config::profiles::{AwsProfile, AwsProfiles};
use crate::context::SourceContext;
use crate::error::{Error, Result};

/// How a chain's first credentials are had.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Root<'p> {
    /// Keys in the profile (long-term, or with a session token).
    Keys(&'p AwsProfile),
    /// IAM Identity Center.
    Sso(&'p AwsProfile),
    /// `credential_process`.
    Process(&'p AwsProfile),
    /// `role_arn` with `web_identity_token_file`: the call itself makes the role.
    WebIdentity(&'p AwsProfile),
    /// `role_arn` with `credential_source`.
    Named(&'p AwsProfile),
}

impl<'p> Root<'p> {
    pub(crate) fn profile(&self) -> &'p AwsProfile {
        match *self {
            Root::Keys(p) | Root::Sso(p) | Root::Process(p) | Root::WebIdentity(p) => p,
            Root::Named(p) => p,
        }
    }
}

/// A profile's plan: the root, then the role profiles whose AssumeRole each signs with
/// the credentials below it (bottom first).
#[derive(Debug, Clone)]
pub(crate) struct Chain<'p> {
    pub(crate) root: Root<'p>,
    pub(crate) hops: Vec<&'p AwsProfile>,
}

impl Chain<'_> {
    /// The `credential_process` at its root runs elhaz (not through a share socket):
    /// what it would give is a session elhaz serves.
    pub(crate) fn served_by_elhaz(&self) -> Option<ElhazCall> {
        match self.root {
            Root::Process(p) => p
                .credential_process
                .as_deref()
                .and_then(elhaz_call)
                .filter(|c| !c.socket),
            _ => None,
        }
    }
}

/// How a plan is reached: as the NAME itself, or as the source of something else
/// (botocore then takes a profile's keys before its `role_arn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    Name,
    Source,
}

/// Whether a profile gives credentials of any kind.
pub(crate) fn gives_credentials(p: &AwsProfile) -> bool {
    p.role_arn.is_some()
        || p.sso_session.is_some()
        || p.sso_start_url.is_some()
        || p.static_keys().is_some()
        || p.credential_process.is_some()
}

/// `file:line` of a profile's key, else of the profile, else its name alone.
fn at(p: &AwsProfile, key: &str) -> String {
    match p.origin(key).or(p.defined_at.as_ref()) {
        Some(o) => format!("profile {} ({o})", p.name),
        None => format!("profile {}", p.name),
    }
}

/// The plan of profile `name`, which must exist.
pub(crate) fn plan<'p>(profiles: &'p AwsProfiles, name: &str, how: Use) -> Result<Chain<'p>> {
    let mut cur = profiles
        .get(name)
        .ok_or_else(|| missing_profile(profiles, name, None))?;
    let mut as_source = how == Use::Source;
    let mut hops: Vec<&AwsProfile> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let root = loop {
        if seen.contains(&cur.name.as_str()) {
            seen.push(&cur.name);
            return Err(Error::config(format!(
                "the source_profile chain loops: {} ({})",
                seen.join(" → "),
                at(cur, "source_profile")
            ))
            .with_hint("make one profile of the loop take its credentials from keys, SSO or a credential_process"));
        }
        seen.push(&cur.name);
        if as_source && cur.static_keys().is_some() {
            break Root::Keys(cur);
        }
        if cur.role_arn.is_some() {
            if let Some(src) = cur.source_profile.as_deref() {
                hops.push(cur);
                if src == cur.name {
                    if cur.static_keys().is_none() {
                        return Err(Error::config(format!(
                            "{} names itself as source_profile but holds no keys",
                            at(cur, "source_profile")
                        ))
                        .with_hint("give it aws_access_key_id and aws_secret_access_key, or another source_profile"));
                    }
                    break Root::Keys(cur);
                }
                cur = profiles
                    .get(src)
                    .ok_or_else(|| missing_profile(profiles, src, Some(cur)))?;
                as_source = true;
                continue;
            }
            if cur.credential_source.is_some() {
                hops.push(cur);
                break Root::Named(cur);
            }
            if cur.web_identity_token_file.is_some() {
                break Root::WebIdentity(cur);
            }
            return Err(Error::config(format!(
                "{} has role_arn but no source_profile, credential_source or web_identity_token_file",
                at(cur, "role_arn")
            ))
            .with_hint("add source_profile = PROFILE (the profile whose credentials assume the role)"));
        }
        if cur.sso_session.is_some() || cur.sso_start_url.is_some() {
            break Root::Sso(cur);
        }
        if cur.static_keys().is_some() {
            break Root::Keys(cur);
        }
        if cur.credential_process.is_some() {
            break Root::Process(cur);
        }
        return Err(Error::config(format!(
            "{} gives no credentials: no keys, role_arn, sso_session or credential_process",
            at(cur, "region")
        ))
        .with_hint("add keys (aws configure --profile NAME), a role_arn with source_profile, or SSO settings"));
    };
    hops.reverse();
    Ok(Chain { root, hops })
}

/// A profile named as a source that does not exist: where it is named, the closest
/// names, and whether the config file is there at all.
pub(crate) fn missing_profile(
    profiles: &AwsProfiles,
    name: &str,
    named_by: Option<&AwsProfile>,
) -> Error {
    let mut close: Vec<(f64, &str)> = profiles
        .names()
        .map(|n| (strsim::jaro_winkler(name, n), n))
        .filter(|(s, _)| *s > 0.7)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut msg = match named_by {
        Some(p) => format!(
            "{} names source_profile {name}, which does not exist",
            at(p, "source_profile")
        ),
        None => format!("AWS profile {name} does not exist"),
    };
    if !profiles.config_exists {
        msg.push_str(&format!(
            " ({} is missing)",
            crate::error::display_path(&profiles.config_path)
        ));
    } else if !close.is_empty() {
        let names: Vec<&str> = close.iter().take(3).map(|(_, n)| *n).collect();
        msg.push_str(&format!("; did you mean: {}?", names.join(", ")));
    }
    Error::config(msg).with_hint(format!(
        "add it: aws configure --profile {name}; or list the profiles: elhaz config list"
    ))
}

/// The refusal of an explicitly named source whose credentials elhaz itself serves.
pub(crate) fn served_source_error(chain: &Chain, call: &ElhazCall) -> Error {
    let p = chain.root.profile();
    let served = call.name.as_deref().unwrap_or("a NAME");
    Error::config(format!(
        "{} gets its credentials from elhaz itself (credential_process serves {served}); credentials elhaz serves are never a source",
        at(p, "credential_process")
    ))
    .with_hint(format!(
        "name the source that {served} uses instead (source_profile, or Session.profile_name): the role on top of it is then assumed from that source"
    ))
}

/// What the caller's default chain comes to, in the SDKs' order.
#[derive(Debug)]
pub(crate) enum DefaultSource<'p> {
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    EnvKeys,
    /// The profile AWS_PROFILE (or AWS_DEFAULT_PROFILE, or `default`) selects.
    Profile(Chain<'p>),
    /// AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE.
    WebIdentity,
    /// The container endpoint, then instance metadata: the last resorts.
    LastResort,
}

/// The caller's default chain, as far as it can be decided without a call. A profile
/// the selector names that gets its credentials from elhaz is skipped (the SDK run
/// by elhaz's own `credential_process` selects it; it is never a source), and the
/// chain goes on with `default`, then the rest.
pub(crate) fn default_source<'p>(
    profiles: &'p AwsProfiles,
    ctx: &SourceContext,
) -> Result<DefaultSource<'p>> {
    if ctx.get("AWS_ACCESS_KEY_ID").is_some() && ctx.get("AWS_SECRET_ACCESS_KEY").is_some() {
        return Ok(DefaultSource::EnvKeys);
    }
    if ctx.keys_elsewhere() {
        // The session's source was keys this process cannot see: the next source of
        // the chain (`[default]`) would be another principal, silently.
        return Err(super::sts_error::session_keys_not_here());
    }
    let mut candidates = vec![ctx.profile()];
    if ctx.profile_named() && ctx.profile() != "default" {
        candidates.push("default");
    }
    for (i, name) in candidates.into_iter().enumerate() {
        let Some(p) = profiles.get(name) else {
            if i == 0 && ctx.profile_named() {
                // The SDKs stop at a selector that names no profile.
                return Err(super::sts_error::no_source_error(ctx, profiles));
            }
            continue;
        };
        if !gives_credentials(p) {
            continue;
        }
        let chain = plan(profiles, name, Use::Source)?;
        if let Some(call) = chain.served_by_elhaz() {
            tracing::debug!(
                profile = %name,
                serves = %call.name.as_deref().unwrap_or("?"),
                "skipping the selected profile: its credential_process runs elhaz"
            );
            continue;
        }
        return Ok(DefaultSource::Profile(chain));
    }
    if ctx.get("AWS_ROLE_ARN").is_some() && ctx.get("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
        return Ok(DefaultSource::WebIdentity);
    }
    Ok(DefaultSource::LastResort)
}

/// A `credential_process` that runs elhaz: which NAME it serves, and whether it asks a
/// share socket (another daemon's session, not this one's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElhazCall {
    pub(crate) name: Option<String>,
    pub(crate) socket: bool,
}

/// Global flags of elhaz that take a value (a NAME never follows them).
const VALUE_FLAGS: &[&str] = &[
    "--config-dir",
    "--socket-path",
    "--logging-path",
    "--max-unix-socket-connections",
    "--max-daemon-cache-size",
    "--client-timeout",
    "-f",
    "--format",
    "--shell",
    "--min-remaining",
    "--region",
];

/// Whether `command` (as `credential_process` holds it) runs elhaz, and what it asks.
/// The program is elhaz when its file name is `elhaz`, or when it is this very
/// executable (found on PATH, or by its path); `env`, `exec` and `VAR=value` words
/// before it are looked through, and so is a shell's `-c 'SCRIPT'` (its first
/// command). The NAME is the one `export` or `exec` is given.
pub(crate) fn elhaz_call(command: &str) -> Option<ElhazCall> {
    elhaz_call_in(command, 0)
}

/// The shells a `credential_process` may wrap elhaz in (`sh -c 'elhaz export ...'`).
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh"];

fn elhaz_call_in(command: &str, depth: usize) -> Option<ElhazCall> {
    let words = shlex::split(command)?;
    let mut it = words.iter().map(String::as_str).peekable();
    while let Some(w) = it.peek() {
        if *w == "env"
            || *w == "exec"
            || w.ends_with("/env")
            || w.contains('=')
            || (w.starts_with('-') && *w != "-")
        {
            it.next();
        } else {
            break;
        }
    }
    let prog = it.next()?;
    let base = Path::new(prog).file_name().and_then(|f| f.to_str());
    if base.is_some_and(|b| SHELLS.contains(&b)) {
        let script = it.skip_while(|w| *w != "-c").nth(1)?;
        return (depth < 3)
            .then(|| elhaz_call_in(script, depth + 1))
            .flatten();
    }
    if !is_elhaz(prog) {
        return None;
    }
    // What follows `--` is exec's command, never elhaz's.
    let args: Vec<&str> = it.take_while(|a| *a != "--").collect();
    let export = args.iter().position(|a| *a == "export" || *a == "exec");
    let mut call = ElhazCall {
        name: None,
        socket: args
            .iter()
            .any(|a| *a == "--socket" || a.starts_with("--socket=")),
    };
    let mut rest = args[export.map_or(args.len(), |i| i + 1)..].iter();
    while let Some(a) = rest.next() {
        if *a == "-n" || *a == "--name" {
            call.name = rest.next().map(|s| s.to_string());
            break;
        }
        if let Some(v) = a.strip_prefix("--name=") {
            call.name = Some(v.to_string());
            break;
        }
        if VALUE_FLAGS.contains(a) || *a == "--socket" {
            rest.next();
            continue;
        }
        if !a.starts_with('-') && call.name.is_none() {
            call.name = Some(a.to_string());
        }
    }
    Some(call)
}

fn is_elhaz(prog: &str) -> bool {
    if Path::new(prog).file_name().is_some_and(|f| f == "elhaz") {
        return true;
    }
    let found = if prog.contains('/') {
        Some(std::path::PathBuf::from(prog))
    } else {
        which::which(prog).ok()
    };
    let same = |a: &Path, b: &Path| {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    };
    match (found, std::env::current_exe()) {
        (Some(f), Ok(me)) => same(&f, &me),
        _ => false,
    }
}

/// The bytes that decide which identity a plan gives: every profile on it with all its
/// keys (static keys included: the result is only ever hashed under the daemon's
/// key), the SSO session its root uses, and what a helper reads of the caller.
pub(crate) fn describe(chain: &Chain, ctx: &SourceContext, out: &mut Vec<u8>) {
    let mut add = |k: &str, v: &str| {
        out.extend_from_slice(&(k.len() as u64).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u64).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    };
    let root = chain.root.profile();
    for p in std::iter::once(root).chain(chain.hops.iter().copied()) {
        add("profile", &p.name);
        for (k, v) in p.entries() {
            add(k, v);
        }
    }
    match chain.root {
        Root::Sso(p) => {
            if let Ok(s) = crate::sso::session::resolve_blocking(ctx, Some(&p.name)) {
                add("sso", s.cache_key());
                add("sso_start_url", &s.start_url);
                add("sso_region", &s.region);
            }
        }
        // A helper sees the caller's environment, AWS_PROFILE included.
        Root::Process(_) => add("helper_profile", ctx.get("AWS_PROFILE").unwrap_or("")),
        Root::Named(p) if p.credential_source.as_deref() == Some("Environment") => {
            for k in crate::context::SECRET {
                add(k, ctx.get(k).unwrap_or(""));
            }
        }
        _ => {}
    }
}

/// The same for a caller's default chain.
pub(crate) fn describe_default(source: &DefaultSource, ctx: &SourceContext, out: &mut Vec<u8>) {
    let vars: &[&str] = match source {
        DefaultSource::EnvKeys => &[
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ],
        DefaultSource::Profile(chain) => {
            out.extend_from_slice(b"default-profile");
            return describe(chain, ctx, out);
        }
        DefaultSource::WebIdentity => &[
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_SESSION_NAME",
        ],
        DefaultSource::LastResort => crate::context::LAST_RESORT,
    };
    for k in vars {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(ctx.get(k).unwrap_or("").as_bytes());
        out.push(0);
    }
}

/// Where STS is for a call made for `profile` in the caller's context, as the SDKs
/// decide it: AWS_ENDPOINT_URL_STS, the profile's `[services]` entry, AWS_ENDPOINT_URL,
/// the profile's `endpoint_url`; none when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true.
pub(crate) fn sts_endpoint(
    ctx: &SourceContext,
    profiles: &AwsProfiles,
    profile: Option<&AwsProfile>,
) -> Option<String> {
    if ctx
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return None;
    }
    let services = profile
        .and_then(|p| p.get("services"))
        .and_then(|s| profiles.service_endpoint(s, "sts"));
    ctx.get("AWS_ENDPOINT_URL_STS")
        .map(str::to_string)
        .or(services)
        .or_else(|| ctx.get("AWS_ENDPOINT_URL").map(str::to_string))
        .or_else(|| {
            profile
                .and_then(|p| p.get("endpoint_url"))
                .map(str::to_string)
        })
}

/// The partition a region is in, for the session key: the same role in another
/// partition is another identity.
pub(crate) fn partition(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        Some(r) if r.starts_with("us-isob-") => "aws-iso-b",
        Some(r) if r.starts_with("us-iso-") => "aws-iso",
        Some(r) if r.starts_with("eusc-") => "aws-eusc",
        _ => "aws",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elhaz_is_recognised_behind_env_and_assignments() {
        let c = elhaz_call("elhaz export prod -f credential-process").unwrap();
        assert_eq!(c.name.as_deref(), Some("prod"));
        assert!(!c.socket);
        let c =
            elhaz_call("/usr/local/bin/elhaz --config-dir /x export -f credential-process -n p2")
                .unwrap();
        assert_eq!(c.name.as_deref(), Some("p2"));
        let c =
            elhaz_call("env AWS_PROFILE= elhaz export --format credential-process prod").unwrap();
        assert_eq!(c.name.as_deref(), Some("prod"));
        let c =
            elhaz_call("elhaz export --socket ~/.elhaz/laptop.sock -f credential-process").unwrap();
        assert!(c.socket);
        assert_eq!(c.name, None);
        assert_eq!(elhaz_call("aws-vault export --format=json prod"), None);
        assert_eq!(elhaz_call("/opt/helper 'elhaz export prod'"), None);
    }

    #[test]
    fn elhaz_is_recognised_in_a_shell_script_and_in_exec_form() {
        for (command, name) in [
            (
                "sh -c 'elhaz export prod -f credential-process'",
                Some("prod"),
            ),
            (
                "/bin/bash -c \"exec elhaz export -f credential-process prod\"",
                Some("prod"),
            ),
            ("sh -c 'env A=1 sh -c \"elhaz export p2\"'", Some("p2")),
            ("elhaz exec prod -- cat /run/creds.json", Some("prod")),
            ("elhaz exec --server prod -- helper", Some("prod")),
            ("elhaz exec -- helper prod", None),
        ] {
            let c = elhaz_call(command).unwrap_or_else(|| panic!("{command}"));
            assert_eq!(c.name.as_deref(), name, "{command}");
        }
        assert_eq!(elhaz_call("sh -c 'aws-vault export prod'"), None);
        assert_eq!(elhaz_call("sh /opt/helper.sh"), None);
    }

    #[test]
    fn partitions() {
        assert_eq!(partition(Some("cn-north-1")), "aws-cn");
        assert_eq!(partition(Some("eu-west-1")), "aws");
        assert_eq!(partition(None), "aws");
        assert_eq!(partition(Some("us-gov-west-1")), "aws-us-gov");
    }
}
