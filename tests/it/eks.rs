//! `elhaz eks`: the real kubectl runs `elhaz eks token` as its exec credential plugin
//! against a fake EKS API server that checks each token as EKS does and asks STS (moto,
//! or the fake STS that counts calls) who signed it; `elhaz eks kubeconfig` writes the
//! entries moto's DescribeCluster gives, and kubectl uses them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use elhaz::credentials::Credentials;
use elhaz::credentials::eks::{Presign, TOKEN_PREFIX};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::eks::*;
use crate::support::world::World;
use crate::support::*;

/// The role every moto session here assumes (ROLE_ARN): what kubectl must show.
const ADMIN: &str = "arn:aws:sts::123456789012:assumed-role/Admin/";

fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

/// A user of moto's STS (and EKS) with config `prod` assuming ROLE_ARN.
fn moto_user() -> (TestEnv, String) {
    let moto = moto().endpoint();
    let mut t = TestEnv::with_sts(&moto);
    t.set("AWS_ENDPOINT_URL_EKS", &moto);
    t.set("ELHAZ_NO_SPINNER", "1");
    t.role_config("prod", "");
    (t, moto)
}

/// `elhaz eks token ARGS` as `t`, which must succeed: the token.
fn token(t: &TestEnv, args: &[&str]) -> String {
    let o = t
        .std_cmd()
        .args(["eks", "token"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "eks token {args:?}: {}", stderr(&o));
    token_of(&o.stdout)
}

/// The fake STS's keys, as it issues them (the n-th answered call's).
fn fake_sts_keys(n: usize) -> Vec<(String, String)> {
    (1..=n)
        .map(|i| (format!("ASIAFAKE{i:012}"), format!("fakesecret{i}xyz")))
        .collect()
}

#[test]
fn kubectl_auth_whoami_shows_names_role_with_the_daemon_and_without() {
    let (t, moto) = moto_user();
    let eks = FakeEks::start(&t, "demo", &moto, &[]);
    let kubeconfig = eks.kubeconfig(&t, &["eks", "token", "prod", "--cluster", "demo"]);
    for no_daemon in [true, false] {
        let mut c = kubectl(&t, &kubeconfig);
        if no_daemon {
            c.env("ELHAZ_NO_DAEMON", "1");
        }
        let o = c.args(["auth", "whoami"]).output().unwrap();
        assert!(o.status.success(), "no_daemon={no_daemon}: {}", stderr(&o));
        let shown = text(&o.stdout);
        assert!(
            shown.contains(&format!("Username     {ADMIN}")),
            "no_daemon={no_daemon}: {shown}"
        );
        assert_eq!(t.socket().exists(), !no_daemon, "no_daemon={no_daemon}");
        let version = kubectl(&t, &kubeconfig)
            .args(["get", "--raw", "/version"])
            .output()
            .unwrap();
        assert!(text(&version.stdout).contains("v1.32.0-eks-fake"));
    }
    let log = eks.log();
    assert!(!log.is_empty());
    for line in &log {
        assert!(line.starts_with(&format!("accepted {ADMIN}")), "{log:?}");
    }
}

#[test]
fn the_fake_refuses_another_clusters_token_an_expired_one_and_a_tampered_one() {
    let (t, moto) = moto_user();
    let eks = FakeEks::start(&t, "demo", &moto, &[]);
    let good = token(&t, &["prod", "--cluster", "demo"]);
    let o = eks.kubectl_with_token(&t, &good, &["auth", "whoami"]);
    assert!(text(&o.stdout).contains(ADMIN), "{}", stderr(&o));

    let other = token(&t, &["prod", "--cluster", "other"]);
    let url = url_of(&good);
    assert_eq!(
        params_of(&url_of(&other))
            .iter()
            .find(|(k, _)| k == "X-Amz-Credential"),
        params_of(&url)
            .iter()
            .find(|(k, _)| k == "X-Amz-Credential"),
        "the same session signs both"
    );
    let tampered = {
        let at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
        let flipped = if &url[at..at + 1] == "0" { "1" } else { "0" };
        token_for(&format!("{}{flipped}{}", &url[..at], &url[at + 1..]))
    };
    // The session's own keys, signing 16 minutes ago.
    let v: Value = serde_json::from_slice(&run(&t, &["export", "prod"]).stdout).unwrap();
    let expiry = OffsetDateTime::parse(v["expiry_time"].as_str().unwrap(), &Rfc3339).unwrap();
    let now = OffsetDateTime::now_utc();
    let creds = Credentials::new(
        v["access_key"].as_str().unwrap(),
        v["secret_key"].as_str().unwrap(),
        v["token"].as_str().unwrap(),
        expiry,
        now - time::Duration::minutes(30),
    );
    let to = Presign {
        endpoint: &moto,
        region: "us-east-1",
        cluster: "demo",
    };
    let old = elhaz::credentials::eks::token(&creds, &to, now - time::Duration::minutes(16))
        .unwrap()
        .value()
        .to_string();
    for (what, bad, why) in [
        ("another cluster's token", &other, "signature mismatch"),
        ("a tampered token", &tampered, "signature mismatch"),
        ("a token signed 16 minutes ago", &old, "is expired"),
    ] {
        let o = eks.kubectl_with_token(&t, bad, &["auth", "whoami"]);
        assert!(!o.status.success(), "{what} was accepted");
        assert!(
            stderr(&o).contains("Unauthorized"),
            "{what}: {}",
            stderr(&o)
        );
        let last = eks.log().pop().unwrap_or_default();
        assert!(
            last.starts_with("refused: ") && last.contains(why),
            "{what}: {last}"
        );
    }
}

/// What `aws eks get-token` (awscli's TokenGenerator on botocore's presigner) makes
/// for these inputs, with botocore's clock stopped at `at`.
const BOTOCORE_TOKEN: &str = r#"
import datetime, sys
from unittest import mock
import botocore.auth, botocore.session
from awscli.customizations.eks.get_token import STSClientFactory, TokenGenerator
key, secret, token, region, cluster, at = sys.argv[1:]
session = botocore.session.get_session()
session.set_credentials(key, secret, token)
at = datetime.datetime.strptime(at, "%Y%m%dT%H%M%SZ")
with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
    sts = STSClientFactory(session).get_sts_client(region_name=region)
    print(TokenGenerator(sts).get_token(cluster))
"#;

#[test]
fn the_token_carries_the_parameters_and_signature_aws_eks_get_token_makes() {
    let t = TestEnv::new();
    let at = time::macros::datetime!(2026-03-01 10:00:00 UTC);
    let (key, secret, session) = (
        "ASIAGOLDENKEY0000001",
        "golden/secret+key=",
        "golden+session/token==",
    );
    for (region, cluster) in [("eu-west-1", "demo"), ("us-west-2", "a-cluster.with_dots")] {
        let creds = Credentials::new(key, secret, session, at + time::Duration::hours(1), at);
        let endpoint = format!("https://sts.{region}.amazonaws.com");
        let to = Presign {
            endpoint: &endpoint,
            region,
            cluster,
        };
        let ours = elhaz::credentials::eks::token(&creds, &to, at).unwrap();
        let o = t
            .program(venv_python())
            .args(["-c", BOTOCORE_TOKEN, key, secret, session, region, cluster])
            .args(["20260301T100000Z"])
            .output()
            .unwrap();
        assert!(o.status.success(), "botocore: {}", stderr(&o));
        let theirs = text(&o.stdout).trim().to_string();
        assert!(theirs.starts_with(TOKEN_PREFIX) && !theirs.ends_with('='));
        let (ours_url, theirs_url) = (url_of(ours.value()), url_of(&theirs));
        assert_eq!(
            ours_url.split('?').next(),
            theirs_url.split('?').next(),
            "the same endpoint"
        );
        let params = params_of(&ours_url);
        assert_eq!(params, params_of(&theirs_url), "{ours_url}\n{theirs_url}");
        assert!(params.iter().any(|(k, _)| k == "X-Amz-Signature"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_tokens_cost_one_assume_role_and_kubectl_takes_them() {
    let (sts, mut t) = TestEnv::with_role(Duration::from_secs(3600)).await;
    t.set("ELHAZ_NO_SPINNER", "1");
    let eks = FakeEks::start(&t, "demo", &sts.uri(), &fake_sts_keys(10));
    for i in 0..100 {
        let url = url_of(&token(&t, &["prod", "--cluster", "demo"]));
        let credential = params_of(&url)
            .into_iter()
            .find(|(k, _)| k == "X-Amz-Credential")
            .unwrap()
            .1;
        assert!(
            credential.starts_with("ASIAFAKE000000000001/"),
            "token {i}: {credential}"
        );
    }
    let kubeconfig = eks.kubeconfig(&t, &["eks", "token", "prod", "--cluster", "demo"]);
    for _ in 0..3 {
        let o = kubectl(&t, &kubeconfig)
            .args(["get", "--raw", "/version"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);
    assert_eq!(sts.signers("AssumeRole").await, ["AKIASOURCEKEY0000000"]);
    // The fake asked STS who signed, with the session's key.
    assert!(
        sts.signers("GetCallerIdentity")
            .await
            .iter()
            .all(|s| s == "ASIAFAKE000000000001")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exec_credential_follows_kubectls_version_and_the_sessions_end() {
    let (sts, mut t) = TestEnv::with_role(Duration::from_secs(3600)).await;
    t.set("ELHAZ_NO_SPINNER", "1");
    let info = |v: &str| {
        format!(r#"{{"kind":"ExecCredential","apiVersion":"{v}","spec":{{"interactive":false}}}}"#)
    };
    let v1 = "client.authentication.k8s.io/v1";
    let v1beta1 = "client.authentication.k8s.io/v1beta1";
    for (exec_info, version, warned) in [
        (None, v1beta1, false),
        (Some(info(v1)), v1, false),
        (Some(info(v1beta1)), v1beta1, false),
        (Some("{not json".to_string()), v1beta1, true),
    ] {
        let mut c = t.cmd();
        if let Some(i) = &exec_info {
            c.env("KUBERNETES_EXEC_INFO", i);
        }
        let o = c
            .args(["eks", "token", "prod", "--cluster", "demo"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stderr(&o).contains("warning: KUBERNETES_EXEC_INFO"), warned);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["kind"], "ExecCredential");
        assert_eq!(v["apiVersion"], version, "{exec_info:?}");
        assert_eq!(v["spec"], serde_json::json!({}));
        let expires = OffsetDateTime::parse(
            v["status"]["expirationTimestamp"].as_str().unwrap(),
            &Rfc3339,
        )
        .unwrap();
        let ahead = (expires - OffsetDateTime::now_utc()).whole_seconds();
        assert!((14 * 60 - 60..=14 * 60).contains(&ahead), "{ahead} s ahead");
    }
    // A session ending in 10 minutes: the token ends a minute before it.
    let short = TestEnv::with_sts(&sts.uri());
    short.role_config("prod", "");
    sts.set_lifetime(Duration::from_secs(600));
    let o = local(&short, &["eks", "token", "prod", "--cluster", "demo"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let expires = v["status"]["expirationTimestamp"].as_str().unwrap();
    let session: Value =
        serde_json::from_slice(&local(&short, &["export", "prod"]).stdout).unwrap();
    let session_end = expiry_unix(&session);
    let token_end = OffsetDateTime::parse(expires, &Rfc3339)
        .unwrap()
        .unix_timestamp();
    assert!(
        (session_end - 62..=session_end - 58).contains(&token_end),
        "token until {token_end}, session until {session_end}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_failure_is_one_line_on_stderr_with_its_fix_and_nothing_on_stdout() {
    let (_sts, t) = TestEnv::with_role(Duration::from_secs(3600)).await;
    let o = run(&t, &["eks", "token", "nope", "--cluster", "demo"]);
    assert_fails(&o, 3, "elhaz: no config or AWS profile named \"nope\"");
    assert!(stderr(&o).lines().nth(1).unwrap().starts_with("hint: "));

    let o = run(&t, &["eks", "token", "prod"]);
    assert_fails(&o, 2, "--cluster <CLUSTER>");

    // The daemon cannot start (its log path is a directory).
    let logs = t.home.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let o = t
        .cmd()
        .args(["--logging-path", logs.to_str().unwrap()])
        .args(["eks", "token", "prod", "--cluster", "demo"])
        .output()
        .unwrap();
    assert_fails(&o, 4, "elhaz: ");
    assert_eq!(
        stderr(&o)
            .lines()
            .filter(|l| l.starts_with("elhaz: "))
            .count(),
        1
    );
}

/// A kubeconfig for `name` at a server nobody answers on: the plugin fails first.
fn unreachable_kubeconfig(t: &TestEnv, name: &str) -> std::path::PathBuf {
    let ca = t.dir.path().join("no-ca.pem");
    std::fs::write(&ca, "").unwrap();
    kubeconfig_for(
        t,
        "demo",
        "https://127.0.0.1:9",
        &ca,
        &["eks", "token", name, "--cluster", "demo"],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_without_a_terminal_gets_the_mfa_and_sso_fixes_and_never_waits() {
    let fake = crate::support::sso::FakeSso::start().await;
    let mut w = World::new().await;
    w.add_sso(&fake);
    ok(&w.run(&[], &["sso", "logout", "corp"]));
    for (name, line, fix) in [
        (
            "prod-mfa",
            "elhaz: prod-mfa needs an MFA code, and there is no terminal to ask for it on",
            "hint: type the code once in a terminal, and the daemon signs kubectl's tokens until the session ends: elhaz exec prod-mfa -- kubectl",
        ),
        (
            "corp-dev",
            "elhaz: SSO session 'corp' is not logged in",
            "; run: elhaz sso login corp",
        ),
    ] {
        let kubeconfig = unreachable_kubeconfig(&w.t, name);
        let mut c = kubectl(&w.t, &kubeconfig);
        c.args(["auth", "whoami"]);
        // No controlling terminal either, as under cron or CI.
        unsafe {
            use std::os::unix::process::CommandExt;
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let (status, out, err) = output_within(
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            Duration::from_secs(60),
        );
        assert!(status.is_some_and(|s| !s.success()), "{name}: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains(line), "{name}: {err}");
        assert!(err.contains(fix), "{name}: {err}");
        assert!(err.contains("exit code 5"), "{name}: {err}");
    }
    assert!(
        w.sts
            .calls("AssumeRole")
            .await
            .iter()
            .all(|c| !c.contains_key("TokenCode"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_on_a_terminal_asks_for_the_mfa_code_once() {
    let w = World::new().await;
    let eks = FakeEks::start(&w.t, "demo", &w.sts.uri(), &fake_sts_keys(20));
    let kubeconfig = eks.kubeconfig(&w.t, &["eks", "token", "prod-mfa", "--cluster", "demo"]);
    let mut cmd = w.t.program(which_on_path("kubectl").expect("kubectl"));
    cmd.env("KUBECONFIG", &kubeconfig).args(["auth", "whoami"]);
    let mut p = Pty::spawn(cmd, "kubectl auth whoami", 160, Duration::from_secs(60));
    p.expect("MFA code for prod-mfa");
    p.send_line("123456");
    p.expect("Username");
    assert_eq!(p.wait_exit(), 0, "{}", p.transcript);
    let calls = w.sts.calls("AssumeRole").await;
    let mfa: Vec<_> = calls
        .iter()
        .filter(|c| c.contains_key("TokenCode"))
        .collect();
    assert_eq!(mfa.len(), 1, "{calls:?}");
    assert_eq!(mfa[0]["TokenCode"], "123456");
    assert_eq!(mfa[0]["RoleArn"], "arn:aws:iam::444444444444:role/ProdMfa");
    // The next kubectl, without a terminal: the daemon's session, no question.
    let o = kubectl(&w.t, &kubeconfig)
        .args(["get", "--raw", "/version"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(w.sts.calls("AssumeRole").await.len(), calls.len());
}

/// Creates `name` in moto's EKS.
fn create_cluster(t: &TestEnv, moto: &str, name: &str) -> Value {
    let script = r#"
import json, sys, boto3
eks = boto3.client("eks", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="AKIACREATOR000000000", aws_secret_access_key="x")
eks.create_cluster(name=sys.argv[2], roleArn="arn:aws:iam::123456789012:role/eks",
                   resourcesVpcConfig={})
print(json.dumps(eks.describe_cluster(name=sys.argv[2])["cluster"], default=str))
"#;
    let o = t
        .program(venv_python())
        .args(["-c", script, moto, name])
        .output()
        .unwrap();
    assert!(o.status.success(), "create_cluster: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `kubectl config view` of a kubeconfig, as JSON.
fn view(t: &TestEnv, kubeconfig: &Path) -> Value {
    let o = kubectl(t, kubeconfig)
        .args(["config", "view", "--raw", "-o", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn names(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

/// The entry of `list` named `name`.
fn entry<'a>(v: &'a Value, list: &str, name: &str) -> &'a Value {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}: {v}"))
}

const OTHER: &str = "apiVersion: v1
clusters:
- cluster:
    server: https://other.example:6443
  name: other
contexts:
- context:
    cluster: other
    user: other
  name: other
current-context: other
kind: Config
preferences: {}
users:
- name: other
  user:
    token: kept
";

#[test]
fn kubeconfig_writes_describe_clusters_entries_keeps_the_rest_and_kubectl_uses_them() {
    let (mut t, moto) = moto_user();
    let described = create_cluster(&t, &moto, "kc-demo");
    let arn = described["arn"].as_str().unwrap().to_string();
    let file = t.dir.path().join("kube/config");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, OTHER).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let second = t.dir.path().join("kube/second");
    t.set(
        "KUBECONFIG",
        &format!("{}:{}", file.display(), second.display()),
    );
    let args = [
        "eks",
        "kubeconfig",
        "prod",
        "--cluster",
        "kc-demo",
        "--region",
        "us-east-1",
    ];

    let o = run(&t, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("added context {arn} in")),
        "{}",
        stderr(&o)
    );
    assert!(
        !second.exists(),
        "KUBECONFIG's first file is the one written"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the file keeps its mode");
    let written = std::fs::read_to_string(&file).unwrap();
    let v = view(&t, &file);
    for list in ["clusters", "users", "contexts"] {
        let mut found = names(&v, list);
        found.sort();
        assert_eq!(found, [arn.as_str(), "other"], "{list}");
        let entries = &written[written.find(&format!("{list}:")).unwrap()..];
        assert!(
            entries.find("other").unwrap() < entries.find(&arn).unwrap(),
            "{list}: the other entry stays first\n{written}"
        );
    }
    assert_eq!(v["current-context"], arn.as_str());
    assert_eq!(entry(&v, "users", "other")["user"]["token"], "kept");
    let cluster = &entry(&v, "clusters", &arn)["cluster"];
    assert_eq!(cluster["server"], described["endpoint"]);
    assert_eq!(
        cluster["certificate-authority-data"],
        described["certificateAuthority"]["data"]
    );
    let exec = &entry(&v, "users", &arn)["user"]["exec"];
    assert_eq!(exec["command"], bin().to_str().unwrap());
    assert_eq!(
        exec["args"],
        serde_json::json!([
            "eks",
            "token",
            "prod",
            "--cluster",
            "kc-demo",
            "--region",
            "us-east-1"
        ])
    );
    assert_eq!(exec["interactiveMode"], "IfAvailable");
    assert_eq!(exec["provideClusterInfo"], false);

    // Twice: nothing changes.
    let before = std::fs::read(&file).unwrap();
    let o = run(&t, &args);
    assert!(stderr(&o).contains("is up to date"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // --dry-run shows the change and writes nothing.
    let mut dry = args.to_vec();
    dry.extend(["--alias", "kc", "--dry-run"]);
    let o = run(&t, &dry);
    assert!(o.status.success(), "{}", stderr(&o));
    let diff = text(&o.stdout);
    assert!(diff.contains("+current-context: kc"), "{diff}");
    assert!(diff.contains("+  name: kc"), "{diff}");
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // A new file is private; kubectl reaches the cluster (here the fake, in moto's
    // endpoint's place) as NAME's role through the user entry written.
    let fresh = t.dir.path().join("new/kubeconfig");
    let o = run(
        &t,
        &[&args[..], &["--kubeconfig", fresh.to_str().unwrap()]].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let eks = FakeEks::start(&t, "kc-demo", &moto, &[]);
    let set = kubectl(&t, &fresh)
        .args(["config", "set-cluster", &arn, "--embed-certs"])
        .arg(format!("--server={}", eks.server()))
        .arg(format!("--certificate-authority={}", eks.ca().display()))
        .output()
        .unwrap();
    assert!(set.status.success(), "{}", stderr(&set));
    let o = kubectl(&t, &fresh)
        .args(["auth", "whoami"])
        .output()
        .unwrap();
    assert!(text(&o.stdout).contains(ADMIN), "{}", stderr(&o));
}

#[test]
fn kubeconfig_refuses_bad_input_naming_the_file_and_leaves_it_untouched() {
    let (t, moto) = moto_user();
    create_cluster(&t, &moto, "kc-bad");
    let dir = t.dir.path().join("kube");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config");
    let at = |extra: &[&str]| -> Vec<String> {
        [
            "eks",
            "kubeconfig",
            "prod",
            "--region",
            "us-east-1",
            "--kubeconfig",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([file.display().to_string()])
        .chain(extra.iter().map(|s| s.to_string()))
        .collect()
    };
    let shown = file.display().to_string();

    std::fs::write(&file, OTHER).unwrap();
    let o = t.cmd().args(at(&["--cluster", "nope"])).output().unwrap();
    assert_fails(&o, 3, "elhaz: no EKS cluster nope in us-east-1");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), OTHER);

    let broken = "apiVersion: v1\nclusters: [\n";
    std::fs::write(&file, broken).unwrap();
    let o = t.cmd().args(at(&["--cluster", "kc-bad"])).output().unwrap();
    assert_fails(&o, 3, &format!("elhaz: {shown}:"));
    assert!(stderr(&o).contains("not a kubeconfig"), "{}", stderr(&o));
    assert!(stderr(&o).contains("hint: "), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), broken);

    // Someone else's file: another user's (as root), else a read-only directory.
    std::fs::write(&file, OTHER).unwrap();
    for d in [t.dir.path(), &dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = t.std_cmd();
    c.args(at(&["--cluster", "kc-bad"])).stdin(Stdio::null());
    if is_root() {
        use std::os::unix::process::CommandExt;
        c.uid(NOBODY).gid(NOBODY);
    } else {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let o = c.output().unwrap();
    assert_fails(
        &o,
        3,
        &format!("elhaz: cannot write {shown}: permission denied"),
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), OTHER);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `--alias` naming another cluster's context, or a user whose credentials are not
/// elhaz's (a token other contexts use), is refused and the file left as it was; our
/// own alias is updated in place, its namespace kept.
#[test]
fn kubeconfig_never_takes_over_another_clusters_context_or_user() {
    let (t, moto) = moto_user();
    create_cluster(&t, &moto, "kc-alias");
    let file = t.dir.path().join("kube/config");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let kc = |alias: &str| -> Output {
        t.cmd()
            .args([
                "eks",
                "kubeconfig",
                "prod",
                "--cluster",
                "kc-alias",
                "--region",
                "us-east-1",
            ])
            .args(["--kubeconfig", file.to_str().unwrap(), "--alias", alias])
            .output()
            .unwrap()
    };
    // OTHER's context and user are both named `other`, with a token.
    std::fs::write(&file, OTHER).unwrap();
    let o = kc("other");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already has a context named other, for cluster other"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--alias"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), OTHER);
    // A user of that name only (its context is called something else).
    let lone_user = OTHER
        .replace(
            "  name: other\ncurrent-context",
            "  name: ctx\ncurrent-context",
        )
        .replace("current-context: other", "current-context: ctx");
    std::fs::write(&file, &lone_user).unwrap();
    let o = kc("other");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("user named other with credentials that are not elhaz's"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), lone_user);
    // Our own alias: written, then updated with the namespace the user gave it.
    std::fs::write(&file, OTHER).unwrap();
    let o = kc("demo");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kubectl(&t, &file)
        .args(["config", "set-context", "demo", "--namespace", "team-a"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kc("demo");
    assert!(o.status.success(), "{}", stderr(&o));
    let v = view(&t, &file);
    assert_eq!(
        entry(&v, "contexts", "demo")["context"]["namespace"],
        "team-a"
    );
    assert_eq!(entry(&v, "users", "other")["user"]["token"], "kept");
}
