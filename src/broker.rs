//! The broker: "NAME's credentials for this caller", from the daemon (started when
//! none answers) or from the engine in this process (--no-daemon). Returns typed
//! outcomes ([`Outcome::MfaRequired`] when a code is needed) and never touches
//! a terminal: the command layer prompts, retries, spins and prints. Knows nothing of
//! clap or of how answers are shown.

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::config::Store;
use crate::context::CallerContext;
use crate::credentials::{Credentials, Engine, Identity, Served};
use crate::daemon::client::{Client, Failure};
use crate::daemon::protocol::{Caller, CredentialsData, NOT_FOUND, Response};
use crate::daemon::start::{DaemonArgs, not_running, start_daemon};
use crate::error::{Error, Kind, Result};
use crate::sensitive::Sensitive;

/// What a request came to, short of an error.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    Done(T),
    /// The daemon needs an MFA code for the session: add it with one (see
    /// [`Broker::add`]) and ask again. The error says so, for when nobody can be asked.
    MfaRequired(Error),
    /// The caller's SSO session must be logged in again (by this user, in the command
    /// layer: the daemon never opens a browser). The error says so, with the command.
    SsoLoginRequired(Error),
}

/// An engine or daemon error that is an outcome: the SSO login it needs.
fn sso_outcome<T>(r: Result<T>) -> Result<Outcome<T>> {
    match r {
        Ok(t) => Ok(Outcome::Done(t)),
        Err(e) if e.kind == Kind::SsoLoginRequired => Ok(Outcome::SsoLoginRequired(e)),
        Err(e) => Err(e),
    }
}

/// The same for the engine in this process, which also needs MFA codes asked for.
fn engine_outcome<T>(r: Result<T>) -> Result<Outcome<T>> {
    match r {
        Err(e) if e.kind == Kind::MfaRequired => Ok(Outcome::MfaRequired(e)),
        r => sso_outcome(r),
    }
}

/// Where credentials come from, for whom: the daemon (started when needed), or this
/// process; for the caller this process started with.
pub(crate) struct Broker {
    /// Who asks: what this process captured at start.
    caller: CallerContext,
    via: Via,
}

/// Where a [`Broker`]'s credentials come from.
enum Via {
    Daemon {
        client: Client,
        start: Option<DaemonArgs>,
        /// Called once this broker has started a daemon.
        started: fn(&DaemonArgs),
    },
    InProcess {
        engine: Engine,
        /// The MFA code given with [`Broker::add`], for the next fetch.
        code: std::sync::Mutex<Option<Sensitive>>,
    },
}

impl Broker {
    /// A broker on `client`'s socket, for `caller`; `start` says how to start a daemon
    /// when none answers (None: never start one, e.g. for a shared socket), and
    /// `started` is told when it did.
    pub(crate) fn daemon(
        client: Client,
        start: Option<DaemonArgs>,
        started: fn(&DaemonArgs),
        caller: CallerContext,
    ) -> Broker {
        Broker {
            caller,
            via: Via::Daemon {
                client,
                start,
                started,
            },
        }
    }

    /// The engine in this process, for `caller`.
    pub(crate) fn in_process(store: Store, caller: CallerContext) -> Broker {
        Broker {
            caller,
            via: Via::InProcess {
                engine: Engine::new(store),
                code: std::sync::Mutex::new(None),
            },
        }
    }

    /// The caller it asks for.
    pub(crate) fn caller_context(&self) -> &CallerContext {
        &self.caller
    }

    /// The MFA code [`Broker::add`] left for this process's engine, taken once.
    fn take_code(&self) -> Option<Sensitive> {
        match &self.via {
            Via::InProcess { code, .. } => code
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
            Via::Daemon { .. } => None,
        }
    }

    /// Who asks: our config directory, so a daemon reading another one says so
    /// instead of answering from the wrong configs, and this caller's source context,
    /// so the daemon answers with our sources and not its own.
    pub(crate) fn caller(&self) -> Caller {
        let mut who = Caller::ext();
        let resolving = crate::credentials::external::inherited_names();
        who.resolving = Some(resolving).filter(|n| !n.is_empty());
        if let Via::Daemon {
            start: Some(args), ..
        } = &self.via
        {
            who.config_dir = std::path::absolute(&args.config_dir).ok();
            let source = &self.caller.source;
            who.context = Some(source.to_json());
            if !source.has_secrets() {
                who.context_ref = self.caller.context_ref.clone();
            }
        }
        who
    }

    /// Sends a request (`ask` on the daemon's client), starting the daemon once if
    /// none answers.
    pub(crate) fn request(
        &self,
        action: &str,
        ask: impl Fn(&Client) -> Result<Response, Failure>,
    ) -> Result<Response> {
        let Via::Daemon {
            client,
            start,
            started,
        } = &self.via
        else {
            return Err(Error::usage(format!(
                "{action} needs the daemon, and --no-daemon is set"
            )));
        };
        match ask(client) {
            Ok(r) => Ok(r),
            Err(Failure::Error(e)) => Err(e),
            Err(Failure::NotRunning) => {
                let Some(args) = start else {
                    return Err(not_running(&client.socket));
                };
                if start_daemon(args, &self.caller)? {
                    started(args);
                }
                match ask(client) {
                    Ok(r) => Ok(r),
                    Err(Failure::Error(e)) => Err(e),
                    Err(Failure::NotRunning) => Err(not_running(&client.socket)),
                }
            }
        }
    }

    /// Credentials for NAME with at least `min_remaining` seconds left (capped by the
    /// policy at half the lifetime).
    pub(crate) fn credentials(&self, name: &str, min_remaining: i64) -> Result<Outcome<Served>> {
        self.credentials_inner(name, min_remaining)
            .map_err(|e| explain_no_source_in_session(e, &self.caller))
    }

    fn credentials_inner(&self, name: &str, min_remaining: i64) -> Result<Outcome<Served>> {
        // Run by a helper of an elhaz that resolves NAME: a loop, said at once (the
        // daemon would wait on the very fetch that waits on us).
        if let Some(e) = crate::credentials::external::loop_of(name) {
            return Err(e);
        }
        let Via::InProcess { engine, .. } = &self.via else {
            return self.credentials_from_daemon(name, min_remaining);
        };
        let code = self.take_code();
        let source = &self.caller.source;
        let fetched = runtime()?.block_on(engine.fetch(name, code.as_ref(), source, &[]));
        engine_outcome(fetched.map(|f| Served {
            credentials: f.credentials,
            region: f.region,
            notes: Vec::new(),
            context_ref: None,
        }))
    }

    fn credentials_from_daemon(&self, name: &str, min_remaining: i64) -> Result<Outcome<Served>> {
        // An empty name: a shared socket, which knows its session.
        let config = Some(name).filter(|n| !n.is_empty());
        let ask = |c: &Client| c.credentials(self.caller(), config, min_remaining);
        let mut resp = self.request("credentials", ask)?;
        // The original daemon ignores `autoadd` and answers 404 for a missing session
        // (ours never does with it): add it, as the original client does, and ask again.
        if resp
            .error
            .as_ref()
            .is_some_and(|e| e.code == NOT_FOUND && e.kind.is_none())
        {
            match self.add(name, None) {
                Ok(Outcome::Done(())) => {}
                Ok(Outcome::MfaRequired(e)) => return Ok(Outcome::MfaRequired(e)),
                Ok(Outcome::SsoLoginRequired(e)) => return Ok(Outcome::SsoLoginRequired(e)),
                // 409: someone added it meanwhile.
                Err(e) if e.kind == Kind::Usage => {}
                Err(e) => return Err(e),
            }
            resp = self.request("credentials", ask)?;
        }
        if !resp.ok {
            let err = resp.error();
            if err.kind == Kind::MfaRequired {
                return Ok(Outcome::MfaRequired(err));
            }
            return sso_outcome(Err(err));
        }
        let served = parse_credentials(resp.data.as_ref());
        resp.wipe();
        served.map(Outcome::Done)
    }

    /// `add`: puts NAME in the daemon (with an MFA code, when given). In this process
    /// there is nothing to add to: the code is kept for the next fetch.
    pub(crate) fn add(&self, name: &str, token: Option<&Sensitive>) -> Result<Outcome<()>> {
        if let Some(e) = crate::credentials::external::loop_of(name) {
            return Err(e);
        }
        if let Via::InProcess { code, .. } = &self.via {
            *code
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = token.cloned();
            return Ok(Outcome::Done(()));
        }
        let resp = self.request("add", |c| c.add(self.caller(), name, token))?;
        if resp.ok {
            return Ok(Outcome::Done(()));
        }
        let err = resp.error();
        if err.kind == Kind::MfaRequired && token.is_none() {
            return Ok(Outcome::MfaRequired(err));
        }
        sso_outcome(Err(err))
    }

    /// GetCallerIdentity as NAME.
    pub(crate) fn whoami(&self, name: &str) -> Result<Outcome<Identity>> {
        if let Some(e) = crate::credentials::external::loop_of(name) {
            return Err(e);
        }
        match &self.via {
            Via::InProcess { engine, .. } => {
                let rt = runtime()?;
                let source = &self.caller.source;
                let code = self.take_code();
                let fetched = rt.block_on(engine.fetch(name, code.as_ref(), source, &[]));
                let fetched = match engine_outcome(fetched)? {
                    Outcome::Done(f) => f,
                    Outcome::MfaRequired(e) => return Ok(Outcome::MfaRequired(e)),
                    Outcome::SsoLoginRequired(e) => return Ok(Outcome::SsoLoginRequired(e)),
                };
                rt.block_on(engine.whoami(&fetched.credentials, &fetched.sts, source))
                    .map(Outcome::Done)
            }
            Via::Daemon { .. } => {
                // Make sure the session is there (adds it, or says it needs MFA).
                match self.credentials(name, 0)? {
                    Outcome::MfaRequired(e) => return Ok(Outcome::MfaRequired(e)),
                    Outcome::SsoLoginRequired(e) => return Ok(Outcome::SsoLoginRequired(e)),
                    Outcome::Done(_) => {}
                }
                let resp = self.request("whoami", |c| c.whoami(self.caller(), name))?;
                resp.into_data("whoami").map(Outcome::Done)
            }
        }
    }
}

/// Inside a session, "no source credentials" while the shell shows keys is puzzling:
/// say that those keys are the session's and never a source.
fn explain_no_source_in_session(mut err: Error, caller: &CallerContext) -> Error {
    // Without the keys the session was made from, the error says so itself.
    if err.detail == Some(crate::error::Detail::NoSource)
        && caller.in_session
        && !caller.source.keys_elsewhere()
    {
        err.message.push_str(
            " (this shell is inside an elhaz session: the keys it holds are the session's, never a source)",
        );
        err.hint = Some(
            "run it where your own source is (outside the session, or a shell with the elhaz shell integration, which keeps your keys for elhaz); or export AWS_PROFILE=P"
                .into(),
        );
    }
    err
}

/// A current-thread runtime with IO and time, for a command that makes a few calls.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::other(format!("cannot start a runtime: {e}")))
}

/// Reads the `credentials` data (ours or the original daemon's), with the context
/// reference the daemon answered with, for the session built from it.
pub(crate) fn parse_credentials(data: Option<&Value>) -> Result<Served> {
    let bad = |what: &str| Error::daemon(format!("the daemon sent credentials without {what}"));
    let data = data.ok_or_else(|| bad("data"))?;
    let Ok(c) = CredentialsData::deserialize(data) else {
        let missing = ["expiry_time", "access_key", "secret_key", "token"]
            .into_iter()
            .find(|k| data.get(k).and_then(Value::as_str).is_none())
            .unwrap_or("data");
        return Err(bad(missing));
    };
    let expiry: OffsetDateTime = crate::times::parse(&c.expiry_time).ok_or_else(|| {
        Error::daemon(format!(
            "the daemon sent a bad expiry_time {:?}",
            c.expiry_time
        ))
    })?;
    let now = crate::duration::now();
    // The original daemon does not send the lifetime: then count from now.
    let issued = match c.lifetime_seconds {
        Some(l) => expiry - time::Duration::seconds(l),
        None => now.min(expiry),
    };
    Ok(Served {
        credentials: Credentials::new(&c.access_key, &c.secret_key, &c.token, expiry, issued),
        region: c.region.clone(),
        notes: c.notes.clone().unwrap_or_default(),
        context_ref: c.context_ref.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The context reference the daemon answered with comes back with the
    /// credentials, for the session built from them: nothing else keeps it.
    #[test]
    fn the_daemons_context_reference_comes_with_its_credentials() {
        let mut data = serde_json::json!({
            "access_key": "AKIA",
            "secret_key": "secret",
            "token": "token",
            "expiry_time": "2030-01-01T00:00:00Z",
        });
        assert_eq!(parse_credentials(Some(&data)).unwrap().context_ref, None);
        data["context_ref"] = "ab".into();
        let served = parse_credentials(Some(&data)).unwrap();
        assert_eq!(served.context_ref.as_deref(), Some("ab"));
        let caller = CallerContext {
            context_ref: Some("cd".into()),
            ..CallerContext::default()
        };
        let carried = crate::env::Carried::of(&caller, &served);
        assert_eq!(carried.context_ref, Some("ab"));
        data["context_ref"] = serde_json::Value::Null;
        let served = parse_credentials(Some(&data)).unwrap();
        let carried = crate::env::Carried::of(&caller, &served);
        assert_eq!(carried.context_ref, Some("cd"));
    }

    /// A daemon on a socket in a temp dir that answers each connection with the next
    /// of `answers` (one JSON line each) and keeps the actions it was asked.
    fn scripted_daemon(
        answers: Vec<Value>,
    ) -> (tempfile::TempDir, Broker, std::sync::mpsc::Receiver<String>) {
        use std::io::{BufRead, BufReader, Write};
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("d.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for answer in answers {
                let (mut conn, _) = listener.accept().unwrap();
                let mut line = String::new();
                BufReader::new(&conn).read_line(&mut line).unwrap();
                let req: Value = serde_json::from_str(&line).unwrap();
                let mut answer = answer;
                answer["request_id"] = req["request_id"].clone();
                tx.send(req["action"].as_str().unwrap_or_default().to_string())
                    .unwrap();
                writeln!(conn, "{answer}").unwrap();
            }
        });
        let client = Client::new(&socket, std::time::Duration::from_secs(5));
        let broker = Broker::daemon(client, None, |_| {}, CallerContext::default());
        (dir, broker, rx)
    }

    fn ok(data: Value) -> Value {
        serde_json::json!({"version": 1, "ok": true, "data": data})
    }

    fn credentials_data() -> Value {
        serde_json::json!({
            "access_key": "ASIAFROMDAEMON",
            "secret_key": "secret",
            "token": "token",
            "expiry_time": "2030-01-01T00:00:00+00:00",
        })
    }

    /// The original daemon answers 404 for a session not added yet (it ignores
    /// `autoadd`): the broker adds it and asks again, as the original client does.
    #[test]
    fn a_session_the_original_daemon_does_not_hold_is_added_then_asked_again() {
        let (_dir, broker, asked) = scripted_daemon(vec![
            serde_json::json!({"version": 1, "ok": false,
                "error": {"code": 404, "message": "session not found"}}),
            ok(Value::Null),
            ok(credentials_data()),
        ]);
        let Outcome::Done(served) = broker.credentials("prod", 0).unwrap() else {
            panic!("not served");
        };
        assert_eq!(served.credentials.access_key_id, "ASIAFROMDAEMON");
        let actions: Vec<String> = asked.try_iter().collect();
        assert_eq!(actions, ["credentials", "add", "credentials"]);
        // Without a lifetime (the original sends none), it counts from now.
        assert!(served.credentials.lifetime_secs() > 0);
    }

    /// MFA and SSO answers are outcomes the command layer acts on, with their data
    /// typed: the serial to ask a code for, the session to log in to.
    #[test]
    fn mfa_and_sso_answers_are_typed_outcomes() {
        let (_dir, broker, _asked) = scripted_daemon(vec![
            serde_json::json!({"version": 1, "ok": false, "error": {
                "code": 403, "kind": "mfa_required", "message": "prod needs an MFA code",
                "detail": {"type": "mfa_required", "serial": "arn:aws:iam::111111111111:mfa/me"}}}),
            serde_json::json!({"version": 1, "ok": false, "error": {
                "code": 403, "kind": "sso_login_required", "message": "corp needs a login",
                "detail": {"type": "sso_login_required", "session": "corp"}}}),
        ]);
        match broker.credentials("prod", 0).unwrap() {
            Outcome::MfaRequired(e) => assert_eq!(
                e.detail,
                Some(crate::error::Detail::MfaRequired {
                    serial: "arn:aws:iam::111111111111:mfa/me".into()
                })
            ),
            other => panic!("{other:?}"),
        }
        match broker.credentials("dev", 0).unwrap() {
            Outcome::SsoLoginRequired(e) => assert_eq!(
                e.detail,
                Some(crate::error::Detail::SsoLoginRequired {
                    session: "corp".into()
                })
            ),
            other => panic!("{other:?}"),
        }
    }

    /// What the daemon sends is checked: a bad expiry is the daemon's error, named.
    #[test]
    fn a_bad_answer_is_the_daemons_error_and_says_what() {
        let mut data = credentials_data();
        data["expiry_time"] = "soon".into();
        let (_dir, broker, _asked) = scripted_daemon(vec![ok(data)]);
        let err = broker.credentials("prod", 0).unwrap_err();
        assert_eq!(err.kind, Kind::Daemon);
        assert_eq!(err.message, "the daemon sent a bad expiry_time \"soon\"");
    }
}
