//! Field patching: the `elhaz config add|update` flags applied to a config, creating
//! the sections they need. It knows the config schema and the flags, nothing of
//! files, prompts or the store.

use crate::cli::ConfigFields;
use crate::config::AwsProfiles;
use crate::config::check;
use crate::config::resolve::missing_source_profile;
use crate::config::schema::{
    AssumeRole, Command, Config, Meta, Mfa, PolicyArn, SourceSession, StsClient, Tag,
};
use crate::context::SourceContext;
use crate::error::{Error, Result};

/// Whether any field flag was given.
pub(super) fn has_fields(f: &ConfigFields) -> bool {
    touches_role(f)
        || f.mfa_command.is_some()
        || f.mfa_timeout.is_some()
        || f.region.is_some()
        || f.profile.is_some()
        || f.sts_region.is_some()
        || f.sts_endpoint_url.is_some()
        || f.description.is_some()
}

/// Whether a flag of the AssumeRole section was given.
fn touches_role(f: &ConfigFields) -> bool {
    f.role_arn.is_some()
        || f.role_session_name.is_some()
        || f.duration.is_some()
        || f.external_id.is_some()
        || f.serial_number.is_some()
        || f.source_identity.is_some()
        || f.policy.is_some()
        || !f.policy_arns.is_empty()
        || !f.tags.is_empty()
        || !f.transitive_tag_keys.is_empty()
}

/// Applies the flags to a config (creating sections as needed).
pub(super) fn apply_fields(config: &mut Config, f: &ConfigFields) -> Result<()> {
    if touches_role(f) {
        let other = if config.web_identity.is_some() {
            Some("AssumeRoleWithWebIdentity")
        } else if config.saml.is_some() {
            Some("AssumeRoleWithSAML")
        } else {
            None
        };
        if let Some(section) = other
            && config.assume_role.is_none()
        {
            return Err(Error::config(format!(
                "this config uses {section}; edit it with: elhaz config update NAME --editor"
            )));
        }
        apply_role(
            config.assume_role.get_or_insert_with(AssumeRole::default),
            f,
        )?;
    }
    if f.mfa_command.is_some() || f.mfa_timeout.is_some() {
        let mfa = config.mfa.get_or_insert_with(Mfa::default);
        if let Some(c) = &f.mfa_command {
            mfa.command = Some(Command::Shell(c.clone()));
        }
        if let Some(t) = f.mfa_timeout {
            mfa.timeout = Some(t.0);
        }
    }
    if f.region.is_some() || f.profile.is_some() {
        let s = config.session.get_or_insert_with(SourceSession::default);
        if let Some(r) = &f.region {
            s.region_name = Some(r.clone());
        }
        if let Some(p) = &f.profile {
            s.profile_name = Some(p.clone());
        }
    }
    if f.sts_region.is_some() || f.sts_endpoint_url.is_some() {
        let s = config.sts.get_or_insert_with(StsClient::default);
        if let Some(r) = &f.sts_region {
            s.region_name = Some(r.clone());
        }
        if let Some(u) = &f.sts_endpoint_url {
            s.endpoint_url = Some(u.clone());
        }
    }
    if let Some(d) = &f.description {
        config.meta.get_or_insert_with(Meta::default).description = Some(d.clone());
    }
    Ok(())
}

/// The AssumeRole flags.
fn apply_role(ar: &mut AssumeRole, f: &ConfigFields) -> Result<()> {
    if let Some(v) = &f.role_arn {
        ar.role_arn = v.clone();
    }
    if let Some(v) = &f.role_session_name {
        ar.role_session_name = Some(v.clone());
    }
    if let Some(v) = f.duration {
        ar.duration_seconds = Some(v.0 as i64);
    }
    if let Some(v) = &f.external_id {
        ar.external_id = Some(v.clone());
    }
    if let Some(v) = &f.serial_number {
        ar.serial_number = Some(v.clone());
    }
    if let Some(v) = &f.source_identity {
        ar.source_identity = Some(v.clone());
    }
    if let Some(v) = &f.policy {
        ar.policy = Some(v.clone());
    }
    if !f.policy_arns.is_empty() {
        ar.policy_arns = Some(
            f.policy_arns
                .iter()
                .cloned()
                .map(PolicyArn::Plain)
                .collect(),
        );
    }
    if !f.tags.is_empty() {
        ar.tags = Some(parse_tags(&f.tags)?);
    }
    if !f.transitive_tag_keys.is_empty() {
        ar.transitive_tag_keys = Some(f.transitive_tag_keys.clone());
    }
    Ok(())
}

/// `--tag KEY=VALUE` flags as tags.
fn parse_tags(tags: &[String]) -> Result<Vec<Tag>> {
    tags.iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(Tag {
                key: k.to_string(),
                value: v.to_string(),
            }),
            _ => Err(Error::usage(format!("--tag {t:?}: expected KEY=VALUE"))),
        })
        .collect()
}

/// A check of one answer at its prompt (trimmed; empty means "keep" or "none").
pub(super) type Check = fn(&str) -> std::result::Result<(), String>;

pub(super) fn anything(_: &str) -> std::result::Result<(), String> {
    Ok(())
}

/// A role ARN, required.
pub(super) fn role_arn(s: &str) -> std::result::Result<(), String> {
    if s.is_empty() {
        return Err("a role ARN is required".into());
    }
    check::role_arn(s)
}

pub(super) fn role_arn_or_empty(s: &str) -> std::result::Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    check::role_arn(s)
}

pub(super) fn region(s: &str) -> std::result::Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    check::region(s)
}

pub(super) fn duration(s: &str) -> std::result::Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    let d: crate::duration::Seconds = s.parse()?;
    if (900..=43200).contains(&d.0) {
        Ok(())
    } else {
        Err(format!(
            "{s} is out of range: STS takes 900 to 43200 seconds (15m to 12h)"
        ))
    }
}

/// An MFA device: an ARN (`arn:aws:iam::ACCOUNT:mfa/NAME`) or a hardware token's serial.
pub(super) fn mfa_serial(s: &str) -> std::result::Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    check::mfa_serial(s)
}

/// The source profile a save gives, checked against the caller's AWS files (`profiles`,
/// read from `source`'s): None when it is one of their profiles, else why not (where it
/// was looked for, the closest names).
pub(super) fn missing_profile(
    profile: &str,
    profiles: &AwsProfiles,
    source: &SourceContext,
) -> Option<String> {
    missing_source_profile(profile, profiles, source)
}

/// The flags of `config add|update` checked before anything is read or written: the
/// ARNs and regions against what AWS accepts, `--profile` against the caller's AWS
/// files (`source`'s). The error names the flag and the value, and how to give a good
/// one.
pub(super) fn check_flags(f: &ConfigFields, source: &SourceContext) -> Result<()> {
    const ROLE: &str = "arn:aws:iam::ACCOUNT:role/NAME";
    const MFA: &str = "arn:aws:iam::ACCOUNT:mfa/NAME";
    const POLICY: &str = "arn:aws:iam::ACCOUNT:policy/NAME";
    let arns = [
        (
            "--role-arn",
            f.role_arn.as_deref(),
            check::role_arn as Check,
            ROLE,
        ),
        (
            "--serial-number",
            f.serial_number.as_deref(),
            check::mfa_serial,
            MFA,
        ),
    ]
    .into_iter()
    .chain(f.policy_arns.iter().map(|a| {
        let check = check::policy_arn as Check;
        ("--policy-arn", Some(a.as_str()), check, POLICY)
    }));
    for (flag, value, check, example) in arns {
        if let Some(v) = value
            && let Err(why) = check(v)
        {
            return Err(Error::config(format!("{flag} {why}"))
                .with_hint(format!("run it again with {flag} {example}")));
        }
    }
    for (flag, value) in [("--region", &f.region), ("--sts-region", &f.sts_region)] {
        if let Some(v) = value
            && let Err(why) = check::region(v)
        {
            let like = check::closest(v, check::REGIONS.iter().copied());
            return Err(Error::config(format!("{flag} {why}")).with_hint(format!(
                "run it again with {flag} {}",
                like.first().unwrap_or(&"REGION (e.g. us-east-1)")
            )));
        }
    }
    if let Some(p) = &f.profile {
        let profiles = AwsProfiles::load_sync(source)?;
        if let Some(why) = missing_profile(p, &profiles, source) {
            return Err(
                Error::config(format!("--profile: {why}")).with_hint(profile_hint(p, &profiles))
            );
        }
    }
    Ok(())
}

/// How to give a source profile that exists: another one, or this one created.
pub(super) fn profile_hint(profile: &str, profiles: &AwsProfiles) -> String {
    // Shown as typed only when it cannot be mistaken for anything else on a terminal.
    let plain = profile
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-@+".contains(&b));
    let shown = if plain { profile } else { "PROFILE" };
    let create = format!(
        "create it: aws configure --profile {shown} (or aws configure sso --profile {shown})"
    );
    match check::closest(profile, profiles.names()).first() {
        Some(p) => format!(
            "run it again with --profile {}; or {create}",
            crate::terminal::escape_controls(p)
        ),
        None => create,
    }
}
