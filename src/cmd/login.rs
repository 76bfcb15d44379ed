//! `elhaz login NAME`: the AWS console, signed in as the session's role (the sign-in
//! URL is credentials::console's), opened in the browser or printed.

use super::Context;
use crate::cli::LoginArgs;
use crate::credentials::console;
use crate::credentials::policy::DEFAULT_MIN_REMAINING_SECS;
use crate::error::{Error, Result};

pub(crate) fn run(args: LoginArgs, ctx: &Context) -> Result<i32> {
    if let Some(d) = args.duration
        && !(900..=43200).contains(&d.0)
    {
        // As the user wrote it (5m, not 300s).
        let shown = match d.0 {
            0 => "0s".to_string(),
            s => crate::duration::human(i64::try_from(s).unwrap_or(i64::MAX)),
        };
        return Err(Error::usage(format!(
            "--duration {shown} is out of range: the console session lasts 15m to 12h"
        ))
        .with_hint("elhaz login NAME --duration 1h"));
    }
    let chosen = super::pin::choose(ctx, args.name.get())?;
    let name = chosen.name;
    let served = ctx.credentials(&name, DEFAULT_MIN_REMAINING_SECS)?;
    let region = args
        .region
        .clone()
        .or(chosen.region)
        .or(served.region.clone())
        .unwrap_or_else(|| "us-east-1".into());
    let endpoint = std::env::var("ELHAZ_FEDERATION_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty());
    let login = crate::broker::runtime()?.block_on(console::signin_url(
        &served.credentials,
        &region,
        endpoint.as_deref(),
        args.duration.map(|d| d.0),
        args.destination.as_deref(),
    ))?;
    if args.stdout {
        println!("{login}");
        return Ok(0);
    }
    open_browser(&login)
}

/// Opens `url` (a bearer credential) in the browser through a private page; the
/// browser command's failure is an error with the `--stdout` alternative.
fn open_browser(url: &str) -> Result<i32> {
    let hint = "print the URL instead: elhaz login NAME --stdout";
    let program =
        crate::browser::open_and_wait(url, "AWS console sign-in").map_err(|e| e.with_hint(hint))?;
    eprintln!("elhaz: opened the AWS console in {program}");
    Ok(0)
}
