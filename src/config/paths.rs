//! Where elhaz keeps its files. Defaults are the original's, under `~/.elhaz/`.
//! It names paths only; it must not create, read or check them.

use std::path::PathBuf;

use crate::error::Result;
use crate::fsutil::home_dir;

/// Resolved locations of the config dir, socket and log.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Paths {
    pub(crate) fn resolve(
        config_dir: Option<PathBuf>,
        socket: Option<PathBuf>,
        log: Option<PathBuf>,
    ) -> Result<Paths> {
        // Without a home (a bare container), defaults point nowhere useful but do not
        // stop commands that need none of them (`export --socket`).
        let base = || {
            Ok::<_, crate::error::Error>(
                home_dir()
                    .unwrap_or_else(|_| PathBuf::from("/nonexistent"))
                    .join(".elhaz"),
            )
        };
        Ok(Paths {
            config_dir: match config_dir {
                Some(p) => p,
                None => base()?.join("configs"),
            },
            socket: match socket {
                Some(p) => p,
                None => base()?.join("sock").join("daemon.sock"),
            },
            log: match log {
                Some(p) => p,
                None => base()?.join("logs").join("daemon.log"),
            },
        })
    }
}
