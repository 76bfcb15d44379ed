//! `elhaz use NAME` / `elhaz use --clear`: switches the current shell. The hook's
//! `elhaz` function calls this with --eval and evals what it prints; run directly,
//! it explains how to install the hook.
//!
//! It owns the command; the variables are `crate::env`'s and their shell syntax
//! `crate::shell`'s. The stash of previous values lives in the hooks, not here.

use super::Context;
use crate::cli::UseArgs;
use crate::env::{Delivery, SessionEnv, render_clear};
use crate::error::{Error, Result};
use crate::shell::ShellKind;

pub(crate) fn run(args: UseArgs, ctx: &Context) -> Result<i32> {
    if !args.eval {
        return Err(Error::usage(
            "`elhaz use` needs the shell hook, which is not loaded in this shell",
        )
        .with_hint(
            "add to your rc file: eval \"$(elhaz hook bash)\" (zsh: eval \"$(elhaz hook zsh)\"; fish: elhaz hook fish | source), then open a new shell",
        ));
    }
    let shell = args.shell.unwrap_or_else(ShellKind::from_env);
    if args.clear {
        print!("{}", render_clear(shell));
        return Ok(0);
    }
    let name = ctx.name(args.name.get())?;
    let served = ctx.credentials(&name, 0)?;
    let env = SessionEnv::build(
        &name,
        Delivery::Static(&served.credentials),
        served.region.as_deref(),
        &ctx.policy,
    );
    print!("{}", env.render(shell));
    Ok(0)
}
