//! The broker as the command layer uses it ([`Asking`]): what the broker cannot ask
//! itself (an MFA code, an SSO login) is asked here, on the terminal, and the request
//! made again. The prompt hook's variant never asks (it never reads the terminal).

use super::prompt::{tty_available, typed_code};
use crate::broker::{Broker, Outcome};
use crate::credentials::{Identity, Served, mfa};
use crate::daemon::client::{Client, Failure};
use crate::daemon::protocol::{Caller, Response};
use crate::error::{Error, Result};
use crate::sensitive::Sensitive;

/// The broker, with the questions it cannot ask itself asked here: when the daemon
/// needs an MFA code, asks for it on the terminal and adds the session with it.
pub(crate) struct Asking(pub(crate) Broker);

impl Asking {
    /// Who asks (see [`Broker::caller`]).
    pub(crate) fn caller(&self) -> Caller {
        self.0.caller()
    }

    /// A request to the daemon (see [`Broker::request`]).
    pub(crate) fn request(
        &self,
        action: &str,
        ask: impl Fn(&Client) -> Result<Response, Failure>,
    ) -> Result<Response> {
        self.0.request(action, ask)
    }

    /// NAME's credentials with at least `min_remaining` seconds left.
    pub(crate) fn credentials(&self, name: &str, min_remaining: i64) -> Result<Served> {
        self.answer(name, || self.0.credentials(name, min_remaining))
    }

    /// The same for the prompt hook, which never reads the terminal nor waits for a
    /// person: an MFA code or an SSO login it would need is an error at once, naming
    /// the command that asks for it.
    pub(crate) fn credentials_at_prompt(&self, name: &str, min_remaining: i64) -> Result<Served> {
        match self.0.credentials(name, min_remaining)? {
            Outcome::Done(t) => Ok(t),
            Outcome::MfaRequired(err) => Err(Error::new(
                crate::error::Kind::MfaRequired,
                format!("{name} needs an MFA code to refresh; run: elhaz use {name}"),
            )
            .with_hint(err.hint.unwrap_or_default())),
            Outcome::SsoLoginRequired(err) => Err(err),
        }
    }

    /// STS GetCallerIdentity as NAME.
    pub(crate) fn whoami(&self, name: &str) -> Result<Identity> {
        self.answer(name, || self.0.whoami(name))
    }

    /// `daemon add NAME`, asking for an MFA code when the daemon needs one.
    pub(crate) fn add(&self, name: &str) -> Result<()> {
        let asked = std::time::SystemTime::now();
        match self.0.add(name, None)? {
            Outcome::Done(()) => Ok(()),
            Outcome::MfaRequired(err) => self.add_with_code(name, err),
            Outcome::SsoLoginRequired(err) => {
                crate::cmd::sso::offer_login(err, asked, &self.0.caller_context().source)?;
                match self.0.add(name, None)? {
                    Outcome::Done(()) => Ok(()),
                    Outcome::MfaRequired(err) => self.add_with_code(name, err),
                    Outcome::SsoLoginRequired(err) => Err(err),
                }
            }
        }
    }

    /// Runs `ask` until it is done, asking for an MFA code each time the daemon needs
    /// one, and waiting for (or offering) an SSO login when the session needs one: at
    /// most twice, so a login that does not take ends in its error.
    fn answer<T>(&self, name: &str, ask: impl Fn() -> Result<Outcome<T>>) -> Result<T> {
        let mut logins = 0;
        loop {
            let asked = std::time::SystemTime::now();
            match ask()? {
                Outcome::Done(t) => return Ok(t),
                Outcome::MfaRequired(err) => self.add_with_code(name, err)?,
                Outcome::SsoLoginRequired(err) => {
                    logins += 1;
                    if logins > 2 {
                        return Err(err);
                    }
                    crate::cmd::sso::offer_login(err, asked, &self.0.caller_context().source)?;
                }
            }
        }
    }

    /// Asks for the code on the terminal and adds NAME with it; `err` when there is no
    /// terminal to ask on.
    fn add_with_code(&self, name: &str, err: Error) -> Result<()> {
        if !tty_available() {
            return Err(err);
        }
        // The session, and the device when the error names it.
        let label = match mfa::serial_of(&err) {
            Some(serial) => format!("{name} ({serial})"),
            None => {
                eprintln!("elhaz: {}", err.message);
                name.to_string()
            }
        };
        let code: Sensitive = typed_code(&label)?;
        match self.0.add(name, Some(&code))? {
            Outcome::Done(()) => Ok(()),
            Outcome::MfaRequired(err) | Outcome::SsoLoginRequired(err) => Err(err),
        }
    }
}
