//! Placeholder for `elhaz sso roles` (the accounts and roles a session may use).

use clap::Args;

use crate::cmd::Context;
use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct RolesArgs {
    /// The SSO session
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn run(_ctx: &Context, _args: &RolesArgs) -> Result<std::process::ExitCode> {
    Err(Error::usage(
        "elhaz sso roles is not available in this build",
    ))
}
