//! The live completer for NAME: configs and AWS profiles, read from the caller's
//! files at completion time.

use super::*;

/// Candidates for NAME, with the AWS files of this process's environment as it is now
/// ([`completing_names`] puts the caller's captured context in its place).
pub(super) fn names(current: &OsStr) -> Vec<CompletionCandidate> {
    names_in(current, &SourceContext::from_process())
}

/// The command line for the completion scripts: NAME completed from the AWS files of
/// `source` (the caller's context captured at start, which inside a session comes
/// from the `ELHAZ_SOURCE_*` the session carries).
pub(crate) fn completing_names(source: &SourceContext) -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // The deferred subcommands get their arguments here.
    cmd.build();
    with_names_in(cmd, &Arc::new(source.clone()))
}

/// `cmd` and its subcommands, each NAME completer replaced by one reading `source`.
fn with_names_in(cmd: clap::Command, source: &Arc<SourceContext>) -> clap::Command {
    cmd.mut_args(|arg| {
        let is_name = arg.get_value_names() == Some(&["NAME".into()][..]);
        if !is_name || arg.get::<ArgValueCompleter>().is_none() {
            return arg;
        }
        let source = Arc::clone(source);
        arg.add(ArgValueCompleter::new(move |current: &OsStr| {
            names_in(current, &source)
        }))
    })
    .mut_subcommands(|sub| with_names_in(sub, source))
}

/// Candidates for NAME: configs (with their description or role) and the AWS profiles
/// of `source`'s files.
fn names_in(current: &OsStr, source: &SourceContext) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let dir = std::env::var_os("ELHAZ_CONFIG_DIR").map(Into::into);
    let Ok(paths) = Paths::resolve(dir, None, None) else {
        return Vec::new();
    };
    let store = Store::new(&paths.config_dir);
    let profiles = AwsProfiles::load_sync(source).unwrap_or_default();
    let configs = store.names().unwrap_or_default();
    all_names(&store, &profiles)
        .into_iter()
        .filter(|n| n.starts_with(prefix.as_ref()))
        .map(|n| {
            let help = if configs.contains(&n) {
                "config".to_string()
            } else {
                profiles
                    .get(&n)
                    .map(|p| format!("profile ({})", p.kind()))
                    .unwrap_or_default()
            };
            CompletionCandidate::new(n).help(Some(help.into()))
        })
        .collect()
}
