//! Identity: a command runs as the role it names, assumed from the source credentials
//! of the caller, whoever started the daemon. Every check here is on WHO SIGNED the
//! AssumeRole (the access key id in the Authorization header), and the daemon path
//! must sign with the same key as `--no-daemon` in the same environment.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};

const HOUR: Duration = Duration::from_secs(3600);

const K1: &str = "AKIASOURCEKEYONE0001";
const K2: &str = "AKIASOURCEKEYTWO0002";
const KP1: &str = "AKIAPROFILEONE000001";
const KP2: &str = "AKIAPROFILETWO000002";
const KDEF: &str = "AKIADEFAULTPROFILE01";

/// A user with no source in the environment, STS at `sts`, and the `prod` config.
fn user(sts: &FakeSts) -> TestEnv {
    let mut t = TestEnv::new();
    t.set("AWS_ENDPOINT_URL_STS", &sts.uri());
    t.set("AWS_REGION", "us-east-1");
    t.role_config("prod", "");
    t
}

/// `[default]`, `[p1]` and `[p2]` with their own keys in the shared credentials file.
fn write_profiles(t: &TestEnv) {
    std::fs::write(
        t.home.join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id = {KDEF}\naws_secret_access_key = sdef\n\
             [p1]\naws_access_key_id = {KP1}\naws_secret_access_key = sp1\n\
             [p2]\naws_access_key_id = {KP2}\naws_secret_access_key = sp2\n"
        ),
    )
    .unwrap();
}

/// Variables of one terminal, on top of the user's: Some sets, None removes.
type Vars = &'static [(&'static str, Option<&'static str>)];

fn keys(id: &'static str) -> Vars {
    match id {
        K1 => &[
            ("AWS_ACCESS_KEY_ID", Some(K1)),
            ("AWS_SECRET_ACCESS_KEY", Some("secret-one")),
        ],
        K2 => &[
            ("AWS_ACCESS_KEY_ID", Some(K2)),
            ("AWS_SECRET_ACCESS_KEY", Some("secret-two")),
        ],
        _ => unreachable!(),
    }
}

/// The environment of a terminal inside an elhaz session that carries no source:
/// injected keys, ELHAZ_SESSION, and nothing else.
const SESSION_NO_SOURCE: Vars = &[
    ("ELHAZ_SESSION", Some("outer")),
    ("ELHAZ_EXPIRES_AT", Some("4102444800")),
    ("ELHAZ_REFRESH_AT", Some("4102444000")),
    ("AWS_ACCESS_KEY_ID", Some("ASIAINJECTED00000000")),
    ("AWS_SECRET_ACCESS_KEY", Some("injected-secret")),
    ("AWS_SESSION_TOKEN", Some("injected-token")),
];

fn run(t: &TestEnv, vars: &[(&str, Option<&str>)], args: &[&str]) -> Output {
    let mut c = t.std_cmd();
    for (k, v) in vars {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.args(args).output().unwrap()
}

/// Runs `args` and returns the keys that signed the AssumeRole calls it made.
async fn signed_by(
    sts: &FakeSts,
    t: &TestEnv,
    vars: &[(&str, Option<&str>)],
    args: &[&str],
) -> (Output, Vec<String>) {
    let before = sts.signers("AssumeRole").await.len();
    let out = run(t, vars, args);
    let all = sts.signers("AssumeRole").await;
    (out, all[before..].to_vec())
}

fn access_key(out: &Output) -> String {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}{}", text(&out.stdout), text(&out.stderr)));
    v["access_key"].as_str().unwrap().to_string()
}

fn status_sessions(t: &TestEnv) -> Vec<Value> {
    let out = run(t, &[], &["daemon", "status", "--json"]);
    ok(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["sessions"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_started_inside_a_session_serves_a_clean_client_with_its_own_source() {
    let sts = FakeSts::start(HOUR).await;
    let t = user(&sts);
    // The hook restarted the daemon from inside `elhaz shell prod`: no source at all.
    ok(&run(&t, SESSION_NO_SOURCE, &["daemon", "start"]));
    // Another terminal, with its own keys.
    let (out, signers) = signed_by(&sts, &t, keys(K2), &["export", "prod"]).await;
    ok(&out);
    assert_eq!(signers, [K2], "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_gets_its_own_session_and_the_old_key_keeps_its_own() {
    let sts = FakeSts::start(HOUR).await;
    let t = user(&sts);
    ok(&run(&t, keys(K1), &["daemon", "start"]));

    let (one, s1) = signed_by(&sts, &t, keys(K1), &["export", "prod"]).await;
    ok(&one);
    assert_eq!(s1, [K1]);
    // The key was rotated (or direnv set another): the next request is signed by it.
    let (two, s2) = signed_by(&sts, &t, keys(K2), &["export", "prod"]).await;
    ok(&two);
    assert_eq!(s2, [K2]);
    assert_ne!(access_key(&one), access_key(&two));
    // A terminal still on K1 gets K1's session, from the cache.
    let (again, s3) = signed_by(&sts, &t, keys(K1), &["export", "prod"]).await;
    ok(&again);
    assert!(s3.is_empty(), "served from the cache: {s3:?}");
    assert_eq!(access_key(&again), access_key(&one));
    let (again2, s4) = signed_by(&sts, &t, keys(K2), &["export", "prod"]).await;
    assert!(s4.is_empty(), "served from the cache: {s4:?}");
    assert_eq!(access_key(&again2), access_key(&two));

    // A request with no context (the original client's) gets the daemon's own: K1.
    let v1 = t.request("credentials", json!({ "config": "prod" }));
    assert_eq!(v1["data"]["access_key"], access_key(&one).as_str(), "{v1}");
    // v1 `list` names prod once; status shows both sessions, secrets nowhere.
    let list = t.request("list", json!({}));
    assert_eq!(list["data"], json!(["prod"]), "{list}");
    let sessions = status_sessions(&t);
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert!(sessions.iter().all(|s| s["name"] == "prod"));
    assert_ne!(sessions[0]["context"], sessions[1]["context"]);
    let shown = serde_json::to_string(&sessions).unwrap();
    assert!(
        !shown.contains(K1) && !shown.contains("secret-one"),
        "{shown}"
    );
    // Neither key reaches the daemon's log.
    let log = std::fs::read_to_string(t.log()).unwrap_or_default();
    assert!(!log.contains("secret-one") && !log.contains("secret-two"));
    assert!(!log.contains(K2), "the log names a source key");
    // `remove` forgets prod in every context.
    ok(&run(&t, keys(K2), &["daemon", "remove", "prod"]));
    assert!(status_sessions(&t).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_profile_p1_and_p2_get_two_sessions_each_signed_by_its_own_key() {
    let sts = FakeSts::start(HOUR).await;
    let t = user(&sts);
    write_profiles(&t);
    // Started with no AWS_PROFILE: its own context would be [default].
    ok(&run(&t, &[], &["daemon", "start"]));
    let (a, sa) = signed_by(
        &sts,
        &t,
        &[("AWS_PROFILE", Some("p1"))],
        &["export", "prod"],
    )
    .await;
    ok(&a);
    assert_eq!(sa, [KP1]);
    let (b, sb) = signed_by(
        &sts,
        &t,
        &[("AWS_PROFILE", Some("p2"))],
        &["export", "prod"],
    )
    .await;
    ok(&b);
    assert_eq!(sb, [KP2]);
    assert_ne!(access_key(&a), access_key(&b));
    let sessions = status_sessions(&t);
    let mut profiles: Vec<&str> = sessions
        .iter()
        .filter_map(|s| s["aws_profile"].as_str())
        .collect();
    profiles.sort();
    assert_eq!(profiles, ["p1", "p2"], "{sessions:?}");
    // Both stay cached.
    let (_, again) = signed_by(
        &sts,
        &t,
        &[("AWS_PROFILE", Some("p1"))],
        &["export", "prod"],
    )
    .await;
    assert!(again.is_empty());
}

/// One row: how the daemon was started, the client's environment, who must sign.
struct Case {
    what: &'static str,
    profiles: bool,
    daemon: Vars,
    client: Vars,
    signer: &'static str,
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_and_no_daemon_sign_with_the_same_key() {
    const SESSION_FROM_P1: Vars = &[
        ("ELHAZ_SESSION", Some("outer")),
        ("AWS_ACCESS_KEY_ID", Some("ASIAINJECTED00000000")),
        ("AWS_SECRET_ACCESS_KEY", Some("injected-secret")),
        ("AWS_SESSION_TOKEN", Some("injected-token")),
        ("ELHAZ_SOURCE_AWS_PROFILE", Some("p1")),
    ];
    let cases = [
        Case {
            what: "daemon started in a session, clean client",
            profiles: false,
            daemon: SESSION_NO_SOURCE,
            client: keys(K2),
            signer: K2,
        },
        Case {
            what: "daemon started with K1, client with K2",
            profiles: false,
            daemon: keys(K1),
            client: keys(K2),
            signer: K2,
        },
        Case {
            what: "daemon started with K1, client with K1",
            profiles: false,
            daemon: keys(K1),
            client: keys(K1),
            signer: K1,
        },
        Case {
            what: "AWS_PROFILE=p1",
            profiles: true,
            daemon: &[],
            client: &[("AWS_PROFILE", Some("p1"))],
            signer: KP1,
        },
        Case {
            what: "AWS_PROFILE=p2, daemon started with p1",
            profiles: true,
            daemon: &[("AWS_PROFILE", Some("p1"))],
            client: &[("AWS_PROFILE", Some("p2"))],
            signer: KP2,
        },
        Case {
            what: "inside a session started from p1, daemon started with keys",
            profiles: true,
            daemon: keys(K1),
            client: SESSION_FROM_P1,
            signer: KP1,
        },
        Case {
            what: "no AWS_PROFILE: [default]",
            profiles: true,
            daemon: &[("AWS_PROFILE", Some("p2"))],
            client: &[],
            signer: KDEF,
        },
    ];
    for case in &cases {
        let sts = FakeSts::start(HOUR).await;
        let t = user(&sts);
        if case.profiles {
            write_profiles(&t);
        }
        ok(&run(&t, case.daemon, &["daemon", "start"]));
        let (via_daemon, d) = signed_by(&sts, &t, case.client, &["export", "prod"]).await;
        assert!(
            via_daemon.status.success(),
            "{}: {}",
            case.what,
            text(&via_daemon.stderr)
        );
        let (direct, n) =
            signed_by(&sts, &t, case.client, &["--no-daemon", "export", "prod"]).await;
        assert!(
            direct.status.success(),
            "{}: {}",
            case.what,
            text(&direct.stderr)
        );
        assert_eq!(d, [case.signer], "{}: through the daemon", case.what);
        assert_eq!(n, [case.signer], "{}: with --no-daemon", case.what);
    }
}

/// Applies `export -f env --shell bash` output to an environment, as eval would.
fn apply_env(vars: &mut std::collections::BTreeMap<String, String>, script: &str) {
    for stmt in script.split(";\n") {
        if let Some(k) = stmt.strip_prefix("unset ") {
            vars.remove(k.trim());
        } else if let Some(kv) = stmt.strip_prefix("export ") {
            let (k, v) = kv.split_once('=').unwrap();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap()
                .replace(r"'\''", "'");
            vars.insert(k.to_string(), v);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_shell_refreshes_after_the_daemon_restarted_from_inside_it() {
    let sts = FakeSts::start(HOUR).await;
    let mut t = user(&sts);
    write_profiles(&t);
    t.set("AWS_PROFILE", "p1");
    // What `elhaz shell prod` / `use prod` / the hook put in the shell.
    let out = run(&t, &[], &["export", "prod", "-f", "env", "--shell", "bash"]);
    ok(&out);
    let mut session = t.vars.clone();
    apply_env(&mut session, &text(&out.stdout));
    assert_eq!(
        session.get("ELHAZ_SESSION").map(String::as_str),
        Some("prod")
    );
    assert_eq!(session.get("AWS_PROFILE"), None);
    assert_eq!(
        session.get("ELHAZ_SOURCE_AWS_PROFILE").map(String::as_str),
        Some("p1"),
        "the session carries its source profile"
    );
    assert!(
        !session
            .keys()
            .any(|k| k.starts_with("ELHAZ_SOURCE_AWS_ACCESS")
                || k.starts_with("ELHAZ_SOURCE_AWS_SECRET")),
        "never a secret carrier: {session:?}"
    );
    assert!(sts.signers("AssumeRole").await.iter().all(|s| s == KP1));

    // Inside that shell: the daemon is stopped (or crashed), and the hook's next
    // refresh starts a new one from the session's environment.
    let mut inside = t.std_cmd();
    inside.env_clear().envs(&session);
    ok(&inside.args(["daemon", "stop"]).output().unwrap());
    let before = sts.signers("AssumeRole").await.len();
    let expires = session["ELHAZ_EXPIRES_AT"].clone();
    let min = (expires.parse::<i64>().unwrap() - unix_now() + 1).to_string();
    let mut hook = t.std_cmd();
    hook.env_clear().envs(&session).args([
        "export",
        "prod",
        "-f",
        "env",
        "--shell",
        "bash",
        "--min-remaining",
        &min,
    ]);
    let out = hook.output().unwrap();
    ok(&out);
    assert!(
        text(&out.stderr).contains("started the daemon"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("unset "),
        "the hook evals this"
    );
    let signers = sts.signers("AssumeRole").await[before..].to_vec();
    assert_eq!(signers, [KP1], "signed by p1's key, not [default]'s");
    // The same through the command the hook runs (`hook bash --refresh`, which reads
    // the session from the environment), after another stop.
    let mut stop = t.std_cmd();
    stop.env_clear().envs(&session).args(["daemon", "stop"]);
    ok(&stop.output().unwrap());
    let before = sts.signers("AssumeRole").await.len();
    // Credentials issued in a later second expire later: "newer" to the hook.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut refresh = t.std_cmd();
    refresh
        .env_clear()
        .envs(&session)
        .args(["--client-timeout", "2", "hook", "bash", "--refresh"]);
    let out = refresh.output().unwrap();
    ok(&out);
    assert!(out.stderr.is_empty(), "no warning: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("unset "),
        "the hook evals this"
    );
    let signers = sts.signers("AssumeRole").await[before..].to_vec();
    assert_eq!(signers, [KP1], "the hook's refresh: signed by p1's key");
    // And the next terminal, outside any session, still gets its own.
    let (_, outside) = signed_by(
        &sts,
        &t,
        &[("AWS_PROFILE", Some("p2"))],
        &["export", "prod"],
    )
    .await;
    assert_eq!(outside, [KP2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_source_says_what_was_tried_and_never_blames_a_missing_profile() {
    let sts = FakeSts::start(HOUR).await;
    let t = user(&sts);
    for mode in [&[][..], &["--no-daemon"][..]] {
        let mut args = mode.to_vec();
        args.extend(["export", "prod"]);
        let out = run(&t, &[], &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{mode:?}: {err}");
        assert!(
            err.contains("no source credentials found"),
            "{mode:?}: {err}"
        );
        assert!(
            err.contains("AWS_ACCESS_KEY_ID is not set"),
            "{mode:?}: {err}"
        );
        assert!(
            err.contains("AWS_PROFILE is not set, and there is no [default] profile"),
            "{mode:?}: {err}"
        );
        assert!(err.contains("aws configure"), "the fix: {err}");
        assert!(!err.contains("profile default"), "{mode:?}: {err}");
        assert!(out.stdout.is_empty());

        // A named profile that does not exist is called what it is.
        let out = run(&t, &[("AWS_PROFILE", Some("nosuch"))], &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{mode:?}: {err}");
        assert!(err.contains("AWS_PROFILE=nosuch"), "{mode:?}: {err}");
        assert!(!err.contains("profile default"), "{mode:?}: {err}");
    }
    assert!(sts.signers("AssumeRole").await.is_empty());
}

/// The original elhaz (0.5.6 from PyPI), installed by .ci/deps in its own venv.
fn original_elhaz() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/venv-original/bin/elhaz");
    assert!(
        p.is_file(),
        "{} is missing: run .ci/deps (it installs the original elhaz 0.5.6 there)",
        p.display()
    );
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn the_original_python_client_works_against_our_daemon() {
    let sts = FakeSts::start(HOUR).await;
    let t = user(&sts);
    ok(&run(&t, keys(K1), &["daemon", "start"]));
    let original = |args: &[&str]| {
        let mut c = t.program(original_elhaz());
        c.arg("--socket-path")
            .arg(t.socket())
            .arg("--config-dir")
            .arg(t.config_dir())
            .args(args);
        c.output().unwrap()
    };
    // Its export adds the session and reads it back: the daemon's own context (K1).
    let before = sts.signers("AssumeRole").await.len();
    let out = original(&["export", "-n", "prod", "-f", "json"]);
    ok(&out);
    let theirs = access_key(&out);
    assert_eq!(sts.signers("AssumeRole").await[before..], [K1]);
    // Ours, with the same source, gets the same session; another source, another.
    let (mine, s) = signed_by(&sts, &t, keys(K1), &["export", "prod"]).await;
    assert!(s.is_empty());
    assert_eq!(access_key(&mine), theirs);
    let (_, s) = signed_by(&sts, &t, keys(K2), &["export", "prod"]).await;
    assert_eq!(s, [K2]);
    // Its list shows prod once, whatever the contexts; its remove forgets it.
    let out = original(&["daemon", "list"]);
    ok(&out);
    assert_eq!(text(&out.stdout).trim(), "prod");
    ok(&original(&["daemon", "remove", "-n", "prod"]));
    let out = original(&["daemon", "list"]);
    assert_eq!(text(&out.stdout).trim(), "No active sessions.");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_made_from_env_keys_refreshes_through_the_daemon_without_exporting_them() {
    let sts = FakeSts::start(HOUR).await;
    let mut t = user(&sts);
    t.set("AWS_ACCESS_KEY_ID", K1)
        .set("AWS_SECRET_ACCESS_KEY", "secret-one");
    // `eval "$(elhaz export prod -f env)"` in a plain shell: its keys are replaced.
    let out = run(&t, &[], &["export", "prod", "-f", "env", "--shell", "bash"]);
    ok(&out);
    let mut session = t.vars.clone();
    apply_env(&mut session, &text(&out.stdout));
    let reference = session
        .get("ELHAZ_CONTEXT_REF")
        .cloned()
        .unwrap_or_default();
    assert_eq!(reference.len(), 64, "{session:?}");
    for (k, v) in &session {
        if k.starts_with("ELHAZ_") {
            assert!(!v.contains(K1) && !v.contains("secret-one"), "{k}={v}");
        }
    }
    // The next refresh from inside: the daemon still knows the keys that context had.
    let before = sts.signers("AssumeRole").await.len();
    let mut inside = t.std_cmd();
    inside
        .env_clear()
        .envs(&session)
        .args(["daemon", "refresh", "prod"]);
    ok(&inside.output().unwrap());
    let mut inside = t.std_cmd();
    inside.env_clear().envs(&session).args(["export", "prod"]);
    let out = inside.output().unwrap();
    ok(&out);
    assert_eq!(sts.signers("AssumeRole").await[before..], [K1]);
    // A reference is no key: another terminal's context with another selector does
    // not get that session.
    let mut other = session.clone();
    other.insert("ELHAZ_SOURCE_AWS_PROFILE".into(), "p2".into());
    let mut c = t.std_cmd();
    c.env_clear().envs(&other).args(["export", "prod"]);
    let out = c.output().unwrap();
    assert!(!out.status.success(), "{}", text(&out.stdout));

    // After a restart the daemon no longer knows them, and the keys were never
    // exported: a plain shell (no shell integration to keep them), or a script the
    // session's shell runs, is told so; a [default] of other keys in the credentials
    // file does not sign in their place, with the daemon or without.
    let mut stop = t.std_cmd();
    ok(&stop
        .env_clear()
        .envs(&session)
        .args(["daemon", "stop"])
        .output()
        .unwrap());
    std::fs::write(
        t.home.join(".aws/credentials"),
        format!("[default]\naws_access_key_id = {K2}\naws_secret_access_key = secret-two\n"),
    )
    .unwrap();
    let before = sts.signers("AssumeRole").await.len();
    for args in [&["export", "prod"][..], &["--no-daemon", "export", "prod"]] {
        let mut c = t.std_cmd();
        c.env_clear().envs(&session).args(args);
        let out = c.output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {err}");
        assert!(
            err.contains(
                "no source credentials found in the caller's environment: this elhaz session was made from source keys"
            ),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("hint: run it at the session's shell prompt"),
            "{err}"
        );
        assert!(!err.contains("ASIA"), "never the injected key: {err}");
        assert!(out.stdout.is_empty());
    }
    assert!(
        sts.signers("AssumeRole").await[before..].is_empty(),
        "[default] signed in the session's place"
    );
    // Outside the session, [default] is the source, as the SDKs have it.
    let mut c = t.std_cmd();
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["--no-daemon", "export", "prod"]);
    ok(&c.output().unwrap());
    assert_eq!(sts.signers("AssumeRole").await[before..], [K2]);
    t.stop_daemon();
}

#[tokio::test(flavor = "multi_thread")]
async fn single_flight_holds_per_context_and_the_cache_bound_counts_sessions() {
    let sts = FakeSts::start(HOUR).await;
    // A slow STS, so that every request waits while its context's one call is out.
    sts.set_fault(Fault::Delay(Duration::from_millis(700)));
    let mut t = user(&sts);
    t.set("ELHAZ_MAX_DAEMON_CACHE_SIZE", "2");
    ok(&run(&t, &[], &["daemon", "start"]));
    let t = std::sync::Arc::new(t);
    // Our client sends every context variable it has, the STS endpoint included.
    let endpoint = sts.uri();
    let context = move |key: &str| json!({ "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL_STS": endpoint });
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(40));
    let threads: Vec<_> = (0..40)
        .map(|i| {
            let (t, barrier) = (t.clone(), barrier.clone());
            let ctx = context(if i % 2 == 0 { K1 } else { K2 });
            std::thread::spawn(move || {
                barrier.wait();
                t.request(
                    "credentials",
                    json!({ "config": "prod", "autoadd": true, "context": ctx }),
                )
            })
        })
        .collect();
    let answers: Vec<Value> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(answers.iter().all(|a| a["ok"] == true), "{answers:?}");
    let mut signers = sts.signers("AssumeRole").await;
    signers.sort();
    assert_eq!(signers, [K1, K2], "one AssumeRole per context");
    let key_of = |i: usize| answers[i]["data"]["access_key"].clone();
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a["data"]["access_key"], key_of(i % 2), "{a}");
    }
    assert_ne!(key_of(0), key_of(1));

    // A third context in a cache of two: the least recently used session goes.
    sts.set_fault(Fault::None);
    let third = t.request(
        "credentials",
        json!({ "config": "prod", "autoadd": true, "context": context("AKIATHIRDKEY00000003") }),
    );
    assert_eq!(third["ok"], true, "{third}");
    assert_eq!(status_sessions(&t).len(), 2);
}

/// A relative AWS_SHARED_CREDENTIALS_FILE names the file in the caller's working
/// directory, through the daemon (which works from `/`) as without it.
#[tokio::test(flavor = "multi_thread")]
async fn a_relative_credentials_file_is_the_callers_through_the_daemon_too() {
    let sts = FakeSts::start(HOUR).await;
    let t = user(&sts);
    ok(&run(&t, &[], &["daemon", "start"]));
    let dir = t.home.join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("creds"),
        format!("[default]\naws_access_key_id = {KP1}\naws_secret_access_key = sp1\n"),
    )
    .unwrap();
    for args in [
        &["export", "prod"][..],
        &["--no-daemon", "export", "prod"][..],
    ] {
        let before = sts.signers("AssumeRole").await.len();
        let out = t
            .std_cmd()
            .current_dir(&dir)
            .env("AWS_SHARED_CREDENTIALS_FILE", "creds")
            .args(args)
            .output()
            .unwrap();
        ok(&out);
        let all = sts.signers("AssumeRole").await;
        assert_eq!(all[before..], [KP1], "{args:?}: {}", text(&out.stderr));
    }
}

/// Where instance metadata answers with an error (a laptop on a network that refuses
/// 169.254.169.254, a VM without a role), the error still says what was tried in the
/// caller's environment and how to fix it, not only what the metadata service said.
#[tokio::test(flavor = "multi_thread")]
async fn no_source_with_a_refusing_metadata_service_still_says_what_was_tried() {
    let sts = FakeSts::start(HOUR).await;
    let imds = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(403))
        .mount(&imds)
        .await;
    let mut t = user(&sts);
    t.unset("AWS_EC2_METADATA_DISABLED");
    t.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.uri());
    for mode in [&[][..], &["--no-daemon"][..]] {
        let mut args = mode.to_vec();
        args.extend(["export", "prod"]);
        let out = run(&t, &[("AWS_PROFILE", Some("nosuch"))], &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{mode:?}: {err}");
        assert!(
            err.contains("no source credentials found"),
            "{mode:?}: {err}"
        );
        assert!(err.contains("AWS_PROFILE=nosuch"), "{mode:?}: {err}");
        assert!(
            err.contains("aws configure --profile nosuch"),
            "{mode:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    assert!(sts.signers("AssumeRole").await.is_empty());
}

/// The environment of a session made from `[default]` (`exec prod -- env`), as a child
/// of it sees it.
fn session_from_default(t: &TestEnv) -> std::collections::BTreeMap<String, String> {
    let out = run(t, &[], &["--no-daemon", "exec", "prod", "--", "env", "-0"]);
    ok(&out);
    out.stdout
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv).into_owned();
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Inside a session (made from `[default]`), `AWS_PROFILE=p1` set there is the user's
/// choice (every session unsets AWS_PROFILE): the role is assumed with p1's key, with
/// the daemon and without, as the aws CLI in the same shell would use p1.
#[tokio::test(flavor = "multi_thread")]
async fn a_profile_chosen_inside_a_session_is_the_source_there() {
    let sts = FakeSts::start(HOUR).await;
    let t = user(&sts);
    write_profiles(&t);
    let session = session_from_default(&t);
    assert!(session.contains_key("ELHAZ_SESSION"));
    assert!(!session.contains_key("AWS_PROFILE"));
    for args in [&["--no-daemon", "export", "prod"][..], &["export", "prod"]] {
        let before = sts.signers("AssumeRole").await.len();
        let mut c = t.std_cmd();
        c.env_clear()
            .envs(session.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_PROFILE", "p1")
            .args(args);
        let out = c.output().unwrap();
        ok(&out);
        assert_eq!(sts.signers("AssumeRole").await[before..], [KP1], "{args:?}");
        // Without it, the session's own source: [default].
        let before = sts.signers("AssumeRole").await.len();
        let mut c = t.std_cmd();
        c.env_clear()
            .envs(session.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["daemon", "remove", "prod"]);
        let _ = c.output();
        let mut c = t.std_cmd();
        c.env_clear()
            .envs(session.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args);
        ok(&c.output().unwrap());
        assert_eq!(
            sts.signers("AssumeRole").await[before..],
            [KDEF],
            "{args:?}"
        );
    }
    t.stop_daemon();
}

/// A source whose credential_process reads the caller's environment (a password
/// manager's account, a vault address): the daemon was started from another shell,
/// and still the helper runs with the caller's environment, as with --no-daemon, so
/// both sign with the same key.
#[tokio::test(flavor = "multi_thread")]
async fn a_credential_process_source_runs_with_the_callers_environment_daemon_or_not() {
    let sts = FakeSts::start(HOUR).await;
    let t = user(&sts);
    let helper = t.home.join("helper.sh");
    std::fs::write(
        &helper,
        "#!/bin/sh\ncase \"$WHO\" in a) k=AKIAHELPERAAAAAAAA01;; b) k=AKIAHELPERBBBBBBBB02;; *) k=AKIAHELPERNOBODY0003;; esac\nprintf '{\"Version\":1,\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"s\"}\\n' $k\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.write_aws_config(&format!(
        "[profile srcproc]\ncredential_process = {}\nregion = eu-west-1\n",
        helper.display()
    ));
    t.write_config(
        "viaproc",
        "AssumeRole:\n  RoleArn: arn:aws:iam::555555555555:role/ViaProc\nSession:\n  profile_name: srcproc\n",
    );
    ok(&run(&t, &[("WHO", Some("a"))], &["daemon", "start"]));
    for args in [
        &["export", "viaproc"][..],
        &["--no-daemon", "export", "viaproc"],
    ] {
        let (out, signers) = signed_by(&sts, &t, &[("WHO", Some("b"))], args).await;
        ok(&out);
        assert_eq!(signers, ["AKIAHELPERBBBBBBBB02"], "{args:?}");
    }
    // The default chain through such a profile, the same.
    let (out, signers) = signed_by(
        &sts,
        &t,
        &[("WHO", Some("b")), ("AWS_PROFILE", Some("srcproc"))],
        &["export", "prod"],
    )
    .await;
    ok(&out);
    assert_eq!(signers, ["AKIAHELPERBBBBBBBB02"]);
    // And a --server child, whose endpoint asks when the child does.
    let fetch = r#"curl -sf -H "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" "$AWS_CONTAINER_CREDENTIALS_FULL_URI""#;
    let (out, signers) = signed_by(
        &sts,
        &t,
        &[("WHO", Some("b"))],
        &["exec", "--server", "viaproc", "--", "sh", "-c", fetch],
    )
    .await;
    ok(&out);
    assert!(
        text(&out.stdout).contains("AccessKeyId"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(signers, ["AKIAHELPERBBBBBBBB02"], "--server");
    t.stop_daemon();
}

/// Inside a session made from `[default]`, keys the user exports there (not the ones
/// the session injected, which `ELHAZ_KEY_ID` names) are the source, as the aws CLI
/// in that shell would use them; the injected ones never are.
#[tokio::test(flavor = "multi_thread")]
async fn keys_set_inside_a_session_are_the_source_there_and_injected_ones_never() {
    let sts = FakeSts::start(HOUR).await;
    let t = user(&sts);
    write_profiles(&t);
    let session = session_from_default(&t);
    assert_eq!(session["ELHAZ_KEY_ID"], session["AWS_ACCESS_KEY_ID"]);
    let mut own = session.clone();
    own.insert("AWS_ACCESS_KEY_ID".into(), K1.into());
    own.insert("AWS_SECRET_ACCESS_KEY".into(), "secret-one".into());
    own.remove("AWS_SESSION_TOKEN");
    for args in [&["--no-daemon", "export", "prod"][..], &["export", "prod"]] {
        for (env, want) in [(&own, K1), (&session, KDEF)] {
            let before = sts.signers("AssumeRole").await.len();
            let mut c = t.std_cmd();
            c.env_clear()
                .envs(&session)
                .args(["daemon", "remove", "prod"]);
            let _ = c.output();
            let mut c = t.std_cmd();
            c.env_clear().envs(env).args(args);
            ok(&c.output().unwrap());
            assert_eq!(
                sts.signers("AssumeRole").await[before..],
                [want],
                "{args:?}"
            );
        }
    }
    t.stop_daemon();
}
