//! The credential engine: what reaches STS and the SSO portal, where the
//! source credentials come from, MFA, web identity, whoami, and STS failures.
//!
//! Most tests run the engine in-process (`--no-daemon`); a few go through the daemon.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SOURCE_KEY: &str = "AKIASOURCEKEY0000000";

// ---------------------------------------------------------------------------
// helpers

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The same, in a new session: no controlling terminal, so /dev/tty cannot be opened.
fn local_without_tty(t: &TestEnv, args: &[&str]) -> Output {
    let mut c = t.std_cmd();
    c.arg("--no-daemon").args(args).stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    c.output().unwrap()
}

/// Each STS request for `action`: its form body and the access key id it was signed
/// with (from `Authorization: AWS4-HMAC-SHA256 Credential=AKID/date/region/sts/...`),
/// plus the region of the signature scope.
async fn signed(sts: &FakeSts, action: &str) -> Vec<(BTreeMap<String, String>, String, String)> {
    sts.log()
        .await
        .into_iter()
        .filter(|c| c.action == action)
        .map(|c| (c.form, c.signer, c.region))
        .collect()
}

/// An executable script in the test's temp dir.
fn script(t: &TestEnv, name: &str, body: &str) -> PathBuf {
    let p = t.dir.path().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn write_credentials(t: &TestEnv, text: &str) {
    std::fs::write(t.home.join(".aws/credentials"), text).unwrap();
}

// ---------------------------------------------------------------------------
// AssumeRole parameters

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_fully_populated_config_sends_every_assume_role_parameter() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = TestEnv::with_sts(&sts.uri());
    t.write_config(
        "full",
        &format!(
            r#"AssumeRole:
  RoleArn: {ROLE_ARN}
  RoleSessionName: alice-at-work
  DurationSeconds: 1800
  ExternalId: ext-4242
  SerialNumber: arn:aws:iam::123456789012:mfa/alice
  TokenCode: "123456"
  SourceIdentity: alice
  Policy: '{POLICY}'
  PolicyArns:
    - arn:aws:iam::aws:policy/ReadOnlyAccess
  Tags:
    - Key: team
      Value: platform
    - Key: cost-center
      Value: "42"
  TransitiveTagKeys: [team, cost-center]
  ProvidedContexts:
    - ProviderArn: arn:aws:iam::aws:contextProvider/IdentityCenter
      ContextAssertion: opaque-assertion
STS:
  region_name: eu-west-1
Meta:
  description: for people only, never sent
"#
        ),
    );
    let v = export_json(&local(&t, &["export", "full"]));
    assert_eq!(v["access_key"], "ASIAFAKE000000000001");

    let calls = signed(&sts, "AssumeRole").await;
    assert_eq!(calls.len(), 1);
    let (body, akid, region) = &calls[0];
    let expected: BTreeMap<String, String> = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", ROLE_ARN),
        ("RoleSessionName", "alice-at-work"),
        ("DurationSeconds", "1800"),
        ("ExternalId", "ext-4242"),
        ("SerialNumber", "arn:aws:iam::123456789012:mfa/alice"),
        ("TokenCode", "123456"),
        ("SourceIdentity", "alice"),
        ("Policy", POLICY),
        (
            "PolicyArns.member.1.arn",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
        ),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "platform"),
        ("Tags.member.2.Key", "cost-center"),
        ("Tags.member.2.Value", "42"),
        ("TransitiveTagKeys.member.1", "team"),
        ("TransitiveTagKeys.member.2", "cost-center"),
        (
            "ProvidedContexts.member.1.ProviderArn",
            "arn:aws:iam::aws:contextProvider/IdentityCenter",
        ),
        (
            "ProvidedContexts.member.1.ContextAssertion",
            "opaque-assertion",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(body, &expected, "exactly these parameters, nothing else");
    assert_eq!(akid, SOURCE_KEY, "signed with the source credentials");
    assert_eq!(
        region, "eu-west-1",
        "STS.region_name picks the signing region"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sts_region_is_the_config_s_then_the_profile_s_then_the_environment_s() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    // An outer `elhaz shell` (or the user) exported a region: it is the last resort.
    t.set("AWS_REGION", "ap-south-1");
    t.write_aws_config("[profile src]\nregion = eu-central-1\n");
    write_credentials(
        &t,
        "[src]\naws_access_key_id = AKIASRCPROFILE000000\naws_secret_access_key = src-secret\n",
    );
    let with = |extra: &str| format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\n{extra}");
    t.write_config("sts-region", &with("STS:\n  region_name: eu-west-3\nSession:\n  region_name: eu-north-1\n  profile_name: src\n"));
    t.write_config(
        "session-region",
        &with("Session:\n  region_name: eu-north-1\n  profile_name: src\n"),
    );
    t.write_config("profile-region", &with("Session:\n  profile_name: src\n"));
    t.write_config("env-region", &with(""));
    for name in [
        "sts-region",
        "session-region",
        "profile-region",
        "env-region",
    ] {
        export_json(&local(&t, &["export", name]));
    }
    let regions: Vec<String> = signed(&sts, "AssumeRole")
        .await
        .into_iter()
        .map(|c| c.2)
        .collect();
    assert_eq!(
        regions,
        ["eu-west-3", "eu-north-1", "eu-central-1", "ap-south-1"]
    );

    t.unset("AWS_REGION");
    export_json(&local(&t, &["export", "env-region"]));
    let calls = signed(&sts, "AssumeRole").await;
    assert_eq!(calls[4].2, "us-east-1", "the last fallback");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_role_session_name_is_generated_from_user_and_time() {
    let (sts, t) = TestEnv::with_role(Duration::from_secs(3600)).await;
    let before = unix_now();
    export_json(&local(&t, &["export", "prod"]));
    let after = unix_now();

    let calls = sts.calls("AssumeRole").await;
    let name = calls[0]["RoleSessionName"].clone();
    let stamp: i64 = name
        .strip_prefix("elhaz-tester-")
        .unwrap_or_else(|| panic!("{name:?} is not elhaz-<user>-<time>"))
        .parse()
        .unwrap_or_else(|_| panic!("{name:?} does not end in unix time"));
    assert!(
        (before..=after).contains(&stamp),
        "{stamp} not in {before}..={after}"
    );
    assert!(
        !calls[0].contains_key("DurationSeconds"),
        "STS's default unless asked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_session_name_stays_within_sts_rules_for_odd_user_names() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    let user = format!("jo é/s{}", "x".repeat(80));
    t.set("USER", &user);
    t.role_config("prod", "");
    export_json(&local(&t, &["export", "prod"]));
    let name = sts.calls("AssumeRole").await[0]["RoleSessionName"].clone();
    assert!(name.len() <= 64, "{name} is longer than 64");
    assert!(name.starts_with("elhaz-jos"), "{name}");
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)),
        "{name}"
    );
}

// ---------------------------------------------------------------------------
// IAM Identity Center (SSO)

const SSO_TOKEN: &str = "valid-sso-access-token";
const SSO_KEY: &str = "ASIASSOPORTALKEY0001";

fn sso_env(sts: &FakeSts, portal: &MockServer) -> TestEnv {
    let mut t = TestEnv::with_sts(&sts.uri());
    t.set("AWS_ENDPOINT_URL_SSO", &portal.uri());
    t.write_aws_config(
        "[profile my-sso-profile]
sso_session = my-sso
sso_account_id = 111122223333
sso_role_name = ReadOnly
region = us-east-1

[sso-session my-sso]
sso_region = us-east-1
sso_start_url = https://my-sso-portal.awsapps.com/start
sso_registration_scopes = sso:account:access

[profile legacy]
sso_start_url = https://legacy-portal.awsapps.com/start
sso_region = us-east-1
sso_account_id = 111122223333
sso_role_name = ReadOnly
region = us-east-1
",
    );
    t
}

/// Writes `~/.aws/sso/cache/<sha1(key)>.json` expiring `expires_in` seconds from now.
fn sso_cache(t: &TestEnv, key: &str, start_url: &str, expires_in: i64) {
    sso_cache_token(t, key, start_url, expires_in, SSO_TOKEN);
}

fn sso_cache_token(t: &TestEnv, key: &str, start_url: &str, expires_in: i64, token: &str) {
    let dir = t.home.join(".aws/sso/cache");
    std::fs::create_dir_all(&dir).unwrap();
    let expires = time::OffsetDateTime::from_unix_timestamp(unix_now() + expires_in)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = serde_json::json!({
        "startUrl": start_url,
        "region": "us-east-1",
        "accessToken": token,
        "expiresAt": expires,
    });
    std::fs::write(
        dir.join(format!("{}.json", sha1_hex(key))),
        body.to_string(),
    )
    .unwrap();
}

/// The SSO portal: GetRoleCredentials for 111122223333/ReadOnly with SSO_TOKEN.
async fn sso_portal() -> MockServer {
    let portal = MockServer::start().await;
    let expiration_ms = (unix_now() + 3600) * 1000;
    Mock::given(method("GET"))
        .and(path("/federation/credentials"))
        .and(query_param("account_id", "111122223333"))
        .and(query_param("role_name", "ReadOnly"))
        .and(header("x-amz-sso_bearer_token", SSO_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "roleCredentials": {
                "accessKeyId": SSO_KEY,
                "secretAccessKey": "sso-secret",
                "sessionToken": "sso-session-token",
                "expiration": expiration_ms,
            }
        })))
        .mount(&portal)
        .await;
    // Any other token: what the real portal says of an expired or revoked one.
    Mock::given(method("GET"))
        .and(path("/federation/credentials"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("x-amzn-ErrorType", "UnauthorizedException")
                .set_body_json(
                    serde_json::json!({"message": "Session token not found or invalid"}),
                ),
        )
        .with_priority(10)
        .mount(&portal)
        .await;
    portal
}

async fn portal_calls(portal: &MockServer) -> usize {
    portal.received_requests().await.unwrap_or_default().len()
}

const SSO_EXPIRED: &str = "SSO session 'my-sso' has expired; run: elhaz sso login my-sso";
const SSO_MISSING: &str = "SSO session 'my-sso' is not logged in; run: elhaz sso login my-sso";

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_sso_token_serves_the_profile_as_a_name() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let portal = sso_portal().await;
    let t = sso_env(&sts, &portal);
    sso_cache(
        &t,
        "my-sso",
        "https://my-sso-portal.awsapps.com/start",
        3600,
    );

    let v = export_json(&local(&t, &["export", "my-sso-profile"]));
    assert_eq!(v["access_key"], SSO_KEY);
    assert_eq!(v["secret_key"], "sso-secret");
    assert_eq!(v["token"], "sso-session-token");
    assert!((expiry_unix(&v) - (unix_now() + 3600)).abs() <= 5);
    assert_eq!(portal_calls(&portal).await, 1);
    assert!(
        sts.calls("AssumeRole").await.is_empty(),
        "SSO credentials are served as they are"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_sso_token_is_the_source_of_a_config_assuming_a_role() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let portal = sso_portal().await;
    let t = sso_env(&sts, &portal);
    sso_cache(
        &t,
        "my-sso",
        "https://my-sso-portal.awsapps.com/start",
        3600,
    );
    t.write_config(
        "via-sso",
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\nSession:\n  profile_name: my-sso-profile\n"),
    );
    let v = export_json(&local(&t, &["export", "via-sso"]));
    assert_eq!(v["access_key"], "ASIAFAKE000000000001");
    let calls = signed(&sts, "AssumeRole").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].1, SSO_KEY,
        "AssumeRole is signed with the SSO credentials"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_sso_token_says_which_login_to_run() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let portal = sso_portal().await;
    let t = sso_env(&sts, &portal);
    sso_cache(&t, "my-sso", "https://my-sso-portal.awsapps.com/start", -60);
    t.write_config(
        "via-sso",
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\nSession:\n  profile_name: my-sso-profile\n"),
    );
    for name in ["my-sso-profile", "via-sso"] {
        let o = local(&t, &["export", name]);
        assert_fails(&o, 5, SSO_EXPIRED);
    }
    // The daemon gives the same words and exit code.
    let o = t.cmd().args(["export", "via-sso"]).output().unwrap();
    assert_fails(&o, 5, SSO_EXPIRED);
    assert!(t.socket().exists(), "this went through the daemon");
    assert_eq!(
        portal_calls(&portal).await,
        0,
        "an expired token is not sent"
    );
    assert!(sts.calls("AssumeRole").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_sso_token_says_which_login_to_run() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let portal = sso_portal().await;
    let t = sso_env(&sts, &portal);
    t.write_config(
        "via-sso",
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\nSession:\n  profile_name: my-sso-profile\n"),
    );
    for name in ["my-sso-profile", "via-sso"] {
        let o = local(&t, &["export", name]);
        assert_fails(&o, 5, SSO_MISSING);
    }
    assert!(sts.calls("AssumeRole").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_sso_profile_names_the_profile_to_log_in() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let portal = sso_portal().await;
    let t = sso_env(&sts, &portal);
    let o = local(&t, &["export", "legacy"]);
    assert_fails(
        &o,
        5,
        "profile 'legacy' (SSO start URL https://legacy-portal.awsapps.com/start) is not logged in; run: elhaz sso login legacy",
    );
    // Once logged in (the cache is keyed by the start URL), the same profile works.
    sso_cache(
        &t,
        "https://legacy-portal.awsapps.com/start",
        "https://legacy-portal.awsapps.com/start",
        3600,
    );
    let v = export_json(&local(&t, &["export", "legacy"]));
    assert_eq!(v["access_key"], SSO_KEY);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_the_portal_refuses_says_which_login_to_run() {
    // An expired legacy token is not sent; one the portal refuses (revoked before its
    // expiry) asks for the same login.
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let portal = sso_portal().await;
    let t = sso_env(&sts, &portal);
    let url = "https://legacy-portal.awsapps.com/start";
    sso_cache_token(&t, url, url, -60, "stale-token");
    let o = local(&t, &["export", "legacy"]);
    assert_fails(
        &o,
        5,
        "profile 'legacy' (SSO start URL https://legacy-portal.awsapps.com/start) has expired; run: elhaz sso login legacy",
    );
    assert_eq!(portal_calls(&portal).await, 0);
    sso_cache_token(&t, url, url, 3600, "revoked-legacy");
    let o = local(&t, &["export", "legacy"]);
    assert_fails(
        &o,
        5,
        "profile 'legacy' (SSO start URL https://legacy-portal.awsapps.com/start) has expired; run: elhaz sso login legacy",
    );
    assert_eq!(portal_calls(&portal).await, 1);
    // The same for an sso-session token revoked before its expiry.
    sso_cache_token(
        &t,
        "my-sso",
        "https://my-sso-portal.awsapps.com/start",
        3600,
        "revoked",
    );
    let o = local(&t, &["export", "my-sso-profile"]);
    assert_fails(&o, 5, SSO_EXPIRED);
}

// ---------------------------------------------------------------------------
// MFA.command

const MFA_SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";

fn mfa_config(t: &TestEnv, name: &str, command_yaml: &str, timeout: Option<u64>) {
    let timeout = timeout
        .map(|s| format!("  timeout: {s}\n"))
        .unwrap_or_default();
    t.write_config(
        name,
        &format!(
            "AssumeRole:\n  RoleArn: {ROLE_ARN}\n  SerialNumber: {MFA_SERIAL}\nMFA:\n  command: {command_yaml}\n{timeout}"
        ),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mfa_command_code_reaches_token_code_and_nowhere_else() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    // Even the most verbose logging never shows the code.
    t.set("ELHAZ_LOG", "trace");
    let cmd = script(&t, "mfa-ok", "echo 'touch your key' >&2\necho ' 246810 '");
    mfa_config(&t, "mfa", &cmd.display().to_string(), None);
    // The argv form too.
    mfa_config(&t, "mfa-argv", "[printf, '%s\\n', '135790']", None);

    let o = local(&t, &["export", "mfa"]);
    export_json(&o);
    assert!(
        stderr(&o).contains("touch your key"),
        "the command's stderr reaches the user"
    );
    assert!(stderr(&o).contains("TRACE"), "the trace log is on");
    assert!(
        !stderr(&o).contains("246810"),
        "the code is not shown: {}",
        stderr(&o)
    );
    export_json(&local(&t, &["export", "mfa-argv"]));

    let calls = sts.calls("AssumeRole").await;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["SerialNumber"], MFA_SERIAL);
    assert_eq!(calls[0]["TokenCode"], "246810");
    assert_eq!(calls[1]["TokenCode"], "135790");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mfa_command_past_its_timeout_is_stopped() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = TestEnv::with_sts(&sts.uri());
    mfa_config(&t, "slow", "sleep 5", Some(1));
    let start = Instant::now();
    let o = local(&t, &["export", "slow"]);
    assert_fails(&o, 5, "MFA.command `sleep 5` timed out after 1s");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
    assert!(sts.calls("AssumeRole").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mfa_command_that_keeps_its_output_open_is_stopped_too() {
    // A shell that forks the slow part: elhaz must not wait for the grandchild.
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = TestEnv::with_sts(&sts.uri());
    mfa_config(&t, "slow", "'sleep 5; echo 123456'", Some(1));
    let start = Instant::now();
    let o = local(&t, &["export", "slow"]);
    assert_fails(
        &o,
        5,
        "MFA.command `sleep 5; echo 123456` timed out after 1s",
    );
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mfa_command_printing_non_digits_is_refused() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = TestEnv::with_sts(&sts.uri());
    let cmd = script(&t, "mfa-bad", "echo 12345x");
    mfa_config(&t, "bad", &cmd.display().to_string(), None);
    let o = local(&t, &["export", "bad"]);
    assert_fails(
        &o,
        5,
        &format!(
            "MFA.command `{}` did not give a 6-digit MFA code (got 6 characters, not all digits)",
            cmd.display()
        ),
    );
    assert!(!stderr(&o).contains("12345x"), "the output is not echoed");
    assert!(sts.calls("AssumeRole").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mfa_command_that_fails_is_reported_with_its_status() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = TestEnv::with_sts(&sts.uri());
    let cmd = script(&t, "mfa-fail", "echo 975310\nexit 3");
    mfa_config(&t, "fail", &cmd.display().to_string(), None);
    let o = local(&t, &["export", "fail"]);
    assert_fails(
        &o,
        5,
        &format!("MFA.command `{}` exited with status 3", cmd.display()),
    );
    assert!(!stderr(&o).contains("975310"));
    assert!(sts.calls("AssumeRole").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn through_the_daemon_mfa_codes_reach_sts_but_never_the_log() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    t.set("ELHAZ_LOG", "debug");
    let ok = script(&t, "mfa-ok", "echo 864209");
    let fail = script(&t, "mfa-fail", "echo 531086\nexit 7");
    mfa_config(&t, "mfa", &ok.display().to_string(), None);
    mfa_config(&t, "fail", &fail.display().to_string(), None);

    let o = t.cmd().args(["export", "mfa"]).output().unwrap();
    let v = export_json(&o);
    assert_eq!(v["access_key"], "ASIAFAKE000000000001");
    assert!(t.socket().exists(), "this went through the daemon");
    let calls = sts.calls("AssumeRole").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["TokenCode"], "864209");

    let o = t.cmd().args(["export", "fail"]).output().unwrap();
    assert_fails(
        &o,
        5,
        &format!("MFA.command `{}` exited with status 7", fail.display()),
    );

    let log = log_text(&t);
    assert!(
        log.contains("request"),
        "the daemon logged the requests: {log}"
    );
    let logged = log_untimed(&t);
    for code in ["864209", "531086", "fakesecret1xyz", "faketoken1xyz"] {
        assert!(
            !logged.contains(code),
            "secret {code} in the daemon log:\n{log}"
        );
        assert!(!stderr(&o).contains(code));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_serial_number_without_code_or_command_and_no_terminal_names_mfa_command() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = TestEnv::with_sts(&sts.uri());
    t.role_config("mfa", &format!("  SerialNumber: {MFA_SERIAL}\n"));
    let o = local_without_tty(&t, &["export", "mfa"]);
    assert_fails(&o, 5, &format!("an MFA code is needed for {MFA_SERIAL}"));
    assert!(stderr(&o).contains("MFA.command"), "{}", stderr(&o));
    assert!(sts.calls("AssumeRole").await.is_empty());
}

// ---------------------------------------------------------------------------
// Credentials that elhaz injected are never source credentials

const OUTER_KEY: &str = "ASIAOUTERSESSIONKEY0";
const DEFAULT_KEY: &str = "AKIADEFAULTPROFILE00";

/// A shell inside `elhaz shell outer`: the outer session's variables are set, and the
/// default profile has its own keys.
fn nested(sts: &FakeSts, inside: bool) -> TestEnv {
    let mut t = TestEnv::with_sts(&sts.uri());
    t.set("AWS_ACCESS_KEY_ID", OUTER_KEY);
    t.set("AWS_SECRET_ACCESS_KEY", "outer-secret");
    t.set("AWS_SESSION_TOKEN", "outer-token");
    if inside {
        t.set("ELHAZ_SESSION", "outer");
        t.set("ELHAZ_EXPIRES_AT", &(unix_now() + 3000).to_string());
        t.set("ELHAZ_REFRESH_AT", &(unix_now() + 2400).to_string());
    }
    write_credentials(
        &t,
        &format!(
            "[default]\naws_access_key_id = {DEFAULT_KEY}\naws_secret_access_key = default-secret\n\n\
             [src]\naws_access_key_id = AKIASRCPROFILE000000\naws_secret_access_key = src-secret\n"
        ),
    );
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nested_session_never_uses_the_outer_credentials_as_source() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    // Outside any session, the environment's keys are the default chain's first
    // choice: this is what must not happen inside one.
    let t = nested(&sts, false);
    t.role_config("other", "");
    export_json(&local(&t, &["export", "other"]));
    let calls = signed(&sts, "AssumeRole").await;
    assert_eq!(calls[0].1, OUTER_KEY);

    let t = nested(&sts, true);
    t.role_config("other", "");
    t.write_config(
        "via-profile",
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\nSession:\n  profile_name: src\n"),
    );
    t.write_config(
        "via-keys",
        &format!(
            "AssumeRole:\n  RoleArn: {ROLE_ARN}\nSession:\n  aws_access_key_id: AKIASTATICCONFIG0000\n  aws_secret_access_key: static-secret\n"
        ),
    );
    for name in ["other", "via-profile", "via-keys"] {
        export_json(&local(&t, &["export", name]));
    }
    let akids: Vec<String> = signed(&sts, "AssumeRole")
        .await
        .into_iter()
        .skip(1)
        .map(|c| c.1)
        .collect();
    assert_eq!(
        akids,
        [DEFAULT_KEY, "AKIASRCPROFILE000000", "AKIASTATICCONFIG0000"]
    );
    let tokens: Vec<String> = sts
        .server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .skip(1)
        .filter_map(|r| {
            r.headers
                .get("x-amz-security-token")
                .map(|v| v.to_str().unwrap().to_string())
        })
        .collect();
    assert!(
        tokens.is_empty(),
        "the outer session token was sent: {tokens:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nested_session_through_the_daemon_does_not_leak_either() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = nested(&sts, true);
    t.role_config("other", "");
    let o = t.cmd().args(["export", "other"]).output().unwrap();
    export_json(&o);
    assert!(t.socket().exists(), "this went through the daemon");
    let calls = signed(&sts, "AssumeRole").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1, DEFAULT_KEY);
}

// ---------------------------------------------------------------------------
// Interop with a real STS (moto)

fn moto_env() -> TestEnv {
    let mut t = TestEnv::new();
    t.set("AWS_ENDPOINT_URL_STS", &moto().endpoint());
    t.set("AWS_ACCESS_KEY_ID", "AKIAMOTOSOURCE000000");
    t.set("AWS_SECRET_ACCESS_KEY", "moto-secret");
    t.set("AWS_REGION", "us-east-1");
    t
}

#[test]
fn moto_assume_role_honours_duration_seconds() {
    let t = moto_env();
    for secs in [900, 3600] {
        let name = format!("d{secs}");
        t.role_config(&name, &format!("  DurationSeconds: {secs}\n"));
        let before = unix_now();
        let v = export_json(&local(&t, &["export", &name]));
        let expiry = expiry_unix(&v);
        assert!(
            (expiry - (before + secs)).abs() <= 5,
            "DurationSeconds {secs}: expiry {expiry}, expected about {}",
            before + secs
        );
        assert!(v["access_key"].as_str().unwrap().starts_with("ASIA"), "{v}");
    }
}

#[test]
fn moto_whoami_is_the_assumed_role() {
    let t = moto_env();
    t.role_config("prod", "  RoleSessionName: who-session\n");
    let o = local(&t, &["whoami", "prod"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["Arn"],
        "arn:aws:sts::123456789012:assumed-role/Admin/who-session"
    );
    assert_eq!(v["Account"], "123456789012");
    assert!(
        v["UserId"].as_str().unwrap().ends_with(":who-session"),
        "{v}"
    );

    let o = local(&t, &["whoami", "prod", "--obscure"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["Arn"], "***");
    assert_eq!(v["Account"], "***");
}

#[test]
fn moto_whoami_through_the_daemon() {
    let t = moto_env();
    t.role_config("prod", "  RoleSessionName: daemon-session\n");
    let o = t.cmd().args(["whoami", "prod"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(t.socket().exists(), "this went through the daemon");
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["Arn"],
        "arn:aws:sts::123456789012:assumed-role/Admin/daemon-session"
    );
}

#[test]
fn moto_web_identity_from_a_file_and_from_a_command() {
    let mut t = moto_env();
    // Web identity needs no source credentials at all.
    t.unset("AWS_ACCESS_KEY_ID").unset("AWS_SECRET_ACCESS_KEY");
    let token = t.dir.path().join("token.jwt");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2ln\n").unwrap();
    t.write_config(
        "wif-file",
        &format!(
            "AssumeRoleWithWebIdentity:\n  RoleArn: arn:aws:iam::123456789012:role/CI\n  RoleSessionName: ci-file\n  DurationSeconds: 900\n  WebIdentityTokenFile: {}\n",
            token.display()
        ),
    );
    t.write_config(
        "wif-cmd",
        "AssumeRoleWithWebIdentity:\n  RoleArn: arn:aws:iam::123456789012:role/CI\n  RoleSessionName: ci-cmd\n  WebIdentityTokenCommand: [printf, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjbWQifQ.c2ln']\n",
    );
    let before = unix_now();
    let v = export_json(&local(&t, &["export", "wif-file"]));
    assert!((expiry_unix(&v) - (before + 900)).abs() <= 5, "{v}");
    for (name, session) in [("wif-file", "ci-file"), ("wif-cmd", "ci-cmd")] {
        let o = local(&t, &["whoami", name]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(
            v["Arn"],
            format!("arn:aws:sts::123456789012:assumed-role/CI/{session}")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn web_identity_sends_the_token_and_no_signature() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = TestEnv::with_sts(&sts.uri());
    let token = t.dir.path().join("token.jwt");
    std::fs::write(&token, "  the-oidc-token\n").unwrap();
    t.write_config(
        "wif",
        &format!(
            "AssumeRoleWithWebIdentity:\n  RoleArn: arn:aws:iam::123456789012:role/CI\n  RoleSessionName: ci\n  DurationSeconds: 1200\n  WebIdentityTokenFile: {}\n  PolicyArns: [arn:aws:iam::aws:policy/ReadOnlyAccess]\n",
            token.display()
        ),
    );
    export_json(&local(&t, &["export", "wif"]));
    let calls = signed(&sts, "AssumeRoleWithWebIdentity").await;
    assert_eq!(calls.len(), 1);
    let (body, akid, _) = &calls[0];
    assert_eq!(body["WebIdentityToken"], "the-oidc-token");
    assert_eq!(body["RoleArn"], "arn:aws:iam::123456789012:role/CI");
    assert_eq!(body["DurationSeconds"], "1200");
    assert_eq!(
        body["PolicyArns.member.1.arn"],
        "arn:aws:iam::aws:policy/ReadOnlyAccess"
    );
    assert_eq!(akid, "", "AssumeRoleWithWebIdentity is not signed");
    // Read at each refresh: a new token is picked up.
    std::fs::write(&token, "the-next-token").unwrap();
    export_json(&local(&t, &["export", "wif"]));
    assert_eq!(
        sts.calls("AssumeRoleWithWebIdentity").await[1]["WebIdentityToken"],
        "the-next-token"
    );
}

// ---------------------------------------------------------------------------
// AWS CLI profiles as names

fn profile_env(sts: &FakeSts) -> TestEnv {
    let mut t = TestEnv::with_sts(&sts.uri());
    t.unset("AWS_ACCESS_KEY_ID").unset("AWS_SECRET_ACCESS_KEY");
    t.write_aws_config(&format!(
        "[profile base]\nregion = us-east-1\n\n\
         [profile dev]\nrole_arn = {ROLE_ARN}\nsource_profile = base\nduration_seconds = 1800\nrole_session_name = dev-session\nexternal_id = dev-ext\n\n\
         [profile mfa]\nrole_arn = {ROLE_ARN}\nsource_profile = base\nmfa_serial = {MFA_SERIAL}\n\n\
         [profile keys]\nregion = us-east-1\n"
    ));
    write_credentials(
        &t,
        "[base]\naws_access_key_id = AKIABASEPROFILE00000\naws_secret_access_key = base-secret\n\n\
         [keys]\naws_access_key_id = AKIAKEYSONLY00000000\naws_secret_access_key = keys-secret\n",
    );
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_profile_is_assumed_with_its_duration_seconds() {
    let sts = FakeSts::start(Duration::from_secs(1800)).await;
    let t = profile_env(&sts);
    let v = export_json(&local(&t, &["export", "dev"]));
    assert_eq!(v["access_key"], "ASIAFAKE000000000001");
    let calls = signed(&sts, "AssumeRole").await;
    assert_eq!(calls.len(), 1, "one AssumeRole, made by elhaz itself");
    let (body, akid, _) = &calls[0];
    assert_eq!(body["RoleArn"], ROLE_ARN);
    assert_eq!(body["DurationSeconds"], "1800");
    assert_eq!(body["RoleSessionName"], "dev-session");
    assert_eq!(body["ExternalId"], "dev-ext");
    assert_eq!(
        akid, "AKIABASEPROFILE00000",
        "signed with the source profile's keys"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_with_mfa_serial_asks_on_the_terminal_and_sends_the_code() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = profile_env(&sts);
    let mut cmd = t.std_cmd();
    cmd.args(["--no-daemon", "export", "mfa"]);
    let mut p = Pty::spawn(cmd, "elhaz export mfa", 120, Duration::from_secs(20));
    p.expect(&format!("MFA code for mfa ({MFA_SERIAL}): "));
    p.send_line("314159");
    p.expect("ASIAFAKE000000000001");
    assert_eq!(p.wait_exit(), 0, "{}", p.transcript);
    let calls = sts.calls("AssumeRole").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["SerialNumber"], MFA_SERIAL);
    assert_eq!(calls[0]["TokenCode"], "314159");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_with_mfa_serial_and_no_terminal_fails_clearly() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = profile_env(&sts);
    let o = local_without_tty(&t, &["export", "mfa"]);
    assert_fails(&o, 5, &format!("an MFA code is needed for {MFA_SERIAL}"));
    // A profile cannot hold MFA.command: the hint makes the config that can.
    assert!(
        stderr(&o).contains(&format!(
            "elhaz config add mfa --profile base --role-arn {ROLE_ARN} --serial-number {MFA_SERIAL} --mfa-command"
        )),
        "{}",
        stderr(&o)
    );
    assert!(sts.calls("AssumeRole").await.is_empty());

    // Following the hint works, with no terminal.
    let code = script(&t, "mfa-code", "echo 161803");
    let add = t
        .cmd()
        .args([
            "config",
            "add",
            "mfa",
            "--profile",
            "base",
            "--role-arn",
            ROLE_ARN,
        ])
        .args(["--serial-number", MFA_SERIAL, "--mfa-command"])
        .arg(&code)
        .output()
        .unwrap();
    assert!(add.status.success(), "{}", stderr(&add));
    export_json(&local_without_tty(&t, &["export", "mfa"]));
    let calls = sts.calls("AssumeRole").await;
    assert_eq!(calls[0]["TokenCode"], "161803");
    assert_eq!(calls[0]["SerialNumber"], MFA_SERIAL);
}

/// A role profile whose source is `credential_source = Environment`: the caller's
/// environment keys sign the AssumeRole, which carries the profile's MFA and duration.
fn credential_source_env(sts: &FakeSts) -> TestEnv {
    let t = TestEnv::with_sts(&sts.uri());
    t.write_aws_config(&format!(
        "[profile envrole]\nrole_arn = {ROLE_ARN}\ncredential_source = Environment\nmfa_serial = {MFA_SERIAL}\nduration_seconds = 7200\n\n\
         [profile envplain]\nrole_arn = {ROLE_ARN}\ncredential_source = Environment\nduration_seconds = 7200\n"
    ));
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn credential_source_environment_honours_mfa_serial_and_duration_seconds() {
    let sts = FakeSts::start(Duration::from_secs(7200)).await;
    let t = credential_source_env(&sts);
    // In-process and through the daemon alike: the code is asked on the terminal, for
    // the session and its device.
    let prompt = format!("envrole ({MFA_SERIAL})");
    for (i, args) in [
        &["--no-daemon", "export", "envrole"][..],
        &["export", "envrole"],
    ]
    .iter()
    .enumerate()
    {
        let mut cmd = t.std_cmd();
        cmd.args(*args);
        let mut p = Pty::spawn(
            cmd,
            &format!("elhaz {args:?}"),
            120,
            Duration::from_secs(20),
        );
        p.expect(&format!("MFA code for {prompt}: "));
        p.send_line(&format!("27182{i}"));
        p.expect(&format!("ASIAFAKE00000000000{}", i + 1));
        assert_eq!(p.wait_exit(), 0, "{}", p.transcript);
    }
    let calls = signed(&sts, "AssumeRole").await;
    assert_eq!(calls.len(), 2);
    for (i, (body, akid, _)) in calls.iter().enumerate() {
        assert_eq!(body["RoleArn"], ROLE_ARN);
        assert_eq!(body["SerialNumber"], MFA_SERIAL);
        assert_eq!(body["TokenCode"], format!("27182{i}"));
        assert_eq!(body["DurationSeconds"], "7200");
        assert_eq!(akid, SOURCE_KEY, "signed by the caller's environment keys");
    }

    // Without MFA, duration_seconds alone is sent too.
    export_json(&local(&t, &["export", "envplain"]));
    let calls = signed(&sts, "AssumeRole").await;
    assert_eq!(calls[2].0["DurationSeconds"], "7200");
    assert_eq!(calls[2].1, SOURCE_KEY);
    assert!(!calls[2].0.contains_key("SerialNumber"));
}

#[tokio::test(flavor = "multi_thread")]
async fn credential_source_environment_without_keys_or_terminal_says_what_to_do() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let mut t = credential_source_env(&sts);
    let o = local_without_tty(&t, &["export", "envrole"]);
    assert_fails(&o, 5, &format!("an MFA code is needed for {MFA_SERIAL}"));
    assert!(
        stderr(&o).contains(&format!(
            "elhaz config add envrole --role-arn {ROLE_ARN} --serial-number {MFA_SERIAL} --mfa-command"
        )),
        "{}",
        stderr(&o)
    );
    t.unset("AWS_ACCESS_KEY_ID").unset("AWS_SECRET_ACCESS_KEY");
    let o = local(&t, &["export", "envplain"]);
    assert_fails(
        &o,
        5,
        "profile envplain: credential_source Environment, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
    );
    assert!(sts.calls("AssumeRole").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_with_static_keys_only_is_refused() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = profile_env(&sts);
    let o = local(&t, &["export", "keys"]);
    assert_fails(
        &o,
        3,
        "profile \"keys\" gives long-term keys only; elhaz serves temporary credentials",
    );
    assert!(!stdout(&o).contains("AKIAKEYSONLY"));
    let o = local(&t, &["exec", "keys", "--", "true"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

// ---------------------------------------------------------------------------
// STS failures

/// STS answering every AssumeRole with HTTP `status` and error `code`: `export` fails
/// with exit code 5 and AWS's own words, after `attempts` calls (retryable errors are
/// tried three times, the others once).
async fn an_sts_error_is_reported(status: u16, code: &'static str, attempts: usize) {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    sts.set_fault(Fault::Status(status, code));
    let t = TestEnv::with_sts(&sts.uri());
    t.role_config("prod", "");
    let o = local(&t, &["export", "prod"]);
    assert_fails(
        &o,
        5,
        &format!("AssumeRole {ROLE_ARN} failed: {code}: fake {code}"),
    );
    assert_eq!(sts.calls("AssumeRole").await.len(), attempts, "{code}");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_retried_three_times_then_reported() {
    an_sts_error_is_reported(400, "Throttling", 3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_is_retried_three_times_then_reported() {
    an_sts_error_is_reported(500, "InternalFailure", 3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn access_denied_is_not_retried_and_keeps_aws_words() {
    an_sts_error_is_reported(403, "AccessDenied", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_sts_times_out_per_attempt_three_times_then_reports() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    sts.set_fault(Fault::Delay(Duration::from_secs(3)));
    let mut t = TestEnv::with_sts(&sts.uri());
    t.set("ELHAZ_STS_TIMEOUT", "1");
    t.role_config("prod", "");
    let start = Instant::now();
    let o = local(&t, &["export", "prod"]);
    assert_fails(
        &o,
        5,
        &format!(
            "AssumeRole {ROLE_ARN} failed: STS at {} did not answer in time (3 attempts)",
            sts.uri()
        ),
    );
    assert!(
        start.elapsed() < Duration::from_secs(9),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(sts.calls("AssumeRole").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_source_credentials_at_all_is_a_clear_error() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    t.unset("AWS_ACCESS_KEY_ID").unset("AWS_SECRET_ACCESS_KEY");
    t.role_config("prod", "");
    let o = local(&t, &["export", "prod"]);
    assert_fails(&o, 5, "no source credentials found");
    assert!(
        stderr(&o).contains("Session.profile_name"),
        "{}",
        stderr(&o)
    );
    assert!(sts.calls("AssumeRole").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sts_section_sets_endpoint_and_keys_for_assume_role_and_whoami() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let mut t = TestEnv::new();
    t.set("AWS_REGION", "us-east-1");
    t.write_config(
        "sts",
        &format!(
            "AssumeRole:\n  RoleArn: {ROLE_ARN}\nSTS:\n  endpoint_url: {}\n  region_name: us-west-2\n  aws_access_key_id: AKIASTSSECTION000000\n  aws_secret_access_key: sts-secret\n",
            sts.uri()
        ),
    );
    let o = local(&t, &["whoami", "sts"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["Arn"],
        "arn:aws:sts::123456789012:assumed-role/Admin/fake"
    );
    let assume = signed(&sts, "AssumeRole").await;
    assert_eq!(assume.len(), 1);
    assert_eq!(
        (assume[0].1.as_str(), assume[0].2.as_str()),
        ("AKIASTSSECTION000000", "us-west-2")
    );
    let who = signed(&sts, "GetCallerIdentity").await;
    assert_eq!(who.len(), 1);
    assert_eq!(
        who[0].1, "ASIAFAKE000000000001",
        "whoami uses the assumed credentials"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ca_bundle_that_is_not_pem_is_refused() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = TestEnv::with_sts(&sts.uri());
    let bundle = t.dir.path().join("ca.txt");
    std::fs::write(&bundle, "not a certificate").unwrap();
    t.write_config(
        "ca",
        &format!(
            "AssumeRole:\n  RoleArn: {ROLE_ARN}\nSTS:\n  verify: {}\n",
            bundle.display()
        ),
    );
    let o = local(&t, &["export", "ca"]);
    assert_fails(
        &o,
        3,
        &format!("STS.verify: {} holds no PEM certificate", bundle.display()),
    );
    assert!(sts.calls("AssumeRole").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_false_is_refused_before_any_call() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = TestEnv::with_sts(&sts.uri());
    t.write_config(
        "insecure",
        &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\nSTS:\n  verify: false\n"),
    );
    let o = local(&t, &["export", "insecure"]);
    assert_fails(&o, 3, "STS.verify: false is refused");
    assert!(sts.calls("AssumeRole").await.is_empty());
}

/// Ctrl-C at the MFA prompt ends elhaz with 130 and gives the terminal back as it was:
/// the prompt hides what is typed, and a process killed mid-prompt used to leave the
/// user's shell with echo off.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_at_the_mfa_prompt_leaves_the_terminal_echoing() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = profile_env(&sts);
    for args in ["--no-daemon export mfa", "export mfa"] {
        let mut cmd = t.program("bash");
        cmd.env("TERM", "xterm").args([
            "--norc",
            "-c",
            &format!(
                "stty echo; {} {args}; echo \"rc=$?\"; stty -a | tr ' ' '\\n' | grep -x -e echo -e -echo",
                bin().display()
            ),
        ]);
        let mut p = Pty::spawn(cmd, &format!("elhaz {args}"), 120, Duration::from_secs(20));
        p.expect(&format!("MFA code for mfa ({MFA_SERIAL}):"));
        p.settle();
        p.send("\x03");
        p.expect("rc=130");
        let after = p.collect(Duration::from_millis(500));
        assert!(
            after.split_whitespace().any(|w| w == "echo"),
            "{args}: the terminal was left without echo: {after:?}"
        );
        // Nothing said about the interruption (the daemon's start is announced).
        let said: Vec<&str> = p
            .transcript
            .lines()
            .filter(|l| l.contains("elhaz:") && !l.contains("started the daemon"))
            .collect();
        assert!(said.is_empty(), "{args}: {said:?}");
    }
    assert!(sts.calls("AssumeRole").await.is_empty());
}

// ---------------------------------------------------------------------------
// A typed MFA code STS refuses

/// AWS's words for a wrong or reused code, as elhaz repeats them.
const REFUSED: &str =
    "AccessDenied: MultiFactorAuthentication failed with invalid MFA one time pass code";

/// `elhaz ARGS` on a terminal, for the tests of typed MFA codes.
fn mfa_on_terminal(t: &TestEnv, args: &[&str]) -> Pty {
    let mut cmd = t.std_cmd();
    cmd.env("TERM", "xterm").args(args);
    Pty::spawn(
        cmd,
        &format!("elhaz {}", args.join(" ")),
        120,
        Duration::from_secs(20),
    )
}

/// The MFA codes STS got with AssumeRole, in order.
async fn token_codes(sts: &FakeSts) -> Vec<String> {
    sts.calls("AssumeRole")
        .await
        .iter()
        .map(|c| c["TokenCode"].clone())
        .collect()
}

/// `elhaz ARGS` with no controlling terminal (nobody to ask), stdin closed.
fn without_terminal(t: &TestEnv, args: &[&str]) -> Output {
    let mut c = t.std_cmd();
    c.args(args).stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    c.output().unwrap()
}

/// The profile `mfa` (profile_env) and the config `mfacfg` with the same device.
fn refusing_env(sts: &FakeSts) -> TestEnv {
    let t = profile_env(sts);
    t.write_config(
        "mfacfg",
        &format!(
            "AssumeRole:\n  RoleArn: {ROLE_ARN}\n  SerialNumber: {MFA_SERIAL}\nSession:\n  profile_name: base\n"
        ),
    );
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_mfa_code_is_asked_again_saying_why_in_process_and_through_the_daemon() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    sts.refuse_codes(&["111111", "222222"]);
    let t = refusing_env(&sts);
    let mut issued = 0;
    for args in [
        &["--no-daemon", "export", "mfa"][..],
        &["export", "mfa"],
        &["--no-daemon", "export", "mfacfg"],
        &["export", "mfacfg"],
    ] {
        let name = args[args.len() - 1];
        let mut p = mfa_on_terminal(&t, args);
        let prompt = format!("MFA code for {name} ({MFA_SERIAL}): ");
        p.expect(&prompt);
        p.send_line("111111");
        p.expect(&format!(
            "elhaz: the MFA code was refused ({REFUSED}); type the current one (try 2 of 3)"
        ));
        p.expect(&prompt);
        p.send_line("222222");
        p.expect("(try 3 of 3)");
        p.expect(&prompt);
        p.send_line("333333");
        issued += 1;
        p.expect(&format!("ASIAFAKE{issued:012}"));
        assert_eq!(p.wait_exit(), 0, "{args:?}: {}", p.transcript);
    }
    let codes = token_codes(&sts).await;
    assert_eq!(codes, ["111111", "222222", "333333"].repeat(4));
}

#[tokio::test(flavor = "multi_thread")]
async fn three_refused_mfa_codes_end_in_aws_words_and_ctrl_c_at_a_second_try_is_130() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    sts.refuse_codes(&["111111", "222222", "333333"]);
    let t = refusing_env(&sts);
    for args in [&["--no-daemon", "export", "mfa"][..], &["export", "mfa"]] {
        let before = sts.calls("AssumeRole").await.len();
        let mut p = mfa_on_terminal(&t, args);
        for code in ["111111", "222222", "333333"] {
            p.expect(&format!("MFA code for mfa ({MFA_SERIAL}): "));
            p.send_line(code);
        }
        p.expect(&format!("elhaz: AssumeRole {ROLE_ARN} failed: {REFUSED}."));
        p.expect(&format!("hint: each code is taken once, within its 30 seconds: run the command again with the next one; if every code is refused, check that {MFA_SERIAL} is the source identity's device: aws iam list-mfa-devices"));
        assert_eq!(p.wait_exit(), 5, "{args:?}: {}", p.transcript);
        assert!(!p.transcript.contains("try 4"), "{}", p.transcript);
        assert_eq!(sts.calls("AssumeRole").await.len(), before + 3, "{args:?}");

        // Ctrl-C at the second prompt: 130, and nothing more said or sent.
        let before = sts.calls("AssumeRole").await.len();
        let mut p = mfa_on_terminal(&t, args);
        p.expect(&format!("MFA code for mfa ({MFA_SERIAL}): "));
        p.send_line("111111");
        p.expect("(try 2 of 3)");
        p.expect(&format!("MFA code for mfa ({MFA_SERIAL}): "));
        p.settle();
        p.send("\x03");
        assert_eq!(p.wait_exit(), 130, "{args:?}: {}", p.transcript);
        let after = p
            .transcript
            .split("(try 2 of 3)")
            .nth(1)
            .unwrap_or_default();
        assert!(!after.contains("elhaz:"), "{args:?}: {after:?}");
        assert_eq!(sts.calls("AssumeRole").await.len(), before + 1, "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_add_asks_again_for_a_refused_code_and_the_session_then_serves() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    sts.refuse_codes(&["111111"]);
    let t = refusing_env(&sts);
    let mut p = mfa_on_terminal(&t, &["daemon", "add", "mfacfg"]);
    p.expect(&format!("MFA code for mfacfg ({MFA_SERIAL}): "));
    p.send_line("111111");
    p.expect("(try 2 of 3)");
    p.expect(&format!("MFA code for mfacfg ({MFA_SERIAL}): "));
    // A code that is not 6 digits is refused at the prompt, before STS sees it.
    p.send_line("12345");
    p.expect_screen("an MFA code is 6 digits");
    p.send("\x15");
    p.send_line("444444");
    assert_eq!(p.wait_exit(), 0, "{}", p.transcript);
    // The daemon serves it now, without a terminal and without another code.
    let o = without_terminal(&t, &["export", "mfacfg"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let codes = token_codes(&sts).await;
    assert_eq!(codes, ["111111", "444444"]);
}

/// A config whose source profile is the one that needs the code: the code typed goes
/// to that profile's AssumeRole, once, instead of the prompt coming back for ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_config_whose_source_profile_needs_mfa_asks_once_and_sends_the_code_there() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = profile_env(&sts);
    t.write_config(
        "via-mfa",
        "AssumeRole:\n  RoleArn: arn:aws:iam::123456789012:role/Deploy\nSession:\n  profile_name: mfa\n",
    );
    for (i, args) in [
        &["--no-daemon", "export", "via-mfa"][..],
        &["export", "via-mfa"],
    ]
    .iter()
    .enumerate()
    {
        let mut p = mfa_on_terminal(&t, args);
        p.expect(&format!("({MFA_SERIAL}): "));
        p.send_line(&format!("55555{i}"));
        p.expect(&format!("ASIAFAKE{:012}", 2 * i + 2));
        assert_eq!(p.wait_exit(), 0, "{args:?}: {}", p.transcript);
        // One prompt: each asked is a line of its own (redrawn in place while typed).
        let asked = p
            .transcript
            .split("\r\n")
            .filter(|l| l.contains("MFA code for"))
            .count();
        assert_eq!(asked, 1, "{}", p.transcript);
    }
    let calls = sts.calls("AssumeRole").await;
    let sent: Vec<(&str, Option<&str>)> = calls
        .iter()
        .map(|c| {
            (
                c["RoleArn"].as_str(),
                c.get("TokenCode").map(String::as_str),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            (ROLE_ARN, Some("555550")),
            ("arn:aws:iam::123456789012:role/Deploy", None),
            (ROLE_ARN, Some("555551")),
            ("arn:aws:iam::123456789012:role/Deploy", None),
        ]
    );
}

/// `daemon share` of a NAME that needs an MFA code asks for it on the terminal it runs
/// on (the share's clients have none), then shares a session that serves without one.
#[tokio::test(flavor = "multi_thread")]
async fn daemon_share_of_an_mfa_name_asks_for_the_code_on_its_terminal() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = refusing_env(&sts);
    let sock = t.home.join("share.sock");
    let mut p = mfa_on_terminal(
        &t,
        &[
            "daemon",
            "share",
            "mfacfg",
            "--socket",
            sock.to_str().unwrap(),
        ],
    );
    p.expect(&format!("MFA code for mfacfg ({MFA_SERIAL}): "));
    p.send_line("555555");
    p.expect("sharing mfacfg");
    assert_eq!(p.wait_exit(), 0, "{}", p.transcript);
    // A client of the share, with no terminal: served, no other code asked.
    let o = without_terminal(&t, &["export", "--socket", sock.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let codes = token_codes(&sts).await;
    assert_eq!(codes, ["555555"]);
    t.stop_daemon();
}
