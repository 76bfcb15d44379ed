//! One file per command. Each turns its arguments into calls to the broker, the config
//! store or the shell scripts, and returns the process exit code. This layer alone
//! prompts, spins and prints; nothing below it knows the terminal.

pub(crate) mod completions;

pub use completions::answer_completion_request;
pub(crate) mod asking;
pub(crate) mod config;
pub(crate) mod daemon;
pub(crate) mod eks;
pub(crate) mod exec;
pub(crate) mod export;
pub(crate) mod follow;
pub(crate) mod hook;
pub(crate) mod line;
pub(crate) mod login;
pub(crate) mod output;
pub(crate) mod pin;
pub(crate) mod prompt;
pub(crate) mod shell;
pub(crate) mod spinner;
pub(crate) mod sso;
pub(crate) mod table;
pub(crate) mod use_;
pub(crate) mod whoami;

use std::io::IsTerminal;

pub(crate) use output::{obscure, print_json};

use crate::broker::Broker;
use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::{Paths, Store};
use crate::context::CallerContext;
use crate::credentials::Served;
use crate::credentials::policy::Policy;
use crate::daemon::client::Client;
use crate::daemon::start::DaemonArgs;
use crate::error::Result;
use crate::error::display_path;
use asking::Asking;

/// What every command may need, resolved once from the global flags, and the caller
/// main captured at start.
pub struct Context {
    pub global: GlobalArgs,
    pub paths: Paths,
    pub policy: Policy,
    pub caller: CallerContext,
}

impl Context {
    pub fn new(global: GlobalArgs, caller: CallerContext) -> Result<Context> {
        let paths = Paths::resolve(
            global.config_dir.clone(),
            global.socket_path.clone(),
            global.logging_path.clone(),
        )?;
        Ok(Context {
            global,
            paths,
            policy: Policy::from_env()?,
            caller,
        })
    }

    pub fn store(&self) -> Store {
        Store::new(&self.paths.config_dir)
    }

    pub fn client(&self) -> Client {
        Client::new(&self.paths.socket, self.global.client_timeout.duration())
    }

    pub fn daemon_args(&self) -> DaemonArgs {
        DaemonArgs {
            config_dir: self.paths.config_dir.clone(),
            socket: self.paths.socket.clone(),
            log: self.paths.log.clone(),
            backlog: self.global.max_unix_socket_connections,
            cache_size: self.global.max_daemon_cache_size,
        }
    }

    /// The daemon (started on demand), or the engine in this process with --no-daemon;
    /// asking on the terminal for what it needs.
    pub(crate) fn broker(&self) -> Asking {
        let caller = self.caller.clone();
        Asking(if self.global.no_daemon {
            Broker::in_process(self.store(), caller)
        } else {
            Broker::daemon(
                self.client(),
                Some(self.daemon_args()),
                announce_start,
                caller,
            )
        })
    }

    /// The broker for NAME: [`Context::broker`]'s, except that a NAME whose source is
    /// a `credential_process` helper is answered in this process, where the helper gets
    /// the caller's environment as the SDKs give it (the daemon's is another's).
    pub(crate) fn broker_for(&self, name: &str) -> Asking {
        if !self.global.no_daemon
            && crate::credentials::engine::runs_helper(&self.store(), name, &self.caller.source)
        {
            tracing::debug!(
                name,
                "its source is a credential_process: answered in this process"
            );
            return Asking(Broker::in_process(self.store(), self.caller.clone()));
        }
        self.broker()
    }

    /// NAME's credentials with at least `min_remaining` seconds left, from the broker,
    /// with a spinner on a terminal while it takes time.
    pub fn credentials(&self, name: &str, min_remaining: i64) -> Result<Served> {
        let served = crate::cmd::spinner::spin(&format!("getting credentials for {name}"), || {
            self.broker_for(name).credentials(name, min_remaining)
        })?;
        relay_notes(&served);
        Ok(served)
    }

    /// STS GetCallerIdentity as NAME, with the same spinner.
    pub fn whoami(&self, name: &str) -> Result<crate::credentials::Identity> {
        crate::cmd::spinner::spin(&format!("asking STS who {name} is"), || {
            self.broker_for(name).whoami(name)
        })
    }

    /// NAME from the arguments, else a picker on a terminal.
    pub fn name(&self, name: Option<&str>) -> Result<String> {
        prompt::name_or_pick(&self.store(), name, &self.caller.source)
    }

    /// Whether NAME is a config or a profile of the caller's AWS files, read here
    /// without asking AWS or the daemon: the error names the closest names.
    pub(crate) fn check_name(&self, name: &str) -> Result<()> {
        let store = self.store();
        crate::broker::runtime()?
            .block_on(crate::config::resolve(&store, name, &self.caller.source))
            .map(|_| ())
    }
}

/// The one line users see when a command starts the daemon for them.
fn announce_start(args: &DaemonArgs) {
    eprintln!(
        "elhaz: started the daemon (socket {}, log {})",
        display_path(&args.socket),
        display_path(&args.log)
    );
}

/// Whether stdout goes to a terminal and colour is wanted (NO_COLOR unset).
pub fn color_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Runs the parsed command line for `caller` (captured at start); returns the exit
/// code.
pub fn run(cli: Cli, caller: CallerContext) -> Result<i32> {
    // `hook` and `completions` print fixed text: they must work whatever the
    // environment holds (a bad ELHAZ_REFRESH_WINDOW must not break a shell's rc file).
    // `hook --refresh` builds its own context and makes a bad setting its warning.
    let command = match cli.command {
        Command::Hook(a) => return hook::run(a, cli.global, caller),
        Command::Completions(a) => return completions::run(a),
        Command::Globals => return print_globals(),
        other => other,
    };
    let ctx = Context::new(cli.global, caller)?;
    match command {
        Command::Hook(_) | Command::Completions(_) | Command::Globals => {
            unreachable!("handled above")
        }
        Command::Exec(a) => exec::run(a, &ctx),
        Command::Shell(a) => shell::run(a, &ctx),
        Command::Export(a) => export::run(a, &ctx),
        Command::Whoami(a) => whoami::run(a, &ctx),
        Command::Use(a) => use_::run(a, &ctx),
        Command::Login(a) => login::run(a, &ctx),
        Command::Config(c) => config::run(c, &ctx),
        Command::Daemon(c) => daemon::run(c, &ctx),
        Command::Sso(c) => sso::run(c, &ctx),
        Command::Eks(c) => eks::run(c, &ctx),
        Command::Allow(a) => pin::allow(a, &ctx),
        Command::Deny(a) => pin::deny(a, &ctx),
        Command::Pin(a) => pin::pin(a, &ctx),
    }
}

/// `elhaz globals`: what `elhaz help globals` prints.
fn print_globals() -> Result<i32> {
    let mut cmd = crate::cli::command();
    if let Some(globals) = cmd.find_subcommand_mut("globals") {
        globals
            .print_long_help()
            .map_err(|e| crate::error::Error::other(format!("cannot write to stdout: {e}")))?;
    }
    Ok(0)
}

/// What the daemon's helpers said on stderr, on ours (escaped again: it came over a
/// socket).
pub(crate) fn relay_notes(served: &Served) {
    for note in &served.notes {
        eprintln!("elhaz: {}", crate::terminal::escape_controls(note));
    }
}
