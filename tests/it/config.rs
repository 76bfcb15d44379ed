//! The config store as a user meets it: `elhaz config add|get|list|meta|remove|update`,
//! the original's YAML files, bad input, permissions, locking and name resolution.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::*;
use serde_json::{Value, json};

/// A config with every field of the schema set (AssumeRoleWithWebIdentity is the
/// alternative to AssumeRole, so it is not in the same file).
const FULL: &str = r#"AssumeRole:
  RoleArn: arn:aws:iam::123456789012:role/Admin
  RoleSessionName: alice-prod
  DurationSeconds: 3600
  ExternalId: '0123456789'
  SerialNumber: arn:aws:iam::123456789012:mfa/alice
  TokenCode: '012345'
  SourceIdentity: alice
  Policy: '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}'
  PolicyArns:
  - arn:aws:iam::aws:policy/ReadOnlyAccess
  - arn:aws:iam::123456789012:policy/Boundary
  Tags:
  - Key: team
    Value: platform
  - Key: cost-center
    Value: '4711'
  TransitiveTagKeys:
  - team
  ProvidedContexts:
  - ProviderArn: arn:aws:iam::aws:contextProvider/IdentityCenter
    ContextAssertion: AQoDYXdzEJr-EXAMPLE
STS:
  region_name: eu-west-1
  api_version: '2011-06-15'
  use_ssl: true
  verify: /etc/ssl/certs/corp-ca.pem
  endpoint_url: https://sts.eu-west-1.amazonaws.com
  aws_access_key_id: AKIASTSKEY0000000000
  aws_secret_access_key: sts-secret
  aws_session_token: sts-token
  aws_account_id: '123456789012'
MFA:
  command:
  - ykman
  - oath
  - accounts
  - code
  - --single
  - AWS prod
  timeout: 20
Session:
  region_name: eu-central-1
  profile_name: corp-sso
  aws_account_id: '210987654321'
  aws_access_key_id: AKIASESSIONKEY000000
  aws_secret_access_key: session-secret
  aws_session_token: session-token
Meta:
  description: 'Production admin: break glass only'
"#;

/// A user who has the source profile FULL names (`corp-sso`): a config is saved only
/// with a source profile that exists.
fn full_user() -> TestEnv {
    let t = TestEnv::new();
    t.write_aws_config("[profile corp-sso]\nregion = eu-central-1\n");
    t
}

const ROLE_PREFIX: &str = "AssumeRole:\n  RoleArn: arn:aws:iam::123456789012:role/Admin\n";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn first_line(o: &Output) -> String {
    stderr(o).lines().next().unwrap_or_default().to_string()
}

#[track_caller]
fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

fn json_out(o: &Output) -> Value {
    ok(o);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn yaml_value(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

/// The permission bits, in octal as `ls` users read them.
fn mode(p: &Path) -> String {
    format!(
        "{:o}",
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    )
}

/// Every path under `dir` with its mode and, for files, its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Option<Vec<u8>>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (u32, Option<Vec<u8>>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if m.is_dir() {
                out.insert(rel, (m.permissions().mode(), None));
                walk(root, &p, out);
            } else {
                out.insert(
                    rel,
                    (m.permissions().mode(), Some(std::fs::read(&p).unwrap())),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(m) = std::fs::metadata(dir) {
        out.insert(PathBuf::new(), (m.permissions().mode(), None));
    }
    walk(dir, dir, &mut out);
    out
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn fully_populated_config_round_trips() {
    let t = full_user();
    let input = t.home.join("full.yaml");
    std::fs::write(&input, FULL).unwrap();
    let expected = yaml_value(FULL);

    let add = run(
        &t,
        &[
            "config",
            "add",
            "full",
            "--from-file",
            input.to_str().unwrap(),
        ],
    );
    ok(&add);
    assert_eq!(first_line(&add), "elhaz: saved ~/.elhaz/configs/full.yaml");
    assert_eq!(json_out(&run(&t, &["config", "get", "full"])), expected);

    // The written file is YAML that parses to the same config.
    let written = std::fs::read_to_string(t.config_dir().join("full.yaml")).unwrap();
    assert_eq!(yaml_value(&written), expected);

    // And it can be fed back in through stdin (`--from-file -`).
    let again = t
        .cmd()
        .args(["config", "add", "copy", "--from-file", "-"])
        .write_stdin(written)
        .output()
        .unwrap();
    ok(&again);
    assert_eq!(json_out(&run(&t, &["config", "get", "copy"])), expected);
}

#[test]
fn the_originals_yaml_files_load_unchanged() {
    let t = TestEnv::new();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/original");
    let before = snapshot(&dir);
    let dir_arg = dir.to_str().unwrap();
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_str().unwrap().to_string();
        let got = json_out(&run(&t, &["--config-dir", dir_arg, "config", "get", &name]));
        assert_eq!(
            got,
            yaml_value(&std::fs::read_to_string(&p).unwrap()),
            "{name}"
        );
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["ci-deploy", "prod-admin", "readonly"]);

    let get = |name: &str| json_out(&run(&t, &["--config-dir", dir_arg, "config", "get", name]));
    let prod = get("prod-admin");
    let ar = &prod["AssumeRole"];
    assert_eq!(ar["ExternalId"], "0123456789");
    assert_eq!(
        ar["PolicyArns"],
        json!([
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "arn:aws:iam::123456789012:policy/Boundary"
        ])
    );
    assert_eq!(
        ar["Tags"][1],
        json!({"Key": "cost-center", "Value": "4711"})
    );
    let policy: Value = serde_json::from_str(ar["Policy"].as_str().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Action"], "s3:GetObject");
    assert_eq!(prod["STS"]["verify"], false);
    assert_eq!(
        prod["Meta"]["description"],
        "Production admin: break glass only"
    );
    let ci = get("ci-deploy");
    assert_eq!(ci["AssumeRole"]["TokenCode"], "012345");
    assert_eq!(ci["AssumeRole"]["Tags"][0]["Value"], "yes");
    assert_eq!(ci["MFA"]["command"], json!(["pass", "otp", "aws/ci"]));
    assert_eq!(ci["STS"]["verify"], "/etc/ssl/certs/corp-ca.pem");

    let list = run(&t, &["--config-dir", dir_arg, "config", "list"]);
    ok(&list);
    assert_eq!(
        stdout(&list),
        "NAME        KIND      DETAIL\n\
         ci-deploy   config    arn:aws:iam::210987654321:role/ci-deploy\n\
         prod-admin  config    Production admin: break glass only\n\
         readonly    config    read-only access for audits\n"
    );
    let rows = json_out(&run(
        &t,
        &["--config-dir", dir_arg, "config", "list", "--json"],
    ));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r["kind"], "config", "{r}");
        assert!(r.get("error").is_none(), "{r}");
        assert!(
            r["role_arn"].as_str().unwrap().starts_with("arn:aws:iam::"),
            "{r}"
        );
    }
    assert_eq!(snapshot(&dir), before, "reading the fixtures changed them");
}

#[test]
fn bad_config_files_name_file_line_and_key_and_change_nothing() {
    // (what, file text, first stderr line with {F} for the file)
    let cases: &[(&str, String, &str)] = &[
        (
            "unknown key",
            "AssumeRole:\n  RoleARN: arn:aws:iam::123456789012:role/Admin\n".into(),
            "{F}:2:3: unknown field 'RoleARN' in AssumeRole, expected one of RoleArn, RoleSessionName, DurationSeconds, ExternalId, SerialNumber, TokenCode, SourceIdentity, Policy, PolicyArns, Tags, TransitiveTagKeys, ProvidedContexts",
        ),
        (
            "unknown section",
            format!("{ROLE_PREFIX}Sessions:\n  region_name: eu-west-1\n"),
            "{F}:3:1: unknown field 'Sessions', expected one of AssumeRole, AssumeRoleWithWebIdentity, AssumeRoleWithSAML, STS, MFA, Session, Meta",
        ),
        (
            "unknown key in a tag",
            format!("{ROLE_PREFIX}  Tags:\n  - Key: team\n    Val: platform\n"),
            "{F}:5:5: unknown field 'Val' in AssumeRole.Tags, expected one of Key, Value",
        ),
        (
            "wrong type: word for a number",
            format!("{ROLE_PREFIX}  DurationSeconds: soon\n"),
            "{F}:3:20: AssumeRole.DurationSeconds: expected a whole number, not 'soon'",
        ),
        (
            "wrong type: scalar for a list",
            format!("{ROLE_PREFIX}  Tags: team=platform\n"),
            "{F}:3:9: AssumeRole.Tags: expected a list, not 'team=platform'",
        ),
        (
            "wrong type: word for a boolean",
            format!("{ROLE_PREFIX}STS:\n  use_ssl: maybe\n"),
            "{F}:4:12: STS.use_ssl: expected true or false, not 'maybe'",
        ),
        (
            "wrong type: list for a string",
            "AssumeRole:\n  RoleArn: [a, b]\n".into(),
            "{F}:2:12: AssumeRole.RoleArn: expected a string",
        ),
        (
            "malformed YAML: unclosed quote",
            "AssumeRole:\n  RoleArn: \"arn:aws:iam::123456789012:role/Admin\n".into(),
            "{F}:2:12: malformed YAML: unclosed quote",
        ),
        (
            "malformed YAML: tab indentation",
            "AssumeRole:\n\tRoleArn: arn:aws:iam::123456789012:role/Admin\n".into(),
            "{F}:2:2: malformed YAML: tabs disallowed within this context (block indentation)",
        ),
        (
            "not a mapping",
            "arn:aws:iam::123456789012:role/Admin\n".into(),
            "{F}:1:1: expected a mapping (KEY: VALUE lines), not 'arn:aws:iam::123456789012:role/Admin'",
        ),
        (
            "empty file",
            String::new(),
            "{F}: the file is empty; a config needs at least AssumeRole.RoleArn",
        ),
        (
            "only comments",
            "# TODO\n---\n".into(),
            "{F}: the file is empty; a config needs at least AssumeRole.RoleArn",
        ),
        (
            "missing RoleArn",
            "AssumeRole:\n  RoleSessionName: alice\n".into(),
            "{F}:2:3: missing AssumeRole.RoleArn",
        ),
        (
            "missing AssumeRole",
            "Meta:\n  description: no role\n".into(),
            "{F}: missing AssumeRole.RoleArn: a config needs AssumeRole (or AssumeRoleWithWebIdentity, or AssumeRoleWithSAML) with a RoleArn",
        ),
        (
            "RoleArn that is not an ARN",
            "AssumeRole:\n  RoleArn: Admin\n".into(),
            "{F}:2: AssumeRole.RoleArn \"Admin\" is not an ARN (expected arn:aws:iam::ACCOUNT:role/NAME)",
        ),
        (
            "duration out of range",
            format!("{ROLE_PREFIX}  DurationSeconds: 60\n"),
            "{F}:3: AssumeRole.DurationSeconds 60 is out of range: STS takes 900 to 43200",
        ),
        (
            "a region typo",
            format!("{ROLE_PREFIX}Session:\n  region_name: eu-wst-1\n"),
            "{F}:4: Session.region_name \"eu-wst-1\" is not an AWS region; did you mean: eu-west-1, eu-west-2, eu-west-3?",
        ),
        (
            "an STS region with a space",
            format!("{ROLE_PREFIX}STS:\n  endpoint_url: https://sts.eu-west-1.amazonaws.com\n  region_name: eu west\n"),
            "{F}:5: STS.region_name \"eu west\" is not an AWS region; did you mean: eu-west-1, eu-west-2, eu-west-3?",
        ),
        (
            "a role ARN whose account is not 12 digits",
            "AssumeRole:\n  RoleArn: arn:aws:iam::12345:role/X\n".into(),
            "{F}:2: AssumeRole.RoleArn \"arn:aws:iam::12345:role/X\" is not a role ARN: the account must be 12 digits, not \"12345\" (expected arn:aws:iam::ACCOUNT:role/NAME)",
        ),
        (
            "a web identity role ARN in an unknown partition",
            "AssumeRoleWithWebIdentity:\n  RoleArn: arn:aws-eu:iam::123456789012:role/X\n  WebIdentityTokenFile: /t\n".into(),
            "{F}:2: AssumeRoleWithWebIdentity.RoleArn \"arn:aws-eu:iam::123456789012:role/X\" is not a role ARN: the partition is \"aws-eu\", not one of aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc (expected arn:aws:iam::ACCOUNT:role/NAME)",
        ),
        (
            "a role where the MFA device goes",
            format!("{ROLE_PREFIX}  SerialNumber: arn:aws:iam::123456789012:role/me\n"),
            "{F}:3: AssumeRole.SerialNumber \"arn:aws:iam::123456789012:role/me\" is not an MFA device ARN: the resource must start with \"mfa/\", not \"role/me\" (expected arn:aws:iam::ACCOUNT:mfa/NAME)",
        ),
        (
            "a policy ARN without its account",
            format!("{ROLE_PREFIX}  PolicyArns:\n  - arn:aws:iam::aws:policy/ReadOnlyAccess\n  - arn:aws:iam:::policy/X\n"),
            "{F}:3: AssumeRole.PolicyArns \"arn:aws:iam:::policy/X\" is not a managed policy ARN: the account must be 12 digits, not \"\" (expected arn:aws:iam::ACCOUNT:policy/NAME)",
        ),
    ];
    let t = full_user();
    t.role_config("keep", "");
    let elhaz = t.home.join(".elhaz");
    let input = t.home.join("in.yaml");
    for (what, text, want) in cases {
        t.write_config("bad", text);
        std::fs::write(&input, text).unwrap();
        let before = snapshot(&elhaz);
        let stored = want.replace("{F}", "~/.elhaz/configs/bad.yaml");
        for args in [
            &["config", "get", "bad"][..],
            &["config", "meta", "bad"],
            &["config", "update", "bad", "--duration", "1h"],
        ] {
            let o = run(&t, args);
            assert_eq!(o.status.code(), Some(3), "{what}: {args:?}: {}", stderr(&o));
            assert_eq!(
                first_line(&o),
                format!("elhaz: {stored}"),
                "{what}: {args:?}"
            );
            assert!(o.stdout.is_empty(), "{what}: {args:?}: {}", stdout(&o));
        }
        let o = run(&t, &["config", "get", "bad"]);
        let hint = stderr(&o).lines().nth(1).unwrap_or_default().to_string();
        if want.contains("the file is empty") {
            assert!(
                hint.starts_with(
                    "hint: see an example: elhaz config add --help; or remove it: rm /"
                ),
                "{what}: {hint}"
            );
        } else {
            assert_eq!(
                hint, "hint: fix it: elhaz config update bad --editor",
                "{what}"
            );
        }
        let o = run(
            &t,
            &[
                "config",
                "add",
                "new",
                "--from-file",
                input.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(3), "{what}: add: {}", stderr(&o));
        assert_eq!(
            first_line(&o),
            format!("elhaz: {}", want.replace("{F}", "~/in.yaml")),
            "{what}: add"
        );
        assert_eq!(
            snapshot(&elhaz),
            before,
            "{what}: the config directory changed"
        );
    }
    // A broken config can be replaced whole, which is how it gets fixed.
    std::fs::write(&input, FULL).unwrap();
    ok(&run(
        &t,
        &[
            "config",
            "update",
            "bad",
            "--from-file",
            input.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        json_out(&run(&t, &["config", "get", "bad"])),
        yaml_value(FULL)
    );
}

#[test]
fn bad_names_are_refused_before_any_path_is_built() {
    let t = TestEnv::new();
    t.role_config("keep", "");
    // Files that a name used as a path would reach.
    std::fs::write(t.home.join(".elhaz/x.yaml"), ROLE_PREFIX).unwrap();
    std::fs::create_dir_all(t.config_dir().join("a")).unwrap();
    std::fs::write(t.config_dir().join("a/b.yaml"), ROLE_PREFIX).unwrap();
    let elhaz = t.home.join(".elhaz");
    let before = snapshot(&elhaz);
    let role = "arn:aws:iam::123456789012:role/Admin";
    for name in ["../x", "a/b", "a b", "", "é"] {
        let want = if name.is_empty() {
            "elhaz: empty config name: use ASCII letters, digits, '_' and '-'".to_string()
        } else {
            format!(
                "elhaz: invalid config name {name:?}: use only ASCII letters, digits, '_' and '-'"
            )
        };
        for args in [
            vec!["config", "add", name, "--role-arn", role],
            vec!["config", "add", name, "--force", "--role-arn", role],
            vec!["config", "get", name],
            vec!["config", "get", "-n", name],
            vec!["config", "meta", name],
            vec!["config", "update", name, "--duration", "1h"],
            vec!["config", "remove", name, "--yes"],
        ] {
            let o = run(&t, &args);
            assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
            assert_eq!(first_line(&o), want, "{args:?}");
            assert!(o.stdout.is_empty(), "{args:?}");
        }
    }
    assert_eq!(snapshot(&elhaz), before);
}

#[test]
fn a_config_file_that_is_a_directory() {
    let t = TestEnv::new();
    t.role_config("keep", "");
    std::fs::create_dir_all(t.config_dir().join("dir.yaml/inside")).unwrap();
    let elhaz = t.home.join(".elhaz");
    let before = snapshot(&elhaz);
    let role = "arn:aws:iam::123456789012:role/Admin";
    for args in [
        &["config", "get", "dir"][..],
        &["config", "meta", "dir"],
        &["config", "update", "dir", "--duration", "1h"],
        &["config", "add", "dir", "--role-arn", role],
        &["config", "add", "dir", "--force", "--role-arn", role],
        &["config", "remove", "dir", "--yes"],
    ] {
        let o = run(&t, args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert_eq!(
            first_line(&o),
            "elhaz: ~/.elhaz/configs/dir.yaml: is a directory, not a config file",
            "{args:?}"
        );
        let hint = stderr(&o).lines().nth(1).unwrap_or_default().to_string();
        assert!(
            hint.starts_with("hint: move it away (mv "),
            "{args:?}: {hint}"
        );
    }
    assert_eq!(snapshot(&elhaz), before);
    // The other configs stay usable, and the listing says what is wrong.
    let list = run(&t, &["config", "list"]);
    ok(&list);
    let out = stdout(&list);
    assert!(
        out.contains("dir   config    invalid: ~/.elhaz/configs/dir.yaml: is a directory, not a config file\n"),
        "{out}"
    );
    assert!(
        out.contains("keep  config    arn:aws:iam::123456789012:role/Admin\n"),
        "{out}"
    );
}

/// The config directory belongs to someone else: elhaz runs as `nobody` (tests run as
/// root in CI, where file modes do not stop root), or with the directory at mode 000.
#[test]
fn a_config_dir_without_permission() {
    let t = TestEnv::new();
    t.role_config("prod", "");
    let root = unsafe { libc::geteuid() } == 0;
    for d in [
        t.dir.path(),
        &t.home,
        &t.home.join(".elhaz"),
        &t.home.join(".aws"),
    ] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let dir = t.config_dir();
    if !root {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let elhaz = t.home.join(".elhaz");
    let before = snapshot(&elhaz);
    let as_other = |args: &[&str]| -> Output {
        let mut c: Command = t.std_cmd();
        c.args(args).stdin(Stdio::null());
        if root {
            c.uid(65534).gid(65534);
        }
        c.output().unwrap()
    };
    let shown = dir.display();
    let hint = format!("hint: make it yours: chown -R \"$USER\" {shown} && chmod 700 {shown}");
    let unreadable_file = "elhaz: cannot read ~/.elhaz/configs/prod.yaml: permission denied";
    let unreadable_dir = "elhaz: cannot read config directory ~/.elhaz/configs: permission denied";
    for (args, want) in [
        (&["config", "get", "prod"][..], unreadable_file),
        (&["config", "meta", "prod"], unreadable_file),
        (
            &["config", "update", "prod", "--duration", "1h"],
            unreadable_file,
        ),
        (&["config", "list"], unreadable_dir),
        (&["config", "remove", "prod", "--yes"], unreadable_dir),
        (
            &[
                "config",
                "add",
                "new",
                "--role-arn",
                "arn:aws:iam::123456789012:role/Admin",
            ],
            unreadable_dir,
        ),
    ] {
        let o = as_other(args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert_eq!(first_line(&o), want, "{args:?}");
        assert_eq!(
            stderr(&o).lines().nth(1).unwrap_or_default(),
            hint,
            "{args:?}"
        );
    }
    if !root {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert_eq!(snapshot(&elhaz), before);
}

#[test]
fn concurrent_updates_from_8_processes_all_land() {
    let t = TestEnv::new();
    t.role_config("shared", "");
    for round in 0..3u64 {
        let d = format!("{}", 900 + round);
        let changes: [(&str, String); 8] = [
            ("--description", format!("round {round}")),
            ("--duration", d.clone()),
            ("--role-session-name", format!("session-{round}")),
            ("--external-id", format!("ext-{round}")),
            ("--source-identity", format!("src-{round}")),
            ("--region", format!("eu-west-{round}")),
            (
                "--serial-number",
                format!("arn:aws:iam::123456789012:mfa/dev{round}"),
            ),
            ("--mfa-timeout", format!("{}", 10 + round)),
        ];
        let children: Vec<_> = changes
            .iter()
            .map(|(flag, value)| {
                t.std_cmd()
                    .args(["config", "update", "shared", flag, value])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            ok(&c.wait_with_output().unwrap());
        }
        let v = json_out(&run(&t, &["config", "get", "shared"]));
        let ar = &v["AssumeRole"];
        assert_eq!(v["Meta"]["description"], format!("round {round}"), "{v}");
        assert_eq!(ar["DurationSeconds"], 900 + round, "{v}");
        assert_eq!(ar["RoleSessionName"], format!("session-{round}"), "{v}");
        assert_eq!(ar["ExternalId"], format!("ext-{round}"), "{v}");
        assert_eq!(ar["SourceIdentity"], format!("src-{round}"), "{v}");
        assert_eq!(
            v["Session"]["region_name"],
            format!("eu-west-{round}"),
            "{v}"
        );
        assert_eq!(
            ar["SerialNumber"],
            format!("arn:aws:iam::123456789012:mfa/dev{round}"),
            "{v}"
        );
        assert_eq!(v["MFA"]["timeout"], 10 + round, "{v}");
        assert_eq!(ar["RoleArn"], ROLE_ARN);
        assert_eq!(entries(&t.config_dir()), ["shared.yaml"]);
    }
}

#[test]
fn written_files_are_0600_in_0700_directories() {
    let t = full_user();
    // umask 0: whatever is private is so because elhaz made it so.
    let run0 = |args: &[&str]| {
        let mut c = t.std_cmd();
        c.args(args).stdin(Stdio::null());
        unsafe {
            c.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
        let o = c.output().unwrap();
        ok(&o);
    };
    let file = t.config_dir().join("prod.yaml");
    let check = |step: &str| {
        assert_eq!(mode(&t.home.join(".elhaz")), "700", "{step}: ~/.elhaz");
        assert_eq!(mode(&t.config_dir()), "700", "{step}: ~/.elhaz/configs");
        assert_eq!(mode(&file), "600", "{step}: prod.yaml");
        assert_eq!(
            entries(&t.config_dir()),
            ["prod.yaml"],
            "{step}: left-over files"
        );
    };
    run0(&["config", "add", "prod", "--role-arn", ROLE_ARN]);
    check("add");
    // A file the original (or a person) left readable becomes private when rewritten.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    run0(&["config", "update", "prod", "--duration", "2h"]);
    check("update");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    run0(&[
        "config",
        "add",
        "prod",
        "--force",
        "--role-arn",
        ROLE_ARN,
        "--region",
        "eu-west-1",
    ]);
    check("add --force");
    let input = t.home.join("in.yaml");
    std::fs::write(&input, FULL).unwrap();
    run0(&[
        "config",
        "update",
        "prod",
        "--from-file",
        input.to_str().unwrap(),
    ]);
    check("update --from-file");
    assert_eq!(
        json_out(&run(&t, &["config", "get", "prod"])),
        yaml_value(FULL)
    );
}

fn write_profiles(t: &TestEnv) {
    t.write_aws_config(
        "[default]\nregion = us-east-1\n\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n\n\
         [profile dev]\nsso_session = corp\nsso_account_id = 111111111111\nsso_role_name = Developer\nregion = eu-west-1\n\n\
         [profile production]\nrole_arn = arn:aws:iam::222222222222:role/Deploy\nsource_profile = static\n\n\
         [profile prod]\nrole_arn = arn:aws:iam::333333333333:role/FromProfile\nsource_profile = static\n",
    );
    std::fs::write(
        t.home.join(".aws/credentials"),
        "[static]\naws_access_key_id = AKIASTATIC0000000000\naws_secret_access_key = static-secret\n",
    )
    .unwrap();
}

#[test]
fn config_list_shows_aws_cli_profiles() {
    let mut t = TestEnv::new();
    // Not the default place: AWS_CONFIG_FILE is honoured.
    let aws = t.dir.path().join("elsewhere/aws-config");
    std::fs::create_dir_all(aws.parent().unwrap()).unwrap();
    t.set("AWS_CONFIG_FILE", aws.to_str().unwrap());
    write_profiles(&t);
    std::fs::rename(t.home.join(".aws/config"), &aws).unwrap();
    t.role_config("prod", "");
    t.write_config(
        "staging",
        "AssumeRole:\n  RoleArn: arn:aws:iam::444444444444:role/Staging\nMeta:\n  description: staging account\n",
    );

    let o = run(&t, &["config", "list"]);
    ok(&o);
    assert_eq!(
        stdout(&o),
        "NAME        KIND      DETAIL\n\
         prod        config    arn:aws:iam::123456789012:role/Admin\n\
         staging     config    staging account\n\
         default     profile   other (source only, not a NAME)\n\
         dev         profile   sso\n\
         prod        profile   role arn:aws:iam::333333333333:role/FromProfile (hidden by the config of the same name)\n\
         production  profile   role arn:aws:iam::222222222222:role/Deploy\n\
         static      profile   keys (source only, not a NAME)\n"
    );

    let rows = json_out(&run(&t, &["config", "list", "--json"]));
    let find = |name: &str, kind: &str| -> Value {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name && r["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} {name} in {rows}"))
            .clone()
    };
    assert_eq!(find("staging", "config")["description"], "staging account");
    assert_eq!(
        find("staging", "config")["role_arn"],
        "arn:aws:iam::444444444444:role/Staging"
    );
    let dev = find("dev", "profile");
    assert_eq!(dev["profile_type"], "sso");
    assert_eq!(dev["region"], "eu-west-1");
    assert_eq!(dev["shadowed"], false);
    assert_eq!(find("production", "profile")["profile_type"], "role");
    assert_eq!(find("static", "profile")["profile_type"], "keys");
    assert_eq!(find("static", "profile")["source_only"], true);
    assert_eq!(find("dev", "profile")["source_only"], false);
    assert_eq!(find("prod", "profile")["shadowed"], true);
    assert_eq!(rows.as_array().unwrap().len(), 7);
}

/// A profile that takes `region` and its role's `source_profile` from `[DEFAULT]`
/// (configparser gives that section's keys to every section): botocore sees a role
/// profile in eu-west-2 sourced from `static`, and so must elhaz, in its listing and
/// when it assumes the role.
#[tokio::test(flavor = "multi_thread")]
async fn a_profile_inheriting_from_the_default_section_is_seen_as_botocore_sees_it() {
    let sts = FakeSts::start(std::time::Duration::from_secs(3600)).await;
    let t = TestEnv::with_sts(&sts.uri());
    t.write_aws_config(
        "[DEFAULT]\nregion = eu-west-2\nsource_profile = static\n\n\
         [profile inherits]\nrole_arn = arn:aws:iam::555555555555:role/Inherited\n",
    );
    std::fs::write(
        t.home.join(".aws/credentials"),
        "[static]\naws_access_key_id = AKIASTATIC0000000000\naws_secret_access_key = static-secret\n",
    )
    .unwrap();

    let python = std::env::current_dir().unwrap().join(".ci/venv/bin/python");
    let out = t
        .program(&python)
        .args([
            "-c",
            "import json, botocore.session as s\n\
             c = s.Session(profile='inherits').get_scoped_config()\n\
             print(json.dumps({k: c.get(k) for k in ('region', 'role_arn', 'source_profile')}))",
        ])
        .output()
        .unwrap();
    ok(&out);
    let botocore: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        botocore,
        json!({
            "region": "eu-west-2",
            "role_arn": "arn:aws:iam::555555555555:role/Inherited",
            "source_profile": "static",
        })
    );

    let rows = json_out(&run(&t, &["config", "list", "--json"]));
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "inherits")
        .unwrap_or_else(|| panic!("no profile inherits in {rows}"));
    assert_eq!(row["profile_type"], "role", "{row}");
    assert_eq!(row["source_only"], false, "{row}");
    assert_eq!(row["region"], botocore["region"], "{row}");
    assert_eq!(row["role_arn"], botocore["role_arn"], "{row}");

    // As a NAME: the role is assumed with the source profile's keys.
    let o = run(&t, &["--no-daemon", "export", "inherits"]);
    ok(&o);
    let calls = sts.calls("AssumeRole").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0]["RoleArn"],
        "arn:aws:iam::555555555555:role/Inherited"
    );
    assert_eq!(sts.signers("AssumeRole").await, ["AKIASTATIC0000000000"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn names_resolve_to_a_config_before_a_profile() {
    let sts = FakeSts::start(std::time::Duration::from_secs(3600)).await;
    let t = TestEnv::with_sts(&sts.uri());
    write_profiles(&t);
    t.role_config("prod", "");

    // prod is both a config and a profile: the config wins.
    let o = run(&t, &["--no-daemon", "export", "prod"]);
    ok(&o);
    let calls = sts.calls("AssumeRole").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["RoleArn"], ROLE_ARN);

    // A name that is neither: the closest names, and exit 3.
    let o = run(&t, &["--no-daemon", "export", "prdo"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "elhaz: no config or AWS profile named \"prdo\"; did you mean: prod, production?\n\
         hint: list them: elhaz config list; or create it: elhaz config add prdo --role-arn ARN\n"
    );
    assert!(o.stdout.is_empty());

    // No NAME and no terminal: the names, and exit 2. Profiles that only hold keys
    // (or nothing) are sources, never offered as names; `config get` reads config
    // files, and offers configs only.
    for (args, names) in [
        (&["--no-daemon", "export"][..], "prod, dev, production"),
        (&["config", "get"], "prod"),
    ] {
        let o = run(&t, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(
            first_line(&o),
            format!("elhaz: no NAME given; choose one of: {names}"),
            "{args:?}"
        );
    }
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);
}

#[test]
fn remove_meta_and_obscured_get() {
    let t = TestEnv::new();
    t.write_config("full", FULL);
    t.role_config("bare", "");

    assert_eq!(
        json_out(&run(&t, &["config", "meta", "full"])),
        json!({"description": "Production admin: break glass only"})
    );
    assert_eq!(
        json_out(&run(&t, &["config", "meta", "-n", "bare"])),
        json!({})
    );

    let v = json_out(&run(&t, &["config", "get", "full", "--obscure"]));
    let mut want = yaml_value(FULL);
    for (section, key) in [
        ("AssumeRole", "RoleArn"),
        ("AssumeRole", "ExternalId"),
        ("AssumeRole", "SerialNumber"),
        ("AssumeRole", "TokenCode"),
        ("AssumeRole", "PolicyArns"),
        ("STS", "aws_access_key_id"),
        ("STS", "aws_secret_access_key"),
        ("STS", "aws_session_token"),
        ("STS", "aws_account_id"),
        ("Session", "aws_access_key_id"),
        ("Session", "aws_secret_access_key"),
        ("Session", "aws_session_token"),
        ("Session", "aws_account_id"),
    ] {
        want[section][key] = json!("***");
    }
    assert_eq!(v, want);
    let text = stdout(&run(&t, &["config", "get", "full", "--obscure"]));
    for secret in [
        "sts-secret",
        "session-secret",
        "012345",
        "AKIA",
        "123456789012",
    ] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }

    let o = run(&t, &["config", "remove", "bare", "--yes"]);
    ok(&o);
    assert_eq!(stderr(&o), "elhaz: removed ~/.elhaz/configs/bare.yaml\n");
    assert_eq!(entries(&t.config_dir()), ["full.yaml"]);
    let o = run(&t, &["config", "remove", "bare", "--yes"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        first_line(&o),
        "elhaz: no config named \"bare\" in ~/.elhaz/configs"
    );
    let o = run(&t, &["config", "get", "bare"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        first_line(&o),
        "elhaz: no config named \"bare\" in ~/.elhaz/configs"
    );
}

// ---------------------------------------------------------------------------
// Prompts on a terminal: Ctrl-C is a quiet 130, the confirmation edits like a shell.

fn on_terminal(t: &TestEnv, args: &[&str]) -> Pty {
    let mut cmd = t.std_cmd();
    cmd.env("TERM", "xterm").args(args);
    Pty::spawn(
        cmd,
        &format!("elhaz {}", args.join(" ")),
        120,
        std::time::Duration::from_secs(20),
    )
}

#[test]
fn ctrl_c_at_a_prompt_ends_quietly_with_130_and_changes_nothing() {
    let t = TestEnv::new();
    t.role_config("prod", "");
    t.role_config("dev", "");
    let before = snapshot(&t.home);
    // The picker (exec without NAME), the confirmation of `config remove`, and the
    // first prompt of an interactive `config add`.
    for (args, asked) in [
        (&["exec", "--", "true"][..], "Which session?"),
        (&["config", "remove", "prod"], "Remove config prod"),
        (&["config", "add", "new"], "Create new:"),
    ] {
        let mut p = on_terminal(&t, args);
        p.expect(asked);
        p.settle();
        p.send("\x03");
        let code = p.wait_exit();
        assert_eq!(code, 130, "{args:?}: {}", p.transcript);
        assert!(
            !p.transcript.contains("interrupted") && !p.transcript.contains("elhaz:"),
            "{args:?} said something after Ctrl-C: {}",
            p.transcript
        );
    }
    assert_eq!(snapshot(&t.home), before, "nothing changed");
}

#[test]
fn esc_at_a_prompt_is_the_same_quiet_130_as_ctrl_c() {
    let t = TestEnv::new();
    t.role_config("prod", "");
    t.role_config("dev", "");
    let before = snapshot(&t.home);
    // The picker, the config name, the menu of `config add`, a field's prompt and a
    // confirmation; Ctrl-C too at the text prompts.
    let cases: &[(&[&str], &[&str], &str)] = &[
        (&["exec", "--", "true"], &[], "\x1b"),
        (&["config", "remove", "prod"], &[], "\x1b"),
        (&["config", "remove", "prod"], &["n"], "\x1b"),
        (&["config", "add"], &[], "\x1b"),
        (&["config", "add"], &[], "\x03"),
        (&["config", "add", "new"], &[], "\x1b"),
        (&["config", "add", "new"], &["\r"], "\x1b"),
        (&["config", "add", "new"], &["\r"], "\x03"),
        (
            &["config", "add", "new"],
            &["\r", "arn:aws:iam::123456789012:role/X\r"],
            "\x1b",
        ),
    ];
    for (args, before_key, key) in cases {
        let mut p = on_terminal(&t, args);
        p.settle();
        for step in *before_key {
            p.send(step);
            p.settle();
        }
        p.send(key);
        let code = p.wait_exit();
        assert_eq!(code, 130, "{args:?} then {key:?}: {}", p.transcript);
        assert!(
            !p.transcript.contains("cancelled") && !p.transcript.contains("elhaz:"),
            "{args:?} said something after {key:?}: {}",
            p.transcript
        );
    }
    assert_eq!(snapshot(&t.home), before, "nothing changed");
    // As the README's exit code table says.
    let row = crate::readme::exit_code_row(130);
    assert!(
        row.contains("Ctrl-C or Esc at a prompt") && row.contains("nothing is said or changed"),
        "{row}"
    );
}

/// The keys a shell user's fingers know, at `config add`'s text prompts: Ctrl-W,
/// Ctrl-A/E and Ctrl-U edit (`2 hours`, Ctrl-U, `2h` is 2h, never `2 hoursu2h`).
#[test]
fn text_prompts_edit_their_line_like_the_shell_does() {
    let t = TestEnv::new();
    let mut p = on_terminal(&t, &["config", "add", "new"]);
    p.expect("Create new:");
    p.settle();
    p.send("\r"); // Answer prompts
    p.expect_screen("Role ARN:");
    p.settle();
    // Ctrl-W rubs out the word before the cursor (here, all of it).
    p.send("arn:aws:iam::123456789012:role/Wrong");
    p.send("\x17");
    p.send_line("arn:aws:iam::123456789012:role/Deploy");
    p.expect_screen("Source AWS profile:");
    p.settle();
    p.send_line("");
    p.expect_screen("Region:");
    p.settle();
    // Ctrl-A to the start, Ctrl-E back to the end.
    p.send("west-1");
    p.send("\x01");
    p.send("eu-");
    p.send("\x05");
    p.send("\r");
    p.expect_screen("Duration:");
    p.settle();
    p.send("2 hours");
    p.send("\x15");
    p.send_line("2h");
    p.expect_screen("MFA device ARN:");
    p.settle();
    p.send_line("");
    p.expect_screen("Description:");
    p.settle();
    // Alt-B back over a word, Ctrl-K to the end.
    p.send("deploys the app now");
    p.send("\x1bb");
    p.send("\x0b");
    p.send("\x7f");
    p.send("\r");
    assert_eq!(p.wait_exit(), 0, "{}", p.transcript);
    let v = yaml_value(&std::fs::read_to_string(t.config_dir().join("new.yaml")).unwrap());
    assert_eq!(
        v["AssumeRole"]["RoleArn"], "arn:aws:iam::123456789012:role/Deploy",
        "{v:?}"
    );
    assert_eq!(v["Session"]["region_name"], "eu-west-1", "{v:?}");
    assert_eq!(v["AssumeRole"]["DurationSeconds"], 7200, "{v:?}");
    assert_eq!(v["Meta"]["description"], "deploys the app", "{v:?}");
}

#[test]
fn the_remove_confirmation_edits_its_line_like_the_shell_does() {
    let t = TestEnv::new();
    t.role_config("prod", "");
    t.role_config("dev", "");
    // "n", then Ctrl-U erases it, then "y": removed.
    let mut p = on_terminal(&t, &["config", "remove", "prod"]);
    p.expect("[y/N]");
    p.send("no");
    p.send("\x15");
    p.send_line("y");
    assert_eq!(p.wait_exit(), 0, "{}", p.transcript);
    assert!(!t.config_dir().join("prod.yaml").exists());
    // Neither yes nor no: asked again, the answer kept for editing; Ctrl-A to its
    // start. Ctrl-D (end of input) is no: kept.
    let mut p = on_terminal(&t, &["config", "remove", "dev"]);
    p.expect("[y/N]");
    p.send_line("es");
    p.expect_screen("answer y or n");
    p.send("\x01y\x05\x15");
    p.settle();
    p.send("\x04");
    assert_eq!(p.wait_exit(), 1, "{}", p.transcript);
    assert!(p.transcript.contains("kept dev"), "{}", p.transcript);
    // Enter alone takes the default: kept.
    let mut p = on_terminal(&t, &["config", "remove", "dev"]);
    p.expect("[y/N]");
    p.send_line("");
    assert_eq!(p.wait_exit(), 1, "{}", p.transcript);
    assert!(p.transcript.contains("kept dev"), "{}", p.transcript);
    assert!(t.config_dir().join("dev.yaml").exists());
}

#[test]
fn an_editor_template_left_unchanged_or_with_its_placeholder_saves_nothing() {
    let mut t = TestEnv::new();
    t.role_config("keep", "");
    let before = snapshot(&t.home);
    // The user quits the editor at once.
    t.set("EDITOR", "true");
    let mut p = on_terminal(&t, &["config", "add", "new", "--editor"]);
    assert_eq!(p.wait_exit(), 1, "{}", p.transcript);
    assert!(
        p.transcript
            .contains("elhaz: new: the file was not changed; nothing was saved"),
        "{}",
        p.transcript
    );
    assert_eq!(snapshot(&t.home), before, "nothing written");

    // The user fills in the description only: the placeholder role is refused, and
    // declining to edit again saves nothing.
    t.set(
        "EDITOR",
        "sed -i 's/^# Meta:/Meta:/; s/^#   description/  description/'",
    );
    let mut p = on_terminal(&t, &["config", "add", "new", "--editor"]);
    p.expect("still the template's role/CHANGE-ME");
    p.expect("Edit again?");
    p.send_line("n");
    assert_eq!(p.wait_exit(), 3, "{}", p.transcript);
    assert_eq!(snapshot(&t.home), before, "nothing written");
}

#[test]
fn interactive_add_checks_each_answer_at_its_prompt_and_keeps_the_others() {
    let t = TestEnv::new();
    let mut p = on_terminal(&t, &["config", "add", "new"]);
    p.expect("Create new:");
    p.settle();
    p.send("\r"); // Answer prompts
    p.expect_screen("Role ARN:");
    p.settle();
    p.send_line("not-an-arn");
    p.expect_screen("\"not-an-arn\" is not a role ARN");
    // Asked again at once, the answer kept for editing: erase it, give a good one.
    p.send(&"\x7f".repeat("not-an-arn".len()));
    p.send_line("arn:aws:iam::123456789012:role/Deploy");
    p.expect_screen("Source AWS profile:");
    p.settle();
    p.send_line("");
    p.expect_screen("Region:");
    p.settle();
    p.send_line("eu-west-1");
    p.expect_screen("Duration:");
    p.settle();
    p.send_line("abc");
    p.expect_screen("invalid duration \"abc\"");
    p.settle();
    p.send(&"\x7f".repeat(3));
    p.send_line("2h");
    p.expect_screen("MFA device ARN:");
    p.settle();
    p.send_line("");
    p.expect_screen("Description:");
    p.settle();
    p.send_line("deploys");
    assert_eq!(p.wait_exit(), 0, "{}", p.transcript);
    let yaml = std::fs::read_to_string(t.config_dir().join("new.yaml")).unwrap();
    let v = yaml_value(&yaml);
    assert_eq!(
        v["AssumeRole"]["RoleArn"], "arn:aws:iam::123456789012:role/Deploy",
        "{yaml}"
    );
    assert_eq!(v["AssumeRole"]["DurationSeconds"], 7200, "{yaml}");
    assert_eq!(v["Session"]["region_name"], "eu-west-1", "{yaml}");
}

// ---------------------------------------------------------------------------
// What a config names is checked when it is saved: the region, the ARNs, the source
// profile. Nothing is written when one is wrong.

/// A user whose AWS config has the profiles `my-sso` and `dev`, and config `prod`.
fn user_with_profiles() -> TestEnv {
    let t = TestEnv::new();
    t.write_aws_config(
        "[profile my-sso]\nsso_session = corp\nsso_account_id = 111111111111\nsso_role_name = Dev\n\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n\n\
         [profile dev]\nregion = eu-west-1\n",
    );
    t.role_config("prod", "");
    t
}

const BAD_ACCOUNT: &str = "arn:aws:iam::12345:role/X";

#[test]
fn flags_naming_a_bad_region_arn_or_source_profile_are_refused_and_nothing_is_written() {
    let t = user_with_profiles();
    let before = snapshot(&t.home);
    let regions = "did you mean: eu-west-1, eu-west-2, eu-west-3?";
    // (flag, value, first line after "elhaz: ", hint after "hint: ")
    let cases: &[(&str, &str, String, &str)] = &[
        (
            "--region",
            "eu-wst-1",
            format!("--region \"eu-wst-1\" is not an AWS region; {regions}"),
            "run it again with --region eu-west-1",
        ),
        (
            "--region",
            "eu west",
            format!("--region \"eu west\" is not an AWS region; {regions}"),
            "run it again with --region eu-west-1",
        ),
        (
            "--sts-region",
            "us-est-1",
            "--sts-region \"us-est-1\" is not an AWS region; did you mean: us-east-1, us-west-1, us-east-2?".into(),
            "run it again with --sts-region us-east-1",
        ),
        (
            "--role-arn",
            BAD_ACCOUNT,
            format!("--role-arn \"{BAD_ACCOUNT}\" is not a role ARN: the account must be 12 digits, not \"12345\" (expected arn:aws:iam::ACCOUNT:role/NAME)"),
            "run it again with --role-arn arn:aws:iam::ACCOUNT:role/NAME",
        ),
        (
            "--role-arn",
            "arn:aws:iam::123456789012:user/X",
            "--role-arn \"arn:aws:iam::123456789012:user/X\" is not a role ARN: the resource must start with \"role/\", not \"user/X\" (expected arn:aws:iam::ACCOUNT:role/NAME)".into(),
            "run it again with --role-arn arn:aws:iam::ACCOUNT:role/NAME",
        ),
        (
            "--role-arn",
            "arn:aws-gov:iam::123456789012:role/X",
            "--role-arn \"arn:aws-gov:iam::123456789012:role/X\" is not a role ARN: the partition is \"aws-gov\", not one of aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc (expected arn:aws:iam::ACCOUNT:role/NAME)".into(),
            "run it again with --role-arn arn:aws:iam::ACCOUNT:role/NAME",
        ),
        (
            "--serial-number",
            "arn:aws:iam::12345:mfa/me",
            "--serial-number \"arn:aws:iam::12345:mfa/me\" is not an MFA device ARN: the account must be 12 digits, not \"12345\" (expected arn:aws:iam::ACCOUNT:mfa/NAME)".into(),
            "run it again with --serial-number arn:aws:iam::ACCOUNT:mfa/NAME",
        ),
        (
            "--policy-arn",
            "arn:aws:iam::aws:polcy/ReadOnlyAccess",
            "--policy-arn \"arn:aws:iam::aws:polcy/ReadOnlyAccess\" is not a managed policy ARN: the resource must start with \"policy/\", not \"polcy/ReadOnlyAccess\" (expected arn:aws:iam::ACCOUNT:policy/NAME)".into(),
            "run it again with --policy-arn arn:aws:iam::ACCOUNT:policy/NAME",
        ),
        (
            "--profile",
            "my-ssso",
            "--profile: no AWS profile \"my-ssso\" in ~/.aws/config; did you mean: my-sso?".into(),
            "run it again with --profile my-sso; or create it: aws configure --profile my-ssso (or aws configure sso --profile my-ssso)",
        ),
    ];
    for (flag, value, first, hint) in cases {
        for head in [
            &["config", "add", "new", "--role-arn", ROLE_ARN][..],
            &["config", "update", "prod"],
        ] {
            let mut args = head.to_vec();
            if *flag == "--role-arn" {
                args.retain(|a| *a != "--role-arn" && *a != ROLE_ARN);
            }
            args.extend([*flag, *value]);
            let o = run(&t, &args);
            assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
            assert_eq!(
                stderr(&o),
                format!("elhaz: {first}\nhint: {hint}\n"),
                "{args:?}"
            );
            assert!(o.stdout.is_empty(), "{args:?}");
        }
    }
    assert_eq!(snapshot(&t.home), before, "something was written");

    // What AWS does accept is saved: a role under a path, the sovereign and China
    // partitions, AWS managed policies, a hardware MFA serial, an existing profile.
    ok(&run(
        &t,
        &[
            "config",
            "add",
            "good",
            "--role-arn",
            "arn:aws:iam::123456789012:role/team/Deploy",
            "--region",
            "eusc-de-east-1",
            "--sts-region",
            "cn-northwest-1",
            "--policy-arn",
            "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess",
            "--serial-number",
            "GAHT12345678",
            "--profile",
            "dev",
        ],
    ));
    ok(&run(
        &t,
        &[
            "config",
            "update",
            "good",
            "--role-arn",
            "arn:aws-us-gov:iam::123456789012:role/X",
            "--region",
            "us-gov-west-1",
            "--profile",
            "my-sso",
        ],
    ));
    let v = json_out(&run(&t, &["config", "get", "good"]));
    assert_eq!(v["Session"]["profile_name"], "my-sso", "{v}");
    assert_eq!(v["Session"]["region_name"], "us-gov-west-1", "{v}");
}

#[test]
fn a_source_profile_without_any_aws_config_file_says_the_file_is_missing() {
    let t = TestEnv::new();
    t.role_config("prod", "");
    let before = snapshot(&t.home);
    for args in [
        &[
            "config",
            "add",
            "new",
            "--role-arn",
            ROLE_ARN,
            "--profile",
            "my-sso",
        ][..],
        &["config", "update", "prod", "--profile", "my-sso"],
    ] {
        let o = run(&t, args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            "elhaz: --profile: no AWS profile \"my-sso\": there is no AWS config file (~/.aws/config does not exist)\n\
             hint: create it: aws configure --profile my-sso (or aws configure sso --profile my-sso)\n",
            "{args:?}"
        );
    }
    assert_eq!(snapshot(&t.home), before, "something was written");
    // Only credentials: the profile is looked for there, and the missing config said.
    std::fs::write(
        t.home.join(".aws/credentials"),
        "[keys]\naws_access_key_id = AKIAKEYS\naws_secret_access_key = s\n",
    )
    .unwrap();
    let o = run(&t, &["config", "update", "prod", "--profile", "key"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        first_line(&o),
        "elhaz: --profile: no AWS profile \"key\" in ~/.aws/credentials (and ~/.aws/config does not exist); did you mean: keys?"
    );
    // A profile with keys only is a source like any other.
    ok(&run(&t, &["config", "update", "prod", "--profile", "keys"]));
}

#[test]
fn a_file_bringing_a_missing_source_profile_is_refused_with_its_line() {
    let t = user_with_profiles();
    let input = t.home.join("in.yaml");
    std::fs::write(
        &input,
        format!("{ROLE_PREFIX}Session:\n  region_name: eu-west-1\n  profile_name: my-ssso\n"),
    )
    .unwrap();
    let before = snapshot(&t.home);
    for args in [
        &["config", "add", "new", "--from-file"][..],
        &["config", "update", "prod", "--from-file"],
    ] {
        let mut args = args.to_vec();
        args.push(input.to_str().unwrap());
        let o = run(&t, &args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o),
            "elhaz: ~/in.yaml:5: Session.profile_name: no AWS profile \"my-ssso\" in ~/.aws/config; did you mean: my-sso?\n\
             hint: run it again with --profile my-sso; or create it: aws configure --profile my-ssso (or aws configure sso --profile my-ssso)\n",
            "{args:?}"
        );
    }
    assert_eq!(snapshot(&t.home), before, "something was written");
    // The flag beats the file, as for every field.
    let mut args = vec!["config", "add", "new", "--profile", "my-sso", "--from-file"];
    args.push(input.to_str().unwrap());
    ok(&run(&t, &args));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_whose_source_profile_is_gone_loads_but_is_a_config_error_when_used() {
    let sts = FakeSts::start(std::time::Duration::from_secs(3600)).await;
    let mut t = TestEnv::with_sts(&sts.uri());
    t.write_aws_config("[profile my-sso]\nregion = eu-west-1\n");
    // Written by hand (or the profile removed since): loading it is as before.
    t.write_config(
        "prod",
        &format!("{ROLE_PREFIX}Session:\n  region_name: eu-west-1\n  profile_name: my-ssso\n"),
    );
    let o = run(&t, &["config", "get", "prod"]);
    ok(&o);
    assert_eq!(json_out(&o)["Session"]["profile_name"], "my-ssso");
    // A change of another field keeps it, unchecked.
    ok(&run(&t, &["config", "update", "prod", "--duration", "1h"]));

    // Rewritten by the update: DurationSeconds first, so profile_name is on line 6.
    let want = "elhaz: ~/.elhaz/configs/prod.yaml:6: Session.profile_name: no AWS profile \"my-ssso\" in ~/.aws/config; did you mean: my-sso?\n\
                hint: name a profile that exists: elhaz config update prod --profile PROFILE (list them: elhaz config list)\n";
    for args in [
        &["--no-daemon", "exec", "prod", "--", "true"][..],
        &["exec", "prod", "true"],
        &["export", "prod"],
        &["whoami", "prod"],
        &["exec", "--server", "prod", "--", "true"],
    ] {
        let o = run(&t, args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        // Through the daemon the first line is its start's.
        let err = stderr(&o);
        let err = err
            .lines()
            .filter(|l| !l.starts_with("elhaz: started the daemon"))
            .map(|l| format!("{l}\n"))
            .collect::<String>();
        assert_eq!(err, want, "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    // The profile files of the caller decide, as for every source.
    t.stop_daemon();
    let elsewhere = t.dir.path().join("other-aws-config");
    std::fs::write(
        &elsewhere,
        "[profile my-ssso]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = s\n",
    )
    .unwrap();
    t.set("AWS_CONFIG_FILE", elsewhere.to_str().unwrap());
    ok(&run(&t, &["--no-daemon", "export", "prod"]));
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);
}

#[test]
fn interactive_add_asks_again_for_a_bad_arn_profile_or_region_with_the_reason() {
    let t = user_with_profiles();
    let mut p = on_terminal(&t, &["config", "add", "new"]);
    p.expect("Create new:");
    p.settle();
    p.send("\r"); // Answer prompts
    p.expect_screen("Role ARN:");
    p.settle();
    p.send_line(BAD_ACCOUNT);
    p.expect_screen("the account must be 12 digits, not \"12345\"");
    p.send(&"\x7f".repeat(BAD_ACCOUNT.len()));
    p.send_line("arn:aws:iam::123456789012:role/team/Deploy");
    // The source profile prompt lists the profiles there are.
    p.expect_screen("Source AWS profile:");
    p.expect_screen("profiles: dev, my-sso");
    p.settle();
    p.send_line("my-ssso");
    p.expect_screen("no AWS profile \"my-ssso\" in ~/.aws/config; did you mean: my-sso?");
    p.send(&"\x7f".repeat("my-ssso".len()));
    p.send_line("my-sso");
    p.expect_screen("Region:");
    p.settle();
    p.send_line("eu-wst-1");
    p.expect_screen("\"eu-wst-1\" is not an AWS region; did you mean: eu-west-1");
    p.send(&"\x7f".repeat("eu-wst-1".len()));
    p.send_line("eu-west-1");
    p.expect_screen("Duration:");
    p.settle();
    p.send_line("");
    p.expect_screen("MFA device ARN:");
    p.settle();
    p.send_line("arn:aws:iam::123456789012:mfa");
    p.expect_screen("is not an MFA device ARN");
    p.send(&"\x7f".repeat("arn:aws:iam::123456789012:mfa".len()));
    p.send_line("");
    p.expect_screen("Description:");
    p.settle();
    p.send_line("");
    assert_eq!(p.wait_exit(), 0, "{}", p.transcript);
    let v = json_out(&run(&t, &["config", "get", "new"]));
    assert_eq!(
        v,
        json!({
            "AssumeRole": {"RoleArn": "arn:aws:iam::123456789012:role/team/Deploy"},
            "Session": {"profile_name": "my-sso", "region_name": "eu-west-1"},
        })
    );
}

#[test]
fn interactive_update_keeps_a_vanished_source_profile_but_takes_no_new_unknown_one() {
    let t = user_with_profiles();
    t.write_config(
        "old",
        &format!("{ROLE_PREFIX}Session:\n  profile_name: gone\n"),
    );
    let mut p = on_terminal(&t, &["config", "update", "old"]);
    p.expect("Update old:");
    p.settle();
    p.send("\r"); // Answer prompts
    p.expect_screen("Role ARN:");
    p.settle();
    p.send_line("");
    p.expect_screen("Source AWS profile:");
    p.settle();
    // Kept as it is: not asked again.
    p.send_line("");
    p.expect_screen("Region:");
    p.settle();
    p.send_line("eu-west-2");
    for _ in 0..3 {
        p.settle();
        p.send_line("");
    }
    assert_eq!(p.wait_exit(), 0, "{}", p.transcript);
    let v = json_out(&run(&t, &["config", "get", "old"]));
    assert_eq!(
        v["Session"],
        json!({"profile_name": "gone", "region_name": "eu-west-2"})
    );
}

#[test]
fn the_editor_is_reopened_for_a_source_profile_that_does_not_exist() {
    let mut t = user_with_profiles();
    let before = snapshot(&t.home);
    // The user names the role, uncomments the template's Session and names a profile
    // with a typo.
    t.set(
        "EDITOR",
        "sed -i 's/CHANGE-ME/Deploy/; s/^# Session:/Session:/; s/^#   profile_name: my-sso/  profile_name: my-ssso/'",
    );
    let mut p = on_terminal(&t, &["config", "add", "new", "--editor"]);
    p.expect_screen(
        "Session.profile_name: no AWS profile \"my-ssso\" in ~/.aws/config; did you mean: my-sso?",
    );
    p.expect("Edit again?");
    p.send_line("n");
    assert_eq!(p.wait_exit(), 3, "{}", p.transcript);
    assert_eq!(snapshot(&t.home), before, "nothing written");
}

/// A description with what a terminal would obey (an escape sequence, a tab) is shown
/// escaped in `config list`, never obeyed; the config keeps it as written.
#[test]
fn config_list_shows_control_characters_escaped() {
    let t = TestEnv::new();
    let out = t
        .cmd()
        .args([
            "config",
            "add",
            "esc1",
            "--role-arn",
            "arn:aws:iam::123456789012:role/E",
            "--description",
            "red\u{1b}[31mX\tTab",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = t.cmd().args(["config", "list"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!list.contains('\u{1b}') && !list.contains('\t'), "{list:?}");
    assert!(list.contains("red\\x1b[31mX\\tTab"), "{list:?}");
    // Nothing lost: the config keeps the description as written.
    let out = t.cmd().args(["config", "meta", "esc1"]).output().unwrap();
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["description"], "red\u{1b}[31mX\tTab");
}

/// A config that is a symbolic link into another directory (dotfiles) stays a link when
/// `config update` changes it: the file it points to gets the change.
#[test]
fn config_update_writes_through_a_symlinked_config() {
    let t = TestEnv::new();
    let dot = t.home.join("dotfiles");
    std::fs::create_dir_all(&dot).unwrap();
    std::fs::set_permissions(&dot, std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = dot.join("dot.yaml");
    std::fs::write(
        &target,
        "AssumeRole:\n  RoleArn: arn:aws:iam::123456789012:role/Dot\n",
    )
    .unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(t.config_dir()).unwrap();
    let link = t.config_dir().join("dot.yaml");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    let out = t
        .cmd()
        .args(["config", "update", "dot", "--description", "from dotfiles"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced by a file"
    );
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(
        text.contains("from dotfiles") && text.contains("role/Dot"),
        "{text}"
    );
    let out = t.cmd().args(["config", "meta", "dot"]).output().unwrap();
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["description"], "from dotfiles");
    // Into a directory others can write: refused, nothing written.
    std::fs::set_permissions(&dot, std::fs::Permissions::from_mode(0o777)).unwrap();
    let before = std::fs::read_to_string(&target).unwrap();
    let out = t
        .cmd()
        .args(["config", "update", "dot", "--description", "again"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("in a directory others can write"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), before);
}
