//! One realistic user, as people's `~/.aws` really looks: keys in `~/.aws/credentials`
//! (`[default]` and a second pair), a `[DEFAULT]` section, a `[default]` region, a
//! two-hop chain, aws-vault's three-hop chain with MFA on the first hop, an MFA role
//! with an explicit source, the README's `credential_process` recipe pointing at
//! elhaz (and a loop), a helper of someone else's, a web identity profile, comments,
//! and elhaz configs beside them; STS is the fake that says who signed each call.
//! Every capability's tests can start from it and add what they need.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use super::env::{TestEnv, bin, test_path};
use super::sts::FakeSts;

pub const KDEF: &str = "AKIADEFAULTWORLD0001";
pub const KOTHER: &str = "AKIAOTHERWORLD000002";
/// The key the `helper` profile's credential_process prints.
pub const KHELPER: &str = "AKIAHELPERWORLD00003";

pub struct World {
    pub t: TestEnv,
    pub sts: FakeSts,
}

impl World {
    /// The world, with a fake STS that sees who signed each call.
    pub async fn new() -> World {
        let sts = FakeSts::start(std::time::Duration::from_secs(3600)).await;
        let mut t = TestEnv::new();
        t.set("AWS_ENDPOINT_URL_STS", &sts.uri());
        t.set("ELHAZ_NO_SPINNER", "1");
        // elhaz on PATH, as the credential_process recipe expects it.
        let bindir = t.home.join("bin");
        std::fs::create_dir_all(&bindir).unwrap();
        std::os::unix::fs::symlink(bin(), bindir.join("elhaz")).unwrap();
        t.set("PATH", &format!("{}:{}", bindir.display(), test_path()));
        let w = World { t, sts };
        w.write_files();
        w
    }

    fn write_files(&self) {
        let t = &self.t;
        std::fs::write(
            t.home.join(".aws/credentials"),
            format!(
                "[default]\naws_access_key_id = {KDEF}\naws_secret_access_key = default-secret\n\n\
                 [other]\naws_access_key_id = {KOTHER}\naws_secret_access_key = other-secret\n"
            ),
        )
        .unwrap();
        let helper = self.script(
            "helper.sh",
            &format!(
                "echo 'helper: asked as profile '\"${{AWS_PROFILE:-none}}\" >&2\n\
                 printf '{{\"Version\": 1, \"AccessKeyId\": \"{KHELPER}\", \"SecretAccessKey\": \"helper-secret\"}}'"
            ),
        );
        let token = t.home.join("web-token");
        std::fs::write(&token, "header.payload.signature").unwrap();
        t.write_aws_config(&format!(
            "[DEFAULT]
cli_pager =
region = us-east-1

[default]
region = eu-west-1
s3 =
    max_concurrent_requests = 20

# A two-hop chain without MFA.
[profile plain]
role_arn = arn:aws:iam::111111111111:role/Plain
source_profile = default
region = eu-west-2

[profile chain2]
role_arn = arn:aws:iam::222222222222:role/Chain2
source_profile = plain
role_session_name = chain2-session   # a comment after a value
external_id: chain2-ext

# aws-vault's pattern: MFA on the first hop of three.
[profile base]
role_arn = arn:aws:iam::111111111111:role/Base
source_profile = default
mfa_serial = arn:aws:iam::111111111111:mfa/tester
region = eu-central-1
duration_seconds = 3600

[profile deep]
role_arn = arn:aws:iam::222222222222:role/Deep
source_profile = base
external_id = deep-ext

[profile deeper]
role_arn = arn:aws:iam::333333333333:role/Deeper
source_profile = deep
role_session_name = deeper-session

[profile prod-mfa]
role_arn = arn:aws:iam::444444444444:role/ProdMfa
source_profile = default
mfa_serial = arn:aws:iam::444444444444:mfa/tester

# The README's recipe: the SDKs get prod from elhaz.
[profile prod]
credential_process = elhaz export prod -f credential-process

[profile loop]
credential_process = elhaz export loop -f credential-process

[profile helper]
credential_process = {}

[profile from-helper]
role_arn = arn:aws:iam::555555555555:role/FromHelper
source_profile = helper

[profile webid]
role_arn = arn:aws:iam::666666666666:role/WebId
web_identity_token_file = {}
",
            helper.display(),
            token.display()
        ));
        t.write_config(
            "prod",
            "AssumeRole:\n  RoleArn: arn:aws:iam::123456789012:role/Admin\n",
        );
        t.write_config(
            "demo",
            "AssumeRole:\n  RoleArn: arn:aws:iam::123456789012:role/Demo\n  DurationSeconds: 900\nSession:\n  profile_name: default\n",
        );
    }

    /// IAM Identity Center beside the rest: `[sso-session corp]` at the fake, a synced
    /// profile `corp-dev` (111122223333/Dev) and `on-sso`, a role chained on it; a live
    /// login in the token cache.
    pub fn add_sso(&mut self, fake: &super::sso::FakeSso) {
        use super::sso::{START_URL, iso_in, write_cache};
        self.t.set("AWS_ENDPOINT_URL_SSO_OIDC", &fake.oidc.uri());
        self.t.set("AWS_ENDPOINT_URL_SSO", &fake.portal.uri());
        let mut cfg = std::fs::read_to_string(self.t.home.join(".aws/config")).unwrap();
        cfg.push_str(&format!(
            "
[sso-session corp]
sso_start_url = {START_URL}
sso_region = us-east-1
sso_registration_scopes = sso:account:access

[profile corp-dev]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = Dev
region = eu-west-1

[profile on-sso]
role_arn = arn:aws:iam::777777777777:role/OnSso
source_profile = corp-dev
"
        ));
        self.t.write_aws_config(&cfg);
        fake.seed_access("world-token");
        write_cache(
            &self.t,
            "corp",
            &serde_json::json!({
                "startUrl": START_URL,
                "region": "us-east-1",
                "accessToken": "world-token",
                "expiresAt": iso_in(8 * 3600),
            }),
        );
    }

    /// An executable script in the world's home.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.t.home.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// `elhaz ARGS` with extra variables (None removes one).
    pub fn run(&self, vars: &[(&str, Option<&str>)], args: &[&str]) -> Output {
        let mut c = self.t.std_cmd();
        set_vars(&mut c, vars);
        c.args(args).stdin(std::process::Stdio::null());
        c.output().unwrap()
    }

    /// Any program (the aws CLI, python) as this user, with extra variables.
    pub fn program(&self, prog: &str, vars: &[(&str, Option<&str>)], args: &[&str]) -> Output {
        let mut c = self.t.program(prog);
        set_vars(&mut c, vars);
        c.args(args).stdin(std::process::Stdio::null());
        c.output().unwrap()
    }

    /// A daemon started by another caller days ago: another AWS_PROFILE, a dead STS
    /// endpoint, another region. What it answers must not depend on any of it.
    pub fn start_foreign_daemon(&self) {
        let o = self.run(
            &[
                ("AWS_PROFILE", Some("other")),
                ("AWS_ENDPOINT_URL_STS", Some("http://127.0.0.1:9")),
                ("AWS_REGION", Some("ap-southeast-2")),
            ],
            &["daemon", "start"],
        );
        assert!(o.status.success(), "{}", super::text::text(&o.stderr));
    }

    /// The calls STS has answered so far.
    pub async fn mark(&self) -> usize {
        self.sts.count().await
    }

    /// The calls since `mark`, as `ROLE<-SIGNER`.
    pub async fn since(&self, mark: usize) -> Vec<String> {
        self.sts.chain_since(mark).await
    }
}

fn set_vars(c: &mut Command, vars: &[(&str, Option<&str>)]) {
    for (k, v) in vars {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
}
