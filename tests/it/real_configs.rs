//! Real configurations: the `~/.aws` files people have, all at once (see
//! `support::world`): profile chains, MFA, `credential_process` recipes pointing at
//! elhaz, helpers, edited files, custom endpoints. Every check is on WHO SIGNED each
//! STS call, and each scenario runs through a daemon that another caller started
//! earlier with other variables, with `--no-daemon`, and in a `--server` child.

use std::process::Command;
use std::time::Duration;

use crate::support::world::*;
use crate::support::*;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// `elhaz ARGS` under a terminal, typing `code` at the MFA prompt.
fn with_code(w: &World, args: &[&str], code: &str) -> String {
    let mut cmd: Command = w.t.std_cmd();
    cmd.args(args);
    let mut p = Pty::spawn(
        cmd,
        &format!("elhaz {}", args.join(" ")),
        160,
        Duration::from_secs(30),
    );
    p.expect("MFA code for ");
    p.send_line(code);
    let status = p.wait_exit();
    assert_eq!(status, 0, "{}", p.transcript);
    p.transcript.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_two_hop_chain_is_signed_hop_by_hop_the_same_three_ways() {
    let w = World::new().await;
    let expected = s(&["Plain<-AKIADEFAULTWORLD0001", "Chain2<-Plain"]);

    w.start_foreign_daemon();
    let m = w.mark().await;
    ok(&w.run(&[], &["export", "chain2"]));
    assert_eq!(w.since(m).await, expected, "through the daemon");
    let log = w.sts.log().await;
    let (plain, chain2) = (&log[m], &log[m + 1]);
    assert_eq!(plain.region, "eu-west-2", "the first hop in its own region");
    assert_eq!(chain2.form["ExternalId"], "chain2-ext");
    assert_eq!(chain2.form["RoleSessionName"], "chain2-session");

    let m = w.mark().await;
    ok(&w.run(&[], &["--no-daemon", "export", "chain2"]));
    assert_eq!(w.since(m).await, expected, "with --no-daemon");

    // A --server child: the aws CLI gets the endpoint's credentials, and STS sees its
    // GetCallerIdentity signed by the key the last hop issued.
    let m = w.mark().await;
    let o = w.run(
        &[],
        &[
            "--no-daemon",
            "exec",
            "--server",
            "chain2",
            "--",
            "aws",
            "sts",
            "get-caller-identity",
        ],
    );
    ok(&o);
    let mut with_child = expected.clone();
    with_child.push("GetCallerIdentity<-Chain2".into());
    assert_eq!(w.since(m).await, with_child, "in a --server child");
}

#[tokio::test(flavor = "multi_thread")]
async fn three_hops_with_mfa_on_the_first_ask_once_and_refresh_without_asking_again() {
    let w = World::new().await;
    let expected = s(&["Base<-AKIADEFAULTWORLD0001", "Deep<-Base", "Deeper<-Deep"]);

    // No terminal: the MFA device of the first hop is named, nothing is printed.
    let o = w.run(&[], &["export", "deeper"]);
    assert_fails(&o, 5, "arn:aws:iam::111111111111:mfa/tester");

    w.start_foreign_daemon();
    let m = w.mark().await;
    with_code(&w, &["export", "deeper"], "123456");
    assert_eq!(w.since(m).await, expected, "through the daemon");
    let log = w.sts.log().await;
    let base = log.iter().skip(m).find(|c| c.role == "Base").unwrap();
    assert_eq!(
        base.form["SerialNumber"],
        "arn:aws:iam::111111111111:mfa/tester"
    );
    assert_eq!(base.form["TokenCode"], "123456");
    assert_eq!(base.form["DurationSeconds"], "3600");
    assert_eq!(base.region, "eu-central-1");
    let deep = log.iter().skip(m).find(|c| c.role == "Deep").unwrap();
    assert_eq!(deep.form["ExternalId"], "deep-ext");
    let deeper = log.iter().skip(m).find(|c| c.role == "Deeper").unwrap();
    assert_eq!(deeper.form["RoleSessionName"], "deeper-session");

    // A refresh of the top role needs no code while the first hop is valid: only the
    // last AssumeRole is made again, signed by the middle hop it kept.
    let m = w.mark().await;
    ok(&w.run(&[], &["daemon", "refresh", "deeper"]));
    assert_eq!(w.since(m).await, s(&["Deeper<-Deep"]));

    let m = w.mark().await;
    with_code(&w, &["--no-daemon", "export", "deeper"], "654321");
    assert_eq!(w.since(m).await, expected, "with --no-daemon");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_credential_process_recipe_never_calls_itself() {
    let w = World::new().await;
    // The SDK runs `elhaz export prod` with AWS_PROFILE=prod: that selector leads back
    // to elhaz, so the chain goes on as without it, to [default]'s keys.
    let expected = s(&["Admin<-AKIADEFAULTWORLD0001", "GetCallerIdentity<-Admin"]);
    let aws = [("AWS_PROFILE", Some("prod"))];

    w.start_foreign_daemon();
    let m = w.mark().await;
    ok(&w.program("aws", &aws, &["sts", "get-caller-identity"]));
    assert_eq!(w.since(m).await, expected, "through the daemon");

    w.t.stop_daemon();
    let m = w.mark().await;
    let local = [
        ("AWS_PROFILE", Some("prod")),
        ("ELHAZ_NO_DAEMON", Some("1")),
    ];
    ok(&w.program("aws", &local, &["sts", "get-caller-identity"]));
    assert_eq!(w.since(m).await, expected, "with --no-daemon");

    let m = w.mark().await;
    ok(&w.run(
        &aws,
        &[
            "--no-daemon",
            "exec",
            "--server",
            "prod",
            "--",
            "aws",
            "sts",
            "get-caller-identity",
        ],
    ));
    assert_eq!(w.since(m).await, expected, "in a --server child");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loop_through_elhaz_ends_at_once_with_exit_3() {
    let w = World::new().await;
    let m = w.mark().await;
    // The profile asks elhaz for itself.
    let o = w.run(&[], &["--no-daemon", "export", "loop"]);
    assert_fails(&o, 3, "profile loop (~/.aws/config:");
    assert!(text(&o.stderr).contains("loops"), "{}", text(&o.stderr));
    // The same through a wrapper elhaz cannot see into: the inner elhaz knows it is
    // asked for what its caller is resolving, and says so at once, in the daemon too.
    let wrap = w.script("wrap.sh", "exec elhaz export wrapped -f credential-process");
    let mut cfg = std::fs::read_to_string(w.t.home.join(".aws/config")).unwrap();
    cfg.push_str(&format!(
        "\n[profile wrapped]\ncredential_process = {}\n",
        wrap.display()
    ));
    w.t.write_aws_config(&cfg);
    for args in [
        &["--no-daemon", "export", "wrapped"][..],
        &["export", "wrapped"][..],
    ] {
        let o = w.run(&[], args);
        assert!(!o.status.success(), "{args:?}");
        let err = text(&o.stderr);
        assert!(err.contains("wrapped loops"), "{args:?}: {err}");
        assert!(!err.contains("timed out"), "{args:?}: {err}");
    }
    assert_eq!(w.since(m).await, Vec::<String>::new(), "no STS call at all");
}

/// Two profiles whose helpers ask elhaz for each other, through wrappers elhaz cannot
/// see into: the names being resolved travel through the daemon with the request, so
/// the second ask is a loop at once, not a wait on itself until the 30 s timeout. A
/// self-reference in a shell's `-c` or in `exec` form is named before anything runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_loop_through_the_daemon_or_a_shell_wrapper_is_named_at_once() {
    let w = World::new().await;
    let m = w.mark().await;
    let wrap = w.script("ask.sh", "exec elhaz export \"$1\" -f credential-process");
    let mut cfg = std::fs::read_to_string(w.t.home.join(".aws/config")).unwrap();
    cfg.push_str(&format!(
        "\n[profile ping]\ncredential_process = {wrap} pong\n\
         \n[profile pong]\ncredential_process = {wrap} ping\n\
         \n[profile in-sh]\ncredential_process = sh -c 'elhaz export in-sh -f credential-process'\n\
         \n[profile as-exec]\ncredential_process = elhaz exec as-exec -- cat /dev/null\n",
        wrap = wrap.display()
    ));
    w.t.write_aws_config(&cfg);
    for args in [&["export", "ping"][..], &["--no-daemon", "export", "ping"]] {
        let start = std::time::Instant::now();
        let o = w.run(&[], args);
        let took = start.elapsed();
        assert!(!o.status.success(), "{args:?}");
        let err = text(&o.stderr);
        assert!(
            err.contains(
                "ping loops: its source runs elhaz for ping again (resolving ping → pong)"
            ),
            "{args:?}: {err}"
        );
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
    }
    for name in ["in-sh", "as-exec"] {
        let o = w.run(&[], &["export", name]);
        assert_fails(&o, 3, &format!("profile {name} (~/.aws/config:"));
        assert!(
            text(&o.stderr).contains(&format!(
                "loops: its credential_process asks elhaz for {name}, which is this profile"
            )),
            "{}",
            text(&o.stderr)
        );
    }
    assert_eq!(w.since(m).await, Vec::<String>::new(), "no STS call at all");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_started_with_other_endpoints_uses_the_callers() {
    let w = World::new().await;
    let other = FakeSts::start(Duration::from_secs(3600)).await;
    w.start_foreign_daemon();
    let m = w.mark().await;
    ok(&w.run(&[], &["export", "demo"]));
    assert_eq!(w.since(m).await, s(&["Demo<-AKIADEFAULTWORLD0001"]));
    // A caller that differs only in its STS endpoint never shares the session.
    let o = w.run(
        &[("AWS_ENDPOINT_URL_STS", Some(&other.uri()))],
        &["export", "demo"],
    );
    ok(&o);
    assert_eq!(
        other.chain_since(0).await,
        s(&["Demo<-AKIADEFAULTWORLD0001"])
    );
    // AWS_ENDPOINT_URL alone moves STS too.
    let third = FakeSts::start(Duration::from_secs(3600)).await;
    let o = w.run(
        &[
            ("AWS_ENDPOINT_URL_STS", None),
            ("AWS_ENDPOINT_URL", Some(&third.uri())),
        ],
        &["export", "demo"],
    );
    ok(&o);
    assert_eq!(
        third.chain_since(0).await,
        s(&["Demo<-AKIADEFAULTWORLD0001"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_config_or_profile_gets_a_new_session_at_the_next_request() {
    let w = World::new().await;
    w.start_foreign_daemon();
    let m = w.mark().await;
    ok(&w.run(&[], &["export", "demo"]));
    ok(&w.run(&[], &["export", "demo"]));
    let log = w.sts.log().await;
    assert_eq!(
        log.len() - m,
        1,
        "the second export is served from the cache"
    );
    assert_eq!(log[m].form["DurationSeconds"], "900");

    ok(&w.run(
        &[],
        &[
            "config",
            "update",
            "demo",
            "--duration",
            "1h",
            "--region",
            "us-west-1",
        ],
    ));
    let m = w.mark().await;
    let o = w.run(&[], &["export", "demo", "-f", "env"]);
    ok(&o);
    let log = w.sts.log().await;
    assert_eq!(log.len() - m, 1, "a new session for the changed config");
    assert_eq!(log[m].form["DurationSeconds"], "3600");
    assert_eq!(log[m].region, "us-west-1");
    assert!(text(&o.stdout).contains("us-west-1"), "{}", text(&o.stdout));
    let status = w.run(&[], &["daemon", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let demos = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "demo")
        .count();
    assert_eq!(demos, 1, "the old session is gone: {v}");

    // The same for a profile edited by hand.
    ok(&w.run(&[], &["export", "chain2"]));
    let cfg = std::fs::read_to_string(w.t.home.join(".aws/config")).unwrap();
    w.t.write_aws_config(&cfg.replace("chain2-session", "renamed-session"));
    let m = w.mark().await;
    ok(&w.run(&[], &["export", "chain2"]));
    let log = w.sts.log().await;
    let last = log.last().unwrap();
    assert_eq!(log.len() - m, 2, "{:?}", w.since(m).await);
    assert_eq!(last.form["RoleSessionName"], "renamed-session");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_mfa_prompt_for_one_identity_whatever_else_the_caller_has_set() {
    let w = World::new().await;
    w.start_foreign_daemon();
    let m = w.mark().await;
    with_code(&w, &["export", "prod-mfa"], "111111");
    assert_eq!(w.since(m).await, s(&["ProdMfa<-AKIADEFAULTWORLD0001"]));
    // Variables prod-mfa does not read: the same session, no second prompt (there is
    // no terminal here: a prompt would be an error).
    for vars in [
        &[("AWS_REGION", Some("us-west-2"))][..],
        &[("AWS_PROFILE", Some("other"))][..],
        &[
            ("AWS_DEFAULT_REGION", Some("eu-north-1")),
            ("AWS_PROFILE", Some("plain")),
        ][..],
    ] {
        let o = w.run(vars, &["export", "prod-mfa"]);
        ok(&o);
    }
    assert_eq!(w.since(m).await.len(), 1, "{:?}", w.since(m).await);
    let status = w.run(&[], &["daemon", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1, "{v}");
    // A NAME that does read the selector still tells sources apart.
    let m = w.mark().await;
    ok(&w.run(&[("AWS_PROFILE", Some("other"))], &["export", "prod"]));
    ok(&w.run(&[], &["export", "prod"]));
    assert_eq!(
        w.since(m).await,
        s(&["Admin<-AKIAOTHERWORLD000002", "Admin<-AKIADEFAULTWORLD0001"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_prompt_hook_never_asks_for_an_mfa_code() {
    let w = World::new().await;
    w.start_foreign_daemon();
    let old = (unix_now() - 10).to_string();
    let mut cmd = w.t.std_cmd();
    cmd.args(["hook", "bash", "--refresh"])
        .env("ELHAZ_SESSION", "prod-mfa")
        .env("ELHAZ_EXPIRES_AT", &old)
        .env("ELHAZ_REFRESH_AT", &old);
    let mut p = Pty::spawn(
        cmd,
        "elhaz hook bash --refresh",
        160,
        Duration::from_secs(20),
    );
    let code = p.wait_exit();
    assert_eq!(code, 0, "{}", p.transcript);
    assert!(
        p.transcript.contains("run: elhaz use prod-mfa"),
        "one warning with the command that asks: {}",
        p.transcript
    );
    assert!(!p.transcript.contains("MFA code for"), "{}", p.transcript);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_helpers_say_on_stderr_reaches_the_caller_through_the_daemon() {
    let w = World::new().await;
    w.t.write_config(
        "touch",
        "AssumeRole:\n  RoleArn: arn:aws:iam::123456789012:role/Touch\n  SerialNumber: arn:aws:iam::123456789012:mfa/key\n\
         Session:\n  profile_name: default\n\
         MFA:\n  command: \"echo 'touch your key' >&2; printf '\\\\033]0;pwned\\\\007' >&2; echo 123456\"\n",
    );
    w.start_foreign_daemon();
    let o = w.run(&[], &["export", "touch"]);
    ok(&o);
    let err = text(&o.stderr);
    assert!(err.contains("touch your key"), "{err}");
    assert!(!err.contains('\u{1b}'), "escaped: {err:?}");
    assert!(err.contains("\\x1b]0;pwned"), "{err:?}");
    assert!(
        log_text(&w.t).contains("touch your key"),
        "and in the daemon's log"
    );

    // A credential_process helper sees the caller's AWS_PROFILE, as under the SDKs,
    // and what it says is relayed too.
    let m = w.mark().await;
    let o = w.run(
        &[("AWS_PROFILE", Some("other"))],
        &["export", "from-helper"],
    );
    ok(&o);
    assert!(
        text(&o.stderr).contains("asked as profile other"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(w.since(m).await, s(&["FromHelper<-AKIAHELPERWORLD00003"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn sso_logout_forgets_the_role_credentials_it_gave_in_the_daemon_too() {
    let fake = crate::support::sso::FakeSso::start().await;
    let mut w = World::new().await;
    w.add_sso(&fake);
    let dev = crate::support::sso::key_for("111122223333", "Dev");
    w.start_foreign_daemon();
    let m = w.mark().await;
    ok(&w.run(&[], &["export", "corp-dev"]));
    ok(&w.run(&[], &["export", "on-sso"]));
    ok(&w.run(&[], &["export", "demo"]));
    assert_eq!(
        w.since(m).await,
        s(&[&format!("OnSso<-{dev}"), "Demo<-AKIADEFAULTWORLD0001"])
    );
    let o = w.run(&[], &["sso", "logout", "corp"]);
    ok(&o);
    assert!(
        text(&o.stderr).contains("forgot 2 session(s)"),
        "{}",
        text(&o.stderr)
    );
    // Neither the SSO profile nor the role chained on it is served any more; what
    // did not come from SSO still is.
    for name in ["corp-dev", "on-sso"] {
        let o = w.run(&[], &["export", name]);
        assert_fails(&o, 5, "elhaz sso login corp");
    }
    let m = w.mark().await;
    ok(&w.run(&[], &["export", "demo"]));
    assert_eq!(w.since(m).await.len(), 0, "demo stays cached");
}
