//! `elhaz sso`: IAM Identity Center (placeholder with the portal's commands only).

pub(crate) mod roles;
pub(crate) mod sync;

use clap::Subcommand;

use super::Context;
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub enum SsoCommand {
    /// List every account and role the SSO session can use
    Roles(roles::RolesArgs),
    /// Write one AWS CLI profile per account and role into the AWS config file
    Sync(sync::SyncArgs),
}

pub(crate) fn run(c: SsoCommand, ctx: &Context) -> Result<i32> {
    let code = match c {
        SsoCommand::Roles(a) => roles::run(ctx, &a)?,
        SsoCommand::Sync(a) => sync::run(ctx, &a)?,
    };
    Ok(if code == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    })
}
