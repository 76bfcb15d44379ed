//! `elhaz login NAME`: the AWS console, signed in as the session's role, through the
//! federation endpoint's getSigninToken.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use super::Context;
use crate::cli::LoginArgs;
use crate::credentials::policy::DEFAULT_MIN_REMAINING_SECS;
use crate::error::{Error, Result};

/// The partition's federation endpoint and console, from the region.
pub(crate) fn partition(region: &str) -> (&'static str, &'static str) {
    if region.starts_with("cn-") {
        (
            "https://signin.amazonaws.cn/federation",
            "https://console.amazonaws.cn",
        )
    } else if region.starts_with("us-gov-") {
        (
            "https://signin.amazonaws-us-gov.com/federation",
            "https://console.amazonaws-us-gov.com",
        )
    } else {
        (
            "https://signin.aws.amazon.com/federation",
            "https://console.aws.amazon.com",
        )
    }
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

pub(crate) fn run(args: LoginArgs, ctx: &Context) -> Result<i32> {
    if let Some(d) = args.duration
        && !(900..=43200).contains(&d.0)
    {
        // As the user wrote it (5m, not 300s).
        let shown = match d.0 {
            0 => "0s".to_string(),
            s => crate::duration::human(i64::try_from(s).unwrap_or(i64::MAX)),
        };
        return Err(Error::usage(format!(
            "--duration {shown} is out of range: the console session lasts 15m to 12h"
        ))
        .with_hint("elhaz login NAME --duration 1h"));
    }
    let name = ctx.name(args.name.get())?;
    let served = ctx.credentials(&name, DEFAULT_MIN_REMAINING_SECS)?;
    let region = args
        .region
        .clone()
        .or(served.region.clone())
        .unwrap_or_else(|| "us-east-1".into());
    let (default_endpoint, console) = partition(&region);
    let endpoint = std::env::var("ELHAZ_FEDERATION_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default_endpoint.to_string());
    let c = &served.credentials;
    let session = json!({
        "sessionId": c.access_key_id,
        "sessionKey": c.secret_access_key(),
        "sessionToken": c.session_token(),
    })
    .to_string();
    let mut url = format!("{endpoint}?Action=getSigninToken");
    if let Some(d) = args.duration {
        url.push_str(&format!("&SessionDuration={}", d.0));
    }
    url.push_str(&format!("&Session={}", enc(&session)));
    let signin_token = get_signin_token(&url, &endpoint)?;
    let destination = args
        .destination
        .clone()
        .unwrap_or_else(|| format!("{console}/console/home?region={region}"));
    let login = format!(
        "{endpoint}?Action=login&Issuer=elhaz&Destination={}&SigninToken={}",
        enc(&destination),
        enc(&signin_token)
    );
    if args.stdout {
        println!("{login}");
        return Ok(0);
    }
    open_browser(&login)
}

/// Calls getSigninToken. The URL carries the credentials: it is never logged.
fn get_signin_token(url: &str, endpoint: &str) -> Result<String> {
    let rt = crate::broker::runtime()?;
    let fail = |what: String| Error::auth(format!("console sign-in failed at {endpoint}: {what}"));
    rt.block_on(async {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| fail(format!("no TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client: hyper_util::client::legacy::Client<_, Empty<Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        let uri: hyper::Uri = url.parse().map_err(|_| fail("bad endpoint URL".into()))?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(30), client.get(uri))
            .await
            .map_err(|_| fail("no answer within 30s".into()))?
            .map_err(|e| {
                fail(crate::error::connect_reason(&crate::error::chain(&e)))
            })?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(format!("cannot read the answer: {e}")))?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(200).collect();
            let hint = if status.as_u16() == 400 {
                " (role-chained sessions cannot ask for --duration; and long-term keys are not accepted)"
            } else {
                ""
            };
            return Err(fail(format!("HTTP {status}: {}{hint}", text.trim())));
        }
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| fail("the answer is not JSON".into()))?;
        v["SigninToken"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| fail("the answer has no SigninToken".into()))
    })
}

/// The URL opener when $BROWSER is unset: `open` on macOS, xdg-open elsewhere (on
/// Linux, `open` is openvt or run-mailcap, which must never get the URL).
const OPENERS: &[&str] = if cfg!(target_os = "macos") {
    &["open"]
} else {
    &["xdg-open"]
};

/// Opens `url` with $BROWSER, else the platform's opener. The URL is a short-lived
/// bearer credential, so it never goes in argv, where every local user can read it
/// (`ps`): the browser gets a local page (0600, in a fresh 0700 directory) that
/// redirects to it, and the page is removed once the browser has read it.
fn open_browser(url: &str) -> Result<i32> {
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty());
    let program = match browser {
        Some(b) => b,
        None => OPENERS
            .iter()
            .find(|p| which::which(p).is_ok())
            .map(|p| p.to_string())
            .ok_or_else(|| {
                Error::usage("no browser found: set $BROWSER, or install xdg-open")
                    .with_hint("or print the URL: elhaz login NAME --stdout")
            })?,
    };
    let page = SigninPage::write(url)?;
    let watch = page.watch();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{program} \"$1\""))
        .arg("sh")
        .arg(page.file_url())
        .spawn()
        .map_err(|e| {
            Error::other(format!(
                "cannot start the browser {program:?}: {}",
                crate::error::io_reason(&e)
            ))
        })?;
    let failed = |status: std::process::ExitStatus| {
        Error::other(format!("the browser {program:?} failed ({status})"))
            .with_hint("print the URL instead: elhaz login NAME --stdout")
    };
    // Until the page has been read (and a moment more, for openers that look at a
    // file before handing it on), or the browser command fails.
    let deadline = std::time::Instant::now() + PAGE_WAIT;
    let mut page = Some((page, watch));
    let mut exited = None;
    while let Some((_, w)) = page.as_mut() {
        if w.done() {
            page = None;
            break;
        }
        if exited.is_none()
            && let Ok(Some(status)) = child.try_wait()
        {
            if !status.success() {
                return Err(failed(status));
            }
            exited = Some(status);
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::other(format!(
                "the browser {program:?} did not open the sign-in page within {}s",
                PAGE_WAIT.as_secs()
            ))
            .with_hint("print the URL instead: elhaz login NAME --stdout"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(page);
    // As before: the browser command's own outcome (it may run until the browser exits).
    let status = match exited {
        Some(s) => s,
        None => child.wait().map_err(|e| {
            Error::other(format!(
                "cannot wait for the browser {program:?}: {}",
                crate::error::io_reason(&e)
            ))
        })?,
    };
    if !status.success() {
        return Err(failed(status));
    }
    eprintln!("elhaz: opened the AWS console in {program}");
    Ok(0)
}

/// How long the sign-in page waits for the browser to read it.
const PAGE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// After the page was last read, how long it stays for a second reader (xdg-open
/// looks at a file's type before the browser opens it).
const PAGE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The local page that redirects the browser to the sign-in URL; removed on drop.
struct SigninPage {
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl SigninPage {
    fn write(url: &str) -> Result<SigninPage> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // The user's runtime directory (a tmpfs of their own) where there is one.
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(std::path::PathBuf::from)
            .filter(|d| d.is_absolute() && d.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let fail = |e: &std::io::Error| {
            Error::io(
                crate::error::Kind::Other,
                "cannot write the sign-in page in",
                &base,
                e,
            )
            .with_hint("print the URL instead: elhaz login NAME --stdout")
        };
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("elhaz-login-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(|e| fail(&e))?;
        let path = dir.path().join("signin.html");
        let html = escape_html(url);
        let text = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n<meta name=\"referrer\" content=\"no-referrer\">\n<meta http-equiv=\"refresh\" content=\"0;url={html}\">\n<title>AWS console sign-in</title></head>\n<body><p><a href=\"{html}\">Continue to the AWS console</a></p></body></html>\n"
        );
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| fail(&e))?;
        file.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
        Ok(SigninPage { dir, path })
    }

    /// The page as a file:// URL (its path percent-encoded).
    fn file_url(&self) -> String {
        const PATH: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
            .remove(b'/')
            .remove(b'-')
            .remove(b'_')
            .remove(b'.');
        use std::os::unix::ffi::OsStrExt;
        format!(
            "file://{}",
            percent_encoding::percent_encode(self.path.as_os_str().as_bytes(), PATH)
        )
    }

    fn watch(&self) -> PageWatch {
        PageWatch::new(&self.path)
    }
}

impl Drop for SigninPage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(self.dir.path());
    }
}

/// Whether the page has been read: inotify on Linux (opens and closes of the file);
/// elsewhere, a fixed wait.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct PageWatch {
    #[cfg(target_os = "linux")]
    inotify: Option<nix::sys::inotify::Inotify>,
    open: i64,
    read_once: bool,
    last: std::time::Instant,
}

impl PageWatch {
    fn new(_path: &std::path::Path) -> PageWatch {
        #[cfg(target_os = "linux")]
        let inotify = {
            use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
            Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                .ok()
                .filter(|i| {
                    i.add_watch(
                        _path,
                        AddWatchFlags::IN_OPEN
                            | AddWatchFlags::IN_CLOSE_NOWRITE
                            | AddWatchFlags::IN_CLOSE_WRITE,
                    )
                    .is_ok()
                })
        };
        PageWatch {
            #[cfg(target_os = "linux")]
            inotify,
            open: 0,
            read_once: false,
            last: std::time::Instant::now(),
        }
    }

    /// True once the page has been opened and closed, no one has it open, and no one
    /// opened it for PAGE_GRACE.
    fn done(&mut self) -> bool {
        #[cfg(target_os = "linux")]
        if let Some(i) = &self.inotify {
            use nix::sys::inotify::AddWatchFlags;
            while let Ok(events) = i.read_events() {
                if events.is_empty() {
                    break;
                }
                for e in events {
                    if e.mask.contains(AddWatchFlags::IN_OPEN) {
                        self.open += 1;
                        self.last = std::time::Instant::now();
                    }
                    if e.mask
                        .intersects(AddWatchFlags::IN_CLOSE_NOWRITE | AddWatchFlags::IN_CLOSE_WRITE)
                    {
                        self.open -= 1;
                        self.read_once = true;
                        self.last = std::time::Instant::now();
                    }
                }
            }
            return self.read_once && self.open <= 0 && self.last.elapsed() >= PAGE_GRACE;
        }
        // No inotify: leave the browser ten seconds to read it.
        self.last.elapsed() >= std::time::Duration::from_secs(10)
    }
}

/// Escapes text for an HTML attribute value.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions() {
        assert_eq!(
            partition("eu-west-1").0,
            "https://signin.aws.amazon.com/federation"
        );
        assert_eq!(
            partition("cn-north-1").0,
            "https://signin.amazonaws.cn/federation"
        );
        assert_eq!(
            partition("us-gov-west-1").1,
            "https://console.amazonaws-us-gov.com"
        );
    }
}
