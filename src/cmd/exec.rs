//! `elhaz exec NAME -- CMD...`: replaces itself with CMD, holding fresh credentials.
//!
//! It owns the command's arguments only: finding and starting CMD is
//! `crate::launch`'s, the environment `crate::env`'s.

use super::Context;
use crate::cli::ExecArgs;
use crate::credentials::policy::DEFAULT_MIN_REMAINING_SECS;
use crate::env::{Carried, Delivery, SessionEnv};
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
    let chosen = super::pin::choose(ctx, args.name())?;
    args.region = args.region.take().or(chosen.region);
    let name = chosen.name;
    // NAME, then CMD, then STS: each mistake is named before anything costs a call.
    // The NAME is checked by what gets its credentials (the daemon or the engine);
    // only when CMD is not found is it checked here first, so that a wrong NAME is
    // named before a wrong CMD without reading the configs twice on every run.
    let program = match find_program(&args.command[0]) {
        Ok(p) => p,
        Err(not_found) => {
            ctx.check_name(&name)
                .map_err(|e| forgotten_name(e, &name, &args, &raw, ctx))?;
            return Err(not_found);
        }
    };
    let min = i64::try_from(args.min_remaining.0).unwrap_or(DEFAULT_MIN_REMAINING_SECS);
    if args.server {
        let source = endpoint_source(ctx, &name);
        let region = args.region.as_deref();
        return with_endpoint(&name, region, ctx.policy, &ctx.caller, source, |env| {
            Ok((program, args.command.clone(), env.child_env()))
        })
        .map_err(|e| forgotten_name(e, &name, &args, &raw, ctx));
    }
    let served = ctx
        .credentials(&name, min)
        .map_err(|e| forgotten_name(e, &name, &args, &raw, ctx))?;
    let region = args.region.as_deref().or(served.region.as_deref());
    let env = SessionEnv::build(
        &name,
        Delivery::Static(&served.credentials),
        region,
        &ctx.policy,
        Carried::of(&ctx.caller, &served),
    );
    exec(&program, &args.command, &env.child_env())
}

/// An unknown NAME where the command line reads as if NAME was forgotten
/// (`elhaz exec terraform plan`: no `--`, no `-n`, no config of that name): says so,
/// with the command line it meant. Any other error as it is.
fn forgotten_name(
    e: Error,
    name: &str,
    args: &ExecArgs,
    raw: &[std::ffi::OsString],
    ctx: &Context,
) -> Error {
    let unknown = e.kind == crate::error::Kind::Config
        && e.message.starts_with("no config or AWS profile named");
    let dashes = raw.iter().any(|a| a == "--");
    if !unknown || dashes || args.name_flag.is_some() || ctx.store().exists(name).unwrap_or(false) {
        return e;
    }
    let cmd: Vec<String> = std::iter::once(name.to_string())
        .chain(
            args.command
                .iter()
                .map(|a| a.to_string_lossy().into_owned()),
        )
        .collect();
    Error::config(format!(
        "'{name}' is not a config or profile; did you mean: elhaz exec NAME -- {}?",
        cmd.join(" ")
    ))
    .with_hint("list the names: elhaz config list")
}

/// NAME's credentials from the broker, each time the `--server` endpoint needs them.
fn endpoint_source(ctx: &Context, name: &str) -> crate::endpoint::Source {
    let broker = ctx.broker_for(name);
    let name = name.to_string();
    Box::new(move || broker.credentials(&name, DEFAULT_MIN_REMAINING_SECS))
}
