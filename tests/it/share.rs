//! Restricted sockets: `elhaz daemon share NAME --socket PATH [--uid UID]
//! [--whoami]` opens an extra socket that serves one session, read-only: credentials
//! for NAME (and whoami when asked for), 403 for everything else. The main socket is
//! unaffected; the peer check lets the daemon's uid and the one `--uid` through; shares
//! end, and their files go, when the daemon stops; `elhaz export --socket PATH -f
//! credential-process` works in a sandbox with nothing but the binary and the socket.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};

const HOUR: Duration = Duration::from_secs(3600);
/// The ARN the fake STS answers GetCallerIdentity with.
const FAKE_ARN: &str = "arn:aws:sts::123456789012:assumed-role/Admin/fake";

/// One request on any socket.
fn ask(socket: &Path, action: &str, payload: Value) -> Value {
    let req = json!({
        "version": 1,
        "request_id": uuid(),
        "action": action,
        "payload": payload,
    });
    let line = raw_request(socket, &req.to_string());
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
}

fn assert_forbidden(r: &Value, what: &str) {
    assert_eq!(r["ok"], false, "{what} was served: {r}");
    assert_eq!(r["error"]["code"], 403, "{what}: {r}");
    assert!(r.get("data").is_none_or(Value::is_null), "{what}: {r}");
}

fn session_names(t: &TestEnv) -> Vec<String> {
    let r = t.request("status", json!({}));
    r["data"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn status_json(t: &TestEnv) -> Value {
    let o = run(t, &["daemon", "status", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Whether something accepts connections on `socket`.
fn serves(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// `elhaz export --socket SOCKET -f credential-process` as another uid, with no HOME.
fn export_as(uid: u32, socket: &Path) -> (Option<std::process::ExitStatus>, String, String) {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(["export", "--socket"])
        .arg(socket)
        .args(["-f", "credential-process"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    as_user(&mut cmd, uid, uid);
    output_within(cmd.spawn().unwrap(), Duration::from_secs(30))
}

/// connect(2) to `socket` from a forked child running as `uid`: Ok, or the errno.
fn connect_as(uid: u32, socket: &Path) -> Result<(), i32> {
    // Everything the child needs is built before the fork.
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = socket.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len(), "socket path too long");
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: the child calls only async-signal-safe functions, then _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(uid) != 0
                || libc::setuid(uid) != 0
            {
                libc::_exit(200);
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if fd < 0 {
                libc::_exit(201);
            }
            let r = libc::connect(fd, (&raw const addr).cast::<libc::sockaddr>(), len);
            libc::_exit(if r == 0 { 0 } else { *libc::__errno_location() });
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid");
    assert!(libc::WIFEXITED(status), "the child did not exit: {status}");
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        200 => panic!("setuid({uid}) failed in the child"),
        201 => panic!("socket() failed in the child"),
        errno => Err(errno),
    }
}

fn credential_process_json(out: &str) -> Value {
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("not credential_process JSON ({e}): {out:?}"));
    assert_eq!(v["Version"], 1, "{v}");
    for k in [
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    ] {
        assert!(
            v[k].as_str().is_some_and(|s| !s.is_empty()),
            "no {k} in {v}"
        );
    }
    v
}

// ---------------------------------------------------------------------------
// What a share serves

#[tokio::test(flavor = "multi_thread")]
async fn a_share_serves_credentials_for_its_one_name_and_refuses_everything_else() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    t.role_config("other", "");
    t.start_daemon();
    let sock = share_dir(&t).join("prod.sock");
    share(&t, "prod", &sock, &[]);

    // The same session as the main socket's, with or without a config field.
    let main = t.request("credentials", json!({ "config": "prod" }));
    assert_eq!(main["ok"], true, "{main}");
    let key = main["data"]["access_key"].as_str().unwrap().to_string();
    for payload in [json!({}), json!({ "config": "prod" })] {
        let r = ask(&sock, "credentials", payload.clone());
        assert_eq!(r["ok"], true, "credentials {payload} on the share: {r}");
        assert_eq!(r["data"]["access_key"], key.as_str(), "{r}");
        assert_eq!(r["data"]["secret_key"], main["data"]["secret_key"], "{r}");
        assert_eq!(r["data"]["token"], main["data"]["token"], "{r}");
    }
    // As extended clients ask (elhaz export does).
    let r = ask(
        &sock,
        "credentials",
        json!({ "autoadd": true, "min_remaining_seconds": 900, "ext": true }),
    );
    assert_eq!(r["data"]["access_key"], key.as_str(), "{r}");

    // Another name is refused, and not fetched or added for the asker.
    let r = ask(
        &sock,
        "credentials",
        json!({ "config": "other", "autoadd": true }),
    );
    assert_forbidden(&r, "credentials for another name");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("\"prod\""),
        "the refusal does not say what the socket serves: {r}"
    );
    assert_eq!(session_names(&t), ["prod"]);
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);

    // Every other action is 403 and changes nothing.
    for (action, payload) in [
        ("add", json!({ "config": "other" })),
        ("add", json!({ "config": "prod" })),
        ("remove", json!({ "config": "prod" })),
        ("remove", json!({})),
        ("kill", json!({})),
        ("list", json!({})),
        ("status", json!({})),
        ("refresh", json!({ "config": "prod" })),
        ("whoami", json!({ "config": "prod" })),
        ("whoami", json!({})),
        (
            "share",
            json!({ "config": "prod", "socket": share_dir(&t).join("more.sock") }),
        ),
        ("unshare", json!({ "socket": sock })),
        ("no-such-action", json!({})),
    ] {
        assert_forbidden(
            &ask(&sock, action, payload.clone()),
            &format!("{action} {payload}"),
        );
    }
    assert_eq!(session_names(&t), ["prod"], "add/remove went through");
    assert!(
        !share_dir(&t).join("more.sock").exists(),
        "a share opened a share"
    );
    assert!(
        sts.calls("GetCallerIdentity").await.is_empty(),
        "whoami went through"
    );
    assert_eq!(
        sts.calls("AssumeRole").await.len(),
        1,
        "refresh went through"
    );
    // kill did not stop the daemon, and unshare did not close the share.
    std::thread::sleep(Duration::from_millis(200));
    assert!(t.socket().exists() && serves(&sock));
    assert_eq!(ask(&sock, "credentials", json!({}))["ok"], true);

    // The main socket is unaffected: everything works there, for every name.
    let l = t.request("list", json!({}));
    assert_eq!(l["ok"], true, "{l}");
    assert_eq!(t.request("add", json!({ "config": "other" }))["ok"], true);
    let o = t.request("credentials", json!({ "config": "other" }));
    assert_eq!(o["ok"], true, "{o}");
    assert_ne!(o["data"]["access_key"], key.as_str());
    assert_eq!(
        t.request("whoami", json!({ "config": "prod" }))["data"]["Arn"],
        FAKE_ARN
    );
    // And the share still serves only prod.
    assert_forbidden(
        &ask(&sock, "credentials", json!({ "config": "other" })),
        "another name, now in the daemon",
    );
    let r = t.request("remove", json!({ "config": "other" }));
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn whoami_goes_through_a_share_only_when_it_was_shared_with_whoami() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    t.role_config("other", "");
    t.start_daemon();
    let plain = share_dir(&t).join("plain.sock");
    let who = share_dir(&t).join("who.sock");
    share(&t, "prod", &plain, &[]);
    share(&t, "prod", &who, &["--whoami"]);

    assert_forbidden(&ask(&plain, "whoami", json!({})), "whoami without --whoami");
    assert!(sts.calls("GetCallerIdentity").await.is_empty());

    for payload in [json!({}), json!({ "config": "prod" })] {
        let r = ask(&who, "whoami", payload.clone());
        assert_eq!(r["ok"], true, "whoami {payload}: {r}");
        assert_eq!(r["data"]["Arn"], FAKE_ARN, "{r}");
        assert_eq!(r["data"]["Account"], "123456789012", "{r}");
    }
    assert_forbidden(
        &ask(&who, "whoami", json!({ "config": "other" })),
        "whoami for another name",
    );
    // --whoami opens whoami, nothing more.
    assert_eq!(ask(&who, "credentials", json!({}))["ok"], true);
    for action in ["add", "remove", "kill", "list", "status"] {
        assert_forbidden(
            &ask(&who, action, json!({ "config": "prod" })),
            &format!("{action} on a --whoami share"),
        );
    }
    assert_eq!(session_names(&t), ["prod"]);
}

// ---------------------------------------------------------------------------
// Who may connect

#[tokio::test(flavor = "multi_thread")]
async fn share_sockets_are_0600_or_0666_with_uid_and_owned_by_the_daemon_user() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    // A daemon with a umask that would open anything it could: the modes must not
    // depend on it.
    let mut cmd = t.std_cmd();
    cmd.args(["daemon", "start"]).stderr(Stdio::null());
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    assert!(cmd.status().unwrap().success());
    let private = share_dir(&t).join("private.sock");
    let open = share_dir(&t).join("open.sock");
    share(&t, "prod", &private, &[]);
    share(&t, "prod", &open, &["--uid", "65534"]);

    let me = nix::unistd::getuid().as_raw();
    let daemon_uid = std::fs::metadata(t.socket()).unwrap().uid();
    for (sock, mode) in [(&private, 0o600), (&open, 0o666)] {
        let m = std::fs::symlink_metadata(sock).unwrap();
        assert!(
            std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()),
            "{} is not a socket",
            sock.display()
        );
        assert_eq!(
            m.mode() & 0o7777,
            mode,
            "{}: mode {:o}",
            sock.display(),
            m.mode() & 0o7777
        );
        assert_eq!(m.uid(), me, "{} is not the daemon user's", sock.display());
        assert_eq!(m.uid(), daemon_uid);
    }
}

#[ignore = "needs root: acts as other uids; .ci/check runs it as root"]
#[tokio::test(flavor = "multi_thread")]
async fn with_uid_that_uid_gets_credentials_and_any_other_uid_is_refused_and_logged() {
    needs_root();
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let dir = share_dir(&t);
    traversable(&t, &dir);
    let sock = dir.join("agent.sock");
    share(&t, "prod", &sock, &["--uid", &NOBODY.to_string()]);
    let key = t.request("credentials", json!({ "config": "prod" }))["data"]["access_key"]
        .as_str()
        .unwrap()
        .to_string();

    // The allowed uid, through the shim, with no HOME and no configs.
    let (status, out, err) = export_as(NOBODY, &sock);
    let status = status.expect("export as the allowed uid hung");
    assert!(status.success(), "uid {NOBODY} was not served: {err}");
    let v = credential_process_json(&out);
    assert_eq!(v["AccessKeyId"], key.as_str(), "{v}");

    // Any other uid reaches the socket (0666) and is closed on without an answer.
    assert_eq!(connect_as(STRANGER, &sock), Ok(()), "the socket is 0666");
    let (status, out, err) = export_as(STRANGER, &sock);
    let status = status.expect("the refused client hung");
    assert_eq!(status.code(), Some(4), "stdout {out:?} stderr {err:?}");
    assert!(out.is_empty(), "uid {STRANGER} got an answer: {out}");
    assert!(
        err.contains("closed the connection without answering"),
        "{err}"
    );
    assert!(!err.contains("ASIA"), "{err}");
    let refused = |uid: u32| {
        log_text(&t)
            .lines()
            .any(|l| l.contains("refused") && l.contains(&format!("peer_uid={uid}")))
    };
    let logged = wait_until(Duration::from_secs(5), || refused(STRANGER));
    assert!(
        logged,
        "no refusal of uid {STRANGER} in the log:\n{}",
        log_text(&t)
    );
    assert!(
        !refused(NOBODY),
        "the allowed uid was refused somewhere:\n{}",
        log_text(&t)
    );
    // The extra uid is for the share only: the main socket still refuses it.
    assert_ne!(
        connect_as(NOBODY, &t.socket()),
        Ok(()),
        "uid {NOBODY} can open the daemon's own socket"
    );
    // And its owner is still served.
    assert_eq!(ask(&sock, "credentials", json!({}))["ok"], true);
}

#[ignore = "needs root: acts as other uids; .ci/check runs it as root"]
#[tokio::test(flavor = "multi_thread")]
async fn without_uid_another_user_cannot_even_connect_to_the_share() {
    needs_root();
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let dir = share_dir(&t);
    traversable(&t, &dir);
    let sock = dir.join("mine.sock");
    share(&t, "prod", &sock, &[]);

    // The socket is 0600: connect(2) fails before the daemon hears of it.
    assert_eq!(connect_as(NOBODY, &sock), Err(libc::EACCES));
    let (status, out, err) = export_as(NOBODY, &sock);
    let status = status.expect("export as nobody hung");
    assert!(!status.success(), "nobody was served: {out}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("permission denied"),
        "the shim does not say why: {err}"
    );
    assert!(
        !err.contains("nothing serves"),
        "a socket nobody may open is not one nothing serves: {err}"
    );
    // The daemon's user still is served.
    assert_eq!(ask(&sock, "credentials", json!({}))["ok"], true);
}

// ---------------------------------------------------------------------------
// Listing, closing, refusing

#[tokio::test(flavor = "multi_thread")]
async fn daemon_status_lists_shares_and_unshare_closes_one() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.role_config("dev", "");
    t.start_daemon();
    let a = share_dir(&t).join("a.sock");
    let b = share_dir(&t).join("b.sock");
    share(&t, "prod", &a, &["--whoami"]);
    share(&t, "dev", &b, &["--uid", "1234"]);

    let s = status_json(&t);
    let mut shares = s["shares"].as_array().expect("shares in status").clone();
    shares.sort_by_key(|v| v["socket"].as_str().unwrap().to_string());
    assert_eq!(
        shares,
        [
            json!({ "socket": a, "config": "prod", "whoami": true }),
            json!({ "socket": b, "config": "dev", "whoami": false, "uid": 1234 }),
        ],
        "{s}"
    );
    let o = run(&t, &["daemon", "status"]);
    let out = text(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.contains(a.to_str().unwrap()) && l.contains("prod") && l.contains("whoami")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.contains(b.to_str().unwrap())
            && l.contains("dev")
            && l.contains("uid 1234")
            && !l.contains("whoami")),
        "{out}"
    );

    let o = run(&t, &["daemon", "unshare", a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("closed the share"),
        "{}",
        text(&o.stderr)
    );
    assert!(!a.exists(), "unshare left the socket file");
    assert!(!serves(&a));
    assert_eq!(
        ask(&b, "credentials", json!({}))["ok"],
        true,
        "the other share went too"
    );
    let s = status_json(&t);
    assert_eq!(s["shares"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["shares"][0]["socket"], b.to_str().unwrap());
    let out = text(&run(&t, &["daemon", "status"]).stdout);
    assert!(!out.contains(a.to_str().unwrap()), "{out}");
    // The session itself stays in the daemon.
    assert_eq!(session_names(&t).len(), 2);

    // Unknown paths (and the one just closed) are a clear error.
    for p in [a.clone(), share_dir(&t).join("never.sock")] {
        let o = run(&t, &["daemon", "unshare", p.to_str().unwrap()]);
        assert!(!o.status.success(), "unshare of {} succeeded", p.display());
        let err = text(&o.stderr);
        assert!(
            err.contains("no share at") && err.contains(p.file_name().unwrap().to_str().unwrap()),
            "{err}"
        );
        assert!(o.stdout.is_empty());
    }
    assert!(serves(&b));

    // A relative path is the caller's, not the daemon's.
    let o = t
        .cmd()
        .current_dir(share_dir(&t))
        .args(["daemon", "share", "prod", "--socket", "rel.sock"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rel = share_dir(&t).join("rel.sock");
    assert!(serves(&rel), "the share is not at {}", rel.display());
    let o = t
        .cmd()
        .current_dir(share_dir(&t))
        .args(["daemon", "unshare", "rel.sock"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!rel.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn share_refuses_a_taken_path_and_leaves_what_is_there_alone() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.role_config("dev", "");
    t.start_daemon();

    // A regular file.
    let file = share_dir(&t).join("notes.txt");
    std::fs::write(&file, "keep me\n").unwrap();
    let o = run(
        &t,
        &[
            "daemon",
            "share",
            "prod",
            "--socket",
            file.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success(), "shared over a regular file");
    let err = text(&o.stderr);
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me\n");
    assert!(std::fs::symlink_metadata(&file).unwrap().is_file());

    // The same path twice: 409, and the first share keeps serving its session.
    let sock = share_dir(&t).join("prod.sock");
    share(&t, "prod", &sock, &[]);
    let o = run(
        &t,
        &["daemon", "share", "dev", "--socket", sock.to_str().unwrap()],
    );
    assert!(!o.status.success(), "shared the same path twice");
    assert!(
        text(&o.stderr).contains("already shared"),
        "{}",
        text(&o.stderr)
    );
    let r = t.request(
        "share",
        json!({ "config": "prod", "socket": sock, "ext": true }),
    );
    assert_eq!(r["error"]["code"], 409, "{r}");
    assert_eq!(
        ask(&sock, "credentials", json!({ "config": "prod" }))["ok"],
        true
    );
    assert_forbidden(
        &ask(&sock, "credentials", json!({ "config": "dev" })),
        "dev",
    );

    // The daemon's own socket.
    let r = t.request(
        "share",
        json!({ "config": "prod", "socket": t.socket(), "ext": true }),
    );
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(t.request("list", json!({}))["ok"], true);

    // Only the one share is listed.
    let s = status_json(&t);
    assert_eq!(s["shares"].as_array().unwrap().len(), 1, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_share_left_by_a_killed_daemon_can_be_shared_again() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let sock = share_dir(&t).join("prod.sock");
    share(&t, "prod", &sock, &[]);
    let pid = t.daemon_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(5), || !serves(&t.socket())));
    assert!(sock.exists(), "SIGKILL cannot clean up");
    assert!(!serves(&sock));

    t.start_daemon();
    share(&t, "prod", &sock, &[]);
    assert_eq!(ask(&sock, "credentials", json!({}))["ok"], true);
}

// ---------------------------------------------------------------------------
// Shares end with the daemon

#[tokio::test(flavor = "multi_thread")]
async fn shares_vanish_on_daemon_stop() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let a = share_dir(&t).join("a.sock");
    let b = share_dir(&t).join("b.sock");
    share(&t, "prod", &a, &[]);
    share(&t, "prod", &b, &["--uid", "65534", "--whoami"]);
    assert!(serves(&a) && serves(&b));

    let o = run(&t, &["daemon", "stop"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // Gone by the time `daemon stop` returns.
    for s in [&a, &b] {
        assert!(!s.exists(), "{} outlived the daemon", s.display());
        assert!(!serves(s));
    }
    assert!(!t.socket().exists());

    // A new daemon does not bring them back.
    t.start_daemon();
    let s = status_json(&t);
    assert_eq!(s["shares"], json!([]), "{s}");
    assert!(!a.exists() && !b.exists());
    // And with the daemon gone, unshare says so.
    run(&t, &["daemon", "stop"]);
    let o = run(&t, &["daemon", "unshare", a.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("no daemon is running"),
        "{}",
        text(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shares_vanish_on_sigterm() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let a = share_dir(&t).join("a.sock");
    let b = share_dir(&t).join("b.sock");
    share(&t, "prod", &a, &[]);
    share(&t, "prod", &b, &["--uid", "65534"]);
    let pid = t.daemon_pid().expect("daemon pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let gone = wait_until(Duration::from_secs(15), || {
        !a.exists() && !b.exists() && !t.socket().exists()
    });
    assert!(
        gone,
        "after SIGTERM: a {} b {} main {}",
        a.exists(),
        b.exists(),
        t.socket().exists()
    );
    assert!(!serves(&a) && !serves(&b));
}

// ---------------------------------------------------------------------------
// The sandbox side: the credential_process shim, and a real consumer

#[test]
fn export_through_a_share_with_nothing_but_the_binary_feeds_the_aws_cli() {
    let mut t = TestEnv::with_sts(&moto().endpoint());
    t.set("AWS_ACCESS_KEY_ID", "AKIAMOTOSOURCE000000");
    t.set("AWS_SECRET_ACCESS_KEY", "moto-secret");
    t.role_config("prod", "  RoleSessionName: sandbox-agent\n");
    t.start_daemon();
    let sock = share_dir(&t).join("prod.sock");
    share(&t, "prod", &sock, &[]);
    let main = t.request("credentials", json!({ "config": "prod" }));
    assert_eq!(main["ok"], true, "{main}");

    // `env -i`: no HOME, no configs, no AWS variables; only the binary and the socket.
    let o = Command::new("env")
        .arg("-i")
        .arg(bin())
        .args(["export", "--socket"])
        .arg(&sock)
        .args(["-f", "credential-process"])
        .current_dir("/")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
    let v = credential_process_json(&text(&o.stdout));
    assert_eq!(v["AccessKeyId"], main["data"]["access_key"], "{v}");
    assert!(
        v["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
        "{v}"
    );
    let exp = v["Expiration"].as_str().unwrap();
    let exp = time::OffsetDateTime::parse(exp, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{exp:?} is not RFC 3339: {e}"))
        .unix_timestamp();
    assert!(exp > unix_now() + 600, "{v}");
    // NAME may be given, and must be the shared one.
    let o = Command::new("env")
        .arg("-i")
        .arg(bin())
        .args(["export", "other", "--socket"])
        .arg(&sock)
        .args(["-f", "credential-process"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "another name: {}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
    assert!(
        text(&o.stderr).contains("serves only \"prod\"")
            && text(&o.stderr).contains("hint: ask it for prod"),
        "{}",
        text(&o.stderr)
    );

    // The real aws CLI, in a sandbox-like environment of its own: one profile whose
    // credential_process is the shim.
    let aws = which_on_path("aws").expect("the aws CLI (pip install awscli; the CI script does)");
    let sandbox = t.dir.path().join("sandbox");
    std::fs::create_dir_all(&sandbox).unwrap();
    let config = sandbox.join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile agent]\nregion = us-east-1\ncredential_process = {} export --socket {} -f credential-process\n",
            bin().display(),
            sock.display()
        ),
    )
    .unwrap();
    let o = Command::new(&aws)
        .env_clear()
        .env("PATH", test_path())
        .env("HOME", &sandbox)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", sandbox.join("none"))
        .env("AWS_PROFILE", "agent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_STS", moto().endpoint())
        .args(["sts", "get-caller-identity", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "aws failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let id: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        id["Arn"], "arn:aws:sts::123456789012:assumed-role/Admin/sandbox-agent",
        "{id}"
    );
    // The CLI got them from the share: the one session, fetched once.
    assert_eq!(session_names(&t), ["prod"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_share_still_being_opened_when_the_daemon_stops_does_not_outlive_it() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    // The share waits for its session's first STS call; the daemon is stopped meanwhile.
    sts.set_fault(Fault::Delay(Duration::from_secs(2)));
    let sock = share_dir(&t).join("late.sock");
    let mut cmd = t.std_cmd();
    cmd.args(["daemon", "share", "prod", "--socket"])
        .arg(&sock)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let sharing = cmd.spawn().unwrap();
    let asked = wait_until(Duration::from_secs(5), || {
        log_text(&t).contains("action=share")
    });
    assert!(asked, "the share request did not arrive:\n{}", log_text(&t));
    let o = run(&t, &["daemon", "stop"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (status, _, err) = output_within(sharing, Duration::from_secs(20));
    let status = status.expect("share hung");
    assert!(
        !sock.exists(),
        "the share outlived the daemon (share exit {status}: {err})"
    );
    assert!(!serves(&sock));
    // Whoever asked is not told it is open.
    assert!(
        !status.success(),
        "share said yes to a daemon that stopped: {err}"
    );
    assert!(err.contains("the daemon is stopping"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shares_opened_at_once_each_get_their_own_mode() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    assert_eq!(t.request("add", json!({ "config": "prod" }))["ok"], true);
    let dir = share_dir(&t);
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let sock = dir.join(format!("s{i}.sock"));
            let main = t.socket();
            std::thread::spawn(move || {
                let mut payload = json!({ "config": "prod", "socket": sock });
                if i % 2 == 1 {
                    payload["uid"] = json!(NOBODY);
                }
                let r = ask(&main, "share", payload);
                assert_eq!(r["ok"], true, "{r}");
                (sock, if i % 2 == 1 { 0o666 } else { 0o600 })
            })
        })
        .collect();
    let mut wrong = vec![];
    for th in threads {
        let (sock, mode) = th.join().unwrap();
        let m = std::fs::metadata(&sock).unwrap().mode() & 0o777;
        if m != mode {
            wrong.push(format!("{} {m:o} not {mode:o}", sock.display()));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Nor is the daemon's umask left changed: a share in a new directory is reachable.
    let fresh = dir.join("new").join("x.sock");
    share(&t, "prod", &fresh, &[]);
    let m = std::fs::metadata(fresh.parent().unwrap()).unwrap().mode() & 0o777;
    assert_eq!(m, 0o700, "the new directory is {m:o}");
}
