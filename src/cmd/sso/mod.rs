//! `elhaz sso login|logout|roles|sync`, and the login a terminal command offers when
//! its SSO session has expired: one login for every process waiting on the session
//! (the others wait for it, boundedly), never one per process.

pub(crate) mod roles;
pub(crate) mod sync;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::Context;
use crate::cli::{SsoCommand, SsoLoginArgs, SsoLogoutArgs};
use crate::context::SourceContext;
use crate::error::{Error, Kind, Result};
use crate::sso::cache::{self, LockKind};
use crate::sso::login::{self, Flow, Options};
use crate::sso::{SsoSession, session, token};

pub(crate) fn run(cmd: SsoCommand, ctx: &Context) -> Result<i32> {
    match cmd {
        SsoCommand::Login(a) => run_login(&a, &ctx.caller.source),
        SsoCommand::Logout(a) => run_logout(&a, ctx),
        SsoCommand::Roles(a) => roles::run(&a, &ctx.caller.source).map(exit_code),
        SsoCommand::Sync(a) => sync::run(ctx, &a).map(exit_code),
    }
}

fn exit_code(c: std::process::ExitCode) -> i32 {
    if c == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    }
}

/// NAME, else the only session, else a picker on a terminal; from `source`'s AWS
/// config file.
pub(crate) fn pick(name: Option<&str>, source: &SourceContext) -> Result<SsoSession> {
    if name.is_some() {
        return session::resolve_blocking(source, name);
    }
    let items = session::labels(source)?;
    if items.len() <= 1 || !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return session::resolve_blocking(source, None);
    }
    let i = crate::cmd::prompt::pick_one("Which SSO session?", &items, "no SSO session chosen")?;
    session::resolve_blocking(source, Some(&items[i].0))
}

/// Prints what the user must do, and spins while the login waits.
struct Terminal {
    spinner: std::cell::RefCell<Option<crate::cmd::spinner::Shown>>,
}

impl login::Ui for Terminal {
    fn show(&self, url: &str, code: Option<&str>, opened: bool) {
        // The URL and the code come from the OIDC service: shown, never obeyed.
        let url = crate::terminal::escape_controls(url);
        let code = code.map(crate::terminal::escape_controls);
        let code = code.as_deref();
        let mut err = std::io::stderr().lock();
        let _ = match (code, opened) {
            (Some(code), _) => writeln!(
                err,
                "elhaz: {} {url}\nelhaz: and confirm this code: {code}",
                if opened {
                    "opened your browser at"
                } else {
                    "open this URL in any browser:"
                }
            ),
            (None, true) => writeln!(
                err,
                "elhaz: opened your browser to sign in; if it did not open, visit:\n  {url}"
            ),
            (None, false) => writeln!(
                err,
                "elhaz: open this URL in a browser on this machine to sign in:\n  {url}"
            ),
        };
        drop(err);
        let msg = match code {
            Some(c) => format!("waiting for the sign-in (code {c})"),
            None => "waiting for the sign-in in the browser".to_string(),
        };
        *self.spinner.borrow_mut() = Some(crate::cmd::spinner::Shown::start(&msg));
    }
}

/// Logs `session` in (the caller holds its login lock) and says so.
fn log_in(session: &SsoSession, opts: Options) -> Result<()> {
    let ui = Terminal {
        spinner: std::cell::RefCell::new(None),
    };
    let rt = crate::broker::runtime()?;
    let got = rt.block_on(login::login(session, opts, &ui));
    drop(ui);
    let entry = got?;
    eprintln!(
        "elhaz: logged in to {}; the token is valid until {}",
        session.described(),
        crate::times::zulu(entry.expires_at)
    );
    Ok(())
}

fn run_login(args: &SsoLoginArgs, source: &SourceContext) -> Result<i32> {
    let session = pick(args.name.as_deref(), source)?;
    let opts = Options {
        flow: if args.use_device_code {
            Flow::Device
        } else {
            Flow::for_this_machine()
        },
        open_browser: !args.no_browser,
        timeout: login::default_timeout()?,
    };
    // One login at a time per session; processes waiting for a login wait on this.
    let rt = crate::broker::runtime()?;
    let held = match cache::try_lock(&session, LockKind::Login)? {
        Some(h) => h,
        None => {
            eprintln!(
                "elhaz: another login of {} is in progress; waiting for it",
                session.described()
            );
            rt.block_on(cache::lock(&session, LockKind::Login, opts.timeout))?
                .ok_or_else(|| {
                    Error::auth(format!(
                        "another login of {} did not finish within {}s",
                        session.described(),
                        opts.timeout.as_secs()
                    ))
                })?
        }
    };
    drop(rt);
    log_in(&session, opts)?;
    drop(held);
    Ok(0)
}

/// Tells a running daemon (never starting one) to forget the sessions that came from
/// the login at `start_url` (every SSO login when None).
fn forget_in_daemon(ctx: &Context, start_url: Option<&str>) {
    match ctx.client().forget_sso(start_url) {
        Ok(r) if r.ok => {
            let n = r
                .data
                .as_ref()
                .and_then(|d| d["forgotten"].as_u64())
                .unwrap_or(0);
            if n > 0 {
                eprintln!("elhaz: the daemon forgot {n} session(s) that came from it");
            }
        }
        Ok(r) => eprintln!(
            "elhaz: warning: the daemon did not forget its sessions: {}",
            r.error().message
        ),
        Err(crate::daemon::client::Failure::NotRunning) => {}
        Err(crate::daemon::client::Failure::Error(e)) => {
            eprintln!(
                "elhaz: warning: the daemon did not forget its sessions: {}",
                e.message
            )
        }
    }
}

fn run_logout(args: &SsoLogoutArgs, ctx: &Context) -> Result<i32> {
    let rt = crate::broker::runtime()?;
    if args.all {
        let dir = cache::dir()?;
        let mut n = 0;
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e.flatten().collect::<Vec<_>>(),
            Err(_) => Vec::new(),
        };
        for e in entries {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") || name.starts_with("elhaz-client-") {
                continue;
            }
            let Ok(Some(tok)) = cache::read_path(&path) else {
                continue;
            };
            let s = SsoSession::named(&name, &tok.start_url, &tok.region, Vec::new());
            if let Err(err) = rt.block_on(crate::sso::portal::logout(&s, &tok.access_token)) {
                eprintln!("elhaz: warning: {}", err.message);
            }
            cache::remove(&path)?;
            n += 1;
        }
        crate::sso::listing::remove_all()?;
        eprintln!("elhaz: logged out of {n} SSO session(s)");
        forget_in_daemon(ctx, None);
        return Ok(0);
    }
    let session = pick(args.name.as_deref(), &ctx.caller.source)?;
    let path = cache::path(&session)?;
    crate::sso::listing::remove(&session)?;
    let Some(tok) = cache::read(&session)? else {
        cache::remove(&path)?;
        eprintln!("elhaz: {} was not logged in", session.described());
        forget_in_daemon(ctx, Some(&session.start_url));
        return Ok(0);
    };
    if tok.remaining_secs(crate::duration::now()) > 0
        && let Err(err) = rt.block_on(crate::sso::portal::logout(&session, &tok.access_token))
    {
        eprintln!(
            "elhaz: warning: {}; removing the cached token anyway",
            err.message
        );
    }
    cache::remove(&path)?;
    eprintln!("elhaz: logged out of {}", session.described());
    forget_in_daemon(ctx, Some(&session.start_url));
    Ok(0)
}

/// How long a process waits for another process's login of its session.
fn login_wait() -> Result<Duration> {
    login::default_timeout()
}

/// Whether this process can ask the user something.
fn on_terminal() -> bool {
    std::io::stderr().is_terminal() && std::fs::File::open("/dev/tty").is_ok()
}

/// The answer to a credentials request made at `asked` that needs an SSO login
/// (`err`): wait for a login another process is making; else, on a terminal, offer
/// one; else `err`. Ok(()) means: ask again. The session is the one `err` names, in
/// `source`'s AWS config file.
pub(crate) fn offer_login(
    err: Error,
    asked: std::time::SystemTime,
    source: &SourceContext,
) -> Result<()> {
    let Some(label) = token::login_label(&err) else {
        return Err(err);
    };
    let Ok(session) = session::resolve_blocking(source, Some(label)) else {
        return Err(err);
    };
    let rt = crate::broker::runtime()?;
    let Some(held) = cache::try_lock(&session, LockKind::Login)? else {
        // Someone is logging in: wait for them, then ask again.
        let limit = login_wait()?;
        crate::cmd::spinner::suspend(|| {
            eprintln!(
                "elhaz: waiting for the login of {} in progress elsewhere",
                session.described()
            )
        });
        return match rt.block_on(cache::lock(&session, LockKind::Login, limit))? {
            Some(_) => Ok(()),
            None => {
                let waited = format!(
                    " and the login in progress elsewhere did not finish within {}s",
                    limit.as_secs()
                );
                let mut message = err.message.clone();
                message.insert_str(message.find("; run: ").unwrap_or(message.len()), &waited);
                Err(Error::new(Kind::SsoLoginRequired, message))
            }
        };
    };
    // A login (or renewal) may have finished since we asked.
    if token::is_fresh(&session) && token::written_since(&session, asked) {
        return Ok(());
    }
    drop(rt);
    if !on_terminal() {
        return Err(err);
    }
    let question = match err.message.find("; run: ") {
        Some(i) => format!("{}. Log in now?", &err.message[..i]),
        None => "Log in now?".to_string(),
    };
    if !crate::cmd::spinner::suspend(|| crate::cmd::prompt::confirm(&question, true))? {
        return Err(err);
    }
    let opts = Options {
        flow: Flow::for_this_machine(),
        open_browser: true,
        timeout: login::default_timeout()?,
    };
    let out = crate::cmd::spinner::suspend(|| log_in(&session, opts));
    drop(held);
    out
}
