use super::*;

fn session() -> SsoSession {
    SsoSession::named(
        "corp",
        "https://corp.awsapps.com/start",
        "eu-west-1",
        Vec::new(),
    )
}

fn role(name: &str, id: &str, role: &str) -> AccountRole {
    AccountRole {
        account_name: name.into(),
        account_id: id.into(),
        role_name: role.into(),
    }
}

/// The profiles a config text defines.
fn profile_names(text: &str) -> BTreeSet<String> {
    let ini = Ini::parse(text, Path::new("/x/config"), FileKind::Config).unwrap();
    ini.gather().profiles.into_iter().map(|p| p.name).collect()
}

fn run(text: &str, roles: &[AccountRole], opts: &Options) -> Plan {
    plan(
        text,
        Path::new("/x/config"),
        &session(),
        roles,
        &BTreeMap::new(),
        opts,
    )
    .unwrap()
}

#[test]
fn names_are_lowercase_ascii_with_single_dashes() {
    assert_eq!(normalise("My Account (Prod)"), "my-account-prod");
    assert_eq!(normalise("--A__b..C--"), "a-b-c");
    assert_eq!(normalise("Ünïcode"), "n-code");
    assert_eq!(normalise("日本"), "");
}

#[test]
fn same_names_get_the_account_id_and_the_holder_keeps_its_name() {
    let roles = [
        role("Dev", "111111111111", "Admin"),
        role("dev", "222222222222", "Admin"),
    ];
    let p = run("", &roles, &Options::default());
    let names: Vec<&str> = p.written.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev-admin-111111111111", "dev-admin-222222222222"]);

    // A block written when only 222… existed: it keeps the plain name.
    let one = run("", &roles[1..], &Options::default());
    let two = run(&one.after, &roles, &Options::default());
    let names: Vec<&str> = two.written.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev-admin", "dev-admin-111111111111"]);

    // Names stay when the other account goes: 111… keeps its suffix, and a sync
    // from scratch of the same list would give the plain name.
    let three = run(&two.after, &roles[..1], &Options::default());
    let names: Vec<&str> = three.written.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev-admin-111111111111"]);
    assert_eq!(three.kept, ["dev-admin"]);
    assert!(three.added.is_empty());
    let fresh = run("", &roles[..1], &Options::default());
    assert_eq!(fresh.written[0].name, "dev-admin");
}

#[test]
fn roles_that_differ_only_in_punctuation_are_numbered() {
    let roles = [
        role("Dev", "111111111111", "Admin.Access"),
        role("Dev", "111111111111", "Admin_Access"),
    ];
    let p = run("", &roles, &Options::default());
    let names: Vec<&str> = p.written.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev-admin-access", "dev-admin-access-2"]);
}

#[test]
fn a_block_without_its_end_is_refused_with_the_line() {
    let text = "[default]\nregion = x\n# BEGIN elhaz sso sync: corp\n[profile a]\n";
    let e = plan(
        text,
        Path::new("/x/config"),
        &session(),
        &[],
        &BTreeMap::new(),
        &Options::default(),
    )
    .unwrap_err();
    assert!(e.message.contains("/x/config:3"), "{}", e.message);
    assert_eq!(e.exit_code(), 3);
}

#[test]
fn a_legacy_profile_session_writes_its_start_url_and_region() {
    let legacy = SsoSession::legacy("corp", "https://corp.awsapps.com/start", "eu-west-1");
    let p = plan(
        "",
        Path::new("/x/config"),
        &legacy,
        &[role("Dev", "111111111111", "Admin")],
        &BTreeMap::new(),
        &Options::default(),
    )
    .unwrap();
    assert!(
        p.after.contains(
            "[profile dev-admin]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\nsso_account_id = 111111111111\n"
        ),
        "{}",
        p.after
    );
    assert!(!p.after.contains("sso_session"));
}

#[test]
fn what_the_portal_sends_cannot_add_lines_to_the_file() {
    let roles = [
        role(
            "Dev",
            "111111111111",
            "Admin\n[profile evil]\ncredential_process = sh",
        ),
        role("Dev\n[x]", "1111\n", "Admin"),
        role("Ok", "222222222222", "ReadOnly"),
    ];
    let p = run("", &roles, &Options::default());
    assert_eq!(p.skipped.len(), 2, "{:?}", p.skipped);
    assert!(
        !p.after.contains("evil") && !p.after.contains("[x]"),
        "{}",
        p.after
    );
    assert_eq!(profile_names(&p.after).len(), 1, "{}", p.after);
}
