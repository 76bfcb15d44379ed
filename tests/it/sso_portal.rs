//! `elhaz sso roles` and `elhaz sso sync` against a fake IAM Identity Center portal
//! (tests/support/sso_portal.rs), with the token in the AWS CLI's cache: every page of
//! every list, the config file's block (idempotent, pruned, previewed, never touching
//! anything else) and the AWS CLI and botocore reading what sync wrote.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::support::*;

const ROLES: &[(&str, &str, &[&str])] = &[
    ("222222222222", "Prod", &["ReadOnly"]),
    (
        "111111111111",
        "Dev Sandbox",
        &["AdministratorAccess", "Billing", "ReadOnly"],
    ),
    ("333333333333", "Audit", &["SecurityAudit"]),
];

fn config_path(t: &TestEnv) -> PathBuf {
    t.home.join(".aws/config")
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// `elhaz sso sync ARGS…` for session corp; asserts success.
fn sync(t: &TestEnv, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sso", "sync", "corp"];
    args.extend_from_slice(extra);
    let out = run(t, &args);
    ok(&out);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_lists_every_page_of_accounts_and_roles_with_names() {
    let portal = FakePortal::start(ROLES).await;
    let t = sso_user(&portal.uri(), 3600);

    let out = run(&t, &["sso", "roles", "corp", "--json"]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<(String, String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["account_name"].as_str().unwrap().to_string(),
                r["account_id"].as_str().unwrap().to_string(),
                r["role_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("Audit", "333333333333", "SecurityAudit"),
        ("Dev Sandbox", "111111111111", "AdministratorAccess"),
        ("Dev Sandbox", "111111111111", "Billing"),
        ("Dev Sandbox", "111111111111", "ReadOnly"),
        ("Prod", "222222222222", "ReadOnly"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(rows, want);

    // Three accounts, two per page: two ListAccounts calls, the second with the token
    // the first returned; three roles of one account: two ListAccountRoles calls.
    let accounts = portal.calls("/assignment/accounts").await;
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    assert_eq!(accounts[0].0.get("next_token"), None);
    assert_eq!(
        accounts[1].0.get("next_token").map(String::as_str),
        Some("page-2")
    );
    let roles = portal.calls("/assignment/roles").await;
    let dev: Vec<_> = roles
        .iter()
        .filter(|(q, _)| q["account_id"] == "111111111111")
        .collect();
    assert_eq!(dev.len(), 2, "{roles:?}");
    assert_eq!(roles.len(), 4, "{roles:?}");
    for (_, token) in accounts.iter().chain(&roles) {
        assert_eq!(token.as_deref(), Some(SSO_TOKEN));
    }

    // The table: a header, then one row per role, in the same order.
    let out = run(&t, &["sso", "roles", "corp"]);
    ok(&out);
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6, "{table}");
    assert!(lines[0].starts_with("ACCOUNT "), "{table}");
    assert!(lines[0].contains("ACCOUNT ID") && lines[0].ends_with("ROLE"));
    let cells: Vec<&str> = lines[2].split("  ").filter(|c| !c.is_empty()).collect();
    assert_eq!(
        cells.iter().map(|c| c.trim()).collect::<Vec<_>>(),
        ["Dev Sandbox", "111111111111", "AdministratorAccess"]
    );
    // The access token never reaches the output.
    assert!(!text(&out.stderr).contains(SSO_TOKEN) && !table.contains(SSO_TOKEN));
}

/// Calls in flight start at four and grow while the portal answers (the window halves
/// when it throttles: see sso::polite's unit tests).
#[tokio::test(flavor = "multi_thread")]
async fn roles_starts_with_a_few_calls_at_once_and_asks_more_while_the_portal_answers() {
    let portal = FakePortal::start(&[]).await;
    portal.many(80, &["Admin"], 100);
    // Each ListAccountRoles answer takes 300 ms: calls that arrive within 250 ms of
    // each other were all in flight together.
    portal.delay_roles(std::time::Duration::from_millis(300));
    let mut t = sso_user(&portal.uri(), 3600);
    t.set("ELHAZ_SSO_RATE", "1000");
    let out = run(&t, &["sso", "roles", "corp", "--json"]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 80);
    let window = std::time::Duration::from_millis(250);
    let first = portal.first_roles_calls_within(window);
    assert!((2..=4).contains(&first), "{first} calls at once at first");
    let most = portal.most_roles_calls_within(window);
    assert!(
        most >= 8,
        "at most {most} calls at once: the window never grew"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_missing_or_revoked_token_says_how_to_log_in() {
    let portal = FakePortal::start(ROLES).await;
    let hint = "SSO session 'corp' has expired; run: elhaz sso login corp";

    // Expired in the cache: the portal is not even asked.
    let t = sso_user(&portal.uri(), -60);
    for cmd in [&["sso", "roles", "corp"][..], &["sso", "sync", "corp"][..]] {
        let before = read(&config_path(&t));
        let out = run(&t, cmd);
        assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(hint), "{}", text(&out.stderr));
        assert_eq!(read(&config_path(&t)), before);
    }
    assert!(portal.calls("/assignment/accounts").await.is_empty());

    // No cache file at all.
    let t = sso_user(&portal.uri(), 3600);
    std::fs::remove_dir_all(t.home.join(".aws/sso")).unwrap();
    let out = run(&t, &["sso", "roles", "corp"]);
    assert_eq!(out.status.code(), Some(5));
    let never = "SSO session 'corp' is not logged in; run: elhaz sso login corp";
    assert!(text(&out.stderr).contains(never), "{}", text(&out.stderr));

    // A token the portal refuses (revoked, or another session's): its 401 is the same.
    let t = sso_user(&portal.uri(), 3600);
    let cache = t
        .home
        .join(format!(".aws/sso/cache/{}.json", sha1_hex("corp")));
    let other = read(&cache).replace(SSO_TOKEN, "a-revoked-token");
    std::fs::write(&cache, other).unwrap();
    let out = run(&t, &["sso", "roles", "corp", "--json"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(text(&out.stderr).contains(hint), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_session_and_a_failing_portal_are_clear_errors() {
    let portal = FakePortal::start(ROLES).await;
    let t = sso_user(&portal.uri(), 3600);

    let out = run(&t, &["sso", "roles", "nosuch"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nosuch"),
        "{}",
        text(&out.stderr)
    );

    let hand = format!("{SSO_SESSION}\n[profile mine]\nregion = us-east-1\n");
    t.write_aws_config(&hand);
    portal.fail_with(Some(500));
    for cmd in [&["sso", "roles", "corp"][..], &["sso", "sync", "corp"][..]] {
        let out = run(&t, cmd);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{err}");
        assert!(err.contains("ListAccounts failed"), "{err}");
        assert!(err.contains("HTTP 500"), "{err}");
        assert!(err.contains(&portal.uri()), "{err}");
        assert!(
            !err.contains("StatusCode") && !err.contains("Response {"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
        assert_eq!(read(&config_path(&t)), hand);
    }
}

/// A config file with the user's own text around where sync puts its block.
const HAND_WRITTEN: &str = "# my AWS config: do not reformat
[default]
region = us-east-1
cli_pager =

[profile mine]   # hand-written
role_arn = arn:aws:iam::123456789012:role/Mine
source_profile = default
";

#[tokio::test(flavor = "multi_thread")]
async fn sync_writes_a_block_once_and_a_second_run_changes_no_byte() {
    let portal = FakePortal::start(ROLES).await;
    let t = sso_user(&portal.uri(), 3600);
    let path = config_path(&t);
    let start = format!("{HAND_WRITTEN}\n{SSO_SESSION}");
    std::fs::write(&path, &start).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();

    sync(&t, &[]);
    let first = read(&path);
    assert!(
        first.starts_with(&start),
        "text before the block changed:\n{first}"
    );
    let block = &first[start.len()..];
    assert_eq!(
        block,
        "
# BEGIN elhaz sso sync: corp
# Written by `elhaz sso sync corp`: changes between these two lines are replaced.

[profile audit-securityaudit]
sso_session = corp
sso_account_id = 333333333333
sso_role_name = SecurityAudit
region = eu-west-1

[profile dev-sandbox-administratoraccess]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = AdministratorAccess
region = eu-west-1

[profile dev-sandbox-billing]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = Billing
region = eu-west-1

[profile dev-sandbox-readonly]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = ReadOnly
region = eu-west-1

[profile prod-readonly]
sso_session = corp
sso_account_id = 222222222222
sso_role_name = ReadOnly
region = eu-west-1
# END elhaz sso sync: corp
"
    );
    let mode = |p: &PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o640, "the file's mode is kept");

    let out = sync(&t, &[]);
    assert_eq!(read(&path), first, "a second run changed the file");
    assert!(
        text(&out.stderr).contains("up to date"),
        "{}",
        text(&out.stderr)
    );

    // Text after the block is the user's too: it stays as it is, byte for byte.
    let tail = "\n# after the block\n[profile later]\nregion = ap-south-1";
    std::fs::write(&path, format!("{first}{tail}")).unwrap();
    portal.set(&ROLES[..2]);
    sync(&t, &["--prune", "--refresh"]);
    let pruned = read(&path);
    assert!(
        pruned.starts_with(&start) && pruned.ends_with(tail),
        "{pruned}"
    );
    assert!(!pruned.contains("audit-securityaudit"), "{pruned}");
    assert_eq!(mode(&path), 0o640);
    // No temp file left behind.
    let left: Vec<_> = std::fs::read_dir(t.home.join(".aws"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_the_portal_dropped_are_kept_unless_pruned() {
    let portal = FakePortal::start(ROLES).await;
    let t = sso_user(&portal.uri(), 3600);
    let path = config_path(&t);
    sync(&t, &[]);
    let full = read(&path);

    // Billing is gone from the portal: without --prune it stays, and sync says so.
    portal.set(&[
        ROLES[0],
        (
            "111111111111",
            "Dev Sandbox",
            &["AdministratorAccess", "ReadOnly"],
        ),
        ROLES[2],
    ]);
    let out = sync(&t, &["--refresh"]);
    let err = text(&out.stderr);
    assert!(
        err.contains("kept 1 profile(s) this sync no longer writes: dev-sandbox-billing"),
        "{err}"
    );
    assert!(err.contains("--prune"), "{err}");
    assert_eq!(read(&path), full, "nothing changes without --prune");

    let out = sync(&t, &["--prune"]);
    let now = read(&path);
    assert!(!now.contains("dev-sandbox-billing"), "{now}");
    assert!(now.contains("[profile dev-sandbox-readonly]"));
    assert!(text(&out.stderr).contains("- dev-sandbox-billing"));
    // What remains is exactly what a fresh sync of the new list writes.
    let fresh = sso_user(&portal.uri(), 3600);
    sync(&fresh, &[]);
    assert_eq!(now, read(&config_path(&fresh)));
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_shows_a_diff_and_writes_nothing() {
    let portal = FakePortal::start(ROLES).await;
    let t = sso_user(&portal.uri(), 3600);
    let path = config_path(&t);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = std::fs::read(&path).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();

    let out = sync(&t, &["--dry-run"]);
    let diff = text(&out.stdout);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    assert!(text(&out.stderr).contains("nothing written"));
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(lines[0], "--- ~/.aws/config", "{diff}");
    assert!(lines[1].starts_with("+++ ~/.aws/config"), "{diff}");
    // Three lines of context, then a blank line, BEGIN, the comment, five profiles of
    // six lines and END.
    assert_eq!(
        lines[2],
        format!("@@ -2,3 +2,{} @@", 3 + 1 + 2 + 30 + 1),
        "{diff}"
    );
    assert!(lines.contains(&"+[profile prod-readonly]"), "{diff}");
    assert!(lines.contains(&" sso_region = eu-west-1"), "{diff}");
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with('-') && !l.starts_with("---"))
    );

    // Applying the diff's + lines is what a real run writes.
    sync(&t, &[]);
    let written = read(&path);
    let added: String = lines
        .iter()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(|l| format!("{}\n", &l[1..]))
        .collect();
    assert!(written.ends_with(&added), "{written}\n---\n{added}");

    // A dry run over an up-to-date file prints no diff.
    let out = sync(&t, &["--dry-run"]);
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[tokio::test(flavor = "multi_thread")]
async fn names_collide_deterministically_and_never_shadow_a_hand_written_profile() {
    let portal = FakePortal::start(&[
        ("444444444444", "Dev", &["Admin"]),
        ("555555555555", "dev", &["Admin", "ReadOnly"]),
    ])
    .await;
    let t = sso_user(&portal.uri(), 3600);
    let path = config_path(&t);
    let mine = "[profile dev-readonly]\n# mine, not the portal's\nregion = us-west-2\n";
    std::fs::write(&path, format!("{SSO_SESSION}{mine}")).unwrap();
    // An elhaz config of a name wins over a profile in every elhaz command: not used.
    t.role_config("team-dev-admin-444444444444", "");

    let out = sync(&t, &[]);
    let err = text(&out.stderr);
    let now = read(&path);
    assert!(now.contains("[profile dev-admin-444444444444]"), "{now}");
    assert!(now.contains("[profile dev-admin-555555555555]"), "{now}");
    assert!(!now.contains("[profile dev-admin]\n"), "{now}");
    assert_eq!(now.matches("[profile dev-readonly]").count(), 1, "{now}");
    assert!(now.starts_with(&format!("{SSO_SESSION}{mine}")), "{now}");
    assert!(
        err.contains(
            "skipped profile dev-readonly: the name is already a profile outside the block"
        ),
        "{err}"
    );

    // The same with a prefix: the config's name is skipped, the rest written.
    let out = sync(&t, &["--prefix", "Team_"]);
    let err = text(&out.stderr);
    let now = read(&path);
    assert!(
        err.contains(
            "skipped profile team-dev-admin-444444444444: the name is already an elhaz config"
        ),
        "{err}"
    );
    assert!(
        now.contains("[profile team-dev-admin-555555555555]"),
        "{now}"
    );
    assert!(now.contains("[profile team-dev-readonly]"), "{now}");
    // Without --prune the unprefixed names stay, reported as no longer listed.
    assert!(now.contains("[profile dev-admin-555555555555]"), "{now}");
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_profiles_are_names_for_elhaz_the_aws_cli_and_botocore() {
    let portal = FakePortal::start(ROLES).await;
    let t = sso_user(&portal.uri(), 3600);
    sync(&t, &[]);

    // elhaz lists them as SSO profiles (the picker and completion read the same list).
    let out = run(&t, &["config", "list", "--json"]);
    ok(&out);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sso: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["profile_type"] == "sso")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        sso,
        [
            "audit-securityaudit",
            "dev-sandbox-administratoraccess",
            "dev-sandbox-billing",
            "dev-sandbox-readonly",
            "prod-readonly"
        ]
    );
    let out = t
        .cmd()
        .env("COMPLETE", "fish")
        .args(["--", "elhaz", "exec", "dev-sandbox-b"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("dev-sandbox-billing"),
        "{}",
        text(&out.stdout)
    );

    // The AWS CLI reads each field of a generated profile.
    let aws = std::env::current_dir().unwrap().join(".ci/venv/bin/aws");
    for (key, want) in [
        ("sso_session", "corp"),
        ("sso_account_id", "111111111111"),
        ("sso_role_name", "Billing"),
        ("region", "eu-west-1"),
    ] {
        let out = t
            .program(&aws)
            .args(["configure", "get", key, "--profile", "dev-sandbox-billing"])
            .output()
            .unwrap();
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), want, "{key}");
    }

    // botocore resolves the profile through the session and our token to the portal's
    // role credentials (GetRoleCredentials with the account and role sync wrote).
    let python = std::env::current_dir().unwrap().join(".ci/venv/bin/python");
    let out = t
        .program(&python)
        .args([
            "-c",
            "import botocore.session as s; c = s.Session(profile='prod-readonly').get_credentials().get_frozen_credentials(); print(c.access_key, c.token)",
        ])
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(
        text(&out.stdout).trim(),
        "ASIAPORTAL222222222222 portal-token-ReadOnly"
    );
    // And so does elhaz, with the daemon and without: the same role's credentials.
    for extra in [&[][..], &["--no-daemon"][..]] {
        let mut args = vec!["export", "prod-readonly"];
        args.extend_from_slice(extra);
        let out = run(&t, &args);
        ok(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["access_key"], "ASIAPORTAL222222222222", "{extra:?}");
        assert_eq!(v["token"], "portal-token-ReadOnly", "{extra:?}");
    }
    let calls = portal.calls("/federation/credentials").await;
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0].0["account_id"], "222222222222");
    assert_eq!(calls[0].0["role_name"], "ReadOnly");
    assert_eq!(calls[0].1.as_deref(), Some(SSO_TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_roles_table_shows_no_control_character_a_portal_sent() {
    let portal = FakePortal::start(&[(
        "666666666666",
        "Ops\u{1b}]0;owned\u{7}\n\u{202e}",
        &["Admin"],
    )])
    .await;
    let t = sso_user(&portal.uri(), 3600);
    let out = run(&t, &["sso", "roles", "corp"]);
    ok(&out);
    let table = text(&out.stdout);
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{7}'),
        "{table:?}"
    );
    assert!(
        !table.contains('\u{202e}'),
        "no right-to-left override: {table:?}"
    );
    assert!(
        table.contains("Ops?]0;owned???  666666666666  Admin"),
        "{table:?}"
    );
    // The JSON keeps the name as sent, escaped by JSON itself.
    let out = run(&t, &["sso", "roles", "corp", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["account_name"], "Ops\u{1b}]0;owned\u{7}\n\u{202e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_an_expired_session_offers_the_login_before_listing() {
    let portal = FakePortal::start(ROLES).await;
    let mut t = sso_user(&portal.uri(), -60);
    t.set("TERM", "xterm");
    let mut cmd = t.std_cmd();
    cmd.args(["sso", "roles", "corp"]);
    let mut p = Pty::spawn(
        cmd,
        "elhaz sso roles",
        120,
        std::time::Duration::from_secs(20),
    );
    p.expect("SSO session 'corp' has expired. Log in now? [Y/n]");
    // Declined: the same error as without a terminal, and the portal is not asked.
    p.send_line("n");
    assert_eq!(p.wait_exit(), 5, "{}", p.transcript);
    assert!(
        p.transcript
            .contains("SSO session 'corp' has expired; run: elhaz sso login corp"),
        "{}",
        p.transcript
    );
    assert!(portal.calls("/assignment/accounts").await.is_empty());
}

/// The summary counts what the diff shows: a profile whose name an elhaz config now
/// takes leaves the block, counted as removed and said so; a profile that changed
/// (the session's region) is counted as changed.
#[tokio::test(flavor = "multi_thread")]
async fn the_sync_summary_counts_what_the_diff_shows() {
    let portal = FakePortal::start(ROLES).await;
    let t = sso_user(&portal.uri(), 3600);
    let path = config_path(&t);
    sync(&t, &[]);
    let first = read(&path);
    assert!(first.contains("[profile prod-readonly]"), "{first}");

    // prod-readonly is now an elhaz config, which every elhaz command uses instead.
    t.role_config("prod-readonly", "");
    let dry = sync(&t, &["--dry-run"]);
    let diff = text(&dry.stdout);
    let err = text(&dry.stderr);
    let lines = |mark: &str| diff.lines().filter(|l| l.starts_with(mark)).count();
    assert_eq!(lines("-[profile "), 1, "{diff}");
    assert_eq!(lines("+[profile "), 0, "{diff}");
    assert!(
        err.contains(
            "warning: would remove profile prod-readonly from the block: the name is now an elhaz config"
        ),
        "{err}"
    );
    assert!(err.contains("\n- prod-readonly\n"), "{err}");
    assert!(
        err.contains("would write 4 profiles to ~/.aws/config (0 added, 0 changed, 1 removed)"),
        "{err}"
    );
    assert_eq!(read(&path), first);
    let out = sync(&t, &[]);
    let err = text(&out.stderr);
    assert!(
        err.contains("removed profile prod-readonly from the block")
            && err.contains("wrote 4 profiles to ~/.aws/config (0 added, 0 changed, 1 removed)"),
        "{err}"
    );
    let now = read(&path);
    assert!(!now.contains("[profile prod-readonly]"), "{now}");
    assert!(!err.contains("skipped"), "{err}");

    // The session moves region: every profile changes, none is added or removed.
    std::fs::write(
        &path,
        now.replace("sso_region = eu-west-1", "sso_region = eu-north-1"),
    )
    .unwrap();
    let out = sync(&t, &[]);
    let err = text(&out.stderr);
    assert!(
        err.contains("wrote 4 profiles to ~/.aws/config (0 added, 4 changed, 0 removed)"),
        "{err}"
    );
    assert_eq!(
        err.matches("\n~ ").count() + usize::from(err.starts_with("~ ")),
        4,
        "{err}"
    );
}
