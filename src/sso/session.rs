//! NAME -> an `[sso-session NAME]` of the caller's AWS config file (placeholder).

use crate::context::SourceContext;
use crate::error::{Error, Result};

#[derive(Clone, Debug)]
#[allow(dead_code)]
pub(crate) struct SsoSession {
    pub(crate) name: Option<String>,
    pub(crate) start_url: String,
    pub(crate) region: String,
    pub(crate) scopes: Vec<String>,
}

impl SsoSession {
    /// What a user types to name it: the session name, or the legacy profile's name.
    pub(crate) fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.start_url)
    }
}

/// Resolves NAME (or the only session when None) from the caller's AWS config file.
pub(crate) fn resolve(_ctx: &crate::cmd::Context, name: Option<&str>) -> Result<SsoSession> {
    let path = SourceContext::caller().config_file();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut sessions: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if let Some(h) = l.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            if let Some(n) = h.trim().strip_prefix("sso-session ") {
                sessions.push((n.trim().to_string(), Vec::new()));
            } else {
                sessions.push((String::new(), Vec::new()));
            }
        } else if let (Some(s), Some((k, v))) = (sessions.last_mut(), l.split_once('=')) {
            s.1.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    sessions.retain(|(n, _)| !n.is_empty());
    let found = match name {
        Some(n) => sessions.into_iter().find(|(s, _)| s == n),
        None if sessions.len() == 1 => sessions.pop(),
        None => None,
    };
    let Some((n, kv)) = found else {
        return Err(Error::config(format!(
            "no [sso-session {}] in {}",
            name.unwrap_or("NAME"),
            crate::error::display_path(&path)
        )));
    };
    let get = |k: &str| kv.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
    Ok(SsoSession {
        start_url: get("sso_start_url").unwrap_or_default(),
        region: get("sso_region").unwrap_or_default(),
        scopes: Vec::new(),
        name: Some(n),
    })
}
