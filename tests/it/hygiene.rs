//! Process and file hygiene of the daemon, tested as the attacks are made: another
//! process of the same user reading the daemon's memory, a core file, a caller's
//! descriptor held open, a removed socket, a socket directory, socket or lock path
//! placed by another user, forged and flooded log lines, and idle connections
//! starving a share.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{Value, json};

const HOUR: Duration = Duration::from_secs(3600);

/// Sends SIGKILL to a pid when the test ends, passed or not.
struct KillPid(u32);

impl Drop for KillPid {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0 as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

// ---------------------------------------------------------------------------
// The daemon's memory, environment and core

/// A daemon run by an ordinary user: another process of that same user can neither
/// open its memory nor read its environment (which holds the source keys), as with
/// ssh-agent. The same reads work on an ordinary process of that user (the control).
#[ignore = "needs root: acts as other uids; .ci/check runs it as root"]
#[tokio::test(flavor = "multi_thread")]
async fn the_daemons_memory_and_environment_are_closed_to_the_users_other_processes() {
    needs_root();
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    chown_tree(&t.home, NOBODY, NOBODY);
    traversable(&t, &t.home);
    std::fs::set_permissions(&t.home, std::fs::Permissions::from_mode(0o700)).unwrap();

    let mut export = t.std_cmd();
    export
        .args(["export", "prod", "-f", "env"])
        .stdin(Stdio::null());
    as_user(&mut export, NOBODY, NOBODY);
    let out = export.output().unwrap();
    ok(&out);
    assert!(
        text(&out.stdout).contains("ASIAFAKE"),
        "{}",
        text(&out.stdout)
    );
    // The daemon refuses root's connections (another uid): find it by its command line.
    let pid = daemon_on(&t.socket()).expect("no daemon process for the socket");
    let _kill = KillPid(pid);
    assert_eq!(
        std::fs::metadata(format!("/proc/{pid}")).unwrap().uid(),
        NOBODY,
        "the daemon does not run as uid {NOBODY}"
    );

    // A process of the same uid: its environment, and a page of its heap (the address
    // found by root, read by the user).
    let heap = heap_address(pid);
    let probe = |target: u32, addr: u64| {
        let mut c = python(
            "import sys\n\
             pid, addr = sys.argv[1], int(sys.argv[2])\n\
             res = []\n\
             try:\n\
             \x20   res.append('environ:%d' % len(open('/proc/%s/environ' % pid, 'rb').read()))\n\
             except OSError as e:\n\
             \x20   res.append('environ:' + type(e).__name__)\n\
             try:\n\
             \x20   f = open('/proc/%s/mem' % pid, 'rb'); f.seek(addr)\n\
             \x20   res.append('mem:%d' % len(f.read(4096)))\n\
             except OSError as e:\n\
             \x20   res.append('mem:' + type(e).__name__)\n\
             print(' '.join(res))\n",
        );
        c.args([target.to_string(), addr.to_string()]);
        as_user(&mut c, NOBODY, NOBODY);
        let o = c.output().unwrap();
        ok(&o);
        text(&o.stdout).trim().to_string()
    };
    // The control: a plain process of that uid is readable by its siblings.
    let mut sleeper = Command::new("sleep");
    sleeper.arg("30");
    as_user(&mut sleeper, NOBODY, NOBODY);
    let mut sleeper = sleeper.spawn().unwrap();
    let seen = probe(sleeper.id(), heap_address(sleeper.id()));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(
        seen.starts_with("environ:") && seen.contains("mem:4096"),
        "the control read failed, so this test proves nothing: {seen}"
    );

    let seen = probe(pid, heap);
    assert_eq!(
        seen, "environ:PermissionError mem:PermissionError",
        "another process of uid {NOBODY} read the daemon"
    );
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    assert!(wait_until(Duration::from_secs(10), || !pid_alive(pid)));
}

/// The pid of the `elhaz ... daemon run` process whose arguments name `socket`.
fn daemon_on(socket: &Path) -> Option<u32> {
    let want = socket.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_daemon =
            args.windows(2).any(|w| w == [&b"daemon"[..], b"run"]) && args.contains(&want);
        (is_daemon && pid_alive(pid)).then_some(pid)
    })
}

/// The start address of a writable mapping of PID (the heap when it has one).
fn heap_address(pid: u32) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let line = maps
        .lines()
        .find(|l| l.ends_with("[heap]"))
        .or_else(|| {
            maps.lines()
                .find(|l| l.split_whitespace().nth(1) == Some("rw-p"))
        })
        .unwrap_or_else(|| panic!("no writable mapping in\n{maps}"));
    u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap()
}

/// `kill -QUIT` (core-dumping by default) with an unlimited core size in the command
/// that started the daemon: no core file lands in that command's directory, nor in /.
#[tokio::test(flavor = "multi_thread")]
async fn a_quit_signal_leaves_no_core_file_with_secrets() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let work = t.dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut c = t.std_cmd();
    c.args(["export", "prod"]).current_dir(&work);
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            let unlimited = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &unlimited);
            Ok(())
        });
    }
    let out = c.output().unwrap();
    ok(&out);
    let pid = t.daemon_pid().unwrap();
    let _kill = KillPid(pid);
    let cores = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("core"))
            .collect()
    };
    let before_root = cores(Path::new("/"));
    signal(pid, nix::sys::signal::Signal::SIGQUIT);
    assert!(
        wait_until(Duration::from_secs(30), || !pid_alive(pid)),
        "SIGQUIT did not end the daemon"
    );
    // A core is written before the process is reaped; give the kernel a moment.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cores(&work), Vec::<String>::new(), "core file in {work:?}");
    assert_eq!(cores(Path::new("/")), before_root, "core file in /");
}

// ---------------------------------------------------------------------------
// Descriptors

/// `out=$(elhaz exec prod -- echo hi 3>&1)` with no daemon running: the daemon it
/// starts must not keep fd 3 (the `$(...)` pipe) open, or bash waits forever.
#[tokio::test(flavor = "multi_thread")]
async fn command_substitution_with_an_extra_descriptor_returns_when_the_child_exits() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let mut c = t.program("bash");
    c.args([
        "--norc",
        "-c",
        "out=$(elhaz exec prod -- echo hi 3>&1); echo \"[$out]\"",
    ])
    .env(
        "PATH",
        format!("{}:{}", bin().parent().unwrap().display(), test_path()),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let started = Instant::now();
    let (status, out, err) = output_within(c.spawn().unwrap(), Duration::from_secs(20));
    let took = started.elapsed();
    let pid = t.daemon_pid();
    let _kill = pid.map(KillPid);
    let status = status.expect("bash still waits for the $(...) pipe after 20 s");
    assert!(status.success(), "{err}");
    assert_eq!(out, "[hi]\n", "{err}");
    assert!(err.contains("started the daemon"), "{err}");
    eprintln!("FIGURE fd-3: the substitution returned in {took:?}, daemon start included");
    // The daemon does run, and holds nothing but its own descriptors.
    let pid = pid.expect("no daemon was started");
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        !fds.iter().any(|f| f.starts_with("pipe:")),
        "the daemon holds a pipe: {fds:?}"
    );
}

// ---------------------------------------------------------------------------
// The socket removed or replaced

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_socket_ends_the_daemon_and_the_next_command_starts_a_fresh_one() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let old = t.daemon_pid().unwrap();
    let _kill = KillPid(old);
    std::fs::remove_file(t.socket()).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(old)),
        "the daemon (pid {old}) still runs 5 s after its socket was removed"
    );
    let out = run(&t, &["export", "prod", "-f", "env"]);
    ok(&out);
    assert!(text(&out.stdout).contains("AWS_ACCESS_KEY_ID="));
    assert!(
        text(&out.stderr).contains("started the daemon"),
        "{}",
        text(&out.stderr)
    );
    let new = t.daemon_pid().expect("no new daemon");
    assert_ne!(new, old);
    assert!(log_text(&t).contains("the socket was removed or replaced"));
}

/// A socket replaced by someone else's: the daemon stops, and leaves the new one alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_socket_ends_the_daemon_which_leaves_the_new_socket_alone() {
    let t = TestEnv::new();
    t.start_daemon();
    let old = t.daemon_pid().unwrap();
    let _kill = KillPid(old);
    std::fs::remove_file(t.socket()).unwrap();
    let other = std::os::unix::net::UnixListener::bind(t.socket()).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(old)),
        "the daemon (pid {old}) still runs 5 s after its socket was replaced"
    );
    assert!(
        t.socket().exists(),
        "the daemon removed the socket that replaced its own"
    );
    drop(other);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_stop_find_a_daemon_by_its_lock_when_its_socket_is_gone() {
    let t = TestEnv::new();
    t.start_daemon();
    let pid = t.daemon_pid().unwrap();
    let _kill = KillPid(pid);
    // Stopped, it cannot notice the socket is gone: it is alive and unreachable.
    signal(pid, nix::sys::signal::Signal::SIGSTOP);
    std::fs::remove_file(t.socket()).unwrap();

    let o = run(&t, &["daemon", "status"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let said = text(&o.stdout);
    assert!(said.contains(&format!("pid {pid}")), "{said}");
    assert!(
        said.contains("is gone") && said.contains("elhaz daemon stop"),
        "{said}"
    );
    let o = run(&t, &["daemon", "status", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["running"], false, "{v}");
    assert_eq!(v["pid"], pid, "{v}");
    assert_eq!(v["socket_missing"], true, "{v}");

    let o = run(&t, &["daemon", "stop"]);
    ok(&o);
    assert!(
        text(&o.stderr).contains("daemon stopped"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(2), || !pid_alive(pid)),
        "pid {pid} still runs after daemon stop"
    );
    // And a new one starts at once.
    t.start_daemon();
    assert_ne!(t.daemon_pid().unwrap(), pid);
}

// ---------------------------------------------------------------------------
// What another user can place on disk

/// `--socket-path` in a directory another user made (0777): refused, with the path and
/// the fix, and no daemon and no socket there.
#[ignore = "needs root: acts as other uids; .ci/check runs it as root"]
#[test]
fn a_socket_directory_another_user_made_or_can_write_is_refused() {
    needs_root();
    let t = TestEnv::new();
    t.role_config("prod", "");
    let planted = t.dir.path().join("planted");
    std::fs::create_dir(&planted).unwrap();
    std::os::unix::fs::chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mine = t.dir.path().join("open");
    std::fs::create_dir(&mine).unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o777)).unwrap();

    for (dir, why, fix) in [
        (&planted, format!("belongs to uid {NOBODY}"), "chown 0 "),
        (
            &mine,
            "is writable by other users (mode 777)".into(),
            "chmod 700 ",
        ),
    ] {
        let sock = dir.join("daemon.sock");
        for args in [
            &["daemon", "start"][..],
            &["daemon", "run"],
            &["export", "prod"],
        ] {
            let mut c = t.cmd();
            c.arg("--socket-path")
                .arg(&sock)
                .args(args)
                .timeout(Duration::from_secs(20));
            let o = c.output().unwrap();
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(4), "{args:?} in {dir:?}: {err}");
            assert!(
                err.contains(&format!("the socket directory {}", dir.display())),
                "{err}"
            );
            assert!(err.contains(&why), "{err}");
            assert!(err.contains(&format!("{fix}{}", dir.display())), "{err}");
            let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
            assert!(left.is_empty(), "{args:?} left {left:?} in {dir:?}");
        }
    }
}

/// A share socket in a directory others may write to: refused like the main socket's,
/// and nothing is bound there.
#[tokio::test(flavor = "multi_thread")]
async fn a_share_in_a_directory_others_can_write_is_refused() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let open = t.dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let sock = open.join("prod.sock");
    let mut c = t.cmd();
    c.args(["daemon", "share", "prod", "--socket"]).arg(&sock);
    let o = c.output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains(&format!(
            "the socket directory {} is writable by other users",
            open.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("chmod 700 {}", open.display())),
        "{err}"
    );
    assert!(!sock.exists(), "the share was bound");
}

/// A socket another user placed at the socket path (a directory others can write, such
/// as a sticky /tmp-like one): the client sends it nothing. Also when the file is
/// owned by the user but the process listening is another user's.
#[ignore = "needs root: acts as other uids; .ci/check runs it as root"]
#[test]
fn a_socket_another_user_listens_on_gets_nothing_from_the_client() {
    needs_root();
    let t = TestEnv::new();
    t.role_config("prod", "");
    let shared = t.dir.path().join("tmp");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    traversable(&t, t.dir.path());
    let sock = shared.join("elhaz.sock");
    let got = shared.join("received");

    // The attacker's listener: records every byte it is sent, answers with its keys.
    let mut listener = python(
        "import socket, sys, os\n\
         path, got = sys.argv[1], sys.argv[2]\n\
         s = socket.socket(socket.AF_UNIX); s.bind(path); os.chmod(path, 0o666); s.listen(16)\n\
         open(got, 'w').close()\n\
         while True:\n\
         \x20   c, _ = s.accept(); c.settimeout(2)\n\
         \x20   try:\n\
         \x20       data = c.recv(65536)\n\
         \x20   except OSError:\n\
         \x20       data = b''\n\
         \x20   open(got, 'ab').write(data)\n\
         \x20   c.sendall(b'{\"version\":1,\"request_id\":\"x\",\"ok\":true,\"data\":{}}\\n'); c.close()\n",
    );
    listener
        .args([&sock, &got])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    as_user(&mut listener, NOBODY, NOBODY);
    die_with_parent(&mut listener);
    let mut listener = listener.spawn().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || got.exists()),
        "the listener did not start"
    );

    let attempt = |what: &str| {
        for args in [
            &["export", "prod"][..],
            &["daemon", "status"],
            &["daemon", "stop"],
        ] {
            let mut c = t.cmd();
            c.arg("--socket-path")
                .arg(&sock)
                .args(args)
                .timeout(Duration::from_secs(20));
            let o = c.output().unwrap();
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(4), "{what}, {args:?}: {err}");
            assert!(
                err.contains(&format!(
                    "the socket {} belongs to uid {NOBODY}",
                    sock.display()
                )),
                "{what}: {err}"
            );
            assert!(err.contains("elhaz sends nothing to it"), "{err}");
            assert!(err.contains(&format!("rm {}", sock.display())), "{err}");
            assert!(o.stdout.is_empty(), "{what}: {}", text(&o.stdout));
        }
        let received = std::fs::read(&got).unwrap();
        assert!(
            received.is_empty(),
            "{what}: the planted listener got {:?}",
            text(&received)
        );
    };
    attempt("a socket file of another user");
    // The file made to look like the user's: the process behind it is still another's.
    std::os::unix::fs::lchown(&sock, Some(0), Some(0)).unwrap();
    let mut c = t.cmd();
    c.arg("--socket-path").arg(&sock).args(["export", "prod"]);
    let o = c.timeout(Duration::from_secs(20)).output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains(&format!(
            "the process listening on {} runs as uid {NOBODY}",
            sock.display()
        )),
        "{err}"
    );
    let received = std::fs::read(&got).unwrap();
    assert!(
        received.is_empty(),
        "the planted listener got {:?}",
        text(&received)
    );
    let _ = listener.kill();
    let _ = listener.wait();
}

/// A symbolic link at the lock path: the daemon refuses to start, and does not create
/// (or lock) the file it points to.
#[test]
fn a_symlink_at_the_lock_path_is_refused_and_its_target_is_not_created() {
    let t = TestEnv::new();
    let sock = t.socket();
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    std::fs::set_permissions(
        sock.parent().unwrap(),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let target = t.dir.path().join("victim-file");
    let lock = PathBuf::from(format!("{}.lock", sock.display()));
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    for args in [&["daemon", "run"][..], &["daemon", "start"]] {
        let o = t
            .cmd()
            .args(args)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {err}");
        assert!(!target.exists(), "{args:?} created the symlink's target");
        assert!(!sock.exists(), "{args:?}: a daemon started");
        assert!(
            err.contains("the daemon lock ~/.elhaz/sock/daemon.sock.lock is a symbolic link"),
            "{args:?}: {err}"
        );
        assert!(err.contains(&format!("rm {}", lock.display())), "{err}");
    }
}

// ---------------------------------------------------------------------------
// Logs

/// Requests through a share whose action and request_id hold newlines, a carriage
/// return and terminal escapes: one log line per request, no forged line, no raw
/// control character in the file or in `daemon logs`.
#[tokio::test(flavor = "multi_thread")]
async fn forged_lines_and_escapes_from_a_peer_stay_inert_in_the_log() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let sock = share_dir(&t).join("prod.sock");
    share(&t, "prod", &sock, &[]);
    let evil = [
        (
            "credentials\nFORGED INFO elhaz: action=kill",
            "id\n2026-01-01T00:00:00Z FORGED",
        ),
        (
            "\x1b[2J\x1b]0;owned\x07status",
            "\x1b[31mred\r\u{9b}2J\x7f\x00",
        ),
        ("whoami", "\n\n\nFORGED"),
    ];
    for (action, id) in evil {
        let line = json!({"version": 1, "request_id": id, "action": action, "payload": {}});
        let answer = raw_request(&sock, &line.to_string());
        assert!(answer.contains("\"ok\":false"), "{answer}");
    }
    let logged = wait_until(Duration::from_secs(5), || {
        log_text(&t).matches("share request").count() >= evil.len()
    });
    let log = log_text(&t);
    assert!(logged, "{log}");
    let share_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("share request"))
        .collect();
    assert_eq!(share_lines.len(), evil.len(), "{log}");
    assert!(
        !log.lines()
            .any(|l| l.starts_with("FORGED") || l.starts_with("2026-01-01") || l.is_empty()),
        "a forged line:\n{log}"
    );
    let controls: Vec<char> = log
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(
        controls.is_empty(),
        "raw control characters {controls:?} in the log:\n{log}"
    );
    assert!(
        log.contains("\\x1b[2J") && log.contains("\\nFORGED"),
        "{log}"
    );

    // `daemon logs` prints what is in the file inert, even lines an older daemon (or
    // anyone) wrote raw.
    std::fs::OpenOptions::new()
        .append(true)
        .open(t.log())
        .unwrap()
        .write_all(b"raw \x1b[2J\x1b]0;title\x07 \x9b bad byte \xff\r end\n")
        .unwrap();
    let o = run(&t, &["daemon", "logs", "--tail", "1000"]);
    ok(&o);
    let shown = text(&o.stdout);
    let controls: Vec<char> = shown
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(
        controls.is_empty(),
        "`daemon logs` printed {controls:?}:\n{shown}"
    );
    assert!(shown.contains("raw \\x1b[2J\\x1b]0;title\\x07"), "{shown}");
    assert!(shown.contains("bad byte"), "{shown}");
}

/// A refused uid flooding a `--uid` share: a handful of log lines with a count, not a
/// line per connection (which rotated the whole log away within seconds).
#[ignore = "needs root: acts as other uids; .ci/check runs it as root"]
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_user_flooding_a_share_cannot_rotate_the_log_away() {
    needs_root();
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let dir = share_dir(&t);
    traversable(&t, &dir);
    let sock = dir.join("agent.sock");
    share(&t, "prod", &sock, &["--uid", &NOBODY.to_string()]);
    let before = log_text(&t).len();

    let mut flood = python(
        "import socket, sys, time\n\
         end, n = time.time() + 4, 0\n\
         while time.time() < end:\n\
         \x20   s = socket.socket(socket.AF_UNIX)\n\
         \x20   try:\n\
         \x20       s.connect(sys.argv[1]); n += 1\n\
         \x20   except OSError:\n\
         \x20       pass\n\
         \x20   s.close()\n\
         print(n)\n",
    );
    flood.arg(&sock).stderr(Stdio::inherit());
    as_user(&mut flood, STRANGER, STRANGER);
    let o = flood.output().unwrap();
    ok(&o);
    let connections: u64 = text(&o.stdout).trim().parse().unwrap();
    assert!(
        connections > 1000,
        "the flood made only {connections} connections"
    );

    // The count is logged when the 10 s interval ends.
    let counted = wait_until(Duration::from_secs(15), || {
        log_text(&t)
            .lines()
            .any(|l| l.contains(&format!("peer_uid={STRANGER}")) && l.contains("count="))
    });
    let log = log_text(&t);
    assert!(counted, "no count of refusals in the log:\n{log}");
    let refusal_lines = log
        .lines()
        .filter(|l| l.contains(&format!("peer_uid={STRANGER}")))
        .count();
    let counts: u64 = log
        .lines()
        .filter(|l| l.contains(&format!("peer_uid={STRANGER}")))
        .filter_map(|l| {
            l.split("count=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    eprintln!(
        "FIGURE log flood: {connections} refused connections in 4 s -> {refusal_lines} log lines, {} bytes",
        log.len() - before
    );
    assert!(refusal_lines <= 3, "{refusal_lines} refusal lines:\n{log}");
    assert!(
        counts + 1 >= connections / 2,
        "counted {counts} of {connections}:\n{log}"
    );
    assert!(
        log.len() - before < 16 * 1024,
        "the log grew by {} bytes",
        log.len() - before
    );
    assert!(
        !PathBuf::from(format!("{}.1", t.log().display())).exists(),
        "the log rotated"
    );
    // The user is still served, and still sees its own lines.
    assert!(log.contains("share opened"), "{log}");
    assert_eq!(
        t.request("list", json!({}))["ok"],
        true,
        "the daemon stopped serving its user"
    );
}

// ---------------------------------------------------------------------------
// Share sockets under idle connections

/// ~500 idle connections held on a share: the sandbox's real credential_process call
/// still gets its answer within 2 s.
#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_on_a_share_do_not_starve_its_real_client() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let sock = share_dir(&t).join("prod.sock");
    share(&t, "prod", &sock, &[]);
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while held.len() < 500 && Instant::now() < deadline {
        match connect_nonblocking(&sock) {
            Some(s) => held.push(s),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    assert_eq!(
        held.len(),
        500,
        "could open only {} connections",
        held.len()
    );
    // Past the grace period in which a fresh connection is not evicted.
    std::thread::sleep(Duration::from_millis(500));
    let mut c = Command::new(bin());
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(["export", "--socket"])
        .arg(&sock)
        .args(["-f", "credential-process"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let (status, out, err) = output_within(c.spawn().unwrap(), Duration::from_secs(30));
    let took = started.elapsed();
    let status = status.expect("export through the share hung");
    assert!(status.success(), "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        v["AccessKeyId"].as_str().unwrap().starts_with("ASIAFAKE"),
        "{v}"
    );
    eprintln!("FIGURE share under 500 idle connections: export answered in {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "the real client waited {took:?}"
    );
    drop(held);
}

/// The source keys the shell integration hands over for one command never reach
/// another process: not a `--server` child reading its supervisor's environment or
/// memory (another process of the same user), not a helper elhaz runs.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root: acts as other uids; .ci/check runs it as root"]
async fn handed_over_source_keys_reach_no_child_and_no_reader_of_the_supervisor() {
    needs_root();
    let (_sts, mut t) = TestEnv::with_role(HOUR).await;
    const KEPT: &str = "AKIAKEPTSOURCEKEY001";
    const KEPT_SECRET: &str = "kept-source-secret-value";
    t.set("ELHAZ_SESSION", "outer");
    t.set("ELHAZ_EXPIRES_AT", &(unix_now() + 3000).to_string());
    t.set("ELHAZ_REFRESH_AT", &(unix_now() + 2400).to_string());
    t.set("AWS_ACCESS_KEY_ID", "ASIAINJECTED00000000");
    t.set("AWS_SECRET_ACCESS_KEY", "injected-secret");
    t.set("ELHAZ_SOURCE_AWS_ACCESS_KEY_ID", KEPT);
    t.set("ELHAZ_SOURCE_AWS_SECRET_ACCESS_KEY", KEPT_SECRET);
    // A helper that writes down what it inherited.
    let seen_by_helper = t.home.join("helper-env");
    t.role_config(
        "mfa",
        &format!(
            "  SerialNumber: arn:aws:iam::123456789012:mfa/me\nMFA:\n  command: \"env > {} ; echo 123456\"\n",
            seen_by_helper.display()
        ),
    );
    chown_tree(&t.home, NOBODY, NOBODY);
    traversable(&t, &t.home);
    std::fs::set_permissions(&t.home, std::fs::Permissions::from_mode(0o700)).unwrap();

    let probe = t.home.join("probe");
    let mut c = t.std_cmd();
    c.args(["--no-daemon", "exec", "--server", "prod", "--", "sh", "-c"])
        .arg(format!(
            "cat /proc/$PPID/environ > {p}-environ 2>&1; env > {p}-env",
            p = probe.display()
        ))
        .stdin(Stdio::null());
    as_user(&mut c, NOBODY, NOBODY);
    ok(&c.output().unwrap());
    let mut c = t.std_cmd();
    c.args(["--no-daemon", "export", "mfa"])
        .stdin(Stdio::null());
    as_user(&mut c, NOBODY, NOBODY);
    ok(&c.output().unwrap());

    for file in [
        format!("{}-environ", probe.display()),
        format!("{}-env", probe.display()),
        seen_by_helper.display().to_string(),
    ] {
        let seen = std::fs::read(&file).unwrap_or_default();
        let seen = String::from_utf8_lossy(&seen);
        assert!(
            !seen.contains(KEPT) && !seen.contains(KEPT_SECRET),
            "{file} holds the handed-over source key:\n{seen}"
        );
    }
    let environ = std::fs::read_to_string(format!("{}-environ", probe.display())).unwrap();
    assert!(
        environ.contains("Permission denied"),
        "the supervisor's environment is closed to the user's other processes: {environ}"
    );
}
