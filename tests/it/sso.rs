//! IAM Identity Center end to end, against a strict fake OIDC API and portal
//! (tests/support/sso.rs): `elhaz sso login` with the device code and with PKCE (a
//! `$BROWSER` that follows the authorize URL to the loopback listener), the AWS CLI's
//! token cache exactly, SSO profiles served through our own code (daemon and
//! --no-daemon alike), silent renewal once for many processes, one login for many
//! waiting processes, logout, botocore as a real consumer of the cache both ways, and
//! bad input that leaves the old cache file intact.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::sso::*;
// sso_portal's helpers of the same names are for its own tests.
use crate::support::sso::{iso_in, sso_user};
use crate::support::*;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `elhaz ARGS` without a controlling terminal (a new session, stdin closed): what
/// Terraform's credential_process calls look like.
fn detached(t: &TestEnv, args: &[&str]) -> Command {
    let mut c = t.std_cmd();
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    c
}

fn run_detached(t: &TestEnv, args: &[&str]) -> Output {
    detached(t, args).output().unwrap()
}

/// Fails unless `o` exited with `code` and the first line of its error (the last
/// `elhaz:` line; what the login showed before it comes first) is `first`.
#[track_caller]
fn assert_fails(o: &Output, code: i32, first: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    let error = err.lines().rfind(|l| l.starts_with("elhaz: "));
    assert_eq!(error.unwrap_or(""), first, "stderr: {err}");
    assert!(stdout(o).is_empty(), "stdout: {}", stdout(o));
}

fn export_key(o: &Output) -> String {
    assert!(o.status.success(), "export failed: {}", stderr(o));
    let v: Value = serde_json::from_str(&stdout(o)).unwrap();
    v["access_key"].as_str().unwrap().to_string()
}

fn dev_key() -> String {
    key_for("111122223333", "Dev")
}

/// A cache entry for `corp` whose access token the portal accepts, expiring in
/// `secs`, with a refresh token when `refresh`.
fn seeded(t: &TestEnv, fake: &FakeSso, token: &str, secs: i64, refresh: bool) -> Value {
    fake.seed_access(token);
    let mut v = json!({
        "startUrl": START_URL,
        "region": "us-east-1",
        "accessToken": token,
        "expiresAt": iso_in(secs),
    });
    if refresh {
        let (id, secret, rt) = fake.seed_refresh();
        v["clientId"] = json!(id);
        v["clientSecret"] = json!(secret);
        v["registrationExpiresAt"] = json!(iso_in(30 * 86400));
        v["refreshToken"] = json!(rt);
    }
    write_cache(t, "corp", &v);
    v
}

#[track_caller]
fn assert_private(t: &TestEnv, key: &str) {
    let f = cache_file(t, key);
    let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", f.display());
    let dir = std::fs::metadata(f.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir, 0o700);
}

/// The AWS CLI's keys, and nothing of ours beyond them.
#[track_caller]
fn assert_cli_entry(v: &Value) {
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "accessToken",
        "clientId",
        "clientSecret",
        "expiresAt",
        "refreshToken",
        "region",
        "registrationExpiresAt",
        "startUrl",
    ];
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(v["startUrl"], START_URL);
    assert_eq!(v["region"], "us-east-1");
    for k in ["expiresAt", "registrationExpiresAt"] {
        let s = v[k].as_str().unwrap();
        assert!(
            s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T',
            "{k}: {s}"
        );
    }
}

// ---------------------------------------------------------------------------
// Logins

#[tokio::test(flavor = "multi_thread")]
async fn device_code_login_shows_url_and_code_honours_slow_down_and_fills_the_cli_cache() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    {
        let mut st = fake.st();
        st.slow_downs = 1;
        st.pending_polls = 1;
    }
    let o = t
        .cmd()
        .args(["sso", "login", "corp", "--use-device-code", "--no-browser"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "{}/device?user_code={USER_CODE}\n",
            fake.oidc.uri()
        )),
        "the verification URL with the code filled in: {err}"
    );
    assert!(
        err.contains(&format!("confirm this code: {USER_CODE}")),
        "the user code beside it: {err}"
    );
    assert!(
        !t.home.join("browser-urls").exists(),
        "--no-browser starts no browser"
    );
    let v = read_cache(&t, "corp");
    assert_cli_entry(&v);
    let at = v["accessToken"].as_str().unwrap();
    assert!(fake.st().access_tokens.contains(at));
    for secret in [
        at,
        v["refreshToken"].as_str().unwrap(),
        v["clientSecret"].as_str().unwrap(),
    ] {
        assert!(!err.contains(secret), "a secret on stderr: {err}");
    }
    assert_private(&t, "corp");
    assert_eq!(fake.count("RegisterClient", ""), 1);
    assert_eq!(fake.count("StartDeviceAuthorization", ""), 1);
    // slow_down, authorization_pending, then the token; each wait at least the
    // interval in force (1 s, then 6 s after slow_down).
    assert_eq!(fake.count("CreateToken", DEVICE_GRANT), 3);
    let polls = fake.st().polls_at.clone();
    assert!(
        polls[1] - polls[0] >= 5_900,
        "slow_down honoured: {polls:?}"
    );
    assert!(
        polls[2] - polls[1] >= 5_900,
        "slow_down is for good: {polls:?}"
    );
    {
        let st = fake.st();
        let client = st.clients.values().next().unwrap();
        assert_eq!(client.grant_types, [DEVICE_GRANT, "refresh_token"]);
    }

    // A second login reuses the registration.
    let o = t
        .cmd()
        .args(["sso", "login", "corp", "--use-device-code", "--no-browser"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fake.count("RegisterClient", ""), 1, "registration reused");
    assert_eq!(fake.count("StartDeviceAuthorization", ""), 2);

    // Until it expires: then a new one.
    let dir = t.home.join(".aws/sso/cache");
    let reg = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("elhaz-client-")
        })
        .expect("the registration is kept beside the tokens");
    let mut r: Value = serde_json::from_slice(&std::fs::read(&reg).unwrap()).unwrap();
    assert!(r["expiresAt"].as_str().unwrap() > iso_in(80 * 86400).as_str());
    r["expiresAt"] = json!(iso_in(-1));
    std::fs::write(&reg, r.to_string()).unwrap();
    let o = t
        .cmd()
        .args(["sso", "login", "corp", "--use-device-code", "--no-browser"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fake.count("RegisterClient", ""),
        2,
        "an expired registration is replaced"
    );

    // And the token serves the profile.
    let o = t
        .cmd()
        .args(["--no-daemon", "export", "dev"])
        .output()
        .unwrap();
    assert_eq!(export_key(&o), dev_key());
}

/// A legacy profile (start URL in the profile, no sso-session) is named plainly, with
/// its start URL, in what login and logout say.
#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_profile_is_named_plainly_at_login_and_logout() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    let what = "profile 'old' (SSO start URL https://old.awsapps.com/start)";
    let o = t
        .cmd()
        .args(["sso", "login", "old", "--use-device-code", "--no-browser"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "elhaz: logged in to {what}; the token is valid until "
        )),
        "{err}"
    );
    assert!(!err.contains("SSO login of profile"), "{err}");
    let o = t.cmd().args(["sso", "logout", "old"]).output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("elhaz: logged out of {what}\n")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_command_line_holds_the_authorize_or_verification_url() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    for args in [
        &["sso", "login", "corp"][..],
        &["sso", "login", "corp", "--use-device-code"][..],
    ] {
        let _ = std::fs::remove_file(t.home.join("browser-argv"));
        let o = t.cmd().args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        // Another local user reads every argv (/proc/*/cmdline): the browser got a
        // private page, never the URL with its state, client and redirect.
        let argv = std::fs::read_to_string(t.home.join("browser-argv")).unwrap();
        let page = argv.lines().next().unwrap().to_string();
        assert!(page.starts_with("file://"), "{args:?}: {argv}");
        for secret in [
            "state=",
            "client_id",
            "redirect_uri",
            "user_code",
            "authorize",
        ] {
            assert!(!argv.contains(secret), "{args:?}: {secret} in argv: {argv}");
        }
        let path = std::path::PathBuf::from(page.trim_start_matches("file://"));
        assert!(
            wait_until(Duration::from_secs(10), || !path.exists()),
            "the page is removed once read: {}",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_login_follows_the_browser_to_the_loopback_listener() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    let o = t.cmd().args(["sso", "login", "corp"]).output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    // The browser got the authorize URL, which holds no token.
    let urls = std::fs::read_to_string(t.home.join("browser-urls")).unwrap();
    let url = urls.lines().next().unwrap();
    assert!(
        url.starts_with(&format!("{}/authorize?", fake.oidc.uri())),
        "{url}"
    );
    for part in [
        "response_type=code",
        "code_challenge_method=S256",
        "redirect_uri=http%3A%2F%2F127.0.0.1%3A",
        "%2Foauth%2Fcallback",
        "scopes=sso%3Aaccount%3Aaccess",
        "state=",
        "code_challenge=",
    ] {
        assert!(url.contains(part), "{part} in {url}");
    }
    assert!(err.contains(url), "the URL is printed too: {err}");
    let v = read_cache(&t, "corp");
    assert_cli_entry(&v);
    assert!(!url.contains(v["accessToken"].as_str().unwrap()));
    assert_eq!(fake.count("Authorize", ""), 1);
    // The fake checked the client secret, the redirect URI and S256(verifier).
    assert_eq!(fake.count("CreateToken", "authorization_code"), 1);
    assert_eq!(fake.count("StartDeviceAuthorization", ""), 0);
    {
        let st = fake.st();
        let c = st.clients.values().next().unwrap();
        assert_eq!(c.grant_types, ["authorization_code", "refresh_token"]);
        assert_eq!(c.redirect_uris, ["http://127.0.0.1/oauth/callback"]);
        assert_eq!(c.issuer_url.as_deref(), Some(START_URL));
    }
    assert_private(&t, "corp");

    // Logged in again: the same registration, a new authorize.
    let o = t.cmd().args(["sso", "login", "corp"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fake.count("RegisterClient", ""), 1);
    assert_eq!(fake.count("CreateToken", "authorization_code"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_listener_ignores_a_redirect_without_our_state() {
    let fake = FakeSso::start().await;
    let mut t = sso_user(&fake);
    // A "browser" that first sends a forged redirect (someone else's code, a wrong
    // state) to the listener, then signs in for real.
    let browser = t.home.join("forging-browser");
    std::fs::write(
        &browser,
        format!(
            r#"#!/bin/sh
exec python3 - "$1" <<'PY'
import sys, urllib.parse, urllib.request
u = sys.argv[1]
if u.startswith("file://"):
    import html, re
    page = open(urllib.parse.unquote(u[len("file://"):])).read()
    u = html.unescape(re.search(r'content="0;url=([^"]*)"', page).group(1))
r = urllib.parse.parse_qs(urllib.parse.urlparse(u).query)["redirect_uri"][0]
try:
    urllib.request.urlopen(r + "?code=forged&state=wrong")
    status = 200
except urllib.error.HTTPError as e:
    status = e.code
open("{home}/forged-status", "w").write(str(status))
urllib.request.urlopen(u).read()
PY
"#,
            home = t.home.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.set("BROWSER", &browser.to_string_lossy());
    let o = t.cmd().args(["sso", "login", "corp"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let status = std::fs::read_to_string(t.home.join("forged-status")).unwrap();
    assert_eq!(status, "400", "the forged redirect is refused");
    // The fake rejects unknown codes: one exchange, of the real code.
    assert_eq!(fake.count("CreateToken", "authorization_code"), 1);
    assert!(
        fake.st()
            .access_tokens
            .contains(read_cache(&t, "corp")["accessToken"].as_str().unwrap())
    );
}

/// Another local user holds 1,100 connections open to the PKCE listener (more than
/// the 1,024 descriptors elhaz runs with here) before the browser comes back; the
/// redirect that follows still completes the login.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_idle_connections_does_not_stop_the_loopback_listener() {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    let fake = FakeSso::start().await;
    let mut t = sso_user(&fake);
    t.set("ELHAZ_SSO_LOGIN_TIMEOUT", "60");
    let mut c = t.std_cmd();
    c.args(["sso", "login", "corp", "--no-browser"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    limit_fds(&mut c, 1024);
    let mut login = c.spawn().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let err = login.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The URL the user is asked to open, and the listener's port in it.
    let mut shown = Vec::new();
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no URL shown: {shown:?}"));
        shown.push(line.clone());
        if let Some(u) = line
            .trim()
            .strip_prefix(&format!("{}/authorize?", fake.oidc.uri()))
        {
            break format!("{}/authorize?{u}", fake.oidc.uri());
        }
    };
    let redirect: u16 = url
        .split_once("redirect_uri=http%3A%2F%2F127.0.0.1%3A")
        .and_then(|(_, r)| r.split('%').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no loopback port in {url}"));

    // The flood, from another uid when the tests can switch to one.
    let mut flood = python(
        r#"
import socket, sys
held = []
for _ in range(1100):
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5))
    except OSError:
        pass
print("HELD", len(held), flush=True)
sys.stdin.read()
"#,
    );
    flood
        .arg(redirect.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    die_with_parent(&mut flood);
    if is_root() {
        as_user(&mut flood, NOBODY, NOBODY);
    }
    let mut flood = flood.spawn().unwrap();
    let mut held = String::new();
    BufReader::new(flood.stdout.take().unwrap())
        .read_line(&mut held)
        .unwrap();
    assert!(held.starts_with("HELD "), "{held}");

    // The browser comes back while the connections are held.
    let browser = Command::new("curl")
        .args(["-sS", "-L", "-o", "/dev/null", "--max-time", "20", &url])
        .output()
        .unwrap();
    let (status, _, _) = output_within(login, Duration::from_secs(30));
    drop(flood.stdin.take());
    let _ = flood.kill();
    let _ = flood.wait();
    // The reader ends with the login's stderr.
    let rest: Vec<String> =
        std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(5)).ok()).collect();
    let all = format!("{}\n{}", shown.join("\n"), rest.join("\n"));
    let status = status.unwrap_or_else(|| panic!("login still waiting after 30 s: {all}"));
    assert!(
        status.success(),
        "{held}; browser: {}; login: {all}",
        String::from_utf8_lossy(&browser.stderr)
    );
    assert!(!all.contains("listener stopped"), "{all}");
    assert_eq!(fake.count("CreateToken", "authorization_code"), 1);
    assert!(
        fake.st()
            .access_tokens
            .contains(read_cache(&t, "corp")["accessToken"].as_str().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wait_spins_with_the_url_and_the_code_in_view() {
    let fake = FakeSso::start().await;
    let mut t = sso_user(&fake);
    t.unset("ELHAZ_NO_SPINNER").set("TERM", "xterm");
    fake.st().pending_polls = 2;
    let mut c = t.std_cmd();
    c.args(["sso", "login", "corp", "--use-device-code", "--no-browser"]);
    let mut pty = Pty::spawn(c, "sso login", 200, Duration::from_secs(30));
    pty.expect(&format!("{}/device", fake.oidc.uri()));
    pty.expect(USER_CODE);
    pty.expect(&format!("waiting for the sign-in (code {USER_CODE})"));
    pty.expect("elhaz: logged in to SSO session 'corp'; the token is valid until ");
    // The spinner is gone; the URL and the code stay on the screen.
    let shown = screen(&pty.transcript);
    assert!(shown.contains(USER_CODE), "{shown}");
    assert!(
        shown.contains(&format!("{}/device", fake.oidc.uri())),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn over_ssh_or_without_a_display_the_device_code_is_used() {
    let fake = FakeSso::start().await;
    let mut t = sso_user(&fake);
    t.set("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22");
    let o = t
        .cmd()
        .args(["sso", "login", "corp", "--no-browser"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(USER_CODE));
    assert_eq!(fake.count("StartDeviceAuthorization", ""), 1);
    t.unset("SSH_CONNECTION");
    t.unset("DISPLAY");
    let o = t
        .cmd()
        .args(["sso", "login", "corp", "--no-browser"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fake.count("StartDeviceAuthorization", ""), 2);
    assert_eq!(fake.count("Authorize", ""), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_that_never_comes_back_times_out_and_keeps_the_old_token() {
    let fake = FakeSso::start().await;
    let mut t = sso_user(&fake);
    seeded(&t, &fake, "old-token", 3600, true);
    let before = std::fs::read(cache_file(&t, "corp")).unwrap();
    t.set("BROWSER", "/bin/true");
    t.set("ELHAZ_SSO_LOGIN_TIMEOUT", "2");
    let o = t.cmd().args(["sso", "login", "corp"]).output().unwrap();
    assert_fails(
        &o,
        5,
        "elhaz: no sign-in reached the loopback listener within 2s: the browser did not come back to http://127.0.0.1:PORT/oauth/callback"
            .replace("PORT", &port_of(&stderr(&o)))
            .as_str(),
    );
    assert!(stderr(&o).contains("elhaz sso login corp --use-device-code"));
    assert_eq!(std::fs::read(cache_file(&t, "corp")).unwrap(), before);
}

/// "opened your browser" only when the browser command did not fail: one that fails
/// after a moment (a browser with no display) gets the plain "open this URL".
#[tokio::test(flavor = "multi_thread")]
async fn opened_your_browser_is_said_only_when_the_browser_command_succeeded() {
    let fake = FakeSso::start().await;
    let mut t = sso_user(&fake);
    t.set("ELHAZ_SSO_LOGIN_TIMEOUT", "1");
    let failing = t.home.join("no-display-browser");
    std::fs::write(
        &failing,
        "#!/bin/sh\nsleep 0.3\necho 'cannot open display' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (browser, opened) in [(failing.to_str().unwrap(), false), ("/bin/true", true)] {
        t.set("BROWSER", browser);
        let o = t.cmd().args(["sso", "login", "corp"]).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(5), "{err}");
        assert_eq!(
            err.contains("opened your browser"),
            opened,
            "{browser}: {err}"
        );
        assert_eq!(
            err.contains("open this URL in a browser on this machine"),
            !opened,
            "{browser}: {err}"
        );
        assert!(!err.contains("cannot open display"), "{err}");
    }
}

/// The loopback port an error names.
fn port_of(err: &str) -> String {
    let at = "come back to http://127.0.0.1:";
    let i = err.rfind(at).map(|i| i + at.len()).unwrap_or(0);
    err[i..].chars().take_while(char::is_ascii_digit).collect()
}

// ---------------------------------------------------------------------------
// Credentials through our code

#[tokio::test(flavor = "multi_thread")]
async fn sso_profiles_get_role_credentials_from_our_code_daemon_or_not() {
    let fake = FakeSso::start().await;
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let mut t = sso_user(&fake);
    t.set("AWS_ENDPOINT_URL_STS", &sts.uri());
    // Never logged in: our error, with our command, through both paths.
    for args in [&["--no-daemon", "export", "dev"][..], &["export", "dev"]] {
        let o = run_detached(&t, args);
        assert_fails(
            &o,
            5,
            "elhaz: SSO session 'corp' is not logged in; run: elhaz sso login corp",
        );
    }
    seeded(&t, &fake, "tok-1", 3600, false);
    // The profile itself, the daemon and --no-daemon: the same account-role's keys.
    let daemon = t.cmd().args(["export", "dev"]).output().unwrap();
    let local = t
        .cmd()
        .args(["--no-daemon", "export", "dev"])
        .output()
        .unwrap();
    assert_eq!(export_key(&daemon), dev_key());
    assert_eq!(export_key(&local), dev_key());
    {
        let st = fake.st();
        assert_eq!(st.role_calls.len(), 2);
        for (tok, account, role) in &st.role_calls {
            assert_eq!(
                (tok.as_str(), account.as_str(), role.as_str()),
                ("tok-1", "111122223333", "Dev")
            );
        }
    }
    // A legacy profile: its cache is keyed by the start URL.
    fake.seed_access("legacy-tok");
    write_cache(
        &t,
        "https://old.awsapps.com/start",
        &json!({"startUrl": "https://old.awsapps.com/start", "region": "us-east-1",
                "accessToken": "legacy-tok", "expiresAt": iso_in(3600)}),
    );
    let o = t
        .cmd()
        .args(["--no-daemon", "export", "old"])
        .output()
        .unwrap();
    assert_eq!(export_key(&o), key_for("444455556666", "Legacy"));

    // Sources chaining from the SSO profile: a role profile and an elhaz config.
    let cfg = std::fs::read_to_string(t.home.join(".aws/config")).unwrap();
    t.write_aws_config(&format!(
        "{cfg}\n[profile admin]\nrole_arn = {ROLE_ARN}\nsource_profile = dev\n\n[profile deep]\nrole_arn = arn:aws:iam::123456789012:role/Deep\nsource_profile = admin\n"
    ));
    t.write_config(
        "via-sso",
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\nSession:\n  profile_name: dev\n"),
    );
    for name in ["admin", "via-sso"] {
        for daemon in [false, true] {
            let mut args = vec!["export", name];
            if !daemon {
                args.insert(0, "--no-daemon");
            }
            let o = t.cmd().args(&args).output().unwrap();
            assert!(o.status.success(), "{name}: {}", stderr(&o));
        }
    }
    // The default chain from AWS_PROFILE=dev, for a config without Session.
    t.write_config("via-env", &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\n"));
    t.set("AWS_PROFILE", "dev");
    for args in [
        &["--no-daemon", "export", "via-env"][..],
        &["export", "via-env"],
    ] {
        let o = t.cmd().args(args).output().unwrap();
        assert!(o.status.success(), "via-env: {}", stderr(&o));
    }
    let signers = sts.signers("AssumeRole").await;
    assert_eq!(signers.len(), 6);
    assert!(
        signers.iter().all(|s| *s == dev_key()),
        "AssumeRole signed by the SSO role's keys: {signers:?}"
    );
    // Two hops above the SSO profile: the first AssumeRole signed by the SSO role,
    // the second by what the first returned; through both paths.
    t.unset("AWS_PROFILE");
    for args in [&["--no-daemon", "export", "deep"][..], &["export", "deep"]] {
        let o = t.cmd().args(args).output().unwrap();
        assert!(o.status.success(), "deep: {}", stderr(&o));
    }
    let calls = signed_roles(&sts).await;
    let deep: Vec<_> = calls[6..].to_vec();
    assert_eq!(deep.len(), 4, "{deep:?}");
    for pair in deep.chunks(2) {
        assert_eq!(pair[0].0, ROLE_ARN);
        assert_eq!(pair[0].1, dev_key());
        assert_eq!(pair[1].0, "arn:aws:iam::123456789012:role/Deep");
        assert!(pair[1].1.starts_with("ASIAFAKE"), "{pair:?}");
    }
    // Not logged in: our own words, for the deep chain too.
    std::fs::remove_file(cache_file(&t, "corp")).unwrap();
    let o = run_detached(&t, &["--no-daemon", "export", "deep"]);
    assert_fails(
        &o,
        5,
        "elhaz: SSO session 'corp' is not logged in; run: elhaz sso login corp",
    );
    t.stop_daemon();
}

/// Each AssumeRole: (RoleArn, the access key id that signed it), in order.
async fn signed_roles(sts: &FakeSts) -> Vec<(String, String)> {
    sts.server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            let f = form(&String::from_utf8_lossy(&r.body));
            (f.get("Action").map(String::as_str) == Some("AssumeRole")).then(|| {
                let auth = r
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                (
                    f.get("RoleArn").cloned().unwrap_or_default(),
                    signer_of(auth).unwrap_or_default(),
                )
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Renewal and expiry

#[tokio::test(flavor = "multi_thread")]
async fn a_token_near_expiry_is_renewed_with_the_refresh_token() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    let mut old = seeded(&t, &fake, "old-token", 60, true);
    old["someFutureKey"] = json!("kept");
    write_cache(&t, "corp", &old);
    let o = t
        .cmd()
        .args(["--no-daemon", "export", "dev"])
        .output()
        .unwrap();
    assert_eq!(export_key(&o), dev_key());
    assert_eq!(fake.count("CreateToken", "refresh_token"), 1);
    let v = read_cache(&t, "corp");
    assert_ne!(v["accessToken"], "old-token");
    assert_ne!(
        v["refreshToken"], old["refreshToken"],
        "the rotated refresh token is kept"
    );
    assert!(
        fake.st()
            .refresh_tokens
            .contains_key(v["refreshToken"].as_str().unwrap())
    );
    assert_eq!(v["clientId"], old["clientId"]);
    assert_eq!(v["someFutureKey"], "kept");
    assert!(v["expiresAt"].as_str().unwrap() > iso_in(7 * 3600).as_str());
    assert_private(&t, "corp");
    assert_eq!(
        fake.st().role_calls.last().unwrap().0,
        v["accessToken"].as_str().unwrap(),
        "the portal got the renewed token"
    );
}

/// The portal answers 401 to a token with hours left (revoked, or signed out in the
/// browser): the refresh token is tried once, with and without the daemon, and the
/// role is served without a login; without a refresh token it is the login error.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_the_portal_refuses_is_renewed_once_before_asking_for_a_login() {
    let fake = FakeSso::start().await;
    let mut t = sso_user(&fake);
    let launched = counting_browser(&mut t);
    for (round, args) in [&["--no-daemon", "export", "dev"][..], &["export", "dev"]]
        .into_iter()
        .enumerate()
    {
        seeded(&t, &fake, "revoked-token", 4 * 3600, true);
        fake.st().access_tokens.remove("revoked-token");
        let o = run_detached(&t, args);
        assert_eq!(export_key(&o), dev_key(), "{args:?}");
        assert_eq!(fake.count("CreateToken", "refresh_token"), round + 1);
        let v = read_cache(&t, "corp");
        assert_ne!(v["accessToken"], "revoked-token");
        assert_eq!(
            fake.st().role_calls.last().unwrap().0,
            v["accessToken"].as_str().unwrap(),
            "the portal got the renewed token"
        );
    }
    t.stop_daemon();
    // No refresh token: the login error, after one refused call and no OIDC call.
    seeded(&t, &fake, "revoked-token", 4 * 3600, false);
    fake.st().access_tokens.remove("revoked-token");
    let o = run_detached(&t, &["--no-daemon", "export", "dev"]);
    assert_fails(
        &o,
        5,
        "elhaz: SSO session 'corp' has expired; run: elhaz sso login corp",
    );
    assert_eq!(fake.count("CreateToken", "refresh_token"), 2);
    assert_eq!(launches(&launched), 0, "a refused token opened a browser");
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_requests_renew_once_with_or_without_the_daemon() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    for (round, daemon) in [false, true].into_iter().enumerate() {
        seeded(&t, &fake, &format!("old-{round}"), 60, true);
        let children: Vec<_> = (0..20)
            .map(|_| {
                let mut args = vec!["export", "dev"];
                if !daemon {
                    args.insert(0, "--no-daemon");
                }
                detached(&t, &args).spawn().unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert_eq!(export_key(&o), dev_key());
        }
        assert_eq!(
            fake.count("CreateToken", "refresh_token"),
            round + 1,
            "one renewal for 20 requests (daemon: {daemon})"
        );
    }
    t.stop_daemon();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_without_a_terminal_exits_5_with_the_command() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    seeded(&t, &fake, "old-token", -60, false);
    let before = std::fs::read(cache_file(&t, "corp")).unwrap();
    for args in [&["--no-daemon", "export", "dev"][..], &["export", "dev"]] {
        let o = run_detached(&t, args);
        assert_fails(
            &o,
            5,
            "elhaz: SSO session 'corp' has expired; run: elhaz sso login corp",
        );
    }
    assert!(fake.st().calls.is_empty(), "no OIDC call, no browser");
    assert!(!t.home.join("browser-urls").exists());
    assert_eq!(std::fs::read(cache_file(&t, "corp")).unwrap(), before);
    // A refresh token the OIDC API refuses: the same.
    let mut v = seeded(&t, &fake, "old-token", -60, true);
    v["refreshToken"] = json!("revoked");
    write_cache(&t, "corp", &v);
    let o = run_detached(&t, &["--no-daemon", "export", "dev"]);
    assert_fails(
        &o,
        5,
        "elhaz: SSO session 'corp' has expired; run: elhaz sso login corp",
    );
    assert_eq!(fake.count("CreateToken", "refresh_token"), 1);
    t.stop_daemon();
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_requests_with_an_expired_session_make_exactly_one_login() {
    let fake = FakeSso::start().await;
    let mut t = sso_user(&fake);
    seeded(&t, &fake, "old-token", -60, false);
    fake.st().pending_polls = 3;
    // Over SSH: the login offered inline is a device code. The terminal gets its
    // spinners, as a user's would.
    t.set("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22");
    t.unset("ELHAZ_NO_SPINNER").set("TERM", "xterm");
    // One command on a terminal offers the login...
    let mut c = t.std_cmd();
    c.args(["export", "dev"]);
    let mut pty = Pty::spawn(c, "export dev", 200, Duration::from_secs(30));
    pty.expect("SSO session 'corp' has expired. Log in now? [Y/n]");
    // ...while 19 without one wait for it.
    let others: Vec<_> = (0..19)
        .map(|_| detached(&t, &["export", "dev"]).spawn().unwrap())
        .collect();
    pty.send_line("y");
    pty.expect(USER_CODE);
    pty.expect(&dev_key());
    for c in others {
        let o = c.wait_with_output().unwrap();
        assert_eq!(export_key(&o), dev_key());
    }
    assert_eq!(fake.count("RegisterClient", ""), 1, "one login");
    assert_eq!(fake.count("StartDeviceAuthorization", ""), 1, "one login");
    assert_eq!(fake.count("CreateToken", DEVICE_GRANT), 4);
    t.stop_daemon();
}

/// A device-code login held open (the fake answers authorization_pending forever):
/// it holds the session's login until killed.
fn login_that_never_completes(t: &TestEnv, fake: &FakeSso) -> std::process::Child {
    let mut login = t.std_cmd();
    login
        .args(["sso", "login", "corp", "--use-device-code", "--no-browser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let login = login.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(20), || fake
        .count("StartDeviceAuthorization", "")
        == 1));
    login
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_waiting_for_someone_elses_login_gives_up_after_a_bounded_wait() {
    let fake = FakeSso::start().await;
    let mut t = sso_user(&fake);
    seeded(&t, &fake, "old-token", -60, false);
    fake.st().pending_forever = true;
    // A login that never completes holds the session's login.
    let mut login = login_that_never_completes(&t, &fake);
    t.set("ELHAZ_SSO_LOGIN_TIMEOUT", "2");
    let o = run_detached(&t, &["--no-daemon", "export", "dev"]);
    assert!(
        stderr(&o)
            .contains("elhaz: waiting for the login of SSO session 'corp' in progress elsewhere"),
        "{}",
        stderr(&o)
    );
    assert_fails(
        &o,
        5,
        "elhaz: SSO session 'corp' has expired and the login in progress elsewhere did not finish within 2s; run: elhaz sso login corp",
    );
    let _ = login.kill();
    let _ = login.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_prompt_hook_never_waits_for_a_login_in_progress() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    seeded(&t, &fake, "old-token", -60, false);
    fake.st().pending_forever = true;
    let mut login = login_that_never_completes(&t, &fake);
    // A shell inside `elhaz shell dev` reaches its refresh time while someone logs in.
    let mut c = t.std_cmd();
    c.env("ELHAZ_SESSION", "dev")
        .env("ELHAZ_EXPIRES_AT", (unix_now() + 60).to_string())
        .args(["--client-timeout", "2", "hook", "bash", "--refresh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, _out, err) = output_within(c.spawn().unwrap(), Duration::from_secs(15));
    assert!(
        status.is_some(),
        "the hook's refresh waited for the login: {err}"
    );
    assert!(
        err.contains("SSO session 'corp' has expired; run: elhaz sso login corp"),
        "{err}"
    );
    let _ = login.kill();
    let _ = login.wait();
    t.stop_daemon();
}

// ---------------------------------------------------------------------------
// Logout

#[tokio::test(flavor = "multi_thread")]
async fn logout_ends_the_session_at_the_portal_and_removes_the_cache_file() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    seeded(&t, &fake, "live-token", 3600, true);
    let o = t.cmd().args(["sso", "logout", "corp"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fake.st().logouts, ["live-token"]);
    assert!(!cache_file(&t, "corp").exists());
    let o = run_detached(&t, &["--no-daemon", "export", "dev"]);
    assert_fails(
        &o,
        5,
        "elhaz: SSO session 'corp' is not logged in; run: elhaz sso login corp",
    );
    // --all: every cached session.
    seeded(&t, &fake, "a", 3600, false);
    fake.seed_access("b");
    write_cache(
        &t,
        "https://old.awsapps.com/start",
        &json!({"startUrl": "https://old.awsapps.com/start", "region": "us-east-1",
                "accessToken": "b", "expiresAt": iso_in(3600)}),
    );
    let o = t.cmd().args(["sso", "logout", "--all"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut l = fake.st().logouts.clone();
    l.sort();
    assert_eq!(l, ["a", "b", "live-token"]);
    assert!(!cache_file(&t, "corp").exists());
    assert!(!cache_file(&t, "https://old.awsapps.com/start").exists());
}

// ---------------------------------------------------------------------------
// botocore, a real consumer of the cache

fn botocore(t: &TestEnv, fake: &FakeSso) -> Output {
    let py = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/python");
    let mut c = Command::new(py);
    c.env_clear()
        .envs(&t.vars)
        .env("AWS_ENDPOINT_URL_SSO", fake.portal.uri())
        .env("AWS_ENDPOINT_URL_SSO_OIDC", fake.oidc.uri())
        .args([
            "-c",
            "import botocore.session as s; c = s.Session(profile='dev').get_credentials().get_frozen_credentials(); print(c.access_key)",
        ]);
    c.output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn botocore_uses_and_renews_the_token_elhaz_wrote_and_elhaz_uses_botocores() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    let o = t
        .cmd()
        .args(["sso", "login", "corp", "--use-device-code", "--no-browser"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let ours = read_cache(&t, "corp");
    let o = botocore(&t, &fake);
    assert!(o.status.success(), "botocore: {}", stderr(&o));
    assert_eq!(stdout(&o).trim(), dev_key());
    assert_eq!(
        fake.st().role_calls.last().unwrap().0,
        ours["accessToken"].as_str().unwrap()
    );

    // Expired: botocore renews it through the fake OIDC with our client and refresh
    // token, and rewrites the file.
    let mut expired = ours.clone();
    expired["expiresAt"] = json!(iso_in(-60));
    write_cache(&t, "corp", &expired);
    let o = botocore(&t, &fake);
    assert!(o.status.success(), "botocore: {}", stderr(&o));
    assert_eq!(
        fake.count("CreateToken", "refresh_token"),
        1,
        "botocore renewed"
    );
    let theirs = read_cache(&t, "corp");
    assert_ne!(theirs["accessToken"], ours["accessToken"]);

    // The reverse: elhaz serves with the entry botocore renewed, no renewal of its own.
    let calls = fake.st().role_calls.len();
    let o = t
        .cmd()
        .args(["--no-daemon", "export", "dev"])
        .output()
        .unwrap();
    assert_eq!(export_key(&o), dev_key());
    assert_eq!(
        fake.st().role_calls[calls].0,
        theirs["accessToken"].as_str().unwrap()
    );
    assert_eq!(fake.count("CreateToken", "refresh_token"), 1);
    // And renews botocore's entry when it nears expiry.
    let mut near = theirs.clone();
    near["expiresAt"] = json!(iso_in(60));
    write_cache(&t, "corp", &near);
    let o = t
        .cmd()
        .args(["--no-daemon", "export", "dev"])
        .output()
        .unwrap();
    assert_eq!(export_key(&o), dev_key());
    assert_eq!(fake.count("CreateToken", "refresh_token"), 2);
}

// ---------------------------------------------------------------------------
// Bad input

#[tokio::test(flavor = "multi_thread")]
async fn bad_names_say_where_and_exit_3() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    let cfg = std::fs::read_to_string(t.home.join(".aws/config")).unwrap();
    let lines = cfg.lines().count();
    t.write_aws_config(&format!(
        "{cfg}\n[profile dangling]\nsso_session = gone\n\n[profile noregion]\nsso_start_url = https://x.awsapps.com/start\n"
    ));
    let cases = [
        (
            "dangling",
            format!(
                "elhaz: ~/.aws/config:{}: profile dangling names sso_session gone, but there is no [sso-session gone] section",
                lines + 3
            ),
        ),
        (
            "nosuch",
            "elhaz: no SSO session or profile named nosuch in ~/.aws/config".to_string(),
        ),
        (
            "noregion",
            format!(
                "elhaz: ~/.aws/config:{}: profile noregion has sso_start_url but no sso_region",
                lines + 5
            ),
        ),
    ];
    for (name, first) in cases {
        let o = t
            .cmd()
            .args(["sso", "login", name, "--no-browser"])
            .output()
            .unwrap();
        assert_fails(&o, 3, &first);
    }
    // No [sso-session] at all, and no NAME.
    t.write_aws_config("[default]\nregion = us-east-1\n");
    let o = t.cmd().args(["sso", "login"]).output().unwrap();
    assert_fails(&o, 3, "elhaz: no [sso-session] section in ~/.aws/config");
    assert!(fake.st().calls.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oidc_api_that_fails_or_never_confirms_keeps_the_old_token() {
    let fake = FakeSso::start().await;
    let mut t = sso_user(&fake);
    seeded(&t, &fake, "old-token", 3600, true);
    let before = std::fs::read(cache_file(&t, "corp")).unwrap();
    let login = ["sso", "login", "corp", "--use-device-code", "--no-browser"];
    let oidc = fake.oidc.uri();
    for (status, kind) in [
        (400, "InvalidRequestException"),
        (500, "InternalServerException"),
    ] {
        fake.st().fault = Some((status, kind.to_string()));
        let o = t.cmd().args(login).output().unwrap();
        assert_fails(
            &o,
            5,
            &format!("elhaz: SSO OIDC RegisterClient at {oidc} failed: {kind}: injected fault"),
        );
        assert_eq!(std::fs::read(cache_file(&t, "corp")).unwrap(), before);
    }
    fake.st().fault = None;
    fake.st().pending_forever = true;
    t.set("ELHAZ_SSO_LOGIN_TIMEOUT", "3");
    let o = t.cmd().args(login).output().unwrap();
    assert_fails(
        &o,
        5,
        &format!("elhaz: the code {USER_CODE} was not confirmed within 3s"),
    );
    assert_eq!(std::fs::read(cache_file(&t, "corp")).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_while_waiting_keeps_the_old_token() {
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    seeded(&t, &fake, "old-token", 3600, true);
    let before = std::fs::read(cache_file(&t, "corp")).unwrap();
    fake.st().pending_forever = true;
    let mut c = t.std_cmd();
    c.args(["sso", "login", "corp", "--use-device-code", "--no-browser"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    assert!(wait_until(Duration::from_secs(20), || fake
        .count("CreateToken", DEVICE_GRANT)
        >= 1));
    // SAFETY: a plain kill(2) of our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let o = child.wait_with_output().unwrap();
    let said = "elhaz: login to SSO session 'corp' interrupted; the token cache is unchanged";
    assert_fails(&o, 130, said);
    assert_eq!(std::fs::read(cache_file(&t, "corp")).unwrap(), before);
    // The README's exit code table says what it prints.
    let row = crate::readme::exit_code_row(130);
    assert!(row.contains(&format!("`{said}`")), "{row}");
}

// ---------------------------------------------------------------------------
// Secrets

#[tokio::test(flavor = "multi_thread")]
async fn no_token_or_client_secret_reaches_a_log_even_at_trace() {
    let fake = FakeSso::start().await;
    let mut t = sso_user(&fake);
    t.set("ELHAZ_LOG", "trace");
    // A login (PKCE, so the code and verifier exist too), then a renewal in the
    // daemon and one in-process.
    let login = t
        .cmd()
        .args(["-vv", "sso", "login", "corp"])
        .output()
        .unwrap();
    assert!(login.status.success(), "{}", stderr(&login));
    let first = read_cache(&t, "corp");
    let mut near = first.clone();
    near["expiresAt"] = json!(iso_in(60));
    write_cache(&t, "corp", &near);
    let daemon = t.cmd().args(["-vv", "export", "dev"]).output().unwrap();
    assert_eq!(export_key(&daemon), dev_key());
    let second = read_cache(&t, "corp");
    let mut near = second.clone();
    near["expiresAt"] = json!(iso_in(60));
    write_cache(&t, "corp", &near);
    let local = t
        .cmd()
        .args(["-vv", "--no-daemon", "export", "dev"])
        .output()
        .unwrap();
    assert_eq!(export_key(&local), dev_key());
    assert_eq!(fake.count("CreateToken", "refresh_token"), 2);
    let third = read_cache(&t, "corp");
    t.stop_daemon();

    let mut secrets: Vec<String> = Vec::new();
    for v in [&first, &second, &third] {
        for k in ["accessToken", "refreshToken", "clientSecret"] {
            secrets.push(v[k].as_str().unwrap().to_string());
        }
    }
    secrets.extend(fake.st().codes.keys().cloned());
    secrets.push("auth-code-".into());
    let texts = [
        ("the daemon log", log_text(&t)),
        ("login stderr", stderr(&login)),
        ("daemon export stderr", stderr(&daemon)),
        ("local export stderr", stderr(&local)),
    ];
    for (what, text) in &texts {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{s} in {what}:\n{text}");
        }
    }
    assert!(
        log_text(&t).contains("renewed the SSO token"),
        "the daemon says what it did: {}",
        log_text(&t)
    );
}

/// The token cache is trusted as configs are: a cache directory others can write to,
/// a token file another user owns, or a lock file that is a link someone put there is
/// refused with the command that fixes it, and nothing is followed or written.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_cache_another_user_could_have_written_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let fake = FakeSso::start().await;
    let t = sso_user(&fake);
    seeded(&t, &fake, "tok-1", 3600, false);
    let file = cache_file(&t, "corp");
    let dir = file.parent().unwrap().to_path_buf();

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = t
        .cmd()
        .args(["--no-daemon", "export", "dev"])
        .output()
        .unwrap();
    assert_fails(
        &o,
        3,
        "elhaz: ~/.aws/sso/cache: the SSO token cache is writable by other users (mode 0777): elhaz will not use a token another user could have written or swapped",
    );
    assert!(stderr(&o).contains("chmod go-w"), "{}", stderr(&o));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

    if is_root() {
        std::os::unix::fs::chown(&file, Some(NOBODY), None).unwrap();
        let o = t
            .cmd()
            .args(["--no-daemon", "export", "dev"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("the SSO token file is owned by uid 65534"),
            "{}",
            stderr(&o)
        );
        std::os::unix::fs::chown(&file, Some(0), None).unwrap();
    }
    assert!(fake.st().role_calls.is_empty(), "no token was used");

    // A token near its expiry is renewed under a lock file: one that is a link is
    // never followed (the link's target is not created).
    seeded(&t, &fake, "tok-2", 60, true);
    let victim = t.dir.path().join("victim");
    let lock = dir.join(format!(".elhaz-{}.renew.lock", sha1_hex("corp")));
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    // (The renewal fails, and the token, still valid for a minute, is used.)
    let _ = t
        .cmd()
        .args(["--no-daemon", "export", "dev"])
        .output()
        .unwrap();
    assert!(!victim.exists(), "the link was followed");
    assert!(lock.is_symlink());
}
