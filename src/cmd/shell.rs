//! `elhaz shell NAME`: the user's own shell, with credentials and the refresh hook.

use super::Context;
use crate::cli::ShellArgs;
use crate::error::Result;

pub fn run(_args: ShellArgs, _ctx: &Context) -> Result<i32> {
    Err(super::not_implemented("shell"))
}
