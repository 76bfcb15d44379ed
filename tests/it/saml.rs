//! AssumeRoleWithSAML configs: the assertion from a command or a file, afresh at each
//! fetch; end to end against moto (who the credentials belong to, their expiry, the
//! daemon's refresh-ahead calling the command again), the exact unsigned request on a
//! fake STS, and every bad input with its first line and exit code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

const ROLE: &str = "arn:aws:iam::123456789012:role/SamlRole";
const PRINCIPAL: &str = "arn:aws:iam::123456789012:saml-provider/corp-idp";

/// A minimal SAMLResponse as an IdP posts it, base64: the attributes AWS reads.
fn assertion(session: &str, duration: u32) -> String {
    let xml = format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Assertion><saml:AttributeStatement><saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role"><saml:AttributeValue>{ROLE},{PRINCIPAL}</saml:AttributeValue></saml:Attribute><saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/RoleSessionName"><saml:AttributeValue>{session}</saml:AttributeValue></saml:Attribute><saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/SessionDuration"><saml:AttributeValue>{duration}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>"#
    );
    aws_smithy_types::base64::encode(xml)
}

/// A user with no source credentials at all (SAML needs none), STS at `endpoint`.
fn saml_env(endpoint: &str) -> TestEnv {
    let mut t = TestEnv::with_sts(endpoint);
    t.unset("AWS_ACCESS_KEY_ID").unset("AWS_SECRET_ACCESS_KEY");
    t.set("AWS_DEFAULT_REGION", "us-east-1");
    t
}

/// An IdP helper: counts its calls in `calls`, says something on stderr as a real one
/// would, and prints the assertion kept in `assertion.b64` (so a test can change it).
fn helper(t: &TestEnv, b64: &str) -> (PathBuf, PathBuf) {
    let dir = t.dir.path();
    let file = dir.join("assertion.b64");
    std::fs::write(&file, b64).unwrap();
    let calls = dir.join("calls");
    let script = dir.join("saml-helper");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho called >> '{}'\necho 'saml-helper: touch your security key' >&2\ncat '{}'\n",
            calls.display(),
            file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (script, calls)
}

fn calls(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn saml_config(t: &TestEnv, name: &str, source: &str, extra: &str) {
    t.write_config(
        name,
        &format!(
            "AssumeRoleWithSAML:\n  RoleArn: {ROLE}\n  PrincipalArn: {PRINCIPAL}\n  {source}\n{extra}"
        ),
    );
}

/// The first line elhaz itself printed (a helper's own stderr comes before it).
fn first_line(o: &std::process::Output) -> String {
    text(&o.stderr)
        .lines()
        .find(|l| l.starts_with("elhaz: "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn moto_gives_the_saml_role_through_exec_from_a_command_and_from_a_file() {
    let t = saml_env(&moto().endpoint());
    let (script, _) = helper(&t, &assertion("alice@corp", 3600));
    saml_config(
        &t,
        "saml",
        &format!("SAMLAssertionCommand: {}", script.display()),
        "  DurationSeconds: 3600\n",
    );
    let file = t.dir.path().join("file.b64");
    std::fs::write(&file, format!("{}\n", assertion("bob@corp", 3600))).unwrap();
    saml_config(
        &t,
        "saml-file",
        &format!("SAMLAssertionFile: {}", file.display()),
        "",
    );
    // The aws CLI, given the credentials by exec, asks moto who it is (moto answers
    // from the key that signed): the same role through the daemon, without it, and
    // from a --server child's container endpoint.
    for (name, session) in [("saml", "alice@corp"), ("saml-file", "bob@corp")] {
        for how in [
            &["exec"][..],
            &["--no-daemon", "exec"],
            &["exec", "--server"],
        ] {
            let o = t
                .std_cmd()
                .args(how)
                .args([
                    name,
                    "--",
                    "aws",
                    "sts",
                    "get-caller-identity",
                    "--output",
                    "json",
                ])
                .output()
                .unwrap();
            ok(&o);
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(
                v["Arn"],
                format!("arn:aws:sts::123456789012:assumed-role/SamlRole/{session}"),
                "{name} {how:?}"
            );
        }
    }
    let before = unix_now();
    let v = export_json(&local(&t, &["export", "saml"]));
    assert!(
        (expiry_unix(&v) - (before + 3600)).abs() <= 10,
        "the session does not last the hour asked for: {v}"
    );
    // The helper's own prompt reaches the terminal.
    let o = local(&t, &["export", "saml"]);
    assert!(
        text(&o.stderr).contains("saml-helper: touch your security key"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn the_daemon_refreshes_a_saml_session_ahead_of_expiry_by_asking_the_helper_again() {
    let t = saml_env(&moto().endpoint());
    // moto takes the session's lifetime from the assertion: 40 s.
    let (script, counter) = helper(&t, &assertion("carol@corp", 40));
    saml_config(
        &t,
        "saml",
        &format!("SAMLAssertionCommand: [{}]", script.display()),
        "",
    );
    let first = export_json(&run(&t, &["export", "saml"]));
    assert!(t.socket().exists(), "this went through the daemon");
    assert_eq!(calls(&counter), 1);
    // No client request from here: the daemon asks the helper again before expiry.
    assert!(
        wait_until(Duration::from_secs(35), || calls(&counter) >= 2),
        "the helper was not called again within 35 s of 40 s credentials"
    );
    assert!(
        unix_now() < expiry_unix(&first),
        "refreshed only after expiry"
    );
    // The helper has answered; the AssumeRoleWithSAML it feeds may still be in flight
    // (a loaded machine): the refreshed session is served as soon as it is in.
    let mut second = export_json(&run(&t, &["export", "saml"]));
    let served_new = wait_until(Duration::from_secs(10), || {
        second = export_json(&run(&t, &["export", "saml"]));
        second["access_key"] != first["access_key"]
    });
    assert!(served_new, "the refreshed session is served: {second}");
    assert!(
        unix_now() < expiry_unix(&first),
        "before the old one expired"
    );
    assert_eq!(calls(&counter), 2, "served from the daemon's cache");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_request_carries_the_assertion_and_no_signature() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    // Source keys are in the environment: the call must still go unsigned.
    let t = TestEnv::with_sts(&sts.uri());
    let b64 = assertion("dave@corp", 7200);
    let (script, _) = helper(&t, &b64);
    saml_config(
        &t,
        "saml",
        &format!("SAMLAssertionCommand: {}", script.display()),
        "  DurationSeconds: 7200\n  PolicyArns: [arn:aws:iam::aws:policy/ReadOnlyAccess]\n",
    );
    export_json(&local(&t, &["export", "saml"]));
    let requests = sts.server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert!(
        r.headers.get("authorization").is_none(),
        "AssumeRoleWithSAML was signed: {:?}",
        r.headers.get("authorization")
    );
    let body = form(&String::from_utf8_lossy(&r.body));
    assert_eq!(body["Action"], "AssumeRoleWithSAML");
    assert_eq!(body["RoleArn"], ROLE);
    assert_eq!(body["PrincipalArn"], PRINCIPAL);
    assert_eq!(body["SAMLAssertion"], b64);
    assert_eq!(body["DurationSeconds"], "7200");
    assert_eq!(
        body["PolicyArns.member.1.arn"],
        "arn:aws:iam::aws:policy/ReadOnlyAccess"
    );
    // Fetched afresh: a new assertion reaches the next call.
    let next = assertion("dave@corp", 3600);
    std::fs::write(t.dir.path().join("assertion.b64"), &next).unwrap();
    export_json(&local(&t, &["export", "saml"]));
    assert_eq!(
        sts.calls("AssumeRoleWithSAML").await[1]["SAMLAssertion"],
        next
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_helper_or_assertion_says_which_and_exits_5_and_the_assertion_stays_secret() {
    let sts = FakeSts::start(Duration::from_secs(3600)).await;
    let t = saml_env(&sts.uri());
    let cases: &[(&str, &str, &str)] = &[
        (
            "fails",
            "'sh -c \"echo denied >&2; exit 1\"'",
            "elhaz: SAMLAssertionCommand `sh -c \"echo denied >&2; exit 1\"` exited with status 1",
        ),
        (
            "silent",
            "'true'",
            "elhaz: SAMLAssertionCommand `true` printed no SAML assertion",
        ),
        (
            "garbage",
            "'echo not-base64!'",
            "elhaz: SAMLAssertionCommand `echo not-base64!` did not print a SAML assertion: expected the base64 SAMLResponse",
        ),
        (
            "not-saml",
            "'echo aGVsbG8gd29ybGQ='",
            "elhaz: SAMLAssertionCommand `echo aGVsbG8gd29ybGQ=` did not print a SAML assertion: the base64 decodes to no SAML Response",
        ),
    ];
    for (name, cmd, line) in cases {
        saml_config(&t, name, &format!("SAMLAssertionCommand: {cmd}"), "");
        let o = local(&t, &["export", name]);
        assert_eq!(o.status.code(), Some(5), "{name}: {}", text(&o.stderr));
        assert_eq!(&first_line(&o), line, "{name}");
        assert!(o.stdout.is_empty());
        if *name == "fails" {
            assert!(
                text(&o.stderr).starts_with("denied\n"),
                "the helper's stderr is shown"
            );
        }
    }
    assert!(
        sts.server.received_requests().await.unwrap().is_empty(),
        "nothing reached STS"
    );

    // STS refuses the assertion.
    let (script, _) = helper(&t, &assertion("eve@corp", 3600));
    saml_config(
        &t,
        "refused",
        &format!("SAMLAssertionCommand: {}", script.display()),
        "",
    );
    sts.set_fault(Fault::Status(400, "InvalidIdentityToken"));
    let o = local(&t, &["export", "refused"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    let first = first_line(&o);
    assert!(
        first.starts_with(&format!("elhaz: AssumeRoleWithSAML {ROLE}"))
            && first.contains("InvalidIdentityToken"),
        "{first}"
    );
    // Neither message nor log holds the assertion.
    let secret = assertion("eve@corp", 3600);
    assert!(!text(&o.stderr).contains(&secret[..40]));
    let o = run(&t, &["export", "refused"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(!log_text(&t).contains(&secret[..40]), "the log holds it");
}

#[test]
fn a_helper_that_hangs_is_stopped_after_30_seconds() {
    let t = saml_env("http://127.0.0.1:9");
    saml_config(&t, "hangs", "SAMLAssertionCommand: 'sleep 120'", "");
    let o = local(&t, &["export", "hangs"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    assert_eq!(
        first_line(&o),
        "elhaz: SAMLAssertionCommand `sleep 120` timed out after 30s"
    );
}

#[test]
fn bad_saml_configs_name_the_file_and_the_key() {
    let t = saml_env("http://127.0.0.1:9");
    let missing = t.dir.path().join("nope.b64");
    saml_config(
        &t,
        "nofile",
        &format!("SAMLAssertionFile: {}", missing.display()),
        "",
    );
    let o = local(&t, &["export", "nofile"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        first_line(&o).starts_with("elhaz: AssumeRoleWithSAML: cannot read SAMLAssertionFile"),
        "{}",
        first_line(&o)
    );
    assert!(first_line(&o).contains("nope.b64"), "{}", first_line(&o));

    let cases: &[(&str, &str, &str)] = &[
        (
            "both",
            "AssumeRoleWithSAML:\n  RoleArn: arn:aws:iam::123456789012:role/R\n  PrincipalArn: arn:aws:iam::123456789012:saml-provider/P\n  SAMLAssertionCommand: x\n  SAMLAssertionFile: /x\n",
            "both.yaml:1: AssumeRoleWithSAML: give SAMLAssertionCommand or SAMLAssertionFile, not both",
        ),
        (
            "neither",
            "# a SAML role\nAssumeRoleWithSAML:\n  RoleArn: arn:aws:iam::123456789012:role/R\n  PrincipalArn: arn:aws:iam::123456789012:saml-provider/P\n",
            "neither.yaml:2: AssumeRoleWithSAML needs SAMLAssertionCommand or SAMLAssertionFile",
        ),
        (
            "principal",
            "AssumeRoleWithSAML:\n  RoleArn: arn:aws:iam::123456789012:role/R\n  PrincipalArn: arn:aws:iam::123456789012:role/P\n  SAMLAssertionFile: /x\n",
            "principal.yaml:3: AssumeRoleWithSAML.PrincipalArn \"arn:aws:iam::123456789012:role/P\" is not a SAML provider ARN",
        ),
        (
            "two",
            "AssumeRole:\n  RoleArn: arn:aws:iam::123456789012:role/A\nAssumeRoleWithSAML:\n  RoleArn: arn:aws:iam::123456789012:role/R\n  PrincipalArn: arn:aws:iam::123456789012:saml-provider/P\n  SAMLAssertionFile: /x\n",
            "two.yaml:1: AssumeRole and AssumeRoleWithSAML are both present; keep exactly one",
        ),
        (
            "nokey",
            "AssumeRoleWithSAML:\n  RoleArn: arn:aws:iam::123456789012:role/R\n  SAMLAssertionFile: /x\n",
            "nokey.yaml:3:3: missing AssumeRoleWithSAML.PrincipalArn",
        ),
    ];
    for (name, yaml, want) in cases {
        t.write_config(name, yaml);
        let o = local(&t, &["export", name]);
        assert_eq!(o.status.code(), Some(3), "{name}: {}", text(&o.stderr));
        assert!(
            first_line(&o).contains(want),
            "{name}: expected {want:?} in\n{}",
            text(&o.stderr)
        );
    }
}
