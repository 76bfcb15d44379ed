//! The container credentials endpoint for `--server`: a loopback HTTP server that
//! every AWS SDK and the aws CLI poll for fresh credentials
//! (AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN), so a
//! child can outlive any one set of credentials. When to refresh is the refresh
//! gate's (credentials::gate); where credentials come from is the caller's `Source`:
//! it knows nothing of the daemon. Who gets a connection, and for how long, is
//! `crate::loopback`'s.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::credentials::Served;
use crate::credentials::gate::{self, Gate};
use crate::credentials::policy::{DEFAULT_MIN_REMAINING_SECS, Policy};
use crate::error::{Error, Result};
use crate::times::zulu;

/// Where credentials come from (the broker), called on a plain thread.
pub(crate) type Source = Box<dyn FnMut() -> Result<Served> + Send>;

type Reply = oneshot::Sender<Result<Served>>;

/// A running endpoint. Dropping the runtime that serves it closes the port.
pub(crate) struct Endpoint {
    pub uri: String,
    pub token: String,
}

/// 32 random bytes as hex: the bearer token (256 bits).
fn random_hex(bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b)
        .map_err(|e| Error::other(format!("no randomness for the endpoint token: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Constant-time comparison, so the token cannot be guessed byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One thread fetches for all requests (single-flight), reusing credentials while the
/// refresh policy allows, with a 15-minute ask as exec has. After a failed refresh it
/// tries again at most once per 30 s, and serves the old credentials meanwhile while
/// they are still valid (as the daemon does), so an STS outage neither fails a child
/// that holds good credentials nor turns each of its requests into STS calls.
fn spawn_fetcher(
    mut source: Source,
    initial: Option<Served>,
    policy: Policy,
) -> mpsc::Sender<Reply> {
    let (tx, rx) = mpsc::channel::<Reply>();
    std::thread::spawn(move || {
        let mut cached: Option<Served> = initial;
        let mut failed: Option<(tokio::time::Instant, Error)> = None;
        while let Ok(reply) = rx.recv() {
            let failure = gate::recent(failed.as_ref().map(|f| f.0), failed.as_ref().map(|f| &f.1));
            let decision = gate::decide(
                cached.as_ref(),
                |s: &Served| gate::fresh(&policy, &s.credentials, DEFAULT_MIN_REMAINING_SECS),
                failure,
                true,
            );
            let result = match decision {
                Gate::Serve(s) => Ok(s),
                Gate::BackOff(r) => r,
                Gate::Refresh => match source() {
                    Ok(s) => {
                        cached = Some(s.clone());
                        failed = None;
                        Ok(s)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e.message, "credentials endpoint: refresh failed");
                        failed = Some((tokio::time::Instant::now(), e.clone()));
                        gate::serve_stale(cached.clone(), e)
                    }
                },
            };
            let _ = reply.send(result);
        }
    });
    tx
}

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a static response builds")
}

/// Binds 127.0.0.1 on a random port and serves on `rt` until the runtime is dropped.
/// `initial` primes the cache with credentials the caller already has.
pub(crate) fn start(
    rt: &tokio::runtime::Runtime,
    source: Source,
    initial: Option<Served>,
    policy: Policy,
) -> Result<Endpoint> {
    let token = random_hex(32)?;
    let path = format!("/{}", random_hex(16)?);
    let listener = rt
        .block_on(TcpListener::bind(("127.0.0.1", 0)))
        .map_err(|e| {
            Error::other(format!(
                "cannot open the credentials endpoint on 127.0.0.1: {e}"
            ))
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::other(format!("credentials endpoint: {e}")))?
        .port();
    let fetcher = Arc::new(Mutex::new(spawn_fetcher(source, initial, policy)));
    let shared = Arc::new((path.clone(), token.clone()));
    rt.spawn(crate::loopback::serve(
        listener,
        "credentials endpoint",
        move |req, peer| {
            let shared = shared.clone();
            let fetcher = fetcher.clone();
            async move { handle(req, &shared.0, &shared.1, &fetcher, peer).await }
        },
    ));
    Ok(Endpoint {
        uri: format!("http://127.0.0.1:{port}{path}"),
        token,
    })
}

async fn handle(
    req: Request<Incoming>,
    path: &str,
    token: &str,
    fetcher: &Mutex<mpsc::Sender<Reply>>,
    peer: std::net::SocketAddr,
) -> Response<Full<Bytes>> {
    if req.method() != hyper::Method::GET || req.uri().path() != path {
        tracing::warn!(method = %req.method(), %peer, "credentials endpoint: unknown method or path");
        return respond(StatusCode::NOT_FOUND, json!({"message": "not found"}));
    }
    let given = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if !given.is_some_and(|g| same(g, token.as_bytes())) {
        tracing::warn!(%peer, missing = given.is_none(), "credentials endpoint: refused a request without the right token");
        return respond(StatusCode::FORBIDDEN, json!({"message": "forbidden"}));
    }
    let (tx, rx) = oneshot::channel();
    let sent = fetcher.lock().map(|f| f.send(tx).is_ok()).unwrap_or(false);
    let result = match (sent, rx.await) {
        (true, Ok(r)) => r,
        _ => Err(Error::other("the credentials fetcher stopped")),
    };
    match result {
        Ok(served) => {
            let c = &served.credentials;
            respond(
                StatusCode::OK,
                json!({
                    "AccessKeyId": c.access_key_id,
                    "SecretAccessKey": c.secret_access_key(),
                    "Token": c.session_token(),
                    "Expiration": zulu(c.expiration),
                }),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e.message, "credentials endpoint: cannot get credentials");
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"code": "ElhazError", "message": format!("elhaz: {}", e.message)}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_256_bits_of_hex() {
        let t = random_hex(32).unwrap();
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(t, random_hex(32).unwrap());
    }

    #[test]
    fn comparison() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
