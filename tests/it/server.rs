//! `elhaz exec --server` and `elhaz shell --server`. elhaz stays the parent
//! and serves refreshed credentials on a loopback container-credentials endpoint, so a
//! child outlives any one set of credentials. Real consumers (boto3, the aws CLI) must
//! keep working across several lifetimes; the endpoint must answer only its own child;
//! the child must behave as under a shell (exit codes, signals, the terminal); nothing
//! may serve once the child is gone; a child whose elhaz is killed hangs up, and the
//! next run removes the files that left; no secret may reach argv or a log.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const HOUR: Duration = Duration::from_secs(3600);
/// The credential lifetime for the long-run tests: several lifetimes fit in 70 s.
const SHORT: Duration = Duration::from_secs(20);

/// The endpoint a child was given.
#[derive(Debug, Clone)]
struct Given {
    token: String,
    port: u16,
    path: String,
}

impl Given {
    /// Parses `URI TOKEN`, as the children below print them.
    fn parse(line: &str) -> Given {
        let mut it = line.split_whitespace();
        let uri = it.next().expect("a URI").to_string();
        let token = it.next().expect("a token").to_string();
        let rest = uri
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("not a loopback http URI: {uri}"));
        let slash = rest.find('/').expect("a path");
        let port = rest[..slash].parse().expect("a port");
        let path = rest[slash..].to_string();
        Given { token, port, path }
    }
}

/// One HTTP/1.1 exchange on a fresh connection: (status, body).
fn http(port: u16, method: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the endpoint");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = text(&raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {raw:?}"));
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn get_credentials(g: &Given) -> Value {
    let (status, body) = http(g.port, "GET", &g.path, Some(&g.token));
    assert_eq!(status, 200, "the token holder was refused: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn connect_refused(port: u16) -> bool {
    matches!(
        TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(2)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// elhaz running with piped stdio; its stdout lines arrive on a channel.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Running {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line starting with `prefix` (earlier lines are skipped).
    #[track_caller]
    fn line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l[prefix.len()..].trim().to_string(),
                Ok(_) => {}
                Err(e) => panic!("no line starting with {prefix:?}: {e}"),
            }
        }
    }

    fn send(&mut self, line: &str) {
        let s = self.stdin.as_mut().expect("stdin open");
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
        s.flush().unwrap();
    }

    /// Closes stdin, waits (bounded) and returns (exit status, stderr).
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("elhaz did not exit within 30 s of its child's stdin closing");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.stderr.join().unwrap())
    }
}

/// `elhaz [pre...] exec --server prod -- sh -c SCRIPT`.
fn exec_server(t: &TestEnv, pre: &[&str], script: &str) -> Command {
    let mut c = t.std_cmd();
    c.args(pre)
        .args(["exec", "--server", "prod", "--", "sh", "-c", script]);
    c
}

/// A child that prints its endpoint and token, then waits for a line on stdin.
const PRINT_AND_WAIT: &str = r#"echo "GIVEN $AWS_CONTAINER_CREDENTIALS_FULL_URI $AWS_CONTAINER_AUTHORIZATION_TOKEN"; echo "PID $$"; read x || :"#;

fn proc_file(pid: u32, what: &str) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/{what}")).unwrap_or_default()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

// ---------------------------------------------------------------------------
// Real consumers across several credential lifetimes. Named to sort first, so the
// two 70-second runs start together on a two-core machine.

const BOTO3_LOOP: &str = r#"
import os, re, sys, time
import boto3

moto = sys.argv[1]
static = [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                      "AWS_SECURITY_TOKEN", "AWS_PROFILE") if k in os.environ]
print("STATIC", ",".join(static) or "-", flush=True)
session = boto3.Session(region_name="us-east-1")
creds = session.get_credentials()
print("METHOD", creds.method if creds else "none", flush=True)
sts = session.client("sts", endpoint_url=moto)
signed = {}

def grab(request, **kwargs):
    auth = request.headers.get("Authorization", b"")
    if isinstance(auth, bytes):
        auth = auth.decode()
    m = re.search(r"Credential=([A-Z0-9]+)/", auth)
    signed["key"] = m.group(1) if m else "unsigned"

sts.meta.events.register("before-send.sts.GetCallerIdentity", grab)
start = time.monotonic()
for i in range(14):
    delay = start + 5 * i - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    signed.clear()
    try:
        ident = sts.get_caller_identity()
        frozen = sts._request_signer._credentials.get_frozen_credentials().access_key
        print("CALL", i, "ok", signed.get("key"), frozen, ident["Arn"], flush=True)
    except Exception as e:
        print("CALL", i, "fail", type(e).__name__, str(e).replace("\n", " "), flush=True)
"#;

const AWS_CLI_LOOP: &str = r#"
moto=$1
tmp=$2
static=
for v in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE; do
  if [ -n "${!v+x}" ]; then static="$static$v,"; fi
done
echo "STATIC ${static:--}"
start=$(date +%s%N)
for i in $(seq 0 13); do
  now=$(date +%s%N)
  ms=$(( (start + i * 5000000000 - now) / 1000000 ))
  if [ "$ms" -gt 0 ]; then sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"; fi
  if arn=$(aws sts get-caller-identity --endpoint-url "$moto" --region us-east-1 \
      --output text --query Arn --debug 2>"$tmp"); then
    key=$(grep -o 'Credential=[A-Z0-9]*' "$tmp" | head -n 1)
    via=$(grep -o 'Looking for credentials via: [a-z-]*' "$tmp" | tail -n 1)
    echo "CALL $i ok ${key#Credential=} ${via##* } $arn"
  else
    echo "CALL $i fail $(grep -v '^[0-9]' "$tmp" | tail -n 3 | tr '\n' ' ')"
  fi
done
"#;

/// What moto answers for keys it did not issue (the fake STS says assumed-role/...).
const MOTO_ARN: &str = "arn:aws:sts::123456789012:user/moto";

/// Parsed `CALL i ok KEY ...` lines: (calls, failures, keys used).
fn calls(stdout: &str) -> (usize, Vec<String>, Vec<String>) {
    let mut n = 0;
    let mut failed = Vec::new();
    let mut keys = Vec::new();
    for l in stdout.lines().filter(|l| l.starts_with("CALL ")) {
        n += 1;
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(2) == Some(&"ok") {
            keys.push(f.get(3).unwrap_or(&"").to_string());
        } else {
            failed.push(l.to_string());
        }
    }
    (n, failed, keys)
}

/// Runs `argv` under `exec --server` for ~70 s with 20-second credentials from the
/// fake STS (through the auto-started daemon); returns (stdout, AssumeRole calls).
async fn long_run(t: &TestEnv, sts: &FakeSts, argv: &[&str]) -> String {
    let started = Instant::now();
    let child = t
        .std_cmd()
        .args(["exec", "--server", "prod", "--"])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, out, err) = output_within(child, Duration::from_secs(150));
    let status = status.expect("the consumer loop did not end within 150 s");
    assert!(status.success(), "{status:?}\nstdout: {out}\nstderr: {err}");
    let took = started.elapsed();
    let issued = sts.calls("AssumeRole").await.len();
    eprintln!("ran {took:?}; AssumeRole calls: {issued}\n{out}");
    out
}

fn check_consumer_run(out: &str, method_line: &str, issued: usize) {
    assert!(
        out.lines().any(|l| l == "STATIC -"),
        "static key variables reached the child: {out}"
    );
    assert!(
        out.contains(method_line),
        "not the container provider: {out}"
    );
    let (n, failed, keys) = calls(out);
    assert_eq!(n, 14, "expected 14 calls over 65 s: {out}");
    assert!(failed.is_empty(), "calls failed: {failed:#?}");
    for k in &keys {
        assert!(
            k.starts_with("ASIAFAKE"),
            "a call was not signed with a served key: {k}"
        );
    }
    let distinct: BTreeSet<&String> = keys.iter().collect();
    assert!(
        distinct.len() >= 3,
        "only {} distinct keys over ~70 s of 20-second credentials: {distinct:?}",
        distinct.len()
    );
    // Keys change in order: never back to an older one.
    let mut seen = Vec::new();
    for k in &keys {
        if seen.last() != Some(k) {
            assert!(!seen.contains(k), "went back to an older key: {keys:?}");
            seen.push(k.clone());
        }
    }
    // Refreshes follow the lifetime, not the calls: ~70 s of 20 s credentials refreshed
    // at half-life is about 7 to 9 STS calls, never one per consumer request.
    assert!(
        (distinct.len()..=12).contains(&issued),
        "{issued} AssumeRole calls for {} distinct keys",
        distinct.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_boto3_loop_keeps_working_across_several_credential_lifetimes() {
    let (sts, t) = TestEnv::with_role(SHORT).await;
    let script = t.dir.path().join("loop.py");
    std::fs::write(&script, BOTO3_LOOP).unwrap();
    let moto = moto().endpoint();
    let out = long_run(
        &t,
        &sts,
        &["python3", script.to_str().unwrap(), moto.as_str()],
    )
    .await;
    let issued = sts.calls("AssumeRole").await.len();
    check_consumer_run(&out, "METHOD container-role", issued);
    // The calls went to moto, not to elhaz's STS.
    assert!(sts.calls("GetCallerIdentity").await.is_empty());
    // The key boto3 froze is the one it signed with, or a newer one it refreshed to.
    for l in out.lines().filter(|l| l.contains(" ok ")) {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert!(f[4] >= f[3], "frozen key older than the signing key: {l}");
        assert_eq!(f[5], MOTO_ARN, "not moto's answer: {l}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_aws_cli_loop_keeps_working_across_several_credential_lifetimes() {
    let (sts, t) = TestEnv::with_role(SHORT).await;
    let script = t.dir.path().join("loop.sh");
    std::fs::write(&script, AWS_CLI_LOOP).unwrap();
    let debug = t.dir.path().join("aws-debug.log");
    let moto = moto().endpoint();
    let out = long_run(
        &t,
        &sts,
        &[
            "bash",
            script.to_str().unwrap(),
            moto.as_str(),
            debug.to_str().unwrap(),
        ],
    )
    .await;
    let issued = sts.calls("AssumeRole").await.len();
    check_consumer_run(&out, &format!(" container-role {MOTO_ARN}"), issued);
    assert!(sts.calls("GetCallerIdentity").await.is_empty());
    for l in out.lines().filter(|l| l.contains(" ok ")) {
        assert!(
            l.ends_with(&format!(" container-role {MOTO_ARN}")),
            "a call did not use the container provider against moto: {l}"
        );
    }
}

// ---------------------------------------------------------------------------
// The endpoint answers its child and nobody else.

#[tokio::test(flavor = "multi_thread")]
async fn the_endpoint_serves_the_token_holder_and_refuses_everyone_else_without_leaking() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    let mut cmd = exec_server(&t, &[], PRINT_AND_WAIT);
    // Everything elhaz logs goes to its stderr here, to be searched for secrets.
    cmd.env("ELHAZ_LOG", "elhaz=debug");
    let run = Running::spawn(cmd);
    let g = Given::parse(&run.line("GIVEN "));
    assert_eq!(g.token.len(), 64, "not 256 bits of hex: {}", g.token);
    assert!(g.token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(g.path.len() > 8, "the path is guessable: {}", g.path);

    // The token holder gets the container-credentials answer.
    let before = unix_now();
    let c = get_credentials(&g);
    assert_eq!(c["AccessKeyId"], "ASIAFAKE000000000001");
    assert_eq!(c["SecretAccessKey"], "fakesecret1xyz");
    assert_eq!(c["Token"], "faketoken1xyz");
    let exp = c["Expiration"].as_str().expect("Expiration");
    let exp = OffsetDateTime::parse(exp, &Rfc3339)
        .unwrap_or_else(|e| panic!("{exp:?} is not RFC 3339: {e}"))
        .unix_timestamp();
    assert!(
        (before + 3600 - 10..=unix_now() + 3600 + 10).contains(&exp),
        "expiry {exp} is not an hour away"
    );
    // A second ask is served from what elhaz holds: no new STS call.
    assert_eq!(get_credentials(&g)["AccessKeyId"], "ASIAFAKE000000000001");
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);

    let mut wrong = g.token.clone().into_bytes();
    wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    let refused = [
        (
            "GET",
            g.path.clone(),
            Some(wrong.clone()),
            403,
            "a wrong token",
        ),
        ("GET", g.path.clone(), None, 403, "no Authorization header"),
        (
            "GET",
            g.path.clone(),
            Some(String::new()),
            403,
            "an empty token",
        ),
        (
            "GET",
            g.path.clone(),
            Some(g.token[..32].to_string()),
            403,
            "half the token",
        ),
        (
            "GET",
            g.path.clone(),
            Some(format!("Bearer {}", g.token)),
            403,
            "a Bearer token",
        ),
        (
            "GET",
            g.path.clone(),
            Some(format!("{}0", g.token)),
            403,
            "the token and more",
        ),
        (
            "GET",
            "/".to_string(),
            Some(g.token.clone()),
            404,
            "the root",
        ),
        (
            "GET",
            format!("{}x", g.path),
            Some(g.token.clone()),
            404,
            "a longer path",
        ),
        (
            "GET",
            "/latest/meta-data/".to_string(),
            Some(g.token.clone()),
            404,
            "another path",
        ),
        ("POST", g.path.clone(), Some(g.token.clone()), 404, "POST"),
        ("PUT", g.path.clone(), Some(g.token.clone()), 404, "PUT"),
        (
            "DELETE",
            g.path.clone(),
            Some(g.token.clone()),
            404,
            "DELETE",
        ),
    ];
    for (method, path, auth, want, what) in &refused {
        let (status, body) = http(g.port, method, path, auth.as_deref());
        assert_eq!(status, *want, "{what}: {body}");
        for secret in [
            "ASIAFAKE",
            "fakesecret",
            "faketoken",
            g.token.as_str(),
            &g.path[1..],
        ] {
            assert!(
                !body.contains(secret),
                "{what}: the body leaks {secret}: {body}"
            );
        }
    }
    // The refusals cost no STS call, and the child is still served.
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);
    assert_eq!(get_credentials(&g)["AccessKeyId"], "ASIAFAKE000000000001");

    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    // Refusals are logged, with neither the token (real or tried) nor the path.
    assert!(
        stderr.contains("refused") && stderr.contains("unknown method or path"),
        "refusals were not logged: {stderr}"
    );
    for secret in [
        g.token.as_str(),
        wrong.as_str(),
        &g.path[1..],
        "fakesecret",
        "faketoken",
    ] {
        assert!(!stderr.contains(secret), "elhaz logged {secret}: {stderr}");
    }
    // The listener went with the child.
    assert!(connect_refused(g.port), "port {} still accepts", g.port);
}

// ---------------------------------------------------------------------------
// Exit codes and signals, as a shell would report them.

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_pass_through_and_a_signal_death_is_128_plus_the_signal() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    for (script, want) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("exit 255", 255),
        ("kill -TERM $$", 143),
        ("kill -KILL $$", 137),
        ("kill -INT $$", 130),
    ] {
        let status = exec_server(&t, &[], script)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(want), "for `{script}`: {status:?}");
    }
    // A shell reports the same number in $?.
    let out = t
        .program("bash")
        .args([
            "-c",
            &format!(
                "'{}' exec --server prod -- sh -c 'kill -TERM $$'; echo \"status $?\"",
                bin().display()
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "status 143\n", "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_sent_to_elhaz_reach_the_child() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    // The child traps each forwarded signal and says so; TERM ends it with 5.
    let script = "for s in INT HUP QUIT USR1 USR2 WINCH; do trap \"echo GOT_$s\" $s; done; \
                  trap 'echo GOT_TERM; exit 5' TERM; echo READY; \
                  while :; do sleep 0.05; done";
    let run = Running::spawn(exec_server(&t, &[], script));
    run.line("READY");
    let elhaz = run.pid() as i32;
    // Right after READY: forwarding must already be in place when the child starts.
    for (sig, name) in [
        (libc::SIGUSR1, "USR1"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGINT, "INT"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGWINCH, "WINCH"),
    ] {
        // SAFETY: kill(2) on the elhaz we spawned.
        assert_eq!(unsafe { libc::kill(elhaz, sig) }, 0);
        run.line(&format!("GOT_{name}"));
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(elhaz, libc::SIGTERM) }, 0);
    run.line("GOT_TERM");
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(5), "{status:?} {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_right_after_the_child_starts_is_forwarded_not_fatal() {
    // The child signals its parent (elhaz) at once: a window in which elhaz had not
    // yet set up forwarding would kill elhaz and orphan the child.
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    for _ in 0..5 {
        let script = "trap 'echo GOT_USR1; exit 9' USR1; kill -USR1 $PPID; \
                      n=0; while [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done; exit 1";
        let out = exec_server(&t, &[], script)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(9),
            "{:?} stdout: {} stderr: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), "GOT_USR1\n");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn under_a_terminal_the_child_is_in_the_foreground_and_ctrl_c_reaches_its_trap() {
    use expectrl::{ControlCode, Expect, Regex, Session};
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let cmd = exec_server(
        &t,
        &[],
        "trap 'echo TRAPPED; exit 7' INT; \
         set -- $(cut -d' ' -f5,8 /proc/$$/stat); echo \"FG pid=$$ pgrp=$1 tpgid=$2 .\"; \
         echo READY; sleep 30",
    );
    let mut p = Session::spawn(cmd).unwrap();
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    let elhaz = p.get_process().pid().as_raw();
    let fg = p
        .expect(Regex(r"FG pid=(\d+) pgrp=(\d+) tpgid=(\d+) \."))
        .expect("the child reported its groups");
    let num = |i: usize| -> i32 { text(fg.get(i).unwrap()).parse().unwrap() };
    let (pid, pgrp, tpgid) = (num(1), num(2), num(3));
    assert_eq!(pgrp, pid, "the child does not lead its own process group");
    assert_ne!(pgrp, elhaz, "the child shares elhaz's group");
    assert_eq!(
        tpgid, pgrp,
        "the child is not the terminal's foreground group"
    );
    p.expect("READY").expect("the child started");
    // A ^C that lands while sh is between `echo` and starting `sleep` can be lost on a
    // loaded machine: press it again, a bounded number of times, as a person would.
    p.set_expect_timeout(Some(Duration::from_secs(3)));
    let trapped = (0..5).any(|_| {
        p.send(ControlCode::EndOfText).unwrap();
        p.expect("TRAPPED").is_ok()
    });
    assert!(
        trapped,
        "the child's INT trap never ran after 5 presses of ^C"
    );
    let status = p.get_process().wait().unwrap();
    assert!(
        matches!(status, expectrl::process::unix::WaitStatus::Exited(_, 7)),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn from_an_interactive_shell_ctrl_z_stops_the_job_and_fg_or_bg_resume_it() {
    use expectrl::{ControlCode, Expect, Regex, Session};
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let mut cmd = t.program("bash");
    cmd.args(["--norc", "--noprofile", "-i"])
        .env("PS1", "PS$ ")
        .env("ELHAZ", bin());
    let mut p = Session::spawn(cmd).unwrap();
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    let job = r#""$ELHAZ" exec --server prod -- sh -c 'trap "echo TRAPPED; exit 7" INT; i=0; while :; do i=$((i+1)); echo TICK$i; sleep 0.5; done'"#;

    // Ctrl-Z, then fg: the job stops, the shell has the terminal, and after fg the
    // child runs again in the foreground (Ctrl-C reaches it).
    p.send_line(job).unwrap();
    p.expect("TICK2").expect("the child runs");
    // Between two ticks, when sh waits for sleep: a stop in the instant sh (dash)
    // vforks would hang sh in the kernel, with or without elhaz.
    std::thread::sleep(Duration::from_millis(150));
    p.send(ControlCode::Substitute).unwrap();
    p.expect("Stopped").expect("the shell saw the job stop");
    p.send_line("echo M$((1+1))").unwrap();
    p.expect("M2").expect("the shell has the terminal back");
    p.send_line("fg").unwrap();
    p.expect(Regex(r"TICK\d+"))
        .expect("the child runs again after fg");
    p.send(ControlCode::EndOfText).unwrap();
    p.expect("TRAPPED")
        .expect("Ctrl-C reached the child after fg");
    p.send_line("echo rc=$?").unwrap();
    p.expect("rc=7").expect("the job's status");

    // Ctrl-Z, then bg: the child runs on in the background and the shell keeps the
    // terminal.
    p.send_line(job).unwrap();
    p.expect("TICK2").expect("the child runs");
    std::thread::sleep(Duration::from_millis(150));
    p.send(ControlCode::Substitute).unwrap();
    p.expect("Stopped").expect("the shell saw the job stop");
    p.send_line("bg").unwrap();
    p.expect(Regex(r"TICK\d+"))
        .expect("the child runs again after bg");
    std::thread::sleep(Duration::from_millis(500));
    p.send_line("echo A$((1+1))").unwrap();
    p.expect("A2")
        .expect("the shell kept the terminal after bg");
    // Ctrl-C now is the shell's, not the background job's.
    p.send(ControlCode::EndOfText).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // The line typed right after ^C can be eaten by readline's reset on a loaded
    // machine: type it again, a bounded number of times. What the terminal showed
    // since A2 (all attempts) must not include the job's trap.
    p.set_expect_timeout(Some(Duration::from_secs(4)));
    let mut seen = None;
    for _ in 0..5 {
        p.send_line("echo B$((1+1))").unwrap();
        if let Ok(m) = p.expect("B2") {
            seen = Some(text(m.before()));
            break;
        }
    }
    p.set_expect_timeout(Some(Duration::from_secs(20)));
    let seen = seen.expect("the shell is alive");
    assert!(
        !seen.contains("TRAPPED"),
        "Ctrl-C went to the background job"
    );
    p.expect(Regex(r"TICK\d+"))
        .expect("the background job still runs");
    p.send_line("kill %1").unwrap();
    // bash reports the job at the next prompt or on `jobs`, whichever comes first.
    p.send_line("sleep 1; jobs").unwrap();
    p.expect("Exit 143")
        .expect("the job ended by SIGTERM, forwarded to the child");
    p.send_line("exit").unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_child_starts_with_no_signal_ignored_that_its_parent_did_not_ignore() {
    // A shell starts commands with default dispositions; what elhaz ignores for its
    // own terminal handling (SIGTTOU) must not leak into the child.
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    // Signals 32 and 33 are glibc's own (thread cancellation and set*id): no program
    // can set or reset them through sigaction, and glibc's posix_spawn leaves them
    // ignored in some children and not in others, so they are left out.
    let ignored = |out: &[u8]| -> String {
        let hex = text(out)
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .expect("SigIgn line")
            .trim()
            .to_string();
        let mask = u64::from_str_radix(&hex, 16).expect("SigIgn is hex");
        format!("{:016x}", mask & !(0b11 << 31))
    };
    let direct = t
        .program("cat")
        .arg("/proc/self/status")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let under = exec_server(&t, &[], "exec cat /proc/self/status")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(under.status.success(), "{}", text(&under.stderr));
    assert_eq!(ignored(&under.stdout), ignored(&direct.stdout));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_and_continued_child_is_still_served_without_a_terminal() {
    // No terminal, no job control: when someone stops and continues the child, elhaz
    // must not stop itself too (the child's next credential fetch would hang).
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let mut run = Running::spawn(exec_server(&t, &[], PRINT_AND_WAIT));
    let g = Given::parse(&run.line("GIVEN "));
    let child: i32 = run.line("PID ").parse().unwrap();
    // SAFETY: kill(2) on the child of the elhaz we spawned.
    unsafe { libc::kill(child, libc::SIGSTOP) };
    assert!(wait_until(Duration::from_secs(5), || state(child as u32) == 'T'));
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(child, libc::SIGCONT) };
    assert!(wait_until(Duration::from_secs(5), || state(child as u32) != 'T'));
    std::thread::sleep(Duration::from_millis(300));
    assert_ne!(state(run.pid()), 'T', "elhaz stopped itself");
    assert_eq!(get_credentials(&g)["AccessKeyId"], "ASIAFAKE000000000001");
    run.send("done");
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// The state letter of a process (R, S, T...).
fn state(pid: u32) -> char {
    let stat = text(&proc_file(pid, "stat"));
    stat.rfind(')')
        .and_then(|i| stat[i + 2..].chars().next())
        .unwrap_or('?')
}

// ---------------------------------------------------------------------------
// Nothing serves once the child is gone.

#[tokio::test(flavor = "multi_thread")]
async fn no_listener_remains_after_the_child_exits_even_if_its_children_live_on() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    // The child leaves a background process behind and exits with 3.
    let script = r#"echo "GIVEN $AWS_CONTAINER_CREDENTIALS_FULL_URI $AWS_CONTAINER_AUTHORIZATION_TOKEN"; sleep 60 >/dev/null 2>&1 </dev/null & echo "BG $!"; exit 3"#;
    let started = Instant::now();
    let out = exec_server(&t, &[], script)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    let bg: i32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BG "))
        .expect("BG line")
        .parse()
        .unwrap();
    let _reap = KillOnDrop(bg);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "elhaz waited for the background process"
    );
    let g = Given::parse(
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("GIVEN "))
            .unwrap(),
    );
    assert!(
        connect_refused(g.port),
        "port {} still accepts after the child exited",
        g.port
    );
    // Also after a child killed by a signal.
    let out = exec_server(
        &t,
        &[],
        r#"echo "GIVEN $AWS_CONTAINER_CREDENTIALS_FULL_URI $AWS_CONTAINER_AUTHORIZATION_TOKEN"; kill -KILL $$"#,
    )
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(137));
    let stdout = text(&out.stdout);
    let g = Given::parse(
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("GIVEN "))
            .unwrap(),
    );
    assert!(connect_refused(g.port), "port {} still accepts", g.port);
}

struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a pid this test started.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

// ---------------------------------------------------------------------------
// elhaz killed with SIGKILL: the child hangs up, the next run cleans up.

/// A user whose `--server` runs keep their files in a private TMPDIR of the test.
async fn with_private_tmp() -> (FakeSts, TestEnv, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let (sts, mut t) = TestEnv::with_role(HOUR).await;
    let tmp = t.dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).unwrap();
    t.set("TMPDIR", tmp.to_str().unwrap());
    (sts, t, tmp)
}

/// The `elhaz-aws-*` directories in `dir`.
fn run_dirs(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("elhaz-aws-"))
        .collect()
}

/// Starts `exec --server` with a child that waits on stdin; returns it, the child's
/// pid, and the directory of the child's files.
fn started(t: &TestEnv, tmp: &std::path::Path) -> (Running, u32, String) {
    let before = run_dirs(tmp);
    let run = Running::spawn(exec_server(t, &[], PRINT_AND_WAIT));
    let child: u32 = run.line("PID ").parse().unwrap();
    let new: Vec<String> = run_dirs(tmp).difference(&before).cloned().collect();
    assert_eq!(new.len(), 1, "one directory per run: {new:?}");
    (run, child, new[0].clone())
}

/// elhaz killed with SIGKILL (no handler runs, its endpoint is gone): the child it
/// supervised is told (SIGHUP, as on a hangup) and ends, instead of calling a dead
/// endpoint for as long as it runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_child_whose_elhaz_is_killed_hangs_up() {
    let (_sts, t, tmp) = with_private_tmp().await;
    let (mut run, child, _) = started(&t, &tmp);
    let _reap = KillOnDrop(child as i32);
    assert!(pid_alive(child));
    run.child.kill().unwrap();
    let _ = run.child.wait();
    // The child waits on its stdin, which the test still holds open.
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(child)),
        "the child {child} still runs 10 s after its elhaz was killed"
    );
}

/// The directory of the child's AWS files, left by an elhaz killed with SIGKILL, is
/// removed by the next `--server` run; the directory of a run still going, one of
/// another user and one with no record of its owner are left alone.
#[tokio::test(flavor = "multi_thread")]
async fn the_next_server_run_removes_what_a_killed_one_left() {
    let (_sts, t, tmp) = with_private_tmp().await;
    let (mut killed, child, stale) = started(&t, &tmp);
    let _reap = KillOnDrop(child as i32);
    killed.child.kill().unwrap();
    let _ = killed.child.wait();
    assert!(tmp.join(&stale).is_dir(), "SIGKILL leaves {stale}");
    let (live, live_child, alive) = started(&t, &tmp);
    let _reap_live = KillOnDrop(live_child as i32);
    // Made by hand: one without an owner record, and (as root) another user's with
    // the killed run's record.
    let unrecorded = tmp.join("elhaz-aws-unrecorded");
    std::fs::create_dir(&unrecorded).unwrap();
    let mut kept = BTreeSet::from([alive.clone(), "elhaz-aws-unrecorded".to_string()]);
    if is_root() {
        use std::os::unix::fs::PermissionsExt;
        let foreign = tmp.join("elhaz-aws-foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
        if let Ok(record) = std::fs::read(tmp.join(&stale).join("pid")) {
            std::fs::write(foreign.join("pid"), record).unwrap();
        }
        chown_tree(&foreign, NOBODY, NOBODY);
        kept.insert("elhaz-aws-foreign".into());
    }

    let out = exec_server(&t, &[], "true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(run_dirs(&tmp), kept, "{stale} is removed, the others stay");

    // The live run's files were untouched: its child still reads them.
    let (status, stderr) = live.finish();
    assert!(status.success(), "{stderr}");
    kept.remove(&alive);
    assert_eq!(run_dirs(&tmp), kept);
}

// ---------------------------------------------------------------------------
// Secrets stay out of argv and logs.

#[tokio::test(flavor = "multi_thread")]
async fn the_token_and_the_credentials_never_appear_in_argv_or_the_daemon_log() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let mut run = Running::spawn(exec_server(&t, &["-vv"], PRINT_AND_WAIT));
    let g = Given::parse(&run.line("GIVEN "));
    let child: u32 = run.line("PID ").parse().unwrap();
    let c = get_credentials(&g);
    let _ = http(g.port, "GET", &g.path, Some("not-the-token"));
    let _ = http(g.port, "POST", &g.path, Some(&g.token));
    let secrets = [
        g.token.clone(),
        c["AccessKeyId"].as_str().unwrap().to_string(),
        c["SecretAccessKey"].as_str().unwrap().to_string(),
        c["Token"].as_str().unwrap().to_string(),
    ];
    // The environment is where they belong: this is the right child.
    assert!(contains(&proc_file(child, "environ"), &g.token));
    let daemon = t.daemon_pid().expect("the auto-started daemon");
    for (who, pid) in [
        ("elhaz", run.pid()),
        ("the child", child),
        ("the daemon", daemon),
    ] {
        let argv = proc_file(pid, "cmdline");
        assert!(!argv.is_empty(), "no cmdline for {who}");
        for s in &secrets {
            assert!(
                !contains(&argv, s),
                "{who}'s argv holds {s}: {}",
                text(&argv)
            );
        }
    }
    run.send("done");
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    t.stop_daemon();
    let log = std::fs::read(t.log()).expect("the daemon log");
    assert!(!log.is_empty());
    for s in &secrets {
        assert!(!contains(&log, s), "the daemon log holds {s}");
        assert!(
            !stderr.contains(s.as_str()),
            "elhaz -vv logged {s}: {stderr}"
        );
    }
}

// ---------------------------------------------------------------------------
// shell --server.

#[tokio::test(flavor = "multi_thread")]
async fn shell_server_gives_bash_the_endpoint_no_static_keys_and_no_refresh_hook() {
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    let script = r#"
for v in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_CREDENTIAL_EXPIRATION; do
  [ -n "${!v+x}" ] && echo "STATIC $v"
done
echo "GIVEN $AWS_CONTAINER_CREDENTIALS_FULL_URI $AWS_CONTAINER_AUTHORIZATION_TOKEN"
echo "SESSION $ELHAZ_SESSION"
echo "EXPIRES $ELHAZ_EXPIRES_AT"
if declare -F _elhaz_hook >/dev/null; then echo "HOOK function"; fi
case "${PROMPT_COMMAND[*]-}" in *_elhaz*) echo "HOOK prompt";; esac
echo "INTERACTIVE $-"
curl -s -H "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" "$AWS_CONTAINER_CREDENTIALS_FULL_URI"; echo
exit 4
"#;
    let out = t
        .std_cmd()
        .args([
            "shell",
            "--server",
            "prod",
            "--shell",
            "/bin/bash",
            "--",
            "-c",
            script,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        !stdout.contains("STATIC "),
        "static keys in the shell: {stdout}"
    );
    assert!(
        !stdout.contains("HOOK "),
        "a refresh hook was installed: {stdout}"
    );
    let line = |p: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(p))
            .unwrap_or_else(|| panic!("no {p:?} in {stdout}"))
            .to_string()
    };
    let g = Given::parse(&line("GIVEN "));
    assert_eq!(g.token.len(), 64);
    assert_eq!(line("SESSION "), "prod");
    assert!(line("EXPIRES ").parse::<i64>().unwrap() > unix_now() + 3000);
    assert!(
        line("INTERACTIVE ").contains('i'),
        "not an interactive shell"
    );
    let served: Value = serde_json::from_str(
        stdout
            .lines()
            .find(|l| l.starts_with('{'))
            .expect("the endpoint's answer"),
    )
    .unwrap();
    assert_eq!(served["AccessKeyId"], "ASIAFAKE000000000001");
    assert!(connect_refused(g.port), "the shell's endpoint outlived it");
}

// ---------------------------------------------------------------------------
// Without the daemon, the endpoint itself keeps credentials and rides out failures.

#[tokio::test(flavor = "multi_thread")]
async fn without_the_daemon_an_sts_outage_serves_the_valid_old_credentials_without_a_storm() {
    let (sts, t) = TestEnv::with_role(SHORT).await;
    let run = Running::spawn(exec_server(&t, &["--no-daemon"], PRINT_AND_WAIT));
    let g = Given::parse(&run.line("GIVEN "));
    let first = get_credentials(&g);
    assert_eq!(first["AccessKeyId"], "ASIAFAKE000000000001");
    // Reused while fresh: the child asking again costs no STS call.
    for _ in 0..3 {
        assert_eq!(get_credentials(&g)["AccessKeyId"], "ASIAFAKE000000000001");
    }
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);

    // Past half-life, with STS down: the old credentials are still valid, so they are
    // served, and STS is not asked once per request.
    sts.set_fault(Fault::Status(503, "ServiceUnavailable"));
    let exp = OffsetDateTime::parse(first["Expiration"].as_str().unwrap(), &Rfc3339)
        .unwrap()
        .unix_timestamp();
    while unix_now() < exp - 8 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = sts.server.received_requests().await.unwrap().len();
    for i in 0..5 {
        let (status, body) = http(g.port, "GET", &g.path, Some(&g.token));
        assert_eq!(status, 200, "request {i} during the outage: {body}");
        let c: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(c["AccessKeyId"], "ASIAFAKE000000000001");
    }
    let during = sts.server.received_requests().await.unwrap().len() - before;
    eprintln!("STS requests during the outage, for 5 endpoint requests: {during}");
    assert!(
        (1..=4).contains(&during),
        "{during} STS requests for 5 endpoint requests"
    );
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

// ---------------------------------------------------------------------------
// What the child's SDK chooses when the user's AWS files and variables point elsewhere.

mod chain;
mod inherited;
