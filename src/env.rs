//! The one place that decides which variables a child or shell sees: exec, shell,
//! `export -f env`, `use` and the hooks all build their environment here, so they
//! cannot disagree.
//!
//! It owns which variables and values; it must not know shell syntax (that is
//! `crate::shell`) nor the command line.

use crate::context::{self, CallerContext, SourceContext};
use crate::credentials::policy::Policy;
use crate::credentials::{Credentials, Served};
use crate::shell::{ShellKind, end_line, set_line, unset_line};
use crate::times::zulu;

pub mod chain;

/// Removed from every environment elhaz builds (exec, shell, `export -f env`, `use`, and
/// --server children), so that no other credential provider beats the one elhaz gives.
/// Each selects or authorises a provider in botocore (`credentials.py`,
/// `configprovider.py`), the aws CLI or the AWS SDKs (the Rust SDK's `aws-config`
/// environment, profile, web identity and ecs providers); why, per variable:
pub const UNSET: &[&str] = &[
    // The profile every SDK starts from (botocore reads AWS_DEFAULT_PROFILE first). Its
    // keys, role_arn, credential_process, sso_* or login_session come before the
    // container endpoint, and tools that take a named profile over the environment
    // would use it beside our keys.
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    // botocore's EnvProvider takes it before AWS_SESSION_TOKEN: a stale token would go
    // with our keys.
    "AWS_SECURITY_TOKEN",
    // botocore's OriginalEC2Provider (the EC2 tools' key file), tried before the
    // container endpoint.
    "AWS_CREDENTIAL_FILE",
    // aws-sdk-go v1: makes it read the shared config (role_arn, sso, credential_process).
    "AWS_SDK_LOAD_CONFIG",
    // The container provider (ECS, EKS Pod Identity): the caller's own endpoint. A
    // --server child is given ours (the full URI and the token) instead.
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    // ECS's task endpoint: botocore and the Rust SDK take it before the full URI.
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    // EKS Pod Identity's token file: botocore, the aws CLI, the JS and Rust SDKs read the
    // token from it before the token variable, and would send the pod's token to our
    // endpoint (403).
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    // The old names of the env keys (aws-sdk-go v1, the Java SDK v1, minio-go, s3cmd):
    // read when AWS_ACCESS_KEY_ID is absent, as in a --server child, and by some first.
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    // Web identity from the environment (botocore's AssumeRoleWithWebIdentityProvider,
    // the Rust SDK's WebIdentityTokenCredentialsProvider): before the container
    // endpoint, and used beside keys by tools set up for it (Terraform's
    // assume_role_with_web_identity). The caller's values go on as ELHAZ_SOURCE_*.
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    // botocore's and the Rust SDK's env providers give it to the env keys as their
    // account: account-based endpoints (DynamoDB) would name the caller's account while
    // the role's keys sign.
    "AWS_ACCOUNT_ID",
];

// Left as the caller has them, on purpose:
// - AWS_CREDENTIAL_EXPIRATION: botocore reads it with the env keys; exec sets ours, and
//   a --server child has it removed with the keys (below).
// - AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE: the env keys come before every
//   profile, and an exec child may name another profile on purpose; a --server child
//   gets copies without credentials (`chain`).
// - BOTO_CONFIG: botocore's BotoProvider comes after the env keys; a --server child
//   gets /dev/null when a boto file holds keys (see `boto_config_has_keys`).
// - AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_SERVICE_ENDPOINT(_MODE),
//   AWS_EC2_METADATA_V1_DISABLED, AWS_METADATA_SERVICE_TIMEOUT/NUM_ATTEMPTS,
//   AWS_IMDS_USE_IPV6: instance metadata is the last provider of every chain, after
//   the env keys and the container endpoint, and no chain falls through to it when
//   they fail; a child may still use IMDS for other things (its region, identity).
// - AWS_LOGIN_CACHE_DIRECTORY (botocore's and the Rust SDK's login provider), the SSO
//   token cache: read only for a profile's login_session or sso_session.
// - SECRET_ACCESS_KEY: the Rust SDK's fallback for AWS_SECRET_ACCESS_KEY, read only
//   beside AWS_ACCESS_KEY_ID, which exec sets with the secret and --server removes.

/// Everything elhaz may set; `use --clear` removes these.
pub const ALL_SET: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "ELHAZ_SESSION",
    "ELHAZ_EXPIRES_AT",
    "ELHAZ_REFRESH_AT",
    crate::context::KEY_ID_VAR,
];

use crate::context::INJECTED;

/// How the child reaches its credentials.
pub enum Delivery<'a> {
    /// The three variables, fixed for the child's life.
    Static(&'a Credentials),
    /// A loopback container-credentials endpoint that always serves fresh ones.
    Container {
        uri: &'a str,
        token: &'a str,
        credentials: &'a Credentials,
        /// The AWS files that leave the endpoint as the child's only source.
        files: &'a chain::ChainFiles,
    },
}

/// What a `--server` child must not inherit, since the SDKs would take it over the
/// endpoint; the caller's values go on as `ELHAZ_SOURCE_*` for nested elhaz.
const CHAIN_OVERRIDES: &[(&str, &str)] = &[
    ("AWS_CONFIG_FILE", "ELHAZ_SOURCE_AWS_CONFIG_FILE"),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        "ELHAZ_SOURCE_AWS_SHARED_CREDENTIALS_FILE",
    ),
];

/// What a session carries of its caller, so that elhaz inside it resolves the same
/// sources: the caller's source context (as `ELHAZ_SOURCE_*`) and the context
/// reference that names it in the daemon (`ELHAZ_CONTEXT_REF`).
#[derive(Clone, Copy, Debug)]
pub struct Carried<'a> {
    pub source: &'a SourceContext,
    pub context_ref: Option<&'a str>,
}

impl<'a> Carried<'a> {
    /// The caller's, for a session made of what the broker `served`: the context
    /// reference the daemon answered with, else the one the caller started with.
    pub(crate) fn of(caller: &'a CallerContext, served: &'a Served) -> Self {
        Carried {
            source: &caller.source,
            context_ref: caller.session_ref(served.context_ref.as_deref()),
        }
    }
}

/// The environment of one session: what to set (in order) and what to unset.
pub struct SessionEnv {
    pub set: Vec<(&'static str, String)>,
    pub unset: Vec<&'static str>,
    /// Removed from a child's environment only (never written for a shell to eval,
    /// where a shell keeps its own unexported copies): the secret `ELHAZ_SOURCE_*`
    /// that reached this process as per-command assignments.
    pub child_unset: Vec<&'static str>,
}

impl SessionEnv {
    pub fn build(
        name: &str,
        delivery: Delivery<'_>,
        region: Option<&str>,
        policy: &Policy,
        carried: Carried<'_>,
    ) -> Self {
        let mut set: Vec<(&'static str, String)> = Vec::new();
        let mut unset: Vec<&'static str> = UNSET.to_vec();
        let creds = match delivery {
            Delivery::Static(c) => {
                set.push(("AWS_ACCESS_KEY_ID", c.access_key_id.clone()));
                set.push(("AWS_SECRET_ACCESS_KEY", c.secret_access_key().to_string()));
                set.push(("AWS_SESSION_TOKEN", c.session_token().to_string()));
                set.push(("AWS_CREDENTIAL_EXPIRATION", zulu(c.expiration)));
                // Which key is the session's (not secret): keys a user sets inside
                // the session are told apart from it.
                set.push((context::KEY_ID_VAR, c.access_key_id.clone()));
                c
            }
            Delivery::Container {
                uri,
                token,
                credentials,
                files,
            } => {
                unset.retain(|v| {
                    *v != "AWS_CONTAINER_CREDENTIALS_FULL_URI"
                        && *v != "AWS_CONTAINER_AUTHORIZATION_TOKEN"
                });
                unset.extend([
                    "AWS_ACCESS_KEY_ID",
                    "AWS_SECRET_ACCESS_KEY",
                    "AWS_SESSION_TOKEN",
                    "AWS_CREDENTIAL_EXPIRATION",
                ]);
                // No key injected: any a user sets inside is theirs.
                set.push((context::KEY_ID_VAR, String::new()));
                set.push(("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.to_string()));
                set.push(("AWS_CONTAINER_AUTHORIZATION_TOKEN", token.to_string()));
                for (var, source) in CHAIN_OVERRIDES {
                    // Kept when an outer session already recorded it; "" is unset.
                    if std::env::var_os(source).is_none() {
                        let caller = std::env::var(var).unwrap_or_default();
                        set.push((source, caller));
                    }
                }
                set.push(("AWS_CONFIG_FILE", files.config.display().to_string()));
                set.push((
                    "AWS_SHARED_CREDENTIALS_FILE",
                    files.credentials.display().to_string(),
                ));
                if boto_config_has_keys() {
                    set.push(("BOTO_CONFIG", "/dev/null".to_string()));
                }
                credentials
            }
        };
        if let Some(r) = region {
            set.push(("AWS_REGION", r.to_string()));
            set.push(("AWS_DEFAULT_REGION", r.to_string()));
        }
        let expires = creds.expires_unix();
        set.push(("ELHAZ_SESSION", name.to_string()));
        set.push(("ELHAZ_EXPIRES_AT", expires.to_string()));
        set.push((
            "ELHAZ_REFRESH_AT",
            policy
                .refresh_at(expires, creds.lifetime_secs())
                .to_string(),
        ));
        let mut env = SessionEnv {
            set,
            unset,
            child_unset: Vec::new(),
        };
        env.carry_sources(carried);
        env
    }

    /// Carries the caller's source context into the session (so that elhaz inside it
    /// resolves the same sources): `ELHAZ_SOURCE_V=<caller value>` for every
    /// non-secret context variable the session sets or unsets (and the profile and
    /// region ones always); `ELHAZ_SOURCE_V` unset where the caller has none. Never a
    /// secret one: those are removed from children. And its context reference, when
    /// it has one. Call again after changing `set` or `unset` by hand.
    pub fn carry_sources(&mut self, carried: Carried<'_>) {
        let mut carriers: Vec<&'static str> = context::SOURCE_VARS.to_vec();
        carriers.push(context::REF_VAR);
        carriers.push(context::KEYS_VAR);
        self.set.retain(|(k, _)| !carriers.contains(k));
        self.unset.retain(|k| !carriers.contains(k));
        self.child_unset.retain(|k| !carriers.contains(k));
        match carried.context_ref {
            Some(r) => self.set.push((context::REF_VAR, r.to_string())),
            None => self.unset.push(context::REF_VAR),
        }
        // Made from keys the session does not carry: said, so that elhaz inside it
        // without them has no source rather than the next one of the chain.
        if carried.source.made_from_keys() {
            self.set.push((context::KEYS_VAR, "1".to_string()));
        } else {
            self.unset.push(context::KEYS_VAR);
        }
        for (i, var) in context::CARRIED.iter().enumerate() {
            let source = context::SOURCE_VARS[i];
            if context::SECRET.contains(var) {
                self.child_unset.push(source);
                continue;
            }
            let touched = context::SESSION_MANAGED.contains(var)
                || self.unset.contains(var)
                || self.set.iter().any(|(k, _)| k == var);
            if !touched {
                continue;
            }
            match carried.source.get(var) {
                Some(v) => self.set.push((source, v.to_string())),
                // Absent and managed by every session: absent inside it too.
                None if context::SESSION_MANAGED.contains(var) => self.unset.push(source),
                // Empty: "unset at the source", which V itself no longer says.
                None => self.set.push((source, String::new())),
            }
        }
    }

    /// The full environment of a child: ours, with this applied.
    pub fn child_env(&self) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
            .filter(|(k, _)| {
                let k = k.to_string_lossy();
                !self.unset.iter().chain(&self.child_unset).any(|u| *u == k)
                    && !self.set.iter().any(|(s, _)| *s == k)
            })
            .collect();
        env.extend(self.set.iter().map(|(k, v)| ((*k).into(), v.into())));
        env
    }

    /// Shell code that applies it, for eval.
    pub fn render(&self, shell: ShellKind) -> String {
        let mut out = String::new();
        for v in &self.unset {
            out.push_str(&unset_line(shell, v));
        }
        for (k, v) in &self.set {
            out.push_str(&set_line(shell, k, v));
        }
        out.push_str(end_line(shell));
        out
    }
}

/// Whether a boto config file that botocore reads holds AWS keys: BOTO_CONFIG, else
/// /etc/boto.cfg and ~/.boto. botocore's BotoProvider takes `[Credentials]`
/// aws_access_key_id from it before the container endpoint, so a --server child must
/// not see it. Broader than configparser (any line of the section counts), never
/// narrower; a file without keys (gsutil's own settings) stays the child's.
fn boto_config_has_keys() -> bool {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let files: Vec<std::path::PathBuf> = match std::env::var("BOTO_CONFIG") {
        Ok(p) => match (p.strip_prefix("~/"), &home) {
            (Some(rest), Some(h)) => vec![h.join(rest)],
            _ => vec![p.into()],
        },
        Err(_) => ["/etc/boto.cfg".into()]
            .into_iter()
            .chain(home.map(|h| h.join(".boto")))
            .collect(),
    };
    files.iter().any(|f| {
        let Ok(text) = std::fs::read_to_string(f) else {
            return false;
        };
        let mut in_credentials = false;
        text.lines().map(str::trim).any(|l| {
            if let Some(section) = l.strip_prefix('[') {
                in_credentials = section.trim_end_matches(']').trim() == "Credentials";
                return false;
            }
            let key = l.split(['=', ':']).next().unwrap_or_default();
            in_credentials && key.trim().eq_ignore_ascii_case("aws_access_key_id")
        })
    })
}

/// Every variable a `use` may set or unset, which the hook's stash saves before the
/// first one so that `use --clear` can put each back: the credentials, the ones every
/// session removes, the region and profile ones, and the carried source selectors
/// (never a secret one: those are not exported).
pub(crate) fn use_changes() -> Vec<&'static str> {
    let carried = context::SOURCE_VARS
        .iter()
        .zip(context::CARRIED)
        .filter(|(_, v)| !context::SECRET.contains(v))
        .map(|(s, _)| *s);
    let mut vars: Vec<&'static str> = Vec::new();
    for v in ALL_SET
        .iter()
        .chain(UNSET)
        .copied()
        .chain([
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            context::REF_VAR,
            context::KEYS_VAR,
        ])
        .chain(carried)
    {
        if !vars.contains(&v) {
            vars.push(v);
        }
    }
    vars
}

/// Shell code that removes every variable elhaz sets (`use --clear`).
pub fn render_clear(shell: ShellKind) -> String {
    let mut out: String = ALL_SET.iter().map(|v| unset_line(shell, v)).collect();
    out.push_str(end_line(shell));
    out
}

/// The shell to write for: bash, zsh or fish from `$SHELL`, else POSIX.
pub fn shell_from_env() -> ShellKind {
    ShellKind::from_env()
}

/// Removes, from this process, credentials that an outer elhaz session injected, so
/// they can never be taken as source credentials. Called first thing in main, before
/// any thread exists.
pub fn scrub_injected() {
    if std::env::var_os("ELHAZ_SESSION").is_none() {
        return;
    }
    for v in INJECTED
        .iter()
        .chain(["ELHAZ_SESSION", "ELHAZ_EXPIRES_AT", "ELHAZ_REFRESH_AT"].iter())
    {
        // SAFETY: called from main before any other thread is started.
        unsafe { std::env::remove_var(v) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_carries_the_non_secret_selectors_and_never_a_secret() {
        let caller = SourceContext::from_lookup(false, |k| match k {
            "AWS_PROFILE" => Some("p1".into()),
            "AWS_REGION" => Some("eu-west-1".into()),
            "AWS_ACCESS_KEY_ID" => Some("AKIASOURCE".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("source-secret".into()),
            _ => None,
        });
        let mut env = SessionEnv {
            set: vec![("AWS_CONFIG_FILE", "/empty".into())],
            unset: vec!["AWS_PROFILE"],
            child_unset: Vec::new(),
        };
        env.carry_sources(Carried {
            source: &caller,
            context_ref: None,
        });
        let get = |k: &str| {
            env.set
                .iter()
                .find(|(s, _)| *s == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ELHAZ_SOURCE_AWS_PROFILE"), Some("p1"));
        assert_eq!(get("ELHAZ_SOURCE_AWS_REGION"), Some("eu-west-1"));
        // Overridden here and unset at the source: said so, with an empty value.
        assert_eq!(get("ELHAZ_SOURCE_AWS_CONFIG_FILE"), Some(""));
        assert!(env.unset.contains(&"ELHAZ_SOURCE_AWS_DEFAULT_PROFILE"));
        assert!(env.child_unset.contains(&"ELHAZ_SOURCE_AWS_ACCESS_KEY_ID"));
        let rendered = env.render(ShellKind::Bash);
        assert!(!rendered.contains("AKIASOURCE") && !rendered.contains("source-secret"));
        assert!(
            !rendered.contains("ELHAZ_SOURCE_AWS_ACCESS_KEY_ID"),
            "{rendered}"
        );
        // Idempotent: carrying again replaces, never duplicates.
        env.carry_sources(Carried {
            source: &caller,
            context_ref: None,
        });
        let n = env
            .set
            .iter()
            .filter(|(k, _)| *k == "ELHAZ_SOURCE_AWS_PROFILE")
            .count();
        assert_eq!(n, 1);
    }
}
