//! An exclusive lock on a directory (flock on its descriptor), held until dropped, so
//! that writers to the directory take turns. It knows nothing of what the directory
//! holds or how a failure is told to the user.

use std::fs::File;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The held lock; dropping it releases the directory.
pub(crate) struct DirLock {
    _flock: Flock<File>,
}

/// Why a directory could not be locked.
pub(crate) enum LockError {
    /// The directory could not be opened.
    Open(std::io::Error),
    /// flock(2) refused.
    Lock(Errno),
}

/// Waits for, then takes, the exclusive lock on `dir`.
pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock, LockError> {
    let file = File::open(dir).map_err(LockError::Open)?;
    let flock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| LockError::Lock(e))?;
    Ok(DirLock { _flock: flock })
}
