//! The live completers for NAME: what an argument completes is tagged on it
//! ([`Completes`]), and [`completing_names`] gives each tagged argument a completer
//! reading the caller's files at completion time.

use std::ffi::OsStr;
use std::sync::Arc;

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use super::Cli;
use crate::config::resolve::all_names;
use crate::config::{AwsProfiles, Paths, Store};
use crate::context::SourceContext;
use crate::terminal::{escape_controls, is_unsafe_char};

/// What an argument's value completes to, tagged on the argument (`add =
/// Completes::Names`); [`completing_names`] turns the tag into a completer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completes {
    /// Configs and the AWS profiles that are NAMEs (exec, shell, export...).
    Names,
    /// Configs only (config get, meta, update, remove).
    Configs,
    /// SSO sessions: the `[sso-session]` sections and the legacy SSO profiles (sso
    /// login, logout, roles, sync).
    SsoSessions,
}

impl clap::builder::ArgExt for Completes {}

/// The command line for the completion scripts: each tagged argument completed from
/// the AWS files of `source` (the caller's context captured at start, which inside a
/// session comes from the `ELHAZ_SOURCE_*` the session carries).
pub(crate) fn completing_names(source: &SourceContext) -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // The deferred subcommands get their arguments here.
    cmd.build();
    with_completers(cmd, &Arc::new(source.clone()))
}

/// `cmd` and its subcommands, each tagged argument given the completer its tag names,
/// reading `source`.
fn with_completers(cmd: clap::Command, source: &Arc<SourceContext>) -> clap::Command {
    cmd.mut_args(|arg| {
        let Some(kind) = arg.get::<Completes>().copied() else {
            return arg;
        };
        let source = Arc::clone(source);
        arg.add(ArgValueCompleter::new(move |current: &OsStr| {
            candidates(kind, current, &source)
        }))
    })
    .mut_subcommands(|sub| with_completers(sub, source))
}

/// What `kind` offers for a word starting with `current`, each with what it is.
pub(crate) fn candidates(
    kind: Completes,
    current: &OsStr,
    source: &SourceContext,
) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let found = match kind {
        Completes::Names => names_in(source),
        Completes::Configs => configs_in(),
        Completes::SsoSessions => sso_sessions_in(source),
    };
    // Names and descriptions come from files: a name a terminal would obey cannot be
    // offered as typed text, and a description is shown, never obeyed.
    found
        .into_iter()
        .filter(|(name, _)| name.starts_with(prefix.as_ref()))
        .filter(|(name, _)| !name.chars().any(is_unsafe_char))
        .map(|(name, help)| {
            let help = escape_controls(&help).into_owned();
            CompletionCandidate::new(name).help(Some(help.into()))
        })
        .collect()
}

/// The config store, as the command would find it (ELHAZ_CONFIG_DIR or the default).
fn store() -> Option<Store> {
    let dir = std::env::var_os("ELHAZ_CONFIG_DIR").map(Into::into);
    let paths = Paths::resolve(dir, None, None).ok()?;
    Some(Store::new(&paths.config_dir))
}

/// What a config is, beside its name: `config`, or `config: ` and its description.
fn config_help(store: &Store, name: &str) -> String {
    let description = store.load(name).ok().and_then(|c| {
        let first = c.description()?.lines().next()?.trim().to_string();
        (!first.is_empty()).then_some(first)
    });
    match description {
        Some(d) => format!("config: {d}"),
        None => "config".to_string(),
    }
}

/// Configs (with their description) and the AWS profiles of `source`'s files that are
/// NAMEs (with their kind), as `exec NAME` takes them.
fn names_in(source: &SourceContext) -> Vec<(String, String)> {
    let Some(store) = store() else {
        return Vec::new();
    };
    let profiles = AwsProfiles::load_sync(source).unwrap_or_default();
    let configs = store.names().unwrap_or_default();
    all_names(&store, &profiles)
        .into_iter()
        .map(|n| {
            let help = if configs.contains(&n) {
                config_help(&store, &n)
            } else {
                profiles
                    .get(&n)
                    .map(|p| format!("{} profile", p.kind()))
                    .unwrap_or_default()
            };
            (n, help)
        })
        .collect()
}

/// The configs, with their description.
fn configs_in() -> Vec<(String, String)> {
    let Some(store) = store() else {
        return Vec::new();
    };
    let names = store.names().unwrap_or_default();
    names
        .into_iter()
        .map(|n| {
            let help = config_help(&store, &n);
            (n, help)
        })
        .collect()
}

/// The SSO sessions of `source`'s AWS config file a user may name, with their start
/// URL: as `sso login NAME` resolves them.
fn sso_sessions_in(source: &SourceContext) -> Vec<(String, String)> {
    crate::sso::session::labels(source)
        .unwrap_or_default()
        .into_iter()
        .map(|(label, what)| {
            let what = what.split_whitespace().collect::<Vec<_>>().join(" ");
            (label, what)
        })
        .collect()
}
