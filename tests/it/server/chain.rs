//! `exec --server` children end at the container endpoint whatever the user's AWS
//! files and variables hold. The SDKs look at the shared files and the web identity
//! variables before the container endpoint; each common set-up below would make the
//! child run as some other identity. moto is the STS for elhaz and for the child;
//! boto3 and the aws CLI are the consumers. Each run checks who the child is (the
//! ARN moto gives the signing key), which key signed (the one the endpoint serves),
//! which provider the SDK chose, that the user's other settings still reach it, that
//! the child's files hold no secret, and that nothing is left once it has exited.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

const CHILD_PY: &str = r#"
import json, os, re, stat, sys, urllib.request
import boto3, botocore.session

moto = sys.argv[1]
out = {}
# What the endpoint serves (the key every call must be signed with).
req = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
    headers={"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
out["served"] = json.load(urllib.request.urlopen(req))["AccessKeyId"]
try:
    session = boto3.Session()
    creds = session.get_credentials()
    out["method"] = creds.method if creds else "none"
    sts = session.client("sts", endpoint_url=moto, region_name="us-east-1")
    signed = {}
    def grab(request, **kwargs):
        auth = request.headers.get("Authorization", b"")
        if isinstance(auth, bytes):
            auth = auth.decode()
        m = re.search(r"Credential=([A-Z0-9]+)/", auth)
        signed["key"] = m.group(1) if m else "unsigned"
    sts.meta.events.register("before-send.sts.GetCallerIdentity", grab)
    out["arn"] = sts.get_caller_identity()["Arn"]
    out["signed"] = signed.get("key")
except Exception as e:
    out["error"] = "%s: %s" % (type(e).__name__, e)
cfg = botocore.session.Session().get_scoped_config()
out["region"] = cfg.get("region")
out["s3"] = cfg.get("s3")
out["cli_pager"] = cfg.get("cli_pager")
files = {}
for var in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    p = os.environ.get(var)
    if p and os.path.exists(p):
        files[var] = {"path": p, "mode": oct(stat.S_IMODE(os.stat(p).st_mode)),
                      "dir_mode": oct(stat.S_IMODE(os.stat(os.path.dirname(p)).st_mode)),
                      "text": open(p).read()}
    else:
        files[var] = {"path": p}
out["files"] = files
print("PY " + json.dumps(out), flush=True)
"#;

const CHILD_SH: &str = r#"
moto=$1 py=$2 log=$3
python3 "$py" "$moto"
if arn=$(aws sts get-caller-identity --endpoint-url "$moto" --region us-east-1 \
    --output text --query Arn --debug 2>"$log"); then
  key=$(grep -o 'Credential=[A-Z0-9]*' "$log" | head -n 1)
  via=$(grep -o 'Looking for credentials via: [a-z-]*' "$log" | tail -n 1)
  echo "CLI ok ${key#Credential=} ${via##* } $arn"
else
  echo "CLI fail $(grep -v '^[0-9]' "$log" | tail -n 3 | tr '\n' ' ')"
fi
"#;

/// The user's config: settings that must reach the child, around the set-up's own.
fn user_config(default_extra: &str, more: &str) -> String {
    format!(
        "# old: aws_secret_access_key = COMMENTSECRET\n[default]\nregion = eu-west-3\n{default_extra}s3 =\n    max_concurrent_requests = 3\ncli_pager =\n\n[profile other]\nregion = ap-south-1\naws_secret_access_key = OTHERSECRET\n{more}"
    )
}

/// A test user whose elhaz gets its own source keys from the environment and assumes
/// role/Admin through moto; the child's SDKs also talk to moto.
fn env_for(setup: &str) -> TestEnv {
    let mut t = TestEnv::with_sts(&moto().endpoint());
    t.role_config("prod", "");
    let run = t.dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    t.set("XDG_RUNTIME_DIR", run.to_str().unwrap());
    let aws = t.home.join(".aws");
    match setup {
        "credentials-file keys" => {
            std::fs::write(
                aws.join("credentials"),
                "[default]\naws_access_key_id = AKIADEFAULTUSER00000\naws_secret_access_key = DEFAULTSECRET\n",
            )
            .unwrap();
            t.write_aws_config(&user_config("", ""));
        }
        "credential_process" => {
            let script = process_script(&t);
            t.write_aws_config(&user_config(
                &format!("credential_process = {}\n", script.display()),
                "",
            ));
        }
        // configparser gives [DEFAULT]'s keys to every section, [default] included.
        "[DEFAULT] credential_process" => {
            let script = process_script(&t);
            t.write_aws_config(&format!(
                "[DEFAULT]\ncredential_process = {}\n\n{}",
                script.display(),
                user_config("", "")
            ));
        }
        // Indented, the line continues `region` for botocore; the JS SDK reads it as a
        // key of [default]. Written `key: value`.
        "indented credential_process: under [default]" => {
            let script = process_script(&t);
            t.write_aws_config(&user_config(
                &format!("    credential_process: {}\n", script.display()),
                "",
            ));
        }
        "role_arn + source_profile" => {
            std::fs::write(
                aws.join("credentials"),
                "[src]\naws_access_key_id = AKIASRCUSER000000000\naws_secret_access_key = SRCSECRET\n",
            )
            .unwrap();
            t.write_aws_config(&user_config(
                "role_arn = arn:aws:iam::123456789012:role/Other\nsource_profile = src\n",
                "",
            ));
        }
        "sso_session" => {
            t.write_aws_config(&user_config(
                "sso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Other\n",
                "\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
            ));
        }
        "web identity variables" => {
            let token = t.dir.path().join("token");
            std::fs::write(&token, "eyJhbGciOiJIUzI1NiJ9.e30.token").unwrap();
            t.set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/Other");
            t.set("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap());
            t.set("AWS_ROLE_SESSION_NAME", "web");
            t.write_aws_config(&user_config("", ""));
        }
        other => panic!("unknown set-up {other}"),
    }
    t
}

/// A credential_process helper that prints keys of some other identity.
fn process_script(t: &TestEnv) -> std::path::PathBuf {
    let script = t.dir.path().join("creds.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROCESSUSER00000\", \"SecretAccessKey\": \"PROCESSSECRET\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn check(setup: &str) {
    let t = env_for(setup);
    let py = t.dir.path().join("child.py");
    std::fs::write(&py, CHILD_PY).unwrap();
    let sh = t.dir.path().join("child.sh");
    std::fs::write(&sh, CHILD_SH).unwrap();
    let log = t.dir.path().join("aws-debug.log");
    let moto = moto().endpoint();
    let child = t
        .std_cmd()
        .args(["exec", "--server", "prod", "--", "sh"])
        .args([sh.to_str().unwrap(), &moto, py.to_str().unwrap()])
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, out, err) = output_within(child, Duration::from_secs(90));
    let status = status.unwrap_or_else(|| panic!("{setup}: the run did not end within 90 s"));
    assert!(status.success(), "{setup}: {status:?}\n{out}\n{err}");
    let ctx = format!("{setup}:\nstdout: {out}\nstderr: {err}");

    let py_line = out
        .lines()
        .find_map(|l| l.strip_prefix("PY "))
        .unwrap_or_else(|| panic!("no boto3 report; {ctx}"));
    let r: Value = serde_json::from_str(py_line).unwrap();
    let served = r["served"].as_str().unwrap();
    assert!(r.get("error").is_none(), "boto3 in the child failed; {ctx}");
    assert_eq!(r["method"], "container-role", "boto3's provider; {ctx}");
    assert_eq!(r["signed"], served, "boto3 signed with another key; {ctx}");
    let arn = r["arn"].as_str().unwrap();
    assert!(
        arn.contains(":assumed-role/Admin/"),
        "boto3 ran as {arn}; {ctx}"
    );

    let cli = out
        .lines()
        .find(|l| l.starts_with("CLI "))
        .unwrap_or_else(|| panic!("no aws CLI report; {ctx}"));
    let f: Vec<&str> = cli.split_whitespace().collect();
    assert_eq!(f.get(1), Some(&"ok"), "the aws CLI failed; {ctx}");
    assert_eq!(f[2], served, "the aws CLI signed with another key; {ctx}");
    assert_eq!(f[3], "container-role", "the aws CLI's provider; {ctx}");
    assert!(
        f[4].contains(":assumed-role/Admin/"),
        "the aws CLI ran as {}; {ctx}",
        f[4]
    );

    // The user's other settings reach the child.
    assert_eq!(r["region"], "eu-west-3", "{ctx}");
    assert_eq!(
        r["s3"],
        serde_json::json!({"max_concurrent_requests": "3"}),
        "{ctx}"
    );
    assert_eq!(r["cli_pager"], "", "{ctx}");

    // The child's files: private, in a private directory under XDG_RUNTIME_DIR,
    // empty credentials, no secret anywhere; and gone once it has exited.
    let run = t.dir.path().join("run");
    for var in ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"] {
        let file = &r["files"][var];
        let path = file["path"].as_str().unwrap_or_default();
        assert!(
            path.starts_with(run.to_str().unwrap()),
            "{var}={path} is not under XDG_RUNTIME_DIR; {ctx}"
        );
        assert_eq!(file["mode"], "0o600", "{var}; {ctx}");
        assert_eq!(file["dir_mode"], "0o700", "{var}; {ctx}");
        let text = file["text"].as_str().unwrap();
        for secret in [
            "SECRET",
            "AKIA",
            "credential_process",
            "source_profile",
            "sso_account_id",
        ] {
            assert!(!text.contains(secret), "{var} holds {secret}: {text}");
        }
    }
    assert_eq!(r["files"]["AWS_SHARED_CREDENTIALS_FILE"]["text"], "");
    let config = r["files"]["AWS_CONFIG_FILE"]["text"].as_str().unwrap();
    assert!(
        config.contains("[profile other]\nregion = ap-south-1"),
        "{config}"
    );
    let left: Vec<_> = std::fs::read_dir(&run).unwrap().collect();
    assert!(left.is_empty(), "left behind after exit: {left:?}");
}

#[test]
fn default_keys_in_the_credentials_file_do_not_win_over_the_endpoint() {
    check("credentials-file keys");
}

#[test]
fn a_default_credential_process_does_not_win_over_the_endpoint() {
    check("credential_process");
}

#[test]
fn a_credential_process_in_the_default_section_does_not_win_over_the_endpoint() {
    check("[DEFAULT] credential_process");
}

#[test]
fn an_indented_credential_process_under_default_does_not_reach_the_child() {
    check("indented credential_process: under [default]");
}

#[test]
fn a_default_role_arn_with_source_profile_does_not_win_over_the_endpoint() {
    check("role_arn + source_profile");
}

#[test]
fn a_default_sso_session_does_not_win_over_the_endpoint() {
    check("sso_session");
}

#[test]
fn web_identity_variables_do_not_win_over_the_endpoint() {
    check("web identity variables");
}

#[test]
fn an_unreadable_config_file_is_refused_naming_the_file() {
    let t = TestEnv::with_sts(&moto().endpoint());
    t.role_config("prod", "");
    // A directory where the config file should be: it cannot be read, so elhaz cannot
    // know what its [default] holds.
    std::fs::remove_file(t.home.join(".aws/config")).ok();
    std::fs::create_dir(t.home.join(".aws/config")).unwrap();
    let out = t
        .cmd()
        .args(["exec", "--server", "prod", "--", "true"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("~/.aws/config") && err.contains("[default]"),
        "{err}"
    );
}
