//! Other users: running a command as another uid (tests run as root), giving them a
//! tree of files, and a python every uid can run.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Makes `cmd` run as `uid`/`gid` with no supplementary groups (tests run as root).
pub fn as_user(cmd: &mut Command, uid: u32, gid: u32) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Gives `path` and everything under it to `uid`:`gid` (tests run as root).
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

/// The system python3 (readable by every uid, unlike a venv under /root), running
/// `script` with `args`.
pub fn python(script: &str) -> Command {
    let mut c = Command::new("/usr/bin/python3");
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(["-c", script]);
    c
}

/// The unprivileged uid the tests run other-user cases as.
pub const NOBODY: u32 = 65534;
/// A uid that is neither the daemon's nor one let through.
pub const STRANGER: u32 = 65533;

/// Whether the tests can switch to other uids.
pub fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// The first line of a test that acts as other uids. Such a test is marked
/// `#[ignore = "needs root …"]`, so a run as another user counts it as ignored;
/// `.ci/check` runs it (`--include-ignored`) as root. Asked for without root, it fails
/// and says why rather than pass having tested nothing.
pub fn needs_root() {
    assert!(
        is_root(),
        "this test acts as other uids and needs root: run the suite as root (`.ci/check` does)"
    );
}

/// Makes every directory from the test's temp dir down to `dir` traversable by other
/// users.
pub fn traversable(t: &crate::support::TestEnv, dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut d = dir.to_path_buf();
    loop {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o711)).unwrap();
        if d == t.dir.path() {
            break;
        }
        d = d
            .parent()
            .expect("dir is inside the temp dir")
            .to_path_buf();
    }
}
