//! `exec` and `exec --server` children inherit no other credential provider from their
//! caller. For each variable that selects or authorises a provider in botocore or the
//! AWS SDKs, a caller that has it set starts a child under each mode, and the child's
//! real consumers (boto3 and the aws CLI, against moto) must run as the role, through
//! the provider elhaz gave them (`env` for exec, `container-role` for --server), and
//! the variable must not reach the child (unless elhaz replaced it). Then the EKS Pod
//! Identity case end to end: elhaz's own source is a pod identity agent that checks
//! its token, and the child must not send that token to elhaz's endpoint.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

const CHILD_PY: &str = r#"
import json, os, sys
import boto3

moto = sys.argv[1]
watched = sys.argv[2].split(",") if sys.argv[2] else []
out = {"env": {k: os.environ[k] for k in watched if k in os.environ}}
try:
    session = boto3.Session()
    creds = session.get_credentials()
    out["method"] = creds.method if creds else "none"
    frozen = creds.get_frozen_credentials()
    out["account_id"] = getattr(frozen, "account_id", None)
    out["token_is_the_envs"] = frozen.token == os.environ.get("AWS_SESSION_TOKEN")
    sts = session.client("sts", endpoint_url=moto, region_name="us-east-1")
    out["arn"] = sts.get_caller_identity()["Arn"]
except Exception as e:
    out["error"] = "%s: %s" % (type(e).__name__, e)
print("PY " + json.dumps(out), flush=True)
"#;

const CHILD_SH: &str = r#"
moto=$1 py=$2 watched=$3 log=$4
python3 "$py" "$moto" "$watched"
if arn=$(aws sts get-caller-identity --endpoint-url "$moto" --region us-east-1 \
    --output text --query Arn --debug 2>"$log"); then
  via=$(grep -o 'Looking for credentials via: [a-z-]*' "$log" | tail -n 1)
  echo "CLI ok ${via##* } $arn"
else
  echo "CLI fail $(grep -v '^[0-9]' "$log" | tail -n 3 | tr '\n' ' ')"
fi
"#;

/// One caller set-up: the variables it sets (`{dir}` is its temp dir) and the files
/// it writes there or in HOME.
struct Setup {
    name: &'static str,
    vars: &'static [(&'static str, &'static str)],
    files: &'static [(&'static str, &'static str)],
}

/// The set-ups: each variable (or the variables that only act together) of a
/// credential provider, with what makes it bite. The caller's own endpoints are dead
/// or unreachable: a child that used them would fail.
const SETUPS: &[Setup] = &[
    Setup {
        name: "AWS_PROFILE names a profile with keys",
        vars: &[("AWS_PROFILE", "other")],
        files: &[(
            "home/.aws/config",
            "[profile other]\naws_access_key_id = AKIAOTHERPROFILE0000\naws_secret_access_key = OTHERSECRET\n",
        )],
    },
    Setup {
        name: "AWS_DEFAULT_PROFILE names a profile with keys",
        vars: &[("AWS_DEFAULT_PROFILE", "other")],
        files: &[(
            "home/.aws/config",
            "[profile other]\naws_access_key_id = AKIAOTHERPROFILE0000\naws_secret_access_key = OTHERSECRET\n",
        )],
    },
    Setup {
        name: "AWS_SECURITY_TOKEN, which botocore reads before AWS_SESSION_TOKEN",
        vars: &[("AWS_SECURITY_TOKEN", "stale-security-token")],
        files: &[],
    },
    Setup {
        name: "AWS_ACCESS_KEY and AWS_SECRET_KEY (aws-sdk-go v1, Java v1)",
        vars: &[
            ("AWS_ACCESS_KEY", "AKIALEGACYALIAS00000"),
            ("AWS_SECRET_KEY", "LEGACYSECRET"),
        ],
        files: &[],
    },
    Setup {
        name: "AWS_CREDENTIAL_FILE (the EC2 tools' file)",
        vars: &[("AWS_CREDENTIAL_FILE", "{dir}/ec2-credentials")],
        files: &[(
            "ec2-credentials",
            "AWSAccessKeyId=AKIAEC2CREDFILE00000\nAWSSecretKey=EC2SECRET\n",
        )],
    },
    Setup {
        name: "AWS_SDK_LOAD_CONFIG (aws-sdk-go v1)",
        vars: &[("AWS_SDK_LOAD_CONFIG", "1")],
        files: &[],
    },
    Setup {
        name: "AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN",
        vars: &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:9/caller-endpoint",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "callers-token"),
        ],
        files: &[],
    },
    Setup {
        name: "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS), which beats the full URI",
        vars: &[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/task",
        )],
        files: &[],
    },
    Setup {
        name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (EKS Pod Identity), which beats the token variable",
        vars: &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "{dir}/pod-token"),
        ],
        files: &[("pod-token", "pods-own-token")],
    },
    Setup {
        name: "AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_SESSION_NAME",
        vars: &[
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/Other"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "{dir}/web-token"),
            ("AWS_ROLE_SESSION_NAME", "web"),
        ],
        files: &[("web-token", "eyJhbGciOiJIUzI1NiJ9.e30.token")],
    },
    Setup {
        name: "AWS_CREDENTIAL_EXPIRATION left by another tool",
        vars: &[("AWS_CREDENTIAL_EXPIRATION", "2020-01-01T00:00:00Z")],
        files: &[],
    },
    Setup {
        name: "AWS_ACCOUNT_ID of the caller's own account",
        vars: &[("AWS_ACCOUNT_ID", "999999999999")],
        files: &[],
    },
    Setup {
        name: "BOTO_CONFIG naming a boto file with keys",
        vars: &[("BOTO_CONFIG", "{dir}/boto.cfg")],
        files: &[(
            "boto.cfg",
            "[Credentials]\naws_access_key_id = AKIABOTOCONFIG00000\naws_secret_access_key = BOTOSECRET\n",
        )],
    },
    Setup {
        name: "~/.boto with keys (what BOTO_CONFIG defaults to)",
        vars: &[],
        files: &[(
            "home/.boto",
            "[Credentials]\naws_access_key_id = AKIAHOMEBOTO0000000\naws_secret_access_key = BOTOSECRET\n",
        )],
    },
];

/// The variables elhaz sets for a --server child (so they reach it, with elhaz's
/// values); BOTO_CONFIG only where a boto file holds keys.
const SERVER_SETS: &[&str] = &[
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "BOTO_CONFIG",
];

/// The variables elhaz sets for an exec child that a set-up also sets.
const EXEC_SETS: &[&str] = &["AWS_CREDENTIAL_EXPIRATION"];

const ASSUMED: &str = ":assumed-role/Admin/";

/// What one child reported.
struct Report {
    py: Value,
    cli: Vec<String>,
    context: String,
}

fn user_for(setup: &Setup) -> (TestEnv, Vec<(String, String)>) {
    let mut t = TestEnv::with_sts(&moto().endpoint());
    t.role_config("prod", "");
    let run = t.dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    t.set("XDG_RUNTIME_DIR", run.to_str().unwrap());
    let dir = t.dir.path().to_str().unwrap().to_string();
    for (file, text) in setup.files {
        std::fs::write(t.dir.path().join(file), text).unwrap();
    }
    let vars: Vec<(String, String)> = setup
        .vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.replace("{dir}", &dir)))
        .collect();
    for (k, v) in &vars {
        t.set(k, v);
    }
    (t, vars)
}

/// Runs the consumers in a child of `elhaz [--no-daemon] exec [--server] prod`.
fn run_child(t: &TestEnv, server: bool, watched: &[&str], pre: &[&str]) -> Report {
    run_under(t, server, watched, pre, &["exec"])
}

/// The same under `elhaz [pre...] COMMAND... [--server] prod -- sh child.sh ...`.
fn run_under(
    t: &TestEnv,
    server: bool,
    watched: &[&str],
    pre: &[&str],
    command: &[&str],
) -> Report {
    let py = t.dir.path().join("child.py");
    std::fs::write(&py, CHILD_PY).unwrap();
    let sh = t.dir.path().join("child.sh");
    std::fs::write(&sh, CHILD_SH).unwrap();
    let log = t.dir.path().join("aws-debug.log");
    let mut cmd = t.std_cmd();
    cmd.args(pre).args(command);
    if server {
        cmd.arg("--server");
    }
    let shell = command == ["shell"];
    cmd.args(["prod", "--"])
        .args(if shell {
            &["-c", "exec sh \"$@\"", "sh"][..]
        } else {
            &["sh"]
        })
        .arg(sh.to_str().unwrap())
        .args([&moto().endpoint(), py.to_str().unwrap(), &watched.join(",")])
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let (status, out, err) = output_within(child, Duration::from_secs(90));
    let context = format!("stdout: {out}\nstderr: {err}");
    let status = status.unwrap_or_else(|| panic!("no exit within 90 s; {context}"));
    assert!(status.success(), "{status:?}; {context}");
    let py = out
        .lines()
        .find_map(|l| l.strip_prefix("PY "))
        .unwrap_or_else(|| panic!("no boto3 report; {context}"));
    let cli = out
        .lines()
        .find(|l| l.starts_with("CLI "))
        .unwrap_or_else(|| panic!("no aws CLI report; {context}"));
    Report {
        py: serde_json::from_str(py).unwrap(),
        cli: cli.split_whitespace().map(str::to_string).collect(),
        context,
    }
}

/// What is wrong with a child's run as the role, for one mode (none: all good).
fn problems(r: &Report, server: bool, vars: &[(String, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    let method = if server { "container-role" } else { "env" };
    let py = &r.py;
    if let Some(e) = py.get("error") {
        bad.push(format!("boto3 failed: {e}"));
    }
    if py["method"] != method {
        bad.push(format!(
            "boto3's provider is {}, not {method}",
            py["method"]
        ));
    }
    if !py["arn"].as_str().is_some_and(|a| a.contains(ASSUMED)) {
        bad.push(format!("boto3 ran as {}", py["arn"]));
    }
    if !server && py["token_is_the_envs"] != true {
        bad.push("boto3 signs with another session token than AWS_SESSION_TOKEN".into());
    }
    if py["account_id"] == "999999999999" {
        bad.push("boto3's credentials carry the caller's AWS_ACCOUNT_ID".into());
    }
    match r.cli.as_slice() {
        [_, ok, via, arn] if ok == "ok" && via == method && arn.contains(ASSUMED) => {}
        other => bad.push(format!("the aws CLI: {}", other.join(" "))),
    }
    for (k, v) in vars {
        let got = py["env"][k].as_str();
        let fine = match got {
            None => true,
            // Replaced by elhaz's own.
            Some(g) if server && SERVER_SETS.contains(&k.as_str()) => g != v,
            Some(g) if !server && EXEC_SETS.contains(&k.as_str()) => g != v,
            // Read by nothing before the env keys: kept for the child's other uses.
            Some(g) if !server && k == "BOTO_CONFIG" => g == v,
            Some(_) => false,
        };
        if !fine {
            bad.push(format!("{k}={} reached the child", got.unwrap_or_default()));
        }
    }
    bad
}

#[test]
fn no_variable_of_another_credential_provider_reaches_an_exec_or_server_child() {
    // Two set-ups at a time: each runs four consumers under two modes.
    let outcomes: Arc<Mutex<BTreeMap<String, Vec<String>>>> = Arc::default();
    for pair in SETUPS.chunks(2) {
        std::thread::scope(|s| {
            for setup in pair {
                let outcomes = Arc::clone(&outcomes);
                s.spawn(move || {
                    let (t, vars) = user_for(setup);
                    let watched: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
                    for server in [false, true] {
                        let r = run_child(&t, server, &watched, &["--no-daemon"]);
                        let bad = problems(&r, server, &vars);
                        if !bad.is_empty() {
                            let mode = if server { "exec --server" } else { "exec" };
                            outcomes.lock().unwrap().insert(
                                format!("{} ({mode})", setup.name),
                                [bad, vec![r.context]].concat(),
                            );
                        }
                    }
                });
            }
        });
    }
    let failed = outcomes.lock().unwrap();
    assert!(
        failed.is_empty(),
        "{} runs did not run as the role:\n\n{}",
        failed.len(),
        failed
            .iter()
            .map(|(k, v)| format!("{k}:\n    {}", v.join("\n    ")))
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[test]
fn no_variable_of_another_credential_provider_reaches_a_shell_either() {
    // Every set-up at once (where two set the same variable, the later one's value).
    let mut t = TestEnv::with_sts(&moto().endpoint());
    t.role_config("prod", "");
    let run = t.dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    t.set("XDG_RUNTIME_DIR", run.to_str().unwrap());
    t.set("SHELL", "/bin/sh");
    let dir = t.dir.path().to_str().unwrap().to_string();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for setup in SETUPS {
        for (file, text) in setup.files {
            std::fs::write(t.dir.path().join(file), text).unwrap();
        }
        for (k, v) in setup.vars {
            vars.insert(k.to_string(), v.replace("{dir}", &dir));
        }
    }
    for (k, v) in &vars {
        t.set(k, v);
    }
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let watched: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    for server in [false, true] {
        let r = run_under(&t, server, &watched, &["--no-daemon"], &["shell"]);
        let bad = problems(&r, server, &vars);
        assert!(
            bad.is_empty(),
            "shell (server={server}): {}\n{}",
            bad.join("\n"),
            r.context
        );
    }
}

// ---------------------------------------------------------------------------
// EKS Pod Identity, end to end.

const POD_TOKEN: &str = "pod-identity-token-0123456789";

/// A pod identity agent on loopback: serves credentials (which moto accepts) to a
/// request carrying the pod's token, 403 to anything else; counts both.
struct PodAgent {
    port: u16,
    served: Arc<Mutex<usize>>,
    refused: Arc<Mutex<Vec<String>>>,
}

impl PodAgent {
    fn start() -> PodAgent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let served: Arc<Mutex<usize>> = Arc::default();
        let refused: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, r) = (Arc::clone(&served), Arc::clone(&refused));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut auth = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        auth = Some(v.trim().to_string());
                    }
                }
                let (status, body) = if auth.as_deref() == Some(POD_TOKEN) {
                    *s.lock().unwrap() += 1;
                    let expiry = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
                    let expiry = expiry
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap();
                    (
                        "200 OK",
                        format!(
                            r#"{{"AccessKeyId":"ASIAPODIDENTITY00000","SecretAccessKey":"podsecret","Token":"podtoken","AccountId":"123456789012","Expiration":"{expiry}"}}"#
                        ),
                    )
                } else {
                    r.lock().unwrap().push(auth.unwrap_or_default());
                    ("403 Forbidden", r#"{"message":"forbidden"}"#.to_string())
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.flush();
                let mut rest = Vec::new();
                let _ = conn.read_to_end(&mut rest);
            }
        });
        PodAgent {
            port,
            served,
            refused,
        }
    }
}

#[test]
fn under_eks_pod_identity_a_server_child_runs_as_the_role_and_never_sends_the_pods_token() {
    let agent = PodAgent::start();
    let mut t = TestEnv::with_sts(&moto().endpoint());
    t.role_config("prod", "");
    let run = t.dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    t.set("XDG_RUNTIME_DIR", run.to_str().unwrap());
    // What EKS puts in the pod: no keys, the agent's URI and a token file.
    let token = t.dir.path().join("eks-pod-identity-token");
    std::fs::write(&token, POD_TOKEN).unwrap();
    t.unset("AWS_ACCESS_KEY_ID").unset("AWS_SECRET_ACCESS_KEY");
    t.set(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        &format!("http://127.0.0.1:{}/v1/credentials", agent.port),
    );
    t.set(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        token.to_str().unwrap(),
    );
    let vars: Vec<(String, String)> = [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ]
    .iter()
    .map(|k| (k.to_string(), t.vars[*k].clone()))
    .collect();
    let watched: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    // Through the daemon, as a user in the pod runs it; then without it.
    for pre in [&[][..], &["--no-daemon"]] {
        for server in [true, false] {
            let r = run_child(&t, server, &watched, pre);
            let bad = problems(&r, server, &vars);
            assert!(
                bad.is_empty(),
                "{pre:?} server={server}: {}\n{}",
                bad.join("\n"),
                r.context
            );
        }
    }
    // elhaz's source was the pod's identity; nobody sent the agent a wrong token.
    assert!(
        *agent.served.lock().unwrap() >= 1,
        "elhaz never asked the agent"
    );
    let refused = agent.refused.lock().unwrap();
    assert!(refused.is_empty(), "the agent refused: {refused:?}");
}
