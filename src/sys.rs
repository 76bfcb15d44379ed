//! Every Linux-specific call elhaz makes for process hygiene and socket peers, in one
//! place: a port to macOS or a BSD replaces this file (their equivalents are named in
//! each doc comment) and nothing else.

use std::io;
use std::os::fd::AsFd;

/// Makes this process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`): no core file is
/// written whatever the core limit, other processes of the same uid cannot ptrace it,
/// and `/proc/PID/{mem,environ,maps,...}` become root's, so they cannot read its memory
/// or its environment either. ssh-agent and gpg-agent do the same.
/// (macOS: `ptrace(PT_DENY_ATTACH)`; FreeBSD: `procctl(PROC_TRACE_CTL)`.)
pub(crate) fn set_not_dumpable() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets the core file size limit (`RLIMIT_CORE`) to 0, soft and hard, so that even a
/// process made dumpable again writes no core. (POSIX; the same call elsewhere.)
pub(crate) fn disable_core_dumps() -> io::Result<()> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid pointer to an initialised rlimit.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `close_range(2)`'s flag that marks descriptors close-on-exec instead of closing them
/// (Linux 5.11).
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

fn close_range(first: libc::c_uint, flags: libc::c_uint) -> libc::c_long {
    // SAFETY: close_range takes integers only; it touches this process's fd table.
    unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, flags) }
}

/// Closes every descriptor above 2 that this process inherited (`close_range(3, ~0)`;
/// before Linux 5.9, each one listed in `/proc/self/fd`). Called when the daemon
/// starts, before it opens anything: a pipe or a terminal a caller left open (`3>&1`,
/// a test runner's or CI's descriptors) is then never held open by the daemon.
/// (FreeBSD: `closefrom(3)`; macOS: the `/dev/fd` listing.)
pub(crate) fn close_inherited_fds() -> io::Result<()> {
    if close_range(3, 0) == 0 {
        return Ok(());
    }
    // Collect first: closing while listing would close the listing's own descriptor.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: closing a descriptor nothing in this process uses yet (the listing's
        // own is already closed, and fails harmlessly with EBADF).
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Marks every descriptor above 2 close-on-exec (`close_range(3, ~0,
/// CLOSE_RANGE_CLOEXEC)`), for a child between fork and exec: the program it runs
/// then inherits only stdin, stdout and stderr. Async-signal-safe; does nothing on
/// kernels before 5.11 (the daemon closes them itself as it starts, see
/// [`close_inherited_fds`]).
pub(crate) fn cloexec_from_3() {
    let _ = close_range(3, CLOSE_RANGE_CLOEXEC);
}

/// Has the kernel send `sig` to this process when its parent dies
/// (`prctl(PR_SET_PDEATHSIG)`), for a child between fork and exec: the setting
/// survives execve (not into a set-user-ID program), so the program learns that its
/// supervisor is gone even when that was killed with SIGKILL. The parent is the
/// thread that forked: it must live as long as the child is supervised. `parent` is
/// the parent's pid before the fork; if the child was already reparented (the parent
/// died before this call), fails with ESRCH. Async-signal-safe. (FreeBSD:
/// `procctl(PROC_PDEATHSIG_CTL)`; macOS has none: a pipe or a kqueue `EVFILT_PROC`.)
pub(crate) fn signal_when_parent_dies(sig: libc::c_int, parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: prctl and getppid take integers only.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

/// When process `pid` started, in clock ticks since boot (`/proc/PID/stat`, field
/// 22): with the pid, it names one process even after the pid is reused. None when
/// there is no such process (or no /proc). (FreeBSD: `kinfo_proc.ki_start`; macOS:
/// `proc_pidinfo`'s `pbi_start_tvsec`.)
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything: count the
    // fields after its closing one, from field 3.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// `pid` and every process below it, listed from `/proc` before anything is done to
/// them (so orphans cannot escape by being re-parented); only `pid` without /proc.
/// (FreeBSD: `kinfo_proc` from sysctl `KERN_PROC_PROC`; macOS: `proc_listchildpids`.)
pub(crate) fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let ppid = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
        if let Some(ppid) = ppid {
            parents.push((p, ppid));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for (p, pp) in &parents {
            if *pp == parent && !tree.contains(p) {
                tree.push(*p);
            }
        }
        i += 1;
    }
    tree
}

/// This process's pid namespace (the inode of `/proc/self/ns/pid`): a pid recorded
/// in another namespace names another process. None without /proc. (The BSDs and
/// macOS have no pid namespaces: their jails share the host's pids.)
pub(crate) fn pid_namespace() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

/// The uid of the process at the other end of a connected Unix socket (`SO_PEERCRED`;
/// for a client, the uid of the process that listens). (BSD and macOS: `getpeereid`.)
pub(crate) fn peer_uid(sock: &impl AsFd) -> io::Result<u32> {
    nix::sys::socket::getsockopt(sock, nix::sys::socket::sockopt::PeerCredentials)
        .map(|c| c.uid())
        .map_err(io::Error::from)
}

/// Stderr pointed at /dev/null until dropped, then put back: for work whose own
/// messages (a spinner, "started the daemon", log lines) must not reach a terminal
/// that only wants its outcome. (POSIX `dup`/`dup2`: the same on every Unix.)
pub(crate) struct StderrMuted(Option<std::os::fd::OwnedFd>);

/// Mutes stderr (see [`StderrMuted`]); does nothing when /dev/null cannot be opened.
pub(crate) fn mute_stderr() -> StderrMuted {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return StderrMuted(None);
    };
    // SAFETY: dup of fd 2 returns a new descriptor that only this guard owns (or -1).
    let saved = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
    if saved < 0 {
        return StderrMuted(None);
    }
    // SAFETY: `saved` is a fresh descriptor of ours.
    let saved = unsafe { OwnedFd::from_raw_fd(saved) };
    // SAFETY: dup2 onto fd 2 of a descriptor we hold open.
    if unsafe { libc::dup2(null.as_raw_fd(), 2) } < 0 {
        return StderrMuted(None);
    }
    StderrMuted(Some(saved))
}

impl Drop for StderrMuted {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        if let Some(saved) = &self.0 {
            // SAFETY: puts the saved descriptor back on fd 2; `saved` closes after.
            unsafe { libc::dup2(saved.as_raw_fd(), 2) };
        }
    }
}

/// Opens and closes of one file, seen through inotify (macOS and the BSDs: kqueue's
/// `EVFILT_VNODE`, which sees no opens; a fixed wait there).
pub(crate) struct FileWatch(nix::sys::inotify::Inotify);

impl FileWatch {
    /// None when the file cannot be watched.
    pub(crate) fn new(path: &std::path::Path) -> Option<FileWatch> {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let i = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        i.add_watch(
            path,
            AddWatchFlags::IN_OPEN
                | AddWatchFlags::IN_CLOSE_NOWRITE
                | AddWatchFlags::IN_CLOSE_WRITE,
        )
        .ok()?;
        Some(FileWatch(i))
    }

    /// The opens and closes since the last call.
    pub(crate) fn events(&self) -> (usize, usize) {
        use nix::sys::inotify::AddWatchFlags;
        let (mut opened, mut closed) = (0, 0);
        while let Ok(events) = self.0.read_events() {
            if events.is_empty() {
                break;
            }
            for e in events {
                if e.mask.contains(AddWatchFlags::IN_OPEN) {
                    opened += 1;
                }
                if e.mask
                    .intersects(AddWatchFlags::IN_CLOSE_NOWRITE | AddWatchFlags::IN_CLOSE_WRITE)
                {
                    closed += 1;
                }
            }
        }
        (opened, closed)
    }
}
