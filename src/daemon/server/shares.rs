//! Shares: extra sockets that serve one session read-only (`daemon share`), opened,
//! listed and closed. Knows nothing of the daemon's own socket beyond its path.

use super::*;

/// An extra socket that serves one session, read-only (`daemon share`).
#[derive(Debug)]
pub(super) struct ShareSpec {
    pub(super) name: String,
    pub(super) socket: PathBuf,
    pub(super) whoami: bool,
    /// One more uid let through the peer check (the socket is then 0666).
    pub(super) uid: Option<u32>,
    /// The caller context of whoever shared it: the share serves that session.
    pub(super) context: SourceContext,
}

pub(super) struct Share {
    pub(super) spec: Arc<ShareSpec>,
    pub(super) task: tokio::task::AbortHandle,
}

pub(super) fn unshare(env: &Envelope, socket: Option<&Path>, shared: &Shared) -> Response {
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

pub(super) fn share_info(spec: &ShareSpec) -> ShareInfo {
    ShareInfo {
        socket: spec.socket.display().to_string(),
        config: spec.name.clone(),
        whoami: spec.whoami,
        uid: spec.uid,
    }
}

/// What a `share` request asks for.
pub(super) struct ShareAsk<'a> {
    pub(super) name: &'a str,
    pub(super) socket: Option<&'a Path>,
    pub(super) whoami: bool,
    pub(super) uid: Option<&'a WireUid>,
}

/// Opens a share: checks the session works, binds the socket, serves it.
pub(super) async fn share(
    ask: ShareAsk<'_>,
    shared: &Arc<Shared>,
    context: SourceContext,
) -> Result<Arc<ShareSpec>, (u16, Error)> {
    let name = ask.name;
    let (path, uid) = check_ask(&ask, shared)?;
    let whoami = ask.whoami;
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
    clear_stale_socket(&path)?;
    let mode = if uid.is_some() { 0o666 } else { 0o600 };
    let listener = bind_socket(&path, shared.backlog, mode).map_err(|e| (INTERNAL, e))?;
    let spec = Arc::new(ShareSpec {
        name: name.to_string(),
        socket: path.clone(),
        whoami,
        uid,
        context,
    });
    let task = tokio::spawn(serve_share(listener, shared.clone(), spec.clone()));
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

/// The socket path and uid a share asks for, once checked: an absolute path that is
/// not the daemon's own socket nor shared already, and a uid that is one.
fn check_ask(ask: &ShareAsk<'_>, shared: &Shared) -> Result<(PathBuf, Option<u32>), (u16, Error)> {
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
    Ok((path, uid))
}

/// Removes a socket left at `path` by a share that is gone (e.g. a killed daemon);
/// anything else at the path is not ours to remove.
fn clear_stale_socket(path: &Path) -> Result<(), (u16, Error)> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err((
                    CONFLICT,
                    Error::usage(format!(
                        "something already listens on {}",
                        display_path(path)
                    )),
                ));
            }
            let _ = std::fs::remove_file(path);
        }
        Ok(_) => {
            return Err((
                CONFLICT,
                Error::usage(format!("{} exists and is not a socket", display_path(path))),
            ));
        }
        Err(_) => {}
    }
    Ok(())
}

/// Accepts connections on a share until it is closed.
async fn serve_share(listener: UnixListener, shared: Arc<Shared>, spec: Arc<ShareSpec>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let permit = admit(&shared).await;
        let conn = share_connection(stream, shared.clone(), spec.clone());
        tokio::spawn(async move {
            conn.await;
            drop(permit);
        });
    }
}

pub(super) fn stopping_error() -> Error {
    Error::daemon("the daemon is stopping; share again once it runs")
}

/// One connection on a share. Boxed as a `Send` future: `handle` reaches `share`,
/// which spawns this, and the box ends that cycle for the compiler.
pub(super) fn share_connection(
    stream: UnixStream,
    shared: Arc<Shared>,
    spec: Arc<ShareSpec>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move { handle(stream, &shared, Scope::Share(spec)).await })
}

/// Closes every share when the daemon stops. Under the lock, with `stopping` set: a
/// share still being opened (waiting for STS) finds the daemon stopping instead of
/// opening a socket nobody would remove.
pub(super) fn close_all(shared: &Shared) {
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
}
