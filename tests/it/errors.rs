//! User mistakes: each gets the exact first line a user reads, the hint
//! that fixes it, and the exit code of the README's table. Every case runs as a user
//! without a terminal (a new session, stdin from /dev/null), in its own HOME.
use crate::support::*;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Where the expected first line is read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stream {
    Stderr,
    Stdout,
}

/// What the command's stdout is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Out {
    Captured,
    /// A pipe whose reader has already gone (`elhaz export prod | true`).
    ClosedPipe,
}

struct Case {
    what: &'static str,
    env: TestEnv,
    args: Vec<String>,
    /// Start the daemon first, so the first line is not its announcement.
    daemon: bool,
    stdout: Out,
    stream: Stream,
    first: String,
    /// The exact `hint: ...` line, when the message is not the whole story.
    hint: Option<String>,
    code: i32,
}

struct Outcome {
    what: &'static str,
    args: Vec<String>,
    output: Output,
    failures: Vec<String>,
}

fn case(what: &'static str, env: TestEnv, args: &[&str]) -> Case {
    Case {
        what,
        env,
        args: args.iter().map(|s| s.to_string()).collect(),
        daemon: false,
        stdout: Out::Captured,
        stream: Stream::Stderr,
        first: String::new(),
        hint: None,
        code: 0,
    }
}

impl Case {
    fn fails(mut self, code: i32, first: impl Into<String>) -> Case {
        self.code = code;
        self.first = first.into();
        self
    }
    fn hint(mut self, hint: impl Into<String>) -> Case {
        self.hint = Some(format!("hint: {}", hint.into()));
        self
    }
    fn via_daemon(mut self) -> Case {
        self.daemon = true;
        self
    }
    fn on_stdout(mut self) -> Case {
        self.stream = Stream::Stdout;
        self
    }
    fn into_closed_pipe(mut self) -> Case {
        self.stdout = Out::ClosedPipe;
        self
    }

    fn run(self) -> Outcome {
        let t = &self.env;
        if self.daemon {
            t.start_daemon();
        }
        let mut c = t.std_cmd();
        c.args(&self.args)
            .current_dir(&t.home)
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        match self.stdout {
            Out::Captured => {
                c.stdout(Stdio::piped());
            }
            Out::ClosedPipe => {
                let (reader, writer) = std::io::pipe().unwrap();
                drop(reader);
                c.stdout(Stdio::from(writer));
            }
        }
        // SAFETY: setsid is async-signal-safe. No controlling terminal: /dev/tty fails.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = c.spawn().unwrap();
        let (status, out, err) = output_within(child, Duration::from_secs(60));
        let output = Output {
            status: status.unwrap_or_else(|| panic!("{}: no exit within 60s", self.what)),
            stdout: out.into_bytes(),
            stderr: err.into_bytes(),
        };
        let text = String::from_utf8_lossy(match self.stream {
            Stream::Stderr => &output.stderr,
            Stream::Stdout => &output.stdout,
        })
        .into_owned();
        let mut lines = text.lines();
        let mut failures = Vec::new();
        let first = lines.next().unwrap_or_default();
        if first != self.first {
            failures.push(format!(
                "first line\n      want: {}\n       got: {first}",
                self.first
            ));
        }
        if let Some(hint) = &self.hint {
            let got = lines.find(|l| l.starts_with("hint: ")).unwrap_or_default();
            if got != hint {
                failures.push(format!("hint\n      want: {hint}\n       got: {got}"));
            }
        }
        if output.status.code() != Some(self.code) {
            failures.push(format!(
                "exit code: want {}, got {:?}",
                self.code,
                output.status.code()
            ));
        }
        if self.stream == Stream::Stdout && !output.stderr.is_empty() {
            failures.push(format!(
                "stderr should be empty: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Outcome {
            what: self.what,
            args: self.args,
            output,
            failures,
        }
    }
}

const PROD: &str = "arn:aws:iam::123456789012:role/Admin";

/// A user with config `prod` and static source keys for `sts`.
fn user(sts: &str) -> TestEnv {
    let t = TestEnv::with_sts(sts);
    t.role_config("prod", "");
    t
}

/// An SSO profile whose token in the AWS CLI cache expired a minute ago.
fn expired_sso(t: &TestEnv) {
    t.write_aws_config(
        "[profile my-sso-profile]
sso_session = my-sso
sso_account_id = 111122223333
sso_role_name = ReadOnly

[sso-session my-sso]
sso_region = us-east-1
sso_start_url = https://my-sso-portal.awsapps.com/start
",
    );
    let dir = t.home.join(".aws/sso/cache");
    std::fs::create_dir_all(&dir).unwrap();
    let expired = time::OffsetDateTime::from_unix_timestamp(unix_now() - 60)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let token = serde_json::json!({
        "startUrl": "https://my-sso-portal.awsapps.com/start",
        "region": "us-east-1",
        "accessToken": "expired-token",
        "expiresAt": expired,
    });
    std::fs::write(
        dir.join(format!("{}.json", sha1_hex("my-sso"))),
        token.to_string(),
    )
    .unwrap();
    t.write_config(
        "via-sso",
        &format!("AssumeRole:\n  RoleArn: {PROD}\nSession:\n  profile_name: my-sso-profile\n"),
    );
}

fn table(sts: &str, denying_sts: &str, refusing_sts: &str) -> Vec<Case> {
    let dead_sts = format!("http://127.0.0.1:{}", free_port());
    let add_hint = "elhaz config add new --role-arn arn:aws:iam::123456789012:role/NAME";
    let mut cases = Vec::new();

    cases.push(
        case(
            "an unknown name, in this process",
            user(sts),
            &["--no-daemon", "exec", "prd", "--", "true"],
        )
        .fails(
            3,
            r#"elhaz: no config or AWS profile named "prd"; did you mean: prod?"#,
        )
        .hint("list them: elhaz config list; or create it: elhaz config add prd --role-arn ARN"),
    );
    cases.push(
        case(
            "an unknown name, through the daemon",
            user(sts),
            &["exec", "prd", "--", "true"],
        )
        .via_daemon()
        .fails(
            3,
            r#"elhaz: no config or AWS profile named "prd"; did you mean: prod?"#,
        )
        .hint("list them: elhaz config list; or create it: elhaz config add prd --role-arn ARN"),
    );

    for (what, daemon) in [
        ("AWS_CONFIG_FILE naming no file, in this process", false),
        ("AWS_CONFIG_FILE naming no file, through the daemon", true),
    ] {
        let mut t = user(sts);
        let missing = t.home.join("nowhere/config");
        t.set("AWS_CONFIG_FILE", missing.to_str().unwrap());
        let args: &[&str] = if daemon {
            &["exec", "x", "--", "true"]
        } else {
            &["--no-daemon", "exec", "x", "--", "true"]
        };
        let c = case(what, t, args)
            .fails(
                3,
                r#"elhaz: no config or AWS profile named "x": AWS_CONFIG_FILE names ~/nowhere/config, which does not exist"#,
            )
            .hint("point AWS_CONFIG_FILE at your AWS file, or unset it for ~/.aws/config; or create x: elhaz config add x --role-arn ARN");
        cases.push(if daemon { c.via_daemon() } else { c });
    }

    let mut no_keys = user(sts);
    no_keys
        .unset("AWS_ACCESS_KEY_ID")
        .unset("AWS_SECRET_ACCESS_KEY")
        .set("ELHAZ_NO_DAEMON", "1");
    cases.push(
        case("ELHAZ_NO_DAEMON=1 and no source credentials", no_keys, &[
            "export", "prod",
        ])
        .fails(
            5,
            "elhaz: no source credentials found in the caller's environment: AWS_ACCESS_KEY_ID is not set; AWS_PROFILE is not set, and there is no [default] profile in ~/.aws/config or ~/.aws/credentials; no web identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE); no container or instance metadata credentials",
        )
        .hint("export AWS_PROFILE=P (or source keys: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), set Session.profile_name: elhaz config update NAME --profile P, or run: aws configure"),
    );

    // What people write so that `aws` uses elhaz: [default] runs it. It is never a
    // source of elhaz's own, and the error says why it was passed over, in this
    // process and through the daemon alike.
    for (what, daemon) in [
        ("[default] runs elhaz, and nothing else gives keys", false),
        ("[default] runs elhaz, through the daemon", true),
    ] {
        let mut served = user(sts);
        served
            .unset("AWS_ACCESS_KEY_ID")
            .unset("AWS_SECRET_ACCESS_KEY");
        served.write_aws_config(
            "[default]\ncredential_process = elhaz export prod --format credential-process\n",
        );
        let args: &[&str] = if daemon {
            &["export", "prod"]
        } else {
            &["--no-daemon", "export", "prod"]
        };
        let c = case(what, served, args)
            .fails(
                5,
                "elhaz: no source credentials found in the caller's environment: AWS_ACCESS_KEY_ID is not set; AWS_PROFILE is not set, and the [default] profile of ~/.aws/config or ~/.aws/credentials is skipped: its credential_process runs elhaz, and credentials elhaz serves are never a source; no web identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE); no container or instance metadata credentials",
            )
            .hint("export AWS_PROFILE=P (or source keys: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), set Session.profile_name: elhaz config update NAME --profile P, or run: aws configure");
        cases.push(if daemon { c.via_daemon() } else { c });
    }

    // A role profile on top of a profile whose credential_process runs elhaz: the
    // profile that runs elhaz is named, at its line, in this process and through the
    // daemon alike.
    for (what, daemon) in [
        ("a role profile whose source runs elhaz", false),
        (
            "a role profile whose source runs elhaz, through the daemon",
            true,
        ),
    ] {
        let t = user(sts);
        t.write_aws_config(
            "[profile viaelhaz]\ncredential_process = elhaz export prod --format credential-process\n\n[profile ontop]\nrole_arn = arn:aws:iam::888888888888:role/OnTop\nsource_profile = viaelhaz\n",
        );
        let args: &[&str] = if daemon {
            &["exec", "ontop", "--", "true"]
        } else {
            &["--no-daemon", "exec", "ontop", "--", "true"]
        };
        let c = case(what, t, args)
            .fails(
                3,
                "elhaz: profile viaelhaz (~/.aws/config:2) gets its credentials from elhaz itself (credential_process serves prod); credentials elhaz serves are never a source",
            )
            .hint("name the source that prod uses instead (source_profile, or Session.profile_name): the role on top of it is then assumed from that source");
        cases.push(if daemon { c.via_daemon() } else { c });
    }

    let sso = user(sts);
    expired_sso(&sso);
    cases.push(
        case(
            "an expired SSO token",
            sso,
            &["exec", "via-sso", "--", "true"],
        )
        .via_daemon()
        .fails(
            5,
            "elhaz: SSO session 'my-sso' has expired; run: elhaz sso login my-sso",
        ),
    );

    let legacy = user(sts);
    legacy.write_aws_config(
        "[profile legacy]\nsso_start_url = https://legacy.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 111122223333\nsso_role_name = ReadOnly\n",
    );
    cases.push(
        case(
            "a legacy SSO profile never logged in",
            legacy,
            &["--no-daemon", "export", "legacy"],
        )
        .fails(
            5,
            "elhaz: profile 'legacy' (SSO start URL https://legacy.awsapps.com/start) is not logged in; run: elhaz sso login legacy",
        ),
    );

    let mut rate = user(sts);
    rate.set("ELHAZ_SSO_RATE", "fast");
    rate.write_aws_config(
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
    );
    cases.push(
        case(
            "ELHAZ_SSO_RATE that is not a number",
            rate,
            &["sso", "roles", "corp", "--refresh"],
        )
        .fails(
            2,
            "elhaz: ELHAZ_SSO_RATE is 'fast', not a number of calls a second",
        )
        .hint("set ELHAZ_SSO_RATE to a whole number above 0, such as 10, or unset it"),
    );

    let t = user(sts);
    std::fs::write(t.home.join("notadir"), "").unwrap();
    let sock = t.home.join("notadir/daemon.sock");
    cases.push(
        case("a socket path below a file", t, &[
            "--socket-path",
            sock.to_str().unwrap(),
            "exec",
            "prod",
            "--",
            "true",
        ])
        .fails(
            4,
            "elhaz: cannot connect to the daemon at ~/notadir/daemon.sock: a path component is not a directory",
        )
        .hint("fix --socket-path (or ELHAZ_SOCKET_PATH)"),
    );

    let t = user(sts);
    let long = t.home.join(format!("{}/daemon.sock", "s".repeat(110)));
    cases.push(
        case("a socket path longer than Unix sockets allow", t, &[
            "--socket-path",
            long.to_str().unwrap(),
            "exec",
            "prod",
            "--",
            "true",
        ])
        .fails(
            4,
            format!(
                "elhaz: the socket path ~/{}/daemon.sock is too long: Unix sockets take at most 107 bytes, it has {}",
                "s".repeat(110),
                long.as_os_str().len()
            ),
        )
        .hint("use a shorter --socket-path (or ELHAZ_SOCKET_PATH), e.g. under $XDG_RUNTIME_DIR"),
    );

    let t = user(sts);
    let log_dir = t.home.join("logs");
    std::fs::create_dir_all(&log_dir).unwrap();
    cases.push(
        case(
            "a daemon log path that is a directory",
            t,
            &[
                "--logging-path",
                log_dir.to_str().unwrap(),
                "daemon",
                "start",
            ],
        )
        .fails(4, "elhaz: the daemon exited at once (exit status: 4)")
        .hint("run it in the foreground, with the same flags, to see why: elhaz daemon run"),
    );

    let t = user(sts);
    std::fs::write(t.home.join("configs.txt"), "").unwrap();
    let file = t.home.join("configs.txt");
    cases.push(
        case("--config-dir names a file", t, &[
            "--config-dir",
            file.to_str().unwrap(),
            "config",
            "list",
        ])
        .fails(
            3,
            "elhaz: config directory ~/configs.txt is a file, not a directory",
        )
        .hint(format!(
            "move it away (mv {0} {0}.bak), or point --config-dir (or ELHAZ_CONFIG_DIR) at a directory",
            file.display()
        )),
    );

    let t = TestEnv::with_sts(sts);
    std::fs::create_dir_all(t.home.join(".elhaz")).unwrap();
    std::fs::write(t.config_dir(), "").unwrap();
    cases.push(
        case(
            "~/.elhaz/configs is a file, through the daemon",
            t,
            &["exec", "prod", "--", "true"],
        )
        .via_daemon()
        .fails(
            3,
            "elhaz: config directory ~/.elhaz/configs is a file, not a directory",
        ),
    );

    cases.push(
        case("exec without a command", user(sts), &["exec", "prod"])
            .fails(
                2,
                "elhaz: exec needs a command: elhaz exec NAME -- CMD [ARGS...]",
            )
            .hint("for an interactive shell: elhaz shell NAME"),
    );
    cases.push(
        case(
            "hook for an unsupported shell",
            user(sts),
            &["hook", "tcsh"],
        )
        .fails(2, "error: invalid value 'tcsh' for '[SHELL]'"),
    );
    for (var, value, first, hint) in [
        (
            "ELHAZ_CLIENT_TIMEOUT",
            "abc",
            r#"invalid duration "abc": unknown unit 'a' (use s, m, h or d)"#,
            "to what --client-timeout takes (default 30)",
        ),
        (
            "ELHAZ_MAX_DAEMON_CACHE_SIZE",
            "0",
            "0 is not in 1..=4294967295",
            "to what --max-daemon-cache-size takes (default 10)",
        ),
        (
            "ELHAZ_NO_DAEMON",
            "maybe",
            "value was not a boolean",
            "to 1 or 0 (true or false, yes or no, on or off)",
        ),
    ] {
        let mut t = user(sts);
        t.set(var, value);
        cases.push(
            case(
                "a global option's variable it refuses",
                t,
                &["exec", "prod", "--", "true"],
            )
            .fails(2, format!("elhaz: {var}=\"{value}\": {first}"))
            .hint(format!("set {var} {hint}, or unset it")),
        );
    }
    let mut t = user(sts);
    t.set("SHELL", "/bin/tcsh");
    cases.push(
        case("hook without a shell, and $SHELL another shell", t, &["hook"])
            .fails(
                2,
                "elhaz: no shell named, and $SHELL (/bin/tcsh) is none of bash, zsh or fish",
            )
            .hint("name the shell whose rc file evals it: eval \"$(elhaz hook bash)\", eval \"$(elhaz hook zsh)\", or elhaz hook fish | source"),
    );
    cases.push(
        case("an invalid duration flag", user(sts), &[
            "exec",
            "prod",
            "--min-remaining",
            "5x",
            "--",
            "true",
        ])
        .fails(
            2,
            r#"error: invalid value '5x' for '--min-remaining <DURATION>': invalid duration "5x": unknown unit 'x' (use s, m, h or d)"#,
        ),
    );
    cases.push(
        case("--client-timeout garbage", user(sts), &[
            "--client-timeout",
            "soon",
            "daemon",
            "status",
        ])
        .fails(
            2,
            r#"error: invalid value 'soon' for '--client-timeout <DURATION>': invalid duration "soon": a unit needs a number before it"#,
        ),
    );
    let mut t = user(sts);
    t.set("ELHAZ_REFRESH_WINDOW", "ten minutes");
    cases.push(
        case("ELHAZ_REFRESH_WINDOW garbage", t, &["exec", "prod", "--", "true"])
            .fails(
                2,
                r#"elhaz: ELHAZ_REFRESH_WINDOW="ten minutes": invalid duration "ten minutes": unknown unit 't' (use s, m, h or d)"#,
            )
            .hint("set ELHAZ_REFRESH_WINDOW to seconds (900) or a duration (15m, 1h)"),
    );
    cases.push(
        case(
            "config add with nothing to add, no terminal",
            user(sts),
            &["config", "add", "new"],
        )
        .fails(
            2,
            "elhaz: config add needs --role-arn ARN, --from-file PATH or --editor",
        )
        .hint(add_hint),
    );
    cases.push(
        case(
            "config add with fields but no role ARN",
            user(sts),
            &["config", "add", "new", "--region", "eu-west-1"],
        )
        .fails(
            2,
            "elhaz: config add needs --role-arn ARN, --from-file PATH or --editor",
        )
        .hint(add_hint),
    );
    cases.push(
        case(
            "config add over an existing config",
            user(sts),
            &["config", "add", "prod", "--role-arn", PROD],
        )
        .fails(3, r#"elhaz: config "prod" already exists"#)
        .hint("change it: elhaz config update prod; or replace it: elhaz config add prod --force"),
    );
    cases.push(
        case("config add with a region typo", user(sts), &[
            "config", "add", "new", "--role-arn", PROD, "--region", "eu-wst-1",
        ])
        .fails(
            3,
            r#"elhaz: --region "eu-wst-1" is not an AWS region; did you mean: eu-west-1, eu-west-2, eu-west-3?"#,
        )
        .hint("run it again with --region eu-west-1"),
    );
    cases.push(
        case(
            "config add with a role ARN whose account is not 12 digits",
            user(sts),
            &["config", "add", "new", "--role-arn", "arn:aws:iam::12345:role/X"],
        )
        .fails(
            3,
            r#"elhaz: --role-arn "arn:aws:iam::12345:role/X" is not a role ARN: the account must be 12 digits, not "12345" (expected arn:aws:iam::ACCOUNT:role/NAME)"#,
        )
        .hint("run it again with --role-arn arn:aws:iam::ACCOUNT:role/NAME"),
    );
    let t = user(sts);
    t.write_aws_config("[profile my-sso]\nregion = eu-west-1\n");
    cases.push(
        case("config add with a source profile that does not exist", t, &[
            "config", "add", "new", "--role-arn", PROD, "--profile", "my-ssso",
        ])
        .fails(
            3,
            r#"elhaz: --profile: no AWS profile "my-ssso" in ~/.aws/config; did you mean: my-sso?"#,
        )
        .hint("run it again with --profile my-sso; or create it: aws configure --profile my-ssso (or aws configure sso --profile my-ssso)"),
    );
    cases.push(
        case(
            "config add with a source profile and no AWS config file",
            user(sts),
            &["config", "add", "new", "--role-arn", PROD, "--profile", "my-sso"],
        )
        .fails(
            3,
            r#"elhaz: --profile: no AWS profile "my-sso": there is no AWS config file (~/.aws/config does not exist)"#,
        )
        .hint("create it: aws configure --profile my-sso (or aws configure sso --profile my-sso)"),
    );
    let t = user(sts);
    t.write_config(
        "typo",
        &format!("AssumeRole:\n  RoleArn: {PROD}\nSession:\n  region_name: eu-wst-1\n"),
    );
    cases.push(
        case("a config file with a region typo", t, &[
            "--no-daemon", "exec", "typo", "--", "true",
        ])
        .fails(
            3,
            r#"elhaz: ~/.elhaz/configs/typo.yaml:4: Session.region_name "eu-wst-1" is not an AWS region; did you mean: eu-west-1, eu-west-2, eu-west-3?"#,
        )
        .hint("fix it: elhaz config update typo --editor"),
    );
    for (what, args, daemon) in [
        (
            "a config whose source profile does not exist, in this process",
            &["--no-daemon", "exec", "gone", "--", "true"][..],
            false,
        ),
        (
            "a config whose source profile does not exist, through the daemon",
            &["export", "gone"],
            true,
        ),
    ] {
        let t = user(sts);
        t.write_aws_config("[profile my-sso]\nregion = eu-west-1\n");
        t.write_config(
            "gone",
            &format!("AssumeRole:\n  RoleArn: {PROD}\nSession:\n  profile_name: my-ssso\n"),
        );
        let c = case(what, t, args)
            .fails(
                3,
                r#"elhaz: ~/.elhaz/configs/gone.yaml:4: Session.profile_name: no AWS profile "my-ssso" in ~/.aws/config; did you mean: my-sso?"#,
            )
            .hint("name a profile that exists: elhaz config update gone --profile PROFILE (list them: elhaz config list)");
        cases.push(if daemon { c.via_daemon() } else { c });
    }
    cases.push(
        case(
            "daemon status when none runs",
            user(sts),
            &["daemon", "status"],
        )
        .on_stdout()
        .fails(1, "not running (socket ~/.elhaz/sock/daemon.sock)"),
    );
    cases.push(
        case(
            "export into a pipe nobody reads",
            user(sts),
            &["--no-daemon", "export", "prod"],
        )
        .into_closed_pipe()
        .fails(
            1,
            "elhaz: cannot write to stdout: broken pipe (the reader has gone)",
        ),
    );
    cases.push(
        case(
            "login --duration out of range",
            user(sts),
            &["login", "prod", "--duration", "5m"],
        )
        .fails(
            2,
            "elhaz: --duration 5m is out of range: the console session lasts 15m to 12h",
        )
        .hint("elhaz login NAME --duration 1h"),
    );
    cases.push(
        case("use without the hook", user(sts), &["use", "prod"])
            .fails(
                2,
                "elhaz: `elhaz use` needs the shell hook, which is not loaded in this shell",
            )
            .hint(r#"add to your rc file: eval "$(elhaz hook bash)" (zsh: eval "$(elhaz hook zsh)"; fish: elhaz hook fish | source), then open a new shell"#),
    );
    cases.push(
        case("STS unreachable (connection refused)", user(&dead_sts), &[
            "exec", "prod", "--", "true",
        ])
        .via_daemon()
        .fails(
            5,
            format!("elhaz: AssumeRole {PROD} failed: cannot reach STS at {dead_sts}: connection refused"),
        )
        .hint("check the network, STS.endpoint_url and AWS_ENDPOINT_URL_STS"),
    );
    cases.push(
        case(
            "STS denies the role",
            user(denying_sts),
            &["--no-daemon", "exec", "prod", "--", "true"],
        )
        .fails(
            5,
            format!("elhaz: AssumeRole {PROD} failed: AccessDenied: fake AccessDenied"),
        )
        .hint("check the role's trust policy and the source identity: aws sts get-caller-identity"),
    );
    let t = TestEnv::with_sts(sts);
    t.role_config("mfa", "  SerialNumber: arn:aws:iam::123456789012:mfa/me\n");
    cases.push(
        case("an MFA config without a terminal", t, &["exec", "mfa", "--", "true"])
            .via_daemon()
            .fails(
                5,
                "elhaz: an MFA code is needed for arn:aws:iam::123456789012:mfa/me, and there is no terminal to ask on",
            )
            .hint("set MFA.command in the config (e.g. ykman oath accounts code -s NAME), or run the command from a terminal"),
    );
    cases.push(
        case(
            "exec of a command that does not exist",
            user(sts),
            &["--no-daemon", "exec", "prod", "--", "terraformm", "plan"],
        )
        .fails(127, "elhaz: command not found: terraformm"),
    );
    cases.push(
        case(
            "exec of an unknown NAME and an unknown command: NAME is named",
            user(sts),
            &["exec", "nosuch", "--", "nosuchcmd"],
        )
        .fails(3, "elhaz: no config or AWS profile named \"nosuch\"")
        .hint("list them: elhaz config list; or create it: elhaz config add nosuch --role-arn ARN"),
    );
    cases.push(
        case(
            "exec with NAME forgotten and no --",
            user(sts),
            &["exec", "terraform", "plan"],
        )
        .fails(
            3,
            "elhaz: 'terraform' is not a config or profile; did you mean: elhaz exec NAME -- terraform plan?",
        )
        .hint("list the names: elhaz config list"),
    );
    let t = user(sts);
    std::fs::write(t.home.join("deploy.sh"), "#!/bin/sh\n").unwrap();
    cases.push(
        case(
            "exec of a script that is not executable",
            t,
            &["--no-daemon", "exec", "prod", "--", "./deploy.sh"],
        )
        .fails(126, "elhaz: cannot execute ./deploy.sh: permission denied")
        .hint("make it executable: chmod +x ./deploy.sh"),
    );
    let t = user(sts);
    t.write_config(
        "typo",
        &format!("AssumeRole:\n  RoleArn: {PROD}\n  Duration: 3600\n"),
    );
    cases.push(
        case("a config with an unknown key", t, &[
            "--no-daemon",
            "exec",
            "typo",
            "--",
            "true",
        ])
        .fails(
            3,
            "elhaz: ~/.elhaz/configs/typo.yaml:3:3: unknown field 'Duration' in AssumeRole, expected one of RoleArn, RoleSessionName, DurationSeconds, ExternalId, SerialNumber, TokenCode, SourceIdentity, Policy, PolicyArns, Tags, TransitiveTagKeys, ProvidedContexts",
        )
        .hint("fix it: elhaz config update typo --editor"),
    );
    cases.push(
        case(
            "daemon logs before any daemon ran",
            user(sts),
            &["daemon", "logs"],
        )
        .fails(
            4,
            "elhaz: cannot read the daemon log ~/.elhaz/logs/daemon.log: no such file or directory",
        )
        .hint("the daemon has not run with this log path yet: elhaz daemon start"),
    );
    for (what, daemon) in [
        ("an MFA code STS refuses, from MFA.command", false),
        (
            "an MFA code STS refuses, from MFA.command, in the daemon",
            true,
        ),
    ] {
        let t = user(refusing_sts);
        t.role_config(
            "prod-mfa",
            "  SerialNumber: arn:aws:iam::123456789012:mfa/me\nMFA:\n  command: echo 000000\n",
        );
        let args: &[&str] = if daemon {
            &["export", "prod-mfa"]
        } else {
            &["--no-daemon", "export", "prod-mfa"]
        };
        let c = case(what, t, args)
            .fails(
                5,
                format!("elhaz: AssumeRole {PROD} failed: AccessDenied: MultiFactorAuthentication failed with invalid MFA one time pass code."),
            )
            .hint("each code is taken once, within its 30 seconds: run the command again with the next one; if every code is refused, check that arn:aws:iam::123456789012:mfa/me is the source identity's device: aws iam list-mfa-devices");
        cases.push(if daemon { c.via_daemon() } else { c });
    }
    let t = user(sts);
    t.write_aws_config(
        "[profile wrapped]\ncredential_process = sh -c 'exec elhaz export wrapped -f credential-process'\n",
    );
    cases.push(
        case("a credential_process asking elhaz for itself, in sh -c", t, &["export", "wrapped"])
            .via_daemon()
            .fails(
                3,
                "elhaz: profile wrapped (~/.aws/config:2) loops: its credential_process asks elhaz for wrapped, which is this profile",
            )
            .hint("make a config named wrapped (elhaz config add wrapped --role-arn ARN), which wins over the profile, or remove the credential_process line"),
    );
    let t = user(sts);
    t.write_aws_config("[profile dev\nregion = eu-west-1\n");
    cases.push(
        case("a broken ~/.aws/config", t, &["config", "list"])
            .fails(
                3,
                "elhaz: ~/.aws/config:1: a section header must end with ']' (and nothing but a comment after it)",
            )
            .hint("fix line 1 of ~/.aws/config (or point AWS_CONFIG_FILE at another file)"),
    );
    let t = user(sts);
    t.write_aws_config("[profile keys]\naws_access_key_id = AKIAKEYS\naws_secret_access_key = s\n");
    cases.push(
        case("a profile with long-term keys only", t, &[
            "--no-daemon",
            "export",
            "keys",
        ])
        .fails(
            3,
            r#"elhaz: profile "keys" gives long-term keys only; elhaz serves temporary credentials"#,
        )
        .hint("make a role config that uses it: elhaz config add NAME --profile keys --role-arn ARN"),
    );
    cases.push(
        case(
            "no NAME and no terminal for the picker",
            user(sts),
            &["whoami"],
        )
        .fails(2, "elhaz: no NAME given; choose one of: prod"),
    );
    cases.push(
        case(
            "a name that cannot be a file name",
            user(sts),
            &["config", "get", "../prod"],
        )
        .fails(
            3,
            r#"elhaz: invalid config name "../prod": use only ASCII letters, digits, '_' and '-'"#,
        ),
    );
    cases.push(
        case("an unknown command", user(sts), &["frobnicate"])
            .fails(2, "error: unrecognized subcommand 'frobnicate'"),
    );
    let t = user(sts);
    let shared = t.home.join("shared.sock");
    cases.push(
        case(
            "export from a shared socket nobody serves",
            t,
            &["export", "--socket", shared.to_str().unwrap()],
        )
        .fails(4, "elhaz: nothing serves the shared socket ~/shared.sock")
        .hint(
            "share a session on it, outside the sandbox: elhaz daemon share NAME --socket PATH \
             (or the ssh session that forwarded it has ended: run ssh -R again)",
        ),
    );
    cases
}

/// Runs the table once per test process (both tests below read it).
fn outcomes() -> &'static [Outcome] {
    static OUTCOMES: OnceLock<Vec<Outcome>> = OnceLock::new();
    OUTCOMES.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let sts = rt.block_on(FakeSts::start(Duration::from_secs(3600)));
        let denying = rt.block_on(FakeSts::start(Duration::from_secs(3600)));
        denying.set_fault(Fault::Status(403, "AccessDenied"));
        let refusing = rt.block_on(FakeSts::start(Duration::from_secs(3600)));
        refusing.refuse_codes(&["000000"]);
        let cases = table(&sts.uri(), &denying.uri(), &refusing.uri());
        assert!(cases.len() >= 15);
        // Four at a time: each case has its own HOME (and daemon, if any).
        let mut out = Vec::new();
        let mut cases = cases.into_iter().peekable();
        while cases.peek().is_some() {
            let batch: Vec<Case> = cases.by_ref().take(4).collect();
            let handles: Vec<_> = batch
                .into_iter()
                .map(|c| std::thread::spawn(move || c.run()))
                .collect();
            out.extend(handles.into_iter().map(|h| h.join().unwrap()));
        }
        rt.block_on(async move {
            drop(sts);
            drop(denying);
            drop(refusing);
        });
        out
    })
}

#[test]
fn each_mistake_gets_its_exact_first_line_and_exit_code() {
    let failed: Vec<String> = outcomes()
        .iter()
        .filter(|o| !o.failures.is_empty())
        .map(|o| {
            format!(
                "{} (elhaz {}):\n    {}\n    full stderr:\n{}",
                o.what,
                o.args.join(" "),
                o.failures.join("\n    "),
                String::from_utf8_lossy(&o.output.stderr)
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases differ:\n\n{}",
        failed.len(),
        outcomes().len(),
        failed.join("\n\n")
    );
}

/// What Rust's Debug formatting and panics look like; none of it is for users.
const NOT_FOR_USERS: &[&str] = &[
    "Os {",
    "Error {",
    "Custom {",
    "kind: ",
    "(os error",
    "Some(",
    "panicked",
    "RUST_BACKTRACE",
    "ParseError(",
    "Location {",
];

#[test]
fn no_rust_debug_formatting_reaches_a_user() {
    let mut seen = Vec::new();
    for o in outcomes() {
        for stream in [&o.output.stderr, &o.output.stdout] {
            let text = String::from_utf8_lossy(stream);
            for pattern in NOT_FOR_USERS {
                if text.contains(pattern) {
                    seen.push(format!("{} shows {pattern:?}:\n{text}", o.what));
                }
            }
        }
    }
    assert!(seen.is_empty(), "{}", seen.join("\n\n"));
}

#[test]
fn every_error_says_elhaz_and_fits_on_one_line_then_a_hint() {
    // Our own errors (not clap's usage errors): one `elhaz: ` line, then at most a hint.
    for o in outcomes() {
        let err = String::from_utf8_lossy(&o.output.stderr);
        if err.is_empty() || err.starts_with("error: ") {
            continue;
        }
        let lines: Vec<&str> = err.lines().collect();
        assert!(lines[0].starts_with("elhaz: "), "{}: {err}", o.what);
        assert!(
            lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")),
            "{}: more than a message and a hint:\n{err}",
            o.what
        );
    }
}

#[test]
fn a_socket_in_a_missing_directory_is_created_when_the_daemon_starts() {
    let t = user(&moto().endpoint());
    let socket = t.home.join("run/elhaz/deep/daemon.sock");
    let out = t
        .cmd()
        .args(["--socket-path", socket.to_str().unwrap()])
        .args(["exec", "prod", "--", "true"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the socket's directory is private");
    assert!(socket.exists());
    let _ = t
        .cmd()
        .args(["--socket-path", socket.to_str().unwrap(), "daemon", "kill"])
        .output();
}

#[test]
fn printing_commands_end_quietly_when_the_reader_goes() {
    // `elhaz daemon logs | head -1` style: no panic, no message, a failure code.
    let t = TestEnv::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = t
        .std_cmd()
        .args(["completions", "bash"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "nothing on stderr when the reader has gone"
    );
    assert_eq!(out.status.code(), Some(1));
    // A full disk is a real failure: one line.
    if Path::new("/dev/full").exists() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = t
            .std_cmd()
            .args(["hook", "bash"])
            .stdout(Stdio::from(full))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "elhaz: cannot write to stdout: no space left on device\n"
        );
        assert_eq!(out.status.code(), Some(1));
    }
}

#[test]
fn a_daemon_that_cannot_start_is_reported_at_once_not_after_the_start_timeout() {
    let t = user("http://127.0.0.1:9");
    let log_dir = t.home.join("logs");
    std::fs::create_dir_all(&log_dir).unwrap();
    let start = std::time::Instant::now();
    let out = t
        .cmd()
        .args(["--logging-path", log_dir.to_str().unwrap()])
        .args(["exec", "prod", "--", "true"])
        .output()
        .unwrap();
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(4));
    assert!(
        took < Duration::from_secs(3),
        "took {took:?}: the client waited for a socket no daemon would open"
    );
}

/// The eight options every command takes, as `--help` shows them.
const GLOBALS: [&str; 8] = [
    "--config-dir",
    "--socket-path",
    "--logging-path",
    "--max-unix-socket-connections",
    "--max-daemon-cache-size",
    "--client-timeout",
    "--no-daemon",
    "--verbose",
];

/// Every command path (`["config", "add"]`, ...), from the command line's definition.
fn command_paths(cmd: &clap::Command, above: &[String], out: &mut Vec<Vec<String>>) {
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let mut path = above.to_vec();
        path.push(sub.get_name().to_string());
        command_paths(sub, &path, out);
        out.push(path);
    }
}

#[test]
fn global_options_are_in_full_only_in_elhaz_help_and_help_globals() {
    let t = TestEnv::new();
    let mut paths = Vec::new();
    command_paths(&elhaz::cli::command(), &[], &mut paths);
    assert!(paths.len() > 30, "{paths:?}");
    for path in &paths {
        for flag in ["--help", "-h"] {
            let out = t.cmd().args(path).arg(flag).output().unwrap();
            assert!(out.status.success(), "{path:?} {flag}");
            let help = text(&out.stdout);
            for global in GLOBALS {
                assert!(
                    !help.contains(global),
                    "{path:?} {flag} shows {global}:\n{help}"
                );
            }
            // One line, after the command's own options and before its examples.
            let line = help
                .find("\nGlobal options: see elhaz --help\n")
                .unwrap_or_else(|| panic!("{path:?} {flag}: no one-line pointer in\n{help}"));
            assert!(help.find("--help").unwrap() < line, "{path:?}");
            if let Some(examples) = help.find("Example") {
                assert!(line < examples, "{path:?}: {help}");
            }
        }
    }
    // In full: each with what it does and its variable.
    for args in [
        &["--help"][..],
        &["help"],
        &["help", "globals"],
        &["globals"],
    ] {
        let out = t.cmd().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let help = text(&out.stdout);
        let full = &help[help
            .find("Global options:\n")
            .unwrap_or_else(|| panic!("{args:?}: no heading in\n{help}"))..];
        for global in GLOBALS {
            assert!(full.contains(global), "{args:?}: no {global} in\n{help}");
        }
        for var in [
            "ELHAZ_CONFIG_DIR",
            "ELHAZ_CLIENT_TIMEOUT",
            "ELHAZ_NO_DAEMON",
        ] {
            assert!(full.contains(var), "{args:?}: no {var} in\n{help}");
        }
    }
    // A command given without its subcommand shows its own help, as quietly.
    for group in ["config", "daemon", "sso", "eks"] {
        let out = t.cmd().arg(group).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{group}");
        let help = text(&out.stderr);
        assert!(
            help.contains("\nGlobal options: see elhaz --help\n"),
            "{group}: {help}"
        );
        for global in GLOBALS {
            assert!(!help.contains(global), "{group} shows {global}:\n{help}");
        }
    }
    // Hidden from the help, still taken after the command.
    let dir = t.home.join("elsewhere");
    let out = t
        .cmd()
        .args(["config", "list", "--json", "--config-dir"])
        .arg(&dir)
        .args(["-v", "--no-daemon"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A bad (or empty) ELHAZ_* variable of a global option: the hook and the completion
/// script still print (an rc file must not break), the option given on the command
/// line wins over it, and an empty one is unset.
#[test]
fn a_bad_global_variable_never_breaks_the_hook_and_yields_to_its_option() {
    let t = TestEnv::new();
    for (var, value) in [
        ("ELHAZ_CLIENT_TIMEOUT", "abc"),
        ("ELHAZ_MAX_UNIX_SOCKET_CONNECTIONS", "many"),
        ("ELHAZ_NO_DAEMON", "maybe"),
    ] {
        for args in [
            &["hook", "bash"][..],
            &["hook", "zsh"],
            &["completions", "fish"],
        ] {
            let out = t.cmd().env(var, value).args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{var}={value} elhaz {args:?}: {}",
                text(&out.stderr)
            );
            assert!(!out.stdout.is_empty() && out.stderr.is_empty(), "{args:?}");
        }
    }
    let ok = |env: (&str, &str), args: &[&str]| {
        let out = t.cmd().env(env.0, env.1).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{env:?} {args:?}: {}",
            text(&out.stderr)
        );
    };
    ok(
        ("ELHAZ_CLIENT_TIMEOUT", "abc"),
        &["config", "list", "--json", "--client-timeout", "3"],
    );
    ok(
        ("ELHAZ_CLIENT_TIMEOUT", "abc"),
        &["--client-timeout=3", "config", "list", "--json"],
    );
    ok(("ELHAZ_CLIENT_TIMEOUT", ""), &["config", "list", "--json"]);
    ok(("ELHAZ_NO_DAEMON", " "), &["config", "list", "--json"]);
}

#[test]
fn a_mistyped_command_suggests_the_closest_first() {
    let t = TestEnv::new();
    for (args, tip) in [
        (
            &["shel"][..],
            "tip: some similar subcommands exist: 'shell', 'help'",
        ),
        (
            &["exce", "prod"],
            "tip: a similar subcommand exists: 'exec'",
        ),
        (
            &["config", "lst"],
            "tip: a similar subcommand exists: 'list'",
        ),
        (
            &["daemon", "stat"],
            "tip: some similar subcommands exist: 'start', 'status'",
        ),
    ] {
        let out = t.cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(&format!("{tip}\n")), "{args:?}:\n{err}");
    }
}

#[test]
fn config_commands_describe_their_name_as_what_they_do_with_it() {
    let t = TestEnv::new();
    // As read, whatever the wrapping.
    let help = |args: &[&str]| {
        let out = t.cmd().args(args).arg("--help").output().unwrap();
        text(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let add = help(&["config", "add"]);
    assert!(
        add.contains("[NAME] The new config's name: letters, digits, '_', '-' (asked when omitted on a terminal)"),
        "{add}"
    );
    assert!(
        !add.contains("config or AWS CLI profile") && !add.contains("picker"),
        "{add}"
    );
    for sub in ["get", "meta", "remove", "update"] {
        let h = help(&["config", sub]);
        assert!(
            h.contains(
                "[NAME] The config (a picker over the configs opens when omitted on a terminal)"
            ),
            "config {sub}: {h}"
        );
    }
    // The picker of those offers configs only: without a terminal, the names to choose.
    let t2 = TestEnv::new();
    t2.role_config("prod", "");
    t2.write_aws_config("[profile dev]\nregion = eu-west-1\n");
    let out = t2.cmd().args(["config", "get"]).output().unwrap();
    assert_eq!(
        text(&out.stderr),
        "elhaz: no NAME given; choose one of: prod\n"
    );
}
