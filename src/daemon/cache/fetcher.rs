//! The seam between the cache and the credential engine.

use std::future::Future;
use std::path::Path;

use crate::context::SourceContext;
use crate::credentials::chain::Hop;
use crate::credentials::{Credentials, Engine, Fetched, Identity, StsTarget};
use crate::error::Result;
use crate::sensitive::Sensitive;

/// What the cache asks of the credential engine: what decides NAME's identity for a
/// caller, fresh credentials, and who they are. The daemon's is the [`Engine`]; the
/// unit tests below give it a fake that counts.
pub(crate) trait Fetcher: Send + Sync + 'static {
    /// The config directory the daemon reads.
    fn config_dir(&self) -> &Path;
    /// Bytes that change exactly when NAME's identity for `ctx` does.
    fn identity(
        &self,
        name: &str,
        ctx: &SourceContext,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send;
    /// Fresh credentials for NAME, from `ctx`'s sources.
    fn fetch(
        &self,
        name: &str,
        token: Option<&Sensitive>,
        ctx: &SourceContext,
        reuse: &[Hop],
    ) -> impl Future<Output = Result<Fetched>> + Send;
    /// GetCallerIdentity with `creds`.
    fn whoami(
        &self,
        creds: &Credentials,
        sts: &StsTarget,
        ctx: &SourceContext,
    ) -> impl Future<Output = Result<Identity>> + Send;
}

impl Fetcher for Engine {
    fn config_dir(&self) -> &Path {
        self.store().dir()
    }
    fn identity(
        &self,
        name: &str,
        ctx: &SourceContext,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        Engine::identity(self, name, ctx)
    }
    fn fetch(
        &self,
        name: &str,
        token: Option<&Sensitive>,
        ctx: &SourceContext,
        reuse: &[Hop],
    ) -> impl Future<Output = Result<Fetched>> + Send {
        Engine::fetch(self, name, token, ctx, reuse)
    }
    fn whoami(
        &self,
        creds: &Credentials,
        sts: &StsTarget,
        ctx: &SourceContext,
    ) -> impl Future<Output = Result<Identity>> + Send {
        Engine::whoami(self, creds, sts, ctx)
    }
}
