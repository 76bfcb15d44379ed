//! `elhaz exec NAME -- CMD...`: replaces itself with CMD, holding fresh credentials.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::Context;
use crate::cli::ExecArgs;
use crate::credentials::policy::DEFAULT_MIN_REMAINING_SECS;
use crate::env::{Delivery, SessionEnv};
use crate::error::{Error, Kind, Result};

pub fn run(args: ExecArgs, ctx: &Context) -> Result<i32> {
    if args.command.is_empty() {
        return Err(Error::usage("exec needs a command: elhaz exec NAME -- CMD [ARGS...]")
            .with_hint("for an interactive shell: elhaz shell NAME"));
    }
    if args.server {
        return Err(super::not_implemented("exec --server"));
    }
    let name = ctx.name(args.name.get())?;
    // Find the command first: a typo should not cost an STS call.
    let program = find_program(&args.command[0])?;
    let min = i64::try_from(args.min_remaining.0).unwrap_or(DEFAULT_MIN_REMAINING_SECS);
    let served = ctx.broker().credentials(&name, min)?;
    let region = args.region.as_deref().or(served.region.as_deref());
    let env = SessionEnv::build(&name, Delivery::Static(&served.credentials), region, &ctx.policy);
    exec(&program, &args.command, &env.child_env())
}

/// Finds CMD like execvp would: a path with a slash as it is, else on PATH.
pub fn find_program(cmd: &OsStr) -> Result<PathBuf> {
    let shown = cmd.to_string_lossy();
    if cmd.is_empty() {
        return Err(Error::new(Kind::NotFound, "command not found: ''"));
    }
    let as_path = Path::new(cmd);
    if cmd.as_bytes().contains(&b'/') {
        return match std::fs::metadata(as_path) {
            Err(_) => Err(Error::new(Kind::NotFound, format!("command not found: {shown}"))),
            Ok(m) if m.is_dir() => Err(Error::new(
                Kind::NotExecutable,
                format!("cannot execute {shown}: is a directory"),
            )),
            Ok(_) if !is_executable(as_path) => Err(Error::new(
                Kind::NotExecutable,
                format!("cannot execute {shown}: permission denied"),
            )
            .with_hint(format!("make it executable: chmod +x {shown}"))),
            Ok(_) => Ok(as_path.to_path_buf()),
        };
    }
    match which::which(cmd) {
        Ok(p) => Ok(p),
        Err(_) => {
            // On PATH but not executable is 126, as in shells.
            if let Some(p) = on_path(cmd) {
                return Err(Error::new(
                    Kind::NotExecutable,
                    format!("cannot execute {shown}: permission denied ({})", p.display()),
                ));
            }
            Err(Error::new(Kind::NotFound, format!("command not found: {shown}")))
        }
    }
}

fn on_path(cmd: &OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

fn is_executable(p: &Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
}

fn cstring(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| Error::usage(format!("argument contains a NUL byte: {}", s.to_string_lossy())))
}

/// execve: the child takes our PID, signals, TTY and exit status. Returns only on
/// failure.
pub fn exec(program: &Path, argv: &[OsString], env: &[(OsString, OsString)]) -> Result<i32> {
    let prog = cstring(program.as_os_str())?;
    let argv: Vec<CString> = argv.iter().map(|a| cstring(a)).collect::<Result<_>>()?;
    let envp: Vec<CString> = env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            cstring(&kv)
        })
        .collect::<Result<_>>()?;
    let err = nix::unistd::execve(&prog, &argv, &envp).unwrap_err();
    let shown = program.display();
    Err(match err {
        nix::errno::Errno::ENOENT => Error::new(Kind::NotFound, format!("command not found: {shown}")),
        nix::errno::Errno::ENOEXEC => Error::new(
            Kind::NotExecutable,
            format!("cannot execute {shown}: not an executable format (missing #! line?)"),
        ),
        e => Error::new(Kind::NotExecutable, format!("cannot execute {shown}: {}", e.desc())),
    })
}
