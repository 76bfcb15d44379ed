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
        let mut typed = 0;
        match self.0.add(name, None)? {
            Outcome::Done(()) => Ok(()),
            Outcome::MfaRequired(err) => self.add_with_code(name, err, &mut typed),
            Outcome::SsoLoginRequired(err) => {
                crate::cmd::sso::offer_login(err, asked, &self.0.caller_context().source)?;
                match self.0.add(name, None)? {
                    Outcome::Done(()) => Ok(()),
                    Outcome::MfaRequired(err) => self.add_with_code(name, err, &mut typed),
                    Outcome::SsoLoginRequired(err) => Err(err),
                }
            }
        }
    }

    /// Runs `ask` until it is done, asking for an MFA code each time the daemon needs
    /// one (again when STS refuses one typed, up to [`CODE_TRIES`] codes), and waiting
    /// for (or offering) an SSO login when the session needs one: at most twice, so a
    /// login that does not take ends in its error.
    fn answer<T>(&self, name: &str, ask: impl Fn() -> Result<Outcome<T>>) -> Result<T> {
        let mut logins = 0;
        let mut typed = 0;
        loop {
            let asked = std::time::SystemTime::now();
            match ask() {
                Ok(Outcome::Done(t)) => return Ok(t),
                Ok(Outcome::MfaRequired(err)) => self.add_with_code(name, err, &mut typed)?,
                Ok(Outcome::SsoLoginRequired(err)) => {
                    logins += 1;
                    if logins > 2 {
                        return Err(err);
                    }
                    crate::cmd::sso::offer_login(err, asked, &self.0.caller_context().source)?;
                }
                // In this process the code goes with the next fetch: its refusal is
                // the fetch's error.
                Err(err) if typed > 0 && mfa::refusal_of(&err).is_some() => {
                    self.add_with_code(name, err, &mut typed)?
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Asks for the code on the terminal and adds NAME with it; `err` when there is no
    /// terminal to ask on. A code STS refuses is asked again, saying why, until
    /// [`CODE_TRIES`] codes have been `typed` in this command; then the refusal is the
    /// error.
    fn add_with_code(&self, name: &str, mut err: Error, typed: &mut u32) -> Result<()> {
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
        loop {
            if let Some(reason) = mfa::refusal_of(&err) {
                if *typed >= CODE_TRIES {
                    return Err(err);
                }
                // Above the prompt, with the spinner out of the way.
                crate::cmd::spinner::suspend(|| {
                    eprintln!(
                        "elhaz: the MFA code was refused ({reason}); type the current one (try {} of {CODE_TRIES})",
                        *typed + 1
                    )
                });
            }
            let code: Sensitive = typed_code(&label)?;
            *typed += 1;
            match self.0.add(name, Some(&code)) {
                Ok(Outcome::Done(())) => return Ok(()),
                Ok(Outcome::MfaRequired(e) | Outcome::SsoLoginRequired(e)) => return Err(e),
                Err(e) if mfa::refusal_of(&e).is_some() => err = e,
                Err(e) => return Err(e),
            }
        }
    }
}

/// How many MFA codes one command asks for when STS refuses them (a typo, a code
/// already used), as a login prompt allows three passwords.
const CODE_TRIES: u32 = 3;
