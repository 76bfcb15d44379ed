//! `elhaz login NAME`, the AWS console signed in as the session's role.
//! A wiremock server stands in for the federation endpoint (getSigninToken); the
//! session's credentials come from the fake STS, through the daemon or in-process.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HOUR: Duration = Duration::from_secs(3600);

/// A SigninToken that breaks any URL it is pasted into unencoded: `+` (a space to a
/// form decoder), `/`, `=`, `&` (a new parameter), `%20` (double decoding) and `?`.
/// The SIGNINMARK prefix survives percent-encoding, for the leak checks.
const TOKEN: &str = "SIGNINMARK+ab/cd==&Action=evil%20x?y";

/// What the fake STS issues first (see StsResponder).
const KEY_ID: &str = "ASIAFAKE000000000001";
const SECRET: &str = "fakesecret1xyz";
const SESSION_TOKEN: &str = "faketoken1xyz";

#[track_caller]
fn exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A federation endpoint answering getSigninToken with `answer`.
async fn federation(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/federation"))
        .and(query_param("Action", "getSigninToken"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn endpoint(fed: &MockServer) -> String {
    format!("{}/federation", fed.uri())
}

/// The query parameters of every getSigninToken call, in order.
async fn signin_calls(fed: &MockServer) -> Vec<Vec<(String, String)>> {
    fed.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            assert_eq!(r.method.as_str(), "GET", "getSigninToken is a GET");
            r.url.query_pairs().into_owned().collect()
        })
        .collect()
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    let mut found = q.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let v = found.next();
    assert!(found.next().is_none(), "{k} appears twice in {q:?}");
    v
}

/// A user with config `prod` (region eu-west-1, while the environment says
/// us-east-1) and the federation endpoint pointed at `fed`.
fn user(sts: &FakeSts, fed: &MockServer) -> TestEnv {
    let mut t = TestEnv::with_sts(&sts.uri());
    t.role_config("prod", "Session:\n  region_name: eu-west-1\n");
    t.set("ELHAZ_FEDERATION_ENDPOINT", &endpoint(fed));
    t
}

fn login(t: &TestEnv, args: &[&str]) -> Output {
    t.std_cmd()
        .arg("login")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Splits a printed login URL into its parameters, strictly: the URL starts with the
/// federation endpoint, and every key and value is percent-encoded (only unreserved
/// characters and %XX escapes), so no browser or server can read it two ways.
#[track_caller]
fn login_params(url: &str, endpoint: &str) -> Vec<(String, String)> {
    let query = url
        .strip_prefix(&format!("{endpoint}?"))
        .unwrap_or_else(|| panic!("{url:?} does not start with {endpoint}?"));
    query
        .split('&')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("{kv:?} in {url:?} is not key=value"));
            (strict_decode(k), strict_decode(v))
        })
        .collect()
}

#[track_caller]
fn strict_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .unwrap_or_else(|| panic!("bad escape in {s:?}"));
                out.push(
                    u8::from_str_radix(hex, 16)
                        .unwrap_or_else(|_| panic!("bad escape %{hex} in {s:?}")),
                );
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || b"-._~".contains(&c) => {
                out.push(c);
                i += 1;
            }
            c => panic!("{:?} is not percent-encoded in {s:?}", c as char),
        }
    }
    String::from_utf8(out).expect("UTF-8 after decoding")
}

/// The single line of a `--stdout` run.
#[track_caller]
fn one_line(out: &Output) -> String {
    ok(out);
    let s = text(&out.stdout);
    assert!(s.ends_with('\n'), "stdout {s:?} is not a terminated line");
    assert_eq!(
        s.lines().count(),
        1,
        "stdout must be exactly one line: {s:?}"
    );
    s.trim_end_matches('\n').to_string()
}

#[track_caller]
fn check_login_url(url: &str, fed: &MockServer, destination: &str) {
    let q = login_params(url, &endpoint(fed));
    let keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["Action", "Issuer", "Destination", "SigninToken"],
        "{url}"
    );
    assert_eq!(param(&q, "Action"), Some("login"));
    assert_eq!(param(&q, "Issuer"), Some("elhaz"));
    assert_eq!(param(&q, "Destination"), Some(destination));
    assert_eq!(param(&q, "SigninToken"), Some(TOKEN));
}

fn token_answer() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "SigninToken": TOKEN }))
}

/// Neither the SigninToken, nor the session's secret key or token, in `what`.
#[track_caller]
fn no_secrets(what: &str, s: &str) {
    for secret in ["SIGNINMARK", SECRET, SESSION_TOKEN] {
        assert!(!s.contains(secret), "{secret} leaked into {what}:\n{s}");
    }
}

/// The daemon log, which must exist (else the leak check proves nothing).
fn daemon_log(t: &TestEnv) -> String {
    let log = std::fs::read_to_string(t.log()).expect("the daemon log exists");
    assert!(
        log.contains("prod"),
        "the daemon log does not mention the session at all:\n{log}"
    );
    log
}

// ---------------------------------------------------------------------------
// getSigninToken and the login URL

#[tokio::test(flavor = "multi_thread")]
async fn stdout_prints_one_login_url_built_from_the_session_credentials() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let t = user(&sts, &fed);

    let out = login(&t, &["prod", "--stdout", "-vv"]);
    let url = one_line(&out);
    check_login_url(
        &url,
        &fed,
        "https://console.aws.amazon.com/console/home?region=eu-west-1",
    );

    // One getSigninToken, with exactly the credentials STS issued for the role.
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);
    let calls = signin_calls(&fed).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let q = &calls[0];
    assert_eq!(param(q, "Action"), Some("getSigninToken"));
    let session: Value =
        serde_json::from_str(param(q, "Session").expect("a Session")).expect("Session is JSON");
    assert_eq!(
        session,
        json!({
            "sessionId": KEY_ID,
            "sessionKey": SECRET,
            "sessionToken": SESSION_TOKEN,
        })
    );
    assert_eq!(
        param(q, "SessionDuration"),
        None,
        "no --duration, no SessionDuration"
    );

    // The URL is a bearer credential: not in the log, not on stderr, even with -vv.
    no_secrets("stderr", &text(&out.stderr));
    no_secrets("the daemon log", &daemon_log(&t));
}

#[tokio::test(flavor = "multi_thread")]
async fn duration_becomes_session_duration_in_seconds() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let t = user(&sts, &fed);

    for (given, sent) in [("1h", "3600"), ("15m", "900"), ("12h", "43200")] {
        let out = login(&t, &["prod", "--stdout", "--duration", given]);
        check_login_url(
            &one_line(&out),
            &fed,
            "https://console.aws.amazon.com/console/home?region=eu-west-1",
        );
        let calls = signin_calls(&fed).await;
        let q = calls.last().expect("a getSigninToken call");
        assert_eq!(
            param(q, "SessionDuration"),
            Some(sent),
            "--duration {given}"
        );
        let session: Value = serde_json::from_str(param(q, "Session").unwrap()).unwrap();
        assert_eq!(session["sessionKey"], SECRET, "--duration {given}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_daemon_the_same_request_and_url() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let mut t = user(&sts, &fed);
    // Even with every crate logging at trace, as when a user debugs a sign-in.
    t.set("ELHAZ_LOG", "trace");

    let out = login(&t, &["--no-daemon", "prod", "--stdout", "--duration", "1h"]);
    check_login_url(
        &one_line(&out),
        &fed,
        "https://console.aws.amazon.com/console/home?region=eu-west-1",
    );
    assert!(!t.socket().exists(), "--no-daemon started a daemon");
    let calls = signin_calls(&fed).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(param(&calls[0], "SessionDuration"), Some("3600"));
    let session: Value = serde_json::from_str(param(&calls[0], "Session").unwrap()).unwrap();
    assert_eq!(
        session,
        json!({"sessionId": KEY_ID, "sessionKey": SECRET, "sessionToken": SESSION_TOKEN})
    );
    no_secrets("stderr", &text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn region_and_destination_flags_choose_the_console_page() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let t = user(&sts, &fed);

    let out = login(&t, &["prod", "--stdout", "--region", "ap-southeast-2"]);
    check_login_url(
        &one_line(&out),
        &fed,
        "https://console.aws.amazon.com/console/home?region=ap-southeast-2",
    );

    // China: the aws-cn console (the endpoint itself is the test's override).
    let out = login(&t, &["prod", "--stdout", "--region", "cn-north-1"]);
    check_login_url(
        &one_line(&out),
        &fed,
        "https://console.amazonaws.cn/console/home?region=cn-north-1",
    );

    // --destination is used exactly as given, its own query and all.
    let dest = "https://console.aws.amazon.com/s3/buckets/my-bucket?region=eu-west-1&tab=objects#x";
    let out = login(&t, &["prod", "--stdout", "--destination", dest]);
    check_login_url(&one_line(&out), &fed, dest);

    // Every one of them signed in with the session's credentials.
    for q in signin_calls(&fed).await {
        let session: Value = serde_json::from_str(param(&q, "Session").unwrap()).unwrap();
        assert_eq!(session["sessionId"], KEY_ID);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gov_cloud_config_region_picks_the_us_gov_console() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    t.role_config("gov", "Session:\n  region_name: us-gov-west-1\n");
    t.set("ELHAZ_FEDERATION_ENDPOINT", &endpoint(&fed));
    let out = login(&t, &["gov", "--stdout"]);
    check_login_url(
        &one_line(&out),
        &fed,
        "https://console.amazonaws-us-gov.com/console/home?region=us-gov-west-1",
    );
}

// ---------------------------------------------------------------------------
// Failures

#[tokio::test(flavor = "multi_thread")]
async fn a_federation_error_is_explained_and_exits_5() {
    let sts = FakeSts::start(HOUR).await;

    // HTTP 400 with AWS's body.
    let fed = federation(
        ResponseTemplate::new(400).set_body_string("Invalid Session: the token has expired"),
    )
    .await;
    let t = user(&sts, &fed);
    let out = login(&t, &["prod", "--stdout"]);
    exit(&out, 5);
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("400"), "the status is named: {err}");
    assert!(
        err.contains("Invalid Session: the token has expired"),
        "the endpoint's reason is shown: {err}"
    );
    assert!(err.contains("sign-in"), "says what failed: {err}");
    no_secrets("stderr", &err);

    // A 200 without a SigninToken.
    let fed = federation(ResponseTemplate::new(200).set_body_json(json!({"Error": "nope"}))).await;
    let t2 = user(&sts, &fed);
    let out = login(&t2, &["prod", "--stdout"]);
    exit(&out, 5);
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("SigninToken"), "says what is missing: {err}");
    no_secrets("stderr", &err);

    // Nothing answers at all.
    let mut t3 = user(&sts, &fed);
    t3.set(
        "ELHAZ_FEDERATION_ENDPOINT",
        &format!("http://127.0.0.1:{}/federation", free_port()),
    );
    let out = login(&t3, &["prod", "--stdout"]);
    exit(&out, 5);
    assert!(out.stdout.is_empty());
    no_secrets("stderr", &text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duration_out_of_range_is_a_usage_error() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let t = user(&sts, &fed);
    for d in ["10m", "899", "13h"] {
        let out = login(&t, &["prod", "--stdout", "--duration", d]);
        exit(&out, 2);
        assert!(out.stdout.is_empty());
        let err = text(&out.stderr);
        assert!(
            err.contains("--duration") && err.contains("15m") && err.contains("12h"),
            "names the flag and the range: {err}"
        );
    }
    assert!(signin_calls(&fed).await.is_empty());
    assert!(sts.calls("AssumeRole").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_with_long_term_keys_only_is_refused() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let t = user(&sts, &fed);
    t.write_aws_config("[profile static]\nregion = eu-west-1\n");
    std::fs::write(
        t.home.join(".aws/credentials"),
        "[static]\naws_access_key_id = AKIASTATIC0000000000\naws_secret_access_key = static-secret-key\n",
    )
    .unwrap();
    for extra in [&[][..], &["--no-daemon"][..]] {
        let out = t
            .std_cmd()
            .args(extra)
            .args(["login", "static", "--stdout"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        exit(&out, 3);
        assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(
            err.contains("static") && err.contains("long-term keys"),
            "says why: {err}"
        );
        assert!(err.contains("temporary"), "says what is needed: {err}");
        assert!(!err.contains("static-secret-key"), "{err}");
    }
    assert!(
        signin_calls(&fed).await.is_empty(),
        "long-term keys must never be sent to the federation endpoint"
    );
}

// ---------------------------------------------------------------------------
// The browser

/// A directory for fake programs, with `sh` (elhaz runs the browser through it) and
/// `sed` (the fake browsers read the page they are given with it).
fn fake_bin(t: &TestEnv) -> PathBuf {
    let dir = t.dir.path().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    for p in ["sh", "sed"] {
        std::os::unix::fs::symlink(which_on_path(p).expect(p), dir.join(p)).unwrap();
    }
    dir
}

/// A fake browser that appends what it opens, one per line, to `record`: each
/// argument, and for a local page the URL the page redirects to (as a browser would
/// follow it). Then it runs `then`.
fn fake_browser_then(dir: &Path, name: &str, record: &Path, then: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            r#"#!/bin/sh
for a in "$@"; do
  case "$a" in
    file://*) sed -n 's/.*http-equiv="refresh" content="0;url=\([^"]*\)".*/\1/p' "${{a#file://}}" | sed 's/&amp;/\&/g' >> '{0}' ;;
    *) printf '%s\n' "$a" >> '{0}' ;;
  esac
done
{then}
"#,
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn fake_browser(dir: &Path, name: &str, record: &Path) -> PathBuf {
    fake_browser_then(dir, name, record, "")
}

fn recorded(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_stdout_the_browser_gets_the_url_and_stdout_stays_empty() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let mut t = user(&sts, &fed);
    let bin = fake_bin(&t);
    let record = t.dir.path().join("browser.txt");
    let browser = fake_browser(&bin, "browser", &record);
    t.set("BROWSER", browser.to_str().unwrap());

    let out = login(&t, &["prod", "-vv"]);
    ok(&out);
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    let opened = recorded(&record);
    assert_eq!(opened.len(), 1, "one argument, the URL: {opened:?}");

    // The very URL --stdout prints.
    let printed = one_line(&login(&t, &["prod", "--stdout"]));
    assert_eq!(opened[0], printed);
    check_login_url(
        &opened[0],
        &fed,
        "https://console.aws.amazon.com/console/home?region=eu-west-1",
    );
    no_secrets("stderr", &text(&out.stderr));
    no_secrets("the daemon log", &daemon_log(&t));
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_with_arguments_and_a_failing_browser() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let mut t = user(&sts, &fed);
    let bin = fake_bin(&t);
    let record = t.dir.path().join("browser.txt");
    let browser = fake_browser(&bin, "browser", &record);

    // $BROWSER may carry its own options, as users set it.
    t.set(
        "BROWSER",
        &format!("{} --new-window", browser.to_str().unwrap()),
    );
    let out = login(&t, &["prod"]);
    ok(&out);
    let opened = recorded(&record);
    assert_eq!(opened.len(), 2, "{opened:?}");
    assert_eq!(opened[0], "--new-window");
    check_login_url(
        &opened[1],
        &fed,
        "https://console.aws.amazon.com/console/home?region=eu-west-1",
    );

    // A browser that fails: a clear error, a way out, and no URL anywhere.
    let failing = bin.join("failing");
    std::fs::write(&failing, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.set("BROWSER", failing.to_str().unwrap());
    let out = login(&t, &["prod"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("failing") && err.contains("--stdout"), "{err}");
    no_secrets("stderr", &err);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_browser_xdg_open_is_used_and_never_a_linux_open() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let mut t = user(&sts, &fed);
    let bin = fake_bin(&t);
    // Only the fake programs: no real browser can start from this test.
    t.set("PATH", bin.to_str().unwrap());
    t.unset("BROWSER");

    // On Linux `open` is openvt or run-mailcap, not a browser: never use it.
    let open_record = t.dir.path().join("open.txt");
    fake_browser(&bin, "open", &open_record);
    let out = login(&t, &["--no-daemon", "prod"]);
    if cfg!(target_os = "macos") {
        ok(&out);
        assert_eq!(recorded(&open_record).len(), 1);
        return;
    }
    exit(&out, 2);
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.contains("BROWSER") && err.contains("--stdout"),
        "says how to go on: {err}"
    );
    no_secrets("stderr", &err);
    assert!(
        recorded(&open_record).is_empty(),
        "ran `open` on Linux: {:?}",
        recorded(&open_record)
    );

    // xdg-open, when it is there.
    let xdg_record = t.dir.path().join("xdg.txt");
    fake_browser(&bin, "xdg-open", &xdg_record);
    let out = login(&t, &["--no-daemon", "prod"]);
    ok(&out);
    assert!(out.stdout.is_empty());
    let opened = recorded(&xdg_record);
    assert_eq!(opened.len(), 1, "{opened:?}");
    check_login_url(
        &opened[0],
        &fed,
        "https://console.aws.amazon.com/console/home?region=eu-west-1",
    );
}

/// The sign-in URL is a bearer credential: while a slow browser runs, no process's
/// argv (what `ps` shows every local user) holds it. The browser still gets there,
/// through a 0600 page in a 0700 directory, which is gone afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn the_signin_token_never_appears_in_any_argv() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let mut t = user(&sts, &fed);
    let bin = fake_bin(&t);
    let record = t.dir.path().join("browser.txt");
    let pages = t.dir.path().join("pages.txt");
    let browser = fake_browser_then(
        &bin,
        "browser",
        &record,
        &format!(
            "p=\"${{1#file://}}\"; stat -c '%a %n' \"$p\" \"$(dirname \"$p\")\" >> '{}'; sleep 3",
            pages.display()
        ),
    );
    t.set("BROWSER", browser.to_str().unwrap());

    let mut child = t
        .std_cmd()
        .args(["login", "prod"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut leaks = std::collections::BTreeSet::new();
    let mut saw_browser = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "login hung");
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if args.contains("SigninToken") || args.contains("SIGNINMARK") {
                leaks.insert(args.clone());
            }
            if args.contains(browser.to_str().unwrap()) {
                saw_browser = true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    ok(&out);
    assert!(leaks.is_empty(), "the sign-in token in argv: {leaks:?}");
    assert!(saw_browser, "the browser was never seen running");

    // The browser got the very URL --stdout prints.
    let opened = recorded(&record);
    assert_eq!(opened.len(), 1, "{opened:?}");
    let printed = one_line(&login(&t, &["prod", "--stdout"]));
    assert_eq!(opened[0], printed);
    check_login_url(
        &opened[0],
        &fed,
        "https://console.aws.amazon.com/console/home?region=eu-west-1",
    );
    // The page was private while it existed, and is gone with its directory.
    let modes = recorded(&pages);
    assert_eq!(modes.len(), 2, "{modes:?}");
    let (file_mode, file) = modes[0].split_once(' ').unwrap();
    let (dir_mode, dir) = modes[1].split_once(' ').unwrap();
    assert_eq!((file_mode, dir_mode), ("600", "700"), "{modes:?}");
    assert!(!Path::new(file).exists(), "{file} is still there");
    assert!(!Path::new(dir).exists(), "{dir} is still there");
    no_secrets("stderr", &text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_route_to_the_federation_endpoint_says_what_failed_and_where() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let fed = federation(ResponseTemplate::new(200)).await;
    let mut t = user(&sts, &fed);
    let refused = format!("http://127.0.0.1:{}/federation", free_port());
    for (endpoint, reason) in [
        (refused.as_str(), "connection refused"),
        (
            "http://no-such-host.invalid/federation",
            "cannot resolve the host name",
        ),
    ] {
        t.set("ELHAZ_FEDERATION_ENDPOINT", endpoint);
        let out = login(&t, &["--no-daemon", "prod", "--stdout"]);
        exit(&out, 5);
        assert_eq!(
            text(&out.stderr).lines().next().unwrap_or_default(),
            format!("elhaz: console sign-in failed at {endpoint}: {reason}")
        );
    }
}

/// Without NAME, in a tree whose pin is allowed, the console opens as the pin's NAME
/// (its region picks the console page); an untrusted pin is refused before any call.
#[tokio::test(flavor = "multi_thread")]
async fn without_name_the_trusted_pin_of_the_directory_signs_in() {
    let sts = FakeSts::start(HOUR).await;
    let fed = federation(token_answer()).await;
    let t = user(&sts, &fed);
    let project = t.home.join("src/app");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join(".elhaz.yaml"),
        "name: prod\nregion: eu-west-3\n",
    )
    .unwrap();
    let at = |args: &[&str]| {
        t.std_cmd()
            .current_dir(&project)
            .env("PWD", &project)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = at(&["login", "--stdout"]);
    exit(&out, 3);
    assert!(
        text(&out.stderr).contains("wants prod (new)"),
        "{}",
        text(&out.stderr)
    );
    assert!(sts.calls("AssumeRole").await.is_empty());
    assert!(signin_calls(&fed).await.is_empty());

    exit(&at(&["allow"]), 0);
    let out = at(&["login", "--stdout"]);
    let url = one_line(&out);
    assert_eq!(
        text(&out.stderr).lines().next(),
        Some("elhaz: using prod from ~/src/app/.elhaz.yaml")
    );
    check_login_url(
        &url,
        &fed,
        "https://console.aws.amazon.com/console/home?region=eu-west-3",
    );
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);
}
