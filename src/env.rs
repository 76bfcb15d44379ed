//! The one place that decides which variables a child or shell sees: exec, shell,
//! `export -f env`, `use` and the hooks all build their environment here, so they
//! cannot disagree.
//!
//! It owns which variables and values; it must not know shell syntax (that is
//! `crate::shell`) nor the command line.

use crate::context::{self, SourceContext};
use crate::credentials::policy::Policy;
use crate::credentials::{Credentials, rfc3339};
use crate::shell::{ShellKind, end_line, set_line, unset_line};

pub mod chain;

/// Removed from every environment elhaz builds, so that no other credential source
/// beats ours.
pub const UNSET: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_FILE",
    "AWS_SDK_LOAD_CONFIG",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

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
    ("AWS_ROLE_ARN", "ELHAZ_SOURCE_AWS_ROLE_ARN"),
    (
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "ELHAZ_SOURCE_AWS_WEB_IDENTITY_TOKEN_FILE",
    ),
    (
        "AWS_ROLE_SESSION_NAME",
        "ELHAZ_SOURCE_AWS_ROLE_SESSION_NAME",
    ),
];

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
    ) -> Self {
        let mut set: Vec<(&'static str, String)> = Vec::new();
        let mut unset: Vec<&'static str> = UNSET.to_vec();
        let creds = match delivery {
            Delivery::Static(c) => {
                set.push(("AWS_ACCESS_KEY_ID", c.access_key_id.clone()));
                set.push(("AWS_SECRET_ACCESS_KEY", c.secret_access_key().to_string()));
                set.push(("AWS_SESSION_TOKEN", c.session_token().to_string()));
                set.push(("AWS_CREDENTIAL_EXPIRATION", rfc3339(c.expiration)));
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
                set.push(("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.to_string()));
                set.push(("AWS_CONTAINER_AUTHORIZATION_TOKEN", token.to_string()));
                for (var, source) in CHAIN_OVERRIDES {
                    // Kept when an outer session already recorded it; "" is unset.
                    if std::env::var_os(source).is_none() {
                        let caller = std::env::var(var).unwrap_or_default();
                        set.push((source, caller));
                    }
                }
                unset.extend([
                    "AWS_ROLE_ARN",
                    "AWS_WEB_IDENTITY_TOKEN_FILE",
                    "AWS_ROLE_SESSION_NAME",
                ]);
                set.push(("AWS_CONFIG_FILE", files.config.display().to_string()));
                set.push((
                    "AWS_SHARED_CREDENTIALS_FILE",
                    files.credentials.display().to_string(),
                ));
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
        env.carry_sources(SourceContext::caller());
        env
    }

    /// Carries the caller's source context into the session (so that elhaz inside it
    /// resolves the same sources): `ELHAZ_SOURCE_V=<caller value>` for every
    /// non-secret context variable the session sets or unsets (and the profile and
    /// region ones always); `ELHAZ_SOURCE_V` unset where the caller has none. Never a
    /// secret one: those are removed from children. Call again after changing `set`
    /// or `unset` by hand.
    pub fn carry_sources(&mut self, caller: &SourceContext) {
        let mut carried: Vec<&'static str> = context::SOURCE_VARS.to_vec();
        carried.push(context::REF_VAR);
        self.set.retain(|(k, _)| !carried.contains(k));
        self.unset.retain(|k| !carried.contains(k));
        self.child_unset.retain(|k| !carried.contains(k));
        match context::served_ref() {
            Some(r) => self.set.push((context::REF_VAR, r)),
            None => self.unset.push(context::REF_VAR),
        }
        for (i, var) in context::VARS.iter().enumerate() {
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
            match caller.get(var) {
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

/// Every variable a `use` may set or unset, which the hook's stash saves before the
/// first one so that `use --clear` can put each back: the credentials, the ones every
/// session removes, the region and profile ones, and the carried source selectors
/// (never a secret one: those are not exported).
pub(crate) fn use_changes() -> Vec<&'static str> {
    let carried = context::SOURCE_VARS
        .iter()
        .zip(context::VARS)
        .filter(|(_, v)| !context::SECRET.contains(v))
        .map(|(s, _)| *s);
    let mut vars: Vec<&'static str> = Vec::new();
    for v in ALL_SET
        .iter()
        .chain(UNSET)
        .copied()
        .chain(["AWS_REGION", "AWS_DEFAULT_REGION", context::REF_VAR])
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
        env.carry_sources(&caller);
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
        env.carry_sources(&caller);
        let n = env
            .set
            .iter()
            .filter(|(k, _)| *k == "ELHAZ_SOURCE_AWS_PROFILE")
            .count();
        assert_eq!(n, 1);
    }
}
