//! The daemon's boot: the process made private (no inherited descriptors, not
//! dumpable, no core file, working from `/`), the lock beside the socket, the log, the
//! cache and its engine, the runtime and the server, and the shutdown. The command
//! layer only gathers the options.

use std::path::PathBuf;
use std::time::Duration;

use super::cache::Cache;
use super::lock::take_lock;
use super::server::{ServerOptions, serve};
use crate::credentials::Engine;
use crate::credentials::policy::Policy;
use crate::error::{Error, Result};

/// What the daemon runs with (the global flags, forwarded by whoever started it).
pub(crate) struct RunOptions {
    pub(crate) socket: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) config_dir: PathBuf,
    pub(crate) verbose: u8,
    pub(crate) policy: Policy,
    pub(crate) cache_size: usize,
    pub(crate) backlog: u32,
    /// Its own source context, captured at its start: the one a request that carries
    /// none (the original client's) is answered in.
    pub(crate) context: crate::context::SourceContext,
}

/// Runs the daemon until it is told to stop or its socket goes.
pub(crate) fn run(opts: RunOptions) -> Result<()> {
    // Before it opens anything: no descriptor a caller left open (a `$(...)` pipe) is
    // held for the daemon's life; no core file, ptrace or /proc/PID/{mem,environ} read
    // by other processes of the user; no working directory kept busy (or written to).
    let closed = crate::sys::close_inherited_fds();
    let undumpable = crate::sys::set_not_dumpable();
    let no_core = crate::sys::disable_core_dumps();
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let socket = absolute(&opts.socket);
    let log = absolute(&opts.log);
    let config_dir = absolute(&opts.config_dir);
    let _ = std::env::set_current_dir("/");

    let _lock = take_lock(&socket)?;
    let _guard = crate::logging::init_daemon(&log, opts.verbose)?;
    crate::credentials::external::capture_stderr();
    for (what, r) in [
        ("close inherited descriptors", closed),
        ("make the process non-dumpable", undumpable),
        ("disable core files", no_core),
    ] {
        if let Err(e) = r {
            tracing::warn!(error = %e, "cannot {what}");
        }
    }
    let engine = Engine::new(crate::config::Store::new(config_dir));
    let cache = Cache::new(engine, opts.policy, opts.cache_size);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::daemon(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(serve(ServerOptions {
        socket,
        backlog: opts.backlog,
        cache,
        context: opts.context,
    }));
    if let Err(e) = &result {
        tracing::error!(error = %e.message, "daemon failed");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    result.map(|_| ())
}
