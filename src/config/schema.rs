//! The elhaz config file: the original's YAML schema, plus AssumeRoleWithWebIdentity
//! and AssumeRoleWithSAML.
//! Unknown keys are errors, as in the original. Types and their checks only: it must
//! not know of files, STS or the command line.

use serde::{Deserialize, Serialize};

use super::check;
use crate::sensitive::Sensitive;

/// One config file, `<config-dir>/<NAME>.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(
        rename = "AssumeRole",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub assume_role: Option<AssumeRole>,
    #[serde(
        rename = "AssumeRoleWithWebIdentity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub web_identity: Option<WebIdentity>,
    #[serde(
        rename = "AssumeRoleWithSAML",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub saml: Option<Saml>,
    #[serde(rename = "STS", default, skip_serializing_if = "Option::is_none")]
    pub sts: Option<StsClient>,
    #[serde(rename = "MFA", default, skip_serializing_if = "Option::is_none")]
    pub mfa: Option<Mfa>,
    #[serde(rename = "Session", default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SourceSession>,
    #[serde(rename = "Meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// The parameters of STS AssumeRole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AssumeRole {
    pub role_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_session_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_code: Option<Sensitive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_arns: Option<Vec<PolicyArn>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transitive_tag_keys: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provided_contexts: Option<Vec<ProvidedContext>>,
}

/// A managed policy ARN: a plain string, or STS's own `{arn: ...}` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PolicyArn {
    Plain(String),
    Descriptor {
        #[serde(alias = "Arn")]
        arn: String,
    },
}

impl PolicyArn {
    pub fn arn(&self) -> &str {
        match self {
            PolicyArn::Plain(a) | PolicyArn::Descriptor { arn: a } => a,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ProvidedContext {
    pub provider_arn: String,
    pub context_assertion: String,
}

/// The parameters of STS AssumeRoleWithWebIdentity (not in the original).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct WebIdentity {
    pub role_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_session_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_identity_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_identity_token_command: Option<Command>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_arns: Option<Vec<PolicyArn>>,
}

/// The parameters of STS AssumeRoleWithSAML (not in the original): the assertion comes
/// from a command or a file, afresh at each refresh.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Saml {
    pub role_arn: String,
    pub principal_arn: String,
    #[serde(
        rename = "SAMLAssertionCommand",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub assertion_command: Option<Command>,
    #[serde(
        rename = "SAMLAssertionFile",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub assertion_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_arns: Option<Vec<PolicyArn>>,
}

/// How to build the STS client (boto3's client arguments).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StsClient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_ssl: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_secret_access_key: Option<Sensitive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_session_token: Option<Sensitive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_account_id: Option<String>,
}

/// TLS verification: `false`, or a CA bundle path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Verify {
    Enabled(bool),
    CaBundle(String),
}

/// A command: a string run by `sh -c`, or an argv list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Command {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mfa {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// The source session whose credentials call AssumeRole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSession {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_secret_access_key: Option<Sensitive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_session_token: Option<Sensitive>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Config {
    /// The role this config assumes, whichever section names it.
    pub fn role_arn(&self) -> Option<&str> {
        self.assume_role
            .as_ref()
            .map(|a| a.role_arn.as_str())
            .or(self.web_identity.as_ref().map(|w| w.role_arn.as_str()))
            .or(self.saml.as_ref().map(|s| s.role_arn.as_str()))
    }

    /// The region commands should use: Session.region_name, else STS.region_name.
    pub fn region(&self) -> Option<&str> {
        self.session
            .as_ref()
            .and_then(|s| s.region_name.as_deref())
            .or(self.sts.as_ref().and_then(|s| s.region_name.as_deref()))
    }

    pub fn description(&self) -> Option<&str> {
        self.meta.as_ref().and_then(|m| m.description.as_deref())
    }

    /// Checks what the types cannot: exactly one role section, sane values.
    /// Returns one message per problem, each naming the key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let blocks: Vec<&str> = [
            self.assume_role.as_ref().map(|_| "AssumeRole"),
            self.web_identity
                .as_ref()
                .map(|_| "AssumeRoleWithWebIdentity"),
            self.saml.as_ref().map(|_| "AssumeRoleWithSAML"),
        ]
        .into_iter()
        .flatten()
        .collect();
        match blocks.as_slice() {
            [] => problems.push(
                "missing AssumeRole.RoleArn: a config needs AssumeRole (or AssumeRoleWithWebIdentity, or AssumeRoleWithSAML) with a RoleArn"
                    .to_string(),
            ),
            [_] => {}
            [a, b] => problems.push(format!(
                "{a} and {b} are both present; keep exactly one"
            )),
            [a, b, c] => problems.push(format!(
                "{a}, {b} and {c} are all present; keep exactly one"
            )),
            _ => unreachable!("three role sections at most"),
        }
        if let Some(a) = &self.assume_role {
            check_role(
                &mut problems,
                "AssumeRole",
                &a.role_arn,
                a.role_session_name.as_deref(),
                a.duration_seconds,
            );
            if a.token_code.is_some() && a.serial_number.is_none() {
                problems.push("AssumeRole.TokenCode needs AssumeRole.SerialNumber".into());
            }
            if let Some(serial) = &a.serial_number
                && let Err(why) = check::mfa_serial(serial)
            {
                problems.push(format!("AssumeRole.SerialNumber {why}"));
            }
            check_policy_arns(&mut problems, "AssumeRole", a.policy_arns.as_deref());
            if let Some(p) = &a.policy
                && serde_json::from_str::<serde_json::Value>(p).is_err()
            {
                problems.push("AssumeRole.Policy is not valid JSON".into());
            }
        }
        if let Some(w) = &self.web_identity {
            check_role(
                &mut problems,
                "AssumeRoleWithWebIdentity",
                &w.role_arn,
                w.role_session_name.as_deref(),
                w.duration_seconds,
            );
            match (&w.web_identity_token_file, &w.web_identity_token_command) {
                (None, None) => problems.push(
                    "AssumeRoleWithWebIdentity needs WebIdentityTokenFile or WebIdentityTokenCommand"
                        .into(),
                ),
                (Some(_), Some(_)) => problems.push(
                    "AssumeRoleWithWebIdentity: give WebIdentityTokenFile or WebIdentityTokenCommand, not both"
                        .into(),
                ),
                _ => {}
            }
            check_policy_arns(
                &mut problems,
                "AssumeRoleWithWebIdentity",
                w.policy_arns.as_deref(),
            );
        }
        if let Some(saml) = &self.saml {
            check_saml(&mut problems, saml);
        }
        check_regions(&mut problems, self);
        if let Some(s) = &self.session
            && s.aws_access_key_id.is_some() != s.aws_secret_access_key.is_some()
        {
            problems.push(
                "Session.aws_access_key_id and Session.aws_secret_access_key go together".into(),
            );
        }
        if let Some(s) = &self.sts
            && s.aws_access_key_id.is_some() != s.aws_secret_access_key.is_some()
        {
            problems.push("STS.aws_access_key_id and STS.aws_secret_access_key go together".into());
        }
        if let Some(Mfa {
            command: Some(Command::Argv(argv)),
            ..
        }) = &self.mfa
            && argv.is_empty()
        {
            problems.push("MFA.command is an empty list".into());
        }
        problems
    }
}

/// The checks every role section shares: the ARN, the session name, the duration.
fn check_role(
    problems: &mut Vec<String>,
    section: &str,
    arn: &str,
    rsn: Option<&str>,
    dur: Option<i64>,
) {
    if arn.trim().is_empty() {
        problems.push(format!("{section}.RoleArn is empty"));
    } else if !arn.starts_with("arn:") {
        problems.push(format!(
            "{section}.RoleArn {arn:?} is not an ARN (expected arn:aws:iam::ACCOUNT:role/NAME)"
        ));
    } else if let Err(why) = check::role_arn(arn) {
        problems.push(format!("{section}.RoleArn {why}"));
    }
    if let Some(name) = rsn
        && let Err(e) = check_session_name(name)
    {
        problems.push(format!("{section}.RoleSessionName {name:?}: {e}"));
    }
    if let Some(d) = dur
        && !(900..=43200).contains(&d)
    {
        problems.push(format!(
            "{section}.DurationSeconds {d} is out of range: STS takes 900 to 43200"
        ));
    }
}

/// `SECTION.PolicyArns`: each a managed policy ARN.
fn check_policy_arns(problems: &mut Vec<String>, section: &str, arns: Option<&[PolicyArn]>) {
    for a in arns.unwrap_or_default() {
        if let Err(why) = check::policy_arn(a.arn()) {
            problems.push(format!("{section}.PolicyArns {why}"));
        }
    }
}

/// Session.region_name and STS.region_name: regions AWS has, or would name so.
fn check_regions(problems: &mut Vec<String>, config: &Config) {
    let regions = [
        (
            "Session.region_name",
            config
                .session
                .as_ref()
                .and_then(|s| s.region_name.as_deref()),
        ),
        (
            "STS.region_name",
            config.sts.as_ref().and_then(|s| s.region_name.as_deref()),
        ),
    ];
    for (key, region) in regions {
        if let Some(r) = region
            && let Err(why) = check::region(r)
        {
            problems.push(format!("{key} {why}"));
        }
    }
}

/// AssumeRoleWithSAML: a SAML provider ARN, and the assertion from exactly one place.
fn check_saml(problems: &mut Vec<String>, saml: &Saml) {
    const S: &str = "AssumeRoleWithSAML";
    check_role(problems, S, &saml.role_arn, None, saml.duration_seconds);
    let p = saml.principal_arn.trim();
    if p.is_empty() {
        problems.push(format!("{S}.PrincipalArn is empty"));
    } else if let Err(why) = check::saml_provider_arn(p) {
        problems.push(format!("{S}.PrincipalArn {why}"));
    }
    check_policy_arns(problems, S, saml.policy_arns.as_deref());
    match (&saml.assertion_command, &saml.assertion_file) {
        (None, None) => problems.push(format!(
            "{S} needs SAMLAssertionCommand or SAMLAssertionFile"
        )),
        (Some(_), Some(_)) => problems.push(format!(
            "{S}: give SAMLAssertionCommand or SAMLAssertionFile, not both"
        )),
        (Some(Command::Argv(argv)), None) if argv.is_empty() => {
            problems.push(format!("{S}.SAMLAssertionCommand is an empty list"))
        }
        _ => {}
    }
    if let Some(p) = &saml.policy
        && serde_json::from_str::<serde_json::Value>(p).is_err()
    {
        problems.push(format!("{S}.Policy is not valid JSON"));
    }
}

/// STS rules for RoleSessionName: 2 to 64 characters of `[\w+=,.@-]`.
pub(crate) fn check_session_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if !(2..=64).contains(&n) {
        return Err(format!("must be 2 to 64 characters, not {n}"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c)))
    {
        return Err(format!(
            "character {c:?} is not allowed (use letters, digits and _+=,.@-)"
        ));
    }
    Ok(())
}
