//! Starting the program a command names: finding it as execvp would, replacing
//! elhaz with it (`exec`), or running it while elhaz stays the parent and serves it
//! fresh credentials on a loopback endpoint (`with_endpoint`).
//!
//! Shared by `elhaz exec` and `elhaz shell`. It must not know the command line, the
//! config or the broker: callers hand it a credentials source and the child to start.
//! What a killed `--server` run leaves is `leftovers`'.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

mod child;
mod leftovers;

use crate::context::CallerContext;
use crate::credentials::policy::Policy;
use crate::env::{Carried, Delivery, SessionEnv};
use crate::error::{Error, Kind, Result};

/// What a supervised child is: program, argv (with argv[0]) and environment.
pub(crate) type ChildSpec = (PathBuf, Vec<OsString>, Vec<(OsString, OsString)>);

/// `--server`: elhaz stays the parent and serves fresh credentials from `source` on a
/// loopback container-credentials endpoint while the child runs; the child gets the
/// endpoint and its token instead of static keys, and carries `caller`'s source
/// context. Returns the child's exit code.
pub(crate) fn with_endpoint(
    name: &str,
    region: Option<&str>,
    policy: Policy,
    caller: &CallerContext,
    mut source: crate::endpoint::Source,
    child: impl FnOnce(&SessionEnv) -> Result<ChildSpec>,
) -> Result<i32> {
    // The child's AWS files; removed when dropped, after the child has exited. Should
    // elhaz be killed instead, the next run removes them: each run records itself in
    // its directory, and removes those of runs that are gone.
    let files = crate::env::chain::prepare(crate::env::chain::user_config_path().as_deref())?;
    leftovers::mark(files.dir());
    if let Some(base) = files.dir().parent() {
        leftovers::sweep(base, files.dir());
    }
    let served = source()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::other(format!("cannot start a runtime: {e}")))?;
    let endpoint = crate::endpoint::start(&rt, source, Some(served.clone()), policy)?;
    let env = SessionEnv::build(
        name,
        Delivery::Container {
            uri: &endpoint.uri,
            token: &endpoint.token,
            credentials: &served.credentials,
            files: &files,
        },
        region.or(served.region.as_deref()),
        &policy,
        Carried::of(caller, &served),
    );
    let (program, argv, child_env) = child(&env)?;
    let code = child::run(&rt, &program, &argv, &child_env);
    // Dropping the runtime closes the listener: nothing serves once the child is gone.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    drop(files);
    code
}

/// Finds CMD like execvp would: a path with a slash as it is, else on PATH.
pub(crate) fn find_program(cmd: &OsStr) -> Result<PathBuf> {
    let shown = cmd.to_string_lossy();
    if cmd.is_empty() {
        return Err(Error::new(Kind::NotFound, "command not found: ''"));
    }
    let as_path = Path::new(cmd);
    if cmd.as_bytes().contains(&b'/') {
        return match std::fs::metadata(as_path) {
            Err(_) => Err(Error::new(
                Kind::NotFound,
                format!("command not found: {shown}"),
            )),
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
                    format!(
                        "cannot execute {shown}: permission denied ({})",
                        p.display()
                    ),
                ));
            }
            Err(Error::new(
                Kind::NotFound,
                format!("command not found: {shown}"),
            ))
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
    CString::new(s.as_bytes()).map_err(|_| {
        Error::usage(format!(
            "argument contains a NUL byte: {}",
            s.to_string_lossy()
        ))
    })
}

/// execve: the child takes our PID, signals, TTY and exit status. Returns only on
/// failure.
pub(crate) fn exec(program: &Path, argv: &[OsString], env: &[(OsString, OsString)]) -> Result<i32> {
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
    // Rust ignores SIGPIPE, and ignored signals survive execve: give the child the
    // default, as a shell would (else `elhaz exec x -- seq 1 1000000 | head -1` fails
    // with "write error: Broken pipe" instead of stopping quietly).
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_DFL installs no handler; no other thread touches SIGPIPE.
    let old_pipe = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.ok();
    let mut err = nix::unistd::execve(&prog, &argv, &envp).unwrap_err();
    if err == nix::errno::Errno::ENOEXEC && !looks_binary(program) {
        // As execvp does: a file without #! is a shell script.
        let mut sh_argv = vec![c"/bin/sh".to_owned(), prog.clone()];
        sh_argv.extend(argv.iter().skip(1).cloned());
        err = nix::unistd::execve(c"/bin/sh", &sh_argv, &envp).unwrap_err();
        if err == nix::errno::Errno::ENOENT {
            err = nix::errno::Errno::ENOEXEC;
        }
    }
    if let Some(h) = old_pipe {
        // SAFETY: as above; puts back what we had.
        let _ = unsafe { signal(Signal::SIGPIPE, h) };
    }
    let shown = program.display();
    Err(match err {
        nix::errno::Errno::ENOENT => {
            Error::new(Kind::NotFound, format!("command not found: {shown}"))
        }
        nix::errno::Errno::ENOEXEC => Error::new(
            Kind::NotExecutable,
            format!("cannot execute {shown}: not an executable format"),
        ),
        e => Error::new(
            Kind::NotExecutable,
            format!("cannot execute {shown}: {}", e.desc()),
        ),
    })
}

/// Whether a file that execve refused looks binary, as bash decides: a NUL byte
/// before the first newline in its first 80 bytes.
fn looks_binary(p: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 80];
    let n = std::fs::File::open(p)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let line = head[..n].split(|b| *b == b'\n').next().unwrap_or_default();
    line.contains(&0)
}
