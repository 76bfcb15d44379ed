//! The two ways to log in, as the AWS CLI v2 does: the PKCE authorization-code flow
//! (a browser on this machine, redirected to a loopback listener) and the device-code
//! flow (any browser, the user confirms a code). Both end with the token in the AWS
//! CLI's cache. What the user must see (the URL, the code) goes through [`Ui`]: the
//! command layer prints it; this module never touches the terminal.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest;
use tokio::sync::mpsc;

use super::SsoSession;
use super::cache::{self, CachedToken, Registration};
use super::oidc::{self, DEVICE_GRANT, Grant, TokenError};
use crate::error::{Error, Kind, Result};

/// How the user signs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Authorization code with PKCE, through a loopback listener.
    Pkce,
    /// Device code: a URL and a code to confirm.
    Device,
}

impl Flow {
    fn key(self) -> &'static str {
        match self {
            Flow::Pkce => "pkce",
            Flow::Device => "device",
        }
    }

    /// The flow for this machine: device code over SSH or without a display
    /// (nobody could use a browser here), else PKCE.
    pub(crate) fn for_this_machine() -> Flow {
        let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
        if set("SSH_CONNECTION") || set("SSH_TTY") {
            return Flow::Device;
        }
        if cfg!(target_os = "macos") || set("DISPLAY") || set("WAYLAND_DISPLAY") {
            Flow::Pkce
        } else {
            Flow::Device
        }
    }
}

/// What the user must see while the login waits.
pub(crate) trait Ui {
    /// The URL to open, and for the device flow the code to confirm there.
    fn show(&self, url: &str, code: Option<&str>, opened: bool);
}

/// How to log in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    pub(crate) flow: Flow,
    /// Start a browser (false: only print the URL).
    pub(crate) open_browser: bool,
    /// How long to wait for the user.
    pub(crate) timeout: Duration,
}

/// The default wait for the user: ELHAZ_SSO_LOGIN_TIMEOUT, else 10 minutes.
pub(crate) fn default_timeout() -> Result<Duration> {
    Ok(
        crate::duration::Seconds::from_env("ELHAZ_SSO_LOGIN_TIMEOUT")?
            .map(|s| s.duration())
            .unwrap_or(Duration::from_secs(600)),
    )
}

/// Logs the session in and writes the token cache. Ctrl-C while waiting ends it
/// with the old cache file untouched.
pub(crate) async fn login(session: &SsoSession, opts: Options, ui: &dyn Ui) -> Result<CachedToken> {
    // A legacy profile logs in with the device code, as the AWS CLI does for it.
    let flow = if session.name.is_none() {
        Flow::Device
    } else {
        opts.flow
    };
    let work = async {
        let (reg, token) = match flow {
            Flow::Pkce => pkce(session, opts, ui).await?,
            Flow::Device => device(session, opts, ui).await?,
        };
        super::token::store_login(session, &reg, token)
    };
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(Error::new(
            Kind::Interrupted,
            format!("login to {} interrupted; the token cache is unchanged", session.described()),
        )),
    }
}

/// The session's registration for `flow`: the kept one while valid, else a new one.
async fn registration(session: &SsoSession, flow: Flow) -> Result<Registration> {
    if let Some(r) = cache::registration(session, flow.key()) {
        return Ok(r);
    }
    let reg = match flow {
        // The AWS CLI registers the loopback URI without a port: any port may follow.
        Flow::Pkce => {
            oidc::register(
                session,
                &["authorization_code", "refresh_token"],
                Some("http://127.0.0.1/oauth/callback"),
            )
            .await?
        }
        Flow::Device => oidc::register(session, &[DEVICE_GRANT, "refresh_token"], None).await?,
    };
    cache::save_registration(session, flow.key(), &reg)?;
    Ok(reg)
}

/// `n` random bytes, base64url without padding.
fn random(n: usize) -> Result<String> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| Error::other(format!("no randomness: {e}")))?;
    let s = URL_SAFE_NO_PAD.encode(&b);
    zeroize::Zeroize::zeroize(&mut b);
    Ok(s)
}

/// The PKCE challenge of a verifier: base64url(SHA-256(verifier)).
pub(crate) fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

async fn pkce(
    session: &SsoSession,
    opts: Options,
    ui: &dyn Ui,
) -> Result<(Registration, oidc::Token)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| {
            Error::auth(format!(
                "cannot listen on 127.0.0.1 for the browser's redirect: {}",
                crate::error::io_reason(&e)
            ))
            .with_hint("log in with the device code instead: elhaz sso login --use-device-code")
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::other(format!("loopback listener: {e}")))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/oauth/callback");
    let reg = registration(session, Flow::Pkce).await?;
    let verifier = SecretString::from(random(32)?);
    let state = random(16)?;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &reg.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("state", &state)
        .append_pair("code_challenge_method", "S256")
        .append_pair("scopes", &session.scopes.join(" "))
        .append_pair("code_challenge", &challenge(verifier.expose_secret()))
        .finish();
    let url = format!("{}/authorize?{query}", oidc::endpoint(session));
    let page = opts
        .open_browser
        .then(|| crate::browser::open_detached(&url, "IAM Identity Center sign-in"))
        .flatten();
    ui.show(&url, None, page.is_some());

    let (tx, mut rx) = mpsc::channel::<Result<SecretString>>(1);
    let server = tokio::spawn(serve(listener, state, session.label().to_string(), tx));
    let got = tokio::time::timeout(opts.timeout, rx.recv()).await;
    let code = match got {
        Ok(Some(r)) => r,
        Ok(None) => Err(Error::other("the loopback listener stopped")),
        Err(_) => Err(Error::auth(format!(
            "no sign-in reached the loopback listener within {}s: the browser did not come back to {redirect_uri}",
            opts.timeout.as_secs()
        ))
        .with_hint(format!(
            "run it again, or log in with the device code: elhaz sso login {} --use-device-code",
            session.label()
        ))),
    };
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            server.abort();
            return Err(e);
        }
    };
    let token = oidc::create_token(
        session,
        &reg,
        Grant::Code {
            code: &code,
            verifier: &verifier,
            redirect_uri: &redirect_uri,
        },
    )
    .await;
    server.abort();
    match token {
        Ok(t) => Ok((reg, t)),
        Err(TokenError::Failed(e)) => Err(e),
        Err(TokenError::Pending | TokenError::SlowDown) => Err(Error::auth(
            "SSO OIDC CreateToken asked to wait for an authorization code",
        )),
    }
}

/// The loopback listener: answers the browser's redirect with a short page and hands
/// over the code when `state` matches. Anything else gets an error page and changes
/// nothing. Connections are admitted as `crate::loopback` does for every loopback
/// listener: a flood of idle ones (any local user can open them) neither exhausts
/// descriptors nor ends the wait.
async fn serve(
    listener: tokio::net::TcpListener,
    state: String,
    label: String,
    tx: mpsc::Sender<Result<SecretString>>,
) {
    let shared = std::sync::Arc::new((state, label));
    crate::loopback::serve(listener, "sso login listener", move |req, _peer| {
        let (status, page, outcome) = callback(&req, &shared.0, &shared.1);
        let tx = tx.clone();
        async move {
            if let Some(o) = outcome {
                let _ = tx.send(o).await;
            }
            page_response(status, page)
        }
    })
    .await;
}

type Answer = (StatusCode, String, Option<Result<SecretString>>);

/// What a request to the listener gets, and what it tells the login.
fn callback<B>(req: &Request<B>, state: &str, label: &str) -> Answer {
    if req.uri().path() != "/oauth/callback" {
        return (StatusCode::NOT_FOUND, "Not found.".into(), None);
    }
    let mut code = None;
    let mut got_state = None;
    let mut error = None;
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(SecretString::from(v.into_owned())),
            "state" => got_state = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            "error_description" => {
                error = Some(format!("{}: {v}", error.take().unwrap_or_default()));
            }
            _ => {}
        }
    }
    // A request without our state is not the redirect we wait for (another page, or
    // a forged one): refuse it and keep waiting.
    if got_state.as_deref() != Some(state) {
        return (
            StatusCode::BAD_REQUEST,
            "This sign-in does not match the one elhaz started; nothing was done.".into(),
            None,
        );
    }
    if let Some(e) = error {
        let e: String = e.chars().filter(|c| !c.is_control()).take(200).collect();
        return (
            StatusCode::BAD_REQUEST,
            format!("Sign-in failed: {}", crate::browser::escape_html(&e)),
            Some(Err(Error::auth(format!(
                "the sign-in for SSO session '{label}' failed: {e}"
            )))),
        );
    }
    match code {
        Some(c) => (
            StatusCode::OK,
            format!(
                "Signed in to SSO session '{}'. You can close this tab and return to the terminal.",
                crate::browser::escape_html(label)
            ),
            Some(Ok(c)),
        ),
        None => (
            StatusCode::BAD_REQUEST,
            "The redirect carried no code.".into(),
            Some(Err(Error::auth("the sign-in redirect carried no code"))),
        ),
    }
}

fn page_response(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>elhaz</title></head>\
         <body><p>{text}</p></body></html>"
    );
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    r
}

async fn device(
    session: &SsoSession,
    opts: Options,
    ui: &dyn Ui,
) -> Result<(Registration, oidc::Token)> {
    let reg = registration(session, Flow::Device).await?;
    let dev = oidc::start_device(session, &reg).await?;
    let complete = dev
        .verification_uri_complete
        .clone()
        .unwrap_or_else(|| dev.verification_uri.clone());
    let page = opts
        .open_browser
        .then(|| crate::browser::open_detached(&complete, "IAM Identity Center device code"))
        .flatten();
    // The URL with the code filled in (one click less), and the code beside it to check.
    ui.show(&complete, Some(&dev.user_code), page.is_some());
    let limit = dev.expires_in.min(opts.timeout);
    let deadline = tokio::time::Instant::now() + limit;
    let mut interval = dev.interval;
    loop {
        tokio::time::sleep(interval).await;
        match oidc::create_token(session, &reg, Grant::Device(&dev.device_code)).await {
            Ok(t) => return Ok((reg, t)),
            Err(TokenError::Pending) => {}
            // RFC 8628: slow down adds 5 seconds to the interval, for good.
            Err(TokenError::SlowDown) => interval += Duration::from_secs(5),
            Err(TokenError::Failed(e)) => return Err(e),
        }
        if tokio::time::Instant::now() + interval > deadline {
            return Err(Error::auth(format!(
                "the code {} was not confirmed within {}s",
                dev.user_code,
                limit.as_secs()
            ))
            .with_hint(format!("run it again: elhaz sso login {}", session.label())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc7636s_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let v = random(32).unwrap();
        assert_eq!(v.len(), 43);
        assert_ne!(v, random(32).unwrap());
    }

    #[test]
    fn the_listener_takes_only_the_redirect_with_our_state() {
        let req = |q: &str| Request::builder().uri(q).body(()).unwrap();
        let (s, _, o) = callback(&req("/oauth/callback?code=c1&state=bad"), "good", "corp");
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(o.is_none(), "a wrong state does not end the login");
        let (s, _, o) = callback(&req("/favicon.ico"), "good", "corp");
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(o.is_none());
        let (s, page, o) = callback(&req("/oauth/callback?code=c1&state=good"), "good", "corp");
        assert_eq!(s, StatusCode::OK);
        assert!(page.contains("corp"));
        assert_eq!(o.unwrap().unwrap().expose_secret(), "c1");
        let (s, _, o) = callback(
            &req("/oauth/callback?error=access_denied&state=good"),
            "good",
            "corp",
        );
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(o.unwrap().unwrap_err().message.contains("access_denied"));
    }
}
