//! `elhaz daemon ...`: its subcommands.

use super::*;

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
    /// Print the daemon's log (-f: and what it writes next, until Ctrl-C)
    #[command(after_help = "Examples:
  elhaz daemon logs --tail 20
  elhaz daemon logs -f          # as tail -F: follows the log across rotations")]
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
    /// After the last lines, print what the daemon writes, until Ctrl-C
    #[arg(short, long, conflicts_with = "head")]
    pub follow: bool,
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
