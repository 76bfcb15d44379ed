//! `elhaz shell NAME`: the user's own shell, with their startup files, the
//! credentials and the refresh hook. elhaz replaces itself with the shell (same PID,
//! exit status passed through); no helper file outlives the shell's start.
//!
//! It owns how the rc text reaches each shell (a pipe, a private ZDOTDIR, fish's
//! --init-command); the text itself is `crate::shell`'s, and starting the process
//! is `crate::launch`'s. It must not know another command's code.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::Context;
use crate::cli::ShellArgs;
use crate::credentials::policy::DEFAULT_MIN_REMAINING_SECS;
use crate::env::{Carried, Delivery, SessionEnv};
use crate::error::{Error, Kind, Result};
use crate::launch::{exec, find_program, with_endpoint};
use crate::shell::ShellKind;
use crate::shell::startup::{self, Parts};

/// `--shell`, else $SHELL, else the login shell from passwd, else /bin/sh.
fn pick_shell(arg: Option<&Path>) -> Result<PathBuf> {
    let chosen: OsString = match arg {
        Some(p) => p.as_os_str().to_owned(),
        None => std::env::var_os("SHELL")
            .filter(|s| !s.is_empty())
            .or_else(|| {
                nix::unistd::User::from_uid(nix::unistd::getuid())
                    .ok()
                    .flatten()
                    .map(|u| u.shell.into_os_string())
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "/bin/sh".into()),
    };
    find_program(&chosen)
}

pub(crate) fn run(args: ShellArgs, ctx: &Context) -> Result<i32> {
    if let Some(outer) = ctx.caller.outer_session.as_deref()
        && !args.nested
    {
        return Err(Error::usage(format!(
            "already inside elhaz session {outer:?}; exit it first, or pass --nested"
        ))
        .with_hint("to switch this shell instead: elhaz use NAME (needs the hook)"));
    }
    let shell = pick_shell(args.shell.as_deref())?;
    let chosen = super::pin::choose(ctx, args.name.get())?;
    let region_arg = args.region.clone().or(chosen.region);
    let name = chosen.name;
    if args.server {
        // The endpoint keeps the credentials fresh: no hook, which would replace
        // it with static keys.
        let broker = ctx.broker_for(&name);
        let owned = name.clone();
        let source: crate::endpoint::Source =
            Box::new(move || broker.credentials(&owned, DEFAULT_MIN_REMAINING_SECS));
        let region = region_arg.as_deref();
        return with_endpoint(&name, region, ctx.policy, &ctx.caller, source, |env| {
            let (argv, child_env, keep) = prepare(&shell, &name, env, false, &args.args)?;
            // The rc pipe must stay open until the shell has read it; the child
            // inherits it at spawn, so ours can close after.
            std::mem::forget(keep);
            Ok((shell.clone(), argv, child_env))
        });
    }
    let served = ctx.credentials(&name, DEFAULT_MIN_REMAINING_SECS)?;
    let region = region_arg.as_deref().or(served.region.as_deref());
    let env = SessionEnv::build(
        &name,
        Delivery::Static(&served.credentials),
        region,
        &ctx.policy,
        Carried::of(&ctx.caller, &served),
    );
    let (argv, child_env, _keep) = prepare(&shell, &name, &env, true, &args.args)?;
    let failed = exec(&shell, &argv, &child_env);
    // The shell did not start, so nothing will remove its helper directory.
    if ShellKind::detect(&shell) == ShellKind::Zsh {
        remove_zsh_dotdir(&child_env);
    }
    failed
}

/// Removes the private ZDOTDIR that `prepare` made, if it did.
fn remove_zsh_dotdir(env: &[(OsString, OsString)]) {
    if let Some((_, dir)) = env.iter().find(|(k, _)| k == "ZDOTDIR") {
        let dir = Path::new(dir);
        let ours = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("elhaz-zsh-"));
        if ours {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// argv, environment, and the fds that must stay open until the shell starts.
type Prepared = (Vec<OsString>, Vec<(OsString, OsString)>, Vec<OwnedFd>);

/// The secret source keys the new shell keeps for its hook: the caller's (handed on
/// by an outer shell as ELHAZ_SOURCE_*, else its own environment's), "" when unset.
const SOURCE_KEYS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "ELHAZ_SOURCE_AWS_ACCESS_KEY_ID"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "ELHAZ_SOURCE_AWS_SECRET_ACCESS_KEY",
    ),
    ("AWS_SESSION_TOKEN", "ELHAZ_SOURCE_AWS_SESSION_TOKEN"),
];

/// Shell code that sets the hook's non-exported copy of the source keys. It goes to
/// the shell only through a pipe (never argv, the environment or a file).
fn source_seed(shell: ShellKind) -> String {
    let keys: Vec<(&str, String)> = SOURCE_KEYS
        .iter()
        .map(|(var, source)| {
            let value = std::env::var(source)
                .or_else(|_| std::env::var(var))
                .unwrap_or_default();
            (*var, value)
        })
        .collect();
    startup::source_seed(shell, &keys)
}

/// The shell's argv and environment: its own startup files, then (with `hook`) the
/// refresh hook, and the prompt prefix. The returned fd (bash's rc pipe) must stay
/// open until the shell starts.
fn prepare(
    shell: &Path,
    name: &str,
    env: &SessionEnv,
    hook: bool,
    extra: &[OsString],
) -> Result<Prepared> {
    let mut child_env = env.child_env();
    let exe = crate::shell::current_exe();
    let parts = Parts {
        hook: hook.then_some(exe.as_str()),
        prompt: std::env::var("ELHAZ_NO_PROMPT").ok().as_deref() != Some("1"),
    };
    let mut argv: Vec<OsString> = vec![shell.as_os_str().to_owned()];
    let mut keep: Vec<OwnedFd> = Vec::new();
    // The source keys' pipe (zsh and fish read it apart from their rc).
    let mut seed = |kind: ShellKind| -> Result<Option<i32>> {
        if !hook {
            return Ok(None);
        }
        let fd = rc_pipe(&source_seed(kind))?;
        let n = fd.as_raw_fd();
        keep.push(fd);
        Ok(Some(n))
    };
    match ShellKind::detect(shell) {
        ShellKind::Bash => {
            // All in the rc pipe, which bash reads whole before running any of it.
            let seed = if hook {
                source_seed(ShellKind::Bash)
            } else {
                String::new()
            };
            let fd = rc_pipe(&startup::bash_rc(parts, &seed))?;
            argv.push("--rcfile".into());
            argv.push(format!("/dev/fd/{}", fd.as_raw_fd()).into());
            argv.push("-i".into());
            keep.push(fd);
        }
        ShellKind::Zsh => {
            let fd = seed(ShellKind::Zsh)?;
            let dir = zsh_dotdir(parts, fd)?;
            let user = std::env::var_os("ZDOTDIR").unwrap_or_default();
            child_env.retain(|(k, _)| k != "ZDOTDIR" && k != "_ELHAZ_USER_ZDOTDIR");
            child_env.push(("_ELHAZ_USER_ZDOTDIR".into(), user));
            child_env.push(("ZDOTDIR".into(), dir.into()));
            argv.push("-i".into());
        }
        ShellKind::Fish => {
            let fd = seed(ShellKind::Fish)?;
            argv.push("--interactive".into());
            argv.push("--init-command".into());
            argv.push(startup::fish_init(parts, fd).into());
        }
        ShellKind::Posix if hook => {
            let expires = env
                .set
                .iter()
                .find(|(k, _)| *k == "AWS_CREDENTIAL_EXPIRATION")
                .map(|(_, v)| v.as_str())
                .unwrap_or("soon");
            eprintln!(
                "elhaz: refresh at the prompt is not available for {}; the credentials of {name} expire at {expires} (use bash, zsh or fish for refresh)",
                shell.display(),
            );
        }
        ShellKind::Posix => {}
    }
    argv.extend(extra.iter().cloned());
    Ok((argv, child_env, keep))
}

/// A pipe holding `content`, whose read end survives exec: the shell reads it as a
/// file under /dev/fd. The content fits the pipe buffer, so no writer must stay.
fn rc_pipe(content: &str) -> Result<OwnedFd> {
    let fail = |e: nix::Error| {
        Error::new(
            Kind::Other,
            format!("cannot set up the shell: {}", e.desc()),
        )
    };
    let (read, write) = nix::unistd::pipe().map_err(fail)?;
    if content.len() > 60 * 1024 {
        return Err(Error::other("the shell's rc file is too large for a pipe"));
    }
    nix::unistd::write(&write, content.as_bytes()).map_err(fail)?;
    drop(write);
    // Clear FD_CLOEXEC on the read end so bash inherits it.
    nix::fcntl::fcntl(
        &read,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .map_err(fail)?;
    Ok(read)
}

/// A private ZDOTDIR holding the files `startup::zsh_files` writes; its .zshrc puts
/// ZDOTDIR back and removes the directory.
fn zsh_dotdir(parts: Parts<'_>, seed: Option<i32>) -> Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("elhaz-zsh-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(|e| Error::io(Kind::Other, "cannot create a directory in", &base, &e))?
        .keep();
    for (file, text) in startup::zsh_files(parts, seed) {
        let p = dir.join(file);
        std::fs::write(&p, text).map_err(|e| Error::io(Kind::Other, "cannot write", &p, &e))?;
    }
    Ok(dir)
}
