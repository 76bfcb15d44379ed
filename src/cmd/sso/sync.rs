//! Placeholder for `elhaz sso sync` (one AWS CLI profile per account and role).

use clap::Args;

use crate::cmd::Context;
use crate::error::{Error, Result};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The SSO session
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Prefix of the generated profile names
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,

    /// Print the change as a diff, write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Remove the block's profiles that no longer exist
    #[arg(long)]
    pub prune: bool,
}

pub(crate) fn run(_ctx: &Context, _args: &SyncArgs) -> Result<std::process::ExitCode> {
    Err(Error::usage(
        "elhaz sso sync is not available in this build",
    ))
}
