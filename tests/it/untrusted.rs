//! What another local user, or a hostile file, can do to elhaz: configs placed or
//! owned by another uid, configs that block or never end, leftovers of killed writers,
//! an endpoint flooded with idle connections, and a socket whose answer never ends or
//! drips. Each test reproduces the attack.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

const HOUR: Duration = Duration::from_secs(3600);

/// A uid that is neither root nor the user running the tests.
const OTHER: u32 = 40123;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs an elhaz command with stdin closed, failing the test if it is still running
/// after `limit` (a hung command is the bug some of these tests look for).
fn run_within(mut c: Command, limit: Duration) -> (i32, String, String) {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, out, err) = output_within(c.spawn().unwrap(), limit);
    let status = status.unwrap_or_else(|| panic!("still running after {limit:?}: {c:?}"));
    (status.code().unwrap_or(-1), out, err)
}

fn elhaz(t: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let mut c = t.std_cmd();
    c.args(args);
    run_within(c, Duration::from_secs(20))
}

#[track_caller]
fn assert_refused(what: &str, got: &(i32, String, String), message: &str, hint: &str) {
    let (code, out, err) = got;
    assert_eq!(
        *code, 3,
        "{what}: exit {code}\nstdout: {out}\nstderr: {err}"
    );
    assert!(err.contains(message), "{what}: {message:?} not in {err}");
    assert!(err.contains(hint), "{what}: hint {hint:?} not in {err}");
}

/// Makes every directory from the temp dir down to `dir` traversable by other users
/// (so that another uid can reach a directory it may write to).
fn traversable(t: &TestEnv, dir: &Path) {
    let mut d = dir.to_path_buf();
    while d != t.dir.path() {
        d = d.parent().unwrap().to_path_buf();
        chmod(&d, 0o711);
    }
}

/// A config whose MFA command leaves `marker` behind when it runs.
fn mfa_config(marker: &Path) -> String {
    format!(
        "AssumeRole:\n  RoleArn: {ROLE_ARN}\n  SerialNumber: arn:aws:iam::123456789012:mfa/me\nMFA:\n  command: touch {} && echo 123456\n",
        marker.display()
    )
}

// ---------------------------------------------------------------------------
// Configs another user placed, or could have changed.

/// The config directory is 0777 and another uid moves in its own prod.yaml, whose
/// MFA.command would run as the victim: every command refuses it, with exit 3, the
/// path and the chmod that fixes it, and the command never runs.
#[ignore = "needs root: acts as other uids; .ci/check runs it as root"]
#[tokio::test(flavor = "multi_thread")]
async fn a_config_dropped_by_another_user_in_a_world_writable_dir_never_runs() {
    needs_root();
    let sts = FakeSts::start(HOUR).await;
    let t = TestEnv::with_sts(&sts.uri());
    let dir = t.config_dir();
    std::fs::create_dir_all(&dir).unwrap();
    chmod(&dir, 0o777);
    traversable(&t, &dir);
    let marker = t.dir.path().join("attacker-ran");
    let planted = dir.join("prod.yaml");
    let mut drop = Command::new("sh");
    drop.arg("-c")
        .arg("cat > \"$1\"")
        .arg("sh")
        .arg(&planted)
        .stdin(Stdio::piped());
    as_user(&mut drop, OTHER, OTHER);
    let mut child = drop.spawn().unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        mfa_config(&marker).as_bytes(),
    )
    .unwrap();
    drop_stdin_and_wait(child);
    assert_eq!(std::fs::metadata(&planted).unwrap().uid(), OTHER);

    let shown = "~/.elhaz/configs";
    let hint = format!("chmod go-w {}", dir.display());
    for args in [
        &["exec", "--no-daemon", "prod", "--", "true"][..],
        &["exec", "prod", "--", "true"],
        &["config", "get", "prod"],
        &["config", "list"],
        &["whoami", "prod"],
    ] {
        let got = elhaz(&t, args);
        assert_refused(
            &format!("{args:?}"),
            &got,
            &format!("{shown}: the config directory is writable by other users (mode 0777)"),
            &hint,
        );
        assert!(!marker.exists(), "{args:?}: the planted MFA.command ran");
    }
    assert!(
        sts.calls("AssumeRole").await.is_empty(),
        "a refused config reached STS"
    );

    // The fix it names works, and then the other user's file is refused by owner.
    chmod(&dir, 0o755);
    let got = elhaz(&t, &["exec", "--no-daemon", "prod", "--", "true"]);
    assert_refused(
        "after chmod go-w",
        &got,
        &format!("~/.elhaz/configs/prod.yaml: the config file is owned by uid {OTHER}, not by you"),
        &format!("sudo rm {}", planted.display()),
    );
    assert!(!marker.exists(), "the planted MFA.command ran");
}

fn drop_stdin_and_wait(mut child: std::process::Child) {
    child.stdin.take();
    assert!(child.wait().unwrap().success());
}

/// A config file owned by another uid in the user's own 0700 directory (as after a
/// copy by root with preserved owners): refused, and the daemon refuses it too.
#[test]
fn a_config_owned_by_another_uid_is_refused_by_cli_and_daemon() {
    let t = TestEnv::new();
    let marker = t.dir.path().join("ran");
    let file = t.write_config("prod", &mfa_config(&marker));
    chmod(&file, 0o600);
    t.role_config("mine", "");
    if let Err(e) = std::os::unix::fs::chown(&file, Some(OTHER), Some(OTHER)) {
        eprintln!("SKIPPED: cannot chown: {e}");
        return;
    }
    let message = format!("~/.elhaz/configs/prod.yaml: the config file is owned by uid {OTHER}");
    let hint = format!("sudo chown \"$USER\" {}", file.display());
    for args in [
        &["config", "get", "prod"][..],
        &["exec", "--no-daemon", "prod", "--", "true"],
        &["exec", "prod", "--", "true"],
        &["config", "list"],
    ] {
        assert_refused(&format!("{args:?}"), &elhaz(&t, args), &message, &hint);
        assert!(!marker.exists(), "{args:?}: its MFA.command ran");
    }
    // The listing still shows the user's own configs, and says which one is refused.
    let (_, out, _) = elhaz(&t, &["config", "list"]);
    assert!(out.lines().any(|l| l.starts_with("mine ")), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("prod ")
            && l.contains("refused: ")
            && l.contains("owned by uid")),
        "{out}"
    );
}

/// A group-writable config file, and a world-writable directory above the config
/// directory, are refused too; a sticky root directory such as /tmp is not.
#[test]
fn writable_files_and_parents_are_refused_with_the_chmod_that_fixes_them() {
    let t = TestEnv::new();
    let file = t.role_config("prod", "");
    chmod(&file, 0o620);
    assert_refused(
        "group-writable file",
        &elhaz(&t, &["config", "get", "prod"]),
        "~/.elhaz/configs/prod.yaml: the config file is writable by other users (mode 0620)",
        &format!("fix it: chmod go-w {}", file.display()),
    );
    chmod(&file, 0o600);
    let elhaz_dir = t.home.join(".elhaz");
    chmod(&elhaz_dir, 0o777);
    assert_refused(
        "world-writable parent",
        &elhaz(&t, &["config", "get", "prod"]),
        "~/.elhaz: a directory above the config directory is writable by other users (mode 0777)",
        &format!("fix it: chmod go-w {}", elhaz_dir.display()),
    );
    chmod(&elhaz_dir, 0o755);
    let (code, out, err) = elhaz(&t, &["config", "get", "prod"]);
    assert_eq!(code, 0, "{out}{err}");

    // A config directory outside HOME, in a fresh directory under the sticky /tmp.
    let outside = tempfile::Builder::new()
        .prefix("elhaz-cfg")
        .tempdir()
        .unwrap();
    let mut c = t.std_cmd();
    c.arg("--config-dir").arg(outside.path()).args([
        "config",
        "add",
        "other",
        "--role-arn",
        ROLE_ARN,
    ]);
    let (code, _, err) = run_within(c, Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    let mut c = t.std_cmd();
    c.arg("--config-dir")
        .arg(outside.path())
        .args(["config", "get", "other"]);
    let (code, out, err) = run_within(c, Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(ROLE_ARN), "{out}");
}

/// A config holding static secret keys that group or others can read: used, with one
/// warning per process however many such configs it reads; none for a 0600 one.
#[test]
fn a_readable_config_with_secret_keys_warns_once() {
    let t = TestEnv::new();
    let keys = "Session:\n  aws_access_key_id: AKIAEXAMPLE000000000\n  aws_secret_access_key: not-a-real-secret\n";
    let a = t.write_config("a", &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\n{keys}"));
    let b = t.write_config(
        "b",
        &format!(
            "AssumeRole:\n  RoleArn: {ROLE_ARN}\nSTS:\n  aws_access_key_id: AKIAEXAMPLE000000001\n  aws_secret_access_key: not-a-real-secret\n"
        ),
    );
    chmod(&a, 0o600);
    chmod(&b, 0o600);
    let (code, _, err) = elhaz(&t, &["config", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "a private file warns: {err}");

    chmod(&a, 0o640);
    chmod(&b, 0o644);
    let (code, _, err) = elhaz(&t, &["config", "list"]);
    assert_eq!(code, 0, "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("holds a secret access key and is readable by other users"),
        "{err}"
    );
    assert!(err.contains("hint: chmod 600 "), "{err}");
    assert!(!err.contains("not-a-real-secret"), "{err}");

    let (code, _, err) = elhaz(&t, &["config", "get", "a"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("~/.elhaz/configs/a.yaml holds a secret access key") && err.contains("0640"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Configs that would block or never end.

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// A FIFO named like a config: `config get`, `config list` and `exec` answer at once
/// with exit 3, naming the file, instead of waiting forever for a writer.
#[test]
fn a_fifo_config_is_refused_at_once() {
    let t = TestEnv::new();
    t.role_config("good", "");
    let fifo = t.config_dir().join("prod.yaml");
    mkfifo(&fifo);
    let message = "~/.elhaz/configs/prod.yaml: is a FIFO, not a regular file";
    for args in [
        &["config", "get", "prod"][..],
        &["config", "list"],
        &["exec", "--no-daemon", "prod", "--", "true"],
        &["config", "update", "prod", "--duration", "1h"],
    ] {
        let mut c = t.std_cmd();
        c.args(args);
        let got = run_within(c, Duration::from_secs(5));
        assert_refused(
            &format!("{args:?}"),
            &got,
            message,
            "then: elhaz config add prod",
        );
    }
    let (_, out, _) = elhaz(&t, &["config", "list"]);
    assert!(out.lines().any(|l| l.starts_with("good ")), "{out}");
}

/// Two FIFO configs requested through the daemon: both answered with exit 3, and the
/// daemon serves a good config meanwhile (before the fix they held its workers).
#[tokio::test(flavor = "multi_thread")]
async fn fifo_configs_through_the_daemon_do_not_stop_it_serving_others() {
    let sts = FakeSts::start(HOUR).await;
    let t = TestEnv::with_sts(&sts.uri());
    t.role_config("good", "");
    let (code, _, err) = elhaz(&t, &["exec", "good", "--", "true"]);
    assert_eq!(code, 0, "{err}");
    for n in ["fifo1", "fifo2"] {
        mkfifo(&t.config_dir().join(format!("{n}.yaml")));
    }
    let spawn = |name: &str| {
        t.std_cmd()
            .args(["exec", name, "--", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let fifos = [spawn("fifo1"), spawn("fifo2")];
    std::thread::sleep(Duration::from_millis(500));
    let mut c = t.std_cmd();
    c.args(["exec", "good", "--", "sh", "-c", "echo $AWS_ACCESS_KEY_ID"]);
    let (code, out, err) = run_within(c, Duration::from_secs(10));
    assert_eq!(code, 0, "the daemon did not serve a good config: {err}");
    assert_eq!(out.trim(), "ASIAFAKE000000000001", "{err}");
    for (i, child) in fifos.into_iter().enumerate() {
        let (status, _, err) = output_within(child, Duration::from_secs(10));
        let status = status.unwrap_or_else(|| panic!("fifo{} hung", i + 1));
        assert_eq!(status.code(), Some(3), "{err}");
        assert!(err.contains("is a FIFO, not a regular file"), "{err}");
    }
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);
}

/// A config symlinked to /dev/zero: refused at once, without reading it (before the
/// fix `config list` grew without bound; here its address space is capped at 2 GiB,
/// so an endless read fails rather than taking the machine).
#[test]
fn a_config_symlinked_to_dev_zero_is_refused_without_reading_it() {
    let t = TestEnv::new();
    t.role_config("good", "");
    std::os::unix::fs::symlink("/dev/zero", t.config_dir().join("prod.yaml")).unwrap();
    for args in [&["config", "list"][..], &["config", "get", "prod"]] {
        let mut c = t.std_cmd();
        c.args(args);
        // SAFETY: setrlimit is async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 2 << 30,
                    rlim_max: 2 << 30,
                };
                libc::setrlimit(libc::RLIMIT_AS, &lim);
                Ok(())
            });
        }
        let got = run_within(c, Duration::from_secs(10));
        assert_refused(
            &format!("{args:?}"),
            &got,
            "~/.elhaz/configs/prod.yaml: is a character device, not a regular file",
            "mv ",
        );
    }
    // A legitimate symlink (as dotfile managers make) is still followed.
    let real = t.dir.path().join("real.yaml");
    std::fs::write(&real, format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\n")).unwrap();
    std::os::unix::fs::symlink(&real, t.config_dir().join("linked.yaml")).unwrap();
    let (code, out, err) = elhaz(&t, &["config", "get", "linked"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(ROLE_ARN), "{out}");
}

/// A config larger than 1 MiB is refused, naming the limit.
#[test]
fn a_config_over_one_mib_is_refused() {
    let t = TestEnv::new();
    let mut text = format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\n");
    text.push_str(&"# padding\n".repeat(110_000));
    let file = t.write_config("big", &text);
    chmod(&file, 0o600);
    assert_refused(
        "2 MiB config",
        &elhaz(&t, &["config", "get", "big"]),
        "~/.elhaz/configs/big.yaml: larger than 1 MiB",
        "mv ",
    );
}

// ---------------------------------------------------------------------------
// Leftovers of a writer killed with SIGKILL.

fn age(p: &Path, secs_ago: i64) {
    let t = unix_now() - secs_ago;
    let ok = Command::new("touch")
        .arg("-d")
        .arg(format!("@{t}"))
        .arg(p)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// A temp file older than a minute is removed by the next write; a fresh one (a write
/// in progress elsewhere) is kept; neither is ever listed as a config.
#[test]
fn stale_temp_files_are_removed_on_the_next_write_and_never_listed() {
    let t = TestEnv::new();
    t.role_config("prod", "");
    let dir = t.config_dir();
    let old = dir.join(".elhaz-AbC123.tmp");
    let fresh = dir.join(".elhaz-XyZ789.tmp");
    std::fs::write(&old, "AssumeRole:\n  RoleArn: half").unwrap();
    std::fs::write(&fresh, "AssumeRole:\n  RoleArn: half").unwrap();
    age(&old, 120);

    let listed = |t: &TestEnv| {
        let (code, out, err) = elhaz(t, &["config", "list", "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "config")
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(listed(&t), ["prod"]);
    let (code, _, err) = elhaz(&t, &["config", "update", "prod", "--duration", "2h"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(entries(&dir), [".elhaz-XyZ789.tmp", "prod.yaml"]);
    assert_eq!(listed(&t), ["prod"]);

    // Once it is old too, the next write removes it.
    age(&fresh, 120);
    let (code, _, err) = elhaz(&t, &["config", "add", "dev", "--role-arn", ROLE_ARN]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(entries(&dir), ["dev.yaml", "prod.yaml"]);
}

// ---------------------------------------------------------------------------
// The --server endpoint flooded with idle connections.

/// The child: boto3 imported first (so Python's start-up is not measured), then, on a
/// line on stdin, credentials from the container endpoint, the key and how long.
const BOTO3_ONCE: &str = r#"
import os, sys, time
import boto3
print("READY", os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"], flush=True)
sys.stdin.readline()
start = time.monotonic()
creds = boto3.Session(region_name="us-east-1").get_credentials()
key = creds.get_frozen_credentials().access_key if creds else "none"
print("CREDS", creds.method if creds else "none", key, "%.3f" % (time.monotonic() - start), flush=True)
"#;

/// Another local user holds 1,100 idle TCP connections open to the `--server` port
/// (the reproduction), with elhaz at the usual 1024-descriptor limit: the child's SDK
/// still gets the credentials STS issued, within 2 s.
#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_held_open_do_not_starve_the_child() {
    use std::io::{BufRead, BufReader, Write};
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    // Room for this test's own 1,100 sockets.
    // SAFETY: plain libc calls on this process's limits.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(8192);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    let mut c = t.std_cmd();
    c.args([
        "exec", "--server", "prod", "--", "python3", "-c", BOTO3_ONCE,
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    limit_fds(&mut c, 1024);
    let mut child = c.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let ready = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the child did not start");
    let uri = ready.strip_prefix("READY ").expect(&ready).to_string();
    let port: u16 = uri
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect(&uri);

    let mut held = Vec::new();
    for _ in 0..1100 {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => held.push(s),
            Err(e) => panic!("connect #{}: {e}", held.len()),
        }
    }
    // Let elhaz accept them all.
    std::thread::sleep(Duration::from_secs(1));

    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "go").unwrap();
    let got = rx.recv_timeout(Duration::from_secs(30));
    drop(held);
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let got = got.expect("the child printed no credentials within 30 s (it failed or hung)");
    let f: Vec<&str> = got.split_whitespace().collect();
    assert_eq!(f.first(), Some(&"CREDS"), "{got}");
    assert_eq!(f.get(1), Some(&"container-role"), "{got}");
    assert_eq!(f.get(2), Some(&"ASIAFAKE000000000001"), "{got}");
    let took: f64 = f.get(3).unwrap().parse().unwrap();
    eprintln!("credentials with 1,100 idle connections held: {took} s");
    assert!(
        took < 2.0,
        "credentials took {took} s with idle connections held"
    );
}

/// A client that sends part of a request head and then nothing is disconnected after
/// a few seconds, instead of holding its connection for as long as it likes.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_head_that_never_ends_is_cut_off() {
    use std::io::{BufRead, BufReader, Read, Write};
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let mut child = t
        .std_cmd()
        .args([
            "exec",
            "--server",
            "prod",
            "--",
            "sh",
            "-c",
            "echo \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\"; read x || :",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect(&line);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 64];
    let closed = match s.read(&mut buf) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    assert!(closed, "the connection was still open after 20 s");
}

/// One answer on a kept-alive connection: the bytes read until the credentials' JSON
/// has arrived, or the connection closed, or 10 s passed.
fn ask_on(s: &mut std::net::TcpStream, path: &str, token: &str) -> String {
    use std::io::{Read, Write};
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return String::new();
    }
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\"Expiration\"") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// An SDK that polls every few seconds reuses its kept-alive connection: the endpoint
/// does not close it after the first request's few seconds, or a poll would fail.
#[tokio::test(flavor = "multi_thread")]
async fn a_kept_alive_connection_outlives_the_first_head_timeout() {
    use std::io::{BufRead, BufReader};
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let mut child = t
        .std_cmd()
        .args([
            "exec",
            "--server",
            "prod",
            "--",
            "sh",
            "-c",
            "echo \"$AWS_CONTAINER_CREDENTIALS_FULL_URI $AWS_CONTAINER_AUTHORIZATION_TOKEN\"; read x || :",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (uri, token) = line.trim().split_once(' ').expect(&line);
    let rest = uri.strip_prefix("http://127.0.0.1:").expect(uri);
    let (port, path) = rest.split_at(rest.find('/').unwrap());
    let port: u16 = port.parse().unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let first = ask_on(&mut s, path, token);
    std::thread::sleep(Duration::from_millis(6500));
    let second = ask_on(&mut s, path, token);
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    for (what, answer) in [("first", first), ("second", second)] {
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.contains("ASIAFAKE000000000001"),
            "{what} request: {answer:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// A hostile socket where the client expects a daemon or a share.

/// What a hostile server sends after the request line.
#[derive(Clone, Copy)]
enum Hostile {
    /// One line that never ends, as fast as the client reads (256 MiB at most, so that
    /// a client without a limit hurts the machine no more than that).
    Endless,
    /// An answer that has begun, then a byte a second.
    Drip,
    /// An error whose message and hint hold terminal escape sequences.
    Escapes,
}

/// A test thread serving `path`: each connection gets `how` until the client hangs
/// up. The socket is the test's (root's, or the tester's own): the daemon client's
/// owner check passes, as it does for a socket a same-uid process put there.
fn hostile_socket(path: &Path, how: Hostile) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut request = String::new();
                let _ = BufReader::new(&mut conn).read_line(&mut request);
                if let Hostile::Escapes = how {
                    let req: serde_json::Value = serde_json::from_str(&request).unwrap_or_default();
                    let answer = serde_json::json!({
                        "version": 1, "request_id": req["request_id"], "ok": false,
                        "error": {"code": 400, "kind": "config",
                            "message": "\u{1b}]0;owned\u{7}\u{1b}[2J\rforbidden \u{202e}gnp.exe\u{2028}",
                            "hint": "\u{1b}[31mrun this\u{1b}[0m"},
                    });
                    let _ = conn.write_all(format!("{answer}\n").as_bytes());
                    return;
                }
                let _ = conn.write_all(br#"{"version": 1, "request_id": ""#);
                match how {
                    Hostile::Endless => {
                        let block = vec![b'a'; 64 * 1024];
                        for _ in 0..4096 {
                            if conn.write_all(&block).is_err() {
                                return;
                            }
                        }
                    }
                    Hostile::Escapes => {}
                    Hostile::Drip => {
                        for _ in 0..60 {
                            std::thread::sleep(Duration::from_secs(1));
                            if conn.write_all(b"a").is_err() {
                                return;
                            }
                        }
                    }
                }
                // Then hold the connection open until the client goes.
                let _ = std::io::Read::read(&mut conn, &mut [0u8; 1]);
            });
        }
    });
}

/// Runs `cmd` until it ends (killed after `limit`): its exit status (None: it was
/// still running), stderr, how long it ran, and its peak resident memory in KiB as
/// the kernel counted it (wait4's ru_maxrss).
fn run_measured(
    mut cmd: Command,
    limit: Duration,
) -> (Option<std::process::ExitStatus>, String, Duration, i64) {
    use std::os::unix::process::ExitStatusExt;
    let started = std::time::Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut killed = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: wait4 on our own child, with valid pointers.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if got == pid {
            break (status, usage);
        }
        if !killed && started.elapsed() > limit {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    // Reaped by wait4 already: this only tells std so (it fails with ECHILD).
    let _ = child.wait();
    let stderr = reader.join().unwrap();
    let status = (!killed).then(|| std::process::ExitStatus::from_raw(status));
    (status, stderr, took, usage.ru_maxrss)
}

/// The client's usual peak: elhaz itself, any command.
fn usual_peak_kib(t: &TestEnv) -> i64 {
    let mut c = t.std_cmd();
    c.args(["export", "--help"]);
    run_measured(c, Duration::from_secs(20)).3
}

/// An answer that never ends, on a share socket (`export --socket` checks no owner,
/// by design) and on the daemon's: the client stops at the protocol's answer limit
/// with a clear error, and its memory stays within a few MiB of its usual peak.
#[test]
fn an_endless_answer_is_cut_off_at_the_answer_limit() {
    let t = TestEnv::new();
    let usual = usual_peak_kib(&t);
    let sock = t.dir.path().join("hostile.sock");
    hostile_socket(&sock, Hostile::Endless);
    let mut share = t.std_cmd();
    share.args(["export", "--socket"]).arg(&sock).args([
        "-f",
        "credential-process",
        "--client-timeout",
        "20s",
    ]);
    let mut daemon = t.std_cmd();
    daemon
        .args(["export", "prod", "--client-timeout", "20s", "--socket-path"])
        .arg(&sock);
    for (what, cmd) in [("share", share), ("daemon", daemon)] {
        let (status, err, took, peak) = run_measured(cmd, Duration::from_secs(30));
        eprintln!(
            "FIGURE endless answer ({what}): ended in {took:?}, peak {peak} KiB (usual {usual} KiB)"
        );
        let status = status.unwrap_or_else(|| panic!("{what}: still reading after 30 s"));
        assert!(!status.success(), "{what}: {err}");
        assert!(
            err.contains("sent an answer longer than 4 MiB: elhaz stopped reading it"),
            "{what}: {err}"
        );
        assert!(
            peak < usual + 24 * 1024,
            "{what}: peak RSS {peak} KiB against {usual} KiB usually"
        );
    }
}

/// An answer that drips a byte a second, on a share socket and on the daemon's: the
/// client's time-out is for the whole answer, so `--client-timeout 2s` ends in about
/// 2 s, not when the drip stops.
#[test]
fn a_dripping_answer_ends_at_the_client_time_out() {
    let t = TestEnv::new();
    let sock = t.dir.path().join("hostile.sock");
    hostile_socket(&sock, Hostile::Drip);
    let mut share = t.std_cmd();
    share.args(["export", "--socket"]).arg(&sock).args([
        "-f",
        "credential-process",
        "--client-timeout",
        "2s",
    ]);
    let mut daemon = t.std_cmd();
    daemon
        .args(["export", "prod", "--client-timeout", "2s", "--socket-path"])
        .arg(&sock);
    for (what, cmd) in [("share", share), ("daemon", daemon)] {
        let (status, err, took, _) = run_measured(cmd, Duration::from_secs(30));
        eprintln!("FIGURE dripping answer ({what}): ended in {took:?}");
        let status = status.unwrap_or_else(|| panic!("{what}: still reading after 30 s"));
        assert!(!status.success(), "{what}: {err}");
        assert!(err.contains("did not answer within 2s"), "{what}: {err}");
        assert!(
            took < Duration::from_secs(6),
            "{what}: {took:?} with --client-timeout 2s"
        );
    }
}

/// A share's error message and hint are written by whoever serves the share: their
/// control characters reach the terminal escaped, never as escape sequences.
#[test]
fn a_shares_error_reaches_the_terminal_escaped() {
    let t = TestEnv::new();
    let sock = t.dir.path().join("hostile.sock");
    hostile_socket(&sock, Hostile::Escapes);
    let mut share = t.std_cmd();
    share
        .args(["export", "--socket"])
        .arg(&sock)
        .args(["-f", "credential-process"]);
    let (status, err, _, _) = run_measured(share, Duration::from_secs(30));
    let status = status.expect("export --socket ended");
    assert!(!status.success(), "{err}");
    assert!(!err.contains('\x1b') && !err.contains('\r'), "{err:?}");
    assert!(
        err.contains("\\x1b]0;owned\\x07\\x1b[2J\\rforbidden"),
        "{err:?}"
    );
    assert!(err.contains("\\x1b[31mrun this\\x1b[0m"), "{err:?}");
    // Nor text turned around or split by a bidirectional override or line separator.
    for bad in ['\u{202e}', '\u{2028}'] {
        assert!(!err.contains(bad), "{bad:?} reached the terminal: {err:?}");
    }
    assert!(err.contains("\\u{202e}gnp.exe\\u{2028}"), "{err:?}");
}
