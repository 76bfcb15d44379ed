//! `elhaz exec NAME -- CMD...`: replaces itself with CMD, holding fresh credentials.
//!
//! It owns the command's arguments only: finding and starting CMD is
//! `crate::launch`'s, the environment `crate::env`'s.

use super::Context;
use crate::cli::ExecArgs;
use crate::credentials::policy::DEFAULT_MIN_REMAINING_SECS;
use crate::env::{Delivery, SessionEnv};
use crate::error::{Error, Result};
use crate::launch::{exec, find_program, with_endpoint};

pub(crate) fn run(mut args: ExecArgs, ctx: &Context) -> Result<i32> {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    args.normalize(&raw);
    if args.command.is_empty() {
        return Err(
            Error::usage("exec needs a command: elhaz exec NAME -- CMD [ARGS...]")
                .with_hint("for an interactive shell: elhaz shell NAME"),
        );
    }
    let name = ctx.name(args.name())?;
    // NAME, then CMD, then STS: each mistake is named before anything costs a call.
    if let Err(e) = ctx.check_name(&name) {
        let dashes = raw.iter().any(|a| a == "--");
        // A config of that name exists: the error is about what it holds.
        let a_config = ctx.store().exists(&name).unwrap_or(false);
        if dashes || a_config || args.name_flag.is_some() || e.kind != crate::error::Kind::Config {
            return Err(e);
        }
        // `elhaz exec terraform plan`: NAME forgotten, CMD taken for it.
        let cmd: Vec<String> = std::iter::once(name.clone())
            .chain(
                args.command
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned()),
            )
            .collect();
        return Err(Error::config(format!(
            "'{name}' is not a config or profile; did you mean: elhaz exec NAME -- {}?",
            cmd.join(" ")
        ))
        .with_hint("list the names: elhaz config list"));
    }
    let program = find_program(&args.command[0])?;
    let min = i64::try_from(args.min_remaining.0).unwrap_or(DEFAULT_MIN_REMAINING_SECS);
    if args.server {
        let source = endpoint_source(ctx, &name);
        return with_endpoint(&name, args.region.as_deref(), ctx.policy, source, |env| {
            Ok((program, args.command.clone(), env.child_env()))
        });
    }
    let served = ctx.credentials(&name, min)?;
    let region = args.region.as_deref().or(served.region.as_deref());
    let env = SessionEnv::build(
        &name,
        Delivery::Static(&served.credentials),
        region,
        &ctx.policy,
    );
    exec(&program, &args.command, &env.child_env())
}

/// NAME's credentials from the broker, each time the `--server` endpoint needs them.
fn endpoint_source(ctx: &Context, name: &str) -> crate::endpoint::Source {
    let broker = ctx.broker();
    let name = name.to_string();
    Box::new(move || broker.credentials(&name, DEFAULT_MIN_REMAINING_SECS))
}
