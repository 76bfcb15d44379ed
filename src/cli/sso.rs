//! `elhaz sso ...`: its subcommands.

use super::*;

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
    #[arg(value_name = "NAME", add = Completes::SsoSessions)]
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
    #[arg(value_name = "NAME", conflicts_with = "all", add = Completes::SsoSessions)]
    pub name: Option<String>,

    /// Log out of every session in the token cache
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RolesArgs {
    /// The SSO session: an [sso-session] name, or a profile that uses one
    #[arg(value_name = "NAME", add = Completes::SsoSessions)]
    pub name: Option<String>,

    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,

    /// Use the account/role list cached by an earlier run when younger than this
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub max_age: crate::duration::Seconds,

    /// Ask the portal again, whatever the cache holds
    #[arg(long)]
    pub refresh: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The SSO session: an [sso-session] name, or a profile that uses one
    #[arg(value_name = "NAME", add = Completes::SsoSessions)]
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

    /// Use the account/role list cached by an earlier run when younger than this
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub max_age: crate::duration::Seconds,

    /// Ask the portal again, whatever the cache holds
    #[arg(long)]
    pub refresh: bool,
}
