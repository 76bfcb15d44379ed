//! `elhaz daemon start|run|stop|kill|status|list|add|remove|logs|refresh|share|unshare`:
//! one function per subcommand, talking to the daemon through its typed client and
//! printing the answers. Knows nothing of the wire format.

use crate::terminal::escape_controls;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Context, print_json};
use crate::cli::{DaemonCommand, JsonFlag, LogsArgs, NameOnly, ShareArgs, UnshareArgs};
use crate::daemon::client::Failure;
use crate::daemon::lock::{lock_holder, lock_is_held, lock_path};
use crate::daemon::protocol::{CredentialsData, Named, ShareInfo, StatusData};
use crate::daemon::start::{is_running, start_daemon};
use crate::duration::human;
use crate::error::{Error, Kind, Result, display_path};

/// Runs one `daemon` subcommand.
pub(crate) fn run(cmd: DaemonCommand, ctx: &Context) -> Result<i32> {
    match cmd {
        DaemonCommand::Run => run_foreground(ctx),
        DaemonCommand::Start => start(ctx),
        DaemonCommand::Stop | DaemonCommand::Kill => stop(ctx),
        DaemonCommand::Status(a) => status(&a, ctx),
        DaemonCommand::List(a) => list(&a, ctx),
        DaemonCommand::Add(a) => add(&a, ctx),
        DaemonCommand::Remove(a) => remove(&a, ctx),
        DaemonCommand::Refresh(a) => refresh(&a, ctx),
        DaemonCommand::Logs(a) => logs(&a, ctx),
        DaemonCommand::Share(a) => share(&a, ctx),
        DaemonCommand::Unshare(a) => unshare(&a, ctx),
    }
}

/// `daemon start`: starts the daemon unless one answers.
fn start(ctx: &Context) -> Result<i32> {
    let socket = &ctx.paths.socket;
    if is_running(socket) {
        eprintln!(
            "elhaz: the daemon is already running (socket {})",
            display_path(socket)
        );
        return Ok(0);
    }
    start_daemon(&ctx.daemon_args(), &ctx.caller)?;
    eprintln!(
        "elhaz: daemon started (socket {}, log {})",
        display_path(socket),
        display_path(&ctx.paths.log)
    );
    Ok(0)
}

/// `daemon stop` (and `kill`): asks the daemon to stop, else signals the lock holder, and
/// waits until socket and lock are released.
fn stop(ctx: &Context) -> Result<i32> {
    let socket = &ctx.paths.socket;
    match ctx.client().kill() {
        Ok(_) => {}
        Err(Failure::NotRunning) => match lock_holder(socket) {
            // Its socket is gone (or dead) but it still runs: found by its lock.
            Some(pid) if pid > 1 => {
                let pid = nix::unistd::Pid::from_raw(pid as i32);
                nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).map_err(|e| {
                    Error::daemon(format!(
                        "cannot stop the daemon (pid {pid}) of {}: {}",
                        display_path(socket),
                        e.desc()
                    ))
                })?;
                // A stopped (SIGSTOP) daemon handles the SIGTERM once continued.
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            }
            Some(_) => {
                return Err(Error::daemon(format!(
                    "a daemon holds the lock of {} but neither answers nor says its pid",
                    display_path(socket)
                ))
                .with_hint(format!("find it: fuser -v {}", lock_path(socket).display())));
            }
            None => {
                eprintln!("elhaz: no daemon is running on {}", display_path(socket));
                return Ok(0);
            }
        },
        Err(Failure::Error(e)) => return Err(e),
    }
    // Wait for it to let go of the socket and of its lock (it finishes in-flight
    // requests first, 10 s at most), so a start right after works.
    let deadline = Instant::now() + Duration::from_secs(15);
    while (socket.exists() || lock_is_held(socket)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("elhaz: daemon stopped");
    Ok(0)
}

/// `daemon status`: the daemon, its sessions and shares; exit 1 when none runs.
fn status(a: &JsonFlag, ctx: &Context) -> Result<i32> {
    let socket = &ctx.paths.socket;
    match ctx.client().status() {
        Ok(resp) => {
            let status: StatusData = resp.into_data("status")?;
            if a.json {
                // The same `running` key as the not-running form.
                let mut data = serde_json::to_value(&status).unwrap_or_default();
                if let Some(m) = data.as_object_mut() {
                    m.insert("running".into(), Value::Bool(true));
                }
                print_json(&data);
            } else {
                println!(
                    "running: pid {}, up {}, {} session(s), socket {}",
                    status.pid,
                    human(i64::try_from(status.uptime_seconds).unwrap_or(i64::MAX))
                        .replace("expired", "0s"),
                    status.sessions.len(),
                    display_path(socket)
                );
                print_sessions(&status.sessions);
                print_shares(&status.shares);
            }
            Ok(0)
        }
        Err(Failure::NotRunning) if lock_is_held(socket) => {
            // Alive (it holds the lock) but unreachable: its socket is gone.
            let pid = lock_holder(socket).unwrap_or(0);
            if a.json {
                print_json(&json!({
                    "running": false,
                    "pid": pid,
                    "socket": socket.display().to_string(),
                    "socket_missing": true,
                }));
            } else {
                println!(
                    "not answering: pid {pid} holds the daemon lock but its socket {} is gone; it exits by itself within seconds, or stop it now: elhaz daemon stop",
                    display_path(socket)
                );
            }
            Ok(1)
        }
        Err(Failure::NotRunning) => {
            if a.json {
                print_json(&json!({ "running": false, "socket": socket.display().to_string() }));
            } else {
                println!("not running (socket {})", display_path(socket));
            }
            Ok(1)
        }
        Err(Failure::Error(e)) => Err(e),
    }
}

/// `daemon list`: the sessions; never starts a daemon.
fn list(a: &JsonFlag, ctx: &Context) -> Result<i32> {
    let socket = &ctx.paths.socket;
    // Listing never starts a daemon: none running means no sessions.
    let resp = match ctx.client().status() {
        Ok(r) => r,
        Err(Failure::NotRunning) => {
            if a.json {
                print_json(&json!([]));
            } else {
                eprintln!(
                    "elhaz: no daemon is running on {}, so no sessions",
                    display_path(socket)
                );
            }
            return Ok(0);
        }
        Err(Failure::Error(e)) => return Err(e),
    };
    let status: StatusData = resp.into_data("status")?;
    if a.json {
        print_json(&Value::Array(status.sessions));
    } else if status.sessions.is_empty() {
        eprintln!("elhaz: no sessions in the daemon; add one: elhaz daemon add NAME");
    } else {
        print_sessions(&status.sessions);
    }
    Ok(0)
}

/// `daemon add NAME`: fetches NAME in the daemon (asking for an MFA code if needed).
fn add(a: &NameOnly, ctx: &Context) -> Result<i32> {
    let name = ctx.name(a.name.get())?;
    ctx.broker().add(&name)?;
    eprintln!("elhaz: added {name}");
    Ok(0)
}

/// `daemon remove NAME`: forgets NAME; never starts a daemon.
fn remove(a: &NameOnly, ctx: &Context) -> Result<i32> {
    let socket = &ctx.paths.socket;
    let name = ctx.name(a.name.get())?;
    // Removing never starts a daemon.
    let resp = ctx.client().remove(&name).map_err(|f| match f {
        Failure::NotRunning => Error::daemon(format!(
            "no daemon is running on {}, so {name} is in none",
            display_path(socket)
        )),
        Failure::Error(e) => e,
    })?;
    let _: Named = resp.into_data("remove")?;
    eprintln!("elhaz: removed {name} from the daemon");
    Ok(0)
}

/// `daemon refresh NAME`: a forced refresh.
fn refresh(a: &NameOnly, ctx: &Context) -> Result<i32> {
    let name = ctx.name(a.name.get())?;
    let broker = ctx.broker();
    let resp = broker.request("refresh", |c| c.refresh(broker.caller(), &name))?;
    let data: CredentialsData = resp.into_data("refresh")?;
    eprintln!("elhaz: refreshed {name} (expires {})", data.expiry_time);
    Ok(0)
}

/// `daemon share NAME --socket PATH`: serves NAME read-only on another socket.
fn share(a: &ShareArgs, ctx: &Context) -> Result<i32> {
    let name = ctx.name(a.name.get())?;
    let socket = absolute(&a.socket)?;
    let broker = ctx.broker();
    let ask = || -> Result<ShareInfo> {
        broker
            .request("share", |c| {
                c.share(broker.caller(), &name, &socket, a.whoami, a.uid)
            })?
            .into_data("share")
    };
    let _: ShareInfo = match ask() {
        // The session needs an MFA code: asked here, on this terminal (the share's
        // clients have none to give), as any command asks; then shared.
        Err(e) if e.kind == crate::error::Kind::MfaRequired => {
            broker.credentials(&name, 0)?;
            ask()?
        }
        answer => answer?,
    };
    eprintln!(
        "elhaz: sharing {name} (credentials{}) on {}{}",
        if a.whoami { " and whoami" } else { "" },
        display_path(&socket),
        a.uid
            .map(|u| format!(" for uid {u} too"))
            .unwrap_or_default()
    );
    eprintln!(
        "in the sandbox: credential_process = elhaz export --socket {} -f credential-process",
        socket.display()
    );
    Ok(0)
}

/// `daemon unshare PATH`: closes a share.
fn unshare(a: &UnshareArgs, ctx: &Context) -> Result<i32> {
    let socket = absolute(&a.socket)?;
    let resp = ctx.client().unshare(&socket).map_err(|f| match f {
        Failure::NotRunning => Error::daemon(format!(
            "no daemon is running on {}; its shares ended with it",
            display_path(&ctx.paths.socket)
        )),
        Failure::Error(e) => e,
    })?;
    let _: ShareInfo = resp.into_data("unshare")?;
    eprintln!("elhaz: closed the share {}", display_path(&socket));
    Ok(0)
}

/// A path made absolute against the current directory (the daemon's differs).
fn absolute(p: &std::path::Path) -> Result<std::path::PathBuf> {
    std::path::absolute(p)
        .map_err(|e| Error::usage(format!("bad socket path {}: {e}", p.display())))
}

fn print_shares(shares: &[ShareInfo]) {
    for s in shares {
        // From the daemon's socket: shown, never obeyed.
        let mut line = format!(
            "share {}  {}",
            escape_controls(&s.socket),
            escape_controls(&s.config)
        );
        if s.whoami {
            line.push_str("  +whoami");
        }
        if let Some(uid) = s.uid {
            line.push_str(&format!("  uid {uid}"));
        }
        println!("{line}");
    }
}

fn print_sessions(list: &[Value]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let left = s["remaining_seconds"].as_i64().unwrap_or(0);
            let left = if left > 0 {
                format!("{} left", human(left))
            } else {
                "expired".into()
            };
            vec![s["name"].as_str().unwrap_or_default().to_string(), left]
        })
        .collect();
    for (s, mut line) in list.iter().zip(super::table::columns(&rows)) {
        // One name fetched from several source contexts: say which is which. What
        // comes from the daemon (a caller's AWS_PROFILE, an STS error) is shown
        // escaped, never obeyed.
        if list.iter().filter(|o| o["name"] == s["name"]).count() > 1 {
            let context = escape_controls(s["context"].as_str().unwrap_or("?"));
            match s["aws_profile"].as_str() {
                Some(p) => line.push_str(&format!(
                    "  (AWS_PROFILE {}, context {context})",
                    escape_controls(p)
                )),
                None => line.push_str(&format!("  (context {context})")),
            }
        }
        if let Some(e) = s["last_error"].as_str() {
            line.push_str(&format!("  (last refresh failed: {})", escape_controls(e)));
        }
        println!("{line}");
    }
}

/// `daemon run`: the daemon in the foreground.
fn run_foreground(ctx: &Context) -> Result<i32> {
    crate::daemon::run::run(crate::daemon::run::RunOptions {
        socket: ctx.paths.socket.clone(),
        log: ctx.paths.log.clone(),
        config_dir: ctx.paths.config_dir.clone(),
        verbose: ctx.global.verbose,
        policy: ctx.policy,
        cache_size: ctx.global.max_daemon_cache_size as usize,
        backlog: ctx.global.max_unix_socket_connections,
        context: ctx.caller.source.clone(),
    })
    .map(|()| 0)
}

fn logs(a: &LogsArgs, ctx: &Context) -> Result<i32> {
    let path = &ctx.paths.log;
    let tail = a.tail.unwrap_or(50);
    if a.follow {
        return follow_log(path, tail);
    }
    let mut log = LogLines::new(std::fs::File::open(path).map_err(|e| log_error(path, &e))?);
    let lines = std::iter::from_fn(move || log.next(true));
    match a.head {
        Some(n) => lines.take(n).for_each(|l| println!("{l}")),
        None => last_lines(lines, tail).iter().for_each(|l| println!("{l}")),
    }
    Ok(0)
}

/// Why the log cannot be read, and what to do when it is not there yet.
fn log_error(path: &std::path::Path, e: &std::io::Error) -> Error {
    let err = Error::io(Kind::Daemon, "cannot read the daemon log", path, e);
    if e.kind() == std::io::ErrorKind::NotFound {
        err.with_hint("the daemon has not run with this log path yet: elhaz daemon start")
    } else {
        err
    }
}

/// The last `n` of `lines`.
fn last_lines(lines: impl Iterator<Item = String>, n: usize) -> std::collections::VecDeque<String> {
    let mut ring = std::collections::VecDeque::with_capacity(n.min(10_000));
    for l in lines {
        if ring.len() == n {
            ring.pop_front();
        }
        if n > 0 {
            ring.push_back(l);
        }
    }
    ring
}

/// A log file's lines as text (a bad byte does not end the listing), with any control
/// character shown escaped: whatever is in the file, printing it cannot drive the
/// terminal.
struct LogLines {
    reader: BufReader<std::fs::File>,
    /// A line read up to the end of the file, not yet ended.
    partial: Vec<u8>,
}

impl LogLines {
    fn new(file: std::fs::File) -> LogLines {
        LogLines {
            reader: BufReader::new(file),
            partial: Vec::new(),
        }
    }

    /// The next whole line; at the end of the file, None, keeping a line not yet
    /// ended for the next call (or returning it when `last`).
    fn next(&mut self, last: bool) -> Option<String> {
        loop {
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) | Err(_) if last && !self.partial.is_empty() => break,
                Ok(0) | Err(_) => return None,
                Ok(_) if self.partial.ends_with(b"\n") => {
                    self.partial.pop();
                    break;
                }
                Ok(_) => {}
            }
        }
        let line = std::mem::take(&mut self.partial);
        Some(crate::terminal::escape_controls(&String::from_utf8_lossy(&line)).into_owned())
    }

    /// Whether the file is now shorter than what was read of it (truncated).
    fn truncated(&mut self, len: u64) -> bool {
        use std::io::Seek;
        self.reader.stream_position().is_ok_and(|at| len < at)
    }
}

/// `daemon logs -f`: the last `n` lines, then each line the daemon writes, until
/// Ctrl-C, as `tail -F` does: across rotations (the rest of the old file, then the new
/// one from its start) and truncation, and waiting for a log not there yet.
fn follow_log(path: &std::path::Path, n: usize) -> Result<i32> {
    use std::os::unix::fs::MetadataExt;
    const POLL: Duration = Duration::from_millis(200);
    let mut said = false;
    let file = loop {
        match std::fs::File::open(path) {
            Ok(f) => break f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !said {
                    eprintln!(
                        "elhaz: waiting for {} (the daemon has not written it yet)",
                        display_path(path)
                    );
                    said = true;
                }
                std::thread::sleep(POLL);
            }
            Err(e) => return Err(log_error(path, &e)),
        }
    };
    let mut ino = file.metadata().map(|m| m.ino()).unwrap_or_default();
    let mut log = LogLines::new(file);
    let first = last_lines(std::iter::from_fn(|| log.next(false)), n);
    first.iter().for_each(|l| println!("{l}"));
    loop {
        while let Some(l) = log.next(false) {
            println!("{l}");
        }
        std::thread::sleep(POLL);
        match std::fs::metadata(path) {
            Ok(m) if m.ino() != ino => {
                while let Some(l) = log.next(true) {
                    println!("{l}");
                }
                if let Ok(f) = std::fs::File::open(path) {
                    ino = f.metadata().map(|m| m.ino()).unwrap_or_default();
                    log = LogLines::new(f);
                }
            }
            Ok(m) if log.truncated(m.len()) => {
                if let Ok(f) = std::fs::File::open(path) {
                    log = LogLines::new(f);
                }
            }
            _ => {}
        }
    }
}
