//! The command line, as clap definitions only, and the live completers for NAME
//! (configs, profiles, SSO sessions). Behaviour lives in `cmd/`; nothing here imports
//! from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::Seconds;

mod complete;
mod config;
mod daemon;
mod eks;
mod pin;
mod sso;

pub(crate) use complete::Completes;
pub(crate) use complete::completing_names;
pub use config::*;
pub use daemon::*;
pub use eks::*;
pub use pin::*;
pub use sso::*;

#[derive(Debug, Parser)]
#[command(
    name = "elhaz",
    version,
    about = "A local AWS temporary-credential broker with shell integration",
    long_about = "elhaz turns a config or AWS CLI profile NAME into fresh temporary AWS \
credentials, and hands them to commands, shells and SDKs. A per-user daemon caches \
sessions and refreshes them ahead of expiry; it is started on first use.",
    after_help = "Examples:
  elhaz exec prod -- terraform plan
  elhaz shell staging
  eval \"$(elhaz hook bash)\"        # in ~/.bashrc
  elhaz config add prod --role-arn arn:aws:iam::123456789012:role/Admin",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every command; the CLI forwards them to a daemon it starts. In
/// every command's help they come last, under their own heading, as cargo's do.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Directory holding one NAME.yaml per config [default: ~/.elhaz/configs]
    #[arg(long, global = true, env = "ELHAZ_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,

    /// The daemon's Unix socket [default: ~/.elhaz/sock/daemon.sock]
    #[arg(long, global = true, env = "ELHAZ_SOCKET_PATH", value_name = "PATH")]
    pub socket_path: Option<PathBuf>,

    /// The daemon's log file [default: ~/.elhaz/logs/daemon.log]
    #[arg(long, global = true, env = "ELHAZ_LOGGING_PATH", value_name = "PATH")]
    pub logging_path: Option<PathBuf>,

    /// Listen backlog of the daemon's socket
    #[arg(
        long,
        global = true,
        env = "ELHAZ_MAX_UNIX_SOCKET_CONNECTIONS",
        value_name = "N",
        default_value_t = 5
    )]
    pub max_unix_socket_connections: u32,

    /// How many sessions the daemon keeps (least recently used are dropped)
    #[arg(
        long,
        global = true,
        env = "ELHAZ_MAX_DAEMON_CACHE_SIZE",
        value_name = "N",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_daemon_cache_size: u32,

    /// How long the client waits for the daemon (seconds, or 30s, 1m)
    #[arg(
        long,
        global = true,
        env = "ELHAZ_CLIENT_TIMEOUT",
        value_name = "DURATION",
        default_value = "30"
    )]
    pub client_timeout: Seconds,

    /// Do not use the daemon: get credentials in this process
    #[arg(long, global = true, env = "ELHAZ_NO_DAEMON", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_daemon: bool,

    /// Log more to stderr (-v info, -vv debug); ELHAZ_LOG takes a tracing filter
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// What each command's own help says of the global options: one line, since
/// `elhaz --help` and `elhaz help globals` show them in full.
const COMMAND_HELP: &str = "{before-help}{about-with-newline}
{usage-heading} {usage}

{all-args}

Global options: see elhaz --help{after-help}";

/// [`command`] when `args` may ask for help (`-h`, `--help`, `help`), else [`Cli`]'s
/// command as it is: quieting every subcommand's help builds the whole tree up front,
/// about half a millisecond of every start, and only help shows the difference (main
/// parses a failed line again with [`command`], for the help an error shows).
pub fn command_for(args: &[std::ffi::OsString]) -> clap::Command {
    let asks_help = args.iter().skip(1).take_while(|a| *a != "--").any(|a| {
        let a = a.to_string_lossy();
        a == "help"
            || a == "--help"
            || (a.starts_with('-') && !a.starts_with("--") && a.contains('h'))
    });
    if asks_help {
        command()
    } else {
        <Cli as clap::CommandFactory>::command()
    }
}

/// The command line as main parses it: [`Cli`]'s, with the global options shown in
/// full only at the top (`elhaz --help`) and in `elhaz help globals`; every other
/// command's help names them in one line. They are still taken anywhere on the line.
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    let globals: Vec<clap::Id> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.get_id().clone())
        .collect();
    for sub in cmd.get_subcommands_mut() {
        if sub.get_name() != "globals" {
            quiet_globals(sub, &globals);
        }
    }
    cmd
}

/// Hides the (propagated) `globals` in `cmd`'s help and its subcommands', and says
/// where they are instead. `mut_args` keeps the arguments in place: the built command
/// still parses them.
fn quiet_globals(cmd: &mut clap::Command, globals: &[clap::Id]) {
    // clap's own `help` subcommand prints others' help and has none of the globals.
    if cmd.get_name() == "help" {
        return;
    }
    *cmd = std::mem::take(cmd)
        .mut_args(|a| {
            if globals.contains(a.get_id()) {
                a.hide(true)
            } else {
                a
            }
        })
        .help_template(COMMAND_HELP);
    for sub in cmd.get_subcommands_mut() {
        quiet_globals(sub, globals);
    }
}

/// A mistyped command, with clap's suggestions ranked by edit distance (closest
/// first) and only the closest kept: `shel` suggests `shell`, not `use`.
pub fn rank_suggestions(mut err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let typed = match err.get(ContextKind::InvalidSubcommand) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => return err,
    };
    let Some(ContextValue::Strings(found)) = err.get(ContextKind::SuggestedSubcommand) else {
        return err;
    };
    let mut ranked: Vec<(usize, String)> = found
        .iter()
        .map(|s| (strsim::damerau_levenshtein(&typed, s), s.clone()))
        .collect();
    ranked.sort();
    let best = ranked.first().map(|(d, _)| *d).unwrap_or_default();
    let closest = ranked
        .into_iter()
        .filter(|(d, _)| *d <= best + 1)
        .map(|(_, s)| s)
        .collect();
    err.insert(
        ContextKind::SuggestedSubcommand,
        ContextValue::Strings(closest),
    );
    err
}

/// The global options' `ELHAZ_*` variables that parsing must not see: those set empty
/// (unset, as every `ELHAZ_*` variable is when empty) and those whose value their
/// option refuses. For the first refused one whose option is not among `args` (the
/// option wins over its variable), the error that names the variable, not the option:
/// main reports it for every command but `hook` and `completions`, which must work
/// whatever the environment holds.
pub fn check_variables(
    cmd: &clap::Command,
    args: &[std::ffi::OsString],
) -> (Vec<std::ffi::OsString>, Option<crate::error::Error>) {
    let given: Vec<&str> = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .filter_map(|a| a.to_str())
        .collect();
    let (mut unset, mut refused) = (Vec::new(), None);
    for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
        let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let Some(value) = std::env::var_os(var) else {
            continue;
        };
        if value.to_string_lossy().trim().is_empty() {
            unset.push(var.to_os_string());
            continue;
        }
        // The option alone, reading its variable as clap does.
        let Err(e) = clap::Command::new("elhaz")
            .arg(arg.clone())
            .try_get_matches_from(["elhaz"])
        else {
            continue;
        };
        unset.push(var.to_os_string());
        let flag = format!("--{long}");
        let overridden = given
            .iter()
            .any(|a| *a == flag || a.strip_prefix(&flag).is_some_and(|r| r.starts_with('=')));
        if refused.is_none() && !overridden {
            let why = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.kind().to_string());
            let var = var.to_string_lossy();
            let takes = if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
                " to 1 or 0 (true or false, yes or no, on or off)".to_string()
            } else {
                let default = arg
                    .get_default_values()
                    .first()
                    .map(|d| format!(" (default {})", d.to_string_lossy()))
                    .unwrap_or_default();
                format!(" to what {flag} takes{default}")
            };
            let shown = crate::terminal::escape_controls(&value.to_string_lossy()).into_owned();
            refused = Some(
                crate::error::Error::usage(format!("{var}={shown:?}: {why}"))
                    .with_hint(format!("set {var}{takes}, or unset it")),
            );
        }
    }
    (unset, refused)
}

// A NAME given as a positional argument or, as in the original, with -n/--name. A
// plain comment: with deferred subcommands, a doc comment here would become the
// `about` of every command that flattens this.
#[derive(Debug, Clone, Default, Args)]
pub struct NameArg {
    /// The config or AWS CLI profile (a picker opens when omitted on a terminal)
    #[arg(value_name = "NAME", conflicts_with = "name_flag", add = Completes::Names)]
    pub name: Option<String>,

    /// The same NAME, spelled as in the original elhaz
    #[arg(
        short = 'n',
        long = "name",
        value_name = "NAME",
        hide_short_help = true,
        add = Completes::Names
    )]
    pub name_flag: Option<String>,
}

impl NameArg {
    pub fn get(&self) -> Option<&str> {
        self.name.as_deref().or(self.name_flag.as_deref())
    }
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Run a command with fresh credentials in its environment
    #[command(after_help = "Examples:
  elhaz exec prod -- terraform plan
  elhaz exec -n prod -- aws s3 ls
  elhaz exec --server prod -- terraform apply   # outlives the credentials

The command replaces elhaz (same PID, signals, TTY and exit status).")]
    Exec(ExecArgs),

    /// Open your own shell, with your rc files, holding the credentials
    #[command(after_help = "Examples:
  elhaz shell staging
  elhaz shell prod --shell /bin/zsh

The hook refreshes the credentials at the prompt before they expire.")]
    Shell(ShellArgs),

    /// Print the credentials as JSON, shell code or a credential_process answer
    #[command(after_help = "Examples:
  elhaz export prod                           # JSON
  eval \"$(elhaz export prod -f env)\"
  elhaz export prod -f env --shell fish | source
  credential_process = elhaz export prod -f credential-process   # in ~/.aws/config")]
    Export(ExportArgs),

    /// Show who the credentials belong to (STS GetCallerIdentity), as JSON
    #[command(after_help = "Example:
  elhaz whoami prod --obscure")]
    Whoami(WhoamiArgs),

    /// Print the prompt hook for a shell, to eval in its rc file
    #[command(after_help = "Examples:
  eval \"$(elhaz hook)\"          # the shell $SHELL names
  eval \"$(elhaz hook bash)\"     # ~/.bashrc
  eval \"$(elhaz hook zsh)\"      # ~/.zshrc
  elhaz hook fish | source      # ~/.config/fish/config.fish")]
    Hook(HookArgs),

    /// Switch the current shell to NAME (needs the hook), or --clear it
    #[command(after_help = "Examples:
  elhaz use prod
  elhaz use --clear")]
    Use(UseArgs),

    /// Open the AWS console signed in as the session's role
    #[command(after_help = "Examples:
  elhaz login prod
  elhaz login prod --stdout --region eu-west-1")]
    Login(LoginArgs),

    /// Print a completion script for a shell
    #[command(after_help = "Example:
  elhaz completions bash > ~/.local/share/bash-completion/completions/elhaz")]
    Completions(CompletionsArgs),

    /// Manage elhaz configs (YAML files in the config directory)
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Manage the per-user daemon that caches and refreshes sessions
    #[command(subcommand)]
    Daemon(DaemonCommand),

    /// IAM Identity Center: log in and out, list roles, write profiles
    #[command(subcommand)]
    Sso(SsoCommand),

    /// Amazon EKS: kubectl's token from the session, and the kubeconfig entries for it
    #[command(subcommand)]
    Eks(EksCommand),

    /// The options every command takes, in full
    #[command(
        hide = true,
        disable_version_flag = true,
        help_template = "{about-with-newline}\n{all-args}{after-help}",
        after_help = "Each is given before or after the command (elhaz --no-daemon exec prod, \
elhaz exec prod --no-daemon), or set in its ELHAZ_* variable."
    )]
    Globals,

    /// Trust the project pin (.elhaz.yaml) of DIR, as it is now
    #[command(after_help = "Examples:
  elhaz allow
  elhaz allow ~/src/prod-infra

A pin is obeyed only once allowed; any change to it needs another allow.")]
    Allow(AllowArgs),

    /// Forget the project pin of DIR: it is no longer obeyed
    #[command(after_help = "Example:
  elhaz deny")]
    Deny(DenyArgs),

    /// Pin NAME to the current directory (writes and allows .elhaz.yaml), or --show the pin here
    #[command(after_help = "Examples:
  elhaz pin prod --region eu-west-1
  elhaz pin --show

Commands without NAME (exec, shell, export, whoami, login, eks token) then use it,
and the shell hook switches to it on cd.")]
    Pin(PinArgs),
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The config or AWS CLI profile (a picker opens when omitted on a terminal)
    #[arg(value_name = "NAME", add = Completes::Names)]
    pub name: Option<String>,

    /// The same NAME, spelled as in the original elhaz
    #[arg(short = 'n', long = "name", value_name = "NAME", hide_short_help = true, add = Completes::Names)]
    pub name_flag: Option<String>,

    /// Refresh first unless at least this much lifetime remains (capped at half the lifetime)
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub min_remaining: Seconds,

    /// Set AWS_REGION and AWS_DEFAULT_REGION to this region
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Stay the parent and serve refreshed credentials over a loopback container endpoint
    #[arg(long)]
    pub server: bool,

    /// The command and its arguments (after --, or after NAME)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD",
        value_hint = clap::ValueHint::CommandWithArguments
    )]
    pub command: Vec<std::ffi::OsString>,
}

impl ExecArgs {
    /// Sorts NAME from CMD. clap fills positionals in order, so in `exec -- cmd` and
    /// `exec -n prod -- cmd` it takes `cmd` as NAME; `raw` (the process arguments)
    /// tells: everything after the first `--` is CMD.
    pub fn normalize(&mut self, raw: &[std::ffi::OsString]) {
        let after_dashes = raw
            .iter()
            .position(|a| a == "--")
            .map(|i| raw.len() - i - 1);
        let name_is_cmd = match after_dashes {
            Some(n) => self.name.is_some() && n == self.command.len() + 1,
            None => self.name.is_some() && self.name_flag.is_some(),
        };
        if name_is_cmd && let Some(n) = self.name.take() {
            self.command.insert(0, n.into());
        }
    }

    pub fn name(&self) -> Option<&str> {
        self.name_flag.as_deref().or(self.name.as_deref())
    }
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub name: NameArg,

    /// The shell to start [default: $SHELL, else your login shell]
    #[arg(long, value_name = "PATH")]
    pub shell: Option<PathBuf>,

    /// Allow starting from inside another elhaz session
    #[arg(long)]
    pub nested: bool,

    /// Set AWS_REGION and AWS_DEFAULT_REGION to this region
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Serve refreshed credentials over a loopback container endpoint
    #[arg(long)]
    pub server: bool,

    /// Arguments passed to the shell, after --
    #[arg(last = true, value_name = "ARGS", value_hint = clap::ValueHint::AnyPath)]
    pub args: Vec<std::ffi::OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// {access_key, secret_key, token, expiry_time}
    Json,
    /// Shell code to eval
    Env,
    /// The AWS credential_process answer
    CredentialProcess,
}

use crate::shell::ShellKind;

/// `elhaz hook`'s argument: a [`ShellKind`] that has a hook (never `posix`).
fn hooked_shell() -> impl clap::builder::TypedValueParser<Value = ShellKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(ShellKind::HOOKED)
        .map(|s| ShellKind::parse_hooked(&s).unwrap_or(ShellKind::Posix))
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub name: NameArg,

    /// Output format
    #[arg(short = 'f', long, value_enum, default_value = "json")]
    pub format: ExportFormat,

    /// The shell that evals `-f env` output [default: from $SHELL]
    #[arg(long, value_enum)]
    pub shell: Option<ShellKind>,

    /// Replace sensitive values with ***
    #[arg(long)]
    pub obscure: bool,

    /// Refresh first unless this much lifetime remains [default: 15m for credential-process]
    #[arg(long, value_name = "DURATION")]
    pub min_remaining: Option<Seconds>,

    /// Set AWS_REGION and AWS_DEFAULT_REGION (env format) to this region
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Ask this (shared) socket instead of the daemon's own; NAME is then optional
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub name: NameArg,

    /// Replace the account, ARN and user id with ***
    #[arg(long)]
    pub obscure: bool,
}

#[derive(Debug, Args)]
pub struct HookArgs {
    /// The shell whose hook to print [default: $SHELL's]
    #[arg(value_parser = hooked_shell())]
    pub shell: Option<ShellKind>,

    /// Print the code that refreshes this shell's session (run by the hook)
    #[arg(long, hide = true)]
    pub refresh: bool,

    /// What the hook has warned about so far (its own state, set by the hook)
    #[arg(
        long,
        hide = true,
        value_name = "STATE",
        requires = "refresh",
        allow_hyphen_values = true
    )]
    pub warned: Option<String>,

    /// The nearest pin file, which changed since the last prompt (empty: none)
    #[arg(long, hide = true, value_name = "PATH", conflicts_with = "refresh")]
    pub pin: Option<String>,

    /// The NAME a pin switched this shell to (the hook's state)
    #[arg(long, hide = true, value_name = "NAME", requires = "pin")]
    pub pinned: Option<String>,

    /// The pin in whose tree `use NAME` was run (the hook's state)
    #[arg(long, hide = true, value_name = "PATH", requires = "pin")]
    pub use_tree: Option<String>,

    /// Whether `use` saved this shell's variables: non-empty (the hook's state)
    #[arg(long, hide = true, value_name = "SET", requires = "pin")]
    pub stashed: Option<String>,

    /// The NAME the shell used before a pin switched it (the hook's state)
    #[arg(long, hide = true, value_name = "NAME", requires = "pin")]
    pub before_pin: Option<String>,
}

#[derive(Debug, Args)]
pub struct UseArgs {
    #[command(flatten)]
    pub name: NameArg,

    /// Remove the credentials from the current shell
    #[arg(long, conflicts_with_all = ["name", "name_flag"])]
    pub clear: bool,

    /// The shell that evals the output (set by the hook)
    #[arg(long, value_enum, hide = true)]
    pub shell: Option<ShellKind>,

    /// Print shell code to eval (set by the hook)
    #[arg(long, hide = true)]
    pub eval: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub name: NameArg,

    /// Print the sign-in URL instead of opening a browser
    #[arg(long)]
    pub stdout: bool,

    /// The console region [default: the config's or profile's]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// The console page to open [default: the console home]
    #[arg(long, value_name = "URL")]
    pub destination: Option<String>,

    /// The console session's length, 15m to 12h
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<Seconds>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::SourceContext;

    /// Inside a session the environment's AWS files may be the session's: NAME
    /// completes from the files of the context it is given (the caller's).
    #[test]
    fn names_complete_from_the_given_context() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let profile = "[profile only-in-the-callers-file]\ncredential_process = true\n";
        std::fs::write(&config, profile).unwrap();
        let config = config.display().to_string();
        let source =
            SourceContext::from_lookup(false, |k| (k == "AWS_CONFIG_FILE").then(|| config.clone()));
        let mut cmd = completing_names(&source);
        for line in [
            &["elhaz", "exec", "only-in"][..],
            &["elhaz", "whoami", "only-in"],
        ] {
            let args = line.iter().map(std::ffi::OsString::from).collect();
            let found = clap_complete::engine::complete(&mut cmd, args, 2, None).unwrap();
            let values: Vec<_> = found.iter().map(|c| c.get_value().to_owned()).collect();
            assert_eq!(values, ["only-in-the-callers-file"], "{line:?}");
        }
    }

    /// sso login, logout, roles and sync complete the SSO sessions of the caller's AWS
    /// config file (sections and legacy profiles), never configs or other profiles.
    #[test]
    fn sso_sessions_complete_from_the_given_context() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "[sso-session callers-corp]\nsso_region = us-east-1\nsso_start_url = https://c.awsapps.com/start\n\
             [profile callers-uses-corp]\nsso_session = callers-corp\n\
             [profile callers-legacy]\nsso_start_url = https://l.awsapps.com/start\nsso_region = us-east-1\n\
             [profile callers-role]\nrole_arn = arn:aws:iam::123456789012:role/R\ncredential_source = Environment\n",
        )
        .unwrap();
        let config = config.display().to_string();
        let source =
            SourceContext::from_lookup(false, |k| (k == "AWS_CONFIG_FILE").then(|| config.clone()));
        let mut cmd = completing_names(&source);
        for sub in ["login", "logout", "roles", "sync"] {
            let args = ["elhaz", "sso", sub, "callers-"]
                .iter()
                .map(std::ffi::OsString::from)
                .collect();
            let found = clap_complete::engine::complete(&mut cmd, args, 3, None).unwrap();
            let got: Vec<_> = found
                .iter()
                .map(|c| {
                    let help = c.get_help().map(|h| h.to_string()).unwrap_or_default();
                    format!("{} ({help})", c.get_value().to_string_lossy())
                })
                .collect();
            assert_eq!(
                got,
                [
                    "callers-corp (sso-session https://c.awsapps.com/start)",
                    "callers-legacy (legacy profile https://l.awsapps.com/start)"
                ],
                "sso {sub}"
            );
        }
    }
}
