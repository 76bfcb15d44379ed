//! The daemon: a tokio listener on a Unix socket that only its own user may use,
//! answering protocol v1 requests from the session cache.

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

use super::cache::Cache;
use super::lock::check_socket_dir;
use super::protocol::{
    BAD_REQUEST, CONFLICT, CredentialsData, Envelope, FORBIDDEN, INTERNAL, MAX_LINE, NOT_FOUND,
    Named, Request, Response, ShareInfo, StatusData, WireUid, code_of,
};
use crate::config::store::ensure_private_dir;
use crate::credentials::context::SourceContext;
use crate::credentials::{Fetched, iso8601_offset};
use crate::error::{Error, Kind, Result, display_path};

/// Per-connection time allowed to send the request line.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once. When all are taken, the oldest connection that has
/// sent no request for [`IDLE_GRACE`] is closed to make room for a new one; when none
/// has, new ones wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a connection may wait for its request line before it may be closed to make
/// room (only when every slot is taken). Real clients send theirs at once.
pub const IDLE_GRACE: Duration = Duration::from_millis(250);

/// The connections still waiting for their request line, oldest first, each with the
/// sender that closes it.
#[derive(Default)]
struct Idle {
    next: u64,
    waiting: BTreeMap<u64, (Instant, oneshot::Sender<()>)>,
}

/// A connection's place among the idle ones; leaves it when dropped.
struct IdleEntry<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for IdleEntry<'_> {
    fn drop(&mut self) {
        self.shared.idle().waiting.remove(&self.id);
    }
}

impl Shared {
    fn idle(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection that is about to read its request line.
    fn enter_idle(&self) -> (IdleEntry<'_>, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut idle = self.idle();
        let id = idle.next;
        idle.next += 1;
        idle.waiting.insert(id, (Instant::now(), tx));
        (IdleEntry { shared: self, id }, rx)
    }

    /// Closes the oldest connection idle for at least [`IDLE_GRACE`]. Otherwise says
    /// how long until one may be (None: no connection is idle).
    fn evict_oldest_idle(&self) -> Result<(), Option<Duration>> {
        let mut idle = self.idle();
        loop {
            let Some(entry) = idle.waiting.first_entry() else {
                return Err(None);
            };
            let age = entry.get().0.elapsed();
            if age < IDLE_GRACE {
                return Err(Some(IDLE_GRACE - age));
            }
            let (_, tx) = entry.remove();
            // A connection that has just read its line is no longer idle: next.
            if tx.send(()).is_ok() {
                return Ok(());
            }
        }
    }
}

/// A slot for a connection just accepted: a free one; else the slot of the oldest
/// idle connection, which is closed; else (every slot busy with a request) the first
/// to be freed. A stalled or slow-loris client thus never locks out a real one.
async fn admit(shared: &Shared) -> OwnedSemaphorePermit {
    let mut logged = false;
    loop {
        if let Ok(permit) = shared.permits.clone().try_acquire_owned() {
            return permit;
        }
        let wait = match shared.evict_oldest_idle() {
            Ok(()) => {
                if !logged {
                    tracing::debug!("all connection slots taken: closed the oldest idle one");
                    logged = true;
                }
                // Its slot is freed as soon as its task sees the close.
                IDLE_GRACE
            }
            Err(Some(until)) => until,
            Err(None) => IDLE_GRACE,
        };
        tokio::select! {
            p = shared.permits.clone().acquire_owned() => {
                return p.expect("semaphore is never closed");
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

pub struct ServerOptions {
    pub socket: PathBuf,
    pub backlog: u32,
    pub cache: Arc<Cache>,
}

/// State shared by every connection.
struct Shared {
    cache: Arc<Cache>,
    shutdown: Notify,
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

/// An extra socket that serves one session, read-only (`daemon share`).
#[derive(Debug)]
struct ShareSpec {
    name: String,
    socket: PathBuf,
    whoami: bool,
    /// One more uid let through the peer check (the socket is then 0666).
    uid: Option<u32>,
    /// The caller context of whoever shared it: the share serves that session.
    context: SourceContext,
}

struct Share {
    spec: Arc<ShareSpec>,
    task: tokio::task::AbortHandle,
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
pub async fn serve(opts: ServerOptions) -> Result<()> {
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
        shutdown: Notify::new(),
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
        // room for this one (see `admit`).
        let permit = tokio::select! {
            p = admit(&shared) => p,
            _ = shared.shutdown.notified() => break,
            _ = sigterm.recv() => { tracing::info!("SIGTERM"); break }
            _ = sigint.recv() => { tracing::info!("SIGINT"); break }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            handle(stream, &shared, Scope::Full).await;
            drop(permit);
        });
    }

    // Graceful: stop listening (shares too), let in-flight requests finish (10 s at
    // most).
    drop(listener);
    // Only our own socket: one that replaced it belongs to someone else.
    if bound.is_some() && file_id(&opts.socket) == bound {
        let _ = std::fs::remove_file(&opts.socket);
    }
    // Under the lock, with `stopping` set: a share still being opened (waiting for STS)
    // finds the daemon stopping instead of opening a socket nobody would remove.
    let shares = {
        let mut m = shared.shares.lock().unwrap_or_else(|p| p.into_inner());
        shared
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        std::mem::take(&mut *m)
    };
    for share in shares.into_values() {
        share.task.abort();
        let _ = std::fs::remove_file(&share.spec.socket);
    }
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        permits.acquire_many(MAX_CONNECTIONS as u32),
    )
    .await;
    tracing::info!("daemon stopped");
    Ok(())
}

/// How often the daemon checks that its socket is still the one it bound.
pub const SOCKET_CHECK: Duration = Duration::from_secs(1);

/// The device and inode of a path (not followed), to tell a file from its replacement.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Refusals of another uid are logged once per this interval per uid; the ones in
/// between are counted, and the count is logged when the interval ends. A refused
/// user flooding a socket thus cannot fill the log and rotate the real lines away.
pub const REFUSAL_INTERVAL: Duration = Duration::from_secs(10);

/// Refusals of one uid in the current interval.
struct Refusals {
    since: Instant,
    unlogged: u64,
}

impl Shared {
    /// Logs a refused peer: the first of an interval in full, the others counted.
    fn refused(&self, uid: u32, pid: i32) {
        let mut m = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = m.get_mut(&uid) {
            r.unlogged += 1;
            return;
        }
        m.insert(
            uid,
            Refusals {
                since: Instant::now(),
                unlogged: 0,
            },
        );
        drop(m);
        tracing::warn!(
            peer_uid = uid,
            peer_pid = pid,
            "refused connection from another user"
        );
    }

    /// Ends the intervals that are over: one line with the count of the refusals not
    /// logged one by one, if any.
    fn flush_refusals(&self) {
        let mut m = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|&uid, r| {
            if r.since.elapsed() < REFUSAL_INTERVAL {
                return true;
            }
            if r.unlogged == 0 {
                return false;
            }
            tracing::warn!(
                peer_uid = uid,
                count = r.unlogged,
                seconds = r.since.elapsed().as_secs(),
                "refused more connections from another user (counted, not logged one by one)"
            );
            r.since = Instant::now();
            r.unlogged = 0;
            true
        });
    }
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
    let mut out = response.to_line();
    let _ = stream.write_all(&out).await;
    // Credentials do not stay in freed memory.
    out.zeroize();
    response.wipe();
    line.zeroize();
    let _ = stream.shutdown().await;
    if kill {
        tracing::info!("kill requested");
        shared.shutdown.notify_one();
    }
}

/// Whether two config directories are the same (by their real paths when they exist).
fn same_dir(a: &Path, b: &Path) -> bool {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    a == b || real(a) == real(b)
}

/// The answer to a failed request: its code from the protocol's table; its kind and
/// hint for our client.
fn error_response(env: &Envelope, err: &Error) -> Response {
    error_with(env, code_of(err.kind), err)
}

fn error_with(env: &Envelope, code: u16, err: &Error) -> Response {
    Response::from_error(&env.request_id, env.caller.extended, code, err)
}

fn credentials_data(env: &Envelope, f: &Fetched) -> CredentialsData {
    let c = &f.credentials;
    let ext = env.caller.extended;
    CredentialsData {
        access_key: c.access_key_id.clone(),
        secret_key: c.secret_access_key().to_string(),
        token: c.session_token().to_string(),
        expiry_time: iso8601_offset(c.expiration),
        lifetime_seconds: ext.then(|| c.lifetime_secs()),
        source: ext.then(|| f.source.to_string()),
        region: if ext { f.region.clone() } else { None },
        context_ref: None,
    }
}

/// The caller context of a request: the one it carries (our client), else the one
/// this daemon captured from its own environment at start (the original client).
/// A context from inside a session carries no source keys (they are never exported);
/// with `context_ref` naming one of our sessions' contexts that agrees on everything
/// else, that context supplies them.
fn request_context(
    env: &Envelope,
    cache: &Cache,
) -> std::result::Result<SourceContext, Box<Response>> {
    let ctx = match &env.caller.context {
        None => return Ok(SourceContext::caller().clone()),
        Some(v) => SourceContext::from_json(v)
            .map_err(|msg| Box::new(Response::err(&env.request_id, BAD_REQUEST, msg)))?,
    };
    if !ctx.has_secrets()
        && let Some(r) = &env.caller.context_ref
        && let Some(stored) = cache.context_by_ref(r)
        && stored.same_selectors(&ctx)
    {
        return Ok(stored);
    }
    Ok(ctx)
}

fn not_cached(env: &Envelope, name: &str) -> Response {
    Response::err(
        &env.request_id,
        NOT_FOUND,
        format!("session {name:?} is not in the daemon; add it: elhaz daemon add {name}"),
    )
}

/// Checks what every action on one session needs (a name, and our config directory);
/// None when the request may go on.
fn admit_named(env: &Envelope, shared: &Shared) -> Option<Response> {
    let name = env.request.session()?;
    if name.is_empty() {
        return Some(Response::err(
            &env.request_id,
            BAD_REQUEST,
            format!(
                "bad request: action {:?} needs payload.config",
                env.request.action()
            ),
        ));
    }
    let theirs = env.caller.config_dir.as_deref()?;
    if same_dir(theirs, shared.cache.config_dir()) {
        return None;
    }
    let err = Error::usage(format!(
        "the daemon on {} reads configs from {}, not {}",
        display_path(&shared.socket),
        display_path(shared.cache.config_dir()),
        display_path(theirs)
    ))
    .with_hint(
        "restart it with yours: elhaz daemon stop; or give each config dir its own --socket-path",
    );
    Some(error_with(env, CONFLICT, &err))
}

async fn dispatch(env: Envelope, shared: &Arc<Shared>) -> Response {
    let name = env.request.session().unwrap_or_default().to_string();
    let action = env.request.action();
    // Reads are frequent (every exec, hook and SDK poll): debug. Changes stay at info.
    if matches!(action, "credentials" | "list" | "status" | "whoami") {
        tracing::debug!(action = %action, config = %name, request_id = %env.request_id, "request");
    } else {
        tracing::info!(action = %action, config = %name, request_id = %env.request_id, "request");
    }
    if let Some(refused) = admit_named(&env, shared) {
        return refused;
    }
    let cache = &shared.cache;
    let ctx = match request_context(&env, cache) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let id = env.request_id.as_str();
    match &env.request {
        Request::Add { token_code, .. } => match cache.add(&name, token_code.clone(), &ctx).await {
            Ok(()) => Response::with(id, &Named { config: name }),
            Err(e) => error_response(&env, &e),
        },
        Request::Credentials {
            autoadd,
            min_remaining_seconds,
            ..
        } => {
            let result = cache
                .credentials(&name, *min_remaining_seconds, *autoadd, &ctx)
                .await;
            served(&env, &name, &ctx, result)
        }
        Request::Refresh { .. } => {
            let result = cache.refresh(&name, &ctx).await;
            served(&env, &name, &ctx, result)
        }
        Request::List {} => Response::with(id, &cache.list()),
        Request::Remove { .. } => {
            if cache.remove(&name) {
                Response::with(id, &Named { config: name })
            } else {
                not_cached(&env, &name)
            }
        }
        Request::Whoami { .. } => match cache.whoami(&name, &ctx).await {
            Ok(Some(who)) => Response::with(id, &who),
            Ok(None) => not_cached(&env, &name),
            Err(e) => error_response(&env, &e),
        },
        Request::Status {} => Response::with(id, &status(shared)),
        Request::Share {
            socket,
            whoami,
            uid,
            ..
        } => {
            let asked = ShareAsk {
                name: &name,
                socket: socket.as_deref(),
                whoami: *whoami,
                uid: uid.as_ref(),
            };
            match Box::pin(share(asked, shared, ctx)).await {
                Ok(spec) => Response::with(id, &share_info(&spec)),
                Err((code, e)) => error_with(&env, code, &e),
            }
        }
        Request::Unshare { socket } => unshare(&env, socket.as_deref(), shared),
        // Answered before dispatch (see `handle`).
        Request::Kill {} => Response::ok(id, None),
        Request::Unknown(other) => Response::err(
            id,
            BAD_REQUEST,
            format!("bad request: unknown action {other:?}"),
        ),
    }
}

/// The answer to `credentials` or `refresh`.
fn served(
    env: &Envelope,
    name: &str,
    ctx: &SourceContext,
    result: Result<Option<Fetched>>,
) -> Response {
    match result {
        Ok(Some(f)) => {
            let mut data = credentials_data(env, &f);
            // For a session built from these: which context served it.
            if env.caller.context.is_some() {
                data.context_ref = Some(crate::credentials::context::hex(&ctx.keyed_hash()));
            }
            Response::with(&env.request_id, &data)
        }
        Ok(None) => not_cached(env, name),
        Err(e) => error_response(env, &e),
    }
}

fn status(shared: &Shared) -> StatusData {
    StatusData {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        uptime_seconds: shared.started.elapsed().as_secs(),
        socket: shared.socket.display().to_string(),
        sessions: shared.cache.describe(),
        shares: shared
            .shares
            .lock()
            .map(|m| m.values().map(|s| share_info(&s.spec)).collect())
            .unwrap_or_default(),
    }
}

fn unshare(env: &Envelope, socket: Option<&Path>, shared: &Shared) -> Response {
    let Some(path) = socket else {
        return Response::err(
            &env.request_id,
            BAD_REQUEST,
            "bad request: unshare needs payload.socket",
        );
    };
    let removed = shared.shares.lock().ok().and_then(|mut m| m.remove(path));
    match removed {
        Some(share) => {
            share.task.abort();
            let _ = std::fs::remove_file(&share.spec.socket);
            tracing::info!(socket = %path.display(), config = %share.spec.name, "share closed");
            Response::with(&env.request_id, &share_info(&share.spec))
        }
        None => Response::err(
            &env.request_id,
            NOT_FOUND,
            format!("no share at {}", display_path(path)),
        ),
    }
}

fn share_info(spec: &ShareSpec) -> ShareInfo {
    ShareInfo {
        socket: spec.socket.display().to_string(),
        config: spec.name.clone(),
        whoami: spec.whoami,
        uid: spec.uid,
    }
}

/// What a `share` request asks for.
struct ShareAsk<'a> {
    name: &'a str,
    socket: Option<&'a Path>,
    whoami: bool,
    uid: Option<&'a WireUid>,
}

/// Opens a share: checks the session works, binds the socket, serves it.
async fn share(
    ask: ShareAsk<'_>,
    shared: &Arc<Shared>,
    context: SourceContext,
) -> Result<Arc<ShareSpec>, (u16, Error)> {
    let name = ask.name;
    let Some(path) = ask.socket.map(Path::to_path_buf) else {
        return Err((
            BAD_REQUEST,
            Error::usage("bad request: share needs payload.socket"),
        ));
    };
    if !path.is_absolute() {
        return Err((
            BAD_REQUEST,
            Error::usage(format!(
                "the share socket must be an absolute path, not {}",
                path.display()
            )),
        ));
    }
    if path == shared.socket {
        return Err((
            CONFLICT,
            Error::usage("the share socket cannot be the daemon's own socket"),
        ));
    }
    let uid = match ask.uid {
        None => None,
        Some(WireUid::Id(u)) => Some(*u),
        Some(WireUid::Bad(_)) => {
            return Err((
                BAD_REQUEST,
                Error::usage("bad request: uid must be a number"),
            ));
        }
    };
    let whoami = ask.whoami;
    if shared
        .shares
        .lock()
        .map(|m| m.contains_key(&path))
        .unwrap_or(false)
    {
        let err = Error::usage(format!("{} is already shared", display_path(&path))).with_hint(
            format!("close it first: elhaz daemon unshare {}", path.display()),
        );
        return Err((CONFLICT, err));
    }
    // The session must work before anyone is promised it.
    shared
        .cache
        .credentials(name, 0, true, &context)
        .await
        .map_err(|e| (code_of(e.kind), e))?;
    if let Some(dir) = path.parent() {
        ensure_private_dir(dir, Kind::Daemon).map_err(|e| (INTERNAL, e))?;
        check_socket_dir(dir).map_err(|e| (CONFLICT, e))?;
    }
    // A socket left by a share that is gone (e.g. a killed daemon) may be replaced;
    // anything else at the path is not ours to remove.
    match std::fs::symlink_metadata(&path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err((
                    CONFLICT,
                    Error::usage(format!(
                        "something already listens on {}",
                        display_path(&path)
                    )),
                ));
            }
            let _ = std::fs::remove_file(&path);
        }
        Ok(_) => {
            return Err((
                CONFLICT,
                Error::usage(format!(
                    "{} exists and is not a socket",
                    display_path(&path)
                )),
            ));
        }
        Err(_) => {}
    }
    let mode = if uid.is_some() { 0o666 } else { 0o600 };
    let listener = bind_socket(&path, shared.backlog, mode).map_err(|e| (INTERNAL, e))?;
    let spec = Arc::new(ShareSpec {
        name: name.to_string(),
        socket: path.clone(),
        whoami,
        uid,
        context,
    });
    let task_shared = shared.clone();
    let task_spec = spec.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let permit = admit(&task_shared).await;
            let conn = share_connection(stream, task_shared.clone(), task_spec.clone());
            tokio::spawn(async move {
                conn.await;
                drop(permit);
            });
        }
    });
    {
        let mut m = shared.shares.lock().unwrap_or_else(|p| p.into_inner());
        if shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            // The daemon stopped while the session was fetched: it has closed its
            // shares already, so this one must not open.
            task.abort();
            let _ = std::fs::remove_file(&path);
            return Err((INTERNAL, stopping_error()));
        }
        m.insert(
            path.clone(),
            Share {
                spec: spec.clone(),
                task: task.abort_handle(),
            },
        );
    }
    tracing::info!(socket = %path.display(), config = %name, uid = ?uid, whoami, "share opened");
    Ok(spec)
}

fn stopping_error() -> Error {
    Error::daemon("the daemon is stopping; share again once it runs")
}

/// One connection on a share. Boxed as a `Send` future: `handle` reaches `share`,
/// which spawns this, and the box ends that cycle for the compiler.
fn share_connection(
    stream: UnixStream,
    shared: Arc<Shared>,
    spec: Arc<ShareSpec>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move { handle(stream, &shared, Scope::Share(spec)).await })
}

/// A request on a share: `credentials` for its one session (and `whoami` when
/// allowed); everything else is 403.
async fn dispatch_share(env: Envelope, spec: &ShareSpec, shared: &Shared) -> Response {
    let action = env.request.action();
    tracing::info!(action = %action, share = %spec.socket.display(), request_id = %env.request_id, "share request");
    let forbidden = |why: String| Response::err(&env.request_id, FORBIDDEN, why);
    if let Some(asked) = env.request.config()
        && asked != spec.name
    {
        return forbidden(format!("this socket serves only {:?}", spec.name));
    }
    let cache = &shared.cache;
    match &env.request {
        Request::Credentials {
            min_remaining_seconds,
            ..
        } => match cache
            .credentials(&spec.name, *min_remaining_seconds, true, &spec.context)
            .await
        {
            Ok(Some(f)) => Response::with(&env.request_id, &credentials_data(&env, &f)),
            Ok(None) => not_cached(&env, &spec.name),
            Err(e) => error_response(&env, &e),
        },
        Request::Whoami { .. } if spec.whoami => {
            if let Err(e) = cache.credentials(&spec.name, 0, true, &spec.context).await {
                return error_response(&env, &e);
            }
            match cache.whoami(&spec.name, &spec.context).await {
                Ok(Some(id)) => Response::with(&env.request_id, &id),
                Ok(None) => not_cached(&env, &spec.name),
                Err(e) => error_response(&env, &e),
            }
        }
        _ => forbidden(format!(
            "action {action:?} is not allowed on a shared socket"
        )),
    }
}
