//! `elhaz login NAME`: the AWS console, signed in as the session's role.

use super::Context;
use crate::cli::LoginArgs;
use crate::error::Result;

pub fn run(_args: LoginArgs, _ctx: &Context) -> Result<i32> {
    Err(super::not_implemented("login"))
}
