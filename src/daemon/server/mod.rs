//! The daemon: a tokio listener on a Unix socket that only its own user may use,
//! answering protocol v1 requests from the session cache. This module owns the
//! listener, the peer check and the connection's read and write; admission (slots),
//! dispatch (what a request gets) and shares live in the submodules. Knows nothing of
//! the terminal or of the client.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, listen, socket,
};
use nix::sys::stat::{Mode, umask};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use zeroize::Zeroize;

mod admission;
mod dispatch;
mod shares;

use admission::{Idle, Refusals, admit};
use dispatch::{dispatch, dispatch_share};
use shares::{Share, ShareSpec};

use super::cache::Cache;
use super::lock::check_socket_dir;
use super::protocol::{
    BAD_REQUEST, CONFLICT, CredentialsData, Envelope, FORBIDDEN, INTERNAL, MAX_ANSWER, MAX_LINE,
    NOT_FOUND, Named, Request, Response, ShareInfo, StatusData, WireUid, code_of,
};
use crate::context::SourceContext;
use crate::credentials::Fetched;
use crate::error::{Error, Kind, Result, display_path};
use crate::fsutil::ensure_private_dir;

/// Per-connection time allowed to send the request line.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once. When all are taken, the oldest connection that has
/// sent no request for [`IDLE_GRACE`] is closed to make room for a new one; when none
/// has, new ones wait in the listen queue.
pub(crate) const MAX_CONNECTIONS: usize = 256;
/// How long a connection may wait for its request line before it may be closed to make
/// room (only when every slot is taken). Real clients send theirs at once.
pub(crate) const IDLE_GRACE: Duration = Duration::from_millis(250);

pub(crate) struct ServerOptions {
    pub socket: PathBuf,
    pub backlog: u32,
    pub cache: Arc<Cache>,
    /// The daemon's own source context (see [`Shared::context`]).
    pub context: SourceContext,
}

/// State shared by every connection.
struct Shared {
    cache: Arc<Cache>,
    /// The daemon's own source context, captured at its start: the one a request that
    /// carries none (the original client's) is answered in.
    context: SourceContext,
    shutdown: Notify,
    /// True once the daemon no longer listens on its socket (see [`stop_listening`]).
    closed: tokio::sync::watch::Sender<bool>,
    started: Instant,
    uid: u32,
    socket: PathBuf,
    backlog: u32,
    permits: Arc<Semaphore>,
    /// Connections waiting for their request line (see [`admit`]).
    idle: std::sync::Mutex<Idle>,
    shares: std::sync::Mutex<BTreeMap<PathBuf, Share>>,
    /// Set (under the `shares` lock) when the daemon stops: no share opens after.
    stopping: std::sync::atomic::AtomicBool,
    /// Refused peers by uid (see [`Shared::refused`]).
    refusals: std::sync::Mutex<std::collections::HashMap<u32, Refusals>>,
}

/// What a connection may do: everything (the daemon's own socket) or one share.
#[derive(Clone)]
enum Scope {
    Full,
    Share(Arc<ShareSpec>),
}

/// Binds `socket` with `mode` (by umask, before bind: the file is never more open) and
/// the given backlog.
fn bind_socket(socket: &Path, backlog: u32, mode: u32) -> Result<UnixListener> {
    // The umask is the process's: two shares bound at once (one 0600, one 0666) would
    // otherwise get each other's mode and leave the wrong umask behind.
    static UMASK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let fail = |what: &str, e: nix::Error| {
        Error::daemon(format!("{what} {}: {}", display_path(socket), e.desc()))
    };
    let fd: OwnedFd = socket_fd().map_err(|e| fail("cannot create socket", e))?;
    let addr = UnixAddr::new(socket).map_err(|e| fail("bad socket path", e))?;
    let bound = {
        let _one_at_a_time = UMASK.lock().unwrap_or_else(|p| p.into_inner());
        let old = umask(Mode::from_bits_truncate(0o777 & !mode));
        let bound = bind(fd.as_raw_fd(), &addr);
        umask(old);
        bound
    };
    bound.map_err(|e| fail("cannot bind", e))?;
    let backlog = Backlog::new(backlog.clamp(1, 4096) as i32).unwrap_or(Backlog::MAXCONN);
    listen(&fd, backlog).map_err(|e| fail("cannot listen on", e))?;
    // SAFETY: `fd` is a valid listening socket that we own; ownership moves to std.
    let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd_into_raw(fd)) };
    std_listener
        .set_nonblocking(true)
        .map_err(|e| Error::io(Kind::Daemon, "cannot configure", socket, &e))?;
    UnixListener::from_std(std_listener)
        .map_err(|e| Error::io(Kind::Daemon, "cannot listen on", socket, &e))
}

fn socket_fd() -> nix::Result<OwnedFd> {
    socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
}

fn fd_into_raw(fd: OwnedFd) -> i32 {
    std::os::fd::IntoRawFd::into_raw_fd(fd)
}

/// Runs the daemon until SIGTERM, SIGINT or a `kill` request. The caller holds the
/// lock (see [`take_lock`]).
pub(crate) async fn serve(opts: ServerOptions) -> Result<()> {
    // We hold the lock: any socket file left here is stale.
    match std::fs::remove_file(&opts.socket) {
        Ok(()) => tracing::info!(socket = %opts.socket.display(), "removed stale socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::io(
                Kind::Daemon,
                "cannot remove stale socket",
                &opts.socket,
                &e,
            ));
        }
    }
    let listener = bind_socket(&opts.socket, opts.backlog, 0o600)?;
    // The socket file as bound: when it is removed or replaced, clients can no longer
    // reach this daemon, so it exits (releasing its lock) and the next command starts a
    // fresh one, as gpg-agent does.
    let bound = file_id(&opts.socket);
    let mut watch = tokio::time::interval(SOCKET_CHECK);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shared = Arc::new(Shared {
        cache: opts.cache,
        context: opts.context,
        shutdown: Notify::new(),
        closed: tokio::sync::watch::Sender::new(false),
        started: Instant::now(),
        uid: nix::unistd::getuid().as_raw(),
        socket: opts.socket.clone(),
        backlog: opts.backlog,
        permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        idle: std::sync::Mutex::new(Idle::default()),
        shares: std::sync::Mutex::new(BTreeMap::new()),
        stopping: std::sync::atomic::AtomicBool::new(false),
        refusals: std::sync::Mutex::new(std::collections::HashMap::new()),
    });
    tracing::info!(socket = %opts.socket.display(), pid = std::process::id(), "daemon listening");

    let permits = shared.permits.clone();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::daemon(format!("cannot install signal handler: {e}")))?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::daemon(format!("cannot install signal handler: {e}")))?;

    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shared.shutdown.notified() => break,
            _ = sigterm.recv() => { tracing::info!("SIGTERM"); break }
            _ = sigint.recv() => { tracing::info!("SIGINT"); break }
            _ = watch.tick() => {
                shared.flush_refusals();
                if bound.is_some() && file_id(&opts.socket) != bound {
                    tracing::warn!(socket = %opts.socket.display(), "the socket was removed or replaced: stopping");
                    break;
                }
                continue;
            }
        };
        // Accepted first, then given a slot: a full house of idle connections makes
        // room for this one (see `admit`). A stop asked for meanwhile waits for the
        // next turn: this connection is served, not dropped.
        spawn_full(stream, &shared).await;
    }

    // Graceful: stop listening (shares too), let in-flight requests finish (10 s at
    // most).
    stop_listening(listener, &opts.socket, bound, &shared).await;
    shares::close_all(&shared);
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        permits.acquire_many(MAX_CONNECTIONS as u32),
    )
    .await;
    tracing::info!("daemon stopped");
    Ok(())
}

/// Serves a connection of the daemon's own socket once it has a slot.
async fn spawn_full(stream: UnixStream, shared: &Arc<Shared>) {
    let permit = admit(shared).await;
    let shared = shared.clone();
    tokio::spawn(async move {
        handle(stream, &shared, Scope::Full).await;
        drop(permit);
    });
}

/// Stops listening, first of all when the daemon stops: the socket file goes (only
/// our own: one that replaced it belongs to someone else), then the connections
/// already queued are served rather than reset, then the listener closes. Only then
/// is a `kill` answered (see [`handle`]): a client that connects again until nothing
/// answers, as the original's `daemon stop` does, finds no socket instead of having
/// its connection reset.
async fn stop_listening(
    listener: UnixListener,
    socket: &Path,
    bound: Option<(u64, u64)>,
    shared: &Arc<Shared>,
) {
    if bound.is_some() && file_id(socket) == bound {
        let _ = std::fs::remove_file(socket);
    }
    // Without its file no connection can join the queue: take what is in it.
    if let Ok(listener) = listener.into_std() {
        loop {
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue;
                }
                // WouldBlock: the queue is empty.
                Err(_) => break,
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if let Ok(stream) = UnixStream::from_std(stream) {
                spawn_full(stream, shared).await;
            }
        }
    }
    shared.closed.send_replace(true);
}

/// How long a `kill` waits for the listener to close before it answers anyway.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// How often the daemon checks that its socket is still the one it bound.
pub(crate) const SOCKET_CHECK: Duration = Duration::from_secs(1);

/// The device and inode of a path (not followed), to tell a file from its replacement.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

async fn handle(mut stream: UnixStream, shared: &Arc<Shared>, scope: Scope) {
    // Peer check before anything is read.
    let extra_uid = match &scope {
        Scope::Share(spec) => spec.uid,
        Scope::Full => None,
    };
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == shared.uid || Some(cred.uid()) == extra_uid => {}
        Ok(cred) => {
            shared.refused(cred.uid(), cred.pid().unwrap_or_default());
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "refused connection: no peer credentials");
            return;
        }
    }
    let mut reader = BufReader::new(&mut stream);
    let mut line = Vec::with_capacity(512);
    let mut limited = (&mut reader).take(MAX_LINE as u64 + 1);
    let (idle, mut evicted) = shared.enter_idle();
    let read = tokio::select! {
        r = tokio::time::timeout(READ_TIMEOUT, limited.read_until(b'\n', &mut line)) => r,
        _ = &mut evicted => {
            tracing::debug!("idle connection closed to make room for another");
            return;
        }
    };
    drop(idle);
    let (mut response, kill) = match read {
        Err(_) => {
            tracing::debug!("client sent no request in time");
            return;
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "read failed");
            return;
        }
        Ok(Ok(0)) => return,
        Ok(Ok(_)) => {
            if line.last() == Some(&b'\n') {
                line.pop();
            } else if line.len() > MAX_LINE {
                let r = Response::bad_request(format!(
                    "bad request: line longer than {MAX_LINE} bytes"
                ));
                let _ = stream.write_all(&r.to_line()).await;
                return;
            }
            match (Envelope::parse(&line), &scope) {
                (Ok(env), Scope::Share(spec)) => (dispatch_share(env, spec, shared).await, false),
                (Ok(env), Scope::Full) if env.request == (Request::Kill {}) => {
                    (Response::ok(&env.request_id, None), true)
                }
                (Ok(env), Scope::Full) => (dispatch(env, shared).await, false),
                (Err(msg), _) => (Response::bad_request(msg), false),
            }
        }
    };
    if kill {
        stop_first(shared).await;
    }
    let mut out = response.to_line();
    if out.len() > MAX_ANSWER + 1 {
        // Longer than a client reads (it would give up on it): say so instead.
        tracing::warn!(
            bytes = out.len(),
            "an answer longer than clients read was not sent"
        );
        out.zeroize();
        out = Response::err(
            &response.request_id,
            INTERNAL,
            format!("the answer is longer than {} MiB", MAX_ANSWER >> 20),
        )
        .to_line();
    }
    let _ = stream.write_all(&out).await;
    // Credentials do not stay in freed memory.
    out.zeroize();
    response.wipe();
    line.zeroize();
    let _ = stream.shutdown().await;
}

/// A `kill`: the daemon stops listening before the answer goes (see
/// [`stop_listening`]).
async fn stop_first(shared: &Shared) {
    tracing::info!("kill requested");
    let mut closed = shared.closed.subscribe();
    shared.shutdown.notify_one();
    if tokio::time::timeout(CLOSE_WAIT, closed.wait_for(|c| *c))
        .await
        .is_err()
    {
        tracing::warn!("the socket did not close in time: answering the kill anyway");
    }
}
