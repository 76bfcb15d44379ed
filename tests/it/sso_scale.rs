//! `elhaz sso roles` and `sso sync` for a large organisation, against the fake portal
//! with many accounts, pages, and a token-bucket limit that answers 429 above it: every
//! role listed, no login started for a throttle, and a discovery the portal cuts off
//! names how far it got and writes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::*;

const ROLES: &[&str] = &["AdministratorAccess", "Billing", "ReadOnly"];

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_accounts_under_a_throttling_portal_list_every_role_without_a_login() {
    let portal = FakePortal::start(&[]).await;
    portal.many(1000, ROLES, 100);
    // elhaz is told it may ask faster than the portal answers: the portal throttles
    // (and every 7th call besides, so it throttles however slowly the test runs).
    portal.limit(400.0, 20.0);
    portal.throttle_every(7);
    let mut t = sso_user(&portal.uri(), 3600);
    t.set("ELHAZ_SSO_RATE", "600");
    let browser = counting_browser(&mut t);

    let out = run(&t, &["sso", "roles", "corp", "--json"]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 3000);
    for i in [0usize, 499, 999] {
        let id = (100_000_000_000u64 + i as u64).to_string();
        for role in ROLES {
            assert!(
                rows.iter()
                    .any(|r| r["account_id"] == id.as_str() && r["role_name"] == *role),
                "{id}/{role} missing"
            );
        }
    }
    let (_, throttled) = portal.counts();
    assert!(
        throttled > 0,
        "the portal never throttled: the test proves nothing"
    );
    assert_eq!(launches(&browser), 0, "a throttle started a login");
    let err = text(&out.stderr);
    assert!(!err.contains("expired") && !err.contains("login"), "{err}");
    for path in ["/assignment/accounts", "/assignment/roles"] {
        for (q, _) in portal.calls(path).await {
            assert_eq!(
                q.get("max_result").map(String::as_str),
                Some("100"),
                "{q:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn at_a_rate_under_the_portals_limit_the_portal_never_throttles() {
    let portal = FakePortal::start(&[]).await;
    portal.many(60, ROLES, 100);
    portal.limit(60.0, 3.0);
    let mut t = sso_user(&portal.uri(), 3600);
    t.set("ELHAZ_SSO_RATE", "40");

    let out = run(&t, &["sso", "roles", "corp", "--json"]);
    ok(&out);
    let (answered, throttled) = portal.counts();
    assert_eq!(answered, 61);
    assert_eq!(throttled, 0, "elhaz asked faster than ELHAZ_SSO_RATE");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_discovery_the_portal_cuts_off_exits_5_naming_its_progress_and_writes_nothing() {
    let portal = FakePortal::start(&[]).await;
    portal.many(1000, ROLES, 100);
    let mut t = sso_user(&portal.uri(), 3600);
    t.set("ELHAZ_SSO_RATE", "2000");
    let browser = counting_browser(&mut t);
    let hand = format!("{SSO_SESSION}\n[profile mine]\nregion = us-east-1\n");
    t.write_aws_config(&hand);

    for cmd in [&["sso", "roles", "corp"][..], &["sso", "sync", "corp"][..]] {
        // Ten pages of accounts, 640 accounts' roles, then 429 for good.
        portal.throttle_after(10 + 640);
        let out = run(&t, cmd);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{err}");
        assert!(err.contains("listed 640 of 1,000 accounts"), "{err}");
        assert!(err.contains("TooManyRequestsException"), "{err}");
        assert!(err.contains("hint: "), "{err}");
        assert!(
            !err.contains("expired") && !err.contains("elhaz sso login"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
        assert_eq!(
            std::fs::read_to_string(t.home.join(".aws/config")).unwrap(),
            hand
        );
        assert_eq!(launches(&browser), 0, "a throttle started a login");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_that_is_not_a_number_is_refused_before_any_call() {
    let portal = FakePortal::start(&[]).await;
    portal.many(3, ROLES, 100);
    let mut t = sso_user(&portal.uri(), 3600);
    t.set("ELHAZ_SSO_RATE", "fast");
    let out = run(&t, &["sso", "roles", "corp"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ELHAZ_SSO_RATE") && err.contains("hint: "),
        "{err}"
    );
    assert_eq!(portal.counts(), (0, 0));
}

/// The role names `sso roles --json` printed.
fn role_rows(out: &std::process::Output) -> usize {
    ok(out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_second_listing_asks_the_portal_nothing_and_refresh_asks_again() {
    let portal = FakePortal::start(&[]).await;
    portal.many(250, ROLES, 100);
    let mut t = sso_user(&portal.uri(), 3600);
    t.set("ELHAZ_SSO_RATE", "2000");

    assert_eq!(
        role_rows(&run(&t, &["sso", "roles", "corp", "--json"])),
        750
    );
    let (first, _) = portal.counts();
    assert_eq!(first, 3 + 250);
    let cached = t.home.join(".elhaz/cache/sso/corp.json");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cached), 0o600);
    assert_eq!(mode(cached.parent().unwrap()), 0o700);
    assert!(
        !std::fs::read_to_string(&cached)
            .unwrap()
            .contains(SSO_TOKEN)
    );

    // The second run, and sync, list the same from the cache: no portal call.
    assert_eq!(
        role_rows(&run(&t, &["sso", "roles", "corp", "--json"])),
        750
    );
    ok(&run(&t, &["sso", "sync", "corp"]));
    assert!(
        std::fs::read_to_string(t.home.join(".aws/config"))
            .unwrap()
            .contains("[profile acct-00249-readonly]")
    );
    assert_eq!(
        portal.counts().0,
        first,
        "a cached listing asked the portal"
    );

    // --refresh asks again and sees what changed; so does a cache older than --max-age.
    portal.many(2, ROLES, 100);
    assert_eq!(
        role_rows(&run(&t, &["sso", "roles", "corp", "--json", "--refresh"])),
        6
    );
    assert_eq!(portal.counts().0, first + 3);
    portal.many(1, ROLES, 100);
    assert_eq!(
        role_rows(&run(
            &t,
            &["sso", "roles", "corp", "--json", "--max-age", "0"]
        )),
        3
    );
    assert_eq!(portal.counts().0, first + 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_forgets_the_cached_listing() {
    let portal = FakePortal::start(&[]).await;
    portal.many(2, ROLES, 100);
    let t = sso_user(&portal.uri(), 3600);
    ok(&run(&t, &["sso", "roles", "corp"]));
    let cached = t.home.join(".elhaz/cache/sso/corp.json");
    assert!(cached.exists());
    run(&t, &["sso", "logout", "corp"]);
    assert!(!cached.exists(), "logout left the account list");
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_all_forgets_every_sessions_listing() {
    let portal = FakePortal::start(&[]).await;
    portal.many(2, ROLES, 100);
    let t = sso_user(&portal.uri(), 3600);
    let team = SSO_SESSION.replace("[sso-session corp]", "[sso-session team]");
    t.write_aws_config(&format!("{SSO_SESSION}{team}"));
    write_token(&t, "team", 3600);
    let dir = t.home.join(".elhaz/cache/sso");
    for s in ["corp", "team"] {
        ok(&run(&t, &["sso", "roles", s]));
        assert!(dir.join(format!("{s}.json")).exists());
    }
    let out = run(&t, &["sso", "logout", "--all"]);
    ok(&out);
    assert!(
        text(&out.stderr).contains("logged out of 2 SSO session(s)"),
        "{}",
        text(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "logout --all left {left:?}");
    // And the next listing asks the portal again.
    let before = portal.counts().0;
    write_token(&t, "corp", 3600);
    ok(&run(&t, &["sso", "roles", "corp"]));
    assert_eq!(portal.counts().0, before + 3);
}

/// On a terminal, discovery shows `accounts N/M, roles R` as it goes; Ctrl-C ends it
/// with 130 and clears the line (the terminal is left as it was); on a pipe nothing
/// of it is written.
#[tokio::test(flavor = "multi_thread")]
async fn discovery_shows_its_progress_on_a_terminal_and_ctrl_c_clears_it() {
    let portal = FakePortal::start(&[]).await;
    portal.many(300, ROLES, 100);
    portal.delay_roles(std::time::Duration::from_millis(200));
    let mut t = sso_user(&portal.uri(), 3600);
    t.set("ELHAZ_SSO_RATE", "20");
    t.unset("ELHAZ_NO_SPINNER").set("TERM", "xterm");
    let mut cmd = t.std_cmd();
    cmd.args(["sso", "roles", "corp"]);
    let mut p = Pty::spawn(
        cmd,
        "elhaz sso roles",
        120,
        std::time::Duration::from_secs(30),
    );
    p.expect_screen("/300, roles ");
    p.expect_screen("/300, roles ");
    p.send("\x03");
    assert_eq!(p.wait_exit(), 130, "{}", p.transcript);
    let raw = &p.transcript;
    let last = raw.rfind("/300, roles ").unwrap();
    assert!(
        raw[last..].contains("\x1b[2K"),
        "the progress line stayed on the screen: {:?}",
        &raw[last..]
    );
    assert!(
        !screen(&raw[last..]).contains("elhaz:"),
        "Ctrl-C is quiet: {raw:?}"
    );
    assert!(
        !t.home.join(".elhaz/cache/sso/corp.json").exists(),
        "a listing cut off was cached"
    );

    // On a pipe: the table and nothing else.
    portal.delay_roles(std::time::Duration::from_millis(0));
    t.set("ELHAZ_SSO_RATE", "2000");
    let out = run(&t, &["sso", "roles", "corp"]);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("accounts") && !err.contains('\x1b'),
        "{err:?}"
    );
}

/// 3,000 profiles: a second sync (the portal listing in another order) changes no
/// byte; --prune with a discovery the portal cuts off changes no byte either; after a
/// complete one it removes exactly what is no longer listed.
#[tokio::test(flavor = "multi_thread")]
async fn three_thousand_profiles_sync_stably_and_prune_only_after_a_complete_discovery() {
    let portal = FakePortal::start(&[]).await;
    portal.many(1000, ROLES, 100);
    let mut t = sso_user(&portal.uri(), 3600);
    t.set("ELHAZ_SSO_RATE", "2000");
    let path = t.home.join(".aws/config");
    ok(&run(&t, &["sso", "sync", "corp"]));
    let first = std::fs::read(&path).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&first)
            .matches("[profile acct-")
            .count(),
        3000
    );

    portal.reverse();
    let out = run(&t, &["sso", "sync", "corp", "--refresh"]);
    ok(&out);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        first,
        "a second sync changed bytes"
    );
    assert!(
        text(&out.stderr).contains("up to date (3,000 profiles"),
        "{}",
        text(&out.stderr)
    );

    // Ten accounts are gone, but the discovery is cut off: nothing is pruned.
    portal.many(990, ROLES, 100);
    portal.throttle_after(10 + 500);
    let out = run(&t, &["sso", "sync", "corp", "--refresh", "--prune"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        first,
        "a partial discovery pruned"
    );

    portal.throttle_after(usize::MAX / 2);
    let out = run(&t, &["sso", "sync", "corp", "--refresh", "--prune"]);
    ok(&out);
    let err = text(&out.stderr);
    assert!(
        err.contains("wrote 2,970 profiles to ~/.aws/config (0 added, 0 changed, 30 removed)"),
        "{err}"
    );
    let now = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
    assert_eq!(now.matches("[profile acct-").count(), 2970);
    assert!(!now.contains("[profile acct-00990-") && now.contains("[profile acct-00989-"));
}
