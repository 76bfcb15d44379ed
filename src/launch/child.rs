//! Running a child while elhaz stays the parent (for `--server`): the child gets its
//! own process group, in the terminal's foreground when there is a terminal; the
//! usual signals sent to elhaz are passed on; job control (Ctrl-Z) works; elhaz
//! exits as a shell would report the child: its code, or 128 + signal; and when elhaz
//! dies without a chance to say so (SIGKILL), the child gets SIGHUP.
//!
//! It must not know credentials or the command line: `crate::launch` hands it the
//! program, argv and environment.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;

use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpgrp, isatty, setpgid, tcgetpgrp, tcsetpgrp};

use crate::error::{Error, Kind, Result};

/// The signals passed on to the child.
pub(crate) const FORWARDED: &[Signal] = &[
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

fn stdin_fd() -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: fd 0 stays open for the life of the process.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(0) }
}

/// Whether we own the terminal's foreground (so the child should take it).
fn foreground_tty() -> bool {
    isatty(stdin_fd()).unwrap_or(false) && tcgetpgrp(stdin_fd()).ok() == Some(getpgrp())
}

/// Spawns `program` and waits for it, forwarding signals with `rt`'s signal streams.
pub(crate) fn run(
    rt: &tokio::runtime::Runtime,
    program: &Path,
    argv: &[OsString],
    env: &[(OsString, OsString)],
) -> Result<i32> {
    let tty = foreground_tty();
    let mut cmd = command(program, argv, env, tty);
    // Our own tcsetpgrp calls below must not stop us.
    // SAFETY: setting a signal disposition to ignore.
    unsafe {
        let _ = signal::signal(Signal::SIGTTOU, SigHandler::SigIgn);
    }
    // Catch the forwarded signals before the child exists: until the handlers are in
    // place, SIGTERM, SIGHUP or SIGUSR1 would kill elhaz and orphan the child.
    let streams = catch_forwarded(rt);
    let child = cmd.spawn().map_err(|e| spawn_error(program, &e))?;
    let pid = Pid::from_raw(child.id() as i32);
    let _ = setpgid(pid, pid);
    // Whether the child holds the terminal because we gave it (so we take it back).
    let gave = tty && tcsetpgrp(stdin_fd(), pid).is_ok();
    // Forward signals sent to elhaz (caught since before the spawn, so one sent as
    // soon as the child starts is delivered to it, not fatal to us).
    for (sig, mut stream) in streams {
        rt.spawn(async move {
            while stream.recv().await.is_some() {
                let _ = signal::kill(pid, sig);
            }
        });
    }
    wait(program, pid, gave)
}

/// The child's command: its own process group, in the terminal's foreground when
/// `tty`, with exactly `env`.
fn command(
    program: &Path,
    argv: &[OsString],
    env: &[(OsString, OsString)],
    tty: bool,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    if let Some(arg0) = argv.first() {
        cmd.arg0(arg0);
    }
    cmd.args(argv.iter().skip(1))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    let supervisor = nix::unistd::getpid().as_raw();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // When elhaz dies, even by SIGKILL (no handler runs, the endpoint is gone),
            // the child gets SIGHUP from the kernel, as when a terminal hangs up: a
            // command ends, an interactive shell passes it on to its jobs and exits.
            // PR_SET_PDEATHSIG on the child itself (no intermediate process or pipe):
            // nothing else stands between elhaz and the child. The thread that forks
            // (the caller of `run`) waits for the child, so it outlives it.
            crate::sys::signal_when_parent_dies(libc::SIGHUP, supervisor)?;
            setpgid(Pid::from_raw(0), Pid::from_raw(0)).map_err(std::io::Error::from)?;
            if tty {
                signal::signal(Signal::SIGTTOU, SigHandler::SigIgn)
                    .map_err(std::io::Error::from)?;
                let _ = tcsetpgrp(stdin_fd(), getpgrp());
            }
            // elhaz ignores SIGTTOU (in `run`), and an ignored signal survives execve:
            // the child starts with the default, as from a shell.
            signal::signal(Signal::SIGTTOU, SigHandler::SigDfl).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    cmd
}

/// A signal stream for each of [`FORWARDED`], on `rt`.
fn catch_forwarded(rt: &tokio::runtime::Runtime) -> Vec<(Signal, tokio::signal::unix::Signal)> {
    let _guard = rt.enter();
    FORWARDED
        .iter()
        .filter_map(|&sig| {
            let kind = tokio::signal::unix::SignalKind::from_raw(sig as i32);
            tokio::signal::unix::signal(kind).ok().map(|s| (sig, s))
        })
        .collect()
}

fn spawn_error(program: &Path, e: &std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => Kind::NotFound,
        _ => Kind::NotExecutable,
    };
    Error::new(
        kind,
        format!(
            "cannot execute {}: {}",
            program.display(),
            crate::error::io_reason(e)
        ),
    )
}

/// Waits for the child and returns its code as a shell reports it: its exit code,
/// or 128 + signal. `gave`: the child holds the terminal because we gave it.
fn wait(program: &Path, pid: Pid, mut gave: bool) -> Result<i32> {
    // Job control needs a terminal: without one, nobody would continue a stopped
    // elhaz, and a stopped elhaz serves no credentials.
    let job_control = isatty(stdin_fd()).unwrap_or(false);
    let flags = if job_control {
        Some(WaitPidFlag::WUNTRACED)
    } else {
        None
    };
    let code = loop {
        match waitpid(pid, flags) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(WaitStatus::Stopped(_, _)) => gave = stop_with_child(pid, gave),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(Error::other(format!(
                    "waiting for {}: {}",
                    program.display(),
                    e.desc()
                )));
            }
        }
    };
    if gave {
        let _ = tcsetpgrp(stdin_fd(), getpgrp());
    }
    Ok(code)
}

/// Ctrl-Z: stop with the child, as a shell job would, and hand the terminal back on
/// the way; once continued, pass it on again if ours. Returns whether the child
/// holds the terminal by our hand.
fn stop_with_child(pid: Pid, mut gave: bool) -> bool {
    if gave {
        let _ = tcsetpgrp(stdin_fd(), getpgrp());
        gave = false;
    }
    let _ = signal::kill(nix::unistd::getpid(), Signal::SIGSTOP);
    // Continued: by `fg` (we hold the terminal: pass it on) or by `bg` (we do not:
    // the child must not take it from the shell).
    if foreground_tty() {
        gave = tcsetpgrp(stdin_fd(), pid).is_ok();
    }
    let _ = signal::killpg(pid, Signal::SIGCONT);
    gave
}
