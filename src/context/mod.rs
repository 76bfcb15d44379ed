//! The caller's source context: the variables that select or hold the source
//! credentials of the process that asks for a session. The client builds it from its
//! own environment (inside an elhaz session, from the `ELHAZ_SOURCE_*` variables the
//! session carries, never from what elhaz injected); the engine resolves sources from
//! it and from nothing else; the daemon keys its sessions by a keyed hash of it.
//! It owns the list of variables that are sources and of those elhaz injects; it must
//! not know of STS, the daemon or the shells. What a process captures of its caller
//! at start, and passes down from there, is a [`CallerContext`] (`caller.rs`).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use zeroize::Zeroize;

mod caller;

pub use caller::CallerContext;

/// Variables that elhaz injected and that must never be taken as source credentials
/// (removed from our own process when ELHAZ_SESSION says we run inside a session).
pub const INJECTED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// The variables that select or hold source credentials and that an elhaz session
/// carries as `ELHAZ_SOURCE_*` (see [`SOURCE_VARS`]), in a fixed order.
pub(crate) const CARRIED: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
];

/// The context variables that say where STS, SSO and the portal are and how they are
/// reached: part of what decides a session's identity.
pub(crate) const ENDPOINTS: &[&str] = &[
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_SSO",
    "AWS_ENDPOINT_URL_SSO_OIDC",
    "AWS_ENDPOINT_URL_EKS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_CA_BUNDLE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The context variables of the default chain's last resorts: the container endpoint
/// and instance metadata.
pub(crate) const LAST_RESORT: &[&str] = &[
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
];

const VARS_LEN: usize = CARRIED.len() + ENDPOINTS.len() + LAST_RESORT.len();

/// `parts`, one after the other, in an array of their total length.
const fn concat<const N: usize>(parts: [&[&'static str]; 3]) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut p, mut at) = (0, 0);
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[at] = parts[p][i];
            at += 1;
            i += 1;
        }
        p += 1;
    }
    out
}

const VARS_ARRAY: [&str; VARS_LEN] = concat([CARRIED, ENDPOINTS, LAST_RESORT]);

/// Every variable of the caller's context, in a fixed order: [`CARRIED`], then
/// [`ENDPOINTS`] and [`LAST_RESORT`]. A daemon started days ago with other values must
/// answer with the caller's, as `--no-daemon` does, so they travel with every request
/// like the sources.
pub(crate) const VARS: &[&str] = &VARS_ARRAY;

/// Context variables whose values are never shown (Debug, `daemon status`): proxy
/// URLs may hold a password.
const SHOWN_REDACTED: &[&str] = &["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"];

/// The ones that hold secrets: never exported into a session, never logged, never
/// shown; they travel only over the peer-checked socket.
pub(crate) const SECRET: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// The ones an elhaz session sets or unsets: inside a session their values are
/// elhaz's, never the caller's source.
pub(crate) const SESSION_MANAGED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    // What `exec --server` gives its child: the child's endpoint, never a source.
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// Set in a session the daemon served: which of the daemon's source contexts served
/// it (the hex of its keyed hash, which says nothing without the daemon's key). Inside
/// the session it lets the daemon supply the source keys the session could not carry
/// (they are never exported), as long as that daemon runs.
pub(crate) const REF_VAR: &str = "ELHAZ_CONTEXT_REF";

/// The context variables that name files (relative ones are taken from the caller's
/// working directory).
const PATH_VARS: &[&str] = &[
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
];

/// A path the SDKs would resolve from the working directory: not absolute, not `~/…`.
fn is_relative_path(v: &str) -> bool {
    !v.is_empty() && !v.starts_with('/') && v != "~" && !v.starts_with("~/")
}

/// The prefix of the variables a session carries the caller's values in.
pub(crate) const SOURCE_PREFIX: &str = "ELHAZ_SOURCE_";

/// Set to `1` in a session made from source keys (which a session never exports):
/// elhaz inside it then knows that without those keys (the shell integration's, or
/// the daemon's by [`REF_VAR`]) it has no source, rather than taking the next one of
/// the chain (`[default]`) in their place.
pub(crate) const KEYS_VAR: &str = "ELHAZ_SOURCE_KEYS";

/// The access key id a session injected (empty: none, the container endpoint serves
/// it). Not a secret; inside the session it tells keys the user set from the session's.
pub(crate) const KEY_ID_VAR: &str = "ELHAZ_KEY_ID";

/// `ELHAZ_SOURCE_<var>`.
pub(crate) fn source_var(var: &str) -> String {
    format!("{SOURCE_PREFIX}{var}")
}

/// `ELHAZ_SOURCE_<var>` for each of [`CARRIED`], in the same order.
pub(crate) const SOURCE_VARS: &[&str] = &[
    "ELHAZ_SOURCE_AWS_PROFILE",
    "ELHAZ_SOURCE_AWS_DEFAULT_PROFILE",
    "ELHAZ_SOURCE_AWS_CONFIG_FILE",
    "ELHAZ_SOURCE_AWS_SHARED_CREDENTIALS_FILE",
    "ELHAZ_SOURCE_AWS_ACCESS_KEY_ID",
    "ELHAZ_SOURCE_AWS_SECRET_ACCESS_KEY",
    "ELHAZ_SOURCE_AWS_SESSION_TOKEN",
    "ELHAZ_SOURCE_AWS_ROLE_ARN",
    "ELHAZ_SOURCE_AWS_WEB_IDENTITY_TOKEN_FILE",
    "ELHAZ_SOURCE_AWS_ROLE_SESSION_NAME",
    "ELHAZ_SOURCE_AWS_REGION",
    "ELHAZ_SOURCE_AWS_DEFAULT_REGION",
];

/// One caller's context: the [`VARS`] it has set, with their values. Debug shows the
/// non-secret ones only; the values are wiped from memory on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SourceContext {
    /// (index into VARS, value), in VARS order.
    vars: Vec<(usize, String)>,
    /// Inside a session made from source keys ([`KEYS_VAR`]): keys this context does
    /// not hold were its source. Neither a selector nor part of the identity.
    keys_held: bool,
}

impl Drop for SourceContext {
    fn drop(&mut self) {
        for (_, v) in self.vars.iter_mut() {
            v.zeroize();
        }
    }
}

impl fmt::Debug for SourceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (i, v) in &self.vars {
            let k = VARS[*i];
            if SECRET.contains(&k) || SHOWN_REDACTED.contains(&k) {
                m.entry(&k, &"***");
            } else {
                m.entry(&k, v);
            }
        }
        if self.keys_held {
            m.entry(&KEYS_VAR, &"1");
        }
        m.finish()
    }
}

/// The hex form of a keyed hash.
pub(crate) fn hex(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}

static DAEMON_KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// HMAC-SHA256 of `bytes` under a random key that lives and dies with this process:
/// what names a context or an identity in the daemon's cache, never the secret in it,
/// and nothing that could be checked against a guess outside this process.
pub(crate) fn keyed(bytes: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let key = DAEMON_KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        // Without randomness the key is still per process (pid and time), and the
        // hash still never holds the secret itself.
        if getrandom::fill(&mut k).is_err() {
            let seed = format!("{}:{:?}", std::process::id(), std::time::SystemTime::now());
            for (i, b) in seed.bytes().enumerate() {
                k[i % 32] ^= b;
            }
        }
        k
    });
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(bytes);
    mac.finalize().into_bytes().into()
}

impl SourceContext {
    /// Builds a context from a lookup of the environment. `in_session`: ELHAZ_SESSION
    /// is set, so what elhaz injected is never a source (rule 2 of the contract):
    /// `ELHAZ_SOURCE_V` when set (empty: V was unset at the source), else V unless a
    /// session manages it.
    pub(crate) fn from_lookup(in_session: bool, get: impl Fn(&str) -> Option<String>) -> Self {
        let mut vars = Vec::new();
        // Keys that are not the ones the session injected were set inside it, by the
        // user (the shell integration's kept keys come as ELHAZ_SOURCE_*, and win).
        let own_keys = in_session
            && get(&source_var("AWS_ACCESS_KEY_ID")).is_none()
            && match (get("AWS_ACCESS_KEY_ID"), get(KEY_ID_VAR)) {
                (Some(id), Some(injected)) => !id.is_empty() && id != injected,
                _ => false,
            };
        for (i, k) in VARS.iter().enumerate() {
            // Every session unsets the profile selectors: one set inside it was set
            // there, by the user, and wins over the caller's carried one (as it does
            // for the aws CLI in the same shell). So do keys of the user's own.
            let chosen_inside = in_session
                && (matches!(*k, "AWS_PROFILE" | "AWS_DEFAULT_PROFILE")
                    || (own_keys
                        && matches!(
                            *k,
                            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN"
                        )))
                && get(k).is_some_and(|v| !v.is_empty());
            let value = if chosen_inside {
                get(k)
            } else if in_session {
                match get(&source_var(k)) {
                    Some(v) => Some(v).filter(|v| !v.is_empty()),
                    None if SESSION_MANAGED.contains(k) => None,
                    None => get(k),
                }
            } else {
                get(k)
            };
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                vars.push((i, v));
            }
        }
        let keys_held = in_session && get(KEYS_VAR).is_some_and(|v| v == "1");
        SourceContext { vars, keys_held }
    }

    /// This process's context, from its environment now. A relative file path is made
    /// absolute here: the daemon works from `/`, and must read the file the caller
    /// meant, as `--no-daemon` does.
    pub(crate) fn from_process() -> Self {
        let in_session = std::env::var_os("ELHAZ_SESSION").is_some();
        let cwd = std::env::current_dir().ok();
        Self::from_lookup(in_session, |k| {
            let v = std::env::var(k).ok()?;
            match &cwd {
                Some(dir) if PATH_VARS.contains(&k) && is_relative_path(&v) => {
                    Some(dir.join(&v).to_string_lossy().into_owned())
                }
                _ => Some(v),
            }
        })
    }

    pub(crate) fn get(&self, var: &str) -> Option<&str> {
        let i = VARS.iter().position(|v| *v == var)?;
        self.vars
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it holds any secret variable.
    pub(crate) fn has_secrets(&self) -> bool {
        SECRET.iter().any(|k| self.get(k).is_some())
    }

    /// Whether it is a session's, made from source keys it does not hold now.
    pub(crate) fn keys_elsewhere(&self) -> bool {
        self.keys_held && !self.has_secrets()
    }

    /// Whether a session made from this context is made from source keys: its own, or
    /// those of the session it runs in.
    pub(crate) fn made_from_keys(&self) -> bool {
        self.keys_held || self.has_secrets()
    }

    /// Whether the two agree on every non-secret variable.
    pub(crate) fn same_selectors(&self, other: &SourceContext) -> bool {
        let public = |c: &SourceContext| -> Vec<(usize, String)> {
            c.vars
                .iter()
                .filter(|(i, _)| !SECRET.contains(&VARS[*i]))
                .cloned()
                .collect()
        };
        public(self) == public(other)
    }

    /// The wire form: an object of the variables that are set. Secrets included: it
    /// is sent only over the daemon's own, peer-checked socket.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (i, v) in &self.vars {
            m.insert(VARS[*i].to_string(), Value::String(v.clone()));
        }
        if self.keys_held {
            // An older daemon ignores what it does not know.
            m.insert(KEYS_VAR.to_string(), Value::String("1".into()));
        }
        Value::Object(m)
    }

    /// Reads the wire form. Unknown names are ignored (a newer client); a value that
    /// is not a string is an error.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let Some(m) = v.as_object() else {
            return Err("bad request: payload.context must be an object".into());
        };
        let mut vars = Vec::new();
        for (i, k) in VARS.iter().enumerate() {
            match m.get(*k) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s.is_empty() => {}
                Some(Value::String(s)) => vars.push((i, s.clone())),
                Some(_) => {
                    return Err(format!("bad request: payload.context.{k} must be a string"));
                }
            }
        }
        let keys_held = m.get(KEYS_VAR).and_then(Value::as_str) == Some("1");
        Ok(SourceContext { vars, keys_held })
    }

    /// The keyed hash that names this context in the daemon's cache: HMAC-SHA256 under
    /// a random per-process key, so the cache holds no secret and no hash that could be
    /// checked against a guess outside this process.
    pub(crate) fn keyed_hash(&self) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(256);
        for (i, v) in &self.vars {
            bytes.extend_from_slice(&(*i as u32).to_be_bytes());
            bytes.extend_from_slice(&(v.len() as u64).to_be_bytes());
            bytes.extend_from_slice(v.as_bytes());
        }
        let h = keyed(&bytes);
        bytes.zeroize();
        h
    }

    /// The profile the SDK starts from: AWS_PROFILE, else AWS_DEFAULT_PROFILE, else
    /// "default".
    pub(crate) fn profile(&self) -> &str {
        self.get("AWS_PROFILE")
            .or_else(|| self.get("AWS_DEFAULT_PROFILE"))
            .unwrap_or("default")
    }

    /// Whether the profile was named by a variable (not the implied "default").
    pub(crate) fn profile_named(&self) -> bool {
        self.get("AWS_PROFILE").is_some() || self.get("AWS_DEFAULT_PROFILE").is_some()
    }

    /// The AWS CLI config file: AWS_CONFIG_FILE, else ~/.aws/config.
    pub(crate) fn config_file(&self) -> PathBuf {
        self.file("AWS_CONFIG_FILE", "config")
    }

    /// The shared credentials file: AWS_SHARED_CREDENTIALS_FILE, else
    /// ~/.aws/credentials.
    pub(crate) fn credentials_file(&self) -> PathBuf {
        self.file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
    }

    fn file(&self, var: &str, default: &str) -> PathBuf {
        let home = || crate::fsutil::home_dir().unwrap_or_else(|_| PathBuf::from("/"));
        match self.get(var) {
            Some("~") => home(),
            Some(p) if p.starts_with("~/") => home().join(&p[2..]),
            Some(p) => PathBuf::from(p),
            None => home().join(".aws").join(default),
        }
    }

    /// The environment the SDK sees for this context: this process's own, with every
    /// context variable replaced by the caller's (or removed). Variables that are not
    /// about the source (endpoints, retries, HOME) stay this process's.
    pub(crate) fn sdk_env(&self) -> aws_types::os_shim_internal::Env {
        self.sdk_env_without(&[])
    }

    /// The same, without the variables `without` (to leave only some of the SDK's
    /// default providers something to find).
    pub(crate) fn sdk_env_without(&self, without: &[&str]) -> aws_types::os_shim_internal::Env {
        // vars_os: a variable that is not UTF-8 is skipped, never a panic.
        let mut map: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| !VARS.contains(&k.as_str()) && !k.starts_with(SOURCE_PREFIX))
            .collect();
        for (i, v) in &self.vars {
            map.insert(VARS[*i].to_string(), v.clone());
        }
        for k in without {
            map.remove(*k);
        }
        // Credentials an outer session injected are never a source.
        if std::env::var_os("ELHAZ_SESSION").is_some() {
            for k in INJECTED {
                if !VARS.contains(k) {
                    map.remove(*k);
                }
            }
        }
        aws_types::os_shim_internal::Env::from(map)
    }

    /// What the caller tried, for a "no source" error: one phrase per source the SDK's
    /// chain looks at, as this context has it.
    pub(crate) fn describe_sources(&self, profile: SelectedProfile) -> Vec<String> {
        let mut tried = Vec::new();
        tried.push(match self.get("AWS_ACCESS_KEY_ID") {
            Some(_) if self.get("AWS_SECRET_ACCESS_KEY").is_none() => {
                "AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY".to_string()
            }
            Some(_) => "the environment keys gave none".to_string(),
            None => "AWS_ACCESS_KEY_ID is not set".to_string(),
        });
        let files = format!(
            "{} or {}",
            crate::error::display_path(&self.config_file()),
            crate::error::display_path(&self.credentials_file())
        );
        const SERVED: &str =
            "its credential_process runs elhaz, and credentials elhaz serves are never a source";
        if self.profile_named() {
            let var = if self.get("AWS_PROFILE").is_some() {
                "AWS_PROFILE"
            } else {
                "AWS_DEFAULT_PROFILE"
            };
            let name = self.profile();
            tried.push(match profile {
                SelectedProfile::GivesNone => {
                    format!("{var}={name} (its profile gives no credentials)")
                }
                SelectedProfile::ServedByElhaz => format!("{var}={name} ({SERVED})"),
                SelectedProfile::Missing => {
                    format!(
                        "{var}={name}, which is in neither {} nor {}",
                        crate::error::display_path(&self.config_file()),
                        crate::error::display_path(&self.credentials_file())
                    )
                }
            });
        } else {
            tried.push(match profile {
                SelectedProfile::GivesNone => format!(
                    "AWS_PROFILE is not set, and the [default] profile of {files} gives no credentials"
                ),
                SelectedProfile::ServedByElhaz => format!(
                    "AWS_PROFILE is not set, and the [default] profile of {files} is skipped: {SERVED}"
                ),
                SelectedProfile::Missing => format!(
                    "AWS_PROFILE is not set, and there is no [default] profile in {files}"
                ),
            });
        }
        tried.push(
            match (
                self.get("AWS_ROLE_ARN"),
                self.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
            ) {
                (Some(_), Some(_)) => {
                    "web identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) gave none"
                }
                (Some(_), None) => "AWS_ROLE_ARN is set without AWS_WEB_IDENTITY_TOKEN_FILE",
                (None, Some(_)) => "AWS_WEB_IDENTITY_TOKEN_FILE is set without AWS_ROLE_ARN",
                (None, None) => "no web identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE)",
            }
            .to_string(),
        );
        tried.push("no container or instance metadata credentials".to_string());
        tried
    }
}

/// What the profile the caller selects (AWS_PROFILE, else `default`) is, for a "no
/// source" error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SelectedProfile {
    /// In neither AWS file.
    Missing,
    /// There, with nothing that gives credentials.
    GivesNone,
    /// There, but its `credential_process` runs elhaz: skipped, never a source.
    ServedByElhaz,
}

/// Removes the `ELHAZ_SOURCE_*` carriers of the secret source variables (the keys the
/// shell integration hands over for one command) from this process's environment,
/// once [`CallerContext::capture`] has read them: no child elhaz starts (a browser,
/// a helper, a `--server` child) inherits them.
///
/// # Safety
/// Must run while this process has a single thread.
pub unsafe fn forget_source_carriers() {
    for k in SECRET {
        // SAFETY: the caller guarantees a single thread.
        unsafe { std::env::remove_var(source_var(k)) };
    }
}

/// Removes the secret source variables (and their `ELHAZ_SOURCE_*` carriers) from this
/// process's environment, so nothing it spawns inherits them. The daemon calls it
/// after [`CallerContext::capture`].
///
/// # Safety
/// Must run while this process has a single thread.
pub unsafe fn forget_secret_sources() {
    for k in SECRET {
        // SAFETY: the caller guarantees a single thread.
        unsafe {
            std::env::remove_var(k);
            std::env::remove_var(source_var(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(in_session: bool, pairs: &[(&str, &str)]) -> SourceContext {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SourceContext::from_lookup(in_session, |k| m.get(k).cloned())
    }

    #[test]
    fn outside_a_session_the_variables_are_the_context() {
        let c = ctx(
            false,
            &[
                ("AWS_PROFILE", "p1"),
                ("AWS_ACCESS_KEY_ID", "AKIA1"),
                ("ELHAZ_SOURCE_AWS_PROFILE", "ignored"),
            ],
        );
        assert_eq!(c.get("AWS_PROFILE"), Some("p1"));
        assert_eq!(c.get("AWS_ACCESS_KEY_ID"), Some("AKIA1"));
    }

    #[test]
    fn inside_a_session_injected_values_are_never_the_context() {
        let c = ctx(
            true,
            &[
                ("AWS_ACCESS_KEY_ID", "ASIAINJECTED"),
                ("AWS_REGION", "eu-west-1"),
                ("AWS_CONFIG_FILE", "/c"),
                ("ELHAZ_SOURCE_AWS_PROFILE", "p1"),
                ("ELHAZ_SOURCE_AWS_DEFAULT_REGION", ""),
                ("ELHAZ_SOURCE_AWS_SHARED_CREDENTIALS_FILE", ""),
                ("AWS_SHARED_CREDENTIALS_FILE", "/injected"),
            ],
        );
        assert_eq!(c.get("AWS_ACCESS_KEY_ID"), None);
        assert_eq!(c.get("AWS_REGION"), None);
        assert_eq!(c.get("AWS_PROFILE"), Some("p1"));
        assert_eq!(c.get("AWS_CONFIG_FILE"), Some("/c"));
        assert_eq!(c.get("AWS_SHARED_CREDENTIALS_FILE"), None);
        assert_eq!(c.get("AWS_DEFAULT_REGION"), None);
    }

    #[test]
    fn debug_redacts_and_the_hash_tells_contexts_apart() {
        let a = ctx(
            false,
            &[("AWS_SECRET_ACCESS_KEY", "topsecret"), ("AWS_PROFILE", "p")],
        );
        let shown = format!("{a:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(shown.contains("\"p\""), "{shown}");
        let b = ctx(
            false,
            &[("AWS_SECRET_ACCESS_KEY", "other"), ("AWS_PROFILE", "p")],
        );
        assert_ne!(a.keyed_hash(), b.keyed_hash());
        assert_eq!(a.keyed_hash(), a.clone().keyed_hash());
        // Moving a value to another variable is another context.
        let c = ctx(false, &[("AWS_PROFILE", "x")]);
        let d = ctx(false, &[("AWS_DEFAULT_PROFILE", "x")]);
        assert_ne!(c.keyed_hash(), d.keyed_hash());
    }

    #[test]
    fn wire_form_round_trips() {
        let a = ctx(
            false,
            &[("AWS_ACCESS_KEY_ID", "AKIA1"), ("AWS_PROFILE", "p")],
        );
        assert_eq!(SourceContext::from_json(&a.to_json()).unwrap(), a);
        assert!(SourceContext::from_json(&serde_json::json!({"AWS_PROFILE": 1})).is_err());
        assert!(SourceContext::from_json(&serde_json::json!([])).is_err());
    }
}
