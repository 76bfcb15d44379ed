//! What each request gets: the typed request matched to the cache, with the
//! config-dir and caller-context checks first, and the narrower share dispatch. Knows
//! nothing of sockets or connection slots.

use super::shares::{ShareAsk, ShareSpec, share, share_info, unshare};
use super::*;

/// Whether two config directories are the same (by their real paths when they exist).
pub(super) fn same_dir(a: &Path, b: &Path) -> bool {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    a == b || real(a) == real(b)
}

/// The answer to a failed request: its code from the protocol's table; its kind and
/// hint for our client.
pub(super) fn error_response(env: &Envelope, err: &Error) -> Response {
    error_with(env, code_of(err.kind), err)
}

pub(super) fn error_with(env: &Envelope, code: u16, err: &Error) -> Response {
    Response::from_error(&env.request_id, env.caller.extended, code, err)
}

pub(super) fn credentials_data(env: &Envelope, f: &Fetched) -> CredentialsData {
    let c = &f.credentials;
    let ext = env.caller.extended;
    CredentialsData {
        access_key: c.access_key_id.clone(),
        secret_key: c.secret_access_key().to_string(),
        token: c.session_token().to_string(),
        expiry_time: crate::times::with_offset(c.expiration),
        lifetime_seconds: ext.then(|| c.lifetime_secs()),
        source: ext.then(|| f.source.to_string()),
        region: if ext { f.region.clone() } else { None },
        context_ref: None,
        notes: (ext && !f.notes.is_empty()).then(|| f.notes.clone()),
    }
}

/// The caller context of a request: the one it carries (our client), else the one
/// this daemon captured from its own environment at start (the original client).
/// A context from inside a session carries no source keys (they are never exported);
/// with `context_ref` naming one of our sessions' contexts that agrees on everything
/// else, that context supplies them.
pub(super) fn request_context(
    env: &Envelope,
    shared: &Shared,
) -> std::result::Result<SourceContext, Box<Response>> {
    let source = match &env.caller.context {
        None => return Ok(shared.context.clone()),
        Some(v) => SourceContext::from_json(v)
            .map_err(|msg| Box::new(Response::err(&env.request_id, BAD_REQUEST, msg)))?,
    };
    if !source.has_secrets()
        && let Some(r) = &env.caller.context_ref
        && let Some(stored) = shared.cache.context_by_ref(r)
        && stored.same_selectors(&source)
    {
        return Ok(stored);
    }
    Ok(source)
}

pub(super) fn not_cached(env: &Envelope, name: &str) -> Response {
    Response::err(
        &env.request_id,
        NOT_FOUND,
        format!("session {name:?} is not in the daemon; add it: elhaz daemon add {name}"),
    )
}

/// Checks what every action on one session needs (a name, and our config directory);
/// None when the request may go on.
pub(super) fn admit_named(env: &Envelope, shared: &Shared) -> Option<Response> {
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

/// Answers one request. What the caller's helper chain is resolving (when the caller
/// is an elhaz run as a helper) scopes the fetches the request makes: their own
/// helpers learn it, and a loop through the daemon ends at once.
pub(super) async fn dispatch(env: Envelope, shared: &Arc<Shared>) -> Response {
    let resolving = env.caller.resolving.clone().unwrap_or_default();
    crate::credentials::external::RESOLVING
        .scope(resolving, answer(env, shared))
        .await
}

async fn answer(env: Envelope, shared: &Arc<Shared>) -> Response {
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
    let source = match request_context(&env, shared) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let id = env.request_id.as_str();
    match &env.request {
        Request::Add { token_code, .. } => {
            match cache.add(&name, token_code.clone(), &source).await {
                Ok(()) => Response::with(id, &Named { config: name }),
                Err(e) => error_response(&env, &e),
            }
        }
        Request::Credentials {
            autoadd,
            min_remaining_seconds,
            ..
        } => {
            let result = cache
                .credentials(&name, *min_remaining_seconds, *autoadd, &source)
                .await;
            served(&env, &name, &source, result)
        }
        Request::Refresh { .. } => {
            let result = cache.refresh(&name, &source).await;
            served(&env, &name, &source, result)
        }
        Request::List {} => Response::with(id, &cache.list()),
        Request::Remove { .. } => {
            if cache.remove(&name) {
                Response::with(id, &Named { config: name })
            } else {
                not_cached(&env, &name)
            }
        }
        Request::Whoami { .. } => match cache.whoami(&name, &source).await {
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
            match Box::pin(share(asked, shared, source)).await {
                Ok(spec) => Response::with(id, &share_info(&spec)),
                Err((code, e)) => error_with(&env, code, &e),
            }
        }
        Request::Unshare { socket } => unshare(&env, socket.as_deref(), shared),
        Request::Forget { sso_start_url } => {
            let n = cache.forget_sso(sso_start_url.as_deref());
            Response::with(id, &serde_json::json!({ "forgotten": n }))
        }
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
pub(super) fn served(
    env: &Envelope,
    name: &str,
    source: &SourceContext,
    result: Result<Option<Fetched>>,
) -> Response {
    match result {
        Ok(Some(f)) => {
            let mut data = credentials_data(env, &f);
            // For a session built from these: which context served it.
            if env.caller.context.is_some() {
                data.context_ref = Some(crate::context::hex(&source.keyed_hash()));
            }
            Response::with(&env.request_id, &data)
        }
        Ok(None) => not_cached(env, name),
        Err(e) => error_response(env, &e),
    }
}

pub(super) fn status(shared: &Shared) -> StatusData {
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

/// A request on a share: `credentials` for its one session (and `whoami` when
/// allowed); everything else is 403.
pub(super) async fn dispatch_share(env: Envelope, spec: &ShareSpec, shared: &Shared) -> Response {
    let action = env.request.action();
    tracing::info!(action = %action, share = %spec.socket.display(), request_id = %env.request_id, "share request");
    // A refusal of what the share does not serve is a usage error (exit 2), with
    // what it does serve.
    let refuse =
        |why: String, hint: String| error_with(&env, FORBIDDEN, &Error::usage(why).with_hint(hint));
    if let Some(asked) = env.request.config()
        && asked != spec.name
    {
        return refuse(
            format!("this socket serves only {:?}", spec.name),
            format!("ask it for {}, or use another share", spec.name),
        );
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
        _ => refuse(
            format!("action {action:?} is not allowed on a shared socket"),
            if matches!(env.request, Request::Whoami { .. }) {
                "share it with whoami allowed: elhaz daemon share NAME --whoami".to_string()
            } else {
                "a share serves credentials (and whoami when shared with --whoami)".to_string()
            },
        ),
    }
}
