//! The daemon: wire protocol v1 against the golden lines in
//! tests/fixtures/protocol (and our extensions), the session cache (LRU, single-flight,
//! refresh ahead of expiry, STS faults, MFA), security (peer check, file modes, malformed
//! and oversized input, stalled clients, no secrets in the log) and the lifecycle
//! (auto-start after kill -9, one daemon per socket, stop/SIGTERM/SIGINT, env scrubbing,
//! status/list/logs commands).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{Value, json};

const HOUR: Duration = Duration::from_secs(3600);
const MAX_LINE: usize = 64 * 1024;

// ---------------------------------------------------------------------------
// Helpers

/// A golden fixture: the request line (with `<uuid>` placeholders) and the response.
fn fixture(name: &str) -> (String, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/protocol")
        .join(format!("{name}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let request = lines.next().expect("request line").to_string();
    let response = serde_json::from_str(lines.next().expect("response line"))
        .expect("golden response is JSON");
    (request, response)
}

/// Whether `s` has the shape of `pattern`: `d` is a digit, `h` a hex digit, anything
/// else is literal.
fn shaped(s: &str, pattern: &str) -> bool {
    s.len() == pattern.len()
        && s.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
            b'd' => c.is_ascii_digit(),
            b'h' => c.is_ascii_hexdigit(),
            _ => c == p,
        })
}

fn is_uuid(s: &str) -> bool {
    shaped(s, "hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh")
}

/// `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`
fn is_expiry(s: &str) -> bool {
    shaped(s, "dddd-dd-ddTdd:dd:dd+00:00")
}

fn expiry_unix(s: &str) -> i64 {
    assert!(is_expiry(s), "expiry_time {s:?}");
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn sorted<'a>(k: &[&'a str]) -> Vec<&'a str> {
    let mut k = k.to_vec();
    k.sort_unstable();
    k
}

/// Absent fields are omitted, never null.
fn assert_no_null(v: &Value, context: &str) {
    match v {
        Value::Null => panic!("{context}: a null in the answer"),
        Value::Array(a) => a.iter().for_each(|x| assert_no_null(x, context)),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| assert_no_null(x, &format!("{context}.{k}"))),
        _ => {}
    }
}

/// The envelope every answer must have: exactly version/request_id/ok and data|error.
fn assert_envelope(v: &Value, context: &str) {
    assert_no_null(v, context);
    assert_eq!(v["version"], 1, "{context}: {v}");
    assert!(v["request_id"].is_string(), "{context}: {v}");
    let k = keys(v);
    match v["ok"].as_bool() {
        Some(true) => assert!(
            k == sorted(&["version", "request_id", "ok"])
                || k == sorted(&["version", "request_id", "ok", "data"]),
            "{context}: top-level keys {k:?}"
        ),
        Some(false) => {
            assert_eq!(
                k,
                sorted(&["version", "request_id", "ok", "error"]),
                "{context}"
            );
            assert!(v["error"]["code"].is_u64(), "{context}: {v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{context}: {v}"
            );
        }
        None => panic!("{context}: ok is not a bool: {v}"),
    }
}

/// Replaces the values that change from run to run by the fixtures' placeholders,
/// checking their form on the way.
fn mask(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let placeholder = match k.as_str() {
                    "request_id" => "<request_id>",
                    "access_key" | "secret_key" | "token" => "<secret>",
                    "expiry_time" => "<time>",
                    "message" => "<message>",
                    "UserId" | "Account" | "Arn" => "<id>",
                    _ => {
                        mask(x);
                        continue;
                    }
                };
                let s = x
                    .as_str()
                    .unwrap_or_else(|| panic!("{k} is not a string: {x}"));
                assert!(!s.is_empty(), "{k} is empty");
                if k == "expiry_time" && !s.starts_with('<') {
                    assert!(
                        is_expiry(s),
                        "expiry_time {s:?} is not YYYY-MM-DDTHH:MM:SS+00:00"
                    );
                }
                *x = Value::String(placeholder.into());
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask),
        _ => {}
    }
}

/// Sends the golden request NAME and checks the answer against the golden response.
fn golden(t: &TestEnv, name: &str) -> Value {
    let (template, expected) = fixture(name);
    let id = uuid();
    let raw = t.raw_request(&template.replace("<uuid>", &id));
    assert!(
        raw.ends_with('\n') && raw.matches('\n').count() == 1,
        "{name}: not one line: {raw:?}"
    );
    let got: Value = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{name}: {e}: {raw:?}"));
    assert_envelope(&got, name);
    let rid = got["request_id"].as_str().unwrap();
    if expected["request_id"] == "<fresh-uuid>" {
        assert!(is_uuid(rid), "{name}: request_id {rid:?} is not a UUID");
        assert!(!template.contains(rid), "{name}: request_id is not fresh");
    } else {
        assert_eq!(rid, id, "{name}: request_id not echoed");
    }
    let (mut a, mut b) = (got.clone(), expected);
    mask(&mut a);
    mask(&mut b);
    assert_eq!(a, b, "{name}: answer {raw}");
    got
}

/// Sends raw bytes (a newline is added) on a fresh connection; the answer line, or
/// None when the daemon closed the connection without one. Write errors are ignored.
fn send_bytes(socket: &Path, bytes: &[u8]) -> Option<String> {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(bytes).and_then(|()| s.write_all(b"\n"));
    let mut line = String::new();
    match BufReader::new(s).read_line(&mut line) {
        Ok(n) if n > 0 => Some(line),
        Ok(_) => None,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => None,
        Err(e) => panic!("no answer and no close: {e}"),
    }
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

/// Live `elhaz ... daemon run` processes serving `socket`.
fn daemon_processes(socket: &Path) -> Vec<u32> {
    let sock = socket.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.len() >= 2
            && args[args.len() - 2..] == ["daemon", "run"]
            && args.contains(&sock)
            && alive(pid)
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn creds(t: &TestEnv, name: &str) -> Value {
    t.request("credentials", json!({ "config": name }))
}

fn session_status(t: &TestEnv, name: &str) -> Value {
    let status = t.request("status", json!({}));
    assert_eq!(status["ok"], true, "{status}");
    status["data"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------
// Protocol

#[tokio::test(flavor = "multi_thread")]
async fn protocol_v1_answers_match_the_golden_lines() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    t.role_config("denied", "");
    t.start_daemon();

    // 400s, with a fresh UUID when the line is not a request.
    let a = golden(&t, "unparseable_400");
    let b = golden(&t, "unparseable_400");
    assert_ne!(
        a["request_id"], b["request_id"],
        "each unparseable line gets its own UUID"
    );
    golden(&t, "unknown_field_400");
    golden(&t, "unknown_action_400");
    golden(&t, "add_no_config_400");
    golden(&t, "credentials_no_config_400");
    golden(&t, "add_unknown_config_400");
    golden(&t, "list_empty");

    // 404s: nothing is cached, and without `autoadd` nothing gets added.
    golden(&t, "credentials_not_cached_404");
    golden(&t, "remove_not_cached_404");
    golden(&t, "whoami_not_cached_404");
    golden(&t, "list_empty");
    // Names that are not config names never become paths.
    for bad in ["../../etc/passwd", "a/b", "", "prod\u{0}x"] {
        let r = t.request("credentials", json!({ "config": bad, "autoadd": true }));
        assert_envelope(&r, "bad name");
        assert_eq!(r["error"]["code"], 400, "{bad:?}: {r}");
    }
    assert_eq!(
        sts.calls("AssumeRole").await.len(),
        0,
        "nothing so far may call STS"
    );

    golden(&t, "add");
    golden(&t, "add_exists_409");
    let c = golden(&t, "credentials");
    assert_eq!(c["data"]["access_key"], "ASIAFAKE000000000001");
    assert_eq!(c["data"]["secret_key"], "fakesecret1xyz");
    assert_eq!(c["data"]["token"], "faketoken1xyz");
    let left = expiry_unix(c["data"]["expiry_time"].as_str().unwrap()) - unix_now();
    assert!((3500..=3600).contains(&left), "expiry_time is {left}s away");
    let who = golden(&t, "whoami");
    assert_eq!(who["data"]["Account"], "123456789012");
    golden(&t, "list");
    assert_eq!(
        sts.calls("AssumeRole").await.len(),
        1,
        "one add, one AssumeRole"
    );

    // An STS failure is a 500; it leaves nothing behind.
    sts.set_fault(Fault::Status(403, "AccessDenied"));
    golden(&t, "add_sts_failure_500");
    sts.set_fault(Fault::None);
    golden(&t, "list");

    golden(&t, "remove");
    golden(&t, "list_empty");
    golden(&t, "credentials_not_cached_404");

    golden(&t, "kill");
    assert!(
        wait_until(Duration::from_secs(10), || !t.socket().exists()),
        "kill: the daemon did not go away"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn extension_fields_stay_inside_payload_data_and_error() {
    let sts = FakeSts::start(HOUR).await;
    let t = TestEnv::with_sts(&sts.uri());
    t.write_config(
        "prod",
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\nSession:\n  region_name: eu-west-1\n"),
    );
    t.role_config("noregion", "");
    t.start_daemon();

    // autoadd: a cold session is added on demand, and the data carries our extras.
    let r = t.request("credentials", json!({ "config": "prod", "autoadd": true }));
    assert_envelope(&r, "credentials+autoadd");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        keys(&r["data"]),
        sorted(&[
            "access_key",
            "secret_key",
            "token",
            "expiry_time",
            "lifetime_seconds",
            "source",
            "region"
        ])
    );
    assert!(
        (3590..=3600).contains(&r["data"]["lifetime_seconds"].as_i64().unwrap()),
        "{r}"
    );
    assert_eq!(r["data"]["source"], "config");
    assert_eq!(r["data"]["region"], "eu-west-1");
    assert!(is_expiry(r["data"]["expiry_time"].as_str().unwrap()));

    // The same session, asked the original's way: exactly the original's four keys.
    let plain = creds(&t, "prod");
    assert_envelope(&plain, "credentials");
    assert_eq!(
        keys(&plain["data"]),
        sorted(&["access_key", "secret_key", "token", "expiry_time"])
    );
    assert_eq!(plain["data"]["access_key"], r["data"]["access_key"]);

    // Errors carry kind (and hint) only for our client.
    let ours = t.request(
        "credentials",
        json!({ "config": "nosuch", "autoadd": true }),
    );
    assert_envelope(&ours, "ext error");
    assert_eq!(ours["error"]["code"], 400, "{ours}");
    assert_eq!(ours["error"]["kind"], "config", "{ours}");
    for k in keys(&ours["error"]) {
        assert!(["code", "message", "kind", "hint"].contains(&k), "{ours}");
    }
    let theirs = t.request("add", json!({ "config": "nosuch" }));
    assert_envelope(&theirs, "plain error");
    assert_eq!(
        keys(&theirs["error"]),
        sorted(&["code", "message"]),
        "{theirs}"
    );

    // status: daemon facts and per-session details, no nulls.
    let s = t.request("status", json!({}));
    assert_envelope(&s, "status");
    let d = &s["data"];
    assert!(
        d["version"].is_string() && d["uptime_seconds"].is_u64(),
        "{s}"
    );
    assert_eq!(d["pid"].as_u64().map(|p| p as u32), t.daemon_pid());
    let sessions = d["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{s}");
    let one = &sessions[0];
    assert_eq!(one["name"], "prod");
    assert_eq!(one["source"], "config");
    assert_eq!(one["refresh_count"], 1);
    assert!(is_expiry(one["expiry_time"].as_str().unwrap()), "{one}");
    assert!(is_expiry(one["last_refresh"].as_str().unwrap()), "{one}");
    assert!(one.get("last_error").is_none(), "no error yet: {one}");

    // refresh forces a new AssumeRole and serves its result.
    let f = t.request("refresh", json!({ "config": "prod", "ext": true }));
    assert_envelope(&f, "refresh");
    assert_eq!(f["data"]["access_key"], "ASIAFAKE000000000002", "{f}");
    assert_eq!(
        creds(&t, "prod")["data"]["access_key"],
        "ASIAFAKE000000000002"
    );
    assert_eq!(session_status(&t, "prod")["refresh_count"], 2);
    let missing = t.request("refresh", json!({ "config": "other", "ext": true }));
    assert_eq!(missing["error"]["code"], 404, "{missing}");

    // min_remaining_seconds is capped at half the lifetime: fresh credentials are
    // served as they are, not refreshed in a loop.
    let before = sts.calls("AssumeRole").await.len();
    for _ in 0..3 {
        let r = t.request(
            "credentials",
            json!({ "config": "prod", "min_remaining_seconds": 7200 }),
        );
        assert_eq!(r["data"]["access_key"], "ASIAFAKE000000000002", "{r}");
    }
    assert_eq!(sts.calls("AssumeRole").await.len(), before);
    // No region in the config: the key is left out, not null.
    let r = t.request(
        "credentials",
        json!({ "config": "noregion", "autoadd": true }),
    );
    assert_envelope(&r, "credentials without a region");
    assert!(r["data"].get("region").is_none(), "{r}");
    assert_eq!(keys(&r["data"]).len(), 6, "{r}");
    assert_eq!(
        t.request("remove", json!({ "config": "noregion" }))["ok"],
        true
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_is_least_to_most_recently_used_and_bounded_by_the_cache_size() {
    let sts = FakeSts::start(HOUR).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    t.set("ELHAZ_MAX_DAEMON_CACHE_SIZE", "2");
    for n in ["a", "b", "c"] {
        t.role_config(n, "");
    }
    t.start_daemon();
    let list = |t: &TestEnv| t.request("list", json!({}))["data"].clone();
    for n in ["a", "b"] {
        assert_eq!(t.request("add", json!({ "config": n }))["ok"], true);
    }
    assert_eq!(list(&t), json!(["a", "b"]));
    assert_eq!(creds(&t, "a")["ok"], true);
    assert_eq!(
        list(&t),
        json!(["b", "a"]),
        "credentials marks a session as used"
    );
    assert_eq!(t.request("add", json!({ "config": "c" }))["ok"], true);
    assert_eq!(
        list(&t),
        json!(["a", "c"]),
        "the least recently used session is dropped"
    );
    assert_eq!(creds(&t, "b")["error"]["code"], 404);
}

// ---------------------------------------------------------------------------
// Cache: single-flight, refresh ahead, faults

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_requests_for_a_cold_session_make_one_sts_call() {
    let sts = FakeSts::start(HOUR).await;
    // A slow STS, so that all fifty are waiting while the one call is in flight.
    sts.set_fault(Fault::Delay(Duration::from_millis(700)));
    let t = Arc::new(TestEnv::with_sts(&sts.uri()));
    t.role_config("prod", "");
    t.start_daemon();

    let barrier = Arc::new(Barrier::new(50));
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (t, barrier) = (t.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                t.request("credentials", json!({ "config": "prod", "autoadd": true }))
            })
        })
        .collect();
    let answers: Vec<Value> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    for a in &answers {
        assert_eq!(a["ok"], true, "{a}");
        assert_eq!(a["data"]["access_key"], "ASIAFAKE000000000001", "{a}");
    }
    assert_eq!(
        sts.calls("AssumeRole").await.len(),
        1,
        "single-flight: exactly one AssumeRole"
    );
    assert_eq!(t.request("list", json!({}))["data"], json!(["prod"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_refreshes_ahead_of_expiry_on_its_own() {
    // L = 40 s: advisory window A = 20 s (up to 22 with jitter), mandatory M = 10 s.
    let lifetime = 40;
    let mandatory = lifetime / 4;
    let (sts, t) = TestEnv::with_role(Duration::from_secs(lifetime as u64)).await;
    t.start_daemon();
    assert_eq!(t.request("add", json!({ "config": "prod" }))["ok"], true);
    let first = creds(&t, "prod");
    let first_expiry = expiry_unix(first["data"]["expiry_time"].as_str().unwrap());
    assert_eq!(
        sts.state.issued.load(std::sync::atomic::Ordering::SeqCst),
        1
    );

    // No client request from here: the AssumeRole count grows by itself, before expiry.
    let issued = || sts.state.issued.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(35), || issued() >= 2),
        "no background refresh within 35 s of 40 s credentials"
    );
    let at = unix_now();
    assert!(
        at < first_expiry - mandatory,
        "refreshed too late: {}s before expiry",
        first_expiry - at
    );
    assert!(
        at >= first_expiry - 24,
        "refreshed before the advisory window: {}s before expiry",
        first_expiry - at
    );

    // Until the next background refresh, and while it waits on a slow STS, every answer
    // comes from memory at once and has more than M left.
    sts.set_fault(Fault::Delay(Duration::from_secs(3)));
    let deadline = Instant::now() + Duration::from_secs(35);
    let mut seen = std::collections::BTreeSet::new();
    let mut third_at: Option<Instant> = None;
    while Instant::now() < deadline
        && third_at.is_none_or(|at| at.elapsed() < Duration::from_secs(4))
    {
        if third_at.is_none() && issued() >= 3 {
            third_at = Some(Instant::now());
        }
        let asked = Instant::now();
        let r = creds(&t, "prod");
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "a request waited {:?} for a background refresh",
            asked.elapsed()
        );
        assert_eq!(r["ok"], true, "{r}");
        let left = expiry_unix(r["data"]["expiry_time"].as_str().unwrap()) - unix_now();
        assert!(
            left > mandatory,
            "served credentials with {left}s left (mandatory window {mandatory}s)"
        );
        seen.insert(r["data"]["access_key"].as_str().unwrap().to_string());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(third_at.is_some(), "no second background refresh");
    assert!(seen.contains("ASIAFAKE000000000002"), "{seen:?}");
    assert!(
        !seen.contains("ASIAFAKE000000000001"),
        "old credentials served after the refresh"
    );
    assert!(
        wait_until(
            Duration::from_secs(5),
            || creds(&t, "prod")["data"]["access_key"] == "ASIAFAKE000000000003"
        ),
        "the second background refresh was not served"
    );
    assert_eq!(
        session_status(&t, "prod")["refresh_count"].as_u64(),
        Some(3)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sts_failures_serve_old_credentials_until_expiry_then_an_error() {
    // L = 40 s: background refresh at ~20 s left, mandatory window 10 s.
    let (sts, t) = TestEnv::with_role(Duration::from_secs(40)).await;
    t.start_daemon();
    assert_eq!(t.request("add", json!({ "config": "prod" }))["ok"], true);
    let first = creds(&t, "prod");
    let expiry = expiry_unix(first["data"]["expiry_time"].as_str().unwrap());
    sts.set_fault(Fault::Status(500, "InternalFailure"));

    // The background refresh fails: the error shows in status, old credentials served.
    assert!(
        wait_until(Duration::from_secs(30), || session_status(&t, "prod")
            .get("last_error")
            .is_some()),
        "no failed refresh recorded in status"
    );
    assert!(
        sts.calls("AssumeRole").await.len() > 1,
        "the daemon did try STS again"
    );
    let still_valid = |what: &str| {
        assert!(
            unix_now() < expiry - 1,
            "test too slow: credentials expired before {what}"
        );
    };
    still_valid("the first check");
    let r = creds(&t, "prod");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["data"]["access_key"], "ASIAFAKE000000000001");
    let status = session_status(&t, "prod");
    assert!(
        status["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{status}"
    );
    let out = t.cmd().args(["daemon", "list"]).output().unwrap();
    assert!(
        stdout(&out).contains("last refresh failed"),
        "{}",
        stdout(&out)
    );

    // A forced refresh reports the failure; others still get the old credentials.
    let f = t.request("refresh", json!({ "config": "prod", "ext": true }));
    assert_eq!(
        f["ok"], false,
        "a failed forced refresh must not claim success: {f}"
    );
    assert_eq!(f["error"]["code"], 500, "{f}");
    let out = t
        .cmd()
        .args(["daemon", "refresh", "prod"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "`daemon refresh` succeeded while STS fails"
    );

    // Within the 30 s back-off, requests do not hammer STS.
    still_valid("the back-off check");
    let calls = sts.calls("AssumeRole").await.len();
    for _ in 0..10 {
        let r = creds(&t, "prod");
        assert_eq!(r["data"]["access_key"], "ASIAFAKE000000000001", "{r}");
    }
    assert_eq!(
        sts.calls("AssumeRole").await.len(),
        calls,
        "STS called during the back-off"
    );

    // After expiry: an error, never the dead credentials.
    while unix_now() <= expiry {
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = creds(&t, "prod");
    assert_envelope(&r, "expired");
    assert_eq!(r["ok"], false, "expired credentials served: {r}");
    assert_eq!(r["error"]["code"], 500, "{r}");
    let out = t.cmd().args(["export", "prod"]).output().unwrap();
    assert!(!out.status.success());
    assert!(!stdout(&out).contains("ASIAFAKE"), "{}", stdout(&out));

    // STS back: a forced refresh does not wait for the back-off, and fixes it for all.
    sts.set_fault(Fault::None);
    let f = t.request("refresh", json!({ "config": "prod" }));
    assert_eq!(f["ok"], true, "{f}");
    let r = creds(&t, "prod");
    assert_eq!(r["data"]["access_key"], "ASIAFAKE000000000002", "{r}");
    assert!(session_status(&t, "prod").get("last_error").is_none());
}

// ---------------------------------------------------------------------------
// Security

#[ignore = "needs root: acts as other uids; .ci/check runs it as root"]
#[tokio::test(flavor = "multi_thread")]
async fn connections_from_another_user_are_refused_and_logged() {
    needs_root();
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a nobody user");
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let (_sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();

    // Let nobody reach the socket: the directories traversable and, for this test only,
    // a 0666 socket, so that SO_PEERCRED is all that stands in the way.
    let sock_dir = t.socket().parent().unwrap().to_path_buf();
    for d in [t.dir.path(), &t.home, &t.home.join(".elhaz"), &sock_dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(t.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(
        t.request("list", json!({}))["ok"],
        true,
        "its own user is served"
    );

    let mut cmd = std::process::Command::new(bin());
    cmd.env_clear()
        .env("HOME", "/nonexistent")
        .env("PATH", "/usr/bin:/bin")
        .arg("--socket-path")
        .arg(t.socket())
        .args(["daemon", "status", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    as_user(&mut cmd, uid, gid);
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (status, out, err) = output_within(child, Duration::from_secs(20));
    let status = status.expect("the refused client hung");
    assert_eq!(status.code(), Some(4), "stdout {out:?} stderr {err:?}");
    assert!(
        err.contains("closed the connection without answering"),
        "{err}"
    );
    assert!(
        !out.contains("pid"),
        "the daemon answered another user: {out}"
    );

    // The log names the refused peer.
    let logged = wait_until(Duration::from_secs(5), || {
        log_text(&t).lines().any(|l| {
            l.contains("refused")
                && l.contains(&format!("peer_uid={uid}"))
                && l.contains(&format!("peer_pid={pid}"))
        })
    });
    assert!(
        logged,
        "no refusal with uid {uid} and pid {pid} in the log:\n{}",
        log_text(&t)
    );
    assert_eq!(
        t.request("list", json!({}))["ok"],
        true,
        "the daemon still serves its user"
    );
}

#[test]
fn socket_is_0600_and_its_directory_0700_even_with_umask_0() {
    let t = TestEnv::new();
    let mut cmd = t.std_cmd();
    cmd.args(["daemon", "start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    assert!(cmd.status().unwrap().success());
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    let sock = std::fs::symlink_metadata(t.socket()).unwrap();
    assert!(sock.file_type().is_socket());
    assert_eq!(mode(&t.socket()), 0o600, "socket mode");
    assert_eq!(
        mode(t.socket().parent().unwrap()),
        0o700,
        "socket directory mode"
    );
    assert_eq!(mode(&t.log()), 0o600, "log mode");
    assert_eq!(mode(t.log().parent().unwrap()), 0o700, "log directory mode");
}

#[test]
fn malformed_and_oversized_lines_get_400_and_the_daemon_keeps_answering() {
    let t = TestEnv::new();
    t.start_daemon();
    let socket = t.socket();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let threads: Vec<_> = (0..4u64)
        .map(|n| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut rng = seed.wrapping_mul(n * 2 + 1) | 1;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let valid =
                    br#"{"version": 1, "request_id": "r", "action": "list", "payload": {}}"#;
                for i in 0..2500 {
                    let len = (next() % 300) as usize;
                    let line: Vec<u8> = match i % 4 {
                        // Random bytes (no newline).
                        0 => (0..len)
                            .map(|_| (next() % 255) as u8)
                            .map(|b| if b == b'\n' { 0 } else { b })
                            .collect(),
                        // Random printable text, braces and quotes included.
                        1 => (0..len).map(|_| b' ' + (next() % 95) as u8).collect(),
                        // A valid request cut short.
                        2 => valid[..(next() as usize) % valid.len()].to_vec(),
                        // Well-formed JSON of the wrong shape.
                        _ => {
                            let bad = [
                                json!({"request_id": 5, "action": "list"}),
                                json!({"action": "list"}),
                                json!({"request_id": "r", "action": "list", "payload": []}),
                                json!({"request_id": "r", "action": "list", "version": 2}),
                                json!([1, 2, 3]),
                                json!(null),
                                json!({"request_id": "r", "action": format!("x{}", next())}),
                            ];
                            bad[(next() as usize) % bad.len()].to_string().into_bytes()
                        }
                    };
                    let answer = send_bytes(&socket, &line).unwrap_or_else(|| {
                        panic!("no answer to {:?}", String::from_utf8_lossy(&line))
                    });
                    let v: Value =
                        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
                    assert_envelope(&v, "malformed");
                    assert_eq!(v["ok"], false, "{answer}");
                    assert_eq!(
                        v["error"]["code"],
                        400,
                        "{:?} -> {answer}",
                        String::from_utf8_lossy(&line)
                    );
                }
            })
        })
        .collect();
    for h in threads {
        h.join().unwrap();
    }

    // Oversized lines: a 400 with a fresh UUID, then the connection closes; never a
    // hang or a crash.
    for size in [MAX_LINE + 1, MAX_LINE + 2, 100_000, 300_000, 2_000_000] {
        let started = Instant::now();
        let answer = send_bytes(&socket, &vec![b'{'; size])
            .unwrap_or_else(|| panic!("{size} bytes: closed without a 400"));
        let v: Value = serde_json::from_str(&answer).unwrap();
        assert_envelope(&v, "oversized");
        assert_eq!(v["error"]["code"], 400, "{size} bytes: {answer}");
        assert!(is_uuid(v["request_id"].as_str().unwrap()));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{size} bytes: too slow"
        );
    }
    // A request of exactly 64 KiB is still a request.
    let head = format!(
        r#"{{"version": 1, "request_id": "{}", "action": "list""#,
        uuid()
    );
    let mut exact = head.into_bytes();
    exact.resize(MAX_LINE - 1, b' ');
    exact.push(b'}');
    let answer = send_bytes(&socket, &exact).expect("an answer to a 64 KiB request");
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap()["ok"],
        true,
        "{answer}"
    );

    let r = t.request("list", json!({}));
    assert_eq!(r["ok"], true, "the daemon stopped answering: {r}");
    assert_eq!(r["data"], json!([]));
}

#[test]
fn a_stalled_client_is_dropped_and_does_not_block_others() {
    let t = TestEnv::new();
    t.start_daemon();
    let stalled = UnixStream::connect(t.socket()).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let started = Instant::now();
    assert_eq!(t.request("list", json!({}))["ok"], true);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a stalled client blocked another"
    );
    let mut buf = String::new();
    let n = BufReader::new(&stalled).read_line(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "a stalled client got an answer: {buf:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(9),
        "closed after {waited:?}, expected the 5 s read timeout"
    );
}

// ---------------------------------------------------------------------------
// Lifecycle

#[tokio::test(flavor = "multi_thread")]
async fn after_kill_9_the_next_command_starts_a_new_daemon_and_cleans_the_socket() {
    let (sts, t) = TestEnv::with_role(HOUR).await;
    t.start_daemon();
    let old = t.daemon_pid().expect("a daemon pid");
    signal(old, nix::sys::signal::Signal::SIGKILL);
    assert!(wait_until(Duration::from_secs(5), || !alive(old)));
    // The last thread of a killed process may outlive the leader for a moment.
    assert!(
        wait_until(Duration::from_secs(5), || UnixStream::connect(t.socket())
            .is_err()),
        "the killed daemon still accepts connections"
    );
    assert!(t.socket().exists(), "kill -9 leaves the socket behind");
    let out = t.cmd().args(["daemon", "status"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a stale socket is not a running daemon"
    );

    let out = t.cmd().args(["export", "prod"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["access_key"], "ASIAFAKE000000000001");
    let err = stderr(&out);
    assert_eq!(
        err.lines().count(),
        1,
        "exactly one line on stderr: {err:?}"
    );
    assert!(err.contains("started the daemon"), "{err}");

    let new = t.daemon_pid().expect("a new daemon");
    assert_ne!(new, old);
    assert!(alive(new));
    assert!(
        log_text(&t).contains("removed stale socket"),
        "{}",
        log_text(&t)
    );
    assert_eq!(daemon_processes(&t.socket()), vec![new]);

    // Now it runs: silence.
    let out = t.cmd().args(["export", "prod"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(stderr(&out), "");
    assert_eq!(
        sts.calls("AssumeRole").await.len(),
        1,
        "the second export is served from the cache"
    );
}

#[test]
fn two_concurrent_starts_leave_exactly_one_daemon() {
    let t = TestEnv::new();
    for round in 0..3 {
        let spawn = || {
            t.std_cmd()
                .args(["daemon", "start"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for c in [a, b] {
            let (status, _, err) = output_within(c, Duration::from_secs(15));
            assert!(
                status.expect("start hung").success(),
                "round {round}: {err}"
            );
        }
        let pid = t.daemon_pid().expect("a daemon");
        assert!(
            wait_until(Duration::from_secs(3), || daemon_processes(&t.socket())
                == vec![pid]),
            "round {round}: daemons {:?}, status says {pid}",
            daemon_processes(&t.socket())
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(daemon_processes(&t.socket()), vec![pid], "round {round}");
        // A third start is a notice.
        let out = t.cmd().args(["daemon", "start"]).output().unwrap();
        assert!(out.status.success());
        assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
        assert_eq!(t.daemon_pid(), Some(pid));

        t.cmd().args(["daemon", "kill"]).assert().success();
        assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_list_and_logs_commands() {
    let (_sts, t) = TestEnv::with_role(Duration::from_secs(45 * 60)).await;
    t.role_config("a", "");

    // Not running: exit 1.
    let out = t.cmd().args(["daemon", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("not running"), "{}", stdout(&out));
    let out = t
        .cmd()
        .args(["daemon", "status", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], false);

    // Running: exit 0, and --json gives the status data.
    t.start_daemon();
    let out = t
        .cmd()
        .args(["daemon", "status", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_no_null(&v, "status --json");
    assert_eq!(v["running"], true, "{v}");
    let pid = v["pid"].as_u64().unwrap() as u32;
    assert_eq!(daemon_processes(&t.socket()), vec![pid]);
    assert_eq!(v["sessions"], json!([]));
    let out = t.cmd().args(["daemon", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).starts_with(&format!("running: pid {pid}")),
        "{}",
        stdout(&out)
    );

    // list: NAME  Nm left, least to most recently used.
    let out = t.cmd().args(["daemon", "list"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("no sessions"), "{}", stderr(&out));
    t.cmd().args(["daemon", "add", "prod"]).assert().success();
    t.cmd().args(["daemon", "add", "a"]).assert().success();
    let out = t.cmd().args(["daemon", "list"]).output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, name) in lines.iter().zip(["prod  ", "a     "]) {
        let rest = line
            .strip_prefix(name)
            .unwrap_or_else(|| panic!("{line:?}"));
        assert!(rest == "44m left" || rest == "43m left", "{line:?}");
    }
    let out = t.cmd().args(["daemon", "list", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_no_null(&v, "list --json");
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prod", "a"]);
    let left = v[0]["remaining_seconds"].as_i64().unwrap();
    assert!((2580..2700).contains(&left), "{v}");

    // remove, then remove again: not in the daemon.
    t.cmd().args(["daemon", "remove", "a"]).assert().success();
    let out = t.cmd().args(["daemon", "remove", "a"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not in the daemon"),
        "{}",
        stderr(&out)
    );
    let out = t.cmd().args(["daemon", "list"]).output().unwrap();
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));

    t.cmd().args(["daemon", "stop"]).assert().success();
    assert!(!t.socket().exists());
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
    let out = t.cmd().args(["daemon", "stop"]).output().unwrap();
    assert!(out.status.success(), "stop without a daemon is a notice");
    assert!(
        stderr(&out).contains("no daemon is running"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        t.cmd()
            .args(["daemon", "status"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(1)
    );

    // logs --head / --tail, against the file.
    let file = log_text(&t);
    let all: Vec<&str> = file.lines().collect();
    assert!(all.len() >= 5, "{file}");
    assert!(
        !file.contains("fakesecret") && !file.contains("faketoken"),
        "a secret in the log"
    );
    let out = t
        .cmd()
        .args(["daemon", "logs", "--head", "2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), all[..2]);
    let out = t
        .cmd()
        .args(["daemon", "logs", "--tail", "3"])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        all[all.len() - 3..]
    );
    let out = t.cmd().args(["daemon", "logs"]).output().unwrap();
    assert_eq!(stdout(&out).lines().count(), all.len().min(50));
}

/// Appends `text` to the file at `path`, as the daemon's logger does.
fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// `daemon logs -f`, as `tail -F`: the last lines, then each new one as it is written
/// (a line written in two pieces once whole), across a rotation, until Ctrl-C (130).
#[test]
fn daemon_logs_follow_prints_new_lines_across_a_rotation_until_ctrl_c() {
    let t = TestEnv::new();
    let dir = t.home.join("logs");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("daemon.log");
    let mut cmd = t.std_cmd();
    cmd.arg("--logging-path")
        .arg(&log)
        .args(["daemon", "logs", "-f", "--tail", "1"]);
    let mut p = Pty::spawn(cmd, "elhaz daemon logs -f", 120, Duration::from_secs(20));
    // Not there yet: it waits for it.
    p.expect("elhaz: waiting for ~/logs/daemon.log");
    append(&log, "old 1\nold 2\n");
    p.expect("old 2");
    assert!(!p.transcript.contains("old 1"), "{}", p.transcript);
    append(&log, "new 3\n");
    p.expect("new 3");
    append(&log, "half");
    p.settle();
    assert!(
        !p.transcript.contains("half"),
        "a line is printed once whole"
    );
    append(&log, " a line \x1b[2J\n");
    p.expect("half a line \\x1b[2J");
    // Rotated: the old file's last line, then the new file from its start.
    append(&log, "last of the old file\n");
    std::fs::rename(&log, dir.join("daemon.log.1")).unwrap();
    append(&log, "first of the new file\n");
    p.expect("last of the old file");
    p.expect("first of the new file");
    append(&log, "and on\n");
    p.expect("and on");
    p.settle();
    p.send("\x03");
    assert_eq!(p.wait_exit(), 130, "{}", p.transcript);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_and_removes_the_socket() {
    let sts = FakeSts::start(HOUR).await;
    sts.set_fault(Fault::Delay(Duration::from_millis(1500)));
    let t = Arc::new(TestEnv::with_sts(&sts.uri()));
    t.role_config("prod", "");
    t.start_daemon();
    let pid = t.daemon_pid().unwrap();

    let in_flight = {
        let t = t.clone();
        std::thread::spawn(move || {
            t.request("credentials", json!({ "config": "prod", "autoadd": true }))
        })
    };
    assert!(
        wait_until(Duration::from_secs(5), || log_text(&t)
            .contains("refreshing")),
        "the request never reached STS"
    );
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    let answer = in_flight.join().unwrap();
    assert_eq!(
        answer["ok"], true,
        "the in-flight request was dropped: {answer}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "the daemon ignored SIGTERM"
    );
    assert!(!t.socket().exists(), "the socket was left behind");
    let log = log_text(&t);
    assert!(
        log.contains("SIGTERM") && log.contains("daemon stopped"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auto_started_daemon_does_not_inherit_session_credentials() {
    let (sts, mut t) = TestEnv::with_role(HOUR).await;
    // The real source credentials are in the shared credentials file...
    std::fs::write(
        t.home.join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIAFILESOURCE000000\naws_secret_access_key = file-secret\n",
    )
    .unwrap();
    // ...and the environment is that of an elhaz shell: injected, not to be used.
    t.set("ELHAZ_SESSION", "outer");
    t.set("ELHAZ_EXPIRES_AT", &(unix_now() + 3000).to_string());
    t.set("ELHAZ_REFRESH_AT", &(unix_now() + 2400).to_string());
    t.set("AWS_ACCESS_KEY_ID", "ASIAINJECTED00000000");
    t.set("AWS_SECRET_ACCESS_KEY", "injected-secret");
    t.set("AWS_SESSION_TOKEN", "injected-token");

    let out = t.cmd().args(["export", "prod"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("started the daemon"),
        "{}",
        stderr(&out)
    );
    let pid = t.daemon_pid().expect("an auto-started daemon");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter_map(|kv| kv.split(|b| *b == b'=').next())
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "HOME"), "{names:?}");
    for v in [
        "ELHAZ_SESSION",
        "ELHAZ_EXPIRES_AT",
        "ELHAZ_REFRESH_AT",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        assert!(!names.iter().any(|n| n == v), "the daemon inherited {v}");
    }
    // And AssumeRole was signed with the real source key.
    let requests = sts.server.received_requests().await.unwrap();
    let auth: Vec<String> = requests
        .iter()
        .filter_map(|r| r.headers.get("authorization"))
        .map(|h| h.to_str().unwrap_or_default().to_string())
        .collect();
    assert!(!auth.is_empty());
    assert!(
        auth.iter()
            .all(|a| a.contains("Credential=AKIAFILESOURCE000000/")),
        "{auth:?}"
    );
}

/// The other direction of compatibility: our client against a daemon that speaks only
/// the original's protocol (no extension fields in answers, 404 for a missing session).
#[test]
fn our_client_works_against_an_original_style_daemon() {
    let t = TestEnv::new();
    std::fs::create_dir_all(t.socket().parent().unwrap()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(t.socket()).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let server = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut added = false;
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut line = String::new();
                if BufReader::new(&stream).read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let req: Value = serde_json::from_str(&line).unwrap();
                seen.lock().unwrap().push(req.clone());
                let id = req["request_id"].clone();
                let answer = match (req["action"].as_str().unwrap_or(""), added) {
                    ("add", _) => {
                        added = true;
                        json!({"version": 1, "request_id": id, "ok": true, "data": {"config": "prod"}})
                    }
                    ("credentials", true) => {
                        json!({"version": 1, "request_id": id, "ok": true, "data": {
                        "access_key": "ASIAORIGINAL", "secret_key": "s", "token": "t",
                        "expiry_time": "2099-01-01T00:00:00+00:00"}})
                    }
                    ("credentials", false) => json!({"version": 1, "request_id": id, "ok": false,
                        "error": {"code": 404, "message": "not found"}}),
                    ("kill", _) => {
                        let _ = stream
                            .write_all(b"{\"version\": 1, \"request_id\": \"x\", \"ok\": true}\n");
                        return;
                    }
                    _ => json!({"version": 1, "request_id": id, "ok": false,
                        "error": {"code": 400, "message": "unknown action"}}),
                };
                let _ = stream.write_all(format!("{answer}\n").as_bytes());
            }
        })
    };
    let out = t.cmd().args(["export", "prod"]).output().unwrap();
    let seen = seen.lock().unwrap().clone();
    let _ = send_bytes(
        &t.socket(),
        br#"{"version": 1, "request_id": "x", "action": "kill"}"#,
    );
    server.join().unwrap();
    let _ = std::fs::remove_file(t.socket());
    for req in &seen {
        assert_eq!(
            keys(req),
            sorted(&["version", "request_id", "action", "payload"]),
            "only the original's top-level fields: {req}"
        );
    }
    assert!(out.status.success(), "{}; requests {seen:?}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["access_key"], "ASIAORIGINAL");
    assert_eq!(v["expiry_time"], "2099-01-01T00:00:00+00:00");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_reach_the_log_even_at_trace_level() {
    let sts = FakeSts::start(HOUR).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    t.set("ELHAZ_LOG", "trace");
    t.role_config("prod", "");
    t.cmd().args(["-vv", "daemon", "start"]).assert().success();
    let r = t.request("credentials", json!({ "config": "prod", "autoadd": true }));
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(t.request("whoami", json!({ "config": "prod" }))["ok"], true);
    assert_eq!(
        t.request("refresh", json!({ "config": "prod" }))["ok"],
        true
    );
    t.cmd().args(["daemon", "kill"]).assert().success();
    let log = log_text(&t);
    assert!(log.lines().count() > 5, "{log}");
    for secret in ["fakesecret", "faketoken", "source-secret-key"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mfa_sessions_take_the_code_from_the_client_or_from_mfa_command() {
    let sts = FakeSts::start(HOUR).await;
    let t = TestEnv::with_sts(&sts.uri());
    let serial = "arn:aws:iam::123456789012:mfa/me";
    t.role_config("mfa", &format!("  SerialNumber: {serial}\n"));
    t.write_config(
        "mfacmd",
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\n  SerialNumber: {serial}\nMFA:\n  command: echo 654321\n"),
    );
    t.start_daemon();

    // The daemon cannot prompt: an error that our client recognises, and no STS call.
    let r = t.request("credentials", json!({ "config": "mfa", "autoadd": true }));
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["kind"], "mfa_required", "{r}");
    assert_eq!(sts.calls("AssumeRole").await.len(), 0);
    // Without a terminal, the client says so instead of hanging.
    let mut cmd = t.std_cmd();
    cmd.args(["export", "mfa"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; it drops the controlling terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let (status, out, err) = output_within(cmd.spawn().unwrap(), Duration::from_secs(20));
    assert!(!status.expect("export hung").success(), "{out}");
    assert!(err.contains("MFA code"), "{err}");

    // `daemon add` sends the code typed in the client inside the add payload.
    let r = t.request(
        "add",
        json!({ "config": "mfa", "token_code": "271828", "ext": true }),
    );
    assert_eq!(r["ok"], true, "{r}");
    let calls = sts.calls("AssumeRole").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].get("TokenCode").map(String::as_str),
        Some("271828")
    );
    assert_eq!(
        calls[0].get("SerialNumber").map(String::as_str),
        Some(serial)
    );
    assert_eq!(creds(&t, "mfa")["ok"], true);
    assert!(
        !log_untimed(&t).contains("271828"),
        "the MFA code reached the log:\n{}",
        log_text(&t)
    );

    // With MFA.command, the daemon runs it itself.
    let r = t.request(
        "credentials",
        json!({ "config": "mfacmd", "autoadd": true }),
    );
    assert_eq!(r["ok"], true, "{r}");
    let calls = sts.calls("AssumeRole").await;
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[1].get("TokenCode").map(String::as_str),
        Some("654321")
    );
}

/// Stops a daemon on a non-default socket when the test ends, even on failure.
struct KillOnDrop<'a>(&'a TestEnv, std::path::PathBuf);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .std_cmd()
            .arg("--socket-path")
            .arg(&self.1)
            .args(["daemon", "kill"])
            .stderr(Stdio::null())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_start_forwards_the_global_flags() {
    let sts = FakeSts::start(HOUR).await;
    let t = TestEnv::with_sts(&sts.uri());
    t.role_config("a", "");
    t.role_config("b", "");
    let socket = t.dir.path().join("run/elhaz.sock");
    let log = t.dir.path().join("log/elhaz.log");
    let _guard = KillOnDrop(&t, socket.clone());
    let flags = |name: &str| {
        let mut c = t.cmd();
        c.arg("--socket-path")
            .arg(&socket)
            .arg("--logging-path")
            .arg(&log)
            .args(["--max-daemon-cache-size", "1", "export", name]);
        c
    };
    let out = flags("a").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("started the daemon"),
        "{}",
        stderr(&out)
    );
    assert!(flags("b").output().unwrap().status.success());
    assert!(
        !t.socket().exists(),
        "the daemon went to the default socket"
    );
    assert!(log.exists(), "the daemon did not log to --logging-path");
    // The cache size reached the daemon: one session left.
    let list: Value = serde_json::from_str(&raw_request(
        &socket,
        &json!({"request_id": uuid(), "action": "list"}).to_string(),
    ))
    .unwrap();
    assert_eq!(list["data"], json!(["b"]), "{list}");
}

#[test]
fn daemon_run_stays_in_the_foreground_and_stops_on_sigint() {
    let t = TestEnv::new();
    let mut child = t
        .std_cmd()
        .args(["daemon", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = wait_until(Duration::from_secs(5), || {
        UnixStream::connect(t.socket()).is_ok()
    });
    if !up {
        let _ = child.kill();
    }
    assert!(up, "daemon run did not open its socket");
    assert_eq!(t.daemon_pid(), Some(child.id()), "daemon run forked away");
    signal(child.id(), nix::sys::signal::Signal::SIGINT);
    let (status, _, _) = output_within(child, Duration::from_secs(10));
    assert_eq!(status.expect("SIGINT ignored").code(), Some(0));
    assert!(!t.socket().exists(), "the socket was left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_then_start_works_while_a_request_is_in_flight() {
    let sts = FakeSts::start(HOUR).await;
    sts.set_fault(Fault::Delay(Duration::from_secs(3)));
    let t = Arc::new(TestEnv::with_sts(&sts.uri()));
    t.role_config("prod", "");
    t.start_daemon();
    let old = t.daemon_pid().unwrap();
    let in_flight = {
        let t = t.clone();
        std::thread::spawn(move || {
            t.request("credentials", json!({ "config": "prod", "autoadd": true }))
        })
    };
    assert!(wait_until(Duration::from_secs(5), || log_text(&t)
        .contains("refreshing")));
    t.cmd().args(["daemon", "stop"]).assert().success();
    let out = t.cmd().args(["daemon", "start"]).output().unwrap();
    assert!(
        out.status.success(),
        "start right after stop: {}",
        stderr(&out)
    );
    assert_eq!(in_flight.join().unwrap()["ok"], true);
    let new = t.daemon_pid().expect("a new daemon");
    assert_ne!(new, old);
    assert!(!alive(old));
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_inside_a_window_refresh_first_and_single_flight() {
    // Short credentials and no early background refresh: only requests refresh here.
    let sts = FakeSts::start(Duration::from_secs(12)).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    t.set("ELHAZ_ADVISORY_WINDOW", "1");
    t.role_config("prod", "");
    let t = Arc::new(t);
    t.start_daemon();
    let r = t.request("credentials", json!({ "config": "prod", "autoadd": true }));
    let lifetime = r["data"]["lifetime_seconds"].as_i64().unwrap();
    let (mandatory, cap) = (lifetime / 4, lifetime / 2);
    let expiry = expiry_unix(r["data"]["expiry_time"].as_str().unwrap());
    let key = |r: &Value| {
        r["data"]["access_key"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // A large min_remaining_seconds on fresh credentials: capped at L/2, no refresh.
    let r = t.request(
        "credentials",
        json!({ "config": "prod", "min_remaining_seconds": 3600 }),
    );
    assert_eq!(key(&r), "ASIAFAKE000000000001", "{r}");

    // Less than L/2 left, more than L/4: plain requests are served as they are, a
    // request asking for more refreshes first.
    while expiry - unix_now() > cap - 1 {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(expiry - unix_now() > mandatory + 1, "test too slow");
    assert_eq!(key(&creds(&t, "prod")), "ASIAFAKE000000000001");
    let r = t.request(
        "credentials",
        json!({ "config": "prod", "min_remaining_seconds": 3600 }),
    );
    assert_eq!(key(&r), "ASIAFAKE000000000002", "{r}");
    let expiry = expiry_unix(r["data"]["expiry_time"].as_str().unwrap());
    assert_eq!(sts.calls("AssumeRole").await.len(), 2);

    // Inside the mandatory window: twenty requests at once, one refresh, all served
    // the new credentials.
    while expiry - unix_now() > mandatory {
        std::thread::sleep(Duration::from_millis(50));
    }
    let barrier = Arc::new(Barrier::new(20));
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let (t, barrier) = (t.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                creds(&t, "prod")
            })
        })
        .collect();
    for h in threads {
        let r = h.join().unwrap();
        assert_eq!(key(&r), "ASIAFAKE000000000003", "{r}");
        let left = expiry_unix(r["data"]["expiry_time"].as_str().unwrap()) - unix_now();
        assert!(left > mandatory, "served with {left}s left");
    }
    assert_eq!(
        sts.calls("AssumeRole").await.len(),
        3,
        "single-flight in the mandatory window"
    );
}

/// A client whose config directory differs from the running daemon's is told so
/// (exit 2, both directories named), instead of getting credentials from configs it
/// did not mean.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_with_another_config_dir_is_told_not_served() {
    let (sts, t) = TestEnv::with_role(Duration::from_secs(3600)).await;
    t.start_daemon();
    let other = t.dir.path().join("other-configs");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("prod.yaml"),
        "AssumeRole:\n  RoleArn: arn:aws:iam::999999999999:role/Other\n",
    )
    .unwrap();
    let out = t
        .cmd()
        .arg("--config-dir")
        .arg(&other)
        .args(["export", "prod"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.starts_with("elhaz: the daemon on ~/.elhaz/sock/daemon.sock reads configs from ~/.elhaz/configs, not "),
        "{err}"
    );
    assert!(err.contains("other-configs"), "{err}");
    assert!(
        sts.calls("AssumeRole").await.is_empty(),
        "nothing was assumed"
    );
    // The daemon's own directory, given explicitly (even spelled differently), is served.
    let same = t.home.join(".elhaz/./configs");
    t.cmd()
        .arg("--config-dir")
        .arg(&same)
        .args(["export", "prod"])
        .assert()
        .success();
}

/// The original elhaz (0.5.6), installed by .ci/deps in its own venv.
fn original_elhaz() -> std::path::PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv-original/bin/elhaz");
    assert!(
        p.is_file(),
        "{} is missing: run .ci/deps (it installs the original elhaz 0.5.6 there)",
        p.display()
    );
    p
}

/// The original client's `daemon stop` sends `kill`, then connects again and again
/// until nothing answers. A connection it makes while the daemon closes must not be
/// reset (its client does not catch that): 50 stops in a row of a fresh daemon, all
/// clean.
#[test]
fn the_original_clients_daemon_stop_succeeds_every_time() {
    let t = TestEnv::new();
    let original = original_elhaz();
    let mut failures = Vec::new();
    for round in 0..50 {
        t.start_daemon();
        let pid = t.daemon_pid().expect("the daemon runs");
        let mut stop = t.program(&original);
        stop.arg("--socket-path")
            .arg(t.socket())
            .arg("--config-dir")
            .arg(t.config_dir())
            .args(["daemon", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (status, out, err) = output_within(stop.spawn().unwrap(), Duration::from_secs(30));
        if !status.is_some_and(|s| s.success()) {
            failures.push(format!("round {round}: {status:?}\n{out}{err}"));
        }
        assert!(
            wait_until(Duration::from_secs(15), || !alive(pid)),
            "round {round}: the daemon {pid} is still running"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of 50 stops failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A caller's AWS_PROFILE holding an escape sequence (any process of the user can put
/// one in the daemon) is shown escaped by `daemon list`, never obeyed.
#[tokio::test(flavor = "multi_thread")]
async fn daemon_list_shows_what_callers_sent_escaped() {
    let sts = FakeSts::start(HOUR).await;
    let t = TestEnv::with_sts(&sts.uri());
    t.role_config("prod", "");
    let evil = "esc\u{1b}]0;pwned\u{7}\u{1b}[31mred";
    std::fs::write(
        t.home.join(".aws/credentials"),
        format!(
            "[{evil}]\naws_access_key_id = AKIAESC0000000000014\naws_secret_access_key = e\n\
             [plain]\naws_access_key_id = AKIAPLAIN00000000015\naws_secret_access_key = p\n"
        ),
    )
    .unwrap();
    t.start_daemon();
    for profile in [evil, "plain"] {
        let out = t
            .cmd()
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_PROFILE", profile)
            .args(["export", "prod"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = t.cmd().args(["daemon", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        list.contains("AWS_PROFILE esc\\x1b]0;pwned\\x07\\x1b[31mred"),
        "{list:?}"
    );
    assert!(
        !list.contains('\u{1b}') && !list.contains('\u{7}'),
        "{list:?}"
    );
    t.stop_daemon();
}
