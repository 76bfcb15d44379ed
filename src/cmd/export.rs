//! `elhaz export NAME -f json|env|credential-process`: prints the credentials, from the
//! broker or from a shared socket. Knows nothing of the wire format.

use std::path::Path;

use serde_json::json;

use super::{Context, obscure};
use crate::broker::parse_credentials;
use crate::cli::{ExportArgs, ExportFormat};
use crate::credentials::Served;
use crate::credentials::policy::DEFAULT_MIN_REMAINING_SECS;
use crate::daemon::client::{Client, Failure};
use crate::daemon::protocol::Caller;
use crate::env::{Carried, Delivery, SessionEnv, shell_from_env};
use crate::error::{Error, Result};
use crate::times::{with_offset, zulu};

/// The variables whose values `--obscure` hides in the env format.
const OBSCURED_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    crate::context::KEY_ID_VAR,
];

pub(crate) fn run(args: ExportArgs, ctx: &Context) -> Result<i32> {
    let min = match (args.min_remaining, args.format) {
        (Some(s), _) => i64::try_from(s.0).unwrap_or(i64::MAX),
        (None, ExportFormat::CredentialProcess) => DEFAULT_MIN_REMAINING_SECS,
        (None, _) => 0,
    };
    let mut pinned_region = None;
    let (name, served) = match &args.socket {
        Some(socket) => shared_socket(socket, args.name.get(), min, ctx)?,
        None => {
            let chosen = super::pin::choose(ctx, args.name.get())?;
            pinned_region = chosen.region;
            let name = chosen.name;
            let served = ctx.credentials(&name, min)?;
            (name, served)
        }
    };
    let c = &served.credentials;
    // Everything is rendered first: nothing reaches stdout on error.
    let out = match args.format {
        ExportFormat::Json => {
            let mut v = json!({
                "access_key": c.access_key_id,
                "secret_key": c.secret_access_key(),
                "token": c.session_token(),
                "expiry_time": with_offset(c.expiration),
            });
            if args.obscure {
                obscure(&mut v);
            }
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        ExportFormat::CredentialProcess => {
            let mut v = json!({
                "Version": 1,
                "AccessKeyId": c.access_key_id,
                "SecretAccessKey": c.secret_access_key(),
                "SessionToken": c.session_token(),
                "Expiration": zulu(c.expiration),
            });
            if args.obscure {
                obscure(&mut v);
            }
            serde_json::to_string(&v).unwrap_or_default() + "\n"
        }
        ExportFormat::Env => {
            let shell = args.shell.unwrap_or_else(shell_from_env);
            let region = args
                .region
                .as_deref()
                .or(pinned_region.as_deref())
                .or(served.region.as_deref());
            let carried = Carried::of(&ctx.caller, &served);
            let mut env =
                SessionEnv::build(&name, Delivery::Static(c), region, &ctx.policy, carried);
            if args.obscure {
                for (k, v) in env.set.iter_mut() {
                    if OBSCURED_VARS.contains(k) {
                        *v = "***".into();
                    }
                }
            }
            env.render(shell)
        }
    };
    super::output::write_stdout(out.as_bytes())?;
    Ok(0)
}

/// Credentials from a shared (restricted) socket: no configs, no HOME needed, and no
/// daemon is ever started for it.
fn shared_socket(
    socket: &Path,
    name: Option<&str>,
    min: i64,
    ctx: &Context,
) -> Result<(String, Served)> {
    // `credential_process = elhaz export --socket ~/...` reaches us with no shell to
    // expand the `~`: expand it here, as the shell would.
    let expanded;
    let socket = match (socket.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) if !home.is_empty() => {
            expanded = Path::new(&home).join(rest);
            expanded.as_path()
        }
        _ => socket,
    };
    // One connection, the request itself: a probe first would be a second connection
    // (and, for a refused uid, a second refusal in the daemon's log), and would call a
    // socket this user may not open (0600) "nothing serves".
    let client = Client::shared(socket, ctx.global.client_timeout.duration());
    // A share implies its session: without NAME, ask for "whatever it serves".
    let resp = match client.credentials(Caller::ext(), name, min) {
        Ok(r) => r,
        // Not "start a daemon": a shared socket is opened by the host's daemon.
        Err(Failure::NotRunning) => {
            return Err(Error::daemon(format!(
                "nothing serves the shared socket {}",
                crate::error::display_path(socket)
            ))
            .with_hint(
                "share a session on it, outside the sandbox: elhaz daemon share NAME --socket PATH \
                 (or the ssh session that forwarded it has ended: run ssh -R again)",
            ));
        }
        Err(Failure::Error(e)) => return Err(e),
    };
    if !resp.ok {
        // Whoever serves the share wrote this error: shown escaped, as every error is.
        return Err(resp.error());
    }
    let served = parse_credentials(resp.data.as_ref())?;
    Ok((name.unwrap_or("shared").to_string(), served))
}
