//! Faults and abuse: a flood of malformed lines, slow-loris
//! clients, a daemon killed mid-request, a read-only or full config directory, a skewed
//! clock at the source, and a full session that must leave no secret in a file, the
//! log or any process's command line.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{Value, json};

const HOUR: Duration = Duration::from_secs(3600);
const MAX_LINE: usize = 64 * 1024;

// ---------------------------------------------------------------------------
// Helpers

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether PID runs (and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// VmRSS of PID, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for {pid}"))
}

/// A small xorshift generator: the runs differ, and the seed is printed.
struct Rng(u64);

impl Rng {
    fn seeded(n: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng((t ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A malformed line (no newline): random bytes, random printable text, a valid request
/// cut short, or well-formed JSON of the wrong shape.
fn garbage(rng: &mut Rng) -> Vec<u8> {
    let valid = br#"{"version": 1, "request_id": "r", "action": "credentials", "payload": {"config": "prod"}}"#;
    let len = rng.below(200) as usize;
    match rng.below(4) {
        0 => (0..len)
            .map(|_| rng.below(256) as u8)
            .map(|b| if b == b'\n' { b' ' } else { b })
            .collect(),
        1 => (0..len).map(|_| b' ' + rng.below(95) as u8).collect(),
        2 => valid[..rng.below(valid.len() as u64) as usize].to_vec(),
        _ => {
            let shapes = [
                r#"{"request_id": 5, "action": "list"}"#,
                r#"{"action": "list"}"#,
                r#"[1, 2, 3]"#,
                r#"null"#,
                r#"{"version": 2, "request_id": "r", "action": "list", "payload": {}}"#,
                r#"{"version": 1, "request_id": "r", "action": "nope", "payload": {}}"#,
                r#"{"version": 1, "request_id": "r", "action": "credentials", "payload": []}"#,
            ];
            shapes[rng.below(shapes.len() as u64) as usize]
                .as_bytes()
                .to_vec()
        }
    }
}

/// Reads one answer line; None when the daemon closed without one. Errors (a reset
/// after unread input) count as a close.
fn read_answer(s: &UnixStream) -> Option<String> {
    let mut line = String::new();
    match BufReader::new(s).read_line(&mut line) {
        Ok(n) if n > 0 => Some(line),
        _ => None,
    }
}

/// A connection made without blocking: None when the listen queue is full.
fn connect_nonblocking(path: &Path) -> Option<UnixStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let addr = UnixAddr::new(path).unwrap();
    connect(fd.as_raw_fd(), &addr).ok()?;
    Some(UnixStream::from(fd))
}

/// Whether the daemon closed this (nonblocking) connection.
fn closed(s: &mut UnixStream) -> bool {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Runs `cmd` with a deadline; its output and how long it took.
fn timed(mut cmd: Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, out, err) = output_within(child, limit);
    let took = started.elapsed();
    let status = status.unwrap_or_else(|| panic!("{cmd:?} still ran after {limit:?}"));
    (
        Output {
            status,
            stdout: out.into_bytes(),
            stderr: err.into_bytes(),
        },
        took,
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------
// Floods

/// 100,000 malformed lines over 50 concurrent connections: single garbage lines,
/// pipelined bursts (the daemon answers the first line and closes), oversized lines,
/// and half lines whose writer hangs up. Afterwards a `credentials` request answers at
/// once and the daemon has not grown.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_malformed_lines_leaves_the_daemon_fast_and_small() {
    // Its figures and bounds are timings under a flood: no other test runs meanwhile.
    let _alone = gate::Turn::alone();
    let (sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let pid = t.daemon_pid().expect("daemon pid");
    // Warm: the session is cached, the runtime's threads exist.
    for _ in 0..20 {
        assert_eq!(
            t.request("credentials", json!({"config": "prod", "autoadd": true}))["ok"],
            true
        );
    }
    let rss_before = rss_kib(pid);

    const WORKERS: u64 = 50;
    const LINES: u64 = 100_000;
    let socket = t.socket();
    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::seeded(w);
                let deadline = Instant::now() + Duration::from_secs(120);
                let (mut lines, mut connections, mut answered) = (0u64, 0u64, 0u64);
                while lines < LINES / WORKERS {
                    assert!(
                        Instant::now() < deadline,
                        "worker {w}: flood took over 120 s"
                    );
                    let s = UnixStream::connect(&socket).expect("connect");
                    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
                    let mut w = &s;
                    connections += 1;
                    let kind = rng.below(10);
                    let expect_answer = match kind {
                        // A pipelined burst of garbage lines in one write.
                        0..=2 => {
                            let n = 2 + rng.below(19);
                            let mut burst = Vec::new();
                            for _ in 0..n {
                                burst.extend(garbage(&mut rng));
                                burst.push(b'\n');
                            }
                            lines += n;
                            let _ = w.write_all(&burst);
                            true
                        }
                        // An oversized line.
                        3 => {
                            lines += 1;
                            let size = MAX_LINE + 1 + rng.below(100_000) as usize;
                            let _ = w.write_all(&vec![b'{'; size]);
                            true
                        }
                        // Half a line, then hang up without reading.
                        4 | 5 => {
                            lines += 1;
                            let g = garbage(&mut rng);
                            let _ = w.write_all(&g[..g.len() / 2]);
                            false
                        }
                        // One garbage line.
                        _ => {
                            lines += 1;
                            let mut g = garbage(&mut rng);
                            g.push(b'\n');
                            let _ = w.write_all(&g);
                            true
                        }
                    };
                    if expect_answer {
                        let answer = read_answer(&s).expect("a 400, not a silent close");
                        let v: Value = serde_json::from_str(&answer)
                            .unwrap_or_else(|e| panic!("{e}: {answer}"));
                        assert_eq!(v["ok"], false, "{answer}");
                        assert_eq!(v["error"]["code"], 400, "{answer}");
                        answered += 1;
                    }
                }
                (lines, connections, answered)
            })
        })
        .collect();

    // Meanwhile, real requests keep being answered.
    let mut during = Vec::new();
    while workers.iter().any(|w| !w.is_finished()) && during.len() < 10_000 {
        let t0 = Instant::now();
        let r = t.request("credentials", json!({"config": "prod", "autoadd": true}));
        during.push(t0.elapsed());
        assert_eq!(r["ok"], true, "during the flood: {r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (mut lines, mut connections, mut answered) = (0, 0, 0);
    for w in workers {
        let (l, c, a) = w.join().unwrap();
        lines += l;
        connections += c;
        answered += a;
    }
    let flood = started.elapsed();
    assert!(lines >= LINES, "{lines} lines");

    let t0 = Instant::now();
    let r = t.request("credentials", json!({"config": "prod", "autoadd": true}));
    let after = t0.elapsed();
    assert_eq!(r["ok"], true, "after the flood: {r}");
    assert_eq!(r["data"]["access_key"], "ASIAFAKE000000000001");
    // Settle: connections the flood hung up on are gone.
    std::thread::sleep(Duration::from_millis(300));
    let rss_after = rss_kib(pid);
    during.sort();
    let worst = during.last().copied().unwrap_or_default();
    let median = during.get(during.len() / 2).copied().unwrap_or_default();
    eprintln!(
        "FIGURE flood: {lines} malformed lines over {connections} connections ({answered} answered 400) in {:.1} s; \
         `credentials` after the flood {:.2} ms; during it median {:.2} ms, worst {:.2} ms over {} requests; \
         daemon VmRSS {rss_before} KiB -> {rss_after} KiB ({:+} KiB)",
        flood.as_secs_f64(),
        ms(after),
        ms(median),
        ms(worst),
        during.len(),
        rss_after as i64 - rss_before as i64
    );
    assert!(after < Duration::from_secs(1), "credentials took {after:?}");
    assert!(
        rss_after <= rss_before + 5 * 1024,
        "daemon RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert_eq!(
        sts.calls("AssumeRole").await.len(),
        1,
        "no refresh on the way"
    );
}

/// 300 slow-loris connections (half silent, half sending a byte a second, and
/// reconnecting whenever the daemon drops them) do not keep a real client out.
#[tokio::test(flavor = "multi_thread")]
async fn slow_loris_connections_do_not_lock_out_a_real_client() {
    // Its figures and bounds are timings under a flood: no other test runs meanwhile.
    let _alone = gate::Turn::alone();
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let (warm, _) = timed(
        {
            let mut c = t.std_cmd();
            c.args(["export", "prod"]);
            c
        },
        Duration::from_secs(30),
    );
    assert!(warm.status.success(), "{}", stderr(&warm));

    const LORIS: usize = 300;
    let socket = t.socket();
    let stop = Arc::new(AtomicBool::new(false));
    let held = Arc::new(Mutex::new((0usize, 0usize)));
    let loris = {
        let (stop, held) = (stop.clone(), held.clone());
        std::thread::spawn(move || {
            let mut conns: Vec<Option<UnixStream>> = (0..LORIS).map(|_| None).collect();
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut last_byte = Instant::now();
            let mut reconnects = 0usize;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let trickle = last_byte.elapsed() >= Duration::from_secs(1);
                if trickle {
                    last_byte = Instant::now();
                }
                for (i, slot) in conns.iter_mut().enumerate() {
                    if let Some(s) = slot
                        && (closed(s) || (trickle && i % 2 == 1 && s.write_all(b"{").is_err()))
                    {
                        *slot = None;
                    }
                    if slot.is_none() {
                        *slot = connect_nonblocking(&socket);
                        reconnects += usize::from(slot.is_some());
                    }
                }
                let open = conns.iter().filter(|c| c.is_some()).count();
                *held.lock().unwrap() = (open, reconnects);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // The daemon's slots are taken before the real client comes.
    let full = wait_until(Duration::from_secs(10), || held.lock().unwrap().0 >= 256);
    let (open, _) = *held.lock().unwrap();
    assert!(full, "the slow-loris clients hold only {open} connections");
    std::thread::sleep(Duration::from_millis(500));

    let mut latencies = Vec::new();
    for _ in 0..3 {
        let mut c = t.std_cmd();
        c.args(["export", "prod"]);
        let (out, took) = timed(c, Duration::from_secs(30));
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["access_key"], "ASIAFAKE000000000001", "{v}");
        latencies.push(took);
    }
    let (open, reconnects) = *held.lock().unwrap();
    stop.store(true, Ordering::Relaxed);
    loris.join().unwrap();
    eprintln!(
        "FIGURE slow-loris: `elhaz export prod` took {} ms with {open} slow-loris connections open ({reconnects} connects in all)",
        latencies
            .iter()
            .map(|d| format!("{:.1}", ms(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for took in &latencies {
        assert!(
            *took < Duration::from_secs(2),
            "a real client waited {took:?} behind slow-loris connections"
        );
    }
}

// ---------------------------------------------------------------------------
// A daemon killed mid-request

/// STS is slow, so `export` is in flight when the daemon is SIGKILLed: the client says
/// the daemon closed the connection (exit 4, no Rust debug text), and the next command
/// starts a new daemon and succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_mid_request_gives_a_clear_error_then_restarts() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let old = t.daemon_pid().expect("daemon pid");
    sts.set_fault(Fault::Delay(Duration::from_secs(20)));

    let started = Instant::now();
    let client = t
        .std_cmd()
        .args(["export", "prod"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // In flight: the daemon has asked STS, which has not answered.
    let mut in_flight = false;
    for _ in 0..500 {
        if !sts.calls("AssumeRole").await.is_empty() {
            in_flight = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(in_flight, "the request never reached STS");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (status, out, err) = output_within(client, Duration::from_secs(30));
    let took = started.elapsed();
    let status = status.expect("the client hung after the daemon died");
    assert_eq!(status.code(), Some(4), "stdout {out:?} stderr {err:?}");
    assert!(out.is_empty(), "{out}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(
            "elhaz: the daemon at ~/.elhaz/sock/daemon.sock closed the connection without answering"
        ),
        "{err}"
    );
    assert!(err.contains("hint: "), "a hint on what to do: {err}");
    assert!(
        !err.contains("Os {") && !err.contains("kind:") && !err.contains("panicked"),
        "{err}"
    );
    eprintln!(
        "FIGURE kill -9 mid-request: exit 4 after {:.0} ms: {}",
        ms(took),
        err.trim_end().replace('\n', " / ")
    );
    assert!(
        took < Duration::from_secs(15),
        "the client noticed the death only after {took:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || !alive(old)));

    // The next command starts a new daemon and gets credentials.
    sts.set_fault(Fault::None);
    let (out, _) = timed(
        {
            let mut c = t.std_cmd();
            c.args(["export", "prod"]);
            c
        },
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("started the daemon"),
        "{}",
        stderr(&out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["access_key"].as_str().unwrap().starts_with("ASIAFAKE"),
        "{v}"
    );
    let new = t.daemon_pid().expect("a new daemon");
    assert_ne!(new, old);
}

// ---------------------------------------------------------------------------
// A config directory that cannot be written

const NEW_ROLE: &str = "arn:aws:iam::123456789012:role/Other";

/// The `config` commands that write, each with the file it writes.
fn writes() -> Vec<(Vec<&'static str>, &'static str)> {
    vec![
        (
            vec!["config", "update", "prod", "--duration", "2h"],
            "prod.yaml",
        ),
        (
            vec!["config", "add", "prod", "--force", "--role-arn", NEW_ROLE],
            "prod.yaml",
        ),
        (
            vec!["config", "add", "fresh", "--role-arn", NEW_ROLE],
            "fresh.yaml",
        ),
    ]
}

/// Names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The failed write's stderr: one `elhaz:` line naming the file and the reason, an
/// optional hint, nothing of Rust's debug output.
fn assert_clear_write_error(what: &str, o: &Output, file: &str, reason: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(3), "{what}: {err}");
    assert!(o.stdout.is_empty(), "{what}: {}", stdout(o));
    let first = err.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("elhaz: cannot write {file}: {reason}"),
        "{what}"
    );
    for line in err.lines().skip(1) {
        assert!(line.starts_with("hint: "), "{what}: {err}");
    }
    for debug in [
        "Os {",
        "os error",
        "kind:",
        "Error {",
        "panicked",
        "PathError",
    ] {
        assert!(!err.contains(debug), "{what}: {err}");
    }
}

/// The directory is root's (0755) and elhaz runs as nobody, as when a config dir
/// belongs to another user (without root: a directory of 0555); a read-only mount is
/// the next test.
#[test]
fn a_read_only_config_dir_keeps_the_old_file_and_says_which() {
    let t = TestEnv::new();
    let file = t.role_config("prod", "  DurationSeconds: 3600\n");
    let dir = t.config_dir();
    let before = std::fs::read(&file).unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    for d in [t.dir.path(), &t.home, &t.home.join(".elhaz"), &dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    if !root {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    for (args, name) in writes() {
        let mut c = t.std_cmd();
        c.args(&args).stdin(Stdio::null());
        if root {
            c.uid(65534).gid(65534);
        }
        let o = c.output().unwrap();
        assert_clear_write_error(
            &format!("{args:?} as another user"),
            &o,
            &format!("~/.elhaz/configs/{name}"),
            "permission denied",
        );
        assert_eq!(
            stderr(&o).lines().nth(1).unwrap_or_default(),
            format!(
                "hint: make it yours: chown -R \"$USER\" {0} && chmod 700 {0}",
                dir.display()
            ),
            "{args:?}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), before, "{args:?}");
        assert_eq!(entries(&dir), ["prod.yaml"], "{args:?}");
    }
}

/// A read-only bind mount over the config directory, in a mount namespace of its own
/// (nothing to clean up).
#[test]
#[ignore = "needs root: mounts in a namespace of its own; .ci/check runs it as root"]
fn a_read_only_mount_keeps_the_old_file_and_says_which() {
    needs_root();
    let t = TestEnv::new();
    let file = t.role_config("prod", "  DurationSeconds: 3600\n");
    let dir = t.config_dir();
    let before = std::fs::read(&file).unwrap();
    for (args, name) in writes() {
        let o = Command::new(which_on_path("unshare").unwrap())
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                r#"mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" || exit 99
shift; exec "$@""#,
            )
            .arg("sh")
            .arg(&dir)
            .arg(bin())
            .args(&args)
            .env_clear()
            .envs(&t.vars)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_ne!(o.status.code(), Some(99), "mounting failed: {}", stderr(&o));
        assert_clear_write_error(
            &format!("{args:?} on a read-only mount"),
            &o,
            &format!("~/.elhaz/configs/{name}"),
            "read-only file system",
        );
        assert_eq!(std::fs::read(&file).unwrap(), before, "{args:?}");
        assert_eq!(entries(&dir), ["prod.yaml"], "{args:?}");
    }
}

/// A full disk as a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored: the write fails
/// with EFBIG); a real full file system is the next test.
#[test]
fn a_full_disk_keeps_the_old_file_and_says_why() {
    let t = TestEnv::new();
    let file = t.role_config("prod", "  DurationSeconds: 3600\n");
    let dir = t.config_dir();
    let before = std::fs::read(&file).unwrap();

    for (args, name) in writes() {
        let mut c = t.std_cmd();
        c.args(&args).stdin(Stdio::null());
        // SAFETY: signal and setrlimit are async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit {
                    rlim_cur: 16,
                    rlim_max: 16,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let o = c.output().unwrap();
        assert_clear_write_error(
            &format!("{args:?} over RLIMIT_FSIZE"),
            &o,
            &format!("~/.elhaz/configs/{name}"),
            "file too large",
        );
        assert_eq!(std::fs::read(&file).unwrap(), before, "{args:?}");
        assert_eq!(entries(&dir), ["prod.yaml"], "{args:?}");
    }
}

/// A real full file system: a 16 KiB tmpfs over the config directory, in a mount
/// namespace of its own; what is left in it is copied out before it goes.
#[test]
#[ignore = "needs root: mounts in a namespace of its own; .ci/check runs it as root"]
fn a_full_tmpfs_keeps_the_old_file_and_says_why() {
    needs_root();
    let t = TestEnv::new();
    let file = t.role_config("prod", "  DurationSeconds: 3600\n");
    let dir = t.config_dir();
    let before = std::fs::read(&file).unwrap();
    let saved = t.dir.path().join("saved.yaml");
    std::fs::copy(&file, &saved).unwrap();
    for (args, name) in writes() {
        let out = t.dir.path().join("after");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir(&out).unwrap();
        let o = Command::new(which_on_path("unshare").unwrap())
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                r#"dir=$1 saved=$2 out=$3; shift 3
mount -t tmpfs -o size=16k,mode=0700 tmpfs "$dir" || exit 99
cp "$saved" "$dir/prod.yaml" || exit 98
head -c 1048576 /dev/zero > "$dir/filler" 2>/dev/null
"$@"; rc=$?
rm -f "$dir/filler"
cp -a "$dir/." "$out/" || exit 98
exit $rc"#,
            )
            .arg("sh")
            .arg(&dir)
            .arg(&saved)
            .arg(&out)
            .arg(bin())
            .args(&args)
            .env_clear()
            .envs(&t.vars)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_ne!(o.status.code(), Some(99), "mounting failed: {}", stderr(&o));
        assert_ne!(o.status.code(), Some(98), "{}", stderr(&o));
        assert_clear_write_error(
            &format!("{args:?} on a full tmpfs"),
            &o,
            &format!("~/.elhaz/configs/{name}"),
            "no space left on device",
        );
        assert_eq!(
            std::fs::read(out.join("prod.yaml")).unwrap(),
            before,
            "{args:?}"
        );
        assert_eq!(
            entries(&out),
            ["prod.yaml"],
            "{args:?}: a temp file was left"
        );
    }
    // Outside the namespace the directory never changed.
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(entries(&dir), ["prod.yaml"]);
}

// ---------------------------------------------------------------------------
// Clock skew

/// STS (or this machine's clock) is off by two hours: one-hour credentials arrive
/// already expired. They are never served: `export` fails naming the clock (exit 5),
/// through the daemon and without it. Once the clock is right, they are served again.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_expired_on_arrival_are_not_served() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    t.role_config("other", "");
    t.start_daemon();
    *sts.state.skew.lock().unwrap() = -7200;

    let export = |name: &str, no_daemon: bool| {
        let mut c = t.std_cmd();
        c.args(["export", name]);
        if no_daemon {
            c.arg("--no-daemon");
        }
        timed(c, Duration::from_secs(60)).0
    };
    for no_daemon in [false, true] {
        let o = export("prod", no_daemon);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(5), "no_daemon={no_daemon}: {err}");
        assert!(o.stdout.is_empty(), "served: {}", stdout(&o));
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(
                "elhaz: the credentials for prod had already expired when they arrived"
            ),
            "{err}"
        );
        assert!(first.contains("this machine's clock says"), "{err}");
        assert!(err.contains("hint: check this machine's clock"), "{err}");
        assert!(!err.contains("fakesecret"), "{err}");
    }
    // Nothing expired sits in the daemon.
    let status = t.request("status", json!({}));
    assert_eq!(status["data"]["sessions"], json!([]), "{status}");
    let calls = sts.calls("AssumeRole").await.len();
    assert_eq!(calls, 2, "one STS call each");

    // The clock is right again: a session never served is tried again at once, and
    // another config too.
    *sts.state.skew.lock().unwrap() = 0;
    for name in ["prod", "other"] {
        let o = export(name, false);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let expiry = time::OffsetDateTime::parse(
            v["expiry_time"].as_str().unwrap(),
            &time::format_description::well_known::Iso8601::DEFAULT,
        )
        .unwrap();
        let left = expiry.unix_timestamp() - unix_now();
        assert!((3000..=3600).contains(&left), "{name}: {left} s left: {v}");
    }
}

/// A session with good credentials whose refresh brings back expired ones keeps
/// serving the good ones, and never the expired ones.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_that_arrives_expired_keeps_the_good_credentials() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let first = t.request("credentials", json!({"config": "prod", "autoadd": true}));
    assert_eq!(first["ok"], true, "{first}");
    *sts.state.skew.lock().unwrap() = -7200;
    let r = t.request("refresh", json!({"config": "prod"}));
    assert_eq!(r["ok"], false, "a forced refresh reports the failure: {r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("had already expired when they arrived"),
        "{r}"
    );
    assert_eq!(sts.calls("AssumeRole").await.len(), 2);
    let o = t.cmd().args(["export", "prod"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["access_key"], first["data"]["access_key"], "{v}");
    assert_eq!(v["secret_key"], "fakesecret1xyz");
}

// ---------------------------------------------------------------------------
// No secret left behind

/// What a /proc sampler saw: command lines (and the daemon's environment) of every
/// process running the elhaz binary, of their descendants, and of this test's.
#[derive(Default)]
struct Seen {
    cmdlines: BTreeSet<Vec<u8>>,
    daemon_environ: BTreeSet<Vec<u8>>,
    samples: usize,
}

fn proc_sample(elhaz: &Path, seen: &mut Seen) {
    let me = std::process::id();
    // pid -> (ppid, runs elhaz)
    let mut procs = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let is_elhaz = std::fs::read_link(entry.path().join("exe"))
            .is_ok_and(|exe| exe.to_string_lossy().starts_with(&*elhaz.to_string_lossy()));
        procs.insert(pid, (ppid, is_elhaz));
    }
    for (&pid, &(_, is_elhaz)) in &procs {
        // Ours when it, or an ancestor, runs elhaz or is this test.
        let mut p = pid;
        let mut ours = false;
        for _ in 0..64 {
            let Some(&(ppid, e)) = procs.get(&p) else {
                break;
            };
            if e || p == me {
                ours = true;
                break;
            }
            if ppid == 0 || ppid == p {
                break;
            }
            p = ppid;
        }
        if !ours {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if is_elhaz
                && cmdline.ends_with(b"daemon\0run\0")
                && let Ok(env) = std::fs::read(format!("/proc/{pid}/environ"))
            {
                seen.daemon_environ.insert(env);
            }
            seen.cmdlines.insert(cmdline);
        }
    }
    seen.samples += 1;
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            files_under(&p, out);
        } else if m.is_file() {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A whole session (config add, exec, a shell whose hook refreshes, export, whoami,
/// daemon remove) with short-lived credentials, so that several are issued. None of
/// the secret keys or tokens STS issued may appear in the daemon log, in any file under
/// HOME or TMPDIR, in the command line of any elhaz process or its children (sampled
/// from /proc throughout, and every execve traced by strace when it is there), or in
/// the daemon's environment.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_session_leaves_no_secret_in_files_logs_or_command_lines() {
    let sts = FakeSts::start(Duration::from_secs(12)).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    let tmp = t.dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    t.set("TMPDIR", tmp.to_str().unwrap());
    t.set("ELHAZ_LOG", "trace");
    let traces = t.dir.path().join("traces");
    std::fs::create_dir(&traces).unwrap();
    let strace = which_on_path("strace");

    let elhaz = std::fs::canonicalize(bin()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, elhaz) = (stop.clone(), elhaz.clone());
        std::thread::spawn(move || {
            let mut seen = Seen::default();
            let deadline = Instant::now() + Duration::from_secs(180);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                proc_sample(&elhaz, &mut seen);
                std::thread::sleep(Duration::from_millis(5));
            }
            proc_sample(&elhaz, &mut seen);
            seen
        })
    };

    let mut step = 0;
    let mut stderrs = Vec::new();
    let mut run = |args: &[&str]| -> Output {
        step += 1;
        let mut c = match &strace {
            Some(s) => {
                let mut c = t.program(s);
                c.args(["-f", "-qq", "-e", "trace=execve", "-s", "100000", "-o"])
                    .arg(traces.join(format!("{step}.trace")))
                    .arg(bin());
                c
            }
            None => t.std_cmd(),
        };
        c.args(args);
        let (o, _) = timed(c, Duration::from_secs(90));
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stderrs.push((args.join(" "), o.stderr.clone()));
        o
    };

    run(&["config", "add", "prod", "--role-arn", ROLE_ARN]);
    // Started outside strace, which would wait for it to exit.
    t.start_daemon();
    run(&[
        "exec",
        "prod",
        "--",
        "sh",
        "-c",
        r#"test -n "$AWS_SECRET_ACCESS_KEY" && test -n "$AWS_SESSION_TOKEN" && sleep 0.3"#,
    ]);
    // The shell's hook refreshes once ELHAZ_REFRESH_AT has passed (W = L/4, 3 s).
    let script = r#"# abuse-session-marker
[ "$(type -t _elhaz_hook)" = function ] || { echo "no hook"; exit 3; }
echo "K1=$AWS_ACCESS_KEY_ID"
end=$((EPOCHSECONDS + 40))
while (( EPOCHSECONDS <= ELHAZ_REFRESH_AT )); do
  (( EPOCHSECONDS < end )) || { echo "ELHAZ_REFRESH_AT never came"; exit 4; }
  sleep 0.2
done
_elhaz_hook
echo "K2=$AWS_ACCESS_KEY_ID"
"#;
    let bash = which_on_path("bash").unwrap();
    let shell = run(&[
        "shell",
        "prod",
        "--shell",
        bash.to_str().unwrap(),
        "--",
        "-c",
        script,
    ]);
    let out = stdout(&shell);
    let key = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {out:?}; stderr {}", stderr(&shell)))
            .to_string()
    };
    let (k1, k2) = (key("K1="), key("K2="));
    assert!(k1.starts_with("ASIAFAKE"), "{out}");
    assert_ne!(k1, k2, "the hook refreshed the shell's credentials: {out}");
    sts.set_lifetime(HOUR);
    let export = run(&["export", "prod"]);
    assert!(
        stdout(&export).contains("fakesecret"),
        "export prints the secret"
    );
    run(&["export", "prod", "-f", "env"]);
    let who = run(&["whoami", "prod"]);
    assert!(stdout(&who).contains("123456789012"), "{}", stdout(&who));
    run(&["daemon", "remove", "prod"]);

    stop.store(true, Ordering::Relaxed);
    let seen = sampler.join().unwrap();
    let issued = sts.state.issued.load(Ordering::SeqCst);
    assert!(issued >= 2, "{issued} credentials issued");
    let secrets: Vec<String> = (1..=issued)
        .flat_map(|n| [format!("fakesecret{n}xyz"), format!("faketoken{n}xyz")])
        .collect();

    // The sampler saw what it had to.
    let saw = |needle: &str| seen.cmdlines.iter().any(|c| contains(c, needle));
    assert!(saw("daemon\0run"), "the sampler never saw the daemon");
    assert!(
        saw("abuse-session-marker"),
        "the sampler never saw the shell"
    );
    assert!(
        !seen.daemon_environ.is_empty(),
        "no daemon environment read"
    );

    let log = std::fs::read(t.log()).unwrap();
    assert!(
        contains(&log, "refreshed"),
        "the log is the daemon's, at trace level"
    );
    let mut files = Vec::new();
    files_under(&t.home, &mut files);
    files_under(&tmp, &mut files);
    assert!(files.contains(&t.log()), "{files:?}");
    assert!(
        files.contains(&t.config_dir().join("prod.yaml")),
        "{files:?}"
    );
    let mut trace_files = Vec::new();
    files_under(&traces, &mut trace_files);
    if strace.is_some() {
        let all: Vec<u8> = trace_files
            .iter()
            .flat_map(|f| std::fs::read(f).unwrap())
            .collect();
        assert!(
            contains(&all, "\"hook\", \"bash\", \"--refresh\""),
            "strace saw the hook's refresh"
        );
    }
    for secret in &secrets {
        for f in files.iter().chain(&trace_files) {
            let bytes = std::fs::read(f).unwrap();
            assert!(!contains(&bytes, secret), "{secret} is in {}", f.display());
        }
        for c in &seen.cmdlines {
            assert!(
                !contains(c, secret),
                "{secret} is in a command line: {}",
                String::from_utf8_lossy(c).replace('\0', " ")
            );
        }
        for (args, err) in &stderrs {
            assert!(
                !contains(err, secret),
                "{secret} is on the stderr of elhaz {args} (ELHAZ_LOG=trace)"
            );
        }
        for env in &seen.daemon_environ {
            assert!(
                !contains(env, secret),
                "{secret} is in the daemon's environment"
            );
        }
    }
    eprintln!(
        "FIGURE secrets: {} secrets ({issued} credentials) checked against {} files, {} command lines from {} /proc samples, {} strace logs: none found",
        secrets.len(),
        files.len(),
        seen.cmdlines.len(),
        seen.samples,
        trace_files.len()
    );
}

/// The SDK logs each request's headers at trace level, and a source session's token
/// travels in one (`x-amz-security-token`; the SSO portal's bearer token likewise):
/// even at `ELHAZ_LOG=trace`, neither stderr nor the daemon log may show it.
#[tokio::test(flavor = "multi_thread")]
async fn trace_logging_shows_no_secret_a_request_header_carries() {
    let (_sts, mut t) = TestEnv::with_role(Duration::from_secs(3600)).await;
    let token = "SourceSessionToken0123456789abcdef";
    t.set("AWS_SESSION_TOKEN", token);
    for filter in [
        "trace",
        "aws_smithy_runtime=trace,aws_sigv4=trace,hyper=trace",
    ] {
        t.set("ELHAZ_LOG", filter);
        let local = local(&t, &["export", "prod"]);
        ok(&local);
        assert!(
            text(&local.stderr).contains("DEBUG"),
            "the SDK logs: {filter}"
        );
        assert!(
            !text(&local.stderr).contains(token),
            "the source session token is on stderr at ELHAZ_LOG={filter}"
        );
        t.stop_daemon();
        ok(&run(&t, &["export", "prod"]));
        assert!(
            !log_text(&t).contains(token),
            "the source session token is in the daemon log at ELHAZ_LOG={filter}"
        );
    }
}

/// The same for the SSO portal, whose access token travels in `x-amz-sso_bearer_token`,
/// a header the SDK does not redact itself.
#[tokio::test(flavor = "multi_thread")]
async fn trace_logging_shows_no_sso_access_token() {
    let portal = FakePortal::start(&[("Dev", "111111111111", &["ReadOnly"])]).await;
    let mut t = sso_user(&portal.uri(), 3600);
    for filter in ["trace", "aws_smithy_runtime=trace,hyper=trace"] {
        t.set("ELHAZ_LOG", filter);
        let o = run(&t, &["sso", "roles", "corp", "--refresh"]);
        ok(&o);
        assert!(text(&o.stderr).contains("DEBUG"), "the SDK logs: {filter}");
        assert!(
            !text(&o.stderr).contains(SSO_TOKEN),
            "the SSO access token is on stderr at ELHAZ_LOG={filter}"
        );
    }
}
