//! `elhaz exec` and `elhaz export`. The child must behave as if the user had
//! run it directly with the right credentials, and every export format must be what
//! its consumer (a shell, the AWS CLI, an SDK) expects.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::*;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const HOUR: Duration = Duration::from_secs(3600);

/// What exec removes from the child's environment.
const REMOVED: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_FILE",
    "AWS_SDK_LOAD_CONFIG",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ACCOUNT_ID",
];

/// What exec may set (the region pair only when a region is known).
const SET: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "ELHAZ_SESSION",
    "ELHAZ_EXPIRES_AT",
    "ELHAZ_REFRESH_AT",
    // The caller's source selectors, carried for elhaz inside the session.
    "ELHAZ_SOURCE_AWS_PROFILE",
    "ELHAZ_SOURCE_AWS_DEFAULT_PROFILE",
    "ELHAZ_SOURCE_AWS_REGION",
    "ELHAZ_SOURCE_AWS_DEFAULT_REGION",
    "ELHAZ_SOURCE_AWS_ROLE_ARN",
    "ELHAZ_SOURCE_AWS_WEB_IDENTITY_TOKEN_FILE",
    "ELHAZ_SOURCE_AWS_ROLE_SESSION_NAME",
    "ELHAZ_CONTEXT_REF",
    // Whether that context's source was keys (never the keys).
    "ELHAZ_SOURCE_KEYS",
    // Which access key id the session injected (not a secret).
    "ELHAZ_KEY_ID",
];

type Env = BTreeMap<OsString, OsString>;

/// Parses `env -0` output.
fn parse_env0(out: &[u8]) -> Env {
    out.split(|b| *b == 0)
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let eq = kv.iter().position(|b| *b == b'=').expect("NAME=value");
            (
                OsString::from_vec(kv[..eq].to_vec()),
                OsString::from_vec(kv[eq + 1..].to_vec()),
            )
        })
        .collect()
}

fn get<'a>(env: &'a Env, k: &str) -> Option<&'a str> {
    env.get(OsStr::new(k))
        .map(|v| v.to_str().expect("UTF-8 value"))
}

fn first_line(b: &[u8]) -> String {
    text(b).lines().next().unwrap_or_default().to_string()
}

/// `elhaz ARGS... -- env -0` and the child's environment.
fn exec_env(t: &TestEnv, args: &[&str]) -> Env {
    let out = t
        .std_cmd()
        .args(args)
        .args(["--", "env", "-0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&out);
    parse_env0(&out.stdout)
}

fn parse_rfc3339(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
}

/// A config assuming ROLE_ARN whose STS section names `region`.
fn config_with_region(t: &TestEnv, name: &str, region: &str) {
    t.write_config(
        name,
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\nSTS:\n  region_name: {region}\n"),
    );
}

fn bin_str() -> String {
    bin().to_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------
// The child's environment.

#[tokio::test(flavor = "multi_thread")]
async fn exec_child_env_is_exactly_ours_plus_credentials_minus_other_sources() {
    let sts = FakeSts::start(HOUR).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    config_with_region(&t, "prod", "eu-west-3");
    // Every competing source is set in the parent, with values elhaz can live with
    // for its own source session (the env keys win over the profile).
    t.write_aws_config("[profile src]\nregion = us-east-1\n");
    t.set("AWS_PROFILE", "src")
        .set("AWS_DEFAULT_PROFILE", "src")
        .set("AWS_SECURITY_TOKEN", "old-security-token")
        .set("AWS_CREDENTIAL_FILE", "/nonexistent/credentials")
        .set("AWS_SDK_LOAD_CONFIG", "1")
        .set(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:1/creds",
        )
        .set(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/x",
        )
        .set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token")
        .set(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "/nonexistent/pod-token",
        )
        .set("AWS_ACCESS_KEY", "AKIALEGACYALIAS00000")
        .set("AWS_SECRET_KEY", "legacy-secret")
        .set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/Web")
        .set("AWS_ROLE_SESSION_NAME", "web")
        .set("AWS_ACCOUNT_ID", "999999999999")
        .set(
            "SENTINEL_TEXT",
            "keep me: 'q' \"dq\" $HOME \\ \n second line",
        );
    let raw_value = b"\xff\xfe not UTF-8";

    let before = unix_now();
    let out = t
        .std_cmd()
        .env("SENTINEL_BYTES", OsStr::from_bytes(raw_value))
        .args(["--no-daemon", "exec", "prod", "--", "env", "-0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&out);
    let child = parse_env0(&out.stdout);

    // Set.
    assert_eq!(
        get(&child, "AWS_ACCESS_KEY_ID"),
        Some("ASIAFAKE000000000001")
    );
    assert_eq!(get(&child, "AWS_SECRET_ACCESS_KEY"), Some("fakesecret1xyz"));
    assert_eq!(get(&child, "AWS_SESSION_TOKEN"), Some("faketoken1xyz"));
    let expiration = get(&child, "AWS_CREDENTIAL_EXPIRATION").expect("AWS_CREDENTIAL_EXPIRATION");
    assert!(expiration.ends_with('Z'), "not UTC: {expiration}");
    let expiry = parse_rfc3339(expiration).unix_timestamp();
    assert!(
        (before + 3600 - 5..=unix_now() + 3600 + 5).contains(&expiry),
        "expiry {expiry} is not about an hour from {before}"
    );
    assert_eq!(get(&child, "ELHAZ_SESSION"), Some("prod"));
    assert_eq!(
        get(&child, "ELHAZ_EXPIRES_AT"),
        Some(expiry.to_string().as_str())
    );
    // One-hour credentials: W = min(10 min, L/4) = 10 min.
    assert_eq!(
        get(&child, "ELHAZ_REFRESH_AT"),
        Some((expiry - 600).to_string().as_str())
    );
    assert_eq!(get(&child, "AWS_REGION"), Some("eu-west-3"));
    assert_eq!(get(&child, "AWS_DEFAULT_REGION"), Some("eu-west-3"));
    // What the session replaced is carried, so elhaz inside it has the same sources;
    // never a secret.
    assert_eq!(get(&child, "ELHAZ_SOURCE_AWS_PROFILE"), Some("src"));
    assert_eq!(get(&child, "ELHAZ_SOURCE_AWS_DEFAULT_PROFILE"), Some("src"));
    assert_eq!(get(&child, "ELHAZ_SOURCE_AWS_REGION"), Some("us-east-1"));
    assert_eq!(
        get(&child, "ELHAZ_SOURCE_AWS_ROLE_ARN"),
        Some("arn:aws:iam::123456789012:role/Web")
    );
    // Unset at the source: said so, with an empty value.
    assert_eq!(
        get(&child, "ELHAZ_SOURCE_AWS_WEB_IDENTITY_TOKEN_FILE"),
        Some("")
    );
    assert!(
        !child
            .keys()
            .any(|k| k.to_string_lossy().starts_with("ELHAZ_SOURCE_AWS_SECRET")),
        "a secret carrier reached the child"
    );

    // Removed.
    for v in REMOVED {
        assert!(
            !child.contains_key(OsStr::new(v)),
            "{v} reached the child: {:?}",
            child.get(OsStr::new(v))
        );
    }

    // The rest, byte for byte, and nothing else.
    let mut parent: Env = t.vars.iter().map(|(k, v)| (k.into(), v.into())).collect();
    parent.insert(
        "SENTINEL_BYTES".into(),
        OsString::from_vec(raw_value.to_vec()),
    );
    for (k, v) in &parent {
        let name = k.to_str().unwrap();
        if REMOVED.contains(&name) || SET.contains(&name) {
            continue;
        }
        assert_eq!(child.get(k), Some(v), "{name} changed or vanished");
    }
    for k in child.keys() {
        let name = k.to_string_lossy();
        assert!(
            parent.contains_key(k) || SET.contains(&name.as_ref()),
            "{name} appeared from nowhere"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_region_comes_from_config_or_profile_and_region_flag_wins() {
    let sts = FakeSts::start(HOUR).await;
    let t = TestEnv::with_sts(&sts.uri()); // parent has AWS_REGION=us-east-1 only
    config_with_region(&t, "prod", "eu-west-3");
    t.role_config("plain", "");
    std::fs::write(
        t.home.join(".aws/credentials"),
        "[base]\naws_access_key_id = AKIABASE000000000000\naws_secret_access_key = base-secret\n",
    )
    .unwrap();
    t.write_aws_config(&format!(
        "[profile dev]\nrole_arn = {ROLE_ARN}\nsource_profile = base\nregion = sa-east-1\n"
    ));

    let flag = exec_env(
        &t,
        &["--no-daemon", "exec", "prod", "--region", "ap-south-1"],
    );
    assert_eq!(get(&flag, "AWS_REGION"), Some("ap-south-1"));
    assert_eq!(get(&flag, "AWS_DEFAULT_REGION"), Some("ap-south-1"));

    let profile = exec_env(&t, &["--no-daemon", "exec", "dev"]);
    assert_eq!(get(&profile, "ELHAZ_SESSION"), Some("dev"));
    assert_eq!(get(&profile, "AWS_REGION"), Some("sa-east-1"));
    assert_eq!(get(&profile, "AWS_DEFAULT_REGION"), Some("sa-east-1"));

    // No region in the config: the parent's AWS_REGION is left alone.
    let plain = exec_env(&t, &["--no-daemon", "exec", "plain"]);
    assert_eq!(get(&plain, "AWS_REGION"), Some("us-east-1"));

    // The original's spelling, -n NAME.
    let dash_n = exec_env(&t, &["--no-daemon", "exec", "-n", "prod"]);
    assert_eq!(get(&dash_n, "ELHAZ_SESSION"), Some("prod"));
    assert_eq!(get(&dash_n, "AWS_REGION"), Some("eu-west-3"));
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_without_a_config_region_keeps_the_callers_region() {
    let sts = FakeSts::start(HOUR).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    t.role_config("plain", "");
    t.start_daemon(); // with AWS_REGION=us-east-1
    // Later, from a shell working in another region:
    t.set("AWS_REGION", "eu-west-1");
    let child = exec_env(&t, &["exec", "plain"]);
    assert_eq!(get(&child, "AWS_REGION"), Some("eu-west-1"));
    assert_eq!(get(&child, "AWS_DEFAULT_REGION"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_exec_replaces_the_outer_session_and_never_signs_with_it() {
    let sts = FakeSts::start(HOUR).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    t.role_config("inner", "");
    // The real source: the shared credentials file. The environment holds only what
    // an outer `elhaz exec outer` injected.
    std::fs::write(
        t.home.join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIAFILESOURCE000000\naws_secret_access_key = file-secret\n",
    )
    .unwrap();
    t.set("ELHAZ_SESSION", "outer")
        .set("ELHAZ_EXPIRES_AT", "1900000000")
        .set("ELHAZ_REFRESH_AT", "1899999400")
        .set("AWS_ACCESS_KEY_ID", "ASIAOUTER00000000000")
        .set("AWS_SECRET_ACCESS_KEY", "outer-secret")
        .set("AWS_SESSION_TOKEN", "outer-token")
        .set("AWS_CREDENTIAL_EXPIRATION", "2030-03-17T12:00:00Z");

    let child = exec_env(&t, &["exec", "inner"]);
    assert_eq!(get(&child, "ELHAZ_SESSION"), Some("inner"));
    assert_eq!(
        get(&child, "AWS_ACCESS_KEY_ID"),
        Some("ASIAFAKE000000000001")
    );
    assert_eq!(get(&child, "AWS_SECRET_ACCESS_KEY"), Some("fakesecret1xyz"));
    assert_eq!(get(&child, "AWS_SESSION_TOKEN"), Some("faketoken1xyz"));
    for (k, v) in &child {
        let v = v.to_string_lossy();
        assert!(
            !v.contains("outer")
                && !v.contains("OUTER")
                && !v.starts_with("19000000")
                && !v.starts_with("2030-03-17"),
            "{k:?}={v} leaked from the outer session"
        );
    }

    let requests = sts.server.received_requests().await.unwrap();
    let assume: Vec<_> = requests
        .iter()
        .filter(|r| form(&text(&r.body)).get("Action").map(String::as_str) == Some("AssumeRole"))
        .collect();
    assert_eq!(assume.len(), 1);
    let auth = assume[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        auth.contains("Credential=AKIAFILESOURCE000000/"),
        "signed with: {auth}"
    );
    assert!(
        assume[0].headers.get("x-amz-security-token").is_none(),
        "the outer session token was sent"
    );
}

// ---------------------------------------------------------------------------
// Exit status, signals, PID, TTY.

#[tokio::test(flavor = "multi_thread")]
async fn exit_code_passes_through() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    for code in [0, 1, 3, 42, 255] {
        let status = t
            .std_cmd()
            .args(["exec", "prod", "--", "sh", "-c", &format!("exit {code}")])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(code), "for exit {code}");
    }
    // Through the daemon, one STS call served all five.
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn child_killed_by_sigterm_is_seen_as_143() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let script = format!(
        "'{}' --no-daemon exec prod -- sh -c 'kill -TERM $$'; echo $?",
        bin_str()
    );
    let out = t.program("bash").args(["-c", &script]).output().unwrap();
    ok(&out);
    assert_eq!(text(&out.stdout), "143\n", "stderr: {}", text(&out.stderr));

    let status = t
        .std_cmd()
        .args([
            "--no-daemon",
            "exec",
            "prod",
            "--",
            "sh",
            "-c",
            "kill -TERM $$",
        ])
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_reaches_the_childs_trap() {
    use expectrl::{ControlCode, Expect, Session};
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let mut cmd = t.std_cmd();
    cmd.args([
        "--no-daemon",
        "exec",
        "prod",
        "--",
        "sh",
        "-c",
        "trap 'echo TRAPPED; exit 7' INT; echo READY; sleep 30",
    ]);
    let mut p = Session::spawn(cmd).unwrap();
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    p.expect("READY").expect("the child started");
    // A ^C that lands between `echo READY` and the start of `sleep` stays pending in sh
    // until sleep ends: press it again until the trap runs, as a user would.
    p.set_expect_timeout(Some(Duration::from_millis(500)));
    let trapped = (0..40).any(|_| {
        p.send(ControlCode::EndOfText).unwrap();
        p.expect("TRAPPED").is_ok()
    });
    assert!(trapped, "the child's INT trap never ran");
    let status = p.get_process().wait().unwrap();
    assert!(
        matches!(status, expectrl::process::unix::WaitStatus::Exited(_, 7)),
        "{status:?}"
    );
}

fn exe_of(pid: u32) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).unwrap()
}

/// Pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = rest.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_child_takes_elhaz_pid_and_no_elhaz_process_remains() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let mut child = t
        .std_cmd()
        .args([
            "--no-daemon",
            "exec",
            "prod",
            "--",
            "sh",
            "-c",
            "echo $$; read line; exit 0",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        pid.to_string(),
        "$$ of the child is not the pid we spawned"
    );

    // While the child runs: the spawned pid is the shell, and nothing of elhaz is left.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sh");
    assert_ne!(exe_of(pid), bin().canonicalize().unwrap());
    let kids = children_of(pid);
    assert!(kids.is_empty(), "processes left under the child: {kids:?}");

    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipe_reader_that_stops_early_ends_the_child_quietly() {
    // Rust ignores SIGPIPE; the child must get the default back, as from a shell.
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let script = format!(
        "'{}' --no-daemon exec prod -- seq 1 1000000 | head -n 1; echo \"${{PIPESTATUS[0]}}\"",
        bin_str()
    );
    let out = t.program("bash").args(["-c", &script]).output().unwrap();
    ok(&out);
    assert_eq!(
        text(&out.stdout),
        "1\n141\n",
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("Broken pipe"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_child_inherits_no_file_descriptor_of_elhaz() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let listing = |mut c: Command| {
        let out = c
            .args(["-l", "/proc/self/fd"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        ok(&out);
        // `fd -> target`; the targets of 1 and 2 are per-run pipes, so keep only fds.
        let mut fds: Vec<String> = text(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(" -> "))
            .filter_map(|(l, _)| l.rsplit(' ').next().map(str::to_string))
            .collect();
        fds.sort();
        fds
    };
    let direct = listing(t.program("ls"));
    // Through the daemon, which is started by this very command.
    let mut via = t.std_cmd();
    via.args(["exec", "prod", "--", "ls"]);
    assert_eq!(listing(via), direct);
}

// ---------------------------------------------------------------------------
// Commands that cannot run: no STS call, exact messages.

#[tokio::test(flavor = "multi_thread")]
async fn command_not_found_is_127_before_any_sts_call() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    for cmd in ["nosuchcmd", "/nonexistent/dir/nosuchcmd"] {
        let out = t
            .std_cmd()
            .args(["exec", "prod", "--", cmd, "arg"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(127), "{cmd}: {}", text(&out.stderr));
        assert_eq!(
            first_line(&out.stderr),
            format!("elhaz: command not found: {cmd}")
        );
        assert!(out.stdout.is_empty());
    }
    assert_eq!(sts.calls("AssumeRole").await.len(), 0);
    assert!(!t.socket().exists(), "a daemon was started for a typo");
}

#[tokio::test(flavor = "multi_thread")]
async fn command_not_executable_is_126_before_any_sts_call() {
    let (sts, mut t) = TestEnv::with_role(HOUR).await;
    let bindir = t.dir.path().join("bin");
    std::fs::create_dir_all(&bindir).unwrap();
    let script = bindir.join("noexec-tool");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = format!("{}:{}", bindir.display(), t.vars["PATH"]);
    t.set("PATH", &path);
    let script = script.to_str().unwrap();
    let dir = bindir.to_str().unwrap();

    let cases = [
        (
            script.to_string(),
            format!("elhaz: cannot execute {script}: permission denied"),
        ),
        (
            "noexec-tool".to_string(),
            format!("elhaz: cannot execute noexec-tool: permission denied ({script})"),
        ),
        (
            dir.to_string(),
            format!("elhaz: cannot execute {dir}: is a directory"),
        ),
    ];
    for (cmd, message) in cases {
        let out = t
            .std_cmd()
            .args(["exec", "prod", "--", &cmd])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(126), "{cmd}: {}", text(&out.stderr));
        assert_eq!(first_line(&out.stderr), message);
        assert!(out.stdout.is_empty(), "{cmd} ran: {}", text(&out.stdout));
    }
    assert_eq!(sts.calls("AssumeRole").await.len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn omitting_the_command_prints_usage_and_exits_2() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    for args in [&["exec", "prod"][..], &["exec", "prod", "--"][..]] {
        let out = t.std_cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = text(&out.stderr);
        assert!(err.contains("elhaz exec NAME -- CMD"), "no usage: {err}");
    }
    assert_eq!(sts.calls("AssumeRole").await.len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_without_shebang_runs_under_sh_as_with_execvp() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let script = t.dir.path().join("deploy");
    std::fs::write(&script, "printf '%s|' \"$@\"; echo \"$ELHAZ_SESSION\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = t
        .std_cmd()
        .args(["--no-daemon", "exec", "prod", "--"])
        .arg(&script)
        .args(["a", "b c"])
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(text(&out.stdout), "a|b c|prod\n");
}

// ---------------------------------------------------------------------------
// export.

#[tokio::test(flavor = "multi_thread")]
async fn export_json_and_credential_process_have_the_originals_shapes() {
    let (sts, t) = TestEnv::with_role(HOUR).await;

    let json = |args: &[&str]| -> serde_json::Map<String, Value> {
        let out = t.cmd().args(args).output().unwrap();
        ok(&out);
        match serde_json::from_slice(&out.stdout).unwrap() {
            Value::Object(m) => m,
            v => panic!("not an object: {v}"),
        }
    };
    let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();

    let default = json(&["export", "prod"]);
    let j = json(&["export", "prod", "-f", "json"]);
    assert_eq!(default, j, "json is the default format");
    assert_eq!(
        keys(&j),
        ["access_key", "expiry_time", "secret_key", "token"]
    );
    assert_eq!(j["access_key"], "ASIAFAKE000000000001");
    assert_eq!(j["secret_key"], "fakesecret1xyz");
    assert_eq!(j["token"], "faketoken1xyz");
    let expiry_time = j["expiry_time"].as_str().unwrap();
    assert!(
        expiry_time.ends_with("+00:00") && expiry_time.len() == 25,
        "{expiry_time}"
    );

    let cp = json(&["export", "prod", "-f", "credential-process"]);
    assert_eq!(
        keys(&cp),
        [
            "AccessKeyId",
            "Expiration",
            "SecretAccessKey",
            "SessionToken",
            "Version"
        ]
    );
    assert_eq!(cp["Version"], Value::from(1));
    assert_eq!(cp["AccessKeyId"], "ASIAFAKE000000000001");
    assert_eq!(cp["SecretAccessKey"], "fakesecret1xyz");
    assert_eq!(cp["SessionToken"], "faketoken1xyz");
    let expiration = cp["Expiration"].as_str().unwrap();
    assert_eq!(
        parse_rfc3339(expiration),
        parse_rfc3339(expiry_time),
        "one session, one expiry"
    );
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn export_obscure_hides_secrets_in_every_format() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let run = |format: &str| {
        let out = t
            .cmd()
            .args([
                "export",
                "prod",
                "--obscure",
                "-f",
                format,
                "--shell",
                "bash",
            ])
            .output()
            .unwrap();
        ok(&out);
        let s = text(&out.stdout);
        for secret in ["ASIAFAKE", "fakesecret", "faketoken"] {
            assert!(!s.contains(secret), "{format} shows {secret}: {s}");
        }
        s
    };
    let j: Value = serde_json::from_str(&run("json")).unwrap();
    for k in ["access_key", "secret_key", "token"] {
        assert_eq!(j[k], "***", "{k}");
    }
    assert!(j["expiry_time"].as_str().unwrap().ends_with("+00:00"));

    let cp: Value = serde_json::from_str(&run("credential-process")).unwrap();
    for k in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
        assert_eq!(cp[k], "***", "{k}");
    }
    assert_eq!(cp["Version"], Value::from(1));
    parse_rfc3339(cp["Expiration"].as_str().unwrap());

    let env = run("env");
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        assert!(env.contains(&format!("export {k}='***'")), "{k} in {env}");
    }
    assert!(env.contains("export ELHAZ_SESSION='prod'"), "{env}");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_errors_print_nothing_on_stdout_and_use_the_exit_codes() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    t.write_config("broken", "AssumeRole: [\n");
    let formats = ["json", "env", "credential-process"];
    let check = |name: &str, code: i32| {
        for f in formats {
            for mode in [&[][..], &["--no-daemon"][..]] {
                let out = t
                    .cmd()
                    .args(mode)
                    .args(["export", name, "-f", f])
                    .output()
                    .unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(code),
                    "{name} -f {f} {mode:?}: {}",
                    text(&out.stderr)
                );
                assert!(
                    out.stdout.is_empty(),
                    "{name} -f {f} {mode:?} printed: {}",
                    text(&out.stdout)
                );
                assert!(
                    first_line(&out.stderr).starts_with("elhaz: "),
                    "{}",
                    text(&out.stderr)
                );
            }
        }
    };
    check("nosuch", 3);
    check("broken", 3);
    sts.set_fault(Fault::Status(403, "AccessDenied"));
    check("prod", 5);

    // And `eval "$(elhaz export ...)"` then changes nothing in the shell.
    let script = format!(
        "eval \"$('{}' export prod -f env --shell bash)\"; echo \"$AWS_ACCESS_KEY_ID\"",
        bin_str()
    );
    let out = t.program("bash").args(["-c", &script]).output().unwrap();
    assert_eq!(text(&out.stdout), "AKIASOURCEKEY0000000\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn export_env_sets_and_unsets_what_exec_does() {
    let sts = FakeSts::start(HOUR).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    config_with_region(&t, "prod", "eu-west-3");
    t.write_aws_config("[profile src]\nregion = us-east-1\n");
    t.set("AWS_PROFILE", "src")
        .set("AWS_SDK_LOAD_CONFIG", "1")
        .set(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/x",
        );
    let ours = |env: &Env| -> BTreeMap<String, String> {
        env.iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("ELHAZ_"))
            .collect()
    };
    let exec = ours(&exec_env(&t, &["exec", "prod"]));
    for (shell, script) in [
        (
            "bash",
            "eval \"$(\"$ELHAZ_BIN\" export prod -f env --shell bash)\" && env -0",
        ),
        (
            "zsh",
            "eval \"$(\"$ELHAZ_BIN\" export prod -f env --shell zsh)\" && env -0",
        ),
        (
            "sh",
            "eval \"$(\"$ELHAZ_BIN\" export prod -f env --shell posix)\" && env -0",
        ),
        (
            "fish",
            "\"$ELHAZ_BIN\" export prod -f env --shell fish | source; and env -0",
        ),
    ] {
        let out = t
            .program(shell)
            .args(["-c", script])
            .env("ELHAZ_BIN", bin())
            .output()
            .unwrap();
        ok(&out);
        let mut got = ours(&parse_env0(&out.stdout));
        got.remove("ELHAZ_BIN");
        assert_eq!(got, exec, "{shell}");
    }

    // Without --shell, $SHELL decides.
    let out = t
        .cmd()
        .args(["export", "prod", "-f", "env"])
        .env("SHELL", "/usr/bin/fish")
        .output()
        .unwrap();
    ok(&out);
    assert!(
        text(&out.stdout).contains("set -gx ELHAZ_SESSION 'prod'"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);
}

/// Values that break naive quoting somewhere.
const TRICKY: &[&str] = &[
    "a'b $c d",
    "'",
    "''",
    "\\",
    "\\'",
    "trailing\\",
    "it's \"quoted\"",
    "$(touch PWNED)",
    "`touch PWNED`",
    "${HOME} $HOME $0 $$",
    "!! !$",
    "semi; echo hacked &",
    "glob * ? [a]",
    "~",
    "two\nlines\n",
    "tab\there",
    "-n",
    "%s %d \\n",
    "{a,b}",
    "ünïcödé ✓",
];

#[tokio::test(flavor = "multi_thread")]
async fn env_format_quotes_any_value_for_bash_zsh_posix_and_fish() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let posix = |kind: &str| {
        format!(
            "for r in \"$@\"; do eval \"$(\"$ELHAZ_BIN\" export prod -f env --shell {kind} --region=\"$r\")\" || exit 9; \
             printf '%s\\0%s\\0' \"$AWS_REGION\" \"$AWS_DEFAULT_REGION\"; done"
        )
    };
    let fish = "for r in $argv; \"$ELHAZ_BIN\" export prod -f env --shell fish --region=$r | source; or exit 9; \
                printf '%s\\0%s\\0' \"$AWS_REGION\" \"$AWS_DEFAULT_REGION\"; end";
    let runs = [
        ("bash", posix("bash")),
        ("zsh", posix("zsh")),
        ("sh", posix("posix")),
        ("fish", fish.to_string()),
    ];
    let expected: Vec<&str> = TRICKY.iter().flat_map(|v| [*v, *v]).collect();
    for (shell, script) in runs {
        let out = t
            .program(shell)
            .args(["-c", &script])
            // $0 for POSIX shells; fish puts every argument in $argv.
            .args((shell != "fish").then_some(shell))
            .args(TRICKY)
            .env("ELHAZ_BIN", bin())
            .current_dir(t.dir.path())
            .output()
            .unwrap();
        ok(&out);
        let got: Vec<String> = out.stdout.split(|b| *b == 0).map(text).collect();
        let got: Vec<&str> = got.iter().map(String::as_str).collect();
        assert_eq!(
            got[..got.len() - 1],
            expected[..],
            "{shell}: {}",
            text(&out.stderr)
        );
        assert!(
            !t.dir.path().join("PWNED").exists(),
            "{shell} ran a command from a value"
        );
    }
}

// ---------------------------------------------------------------------------
// Real consumers against moto, through the auto-started daemon.

fn moto_env() -> TestEnv {
    let mut t = TestEnv::with_sts(&moto().endpoint());
    // The AWS CLI v1 reads AWS_DEFAULT_REGION, not AWS_REGION.
    t.set("AWS_DEFAULT_REGION", "us-east-1");
    t.role_config("prod", "");
    t
}

const ASSUMED: &str = "arn:aws:sts::123456789012:assumed-role/Admin/";

fn arn_of(out: &Output) -> String {
    ok(out);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    let arn = v["Arn"].as_str().unwrap().to_string();
    assert!(arn.starts_with(ASSUMED), "not the assumed role: {arn}");
    arn
}

#[test]
fn aws_cli_gets_the_role_through_exec_and_credential_process() {
    let t = moto_env();
    let via_exec = arn_of(
        &t.std_cmd()
            .args([
                "exec",
                "prod",
                "--",
                "aws",
                "sts",
                "get-caller-identity",
                "--output",
                "json",
            ])
            .output()
            .unwrap(),
    );

    let aws_config = t.dir.path().join("consumer-aws-config");
    std::fs::write(
        &aws_config,
        format!(
            "[profile viaelhaz]\ncredential_process = {} --config-dir {} export prod -f credential-process\nregion = us-east-1\n",
            bin_str(),
            t.config_dir().display()
        ),
    )
    .unwrap();
    let via_process = arn_of(
        &t.program("aws")
            .env("AWS_CONFIG_FILE", &aws_config)
            .args([
                "sts",
                "get-caller-identity",
                "--output",
                "json",
                "--profile",
                "viaelhaz",
            ])
            .output()
            .unwrap(),
    );
    // The same role. (Not always the same session: the consumer's AWS_CONFIG_FILE is
    // part of its source context, so the daemon may fetch it a session of its own.)
    let role = |arn: &str| arn.rsplit_once('/').map(|(r, _)| r.to_string());
    assert_eq!(role(&via_process), role(&via_exec));
    assert!(via_exec.contains(":assumed-role/"), "{via_exec}");
}

#[test]
fn aws_cli_gets_the_role_after_eval_in_bash_and_source_in_fish() {
    let t = moto_env();
    let bash = arn_of(
        &t.program("bash")
            .args([
                "-c",
                "eval \"$(\"$ELHAZ_BIN\" export prod -f env --shell bash)\" && aws sts get-caller-identity --output json",
            ])
            .env("ELHAZ_BIN", bin())
            .output()
            .unwrap(),
    );
    let fish = arn_of(
        &t.program("fish")
            .args([
                "-c",
                "\"$ELHAZ_BIN\" export prod -f env --shell fish | source; and aws sts get-caller-identity --output json",
            ])
            .env("ELHAZ_BIN", bin())
            .output()
            .unwrap(),
    );
    assert_eq!(fish, bash, "one cached session, one role session");
}

/// Ctrl-C while the spinner waits for a slow STS ends elhaz as before (130) and erases
/// the spinner's line first, so the shell's prompt does not land after it; in this
/// process and while waiting for the daemon alike.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_the_spinner_erases_its_line() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    sts.set_fault(Fault::Delay(Duration::from_secs(4)));
    let mut t = TestEnv::with_sts(&sts.uri());
    t.role_config("prod", "");
    t.unset("ELHAZ_NO_SPINNER").set("TERM", "xterm");
    for args in [
        &["--no-daemon", "exec", "prod", "--", "true"][..],
        &["exec", "prod", "--", "true"],
    ] {
        let mut cmd = t.std_cmd();
        cmd.args(args);
        let mut p = Pty::spawn(cmd, "elhaz exec", 100, Duration::from_secs(30));
        p.expect("getting credentials for prod");
        p.send("\x03");
        assert_eq!(p.wait_exit(), 130, "{args:?}: {}", p.transcript);
        let raw = &p.transcript;
        let last = raw.rfind("getting credentials for prod").unwrap();
        assert!(
            raw[last..].contains("\x1b[2K"),
            "{args:?}: the spinner's line stayed: {:?}",
            &raw[last..]
        );
    }
    t.stop_daemon();
}
