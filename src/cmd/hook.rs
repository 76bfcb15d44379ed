//! `elhaz hook bash|zsh|fish`: prints the prompt hook for a shell's rc file, with the
//! path of this binary so the hook runs the same elhaz that printed it. The text is
//! `crate::shell`'s.
//!
//! With the hidden `--refresh`, it is the hook's slow path, run when the session's
//! refresh time (or the retry time) has passed; the hook evals what it prints, as
//! direnv's hook evals `direnv export`. It decides everything the scripts do not: the
//! credentials to ask for, the variables to set, the warning (on stderr, at most once
//! per window) and when the next attempt may be. The scripts keep only the integer
//! comparison that costs no process, the eval, and the source keys the binary cannot
//! see.

use super::Context;
use crate::cli::{GlobalArgs, HookArgs};
use crate::context::CallerContext;
use crate::env::{Carried, Delivery, SessionEnv};
use crate::error::Result;
use crate::shell::{RETRY_AT, ShellKind, WARNED, current_exe, end_line, hook, set_global};

/// No other attempt for this long after one that failed or got nothing newer (nor
/// after one that was interrupted: the hook sets it before it calls).
const RETRY_SECS: i64 = 60;
/// A "cannot refresh" warning at most this often for one session.
const WARN_EVERY_SECS: i64 = 300;

pub(crate) fn run(args: HookArgs, global: GlobalArgs, caller: CallerContext) -> Result<i32> {
    let shell = match args.shell {
        Some(shell) => shell,
        None => shell_of(std::env::var_os("SHELL"))?,
    };
    if let Some(pin) = args.pin.as_deref() {
        super::follow::run(&args, shell, pin, global, caller);
        return Ok(0);
    }
    if args.refresh {
        refresh(
            shell,
            global,
            caller,
            args.warned.as_deref().unwrap_or_default(),
        );
        return Ok(0);
    }
    print!("{}", hook(shell, &current_exe()).unwrap_or_default());
    Ok(0)
}

/// The shell `elhaz hook` without SHELL is for: the one `$SHELL` names, when it has a
/// hook; else an error with the three commands.
fn shell_of(var: Option<std::ffi::OsString>) -> Result<ShellKind> {
    let program = var.unwrap_or_default();
    let kind = ShellKind::detect(&program);
    if kind != ShellKind::Posix {
        return Ok(kind);
    }
    let why = if program.is_empty() {
        "$SHELL is not set".to_string()
    } else {
        format!(
            "$SHELL ({}) is none of bash, zsh or fish",
            crate::terminal::escape_controls(&program.to_string_lossy())
        )
    };
    Err(crate::error::Error::usage(format!("no shell named, and {why}")).with_hint(
        "name the shell whose rc file evals it: eval \"$(elhaz hook bash)\", eval \"$(elhaz hook zsh)\", or elhaz hook fish | source",
    ))
}

/// The refresh the hook evals: the session's new variables, or a warning; then the
/// hook's state. Never fails: whatever goes wrong is the warning, and the shell
/// keeps its credentials. The session is the one `caller` started in.
fn refresh(shell: ShellKind, global: GlobalArgs, caller: CallerContext, warned: &str) {
    let Some(session) = caller.outer_session.clone().filter(|s| !s.is_empty()) else {
        return;
    };
    let old = caller.outer_expires.clone().unwrap_or_default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Credentials that outlive these: the daemon refreshes unless it already has
    // newer ones, whatever its own windows are.
    let min = plain_seconds(&old)
        .filter(|&at| at > now)
        .map_or(1, |at| at - now + 1);
    let got = {
        // What the attempt says on the way (a spinner, "started the daemon", an MFA
        // notice, log lines) is not for the prompt: only the outcome is.
        let _quiet = crate::sys::mute_stderr();
        fetch(&session, global, caller, min)
    };
    let answer = Answer::new(shell, now, &session, &old, got, &Warned::parse(warned));
    if let Some(line) = &answer.warning {
        eprintln!("{line}");
    }
    print!("{}", answer.code);
}

/// NAME's credentials with at least `min` seconds left, as the session environment,
/// with their expiry (unix seconds). Asks on the terminal only for an MFA code (an
/// expired SSO session is the warning, at once).
fn fetch(
    name: &str,
    global: GlobalArgs,
    caller: CallerContext,
    min: i64,
) -> Result<(SessionEnv, i64)> {
    let ctx = Context::new(global, caller)?;
    let served = ctx.broker_for(name).credentials_at_prompt(name, min)?;
    let env = SessionEnv::build(
        name,
        Delivery::Static(&served.credentials),
        served.region.as_deref(),
        &ctx.policy,
        Carried::of(&ctx.caller, &served),
    );
    Ok((env, served.credentials.expires_unix()))
}

/// A plain decimal number of seconds as the hooks accept one (digits only, at most
/// 18 of them); anything else is none.
fn plain_seconds(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What the hook printed last, for the throttle: when, for which session it said
/// "cannot refresh", and for which session and expiry it said "expired".
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Warned {
    at: i64,
    session: String,
    expired: String,
}

impl Warned {
    /// The hook's `_ELHAZ_WARNED`: `AT:HEX:HEX` (names in hex, so that no name can
    /// break the format); anything else is "nothing warned yet".
    fn parse(s: &str) -> Warned {
        let mut parts = s.split(':');
        let (Some(at), Some(session), Some(expired), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Warned::default();
        };
        match (at.parse(), unhex(session), unhex(expired)) {
            (Ok(at), Some(session), Some(expired)) => Warned {
                at,
                session,
                expired,
            },
            _ => Warned::default(),
        }
    }

    fn render(&self) -> String {
        format!("{}:{}:{}", self.at, hex(&self.session), hex(&self.expired))
    }

    /// Whether to warn now, recording it: "expired" once per session and expiry,
    /// "cannot refresh" once per session and [`WARN_EVERY_SECS`].
    fn due(&mut self, now: i64, session: &str, expires: &str, expired: bool) -> bool {
        if expired {
            let key = format!("{session}:{expires}");
            if self.expired == key {
                return false;
            }
            self.expired = key;
            self.at = now;
            return true;
        }
        if self.session == session && now < self.at.saturating_add(WARN_EVERY_SECS) {
            return false;
        }
        self.session = session.to_string();
        self.at = now;
        true
    }
}

fn hex(s: &str) -> String {
    hex::encode(s)
}

fn unhex(s: &str) -> Option<String> {
    String::from_utf8(hex::decode(s).ok()?).ok()
}

/// What the refresh prints: code for the hook to eval, and the warning, if any, for
/// stderr.
#[derive(Debug)]
struct Answer {
    code: String,
    warning: Option<String>,
}

impl Answer {
    /// `got` is the attempt's outcome for `session`, whose credentials in the shell
    /// expire at `old` (ELHAZ_EXPIRES_AT as the shell has it).
    fn new(
        shell: ShellKind,
        now: i64,
        session: &str,
        old: &str,
        got: Result<(SessionEnv, i64)>,
        warned: &Warned,
    ) -> Answer {
        let mut state = warned.clone();
        let mut code = String::new();
        let (retry, reason, expired) = match got {
            Ok((env, expires)) => {
                // Applied even when nothing newer came (the region may have changed).
                code.push_str(&env.render(shell));
                if expires.to_string() == old {
                    let reason = "no newer credentials were served".to_string();
                    (now + RETRY_SECS, Some(reason), false)
                } else {
                    (0, None, false)
                }
            }
            Err(e) => {
                let reason = e.message.lines().next().unwrap_or_default().to_string();
                let expired = plain_seconds(old).is_some_and(|at| now >= at);
                (now + RETRY_SECS, Some(reason), expired)
            }
        };
        let warning = reason
            .filter(|_| state.due(now, session, old, expired))
            .map(|reason| {
                if expired {
                    format!("elhaz: the credentials of {session} have expired: {reason}")
                } else {
                    format!(
                        "elhaz: cannot refresh {session}, keeping the current credentials: {reason}"
                    )
                }
            });
        code.push_str(&set_global(shell, RETRY_AT, &retry.to_string()));
        if state != *warned {
            code.push_str(&set_global(shell, WARNED, &state.render()));
        }
        code.push_str(end_line(shell));
        Answer { code, warning }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Credentials;
    use crate::error::Error;

    const NOW: i64 = 1_800_000_000;

    fn env(expires: i64) -> (SessionEnv, i64) {
        let at = time::OffsetDateTime::from_unix_timestamp(expires).unwrap();
        let c = Credentials::new(
            "AKIANEW",
            "newsecret",
            "newtoken",
            at,
            at - time::Duration::HOUR,
        );
        let policy = crate::credentials::policy::Policy::default();
        let source = crate::context::SourceContext::from_process();
        let carried = Carried {
            source: &source,
            context_ref: None,
        };
        (
            SessionEnv::build("prod", Delivery::Static(&c), None, &policy, carried),
            expires,
        )
    }

    fn down() -> Result<(SessionEnv, i64)> {
        Err(Error::daemon("cannot reach the daemon").with_hint("start it"))
    }

    #[test]
    fn newer_credentials_are_applied_and_the_next_attempt_may_come_at_once() {
        let a = Answer::new(
            ShellKind::Bash,
            NOW,
            "prod",
            "1800000100",
            Ok(env(NOW + 3600)),
            &Warned::default(),
        );
        assert!(a.warning.is_none(), "{:?}", a.warning);
        assert!(a.code.starts_with("unset "), "{}", a.code);
        assert!(a.code.contains("export AWS_ACCESS_KEY_ID='AKIANEW';\n"));
        assert!(a.code.ends_with("_ELHAZ_RETRY_AT='0';\n"), "{}", a.code);
        assert!(!a.code.contains(WARNED), "nothing warned: {}", a.code);
    }

    #[test]
    fn nothing_newer_is_applied_and_warned_and_waits_a_minute() {
        let old = (NOW + 3600).to_string();
        let a = Answer::new(
            ShellKind::Zsh,
            NOW,
            "prod",
            &old,
            Ok(env(NOW + 3600)),
            &Warned::default(),
        );
        assert_eq!(
            a.warning.as_deref(),
            Some(
                "elhaz: cannot refresh prod, keeping the current credentials: no newer credentials were served"
            )
        );
        assert!(a.code.contains("export AWS_ACCESS_KEY_ID='AKIANEW';\n"));
        assert!(
            a.code
                .contains(&format!("typeset -g _ELHAZ_RETRY_AT='{}';\n", NOW + 60)),
            "{}",
            a.code
        );
    }

    #[test]
    fn a_failure_keeps_the_credentials_and_warns_with_the_reason_not_the_hint() {
        let a = Answer::new(
            ShellKind::Fish,
            NOW,
            "prod",
            "1800000100",
            down(),
            &Warned::default(),
        );
        assert_eq!(
            a.warning.as_deref(),
            Some(
                "elhaz: cannot refresh prod, keeping the current credentials: cannot reach the daemon"
            )
        );
        assert!(!a.code.contains("AWS_"), "nothing applied: {}", a.code);
        assert!(
            a.code
                .starts_with(&format!("set -g _ELHAZ_RETRY_AT '{}';\n", NOW + 60))
        );
        assert!(a.code.contains("set -g _ELHAZ_WARNED '"), "{}", a.code);
        assert!(a.code.ends_with("true;\n"), "fish's status: {}", a.code);
    }

    /// The state the hook hands back from the answer's code.
    fn state(code: &str) -> Warned {
        let v = code
            .lines()
            .find_map(|l| l.strip_prefix("_ELHAZ_WARNED='"))
            .unwrap_or_else(|| panic!("no state in {code}"));
        Warned::parse(v.trim_end_matches("';"))
    }

    #[test]
    fn cannot_refresh_is_said_once_per_five_minutes_and_per_session() {
        let a = Answer::new(ShellKind::Bash, NOW, "prod", "", down(), &Warned::default());
        assert!(a.warning.is_some());
        let w = state(&a.code);
        for (now, session, warns) in [
            (NOW + 60, "prod", false),
            (NOW + 299, "prod", false),
            (NOW + 120, "dev", true),
            (NOW + 300, "prod", true),
        ] {
            let b = Answer::new(ShellKind::Bash, now, session, "", down(), &w);
            assert_eq!(b.warning.is_some(), warns, "{session} at +{}", now - NOW);
            // Unchanged state is not written again.
            assert_eq!(b.code.contains(WARNED), warns, "{}", b.code);
        }
    }

    #[test]
    fn expired_is_said_once_per_expiry() {
        let old = (NOW - 5).to_string();
        let a = Answer::new(
            ShellKind::Bash,
            NOW,
            "prod",
            &old,
            down(),
            &Warned::default(),
        );
        assert_eq!(
            a.warning.as_deref(),
            Some("elhaz: the credentials of prod have expired: cannot reach the daemon")
        );
        let w = state(&a.code);
        let again = Answer::new(ShellKind::Bash, NOW + 600, "prod", &old, down(), &w);
        assert!(again.warning.is_none(), "{:?}", again.warning);
        let other = (NOW - 1).to_string();
        let b = Answer::new(ShellKind::Bash, NOW + 600, "prod", &other, down(), &w);
        assert!(b.warning.is_some(), "another expiry");
    }

    #[test]
    fn the_state_survives_any_session_name_and_rejects_garbage() {
        let w = Warned {
            at: NOW,
            session: "it's a:b\n$(x)".into(),
            expired: "p:1".into(),
        };
        assert_eq!(Warned::parse(&w.render()), w);
        for bad in ["", "x", "1:2", "1:zz:00", "a:00:00", "1:0:00", "1:00:00:00"] {
            assert_eq!(Warned::parse(bad), Warned::default(), "{bad:?}");
        }
    }

    #[test]
    fn only_plain_decimal_seconds_count() {
        assert_eq!(plain_seconds("099"), Some(99));
        for bad in ["", "-5", "12abc", "1e3", "9999999999999999999", " 1"] {
            assert_eq!(plain_seconds(bad), None, "{bad:?}");
        }
    }
}
