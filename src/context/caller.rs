//! What this process was started with: the caller's source context and the elhaz
//! session it runs in. Captured once, first thing in main (before the injected
//! credentials are scrubbed and before any thread starts), and handed down from there
//! to whatever needs it: nothing reads it back from a global.

use super::{REF_VAR, SourceContext};

/// The caller of this process, as it was when the process started.
#[derive(Clone, Debug, Default)]
pub struct CallerContext {
    /// Its source context (inside a session, from the `ELHAZ_SOURCE_*` the session
    /// carries, never from what elhaz injected).
    pub(crate) source: SourceContext,
    /// Whether it started inside an elhaz session (ELHAZ_SESSION was set).
    pub(crate) in_session: bool,
    /// The context reference it started with (inside a session only): which of the
    /// daemon's source contexts served that session.
    pub(crate) context_ref: Option<String>,
    /// ELHAZ_SESSION: the elhaz session this process runs inside, if any.
    pub(crate) outer_session: Option<String>,
    /// ELHAZ_EXPIRES_AT, as the caller had it (not checked): the hook's refresh
    /// compares what it gets with the credentials the shell has.
    pub(crate) outer_expires: Option<String>,
}

impl CallerContext {
    /// Captures it from this process's environment. Call first thing in main, before
    /// the injected credentials are scrubbed and before any thread starts; library use
    /// and tests may call it at any time (it reads the environment as it is then).
    pub fn capture() -> CallerContext {
        let in_session = std::env::var_os("ELHAZ_SESSION").is_some();
        CallerContext {
            source: SourceContext::from_process(),
            in_session,
            context_ref: in_session
                .then(|| std::env::var(REF_VAR).ok())
                .flatten()
                .filter(|r| r.len() == 64 && r.bytes().all(|b| b.is_ascii_hexdigit())),
            outer_session: std::env::var("ELHAZ_SESSION").ok(),
            outer_expires: std::env::var("ELHAZ_EXPIRES_AT").ok(),
        }
    }

    /// The context reference a session built from an answer should carry: the one the
    /// daemon answered with (`served`), else the one this process started with.
    pub(crate) fn session_ref<'a>(&'a self, served: Option<&'a str>) -> Option<&'a str> {
        served.or(self.context_ref.as_deref())
    }
}
