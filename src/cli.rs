//! The command line, as clap definitions only, and the live completer for NAME (config
//! and profile names). Behaviour lives in `cmd/`; nothing here imports from it.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};

use crate::config::resolve::all_names;
use crate::config::{AwsProfiles, Paths, Store};
use crate::context::SourceContext;
use crate::duration::Seconds;

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

// A NAME given as a positional argument or, as in the original, with -n/--name. A
// plain comment: with deferred subcommands, a doc comment here would become the
// `about` of every command that flattens this.
#[derive(Debug, Clone, Default, Args)]
pub struct NameArg {
    /// The config or AWS CLI profile (a picker opens when omitted on a terminal)
    #[arg(value_name = "NAME", conflicts_with = "name_flag", add = ArgValueCompleter::new(names))]
    pub name: Option<String>,

    /// The same NAME, spelled as in the original elhaz
    #[arg(
        short = 'n',
        long = "name",
        value_name = "NAME",
        hide_short_help = true
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
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The config or AWS CLI profile (a picker opens when omitted on a terminal)
    #[arg(value_name = "NAME", add = ArgValueCompleter::new(names))]
    pub name: Option<String>,

    /// The same NAME, spelled as in the original elhaz
    #[arg(short = 'n', long = "name", value_name = "NAME", hide_short_help = true, add = ArgValueCompleter::new(names))]
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
        value_name = "CMD"
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
    #[arg(last = true, value_name = "ARGS")]
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
    /// The shell whose hook to print
    #[arg(value_parser = hooked_shell())]
    pub shell: ShellKind,

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

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ConfigCommand {
    /// Create a config from flags, a file, prompts or $EDITOR
    #[command(after_help = "Examples:
  elhaz config add prod --role-arn arn:aws:iam::123456789012:role/Admin --region eu-west-1
  elhaz config add dev --role-arn arn:aws:iam::111111111111:role/Dev --profile my-sso
  elhaz config add ci --from-file ci.yaml
  elhaz config add prod            # asks, on a terminal")]
    Add(ConfigAddArgs),

    /// Print a config as JSON
    #[command(after_help = "Example:
  elhaz config get prod --obscure")]
    Get(ConfigGetArgs),

    /// List configs and AWS CLI profiles
    #[command(after_help = "Example:
  elhaz config list --json")]
    List(JsonFlag),

    /// Print a config's Meta section as JSON
    #[command(after_help = "Example:
  elhaz config meta prod")]
    Meta(NameOnly),

    /// Delete a config
    #[command(after_help = "Example:
  elhaz config remove old --yes")]
    Remove(ConfigRemoveArgs),

    /// Change a config with flags, a file, prompts or $EDITOR
    #[command(after_help = "Examples:
  elhaz config update prod --duration 1h
  elhaz config update prod --editor")]
    Update(ConfigUpdateArgs),
}

#[derive(Debug, Args)]
pub struct NameOnly {
    #[command(flatten)]
    pub name: NameArg,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigGetArgs {
    #[command(flatten)]
    pub name: NameArg,

    /// Replace sensitive values with ***
    #[arg(long)]
    pub obscure: bool,
}

#[derive(Debug, Args)]
pub struct ConfigRemoveArgs {
    #[command(flatten)]
    pub name: NameArg,

    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
}

// The fields a config can be built from. Every flag maps to one YAML key. (A plain
// comment, as on NameArg.)
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFields {
    /// AssumeRole.RoleArn: the role to assume
    #[arg(long, value_name = "ARN", help_heading = "Config fields")]
    pub role_arn: Option<String>,
    /// AssumeRole.RoleSessionName [default: elhaz-USER-TIME]
    #[arg(long, value_name = "NAME", help_heading = "Config fields")]
    pub role_session_name: Option<String>,
    /// AssumeRole.DurationSeconds (900 to 43200, or 1h)
    #[arg(long, value_name = "DURATION", help_heading = "Config fields")]
    pub duration: Option<Seconds>,
    /// AssumeRole.ExternalId
    #[arg(long, value_name = "ID", help_heading = "Config fields")]
    pub external_id: Option<String>,
    /// AssumeRole.SerialNumber: the MFA device ARN
    #[arg(long, value_name = "ARN", help_heading = "Config fields")]
    pub serial_number: Option<String>,
    /// AssumeRole.SourceIdentity
    #[arg(long, value_name = "ID", help_heading = "Config fields")]
    pub source_identity: Option<String>,
    /// AssumeRole.Policy: an inline session policy (JSON text)
    #[arg(long, value_name = "JSON", help_heading = "Config fields")]
    pub policy: Option<String>,
    /// AssumeRole.PolicyArns (repeatable)
    #[arg(
        long = "policy-arn",
        value_name = "ARN",
        help_heading = "Config fields"
    )]
    pub policy_arns: Vec<String>,
    /// AssumeRole.Tags as KEY=VALUE (repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE", help_heading = "Config fields")]
    pub tags: Vec<String>,
    /// AssumeRole.TransitiveTagKeys (repeatable)
    #[arg(
        long = "transitive-tag-key",
        value_name = "KEY",
        help_heading = "Config fields"
    )]
    pub transitive_tag_keys: Vec<String>,
    /// MFA.command: prints the MFA code (run by sh -c)
    #[arg(long, value_name = "COMMAND", help_heading = "Config fields")]
    pub mfa_command: Option<String>,
    /// MFA.timeout
    #[arg(long, value_name = "DURATION", help_heading = "Config fields")]
    pub mfa_timeout: Option<Seconds>,
    /// Session.region_name: the region of the session, also given to commands
    #[arg(long, value_name = "REGION", help_heading = "Config fields")]
    pub region: Option<String>,
    /// Session.profile_name: the AWS CLI profile whose credentials assume the role
    #[arg(long, value_name = "PROFILE", help_heading = "Config fields")]
    pub profile: Option<String>,
    /// STS.region_name: the region of the STS endpoint
    #[arg(long, value_name = "REGION", help_heading = "Config fields")]
    pub sts_region: Option<String>,
    /// STS.endpoint_url
    #[arg(long, value_name = "URL", help_heading = "Config fields")]
    pub sts_endpoint_url: Option<String>,
    /// Meta.description: for people, never sent to AWS
    #[arg(long, value_name = "TEXT", help_heading = "Config fields")]
    pub description: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConfigAddArgs {
    #[command(flatten)]
    pub name: NameArg,

    #[command(flatten)]
    pub fields: ConfigFields,

    /// Read the whole config from a YAML file, or - for stdin
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,

    /// Write the config in $EDITOR
    #[arg(long, conflicts_with = "from_file")]
    pub editor: bool,

    /// Overwrite an existing config
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ConfigUpdateArgs {
    #[command(flatten)]
    pub name: NameArg,

    #[command(flatten)]
    pub fields: ConfigFields,

    /// Replace the whole config with a YAML file, or - for stdin
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,

    /// Edit the config in $EDITOR
    #[arg(long, conflicts_with = "from_file")]
    pub editor: bool,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum DaemonCommand {
    /// Start the daemon in the background (waits up to 5 s for its socket)
    Start,
    /// Run the daemon in the foreground (for systemd or launchd)
    Run,
    /// Ask the daemon to shut down
    Stop,
    /// Ask the daemon to shut down (as the original's kill)
    Kill,
    /// Say whether the daemon runs; exit 1 when it does not
    Status(JsonFlag),
    /// List cached sessions with their time left
    List(JsonFlag),
    /// Add a session to the daemon (prompts for an MFA code here when needed)
    Add(NameOnly),
    /// Drop a session from the daemon
    Remove(NameOnly),
    /// Print the daemon's log
    Logs(LogsArgs),
    /// Force a refresh of one session
    Refresh(NameOnly),
    /// Serve one session, read-only, on an extra socket (for containers and sandboxes)
    #[command(after_help = "Example:
  elhaz daemon share prod --socket /run/user/1000/elhaz-prod.sock --uid 1001")]
    Share(ShareArgs),
    /// Close a socket opened by share
    Unshare(UnshareArgs),
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Print the last N lines
    #[arg(long, value_name = "N", conflicts_with = "head")]
    pub tail: Option<usize>,
    /// Print the first N lines
    #[arg(long, value_name = "N")]
    pub head: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ShareArgs {
    #[command(flatten)]
    pub name: NameArg,
    /// Where the shared socket is created
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// Also let this uid connect
    #[arg(long, value_name = "UID")]
    pub uid: Option<u32>,
    /// Also allow whoami through the share
    #[arg(long)]
    pub whoami: bool,
}

#[derive(Debug, Args)]
pub struct UnshareArgs {
    /// The shared socket to close
    #[arg(value_name = "PATH")]
    pub socket: PathBuf,
}

/// Candidates for NAME, with the AWS files of this process's environment as it is now
/// ([`completing_names`] puts the caller's captured context in its place).
fn names(current: &OsStr) -> Vec<CompletionCandidate> {
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

/// `elhaz sso ...`
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SsoCommand {
    /// Log in to an IAM Identity Center session (PKCE in a browser, or a device code)
    #[command(after_help = "Examples:
  elhaz sso login corp                     # a browser on this machine
  elhaz sso login corp --use-device-code   # over SSH: a URL and a code
  elhaz sso login corp && elhaz sso sync corp

NAME is an [sso-session NAME] of ~/.aws/config, a profile naming one, or a legacy
profile with sso_start_url and sso_region. The token goes to the AWS CLI's cache
(~/.aws/sso/cache), so the AWS CLI v2 and botocore use it too.")]
    Login(SsoLoginArgs),

    /// Log out: the portal's Logout, then the cached token removed
    #[command(after_help = "Examples:
  elhaz sso logout corp
  elhaz sso logout --all")]
    Logout(SsoLogoutArgs),

    /// List the accounts and roles the session may use
    Roles(RolesArgs),

    /// Write one AWS CLI profile per account and role into ~/.aws/config
    Sync(SyncArgs),
}

#[derive(Debug, Args)]
pub struct SsoLoginArgs {
    /// The SSO session (a picker opens when omitted on a terminal)
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Log in with a URL and a code to confirm (the default over SSH or without a display)
    #[arg(long)]
    pub use_device_code: bool,

    /// Print the URL instead of starting a browser
    #[arg(long)]
    pub no_browser: bool,
}

#[derive(Debug, Args)]
pub struct SsoLogoutArgs {
    /// The SSO session (a picker opens when omitted on a terminal)
    #[arg(value_name = "NAME", conflicts_with = "all")]
    pub name: Option<String>,

    /// Log out of every session in the token cache
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RolesArgs {
    /// The SSO session: an [sso-session] name, or a profile that uses one
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The SSO session: an [sso-session] name, or a profile that uses one
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Put P in front of every profile name (P-account-role)
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,

    /// Print the change as a diff and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Remove the profiles the portal no longer lists (kept by default)
    #[arg(long)]
    pub prune: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
