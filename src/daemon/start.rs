//! Starting the daemon: `elhaz daemon run` detached, with the caller's source
//! context spelled out, and the wait for its socket. Prints nothing: the command layer
//! says what happened. Knows nothing of the protocol or of credentials.

use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::context::{self, CallerContext};
use crate::error::{Error, Result, display_path};

/// How a daemon the client starts is set up (the CLI's global flags, resolved).
#[derive(Debug, Clone)]
pub struct DaemonArgs {
    pub config_dir: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub backlog: u32,
    pub cache_size: u32,
}

impl DaemonArgs {
    /// The arguments of `elhaz daemon run` that reproduce these settings.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        vec![
            "--config-dir".into(),
            self.config_dir.clone().into(),
            "--socket-path".into(),
            self.socket.clone().into(),
            "--logging-path".into(),
            self.log.clone().into(),
            "--max-unix-socket-connections".into(),
            self.backlog.to_string().into(),
            "--max-daemon-cache-size".into(),
            self.cache_size.to_string().into(),
            "daemon".into(),
            "run".into(),
        ]
    }
}

pub(crate) fn not_running(socket: &Path) -> Error {
    Error::daemon(format!("no daemon is running on {}", display_path(socket)))
        .with_hint("start one: elhaz daemon start; or skip it: ELHAZ_NO_DAEMON=1")
}

/// Whether a daemon answers on `socket` (a connection is accepted).
pub(crate) fn is_running(socket: &Path) -> bool {
    UnixStream::connect(socket).is_ok()
}

/// Starts `elhaz daemon run` detached (new session, stdio on /dev/null), with
/// `caller`'s source context, and waits up to 5 s for its socket. True when this call
/// started it; false when one was already answering (or another start won the race).
pub(crate) fn start_daemon(args: &DaemonArgs, caller: &CallerContext) -> Result<bool> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::daemon(format!(
            "cannot find the elhaz binary to start the daemon: {e}"
        ))
    })?;
    // The daemon would refuse it: say why here, where the user sees it.
    let dir = super::lock::socket_dir(&args.socket);
    if dir.exists() {
        super::lock::check_socket_dir(dir)?;
        super::lock::check_lock(&args.socket)?;
    }
    // A daemon whose socket was removed holds its lock until it notices (within
    // about a second) and exits: wait for that rather than fail.
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(pid) = super::lock::lock_holder(&args.socket) {
        if is_running(&args.socket) {
            return Ok(false);
        }
        if Instant::now() >= deadline {
            return Err(Error::daemon(format!(
                "a daemon (pid {pid}) holds the lock of {} but does not answer on it",
                display_path(&args.socket)
            ))
            .with_hint("stop it: elhaz daemon stop"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    pass_caller_context(&mut cmd, caller);
    // SAFETY: setsid and close_range are async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            // Only stdio reaches the daemon: a pipe the caller holds (`$(... 3>&1)`)
            // must not be kept open by it for its whole life.
            crate::sys::cloexec_from_3();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::daemon(format!("cannot start the daemon ({}): {e}", exe.display())))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if is_running(&args.socket) {
            // Reap it when it exits later: it runs in its own session.
            std::thread::spawn(move || child.wait());
            return Ok(true);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // It lost the race to another daemon, which may still be binding.
            // (Then the winner holds the lock; nobody holding it means ours failed, and
            // waiting the full 5 s for a socket nobody will open helps no one.)
            if is_running(&args.socket)
                || (super::lock::lock_is_held(&args.socket)
                    && wait_for_socket(&args.socket, deadline))
            {
                return Ok(false);
            }
            // Its reason went to its stderr (/dev/null) when it could not open the log.
            let log = if args.log.is_file() {
                format!("; see its log: {}", display_path(&args.log))
            } else {
                String::new()
            };
            return Err(
                Error::daemon(format!("the daemon exited at once ({status}){log}")).with_hint(
                    "run it in the foreground, with the same flags, to see why: elhaz daemon run",
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(Error::daemon(format!(
        "the daemon did not open {} within 5s",
        display_path(&args.socket)
    ))
    .with_hint(format!("see its log: {}", display_path(&args.log))))
}

fn wait_for_socket(socket: &Path, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if is_running(socket) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// The daemon's own context (for clients that send none) is its starter's, spelled
/// out plainly: no ELHAZ_SOURCE_* carriers, nothing a session injected, and inside a
/// session no secret at all (they reached us as per-command assignments only).
fn pass_caller_context(cmd: &mut std::process::Command, caller: &CallerContext) {
    for source in context::SOURCE_VARS {
        cmd.env_remove(source);
    }
    cmd.env_remove(crate::credentials::external::RESOLVING_VAR);
    for var in context::VARS {
        match caller.source.get(var) {
            Some(_) if context::SECRET.contains(var) && caller.in_session => {
                cmd.env_remove(var);
            }
            Some(v) => {
                cmd.env(var, v);
            }
            None => {
                cmd.env_remove(var);
            }
        }
    }
}
